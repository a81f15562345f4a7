/** Batched matmul on the CPU: i-k-j loop order over row-major data, f64 accumulation. */
import type { TypedArray } from "../../dtype.ts";
import { broadcastStrides, sizeOf } from "../../shape.ts";
import { forEachRun } from "./elementwise.ts";

export function matmulCpu(
  a: TypedArray,
  aShape: readonly number[],
  b: TypedArray,
  bShape: readonly number[],
  o: TypedArray,
  outShape: readonly number[],
): void {
  const r = outShape.length;
  const m = outShape[r - 2], n = outShape[r - 1], k = aShape[aShape.length - 1];
  const batchShape = outShape.slice(0, r - 2);
  const aBatch = broadcastStrides(aShape.slice(0, -2), batchShape).map((s) => s * m * k);
  const bBatch = broadcastStrides(bShape.slice(0, -2), batchShape).map((s) => s * k * n);
  const row = new Float64Array(n);
  let ob = 0;
  const one = (ao: number, bo: number) => {
    for (let i = 0; i < m; i++) {
      row.fill(0);
      const ai = ao + i * k;
      for (let p = 0; p < k; p++) {
        const av = a[ai + p];
        const bp = bo + p * n;
        for (let j = 0; j < n; j++) row[j] += av * b[bp + j];
      }
      const oi = ob + i * n;
      for (let j = 0; j < n; j++) o[oi + j] = row[j];
    }
    ob += m * n;
  };
  if (sizeOf(batchShape) === 0 || m === 0 || n === 0) return;
  if (batchShape.length === 0) return one(0, 0);
  forEachRun(batchShape, [aBatch, bBatch], (off, len, st) => {
    for (let t = 0; t < len; t++) one(off[0] + t * st[0], off[1] + t * st[1]);
  });
}
