/**
 * The trust-region subproblem solved "exactly": min gᵀp + ½ pᵀHp subject to ‖p‖ ≤ Δ, by
 * Moré & Sorensen's iteration on λ (Nocedal & Wright, *Numerical Optimization*, 2nd ed.,
 * Alg. 4.3 and §4.3's hard case; Conn, Gould & Toint, *Trust-Region Methods*, §7.3),
 * arranged as SciPy's `trust-exact` (`IterativeSubproblem`). Each trial λ costs banded
 * Cholesky solves with H + λI; the scalars that steer λ are read back once per trial.
 *
 * The solution satisfies (H + λI)p = −g, H + λI ⪰ 0, λ(Δ − ‖p‖) = 0. In the hard case
 * (g nearly orthogonal to the eigenvectors of H's smallest eigenvalue), p is completed to
 * the boundary along z, an approximate eigenvector of that eigenvalue: SciPy estimates z
 * with LINPACK's condition estimator on the factor; here the factor stays inside the
 * banded solver, so z comes from a few steps of inverse iteration with H + λI, which
 * converge fast exactly when it matters (H + λI nearly singular).
 */
import type { Tensor } from "../tensor.ts";
import { add, mul } from "../ops/elementwise.ts";
import { stack } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import { type BandModel, isNotSpd } from "./band_model.ts";
import { disposeAll, epsOf, readScalars, vdot } from "./objective.ts";

/** What the subproblem keeps between calls at one point (SciPy reuses λ's lower bound when Δ shrinks). */
export interface SubproblemMemory {
  lambdaLb: number;
  radius: number;
}

/** A fresh memory for a new point. */
export function freshMemory(): SubproblemMemory {
  return { lambdaLb: 0, radius: -1 };
}

/** The subproblem's solution. */
export interface SubproblemStep {
  /** The step, [n]; the caller owns it. */
  p: Tensor;
  /** False only for the interior Newton step (λ = 0, ‖p‖ ≤ Δ). */
  hitsBoundary: boolean;
  /** The final λ. */
  lambda: number;
  /** Trial values of λ tried (each one or two banded solves). */
  trials: number;
  /**
   * m(p) − f = gᵀp + ½ pᵀHp when p solves (H + λI)p = −g: ½ (gᵀp − λ pᵀp), a sum of two
   * terms of one sign (no cancellation, unlike gᵀp + ½ pᵀHp near the optimum); for p
   * completed along z to the boundary (the hard case), ½ (gᵀp − λΔ² + τ²s²). Undefined for
   * a step cut back to the region or along z alone (g ≈ 0).
   */
  model?: number;
}

/** Moré–Sorensen's stopping constants, as SciPy (CGT p. 194–197). */
const K_EASY = 0.1, K_HARD = 0.2;
/** CGT's θ in the safeguarded update λ = max(√(λ_lb λ_ub), λ_lb + θ(λ_ub − λ_lb)). */
const THETA = 0.01;
/** Trials before giving up on the secular equation (SciPy has no limit). */
const MAX_TRIALS = 60;

function safeguard(lb: number, ub: number): number {
  return Math.max(Math.sqrt(lb * ub), lb + THETA * (ub - lb));
}

/** A trial's step and scalars; `z` (with s², pᵀz) only from an "eigen" trial. */
interface Trial {
  p: Tensor;
  pp: number;
  /** pᵀ(H + λI)⁻¹p; NaN from a "newton" trial (read only when p leaves the region). */
  pw: number;
  gp: number;
  eig: { z: Tensor; s2: number; pz: number } | null;
}

/**
 * p for λ with its scalars, from one compiled program and one read-back (see
 * `BandModel.trial`): at λ ≠ 0, unless the step is expected outside the region ("step"),
 * also the inverse iteration's z, which the step needs when it falls inside the region (the
 * hard case's test, and λ's lower bound); computing it in the same factorisations costs
 * less than a second program and read-back when it is needed. Null when H + λI is not
 * positive definite.
 */
async function trial(
  model: BandModel,
  g: Tensor,
  lambda: number,
  kind: "newton" | "step" | "eigen",
): Promise<Trial | null> {
  let r: { p: Tensor; z: Tensor | null; s: Tensor } | null = null;
  try {
    r = model.trial(lambda, g, kind);
    const v = await readScalars(r.s);
    const { p, z } = r;
    if (!v.every(Number.isFinite)) {
      disposeAll(p, z);
      return null;
    }
    if (kind === "newton") return { p, pp: v[0], pw: NaN, gp: v[1], eig: null };
    if (!z) return { p, pp: v[0], pw: v[1], gp: v[2], eig: null };
    return { p, pp: v[0], pw: v[1], gp: v[2], eig: { z, s2: Math.max(v[3], 0), pz: v[4] } };
  } catch (e) {
    disposeAll(r?.p, r?.z);
    if (isNotSpd(e)) return null;
    throw e;
  } finally {
    r?.s.dispose();
  }
}

/**
 * An approximate unit eigenvector z of H's smallest eigenvalue and s² ≈ zᵀ(H + λI)z (the
 * smallest eigenvalue of H + λI, from above), by inverse iteration with H + λI ≻ 0 (see
 * `BandModel.eigen`). Null when a solve finds H + λI not positive definite after all: at
 * the margin the solver's factorisation (on WebGPU a partitioned one) can fail where
 * `positiveDefinite`'s plain Cholesky passed, in f32 (found by the penalty trajectory
 * benchmark on WebGPU).
 * @internal
 */
export async function smallestEigen(
  model: BandModel,
  lambda: number,
): Promise<{ z: Tensor; s2: number } | null> {
  let r: { z: Tensor; s2: Tensor } | null = null;
  try {
    r = model.eigen(lambda);
    const [s2] = await readScalars(r.s2);
    if (!Number.isFinite(s2)) {
      r.z.dispose();
      return null;
    }
    return { z: r.z, s2: Math.max(s2, 0) };
  } catch (e) {
    r?.z.dispose();
    if (isNotSpd(e)) return null;
    throw e;
  } finally {
    r?.s2.dispose();
  }
}

/** The roots t of ‖p + t z‖ = Δ (‖z‖ = 1, ‖p‖ ≤ Δ), the one of smaller magnitude. */
function boundaryStep(pp: number, pz: number, radius: number): number {
  const disc = Math.sqrt(Math.max(pz * pz + radius * radius - pp, 0));
  const ta = -pz + disc, tb = -pz - disc;
  return Math.abs(ta) <= Math.abs(tb) ? ta : tb;
}

/**
 * Solves min gᵀp + ½ pᵀHp, ‖p‖ ≤ Δ for the band `model` and the flat gradient `g` ([n]).
 * `mem` carries λ's lower bound between calls at the same point.
 */
export async function moreSorensen(
  model: BandModel,
  g: Tensor,
  gnorm: number,
  radius: number,
  mem: SubproblemMemory,
): Promise<SubproblemStep> {
  const n = model.n;
  // At a new point the Newton step comes before the bounds: inside the region it is the
  // answer (the usual step near a minimum), and the bounds' program is not needed. It is
  // the first trial anyway wherever the bounds allow λ = 0: they exclude it only where H is
  // not positive definite (its smallest diagonal entry < 0: the Newton trial fails) or
  // ‖g‖/Δ exceeds a bound on ‖H‖ (the Newton step leaves the region).
  let newton: Trial | null | undefined;
  if (mem.radius < 0) {
    newton = await trial(model, g, 0, "newton");
    if (newton && Math.sqrt(newton.pp) <= radius) {
      mem.lambdaLb = 0;
      mem.radius = radius;
      return { p: newton.p, hitsBoundary: false, lambda: 0, trials: 1, model: 0.5 * newton.gp };
    }
  }
  const bd = await model.bounds();
  const hmin = Math.min(bd.gershgorinHi, bd.frobenius, bd.inf);
  // λ_ub must make H + λI positive definite; Gershgorin's bound may leave it singular
  // (equality), so it gets a margin of √ε ‖H‖ (and the smallest positive value)
  const margin = Math.sqrt(epsOf(g.dtype)) * bd.inf + Number.MIN_VALUE;
  let ub = Math.max(0, gnorm / radius + Math.min(-bd.gershgorinLo, bd.frobenius, bd.inf)) + margin;
  let lb = Math.max(0, -bd.minDiag, gnorm / radius - hmin);
  if (radius < mem.radius) lb = Math.max(mem.lambdaLb, lb);
  let lambda = lb === 0 ? 0 : safeguard(lb, ub);
  if (lambda !== 0) newton?.p.dispose();
  // g at the rounding of H's products: SciPy's n ε ‖H‖∞ counts every row's rounding as if
  // aligned; with independent roundings the norm grows like √n (SciPy's bound is 0.32 on the
  // scaled trajectory problem at n = 32768, where ‖g‖ = 0.16 is far from stationary)
  const tiny = Math.sqrt(n) * epsOf(g.dtype) * bd.inf;
  let best: Tensor | null = null; // the last positive definite step, for the trial limit
  const done = (
    p: Tensor,
    hitsBoundary: boolean,
    trials: number,
    t?: { pp: number; gp: number } | { model: number },
  ): SubproblemStep => {
    if (best !== p) best?.dispose();
    mem.lambdaLb = lb;
    mem.radius = radius;
    const model = t && "model" in t ? t.model : t ? 0.5 * (t.gp - lambda * t.pp) : undefined;
    return { p, hitsBoundary, lambda, trials, model };
  };
  // H + λI is not positive definite: λ < −λ_min(H). If rounding has closed the bracket
  // (λ_ub itself failed), widen it.
  const failed = () => {
    outside = false;
    lb = Math.max(lb, lambda);
    if (!(ub > lb)) ub = lb + Math.max(margin, Math.abs(lb) * 1e-3);
    lambda = safeguard(lb, ub);
  };
  // λ from Newton's step on the secular equation lies below its root where H + λI ≻ 0 (the
  // equation is convex: Moré & Sorensen 1983, §3), so its step leaves the region and the
  // trial needs no inverse iteration
  let outside = false;
  for (let k = 1; k <= MAX_TRIALS; k++) {
    if (gnorm <= tiny && lambda > 0) {
      // g ≈ 0 and H not positive definite: the step is along the smallest eigenvector. (At
      // λ = 0 the Newton step below is tried first even for a g this small: SciPy returns
      // p = 0 there, which stops a run whose Hessian is merely large — ‖H‖∞ ≈ 10⁶ on the
      // trajectory problem at N = 1024 made n ε ‖H‖∞ ≈ 6e-7 — one step short of 1e-7.)
      if (!(await model.positiveDefinite(lambda))) {
        failed();
        continue;
      }
      const eig = await smallestEigen(model, lambda);
      if (!eig) {
        failed();
        continue;
      }
      const { z, s2 } = eig;
      if (s2 <= K_HARD * lambda) {
        // either sign solves the subproblem for g = 0; for a g only small against the
        // rounding of H, the one that does not climb (in f32 the other made the model
        // predict a rise, and the run stop far from stationary: the penalty trajectory on
        // WebGPU)
        const gzT = vdot(g, z);
        const [gz] = await readScalars(gzT);
        gzT.dispose();
        const p = tidy(() => mul(z, gz > 0 ? -radius : radius));
        z.dispose();
        return done(p, true, k);
      }
      z.dispose();
      ub = lambda;
      lb = Math.max(lb, lambda - s2);
      lambda = safeguard(lb, ub);
      continue;
    }
    const t: Trial | null = lambda === 0 && newton !== undefined
      ? newton
      : await trial(model, g, lambda, lambda === 0 ? "newton" : outside ? "step" : "eigen");
    newton = undefined;
    if (!t) {
      // (also where a Newton update of λ from inside the region, tried directly, undershot
      // −λ_min(H): SciPy factors H + λ_new I first and bisects then, as failed() does)
      failed();
      continue;
    }
    const pnorm = Math.sqrt(t.pp);
    if (lambda !== 0 && pnorm < radius && !t.eig) {
      // inside after all (rounding): the hard case's test needs z
      t.p.dispose();
      outside = false;
      continue;
    }
    best?.dispose();
    best = t.p;
    if (pnorm <= radius && lambda === 0) return done(t.p, false, k, t);
    let pw = t.pw;
    if (Number.isNaN(pw)) {
      const s = model.inverseQuadratic(t.p);
      try {
        [pw] = await readScalars(s);
      } finally {
        s.dispose();
      }
    }
    // Newton's step on the secular equation 1/‖p(λ)‖ = 1/Δ (N&W (4.44))
    const lambdaNew: number = lambda + (t.pp / pw) * (pnorm - radius) / radius;
    const eig = t.eig;
    if (pnorm < radius && eig) {
      // inside with λ > 0: maybe the hard case; try completing p to the boundary along z
      const { z, s2, pz } = eig;
      const step = boundaryStep(t.pp, pz, radius);
      const quadratic = -t.gp + lambda * radius * radius; // pᵀ(H+λI)p + λΔ²
      if ((step * step * s2) / quadratic <= K_HARD) {
        const p = tidy(() => add(t.p, mul(z, step)));
        z.dispose();
        // m(p + τz) = ½ (gᵀp − λΔ² + τ²s²) (with (H + λI)p = −g, ‖p + τz‖ = Δ): three
        // terms from the trial's scalars, a decrease of at least (1 − κ_hard) ½ (−gᵀp +
        // λΔ²) by the test above, and no program of its own. gᵀs + ½ sᵀHs from a band
        // product cancels instead: in MGH's rank-1 linear function, where λ falls to H's
        // rounding, its sign is noise (a λ sequence started elsewhere made it ≥ 0 and
        // stopped the run at ‖g‖ = 1.6e-2)
        return done(p, true, k, {
          model: 0.5 * (t.gp - lambda * radius * radius + step * step * s2),
        });
      }
      z.dispose();
      ub = lambda;
      lb = Math.max(lb, lambda - s2);
      // the next trial tells whether H + λ_new I ≻ 0
      outside = lambdaNew > lb;
      if (outside) lambda = lambdaNew;
      else {
        lb = Math.max(lb, lambdaNew);
        lambda = safeguard(lb, ub);
      }
    } else {
      eig?.z.dispose();
      if (Math.abs(pnorm - radius) / radius <= K_EASY) return done(t.p, true, k, t);
      lb = lambda;
      lambda = lambdaNew;
      outside = true;
    }
  }
  // the secular equation did not settle (in f32, H + λI's solves are rounding once λ is
  // below ε ‖H‖): the last positive definite step cut to the region, or the Cauchy step
  // when that is lower in the model — a fraction of the Cauchy decrease is what the
  // trust-region method's convergence rests on (Conn, Gould & Toint, Thm 6.3.1); without
  // it the penalty trajectory in f32 on WebGPU stopped at ‖g‖ = 0.17 on a step the model
  // saw rise
  const cauchy = await cauchyStep(model, g, gnorm, radius);
  if (best) {
    const b = best;
    const s = tidy(() => stack([vdot(b, b), vdot(g, b), model.quadratic(b)]));
    const [pp, gp, php] = await readScalars(s);
    s.dispose();
    const c = pp > radius * radius ? radius / Math.sqrt(pp) : 1;
    if (gp * c + 0.5 * php * c * c < cauchy.model) {
      cauchy.p.dispose();
      const p = c < 1 ? tidy(() => mul(b, c)) : b;
      return done(p, true, MAX_TRIALS);
    }
  }
  return done(cauchy.p, true, MAX_TRIALS);
}

/**
 * The Cauchy step: the model's minimiser along −g within the region (N&W (4.11)–(4.12)),
 * with its model value gᵀp + ½ pᵀHp.
 */
async function cauchyStep(
  model: BandModel,
  g: Tensor,
  gnorm: number,
  radius: number,
): Promise<{ p: Tensor; model: number }> {
  const q = model.quadratic(g);
  const [gHg] = await readScalars(q);
  q.dispose();
  const tau = gHg <= 0 ? 1 : Math.min(1, gnorm ** 3 / (radius * gHg));
  const a = gnorm > 0 ? (tau * radius) / gnorm : 0; // p = −a g
  return { p: tidy(() => mul(g, -a)), model: -a * gnorm * gnorm + 0.5 * a * a * gHg };
}
