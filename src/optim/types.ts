/** The types of `minimize`: options, results, the per-iteration report and the method contract. */
import type { Tensor } from "../tensor.ts";
import type { BandedHessianOptions, BandedMatrix } from "../curvature/banded.ts";
import type { SparsityPattern } from "../curvature/pattern.ts";
import type { SparseHessianOptions, SparseMatrix } from "../curvature/sparse.ts";

/** What `onIteration` receives: once for the starting point (iteration 0), then after each iteration. */
export interface IterationInfo {
  /** 0 for the starting point, then 1, 2, … */
  iteration: number;
  /**
   * The current point. It belongs to the optimiser and is only valid during the callback:
   * read it (`await info.x.data()`) or copy it there, and do not dispose it.
   */
  x: Tensor;
  /** The objective at `x`. */
  fun: number;
  /** The Euclidean norm of the gradient at `x`. */
  gradNorm: number;
  /** Objective evaluations so far. */
  nfev: number;
  /** Gradient evaluations so far. */
  ngev: number;
  /** Hessian-vector products so far (a batch of K probes counts K). */
  nhvp: number;
  /**
   * Line-search step length of this iteration (`"newton-cg"`, `"newton-banded"`,
   * `"newton-sparse"`: 0 for a trust-region step).
   */
  stepSize?: number;
  /**
   * The τ added to the Hessian's diagonal to make it positive definite (`"newton-banded"`,
   * `"newton-sparse"`), or the trust-region subproblem's λ (`"trust-exact"`, and the
   * trust-region steps of `"newton-banded"`).
   */
  shift?: number;
  /** Trust-region radius after this iteration's update (`"trust-ncg"`, `"trust-exact"`). */
  trustRadius?: number;
  /** Inner CG iterations of this iteration (`"newton-cg"`, `"trust-ncg"`, `"newton-sparse"` with CG). */
  cgIterations?: number;
  /** `"ipm"`: the largest violation of a constraint or bound at `x` (∞-norm). */
  constraintViolation?: number;
  /** `"ipm"`: the largest product of a slack (or bound distance) and its multiplier. */
  complementarity?: number;
  /** `"ipm"`: the unscaled KKT residual at `x`, as `MinimizeResult.kktResidual`. */
  kktResidual?: number;
  /** `"ipm"`: the scaled KKT error that `gtol` is tested against, as `MinimizeResult.kktError`. */
  kktError?: number;
  /** `"ipm"`: the barrier parameter μ. */
  mu?: number;
}

/**
 * The callback of `minimize`: called with the starting point (iteration 0) and after every
 * iteration. Returning `false` (or a Promise of `false`) stops the optimiser.
 */
export type IterationCallback = (info: IterationInfo) => void | boolean | Promise<void | boolean>;

/** The method names `minimize` knows out of the box; more can be added with `registerMethod`. */
export type MethodName =
  | "newton-cg"
  | "trust-ncg"
  | "adahessian"
  | "gradient-descent"
  | "adam"
  | "newton-banded"
  | "trust-exact"
  | "newton-sparse"
  | "ipm"
  | (string & Record<never, never>);

/**
 * Options of `minimize`. Each method takes the ones it documents; any other key is an error
 * that names the right spelling (SciPy's `maxiter` → `maxIter`) or the methods it belongs to.
 */
export interface MinimizeOptions {
  /**
   * The algorithm: `"newton-cg"`, `"trust-ncg"`, `"trust-exact"`, `"newton-banded"`,
   * `"ipm"`, `"adahessian"`, `"gradient-descent"`, `"adam"`, or a registered one.
   */
  method: MethodName;
  /** Stop when the gradient's Euclidean norm falls below this (default 1e-5, as SciPy). */
  gtol?: number;
  /** The most iterations (default 1000). */
  maxIter?: number;
  /** Called with the starting point and after each iteration; return `false` to stop. */
  onIteration?: IterationCallback;
  /** Newton-CG / trust-ncg: the most inner CG iterations per step (default 20·n, as SciPy). */
  maxCgIter?: number;
  /**
   * Newton-CG / trust-ncg: when the inner CG reads back its termination flag. A number n:
   * after every n iterations. `"auto"` (default): on the CPU after every k-th, k = ⌊m/20⌋ in
   * [1, 10] for m the previous solve's iterations (at most ~5 % masked work; long solves
   * read a tenth as often); on WebGPU first after as many iterations as the previous solve took,
   * then after gaps of 1, 2, 4, … CG's scalars stay on the device and iterations after
   * termination are masked no-ops (they still cost their products, and count in `nhvp`), so
   * this changes the cost, never the iterates.
   */
  cgCheckEvery?: number | "auto";
  /** Newton-CG / newton-banded: the Armijo constant c₁ (default 1e-4). */
  c1?: number;
  /** trust-ncg / trust-exact: the first radius (default 1, as SciPy). */
  initialTrustRadius?: number;
  /**
   * trust-ncg / trust-exact: the largest radius (default 1000 · max(1, ‖x‖), SciPy's 1000
   * scaled with the iterate).
   */
  maxTrustRadius?: number;
  /** trust-ncg / trust-exact: accept a step when actual ÷ predicted reduction exceeds this (default 0.15, as SciPy). */
  eta?: number;
  /**
   * trust-exact: its refinements of SciPy's rules (default true): on a rejected trial, one
   * evaluation along it at the quadratic interpolation's length, taken on Armijo's test,
   * before the region shrinks; the radius doubled only when f fell by at least the model's
   * prediction (ρ ≥ 1, SciPy ρ > ¾); the non-monotone test (`nonmonotone`). False is
   * SciPy's `trust-exact` step for step.
   */
  searchRejected?: boolean;
  /**
   * trust-exact: a trial's decrease may be measured from the largest f of the last this many
   * points (non-monotone trust region, Toint 1997), so a step may raise f a little after
   * steps that lowered it more; it never grows the radius (default 4; 1, and the default with
   * `searchRejected: false`, is SciPy's monotone test).
   */
  nonmonotone?: number;
  /** First-order methods and AdaHessian: the learning rate (defaults: gradient descent 0.01, Adam 0.001, AdaHessian 0.15). */
  lr?: number;
  /** Adam / AdaHessian: decay of the first moment (default 0.9). */
  beta1?: number;
  /** Adam / AdaHessian: decay of the second moment (default 0.999). */
  beta2?: number;
  /** Adam / AdaHessian: added to the denominator (defaults: Adam 1e-8, AdaHessian 1e-4). */
  eps?: number;
  /** AdaHessian: the Hessian power k (default 1). */
  hessianPower?: number;
  /** AdaHessian: the spatial-averaging block size over the flattened x (default 1: none). */
  blockSize?: number;
  /** AdaHessian: Rademacher probes per iteration, in one batched pass (default 1). */
  samples?: number;
  /** AdaHessian: the probes' seed (default 0). */
  seed?: number;
  /**
   * `"newton-banded"` and `"trust-exact"`: the Hessian's bandwidth b, H[i][j] = 0 for
   * |i − j| > b over the flattened x (default: detected from its sparsity pattern; for
   * trust-exact, a pattern too wide for a band means the dense Hessian, n ≤ 2000). `"ipm"`:
   * the band of W + J_Iᵀ Σ J_I (default: detected from the objective's and constraints'
   * patterns; the dense path where 2b + 1 ≥ n).
   */
  bandwidth?: number;
  /**
   * `"newton-sparse"`: the Hessian's sparsity pattern (default: detected by
   * `hessianSparsity`, kept by what f computes: a closure whose couplings change gets its new
   * pattern).
   */
  pattern?: SparsityPattern;
  /**
   * `"newton-sparse"`: how H p = −g is solved: `"banded"` (banded Cholesky after a reverse
   * Cuthill–McKee reordering), `"cg"` (preconditioned conjugate gradients on the sparse
   * matrix; see `sparsePreconditioner`), or `"auto"` (default: banded while its O(n b²) work stays within
   * about 50 CG iterations', else CG).
   */
  sparseSolver?: "auto" | "banded" | "cg";
  /**
   * `"newton-sparse"` with CG: the preconditioner, `"incomplete-cholesky"` (IC(0) on H's
   * own pattern, factored on the host each iteration; CPU only), `"jacobi"` (H's diagonal)
   * or `"auto"` (default: incomplete Cholesky on the CPU, Jacobi on WebGPU).
   */
  sparsePreconditioner?: "auto" | "jacobi" | "incomplete-cholesky";
  /** `"newton-banded"` / `"trust-exact"`: how the band is recovered (default `"direct"`; see `bandedHessian`). */
  bandMethod?: "direct" | "substitution";
  /** `"ipm"`: constraints `eq(x) = 0` and `ineq(x) ≥ 0`, each a function returning a 1-D tensor. */
  constraints?: Constraints;
  /**
   * `"ipm"`: bounds `lower ≤ x ≤ upper`, each a number (for every component) or a tensor of
   * exactly x's shape (not broadcast; the same size in another shape is an error); ±Infinity: none.
   */
  bounds?: Bounds;
  /** `"ipm"`: the first barrier parameter μ₀ (default 0.1, as IPOPT). */
  muInit?: number;
  /**
   * `"ipm"`: how the barrier parameter falls: `"adaptive"` (default; LOQO's oracle with
   * IPOPT's KKT-error safeguard and a monotone fall-back) or `"monotone"` (Fiacco–McCormick,
   * IPOPT's default).
   */
  barrier?: "adaptive" | "monotone";
}

/** Constraints of `minimize(…, { method: "ipm" })`: functions of x returning 1-D tensors. */
export interface Constraints {
  /** Equalities: `eq(x) = 0` at the solution. */
  eq?: (x: Tensor) => Tensor;
  /** Inequalities: `ineq(x) ≥ 0` at the solution. */
  ineq?: (x: Tensor) => Tensor;
}

/**
 * Bounds of `minimize(…, { method: "ipm" })`: each a number (for every component) or a tensor
 * of exactly x's shape (no broadcasting); ±Infinity means none.
 */
export interface Bounds {
  /** `x ≥ lower` (default: none). */
  lower?: number | Tensor;
  /** `x ≤ upper` (default: none). */
  upper?: number | Tensor;
}

/** The Lagrange multipliers of a constrained solution (sign convention ∇f = Jₑᵀ eq + Jᵢᵀ ineq + lower − upper). */
export interface Multipliers {
  /** Of the equalities (shape [m_eq]; empty without them). */
  eq: Tensor;
  /** Of the inequalities, ≥ 0 (shape [m_ineq]; empty without them). */
  ineq: Tensor;
  /** Of the lower bounds, ≥ 0 (x's shape; zero where there is none). */
  lower: Tensor;
  /** Of the upper bounds, ≥ 0 (x's shape; zero where there is none). */
  upper: Tensor;
}

/**
 * What `minimize` resolves to. The SciPy names are aliases of ours: `nit` = `iterations`,
 * `success` = `converged`, `njev` = `ngev`, `nhev` = `nhvp`; `jac` is the gradient at `x`.
 */
export interface MinimizeResult {
  /** The final point (the caller owns it). */
  x: Tensor;
  /** The objective at `x`. */
  fun: number;
  /** The gradient at `x` (SciPy's `jac`; the caller owns it). */
  jac: Tensor;
  /** The gradient's Euclidean norm at `x`. */
  gradNorm: number;
  /** Iterations taken (trust-region methods count rejected steps too, as SciPy does). */
  iterations: number;
  /** SciPy's name for `iterations`. */
  nit: number;
  /** Objective evaluations (a value-and-gradient pass counts once here and once in `ngev`). */
  nfev: number;
  /** Gradient evaluations. */
  ngev: number;
  /** SciPy's name for `ngev`. */
  njev: number;
  /**
   * Hessian-vector products (a batch of K probes counts K; a band from 2b+1 comb probes
   * counts 2b+1, a dense Hessian n).
   */
  nhvp: number;
  /**
   * SciPy's name for `nhvp`. (SciPy counts `hessp` calls for Hessian-free methods, as here,
   * but one per Hessian matrix for `hess` methods such as its `trust-exact`.)
   */
  nhev: number;
  /**
   * True when `status` is 0: ‖∇f(x)‖ < `gtol` and no clearly negative curvature at x (every
   * built-in method checks: a factorisation of the Hessian it has, or Lanczos steps on
   * Hessian-vector products) — a local minimum to the method's tolerance. Each method's
   * documentation says what it checks.
   */
  converged: boolean;
  /** SciPy's name for `converged`. */
  success: boolean;
  /**
   * Why it stopped, as a number: 0 converged; 1 `maxIter` reached; 2 no further progress
   * possible (f at its rounding floor, line search or trust region stalled, model predicts
   * no decrease); 3 f or ∇f not finite; 4 a stationary point with negative curvature (a
   * saddle, not a minimum); 99 stopped by `onIteration` (SciPy's code for a callback stop).
   */
  status: number;
  /** Why it stopped, in words (starts with "converged" exactly when `converged`). */
  message: string;
  /** `"ipm"`: the largest violation of a constraint or bound at `x` (∞-norm). */
  constraintViolation?: number;
  /** `"ipm"`: the multipliers at `x` (the caller owns their tensors). */
  multipliers?: Multipliers;
  /** `"ipm"`: the largest |constraint or bound distance × its multiplier| at `x`. */
  complementarity?: number;
  /**
   * `"ipm"`: the KKT residual of the problem as posed, unscaled: max(‖∇L‖∞ (with the slacks'
   * stationarity), `constraintViolation`, `complementarity`). The last `onIteration` report
   * carries the same number, unless feasibility restoration failed (the point returned is then
   * measured anew).
   */
  kktResidual?: number;
  /**
   * `"ipm"`: the KKT error that `gtol` is tested against, IPOPT's scaled optimality error E₀
   * (Wächter & Biegler 2006, eq. 5): max(‖∇L‖∞ / s_d, primal infeasibility, largest slack ×
   * multiplier product / s_c), where s_d, s_c ≥ 1 are the multipliers' mean size over 100
   * (1 while they average at most 100). It is ≤ `gtol` when the message is "converged: KKT
   * error below gtol" (within 100 `gtol` for an acceptable level); `kktResidual` can then
   * exceed `gtol` by as much as the multipliers exceed 100.
   */
  kktError?: number;
}

/**
 * What a method returns; `minimize` adds the counters (a method that evaluates through its
 * own machinery may return them itself), the SciPy aliases and `converged` (status 0). A
 * method that returns no `jac` gets one computed (and counted) by `minimize`.
 */
export type MethodResult =
  & Pick<MinimizeResult, "x" | "fun" | "gradNorm" | "iterations" | "status" | "message">
  & Partial<
    Pick<
      MinimizeResult,
      | "jac"
      | "nfev"
      | "ngev"
      | "nhvp"
      | "constraintViolation"
      | "multipliers"
      | "complementarity"
      | "kktResidual"
      | "kktError"
    >
  >;

/** The objective as a method sees it: counted evaluations and the iteration report. */
export interface MinimizeProblem {
  /** The user's objective. */
  readonly f: (x: Tensor) => Tensor;
  /** Whether the method may replay its passes with `jit` (f is then taken to be pure). */
  readonly compiled?: boolean;
  /** Objective evaluations so far. */
  readonly nfev: number;
  /** Gradient evaluations so far. */
  readonly ngev: number;
  /** Hessian-vector products so far. */
  readonly nhvp: number;
  /** `f(x)` (counted). */
  value(x: Tensor): Tensor;
  /** `[f(x), ∇f(x)]` from one reverse pass (counted). */
  valueAndGrad(x: Tensor): [Tensor, Tensor];
  /** `H v`, or K products for `v` of shape `[K, ...x.shape]` (counted). */
  hvp(x: Tensor, v: Tensor): Tensor;
  /** `[f(x), ∇f(x), H V]` for `V` of shape `[K, ...x.shape]`, from one forward-over-reverse pass (counted). */
  valueGradHvp(x: Tensor, v: Tensor): [Tensor, Tensor, Tensor];
  /** The band of the Hessian from batched comb-probe products (counted: one HVP per probe). */
  bandedHessian(x: Tensor, opts: BandedHessianOptions): BandedMatrix;
  /** The sparse Hessian from one batched pass over a colouring (counted: one HVP per colour). */
  sparseHessian(x: Tensor, opts: SparseHessianOptions): SparseMatrix;
  /**
   * The Hessian's detected sparsity pattern at x's shape (`hessianSparsity`), kept for later
   * solves by what f computes, so a closure whose couplings changed gets its new pattern.
   */
  hessianSparsity(x: Tensor): SparsityPattern;
  /** Passes an iteration to `onIteration`; resolves to false when the user asked to stop. */
  report(info: Omit<IterationInfo, "nfev" | "ngev" | "nhvp">): Promise<boolean>;
}

/**
 * An optimiser for `minimize`: given the counted problem, a starting point (which it must
 * not dispose) and the options, it returns the final point and why it stopped.
 */
export type MinimizeMethod = (
  problem: MinimizeProblem,
  x0: Tensor,
  options: MinimizeOptions,
) => Promise<MethodResult>;
