/** Matrix products with NumPy `matmul` semantics (1-D operands promoted, batch dims broadcast). */
import { bind } from "../ad/core.ts";
import type { Tensor } from "../tensor.ts";
import { broadcastShapes, fmtShape } from "../shape.ts";
import { checkFloat, checkTensor, operands } from "./common.ts";
import { reshape } from "./movement.ts";
import { mul } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { tidy } from "../memory.ts";

/**
 * Matrix product. 1-D operands act as a row (left) or column (right) vector and that axis
 * is dropped from the result; leading batch dimensions broadcast.
 *
 * @example
 * ```ts
 * import { matmul, tensor } from "@curvature/curvature";
 * const a = tensor([[1, 2], [3, 4]]);
 * console.log(await matmul(a, tensor([1, 1])).toArray()); // [3, 7]
 * ```
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkTensor("matmul", a, "a");
  checkTensor("matmul", b, "b");
  [a, b] = operands("matmul", [a, b]);
  checkFloat("matmul", a);
  if (a.rank === 0 || b.rank === 0) {
    throw new RangeError(
      `matmul: operands must have at least one dimension, got shapes ${fmtShape(a.shape)} and ${
        fmtShape(b.shape)
      }`,
    );
  }
  if (a.rank > 1 && b.rank > 1) return bind("matmul", [a, b], {});
  const [x, z] = [a, b];
  return tidy(() => {
    const y = bind("matmul", [
      x.rank === 1 ? reshape(x, [1, x.shape[0]]) : x,
      z.rank === 1 ? reshape(z, [z.shape[0], 1]) : z,
    ], {});
    const s = [...y.shape];
    if (z.rank === 1) s.splice(s.length - 1, 1);
    if (x.rank === 1) s.splice(s.length - (z.rank === 1 ? 1 : 2), 1);
    return reshape(y, s);
  });
}

/** Inner product of two vectors; for higher ranks, the same as `matmul`. */
export function dot(a: Tensor, b: Tensor): Tensor {
  checkTensor("dot", a, "a");
  checkTensor("dot", b, "b");
  if (a.rank === 1 && b.rank === 1) {
    if (a.shape[0] !== b.shape[0]) {
      throw new RangeError(
        `dot: vectors of shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} differ in length`,
      );
    }
    return tidy(() => sum(mul(a, b)));
  }
  return matmul(a, b);
}

/**
 * Outer product of two vectors (inputs of any shape are flattened first, as NumPy's
 * `outer`): `[a.size, b.size]` with entry (i, j) = aᵢ bⱼ.
 *
 * @example
 * ```ts
 * import { outer, tensor } from "@curvature/curvature";
 * console.log(await outer(tensor([1, 2]), tensor([3, 4, 5])).toArray()); // [[3, 4, 5], [6, 8, 10]]
 * ```
 */
export function outer(a: Tensor, b: Tensor): Tensor {
  checkTensor("outer", a, "a");
  checkTensor("outer", b, "b");
  return tidy(() => mul(reshape(a, [a.size, 1]), reshape(b, [1, b.size])));
}

/** @internal Output shape of the matmul primitive (both operands of rank ≥ 2). */
export function matmulShape(a: readonly number[], b: readonly number[]): number[] {
  const k = a[a.length - 1];
  if (a.length < 2 || b.length < 2 || b[b.length - 2] !== k) {
    throw new RangeError(
      `matmul: shapes ${fmtShape(a)} and ${fmtShape(b)} do not line up ` +
        `(the last axis of a must equal the second-to-last of b)`,
    );
  }
  const batch = broadcastShapes("matmul", a.slice(0, -2), b.slice(0, -2));
  return [...batch, a[a.length - 2], b[b.length - 1]];
}
