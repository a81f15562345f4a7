/**
 * The Hessian's band at one point, as the Newton and trust-region methods use it: solves
 * with H + λI (one banded Cholesky each), products H v, and the bounds on H's spectrum
 * that start the trust-region subproblem. A dense Hessian is the band of width n − 1.
 */
import type { Tensor } from "../tensor.ts";
import type { BandedMatrix } from "../curvature/banded.ts";
import { abs, add, mul, square, sub } from "../ops/elementwise.ts";
import { max, min, sum } from "../ops/reduce.ts";
import { concat, pad, reshape, slice } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import { choleskyBanded, solveBanded } from "../linalg/banded.ts";
import { readScalars } from "./objective.ts";

/** A failed banded factorisation (not positive definite), on either backend. */
export function isNotSpd(e: unknown): boolean {
  return e instanceof RangeError && /not positive definite/.test(e.message);
}

/** Bounds on the spectrum of H (Conn, Gould & Toint 2000, §7.3.8), read back together. */
export interface SpectrumBounds {
  /** The smallest diagonal entry (λ_min ≤ it). */
  minDiag: number;
  /** Gershgorin's lower bound on λ_min. */
  gershgorinLo: number;
  /** Gershgorin's upper bound on λ_max. */
  gershgorinHi: number;
  /** ‖H‖_F. */
  frobenius: number;
  /** ‖H‖_∞ (the largest absolute row sum). */
  inf: number;
}

/** @internal The band of H (lower storage, the caller's), with the operations the methods need. */
export class BandModel {
  readonly n: number;
  #bounds: SpectrumBounds | null = null;

  /** Takes ownership of `h` (lower storage). */
  constructor(readonly h: BandedMatrix) {
    if (h.layout !== "lower") throw new Error("BandModel: the band must be in lower storage");
    this.n = h.n;
  }

  /** H + λI in lower band storage (a new tensor). */
  shifted(lambda: number): Tensor {
    const h = this.h;
    return tidy(() => {
      const d = h.data;
      if (lambda === 0) return add(d, 0);
      const diag = add(slice(d, [0], [1]), lambda);
      return h.bandwidth === 0 ? diag : concat([diag, slice(d, [1], [h.bandwidth + 1])], 0);
    });
  }

  /**
   * (H + λI)⁻¹ R for R of shape [n] or [n, m]. Not positive definite: a RangeError here
   * (CPU) or at the first read of the result (WebGPU); {@linkcode isNotSpd} tells it apart.
   */
  solve(lambda: number, rhs: Tensor): Tensor {
    return tidy(() => solveBanded(this.shifted(lambda), rhs, { lower: true }));
  }

  /**
   * Whether H + λI is positive definite: one factorisation, read back (a 0-d sum of the
   * factor's diagonal, where WebGPU's failure surfaces).
   */
  async positiveDefinite(lambda: number): Promise<boolean> {
    let probe: Tensor | null = null;
    try {
      probe = tidy(() =>
        sum(slice(choleskyBanded(this.shifted(lambda), { lower: true }), [0], [1]))
      );
      const [s] = await readScalars(probe);
      return Number.isFinite(s);
    } catch (e) {
      if (isNotSpd(e)) return false;
      throw e;
    } finally {
      probe?.dispose();
    }
  }

  /** H v for v of shape [n]. */
  matvec(v: Tensor): Tensor {
    return this.h.matvec(v);
  }

  /**
   * Gershgorin bounds, norms and the smallest diagonal entry, from the band on the device
   * and one read-back (cached). Row i's off-diagonal absolute sum adds the stored column
   * below the diagonal (Σ_d |ab[d][i]|) and, by symmetry, the row left of it
   * (Σ_d |ab[d][i − d]|): the band skewed so that row d moves right by d.
   */
  async bounds(): Promise<SpectrumBounds> {
    if (this.#bounds) return this.#bounds;
    const { n, bandwidth: b, data } = this.h;
    const stats = tidy(() => {
      const a = abs(data);
      const diag = reshape(slice(data, [0], [1]), [n]);
      const below = sum(slice(a, [1], [b + 1]), 0); // Σ_{d ≥ 1} |H[i+d][i]|
      // skew: padding each row to n + b + 1 and re-reading the flat array with rows of n + b
      // shifts row d right by d (the zeros come from the previous row's padding)
      const w = n + b;
      const skew = reshape(
        slice(reshape(pad(a, [[0, 0], [0, b + 1]]), [(b + 1) * (w + 1)]), [0], [(b + 1) * w]),
        [b + 1, w],
      );
      const left = sum(slice(skew, [1, 0], [b + 1, n]), 0); // Σ_{d ≥ 1} |H[i][i−d]|
      const off = add(below, left);
      const fro2 = sub(mul(sum(square(data)), 2), sum(square(diag)));
      return [
        min(diag),
        min(sub(diag, off)),
        max(add(diag, off)),
        fro2.sqrt(),
        max(add(abs(diag), off)),
      ];
    });
    try {
      const [minDiag, gershgorinLo, gershgorinHi, frobenius, inf] = await readScalars(...stats);
      this.#bounds = { minDiag, gershgorinLo, gershgorinHi, frobenius, inf };
      return this.#bounds;
    } finally {
      for (const t of stats) t.dispose();
    }
  }

  /** Frees the band. */
  dispose(): void {
    this.h.dispose();
  }
}
