/**
 * Curvature benchmarks.
 *
 * 1. Hutchinson's diagonal with 100 Rademacher probes on the extended Rosenbrock function
 *    at n = 10^5, batched (10 or 25 probes per forward-over-reverse pass) against one probe
 *    per pass, on the CPU and on WebGPU. The ratio batched ÷ unbatched is the figure that
 *    carries across machines.
 * 2. A CG iteration's cost on WebGPU in dispatches, submits and read-backs (from
 *    `device.stats`), with a tridiagonal matvec and with the Rosenbrock HVP as the matvec,
 *    and Hutchinson's dispatches per probe batched and unbatched; printed once before the
 *    timed runs.
 *
 * Run: `XDG_RUNTIME_DIR=/tmp deno bench -A bench/curvature_bench.ts`
 */
import {
  add,
  cg,
  type Device,
  device,
  hessianDiagonal,
  hvp,
  mul,
  pad,
  slice,
  square,
  sub,
  sum,
  type Tensor,
  uniform,
} from "../mod.ts";

const N = 100_000;
const PROBES = 100;

/** Extended Rosenbrock: Σ 100 (x[i+1] − x[i]²)² + (1 − x[i])², i < n − 1. */
function rosenbrock(x: Tensor): Tensor {
  const n = x.shape[0];
  const a = slice(x, [0], [n - 1]), b = slice(x, [1], [n]);
  return add(mul(sum(square(sub(b, square(a)))), 100), sum(square(sub(1, a))));
}

const cpuDev = await device({ backend: "cpu" });
const auto = await device();
const gpuDev: Device | null = auto.kind === "webgpu" ? auto : null;
if (!gpuDev) console.warn("*** No WebGPU adapter: the WebGPU benchmarks are skipped ***");

function point(dev: Device): Tensor {
  // x ∈ [0.5, 1.5): near the minimiser, an indefinite-free region
  return uniform([N], { seed: 1, device: dev }).add(0.5);
}

for (const dev of [cpuDev, gpuDev]) {
  if (!dev) continue;
  const x = point(dev);
  for (const batch of [1, 10, 25, undefined]) {
    Deno.bench({
      name: `hutchinson diag, ${PROBES} probes, batch ${batch ?? "default"}`,
      group: `hutchinson-${dev.kind}`,
      baseline: batch === 1,
      n: 1,
      warmup: 0,
      async fn(b) {
        b.start();
        const est = await hessianDiagonal(rosenbrock, x, {
          method: "hutchinson",
          samples: PROBES,
          seed: 0,
          batch,
        });
        await est.value.data(); // waits for the queued GPU work
        b.end();
        est.value.dispose(), est.stderr?.dispose();
      },
    });
  }
}

/** Tridiagonal SPD matvec: (Av)_i = 4v_i − v_{i−1} − v_{i+1}, from slices and pads. */
function tridiagonal(v: Tensor): Tensor {
  const n = v.shape[0];
  const left = pad(slice(v, [0], [n - 1]), [[1, 0]]);
  const right = pad(slice(v, [1], [n]), [[0, 1]]);
  return sub(sub(mul(v, 4), left), right);
}

if (gpuDev) {
  const dev = gpuDev;
  const rhs = uniform([N], { seed: 2, device: dev });
  const x = point(dev);
  const hv = (v: Tensor) => hvp(rosenbrock, x, v);
  const report = async (name: string, mv: (v: Tensor) => Tensor, iters: number) => {
    await dev.sync();
    const s0 = dev.stats;
    const t0 = performance.now();
    const res = await cg(mv, rhs, { maxIter: iters, rtol: 0, onNegativeCurvature: "continue" });
    await res.x.data();
    const ms = performance.now() - t0;
    const s1 = dev.stats;
    const per = (k: "dispatches" | "submits" | "readbacks") =>
      ((s1[k] - s0[k]) / res.matvecs).toFixed(2);
    console.log(
      `CG (${name}, n = ${N}, ${res.matvecs} iterations, WebGPU): per iteration ` +
        `${per("dispatches")} dispatches, ${per("submits")} submits, ${per("readbacks")} ` +
        `read-backs (the solve: ${s1.readbacks - s0.readbacks} read-backs including the final ` +
        `x); ${(ms / res.matvecs).toFixed(1)} ms per iteration`,
    );
    res.x.dispose();
  };
  // dispatches per probe, batched or not (20 probes; the counts scale linearly)
  for (const batch of [1, 10]) {
    await dev.sync();
    const s0 = dev.stats;
    const est = await hessianDiagonal(rosenbrock, x, {
      method: "hutchinson",
      samples: 20,
      seed: 0,
      batch,
    });
    await est.value.data();
    const s1 = dev.stats;
    console.log(
      `Hutchinson on WebGPU, batch ${batch}: ${
        ((s1.dispatches - s0.dispatches) / 20).toFixed(1)
      } ` +
        `dispatches and ${((s1.submits - s0.submits) / 20).toFixed(2)} submits per probe, ` +
        `${s1.readbacks - s0.readbacks} read-back(s) for 20 probes`,
    );
    est.value.dispose(), est.stderr?.dispose();
  }
  await report("tridiagonal matvec", tridiagonal, 50);
  await report("Rosenbrock HVP matvec", hv, 20);
  // and the matvecs alone, to separate CG's own work from the matvec's
  for (const [name, mv] of [["tridiagonal", tridiagonal], ["Rosenbrock HVP", hv]] as const) {
    await dev.sync();
    const s0 = dev.stats;
    const y = mv(rhs);
    await y.data();
    console.log(`  one ${name} matvec alone: ${dev.stats.dispatches - s0.dispatches} dispatches`);
    y.dispose();
  }
  for (const [name, mv, iters] of [["tridiagonal", tridiagonal, 50], ["HVP", hv, 20]] as const) {
    Deno.bench({
      name: `CG ${iters} iterations, ${name} matvec`,
      group: "cg-webgpu",
      n: 1,
      warmup: 0,
      async fn(b) {
        b.start();
        const res = await cg(mv, rhs, { maxIter: iters, rtol: 0, onNegativeCurvature: "continue" });
        await res.x.data();
        b.end();
        res.x.dispose();
      },
    });
  }
}
