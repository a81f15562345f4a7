/**
 * Reductions over any axes, with keepdims: sum, max and min are primitives; mean, variance,
 * std, prod, cumsum and argmax / argmin are composites of primitives (their derivatives
 * come from the primitives' rules).
 */
import type { ReduceOp } from "../backend/backend.ts";
import { bind } from "../ad/core.ts";
import type { Tensor } from "../tensor.ts";
import { fmtShape, normAxes, normAxis } from "../shape.ts";
import { checkFloat, checkKeepdims, checkTensor } from "./common.ts";
import { barrier, pad, reshape, same, slice, transpose } from "./movement.ts";
import {
  astype,
  div,
  equal,
  maximum,
  mul,
  notEqual,
  sqrt,
  square,
  stopGradient,
  sub,
  where,
} from "./elementwise.ts";
import { arange } from "./creation.ts";
import { tidy } from "../memory.ts";
import { boolOption, checkOptions } from "../options.ts";

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
  checkKeepdims(op, keepdims);
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
  checkKeepdims("mean", keepdims);
  const axes = normAxes("mean", axis, x.shape);
  let count = 1;
  for (const a of axes) count *= x.shape[a];
  return tidy(() => div(sum(x, axes, keepdims), count));
}

/** Options of {@linkcode variance} and {@linkcode std}. */
export interface VarianceOptions {
  /** Delta degrees of freedom: the sum of squares is divided by `N − ddof` (default 0, NumPy's). */
  ddof?: number;
  /** Keep the reduced axes as size 1 (default false). */
  keepdims?: boolean;
}

function varianceCore(
  op: string,
  x: Tensor,
  axis: number | readonly number[] | undefined,
  opts: VarianceOptions,
): Tensor {
  checkTensor(op, x);
  checkFloat(op, x);
  checkOptions(op, opts, ["ddof", "keepdims"]);
  const ddof = opts.ddof ?? 0;
  if (typeof ddof !== "number" || !Number.isFinite(ddof) || ddof < 0) {
    throw new RangeError(`${op}: ddof must be a finite number ≥ 0, got ${String(opts.ddof)}`);
  }
  const keepdims = boolOption(op, "keepdims", opts.keepdims, false);
  const axes = normAxes(op, axis, x.shape);
  let count = 1;
  for (const a of axes) count *= x.shape[a];
  if (count - ddof <= 0) {
    throw new RangeError(
      `${op}: ${count} values with ddof ${ddof} leave no degrees of freedom (need N − ddof > 0)`,
    );
  }
  return tidy(() => {
    // two passes: Σ (x − mean)², without the cancellation of Σx² − N·mean²
    const d = sub(x, mean(x, axes, true));
    return div(sum(square(d), axes, keepdims), count - ddof);
  });
}

/**
 * Variance over `axis` (all axes when omitted): `Σ (x − mean)² / (N − ddof)`, as NumPy's
 * `var` (named `variance` here since `var` is a keyword; the Tensor method is `x.var()` and
 * a namespace import gives `cv.var`).
 *
 * @example
 * ```ts
 * import { tensor, variance } from "@curvature/curvature";
 * const x = tensor([[1, 2], [3, 6]]);
 * console.log(await variance(x).item(), await variance(x, 0, { ddof: 1 }).toArray()); // 3.5 [2, 8]
 * ```
 */
export function variance(
  x: Tensor,
  axis?: number | readonly number[],
  opts: VarianceOptions = {},
): Tensor {
  return varianceCore("var", x, axis, opts);
}

/**
 * Standard deviation over `axis`: the square root of {@linkcode variance}. Where the
 * variance is exactly 0 (constant data) the derivative is taken as 0, not ∞·0 = NaN.
 *
 * @example
 * ```ts
 * import { std, tensor } from "@curvature/curvature";
 * console.log(await std(tensor([2, 4, 4, 4, 5, 5, 7, 9])).item()); // 2
 * ```
 */
export function std(
  x: Tensor,
  axis?: number | readonly number[],
  opts: VarianceOptions = {},
): Tensor {
  return tidy(() => safeSqrt(varianceCore("std", x, axis, opts)));
}

/** @internal √v with derivative 0 (not ∞) where v = 0: the double-`where` guard. */
export function safeSqrt(v: Tensor): Tensor {
  return tidy(() => {
    const zero = equal(v, 0);
    return where(zero, 0, sqrt(where(zero, 1, v)));
  });
}

/** x with `axes` moved to the end and merged into one: [...kept, N]. */
function gatherAxes(x: Tensor, axes: readonly number[]): Tensor {
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const t = transpose(x, [...kept, ...axes]);
  return reshape(t, [...kept.map((i) => x.shape[i]), axes.reduce((n, a) => n * x.shape[a], 1)]);
}

/**
 * Product over `axis` (all axes when omitted), as NumPy's `prod`: a pairwise tree of
 * elementwise products (log₂ N steps), so zeros and signs are exact and the derivative
 * comes from `mul`'s rule (∂/∂xᵢ = Πⱼ≠ᵢ xⱼ, right at zeros too).
 *
 * @example
 * ```ts
 * import { prod, tensor } from "@curvature/curvature";
 * console.log(await prod(tensor([[1, 2], [3, 4]]), 1).toArray()); // [2, 12]
 * ```
 */
export function prod(x: Tensor, axis?: number | readonly number[], keepdims = false): Tensor {
  checkTensor("prod", x);
  checkFloat("prod", x);
  checkKeepdims("prod", keepdims);
  const axes = normAxes("prod", axis, x.shape);
  if (axes.length === 0) return same("prod", x);
  return tidy(() => {
    let t = gatherAxes(x, axes);
    const r = t.rank - 1;
    if (t.shape[r] === 0) t = pad(t, t.shape.map((_, i) => (i === r ? [0, 1] : [0, 0])), 1);
    while (t.shape[r] > 1) {
      if (t.shape[r] % 2 === 1) t = pad(t, t.shape.map((_, i) => (i === r ? [0, 1] : [0, 0])), 1);
      const h = t.shape[r] / 2;
      const lo = slice(t, t.shape.map(() => 0), t.shape.map((d, i) => (i === r ? h : d)));
      const hi = slice(t, t.shape.map((_, i) => (i === r ? h : 0)), t.shape);
      t = barrier(mul(lo, hi));
    }
    const out = reshape(t, t.shape.slice(0, r));
    return keepdims ? reshape(out, x.shape.map((d, i) => (axes.includes(i) ? 1 : d))) : out;
  });
}

/**
 * Cumulative sum along `axis` (NumPy's `cumsum`; the flattened array when `axis` is
 * omitted). A primitive: one pass on the CPU (summed in f64), a blocked scan on WebGPU
 * (chunk prefix sums, then offsets: pairwise-sum rounding); linear, so its derivative is
 * itself (JVP) and the reversed cumulative sum (VJP).
 *
 * @example
 * ```ts
 * import { cumsum, tensor } from "@curvature/curvature";
 * console.log(await cumsum(tensor([[1, 2, 3], [4, 5, 6]]), 1).toArray()); // [[1, 3, 6], [4, 9, 15]]
 * ```
 */
export function cumsum(x: Tensor, axis?: number): Tensor {
  checkTensor("cumsum", x);
  checkFloat("cumsum", x);
  if (axis === undefined) return tidy(() => cumsum(reshape(x, [x.size]), 0));
  const a = normAxis("cumsum", axis, x.shape);
  if (x.shape[a] <= 1) return same("cumsum", x);
  return bind("cumsum", [x], { axis: a });
}

function argExtreme(
  op: "argmax" | "argmin",
  x: Tensor,
  axis: number | undefined,
  keepdims: boolean,
): Tensor {
  checkTensor(op, x);
  checkFloat(op, x);
  checkKeepdims(op, keepdims);
  if (axis === undefined) {
    if (keepdims) {
      return tidy(() =>
        reshape(argExtreme(op, reshape(x, [x.size]), 0, false), x.shape.map(() => 1))
      );
    }
    return tidy(() => argExtreme(op, reshape(x, [x.size]), 0, false));
  }
  const a = normAxis(op, axis, x.shape);
  const n = x.shape[a];
  if (n === 0) throw new RangeError(`${op}: axis ${a} of ${fmtShape(x.shape)} is empty`);
  if (x.dtype === "f32" && n > 2 ** 24) {
    throw new RangeError(`${op}: axis ${a} has ${n} entries, more than f32 indexes exactly (2^24)`);
  }
  return tidy(() => {
    const v = stopGradient(x);
    const ext = op === "argmax" ? max(v, a, true) : min(v, a, true);
    // the first extreme entry, or the first NaN (NumPy's rule) when the extreme is NaN
    const hit = maximum(equal(v, ext), notEqual(v, v));
    const iota = reshape(
      arange(n, undefined, 1, { dtype: x.dtype, device: x.device }),
      x.shape.map((d, i) => (i === a ? d : 1)),
    );
    const first = min(where(hit, iota, n), a, keepdims);
    return astype(first, "i32");
  });
}

/**
 * Index of the largest value along `axis` (of the flattened array when omitted), as NumPy's
 * `argmax`: the first one on ties, the first NaN if any. An i32 tensor with no derivative.
 * (Indices computed on the device are not host values, so they cannot index `gather`.)
 *
 * @example
 * ```ts
 * import { argmax, tensor } from "@curvature/curvature";
 * const x = tensor([[1, 5, 5], [7, 0, 2]]);
 * console.log(await argmax(x).item(), await argmax(x, 1).toArray()); // 3 [1, 0]
 * ```
 */
export function argmax(x: Tensor, axis?: number, keepdims = false): Tensor {
  return argExtreme("argmax", x, axis, keepdims);
}

/**
 * Index of the smallest value along `axis` (of the flattened array when omitted), as
 * NumPy's `argmin` (first on ties, first NaN if any); an i32 tensor.
 *
 * @example
 * ```ts
 * import { argmin, tensor } from "@curvature/curvature";
 * console.log(await argmin(tensor([[3, 1], [0, 2]]), 0).toArray()); // [1, 0]
 * ```
 */
export function argmin(x: Tensor, axis?: number, keepdims = false): Tensor {
  return argExtreme("argmin", x, axis, keepdims);
}
