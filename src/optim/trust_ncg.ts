/**
 * Trust-region Newton-CG: the Steihaug–Toint CG subproblem solver (Nocedal & Wright,
 * *Numerical Optimization*, 2nd ed., Alg. 7.2) inside the standard trust-region loop
 * (N&W Alg. 4.1), with SciPy's `trust-ncg` defaults.
 */
import type { Tensor } from "../tensor.ts";
import {
  add,
  greater,
  greaterEqual,
  lessEqual,
  maximum,
  mul,
  neg,
  sqrt,
  sub,
  where,
} from "../ops/elementwise.ts";
import { tensor, zeros } from "../ops/creation.ts";
import { jit } from "../ad/jit.ts";
import { tidy } from "../memory.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import {
  CheckSchedule,
  decrease,
  disposeAll,
  epsOf,
  loopOpts,
  numOpt,
  readScalars,
  type Stop,
  stopReason,
  STOPS,
  vdot,
  withCgHint,
} from "./objective.ts";
import { TrustRegion } from "./trust_region.ts";
import { checkStationary } from "./curvature_check.ts";
import { pointScalars, trialAt } from "./line_search.ts";

interface SteihaugState {
  z: Tensor;
  r: Tensor;
  d: Tensor;
  rs: Tensor;
  /** 1 while CG runs. */
  active: Tensor;
  /** The step, once CG has stopped. */
  p: Tensor;
  /** m(p) − f = gᵀp + ½ pᵀHp of that step. */
  model: Tensor;
  /** 1 when the step lies on the boundary. */
  boundary: Tensor;
  iters: Tensor;
}

/**
 * One masked Steihaug–Toint iteration after the product `bd` = H d (see `steihaug`), on the
 * device; compiled with `jit`, so its forty-odd ops are one replayed program, not a graph
 * built per iteration. `r2` = Δ² and `tol2` = tol² are 0-d tensors (values, not traces).
 */
const steihaugUpdate = jit(
  (
    prev: SteihaugState,
    bd: Tensor,
    g: Tensor,
    { r2, tol2 }: { r2: Tensor; tol2: Tensor },
  ): SteihaugState => {
    const { z, r, d, rs, active } = prev;
    const curv = vdot(d, bd);
    const zd = vdot(z, d), dd = vdot(d, d), zz = vdot(z, z);
    const rd = vdot(r, d), half = mul(vdot(add(g, r), z), 0.5);
    // ‖z + τd‖ = Δ: τ = (−zd ± √(zd² + dd (Δ² − zz))) / dd, in the cancellation-free form
    const disc = sqrt(maximum(add(mul(zd, zd), mul(dd, sub(r2, zz))), 0));
    const aux = add(zd, mul(where(greaterEqual(zd, 0), 1, -1), disc)); // zd + sign(zd)·√disc
    const t1 = neg(aux).div(dd), t2 = sub(r2, zz).div(aux);
    const [ta, tb] = [where(lessEqual(t1, t2), t1, t2), where(lessEqual(t1, t2), t2, t1)];
    const modelAt = (t: Tensor) => add(half, add(mul(t, rd), mul(mul(t, t), mul(curv, 0.5))));
    // the step ends here when curvature is non-positive (lower-model boundary point) …
    const neg0 = mul(active, lessEqual(curv, 0));
    const ma = modelAt(ta), mb = modelAt(tb);
    const tNeg = where(lessEqual(ma, mb), ta, tb);
    // … or when the full CG step would leave the region (positive root)
    const pos = sub(active, neg0);
    const alpha = mul(rs, where(pos, curv, 1).reciprocal());
    const zn = add(z, mul(alpha, d));
    const out = mul(pos, greaterEqual(vdot(zn, zn), r2));
    const inside = sub(pos, out); // a regular CG step
    const rn = add(r, mul(alpha, bd));
    const rsn = vdot(rn, rn);
    const done = mul(inside, lessEqual(rsn, tol2)); // converged inside the region
    const tHit = where(neg0, tNeg, tb);
    const hit = add(neg0, out);
    const halfN = mul(vdot(add(g, rn), zn), 0.5); // model at the converged iterate
    const beta = mul(rsn, where(inside, rs, 1).reciprocal());
    return {
      z: where(inside, zn, z),
      r: where(inside, rn, r),
      d: where(inside, sub(mul(beta, d), rn), d),
      rs: where(inside, rsn, rs),
      active: sub(inside, done),
      p: where(hit, add(z, mul(tHit, d)), where(done, zn, prev.p)),
      model: where(hit, modelAt(tHit), where(done, halfN, prev.model)),
      boundary: add(prev.boundary, hit),
      iters: add(prev.iters, active),
    };
  },
);

/**
 * Steihaug–Toint CG for `min gᵀp + ½ pᵀHp` subject to `‖p‖ ≤ Δ`. CG from p = 0 stops at
 * a residual below `tol`, at the boundary (the step is cut where the next iterate would
 * leave), or at non-positive curvature (the step goes to the boundary point along d with
 * the lower model value). The model value of the step is tracked without further products:
 * with `r = Hz + g`, `m(z + τd) − f = ½(g + r)ᵀz + τ rᵀd + ½ τ² dᵀHd`. Everything stays on
 * the device; finished iterations are masked no-ops, so when the flags are read back
 * (`schedule`) changes only the cost.
 */
async function steihaug(
  prob: MinimizeProblem,
  x: Tensor,
  g: Tensor,
  radius: number,
  tol: number,
  maxCg: number,
  schedule: CheckSchedule,
): Promise<{ p: Tensor; model: number; boundary: boolean; iters: number }> {
  const opts = { dtype: g.dtype, device: g.device };
  const r2 = radius * radius;
  let s: SteihaugState = tidy(() => ({
    z: zeros(g.shape, opts),
    r: add(g, 0),
    d: neg(g),
    rs: vdot(g, g),
    active: greater(vdot(g, g), tol * tol),
    p: zeros(g.shape, opts),
    model: zeros([], opts),
    boundary: zeros([], opts),
    iters: zeros([], opts),
  }));
  let read = [1, 0, 0, 0];
  const consts = { r2: tensor(r2, opts), tol2: tensor(tol * tol, opts) };
  try {
    for (let j = 0; j < maxCg; j++) {
      const prev = s;
      const bd = prob.hvp(x, prev.d);
      try {
        s = steihaugUpdate(prev, bd, g, consts);
      } finally {
        bd.dispose();
      }
      disposeAll(...Object.values(prev));
      if (schedule.due(j + 1) || j + 1 === maxCg) {
        read = await readScalars(s.active, s.model, s.boundary, s.iters);
        if (read[0] === 0) break;
      }
    }
  } catch (e) {
    // f threw inside a product (or a read failed): the state is this solve's to free
    disposeAll(...Object.values(s));
    throw e;
  } finally {
    disposeAll(consts.r2, consts.tol2);
  }
  let p = s.p;
  let [active, model, boundary, iters] = read;
  if (active !== 0) {
    // CG ran out of iterations inside the region: take the last iterate
    p.dispose();
    p = tidy(() => add(s.z, 0));
    const last = tidy(() => mul(vdot(add(g, s.r), s.z), 0.5));
    [model] = await readScalars(last);
    last.dispose();
  }
  disposeAll(s.z, s.r, s.d, s.rs, s.active, s.model, s.boundary, s.iters);
  schedule.finished(iters);
  return { p, model, boundary: boundary !== 0, iters };
}

/**
 * `minimize(f, x0, { method: "trust-ncg" })`: Steihaug–Toint CG to the tolerance
 * `min(0.5, √‖g‖) ‖g‖` inside a trust region; ρ = actual ÷ predicted reduction (the actual
 * one from the slopes where f's differences are rounding, see `decrease`); the radius
 * shrinks when ρ < ¼ and doubles (up to `maxTrustRadius`, default 1000 · max(1, ‖x‖)) when
 * ρ > ¾ and the step reached the boundary; the step is taken when ρ > η (see
 * `TrustRegion.judge`).
 *
 * It stops with `converged: true` when ‖∇f‖ < `gtol` and 16 Lanczos steps on Hessian-vector
 * products find no curvature below −√ε ‖H‖ (10⁻³ ‖H‖ in f32); at a saddle it steps along
 * the negative curvature found, and reports status 4 when that fails; where the smallest
 * Ritz value is within ±√ε ‖H‖ of 0 (H singular to tolerance) f is probed along its vector
 * first (`probeNull`: the run goes on where f falls beyond the gradient's first-order share;
 * otherwise the message says the Hessian is singular). It also stops at
 * `maxIter` (rejected steps count, as SciPy's), when f or ∇f is not finite, when the model
 * predicts no decrease, and when no step can lower f any more (the radius below the
 * rounding of x, or two steps taken without lowering f or halving ‖∇f‖).
 */
export async function trustNcg(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "trust-ncg";
  const { gtol, maxIter } = loopOpts(m, o);
  const maxCg = numOpt(m, "maxCgIter", o.maxCgIter, 20 * x0.size, (v) => v >= 1, "≥ 1");
  const schedule = new CheckSchedule(m, o.cgCheckEvery, x0);
  const tr = new TrustRegion(m, o, epsOf(x0.dtype));

  let x = tidy(() => add(x0, 0));
  let g: Tensor | null = null;
  try {
    const [fT, g0] = prob.valueAndGrad(x);
    g = g0;
    let [f, gnorm, xnorm] = await pointScalars(fT, g, x);
    let k = 0, cgTotal = 0;
    let stopped: Stop | null = null;
    const report = () =>
      prob.report({ iteration: k, x, fun: f, gradNorm: gnorm, trustRadius: tr.radius });
    if (!(await report())) stopped = STOPS.callback;
    while (!stopped) {
      stopped = stopReason(f, gnorm, k, gtol, maxIter);
      if (stopped?.status === 0) {
        const c = await checkStationary(prob, x, f, g, xnorm);
        if ("status" in c) {
          stopped = c;
          break;
        }
        stopped = null;
        disposeAll(x, g);
        ({ x, g, f, gnorm, xnorm } = c);
        k++;
        if (!(await report())) stopped = STOPS.callback;
        continue;
      }
      if (stopped) break;
      const tol = Math.min(0.5, Math.sqrt(gnorm)) * gnorm;
      const sub = await steihaug(prob, x, g, tr.radius, tol, maxCg, schedule);
      const predicted = -sub.model;
      cgTotal += sub.iters;
      if (!(predicted > 0)) {
        sub.p.dispose();
        stopped = STOPS.noProgress(
          "the model predicts no decrease (the Hessian products may be inaccurate)",
        );
        break;
      }
      const p = sub.p;
      let trial: Awaited<ReturnType<typeof trialAt>>;
      try {
        trial = await trialAt(prob, x, g!, p, 1);
      } finally {
        p.dispose();
      }
      const { xt, gt } = trial;
      const [fv, gnv, gTp, gtTp, , xnv] = trial.vals;
      const verdict = tr.judge({
        predicted,
        actual: decrease(f, fv, predicted, gTp, gtTp, x.dtype),
        hitsBoundary: sub.boundary,
        xnorm,
        progress: fv < f || gnv < 0.5 * gnorm,
      });
      if (verdict.accept) {
        disposeAll(x, g);
        [x, g, f, gnorm, xnorm] = [xt, gt, fv, gnv, xnv];
      } else {
        disposeAll(xt, gt);
      }
      k++;
      if (
        !(await prob.report({
          iteration: k,
          x,
          fun: f,
          gradNorm: gnorm,
          trustRadius: tr.radius,
          cgIterations: sub.iters,
        }))
      ) stopped = STOPS.callback;
      else if (verdict.stall) stopped = verdict.stall;
    }
    stopped = withCgHint(stopped!, cgTotal, k, prob.f, x);
    return { x, fun: f, gradNorm: gnorm, iterations: k, ...stopped, jac: g };
  } catch (e) {
    disposeAll(x, g);
    throw e;
  }
}
