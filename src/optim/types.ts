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
  /** Line-search step length of this iteration (`"newton-cg"`, `"newton-banded"`, `"newton-sparse"`). */
  stepSize?: number;
  /** The τ added to the Hessian's diagonal to make it positive definite (`"newton-banded"`, `"newton-sparse"`). */
  shift?: number;
  /** Trust-region radius after this iteration's update (`"trust-ncg"`). */
  trustRadius?: number;
  /** Inner CG iterations of this iteration (`"newton-cg"`, `"trust-ncg"`, `"newton-sparse"` with CG). */
  cgIterations?: number;
  /** `"ipm"`: the largest violation of a constraint or bound at `x` (∞-norm). */
  constraintViolation?: number;
  /** `"ipm"`: the largest product of a slack (or bound distance) and its multiplier. */
  complementarity?: number;
  /** `"ipm"`: the (scaled) KKT error max(dual infeasibility, violation, complementarity). */
  kktResidual?: number;
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
  | "newton-sparse"
  | "ipm"
  | (string & Record<never, never>);

/** Options of `minimize`. Each method reads the ones it documents and ignores the rest. */
export interface MinimizeOptions {
  /** The algorithm: `"newton-cg"`, `"trust-ncg"`, `"adahessian"`, `"gradient-descent"`, `"adam"`, or a registered one. */
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
   * after every n iterations. `"auto"`: first after as many iterations as the previous
   * solve took, then after gaps of 1, 2, 4, … Default: 1 on the CPU (a read costs
   * nothing there), `"auto"` on WebGPU. CG's scalars stay on the device and iterations
   * after termination are masked no-ops, so this changes the cost (read-backs against
   * wasted HVPs), never the iterates.
   */
  cgCheckEvery?: number | "auto";
  /** Newton-CG: the Armijo constant c₁ (default 1e-4). */
  c1?: number;
  /** trust-ncg: the first radius (default 1, as SciPy). */
  initialTrustRadius?: number;
  /** trust-ncg: the largest radius (default 1000, as SciPy). */
  maxTrustRadius?: number;
  /** trust-ncg: accept a step when actual ÷ predicted reduction exceeds this (default 0.15, as SciPy). */
  eta?: number;
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
  /** `"newton-banded"`: the Hessian's bandwidth (default: detected from its sparsity pattern). */
  bandwidth?: number;
  /**
   * `"newton-sparse"`: the Hessian's sparsity pattern (default: detected by
   * `hessianSparsity` once per function and shape).
   */
  pattern?: SparsityPattern;
  /**
   * `"newton-sparse"`: how H p = −g is solved: `"banded"` (banded Cholesky after a reverse
   * Cuthill–McKee reordering), `"cg"` (conjugate gradients with a Jacobi preconditioner on
   * the sparse matrix), or `"auto"` (default: banded while its O(n b²) work stays within
   * about 50 CG iterations', else CG).
   */
  sparseSolver?: "auto" | "banded" | "cg";
  /** `"newton-banded"`: how the band is recovered (default `"direct"`; see `bandedHessian`). */
  bandMethod?: "direct" | "substitution";
  /** `"ipm"`: constraints `eq(x) = 0` and `ineq(x) ≥ 0`, each a function returning a 1-D tensor. */
  constraints?: Constraints;
  /** `"ipm"`: bounds `lower ≤ x ≤ upper` (a number, or a tensor of x's shape; ±Infinity: none). */
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

/** Bounds of `minimize(…, { method: "ipm" })`: a number or a tensor of x's shape; ±Infinity means none. */
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

/** What `minimize` resolves to. */
export interface MinimizeResult {
  /** The final point (the caller owns it). */
  x: Tensor;
  /** The objective at `x`. */
  fun: number;
  /** The gradient's Euclidean norm at `x`. */
  gradNorm: number;
  /** Iterations taken (trust-ncg counts rejected steps too, as SciPy does). */
  iterations: number;
  /** Objective evaluations. */
  nfev: number;
  /** Gradient evaluations. */
  ngev: number;
  /** Hessian-vector products (a batch of K probes counts K). */
  nhvp: number;
  /** True when `gradNorm < gtol`. */
  converged: boolean;
  /** Why it stopped. */
  message: string;
  /** `"ipm"`: the largest violation of a constraint or bound at `x` (∞-norm). */
  constraintViolation?: number;
  /** `"ipm"`: the multipliers at `x` (the caller owns their tensors). */
  multipliers?: Multipliers;
  /** `"ipm"`: the largest |constraint or bound distance × its multiplier| at `x`. */
  complementarity?: number;
  /** `"ipm"`: the KKT residual max(‖∇L‖∞, violation, complementarity), unscaled. */
  kktResidual?: number;
}

/**
 * What a method returns; `minimize` adds the counters (a method that evaluates through
 * its own machinery may return them itself).
 */
export type MethodResult =
  & Omit<MinimizeResult, "nfev" | "ngev" | "nhvp">
  & Partial<Pick<MinimizeResult, "nfev" | "ngev" | "nhvp">>;

/** The objective as a method sees it: counted evaluations and the iteration report. */
export interface MinimizeProblem {
  /** The user's objective. */
  readonly f: (x: Tensor) => Tensor;
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
