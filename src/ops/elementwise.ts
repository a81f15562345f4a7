/** Elementwise ops: unary maths, broadcasting binary maths, comparisons, where, astype. */
import type { BinaryOp, UnaryOp } from "../backend/backend.ts";
import { bind } from "../ad/core.ts";
import { checkDtype, type Dtype } from "../dtype.ts";
import { Tensor, type TensorLike } from "../tensor.ts";
import { checkFloat, checkTensor, operands } from "./common.ts";
import { checkDeviceDtype } from "./creation.ts";
import { same } from "./movement.ts";

function unary(op: UnaryOp, x: Tensor): Tensor {
  checkTensor(op, x);
  checkFloat(op, x);
  return bind(op, [x], {});
}

function binary(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operands(op, [a, b]);
  checkFloat(op, x);
  return bind(op, [x, y], {});
}

/** `-x` */
export function neg(x: Tensor): Tensor {
  return unary("neg", x);
}
/** `e^x` */
export function exp(x: Tensor): Tensor {
  return unary("exp", x);
}
/** Natural logarithm (NaN below 0, −∞ at 0). */
export function log(x: Tensor): Tensor {
  return unary("log", x);
}
/** Sine. */
export function sin(x: Tensor): Tensor {
  return unary("sin", x);
}
/** Cosine. */
export function cos(x: Tensor): Tensor {
  return unary("cos", x);
}
/** Hyperbolic tangent. */
export function tanh(x: Tensor): Tensor {
  return unary("tanh", x);
}
/** Square root (NaN below 0). */
export function sqrt(x: Tensor): Tensor {
  return unary("sqrt", x);
}
/** Absolute value. */
export function abs(x: Tensor): Tensor {
  return unary("abs", x);
}
/** Logistic sigmoid `1 / (1 + e^-x)`, computed without overflow. */
export function sigmoid(x: Tensor): Tensor {
  return unary("sigmoid", x);
}
/** `log(1 + x)`, accurate for small x. */
export function log1p(x: Tensor): Tensor {
  return unary("log1p", x);
}
/** `e^x - 1`, accurate for small x. */
export function expm1(x: Tensor): Tensor {
  return unary("expm1", x);
}
/** `x²` */
export function square(x: Tensor): Tensor {
  return unary("square", x);
}
/** `1 / x` */
export function reciprocal(x: Tensor): Tensor {
  return unary("reciprocal", x);
}
/** −1, 0 or 1 (NaN stays NaN). */
export function sign(x: Tensor): Tensor {
  return unary("sign", x);
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
/** `a - b` (broadcasting). */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  return binary("sub", a, b);
}
/** `a * b` (broadcasting). */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  return binary("mul", a, b);
}
/** `a / b` (broadcasting). */
export function div(a: TensorLike, b: TensorLike): Tensor {
  return binary("div", a, b);
}
/** `a ** b` with C `pow` semantics (negative bases allowed for integer exponents). */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  return binary("pow", a, b);
}
/** Elementwise maximum; NaN if either is NaN. */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return binary("maximum", a, b);
}
/** Elementwise minimum; NaN if either is NaN. */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return binary("minimum", a, b);
}
/** 1 where `a > b`, else 0 (same dtype as the operands). */
export function greater(a: TensorLike, b: TensorLike): Tensor {
  return binary("greater", a, b);
}
/** 1 where `a < b`, else 0. */
export function less(a: TensorLike, b: TensorLike): Tensor {
  return binary("less", a, b);
}
/** 1 where `a == b`, else 0. */
export function equal(a: TensorLike, b: TensorLike): Tensor {
  return binary("equal", a, b);
}
/** 1 where `a >= b`, else 0. */
export function greaterEqual(a: TensorLike, b: TensorLike): Tensor {
  return binary("greaterEqual", a, b);
}
/** 1 where `a <= b`, else 0. */
export function lessEqual(a: TensorLike, b: TensorLike): Tensor {
  return binary("lessEqual", a, b);
}
/** 1 where `a != b` (or either is NaN), else 0. */
export function notEqual(a: TensorLike, b: TensorLike): Tensor {
  return binary("notEqual", a, b);
}

/** Picks `a` where `cond` is non-zero and `b` elsewhere, broadcasting all three. */
export function where(cond: TensorLike, a: TensorLike, b: TensorLike): Tensor {
  const [c, x, y] = operands("where", [cond, a, b]);
  checkFloat("where", x);
  return bind("where", [c, x, y], {});
}

/** Converts to another dtype (f32 ↔ f64 on the CPU; f32 ↔ i32 anywhere, truncating). */
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
 */
export function stopGradient(x: Tensor): Tensor {
  checkTensor("stopGradient", x);
  const tr = x._tracer;
  if (!tr) return Tensor._view(x, x.shape);
  return tr.mapValue ? tr.mapValue(stopGradient) : stopGradient(tr.primal);
}
