/**
 * The trust-region loop's bookkeeping shared by `trust-ncg` and `trust-exact` (Nocedal &
 * Wright, *Numerical Optimization*, 2nd ed., Alg. 4.1, with SciPy's constants): the ratio
 * ρ of actual to predicted reduction, the radius update, acceptance, and the stop when no
 * step can make progress any more.
 */
import type { MinimizeOptions } from "./types.ts";
import { numOpt, type Stop, STOPS } from "./objective.ts";
import { boolOption } from "../options.ts";

/** What one trust-region trial decided. */
export interface Verdict {
  accept: boolean;
  /** Set when the method should stop: f cannot decrease any further at this point. */
  stall?: Stop;
}

/** The radius and the acceptance rule of one trust-region run. */
export class TrustRegion {
  radius: number;
  readonly eta: number;
  /** Whether a rejected trial gets one evaluation along it (trust-exact's `searchRejected`). */
  readonly searchRejected: boolean;
  /** The user's cap, or null for the scale-aware default 1000 · max(1, ‖x‖). */
  readonly #cap: number | null;
  #flat = 0;

  constructor(method: string, o: MinimizeOptions, readonly eps: number) {
    this.#cap = o.maxTrustRadius === undefined
      ? null
      : numOpt(method, "maxTrustRadius", o.maxTrustRadius, 1000, (v) => v > 0, "> 0");
    this.radius = numOpt(
      method,
      "initialTrustRadius",
      o.initialTrustRadius,
      1,
      (v) => v > 0 && (this.#cap === null || v <= this.#cap),
      this.#cap === null ? "> 0" : "in (0, maxTrustRadius]",
    );
    this.eta = numOpt(method, "eta", o.eta, 0.15, (v) => v >= 0 && v < 0.25, "in [0, 0.25)");
    this.searchRejected = boolOption(
      `minimize (${method})`,
      "searchRejected",
      o.searchRejected,
      true,
    );
  }

  /**
   * The largest radius at a point of norm `xnorm`: the user's `maxTrustRadius`, or by
   * default 1000 · max(1, ‖x‖) — SciPy's fixed 1000 scaled with the iterate, so a minimiser
   * at ‖x*‖ = 10⁶ (Brown's badly scaled function) is not hundreds of capped steps away.
   */
  cap(xnorm: number): number {
    return this.#cap ?? 1000 * Math.max(1, xnorm);
  }

  /**
   * Judges a trial (SciPy's rule): `predicted` (> 0) is the model's reduction, `actual` the
   * measured one ({@linkcode decrease}: from f, or from the slopes where f's differences are
   * rounding), ρ = actual ÷ predicted. ρ < ¼ shrinks the radius to Δ/4; ρ > ¾ with a step
   * on the boundary doubles it (up to the cap); the step is taken when ρ > η. (Shrinking to
   * a fraction of a short interior step instead, or growing faster, was tried: both cost
   * iterations on the MGH problems and on the trajectory benchmark.) `progress` says whether
   * the trial lowered f or halved ‖∇f‖: two steps taken in a row without progress, or a
   * radius below the rounding of x, stop the run — nothing representable is left to gain.
   */
  judge(t: {
    predicted: number;
    actual: number;
    hitsBoundary: boolean;
    xnorm: number;
    progress: boolean;
  }): Verdict {
    const rho = t.actual / t.predicted;
    if (!(rho >= 0.25)) this.radius *= 0.25;
    else if (rho > 0.75 && t.hitsBoundary) {
      this.radius = Math.min(2 * this.radius, this.cap(t.xnorm));
    }
    const accept = rho > this.eta;
    this.#flat = !accept ? this.#flat : t.progress ? 0 : this.#flat + 1;
    if (this.#flat >= 2) {
      return { accept, stall: STOPS.floor };
    }
    if (this.radius <= 10 * this.eps * Math.max(1, t.xnorm)) {
      return {
        accept,
        stall: STOPS.noProgress(
          "the trust region shrank below the rounding of x without finding a decrease",
        ),
      };
    }
    return { accept };
  }
}
