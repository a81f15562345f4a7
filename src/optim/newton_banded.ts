/**
 * Newton's method with banded Hessians: each step takes the Hessian's band from 2b+1
 * batched comb-probe products (`bandedHessian`), solves H p = −g with the banded Cholesky
 * solver in O(n b²), and searches along p (Armijo with a round-off allowance, a cubic
 * extrapolation when the full step is still descending). Where H is not positive definite,
 * τI is added and the factorisation retried with τ doubling (Nocedal & Wright, *Numerical
 * Optimization*, 2nd ed., Alg. 3.3); where the line search stalls, the same band gives
 * trust-region steps (Moré–Sorensen), which cannot stall on negative curvature.
 */
import type { Tensor } from "../tensor.ts";
import { add, neg } from "../ops/elementwise.ts";
import { reshape } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import {
  disposeAll,
  epsOf,
  loopOpts,
  norm,
  numOpt,
  readScalars,
  type Stop,
  stopReason,
  STOPS,
} from "./objective.ts";
import { backtrack, type SearchFailure, type Trial } from "./line_search.ts";
import { BandModel, isNotSpd } from "./band_model.ts";
import { hessianBandwidth, secondOrderOk, trustStep } from "./trust_exact.ts";
import { freshMemory } from "./trust_subproblem.ts";
import { TrustRegion } from "./trust_region.ts";

/** A point the search moved to, with the shift it used. */
type Step = Trial & { tau: number };

/** Backtracking halvings before the line search hands over to trust-region steps. */
const MAX_HALVINGS = 5;

/**
 * One Newton step from (x, f, g) along the solution of (H + τI) p = −g (see `backtrack`),
 * or why the line search gave up. The first trial's read-back is also where a failed
 * factorisation surfaces on WebGPU (on the CPU it fails at once); either grows τ.
 */
async function newtonStep(
  prob: MinimizeProblem,
  model: BandModel,
  x: Tensor,
  f: number,
  g: Tensor,
  c1: number,
  tauHint: number,
): Promise<Step | SearchFailure> {
  const n = x.size;
  let tau = 0;
  // Alg. 3.3's τ₀ = β starts the doubling. N&W's β = 10⁻³ max |H_ii| is far too big where
  // one stiff term dominates the diagonal and the negative curvature is mild (the shift
  // then turns Newton into damped gradient descent), so start tiny, or at an eighth of the
  // last iteration's shift, which is usually close. The band's norm is read only once a
  // shift is needed: a positive definite step costs no extra read-back.
  const grow = async () => {
    if (tau === 0 && tauHint > 0) tau = tauHint / 8;
    else if (tau === 0) tau = Math.max(1e-8 * (await model.bounds()).inf, 1e-12);
    else tau *= 2;
  };
  for (let attempt = 0; attempt < 60; attempt++) {
    let p: Tensor | null = null;
    try {
      p = tidy(() => reshape(model.solve(tau, reshape(neg(g), [n])), x.shape));
      const r = await backtrack(prob, x, f, g, p, c1, MAX_HALVINGS, true);
      return "fail" in r ? r : { ...r, tau };
    } catch (e) {
      if (!isNotSpd(e)) throw e;
      await grow();
    } finally {
      p?.dispose();
    }
  }
  return { fail: "the line search stalled", t: 1, pnorm: NaN };
}

/**
 * `minimize(f, x0, { method: "newton-banded", bandwidth })`: Newton steps from the banded
 * Hessian (see `bandedHessian`) and the banded Cholesky solver. Where the band is not
 * positive definite, τI is added (τ doubling from a small start or from an eighth of the
 * previous iteration's shift; τ = 0 is always tried first, so steps near the optimum are
 * pure Newton). The line search accepts `f(x + t p) ≤ f + c₁ t gᵀp + 10 ε |f|` (the
 * allowance keeps quadratic convergence near the optimum, where the predicted decrease falls
 * below the rounding of f; there the decrease is measured from the slopes, see `decrease`),
 * halving t at most 5 times; a full step that is still descending gets one cubic
 * extrapolation. When the direction is not a descent direction or the halvings run out,
 * the iteration takes trust-region steps on the same band instead (Moré–Sorensen, radius
 * starting at the shortest step tried), so the method does not stall where line-search
 * Newton does.
 *
 * It stops when ‖∇f‖ < `gtol` AND the Hessian there is positive semidefinite (checked with
 * one more band and a Cholesky of H + δI, δ = √ε ‖H‖_∞ in f64, 10⁻³ ‖H‖_∞ in f32): then
 * `converged: true` means a local minimum to that tolerance. At a stationary point with
 * negative curvature it steps along the curvature; if that fails it reports the saddle
 * with `converged: false`. It also stops at `maxIter`, when f or ∇f is not finite, and when
 * a step is taken without lowering f (f at its rounding floor). Options: `bandwidth`,
 * `bandMethod`, `gtol`, `maxIter`, `c1`, `onIteration` (reports `stepSize` — 0 for a
 * trust-region step — `shift`, and `trustRadius` for trust-region steps).
 */
export async function newtonBanded(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "newton-banded";
  if (o.bandwidth === undefined) {
    throw new TypeError(
      'minimize (newton-banded): the bandwidth option is required, e.g. { method: "newton-banded", bandwidth: 2 } ' +
        '(for a dense Hessian, use "trust-exact")',
    );
  }
  const b = hessianBandwidth(m, o, x0.size);
  const { gtol, maxIter } = loopOpts(m, o, 100);
  const c1 = numOpt(m, "c1", o.c1, 1e-4, (v) => v > 0 && v < 1, "in (0, 1)");
  const method = o.bandMethod ?? "direct";

  let x = tidy(() => add(x0, 0));
  let g: Tensor | null = null;
  let model: BandModel | null = null;
  try {
    const [fT, g0] = prob.valueAndGrad(x);
    g = g0;
    const gn0 = norm(g), xn0 = norm(x);
    let [f, gnorm, xnorm] = await readScalars(fT, gn0, xn0);
    disposeAll(fT, gn0, xn0);
    let k = 0;
    let tauHint = 0;
    let stopped: Stop | null = null;
    let saddle = false;
    if (!(await prob.report({ iteration: 0, x, fun: f, gradNorm: gnorm }))) {
      stopped = STOPS.callback;
    }
    while (!stopped) {
      const band = () =>
        new BandModel(prob.bandedHessian(x, { bandwidth: b, layout: "lower", method }));
      if (gnorm < gtol && !saddle) {
        model ??= band();
        if (await secondOrderOk(model, x.dtype)) {
          stopped = STOPS.converged(true);
          break;
        }
        saddle = true;
      }
      stopped = stopReason(f, gnorm, k, saddle ? 0 : gtol, maxIter);
      if (stopped) break;
      model ??= band();
      const ls: Step | SearchFailure | null = saddle
        ? null
        : await newtonStep(prob, model, x, f, g!, c1, tauHint);
      let step: Step | null = null;
      let radius: number | undefined;
      if (ls === null || "fail" in ls) {
        // trust-region steps on the same band until one is taken
        const tr = new TrustRegion(m, { method: m }, epsOf(x.dtype));
        tr.radius = ls === null
          ? Math.max(1, xnorm) // along negative curvature: the model is unbounded, start wide
          : Number.isFinite(ls.pnorm) && ls.pnorm > 0
          ? ls.t * ls.pnorm
          : 1;
        const mem = freshMemory();
        let lambda = 0;
        for (;;) {
          const t = await trustStep(prob, model, x, f, g!, gnorm, xnorm, tr, mem);
          lambda = t.lambda;
          if (t.accept) {
            step = { x: t.x!, g: t.g!, f: t.f, gnorm: t.gnorm, xnorm: t.xnorm, t: 0, tau: lambda };
          }
          if (t.accept || t.stall || !(t.predicted > 0)) break;
        }
        radius = tr.radius;
        if (!step) {
          stopped = saddle
            ? STOPS.saddle(-lambda)
            : STOPS.noProgress(`${ls?.fail}, and no trust-region step lowers f`);
          break;
        }
      } else step = ls;
      // no progress: neither f lower nor ‖g‖ halved (a step taken through the allowance)
      const stalled = !(step.f < f) && !(step.gnorm < 0.5 * gnorm);
      if (step.f < f) saddle = false;
      disposeAll(x, g, model);
      model = null;
      ({ x, g, f, gnorm, xnorm } = step);
      tauHint = step.tau;
      k++;
      const info = {
        iteration: k,
        x,
        fun: f,
        gradNorm: gnorm,
        stepSize: step.t,
        shift: step.tau,
        ...(radius === undefined ? {} : { trustRadius: radius }),
      };
      if (!(await prob.report(info))) stopped = STOPS.callback;
      else if (stalled && gnorm >= gtol) stopped = STOPS.floor;
    }
    return { x, fun: f, gradNorm: gnorm, iterations: k, ...stopped!, jac: g! };
  } catch (e) {
    disposeAll(x, g);
    throw e;
  } finally {
    model?.dispose();
  }
}
