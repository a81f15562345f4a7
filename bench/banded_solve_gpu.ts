/**
 * The WebGPU banded solver (`solveBanded`, f32, one right-hand side, b = 2) against the
 * device's plain copy kernel moving the bytes the solve must at least read and write
 * (ab and rhs in, x out: (b + 3)·n floats, i.e. a copy of (b + 3)·n / 2 floats), side by
 * side in one run: one system of n = 10⁶, and a batch of 1,024 systems of n = 1,024.
 * "Fraction of the copy kernel's bandwidth" = copy time ÷ solve time.
 *
 * Each sample queues 4 operations and waits once (the wait, a submit-and-map round trip of
 * ~12 ms on lavapipe, is shared). Two clocks: wall time, and the CPU time of this process
 * (`process.cpuUsage`, every thread: on lavapipe, a software GPU, that is the device's
 * work). On a machine shared with other jobs the wall time depends on the scheduler, while
 * the CPU time measures the work itself. Dispatches per solve are counted. With
 * `--before DIR` the same solves of an older checkout (`DIR/mod.ts`) run in the same rounds.
 *
 * Run: `XDG_RUNTIME_DIR=/tmp deno run -A bench/banded_solve_gpu.ts [--before DIR] [--samples 8]`
 */
import process from "node:process";
import * as lib from "../mod.ts";
import type { WebGpuBackend } from "../src/backend/webgpu/webgpu.ts";
import type { GpuStorage } from "../src/backend/webgpu/pool.ts";
import { spdBand } from "./band_data.ts";

type Lib = typeof lib;
const arg = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const K = 4, SAMPLES = Number(arg("--samples") ?? 8), B = 2;
const beforeDir = arg("--before");
const before: Lib | null = beforeDir
  ? await import(new URL(`${beforeDir.replace(/\/$/, "")}/mod.ts`, `file://${Deno.cwd()}/`).href)
  : null;

const gpuOf = async (l: Lib) => {
  const d = await l.device({ backend: "webgpu" });
  if (d.kind !== "webgpu") throw new Error("no WebGPU adapter");
  return d;
};

const rows: string[] = [];
for (const [batch, n] of [[1, 1_000_000], [1024, 1024]]) {
  const ops: Record<string, () => Promise<void>> = {};
  const dispatches: Record<string, number> = {};
  for (
    const [tag, l] of [["now", lib], ...(before ? [["before", before]] : [])] as [string, Lib][]
  ) {
    const gpu = await gpuOf(l);
    const shape = batch === 1 ? [B + 1, n] : [batch, B + 1, n];
    const ab = l.tensor(Float32Array.from(spdBand(batch, n, B, 3)), { shape, device: gpu });
    const r = l.tensor(new Float32Array(batch * n).fill(1), {
      shape: batch === 1 ? [n] : [batch, n],
      device: gpu,
    });
    ops[`${tag}: solveBanded`] = async () => {
      const d0 = gpu.stats.dispatches;
      const xs = Array.from({ length: K }, () => l.solveBanded(ab, r));
      dispatches[tag] = (gpu.stats.dispatches - d0) / K;
      await gpu.sync();
      xs.forEach((x) => x.dispose());
    };
    if (tag === "now") {
      const bk = gpu.backend as WebGpuBackend;
      const len = ((B + 3) * batch * n) / 2;
      const src = bk.fill("f32", len, 1) as GpuStorage;
      ops["copy kernel"] = async () => {
        const os = Array.from({ length: K }, () => bk.copy("f32", src, len));
        await gpu.sync();
        os.forEach((o) => bk.release(o));
      };
    }
  }
  const wall: Record<string, number[]> = {}, cpuMs: Record<string, number[]> = {};
  for (const f of Object.values(ops)) await f(); // compile and warm up
  for (let s = 0; s < SAMPLES; s++) {
    for (const [name, f] of Object.entries(ops)) {
      const c0 = process.cpuUsage(), t0 = performance.now();
      await f();
      (wall[name] ??= []).push((performance.now() - t0) / K);
      const c = process.cpuUsage(c0);
      (cpuMs[name] ??= []).push((c.user + c.system) / 1000 / K);
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  const f1 = (v: number) => v.toFixed(1);
  const label = batch === 1 ? `one system, n = ${n}` : `${batch} systems, n = ${n}`;
  for (const name of Object.keys(ops)) {
    const frac = (m: Record<string, number[]>) =>
      name === "copy kernel" ? "1" : (med(m["copy kernel"]) / med(m[name])).toFixed(3);
    const tag = name.split(":")[0];
    rows.push(
      `| ${label} | ${name} | ${f1(Math.min(...wall[name]))} / ${f1(med(wall[name]))} | ${
        f1(med(cpuMs[name]))
      } | ${frac(wall)} | ${frac(cpuMs)} | ${name === "copy kernel" ? 1 : dispatches[tag]} |`,
    );
  }
}
const up = new TextDecoder().decode((await new Deno.Command("uptime").output()).stdout).trim();
console.log(`b = ${B}, ${SAMPLES} samples of ${K} operations; ${up}\n`);
console.log(
  "| case | operation | wall ms (min / median) | CPU ms (median) | fraction of copy (wall) | fraction of copy (CPU) | dispatches |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) console.log(r);
