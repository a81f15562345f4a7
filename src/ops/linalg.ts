/**
 * Small dense linear algebra with derivative rules: solve, inv, det, logdet, trace.
 * Gauss-Jordan with partial pivoting on both backends (O(n³), meant for small matrices).
 * A singular matrix is an error naming the op: thrown at once on the CPU; on WebGPU, where
 * kernels cannot throw, the result owns it: every read (`data()`, `item()`) of it, or of
 * anything computed from it, raises it, and no other read does.
 */
import { bind } from "../ad/core.ts";
import type { Tensor } from "../tensor.ts";
import { broadcastShapes, fmtShape } from "../shape.ts";
import { checkFloat, checkTensor, operands } from "./common.ts";
import { broadcastTo, gather, mT, reshape, transpose } from "./movement.ts";
import { eye, full, tensor } from "./creation.ts";
import { mul } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { tidy } from "../memory.ts";

function checkSquare(op: string, a: Tensor): number {
  const r = a.rank;
  if (r < 2 || a.shape[r - 1] !== a.shape[r - 2]) {
    throw new RangeError(
      `${op}: expected square matrices [..., n, n], got shape ${fmtShape(a.shape)}`,
    );
  }
  return a.shape[r - 1];
}

/** @internal Output shape of the solve primitive: A [..., n, n], B [..., n, m]. */
export function solveShape(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = a[a.length - 1];
  if (a.length < 2 || a[a.length - 2] !== n || b.length < 2 || b[b.length - 2] !== n) {
    throw new RangeError(
      `${op}: A must be [..., n, n] and B [..., n, m] with the same n; got ${fmtShape(a)} and ${
        fmtShape(b)
      }`,
    );
  }
  const batch = broadcastShapes(op, a.slice(0, -2), b.slice(0, -2));
  return [...batch, n, b[b.length - 1]];
}

/**
 * Solves `A x = b`. A is `[..., n, n]`; b is `[n]` (a vector) or `[..., n, m]`; batch dims
 * broadcast (NumPy 2 semantics).
 *
 * @example
 * ```ts
 * import { solve, tensor } from "@curvature/curvature";
 * const A = tensor([[3, 1], [1, 2]]);
 * console.log(await solve(A, tensor([9, 8])).toArray()); // [2, 3]
 * ```
 */
export function solve(a: Tensor, b: Tensor): Tensor {
  checkTensor("solve", a, "A");
  checkTensor("solve", b, "b");
  [a, b] = operands("solve", [a, b]);
  checkFloat("solve", a);
  checkSquare("solve", a);
  if (b.rank > 1) return bind("solve", [a, b], {});
  const [m, v] = [a, b];
  return tidy(() => {
    const x = bind("solve", [m, reshape(v, [v.shape[0], 1])], {});
    return reshape(x, x.shape.slice(0, -1));
  });
}

/** The inverse of each matrix in `[..., n, n]`: `solve(A, I)`. */
export function inv(a: Tensor): Tensor {
  checkTensor("inv", a);
  checkFloat("inv", a);
  const n = checkSquare("inv", a);
  return tidy(() =>
    bind("solve", [a, broadcastTo(eye(n, n, { dtype: a.dtype, device: a.device }), a.shape)], {})
  );
}

/** The determinant of each matrix in `[..., n, n]`. */
export function det(a: Tensor): Tensor {
  checkTensor("det", a);
  checkFloat("det", a);
  checkSquare("det", a);
  return bind("det", [a], {});
}

/**
 * `log det A` of each matrix in `[..., n, n]`; det must be positive (a singular matrix or a
 * negative determinant is an error, not NaN). Computed from the pivots, so it does not
 * overflow where `det` would.
 */
export function logdet(a: Tensor): Tensor {
  checkTensor("logdet", a);
  checkFloat("logdet", a);
  checkSquare("logdet", a);
  return bind("logdet", [a], {});
}

/** Largest order whose cofactors are taken from minors (n² determinants of order n − 1). */
const MINORS_MAX = 8;

/**
 * @internal The cofactor matrix of each matrix of `[..., n, n]`: C_ij = (−1)^(i+j) times the
 * determinant of A without row i and column j, which is ∂ det A / ∂A_ij. Up to order 8 it is
 * built from the minors themselves (n² batched determinants, exact at singular A, and
 * differentiable again through det's own rules); above that, as det(A) · A⁻ᵀ, which needs A
 * invertible.
 */
export function cofactor(a: Tensor): Tensor {
  const n = a.shape[a.rank - 1], r = a.rank;
  if (n > MINORS_MAX) return mul(reshape(det(a), [...a.shape.slice(0, -2), 1, 1]), mT(inv(a)));
  return tidy(() => {
    if (n === 1) return full(a.shape, 1, { dtype: a.dtype, device: a.device });
    const skip: number[] = [];
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) if (k !== i) skip.push(k);
    const batch = a.shape.slice(0, -2);
    // [..., i, r, col] (rows without i), then [..., i, r, j, c] (columns without j)
    const rows = reshape(gather(a, skip, r - 2), [...batch, n, n - 1, n]);
    const both = reshape(gather(rows, skip, r), [...batch, n, n - 1, n, n - 1]);
    const lead = batch.map((_, d) => d);
    const minors = transpose(both, [...lead, r - 2, r, r - 1, r + 1]);
    const sign = Array.from(
      { length: n * n },
      (_, q) => ((q % n) + Math.floor(q / n)) % 2 ? -1 : 1,
    );
    return mul(det(minors), tensor(sign, { shape: [n, n], dtype: a.dtype, device: a.device }));
  });
}

/** The trace of each matrix in `[..., n, n]`. */
export function trace(a: Tensor): Tensor {
  checkTensor("trace", a);
  checkFloat("trace", a);
  const n = checkSquare("trace", a);
  const r = a.rank;
  return tidy(() => sum(mul(a, eye(n, n, { dtype: a.dtype, device: a.device })), [r - 2, r - 1]));
}
