/**
 * How every method of `minimize` stops, and what its result says (issue 11, items 4–5;
 * issue 10, item 4): saddles are stepped off or reported, never converged; a run at the
 * rounding floor stops with a message instead of spinning to maxIter; SciPy's result names
 * and status codes; option keys checked per method. References are closed forms: the
 * minimisers ±1/√2 of x⁴ − x², the rounding of x near π, the gradient 2(x − c).
 */
import assert from "node:assert/strict";
import {
  concat,
  grad,
  memory,
  minimize,
  type MinimizeOptions,
  slice,
  type Tensor,
  tensor,
} from "../mod.ts";
import { assertClose, assertNoLeak, cpu, testAll } from "./helpers.ts";

const f64 = { dtype: "f64" as const, device: cpu };

const METHODS: MinimizeOptions[] = [
  { method: "newton-cg" },
  { method: "trust-ncg" },
  { method: "trust-exact" },
  { method: "newton-banded", bandwidth: 1 },
];

async function run(f: (x: Tensor) => Tensor, x0: number[], o: MinimizeOptions) {
  const x = tensor(x0, f64);
  const r = await minimize(f, x, o);
  const xs = Array.from(await r.x.data());
  const jac = Array.from(await r.jac.data());
  for (const t of [x, r.x, r.jac]) t.dispose();
  return { ...r, xs, jacs: jac };
}

/** x₀⁴ − x₀² + x₁²: a saddle at 0 (H = diag(−2, 2)), minima at (±1/√2, 0), f = −¼. */
const wells = (x: Tensor) => {
  const [a, b] = [slice(x, [0], [1]), slice(x, [1], [2])];
  return a.pow(4).sub(a.square()).add(b.square()).sum();
};

for (
  const o of [...METHODS, { method: "gradient-descent", lr: 0.1 }, { method: "adam", lr: 0.05 }]
) {
  Deno.test(`${o.method}: started exactly at a saddle (∇f = 0), it leaves along the negative curvature`, async () => {
    const base = memory();
    const r = await run(wells, [0, 0], { ...o, gtol: 1e-8, maxIter: 3000 });
    assert.equal(r.status, 0, r.message);
    assert.ok(r.converged && r.success);
    assertClose([Math.abs(r.xs[0]), r.xs[1]], [Math.SQRT1_2, 0], { atol: 1e-6, rtol: 0 });
    assert.ok(Math.abs(r.fun + 0.25) < 1e-10, `f = ${r.fun}`);
    assertNoLeak(base, `${o.method} saddle`);
  });
}

/**
 * x₀² − x₁² + 10²⁶ x₁⁴: a saddle at 0 whose descent along x₁ lasts only for |x₁| < 7e-14 —
 * below the escape's smallest step (2⁻³⁹ ≈ 1.8e-12): the Hessian-free methods cannot find a
 * lower point along the curvature and must say so rather than report convergence.
 */
const narrow = (x: Tensor) => {
  const [a, b] = [slice(x, [0], [1]), slice(x, [1], [2])];
  return a.square().sub(b.square()).add(b.pow(4).mul(1e26)).sum();
};

for (const o of [METHODS[0], METHODS[1], { method: "adam" } as MinimizeOptions]) {
  Deno.test(`${o.method}: a saddle it cannot leave is reported (status 4), not converged`, async () => {
    const base = memory();
    const r = await run(narrow, [0, 0], o);
    assert.equal(r.status, 4, r.message);
    assert.equal(r.converged, false);
    assert.equal(r.success, false);
    assert.match(r.message, /stationary point with negative curvature/);
    assertNoLeak(base, `${o.method} narrow saddle`);
  });
}

Deno.test("trust-exact and newton-banded: the narrow saddle's minima are found by shrinking the region", async () => {
  for (const o of [METHODS[2], METHODS[3]]) {
    const r = await run(narrow, [0, 0], { ...o, gtol: 1e-30, maxIter: 200 });
    // minima at x₁ = ±(2 · 10²⁶)^(−½), f = −1/(4 · 10²⁶)
    assert.ok(r.fun < -2e-27, `${o.method}: f = ${r.fun}, ${r.message}`);
    assert.notEqual(r.status, 1, "it stops at the minimum or its rounding floor, not at maxIter");
    assert.notEqual(r.status, 4);
  }
});

/**
 * x₀² − x₁⁴ + x₁⁶: at 0, ∇f = 0 and H = diag(2, 0) is positive semidefinite, yet f falls
 * along x₁ (at fourth order: a degenerate saddle no second-order check can see); minima at
 * x₁ = ±√(2/3), f = −4/27. Before the null-direction probe every method reported 0 as
 * converged (issue 11, item 4).
 */
const quartic = (x: Tensor) => {
  const [a, b] = [slice(x, [0], [1]), slice(x, [1], [2])];
  return a.square().sub(b.pow(4)).add(b.pow(6)).sum();
};

for (const o of METHODS) {
  Deno.test(`${o.method}: a singular Hessian at a point where f falls at higher order is probed, not converged`, async () => {
    const base = memory();
    const r = await run(quartic, [0, 0], o);
    assert.equal(r.status, 0, r.message);
    assert.ok(Math.abs(r.fun + 4 / 27) < 1e-10, `f = ${r.fun}: ${r.message}`);
    assertClose([r.xs[0], Math.abs(r.xs[1])], [0, Math.sqrt(2 / 3)], { atol: 1e-5, rtol: 0 });
    assert.doesNotMatch(r.message, /singular/);
    assertNoLeak(base, `${o.method} quartic`);
  });
}

testAll(
  "trust-exact and newton-cg: the higher-order fall at a singular Hessian is found",
  async (b) => {
    const base = memory();
    for (const method of ["trust-exact", "newton-cg"]) {
      const x0 = tensor([0, 0], { dtype: b.dtype, device: b.dev });
      const r = await minimize(quartic, x0, { method, gtol: b.dtype === "f64" ? 1e-5 : 1e-3 });
      assert.equal(r.status, 0, r.message);
      assert.ok(
        Math.abs(r.fun + 4 / 27) < (b.dtype === "f64" ? 1e-10 : 1e-5),
        `${method}: f = ${r.fun}`,
      );
      for (const t of [x0, r.x, r.jac]) t.dispose();
    }
    assertNoLeak(base, `quartic ${b.name}`);
  },
  ["cpu-f32", "webgpu-f32"],
);

/**
 * (x₀ − 1)² + x₁⁴: a minimum at (1, 0) with H = diag(2, 0), singular; f rises along the
 * null direction. Converged, and the message says the Hessian is singular (a strict
 * minimum is not verified).
 */
const flatMin = (x: Tensor) => {
  const [a, b] = [slice(x, [0], [1]), slice(x, [1], [2])];
  return a.sub(1).square().add(b.pow(4)).sum();
};

for (const o of METHODS) {
  Deno.test(`${o.method}: a minimum with a singular Hessian converges and says it is singular`, async () => {
    const base = memory();
    const r = await run(flatMin, [1, 0], o);
    assert.equal(r.status, 0, r.message);
    assert.ok(r.converged);
    assert.match(
      r.message,
      /within its tolerance .* strict minimality not verified/,
    );
    assert.equal(r.fun, 0);
    assertNoLeak(base, `${o.method} flat minimum`);
  });
}

/**
 * 10²⁰ (x² − 2)² per entry: no double squares to exactly 2 (the two nearest √2 give
 * 2 ± 4.4e-16), so |∇f| = 4·10²⁰ |x| |x² − 2| stays above 10⁵ — far above any gtol.
 */
const stiff = (x: Tensor) => x.square().sub(2).square().mul(1e20).sum();

for (const o of METHODS) {
  Deno.test(`${o.method}: at the rounding floor it stops with a message, without spinning to maxIter`, async () => {
    const base = memory();
    const seen: number[] = [];
    const r = await run(stiff, [1.5, -1.3], {
      ...o,
      maxIter: 500,
      onIteration: (it) => void seen.push(it.iteration),
    });
    assert.equal(r.status, 2, r.message);
    assert.ok(r.nit < 60, `${r.nit} iterations`);
    assert.match(r.message, /stopped: /);
    assert.ok(r.gradNorm > 1e4, `‖g‖ = ${r.gradNorm}: the floor`);
    assertClose(r.xs, [Math.SQRT2, -Math.SQRT2], { rtol: 1e-15, atol: 0 });
    assert.deepEqual(seen, [...Array(r.nit + 1).keys()]);
    assertNoLeak(base, `${o.method} floor`);
  });
}

Deno.test("minimize: SciPy's result names and status codes", async () => {
  const base = memory();
  const c = [1, -2, 0.5];
  const quad = (x: Tensor) => x.sub(tensor(c, f64)).square().sum();
  const ok = await run(quad, [0, 0, 0], { method: "trust-exact", gtol: 1e-10 });
  assert.equal(ok.nit, ok.iterations);
  assert.equal(ok.success, ok.converged);
  assert.equal(ok.njev, ok.ngev);
  assert.equal(ok.nhev, ok.nhvp);
  assert.equal(ok.status, 0);
  // jac is ∇f(x) = 2(x − c), at the returned x
  assertClose(ok.jacs, ok.xs.map((v, i) => 2 * (v - c[i])), { atol: 1e-12, rtol: 0 });
  const x = tensor([0, 0, 0], f64);
  const g = grad(quad)(x) as Tensor;
  const atStart = await run(quad, [0, 0, 0], { method: "newton-cg", maxIter: 0 });
  assert.equal(atStart.status, 1, "maxIter reached");
  assertClose(atStart.jacs, Array.from(await g.data()), { rtol: 0, atol: 0 });
  const stopped = await run(quad, [0, 0, 0], {
    method: "trust-ncg",
    onIteration: (it) => it.iteration < 1,
  });
  assert.equal(stopped.status, 99);
  assert.match(stopped.message, /stopped by onIteration/);
  const nan = await run((y: Tensor) => y.log().sum(), [-1, 1], { method: "newton-cg" });
  assert.equal(nan.status, 3);
  x.dispose();
  g.dispose();
  assertNoLeak(base, "result names");
});

Deno.test("minimize: option keys are checked for the method they are given to", async () => {
  const x = tensor([1, 2], f64);
  const f = (y: Tensor) => y.square().sum();
  const bad = (o: object, re: RegExp) => assert.rejects(minimize(f, x, o as MinimizeOptions), re);
  await bad(
    { method: "newton-cg", maxiter: 5 },
    /minimize \(newton-cg\): unknown option "maxiter"; did you mean "maxIter"/,
  );
  await bad({ method: "trust-exact", tol: 1e-8 }, /no "tol": use gtol/);
  await bad(
    { method: "newton-cg", lr: 0.1 },
    /"lr" is an option of adahessian, gradient-descent, adam, not of "newton-cg"/,
  );
  await bad(
    { method: "adam", bandwidth: 1 },
    /"bandwidth" is an option of trust-exact, newton-banded/,
  );
  await bad({ method: "trust-ncg", initial_tr_radius: 2 }, /did you mean "initialTrustRadius"/);
  await bad(
    { method: "newton-cg", options: { maxiter: 2 } },
    /pass the method's options in this object/,
  );
  await bad({ method: "trust-exact", jac: true }, /automatic differentiation/);
  // every method's own options pass
  const r = await minimize(f, x, {
    method: "trust-exact",
    bandwidth: 1,
    bandMethod: "direct",
    initialTrustRadius: 0.5,
    maxTrustRadius: 10,
    eta: 0.1,
    gtol: 1e-9,
  });
  assert.equal(r.status, 0);
  r.x.dispose();
  r.jac.dispose();
  x.dispose();
});

/**
 * The discrete boundary value problem (Moré, Garbow & Hillstrom #28) at n = 200: its
 * Hessian JᵀJ is pentadiagonal (bandwidth 2, from J tridiagonal) and ill-conditioned
 * (κ ≈ n⁴), so CG needs hundreds of iterations per Newton step.
 */
function boundaryValue(n: number) {
  const h = 1 / (n + 1);
  const t = tensor(Array.from({ length: n }, (_, i) => (i + 1) * h), f64);
  const zero = tensor([0], f64);
  const f = (x: Tensor) => {
    const prev = concat([zero, slice(x, [0], [n - 1])], 0);
    const next = concat([slice(x, [1], [n]), zero], 0);
    return x.mul(2).sub(prev).sub(next).add(x.add(t).add(1).pow(3).mul(h * h / 2)).square()
      .sum();
  };
  const x0 = Array.from({ length: n }, (_, i) => (i + 1) * h * ((i + 1) * h - 1));
  return { f, x0, dispose: () => [t, zero].forEach((q) => q.dispose()) };
}

for (const method of ["newton-cg", "trust-ncg"]) {
  Deno.test(`${method}: when CG needs many iterations per step, the message names the detected band`, async () => {
    const base = memory();
    const p = boundaryValue(200);
    const r = await run(p.f, p.x0, { method, gtol: 1e-12 });
    assert.equal(r.status, 0, r.message);
    assert.ok(r.nhvp / r.nit > 50, `${r.nhvp} HVPs in ${r.nit} iterations`);
    assert.match(r.message, /a band of width 2: "newton-banded" or "trust-exact"/);
    // the advice holds: newton-banded solves it in a few steps of 5 products each
    const b = await run(p.f, p.x0, { method: "newton-banded", gtol: 1e-12 });
    assert.equal(b.status, 0, b.message);
    assert.ok(b.nit <= 5 && b.nhvp <= 5 * (b.nit + 1), `${b.nit} iterations, ${b.nhvp} HVPs`);
    p.dispose();
    assertNoLeak(base, `${method} hint`);
  });
}
