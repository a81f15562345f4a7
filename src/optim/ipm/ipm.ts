/**
 * `minimize(f, x0, { method: "ipm", constraints, bounds })`: a primal-dual interior-point
 * method in the shape of Wächter & Biegler, "On the implementation of an interior-point
 * filter line-search algorithm for large-scale nonlinear programming" (Math. Prog. 106,
 * 2006), IPOPT's algorithm:
 *
 *   min f(x)  s.t.  c_E(x) = 0,  c_I(x) ≥ 0,  x_L ≤ x ≤ x_U,
 *
 * with slacks c_I(x) − s = 0, s ≥ 0, and a sequence of barrier problems
 * min φ_μ = f − μ Σ ln s − μ Σ ln(x − x_L) − μ Σ ln(x_U − x) for μ → 0 (Algorithm A):
 *
 * - A-1 the start (§3.6): x pushed into the bounds, the objective scaled to ‖∇f(x₀)‖∞ ≤ 100
 *   (IPOPT's gradient-based scaling, `problem.ts`), slacks pushed off 0, and IPOPT's
 *   least-squares constraint multipliers (`initial.ts`);
 * - barrier update: monotone Fiacco–McCormick, μ ← max(ε/10, min(κ_μ μ, μ^θ_μ))
 *   once E_μ ≤ κ_ε μ, or once E_μ reaches the KKT error's rounding floor ε ‖∇²f‖ ‖x‖ where
 *   that lies above κ_ε μ (`barrier.ts`, `initial.ts`: stiff problems, f32);
 * - A-4 search direction from the condensed primal-dual system with the inertia correction
 *   (`direction.ts`, `kkt.ts`: banded or dense, one interface);
 * - A-5 fraction to the boundary τ = max(τ_min, 1 − μ), backtracking filter line search
 *   with second-order corrections (`line_search.ts`, `filter.ts`);
 * - A-6 separate primal and dual step sizes, multiplier reset (eq. 16);
 * - A-9 feasibility restoration, with infeasibility reported as such (`restoration.ts`).
 *
 * Derivatives come from the library's transforms on the stacked function
 * F = [f, c_E, c_I] (`problem.ts`): values and Lagrangian gradients from one forward pass
 * and its pullbacks, J·d by forward mode, and the condensed matrix W + J_Iᵀ Σ J_I as the
 * band of one Hessian by comb probes. Through `minimize` these passes and the per-iteration
 * bookkeeping replay `jit` programs (traced at their first call, for each shape).
 */
import type { Tensor } from "../../tensor.ts";
import { add, div } from "../../ops/elementwise.ts";
import { zeros } from "../../ops/creation.ts";
import { reshape } from "../../ops/movement.ts";
import { tidy } from "../../memory.ts";
import { checkOptions, oneOf } from "../../options.ts";
import { describeValue } from "../../ops/common.ts";
import { checkBandwidth } from "../../curvature/banded.ts";
import type { IterationInfo, MethodResult, MinimizeOptions, MinimizeProblem } from "../types.ts";
import { epsOf, numOpt, readScalars } from "../objective.ts";
import { ConstrainedProblem } from "./problem.ts";
import { type CondensedStorage, condensedStorage } from "./kkt.ts";
import { Filter } from "./filter.ts";
import {
  BarrierUpdate,
  boundSet,
  disposeBounds,
  disposeIterate,
  type Iterate,
  measure,
  type Measures,
  optimalityError,
} from "./barrier.ts";
import {
  disposeDirection,
  disposeLinearization,
  type InertiaState,
  linearize,
  residuals,
  searchDirection,
} from "./direction.ts";
import { advance, filterLineSearch, fullStep, type SearchContext } from "./line_search.ts";
import { restoreFeasibility } from "./restoration.ts";
import { initialIterate, roundingFloor } from "./initial.ts";

/** The options `"ipm"` reads; any other key is an error. */
const KNOWN = [
  "method",
  "constraints",
  "bounds",
  "bandwidth",
  "gtol",
  "maxIter",
  "onIteration",
  "muInit",
  "barrier",
] as const;

const M = "minimize (ipm)";
/** The acceptable level, in multiples of gtol (IPOPT: acceptable_tol 1e-6 against tol 1e-8). */
const ACCEPTABLE = 100;
/**
 * Iterations at the acceptable level without the KKT error halving or f moving before the
 * method stops there (IPOPT's acceptable_iter, 15, counts without looking at f).
 */
const ACCEPTABLE_ITER = 5;
/** Iterations at the smallest μ without the KKT error halving before the method gives up. */
const NO_PROGRESS = 20;

/** The options of `"ipm"`, checked. */
function ipmOptions(o: MinimizeOptions, x0: Tensor) {
  checkOptions(M, o, KNOWN);
  const c = o.constraints;
  checkOptions(`${M}: constraints`, c, ["eq", "ineq"]);
  checkOptions(`${M}: bounds`, o.bounds, ["lower", "upper"]);
  for (const k of ["eq", "ineq"] as const) {
    if (c?.[k] !== undefined && typeof c[k] !== "function") {
      throw new TypeError(
        `${M}: constraints.${k} must be a function of x returning a 1-D tensor, got ${
          describeValue(c[k])
        }`,
      );
    }
  }
  const eps = epsOf(x0.dtype);
  const gtol = numOpt("ipm", "gtol", o.gtol, x0.dtype === "f64" ? 1e-8 : 1e-4, (v) => v > 0, "> 0");
  const maxIter = numOpt(
    "ipm",
    "maxIter",
    o.maxIter,
    3000,
    (v) => Number.isSafeInteger(v) && v >= 0,
    "an integer ≥ 0",
  );
  const muInit = numOpt("ipm", "muInit", o.muInit, 0.1, (v) => v > 0, "> 0");
  const barrier = oneOf(M, "barrier", o.barrier, ["adaptive", "monotone"] as const, "adaptive");
  const bandwidth = o.bandwidth === undefined ? null : checkBandwidth(M, o.bandwidth, x0.size);
  return { eq: c?.eq, ineq: c?.ineq, eps, gtol, maxIter, muInit, barrier, bandwidth };
}

/**
 * The band to use when the caller gives none: the detected bandwidth b of the condensed
 * matrix when a band pays (2b + 1 comb probes fewer than n), else null (the dense path).
 */
function bandwidthFor(prob: ConstrainedProblem, x0: Tensor): number | null {
  // traced once per (f, eq, ineq, shape), as the unconstrained methods' detection
  let seen = detected.get(prob.f);
  if (!seen) detected.set(prob.f, seen = []);
  const shape = x0.shape.join(",");
  let hit = seen.find((d) => d.eq === prob.eq && d.ineq === prob.ineq && d.shape === shape);
  if (!hit) {
    const flat = reshape(x0, [x0.size]);
    try {
      hit = { eq: prob.eq, ineq: prob.ineq, shape, b: prob.detectBandwidth(flat) };
    } finally {
      flat.dispose();
    }
    seen.push(hit);
  }
  return 2 * hit.b + 1 < prob.n ? hit.b : null;
}

/**
 * The unscaled KKT residual of the user's problem (`MinimizeResult.kktResidual`): ∇L and
 * the complementarity of the problem with objective s_f f carry the factor s_f.
 */
const kktResidual = (m: Measures, sf: number) =>
  Math.max(m.dualInf / sf, m.violation, m.complUser / sf);

const detected = new WeakMap<
  object,
  { eq: unknown; ineq: unknown; shape: string; b: number }[]
>();

/**
 * The `"ipm"` method of `minimize` (see the module doc). Options: `constraints`, `bounds`,
 * `bandwidth` (the band of the Lagrangian's Hessian and of J_Iᵀ J_I in the variables'
 * order; default: detected from the sparsity pattern, the dense path where no band pays), `gtol` (tolerance on the scaled KKT error E₀,
 * default 1e-8 in f64 and 1e-4 in f32), `maxIter` (default 3000, as IPOPT), `muInit`
 * (default 0.1), `onIteration`.
 */
export async function ipm(
  problem: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const opt = ipmOptions(o, x0);
  const prob = new ConstrainedProblem(
    problem.f,
    opt.eq,
    opt.ineq,
    x0.shape,
    problem.compiled ?? false,
  );
  const b = await boundSet(o.bounds, x0);
  const read = readScalars;
  let storage: CondensedStorage, it: Iterate;
  try {
    storage = condensedStorage(opt.bandwidth ?? bandwidthFor(prob, x0), prob.n, prob.compiled);
    it = await initialIterate(prob, x0, b, storage, read);
  } catch (e) {
    // f or a constraint failed at the start: the bounds' tensors are not made from x0, so
    // the call's owner (minimize's ownedCall) would not free them
    disposeBounds(b);
    prob.clear();
    throw e;
  }
  const filter = new Filter(1e4 * Math.max(1, it.theta));
  const thetaMin = 1e-4 * Math.max(1, it.theta);
  const inertia: InertiaState = { lastDeltaW: 0 };
  const barrier = new BarrierUpdate(opt.barrier, opt.muInit, opt.gtol);
  let acceptLevel = ACCEPTABLE * opt.gtol;
  let k = 0, message = "", converged = false, alpha = 0, deltaW = 0;
  let status = 2; // minimize's status codes: 0 converged, 1 maxIter, 3 not finite, 99 callback
  const stall = { count: 0, best: Infinity, f: NaN };
  const history: [number, number][] = []; // (E₀, f) per iteration
  let m: Measures;
  const report = async (): Promise<boolean> => {
    if (!o.onIteration) return true;
    const x = reshape(it.x, x0.shape);
    const info: IterationInfo = {
      iteration: k,
      x,
      fun: it.f / prob.objectiveScale,
      gradNorm: m.gradNorm / prob.objectiveScale,
      nfev: prob.nfev,
      ngev: prob.ngev,
      nhvp: prob.nhvp,
      stepSize: alpha,
      shift: deltaW,
      constraintViolation: m.violation,
      complementarity: m.complUser / prob.objectiveScale,
      kktResidual: kktResidual(m, prob.objectiveScale),
      kktError: optimalityError(m, 0),
      mu: barrier.mu,
    };
    try {
      return (await o.onIteration(info)) !== false;
    } finally {
      x.dispose();
    }
  };
  /** at μ: the next iterate, or null when the line search fails. */
  const step = async (): Promise<Iterate | null> => {
    const { mu, tau } = barrier;
    const lin = await linearize(prob, it, b, storage, mu, read);
    const r = residuals(prob, it);
    try {
      const d = await searchDirection(prob, it, lin, b, mu, tau, r, inertia, read);
      if (!d) return null;
      deltaW = d.deltaW;
      const c: SearchContext = {
        prob,
        b,
        it,
        lin,
        mu,
        tau,
        filter,
        thetaMin,
        eps: opt.eps,
        inertia,
        read,
      };
      // IPOPT's tiny step: a step below the rounding of x is taken whole, untested
      const tiny = d.dxMax <= 10 * opt.eps * Math.max(1, d.xMax);
      const acc = tiny ? await fullStep(c, d) : await filterLineSearch(c, d, r);
      if (!acc) {
        disposeDirection(d);
        return null;
      }
      const next = advance(c, acc);
      // augment the filter unless the step was f-type
      if (acc.kind === "h") filter.augment(it.theta, it.f - mu * it.barrier);
      alpha = acc.alpha;
      disposeDirection(acc.dir);
      return next;
    } finally {
      disposeLinearization(lin);
      r.cE?.dispose();
      r.rI?.dispose();
    }
  };
  try {
    barrier.floor = await roundingFloor(prob, it.x, storage, read);
    // IPOPT's acceptable level (acceptable_tol 1e-6 against tol 1e-8), or the rounding floor
    acceptLevel = Math.max(acceptLevel, barrier.floor);
    for (;;) {
      m = await measure(prob, it, b, read);
      const e0 = optimalityError(m, 0);
      if (e0 <= opt.gtol) {
        converged = true;
        status = 0;
        message = "converged: KKT error below gtol";
      }
      // IPOPT's acceptable termination: at most the acceptable level, in 5 iterations neither
      // a halving of the KKT error nor a change of f beyond 10⁻⁴ |f| (the rounding floor of
      // the derivatives lies above gtol on stiff problems; near it, f can still be falling)
      const acceptable = e0 <= acceptLevel && m.violation <= ACCEPTABLE * opt.gtol;
      const moved = Math.abs(it.f - stall.f) > 1e-4 * Math.abs(it.f);
      stall.f = it.f;
      if (!acceptable || e0 < 0.5 * stall.best || moved) stall.count = 0;
      stall.best = acceptable ? Math.min(stall.count ? stall.best : Infinity, e0) : Infinity;
      if (acceptable && ++stall.count > ACCEPTABLE_ITER && !converged) {
        converged = true;
        status = 0;
        message = `converged to an acceptable level: KKT error ${e0.toExponential(2)} ` +
          `(gtol ${opt.gtol}), no longer falling in this precision`;
      }
      // no progress at a feasible point: in 20 iterations with μ at its floor, the KKT error
      // has not halved and f has not fallen by 1 % (in f32 the rounding floor of ∇L,
      // ε ‖∇²L‖ ‖x‖, can lie far above gtol); an infeasible point is left to restoration
      history.push([e0, it.f]);
      const window = history.slice(-(NO_PROGRESS + 1));
      if (
        !converged && window.length === NO_PROGRESS + 1 && barrier.mu <= opt.gtol / 10 * 1.0001 &&
        m.violation <= ACCEPTABLE * opt.gtol &&
        Math.min(...window.slice(1).map((h) => h[0])) > 0.5 * window[0][0] &&
        window[0][1] - it.f <= 0.01 * Math.abs(it.f)
      ) {
        message =
          `stopped: no progress in ${NO_PROGRESS} iterations at the smallest μ (KKT error ` +
          `${e0.toExponential(2)}, gtol ${opt.gtol}: the rounding floor of this precision?)`;
        await report();
        break;
      }
      if (!converged && barrier.update(m, it.theta, it.f)) filter.reset();
      if (!(await report())) {
        if (!message) [message, status] = ["stopped by onIteration", 99];
        break;
      }
      if (converged) break;
      if (![it.f, it.theta, m.dualInf].every(Number.isFinite)) {
        message = `stopped: the objective, constraints or their derivatives are not finite ` +
          `(f = ${it.f}, θ = ${it.theta}, ‖∇L‖∞ = ${m.dualInf})`;
        status = 3;
        break;
      }
      if (k >= opt.maxIter) {
        message = "stopped: maximum iterations reached";
        status = 1;
        break;
      }
      let next = await step();
      // a failed step in the free mode: retry once at the monotone mode's μ
      if (!next && barrier.fallBack(m)) {
        filter.reset();
        next = await step();
      }
      if (next) {
        disposeIterate(it);
        it = next;
      } else if (e0 <= acceptLevel && m.violation <= ACCEPTABLE * opt.gtol) {
        // IPOPT's "solved to an acceptable level": the KKT error sits at the rounding floor
        // of the derivatives (ε ‖∇²L‖ ‖x‖, large for stiff problems) within 100 gtol
        k++;
        converged = true;
        status = 0;
        message = `converged to an acceptable level: KKT error ${e0.toExponential(2)} ` +
          `(gtol ${opt.gtol}), and no step improves on it in this precision`;
        break;
      } else {
        // restoration, from the current iterate; the filter remembers where it was
        filter.augment(it.theta, it.f - barrier.mu * it.barrier);
        const res = await restoreFeasibility(
          prob,
          it,
          b,
          storage,
          filter,
          barrier.mu,
          opt.gtol,
          opt.eps,
          100,
          read,
        );
        it = res.it;
        if (res.kind !== "restored") {
          message = res.kind === "infeasible"
            ? `stopped: ${res.message}`
            : `stopped: feasibility restoration failed (${res.message})`;
          k++;
          m = await measure(prob, it, b, read);
          // the violation at the point returned (restoration's own last point is dropped)
          message += `; largest violation ${m.violation.toExponential(3)} at the returned x`;
          break;
        }
        alpha = 0;
      }
      k++;
    }
    const x = tidy(() => reshape(add(it.x, 0), x0.shape));
    const o1 = { dtype: x0.dtype, device: x0.device } as const;
    // the user's multipliers: those of the scaled problem over s_f
    const sf = prob.objectiveScale;
    const owned = (t: Tensor | null, shape: number[]) =>
      t ? tidy(() => reshape(div(t, sf), shape)) : zeros(shape, o1);
    const multipliers = {
      eq: owned(it.y, [prob.mE]),
      ineq: owned(it.lam, [prob.mI]),
      lower: owned(it.zL, [...x0.shape]),
      upper: owned(it.zU, [...x0.shape]),
    };
    return {
      x,
      fun: it.f / sf,
      gradNorm: m!.gradNorm / sf,
      iterations: k,
      status,
      message,
      constraintViolation: m!.violation,
      complementarity: m!.complUser / sf,
      kktResidual: kktResidual(m!, sf),
      kktError: optimalityError(m!, 0),
      multipliers,
      nfev: prob.nfev,
      ngev: prob.ngev,
      nhvp: prob.nhvp,
    };
  } finally {
    disposeIterate(it);
    disposeBounds(b);
    prob.clear();
  }
}
