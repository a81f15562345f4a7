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
  /**
   * trust-exact's refinements of SciPy's rules (option `searchRejected`, default on; off for
   * trust-ncg): a rejected trial gets one evaluation along it, the radius grows only when f
   * fell by at least what the model predicted (ρ ≥ 1, not SciPy's ρ > ¾), and the
   * acceptance test is non-monotone (`memory`).
   */
  readonly searchRejected: boolean;
  /**
   * How many recent points' values the acceptance test may measure a decrease from
   * (trust-exact's `nonmonotone`; 1: from the current point only, SciPy's rule).
   */
  readonly memory: number;
  /** The user's cap, or null for the scale-aware default 1000 · max(1, ‖x‖). */
  readonly #cap: number | null;
  #flat = 0;
  /** f at the last `memory` points the run stood at, oldest first. */
  readonly #recent: number[] = [];
  /** The lowest f of the points the run stood at (see {@linkcode reference}). */
  lowest = Infinity;
  /** ρ above which a step on the boundary doubles the radius (see `judge`). */
  readonly #grow: number;

  /** `refined`: the method reads `searchRejected` and `nonmonotone` (trust-exact's refinements). */
  constructor(method: string, o: MinimizeOptions, readonly eps: number, refined = false) {
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
    this.searchRejected = refined &&
      boolOption(`minimize (${method})`, "searchRejected", o.searchRejected, true);
    this.memory = !refined ? 1 : numOpt(
      method,
      "nonmonotone",
      o.nonmonotone,
      this.searchRejected ? 4 : 1,
      (v) => Number.isSafeInteger(v) && v >= 1,
      "an integer ≥ 1",
    );
    // ρ ≥ 1 to rounding: a quadratic's trials have ρ = 1 (in exact arithmetic), and its
    // radius must still grow (MGH's linear functions: 3 iterations, 5 with ρ > 1)
    this.#grow = this.searchRejected ? 1 - 1e-6 : 0.75;
  }

  /**
   * The value a trial's decrease may be measured from at a point of value f (recorded here,
   * once per point): the largest of the last `memory` points' values when it lies above f by
   * more than √ε |f|, else f itself (closer, the differences are rounding and the test is
   * SciPy's monotone one). Non-monotone trust region (Toint 1997; Conn, Gould & Toint,
   * *Trust-Region Methods*, §10.1): a step may raise f a little after steps that lowered it
   * by more, as long as it lowers the reference by a fraction of what the model predicts.
   */
  reference(f: number): number {
    const r = this.#recent;
    if (r[r.length - 1] !== f) {
      r.push(f);
      if (r.length > this.memory) r.shift();
    }
    this.lowest = Math.min(this.lowest, f);
    const top = Math.max(...r);
    return top - f > Math.sqrt(this.eps) * Math.abs(f) ? top : f;
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
   * Judges a trial: `predicted` (> 0) is the model's reduction, `actual` the measured one
   * ({@linkcode decrease}: from f, or from the slopes where f's differences are rounding),
   * ρ = actual ÷ predicted. ρ < ¼ shrinks the radius to Δ/4; the step is taken when ρ > η.
   * A step on the boundary doubles the radius (up to the cap) when ρ > ¾ (SciPy's rule) or,
   * refined, when ρ ≥ 1 (to rounding): f fell by more than the model said, so the model underestimates how
   * far f keeps falling; for ¾ < ρ ≤ 1 it already rises faster than the model, and a step
   * twice as long fares worse (on the penalty trajectory, doubling there led to the 4-step
   * cycle of bench/RESULTS.md: a long trial rejected, a search, two short steps). `relaxed`,
   * the non-monotone ratio (f_ref − f(x + p)) ÷ (f_ref − f + predicted) with f_ref from
   * {@linkcode reference}, raises ρ to at most ¾ when larger: it may take a step and spare
   * the radius, never grow it. `progress` says whether the trial lowered f (with `memory` >
   * 1: below the run's `lowest`) or halved ‖∇f‖: `memory` + 1 steps taken in a row without
   * progress (two for the monotone test), or a radius below the rounding of x, stop the run —
   * nothing representable is left to gain. (A non-monotone run at the rounding floor, where
   * f's values are noise, would otherwise keep finding steps below its reference.)
   */
  judge(t: {
    predicted: number;
    actual: number;
    relaxed?: number;
    hitsBoundary: boolean;
    xnorm: number;
    progress: boolean;
  }): Verdict {
    const rho = Math.max(t.actual / t.predicted, Math.min(t.relaxed ?? -Infinity, 0.75));
    if (!(rho >= 0.25)) this.radius *= 0.25;
    else if (rho > this.#grow && t.hitsBoundary) {
      this.radius = Math.min(2 * this.radius, this.cap(t.xnorm));
    }
    const accept = rho > this.eta;
    this.#flat = !accept ? this.#flat : t.progress ? 0 : this.#flat + 1;
    if (this.#flat > this.memory) {
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
