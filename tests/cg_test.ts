/**
 * CG, Neumann and inverse-HVPs against dense solves written here (Gaussian elimination in
 * f64): accuracy per dtype, iteration bounds, preconditioning, negative curvature and
 * breakdown reporting, read-backs per solve on WebGPU, divergence, memory.
 */
import assert from "node:assert/strict";
import {
  cg,
  exp,
  inverseHvp,
  matmul,
  memory,
  neumann,
  neumannSeries,
  sum,
  type Tensor,
  tensor,
} from "../mod.ts";
import { assertClose, assertNoLeak, type Backend, gpuDev, randArray, testAll } from "./helpers.ts";
import {
  fromEigen,
  type Mat,
  matVec,
  randomOrthogonal,
  randomSymmetric,
  solveDense,
} from "./dense_ref.ts";

function mk(b: Backend, data: ArrayLike<number>, shape?: readonly number[]): Tensor {
  return tensor(Float64Array.from(data), {
    shape: shape ?? [data.length],
    dtype: b.dtype,
    device: b.dev,
  });
}

function matrixOp(b: Backend, A: Mat): { mv: (v: Tensor) => Tensor; At: Tensor } {
  const At = mk(b, A.flat(), [A.length, A.length]);
  return { mv: (v: Tensor) => matmul(At, v), At };
}

/** SPD: BᵀB/n + I/2 for a random symmetric B, rounded to f32. */
function spd(n: number, seed: number): Mat {
  const B = randomSymmetric(n, seed);
  return B.map((row, i) =>
    row.map((_, j) => Math.fround(matVec(B, B.map((r) => r[j]))[i] / n + (i === j ? 0.5 : 0)))
  );
}

const solveTol = (b: Backend) =>
  b.dtype === "f64" ? { rtol: 1e-10, atol: 1e-12 } : { rtol: 1e-4, atol: 1e-5 };

testAll("cg solves SPD systems like a dense solve, in at most n iterations", async (b) => {
  const base = memory();
  const n = 20;
  const A = spd(n, 1);
  const rhs = Array.from(randArray(n, 2));
  const { mv, At } = matrixOp(b, A);
  const bt = mk(b, rhs);
  const res = await cg(mv, bt, { rtol: b.dtype === "f64" ? 1e-13 : 1e-6, checkEvery: 5 });
  assert.ok(res.converged, res.message);
  assert.match(res.message, /^converged/);
  assertClose(await res.x.data(), solveDense(A, rhs), solveTol(b));
  assert.ok(res.iterations <= n + (b.dtype === "f64" ? 0 : 5), `${res.iterations} iterations`);
  assert.ok(res.matvecs >= res.iterations && res.matvecs < res.iterations + 5);
  // a start near the answer converges too, and leaves x0 alone
  const x0 = res.x;
  const again = await cg(mv, bt, { x0, rtol: 1e-3 });
  assert.equal(again.iterations, 0, "x0 already solves it");
  assert.equal(again.matvecs, 10 + 1, "one check window of frozen steps plus A·x0");
  assert.equal(x0.disposed, false);
  res.x.dispose(), again.x.dispose(), At.dispose(), bt.dispose();
  assertNoLeak(base, "cg");
});

testAll("cg reports progress at each check: ‖r‖ as a host CG in f64 computes it", async (b) => {
  const n = 12;
  const A = spd(n, 3);
  const rhs = Array.from(randArray(n, 4));
  // the reference: textbook CG on the host in f64, ‖r_k‖ after each step k
  const ref: number[] = [];
  {
    const x = new Array(n).fill(0), r = [...rhs], p = [...rhs];
    let rr = r.reduce((s, v) => s + v * v, 0);
    for (let k = 0; k < 6; k++) {
      const Ap = matVec(A, p);
      const alpha = rr / p.reduce((s, v, i) => s + v * Ap[i], 0);
      for (let i = 0; i < n; i++) (x[i] += alpha * p[i]), (r[i] -= alpha * Ap[i]);
      const rr2 = r.reduce((s, v) => s + v * v, 0);
      for (let i = 0; i < n; i++) p[i] = r[i] + (rr2 / rr) * p[i];
      rr = rr2;
      ref.push(Math.sqrt(rr));
    }
  }
  const { mv, At } = matrixOp(b, A);
  const bt = mk(b, rhs);
  const seen: { done: number; total: number; unit: string; residual?: number }[] = [];
  const res = await cg(mv, bt, {
    maxIter: 6,
    rtol: 0,
    checkEvery: 2,
    onProgress: (p) => seen.push({ ...p }),
  });
  assert.deepEqual(seen.map((p) => [p.done, p.total, p.unit]), [
    [2, 6, "iterations"],
    [4, 6, "iterations"],
    [6, 6, "iterations"],
  ]);
  assertClose(
    seen.map((p) => p.residual!),
    [ref[1], ref[3], ref[5]],
    { rtol: b.dtype === "f64" ? 1e-8 : 1e-3 },
  );
  assert.equal(seen[2].residual, res.residualNorm);
  await assert.rejects(
    () => cg(mv, bt, { onProgress: 3 as unknown as () => void }),
    /onProgress must be a function/,
  );
  res.x.dispose(), At.dispose(), bt.dispose();
});

testAll("cg takes as many iterations as A has distinct eigenvalues", async (b) => {
  const n = 40;
  const lam = Array.from({ length: n }, (_, i) => [1, 2, 3, 4][i % 4]);
  const A = fromEigen(randomOrthogonal(n, 5), lam);
  const { mv, At } = matrixOp(b, A);
  const rhs = Array.from(randArray(n, 6));
  const bt = mk(b, rhs);
  const res = await cg(mv, bt, { rtol: b.dtype === "f64" ? 1e-10 : 1e-5, checkEvery: 3 });
  assert.ok(res.converged, res.message);
  // in exact arithmetic CG ends after 4 steps (the minimal polynomial has degree 4)
  assert.ok(res.iterations <= (b.dtype === "f64" ? 4 : 6), `${res.iterations} iterations`);
  assertClose(await res.x.data(), solveDense(A, rhs), solveTol(b));
  res.x.dispose(), At.dispose(), bt.dispose();
});

testAll(
  "a Jacobi preconditioner needs fewer iterations on an ill-conditioned matrix",
  async (b) => {
    const n = 60;
    // diagonal-dominant with a diagonal from 1 to 1e3: κ ≈ 1e3, but D⁻¹A is well conditioned
    const d = Array.from({ length: n }, (_, i) => Math.fround(10 ** (3 * i / (n - 1))));
    const R = randomSymmetric(n, 7);
    const A = R.map((row, i) =>
      row.map((r, j) => (i === j ? d[i] : Math.fround(0.1 * r * Math.sqrt(d[i] * d[j]) / n)))
    );
    const { mv, At } = matrixOp(b, A);
    const rhs = Array.from(randArray(n, 8));
    const bt = mk(b, rhs), dinv = mk(b, d.map((v) => 1 / v));
    const rtol = b.dtype === "f64" ? 1e-10 : 1e-5;
    const plain = await cg(mv, bt, { rtol, checkEvery: 1 });
    const pre = await cg(mv, bt, { rtol, checkEvery: 1, preconditioner: (r) => r.mul(dinv) });
    assert.ok(plain.converged && pre.converged, `${plain.message} / ${pre.message}`);
    assert.ok(
      pre.iterations * 2 < plain.iterations,
      `preconditioned ${pre.iterations} vs plain ${plain.iterations}`,
    );
    const tol = b.dtype === "f64" ? { rtol: 1e-8, atol: 1e-12 } : { rtol: 1e-3, atol: 1e-6 };
    assertClose(await pre.x.data(), solveDense(A, rhs), tol);
    plain.x.dispose(), pre.x.dispose(), At.dispose(), bt.dispose(), dinv.dispose();
  },
);

testAll("cg detects negative curvature instead of diverging", async (b) => {
  const base = memory();
  const n = 12;
  const lam = Array.from({ length: n }, (_, i) => (i < 3 ? -1 - i : 1 + i));
  const A = fromEigen(randomOrthogonal(n, 9), lam);
  const { mv, At } = matrixOp(b, A);
  const rhs = Array.from(randArray(n, 10));
  const bt = mk(b, rhs);
  const res = await cg(mv, bt, { maxIter: 200 });
  assert.equal(res.negativeCurvature, true);
  assert.equal(res.converged, false);
  assert.match(res.message, /negative curvature/);
  // pᵀAp/pᵀp ≤ 0 is a Rayleigh quotient, so it lies in [λ_min, 0]
  assert.ok(res.curvature! <= 0 && res.curvature! >= -3 - 1e-5, `curvature ${res.curvature}`);
  const x = await res.x.data();
  assert.ok(x.every(Number.isFinite), "the last good iterate is finite");
  assert.ok(res.iterations < n);
  // "continue" goes through the indefinite directions and solves the (non-singular) system
  const cont = await cg(mv, bt, {
    onNegativeCurvature: "continue",
    rtol: b.dtype === "f64" ? 1e-12 : 1e-6,
    maxIter: 200,
  });
  assert.ok(cont.converged, cont.message);
  assert.equal(cont.negativeCurvature, true);
  const tol = b.dtype === "f64" ? { rtol: 1e-8, atol: 1e-10 } : { rtol: 1e-3, atol: 1e-4 };
  assertClose(await cont.x.data(), solveDense(A, rhs), tol);
  res.x.dispose(), cont.x.dispose(), At.dispose(), bt.dispose();
  assertNoLeak(base, "cg negative curvature");
});

testAll("cg reports a NaN from the matvec as a breakdown and keeps x finite", async (b) => {
  const bt = mk(b, [1, 2, 3]), d = mk(b, [1, 2, 3]);
  let calls = 0;
  // A = diag(1, 2, 3) needs 3 steps; the third matvec returns NaN
  const res = await cg((v) => (++calls > 2 ? v.mul(NaN) : v.mul(d)), bt, { checkEvery: 4 });
  assert.equal(res.iterations, 2);
  assert.equal(res.breakdown, true);
  assert.equal(res.converged, false);
  assert.match(res.message, /breakdown/);
  assert.ok((await res.x.data()).every(Number.isFinite));
  res.x.dispose(), bt.dispose(), d.dispose();
});

testAll(
  "cg on a singular positive semidefinite A with b outside its range: a breakdown, x finite",
  async (b) => {
    const base = memory();
    // A = Q diag(3, 1, 0, 0) Qᵀ (Q a random rotation, so rounding leaves pᵀAp tiny, not 0),
    // b = A e + u with u in A's null space: no solution; exact CG meets pᵀAp = 0. Before the
    // fix CG took the rounding-level pᵀAp as positive and returned x ≈ 1e157 and NaN.
    const Q = randomOrthogonal(4, 5);
    const A = fromEigen(Q, [3, 1, 0, 0]);
    const u = Q.map((row) => row[2] + row[3]); // in the null space
    const rhs = matVec(A, [1, 1, 1, 1]).map((v, i) => v + u[i]);
    const { mv, At } = matrixOp(b, A);
    const bt = mk(b, rhs);
    const res = await cg(mv, bt, { checkEvery: 3 });
    assert.equal(res.breakdown, true, res.message);
    assert.equal(res.converged, false);
    assert.ok(!res.negativeCurvature, "A is semidefinite: not negative curvature");
    assert.match(res.message, /singular/);
    const x = await res.x.data();
    // exact CG stays bounded until the breakdown (its iterates lie in the Krylov space of
    // A and b, which holds b's null-space part only to first order): ‖x‖ of order ‖b‖ / λ_min⁺
    assert.ok(x.every((v) => Math.abs(v) < 100), `x = ${x}`);
    res.x.dispose(), At.dispose(), bt.dispose();
    assertNoLeak(base, "cg singular");
  },
);

testAll("cg names NaN in b or x0 instead of reporting curvature", async (b) => {
  const base = memory();
  const d = mk(b, [1, 2, 3]);
  const mv = (v: Tensor) => v.mul(d);
  const bad = mk(b, [1, NaN, 3]), good = mk(b, [1, 2, 3]);
  await assert.rejects(cg(mv, bad), /cg: b contains NaN or Infinity/);
  await assert.rejects(cg(mv, good, { x0: bad }), /cg: x0 contains NaN or Infinity/);
  for (const t of [d, bad, good]) t.dispose();
  assertNoLeak(base, "cg NaN inputs");
});

testAll("cg: rtol and atol with SciPy's meaning; tol is rejected with advice", async (b) => {
  const base = memory();
  const n = 12;
  const A = spd(n, 3);
  const rhs = Array.from(randArray(n, 4)).map((v) => 100 * v);
  const { mv, At } = matrixOp(b, A);
  const bt = mk(b, rhs);
  const bnorm = Math.hypot(...rhs);
  // relative: ‖r‖ ≤ rtol ‖b‖ (the residual recomputed independently in f64 from x)
  const rel = await cg(mv, bt, { rtol: 1e-3, checkEvery: 1 });
  const x = Array.from(await rel.x.data());
  const r = matVec(A, x).map((v, i) => rhs[i] - v);
  assert.ok(rel.converged && Math.hypot(...r) <= 1.001e-3 * bnorm, rel.message);
  // absolute: atol = 1e-3 · ‖b‖ is the same target; atol alone with rtol 0
  const abs_ = await cg(mv, bt, { rtol: 0, atol: 1e-3 * bnorm, checkEvery: 1 });
  assert.equal(abs_.iterations, rel.iterations);
  // the larger of the two wins
  const both = await cg(mv, bt, { rtol: 1e-12, atol: 1e-3 * bnorm, checkEvery: 1 });
  assert.equal(both.iterations, rel.iterations);
  await assert.rejects(cg(mv, bt, { tol: 1e-10 } as never), /no "tol".*rtol.*atol/);
  await assert.rejects(cg(mv, bt, { maxiter: 3 } as never), /did you mean "maxIter"/);
  await assert.rejects(cg(mv, bt, { atol: -1 }), /atol must be a finite number ≥ 0/);
  for (const t of [rel.x, abs_.x, both.x, At, bt]) t.dispose();
  assertNoLeak(base, "cg tolerances");
});

Deno.test({
  name: "cg on WebGPU: at most one read-back per 10 iterations",
  ignore: !gpuDev,
  fn: async () => {
    const b: Backend = { name: "webgpu-f32", dev: gpuDev!, dtype: "f32", rtol: 1e-5 };
    const n = 64;
    // a spread spectrum so CG needs dozens of iterations
    const lam = Array.from({ length: n }, (_, i) => 1 + 99 * (i / (n - 1)) ** 2);
    const A = fromEigen(randomOrthogonal(n, 11), lam);
    const { mv, At } = matrixOp(b, A);
    const rhs = Array.from(randArray(n, 12));
    const bt = mk(b, rhs);
    await gpuDev!.sync();
    const before = gpuDev!.stats.readbacks;
    const res = await cg(mv, bt, { rtol: 1e-5 });
    const readbacks = gpuDev!.stats.readbacks - before;
    assert.ok(res.converged, res.message);
    assert.ok(res.iterations >= 20, `${res.iterations} iterations: too few to test the rate`);
    assert.ok(
      readbacks <= Math.ceil(res.iterations / 10) + 1,
      `${readbacks} read-backs for ${res.iterations} iterations`,
    );
    assertClose(await res.x.data(), solveDense(A, rhs), { rtol: 1e-3, atol: 1e-5 });
    res.x.dispose(), At.dispose(), bt.dispose();
  },
});

testAll("neumann converges when ‖I − sA‖ < 1 and reports divergence otherwise", async (b) => {
  const base = memory();
  const n = 10;
  const lam = Array.from({ length: n }, (_, i) => 1 + i); // spectrum [1, 10]
  const A = fromEigen(randomOrthogonal(n, 13), lam);
  const { mv, At } = matrixOp(b, A);
  const rhs = Array.from(randArray(n, 14));
  const bt = mk(b, rhs);
  // s = 0.15: |1 − sλ| ≤ 0.85, so 300 terms leave an error ≤ 0.85^300 ≈ 6e-22 of A⁻¹b
  const ok = await neumannSeries(mv, bt, { terms: 300, scale: 0.15 });
  assert.equal(ok.diverged, false, ok.message);
  assert.equal(ok.terms, 300);
  const tol = b.dtype === "f64" ? { rtol: 1e-10, atol: 1e-12 } : { rtol: 1e-4, atol: 1e-5 };
  assertClose(await ok.x.data(), solveDense(A, rhs), tol);
  // s = 0.25: |1 − 0.25·10| = 1.5, the λ = 10 component grows by 1.5 per term
  const bad = await neumannSeries(mv, bt, { terms: 300, scale: 0.25 });
  assert.equal(bad.diverged, true);
  assert.match(bad.message, /diverged/);
  assert.ok(bad.terms < 300);
  assert.ok((await bad.x.data()).every(Number.isFinite), "x is the finite partial sum");
  // a matvec returning NaN also counts as divergence, never a NaN result
  const nan = await neumannSeries((v) => v.mul(NaN), bt, { terms: 5, scale: 0.1 });
  assert.equal(nan.diverged, true);
  assert.equal(nan.terms, 1);
  assertClose(await nan.x.data(), rhs.map((v) => 0.1 * v), { rtol: b.rtol * 10 });
  for (const t of [ok.x, bad.x, nan.x, At, bt]) t.dispose();
  assertNoLeak(base, "neumann");
});

testAll(
  "neumann (the tensor form): the same x at once; divergence is an error, not Inf/NaN",
  async (b) => {
    const base = memory();
    const n = 10;
    const lam = Array.from({ length: n }, (_, i) => 1 + i);
    const A = fromEigen(randomOrthogonal(n, 13), lam);
    const { mv, At } = matrixOp(b, A);
    const rhs = Array.from(randArray(n, 14));
    const bt = mk(b, rhs);
    const x = neumann(mv, bt, { terms: 300, scale: 0.15 });
    const tol = b.dtype === "f64" ? { rtol: 1e-10, atol: 1e-12 } : { rtol: 1e-4, atol: 1e-5 };
    assertClose(await x.data(), solveDense(A, rhs), tol);
    x.dispose();
    if (b.dev.kind === "cpu") {
      // the CPU knows at once
      assert.throws(
        () => neumann(mv, bt, { terms: 300, scale: 0.25 }),
        /neumann: the series diverged/,
      );
    } else {
      // WebGPU kernels cannot throw: the next read-back does
      const y = neumann(mv, bt, { terms: 300, scale: 0.25 });
      await assert.rejects(() => y.data(), /neumann: the series diverged/);
      y.dispose();
    }
    for (const t of [At, bt]) t.dispose();
    assertNoLeak(base, "neumann tensor form");
  },
);

testAll("inverseHvp matches (H + λI)⁻¹v from the closed-form Hessian", async (b) => {
  const base = memory();
  const n = 8;
  // f = ½xᵀAx + Σ cosh xᵢ: H = A + diag(cosh x)
  const A = spd(n, 15);
  const At = mk(b, A.flat(), [n, n]);
  const f = (x: Tensor) =>
    matmul(x, matmul(At, x)).mul(0.5).add(sum(exp(x).add(exp(x.neg())).mul(0.5)));
  const xs = Array.from(randArray(n, 16));
  const vs = Array.from(randArray(n, 17));
  const x = mk(b, xs), v = mk(b, vs);
  const H = A.map((row, i) => row.map((a, j) => a + (i === j ? Math.cosh(xs[i]) : 0)));
  for (const damping of [0, 0.7]) {
    const Hd = H.map((row, i) => row.map((h, j) => h + (i === j ? damping : 0)));
    const exact = solveDense(Hd, vs);
    const u = await inverseHvp(f, x, v, {
      method: "cg",
      damping,
      rtol: b.dtype === "f64" ? 1e-13 : 1e-6,
    });
    assertClose(await u.data(), exact, solveTol(b));
    // λ(H) ⊂ [1.62, 2.93] (computed once by power iteration on the dense H above), so
    // s = 0.2 gives |1 − sλ| ≤ 0.68 and 100 terms leave 0.68^100 ≈ 1e-17 of the answer
    const w = await inverseHvp(f, x, v, { method: "neumann", damping, terms: 100, scale: 0.2 });
    assertClose(await w.data(), exact, solveTol(b));
    u.dispose(), w.dispose();
  }
  await assert.rejects(
    () => inverseHvp(f, x, v, { method: "neumann", terms: 100, scale: 5 }),
    /Neumann series .* diverged/,
  );
  await assert.rejects(() => inverseHvp(f, x, v, { method: "neumann" }), /needs scale/);
  x.dispose(), v.dispose(), At.dispose();
  assertNoLeak(base, "inverseHvp");
});

testAll(
  "inverseHvp on an indefinite Hessian: an error naming the curvature, fixed by damping",
  async (b) => {
    const c = mk(b, [2, -1, 3]);
    const f = (x: Tensor) => x.square().mul(c).sum().mul(0.5); // H = diag(2, -1, 3)
    const x = mk(b, [1, 1, 1]), v = mk(b, [1, 1, 1]);
    await assert.rejects(
      () => inverseHvp(f, x, v, { method: "cg" }),
      /negative curvature.*damping/s,
    );
    const u = await inverseHvp(f, x, v, { method: "cg", damping: 2, rtol: 1e-7 });
    assertClose(await u.data(), [1 / 4, 1, 1 / 5], { rtol: b.dtype === "f64" ? 1e-7 : 1e-4 });
    u.dispose(), c.dispose(), x.dispose(), v.dispose();
  },
);

Deno.test("solver errors name the problem", async () => {
  const bt = tensor([1, 2]);
  await assert.rejects(() => cg((v) => v.reshape([1, 2]), bt), /matvec returned \[1,2\] f32/);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(() => cg("A" as any, bt), /matvec must be a function/);
  await assert.rejects(() => cg((v) => v, bt, { checkEvery: 0 }), /checkEvery/);
  await assert.rejects(() => neumannSeries((v) => v, bt, { terms: 0, scale: 1 }), /terms/);
  await assert.rejects(
    () => cg((v) => v, bt, { x0: tensor([1, 2, 3]) }),
    /x0 is \[3\]/,
  );
  bt.dispose();
});
