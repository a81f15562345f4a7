/**
 * The backtracking filter line search of Wächter & Biegler 2006 (Algorithm A, steps A-5.1
 * to A-5.10) with second-order corrections (§2.4): trial points x + α dx, s + α ds for
 * α = α^max, α^max/2, …, each accepted or rejected by the tests of `filter.ts`; when the
 * full step is rejected for raising the infeasibility, up to p_max corrected steps aim at the
 * constraints' values at the trial point (Maratos effect), at the price of one more solve
 * with the same matrix each.
 */
import { compilable } from "./compiled.ts";
import type { Tensor } from "../../tensor.ts";
import { add, maximum, mul, sub } from "../../ops/elementwise.ts";
import { concat, reshape, slice } from "../../ops/movement.ts";
import { tensor } from "../../ops/creation.ts";
import { tidy } from "../../memory.ts";
import {
  type BoundSet,
  boundSetOf,
  type BoundTensors,
  boundTensors,
  distances,
  type Iterate,
  present,
  resetMultipliers,
  split,
  thetaAndBarrier,
  trialX,
} from "./barrier.ts";
import {
  type Direction,
  disposeDirection,
  type InertiaState,
  type Linearization,
  mendable,
  type Residuals,
  searchDirection,
} from "./direction.ts";
import {
  armijo,
  FILTER,
  type Filter,
  minStepSize,
  sufficientProgress,
  switchingCondition,
} from "./filter.ts";
import type { ConstrainedProblem } from "./problem.ts";

/** What the line search knows of the current iterate and the barrier problem. */
export interface SearchContext {
  prob: ConstrainedProblem;
  b: BoundSet;
  it: Iterate;
  lin: Linearization;
  mu: number;
  tau: number;
  filter: Filter;
  thetaMin: number;
  eps: number;
  inertia: InertiaState;
  read: (...ts: Tensor[]) => Promise<number[]>;
}

/** A trial point's primal part: x, s, F there and the measures of the tests. */
export interface Trial {
  x: Tensor;
  s: Tensor | null;
  ev: Iterate["ev"];
  f: number;
  theta: number;
  barrier: number;
  /**
   * The same point with the slacks reset to max(s, c_I(x)) (null without inequalities): it
   * dominates the trial in θ and φ_μ, so it replaces the trial once that is accepted.
   */
  reset: { s: Tensor; theta: number; barrier: number } | null;
}

function disposeTrial(t: Trial): void {
  t.x.dispose();
  t.s?.dispose();
  t.reset?.s.dispose();
  t.ev.values.dispose();
  t.ev.back.dispose();
}

/**
 * Evaluates F at x + α dx (and s + α ds) and reads f, θ and the barrier sum at once.
 * `untested`: the step is taken whatever its measures (a tiny step), so x + α dx is kept off
 * the bounds (`trialX`); a tested trial that rounds onto a bound has φ_μ = ∞ and is rejected.
 */
export async function trialPoint(
  c: SearchContext,
  d: Direction,
  alpha: number,
  untested = false,
): Promise<Trial> {
  const { prob, it, b } = c;
  const x = untested
    ? trialX(it.x, d.dx, alpha, b, c.eps)
    : tidy(() => add(it.x, mul(d.dx, alpha)));
  const ev = prob.evaluate(x);
  const alphaT = tensor(alpha, { dtype: x.dtype, device: x.device });
  const inputs: TrialInputs = {
    values: ev.values,
    x,
    alpha: alphaT,
    ...present({ s: it.s, ds: d.ds }),
    ...boundTensors(b),
  };
  const { s, sr, scalars } = trialProgram(prob.compiled, inputs, prob.mE, prob.mI);
  alphaT.dispose();
  let v: number[];
  try {
    v = await c.read(scalars);
  } catch (e) {
    sr?.dispose();
    disposeTrial({ x, s, ev, f: NaN, theta: NaN, barrier: NaN, reset: null });
    throw e;
  } finally {
    scalars.dispose();
  }
  const reset = sr ? { s: sr, theta: v[3], barrier: v[4] } : null;
  return { x, s, ev, f: v[0], theta: v[1], barrier: v[2], reset };
}

/** What a trial's measures are computed from (absent: no inequalities, no bounds). */
interface TrialInputs extends BoundTensors {
  values: Tensor;
  x: Tensor;
  alpha: Tensor;
  s?: Tensor;
  ds?: Tensor;
}

/**
 * The trial's slacks s + α ds, the reset slacks, and [f, θ, B] at both (θ and the barrier
 * sum B of `thetaAndBarrier`). The slack reset: where c_I(x_t) exceeds s + α ds (convex c_I
 * run ahead of their linearisation), s = c_I(x_t) lowers both θ and φ_μ; it is applied once
 * a trial is accepted, not in its tests, which would otherwise accept any long step that
 * makes convex constraints feasible (on the obstacle problem: a path thrown across an
 * obstacle). A pure function of tensors (`trialProgram`).
 */
function trialTensors(a: TrialInputs, mE: number, mI: number) {
  const b = boundSetOf(a);
  const s = a.s && a.ds ? add(a.s, mul(a.ds, a.alpha)) : null;
  const sr = s ? maximum(s, split(a.values, mE, mI).cI!) : null;
  const parts = [slice(a.values, [0], [1]), ...thetaAndBarrier(a.values, a.x, s, b, mE, mI)];
  if (sr) parts.push(...thetaAndBarrier(a.values, a.x, sr, b, mE, mI));
  return { s, sr, scalars: concat(parts.map((t) => reshape(t, [1])), 0) };
}

const trialProgram = compilable(trialTensors, { static: [1, 2] });

/**
 * is the trial acceptable? Returns "f" for an f-type step (switching
 * condition and Armijo: the filter is left alone), "h" for a step accepted by sufficient
 * progress (the filter is augmented), or null.
 */
export function acceptance(
  c: SearchContext,
  t: Trial,
  alpha: number,
  slope: number,
): "f" | "h" | null {
  const phiT = t.f - c.mu * t.barrier, phi = c.it.f - c.mu * c.it.barrier;
  if (!Number.isFinite(t.theta) || !Number.isFinite(phiT)) return null;
  if (!c.filter.acceptable(t.theta, phiT)) return null;
  const theta = c.it.theta;
  if (theta <= c.thetaMin && switchingCondition(alpha, slope, theta)) {
    return armijo(phiT, phi, alpha, slope, c.eps) ? "f" : null;
  }
  return sufficientProgress(t.theta, phiT, theta, phi, c.eps) ? "h" : null;
}

/** The accepted step: the trial point, the direction that led there and its step sizes. */
export interface Accepted {
  trial: Trial;
  dir: Direction;
  alpha: number;
  alphaZ: number;
  kind: "f" | "h";
  /** Second-order corrections tried. */
  soc: number;
  /** Trial points evaluated. */
  trials: number;
}

/**
 * second-order corrections after the full step α^max was rejected with
 * θ(x_t) ≥ θ(x_k). The constraint residual of the system becomes
 * c_soc = α c(x_k) + c(x_t) (then c_soc ← α_soc c_soc + c(x_soc)), the matrix stays.
 */
async function secondOrderCorrection(
  c: SearchContext,
  d: Direction,
  first: Trial,
  r: Residuals,
): Promise<Accepted | null> {
  const { prob, it } = c;
  const { mE, mI } = prob;
  let alpha = d.alphaMax;
  let trial = first;
  let thetaOld = it.theta;
  let csoc: Residuals = { cE: null, rI: null };
  let own = false; // whether `trial` belongs to this function
  try {
    for (let p = 1; p <= FILTER.maxSoc; p++) {
      if (p > 1 && trial.theta > FILTER.kappaSoc * thetaOld) return null;
      thetaOld = trial.theta;
      const prev = csoc;
      csoc = tidy(() => {
        const { cE, cI } = split(trial.ev.values, mE, mI);
        const base = p === 1 ? r : prev;
        return {
          cE: cE && base.cE ? add(mul(base.cE, alpha), cE) : null,
          rI: cI && base.rI && trial.s ? add(mul(base.rI, alpha), sub(cI, trial.s)) : null,
        };
      });
      if (p > 1) {
        prev.cE?.dispose();
        prev.rI?.dispose();
      }
      let ds: Direction | null;
      try {
        ds = await searchDirection(
          prob,
          it,
          c.lin,
          c.b,
          c.mu,
          c.tau,
          csoc,
          c.inertia,
          c.read,
          { deltaW: d.deltaW, deltaC: d.deltaC },
        );
      } catch (e) {
        // a failed factorisation ends the correction; anything else (f threw) is the user's
        if (!mendable(e)) throw e;
        return null;
      }
      if (!ds) return null;
      alpha = ds.alphaMax;
      if (own) disposeTrial(trial);
      trial = await trialPoint(c, ds, alpha);
      own = true;
      // the tests of the original step: its α^max and slope
      const kind = acceptance(c, trial, d.alphaMax, d.slope);
      if (kind) {
        own = false;
        return {
          trial,
          dir: ds,
          alpha,
          alphaZ: ds.alphaZ,
          kind,
          soc: p,
          trials: p + 1,
        };
      }
      disposeDirection(ds);
    }
    return null;
  } finally {
    if (own) disposeTrial(trial);
    csoc.cE?.dispose();
    csoc.rI?.dispose();
  }
}

/**
 * backtracking from α^max, halving, with second-order corrections after a rejected
 * full step. Resolves to the accepted step, or to null once α falls below α_min (eq. 23):
 * then feasibility restoration takes over.
 */
export async function filterLineSearch(
  c: SearchContext,
  d: Direction,
  r: Residuals,
): Promise<Accepted | null> {
  const alphaMin = minStepSize(d.slope, c.it.theta, c.thetaMin);
  let alpha = d.alphaMax;
  for (let trials = 1;; trials++) {
    const t = await trialPoint(c, d, alpha);
    const kind = acceptance(c, t, alpha, d.slope);
    if (kind) return { trial: t, dir: d, alpha, alphaZ: d.alphaZ, kind, soc: 0, trials };
    if (trials === 1 && !(t.theta < c.it.theta)) {
      const soc = await secondOrderCorrection(c, d, t, r);
      if (soc) {
        disposeTrial(t);
        disposeDirection(d);
        return { ...soc, trials: soc.trials };
      }
    }
    disposeTrial(t);
    alpha /= 2;
    if (alpha < alphaMin) return null;
  }
}

/** IPOPT's tiny-step rule: the full step α^max, accepted without the filter's tests. */
export async function fullStep(c: SearchContext, d: Direction): Promise<Accepted> {
  const t = await trialPoint(c, d, d.alphaMax, true);
  return { trial: t, dir: d, alpha: d.alphaMax, alphaZ: d.alphaZ, kind: "h", soc: 0, trials: 1 };
}

/**
 * A-6: the next iterate from an accepted step: x, s from the trial, y ← y + α dy,
 * λ ← λ + α dλ, z ← z + α^z dz (and the bounds' multipliers), each z reset by eq. (16).
 */
export function advance(c: SearchContext, a: Accepted): Iterate {
  const { it, mu, b, prob } = c;
  const d = a.dir, t = a.trial;
  // the trial's slacks give way to the reset ones (see `trialTensors`)
  const slacks = t.reset?.s ?? t.s;
  if (t.reset) t.s?.dispose();
  const steps = tensor([a.alpha, a.alphaZ, mu], { dtype: t.x.dtype, device: t.x.device });
  const inputs: AdvanceInputs = {
    x: t.x,
    steps,
    ...present({ y: it.y, dy: d.dy, lam: it.lam, dlam: d.dlam, z: it.z, dz: d.dz }),
    ...present({ zL: it.zL, dzL: d.dzL, zU: it.zU, dzU: d.dzU, s: slacks }),
    ...boundTensors(b),
  };
  const next = advanceProgram(prob.compiled, inputs);
  steps.dispose();
  return {
    x: t.x,
    s: slacks,
    ...next,
    ev: t.ev,
    f: t.f,
    theta: t.reset?.theta ?? t.theta,
    barrier: t.reset?.barrier ?? t.barrier,
  };
}

/** The multipliers and their steps (absent: no such constraints or bounds). */
interface AdvanceInputs extends BoundTensors {
  x: Tensor;
  /** [α, α^z, μ]. */
  steps: Tensor;
  s?: Tensor;
  y?: Tensor;
  dy?: Tensor;
  lam?: Tensor;
  dlam?: Tensor;
  z?: Tensor;
  dz?: Tensor;
  zL?: Tensor;
  dzL?: Tensor;
  zU?: Tensor;
  dzU?: Tensor;
}

/** The multipliers of A-6 (a pure function of tensors: `advanceProgram`). */
function advanced(a: AdvanceInputs) {
  const b = boundSetOf(a);
  const [alpha, alphaZ, mu] = [0, 1, 2].map((i) => reshape(slice(a.steps, [i], [i + 1]), []));
  const step = (v: Tensor | undefined, dv: Tensor | undefined, al: Tensor) =>
    v && dv ? add(v, mul(dv, al)) : v ? add(v, 0) : null;
  const y = step(a.y, a.dy, alpha), lam = step(a.lam, a.dlam, alpha);
  let z = step(a.z, a.dz, alphaZ);
  let zL = step(a.zL, a.dzL, alphaZ), zU = step(a.zU, a.dzU, alphaZ);
  const { dl, du } = distances(a.x, b);
  if (z && a.s) z = resetMultipliers(z, a.s, mu, null);
  if (zL && dl) zL = resetMultipliers(zL, dl, mu, b.hasLower);
  if (zU && du) zU = resetMultipliers(zU, du, mu, b.hasUpper);
  return { y, lam, z, zL, zU };
}

const advanceProgram = compilable(advanced);

export { disposeTrial };
