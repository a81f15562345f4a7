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

/** True when eigenvalue a comes before b in eigh's order: ascending, NaN last, ties by index. */
export function eigenBefore(a: number, ia: number, b: number, ib: number): boolean {
  if (a !== a) return b !== b && ia < ib;
  if (b !== b) return true;
  return a < b || (a === b && ia < ib);
}

/**
 * Symmetric eigen-decomposition of the n×n matrix at `src[off..]` by cyclic Jacobi rotations
 * in f64 (sweeps until the off-diagonal mass is below 1e-30 of the whole, which Jacobi's
 * quadratic convergence reaches in a handful of sweeps), written packed to `out[o..]`:
 * eigenvalues ascending, then the eigenvector matrix (columns), each column signed so its
 * entry of largest magnitude is positive.
 */
export function eighCpu(src: TypedArray, off: number, n: number, out: TypedArray, o: number): void {
  const a = Float64Array.from(src.subarray(off, off + n * n));
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i] * a[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off2 = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off2 += 2 * a[p * n + q] ** 2;
    if (!(off2 > 1e-30 * total)) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        // Golub & Van Loan's symmetric Schur rotation: (JᵀAJ)[p][q] = 0
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) { // columns p, q
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) { // rows p, q
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = a[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, k) => k).sort((x, y) =>
    eigenBefore(a[x * n + x], x, a[y * n + y], y) ? -1 : 1
  );
  order.forEach((k, r) => {
    out[o + r] = a[k * n + k];
    let big = 0, sign = 1;
    for (let i = 0; i < n; i++) {
      const m = Math.abs(v[i * n + k]);
      if (m > big) (big = m), (sign = v[i * n + k] < 0 ? -1 : 1);
    }
    for (let i = 0; i < n; i++) out[o + n + i * n + r] = sign * v[i * n + k];
  });
}
