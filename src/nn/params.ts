/**
 * Parameter lists flattened to and from one vector, with slice / reshape / concat so that
 * gradients flow through both directions.
 */
import type { Tensor } from "../tensor.ts";
import { concat, reshape, slice } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import { fmtShape } from "../shape.ts";

/**
 * Concatenates tensors (flattened, row-major) into one vector. Differentiable: the
 * gradient of a function of the vector flows back to each tensor.
 *
 * @example
 * ```ts
 * import { flattenParams, tensor } from "@curvature/curvature";
 * const v = flattenParams([tensor([[1, 2], [3, 4]]), tensor([5])]);
 * console.log(await v.toArray()); // [1, 2, 3, 4, 5]
 * ```
 */
export function flattenParams(params: readonly Tensor[]): Tensor {
  if (!Array.isArray(params) || params.length === 0) {
    throw new RangeError("flattenParams: expected a non-empty array of tensors");
  }
  return tidy(() => concat(params.map((p) => reshape(p, [p.size])), 0));
}

/**
 * Splits a flat vector back into tensors of the given shapes (the inverse of
 * {@linkcode flattenParams}). Each piece is a differentiable slice of `flat`.
 *
 * @example
 * ```ts
 * import { tensor, unflattenParams } from "@curvature/curvature";
 * const [w, b] = unflattenParams(tensor([1, 2, 3, 4, 5]), [[2, 2], [1]]);
 * console.log(await w.toArray(), await b.toArray()); // [[1, 2], [3, 4]] [5]
 * ```
 */
export function unflattenParams(flat: Tensor, shapes: readonly (readonly number[])[]): Tensor[] {
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (flat.rank !== 1 || flat.size !== total) {
    throw new RangeError(
      `unflattenParams: the shapes ${
        JSON.stringify(shapes)
      } hold ${total} entries, but the vector has shape ${fmtShape(flat.shape)}`,
    );
  }
  return tidy(() => {
    let at = 0;
    return shapes.map((s, i) => {
      const piece = reshape(slice(flat, [at], [at + sizes[i]]), s);
      at += sizes[i];
      return piece;
    });
  });
}
