/**
 * Banded Cholesky on the CPU (LAPACK pbtrf / pbtrs semantics) in f64.
 *
 * Internally the factor is kept in "lower" band storage, L[j + d][j] at l[d * n + j]
 * (d = 0 … b), which is LAPACK's lower layout; the upper layout (U = Lᵀ) is converted at
 * the edges. Right-looking elimination touches only b + 1 short streams per column.
 */

/** Converts upper band storage (ab[b + i − j][j] = A[i][j], i ≤ j) to lower (l[i − j][j] = A[i][j], i ≥ j). */
export function upperToLower(
  ab: ArrayLike<number>,
  off: number,
  n: number,
  b: number,
  l: Float64Array,
): void {
  for (let d = 0; d <= b; d++) {
    const src = off + (b - d) * n;
    const dst = d * n;
    for (let j = 0; j + d < n; j++) l[dst + j] = ab[src + j + d];
    for (let j = Math.max(0, n - d); j < n; j++) l[dst + j] = 0;
  }
}

/** The inverse of upperToLower (entries outside the matrix are written as 0). */
export function lowerToUpper(
  l: Float64Array,
  n: number,
  b: number,
  ab: { [i: number]: number },
  off: number,
): void {
  for (let d = 0; d <= b; d++) {
    const dst = off + (b - d) * n;
    const src = d * n;
    for (let j = 0; j < Math.min(d, n); j++) ab[dst + j] = 0;
    for (let j = d; j < n; j++) ab[dst + j] = l[src + j - d];
  }
}

/**
 * Factors A = L Lᵀ in place (lower storage). Returns 0, or the order k of the first leading
 * minor that is not positive definite (LAPACK's info).
 */
export function choleskyLowerInPlace(l: Float64Array, n: number, b: number): number {
  if (b === 0) {
    for (let j = 0; j < n; j++) {
      const v = l[j];
      if (!(v > 0)) return j + 1;
      l[j] = Math.sqrt(v);
    }
    return 0;
  }
  if (b === 1) {
    const l1 = n;
    for (let j = 0; j < n; j++) {
      const v = l[j];
      if (!(v > 0)) return j + 1;
      const s = Math.sqrt(v);
      l[j] = s;
      if (j + 1 < n) {
        const e = l[l1 + j] / s;
        l[l1 + j] = e;
        l[j + 1] -= e * e;
      }
    }
    return 0;
  }
  for (let j = 0; j < n; j++) {
    const v = l[j];
    if (!(v > 0)) return j + 1;
    const s = Math.sqrt(v);
    l[j] = s;
    const m = Math.min(b, n - 1 - j);
    const inv = 1 / s;
    for (let d = 1; d <= m; d++) l[d * n + j] *= inv;
    // trailing update: A[j+d2][j+d1] -= L[j+d2][j] L[j+d1][j], stored at l[(d2-d1)n + j+d1]
    for (let d1 = 1; d1 <= m; d1++) {
      const x1 = l[d1 * n + j];
      const col = j + d1;
      for (let d2 = d1; d2 <= m; d2++) l[(d2 - d1) * n + col] -= l[d2 * n + j] * x1;
    }
  }
  return 0;
}

/** Solves L Lᵀ X = R in place; R is [n, m] row-major at `off` (f64 work array). */
export function choleskySolveLower(
  l: Float64Array,
  n: number,
  b: number,
  x: Float64Array,
  m: number,
): void {
  if (m === 1) {
    if (b === 1) {
      const l1 = n;
      x[0] /= l[0];
      for (let j = 1; j < n; j++) x[j] = (x[j] - l[l1 + j - 1] * x[j - 1]) / l[j];
      x[n - 1] /= l[n - 1];
      for (let j = n - 2; j >= 0; j--) x[j] = (x[j] - l[l1 + j] * x[j + 1]) / l[j];
      return;
    }
    for (let j = 0; j < n; j++) {
      let s = x[j];
      const k0 = Math.max(0, j - b);
      for (let k = k0; k < j; k++) s -= l[(j - k) * n + k] * x[k];
      x[j] = s / l[j];
    }
    for (let j = n - 1; j >= 0; j--) {
      let s = x[j];
      const i1 = Math.min(n - 1, j + b);
      for (let i = j + 1; i <= i1; i++) s -= l[(i - j) * n + j] * x[i];
      x[j] = s / l[j];
    }
    return;
  }
  for (let j = 0; j < n; j++) {
    const k0 = Math.max(0, j - b);
    for (let k = k0; k < j; k++) {
      const f = l[(j - k) * n + k];
      for (let c = 0; c < m; c++) x[j * m + c] -= f * x[k * m + c];
    }
    const inv = 1 / l[j];
    for (let c = 0; c < m; c++) x[j * m + c] *= inv;
  }
  for (let j = n - 1; j >= 0; j--) {
    const i1 = Math.min(n - 1, j + b);
    for (let i = j + 1; i <= i1; i++) {
      const f = l[(i - j) * n + j];
      for (let c = 0; c < m; c++) x[j * m + c] -= f * x[i * m + c];
    }
    const inv = 1 / l[j];
    for (let c = 0; c < m; c++) x[j * m + c] *= inv;
  }
}
