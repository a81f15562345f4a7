/**
 * Sparse-Hessian benchmarks on the grid (image-denoising) problem of
 * tests/sparse_objectives.ts, whose Hessian is a 5-point stencil:
 *
 * 1. `sparseHessian` time ÷ gradient time at n = 10⁴, 10⁵, 10⁶ (grids 100², 316², 1000²) on
 *    CPU f64 and WebGPU f32, with the colour count c (target ≤ c + 2). The colouring is
 *    reused (its recovery plan is cached with the pattern); each figure includes
 *    everything up to a computed result (`await H.values.ready()`).
 * 2. Detection (`hessianSparsity`) time ÷ gradient time (target ≤ 5, once per shape),
 *    and the star colouring's time beside it.
 * 3. `minimize(..., { method: "newton-sparse" })` at n = 10⁵ (316²), CPU f64, to
 *    ‖g‖ ≤ 1e-8, with CG preconditioned by IC(0) and by the diagonal: iterations and time, against SciPy's trust-krylov and Newton-CG with a
 *    hand-written `hessp` (bench/scipy_newton_sparse.py, run here with /usr/bin/python3).
 *
 * Run: `XDG_RUNTIME_DIR=/tmp deno bench -A bench/sparse_bench.ts`, or for the markdown tables
 * of bench/RESULTS.md (minimum times over repeats): `XDG_RUNTIME_DIR=/tmp deno run -A
 * bench/sparse_bench.ts --report [--reps 7] [--warmup 5] [--rounds 5] [--sizes 100,316,1000]
 * [--only ratio|newton]`.
 */
import {
  colorPattern,
  type Device,
  device,
  grad,
  hessianSparsity,
  minimize,
  sparseHessian,
  type Tensor,
  tensor,
} from "../mod.ts";
import { gridObjective, noisyImage } from "../tests/sparse_objectives.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const REPORT = Deno.args.includes("--report");
const ONLY = flag("only");
const REPS = Number(flag("reps") ?? 7);
const WARMUP = Number(flag("warmup") ?? 5);
const ROUNDS = Number(flag("rounds") ?? 5);
const SIDES = (flag("sizes") ?? "100,316,1000").split(",").map(Number);
const NEWTON_SIDE = 316;

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
  ...(gpuDev ? [{ name: "WebGPU f32", dev: gpuDev, dtype: "f32" as const }] : []),
];

/** The grid problem at side s, and a point away from its minimum (the noisy image itself). */
function grid(s: number, c: Config) {
  const yv = noisyImage(s, s);
  const y = tensor(yv, { dtype: c.dtype, device: c.dev, shape: [s, s] });
  const x = tensor(yv.map((v, i) => v + 0.1 * Math.sin(i)), { dtype: c.dtype, device: c.dev });
  return { f: gridObjective(s, s, y), x, dispose: () => (y.dispose(), x.dispose()) };
}

/** CPU time of this process (all threads: lavapipe's too), ms; null off Linux. */
function cpuNow(): number | null {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 10 ms ticks
  } catch {
    return null;
  }
}

/**
 * Cost of one call of `fn`: CPU time per call over repeats totalling ≥ 1 s of CPU (the
 * machine is shared; CPU time does not count the time other processes hold the cores,
 * so its ratios are stable where wall-clock minima are not) and the minimum wall time
 * of those calls.
 */
interface Cost {
  cpu: number;
  wall: number;
}

async function cost(fn: () => Promise<void>): Promise<Cost> {
  let wall = Infinity, calls = 0;
  const c0 = cpuNow(), t0 = performance.now();
  while (calls < REPS || (cpuNow() ?? performance.now()) - (c0 ?? t0) < 1000) {
    const t = performance.now();
    await fn();
    wall = Math.min(wall, performance.now() - t);
    calls++;
  }
  const c1 = cpuNow();
  return { cpu: c0 === null ? wall : (c1! - c0) / calls, wall };
}

const gradOnce = (f: (x: Tensor) => Tensor, x: Tensor) => async () => {
  const g = grad(f)(x);
  await g.ready();
  g.dispose();
};

if (!REPORT) {
  for (const c of CONFIGS) {
    for (const s of SIDES) {
      const { f, x } = grid(s, c);
      const coloring = colorPattern(hessianSparsity(f, x), { kind: "star" });
      const group = `${c.name} n=${s * s}`;
      Deno.bench({ name: "gradient", group, baseline: true, n: 5, warmup: 1 }, async () => {
        await gradOnce(f, x)();
      });
      Deno.bench(
        { name: `sparseHessian (${coloring.count} colours)`, group, n: 5, warmup: 1 },
        async () => {
          const H = sparseHessian(f, x, { coloring });
          await H.values.ready();
          H.dispose();
        },
      );
      Deno.bench({ name: "hessianSparsity", group, n: 3, warmup: 1 }, () => {
        hessianSparsity(f, x);
      });
    }
  }
} else {
  console.log(`machine load: ${Deno.loadavg().map((v) => v.toFixed(2)).join(", ")}`);
  if (ONLY !== "newton") {
    console.log(
      `\n| backend | n | colours | gradient ms (CPU / wall) | sparseHessian ms (CPU / wall) | sparse ÷ gradient, CPU: median of ${ROUNDS} rounds (range) | detection ms (CPU) | detection ÷ gradient, CPU: median (range) | colouring ms (CPU) |`,
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const c of CONFIGS) {
      for (const s of SIDES) {
        const { f, x, dispose } = grid(s, c);
        const pattern = hessianSparsity(f, x);
        const coloring = colorPattern(pattern, { kind: "star" });
        const tc = (await cost(() =>
          Promise.resolve(void colorPattern(pattern, { kind: "star" }))
        )).cpu;
        // warm-up: the CPU backend's generated loops reach V8's optimising tier only after
        // several calls (a cold sparse Hessian at n = 10⁴ takes 100× a warm one)
        for (let w = 0; w < WARMUP; w++) {
          await gradOnce(f, x)();
          const warm = sparseHessian(f, x, { coloring });
          await warm.values.ready();
          warm.dispose();
        }
        // rounds of gradient, Hessian and detection side by side: each ratio is taken within
        // a round (one load), and the median over rounds is reported with its range
        const rounds: { g: Cost; h: Cost; d: Cost }[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          const g = await cost(gradOnce(f, x));
          const h = await cost(async () => {
            const H = sparseHessian(f, x, { coloring });
            await H.values.ready();
            H.dispose();
          });
          const d = await cost(() => Promise.resolve(void hessianSparsity(f, x)));
          rounds.push({ g, h, d });
        }
        const mid = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
        const spread = (v: number[]) =>
          `**${mid(v).toFixed(2)}** (${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})`;
        const hg = rounds.map((r) => r.h.cpu / r.g.cpu), dg = rounds.map((r) => r.d.cpu / r.g.cpu);
        const { g, h } = rounds[rounds.length >> 1];
        console.log(
          `| ${c.name} | ${s * s} | ${coloring.count} | ${
            mid(rounds.map((r) => r.g.cpu)).toFixed(1)
          } / ${g.wall.toFixed(1)} | ${mid(rounds.map((r) => r.h.cpu)).toFixed(1)} / ${
            h.wall.toFixed(1)
          } | ${spread(hg)} (≤ ${coloring.count + 2}) | ${
            mid(rounds.map((r) => r.d.cpu)).toFixed(0)
          } | ${spread(dg)} | ${tc.toFixed(0)} |`,
        );
        dispose();
      }
    }
  }
  if (ONLY !== "ratio") {
    const c = CONFIGS[0];
    const s = NEWTON_SIDE;
    const { f, dispose } = grid(s, c);
    const x0 = tensor(noisyImage(s, s), { dtype: "f64", device: cpuDev });
    hessianSparsity(f, x0); // not timed below: detection happens once per shape (cached)
    interface Run {
      ms: number;
      cpu: number;
      it: number;
      nhvp: number;
      ngev: number;
      g: number;
      fun: number;
      cg: number;
    }
    const PRECONDITIONERS = [
      ["incomplete-cholesky", "IC(0)-PCG"],
      ["jacobi", "Jacobi-PCG"],
    ] as const;
    const best = new Map<string, Run>();
    // best of 3 by CPU time, the preconditioners alternating (same load for both)
    for (let r = 0; r < 3; r++) {
      for (const [pre] of PRECONDITIONERS) {
        let cg = 0;
        const t0 = performance.now(), c0 = cpuNow();
        const res = await minimize(f, x0, {
          method: "newton-sparse",
          gtol: 1e-8,
          sparsePreconditioner: pre,
          onIteration: (i) => void (cg += i.cgIterations ?? 0),
        });
        const ms = performance.now() - t0, cpu = c0 === null ? ms : cpuNow()! - c0;
        if (!best.has(pre) || cpu < best.get(pre)!.cpu) {
          best.set(pre, {
            ms,
            cpu,
            it: res.iterations,
            nhvp: res.nhvp,
            ngev: res.ngev,
            g: res.gradNorm,
            fun: res.fun,
            cg,
          });
        }
        res.x.dispose();
      }
    }
    const py = new Deno.Command("/usr/bin/python3", {
      args: [new URL("./scipy_newton_sparse.py", import.meta.url).pathname, String(s)],
      stdout: "piped",
    });
    const out = new TextDecoder().decode((await py.output()).stdout).trim().split("\n");
    console.log(`\nnewton-sparse vs SciPy at n = ${s * s} (CPU, f64), to ‖g‖ ≤ 1e-8\n`);
    console.log(
      "| method | iterations | f evals | gradients | HVPs | CG iterations | CPU s | wall s | final ‖g‖ | f |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const [pre, label] of PRECONDITIONERS) {
      const b = best.get(pre)!;
      console.log(
        `| curvature newton-sparse (${label}) | ${b.it} | — | ${b.ngev} | ${b.nhvp} | ${b.cg} | ${
          (b.cpu / 1000).toFixed(2)
        } | ${(b.ms / 1000).toFixed(2)} | ${b.g.toExponential(2)} | ${b.fun.toFixed(9)} |`,
      );
    }
    for (const line of out) {
      const r = JSON.parse(line);
      console.log(
        `| SciPy ${r.method} (hessp by hand) | ${r.nit} | ${r.nfev} | ${r.njev} | ${r.nhev} | — | ${
          r.cpuSeconds.toFixed(2)
        } | ${r.seconds.toFixed(2)} | ${r.gradNorm.toExponential(2)} | ${r.fun.toFixed(9)} |`,
      );
    }
    x0.dispose();
    dispose();
  }
}
