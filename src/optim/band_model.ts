/**
 * The Hessian's band at one point, as the Newton and trust-region methods use it: solves
 * with H + λI (one banded Cholesky each), products H v, and the bounds on H's spectrum
 * that start the trust-region subproblem. A dense Hessian is the band of width n − 1.
 */
import type { Tensor } from "../tensor.ts";
import type { BandedMatrix } from "../curvature/banded.ts";
import { abs, add, div, mul, neg, sqrt, square, sub } from "../ops/elementwise.ts";
import { max, min, sum } from "../ops/reduce.ts";
import { concat, pad, reshape, slice, stack } from "../ops/movement.ts";
import { jit } from "../ad/jit.ts";
import { choleskyBanded, solveBanded } from "../linalg/banded.ts";
import { rademacher } from "../ops/creation.ts";
import type { FloatDtype } from "../dtype.ts";
import { scalarLike, vdot } from "./objective.ts";

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

/** Inverse-iteration steps for the smallest eigenvalue's vector (see {@linkcode inverseIteration}). */
const INVERSE_STEPS = 3;

/** v ÷ ‖v‖. */
function unit(v: Tensor): Tensor {
  return div(v, sqrt(vdot(v, v)));
}

/**
 * z from {@linkcode INVERSE_STEPS} steps of inverse iteration with A = H + λI (lower band
 * storage `a`, H's `d`) from `v0`, and s² = zᵀHz + λ: an approximate unit eigenvector of
 * H's smallest eigenvalue, and A's smallest eigenvalue from above. (s² from the last solve,
 * wᵀv/wᵀw for Aw = v, saves the band product and equals it in exact arithmetic, but carries
 * the solve's backward error ε‖A‖ where A is nearly singular: in f32 it cost the penalty
 * trajectory its convergence, tests/trust_exact_test.ts.)
 */
function inverseIteration(a: Tensor, d: Tensor, lambda: Tensor, v0: Tensor) {
  let z = v0;
  for (let i = 0; i < INVERSE_STEPS; i++) z = unit(solveBanded(a, z, { lower: true }));
  return { z, s2: add(bandQuadratic(d, z), reshape(lambda, [])) };
}

/**
 * vᵀHv (0-d) for H in lower band storage `d` ([b + 1, n]) and v [n]: Σ_d c_d Σ_j
 * H[j + d][j] v[j + d] v[j], c₀ = 1 and c_d = 2 (each off-diagonal entry twice, by
 * symmetry), from v and its copies shifted up by d (zero past the end, where the band's
 * unused corner lies): a handful of kernels where a band product takes a few per diagonal.
 */
export function bandQuadratic(d: Tensor, v: Tensor): Tensor {
  const [b1, n] = d.shape;
  const vp = pad(v, [[0, b1 - 1]]);
  const shifted = stack(Array.from({ length: b1 }, (_, k) => slice(vp, [k], [k + n])));
  const terms = sum(mul(mul(d, shifted), v), 1); // [b + 1]: the diagonals' sums
  return sub(mul(sum(terms), 2), slice(terms, [0], [1]).reshape([]));
}

/**
 * The trust-region subproblem's trial at a shift, A = H + λI in lower band storage `a`:
 * p = −A⁻¹g with pᵀp, pᵀA⁻¹p (the secular equation's slope) and gᵀp, then z and s² of
 * {@linkcode inverseIteration} and pᵀz, packed in that order for one read-back. (Single
 * right-hand sides: a second column would share the factorisation, but on WebGPU only one
 * column takes the partitioned, parallel solver.)
 */
function shiftedTrial(d: Tensor, lambda: Tensor, g: Tensor, v0: Tensor) {
  const a = shiftBand(d, lambda);
  const p = solveBanded(a, neg(g), { lower: true });
  const w = solveBanded(a, p, { lower: true });
  const { z, s2 } = inverseIteration(a, d, lambda, v0);
  return { p, z, s: stack([vdot(p, p), vdot(p, w), vdot(g, p), s2, vdot(p, z)]) };
}

/**
 * p = −A⁻¹g with pᵀp, pᵀA⁻¹p and gᵀp (packed in that order), A in lower band storage: what
 * the secular equation's Newton step needs, without the inverse iteration of
 * {@linkcode shiftedTrial} (two solves instead of five).
 */
function secularStep(a: Tensor, g: Tensor) {
  const p = solveBanded(a, neg(g), { lower: true });
  const w = solveBanded(a, p, { lower: true });
  return { p, s: stack([vdot(p, p), vdot(p, w), vdot(g, p)]) };
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
  /** λ = 0: the Newton step −H⁻¹g with pᵀp and gᵀp (the usual trial: inside, it is the answer). */
  newtonTrial: jit((d: Tensor, g: Tensor) => {
    const p = solveBanded(d, neg(g), { lower: true });
    return { p, s: stack([vdot(p, p), vdot(g, p)]) };
  }),
  /** pᵀH⁻¹p. */
  inverseQuadratic: jit((d: Tensor, p: Tensor) => vdot(p, solveBanded(d, p, { lower: true }))),
  shiftedTrial: jit(shiftedTrial),
  shiftedStep: jit((d: Tensor, lambda: Tensor, g: Tensor) => secularStep(shiftBand(d, lambda), g)),
  eigen: jit((d: Tensor, lambda: Tensor, v0: Tensor) =>
    inverseIteration(shiftBand(d, lambda), d, lambda, v0)
  ),
  quadratic: jit(bandQuadratic),
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
  #start: Tensor | null = null;

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

  /** vᵀHv (0-d) for v of shape [n] (see {@linkcode bandQuadratic}). */
  quadratic(v: Tensor): Tensor {
    return programs.quadratic(this.h.data, v);
  }

  /**
   * The trust-region subproblem's trial at λ, one program whose packed scalars `s` are read
   * back at once. `kind` "newton" (or any kind at λ = 0): p = −H⁻¹g and `s` = [pᵀp, gᵀp]; "step":
   * p = −(H + λI)⁻¹g and `s` = [pᵀp, pᵀ(H + λI)⁻¹p, gᵀp]; "eigen" (λ > 0 only): also z as
   * {@linkcode BandModel.eigen}'s, `s` = [pᵀp, pᵀ(H + λI)⁻¹p, gᵀp, s², pᵀz]. Not positive
   * definite: as {@linkcode BandModel.solve}'s failures. g is [n].
   */
  trial(
    lambda: number,
    g: Tensor,
    kind: "newton" | "step" | "eigen",
  ): { p: Tensor; z: Tensor | null; s: Tensor } {
    const d = this.h.data;
    if (kind === "newton" || lambda === 0) return { ...programs.newtonTrial(d, g), z: null };
    const l = scalarLike(d, lambda);
    try {
      if (kind === "step") return { ...programs.shiftedStep(d, l, g), z: null };
      return programs.shiftedTrial(d, l, g, this.#inverseStart());
    } finally {
      l.dispose();
    }
  }

  /** pᵀH⁻¹p (0-d). */
  inverseQuadratic(p: Tensor): Tensor {
    return programs.inverseQuadratic(this.h.data, p);
  }

  /**
   * {@linkcode INVERSE_STEPS} steps of inverse iteration with H + λI ≻ 0 from a fixed
   * Rademacher vector: z, an approximate unit eigenvector of H's smallest eigenvalue, and
   * s² = zᵀ(H + λI)z (0-d; from above, the smallest eigenvalue of H + λI). Failures as
   * {@linkcode BandModel.solve}'s.
   */
  eigen(lambda: number): { z: Tensor; s2: Tensor } {
    const l = scalarLike(this.h.data, lambda);
    try {
      return programs.eigen(this.h.data, l, this.#inverseStart());
    } finally {
      l.dispose();
    }
  }

  /** The inverse iteration's start, made once per band (the same vector every time: seed 7). */
  #inverseStart(): Tensor {
    const d = this.h.data;
    return this.#start ??= rademacher([this.n], {
      seed: 7,
      dtype: d.dtype as FloatDtype,
      device: d.device,
    });
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
    this.#start?.dispose();
    this.h.dispose();
  }
}
