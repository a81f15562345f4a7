/**
 * Eigen-decomposition of a small symmetric tridiagonal matrix on the host (the Lanczos
 * matrix T): the implicit QL algorithm with Wilkinson-type shifts (EISPACK `tql2`,
 * Numerical Recipes `tqli`). O(m²) for values, O(m³) with vectors; m is the Krylov size.
 */

/** Eigenvalues (ascending) and eigenvectors (column j of `vectors`, row-major m × m). */
export interface TridiagonalEigen {
  values: Float64Array;
  /** Row-major m × m: `vectors[i * m + j]` is component i of eigenvector j. */
  vectors: Float64Array;
}

/**
 * @internal The eigenvalues and orthonormal eigenvectors of the symmetric tridiagonal matrix
 * with diagonal `diag` (length m) and off-diagonal `off` (length m − 1).
 */
export function tridiagonalEigen(
  diag: ArrayLike<number>,
  off: ArrayLike<number>,
): TridiagonalEigen {
  const n = diag.length;
  if (off.length < n - 1) {
    throw new RangeError(`tridiagonalEigen: need ${n - 1} off-diagonal entries, got ${off.length}`);
  }
  const d = Float64Array.from(diag);
  const e = new Float64Array(n);
  for (let i = 0; i < n - 1; i++) e[i] = off[i];
  const z = new Float64Array(n * n);
  for (let i = 0; i < n; i++) z[i * n + i] = 1;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    let m: number;
    do {
      for (m = l; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= Number.EPSILON * dd) break;
      }
      if (m !== l) {
        if (iter++ === 60) throw new Error("tridiagonalEigen: no convergence after 60 QL sweeps");
        let g = (d[l + 1] - d[l]) / (2 * e[l]);
        let r = Math.hypot(g, 1);
        g = d[m] - d[l] + e[l] / (g + (g >= 0 ? Math.abs(r) : -Math.abs(r)));
        let s = 1, c = 1, p = 0;
        let i: number;
        let underflow = false;
        for (i = m - 1; i >= l; i--) {
          let f = s * e[i];
          const b = c * e[i];
          r = Math.hypot(f, g);
          e[i + 1] = r;
          if (r === 0) {
            d[i + 1] -= p;
            e[m] = 0;
            underflow = true;
            break;
          }
          s = f / r;
          c = g / r;
          g = d[i + 1] - p;
          r = (d[i] - g) * s + 2 * c * b;
          p = s * r;
          d[i + 1] = g + p;
          g = c * r - b;
          for (let k = 0; k < n; k++) {
            f = z[k * n + i + 1];
            z[k * n + i + 1] = s * z[k * n + i] + c * f;
            z[k * n + i] = c * z[k * n + i] - s * f;
          }
        }
        if (underflow) continue;
        d[l] -= p;
        e[l] = g;
        e[m] = 0;
      }
    } while (m !== l);
  }
  // sort ascending, permuting the eigenvector columns with the values
  const order = [...Array(n).keys()].sort((a, b) => d[a] - d[b]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, j) => {
    values[j] = d[src];
    for (let i = 0; i < n; i++) vectors[i * n + j] = z[i * n + src];
  });
  return { values, vectors };
}
