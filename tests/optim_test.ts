/**
 * `minimize` against independent references: SciPy's published iteration counts and the
 * closed-form minimiser x* = 1 on the 5-D Rosenbrock function; the trajectory benchmark of
 * issue 4 (n = 10^5) and its published minimum f* = 225.867972174 (SciPy / PyTorch, f64);
 * closed-form minimisers (a double well, least squares); and the pinned AdaHessian, Adam and
 * gradient-descent update formulas re-evaluated step by step in plain f64 JavaScript.
 * CPU tests run in f64; WebGPU runs in f32 with tolerances justified where they are set.
 */
import assert from "node:assert/strict";
import {
  abs,
  exp,
  grad,
  log1p,
  matmul,
  mean,
  memory,
  minimize,
  minimizeMethods,
  type MinimizeOptions,
  rademacher,
  registerMethod,
  slice,
  square,
  stopGradient,
  sum,
  type Tensor,
  tensor,
  tidy,
  to,
} from "../mod.ts";
import { assertClose, assertNoLeak, cpu, gpuDev } from "./helpers.ts";

const f64 = { dtype: "f64" as const, device: cpu };

/** SciPy's `rosen`: Σ 100 (x[i+1] − x[i]²)² + (1 − x[i])². */
const rosen = (x: Tensor) => {
  const n = x.size;
  const a = slice(x, [0], [n - 1]), b = slice(x, [1], [n]);
  return b.sub(a.square()).square().mul(100).add(a.neg().add(1).square()).sum();
};
const ROSEN_X0 = [1.3, 0.7, 0.8, 1.9, 1.2];

/** The trajectory benchmark of issue 4, log cosh written stably as |z| + log1p(e^{−2|z|}) − log 2. */
function trajectory(n: number, o: { dtype: "f32" | "f64"; device: typeof cpu }) {
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = Math.sin(0.1 * i) + 0.5 * Math.cos(0.37 * i);
  const target = tensor(t, o);
  const f = (x: Tensor) => {
    const d = slice(x, [2], [n]).sub(slice(x, [1], [n - 1]).mul(2)).add(slice(x, [0], [n - 2]));
    const a = abs(x.sub(target));
    return sum(d.square()).add(sum(a.add(log1p(exp(a.mul(-2)))).sub(Math.LN2)));
  };
  return { f, target };
}

async function run(f: (x: Tensor) => Tensor, x0: number[] | Float64Array, o: MinimizeOptions) {
  const x = tensor(Float64Array.from(x0), f64);
  const r = await minimize(f, x, o);
  const xs = Array.from(await r.x.data());
  x.dispose();
  r.x.dispose();
  r.jac.dispose();
  return { ...r, xs };
}

for (const [method, scipy] of [["newton-cg", 20], ["trust-ncg", 20]] as const) {
  Deno.test(`${method}: SciPy's 5-D Rosenbrock in at most SciPy's ${scipy} + 2 iterations, x* = 1`, async () => {
    const base = memory();
    const r = await run(rosen, ROSEN_X0, { method, gtol: 1e-8 });
    assert.ok(r.converged, r.message);
    assert.ok(r.gradNorm < 1e-8, `‖g‖ = ${r.gradNorm}`);
    assert.ok(r.iterations <= scipy + 2, `${r.iterations} iterations (SciPy: ${scipy})`);
    // ‖x − 1‖ ≤ ‖g‖ / λ_min(H(1)) ≈ 1e-8 / 0.004; 1e-6 is what the issue asks for
    assertClose(r.xs, [1, 1, 1, 1, 1], { atol: 1e-6, rtol: 0 });
    assert.ok(r.fun < 1e-15, `f = ${r.fun}`);
    assert.ok(r.nhvp > 0 && r.ngev === r.nfev && r.nfev >= r.iterations + 1, JSON.stringify(r));
    assertNoLeak(base, method);
  });

  Deno.test(`${method}: the trajectory benchmark (n = 10^5, f64) reaches ‖g‖ < 1e-8 and f* = 225.867972174`, async () => {
    const base = memory();
    const n = 100_000;
    const { f, target } = trajectory(n, f64);
    const seen: number[] = [];
    const r = await run(f, new Float64Array(n), {
      method,
      gtol: 1e-8,
      onIteration: (i) => void seen.push(i.iteration),
    });
    target.dispose();
    assert.ok(r.converged && r.gradNorm < 1e-8, `${r.message}, ‖g‖ = ${r.gradNorm}`);
    // SciPy needs 20 (newton-cg) and 18 (trust-ncg) iterations here
    assert.ok(r.iterations <= (method === "newton-cg" ? 22 : 20), `${r.iterations} iterations`);
    // f − f* ≤ ‖g‖² / (2 λ_min) ≈ 1e-16 at the end; the published value has 12 digits (±5e-10)
    assert.ok(Math.abs(r.fun - 225.867972174) <= 1e-11 * 225.9, `f = ${r.fun}`);
    assert.deepEqual(
      seen,
      [...Array(r.iterations + 1).keys()],
      "onIteration once per iteration, from 0",
    );
    assertNoLeak(base, `${method} trajectory`);
  });

  Deno.test(`${method}: how often CG reads back changes the cost, never the iterates`, async () => {
    const runs = [];
    for (const every of [1, 3, 7, "auto"] as const) {
      const xs: number[][] = [];
      const r = await run(rosen, ROSEN_X0, {
        method,
        gtol: 1e-8,
        cgCheckEvery: every,
        onIteration: async (i) => void xs.push(Array.from(await i.x.data())),
      });
      runs.push({ r, xs });
    }
    for (const { r, xs } of runs.slice(1)) {
      assert.deepEqual(xs, runs[0].xs, "identical iterates, bit for bit");
      assert.equal(r.iterations, runs[0].r.iterations);
      assert.ok(r.nhvp >= runs[0].r.nhvp, "masked iterations still cost their HVPs");
    }
    assert.ok(runs[2].r.nhvp > runs[0].r.nhvp, "reading back less often wastes some HVPs");
    assert.equal(runs[3].r.nhvp, runs[0].r.nhvp, '"auto" reads every iteration on the CPU');
    // and the maxCgIter limit applies the same way (a solve cut short inside the region)
    const capped: number[][][] = [];
    for (const every of [1, "auto"] as const) {
      const o = { method, gtol: 1e-8, maxIter: 8, maxCgIter: 2, cgCheckEvery: every };
      capped.push(await iterates(o, ROSEN_X0, rosen));
    }
    assert.deepEqual(capped[1], capped[0]);
  });

  Deno.test(`${method}: negative curvature at the start (double well) still reaches the minimum`, async () => {
    // f = x₀⁴ − x₀² + x₁²: at (0.1, 0) the Hessian diag(12x₀² − 2, 2) is indefinite and the
    // first CG direction −g = (0.196, 0) has negative curvature. Minimum (1/√2, 0), f = −1/4.
    const f = (x: Tensor) => {
      const [a, b] = [slice(x, [0], [1]), slice(x, [1], [2])];
      return a.pow(4).sub(a.square()).add(b.square()).sum();
    };
    const firstCg: number[] = [];
    const r = await run(f, [0.1, 0], {
      method,
      gtol: 1e-10,
      onIteration: (i) => void (i.iteration === 1 && firstCg.push(i.cgIterations!)),
    });
    assert.ok(r.converged, r.message);
    assert.deepEqual(
      firstCg,
      [1],
      "the first step ended at CG's first (negative-curvature) direction",
    );
    assertClose(r.xs, [Math.SQRT1_2, 0], { atol: 1e-10, rtol: 0 });
    assertClose([r.fun], [-0.25], { rtol: 1e-14 });
  });
}

Deno.test("newton-cg and trust-ncg: the round-off allowance 10 ε |f| keeps them converging where f is all rounding", async () => {
  // f = 100 + Σ (x − c)⁴ has a singular minimum, so Newton converges linearly (d ← 2d/3) and
  // the last iterations' decreases (~d⁴ ≈ 1e-17) are far below an ulp of f (1.4e-14). On top
  // sits a constant-to-every-derivative wobble of 5e-14 that rises as x nears c — a stand-in
  // for rounding noise, below the allowance 10 ε · 100 ≈ 2.2e-13. Without the allowance both
  // methods stall at the wobble (Armijo rejects every step; ρ < 0 shrinks the radius forever).
  const c = tensor([0.5, -1, 2, 0.25], f64);
  const f = (x: Tensor) => {
    const d = x.sub(c);
    const wobble = stopGradient(exp(d.square().sum().mul(-1e8)).mul(5e-14));
    return d.pow(4).sum().add(100).add(wobble);
  };
  for (const method of ["newton-cg", "trust-ncg"] as const) {
    const r = await run(f, [1.5, 0, 3, 1.25], { method, gtol: 1e-12, maxIter: 100 });
    assert.ok(r.converged, `${method}: ${r.message}, ‖g‖ = ${r.gradNorm}`);
    // (2/3)^k · 4 < 1e-12 needs k ≈ 25 full steps from d = 1
    assert.ok(r.iterations <= 30 && r.nfev <= r.iterations + 2, `${method}: ${JSON.stringify(r)}`);
  }
  c.dispose();
});

Deno.test("trust-ncg: the radius starts at 1 and changes only by the rule's factors ¼ and 2", async () => {
  const radii: number[] = [];
  await run(rosen, ROSEN_X0, {
    method: "trust-ncg",
    gtol: 1e-8,
    onIteration: (i) => void radii.push(i.trustRadius!),
  });
  assert.equal(radii[0], 1);
  // every change is one of the rule's: ×¼ on a poor step, ×2 on a good boundary step
  for (let k = 1; k < radii.length; k++) {
    const q = radii[k] / radii[k - 1];
    assert.ok(q === 1 || q === 0.25 || q === 2, `radius ${radii[k - 1]} → ${radii[k]}`);
  }
  assert.ok(radii.includes(0.25), "one poor step shrank the radius");
});

// ---------- AdaHessian, Adam, gradient descent ----------

/** f(x) = ½ Σ hᵢ (xᵢ − cᵢ)²: diagonal Hessian h, so Hutchinson's z ⊙ Hz = h exactly for any probe. */
const H_DIAG = [1, 10, 100, 0.5, 3];
const C = [1, -2, 0.5, 3, -1];
const quad = (x: Tensor) => {
  const h = tensor(H_DIAG, f64), c = tensor(C, f64);
  return x.sub(c).square().mul(h).sum().mul(0.5);
};

async function iterates(o: MinimizeOptions, x0: number[], f = quad): Promise<number[][]> {
  const xs: number[][] = [];
  await run(f, x0, { ...o, onIteration: async (i) => void xs.push(Array.from(await i.x.data())) });
  return xs;
}

Deno.test("adahessian: iterates follow the pinned formula (bias correction, power k, block averaging, ε)", async () => {
  const [lr, b1, b2, eps, k, block] = [0.1, 0.8, 0.95, 1e-3, 0.5, 2];
  const xs = await iterates({
    method: "adahessian",
    lr,
    beta1: b1,
    beta2: b2,
    eps,
    hessianPower: k,
    blockSize: block,
    samples: 3,
    maxIter: 6,
    gtol: 0,
  }, [0, 0, 0, 0, 0]);
  // plain-JS reference: D = h; spatial average of |D| over blocks {0,1}, {2,3}, {4}
  const ds = [5.5, 5.5, 50.25, 50.25, 3];
  let x = [0, 0, 0, 0, 0];
  const m = [0, 0, 0, 0, 0], v = [0, 0, 0, 0, 0];
  const want = [x];
  for (let t = 1; t <= 6; t++) {
    x = x.map((xi, i) => {
      const g = H_DIAG[i] * (xi - C[i]);
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * ds[i] * ds[i];
      const mh = m[i] / (1 - b1 ** t), vh = v[i] / (1 - b2 ** t);
      return xi - (lr * mh) / (vh ** (k / 2) + eps);
    });
    want.push(x);
  }
  assert.equal(xs.length, 7);
  xs.forEach((xi, t) =>
    assertClose(xi, want[t], { rtol: 1e-13, atol: 1e-15, msg: `iterate ${t}` })
  );
});

Deno.test("adahessian: the Hutchinson diagonal averages z ⊙ Hz over the seeded Rademacher probes", async () => {
  // f = ½ xᵀAx − bᵀx with a full A: z ⊙ Az is not diag A, so the probes matter
  const A = [[4, 1, -2], [1, 3, 0.5], [-2, 0.5, 5]], b = [1, -1, 2];
  const f = (x: Tensor) => {
    const At = tensor(A, f64), bt = tensor(b, f64);
    return matmul(At, x).mul(x).sum().mul(0.5).sub(bt.mul(x).sum());
  };
  const [samples, seed, lr, eps] = [4, 5, 0.2, 1e-4];
  const xs = await iterates({ method: "adahessian", lr, eps, samples, seed, maxIter: 1, gtol: 0 }, [
    0.5,
    -0.5,
    1,
  ], f);
  // the probes of iteration 1: counter offset 0 of the generator under `seed`
  const zt = rademacher([samples, 3], { seed, offset: 0, ...f64 });
  const z = Array.from(await zt.data());
  zt.dispose();
  assert.ok(z.every((v) => v === 1 || v === -1));
  const x0 = [0.5, -0.5, 1];
  const D = [0, 1, 2].map((i) =>
    [...Array(samples).keys()].reduce(
      (s, kk) => s + z[kk * 3 + i] * A[i].reduce((a, aij, j) => a + aij * z[kk * 3 + j], 0),
      0,
    ) / samples
  );
  // after one step the bias corrections cancel: x₁ = x₀ − lr g / (|D| + ε)
  const g = [0, 1, 2].map((i) => A[i].reduce((a, aij, j) => a + aij * x0[j], 0) - b[i]);
  const want = x0.map((xi, i) => xi - (lr * g[i]) / (Math.abs(D[i]) + eps));
  assertClose(xs[1], want, { rtol: 1e-14 });
  assert.ok(
    D.some((d, i) => Math.abs(d - A[i][i]) > 0.1),
    "the estimate is not the exact diagonal",
  );
});

Deno.test("adahessian: converges to the least-squares solution of a small regression", async () => {
  const base = memory();
  // y = X w + noise with an intercept column; the answer solves XᵀX w = Xᵀy
  let s = 7;
  const r = () => ((s = (s * 16807) % 2147483647), s / 2147483647 - 0.5);
  const N = 20;
  const X = Array.from({ length: N }, () => [1, r(), r(), r()]);
  const y = X.map((row) => 0.5 * row[0] - row[1] + 2 * row[2] + 0.3 * row[3] + 0.1 * r());
  const XtX = [0, 1, 2, 3].map((i) =>
    [0, 1, 2, 3].map((j) => X.reduce((a, row) => a + row[i] * row[j], 0))
  );
  const Xty = [0, 1, 2, 3].map((i) => X.reduce((a, row, n) => a + row[i] * y[n], 0));
  const wStar = gaussSolve(XtX, Xty);
  const Xt = tensor(X, f64), yt = tensor(y, f64);
  const f = (w: Tensor) => mean(square(matmul(Xt, w).sub(yt)));
  const res = await run(f, [0, 0, 0, 0], { method: "adahessian", gtol: 1e-10, maxIter: 2000 });
  assert.ok(res.converged, res.message);
  // ‖w − w*‖ ≤ ‖g‖ / λ_min(2XᵀX/N) with λ_min ≈ 0.1 here: 1e-9 is 10× that bound
  assertClose(res.xs, wStar, { atol: 1e-8, rtol: 0 });
  // one probe per evaluation, and min(n, 16) = 4 Lanczos products for the second-order check
  assert.equal(res.nhvp, res.iterations + 1 + 4, "one probe per evaluation");
  Xt.dispose();
  yt.dispose();
  assertNoLeak(base, "adahessian");
});

function gaussSolve(a: number[][], b: number[]): number[] {
  const n = b.length, m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  return m.map((row, i) => row[n] / row[i]);
}

Deno.test("adam and gradient-descent: iterates follow their update rules", async () => {
  const x0 = [0, 0, 0, 0, 0];
  const gd = await iterates({ method: "gradient-descent", lr: 0.015, maxIter: 5, gtol: 0 }, x0);
  let x = x0;
  for (let t = 1; t <= 5; t++) {
    x = x.map((xi, i) => xi - 0.015 * H_DIAG[i] * (xi - C[i]));
    assertClose(gd[t], x, { rtol: 1e-14, msg: `gd ${t}` });
  }
  const ad = await iterates({ method: "adam", lr: 0.1, maxIter: 5, gtol: 0 }, x0);
  x = x0;
  const m = [0, 0, 0, 0, 0], v = [0, 0, 0, 0, 0];
  for (let t = 1; t <= 5; t++) {
    x = x.map((xi, i) => {
      const g = H_DIAG[i] * (xi - C[i]);
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      return xi - (0.1 * m[i] / (1 - 0.9 ** t)) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8);
    });
    assertClose(ad[t], x, { rtol: 1e-13, msg: `adam ${t}` });
  }
  // gradient descent with lr < 2/λ_max converges to c
  const r = await run(quad, x0, {
    method: "gradient-descent",
    lr: 0.015,
    gtol: 1e-10,
    maxIter: 5000,
  });
  assert.ok(r.converged, r.message);
  assertClose(r.xs, C, { atol: 1e-9, rtol: 0 });
});

// ---------- the dispatcher ----------

Deno.test("minimize: onIteration can stop the run; errors name the method and option", async () => {
  const r = await run(rosen, ROSEN_X0, {
    method: "newton-cg",
    onIteration: (i) => i.iteration < 3,
  });
  assert.equal(r.iterations, 3);
  assert.equal(r.converged, false);
  assert.equal(r.message, "stopped by onIteration");
  const m = await run(rosen, ROSEN_X0, { method: "trust-ncg", maxIter: 2 });
  assert.equal(m.iterations, 2);
  assert.match(m.message, /maximum iterations/);
  const x = tensor([1, 2], f64);
  await assert.rejects(
    () => minimize(rosen, x, { method: "bfgs" }),
    /unknown method "bfgs"; known: newton-cg/,
  );
  await assert.rejects(
    () => minimize(rosen, x, { method: "trust-ncg", eta: 0.5 }),
    /trust-ncg\): eta must be in \[0, 0.25\)/,
  );
  await assert.rejects(
    () => minimize(rosen, x, { method: "adam", lr: -1 }),
    /adam\): lr must be > 0/,
  );
  await assert.rejects(
    () => minimize((y: Tensor) => y.square(), x, { method: "newton-cg" }),
    /the objective must return a scalar, got shape \[2\]/,
  );
  x.dispose();
});

Deno.test("registerMethod: a new method plugs into minimize and gets counted evaluations", async () => {
  const base = memory();
  registerMethod("test-newton-1d", async (problem, x0) => {
    // one exact Newton step x − g / (H·1) for a 1-D quadratic
    const [f, g] = problem.valueAndGrad(x0);
    const one = tensor([1], f64);
    const h = problem.hvp(x0, one);
    const x = tidy(() => x0.sub(g.div(h)));
    const fun = await f.item();
    for (const t of [f, g, one, h]) t.dispose();
    return { x, fun, gradNorm: 0, iterations: 1, status: 0, message: "converged: one Newton step" };
  });
  assert.ok(minimizeMethods().includes("test-newton-1d"));
  const r = await run((x: Tensor) => x.sub(3).square().mul(2).sum(), [10], {
    method: "test-newton-1d",
  });
  assert.deepEqual(r.xs, [3]);
  // the method returned no jac: minimize evaluated the gradient at x (counted)
  assert.deepEqual([r.nfev, r.ngev, r.nhvp], [2, 2, 1]);
  assert.ok(r.success && r.converged && r.status === 0 && r.nit === 1);
  assert.throws(() => registerMethod("", () => Promise.resolve({} as never)), /non-empty string/);
  assertNoLeak(base, "registerMethod");
});

// ---------- WebGPU (f32) ----------

Deno.test({
  name:
    "newton-cg and trust-ncg on WebGPU (f32): the trajectory problem (n = 2000) to a point that is stationary in f64",
  ignore: !gpuDev,
  fn: async () => {
    const n = 2000;
    const g32 = { dtype: "f32" as const, device: gpuDev! };
    const { f, target } = trajectory(n, g32);
    const ref = trajectory(n, f64);
    for (const method of ["newton-cg", "trust-ncg"] as const) {
      const x0 = tensor(new Float32Array(n), g32);
      // f32 rounding puts a floor of about ε·‖terms‖·√n ≈ 1e-7 · 10 · 45 ≈ 5e-5 under ‖g‖:
      // ask for 1e-3, 20× above it
      const r = await minimize(f, x0, { method, gtol: 1e-3 });
      assert.ok(r.converged, `${method}: ${r.message}, ‖g‖ = ${r.gradNorm}`);
      assert.ok(r.iterations <= 20, `${method}: ${r.iterations} iterations`);
      // judged in f64 on the CPU: ‖g‖ within gtol plus the f32 rounding of x (‖H‖ ε ‖x‖ ≈ 17 · 6e-8 · 60 ≈ 6e-5)
      const xc = to(r.x, cpu);
      await xc.ready();
      const x64 = tensor(Float64Array.from(await xc.data()), f64);
      const g64 = grad(ref.f)(x64);
      const gn = Math.hypot(...(await g64.data()));
      assert.ok(gn < 1.1e-3, `${method}: f64 gradient norm at the f32 answer is ${gn}`);
      for (const t of [x0, r.x, r.jac, xc, x64, g64]) t.dispose();
    }
    target.dispose();
    ref.target.dispose();
  },
});

Deno.test({
  name:
    "adahessian on WebGPU (f32) follows the CPU (f32) run: the same probes, the same iterates to f32 rounding",
  ignore: !gpuDev,
  fn: async () => {
    const A = [[4, 1, -2], [1, 3, 0.5], [-2, 0.5, 5]];
    const runOn = async (device: typeof cpu) => {
      const At = tensor(A, { device }), b = tensor([1, -1, 2], { device });
      const f = (x: Tensor) => matmul(At, x).mul(x).sum().mul(0.5).sub(b.mul(x).sum());
      const x0 = tensor([0.5, -0.5, 1], { device });
      const r = await minimize(f, x0, {
        method: "adahessian",
        samples: 2,
        maxIter: 300,
        gtol: 1e-4,
      });
      const xs = Array.from(await r.x.data());
      for (const t of [At, b, x0, r.x, r.jac]) t.dispose();
      return { ...r, xs };
    };
    const a = await runOn(cpu), b = await runOn(gpuDev!);
    assert.ok(a.converged && b.converged, `${a.message} / ${b.message}`);
    // Rademacher probes are bit-identical across backends; the iterates differ by f32 rounding only
    assert.ok(Math.abs(a.iterations - b.iterations) <= 2, `${a.iterations} vs ${b.iterations}`);
    // both are within ‖g‖/λ_min ≈ 1e-4 / 1.5 of the exact answer A⁻¹b
    const exact = gaussSolve(A, [1, -1, 2]);
    assertClose(b.xs, exact, { atol: 2e-4, rtol: 0 });
    assertClose(a.xs, exact, { atol: 2e-4, rtol: 0 });
  },
});
