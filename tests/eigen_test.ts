/**
 * Top-k Hessian eigenvalues (power iteration with deflation, Lanczos) against matrices whose
 * eigen-decomposition is built in the test: diagonal Hessians and Q diag(λ) Qᵀ with a random
 * orthogonal Q. Also the host tridiagonal solver against the closed form for Toeplitz T.
 */
import assert from "node:assert/strict";
import { hessianEigenvalues, matmul, memory, type Tensor, tensor } from "../mod.ts";
import { assertClose, assertNoLeak, type Backend, randArray, testAll } from "./helpers.ts";
import { fromEigen, randomOrthogonal } from "./dense_ref.ts";
import { tridiagonalEigen } from "../src/linalg/tridiagonal.ts";

function mk(b: Backend, data: ArrayLike<number>, shape?: readonly number[]): Tensor {
  return tensor(Float64Array.from(data), {
    shape: shape ?? [data.length],
    dtype: b.dtype,
    device: b.dev,
  });
}

/** The k entries of largest magnitude, by decreasing magnitude. */
function topK(lam: readonly number[], k: number): number[] {
  return [...lam].sort((a, b) => Math.abs(b) - Math.abs(a)).slice(0, k);
}

// f32 eigenvalues: tol 1e-4 on the residual gives |λ − θ| ≲ ‖r‖²/gap plus rounding of ‖H‖ε
const valueTol = (b: Backend) => (b.dtype === "f64" ? { rtol: 1e-8 } : { rtol: 2e-4 });

for (const method of ["lanczos", "power"] as const) {
  testAll(`${method}: top eigenvalues of a diagonal Hessian (x of shape [4, 5])`, async (b) => {
    const base = memory();
    const n = 20;
    // distinct magnitudes, mixed signs: 10.6, −9.9, 9.2, …
    const lam = Array.from({ length: n }, (_, i) => (i % 3 === 1 ? -1 : 1) * (1 + 0.7 * (n - i)));
    const c = mk(b, lam, [4, 5]);
    const f = (x: Tensor) => x.square().mul(c).sum().mul(0.5);
    const x = mk(b, randArray(n, 1), [4, 5]);
    const res = await hessianEigenvalues(f, x, { k: 3, method, seed: 2 });
    assert.ok(res.converged, `residuals ${res.residuals}`);
    assertClose(res.values, topK(lam, 3), valueTol(b));
    assert.deepEqual(res.vectors.shape, [3, 4, 5]);
    // eigenvector i is ± the unit vector of its eigenvalue's index
    const V = await res.vectors.data();
    res.values.forEach((v, i) => {
      const j = lam.findIndex((l) => Math.abs(l - v) < 1e-2);
      assertClose([Math.abs(V[i * n + j])], [1], { rtol: b.dtype === "f64" ? 1e-6 : 1e-3 });
    });
    res.vectors.dispose(), c.dispose(), x.dispose();
    assertNoLeak(base, method);
  });

  testAll(`${method}: top eigenvalues of Q diag(λ) Qᵀ`, async (b) => {
    const base = memory();
    const n = 24;
    const lam = Array.from({ length: n }, (_, i) => (i === 0 ? -12 : i === 1 ? 9 : 6 - 0.2 * i));
    const Q = randomOrthogonal(n, 3);
    const A = fromEigen(Q, lam);
    const At = mk(b, A.flat(), [n, n]);
    const f = (x: Tensor) => matmul(x, matmul(At, x)).mul(0.5);
    const x = mk(b, randArray(n, 4));
    const res = await hessianEigenvalues(f, x, { k: 3, method, seed: 5 });
    assert.ok(res.converged, `residuals ${res.residuals}`);
    assertClose(res.values, [-12, 9, 6 - 0.4], valueTol(b));
    // |⟨v_i, q_i⟩| = 1 for the matching columns of Q
    const V = await res.vectors.data();
    for (const [i, col] of [0, 1, 2].entries()) {
      const dot = Q.reduce((s, row, r) => s + row[col] * V[i * n + r], 0);
      assertClose([Math.abs(dot)], [1], { rtol: b.dtype === "f64" ? 1e-6 : 1e-3 });
    }
    res.vectors.dispose(), At.dispose(), x.dispose();
    assertNoLeak(base, method);
  });
}

testAll(
  "lanczos finds a rank-deficient Hessian's eigenvalues (invariant subspace restart)",
  async (b) => {
    const n = 16;
    // rank 2: the Krylov space of a start vector is exhausted after 2 steps
    const lam = Array.from({ length: n }, (_, i) => (i === 0 ? 5 : i === 1 ? -3 : 0));
    const A = fromEigen(randomOrthogonal(n, 6), lam);
    const At = mk(b, A.flat(), [n, n]);
    const f = (x: Tensor) => matmul(x, matmul(At, x)).mul(0.5);
    const x = mk(b, randArray(n, 7));
    const res = await hessianEigenvalues(f, x, { k: 3, method: "lanczos", seed: 1 });
    assertClose(res.values, [5, -3, 0], { atol: b.dtype === "f64" ? 1e-9 : 1e-4 });
    res.vectors.dispose(), At.dispose(), x.dispose();
  },
);

testAll("power iteration reports non-convergence for a ±λ pair", async (b) => {
  const c = mk(b, [4, -4, 1]);
  const f = (x: Tensor) => x.square().mul(c).sum().mul(0.5); // λ = ±4: no dominant one
  const x = mk(b, [1, 1, 1]);
  const res = await hessianEigenvalues(f, x, { k: 1, method: "power", maxIter: 50 });
  assert.equal(res.converged, false);
  assert.ok(res.residuals[0] > 1e-2, `residual ${res.residuals[0]}`);
  // Lanczos separates them
  const lz = await hessianEigenvalues(f, x, { k: 2, method: "lanczos" });
  assert.ok(lz.converged);
  assertClose(lz.values.map(Math.abs), [4, 4], valueTol(b));
  assertClose([lz.values[0] * lz.values[1]], [-16], valueTol(b));
  res.vectors.dispose(), lz.vectors.dispose(), c.dispose(), x.dispose();
});

testAll("onProgress: one report per read-back, the last with the result's residual", async (b) => {
  const n = 12;
  const lam = Array.from({ length: n }, (_, i) => 1 + 0.5 * i);
  const c = mk(b, lam);
  const f = (x: Tensor) => x.square().mul(c).sum().mul(0.5);
  const x = mk(b, randArray(n, 3));
  for (const method of ["lanczos", "power"] as const) {
    const seen: { done: number; total: number; unit: string; residual?: number }[] = [];
    const res = await hessianEigenvalues(f, x, {
      k: 1,
      method,
      checkEvery: 3,
      maxIter: method === "power" ? 600 : 12,
      onProgress: (p) => seen.push({ ...p }),
    });
    assert.ok(seen.length >= 1, `${method}: no report`);
    const last = seen[seen.length - 1];
    assert.equal(last.unit, method === "power" ? "power iterations" : "Lanczos steps");
    assert.equal(last.total, method === "power" ? 600 : 12);
    assert.equal(last.done, res.iterations, `${method}: done = iterations`);
    seen.forEach((p, i) => assert.equal(p.done, Math.min(3 * (i + 1), res.iterations)));
    assertClose([last.residual!], [Math.max(...res.residuals)], { rtol: 1e-12 });
    res.vectors.dispose();
  }
  await assert.rejects(
    () => hessianEigenvalues(f, x, { max_iter: 3 } as never),
    /hessianEigenvalues: unknown option "max_iter"; did you mean "maxIter"\?/,
  );
  c.dispose(), x.dispose();
});

Deno.test("the tridiagonal eigen-solver matches the Toeplitz closed form", () => {
  for (const m of [1, 2, 7, 60]) {
    const a = 2.5, e = -1.25;
    const { values, vectors } = tridiagonalEigen(new Array(m).fill(a), new Array(m - 1).fill(e));
    // eigenvalues of tridiag(e, a, e): a + 2e cos(kπ/(m+1)), k = 1 … m
    const exact = Array.from(
      { length: m },
      (_, k) => a + 2 * e * Math.cos((k + 1) * Math.PI / (m + 1)),
    )
      .sort((p, q) => p - q);
    assertClose(values, exact, { atol: 1e-13 });
    for (let j = 0; j < m; j++) {
      // T v = λ v and ‖v‖ = 1
      let nrm = 0;
      for (let i = 0; i < m; i++) {
        const v = (r: number) => (r >= 0 && r < m ? vectors[r * m + j] : 0);
        const tv = a * v(i) + e * v(i - 1) + e * v(i + 1);
        assert.ok(Math.abs(tv - values[j] * v(i)) < 1e-12);
        nrm += v(i) ** 2;
      }
      assert.ok(Math.abs(nrm - 1) < 1e-12);
    }
  }
});

Deno.test("eigenvalue errors name the problem", async () => {
  const x = tensor([1, 2]);
  const f = (t: Tensor) => t.square().sum();
  await assert.rejects(() => hessianEigenvalues(f, x, { k: 3 }), /k = 3 exceeds the 2/);
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => hessianEigenvalues(f, x, { method: "qr" as any }),
    /method must be "power" or "lanczos"/,
  );
  x.dispose();
});
