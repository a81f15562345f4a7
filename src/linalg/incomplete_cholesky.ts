/**
 * Incomplete Cholesky with no fill, IC(0) (Meijerink & van der Vorst 1977): L lower
 * triangular on the lower half of A's own pattern with L Lᵀ ≈ A, as a preconditioner for
 * conjugate gradients. Where a pivot breaks down (A is not an M-matrix, or only barely
 * positive definite) the factorisation restarts on A + α·diag(A) with α doubled from 10⁻³
 * (Manteuffel 1980; the rule of Lin & Moré's ICFS), so M = L Lᵀ is always positive definite.
 *
 * Host work, O(Σᵢ rowᵢ²) to factor and O(nnz) per application: the triangular solves are
 * sequential, so this serves the CPU backend, where the values live in host memory anyway.
 */
import type { SparsityPattern } from "../curvature/pattern.ts";

/** An IC(0) factor and its application z = (L Lᵀ)⁻¹ r. */
export interface IncompleteCholesky {
  /** The diagonal shift factor α that made it factor (0: none was needed; Infinity: none did, and L is the diagonal's square root). */
  readonly shift: number;
  /** z = (L Lᵀ)⁻¹ r, into `out` (may be r itself). */
  solve(r: ArrayLike<number>, out: Float64Array): Float64Array;
}

/** Shifting stops past this α: A + α·diag(A) is then about its diagonal, and so is L Lᵀ. */
const MAX_SHIFT = 1e3;

/**
 * @internal IC(0) of the symmetric matrix with CSR `values` over `pattern` (square,
 * symmetric, columns ascending, diagonal present) plus `tau`·I. Throws a RangeError if a
 * diagonal entry is not positive (no shift of the diagonal can help then).
 */
export function incompleteCholesky(
  pattern: SparsityPattern,
  values: ArrayLike<number>,
  tau = 0,
): IncompleteCholesky {
  const n = pattern.shape[0];
  const { rowPtr, colIdx } = pattern;
  // the lower half (j ≤ i), CSR, with the diagonal last in each row
  const lp = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let k = rowPtr[i]; k < rowPtr[i + 1] && colIdx[k] <= i; k++) c++;
    lp[i + 1] = lp[i] + c;
  }
  const lc = new Int32Array(lp[n]), a = new Float64Array(lp[n]);
  for (let i = 0; i < n; i++) {
    let at = lp[i];
    for (let k = rowPtr[i]; k < rowPtr[i + 1] && colIdx[k] <= i; k++) {
      lc[at] = colIdx[k];
      a[at++] = values[k] + (colIdx[k] === i ? tau : 0);
    }
    if (at === lp[i] || lc[at - 1] !== i || !(a[at - 1] > 0)) {
      throw new RangeError(
        `incompleteCholesky: diagonal entry ${i} is ${
          at > lp[i] && lc[at - 1] === i ? a[at - 1] : "missing"
        }; the matrix is not positive definite`,
      );
    }
  }
  const L = new Float64Array(lp[n]);
  const pos = new Int32Array(n).fill(-1); // where column j sits in the current row
  const factor = (alpha: number): boolean => {
    for (let i = 0; i < n; i++) {
      const s = lp[i], e = lp[i + 1];
      for (let k = s; k < e; k++) pos[lc[k]] = k;
      for (let k = s; k < e - 1; k++) {
        const j = lc[k];
        // L[i][j] = (A[i][j] − Σ_{m<j} L[i][m] L[j][m]) / L[j][j], over row j's pattern
        let v = a[k];
        for (let q = lp[j]; q < lp[j + 1] - 1; q++) {
          const p = pos[lc[q]];
          if (p >= s && p < k) v -= L[p] * L[q];
        }
        L[k] = v / L[lp[j + 1] - 1];
      }
      let d = a[e - 1] * (1 + alpha);
      for (let k = s; k < e - 1; k++) d -= L[k] * L[k];
      for (let k = s; k < e; k++) pos[lc[k]] = -1;
      if (!(d > 0) || !Number.isFinite(d)) return false;
      L[e - 1] = Math.sqrt(d);
    }
    return true;
  };
  let alpha = 0;
  while (!factor(alpha)) {
    alpha = alpha === 0 ? 1e-3 : 2 * alpha;
    if (alpha > MAX_SHIFT) {
      // as good as its diagonal: Jacobi
      for (let i = 0; i < n; i++) {
        L.fill(0, lp[i], lp[i + 1] - 1);
        L[lp[i + 1] - 1] = Math.sqrt(a[lp[i + 1] - 1]);
      }
      alpha = Infinity;
      break;
    }
  }
  return {
    shift: alpha,
    solve(r, out) {
      // L y = r, rows in order; then Lᵀ z = y, rows in reverse, scattering up the columns
      for (let i = 0; i < n; i++) {
        let v = r[i];
        const e = lp[i + 1] - 1;
        for (let k = lp[i]; k < e; k++) v -= L[k] * out[lc[k]];
        out[i] = v / L[e];
      }
      for (let i = n - 1; i >= 0; i--) {
        const e = lp[i + 1] - 1;
        const z = out[i] /= L[e];
        for (let k = lp[i]; k < e; k++) out[lc[k]] -= L[k] * z;
      }
      return out;
    },
  };
}
