/**
 * Newton's method with banded Hessians: each step takes the Hessian's band from 2b+1
 * batched comb-probe products (`bandedHessian`), solves H p = −g with the banded Cholesky
 * solver in O(n b²), and backtracks along p (Armijo with a round-off allowance). Where H
 * is not positive definite, τI is added and the factorisation retried with τ doubling
 * (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 3.3).
 */
import type { Tensor } from "../tensor.ts";
import { add, mul, neg } from "../ops/elementwise.ts";
import { concat, reshape, slice } from "../ops/movement.ts";
import { max } from "../ops/reduce.ts";
import { abs } from "../ops/elementwise.ts";
import { tidy } from "../memory.ts";
import { type BandedMatrix, checkBandwidth } from "../curvature/banded.ts";
import { solveBanded } from "../linalg/banded.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
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

/** H + τI for a band in lower storage (row 0 is the diagonal). */
function shifted(h: BandedMatrix, tau: number): Tensor {
  return tidy(() => {
    const d = h.data;
    if (tau === 0) return add(d, 0);
    const diag = add(slice(d, [0], [1]), tau);
    return h.bandwidth === 0 ? diag : concat([diag, slice(d, [1], [h.bandwidth + 1])], 0);
  });
}

/** A factorisation failure (not positive definite), on either backend. */
function isNotSpd(e: unknown): boolean {
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
  h: BandedMatrix,
  c1: number,
  tauHint: number,
): Promise<Step | string> {
  const n = x.size;
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
      const s = tidy(() => max(abs(slice(h.data, [0], [1]))));
      const [hmax] = await readScalars(s);
      s.dispose();
      tau = Math.max(1e-8 * hmax, 1e-12);
    } else tau *= 2;
  };
  for (let attempt = 0; attempt < 60; attempt++) {
    let p: Tensor;
    try {
      p = tidy(() => {
        const ab = shifted(h, tau);
        return reshape(solveBanded(ab, reshape(neg(g), [n]), { lower: true }), x.shape);
      });
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
 * `minimize(f, x0, { method: "newton-banded", bandwidth })`: Newton steps from the banded
 * Hessian (see `bandedHessian`) and the banded Cholesky solver, with τI added while the
 * band is not positive definite (τ doubling from a small start or from an eighth of the previous
 * iteration's shift; τ = 0 is always tried first, so steps near the optimum are pure Newton) and Armijo backtracking that accepts `f(x + t p) ≤ f + c₁ t gᵀp + 10 ε |f|`
 * (the allowance keeps quadratic convergence near the optimum, where the predicted decrease
 * falls below the rounding of f). Options: `bandwidth` (required), `bandMethod`, `gtol`,
 * `maxIter`, `c1`, `onIteration` (reports `stepSize` and `shift`).
 */
export async function newtonBanded(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "newton-banded";
  if (o.bandwidth === undefined) {
    throw new TypeError(
      'minimize (newton-banded): the bandwidth option is required, e.g. { method: "newton-banded", bandwidth: 2 }',
    );
  }
  const b = checkBandwidth("minimize (newton-banded)", o.bandwidth, x0.size);
  const { gtol, maxIter } = loopOpts(m, o, 100);
  const c1 = numOpt(m, "c1", o.c1, 1e-4, (v) => v > 0 && v < 1, "in (0, 1)");
  const method = o.bandMethod ?? "direct";

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
    const h = prob.bandedHessian(x, { bandwidth: b, layout: "lower", method });
    const step = await newtonStep(prob, x, f, g, h, c1, tauHint);
    h.dispose();
    if (typeof step === "string") {
      message = step;
      break;
    }
    const stalled = !(step.f < f);
    disposeAll(x, g);
    ({ x, g, f, gnorm } = step);
    tauHint = step.tau;
    if (stalled && gnorm >= gtol) {
      // accepted only through the round-off allowance: f is at its rounding floor
      k++;
      message = "stopped: no further decrease (f is at its rounding floor; gtol may be below it)";
      await prob.report({
        iteration: k,
        x,
        fun: f,
        gradNorm: gnorm,
        stepSize: step.t,
        shift: step.tau,
      });
      break;
    }
    k++;
    stop = !(await prob.report({
      iteration: k,
      x,
      fun: f,
      gradNorm: gnorm,
      stepSize: step.t,
      shift: step.tau,
    }));
    if (stop) message = "stopped by onIteration";
  }
  g.dispose();
  return { x, fun: f, gradNorm: gnorm, iterations: k, converged: gnorm < gtol, message };
}
