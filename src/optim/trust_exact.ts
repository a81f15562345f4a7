/**
 * `trust-exact` (SciPy's name): trust-region Newton whose subproblem is solved exactly by
 * Moré–Sorensen on the Hessian's band (dense Hessians are the band of width n − 1).
 */
import type { Tensor } from "../tensor.ts";
import { add } from "../ops/elementwise.ts";
import { reshape } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import { checkBandwidth } from "../curvature/banded.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import {
  decrease,
  disposeAll,
  epsOf,
  loopOpts,
  norm,
  readScalars,
  type Stop,
  stopReason,
  STOPS,
} from "./objective.ts";
import { BandModel } from "./band_model.ts";
import { curvatureTolerance, settleSingular } from "./curvature_check.ts";
import {
  freshMemory,
  moreSorensen,
  smallestEigen,
  type SubproblemMemory,
  type SubproblemStep,
} from "./trust_subproblem.ts";
import { TrustRegion } from "./trust_region.ts";
import { backtrack, type Trial, trialAt } from "./line_search.ts";

/** The largest n for which trust-exact builds a dense Hessian (n products, n² storage) unasked. */
export const DENSE_LIMIT = 2000;

/**
 * @internal The bandwidth trust-exact works with: the option; else the Hessian's detected
 * pattern (`hessianSparsity`, traced once per record of f, see `Objective.hessianSparsity`) when a band of it pays
 * (2b + 1 probes < n); else the dense Hessian (b = n − 1, n ≤ 2000).
 */
export function hessianBandwidth(
  method: string,
  o: MinimizeOptions,
  prob: MinimizeProblem,
  x0: Tensor,
): number {
  const n = x0.size;
  if (o.bandwidth !== undefined) return checkBandwidth(`minimize (${method})`, o.bandwidth, n);
  // (an error of f while its pattern is traced is the user's: it propagates)
  const detected = prob.hessianSparsity(x0).bandwidth;
  const b = 2 * detected + 1 < n ? detected : Math.max(n - 1, 0);
  if (b === n - 1 && n > DENSE_LIMIT) {
    throw new RangeError(
      `minimize (${method}): x has ${n} entries and the Hessian's pattern is no narrow band, ` +
        `too many for a dense Hessian (at most ${DENSE_LIMIT}); pass bandwidth when the ` +
        `Hessian is banded, or use "newton-sparse", "trust-ncg" or "newton-cg"`,
    );
  }
  return b;
}

/** A Hessian singular to tolerance: its smallest eigenvalue's estimate and unit vector. */
export interface NullDirection {
  lowest: number;
  scale: number;
  /** [n]; the receiver owns it. */
  z: Tensor;
}

/**
 * The second-order check at a point where ‖g‖ < gtol, on a band the method already has,
 * δ = {@linkcode curvatureTolerance} · ‖H‖_∞: "indefinite" when H + δI does not factor;
 * "definite" when H − δI does (λ_min(H) > δ: a strict minimum to the tolerance); else H is
 * singular to tolerance, and three steps of inverse iteration with H + δI give its null
 * direction for {@linkcode settleSingular}. One or two banded Cholesky factorisations.
 */
export async function bandSecondOrder(
  model: BandModel,
  like: Tensor,
): Promise<"indefinite" | "definite" | NullDirection> {
  const { inf } = await model.bounds();
  const delta = curvatureTolerance(like.dtype) * inf + Number.MIN_VALUE;
  if (!(await model.positiveDefinite(delta))) return "indefinite";
  if (await model.positiveDefinite(-delta)) return "definite";
  // (a solve that fails where the factorisation passed, at WebGPU's margin: a wider shift)
  for (const shift of [delta, 4 * delta]) {
    const eig = await smallestEigen(model, shift);
    if (eig) return { lowest: eig.s2 - shift, scale: inf, z: eig.z };
  }
  return "indefinite";
}

/** @internal One trust-region trial from x: the subproblem's step, its evaluation and the verdict. */
export interface TrustTrial {
  accept: boolean;
  stall?: Stop;
  /** The trial point and its value, gradient and norms (owned by the caller when accepted, freed otherwise). */
  x: Tensor | null;
  g: Tensor | null;
  f: number;
  gnorm: number;
  xnorm: number;
  /** The subproblem's λ. */
  lambda: number;
  /** The model's predicted reduction (≤ 0: the model sees no descent). */
  predicted: number;
}

/**
 * @internal One trust-region trial at x with the band `model`: Moré–Sorensen's step p, the
 * model's reduction (from the subproblem's own scalars, or −(gᵀp + ½ pᵀHp) from the band
 * product where it has none), f and ∇f at x + p, all read back at once, and `tr`'s
 * verdict; a rejected p may still give a step along it (`backtrackRejected`). Shared by `trust-exact` and `newton-banded`'s fallback.
 */
export async function trustStep(
  prob: MinimizeProblem,
  model: BandModel,
  x: Tensor,
  f: number,
  g: Tensor,
  gnorm: number,
  xnorm: number,
  tr: TrustRegion,
  mem: SubproblemMemory,
): Promise<TrustTrial> {
  const n = x.size;
  const gflat = tidy(() => reshape(g, [n]));
  let sub: SubproblemStep;
  try {
    sub = await moreSorensen(model, gflat, gnorm, tr.radius, mem);
  } finally {
    gflat.dispose();
  }
  const p = tidy(() => reshape(sub.p, x.shape));
  sub.p.dispose();
  try {
    const { xt, gt, vals } = await trialAt(prob, x, g, p, 1);
    const [fv, gnv, gTp, gtTp, pnorm, xnv] = vals;
    // m(p) − f = gᵀp + ½ pᵀHp: pᵀHp from the band, unless the subproblem already knows m
    let m = sub.model;
    if (m === undefined) {
      const s = tidy(() => {
        const pf = reshape(p, [n]);
        return model.quadratic(pf);
      });
      try {
        m = gTp + 0.5 * (await readScalars(s))[0];
      } catch (e) {
        disposeAll(xt, gt);
        throw e;
      } finally {
        s.dispose();
      }
    }
    const predicted = -m;
    const out = { x: xt, g: gt, f: fv, gnorm: gnv, xnorm: xnv, lambda: sub.lambda, predicted };
    if (!(predicted > 0)) {
      disposeAll(xt, gt);
      return { ...out, accept: false, x: null, g: null };
    }
    const ref = tr.reference(f);
    const verdict = tr.judge({
      predicted,
      actual: decrease(f, fv, predicted, gTp, gtTp, x.dtype),
      relaxed: ref > f ? (ref - fv) / (ref - f + predicted) : undefined,
      hitsBoundary: sub.hitsBoundary,
      xnorm,
      progress: fv < (tr.memory > 1 ? tr.lowest : f) || gnv < 0.5 * gnorm,
    });
    if (verdict.accept) return { ...out, ...verdict };
    disposeAll(xt, gt);
    const back = await backtrackRejected(prob, x, f, g, p, gTp, fv, pnorm, tr);
    if (back) return { ...back, accept: true, lambda: sub.lambda, predicted };
    return { ...out, ...verdict, x: null, g: null };
  } finally {
    p.dispose();
  }
}

/** Armijo's constant for the step along a rejected trial. */
const BACK_C1 = 1e-4;

/**
 * A rejected trial (ρ ≤ η) still points downhill (gᵀp < 0: p solves (H + λI)p = −g with
 * H + λI ⪰ 0), and one more evaluation along it can save an iteration (Nocedal & Yuan 1998,
 * "Combining trust region and line search techniques"): t the minimiser of the quadratic
 * through f, gᵀp and f(x + p), kept in [0.1, 0.5]; x + tp is taken when it satisfies
 * Armijo's condition (with `backtrack`'s round-off allowance), and the radius becomes its
 * length t‖p‖. Only when t‖p‖ is at least the shrunk radius Δ/4: a shorter step along p is
 * worse than the fresh subproblem at Δ/4, whose step bends towards −g (taking every
 * such step sent MGH's Osborne 1 from the standard start into a valley at infinity instead
 * of its minimum; see bench/RESULTS.md). Null when the trial stays rejected.
 */
async function backtrackRejected(
  prob: MinimizeProblem,
  x: Tensor,
  f: number,
  g: Tensor,
  p: Tensor,
  gTp: number,
  ft: number,
  pnorm: number,
  tr: TrustRegion,
): Promise<Trial | null> {
  if (!tr.searchRejected || !(gTp < 0) || !Number.isFinite(ft)) return null;
  const curv = ft - f - gTp; // ½ φ''(0) of the quadratic through φ(0), φ'(0), φ(1)
  const t = Math.min(0.5, Math.max(0.1, curv > 0 ? -gTp / (2 * curv) : 0.5));
  if (t * pnorm < tr.radius) return null;
  const ls = await backtrack(prob, x, f, g, p, BACK_C1, 0, false, t);
  if ("fail" in ls) return null;
  tr.radius = Math.min(t * pnorm, tr.cap(ls.xnorm));
  return ls;
}

/**
 * `minimize(f, x0, { method: "trust-exact" })`: each iteration takes the Hessian's band at x
 * (2b+1 batched comb-probe products; `bandwidth` detected from the Hessian's sparsity
 * pattern unless given, or the dense Hessian from n unit probes when the pattern is no
 * narrow band, for n ≤ 2000), solves the trust-region subproblem exactly (Moré–Sorensen: a few
 * banded Cholesky factorisations of H + λI, negative curvature and the hard case included),
 * and updates the radius with SciPy's `trust-exact` constants (Δ₀ = 1, η = 0.15, ρ < ¼ →
 * Δ/4, a step on the boundary → 2Δ) and a scale-aware cap (`maxTrustRadius`, default 1000 ·
 * max(1, ‖x‖)), refined in three ways (`searchRejected: false` turns them off: SciPy's
 * trust-exact step for step). A rejected trial gets one more evaluation along it at the
 * quadratic interpolation's step length before the region shrinks (see
 * `backtrackRejected`): taken when it passes Armijo's test, it saves the iteration a fresh
 * subproblem would cost. The radius grows only when f fell by at least what the model
 * predicted (ρ ≥ 1, where SciPy takes ρ > ¾; see `TrustRegion.judge`). And the test is
 * non-monotone (Toint 1997): a trial's decrease may be measured from the largest f of the
 * last `nonmonotone` (default 4) points, so a step that raises f a little after steps that
 * lowered it more is taken, without growing the radius. On the penalty trajectory these
 * took 27 / 127 / 535 iterations to 17 / 96 / 405 at N = 256 / 1,024 / 4,096 (IPOPT: 22 /
 * 112 / 482; bench/RESULTS.md).
 *
 * It stops when ‖∇f‖ < `gtol` AND the Hessian there is positive semidefinite (H + δI
 * factors, δ = √ε ‖H‖_∞ in f64, 10⁻³ ‖H‖_∞ in f32): `converged: true` means the first- and
 * second-order necessary conditions hold to that tolerance. Where H − δI also factors, H is
 * positive definite and the point a strict local minimum. Where it does not (H singular to
 * tolerance), f is probed along the null direction (see `probeNull`): if it falls beyond
 * what the gradient gives at first order the run goes on from there (x² − y⁴ at 0 is no
 * minimum), else it converges with a message saying the Hessian is singular and a strict
 * minimum is not verified (a weak minimum, or a valley whose floor falls too slowly to see:
 * MGH's Biggs EXP6 from its standard start, here as in SciPy's trust-exact started there).
 * At a stationary point with negative curvature it keeps stepping along it; if no step
 * lowers f, it reports the saddle with `converged: false`. It also stops at
 * `maxIter`, when f or ∇f is not finite, or when no step can lower f any more (the radius
 * below the rounding of x, or `nonmonotone` + 1 accepted steps in a row that neither set a
 * new lowest f nor halved ‖∇f‖: status 2, "f is at its rounding floor; gtol may be below
 * it"). That floor is real: at the f64 points next to a minimiser, ∇f evaluated in f64
 * carries what the rounding of x (times H) and of ∇f's own terms leaves, up to about
 * ε ‖|H| |x|‖. On the penalty trajectory at N = 16,384 (IPOPT's weights, ‖H‖∞ = 2.1·10⁷)
 * ∇f is 1.4·10⁻⁷ exactly and 1.8·10⁻⁷ as evaluated in f64 at the f64 point nearest the
 * exact minimiser, both above gtol = 10⁻⁷ (`bench/gradient_floor.py`, bench/RESULTS.md):
 * there the run stops with status 2 at ‖∇f‖ = 2.1·10⁻⁷, at the minimum to 12 digits.
 * Iterations count rejected steps too, as SciPy's do; each accepted step costs one band.
 *
 * Cost per iteration: the band (2b+1 products in one compiled pass), then the subproblem:
 * at a new point the Newton step first (one banded solve; inside the region it is the
 * step, and nothing else is computed), else the spectrum bounds and trials of λ, each one
 * compiled program — the factorisations of H + λI, p, pᵀ(H + λI)⁻¹p for the secular
 * equation and, unless λ comes from Newton's step on it (whose p leaves the region), the
 * hard case's inverse iteration (3 solves) and zᵀHz — with one read-back; then one
 * evaluation of f and ∇f at the trial point, read back with its norms and slopes.
 */
export async function trustExact(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "trust-exact";
  const b = hessianBandwidth(m, o, prob, x0);
  const { gtol, maxIter } = loopOpts(m, o);
  const tr = new TrustRegion(m, o, epsOf(x0.dtype), true);
  const bandMethod = o.bandMethod ?? "direct";

  let x = tidy(() => add(x0, 0));
  let g: Tensor | null = null;
  let model: BandModel | null = null;
  try {
    const [fT, g0] = prob.valueAndGrad(x);
    g = g0;
    const gn0 = norm(g), xn0 = norm(x);
    let [f, gnorm, xnorm] = await readScalars(fT, gn0, xn0);
    disposeAll(fT, gn0, xn0);
    let mem = freshMemory();
    let k = 0;
    let stopped: Stop | null = null;
    let saddle = false; // ‖g‖ < gtol here, but H has negative curvature
    let lambda = 0;
    if (
      !(await prob.report({ iteration: 0, x, fun: f, gradNorm: gnorm, trustRadius: tr.radius }))
    ) {
      stopped = STOPS.callback;
    }
    while (!stopped) {
      const band = () =>
        new BandModel(prob.bandedHessian(x, { bandwidth: b, layout: "lower", method: bandMethod }));
      let t: TrustTrial | null = null;
      if (gnorm < gtol && !saddle) {
        model ??= band();
        const v = await bandSecondOrder(model, x);
        if (v === "definite") {
          stopped = STOPS.converged(true);
          break;
        }
        if (v === "indefinite") saddle = true;
        else {
          const s = await settleSingular(prob, x, f, g, xnorm, v);
          if ("status" in s) {
            stopped = s;
            break;
          }
          // f falls along the null direction: the probe's point is the next iterate
          t = { ...s, accept: true, lambda: 0, predicted: f - s.f };
        }
      }
      if (!t) {
        stopped = stopReason(f, gnorm, k, saddle ? 0 : gtol, maxIter);
        if (stopped) break;
      }
      model ??= band();
      t ??= await trustStep(prob, model, x, f, g, gnorm, xnorm, tr, mem);
      lambda = t.lambda;
      if (!(t.predicted > 0)) {
        stopped = saddle ? STOPS.saddle(-lambda) : STOPS.noProgress(
          "the model's predicted decrease is below rounding (H + λI is singular to working " +
            "precision: ‖g‖ is at its rounding floor; gtol may be below it)",
        );
        break;
      }
      if (t.accept) {
        if (t.f < f) saddle = false; // left the saddle: check the new point afresh
        disposeAll(x, g, model);
        model = null;
        mem = freshMemory();
        [x, g, f, gnorm, xnorm] = [t.x!, t.g!, t.f, t.gnorm, t.xnorm];
      }
      k++;
      if (
        !(await prob.report({
          iteration: k,
          x,
          fun: f,
          gradNorm: gnorm,
          trustRadius: tr.radius,
          shift: t.lambda,
        }))
      ) stopped = STOPS.callback;
      else if (t.stall) stopped = saddle ? STOPS.saddle(-lambda) : t.stall;
    }
    return { x, fun: f, gradNorm: gnorm, iterations: k, ...stopped!, jac: g };
  } catch (e) {
    disposeAll(x, g);
    throw e;
  } finally {
    model?.dispose();
  }
}
