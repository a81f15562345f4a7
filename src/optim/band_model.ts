/**
 * The Hessian's band at one point, as the Newton and trust-region methods use it: solves
 * with H + λI (one banded Cholesky each), products H v, and the bounds on H's spectrum
 * that start the trust-region subproblem. A dense Hessian is the band of width n − 1.
 */
import type { Tensor } from "../tensor.ts";
import type { BandedMatrix } from "../curvature/banded.ts";
import { abs, add, mul, neg, square, sub } from "../ops/elementwise.ts";
import { max, min, sum } from "../ops/reduce.ts";
import { concat, pad, reshape, slice, stack } from "../ops/movement.ts";
import { jit } from "../ad/jit.ts";
import { choleskyBanded, solveBanded } from "../linalg/banded.ts";
import { scalarLike } from "./objective.ts";

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

/** H + λI from lower band storage `d` ([b + 1, n]), λ a 0-d tensor. */
function shiftBand(d: Tensor, lambda: Tensor): Tensor {
  const diag = add(slice(d, [0], [1]), lambda);
  const b = d.shape[0] - 1;
  return b === 0 ? diag : concat([diag, slice(d, [1], [b + 1])], 0);
}

/** −A⁻¹ g in g's shape, for A in lower band storage. */
function descent(a: Tensor, g: Tensor): Tensor {
  return reshape(solveBanded(a, neg(reshape(g, [g.size])), { lower: true }), g.shape);
}

/**
 * Σ_{j ≠ i} |H[i][j]| for every row i of a symmetric H in lower band storage ([b + 1, n]):
 * the stored column below the diagonal (Σ_d |ab[d][i]|) and, by symmetry, the row left of
 * it (Σ_d |ab[d][i − d]|), read from the band skewed so that row d moves right by d.
 */
export function offDiagonalAbsSums(data: Tensor): Tensor {
  const [b1, n] = data.shape;
  const b = b1 - 1;
  const a = abs(data);
  const below = sum(slice(a, [1], [b + 1]), 0);
  // skew: padding each row to n + b + 1 and re-reading the flat array with rows of n + b
  // shifts row d right by d (the zeros come from the previous row's padding)
  const w = n + b;
  const skew = reshape(
    slice(reshape(pad(a, [[0, 0], [0, b + 1]]), [(b + 1) * (w + 1)]), [0], [(b + 1) * w]),
    [b + 1, w],
  );
  return add(below, sum(slice(skew, [1, 0], [b + 1, n]), 0));
}

/**
 * The band's repeated work as `jit` programs, shared by every call (pure functions of
 * their tensors: nothing is closed over): traced once per shape, replayed after that, so a
 * Newton or trust-region iteration builds no graph for its solves. λ is an input tensor,
 * so every shift replays one program; λ = 0 has programs of its own without the shift.
 */
const programs = {
  solve: jit((d: Tensor, rhs: Tensor) => solveBanded(d, rhs, { lower: true })),
  solveShifted: jit((d: Tensor, lambda: Tensor, rhs: Tensor) =>
    solveBanded(shiftBand(d, lambda), rhs, { lower: true })
  ),
  descent: jit((d: Tensor, g: Tensor) => descent(d, g)),
  descentShifted: jit((d: Tensor, lambda: Tensor, g: Tensor) => descent(shiftBand(d, lambda), g)),
  /** Σ of the factor's diagonal: finite exactly when the factorisation succeeded. */
  factorProbe: jit((d: Tensor, lambda: Tensor) =>
    sum(slice(choleskyBanded(shiftBand(d, lambda), { lower: true }), [0], [1]))
  ),
  bounds: jit((data: Tensor) => {
    const n = data.shape[1];
    const diag = reshape(slice(data, [0], [1]), [n]);
    const off = offDiagonalAbsSums(data);
    const fro2 = sub(mul(sum(square(data)), 2), sum(square(diag)));
    return stack([
      min(diag),
      min(sub(diag, off)),
      max(add(diag, off)),
      fro2.sqrt(),
      max(add(abs(diag), off)),
    ]);
  }),
};

/** @internal The band of H (lower storage, the caller's), with the operations the methods need. */
export class BandModel {
  readonly n: number;
  #bounds: SpectrumBounds | null = null;

  /** Takes ownership of `h` (lower storage). */
  constructor(readonly h: BandedMatrix) {
    if (h.layout !== "lower") throw new Error("BandModel: the band must be in lower storage");
    this.n = h.n;
  }

  /**
   * (H + λI)⁻¹ R for R of shape [n] or [n, m]. Not positive definite: a RangeError here
   * (CPU) or at the first read of the result (WebGPU); {@linkcode isNotSpd} tells it apart.
   */
  solve(lambda: number, rhs: Tensor): Tensor {
    return this.#shifted(lambda, programs.solve, programs.solveShifted, rhs);
  }

  /** The step −(H + λI)⁻¹ g, in g's shape (failures as {@linkcode BandModel.solve}'s). */
  descent(lambda: number, g: Tensor): Tensor {
    return this.#shifted(lambda, programs.descent, programs.descentShifted, g);
  }

  /** A program of the band at λ: its λ = 0 form, or the shifted one with λ as a tensor. */
  #shifted(
    lambda: number,
    plain: (d: Tensor, v: Tensor) => Tensor,
    shifted: (d: Tensor, lambda: Tensor, v: Tensor) => Tensor,
    v: Tensor,
  ): Tensor {
    const d = this.h.data;
    if (lambda === 0) return plain(d, v);
    const l = scalarLike(d, lambda);
    try {
      return shifted(d, l, v);
    } finally {
      l.dispose();
    }
  }

  /**
   * Whether H + λI is positive definite: one factorisation, read back (a 0-d sum of the
   * factor's diagonal, where WebGPU's failure surfaces).
   */
  async positiveDefinite(lambda: number): Promise<boolean> {
    let probe: Tensor | null = null;
    try {
      const l = scalarLike(this.h.data, lambda);
      try {
        probe = programs.factorProbe(this.h.data, l);
      } finally {
        l.dispose();
      }
      const [s] = await probe.data();
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
    const stats = programs.bounds(this.h.data);
    try {
      const [minDiag, gershgorinLo, gershgorinHi, frobenius, inf] = await stats.data();
      this.#bounds = { minDiag, gershgorinLo, gershgorinHi, frobenius, inf };
      return this.#bounds;
    } finally {
      stats.dispose();
    }
  }

  /** Frees the band. */
  dispose(): void {
    this.h.dispose();
  }
}
