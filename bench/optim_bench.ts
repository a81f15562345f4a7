/**
 * Optimiser benchmarks: Newton-CG and trust-ncg on the trajectory benchmark of issue 4,
 * f(x) = Σ (x[i+1] − 2x[i] + x[i−1])² + Σ log cosh(x[i] − t[i]), t[i] = sin(0.1 i) +
 * 0.5 cos(0.37 i), x0 = 0, n = 10^5: CPU f64 to ‖g‖ < 1e-8, WebGPU f32 to ‖g‖ < 1e-3 (about
 * 20× the f32 rounding floor of the gradient at this n). Each timed run is one full solve;
 * the line it prints gives iterations, function / gradient / HVP counts and read-backs. The
 * machine-independent figure is the solve's time ÷ one gradient's (the group baseline).
 *
 * References (SciPy 1.17 on this machine, f64, hessp): Newton-CG 19 iterations / 74 HVPs,
 * trust-ncg 18 iterations / 91 HVPs (issue 5 quotes 20 and 18), f* = 225.867972174.
 *
 * Run: `XDG_RUNTIME_DIR=/tmp deno bench -A bench/optim_bench.ts`
 */
import {
  abs,
  type Device,
  device,
  exp,
  hvp,
  log1p,
  minimize,
  slice,
  sum,
  type Tensor,
  tensor,
  valueAndGrad,
} from "../mod.ts";

const N = 100_000;

function trajectory(dev: Device, dtype: "f32" | "f64") {
  const t = new Float64Array(N);
  for (let i = 0; i < N; i++) t[i] = Math.sin(0.1 * i) + 0.5 * Math.cos(0.37 * i);
  const target = tensor(t, { dtype, device: dev });
  return (x: Tensor) => {
    const d = slice(x, [2], [N]).sub(slice(x, [1], [N - 1]).mul(2)).add(slice(x, [0], [N - 2]));
    const a = abs(x.sub(target));
    return sum(d.square()).add(sum(a.add(log1p(exp(a.mul(-2)))).sub(Math.LN2)));
  };
}

const cpuDev = await device({ backend: "cpu" });
const auto = await device();
const gpuDev: Device | null = auto.kind === "webgpu" ? auto : null;
if (!gpuDev) console.warn("*** No WebGPU adapter: the WebGPU benchmarks are skipped ***");

const configs: [Device | null, "f32" | "f64", number][] = [
  [cpuDev, "f64", 1e-8],
  [gpuDev, "f32", 1e-3],
];
for (const [dev, dtype, gtol] of configs) {
  if (!dev) continue;
  const f = trajectory(dev, dtype);
  const x0 = tensor(new Float64Array(N), { dtype, device: dev });
  const v = tensor(new Float64Array(N).fill(1), { dtype, device: dev });
  const group = `trajectory-${dev.kind}-${dtype}`;
  Deno.bench({
    name: `one gradient (n = ${N})`,
    group,
    baseline: true,
    async fn() {
      const [y, g] = valueAndGrad(f)(x0);
      await g.data();
      y.dispose();
      g.dispose();
    },
  });
  Deno.bench({
    name: `one HVP (n = ${N})`,
    group,
    async fn() {
      const h = hvp(f, x0, v);
      await h.data();
      h.dispose();
    },
  });
  for (const method of ["newton-cg", "trust-ncg"] as const) {
    Deno.bench({
      name: `${method} to ‖g‖ < ${gtol}`,
      group,
      n: 1,
      warmup: 0,
      async fn(b) {
        const reads = dev.stats.readbacks;
        b.start();
        const t0 = performance.now();
        const r = await minimize(f, x0, { method, gtol });
        await r.x.data();
        const ms = performance.now() - t0;
        b.end();
        console.log(
          `  ${dev.kind} ${dtype} ${method}: ${r.iterations} iterations, nfev ${r.nfev}, ngev ${r.ngev}, ` +
            `nhvp ${r.nhvp}, read-backs ${dev.stats.readbacks - reads}, f ${
              r.fun.toPrecision(12)
            }, ` +
            `‖g‖ ${r.gradNorm.toExponential(2)}, ${(ms / 1000).toFixed(2)} s${
              r.converged ? "" : ` — NOT converged: ${r.message}`
            }`,
        );
        r.x.dispose();
        r.jac.dispose();
      },
    });
  }
}
