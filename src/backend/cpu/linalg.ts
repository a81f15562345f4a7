/** Small dense linear algebra on the CPU: Gauss-Jordan with partial pivoting, in f64. */
import type { TypedArray } from "../../dtype.ts";

/**
 * Reduces W = [A | B] ([n, cols], row-major, f64, modified in place) by Gauss-Jordan with
 * partial pivoting, so W[:, n:] becomes A⁻¹B. With `lowerOnly`, only rows below the pivot
 * are eliminated (an LU factorisation: enough for determinants). Returns log|det A|, its
 * sign, and the first step with a zero pivot plus one (0 when A is regular).
 */
export function gaussJordan(
  w: Float64Array,
  n: number,
  cols: number,
  lowerOnly: boolean,
): { logabs: number; sign: number; singular: number } {
  let logabs = 0, sign = 1;
  // A zero factor is skipped (the row is unchanged), unless W holds a NaN: 0 · NaN is NaN,
  // and the WebGPU kernel, which never skips, spreads it that way; so must we, for the two
  // backends to give the same NaN pattern (and the same singular verdict) for such input.
  const skipZeros = !w.some(Number.isNaN);
  for (let k = 0; k < n; k++) {
    let piv = k, best = Math.abs(w[k * cols + k]);
    for (let i = k + 1; i < n; i++) {
      const v = Math.abs(w[i * cols + k]);
      if (v > best) {
        best = v;
        piv = i;
      }
    }
    if (best === 0) return { logabs: -Infinity, sign: 0, singular: k + 1 };
    if (piv !== k) {
      for (let j = k; j < cols; j++) {
        const t = w[k * cols + j];
        w[k * cols + j] = w[piv * cols + j];
        w[piv * cols + j] = t;
      }
      sign = -sign;
    }
    const pv = w[k * cols + k];
    if (pv < 0) sign = -sign;
    logabs += Math.log(Math.abs(pv));
    const inv = 1 / pv;
    for (let j = k + 1; j < cols; j++) w[k * cols + j] *= inv;
    for (let i = lowerOnly ? k + 1 : 0; i < n; i++) {
      if (i === k) continue;
      const f = w[i * cols + k];
      if (f === 0 && skipZeros) continue;
      const ri = i * cols, rk = k * cols;
      for (let j = k + 1; j < cols; j++) w[ri + j] -= f * w[rk + j];
    }
  }
  return { logabs, sign, singular: 0 };
}

/** Copies matrix `src[off..]` ([rows, c]) into columns [c0, c0 + c) of w ([rows, cols]). */
export function packColumns(
  w: Float64Array,
  cols: number,
  src: TypedArray,
  off: number,
  rows: number,
  c: number,
  c0: number,
): void {
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < c; j++) w[i * cols + c0 + j] = src[off + i * c + j];
  }
}
