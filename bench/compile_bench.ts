/**
 * Compiled programs and the expression compiler (issue 12). CPU figures are CPU time of
 * this process (user + system), which a busy shared machine disturbs far less than wall
 * time; ratios are taken side by side in one run.
 *
 * 1. Per-call overhead: the gradient of a 10-element function (extended Rosenbrock),
 *    un-jitted and jitted, µs per call over 1,000 calls. `--baseline <mod.ts>` imports
 *    another checkout (e.g. the commit before this work) and times it in the same run.
 * 2. The trajectory band (bench/banded_bench.ts's problem, b = 2, five comb probes) at
 *    n = 10^4 … 10^6, f64 and f32: `bandedHessian` called again directly (its programs kept
 *    across calls, src/ad/auto_jit.ts), with that cache off, and jitted, against a
 *    hand-written JavaScript loop computing the same five products (the floor), one
 *    gradient, and the `--baseline` checkout's direct and jitted band; then the cost per call
 *    at n = 10 and 100.
 * 3. The demo problem (examples/trajectory_problem.ts's penalty form, bandwidth 4) at 256,
 *    1,024 and 4,096 points: `minimize(…, { method: "newton-banded" })` to the demo's
 *    tolerance, time per Newton iteration and for the whole solve (IPOPT 3.11.9 needs
 *    0.05 s for the 256-point problem on this machine, per the issue).
 * 4. Extended Rosenbrock at n = 10^6: gradient and HVP against SciPy's closed forms
 *    `rosen_der` and `rosen_hess_prod`, written here in JavaScript.
 * 5. Cold and warm: the first call of each (tracing, lowering, compiling) against later ones.
 *
 *   XDG_RUNTIME_DIR=/tmp deno run -A bench/compile_bench.ts [--only overhead|band|demo|rosen]
 *     [--baseline /path/to/other/mod.ts] [--reps 7]
 */
import process from "node:process";
import * as lib from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { BANDWIDTH, trajectoryProblem } from "../examples/trajectory_problem.ts";
import * as autoJit from "../src/ad/auto_jit.ts";

type Lib = typeof lib;
const { bandedHessian, device, grad, hvp, jit, tensor } = lib;

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const ONLY = flag("only");
const REPS = Number(flag("reps") ?? 7);
const BASELINE = flag("baseline");

const cpuDev = await device({ backend: "cpu" });
/** The other checkout (`--baseline`), with its copy of the demo problem. */
const base = BASELINE
  ? {
    lib: await import(BASELINE) as Lib,
    // null when the other checkout predates the demo problem (then no demo comparison)
    problem: (await import(
      new URL("examples/trajectory_problem.ts", new URL(BASELINE, `file://${Deno.cwd()}/`)).href
    ).catch(() => null)) as { trajectoryProblem: typeof trajectoryProblem } | null,
  }
  : null;
const baseDev = base ? await base.lib.device({ backend: "cpu" }) : null;

/** CPU milliseconds of one call of fn (user + system time of this process). */
function cpuMs(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/**
 * The minimum CPU time of each of `fns` over `reps` rounds, the functions interleaved within
 * a round so that a burst of load on the shared machine does not fall on one of them only.
 */
function bestOf<K extends string>(fns: Record<K, () => void>, reps = REPS): Record<K, number> {
  const out = {} as Record<K, number>;
  const keys = Object.keys(fns) as K[];
  for (const k of keys) out[k] = Infinity;
  for (let r = 0; r < reps; r++) {
    for (const k of keys) out[k] = Math.min(out[k], cpuMs(fns[k]));
  }
  return out;
}

const fmt = (v: number, d = 2) => (v >= 100 ? v.toFixed(0) : v.toFixed(d));

// ---------- 1. per-call overhead ----------

function rosen(m: Lib) {
  return (x: Tensor) => {
    const n = x.size;
    const a = m.slice(x, [1], [n]), b = m.slice(x, [0], [n - 1]);
    return m.sum(m.square(a.sub(b.square())).mul(100)).add(m.sum(m.square(b.neg().add(1))));
  };
}

function overhead(): void {
  const libs: [string, Lib][] = [["this checkout", lib]];
  if (base) libs.unshift(["baseline", base.lib]);
  const calls = 1000;
  const rows: string[] = [];
  const ROUNDS = 15;
  const results: Record<string, number> = {};
  // cold start (issue 12 item 7): the first call of each in this process (wall ms), before
  // anything else has run this code; then the second
  const first: string[] = [];
  for (const [name, m] of libs) {
    const x = m.tensor(Float64Array.from({ length: 10 }, (_, i) => Math.sin(i)), { dtype: "f64" });
    const kinds: [string, (x: Tensor) => Tensor][] = [["grad", m.grad(rosen(m))]];
    if ("jit" in m) kinds.push(["jit(grad)", m.jit(m.grad(rosen(m)))]);
    for (const [k, g] of kinds) {
      const t0 = performance.now();
      const c1 = cpuMs(() => g(x).dispose());
      const t1 = performance.now();
      const c2 = cpuMs(() => g(x).dispose());
      first.push(`| ${name} ${k} | ${fmt(c1)} | ${fmt(t1 - t0)} | ${fmt(c2, 3)} |`);
    }
    x.dispose();
  }
  // the calls interleaved by rounds of 1,000 (a burst of load falls on all of them alike)
  const xs: Tensor[] = [];
  const fns: Record<string, () => void> = {};
  for (const [name, m] of libs) {
    const x = m.tensor(Float64Array.from({ length: 10 }, (_, i) => Math.sin(i)), {
      dtype: "f64",
    });
    xs.push(x);
    const plain = m.grad(rosen(m)) as (x: Tensor) => Tensor;
    fns[`${name} grad`] = () => {
      for (let i = 0; i < calls; i++) plain(x).dispose();
    };
    if ("jit" in m) {
      const jg = m.jit(m.grad(rosen(m))) as (x: Tensor) => Tensor;
      fns[`${name} jit(grad)`] = () => {
        for (let i = 0; i < calls; i++) jg(x).dispose();
      };
    }
  }
  for (const [k, ms] of Object.entries(bestOf(fns, ROUNDS))) results[k] = ms * 1000 / calls;
  for (const x of xs) x.dispose();
  for (const [k, v] of Object.entries(results)) rows.push(`| ${k} | ${fmt(v, 1)} |`);
  console.log("\n## Per-call overhead: gradient of a 10-element function, CPU f64\n");
  console.log(
    `| call | µs per call (CPU time, min of ${ROUNDS} interleaved rounds × 1,000 calls) |\n` +
      "| --- | --: |",
  );
  console.log(rows.join("\n"));
  console.log(
    "\n| cold start | first call ms (CPU) | first call ms (wall) | second call ms (CPU) |\n" +
      "| --- | --: | --: | --: |",
  );
  console.log(first.join("\n"));
  if (BASELINE) {
    console.log(
      `\nun-jitted ÷ baseline: ${fmt(results["this checkout grad"] / results["baseline grad"])}`,
    );
  }
}

// ---------- 2. the trajectory band ----------

function trajectory(n: number, dtype: "f32" | "f64", m: Lib = lib, dev = cpuDev) {
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = Math.sin(0.1 * i) + 0.5 * Math.cos(0.37 * i);
  const target = m.tensor(t, { dtype, device: dev });
  const f = (x: Tensor) => {
    const d2 = m.slice(x, [2], [n]).sub(m.slice(x, [1], [n - 1]).mul(2))
      .add(m.slice(x, [0], [n - 2]));
    return m.sum(m.square(d2)).add(m.sum(m.logcosh(x.sub(target))));
  };
  return { f, t, target };
}

/**
 * The floor: row r of H = 2 D2ᵀD2 + diag(sech²(x − t)) has its 5 entries at columns r−2 …
 * r+2 (2, −8, 12, −8, 2 inside), and the entry in column c is row r of product (c mod 5).
 */
function handBand(xs: ArrayLike<number>, t: Float64Array, out: Float64Array | Float32Array): void {
  const n = t.length;
  const w = [1, -2, 1];
  const dtd = (r: number, c: number) => {
    let s = 0;
    for (let j = Math.max(0, r - 2, c - 2); j <= Math.min(n - 3, r, c); j++) {
      s += w[r - j] * w[c - j];
    }
    return 2 * s;
  };
  let k = 3; // (r − 2) mod 5 at r = 0
  for (let r = 0; r < n; r++) {
    const ch = Math.cosh(xs[r] - t[r]);
    const s2 = 1 / (ch * ch);
    let kc = k;
    if (r >= 2 && r < n - 2) {
      out[kc * n + r] = 2;
      kc = kc === 4 ? 0 : kc + 1;
      out[kc * n + r] = -8;
      kc = kc === 4 ? 0 : kc + 1;
      out[kc * n + r] = 12 + s2;
      kc = kc === 4 ? 0 : kc + 1;
      out[kc * n + r] = -8;
      kc = kc === 4 ? 0 : kc + 1;
      out[kc * n + r] = 2;
    } else {
      for (let d = -2; d <= 2; d++) {
        const c = r + d;
        const h = c < 0 || c >= n ? 0 : dtd(r, c);
        out[kc * n + r] = d === 0 ? h + s2 : h;
        kc = kc === 4 ? 0 : kc + 1;
      }
    }
    k = k === 4 ? 0 : k + 1;
  }
}

/** Milliseconds of CPU per call of each variant, as `bestOf`, for `calls` calls per round. */
function perCall<K extends string>(fns: Record<K, () => void>, calls: number): Record<K, number> {
  const each = {} as Record<K, () => void>;
  for (const k of Object.keys(fns) as K[]) {
    each[k] = () => {
      for (let i = 0; i < calls; i++) fns[k]();
    };
  }
  const t = bestOf(each);
  for (const k of Object.keys(t) as K[]) t[k] /= calls;
  return t;
}

/**
 * One size of the band: the floor, `bandedHessian` called directly (its programs kept
 * across calls by a record of f's run, src/ad/auto_jit.ts), the same with that cache off (a
 * trace every call), `jit` of it, one gradient, and the baseline checkout's direct and
 * jitted band, each timed over `calls` calls per round.
 */
function bandRow(dtype: "f32" | "f64", n: number, calls: number) {
  const { autoJitConfig } = autoJit;
  const { f, t, target } = trajectory(n, dtype);
  const xs = Float64Array.from({ length: n }, (_, i) => Math.sin(i));
  const x = tensor(xs, { dtype, device: cpuDev });
  const xv = dtype === "f32" ? Float32Array.from(xs) : xs;
  const out = dtype === "f32" ? new Float32Array(5 * n) : new Float64Array(5 * n);
  // the floor agrees with the library's band (lower storage: diagonal and first subdiagonal)
  // each variant ends by reading the band into one reused array, as the floor writes one
  const back = dtype === "f32" ? new Float32Array(3 * n) : new Float64Array(3 * n);
  const run = () => {
    const H = bandedHessian(f, x, { bandwidth: 2, layout: "lower" });
    H.data.dataSync(back);
    return H;
  };
  const cold = cpuMs(() => run().dispose());
  handBand(xv, t, out);
  const H = run();
  const ab = H.data.dataSync();
  H.dispose();
  let err = 0;
  for (let r = 0; r < n; r++) {
    err = Math.max(err, Math.abs(out[(r % 5) * n + r] - ab[r]));
    if (r + 1 < n) err = Math.max(err, Math.abs(out[((r + 1) % 5) * n + r] - ab[n + r]));
  }
  if (err > (dtype === "f64" ? 1e-9 : 1e-3)) throw new Error(`floor and band differ by ${err}`);
  const jband = jit((y: Tensor) => bandedHessian(f, y, { bandwidth: 2, layout: "lower" }).data);
  const gBack = dtype === "f32" ? new Float32Array(n) : new Float64Array(n);
  // the baseline's direct and jitted band, when there is one
  const old = base && baseDev ? trajectory(n, dtype, base.lib, baseDev) : null;
  const oldX = old ? base!.lib.tensor(xs, { dtype, device: baseDev! }) : null;
  const oldBand = old
    ? base!.lib.jit((y: Tensor) =>
      base!.lib.bandedHessian(old.f, y, { bandwidth: 2, layout: "lower" }).data
    )
    : null;
  const hits = autoJit.autoJitStats.hits;
  const r = perCall({
    floor: () => handBand(xv, t, out),
    band: () => run().dispose(),
    off: () => {
      autoJitConfig.enabled = false;
      run().dispose();
      autoJitConfig.enabled = true;
    },
    jit: () => {
      const d = jband(x);
      d.dataSync(back);
      d.dispose();
    },
    grad: () => {
      const g = grad(f)(x);
      g.dataSync(gBack);
      g.dispose();
    },
    baseBand: () => {
      if (!old) return;
      const h = base!.lib.bandedHessian(old.f, oldX!, { bandwidth: 2, layout: "lower" });
      h.data.dataSync(back);
      h.dispose();
    },
    baseJit: () => {
      if (!oldBand) return;
      const d = oldBand(oldX!);
      d.dataSync(back);
      d.dispose();
    },
  }, calls);
  if (autoJit.autoJitStats.hits === hits) throw new Error("the direct band never replayed");
  x.dispose();
  target.dispose();
  oldX?.dispose();
  old?.target.dispose();
  return { ...r, cold };
}

function band(): void {
  console.log("\n## Trajectory band (b = 2, five comb probes), CPU\n");
  console.log(
    "band = `bandedHessian(f, x)` called again (programs kept by a record of f's run, src/ad/auto_jit.ts); off = the " +
      "same with that cache off; jit = `jit(x ↦ bandedHessian(f, x).data)`; base = the " +
      "`--baseline` checkout's direct band / jitted band.\n",
  );
  console.log(
    "| dtype | n | floor ms | band ms | off ms | jit ms | gradient ms | base band ms | band ÷ floor | off ÷ floor | jit ÷ floor | base band ÷ floor | base jit ÷ floor | band ÷ base band | band ÷ gradient | cold band ms |" +
      "\n| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
  );
  for (const dtype of ["f64", "f32"] as const) {
    for (const n of [10_000, 100_000, 1_000_000]) {
      const r = bandRow(dtype, n, 1);
      const b = base ? fmt(r.baseBand) : "";
      const q = (v: number) => (base ? fmt(v) : "");
      console.log(
        `| ${dtype} | ${n} | ${fmt(r.floor)} | ${fmt(r.band)} | ${fmt(r.off)} | ${fmt(r.jit)} | ${
          fmt(r.grad)
        } | ${b} | ${fmt(r.band / r.floor)} | ${fmt(r.off / r.floor)} | ${fmt(r.jit / r.floor)} | ${
          q(r.baseBand / r.floor)
        } | ${q(r.baseJit / r.floor)} | ${q(r.band / r.baseBand)} | ${fmt(r.band / r.grad)} | ${
          fmt(r.cold)
        } |`,
      );
    }
  }
  console.log("\n### Per call at small n (µs per call, 200 calls per round)\n");
  console.log(
    "| dtype | n | floor µs | band µs | off µs | jit µs | base band µs | base jit µs | band ÷ base band | band ÷ off |" +
      "\n| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
  );
  for (const dtype of ["f64", "f32"] as const) {
    for (const n of [10, 100]) {
      const r = bandRow(dtype, n, 200);
      const us = (v: number) => fmt(1000 * v, 1);
      console.log(
        `| ${dtype} | ${n} | ${us(r.floor)} | ${us(r.band)} | ${us(r.off)} | ${us(r.jit)} | ${
          base ? us(r.baseBand) : ""
        } | ${base ? us(r.baseJit) : ""} | ${base ? fmt(r.band / r.baseBand) : ""} | ${
          fmt(r.band / r.off)
        } |`,
      );
    }
  }
}

// ---------- 3. the demo problem ----------

async function demoTable(): Promise<void> {
  console.log("\n## The demo problem (newton-banded, bandwidth 4, CPU f64)\n");
  console.log(
    "| points | iterations | f | ms per iteration (min) | whole solve ms (min, CPU) | cold solve ms (wall) | jit(f): ms per iteration |" +
      (base ? " baseline iterations | baseline ms per iteration | ÷ baseline |" : "") +
      "\n| --: | --: | --: | --: | --: | --: | --: |" + (base ? " --: | --: | --: |" : ""),
  );
  for (const N of [256, 1024, 4096]) {
    /** A solve with a library and its copy of the problem (CPU time, ms). */
    const solver = (m: Lib, problem: typeof trajectoryProblem, dev: typeof cpuDev) => {
      const d = problem(N, { weighting: "scaled", dtype: "f64", device: dev });
      // f as a function jit returned: minimize keeps its compiled passes between calls
      const jitted = m.jit(d.penalty);
      const solve = async (reuse = false) => {
        const x0 = m.tensor(d.init, { dtype: "f64", device: dev });
        const c0 = process.cpuUsage();
        // the demo's settings (deno task demo --points N --backend cpu)
        const r = await m.minimize(reuse ? jitted : d.penalty, x0, {
          method: "newton-banded",
          bandwidth: BANDWIDTH,
          gtol: 1e-7,
          maxIter: 100,
        });
        const c = process.cpuUsage(c0);
        r.x.dispose();
        x0.dispose();
        return { r, ms: (c.user + c.system) / 1000 };
      };
      return { d, solve };
    };
    const now = solver(lib, trajectoryProblem, cpuDev);
    const old = base?.problem ? solver(base.lib, base.problem.trajectoryProblem, baseDev!) : null;
    const t0 = performance.now();
    const first = await now.solve();
    const cold = performance.now() - t0;
    const oldFirst = old ? await old.solve() : null;
    let bestMs = Infinity, oldMs = Infinity, jitMs = Infinity;
    await now.solve(true); // the jitted f's first call traces its passes
    for (let k = 0; k < Math.max(3, REPS); k++) {
      bestMs = Math.min(bestMs, (await now.solve()).ms);
      if (old) oldMs = Math.min(oldMs, (await old.solve()).ms);
      jitMs = Math.min(jitMs, (await now.solve(true)).ms);
    }
    const perIt = bestMs / first.r.iterations;
    console.log(
      `| ${N} | ${first.r.iterations} | ${first.r.fun.toPrecision(9)} | ${fmt(perIt)} | ${
        fmt(bestMs)
      } | ${fmt(cold)} | ${fmt(jitMs / first.r.iterations)} |${
        oldFirst
          ? ` ${oldFirst.r.iterations} | ${fmt(oldMs / oldFirst.r.iterations)} | ${
            fmt(perIt / (oldMs / oldFirst.r.iterations))
          } |`
          : ""
      }`,
    );
    now.d.dispose();
    old?.d.dispose();
  }
}

// ---------- 4. Rosenbrock against SciPy's closed forms ----------

/** scipy.optimize.rosen_der. */
function rosenDer(x: Float64Array, out: Float64Array): void {
  const n = x.length;
  out[0] = -400 * x[0] * (x[1] - x[0] * x[0]) - 2 * (1 - x[0]);
  for (let i = 1; i < n - 1; i++) {
    const xm = x[i], xp = x[i - 1], xn = x[i + 1];
    out[i] = 200 * (xm - xp * xp) - 400 * (xn - xm * xm) * xm - 2 * (1 - xm);
  }
  out[n - 1] = 200 * (x[n - 1] - x[n - 2] * x[n - 2]);
}

/** scipy.optimize.rosen_hess_prod. */
function rosenHessProd(x: Float64Array, p: Float64Array, out: Float64Array): void {
  const n = x.length;
  out[0] = (1200 * x[0] * x[0] - 400 * x[1] + 2) * p[0] - 400 * x[0] * p[1];
  for (let i = 1; i < n - 1; i++) {
    out[i] = -400 * x[i - 1] * p[i - 1] +
      (202 + 1200 * x[i] * x[i] - 400 * x[i + 1]) * p[i] - 400 * x[i] * p[i + 1];
  }
  out[n - 1] = -400 * x[n - 2] * p[n - 2] + 200 * p[n - 1];
}

function rosenTable(): void {
  const n = 1_000_000;
  const xs = Float64Array.from({ length: n }, (_, i) => Math.sin(i));
  const ps = Float64Array.from({ length: n }, (_, i) => Math.cos(i));
  const x = tensor(xs, { dtype: "f64", device: cpuDev }),
    p = tensor(ps, { dtype: "f64", device: cpuDev });
  const f = rosen(lib);
  const out = new Float64Array(n);
  const g = grad(f)(x).dataSync();
  rosenDer(xs, out);
  let err = 0;
  for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(g[i] - out[i]) / (1 + Math.abs(out[i])));
  const hv = hvp(f, x, p).dataSync();
  rosenHessProd(xs, ps, out);
  for (let i = 0; i < n; i++) {
    err = Math.max(err, Math.abs(hv[i] - out[i]) / (1 + Math.abs(out[i])));
  }
  if (err > 1e-9) throw new Error(`closed forms and autodiff differ by ${err}`);
  const jg = jit(grad(f)), jh = jit((y: Tensor, v: Tensor) => hvp(f, y, v));
  const { tDer, tHp, tG, tJg, tH, tJh } = bestOf({
    tDer: () => rosenDer(xs, out),
    tHp: () => rosenHessProd(xs, ps, out),
    tG: () => grad(f)(x).dispose(),
    tJg: () => jg(x).dispose(),
    tH: () => hvp(f, x, p).dispose(),
    tJh: () => jh(x, p).dispose(),
  }, 4 * REPS);
  console.log("\n## Extended Rosenbrock, n = 10⁶, CPU f64, against SciPy's closed forms in JS\n");
  console.log(
    "| | closed form ms | autodiff ms | jitted ms | autodiff ÷ closed | jitted ÷ closed |",
  );
  console.log("| --- | --: | --: | --: | --: | --: |");
  console.log(
    `| gradient (rosen_der) | ${fmt(tDer)} | ${fmt(tG)} | ${fmt(tJg)} | ${fmt(tG / tDer)} | ${
      fmt(tJg / tDer)
    } |`,
  );
  console.log(
    `| HVP (rosen_hess_prod) | ${fmt(tHp)} | ${fmt(tH)} | ${fmt(tJh)} | ${fmt(tH / tHp)} | ${
      fmt(tJh / tHp)
    } |`,
  );
  x.dispose();
  p.dispose();
}

const load = await Deno.readTextFile("/proc/loadavg").catch(() => "?");
console.log(
  `# Compiled programs (bench/compile_bench.ts)\n\n${cpuDev.description}; load average at start ${
    load.split(" ").slice(0, 3).join(" ")
  }; minima over ${REPS} runs of CPU time.`,
);
if (!ONLY || ONLY === "overhead") overhead();
if (!ONLY || ONLY === "band") band();
if (!ONLY || ONLY === "demo") await demoTable();
if (!ONLY || ONLY === "rosen") rosenTable();
