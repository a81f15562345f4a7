/**
 * The line search of the Newton methods: backtracking from t = 1 with an Armijo test that
 * survives rounding near the optimum, and one cubic extrapolation when the full step is
 * still falling steeply at its end.
 */
import type { Tensor } from "../tensor.ts";
import { add, mul } from "../ops/elementwise.ts";
import { reshape, stack } from "../ops/movement.ts";
import { jit } from "../ad/jit.ts";
import type { MinimizeProblem } from "./types.ts";
import { decrease, disposeAll, epsOf, norm, scalarLike, vdot } from "./objective.ts";

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

/**
 * The search's bookkeeping as `jit` programs shared by every call (nothing closed over):
 * traced once per shape, replayed after that. t is an input tensor, so every step length
 * replays one program.
 */
const programs = {
  step: jit((x: Tensor, p: Tensor, t: Tensor) => add(x, mul(p, t))),
  /** f(x_t), ‖g_t‖, gᵀp, g_tᵀp, ‖p‖, ‖x_t‖. */
  trial: jit((ft: Tensor, gt: Tensor, g: Tensor, p: Tensor, xt: Tensor) =>
    stack([reshape(ft, []), norm(gt), vdot(g, p), vdot(gt, p), norm(p), norm(xt)])
  ),
  /** f(x_t), ‖g_t‖, ‖x_t‖. */
  point: jit((ft: Tensor, gt: Tensor, xt: Tensor) => stack([reshape(ft, []), norm(gt), norm(xt)])),
};

/** @internal x + t p (a program replayed for every t). */
export function stepTo(x: Tensor, p: Tensor, t: number): Tensor {
  const tt = scalarLike(x, t);
  try {
    return programs.step(x, p, tt);
  } finally {
    tt.dispose();
  }
}

/**
 * @internal f(x_t), ‖g_t‖ and ‖x_t‖ of a point, read back at once; a failed read frees
 * x_t and g_t (the caller's otherwise).
 */
export async function pointScalars(ft: Tensor, gt: Tensor, xt: Tensor): Promise<number[]> {
  return await readOrFree(programs.point(ft, gt, xt), ft, xt, gt);
}

/** Reads `packed` (then frees it and `ft`); on a failure frees `xt` and `gt` too. */
async function readOrFree(packed: Tensor, ft: Tensor, xt: Tensor, gt: Tensor): Promise<number[]> {
  try {
    return Array.from(await packed.data());
  } catch (err) {
    disposeAll(xt, gt);
    throw err;
  } finally {
    disposeAll(packed, ft);
  }
}

function evaluate(prob: MinimizeProblem, x: Tensor, p: Tensor, t: number) {
  const xt = stepTo(x, p, t);
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
  const [fe, ge, xe] = await pointScalars(e.ft, e.gt, e.xt);
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
    const [fv, gnorm, slope, st, pn, xnorm] = await readOrFree(
      programs.trial(ft, gt, g, p, xt),
      ft,
      xt,
      gt,
    );
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
