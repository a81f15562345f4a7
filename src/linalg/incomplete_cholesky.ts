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
 * The symbolic phase, once per pattern: the lower half in CSR (diagonal last in each row),
 * where each of its entries comes from in A's values, and for each off-diagonal entry
 * (i, j) the pairs of positions (p, q) with L[p] at (i, m) and L[q] at (j, m), m < j, whose
 * products it subtracts. The numeric phase is then a pass over flat arrays.
 */
interface Symbolic {
  lp: Int32Array;
  lc: Int32Array;
  src: Int32Array;
  up: Int32Array;
  uq: Int32Array;
  uPtr: Int32Array;
}

const symbolics = new WeakMap<SparsityPattern, Symbolic>();

function symbolic(pattern: SparsityPattern): Symbolic {
  const cached = symbolics.get(pattern);
  if (cached) return cached;
  const n = pattern.shape[0];
  const { rowPtr, colIdx } = pattern;
  const lp = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let k = rowPtr[i]; k < rowPtr[i + 1] && colIdx[k] <= i; k++) c++;
    lp[i + 1] = lp[i] + c;
  }
  const nl = lp[n];
  const lc = new Int32Array(nl), src = new Int32Array(nl);
  for (let i = 0; i < n; i++) {
    let at = lp[i];
    for (let k = rowPtr[i]; k < rowPtr[i + 1] && colIdx[k] <= i; k++) {
      lc[at] = colIdx[k];
      src[at++] = k;
    }
  }
  const pos = new Int32Array(n).fill(-1); // where column m sits in the current row
  const up: number[] = [], uq: number[] = [];
  const uPtr = new Int32Array(nl + 1);
  for (let i = 0; i < n; i++) {
    const s = lp[i], e = lp[i + 1];
    for (let k = s; k < e; k++) pos[lc[k]] = k;
    for (let k = s; k < e; k++) {
      const j = lc[k];
      if (j !== i) {
        for (let q = lp[j]; q < lp[j + 1] - 1; q++) {
          const p = pos[lc[q]];
          if (p >= s && p < k) up.push(p), uq.push(q);
        }
      }
      uPtr[k + 1] = up.length;
    }
    for (let k = s; k < e; k++) pos[lc[k]] = -1;
  }
  const sym = { lp, lc, src, up: Int32Array.from(up), uq: Int32Array.from(uq), uPtr };
  symbolics.set(pattern, sym);
  return sym;
}

/** @internal The length of the work array `incompleteCholesky` needs for `pattern`. */
export function incompleteCholeskySize(pattern: SparsityPattern): number {
  return symbolic(pattern).lp[pattern.shape[0]];
}

/**
 * @internal IC(0) of the symmetric matrix with CSR `values` over `pattern` (square,
 * symmetric, columns ascending) plus `tau`·I. Throws a RangeError if a diagonal entry is
 * missing or not positive (no shift of the diagonal can help then). The factor is written
 * into `work` (length `incompleteCholeskySize(pattern)`) when given: a caller that factors
 * again and again reuses it (fresh memory's first touch costs more than the factorisation).
 */
export function incompleteCholesky(
  pattern: SparsityPattern,
  values: ArrayLike<number>,
  tau = 0,
  work?: Float64Array,
): IncompleteCholesky {
  const n = pattern.shape[0];
  const { lp, lc, src, up, uq, uPtr } = symbolic(pattern);
  for (let i = 0; i < n; i++) {
    const e = lp[i + 1] - 1;
    if (e < lp[i] || lc[e] !== i || !(values[src[e]] + tau > 0)) {
      throw new RangeError(
        `incompleteCholesky: diagonal entry ${i} is ${
          e >= lp[i] && lc[e] === i ? values[src[e]] + tau : "missing"
        }; the matrix is not positive definite`,
      );
    }
  }
  const L = work ?? new Float64Array(lp[n]);
  const factor = (alpha: number): boolean => {
    for (let i = 0; i < n; i++) {
      const e = lp[i + 1] - 1;
      let d = (values[src[e]] + tau) * (1 + alpha);
      for (let k = lp[i]; k < e; k++) {
        let v = values[src[k]];
        for (let u = uPtr[k]; u < uPtr[k + 1]; u++) v -= L[up[u]] * L[uq[u]];
        const l = L[k] = v / L[lp[lc[k] + 1] - 1];
        d -= l * l;
      }
      if (!(d > 0) || !Number.isFinite(d)) return false;
      L[e] = Math.sqrt(d);
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
        L[lp[i + 1] - 1] = Math.sqrt(values[src[lp[i + 1] - 1]] + tau);
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
