/**
 * The constrained problem as the interior-point method evaluates it. The objective and the
 * constraints are stacked into one vector function F(x) = [f(x), c_E(x), c_I(x)], so that
 * one forward pass gives every value, one pullback of that pass gives any combination
 * ∇f − J_Eᵀ y − J_Iᵀ w (one reverse pass, whatever the number of constraints), and one
 * forward-mode pass gives J·d for all of them at once.
 *
 * The condensed Newton matrix W + J_Iᵀ Σ J_I (+ ρ J_Eᵀ J_E) is itself a Hessian, that of
 *
 *   Φ(u) = Σ_j w_j F_j(u) + ½ Σ_j σ_j (F_j(u) − F_j(u)|const)²,
 *
 * where `F_j(u)|const` is F_j(u) with its derivatives stopped: the residual is exactly 0 at
 * u = x, so its curvature term vanishes and ∇²Φ(x) = Σ w_j ∇²F_j + Jᵀ diag(σ) J exactly.
 * Its band comes from one batched comb-probe forward-over-reverse pass (`bandedHessian`):
 * the constraint Jacobian's batched JVPs against the comb probes happen inside that pass,
 * and no Jacobian entry is ever recovered or stored.
 *
 * Compiled (`minimize`'s default for `"ipm"`), each of these passes — F, its pullback, J·d,
 * J_Eᵀ, the band of ∇²Φ — is a program, traced at its first call and replayed after that:
 * no transform tracing, graph building or kernel lookup per iteration. The programs are
 * keyed by the record of F (`openRecord`), so a later solve of the same problem, even with
 * new closures or new tensors they close over, replays them too. A compiled
 * evaluation keeps no tape; its pullback runs F's forward pass again inside the replayed
 * program (cheaper than recording a tape at every trial point, most of which are never
 * pulled back).
 */
import { Tensor } from "../../tensor.ts";
import { jvp, type Pullback, vjp } from "../../ad/transforms.ts";
import { abs, add, mul, square, stopGradient, sub } from "../../ops/elementwise.ts";
import { max, sum } from "../../ops/reduce.ts";
import { concat, reshape, slice, transpose } from "../../ops/movement.ts";
import { eye } from "../../ops/creation.ts";
import { vmap } from "../../ad/vmap.ts";
import { inheritOwner, tidy } from "../../memory.ts";
import { fmtShape } from "../../shape.ts";
import { describeValue } from "../../ops/common.ts";
import { bandedHessian, BandedMatrix } from "../../curvature/banded.ts";
import { type OpenRecord, openRecord } from "../../ad/auto_jit.ts";
import { hessianSparsity } from "../../curvature/pattern.ts";

/** IPOPT's nlp_scaling_max_gradient: the largest ‖∇f(x0)‖∞ the method leaves unscaled. */
const MAX_GRADIENT = 100;

/** A forward pass of F at a point, with its pullback kept for gradients. */
export interface Evaluation {
  /** F(x) = [f, c_E, c_I], flat [1 + m_E + m_I]. */
  values: Tensor;
  /** The pullback of F at x (dispose with the evaluation). */
  back: Pullback;
}

/** @internal The objective and constraints of one `ipm` solve, with evaluation counters. */
export class ConstrainedProblem {
  /** Forward passes of F (plain, or carrying tangents). */
  nfev = 0;
  /** Reverse passes (pullbacks of F). */
  ngev = 0;
  /** Hessian-vector products (one per comb probe). */
  nhvp = 0;
  /** Number of variables. */
  readonly n: number;
  #mE = -1;
  #mI = -1;

  readonly #compiled: boolean;
  #record: OpenRecord | null = null;
  #recordScale = 1;

  /**
   * s_f: F's first entry is s_f f (IPOPT's gradient-based scaling, set once at the start by
   * `scaleObjective`, before any pass is compiled). The method works on the scaled problem,
   * whose multipliers are s_f times the user's.
   */
  objectiveScale = 1;

  /** Whether the passes (and the method's bookkeeping) replay compiled programs. */
  get compiled(): boolean {
    return this.#compiled;
  }

  /**
   * With `compiled`, the passes are compiled programs (f, eq and ineq must be pure), kept
   * for later solves whose F writes the same record (see `#run`); `clear` when the solve
   * is done.
   */
  constructor(
    readonly f: (x: Tensor) => Tensor,
    readonly eq: ((x: Tensor) => Tensor) | undefined,
    readonly ineq: ((x: Tensor) => Tensor) | undefined,
    readonly shape: readonly number[],
    compiled = false,
  ) {
    this.n = shape.reduce((a, d) => a * d, 1);
    this.#compiled = compiled;
  }

  /**
   * Runs a pass compiled: keyed by the record of F (`openRecord`, opened at the first pass
   * of the solve), so that a later solve of the same problem replays the programs on its
   * own point and on the tensors f and the constraints close over then; programs for this
   * solve alone where the record cannot describe F. Its key run also learns m_E and m_I,
   * which a replayed pass (not running F) does not.
   */
  #run<R>(work: string, args: Tensor[], fn: (...traced: Tensor[]) => R): R {
    // s_f is a number in F: a record made before it changed describes another F
    if (this.#record && this.#recordScale !== this.objectiveScale) this.clear();
    if (!this.#record) {
      this.#recordScale = this.objectiveScale;
      this.#record = openRecord((u: Tensor) => this.stacked(u), args[0]);
    }
    return this.#record.run(`ipm ${work}`, args, fn);
  }

  /** Ends the solve: the passes' programs stay in their cache, the tensors they bound are let go. */
  clear(): void {
    this.#record?.close();
    this.#record = null;
  }

  /** Number of equality constraints (known after the first evaluation). */
  get mE(): number {
    return Math.max(this.#mE, 0);
  }

  /** Number of inequality constraints (known after the first evaluation). */
  get mI(): number {
    return Math.max(this.#mI, 0);
  }

  /** F(u) = [f(u), c_E(u), c_I(u)] for a flat u [n]. */
  stacked(u: Tensor): Tensor {
    const x = reshape(u, this.shape);
    const fx = this.f(x);
    if (!(fx instanceof Tensor) || fx.size !== 1) {
      throw new RangeError(
        `minimize (ipm): the objective must return a scalar tensor, got ${
          fx instanceof Tensor ? `shape ${fmtShape(fx.shape)}` : describeValue(fx)
        } for x ${fmtShape(this.shape)}`,
      );
    }
    sameKind("the objective", fx, u);
    const sf = this.objectiveScale;
    const parts = [reshape(sf === 1 ? fx : mul(fx, sf), [1])];
    if (this.eq) parts.push(this.#constraint("eq", this.eq(x), u));
    if (this.ineq) parts.push(this.#constraint("ineq", this.ineq(x), u));
    return parts.length === 1 ? parts[0] : concat(parts, 0);
  }

  #constraint(which: "eq" | "ineq", c: unknown, u: Tensor): Tensor {
    if (!(c instanceof Tensor) || c.rank > 1) {
      throw new RangeError(
        `minimize (ipm): constraints.${which} must return a 1-D tensor (or a scalar), got ${
          c instanceof Tensor ? `shape ${fmtShape(c.shape)}` : describeValue(c)
        }`,
      );
    }
    sameKind(`constraints.${which}`, c, u);
    const known = which === "eq" ? this.#mE : this.#mI;
    if (known >= 0 && c.size !== known) {
      throw new RangeError(
        `minimize (ipm): constraints.${which} returned ${c.size} values, but ${known} before; ` +
          `the number of constraints must not change`,
      );
    }
    if (which === "eq" && c.size > this.n) {
      // IPOPT stops here too ("too few degrees of freedom"): J_E [m_E, n] cannot have full
      // row rank, so the equalities are redundant or contradict each other
      throw new RangeError(
        `minimize (ipm): constraints.eq returned ${c.size} values for ${this.n} variables ` +
          `(x ${fmtShape(this.shape)}); more equalities than variables leave no degrees of ` +
          `freedom: drop the redundant ones`,
      );
    }
    if (which === "eq") this.#mE = c.size;
    else this.#mI = c.size;
    return reshape(c, [c.size]);
  }

  /** One forward pass of F at x [n], keeping what its pullback needs. */
  evaluate(x: Tensor): Evaluation {
    this.nfev++;
    const F = (u: Tensor) => this.stacked(u);
    if (!this.#compiled) {
      const [values, back] = vjp(F, x);
      return { values, back };
    }
    const values = this.#run("values", [x], F);
    // the pullback replays F's forward pass at x: it keeps x's storage (a view) alive
    const at = Tensor._view(x, x.shape);
    const pull = (u: Tensor, ct: Tensor) => vjp(F, u)[1](ct)[0];
    const back = Object.assign((ct: Tensor) => [this.#run("pull", [at, ct], pull)], {
      dispose: () => at.dispose(),
      [Symbol.dispose]: () => at.dispose(),
    });
    return { values, back };
  }

  /**
   * IPOPT's gradient-based objective scaling (nlp_scaling_max_gradient = 100): s_f =
   * min(1, 100 / ‖∇f(x)‖∞) at the start, from one uncompiled forward and reverse pass.
   * Without it a steep f (‖∇f‖ in the thousands) drives the first steps far outside the
   * inequalities, their slacks to 0 and Σ_s = z/s past what f32 can factorise.
   */
  async scaleObjective(x: Tensor, read: (...ts: Tensor[]) => Promise<number[]>): Promise<void> {
    this.nfev++;
    this.ngev++;
    const [v, back] = vjp((u: Tensor) => this.stacked(u), x);
    let gmax: Tensor;
    try {
      gmax = tidy(() => {
        const ct = reshape(eye(v.size, 1, { dtype: v.dtype, device: v.device }), [v.size]);
        return max(abs(back(ct)[0]));
      });
    } finally {
      v.dispose();
      back.dispose();
    }
    try {
      const [g] = await read(gmax);
      if (Number.isFinite(g) && g > MAX_GRADIENT) this.objectiveScale = MAX_GRADIENT / g;
    } finally {
      gmax.dispose();
    }
  }

  /** `Σ_j ct_j ∇F_j(x)` from an evaluation's pullback: one reverse pass. */
  pull(e: Evaluation, ct: Tensor): Tensor {
    this.ngev++;
    return e.back(ct)[0];
  }

  /**
   * J_Eᵀ [n, m_E]: one forward pass of the equalities alone and one pullback of it batched
   * over the m_E unit cotangents (`vmap`), i.e. one reverse pass with m_E-wide kernels.
   */
  equalityJacobianT(x: Tensor): Tensor {
    this.nfev++;
    this.ngev += this.mE;
    const jT = (u: Tensor) => this.#equalityJacobianT(u);
    return this.#compiled ? this.#run("jacobianT", [x], jT) : jT(x);
  }

  #equalityJacobianT(x: Tensor): Tensor {
    const mE = this.mE, eq = this.eq!;
    const [y, back] = vjp((u: Tensor) => reshape(eq(reshape(u, this.shape)), [mE]), x);
    try {
      return tidy(() => {
        const unit = eye(mE, mE, { dtype: y.dtype, device: y.device });
        return transpose(vmap((e: Tensor) => back(e)[0])(unit));
      });
    } finally {
      y.dispose();
      back.dispose();
    }
  }

  /** J_F(x)·d = [∇fᵀd, J_E d, J_I d] from one forward-mode pass. */
  directional(x: Tensor, d: Tensor): Tensor {
    this.nfev++;
    const jd = (u: Tensor, e: Tensor) => jvp((y: Tensor) => this.stacked(y), [u], [e])[1];
    return this.#compiled ? this.#run("directional", [x, d], jd) : tidy(() => jd(x, d));
  }

  /**
   * The bandwidth of the condensed matrix W + J_Iᵀ Σ J_I, detected by tracing index sets
   * (`hessianSparsity`) through S(u) = Σ F(u) + Σ_{j ≥ 1} F_j(u)² (the constraints squared,
   * not f: ∇f ∇fᵀ is dense and not in the matrix): its Hessian pattern is the union of every
   * ∇²F_j's and the constraints' J_jᵀ J_j's, i.e. the pattern of that matrix for any weights.
   * (J_Eᵀ J_E of the augmented term is checked separately, `CondensedMatrix.augment`.) Global and
   * conservative, as `hessianSparsity`: a function whose structure changes with x's values
   * must pass `bandwidth` instead.
   */
  detectBandwidth(x: Tensor): number {
    return hessianSparsity((u: Tensor) => {
      const F = this.stacked(u);
      const c = slice(F, [1], [F.size]);
      return add(sum(F), sum(square(c)));
    }, x).bandwidth;
  }

  /**
   * The band (lower storage) of ∇²Φ at x for Φ(u) = Σ w⊙F(u) + ½ Σ σ⊙(F(u) − F(u)|const)²,
   * i.e. Σ_j w_j ∇²F_j(x) + Jᵀ diag(σ) J. `bandwidth` n − 1 gives the dense matrix (n
   * identity probes).
   */
  condensedHessian(x: Tensor, w: Tensor, sigma: Tensor, bandwidth: number): BandedMatrix {
    const probes = Math.min(this.n, 2 * bandwidth + 1);
    this.nhvp += probes;
    // w and sigma may be fresh (ones, zeros): they belong to x's call if f fails (memory.ts)
    inheritOwner(null, [x, w, sigma]);
    const opts = { bandwidth, layout: "lower" } as const;
    if (!this.#compiled) return bandedHessian(this.#phi(w, sigma), x, opts);
    const band = (u: Tensor, wt: Tensor, st: Tensor) =>
      bandedHessian(this.#phi(wt, st), u, opts).data;
    return new BandedMatrix(this.#run(`band ${bandwidth}`, [x, w, sigma], band), "lower");
  }

  /** Φ(u) = Σ w⊙F(u) + ½ Σ σ⊙(F(u) − F(u)|const)² (see the module doc). */
  #phi(w: Tensor, sigma: Tensor): (u: Tensor) => Tensor {
    return (u: Tensor) => {
      const F = this.stacked(u);
      const r = sub(F, stopGradient(F));
      return add(sum(mul(w, F)), mul(sum(mul(sigma, square(r))), 0.5));
    };
  }
}

/**
 * f and the constraints must return x's dtype on x's device: they are stacked into one
 * vector, and a mismatch would otherwise surface as an error of that internal `concat`.
 */
function sameKind(what: string, t: Tensor, x: Tensor): void {
  if (t.dtype === x.dtype && t.device === x.device) return;
  throw new TypeError(
    `minimize (ipm): ${what} returned ${t.dtype} on ${t.device.kind}, but x0 is ${x.dtype} on ` +
      `${x.device.kind}; compute it from x (constants: tensor(…, { dtype, device }) of x0's)`,
  );
}
