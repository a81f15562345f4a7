/**
 * The Newton (KKT) system of the interior-point method, condensed, behind one interface.
 *
 * The primal-dual system in (dx, ds, dy, dz, dz_L, dz_U) (Wächter & Biegler 2006, eq. 11,
 * with the inequality slacks of their §3.5) is reduced by eliminating ds = J_I dx + r_I,
 * dz, dz_L and dz_U (all diagonal), which leaves
 *
 *   [ K    −J_Eᵀ ] [dx]   [ −r̃  ]        K = W + J_Iᵀ Σ_s J_I + Σ_x + δ_w I,
 *   [ J_E  δ_c I ] [dy] = [ −c_E ]
 *
 * with W the Hessian of the Lagrangian, Σ_s = Z S⁻¹, Σ_x = Z_L (X − X_L)⁻¹ + Z_U (X_U − X)⁻¹.
 * K is banded when W and the constraint Jacobians are (J_Iᵀ Σ_s J_I only couples variables
 * that share a constraint), and is a Hessian itself (see `ConstrainedProblem.condensedHessian`).
 *
 * Equalities are eliminated through the Schur complement S = J_E K⁻¹ J_Eᵀ + δ_c I, an
 * m_E × m_E dense matrix: one solve with K against [−r̃, J_Eᵀ] (m_E + 1 right-hand sides in
 * one banded solve), then S dy = −c_E − J_E u and dx = u + K⁻¹J_Eᵀ dy. Why this and not the
 * equalities interleaved with the variables in one banded LU (`solveBandedGeneral`):
 *
 * - inertia: the method needs to know that the reduced Hessian is positive definite (IPOPT
 *   asks the factorisation for the KKT matrix's inertia). With K positive definite the KKT
 *   matrix has inertia (n, m_E, 0) (Haynsworth), and a banded Cholesky of K says whether it
 *   is, at no extra cost. An LU with partial pivoting of the interleaved indefinite matrix
 *   gives no inertia, and a symmetric indefinite factorisation (Bunch–Kaufman) destroys the
 *   band.
 * - placement: interleaving needs to know which variables each equality touches, to put its
 *   row beside them; a boundary condition such as p_{N−1} = goal sits at the far end of the
 *   variables. The Schur complement needs no placement and keeps K's band.
 * - cost: O(n b² + n b m_E + m_E³) per iteration, which is the banded Cholesky's cost while
 *   m_E is small against b (boundary conditions, a few invariants). Many equalities
 *   (discretised dynamics, m_E ~ n) would want the interleaved LU instead.
 *
 * Where K itself is not positive definite, δ_w is raised (inertia correction, below); where
 * S is singular (dependent equality constraints), δ_c > 0.
 */
import { compilable } from "./compiled.ts";
import type { Tensor } from "../../tensor.ts";
import { add, mul, neg, sub } from "../../ops/elementwise.ts";
import { matmul } from "../../ops/matmul.ts";
import { concat, pad, reshape, slice, stack, transpose } from "../../ops/movement.ts";
import { eye, tensor } from "../../ops/creation.ts";
import { solve } from "../../ops/linalg.ts";
import { max, sum } from "../../ops/reduce.ts";
import { tidy } from "../../memory.ts";
import { solveBanded } from "../../linalg/banded.ts";
import type { BandedMatrix } from "../../curvature/banded.ts";
import { jit } from "../../ad/jit.ts";

/** A shift or weight: a number, or a 0-d tensor inside compiled programs (see `solveKkt`). */
export type Num = number | Tensor;

/** Whether a shift is in use: a number when positive, a tensor always (0 then adds exactly 0). */
const active = (v: Num): boolean => typeof v !== "number" || v > 0;

/**
 * The condensed matrix K (without δ_w) at one iterate, in whatever storage suits its
 * structure, optionally with the equalities' J_Eᵀ J_E beside it for the augmented term
 * ρ J_Eᵀ J_E. Banded and dense storage implement it here; a sparse one plugs in the same way.
 */
export interface CondensedMatrix {
  /** `"banded"` or `"dense"` (more to come). */
  readonly storage: string;
  /**
   * Solves (K + ρ J_Eᵀ J_E + δ_w I) X = B for B [n] or [n, k] (ρ > 0 needs `augment` first).
   * A matrix that is not positive definite raises an error matching `not positive
   * definite`: at once on the CPU, at the next read of anything computed from X on WebGPU.
   */
  solve(deltaW: Num, rho: Num, b: Tensor): Tensor;
  /**
   * Keeps J_Eᵀ J_E from J_Eᵀ [n, m_E] in this storage. Returns two 0-d tensors: ‖J_Eᵀ J_E‖_F²
   * inside the storage and in all; where they differ, J_Eᵀ J_E does not fit (its rows
   * are wider than the band) and ρ must stay 0.
   */
  augment(jEt: Tensor): [Tensor, Tensor];
  /** max_i K_ii as a 0-d tensor (scales shifts). */
  diagonalMax(): Tensor;
  /** Frees the matrix. */
  dispose(): void;
}

/** How the condensed matrix is built: from the band of ∇²Φ plus a diagonal. */
export interface CondensedStorage {
  /** The name reported in messages. */
  readonly name: string;
  /** The bandwidth the Hessian of Φ is taken with (n − 1 for dense). */
  readonly bandwidth: number;
  /** K = band + diag(d), taking ownership of the band. */
  assemble(band: BandedMatrix, d: Tensor): CondensedMatrix;
}

/** K in LAPACK lower band storage (row 0 the diagonal), solved by the banded Cholesky. */
class BandCondensed implements CondensedMatrix {
  #eq: Tensor | null;

  constructor(
    readonly storage: string,
    readonly ab: Tensor,
    eq: Tensor | null = null,
    readonly compiled = false,
  ) {
    this.#eq = eq;
  }

  /** The tensors that make the matrix: the band and, after `augment`, J_Eᵀ J_E's band. */
  get parts(): { ab: Tensor; eq?: Tensor } {
    return this.#eq ? { ab: this.ab, eq: this.#eq } : { ab: this.ab };
  }

  solve(deltaW: Num, rho: Num, b: Tensor): Tensor {
    return tidy(() => {
      let ab = this.ab;
      if (active(rho) && this.#eq) ab = add(ab, mul(this.#eq, rho));
      const rows = ab.shape[0];
      const diag = add(slice(ab, [0], [1]), deltaW);
      ab = rows === 1 ? diag : concat([diag, slice(ab, [1], [rows])], 0);
      return solveBanded(ab, b, { lower: true });
    });
  }

  augment(jEt: Tensor): [Tensor, Tensor] {
    const { band, inside, all } = augmentProgram(this.compiled, this.ab, jEt);
    this.#eq?.dispose();
    this.#eq = band;
    return [inside, all];
  }

  diagonalMax(): Tensor {
    return tidy(() => max(slice(this.ab, [0], [1])));
  }

  dispose(): void {
    this.ab.dispose();
    this.#eq?.dispose();
  }
}

/**
 * J_Eᵀ J_E in the lower band storage of `ab` (its rows: ab's), with ‖J_Eᵀ J_E‖_F² inside that
 * band and in all (a pure function of tensors: `augmentProgram`).
 */
function augmentBand(ab: Tensor, jEt: Tensor): { band: Tensor; inside: Tensor; all: Tensor } {
  const [n, m] = jEt.shape, rows = ab.shape[0];
  // lower storage: ab[d][j] = (J_Eᵀ J_E)[j + d][j] = Σ_k J_Eᵀ[j + d][k] J_Eᵀ[j][k]
  const diags = Array.from(
    { length: rows },
    (_, d) =>
      pad(sum(mul(slice(jEt, [d, 0], [n, m]), slice(jEt, [0, 0], [n - d, m])), 1), [[0, d]]),
  );
  const band = stack(diags, 0);
  const sq = mul(band, band);
  const inside = add(sum(sq), rows > 1 ? sum(slice(sq, [1], [rows])) : 0);
  const g = matmul(transpose(jEt), jEt); // ‖J_Eᵀ J_E‖_F = ‖J_E J_Eᵀ‖_F
  return { band, inside, all: sum(mul(g, g)) };
}

const augmentProgram = compilable(augmentBand);

/**
 * Banded storage with bandwidth b; `bandwidth = n − 1` is the dense path (n identity probes
 * and an O(n³) Cholesky in the same kernels), meant for small problems without structure.
 * `compiled`: the matrices' bookkeeping replays `jit` programs.
 */
export function condensedStorage(
  bandwidth: number | null,
  n: number,
  compiled = false,
): CondensedStorage {
  const b = bandwidth ?? Math.max(n - 1, 0);
  const name = bandwidth === null ? "dense" : "banded";
  return {
    name,
    bandwidth: b,
    assemble(band: BandedMatrix, d: Tensor): CondensedMatrix {
      const ab = tidy(() => {
        const rows = band.data.shape[0];
        const diag = add(slice(band.data, [0], [1]), reshape(d, [1, n]));
        return rows === 1 ? diag : concat([diag, slice(band.data, [1], [rows])], 0);
      });
      band.dispose();
      return new BandCondensed(name, ab, null, compiled);
    },
  };
}

/** The primal and equality-multiplier parts of a Newton step. */
export interface KktStep {
  /** dx [n]. */
  dx: Tensor;
  /** dy [m_E] (null without equalities). */
  dy: Tensor | null;
}

/**
 * Solves [K + δ_w I, −J_Eᵀ; J_E, δ_c I] [dx; dy] = [−r̃; −c_E] by the Schur complement on
 * the equalities (see the module doc). `jEt` is J_Eᵀ [n, m_E] (null without equalities).
 *
 * With ρ > 0 the first block row is replaced by itself plus ρ J_Eᵀ times the second, an
 * exact rewriting, so the solution does not change:
 *   (K + ρ J_Eᵀ J_E) dx − (1 − ρ δ_c) J_Eᵀ dy = −r̃ − ρ J_Eᵀ c_E.
 * Its point is the inertia test: K + ρ J_Eᵀ J_E is positive definite for ρ large enough
 * exactly when the reduced Hessian (K on the null space of J_E) is (Debreu's lemma), which
 * is IPOPT's condition; K alone may be indefinite along directions the equalities pin
 * (a rigid motion of a path whose ends are fixed), and would need a shift that slows
 * convergence to linear.
 */
export function solveKkt(
  k: CondensedMatrix,
  deltaW: Num,
  deltaC: Num,
  rho: Num,
  rTilde: Tensor,
  cE: Tensor | null,
  jEt: Tensor | null,
): KktStep {
  return tidy(() => {
    const n = rTilde.size;
    if (!jEt || !cE) return { dx: reshape(k.solve(deltaW, 0, neg(rTilde)), [n]), dy: null };
    const m = jEt.shape[1];
    let rhs = reshape(neg(rTilde), [n, 1]);
    if (active(rho)) rhs = sub(rhs, mul(matmul(jEt, reshape(cE, [m, 1])), rho));
    const X = k.solve(deltaW, rho, concat([rhs, jEt], 1));
    const u = slice(X, [0, 0], [n, 1]);
    const rd = typeof rho === "number" && typeof deltaC === "number"
      ? 1 - rho * deltaC
      : sub(1, mul(rho, deltaC));
    const V = mul(slice(X, [0, 1], [n, m + 1]), rd);
    const jE = transpose(jEt);
    let S = matmul(jE, V);
    if (active(deltaC)) S = add(S, eye(m, m, { dtype: S.dtype, device: S.device }).mul(deltaC));
    const t = sub(reshape(neg(cE), [m, 1]), matmul(jE, u));
    const dy = solve(S, t);
    return { dx: reshape(add(u, matmul(V, dy)), [n]), dy: reshape(dy, [m]) };
  });
}

/** `solveKkt` on a band's tensors, as one `jit` program (the shifts as 0-d tensors). */
const solveKktProgram = jit(
  (a: { ab: Tensor; eq?: Tensor; r: Tensor; cE?: Tensor; jEt?: Tensor; shifts: Tensor }) => {
    const [dw, dc, rho] = [0, 1, 2].map((i) => reshape(slice(a.shifts, [i], [i + 1]), []));
    const k = new BandCondensed("", a.ab, a.eq ?? null);
    return solveKkt(k, dw, dc, rho, a.r, a.cE ?? null, a.jEt ?? null);
  },
);

/**
 * `solveKkt` replayed as a compiled program where the matrix allows (banded storage, which
 * the dense path also uses); the same arithmetic, with zero shifts adding exact zeros.
 */
export function solveKktCompiled(
  k: CondensedMatrix,
  deltaW: number,
  deltaC: number,
  rho: number,
  rTilde: Tensor,
  cE: Tensor | null,
  jEt: Tensor | null,
): KktStep {
  if (!(k instanceof BandCondensed)) {
    return solveKkt(k, deltaW, deltaC, rho, rTilde, cE, jEt);
  }
  const o = { dtype: rTilde.dtype, device: rTilde.device } as const;
  const shifts = tensor([deltaW, deltaC, rho], o);
  try {
    return solveKktProgram({
      ...k.parts,
      r: rTilde,
      ...(cE ? { cE } : {}),
      ...(jEt ? { jEt } : {}),
      shifts,
    });
  } finally {
    shifts.dispose();
  }
}
