/**
 * The Newton iteration shared by the methods that solve with an assembled Hessian
 * (`"newton-banded"`, `"newton-sparse"`): each iteration asks the method for the linear
 * system at x, solves (H + τI) p = −g with τ raised while H is not positive definite
 * (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 3.3), and backtracks along p
 * (Armijo with a round-off allowance). Methods differ only in the system: how H is built
 * and how a shifted system is solved.
 */
import type { Tensor } from "../tensor.ts";
import { add, mul } from "../ops/elementwise.ts";
import { tidy } from "../memory.ts";
import type { IterationInfo, MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import {
  disposeAll,
  epsOf,
  loopOpts,
  norm,
  numOpt,
  readScalars,
  stopReason,
  vdot,
} from "./objective.ts";

/** The Hessian at one point, as a Newton step sees it. */
export interface NewtonSystem {
  /**
   * The step p with (H + τI) p = −g. A matrix that is not positive definite is a
   * RangeError whose message says "not positive definite": thrown here (CPU), or at the
   * next read-back of p (WebGPU).
   */
  solve(g: Tensor, tau: number, gradNorm: number): Tensor | Promise<Tensor>;
  /** max |H_ii| as a 0-d tensor (read only when a shift is first needed). */
  diagMax(): Tensor;
  /** Frees the system. */
  dispose(): void;
}

/** A factorisation failure (not positive definite), on either backend. */
export function isNotSpd(e: unknown): boolean {
  return e instanceof RangeError && /not positive definite/.test(e.message);
}

interface Step {
  x: Tensor;
  g: Tensor;
  f: number;
  gnorm: number;
  t: number;
  tau: number;
}

/**
 * One Newton step from (x, f, g): the direction from (H + τI) p = −g, then backtracking.
 * The first trial's value, gradient norm and slope come back in ONE read-back, which is
 * also where a failed factorisation surfaces on WebGPU; a full step that is accepted (the
 * usual case near the optimum) costs one read-back per iteration.
 */
async function newtonStep(
  prob: MinimizeProblem,
  x: Tensor,
  f: number,
  g: Tensor,
  gnormNow: number,
  h: NewtonSystem,
  c1: number,
  tauHint: number,
): Promise<Step | string> {
  const allowance = 10 * epsOf(x.dtype) * Math.abs(f);
  let tau = 0;
  // Alg. 3.3's τ₀ = β starts the doubling. N&W's β = 10⁻³ max |H_ii| is far too big where
  // one stiff term dominates the diagonal and the negative curvature is mild (the shift
  // then turns Newton into damped gradient descent), so start tiny, or at half the last
  // iteration's shift, which is usually close. The diagonal is read only once a shift is
  // needed: a positive definite step costs no extra read-back.
  // (The last shift, divided by 8, is where the doubling restarts in the next iteration.)
  const grow = async () => {
    if (tau === 0 && tauHint > 0) tau = tauHint / 8;
    else if (tau === 0) {
      const s = h.diagMax();
      const [hmax] = await readScalars(s);
      s.dispose();
      tau = Math.max(1e-8 * hmax, 1e-12);
    } else tau *= 2;
  };
  for (let attempt = 0; attempt < 60; attempt++) {
    let p: Tensor;
    try {
      p = await h.solve(g, tau, gnormNow);
    } catch (e) {
      if (!isNotSpd(e)) throw e; // CPU: the factorisation fails at once
      await grow();
      continue;
    }
    let t = 1;
    for (let i = 0; i < 60; i++) {
      const xt = tidy(() => add(x, mul(p, t)));
      const [ft, gt] = prob.valueAndGrad(xt);
      const gn = norm(gt);
      const slopeT = vdot(g, p);
      let fv: number, gnorm: number, slope: number;
      try {
        [fv, gnorm, slope] = await readScalars(ft, gn, slopeT);
      } catch (e) {
        disposeAll(ft, gn, slopeT, xt, gt, p);
        if (!isNotSpd(e)) throw e; // WebGPU: the failure surfaces at this read-back
        await grow();
        p = null as unknown as Tensor;
        break;
      }
      disposeAll(ft, gn, slopeT);
      if (!(slope < 0)) {
        disposeAll(xt, gt, p);
        return "stopped: the Newton direction is not a descent direction (rounding at the optimum?)";
      }
      if (fv <= f + c1 * t * slope + allowance) {
        p.dispose();
        return { x: xt, g: gt, f: fv, gnorm, t, tau };
      }
      disposeAll(xt, gt);
      t *= 0.5;
    }
    if (p) {
      p.dispose();
      return "stopped: the line search found no acceptable step";
    }
  }
  return "stopped: no shift τ made the Hessian positive definite";
}

/**
 * Newton's method with `system(x)` giving the Hessian at x: τ = 0 is always tried first
 * (steps near the optimum are pure Newton), τ doubles from a small start or from an eighth
 * of the previous iteration's shift, and the Armijo test accepts `f(x + t p) ≤ f + c₁ t gᵀp
 * + 10 ε |f|` (the allowance keeps quadratic convergence near the optimum, where the
 * predicted decrease falls below the rounding of f). Reads `gtol`, `maxIter` (default
 * 100), `c1`; reports `stepSize`, `shift` and whatever `extra` adds to `onIteration`.
 */
export async function newtonLoop(
  method: string,
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
  system: (x: Tensor) => NewtonSystem,
  extra: () => Partial<IterationInfo> = () => ({}),
): Promise<MethodResult> {
  const { gtol, maxIter } = loopOpts(method, o, 100);
  const c1 = numOpt(method, "c1", o.c1, 1e-4, (v) => v > 0 && v < 1, "in (0, 1)");
  let x = tidy(() => add(x0, 0));
  const [fT, g0] = prob.valueAndGrad(x);
  let g = g0;
  const gn0 = norm(g);
  let [f, gnorm] = await readScalars(fT, gn0);
  disposeAll(fT, gn0);
  let k = 0;
  let tauHint = 0;
  let message = "";
  let stop = !(await prob.report({ iteration: 0, x, fun: f, gradNorm: gnorm }));
  while (!stop) {
    message = stopReason(f, gnorm, k, gtol, maxIter);
    if (message) break;
    const h = system(x);
    let step: Step | string;
    try {
      step = await newtonStep(prob, x, f, g, gnorm, h, c1, tauHint);
    } finally {
      h.dispose();
    }
    if (typeof step === "string") {
      message = step;
      break;
    }
    const stalled = !(step.f < f);
    disposeAll(x, g);
    ({ x, g, f, gnorm } = step);
    tauHint = step.tau;
    k++;
    const info = {
      ...extra(),
      iteration: k,
      x,
      fun: f,
      gradNorm: gnorm,
      stepSize: step.t,
      shift: step.tau,
    };
    if (stalled && gnorm >= gtol) {
      // accepted only through the round-off allowance: f is at its rounding floor
      message = "stopped: no further decrease (f is at its rounding floor; gtol may be below it)";
      await prob.report(info);
      break;
    }
    stop = !(await prob.report(info));
    if (stop) message = "stopped by onIteration";
  }
  g.dispose();
  return { x, fun: f, gradNorm: gnorm, iterations: k, converged: gnorm < gtol, message };
}
