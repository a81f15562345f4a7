/**
 * Banded Cholesky solve benchmarks (`solveBanded`).
 *
 * 1. CPU, f64, one system of n = 10^6 for b = 1, 2, 4, 8, upper storage, one right-hand
 *    side. Reference on the machine of the issue: SciPy's `solveh_banded` (LAPACK ptsv for
 *    b = 1, pbsv otherwise, copying ab as it does by default) takes 16, 136, 166 and 209 ms.
 *    `solveBanded` never modifies `ab`, so it needs no copy; each run allocates its result.
 * 2. WebGPU, f32: one long system of n = 10^6, b = 2 (rows per second = 10^6 ÷ time), and
 *    a batch of 1,024 systems of n = 1,024, b = 2 (systems per second = 1,024 ÷ time).
 *    Each has a baseline: the device's plain copy kernel moving as many bytes as the solve
 *    must at least read and write (ab and rhs in, x out: (b + 3)·n floats, i.e. a copy of
 *    (b + 3)·n / 2 floats), so "× slower than the baseline" is the inverse of the fraction
 *    of copy bandwidth the solver achieves. Every timed run awaits the completed work
 *    (`device.sync()`).
 *
 * Run: `XDG_RUNTIME_DIR=/tmp deno bench -A bench/banded_solve_bench.ts`
 */
import { type Device, device, solveBanded, type Tensor, tensor } from "../mod.ts";
import type { WebGpuBackend } from "../src/backend/webgpu/webgpu.ts";
import type { GpuStorage } from "../src/backend/webgpu/pool.ts";
import { spdBand } from "./band_data.ts";

const cpuDev = await device({ backend: "cpu" });
const auto = await device();
const gpuDev: Device | null = auto.kind === "webgpu" ? auto : null;
if (!gpuDev) console.warn("*** No WebGPU adapter: the WebGPU benchmarks are skipped ***");

const N = 1_000_000;

for (const b of [1, 2, 4, 8]) {
  const ab = tensor(spdBand(1, N, b, 7 + b), { shape: [b + 1, N], dtype: "f64", device: cpuDev });
  const r = tensor(new Float64Array(N).fill(1), { dtype: "f64", device: cpuDev });
  Deno.bench({
    name: `cpu f64 solveBanded n=1e6 b=${b}`,
    group: "banded-cpu-f64",
    baseline: b === 1,
    fn: () => {
      solveBanded(ab, r).dispose();
    },
  });
}

if (gpuDev) {
  const bk = gpuDev.backend as WebGpuBackend;
  const b = 2;
  const cases = [
    { name: "one system n=1e6 b=2", group: "banded-webgpu-long", batch: 1, n: N },
    { name: "1024 systems n=1024 b=2", group: "banded-webgpu-batch", batch: 1024, n: 1024 },
  ];
  for (const c of cases) {
    const shape = c.batch === 1 ? [b + 1, c.n] : [c.batch, b + 1, c.n];
    const ab: Tensor = tensor(spdBand(c.batch, c.n, b, 3), {
      shape,
      dtype: "f32",
      device: gpuDev,
    });
    const r = tensor(new Float32Array(c.batch * c.n).fill(1), {
      shape: c.batch === 1 ? [c.n] : [c.batch, c.n],
      device: gpuDev,
    });
    // the same bytes as the solve's compulsory traffic: (b + 3)·n floats read or written
    const copyLen = ((b + 3) * c.batch * c.n) / 2;
    const src = bk.fill("f32", copyLen, 1) as GpuStorage;
    Deno.bench({
      name: `webgpu copy, ${(copyLen / 1e6).toFixed(2)}M floats (same bytes)`,
      group: c.group,
      baseline: true,
      async fn(t) {
        t.start();
        const o = bk.copy("f32", src, copyLen);
        await gpuDev.sync();
        t.end();
        bk.release(o);
      },
    });
    Deno.bench({
      name: `webgpu solveBanded ${c.name}`,
      group: c.group,
      async fn(t) {
        t.start();
        const x = solveBanded(ab, r);
        await gpuDev.sync();
        t.end();
        x.dispose();
      },
    });
  }
}
