/**
 * Line-search Newton-CG (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 7.1):
 * truncated conjugate gradients on Hessian-vector products with SciPy's forcing sequence,
 * then Armijo backtracking with a round-off allowance.
 */
import type { Tensor } from "../tensor.ts";
import { add, greater, mul, neg, sub, where } from "../ops/elementwise.ts";
import { zeros } from "../ops/creation.ts";
import { tidy } from "../memory.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import {
  CheckSchedule,
  disposeAll,
  epsOf,
  loopOpts,
  norm,
  numOpt,
  readScalars,
  stopReason,
  vdot,
} from "./objective.ts";

interface CgState {
  z: Tensor;
  r: Tensor;
  d: Tensor;
  rs: Tensor;
  active: Tensor;
  iters: Tensor;
}

/**
 * Truncated CG for `H p = −g` (N&W Alg. 7.1, inner loop): stops when ‖r‖ ≤ `tol` or at the
 * first direction of non-positive curvature; if that happens at the first iteration the
 * step is the steepest-descent direction −g. The scalars stay on the device; iterations
 * after termination are masked no-ops (`where` on a 0-d flag), so when the flag is read
 * back (`schedule`) changes the cost, never the result.
 */
async function truncatedCg(
  prob: MinimizeProblem,
  x: Tensor,
  g: Tensor,
  tol: number,
  maxCg: number,
  schedule: CheckSchedule,
): Promise<{ p: Tensor; iters: number }> {
  let s: CgState = tidy(() => ({
    z: zeros(g.shape, { dtype: g.dtype, device: g.device }),
    r: add(g, 0),
    d: neg(g),
    rs: vdot(g, g),
    active: greater(vdot(g, g), tol * tol),
    iters: zeros([], { dtype: g.dtype, device: g.device }),
  }));
  let iters = 0;
  for (let j = 0; j < maxCg; j++) {
    const prev = s;
    s = tidy(() => {
      const bd = prob.hvp(x, prev.d);
      const curv = vdot(prev.d, bd);
      const pos = greater(curv, 0);
      const step = mul(prev.active, pos); // a regular CG step
      const alpha = mul(prev.rs, where(pos, curv, 1).reciprocal());
      const zn = add(prev.z, mul(alpha, prev.d));
      const rn = add(prev.r, mul(alpha, bd));
      const rsn = vdot(rn, rn);
      let z = where(step, zn, prev.z);
      // non-positive curvature at the first iteration: fall back to −g (N&W Alg. 7.1)
      if (j === 0) z = where(sub(prev.active, step), neg(g), z);
      const beta = mul(rsn, where(step, prev.rs, 1).reciprocal());
      return {
        z,
        r: where(step, rn, prev.r),
        d: where(step, sub(mul(beta, prev.d), rn), prev.d),
        rs: where(step, rsn, prev.rs),
        active: mul(step, greater(rsn, tol * tol)),
        iters: add(prev.iters, prev.active), // iterations (HVPs) while running
      };
    });
    disposeAll(prev.z, prev.r, prev.d, prev.rs, prev.active, prev.iters);
    if (schedule.due(j + 1) || j + 1 === maxCg) {
      const [active, it] = await readScalars(s.active, s.iters);
      iters = it;
      if (active === 0) break;
    }
  }
  disposeAll(s.r, s.d, s.rs, s.active, s.iters);
  schedule.finished(iters);
  return { p: s.z, iters };
}

interface Trial {
  x: Tensor;
  g: Tensor;
  f: number;
  gnorm: number;
  t: number;
}

/**
 * Backtracking from t = 1, halving t (N&W Alg. 3.1 with contraction ½), accepting
 * when `f(x + t p) ≤ f + c₁ t gᵀp + 10 ε |f|`. The last term is the round-off allowance:
 * near the optimum the predicted decrease falls below the rounding error of f, and without
 * it the search would reject the Newton step and lose quadratic convergence. Each trial
 * evaluates value and gradient together (the gradient is needed when the step is
 * accepted, and a Newton step usually is) and reads back three scalars at once.
 */
async function armijo(
  prob: MinimizeProblem,
  x: Tensor,
  f: number,
  g: Tensor,
  p: Tensor,
  c1: number,
): Promise<Trial | "not-descent" | "failed"> {
  const allowance = 10 * epsOf(x.dtype) * Math.abs(f);
  using gtp = vdot(g, p);
  let t = 1;
  for (let i = 0; i < 60; i++) {
    const xt = tidy(() => add(x, mul(p, t)));
    const [ft, gt] = prob.valueAndGrad(xt);
    const gn = norm(gt);
    const [fv, gnorm, slope] = await readScalars(ft, gn, gtp);
    disposeAll(ft, gn);
    if (i === 0 && !(slope < 0)) {
      disposeAll(xt, gt);
      return "not-descent";
    }
    if (fv <= f + c1 * t * slope + allowance) return { x: xt, g: gt, f: fv, gnorm, t };
    disposeAll(xt, gt);
    t *= 0.5;
  }
  return "failed";
}

/**
 * `minimize(f, x0, { method: "newton-cg" })`: each iteration solves `H p = −g` by truncated
 * CG on Hessian-vector products to the relative tolerance `min(0.5, √‖g‖) ‖g‖` (SciPy's
 * forcing sequence, with the Euclidean norm), then takes an Armijo step along p.
 */
export async function newtonCg(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "newton-cg";
  const { gtol, maxIter } = loopOpts(m, o);
  const maxCg = numOpt(m, "maxCgIter", o.maxCgIter, 20 * x0.size, (v) => v >= 1, "≥ 1");
  const schedule = new CheckSchedule(m, o.cgCheckEvery, x0);
  const c1 = numOpt(m, "c1", o.c1, 1e-4, (v) => v > 0 && v < 1, "in (0, 1)");

  let x = tidy(() => add(x0, 0));
  let g: Tensor | null = null;
  try {
    const [fT, g0] = prob.valueAndGrad(x);
    g = g0;
    const gn0 = norm(g);
    let [f, gnorm] = await readScalars(fT, gn0);
    disposeAll(fT, gn0);
    let k = 0;
    let message = "";
    let stop = !(await prob.report({ iteration: 0, x, fun: f, gradNorm: gnorm }));
    while (!stop) {
      message = stopReason(f, gnorm, k, gtol, maxIter);
      if (message) break;
      const tol = Math.min(0.5, Math.sqrt(gnorm)) * gnorm;
      let { p, iters } = await truncatedCg(prob, x, g, tol, maxCg, schedule);
      let trial = await armijo(prob, x, f, g, p, c1);
      if (trial === "not-descent") {
        // round-off made the CG step an ascent direction: fall back to steepest descent
        p.dispose();
        const gk = g;
        p = tidy(() => neg(gk));
        trial = await armijo(prob, x, f, g, p, c1);
      }
      p.dispose();
      if (typeof trial === "string") {
        message = "stopped: the line search found no acceptable step";
        break;
      }
      disposeAll(x, g);
      ({ x, g, f, gnorm } = trial);
      k++;
      stop = !(await prob.report({
        iteration: k,
        x,
        fun: f,
        gradNorm: gnorm,
        stepSize: trial.t,
        cgIterations: iters,
      }));
      if (stop) message = "stopped by onIteration";
    }
    if (!message) message = "stopped by onIteration";
    return { x, fun: f, gradNorm: gnorm, iterations: k, converged: gnorm < gtol, message };
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    g?.dispose();
  }
}
