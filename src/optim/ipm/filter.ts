/**
 * The filter line search of Wächter & Biegler 2006 (§2.3–2.4, Algorithm A steps A-5 and
 * a trial point is accepted when it is acceptable to the filter (a set of
 * (θ, φ) pairs it must improve on in one of the two measures) and makes sufficient
 * progress in the constraint violation θ or the barrier function φ_μ, or, where the
 * switching condition says the step is "f-type", when φ_μ satisfies Armijo's condition.
 *
 * Why a filter rather than a merit function: a merit function φ + ν θ needs a penalty
 * parameter ν that must grow with the multipliers; on trajectory problems started inside
 * obstacles the multipliers are large early and a large ν turns the search into a slow
 * feasibility walk. The filter accepts a step that improves either measure, which is what
 * lets IPOPT take long steps from infeasible starts, and needs no parameter to tune.
 */

/** The constants of the paper's §2 (IPOPT's defaults). */
export const FILTER = {
  /** γ_θ: required reduction of θ. */
  gammaTheta: 1e-5,
  /** γ_φ: required reduction of φ (relative to θ). */
  gammaPhi: 1e-8,
  /** δ of the switching condition. */
  delta: 1,
  /** s_θ of the switching condition. */
  sTheta: 1.1,
  /** s_φ of the switching condition. */
  sPhi: 2.3,
  /** η_φ: Armijo's constant. */
  etaPhi: 1e-8,
  /** γ_α: safety factor of α_min. */
  gammaAlpha: 0.05,
  /** κ_soc: required reduction of θ by a second-order correction. */
  kappaSoc: 0.99,
  /** p_max: second-order corrections per line search. */
  maxSoc: 4,
} as const;

/** The filter F_k: pairs (θ_l, φ_l), already shifted by the margins of (21). */
export class Filter {
  #entries: [number, number][] = [];

  /** θ_max: trial points with a larger θ are never accepted. */
  constructor(readonly thetaMax: number) {}

  /** (θ, φ) ∉ F: for every entry, θ < θ_l or φ < φ_l. */
  acceptable(theta: number, phi: number): boolean {
    if (!(theta <= this.thetaMax)) return false;
    return this.#entries.every(([t, p]) => theta < t || phi < p);
  }

  /** F ← F ∪ {(θ, φ): θ ≥ (1 − γ_θ) θ_k and φ ≥ φ_k − γ_φ θ_k}. */
  augment(theta: number, phi: number): void {
    const t = (1 - FILTER.gammaTheta) * theta, p = phi - FILTER.gammaPhi * theta;
    // drop entries the new one dominates, so the filter stays small
    this.#entries = this.#entries.filter(([a, b]) => a < t || b < p);
    this.#entries.push([t, p]);
  }

  /** a new barrier problem starts with an empty filter (only θ ≤ θ_max remains). */
  reset(): void {
    this.#entries = [];
  }

  /** Number of entries (for tests and reports). */
  get size(): number {
    return this.#entries.length;
  }
}

/**
 * The switching condition (19): the step is "f-type" when the barrier function's predicted
 * decrease α(−∇φᵀd) dominates the infeasibility, `α(−∇φᵀd)^{s_φ} > δ θ^{s_θ}`, with
 * ∇φᵀd < 0.
 */
export function switchingCondition(alpha: number, slope: number, theta: number): boolean {
  return slope < 0 &&
    alpha * Math.pow(-slope, FILTER.sPhi) > FILTER.delta * Math.pow(theta, FILTER.sTheta);
}

/**
 * Armijo's condition (20) on φ_μ, with an allowance of 10 ε |φ| for rounding (without it,
 * quadratic convergence stalls once the predicted decrease falls below φ's rounding).
 */
export function armijo(
  phiTrial: number,
  phi: number,
  alpha: number,
  slope: number,
  eps: number,
): boolean {
  return phiTrial <= phi + FILTER.etaPhi * alpha * slope + 10 * eps * Math.abs(phi);
}

/** Sufficient progress (18): θ or φ_μ decreases by a margin proportional to θ. */
export function sufficientProgress(
  thetaTrial: number,
  phiTrial: number,
  theta: number,
  phi: number,
  eps: number,
): boolean {
  return thetaTrial <= (1 - FILTER.gammaTheta) * theta ||
    phiTrial <= phi - FILTER.gammaPhi * theta + 10 * eps * Math.abs(phi);
}

/**
 * α_min of (23): below it no step length can satisfy the acceptance tests, and the method
 * falls back to feasibility restoration.
 */
export function minStepSize(slope: number, theta: number, thetaMin: number): number {
  const g = FILTER.gammaTheta;
  if (slope < 0 && theta <= thetaMin) {
    return FILTER.gammaAlpha * Math.min(
      g,
      FILTER.gammaPhi * theta / -slope,
      FILTER.delta * Math.pow(theta, FILTER.sTheta) / Math.pow(-slope, FILTER.sPhi),
    );
  }
  if (slope < 0) return FILTER.gammaAlpha * Math.min(g, FILTER.gammaPhi * theta / -slope);
  return FILTER.gammaAlpha * g;
}
