/**
 * Banded-Hessian benchmarks on the trajectory benchmark of issue 4, exactly:
 *
 *   f(x) = Σ_{i=1}^{n−2} (x[i+1] − 2x[i] + x[i−1])² + Σ_{i=0}^{n−1} log cosh(x[i] − t[i]),
 *   t[i] = sin(0.1 i) + 0.5 cos(0.37 i),  x0 = 0,  b = 2  (log cosh: the library's `logcosh`).
 *
 * 1. `bandedHessian` time ÷ gradient time at n = 10^4, 10^5, 10^6 on CPU f64, CPU f32 and
 *    WebGPU f32 (the direct method: 5 comb probes in one batched forward-over-reverse pass).
 *    Target ≤ 4; PyTorch 1.13 (CPU, f64) needs 16 ms for the 5-probe band at n = 10^5
 *    against 3.3 ms for one gradient, about 5 gradients' time. Both are timed at the same
 *    point (x[i] = sin i) and include everything up to a completed result: on WebGPU
 *    `await t.ready()` runs the deferred kernels and waits for them.
 * 2. Newton (`minimize(f, x0, { method: "newton-banded", bandwidth: 2 })`) at n = 10^5 from
 *    x0 = 0: f64 on the CPU to ‖g‖ < 1e-8 (target ≤ 7 iterations; reference wall time
 *    0.28 s for PyTorch's comb-probe band + SciPy's banded Cholesky on the issue's
 *    machine); f32 on both backends until f stops decreasing (gtol = 0: the rounding floor).
 *
 * (solveBanded alone: bench/banded_solve_bench.ts.)
 *
 * Run: `XDG_RUNTIME_DIR=/tmp deno bench -A bench/banded_bench.ts`, or for markdown tables
 * from repeated runs (minimum times): `XDG_RUNTIME_DIR=/tmp deno run -A bench/banded_bench.ts
 * --report [--reps 7] [--sizes 10000,100000,1000000] [--only ratio|newton]`.
 */
import {
  bandedHessian,
  type Device,
  device,
  grad,
  logcosh,
  minimize,
  type MinimizeResult,
  slice,
  square,
  sum,
  type Tensor,
  tensor,
} from "../mod.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const REPORT = Deno.args.includes("--report");
/** `--only ratio` or `--only newton`: one of the two report tables. */
const ONLY = flag("only");
const REPS = Number(flag("reps") ?? 7);
const SIZES = (flag("sizes") ?? "10000,100000,1000000").split(",").map(Number);
const NEWTON_N = 100_000;
const B = 2;

const cpuDev = await device({ backend: "cpu" });
const auto = await device();
const gpuDev: Device | null = auto.kind === "webgpu" ? auto : null;
if (!gpuDev) console.warn("*** No WebGPU adapter: the WebGPU benchmarks are skipped ***");

interface Config {
  name: string;
  dev: Device;
  dtype: "f32" | "f64";
}
const CONFIGS: Config[] = [
  { name: "CPU f64", dev: cpuDev, dtype: "f64" },
  { name: "CPU f32", dev: cpuDev, dtype: "f32" },
  ...(gpuDev ? [{ name: "WebGPU f32", dev: gpuDev, dtype: "f32" as const }] : []),
];

/** The trajectory benchmark at size n on one device and dtype. */
function trajectory(n: number, c: Config) {
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = Math.sin(0.1 * i) + 0.5 * Math.cos(0.37 * i);
  const target = tensor(t, { dtype: c.dtype, device: c.dev });
  const f = (x: Tensor) => {
    const d2 = slice(x, [2], [n]).sub(slice(x, [1], [n - 1]).mul(2)).add(slice(x, [0], [n - 2]));
    return sum(square(d2)).add(sum(logcosh(x.sub(target))));
  };
  return { f, target };
}

/** A point away from the minimum, the same on every backend: x[i] = sin i. */
function point(n: number, c: Config): Tensor {
  return tensor(Float64Array.from({ length: n }, (_, i) => Math.sin(i)), {
    dtype: c.dtype,
    device: c.dev,
  });
}

/** One gradient, completed. Returns milliseconds. */
async function timeGrad(f: (x: Tensor) => Tensor, x: Tensor): Promise<number> {
  const t0 = performance.now();
  const g = grad(f)(x) as Tensor;
  await g.ready();
  const ms = performance.now() - t0;
  g.dispose();
  return ms;
}

/** One band (direct, 2b+1 = 5 probes), completed. Returns milliseconds. */
async function timeBand(f: (x: Tensor) => Tensor, x: Tensor): Promise<number> {
  const t0 = performance.now();
  const h = bandedHessian(f, x, { bandwidth: B });
  await h.data.ready();
  const ms = performance.now() - t0;
  h.dispose();
  return ms;
}

/** Newton from x0 = 0 at n = NEWTON_N. */
async function newton(c: Config): Promise<{ r: MinimizeResult; ms: number }> {
  const { f, target } = trajectory(NEWTON_N, c);
  const x0 = tensor(new Float64Array(NEWTON_N), { dtype: c.dtype, device: c.dev });
  await c.dev.sync();
  const t0 = performance.now();
  const r = await minimize(f, x0, {
    method: "newton-banded",
    bandwidth: B,
    gtol: c.dtype === "f64" ? 1e-8 : 0,
    maxIter: 50,
  });
  await r.x.ready();
  const ms = performance.now() - t0;
  r.x.dispose();
  r.jac.dispose();
  x0.dispose();
  target.dispose();
  return { r, ms };
}

if (REPORT) {
  const uptime = await Deno.readTextFile("/proc/loadavg").catch(() => "?");
  console.log(
    `# Banded Hessians on the trajectory benchmark\n\nDevices: ${cpuDev.description}; ${
      gpuDev?.description ?? "no WebGPU adapter"
    }. Load average at start: ${uptime.split(" ").slice(0, 3).join(" ")}. ` +
      `Times are minima over ${REPS} interleaved runs after a warm-up run.\n`,
  );
  if (ONLY !== "newton") await ratioTable();
  if (ONLY !== "ratio") await newtonTable();
  console.log(
    "\nReference (issue 4, PyTorch 1.13 + SciPy, f64 CPU): band ÷ gradient ≈ 5 at n = 10^5; " +
      "Newton 0.28 s; f* = 225.867972174.",
  );
}

async function ratioTable() {
  console.log("## bandedHessian (direct, 5 probes) ÷ one gradient\n");
  console.log("| backend | n | gradient (ms) | band (ms) | band ÷ gradient |");
  console.log("|---|---:|---:|---:|---:|");
  for (const c of CONFIGS) {
    for (const n of SIZES) {
      const { f, target } = trajectory(n, c);
      const x = point(n, c);
      // warm up (compiles pipelines, fills the CPU array pool), then interleave the two
      await timeGrad(f, x);
      await timeBand(f, x);
      let g = Infinity, h = Infinity;
      for (let r = 0; r < REPS; r++) {
        g = Math.min(g, await timeGrad(f, x));
        h = Math.min(h, await timeBand(f, x));
      }
      console.log(
        `| ${c.name} | ${n.toExponential(0).replace("e+", "e")} | ${g.toFixed(2)} | ${
          h.toFixed(2)
        } | ${(h / g).toFixed(2)} |`,
      );
      x.dispose();
      target.dispose();
    }
  }
}

async function newtonTable() {
  console.log(`\n## Newton (newton-banded, b = 2) at n = 10^5 from x0 = 0\n`);
  console.log("| backend | gtol | iterations | wall time (s) | final ‖g‖ | final f | stopped |");
  console.log("|---|---:|---:|---:|---:|---:|---|");
  for (const c of CONFIGS) {
    await newton(c); // warm-up
    let best: { r: MinimizeResult; ms: number } | null = null;
    for (let r = 0; r < Math.max(3, Math.ceil(REPS / 2)); r++) {
      const run = await newton(c);
      if (!best || run.ms < best.ms) best = run;
    }
    const { r, ms } = best!;
    console.log(
      `| ${c.name} | ${c.dtype === "f64" ? "1e-8" : "0"} | ${r.iterations} | ${
        (ms / 1000).toFixed(3)
      } | ${r.gradNorm.toExponential(2)} | ${r.fun.toPrecision(12)} | ${
        r.message.replace(/ \(.*\)/, "")
      } |`,
    );
  }
}

if (!REPORT) {
  for (const c of CONFIGS) {
    for (const n of SIZES) {
      const { f } = trajectory(n, c);
      const x = point(n, c);
      const group = `${c.name} n=${n}`;
      Deno.bench({
        name: `${c.name} gradient n=${n}`,
        group,
        baseline: true,
        async fn(b) {
          b.start();
          const g = grad(f)(x) as Tensor;
          await g.ready();
          b.end();
          g.dispose();
        },
      });
      Deno.bench({
        name: `${c.name} bandedHessian b=2 (5 probes) n=${n}`,
        group,
        async fn(b) {
          b.start();
          const h = bandedHessian(f, x, { bandwidth: B });
          await h.data.ready();
          b.end();
          h.dispose();
        },
      });
    }
    Deno.bench({
      name: `${c.name} newton-banded trajectory n=1e5 (gtol ${c.dtype === "f64" ? "1e-8" : "0"})`,
      group: "newton",
      n: 3,
      warmup: 1,
      async fn(b) {
        b.start();
        const { r } = await newton(c);
        b.end();
        if (c.dtype === "f64" && !(r.converged && r.iterations <= 7)) {
          throw new Error(`newton-banded f64: ${r.message} after ${r.iterations} iterations`);
        }
      },
    });
  }
}
