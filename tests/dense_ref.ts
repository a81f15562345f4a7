/**
 * Dense f64 references on the host for the curvature and solver tests, independent of the
 * library: Gaussian elimination, random symmetric and orthogonal matrices.
 */
import { rng } from "./helpers.ts";

export type Mat = number[][];

/** Solves A x = b by Gaussian elimination with partial pivoting (f64). */
export function solveDense(A: Mat, b: readonly number[]): number[] {
  const n = A.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = c + 1; r < n; r++) {
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  const x = new Array(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r][n];
    for (let k = r + 1; k < n; k++) s -= M[r][k] * x[k];
    x[r] = s / M[r][r];
  }
  return x;
}

/** A · v on the host. */
export function matVec(A: Mat, v: readonly number[]): number[] {
  return A.map((row) => row.reduce((s, a, j) => s + a * v[j], 0));
}

/** A random symmetric n × n matrix with entries in [-1, 1), rounded to f32. */
export function randomSymmetric(n: number, seed: number): Mat {
  const r = rng(seed);
  const A: Mat = Array.from({ length: n }, () => new Array(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) A[i][j] = A[j][i] = Math.fround(2 * r() - 1);
  }
  return A;
}

/** A random orthogonal n × n matrix (Gram–Schmidt twice on random columns). */
export function randomOrthogonal(n: number, seed: number): Mat {
  const r = rng(seed);
  const cols: number[][] = [];
  for (let c = 0; c < n; c++) {
    let v = Array.from({ length: n }, () => 2 * r() - 1);
    for (let pass = 0; pass < 2; pass++) {
      for (const q of cols) {
        const d = q.reduce((s, qi, i) => s + qi * v[i], 0);
        v = v.map((vi, i) => vi - d * q[i]);
      }
    }
    const nv = Math.hypot(...v);
    cols.push(v.map((vi) => vi / nv));
  }
  return Array.from({ length: n }, (_, i) => cols.map((q) => q[i]));
}

/** Q diag(d) Qᵀ. */
export function fromEigen(Q: Mat, d: readonly number[]): Mat {
  const n = Q.length;
  return Array.from(
    { length: n },
    (_, i) =>
      Array.from({ length: n }, (_, j) => {
        let s = 0;
        for (let k = 0; k < d.length; k++) s += Q[i][k] * d[k] * Q[j][k];
        return s;
      }),
  );
}

/** The eigenvalues of a symmetric matrix, ascending (cyclic Jacobi rotations, f64). */
export function symmetricEigenvalues(A: Mat): number[] {
  const n = A.length;
  const M = A.map((row) => [...row]);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += M[i][j] * M[i][j];
    if (off < 1e-30 * Math.max(1e-300, ...M.map((r, i) => r[i] * r[i]))) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (M[p][q] === 0) continue;
        const theta = (M[q][q] - M[p][p]) / (2 * M[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const [mkp, mkq] = [M[k][p], M[k][q]];
          M[k][p] = c * mkp - s * mkq;
          M[k][q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const [mpk, mqk] = [M[p][k], M[q][k]];
          M[p][k] = c * mpk - s * mqk;
          M[q][k] = s * mpk + c * mqk;
        }
      }
    }
  }
  return M.map((r, i) => r[i]).sort((a, b) => a - b);
}
