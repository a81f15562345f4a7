/**
 * Numerically stable special functions. A composite built on abs or max for stability would
 * differentiate wrongly at its kink (the second derivative of max(x, 0) + log1p(e^-|x|) at
 * 0 comes out 0, not 1/4), so softplus is a primitive with the sigmoid as its derivative,
 * and the rest are written in primitives that are smooth everywhere.
 */
import type { Tensor } from "../tensor.ts";
import { bind } from "../ad/core.ts";
import { tidy } from "../memory.ts";
import { add, exp, log, maximum, minimum, mul, sub } from "./elementwise.ts";

/** The largest finite f32. */
const F32_MAX = 3.4028234663852886e38;
import { max, sum } from "./reduce.ts";
import { stopGradient } from "./elementwise.ts";
import { normAxes } from "../shape.ts";
import { reshape } from "./movement.ts";
import { checkFloat, checkKeepdims, checkTensor } from "./common.ts";

/**
 * `log(1 + e^x)`, without overflow. A primitive (its derivative is the sigmoid), so its
 * derivatives are exact at every order where a max/abs-based composite would not be.
 *
 * @example
 * ```ts
 * import { softplus, tensor } from "@curvature/curvature";
 * console.log(await softplus(tensor([-1000, 0, 1000])).toArray()); // [0, 0.6931…, 1000]
 * ```
 */
export function softplus(x: Tensor): Tensor {
  checkTensor("softplus", x);
  checkFloat("softplus", x);
  return bind("softplus", [x], {});
}

/** `log cosh x = softplus(2x) − x − log 2`, smooth and exact to every order, without overflow. */
export function logcosh(x: Tensor): Tensor {
  checkTensor("logcosh", x);
  checkFloat("logcosh", x);
  return tidy(() => sub(sub(softplus(mul(x, 2)), x), Math.LN2));
}

/**
 * `log Σ e^x` over `axis` (all axes when omitted), shifted by the (gradient-free) maximum so
 * that nothing overflows; its gradient is the softmax. Infinite entries give the exact
 * limits: all −∞ gives −∞, any +∞ gives +∞ (the shift is clamped to the finite range, so
 * it never computes ∞ − ∞).
 *
 * @example
 * ```ts
 * import { logsumexp, tensor } from "@curvature/curvature";
 * console.log(await logsumexp(tensor([0, Math.log(3)])).item()); // 1.386… (log 4)
 * console.log(await logsumexp(tensor([-Infinity, -Infinity])).item()); // -Infinity
 * ```
 */
export function logsumexp(x: Tensor, axis?: number | number[], keepdims = false): Tensor {
  checkTensor("logsumexp", x);
  checkFloat("logsumexp", x);
  checkKeepdims("logsumexp", keepdims);
  const axes = normAxes("logsumexp", axis, x.rank);
  return tidy(() => {
    const big = x.dtype === "f64" ? Number.MAX_VALUE : F32_MAX;
    const m = stopGradient(minimum(maximum(max(x, axes, true), -big), big));
    const s = add(log(sum(exp(sub(x, m)), axes, true)), m);
    return keepdims ? s : reshape(s, x.shape.filter((_, i) => !axes.includes(i)));
  });
}

/**
 * `x − logsumexp(x)` along `axis` (default the last): log-probabilities of a softmax,
 * without overflow.
 *
 * @example
 * ```ts
 * import { logSoftmax, tensor } from "@curvature/curvature";
 * console.log(await logSoftmax(tensor([0, 0])).toArray()); // [-0.693…, -0.693…]
 * ```
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkTensor("logSoftmax", x);
  checkFloat("logSoftmax", x);
  normAxes("logSoftmax", axis, x.rank);
  return tidy(() => sub(x, logsumexp(x, axis, true)));
}

/**
 * `eˣ / Σ eˣ` along `axis` (default the last), shifted by the maximum so nothing
 * overflows: the entries along the axis are positive and sum to 1.
 *
 * @example
 * ```ts
 * import { softmax, tensor } from "@curvature/curvature";
 * console.log(await softmax(tensor([0, Math.log(3)])).toArray()); // [0.25, 0.75]
 * ```
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  checkTensor("softmax", x);
  checkFloat("softmax", x);
  normAxes("softmax", axis, x.rank);
  return tidy(() => exp(logSoftmax(x, axis)));
}
