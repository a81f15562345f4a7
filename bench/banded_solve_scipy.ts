/**
 * `solveBanded` (CPU, f64) against SciPy's `solveh_banded`, side by side in one run:
 * one SPD system of n = 10⁶ for b = 1, 2, 4, 8, one right-hand side, every timed call
 * including the read-back of the solution into a host array.
 *
 * SciPy runs in a child process (bench/scipy_solveh_banded.py, `/usr/bin/python3`) that
 * times its own calls; rounds alternate between it and this process, so both see the same
 * machine load. Ours, per call: `x = solveBanded(ab, r)`, then `await x.data()` (a fresh
 * array, as SciPy's result is) or `await x.data(out)` (a caller's array, reused), then
 * `x.dispose()`. With `--before DIR`, the same calls of an older checkout (`DIR/mod.ts`,
 * `data()` only) run in the same rounds, for before/after figures.
 *
 * Run: `XDG_RUNTIME_DIR=/tmp deno run -A bench/banded_solve_scipy.ts [--before DIR]
 * [--rounds 5] [--reps 5]`; prints a markdown table (min and median ms per call).
 */
import * as lib from "../mod.ts";
import { spdBand } from "./band_data.ts";

type Lib = typeof lib;
const arg = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const N = 1_000_000;
const BS = [1, 2, 4, 8];
const ROUNDS = Number(arg("--rounds") ?? 5);
const REPS = Number(arg("--reps") ?? 5);
const beforeDir = arg("--before");
const before: Lib | null = beforeDir
  ? await import(new URL(`${beforeDir.replace(/\/$/, "")}/mod.ts`, `file://${Deno.cwd()}/`).href)
  : null;

// ---- SciPy, in a child process
const py = new Deno.Command("/usr/bin/python3", {
  args: [new URL("./scipy_solveh_banded.py", import.meta.url).pathname, String(N)],
  stdin: "piped",
  stdout: "piped",
}).spawn();
const writer = py.stdin.getWriter();
const lines = py.stdout.pipeThrough(new TextDecoderStream()).getReader();
let pending = "";
async function line(): Promise<string> {
  for (;;) {
    const nl = pending.indexOf("\n");
    if (nl >= 0) {
      const l = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      return l;
    }
    const { value, done } = await lines.read();
    if (done) throw new Error("the SciPy child process ended");
    pending += value;
  }
}
async function scipy(b: number, checkFinite: boolean): Promise<number[]> {
  await writer.write(new TextEncoder().encode(`${b} ${REPS} ${checkFinite ? 1 : 0}\n`));
  return JSON.parse(await line());
}
if ((await line()) !== "ready") throw new Error("SciPy child did not start");

// ---- ours
interface Variant {
  name: string;
  run: (b: number) => Promise<number[]>;
}
function variants(l: Lib, tag: string, withOut: boolean): Variant[] {
  const dev = l.getDefaultDevice();
  const data = new Map<number, [lib.Tensor, lib.Tensor]>();
  const inputs = (b: number) => {
    let d = data.get(b);
    if (!d) {
      const ab = l.tensor(spdBand(1, N, b, 7 + b), {
        shape: [b + 1, N],
        dtype: "f64",
        device: dev,
      });
      const r = l.tensor(new Float64Array(N).fill(1), { dtype: "f64", device: dev });
      data.set(b, d = [ab as lib.Tensor, r as lib.Tensor]);
    }
    return d;
  };
  const out = new Float64Array(N);
  const timed = (read: (x: lib.Tensor) => Promise<unknown>) => async (b: number) => {
    const [ab, r] = inputs(b);
    const ts: number[] = [];
    for (let k = 0; k < REPS; k++) {
      const t0 = performance.now();
      const x = l.solveBanded(ab as never, r as never) as lib.Tensor;
      await read(x);
      ts.push(performance.now() - t0);
      x.dispose();
    }
    return ts;
  };
  const vs: Variant[] = [{ name: `${tag} data()`, run: timed((x) => x.data()) }];
  if (withOut) {
    vs.push({
      name: `${tag} data(out)`,
      run: timed((x) => (x.data as (o: Float64Array) => Promise<unknown>)(out)),
    });
  }
  return vs;
}

const all: Variant[] = [
  { name: "SciPy solveh_banded", run: (b) => scipy(b, true) },
  { name: "SciPy, check_finite=False", run: (b) => scipy(b, false) },
  ...(before ? variants(before, "before:", false) : []),
  ...variants(lib, "solveBanded +", true),
];
const times = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const b of BS) {
    for (const v of all) {
      const key = `${v.name}|${b}`;
      times.set(key, [...(times.get(key) ?? []), ...(await v.run(b))]);
    }
  }
}
await writer.close();
await py.status;

const min = (a: number[]) => Math.min(...a);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const f = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
const up = await new Deno.Command("uptime").output();
console.log(
  `n = ${N}, ${ROUNDS} rounds × ${REPS} calls; ${new TextDecoder().decode(up.stdout).trim()}\n`,
);
console.log(`| variant | ${BS.map((b) => `b = ${b}`).join(" | ")} |`);
console.log(`| --- | ${BS.map(() => "---").join(" | ")} |`);
for (const v of all) {
  const cells = BS.map((b) => {
    const t = times.get(`${v.name}|${b}`)!;
    return `${f(min(t))} / ${f(median(t))}`;
  });
  console.log(`| ${v.name} (min / median ms) | ${cells.join(" | ")} |`);
}
for (const v of all.slice(2)) {
  const cells = BS.map((b) => {
    const ours = times.get(`${v.name}|${b}`)!, sp = times.get(`SciPy solveh_banded|${b}`)!;
    return `${(min(ours) / min(sp)).toFixed(2)} / ${(median(ours) / median(sp)).toFixed(2)}`;
  });
  console.log(`| ${v.name} ÷ SciPy (min / median) | ${cells.join(" | ")} |`);
}
