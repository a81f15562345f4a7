/**
 * General banded solves on the CPU, in f64: LAPACK gbsv, the routine behind
 * `scipy.linalg.solve_banded` — gbtrf's unblocked form dgbtf2 (what LAPACK runs for fewer
 * than 32 subdiagonals) and gbtrs.
 *
 * The factor lives in LAPACK's own working layout, column-packed: column j holds rows
 * j − kv … j + l of the matrix at w[j·L + kv + i − j] (kv = l + u, L = 2l + u + 1), the top
 * l rows being room for the fill-in that row interchanges bring into U. A step along a row
 * is L − 1 numbers.
 *
 * gbtrs applies L⁻¹ and the interchanges to the right-hand sides in step j's order, using
 * only column j of L and the pivot row chosen at step j; here that happens inside the
 * factorisation's step j, so L and the pivot indices are never stored. The arithmetic is
 * LAPACK's, operation for operation (reciprocal scaling of the multipliers, rank-1 updates
 * column by column skipping zero entries, dtbsv's column-oriented back substitution), so
 * results agree with SciPy's to rounding. (SciPy takes ?gtsv for l = u = 1, which pivots
 * the same way and orders the arithmetic slightly differently.)
 */
import type { TypedArray } from "../../dtype.ts";
import { singularBand } from "../banded_errors.ts";
import { asF64, inF64, scratch } from "./banded.ts";

/**
 * Factors one matrix (band `a` at `base`: LAPACK general band storage [l+u+1, n], row r
 * at a[base + r·n]) into `w` and solves in place on x[xOff…] ([n, m] rows, holding the
 * right-hand sides). Returns 0, or LAPACK's info: the 1-based step whose pivot is zero.
 */
function gbsv(
  a: Float64Array,
  base: number,
  n: number,
  l: number,
  u: number,
  x: Float64Array,
  xOff: number,
  m: number,
  w: Float64Array,
): number {
  const kv = l + u, L = 2 * l + u + 1, S = L - 1; // S: the step along a row
  // copy in: A[i][j] = ab[u + i − j][j]; rows above the band start as fill-in zeros
  for (let j = 0; j < n; j++) {
    const c = j * L + kv - j; // A[i][j] at w[c + i]
    const iTop = Math.max(0, j - kv), iBand = Math.max(0, j - u), iEnd = Math.min(n - 1, j + l);
    for (let i = iTop; i < iBand; i++) w[c + i] = 0;
    for (let i = iBand; i <= iEnd; i++) w[c + i] = a[base + (u + i - j) * n + j];
  }
  let ju = 0; // the last column the interchanges so far can reach (LAPACK's JU)
  for (let j = 0; j < n; j++) {
    const p = j * L + kv; // A[j][j]; the column below it follows, row j along it at p + k·S
    const km = Math.min(l, n - 1 - j);
    // idamax: the first entry of largest magnitude
    let jp = 0, best = Math.abs(w[p]);
    for (let q = 1; q <= km; q++) {
      const v = Math.abs(w[p + q]);
      if (v > best) {
        best = v;
        jp = q;
      }
    }
    const piv = w[p + jp];
    if (piv === 0) return j + 1;
    ju = Math.max(ju, Math.min(j + u + jp, n - 1));
    if (jp !== 0) {
      for (let k = 0, e = ju - j; k <= e; k++) {
        const s = p + k * S, t = w[s];
        w[s] = w[s + jp];
        w[s + jp] = t;
      }
      for (let c = 0; c < m; c++) {
        const s = xOff + j * m + c, t = x[s];
        x[s] = x[s + jp * m];
        x[s + jp * m] = t;
      }
    }
    if (km > 0) {
      const r = 1 / piv;
      for (let q = 1; q <= km; q++) w[p + q] *= r;
      // rank-1 update of the trailing block, column by column (dger)
      for (let k = 1, e = ju - j; k <= e; k++) {
        const s = p + k * S, y = w[s];
        if (y !== 0) {
          const t = -y;
          for (let q = 1; q <= km; q++) w[s + q] += w[p + q] * t;
        }
      }
      // gbtrs' step j on the right-hand sides
      for (let c = 0; c < m; c++) {
        const s = xOff + j * m + c, y = x[s];
        if (y !== 0) {
          const t = -y;
          for (let q = 1; q <= km; q++) x[s + q * m] += w[p + q] * t;
        }
      }
    }
  }
  // U X = Y, column-oriented (dtbsv, upper, k = kv), each right-hand side in turn
  for (let c = 0; c < m; c++) {
    for (let j = n - 1; j >= 0; j--) {
      const s = xOff + j * m + c;
      if (x[s] === 0) continue;
      const p = j * L + kv - j; // U[i][j] at w[p + i]
      const t = x[s] / w[p + j];
      x[s] = t;
      for (let i = j - 1, i0 = Math.max(0, j - kv); i >= i0; i--) {
        x[xOff + i * m + c] -= t * w[p + i];
      }
    }
  }
  return 0;
}

/**
 * Solves A X = R for each matrix of `ab` ([batch, l+u+1, n], LAPACK general band storage,
 * `ab[u + i − j][j] = A[i][j]`) and right-hand sides `rhs` ([batch, n, m]) into `out`
 * ([batch, n, m]). Throws on a singular matrix, naming `op`, the matrix and the zero pivot.
 */
export function solveBandedGeneralCpu(
  op: string,
  ab: TypedArray,
  rhs: TypedArray,
  out: TypedArray,
  batch: number,
  n: number,
  l: number,
  u: number,
  m: number,
): void {
  const a = asF64(ab);
  const w = scratch(n * (2 * l + u + 1));
  const R = l + u + 1;
  inF64(out, (x) => {
    x.set(rhs);
    for (let t = 0; t < batch; t++) {
      const info = gbsv(a, t * R * n, n, l, u, x, t * n * m, m, w);
      if (info) throw singularBand(op, batch > 1 ? t : null, info);
    }
  });
}
