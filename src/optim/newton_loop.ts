/**
 * The Newton iteration shared by the methods that solve with an assembled Hessian
 * (`"newton-banded"`, `"newton-sparse"`): each iteration asks the method for the linear
 * system at x, solves (H + τI) p = −g with τ raised while H is not positive definite
 * (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 3.3), and searches along p
 * (`backtrack`: Armijo with a round-off allowance, one cubic extrapolation). Where the
 * line search stalls, a banded system gives trust-region steps on the same band
 * (Moré–Sorensen), which cannot stall on negative curvature. Methods differ only in the
 * system: how H is built and how a shifted system is solved.
 */
import type { Tensor } from "../tensor.ts";
import { add } from "../ops/elementwise.ts";
import { tidy } from "../memory.ts";
import type { IterationInfo, MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import {
  disposeAll,
  epsOf,
  loopOpts,
  numOpt,
  readScalars,
  type Stop,
  stopReason,
  STOPS,
} from "./objective.ts";
import { backtrack, pointScalars, type SearchFailure, type Trial } from "./line_search.ts";
import { type BandModel, isNotSpd } from "./band_model.ts";
import { checkStationary, settleSingular } from "./curvature_check.ts";
import { type NullDirection, trustStep } from "./trust_exact.ts";
import { freshMemory } from "./trust_subproblem.ts";
import { TrustRegion } from "./trust_region.ts";

export { isNotSpd };

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
  /**
   * The band of H in the caller's variable order, when the system is one: it gives the
   * trust-region steps where the line search stalls.
   */
  band?: BandModel;
  /**
   * The second-order check at the end, where the system has a factorisation (see
   * `bandSecondOrder`; a null direction in the caller's order); without one, Lanczos steps
   * on Hessian-vector products.
   */
  secondOrder?: () => Promise<"indefinite" | "definite" | NullDirection>;
  /** Frees the system. */
  dispose(): void;
}

/** A point the search moved to, with the shift it used. */
type Step = Trial & { tau: number };

/** Backtracking halvings before the line search hands over to trust-region steps. */
const MAX_HALVINGS = 5;

/**
 * One Newton step from (x, f, g) along the solution of (H + τI) p = −g (see `backtrack`),
 * or why the line search gave up. The first trial's read-back is also where a failed
 * factorisation surfaces on WebGPU (on the CPU it fails at once); either grows τ. A full
 * step that is accepted (the usual case near the optimum) costs one read-back.
 */
async function newtonStep(
  prob: MinimizeProblem,
  h: NewtonSystem,
  x: Tensor,
  f: number,
  g: Tensor,
  gnorm: number,
  c1: number,
  tauHint: number,
  halvings: number,
): Promise<Step | SearchFailure> {
  let tau = 0;
  // Alg. 3.3's τ₀ = β starts the doubling. N&W's β = 10⁻³ max |H_ii| is far too big where
  // one stiff term dominates the diagonal and the negative curvature is mild (the shift
  // then turns Newton into damped gradient descent), so start tiny, or at an eighth of the
  // last iteration's shift, which is usually close. The diagonal is read only once a shift
  // is needed: a positive definite step costs no extra read-back.
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
    let p: Tensor | null = null;
    try {
      p = await h.solve(g, tau, gnorm);
      const r = await backtrack(prob, x, f, g, p, c1, halvings, true);
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
 * Trust-region steps on the band from x until one is taken (see `trustStep`), the radius
 * starting at `radius`; null when none lowers f.
 */
async function trustFallback(
  method: string,
  prob: MinimizeProblem,
  band: BandModel,
  x: Tensor,
  f: number,
  g: Tensor,
  gnorm: number,
  xnorm: number,
  radius: number,
): Promise<{ step: Step | null; radius: number; lambda: number }> {
  const tr = new TrustRegion(method, { method }, epsOf(x.dtype), true);
  tr.radius = radius;
  const mem = freshMemory();
  for (;;) {
    const t = await trustStep(prob, band, x, f, g, gnorm, xnorm, tr, mem);
    if (t.accept) {
      const step = {
        x: t.x!,
        g: t.g!,
        f: t.f,
        gnorm: t.gnorm,
        xnorm: t.xnorm,
        t: 0,
        tau: t.lambda,
      };
      return { step, radius: tr.radius, lambda: t.lambda };
    }
    if (t.stall || !(t.predicted > 0)) return { step: null, radius: tr.radius, lambda: t.lambda };
  }
}

/**
 * Newton's method with `system(x)` giving the Hessian at x: τ = 0 is always tried first
 * (steps near the optimum are pure Newton), τ doubles from a small start or from an eighth
 * of the previous iteration's shift, and the line search accepts `f(x + t p) ≤ f + c₁ t gᵀp
 * + 10 ε |f|` (the allowance keeps quadratic convergence near the optimum, where the
 * predicted decrease falls below the rounding of f; there the decrease is measured from
 * the slopes, see `decrease`), halving t at most 5 times; a full step still falling at its
 * end gets one cubic extrapolation. When the direction is not a descent direction or the
 * halvings run out, a banded system takes trust-region steps on the same band (radius
 * starting at the shortest step tried); other systems stop there.
 *
 * It stops with `converged: true` when ‖∇f‖ < `gtol` AND the Hessian there is positive
 * semidefinite: with a band, one more band and a Cholesky of H + δI (δ = √ε ‖H‖_∞ in f64,
 * 10⁻³ ‖H‖_∞ in f32); otherwise 16 Lanczos steps on Hessian-vector products. Where H is
 * singular to that tolerance, f is probed along the null direction first (`probeNull`):
 * a fall beyond the gradient's first-order share continues the run from there; otherwise
 * the message says the Hessian is singular (a strict minimum not verified). At a stationary
 * point with negative curvature it steps along it; when that fails it reports the saddle
 * (status 4). It also stops at `maxIter` (default 1000, as every method), when f or ∇f is not finite, and
 * when a step is taken without lowering f or halving ‖∇f‖ (f at its rounding floor). Reads
 * `gtol`, `maxIter`, `c1`; reports `stepSize` (0 for a trust-region step), `shift`,
 * `trustRadius` after trust-region steps, and whatever `extra` adds to `onIteration`.
 */
export async function newtonLoop(
  method: string,
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
  system: (x: Tensor) => NewtonSystem,
  extra: () => Partial<IterationInfo> = () => ({}),
): Promise<MethodResult> {
  const { gtol, maxIter } = loopOpts(method, o);
  const c1 = numOpt(method, "c1", o.c1, 1e-4, (v) => v > 0 && v < 1, "in (0, 1)");
  let x = tidy(() => add(x0, 0));
  let g: Tensor | null = null;
  let h: NewtonSystem | null = null;
  try {
    const [fT, g0] = prob.valueAndGrad(x);
    g = g0;
    let [f, gnorm, xnorm] = await pointScalars(fT, g, x);
    let k = 0;
    let tauHint = 0;
    let stopped: Stop | null = null;
    let saddle = false; // ‖g‖ < gtol here, but the band shows negative curvature
    if (!(await prob.report({ iteration: 0, x, fun: f, gradNorm: gnorm }))) {
      stopped = STOPS.callback;
    }
    while (!stopped) {
      const gk: Tensor = g;
      let step: Step | null = null;
      let radius: number | undefined;
      if (gnorm < gtol && !saddle) {
        h ??= system(x);
        const v = h.secondOrder ? await h.secondOrder() : null;
        if (v === "definite") {
          stopped = STOPS.converged(true);
          break;
        }
        if (v === "indefinite" && h.band) saddle = true; // trust-region steps on the band, below
        else {
          // singular: probe its null direction; no factorisation, or no band to step with:
          // Lanczos finds the direction
          const c = v !== null && v !== "indefinite"
            ? await settleSingular(prob, x, f, gk, xnorm, v)
            : await checkStationary(prob, x, f, gk, xnorm);
          if ("status" in c) {
            stopped = c;
            break;
          }
          step = { ...c, tau: 0 };
        }
      }
      if (!step) {
        stopped = stopReason(f, gnorm, k, saddle ? 0 : gtol, maxIter);
        if (stopped) break;
        h ??= system(x);
        const ls: Step | SearchFailure | null = saddle
          ? null
          : await newtonStep(prob, h, x, f, gk, gnorm, c1, tauHint, h.band ? MAX_HALVINGS : 30);
        if (ls && !("fail" in ls)) step = ls;
        else if (h.band) {
          const r0 = ls === null
            ? Math.max(1, xnorm) // along negative curvature: the model is unbounded, start wide
            : Number.isFinite(ls.pnorm) && ls.pnorm > 0
            ? ls.t * ls.pnorm
            : 1;
          const fb = await trustFallback(method, prob, h.band, x, f, gk, gnorm, xnorm, r0);
          step = fb.step;
          radius = fb.radius;
          if (!step) {
            stopped = saddle
              ? STOPS.saddle(-fb.lambda)
              : STOPS.noProgress(`${ls?.fail}, and no trust-region step lowers f`);
            break;
          }
        } else {
          stopped = STOPS.noProgress(`${ls?.fail ?? "no step"}: no acceptable step`);
          break;
        }
      }
      if (!step) break; // unreachable: every branch above sets step or stops
      // no progress: neither f lower nor ‖g‖ halved (a step taken through the allowance)
      const stalled = !(step.f < f) && !(step.gnorm < 0.5 * gnorm);
      if (step.f < f) saddle = false;
      disposeAll(x, g, h);
      h = null;
      ({ x, g, f, gnorm, xnorm } = step);
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
    h?.dispose();
  }
}
