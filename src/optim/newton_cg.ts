/**
 * Line-search Newton-CG (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 7.1):
 * truncated conjugate gradients on Hessian-vector products with SciPy's forcing sequence,
 * then Armijo backtracking with a round-off allowance.
 */
import type { Tensor } from "../tensor.ts";
import { add, greater, mul, neg, sqrt, sub, where } from "../ops/elementwise.ts";
import { tensor, zeros } from "../ops/creation.ts";
import { jit } from "../ad/jit.ts";
import { tidy } from "../memory.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import {
  CheckSchedule,
  disposeAll,
  loopOpts,
  numOpt,
  readScalars,
  type Stop,
  stopReason,
  STOPS,
  vdot,
  withCgHint,
} from "./objective.ts";
import { backtrack, pointScalars, type SearchFailure, type Trial } from "./line_search.ts";
import { checkStationary } from "./curvature_check.ts";

/** Halvings of the line search before it gives up (t ≥ 2⁻³⁰). */
const MAX_HALVINGS = 30;

interface CgState {
  z: Tensor;
  r: Tensor;
  d: Tensor;
  rs: Tensor;
  active: Tensor;
  iters: Tensor;
  /** dᵀHd of the direction that stopped CG for non-positive curvature, else 0. */
  negc: Tensor;
}

/**
 * One masked CG iteration after the product `bd` = H d: the state's vectors and scalars
 * updated on the device, `j0` the first iteration (non-positive curvature there falls back
 * to −g). Compiled with `jit` (replayed as a few fused kernels: the graph of some twenty
 * elementwise and reduction ops is built once, not per iteration).
 */
const cgUpdate = jit(
  (prev: CgState, bd: Tensor, g: Tensor, tol2: Tensor, j0: boolean): CgState => {
    const curv = vdot(prev.d, bd);
    const pos = greater(curv, 0);
    const step = mul(prev.active, pos); // a regular CG step
    const alpha = mul(prev.rs, where(pos, curv, 1).reciprocal());
    const zn = add(prev.z, mul(alpha, prev.d));
    const rn = add(prev.r, mul(alpha, bd));
    const rsn = vdot(rn, rn);
    let z = where(step, zn, prev.z);
    // non-positive curvature at the first iteration: fall back to −g (N&W Alg. 7.1)
    if (j0) z = where(sub(prev.active, step), neg(g), z);
    const beta = mul(rsn, where(step, prev.rs, 1).reciprocal());
    return {
      z,
      r: where(step, rn, prev.r),
      d: where(step, sub(mul(beta, prev.d), rn), prev.d),
      rs: where(step, rsn, prev.rs),
      active: mul(step, greater(rsn, tol2)),
      iters: add(prev.iters, prev.active), // iterations (HVPs) while running
      negc: where(sub(prev.active, step), curv, prev.negc),
    };
  },
  { static: [4] },
);

/**
 * Truncated CG for `H p = −g` (N&W Alg. 7.1, inner loop): stops when ‖r‖ ≤ `tol` or at the
 * first direction d of non-positive curvature. If that happens at the first iteration the
 * step is the steepest-descent direction −g; later, the step is z + ‖z‖ d/‖d‖ rather than
 * the iterate z alone (N&W throw d away): d is H-conjugate to z and rᵀd = −‖r‖² < 0, so
 * the model m(z + βd) = m(z) − β‖r‖²/‖d‖ + ½β² dᵀHd/‖d‖² falls for every β > 0 and
 * gᵀd < 0 (a descent direction); β = ‖z‖ keeps the step on the scale CG has found, and
 * the line search takes it from there. The scalars stay on the device; iterations after
 * termination are masked no-ops (`where` on a 0-d flag), so when the flag is read back
 * (`schedule`) changes the cost, never the result.
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
    negc: zeros([], { dtype: g.dtype, device: g.device }),
  }));
  const tol2 = tensor(tol * tol, { dtype: g.dtype, device: g.device });
  let iters = 0, negc = 0;
  try {
    for (let j = 0; j < maxCg; j++) {
      const prev = s;
      const bd = prob.hvp(x, prev.d);
      try {
        s = cgUpdate(prev, bd, g, tol2, j === 0);
      } finally {
        bd.dispose();
      }
      disposeAll(...Object.values(prev));
      if (schedule.due(j + 1) || j + 1 === maxCg) {
        const [active, it, nc] = await readScalars(s.active, s.iters, s.negc);
        [iters, negc] = [it, nc];
        if (active === 0) break;
      }
    }
  } catch (e) {
    // f threw inside a product (or a read failed): the state is this solve's to free
    disposeAll(...Object.values(s));
    throw e;
  } finally {
    tol2.dispose();
  }
  let p = s.z;
  if (negc < 0 && iters > 1) {
    const { z, d } = s;
    p = tidy(() => add(z, mul(d, sqrt(vdot(z, z)).div(sqrt(vdot(d, d))))));
    z.dispose();
  }
  disposeAll(s.r, s.d, s.rs, s.active, s.iters, s.negc);
  schedule.finished(iters);
  return { p, iters };
}

/**
 * `minimize(f, x0, { method: "newton-cg" })`: each iteration solves `H p = −g` by truncated
 * CG on Hessian-vector products to the residual `min(0.5, √(‖g‖ / ‖g₀‖)) ‖g‖` — SciPy's
 * forcing sequence min(0.5, √‖g‖) made scale-aware: measured against the starting
 * gradient it tightens as the run progresses whatever the units of f, where SciPy's stays
 * at 0.5 (steps near steepest descent) while ‖g‖ > ¼ (on the MGH problems at gtol 1e-8:
 * iterations 2,552 → 1,143 together with the next change, HVPs 8,099 → 4,758, Gulf
 * solved); CG's negative-curvature direction is used, not thrown away (see `truncatedCg`).
 * Then it searches along p (see `backtrack`: Armijo with the round-off allowance, slopes
 * where f's differences are rounding); where round-off makes p an ascent direction, along
 * −g.
 *
 * It stops with `converged: true` when ‖∇f‖ < `gtol` and 16 Lanczos steps on Hessian-vector
 * products find no curvature below −√ε ‖H‖ (10⁻³ ‖H‖ in f32); at a saddle it steps along
 * the negative curvature found, and reports status 4 when that fails; where the smallest
 * Ritz value is within ±√ε ‖H‖ of 0 (H singular to tolerance) f is probed along its vector
 * first (`probeNull`: the run goes on where f falls beyond the gradient's first-order share;
 * otherwise the message says the Hessian is singular). It also stops at
 * `maxIter`, when f or ∇f is not finite, when the line search finds no step, and when a
 * step is taken without lowering f or halving ‖∇f‖ (f at its rounding floor).
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
    let [f, gnorm, xnorm] = await pointScalars(fT, g, x);
    const gnorm0 = Math.max(gnorm, Number.MIN_VALUE);
    let k = 0, cgTotal = 0;
    let stopped: Stop | null = null;
    if (!(await prob.report({ iteration: 0, x, fun: f, gradNorm: gnorm }))) {
      stopped = STOPS.callback;
    }
    while (!stopped) {
      let trial: Trial | SearchFailure | Stop | null = null;
      let iters = 0;
      stopped = stopReason(f, gnorm, k, gtol, maxIter);
      if (stopped?.status === 0) {
        stopped = null;
        trial = await checkStationary(prob, x, f, g, xnorm);
        if ("status" in trial) stopped = trial;
      }
      if (stopped) break;
      if (!trial) {
        // the forcing term, scale-aware: see the method's documentation
        const tol = Math.min(0.5, Math.sqrt(gnorm / gnorm0)) * gnorm;
        const cg = await truncatedCg(prob, x, g, tol, maxCg, schedule);
        iters = cg.iters;
        try {
          trial = await backtrack(prob, x, f, g, cg.p, c1, MAX_HALVINGS, false);
        } finally {
          cg.p.dispose();
        }
        if ("fail" in trial && trial.fail === "not a descent direction") {
          // round-off made the CG step an ascent direction: fall back to steepest descent
          const gk = g;
          const p = tidy(() => neg(gk));
          try {
            trial = await backtrack(prob, x, f, g, p, c1, MAX_HALVINGS, false);
          } finally {
            p.dispose();
          }
        }
      }
      if ("fail" in trial) {
        stopped = STOPS.noProgress("the line search found no acceptable step");
        break;
      }
      const t = trial as Trial;
      cgTotal += iters;
      const progress = t.f < f || t.gnorm < 0.5 * gnorm;
      disposeAll(x, g);
      ({ x, g, f, gnorm, xnorm } = t);
      k++;
      if (
        !(await prob.report({
          iteration: k,
          x,
          fun: f,
          gradNorm: gnorm,
          stepSize: t.t,
          cgIterations: iters,
        }))
      ) stopped = STOPS.callback;
      else if (!progress && gnorm >= gtol) stopped = STOPS.floor;
    }
    stopped = withCgHint(stopped!, cgTotal, k, prob.f, x);
    return { x, fun: f, gradNorm: gnorm, iterations: k, ...stopped, jac: g };
  } catch (e) {
    disposeAll(x, g);
    throw e;
  }
}
