/** Reductions over any axes, with keepdims; `mean` is a composite. */
import type { ReduceOp } from "../backend/backend.ts";
import { bind } from "../ad/core.ts";
import type { Tensor } from "../tensor.ts";
import { fmtShape, normAxes } from "../shape.ts";
import { checkFloat, checkTensor } from "./common.ts";
import { reshape, same } from "./movement.ts";
import { div } from "./elementwise.ts";
import { tidy } from "../memory.ts";

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function reduce(
  op: ReduceOp,
  x: Tensor,
  axis: number | readonly number[] | undefined,
  keepdims: boolean,
): Tensor {
  checkTensor(op, x);
  checkFloat(op, x);
  const axes = normAxes(op, axis, x.shape);
  if (op !== "sum" && axes.some((a) => x.shape[a] === 0)) {
    throw new RangeError(
      `${op}: cannot reduce over an empty axis (shape ${fmtShape(x.shape)}); it has no identity`,
    );
  }
  if (axes.length === 0) return same(op, x);
  if (!keepdims) return bind(op, [x], { axes });
  return tidy(() => reshape(bind(op, [x], { axes }), keptShape(x.shape, axes)));
}

/**
 * Sum over `axis` (a number, a list, or all axes when omitted); `keepdims` keeps reduced
 * axes as size 1. On WebGPU the sum is a tree across workgroups.
 *
 * @example
 * ```ts
 * import { sum, tensor } from "@curvature/curvature";
 * const x = tensor([[1, 2, 3], [4, 5, 6]]);
 * console.log(await sum(x).item(), await sum(x, 0).toArray(), sum(x, 1, true).shape); // 21 [5, 7, 9] [2, 1]
 * ```
 */
export function sum(x: Tensor, axis?: number | readonly number[], keepdims = false): Tensor {
  return reduce("sum", x, axis, keepdims);
}

/** Maximum over axes (NaN if any is NaN). */
export function max(x: Tensor, axis?: number | readonly number[], keepdims = false): Tensor {
  return reduce("max", x, axis, keepdims);
}

/** Minimum over axes (NaN if any is NaN). */
export function min(x: Tensor, axis?: number | readonly number[], keepdims = false): Tensor {
  return reduce("min", x, axis, keepdims);
}

/** Mean over axes: `sum / count`. */
export function mean(x: Tensor, axis?: number | readonly number[], keepdims = false): Tensor {
  checkTensor("mean", x);
  const axes = normAxes("mean", axis, x.shape);
  let count = 1;
  for (const a of axes) count *= x.shape[a];
  return tidy(() => div(sum(x, axes, keepdims), count));
}
