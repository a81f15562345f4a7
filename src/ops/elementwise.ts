/** Elementwise ops: unary maths, broadcasting binary maths, comparisons, where, astype. */
import type { BinaryOp, UnaryOp } from "../backend/backend.ts";
import { bind } from "../ad/core.ts";
import { checkDtype, type Dtype } from "../dtype.ts";
import { Tensor, type TensorLike } from "../tensor.ts";
import { checkFloat, checkTensor, operands } from "./common.ts";
import { checkDeviceDtype } from "./creation.ts";
import { same } from "./movement.ts";
import { tidy } from "../memory.ts";

/** The parameters of the elementwise primitives: none (one object for every call). */
const NONE = Object.freeze({});

function unary(op: UnaryOp, x: Tensor): Tensor {
  checkTensor(op, x);
  checkFloat(op, x);
  return bind(op, [x], NONE);
}

function binary(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  const xy = operands(op, [a, b]);
  checkFloat(op, xy[0]);
  return bind(op, xy, NONE);
}

/**
 * `-x`
 *
 * @example
 * ```ts
 * import { neg, tensor } from "@curvature/curvature";
 * console.log(await neg(tensor([1, -2])).toArray()); // [-1, 2]
 * ```
 */
export function neg(x: Tensor): Tensor {
  return unary("neg", x);
}
/**
 * `e^x`
 *
 * @example
 * ```ts
 * import { exp, tensor } from "@curvature/curvature";
 * console.log(await exp(tensor([0, 1])).toArray()); // [1, 2.718…]
 * ```
 */
export function exp(x: Tensor): Tensor {
  return unary("exp", x);
}
/**
 * Natural logarithm (NaN below 0, −∞ at 0).
 *
 * @example
 * ```ts
 * import { log, tensor } from "@curvature/curvature";
 * console.log(await log(tensor([1, Math.E, 0])).toArray()); // [0, 1, -Infinity]
 * ```
 */
export function log(x: Tensor): Tensor {
  return unary("log", x);
}
/**
 * Sine.
 *
 * @example
 * ```ts
 * import { sin, tensor } from "@curvature/curvature";
 * console.log(await sin(tensor([0, Math.PI / 2])).toArray()); // [0, 1]
 * ```
 */
export function sin(x: Tensor): Tensor {
  return unary("sin", x);
}
/**
 * Cosine.
 *
 * @example
 * ```ts
 * import { cos, tensor } from "@curvature/curvature";
 * console.log(await cos(tensor([0, Math.PI])).toArray()); // [1, -1]
 * ```
 */
export function cos(x: Tensor): Tensor {
  return unary("cos", x);
}
/**
 * Hyperbolic tangent.
 *
 * @example
 * ```ts
 * import { tanh, tensor } from "@curvature/curvature";
 * console.log(await tanh(tensor([0, 20])).toArray()); // [0, 1]
 * ```
 */
export function tanh(x: Tensor): Tensor {
  return unary("tanh", x);
}
/**
 * Square root (NaN below 0).
 *
 * @example
 * ```ts
 * import { sqrt, tensor } from "@curvature/curvature";
 * console.log(await sqrt(tensor([4, 9])).toArray()); // [2, 3]
 * ```
 */
export function sqrt(x: Tensor): Tensor {
  return unary("sqrt", x);
}
/**
 * Absolute value.
 *
 * @example
 * ```ts
 * import { abs, tensor } from "@curvature/curvature";
 * console.log(await abs(tensor([-1, 2])).toArray()); // [1, 2]
 * ```
 */
export function abs(x: Tensor): Tensor {
  return unary("abs", x);
}
/**
 * Logistic sigmoid `1 / (1 + e^-x)`, computed without overflow.
 *
 * @example
 * ```ts
 * import { sigmoid, tensor } from "@curvature/curvature";
 * console.log(await sigmoid(tensor([0, -1000])).toArray()); // [0.5, 0]
 * ```
 */
export function sigmoid(x: Tensor): Tensor {
  return unary("sigmoid", x);
}
/**
 * `log(1 + x)`, accurate for small x.
 *
 * @example
 * ```ts
 * import { log1p, tensor } from "@curvature/curvature";
 * const x = tensor([1e-10], { dtype: "f64" });
 * console.log(await log1p(x).item()); // 9.9999999995e-11, where log(1 + x) keeps 7 digits
 * ```
 */
export function log1p(x: Tensor): Tensor {
  return unary("log1p", x);
}
/**
 * `e^x - 1`, accurate for small x.
 *
 * @example
 * ```ts
 * import { expm1, tensor } from "@curvature/curvature";
 * const x = tensor([1e-10], { dtype: "f64" });
 * console.log(await expm1(x).item()); // 1.00000000005e-10, where exp(x) - 1 keeps 7 digits
 * ```
 */
export function expm1(x: Tensor): Tensor {
  return unary("expm1", x);
}
/**
 * `x²`
 *
 * @example
 * ```ts
 * import { square, tensor } from "@curvature/curvature";
 * console.log(await square(tensor([-2, 3])).toArray()); // [4, 9]
 * ```
 */
export function square(x: Tensor): Tensor {
  return unary("square", x);
}
/**
 * `1 / x`
 *
 * @example
 * ```ts
 * import { reciprocal, tensor } from "@curvature/curvature";
 * console.log(await reciprocal(tensor([2, -4])).toArray()); // [0.5, -0.25]
 * ```
 */
export function reciprocal(x: Tensor): Tensor {
  return unary("reciprocal", x);
}
/**
 * −1, 0 or 1 (NaN stays NaN).
 *
 * @example
 * ```ts
 * import { sign, tensor } from "@curvature/curvature";
 * console.log(await sign(tensor([-3, 0, 2])).toArray()); // [-1, 0, 1]
 * ```
 */
export function sign(x: Tensor): Tensor {
  return unary("sign", x);
}

/**
 * The largest integer ≤ x (NumPy's `floor`). Its derivative is 0 (almost everywhere, as in
 * JAX), so it passes no gradient.
 *
 * @example
 * ```ts
 * import { floor, tensor } from "@curvature/curvature";
 * console.log(await floor(tensor([-1.5, 0.5, 2])).toArray()); // [-2, 0, 2]
 * ```
 */
export function floor(x: Tensor): Tensor {
  return unary("floor", x);
}
/**
 * The smallest integer ≥ x (NumPy's `ceil`); derivative 0.
 *
 * @example
 * ```ts
 * import { ceil, tensor } from "@curvature/curvature";
 * console.log(await ceil(tensor([-1.5, 0.5, 2])).toArray()); // [-1, 1, 2]
 * ```
 */
export function ceil(x: Tensor): Tensor {
  return unary("ceil", x);
}
/**
 * The nearest integer, halves to the even one (NumPy's `round` / `rint`, IEEE's default);
 * derivative 0.
 *
 * @example
 * ```ts
 * import { round, tensor } from "@curvature/curvature";
 * console.log(await round(tensor([0.5, 1.5, 2.5, -0.5, 2.7])).toArray()); // [0, 2, 2, -0, 3]
 * ```
 */
export function round(x: Tensor): Tensor {
  return unary("round", x);
}

/**
 * 1 where x is NaN, else 0 (NumPy's `isnan`, as a 0/1 tensor of x's dtype, like the
 * comparisons).
 *
 * @example
 * ```ts
 * import { isnan, tensor } from "@curvature/curvature";
 * console.log(await isnan(tensor([1, NaN, Infinity])).toArray()); // [0, 1, 0]
 * ```
 */
export function isnan(x: Tensor): Tensor {
  checkTensor("isnan", x);
  checkFloat("isnan", x);
  return binary("notEqual", x, x); // only NaN differs from itself
}

/**
 * 1 where x is finite (not ±∞ or NaN), else 0 (NumPy's `isfinite`).
 *
 * @example
 * ```ts
 * import { isfinite, tensor } from "@curvature/curvature";
 * console.log(await isfinite(tensor([1, NaN, -Infinity])).toArray()); // [1, 0, 0]
 * ```
 */
export function isfinite(x: Tensor): Tensor {
  checkTensor("isfinite", x);
  checkFloat("isfinite", x);
  // |x| < ∞ is false for ±∞ and NaN. (Not x − x = 0: GPU compilers may fold x − x to 0.)
  return tidy(() => binary("less", abs(x), Infinity));
}

/**
 * `a + b` with NumPy broadcasting; numbers act as scalars of the tensor's dtype.
 *
 * @example
 * ```ts
 * import { add, tensor } from "@curvature/curvature";
 * const y = add(tensor([[1], [2]]), tensor([10, 20, 30])); // shape [2, 3]
 * console.log(await y.toArray()); // [[11, 21, 31], [12, 22, 32]]
 * ```
 */
export function add(a: TensorLike, b: TensorLike): Tensor {
  return binary("add", a, b);
}
/**
 * `a - b` (broadcasting).
 *
 * @example
 * ```ts
 * import { sub, tensor } from "@curvature/curvature";
 * console.log(await sub(tensor([5, 7]), 2).toArray()); // [3, 5]
 * ```
 */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  return binary("sub", a, b);
}
/**
 * `a * b` (broadcasting).
 *
 * @example
 * ```ts
 * import { mul, tensor } from "@curvature/curvature";
 * console.log(await mul(tensor([[1], [2]]), tensor([3, 4])).toArray()); // [[3, 4], [6, 8]]
 * ```
 */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  return binary("mul", a, b);
}
/**
 * `a / b` (broadcasting).
 *
 * @example
 * ```ts
 * import { div, tensor } from "@curvature/curvature";
 * console.log(await div(tensor([1, 2, 3]), 2).toArray()); // [0.5, 1, 1.5]
 * ```
 */
export function div(a: TensorLike, b: TensorLike): Tensor {
  return binary("div", a, b);
}
/**
 * `a ** b` with C `pow` semantics (negative bases allowed for integer exponents).
 *
 * @example
 * ```ts
 * import { pow, tensor } from "@curvature/curvature";
 * console.log(await pow(tensor([-2, 3]), 2).toArray()); // [4, 9]
 * ```
 */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  return binary("pow", a, b);
}
/**
 * Elementwise maximum; NaN if either is NaN.
 *
 * @example
 * ```ts
 * import { maximum, tensor } from "@curvature/curvature";
 * console.log(await maximum(tensor([1, 5]), 3).toArray()); // [3, 5]
 * ```
 */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return binary("maximum", a, b);
}
/**
 * Elementwise minimum; NaN if either is NaN.
 *
 * @example
 * ```ts
 * import { minimum, tensor } from "@curvature/curvature";
 * console.log(await minimum(tensor([1, 5]), 3).toArray()); // [1, 3]
 * ```
 */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return binary("minimum", a, b);
}
/**
 * 1 where `a > b`, else 0 (same dtype as the operands).
 *
 * @example
 * ```ts
 * import { greater, tensor } from "@curvature/curvature";
 * console.log(await greater(tensor([1, 2, 3]), 2).toArray()); // [0, 0, 1]
 * ```
 */
export function greater(a: TensorLike, b: TensorLike): Tensor {
  return binary("greater", a, b);
}
/**
 * 1 where `a < b`, else 0.
 *
 * @example
 * ```ts
 * import { less, tensor } from "@curvature/curvature";
 * console.log(await less(tensor([1, 2, 3]), 2).toArray()); // [1, 0, 0]
 * ```
 */
export function less(a: TensorLike, b: TensorLike): Tensor {
  return binary("less", a, b);
}
/**
 * 1 where `a == b`, else 0.
 *
 * @example
 * ```ts
 * import { equal, tensor } from "@curvature/curvature";
 * console.log(await equal(tensor([1, 2, 3]), 2).toArray()); // [0, 1, 0]
 * ```
 */
export function equal(a: TensorLike, b: TensorLike): Tensor {
  return binary("equal", a, b);
}
/**
 * 1 where `a >= b`, else 0.
 *
 * @example
 * ```ts
 * import { greaterEqual, tensor } from "@curvature/curvature";
 * console.log(await greaterEqual(tensor([1, 2, 3]), 2).toArray()); // [0, 1, 1]
 * ```
 */
export function greaterEqual(a: TensorLike, b: TensorLike): Tensor {
  return binary("greaterEqual", a, b);
}
/**
 * 1 where `a <= b`, else 0.
 *
 * @example
 * ```ts
 * import { lessEqual, tensor } from "@curvature/curvature";
 * console.log(await lessEqual(tensor([1, 2, 3]), 2).toArray()); // [1, 1, 0]
 * ```
 */
export function lessEqual(a: TensorLike, b: TensorLike): Tensor {
  return binary("lessEqual", a, b);
}
/**
 * 1 where `a != b` (or either is NaN), else 0.
 *
 * @example
 * ```ts
 * import { notEqual, tensor } from "@curvature/curvature";
 * console.log(await notEqual(tensor([1, NaN]), tensor([1, NaN])).toArray()); // [0, 1]
 * ```
 */
export function notEqual(a: TensorLike, b: TensorLike): Tensor {
  return binary("notEqual", a, b);
}

/**
 * `atan2(y, x)`: the angle of the point (x, y) in [−π, π], as C / NumPy `arctan2` (signed
 * zeros and infinities included), with NumPy broadcasting. Derivative
 * `(x dy − y dx) / (x² + y²)`.
 *
 * @example
 * ```ts
 * import { atan2, tensor } from "@curvature/curvature";
 * console.log(await atan2(tensor([1, 1, -1]), tensor([1, -1, 0])).toArray()); // [π/4, 3π/4, −π/2]
 * ```
 */
export function atan2(y: TensorLike, x: TensorLike): Tensor {
  return binary("atan2", y, x);
}

/**
 * Inverse tangent, in (−π/2, π/2): `atan2(x, 1)`, so one kernel serves both and the
 * derivative `1 / (1 + x²)` comes from atan2's rule.
 *
 * @example
 * ```ts
 * import { atan, tensor } from "@curvature/curvature";
 * console.log(await atan(tensor([0, 1])).toArray()); // [0, π/4]
 * ```
 */
export function atan(x: Tensor): Tensor {
  checkTensor("atan", x);
  checkFloat("atan", x);
  return binary("atan2", x, 1);
}

/**
 * Tangent, as `sin(x) / cos(x)` (so its derivative `1 / cos² x` comes from theirs).
 *
 * @example
 * ```ts
 * import { tan, tensor } from "@curvature/curvature";
 * console.log(await tan(tensor([0, Math.PI / 4])).toArray()); // [0, 1] (to rounding)
 * ```
 */
export function tan(x: Tensor): Tensor {
  checkTensor("tan", x);
  checkFloat("tan", x);
  return tidy(() => div(sin(x), cos(x)));
}

/**
 * Hyperbolic sine `(eˣ − e⁻ˣ) / 2`, computed as `(expm1(x) − expm1(−x)) / 2`, which keeps
 * full relative accuracy near 0. Overflows to ±∞ where eˣ does (|x| > 709.78 in f64, 88.72
 * in f32), slightly before sinh itself would (710.48, 89.42).
 *
 * @example
 * ```ts
 * import { sinh, tensor } from "@curvature/curvature";
 * console.log(await sinh(tensor([0, 1])).toArray()); // [0, 1.1752…]
 * ```
 */
export function sinh(x: Tensor): Tensor {
  checkTensor("sinh", x);
  checkFloat("sinh", x);
  return tidy(() => mul(sub(expm1(x), expm1(neg(x))), 0.5));
}

/**
 * Hyperbolic cosine `(eˣ + e⁻ˣ) / 2` (no cancellation: both terms are positive). Overflows
 * where eˣ does, as {@linkcode sinh}.
 *
 * @example
 * ```ts
 * import { cosh, tensor } from "@curvature/curvature";
 * console.log(await cosh(tensor([0, 1])).toArray()); // [1, 1.5430…]
 * ```
 */
export function cosh(x: Tensor): Tensor {
  checkTensor("cosh", x);
  checkFloat("cosh", x);
  return tidy(() => mul(add(exp(x), exp(neg(x))), 0.5));
}

/**
 * Base-2 logarithm `log(x) / log 2` (exact powers of two may come out an ulp off, as with
 * any `log(x) / log 2`).
 *
 * @example
 * ```ts
 * import { log2, tensor } from "@curvature/curvature";
 * console.log(await log2(tensor([1, 2, 1024])).toArray()); // [0, 1, 10]
 * ```
 */
export function log2(x: Tensor): Tensor {
  checkTensor("log2", x);
  checkFloat("log2", x);
  return tidy(() => div(log(x), Math.LN2));
}

/**
 * `2^x`, as `pow(2, x)`: exact at integers, and its derivative `2^x log 2` comes from
 * pow's rule.
 *
 * @example
 * ```ts
 * import { exp2, tensor } from "@curvature/curvature";
 * console.log(await exp2(tensor([0, 3, -1])).toArray()); // [1, 8, 0.5]
 * ```
 */
export function exp2(x: Tensor): Tensor {
  checkTensor("exp2", x);
  checkFloat("exp2", x);
  return binary("pow", 2, x);
}

/**
 * Limits the values to `[min, max]` (NumPy's `clip`; either bound may be `null` or omitted
 * for none; tensors broadcast): `minimum(maximum(x, min), max)`. At a bound the derivative
 * is ½ (the tie convention of maximum / minimum), elsewhere 1 inside and 0 outside.
 *
 * @example
 * ```ts
 * import { clip, tensor } from "@curvature/curvature";
 * console.log(await clip(tensor([-2, 0.5, 3]), 0, 1).toArray()); // [0, 0.5, 1]
 * ```
 */
export function clip(x: Tensor, min?: TensorLike | null, max?: TensorLike | null): Tensor {
  checkTensor("clip", x);
  checkFloat("clip", x);
  const lo = min ?? null, hi = max ?? null;
  if (lo === null && hi === null) {
    throw new TypeError("clip: give at least one of min and max (NumPy requires one too)");
  }
  return tidy(() => {
    const a = lo === null ? x : maximum(x, lo);
    return hi === null ? a : minimum(a, hi);
  });
}

/**
 * Picks `a` where `cond` is non-zero and `b` elsewhere, broadcasting all three.
 *
 * @example
 * ```ts
 * import { greater, tensor, where } from "@curvature/curvature";
 * const x = tensor([-1, 2, -3]);
 * console.log(await where(greater(x, 0), x, 0).toArray()); // [0, 2, 0]
 * ```
 */
export function where(cond: TensorLike, a: TensorLike, b: TensorLike): Tensor {
  const [c, x, y] = operands("where", [cond, a, b]);
  checkFloat("where", x);
  return bind("where", [c, x, y], {});
}

/**
 * Converts to another dtype (f32 ↔ f64 on the CPU; f32 ↔ i32 anywhere, truncating).
 *
 * @example
 * ```ts
 * import { astype, tensor } from "@curvature/curvature";
 * console.log(await astype(tensor([1.7, -1.7]), "i32").toArray()); // [1, -1]
 * ```
 */
export function astype(x: Tensor, dtype: Dtype): Tensor {
  checkTensor("astype", x);
  checkDtype("astype", dtype);
  if (x.dtype === dtype) return same("astype", x);
  checkDeviceDtype("astype", x.device, dtype);
  return bind("cast", [x], { dtype });
}

/**
 * The identity that blocks derivatives: the result is a constant to every differentiating
 * transform (under `vmap` it stays batched).
 *
 * @example
 * ```ts
 * import { grad, stopGradient, type Tensor, tensor } from "@curvature/curvature";
 * // d/dx [x · stop(x)] differentiates the first factor only
 * const g = grad((x: Tensor) => x.mul(stopGradient(x)).sum())(tensor([3]));
 * console.log(await g.toArray()); // [3], not [6]
 * ```
 */
export function stopGradient(x: Tensor): Tensor {
  checkTensor("stopGradient", x);
  const tr = x._tracer;
  if (!tr) return Tensor._view(x, x.shape);
  return tr.mapValue ? tr.mapValue(stopGradient) : stopGradient(tr.primal);
}
