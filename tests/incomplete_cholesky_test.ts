/**
 * IC(0), the incomplete Cholesky preconditioner of newton-sparse's CG. References are
 * dense and on the host (tests/dense_ref.ts, Gaussian elimination): the defining property
 * of IC(0) — (L Lᵀ)ᵢⱼ = Aᵢⱼ on A's pattern — is read off M = L Lᵀ, which is recovered by
 * inverting the preconditioner column by column; on a tridiagonal matrix (no fill) IC(0)
 * is the exact Cholesky factor, so its solve is the dense solve.
 */
import assert from "node:assert/strict";
import { SparsityPattern } from "../mod.ts";
import { incompleteCholesky, incompleteCholeskySize } from "../src/linalg/incomplete_cholesky.ts";
import { assertClose, randArray } from "./helpers.ts";
import { type Mat, solveDense } from "./dense_ref.ts";

/** The pattern and CSR values of a dense symmetric matrix's nonzeros (and its diagonal). */
function csr(A: Mat): { p: SparsityPattern; v: Float64Array } {
  const n = A.length, e: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) if (A[i][j] !== 0 || i === j) e.push([i, j]);
  }
  const p = SparsityPattern.fromEntries([n, n], e);
  const v = new Float64Array(p.nnz);
  for (let i = 0; i < n; i++) {
    for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) v[k] = A[i][p.colIdx[k]];
  }
  return { p, v };
}

/** M = L Lᵀ from its solve: the columns of M⁻¹, then M = (M⁻¹)⁻¹ by dense solves. */
function preconditionerMatrix(solve: (r: Float64Array) => Float64Array, n: number): Mat {
  const Minv: Mat = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let j = 0; j < n; j++) {
    const e = new Float64Array(n);
    e[j] = 1;
    const c = solve(e);
    for (let i = 0; i < n; i++) Minv[i][j] = c[i];
  }
  const M: Mat = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let j = 0; j < n; j++) {
    const e = new Array<number>(n).fill(0);
    e[j] = 1;
    const c = solveDense(Minv, e);
    for (let i = 0; i < n; i++) M[i][j] = c[i];
  }
  return M;
}

/** A 5-point grid Laplacian plus a diagonal: an M-matrix, where IC(0) never breaks down. */
function gridMatrix(h: number, w: number, seed: number): Mat {
  const n = h * w, d = randArray(n, seed, 0.1, 1);
  const A: Mat = Array.from({ length: n }, (_, i) => {
    const row = new Array<number>(n).fill(0);
    row[i] = d[i];
    return row;
  });
  const edge = (a: number, b: number, c: number) => {
    A[a][b] -= c;
    A[b][a] -= c;
    A[a][a] += c;
    A[b][b] += c;
  };
  const c = randArray(2 * n, seed + 1, 0.5, 2);
  for (let r = 0; r < h; r++) {
    for (let col = 0; col < w; col++) {
      const i = r * w + col;
      if (r + 1 < h) edge(i, i + w, c[2 * i]);
      if (col + 1 < w) edge(i, i + 1, c[2 * i + 1]);
    }
  }
  return A;
}

Deno.test("incompleteCholesky: tridiagonal (no fill) is the exact factor", () => {
  const n = 12, d = randArray(n, 3, 2.5, 4), o = randArray(n, 4, -1, 1);
  const A: Mat = Array.from(
    { length: n },
    (_, i) =>
      Array.from(
        { length: n },
        (_, j) => (i === j ? d[i] : Math.abs(i - j) === 1 ? o[Math.min(i, j)] : 0),
      ),
  );
  const { p, v } = csr(A);
  const ic = incompleteCholesky(p, v);
  assert.equal(ic.shift, 0);
  const b = randArray(n, 5);
  assertClose(ic.solve(b, new Float64Array(n)), solveDense(A, [...b]), {
    rtol: 1e-12,
    atol: 1e-12,
  });
  // into a work array of the size it asks for: the same factor
  const work = new Float64Array(incompleteCholeskySize(p));
  assert.equal(work.length, 2 * n - 1);
  const iw = incompleteCholesky(p, v, 0, work);
  assertClose(iw.solve(b, new Float64Array(n)), ic.solve(b, new Float64Array(n)), {
    rtol: 0,
    atol: 0,
  });
  assert.ok(work.some((x) => x !== 0));
  // τ adds τI before factoring
  const tau = 0.75;
  const At = A.map((row, i) => row.map((a, j) => a + (i === j ? tau : 0)));
  const it = incompleteCholesky(p, v, tau);
  assertClose(it.solve(b, new Float64Array(n)), solveDense(At, [...b]), {
    rtol: 1e-12,
    atol: 1e-12,
  });
});

Deno.test("incompleteCholesky: L Lᵀ equals A on its pattern (5-point grid)", () => {
  const [h, w] = [5, 6], n = h * w;
  const A = gridMatrix(h, w, 7);
  const { p, v } = csr(A);
  const ic = incompleteCholesky(p, v);
  assert.equal(ic.shift, 0, "an M-matrix factors without a shift");
  const M = preconditionerMatrix((r) => ic.solve(r, new Float64Array(n)), n);
  let onPattern = 0, fill = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (p.has(i, j)) onPattern = Math.max(onPattern, Math.abs(M[i][j] - A[i][j]));
      else fill = Math.max(fill, Math.abs(M[i][j]));
    }
  }
  assert.ok(onPattern < 1e-10, `|LLᵀ − A| on the pattern: ${onPattern}`);
  assert.ok(fill > 1e-3, "and it is not the exact factor: L Lᵀ has fill outside the pattern");
  // the output may be the input
  const b = randArray(n, 8), into = Float64Array.from(b);
  assertClose(ic.solve(into, into), ic.solve(b, new Float64Array(n)), { rtol: 0, atol: 0 });
});

Deno.test("incompleteCholesky: a breakdown is shifted away, M stays positive definite", () => {
  // SPD (smallest eigenvalue 0.071, NumPy) but not an M-matrix: the unshifted IC(0) meets
  // the pivot −0.958 at row 4 (NumPy, by the same recurrence)
  const A: Mat = [
    [1.6, 1.0, 0, 0.4, -0.7],
    [1.0, 1.6, 1.0, 0, 0],
    [0, 1.0, 1.6, 0, 1.0],
    [0.4, 0, 0, 1.6, 0.7],
    [-0.7, 0, 1.0, 0.7, 1.6],
  ];
  const { p, v } = csr(A);
  const ic = incompleteCholesky(p, v);
  assert.ok(ic.shift > 0 && Number.isFinite(ic.shift), `shift ${ic.shift}`);
  const M = preconditionerMatrix((r) => ic.solve(r, new Float64Array(5)), 5);
  // M is symmetric, and positive definite: its Cholesky by hand succeeds
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 5; j++) {
      assert.ok(Math.abs(M[i][j] - M[j][i]) < 1e-12);
      // and it is IC(0) of A + α·diag(A): equal to that on the pattern
      const want = A[i][j] * (i === j ? 1 + ic.shift : 1);
      if (p.has(i, j)) assert.ok(Math.abs(M[i][j] - want) < 1e-10, `(${i}, ${j})`);
    }
  }
  const L = M.map((row) => row.map(() => 0));
  for (let j = 0; j < 5; j++) {
    let d = M[j][j];
    for (let k = 0; k < j; k++) d -= L[j][k] ** 2;
    assert.ok(d > 0, `pivot ${j}: ${d}`);
    L[j][j] = Math.sqrt(d);
    for (let i = j + 1; i < 5; i++) {
      let s = M[i][j];
      for (let k = 0; k < j; k++) s -= L[i][k] * L[j][k];
      L[i][j] = s / L[j][j];
    }
  }
});

Deno.test("incompleteCholesky: a non-positive diagonal is a clear error", () => {
  const { p, v } = csr([[1, 0.5], [0.5, -2]]);
  assert.throws(() => incompleteCholesky(p, v), {
    name: "RangeError",
    message: /diagonal entry 1 is -2; the matrix is not positive definite/,
  });
});
