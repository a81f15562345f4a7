/**
 * Numerically stable composites written in primitives. Each switches between two formulas
 * that are both analytic everywhere, so derivatives of every order are exact (a version
 * built on abs or max would have a wrong second derivative at its kink), and the branch not
 * taken is fed a harmless input so it cannot put NaN into a gradient.
 */
import type { Tensor } from "../tensor.ts";
import { tidy } from "../memory.ts";
import { add, exp, greater, log, log1p, mul, neg, sub, where } from "./elementwise.ts";
import { max, sum } from "./reduce.ts";
import { stopGradient } from "./elementwise.ts";
import { normAxes } from "../shape.ts";
import { reshape } from "./movement.ts";
import { checkFloat, checkTensor } from "./common.ts";

/**
 * `log(1 + e^x)` without overflow: `x + log1p(e^-x)` for x > 0, `log1p(e^x)` otherwise.
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
  return tidy(() => {
    const pos = greater(x, 0);
    const xp = where(pos, x, 0); // only read where x > 0
    const xn = where(pos, 0, x); // only read where x ≤ 0
    return where(pos, add(xp, log1p(exp(neg(xp)))), log1p(exp(xn)));
  });
}

/** `log cosh x = softplus(2x) − x − log 2`, smooth and exact to every order, without overflow. */
export function logcosh(x: Tensor): Tensor {
  checkTensor("logcosh", x);
  checkFloat("logcosh", x);
  return tidy(() => sub(sub(softplus(mul(x, 2)), x), Math.LN2));
}

/**
 * `log Σ e^x` over `axis` (all axes when omitted), shifted by the (gradient-free) maximum so
 * that nothing overflows; its gradient is the softmax.
 */
export function logsumexp(x: Tensor, axis?: number | number[], keepdims = false): Tensor {
  checkTensor("logsumexp", x);
  checkFloat("logsumexp", x);
  const axes = normAxes("logsumexp", axis, x.rank);
  return tidy(() => {
    const m = stopGradient(max(x, axes, true));
    const s = add(log(sum(exp(sub(x, m)), axes, true)), m);
    return keepdims ? s : reshape(s, x.shape.filter((_, i) => !axes.includes(i)));
  });
}
