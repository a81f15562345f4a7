/**
 * Band storage by substitution from compressed Hessian-vector products (CPU reference for
 * the WGSL kernel shaders/substitute_band.wgsl). The direct recovery is an expression (the
 * "band" node of ../../compile/lazy.ts), fused into the kernel that computes the products.
 *
 * Layouts follow LAPACK: lower ab[r][j] = H[j + r][j]; upper ab[r][j] = H[j − b + r][j].
 */
import type { TypedArray } from "../../dtype.ts";

/**
 * Recovery by substitution from b + 1 comb products hv [b + 1, n] (probe k = 1 where
 * i ≡ k mod b + 1). For d ≥ 1, row i of the product of probe (i − d) mod (b + 1) holds
 * H[i][i−d] + H[i][i−d+b+1], and the second term is, by symmetry, the lower entry
 * L(i + b + 1 − d, b + 1 − d) of a later row. So rows are recovered from the last one
 * upwards: L(i, d) = hv[(i−d) mod (b+1)][i] − L(i + b + 1 − d, b + 1 − d). Errors add up
 * along these chains (about n / (b + 1) links), which is why this is not the default.
 * The diagonal is exact: hv[i mod (b+1)][i] = H[i][i].
 */
export function substituteCpu(
  hv: TypedArray,
  o: TypedArray,
  n: number,
  b: number,
  upper: boolean,
): void {
  const c = b + 1;
  // work in lower storage (f64), then lay out as asked
  const l = new Float64Array(c * n);
  for (let i = n - 1; i >= 0; i--) {
    l[i] = hv[(i % c) * n + i];
    for (let d = 1; d <= b && d <= i; d++) {
      const i2 = i + c - d;
      const later = i2 < n ? l[(c - d) * n + i] : 0; // L(i2, b+1-d) sits in column i2 - (b+1-d) = i
      l[d * n + (i - d)] = hv[((i - d) % c) * n + i] - later;
    }
  }
  for (let r = 0; r <= b; r++) {
    for (let j = 0; j < n; j++) {
      if (!upper) o[r * n + j] = l[r * n + j];
      else {
        const d = b - r; // upper ab[r][j] = H[j-d][j] = L(j, d) stored at column j - d
        o[r * n + j] = j - d >= 0 ? l[d * n + (j - d)] : 0;
      }
    }
  }
}
