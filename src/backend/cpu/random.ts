import type { RandomDist } from "../backend.ts";
import type { TypedArray } from "../../dtype.ts";
import { philox4x32, seedKey, wordsToNormal, wordsToUniform } from "../../random/philox.ts";

export function randomCpu(dist: RandomDist, o: TypedArray, seed: number, offset: number): void {
  const [k0, k1] = seedKey(seed);
  const w = new Uint32Array(4);
  const f64 = o instanceof Float64Array;
  for (let i = 0; i < o.length; i++) {
    philox4x32(i, offset, 0, 0, k0, k1, w);
    if (dist === "uniform") o[i] = wordsToUniform(w[0], w[1], f64);
    else if (dist === "normal") o[i] = wordsToNormal(w);
    else o[i] = w[0] >>> 31 ? 1 : -1;
  }
}
