/**
 * The line search of the Newton methods: backtracking from t = 1 with an Armijo test that
 * survives rounding near the optimum, and one cubic extrapolation when the full step is
 * still falling steeply at its end.
 */
import type { Tensor } from "../tensor.ts";
import { add, mul } from "../ops/elementwise.ts";
import { tidy } from "../memory.ts";
import type { MinimizeProblem } from "./types.ts";
import { decrease, disposeAll, epsOf, norm, readScalars, vdot } from "./objective.ts";

/** A point the search moved to. */
export interface Trial {
  x: Tensor;
  g: Tensor;
  f: number;
  gnorm: number;
  xnorm: number;
  /** The step length taken along p. */
  t: number;
}

/** Why a search found no step: p is not a descent direction, or the halvings ran out. */
export interface SearchFailure {
  fail: "not a descent direction" | "the line search stalled";
  /** The shortest step tried. */
  t: number;
  /** ‖p‖. */
  pnorm: number;
}

/**
 * The minimiser of the cubic through (0, f, s0) and (1, f1, s1) (Nocedal & Wright (3.59)),
 * or 4 when the cubic has none (it keeps falling).
 */
export function cubicStep(f: number, s0: number, f1: number, s1: number): number {
  const d1 = s0 + s1 - 3 * (f1 - f);
  const disc = d1 * d1 - s0 * s1;
  if (!(disc >= 0)) return 4;
  const d2 = Math.sqrt(disc);
  const t = 1 - (s1 + d2 - d1) / (s1 - s0 + 2 * d2);
  return Number.isFinite(t) ? t : 4;
}

function evaluate(prob: MinimizeProblem, x: Tensor, p: Tensor, t: number) {
  const xt = tidy(() => add(x, mul(p, t)));
  const [ft, gt] = prob.valueAndGrad(xt);
  return { xt, ft, gt };
}

/**
 * After a full step to (f1, slope s1 = g₁ᵀp) that is still falling (s1 < 0): one trial at
 * the cubic's minimiser when it lies in [1.5, 4] (Moré & Thuente's extrapolation, capped),
 * taken if it is lower. Newton's quadratic model underestimates how far functions with
 * exponential tails (penalties, softplus) keep falling, and one more evaluation is cheaper
 * than an iteration with a new Hessian. Returns null when there is nothing better.
 */
export async function extrapolate(
  prob: MinimizeProblem,
  x: Tensor,
  p: Tensor,
  f: number,
  s0: number,
  f1: number,
  s1: number,
): Promise<Trial | null> {
  if (!(s1 < 0)) return null;
  const t = Math.min(cubicStep(f, s0, f1, s1), 4);
  if (!(t >= 1.5)) return null;
  const e = evaluate(prob, x, p, t);
  const es = tidy(() => [e.ft, norm(e.gt), norm(e.xt)]);
  let vals: number[];
  try {
    vals = await readScalars(...es);
  } catch (err) {
    disposeAll(e.xt, e.gt);
    throw err;
  } finally {
    disposeAll(...es);
  }
  const [fe, ge, xe] = vals;
  if (fe < f1) return { x: e.xt, g: e.gt, f: fe, gnorm: ge, xnorm: xe, t };
  disposeAll(e.xt, e.gt);
  return null;
}

/**
 * Backtracking from t = `t0` (default 1), halving t at most `maxHalvings` times (N&W Alg. 3.1 with
 * contraction ½), accepting when the decrease is at least `c₁ t |gᵀp| − 10 ε |f|`. The last
 * term is the round-off allowance, and the decrease is measured by `decrease` (from the
 * slopes where f's differences are rounding): near the optimum the predicted decrease
 * falls below the rounding error of f, and without them the search would reject the
 * Newton step and lose quadratic convergence. Each trial evaluates value and gradient
 * together (the gradient is needed when the step is accepted, and a Newton step usually
 * is) and reads back f, ‖g‖, both slopes, ‖p‖ and ‖x_t‖ at once; a full step accepted
 * costs one read-back. Errors raised at a read (a failed factorisation on WebGPU) free the
 * trial and propagate; p stays the caller's.
 */
export async function backtrack(
  prob: MinimizeProblem,
  x: Tensor,
  f: number,
  g: Tensor,
  p: Tensor,
  c1: number,
  maxHalvings: number,
  extrapolation: boolean,
  t0 = 1,
): Promise<Trial | SearchFailure> {
  const allowance = 10 * epsOf(x.dtype) * Math.abs(f);
  let t = t0;
  let pnorm = NaN;
  for (let i = 0; i <= maxHalvings; i++) {
    const { xt, ft, gt } = evaluate(prob, x, p, t);
    const scal = tidy(() => [ft, norm(gt), vdot(g, p), vdot(gt, p), norm(p), norm(xt)]);
    let vals: number[];
    try {
      vals = await readScalars(...scal);
    } catch (e) {
      disposeAll(xt, gt);
      throw e;
    } finally {
      disposeAll(...scal);
    }
    const [fv, gnorm, slope, st, pn, xnorm] = vals;
    pnorm = pn;
    if (!(slope < 0)) {
      disposeAll(xt, gt);
      return { fail: "not a descent direction", t, pnorm };
    }
    const armijo = c1 * t * slope;
    if (decrease(f, fv, t * slope, t * slope, t * st, x.dtype) >= -armijo - allowance) {
      const e = extrapolation && t === 1 ? await extrapolate(prob, x, p, f, slope, fv, st) : null;
      if (e) {
        disposeAll(xt, gt);
        return e;
      }
      return { x: xt, g: gt, f: fv, gnorm, xnorm, t };
    }
    disposeAll(xt, gt);
    t *= 0.5;
  }
  return { fail: "the line search stalled", t: 2 * t, pnorm };
}
