/**
 * `minimize`: one entry point over a table of optimisers. A method is a function from the
 * counted problem, the start and the options to a result; `registerMethod` adds one (a new
 * method file plus one entry in `METHODS`, or one call from user code).
 */
import { Tensor } from "../tensor.ts";
import { describeValue } from "../ops/common.ts";
import { fmtShape } from "../shape.ts";
import { Objective } from "./objective.ts";
import { ownedCall } from "../memory.ts";
import type { MinimizeMethod, MinimizeOptions, MinimizeResult } from "./types.ts";
import { checkOptions } from "../options.ts";

/** A method and the options it takes beyond {@linkcode COMMON} (null: any known option). */
interface MethodEntry {
  /** The implementation: a registered one, or a built-in one once `load` has run. */
  impl?: MinimizeMethod;
  /**
   * Loads a built-in method's modules on its first use, so that importing the library (or
   * calling one method) does not load, parse and evaluate the modules of all of them.
   */
  load?: () => Promise<MinimizeMethod>;
  options: readonly string[] | null;
  /** Whether its repeated passes are compiled with `jit` (deterministic methods; see `Objective`). */
  compiled?: boolean;
}

/** The options every method takes. */
const COMMON = ["method", "gtol", "maxIter", "onIteration"] as const;
const CG = ["maxCgIter", "cgCheckEvery"] as const;
const TRUST = ["initialTrustRadius", "maxTrustRadius", "eta"] as const;
const BAND = ["bandwidth", "bandMethod"] as const;
const MOMENTS = ["lr", "beta1", "beta2", "eps"] as const;

const METHODS = new Map<string, MethodEntry>([
  ["newton-cg", {
    load: async () => (await import("./newton_cg.ts")).newtonCg,
    compiled: true,
    options: [...CG, "c1"],
  }],
  ["trust-ncg", {
    load: async () => (await import("./trust_ncg.ts")).trustNcg,
    compiled: true,
    options: [...CG, ...TRUST],
  }],
  [
    "trust-exact",
    {
      load: async () => (await import("./trust_exact.ts")).trustExact,
      compiled: true,
      options: [...BAND, ...TRUST, "searchRejected", "nonmonotone"],
    },
  ],
  ["newton-banded", {
    load: async () => (await import("./newton_banded.ts")).newtonBanded,
    compiled: true,
    options: [...BAND, "c1"],
  }],
  ["newton-sparse", {
    load: async () => (await import("./newton_sparse.ts")).newtonSparse,
    compiled: true,
    options: ["pattern", "sparseSolver", "sparsePreconditioner", "maxCgIter", "c1"],
  }],
  [
    "adahessian",
    {
      load: async () => (await import("./adahessian.ts")).adahessian,
      options: [...MOMENTS, "hessianPower", "blockSize", "samples", "seed"],
    },
  ],
  ["gradient-descent", {
    load: async () => (await import("./first_order.ts")).gradientDescent,
    options: ["lr"],
  }],
  ["adam", { load: async () => (await import("./first_order.ts")).adam, options: MOMENTS }],
  ["ipm", {
    load: async () => (await import("./ipm/ipm.ts")).ipm,
    compiled: true,
    options: ["constraints", "bounds", "bandwidth", "muInit", "barrier"],
  }],
]);

/** Keys SciPy users pass that have no counterpart, with the advice to give. */
const SCIPY_HINTS: Readonly<Record<string, string>> = {
  tol: 'minimize has no "tol": use gtol (stop when the gradient norm falls below it)',
  options: "pass the method's options in this object itself, e.g. { method, gtol, maxIter }",
  jac: "derivatives come from automatic differentiation: there is no jac option",
  hess: "Hessians come from automatic differentiation: there is no hess option",
  hessp: "Hessian-vector products come from automatic differentiation: there is no hessp option",
  disp: "pass onIteration to print progress",
  initial_tr_radius: 'did you mean "initialTrustRadius"?',
  max_tr_radius: 'did you mean "maxTrustRadius"?',
};

/** Every option some method takes. */
function allOptions(): string[] {
  const all = new Set<string>(COMMON);
  for (const { options } of METHODS.values()) for (const k of options ?? []) all.add(k);
  return [...all];
}

/** Rejects keys the method does not take, naming the methods that do take them. */
function checkMethodOptions(method: string, entry: MethodEntry, options: object): void {
  const known = entry.options === null ? allOptions() : [...COMMON, ...entry.options];
  const hints: Record<string, string> = { ...SCIPY_HINTS };
  for (const key of allOptions()) {
    if (known.includes(key)) continue;
    const owners = [...METHODS].filter(([, e]) => e.options?.includes(key)).map(([n]) => n);
    hints[key] = `"${key}" is an option of ${owners.join(", ")}, not of "${method}"`;
  }
  checkOptions(`minimize (${method})`, options, known, hints);
}

/**
 * Adds (or replaces) a method of {@linkcode minimize} under `name`. The implementation gets
 * the counted problem (`valueAndGrad`, `hvp`, … and `report` for `onIteration`), the start
 * (which it must not dispose) and the options; it returns the point, its value and gradient
 * norm, the iterations and a `status` with its `message` (see `MinimizeResult.status`), and
 * optionally the gradient as `jac` (else `minimize` computes it). `minimize` adds the
 * counters, the SciPy aliases and `converged`. `opts.options` lists the option keys the
 * method takes beyond `method`, `gtol`, `maxIter`, `onIteration` (default: any key some
 * method takes).
 *
 * @example
 * ```ts
 * import { minimize, registerMethod, type Tensor, tensor } from "@curvature/curvature";
 * registerMethod("one-gradient-step", async (problem, x0) => {
 *   const [f, g] = problem.valueAndGrad(x0);
 *   const x = x0.sub(g.mul(0.25));
 *   const fun = await f.item();
 *   f.dispose();
 *   g.dispose();
 *   return { x, fun, gradNorm: NaN, iterations: 1, status: 1, message: "one step" };
 * });
 * const r = await minimize((x: Tensor) => x.square().sum(), tensor([2]), { method: "one-gradient-step" });
 * console.log(await r.x.toArray(), r.success, await r.jac.toArray()); // [1] false [2]
 * ```
 */
export function registerMethod(
  name: string,
  impl: MinimizeMethod,
  opts: { options?: readonly string[] } = {},
): void {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError("registerMethod: the name must be a non-empty string");
  }
  if (typeof impl !== "function") {
    throw new TypeError(`registerMethod: the implementation of "${name}" must be a function`);
  }
  checkOptions("registerMethod", opts, ["options"]);
  const options = opts.options;
  if (
    options !== undefined &&
    !(Array.isArray(options) && options.every((k) => typeof k === "string"))
  ) {
    throw new TypeError(`registerMethod: options must be an array of option names`);
  }
  METHODS.set(name, { impl, options: options ?? null });
}

/**
 * The names `minimize` accepts now (the built-in ones and any registered).
 *
 * @example
 * ```ts
 * import { minimizeMethods } from "@curvature/curvature";
 * console.log(minimizeMethods().includes("trust-ncg")); // true
 * ```
 */
export function minimizeMethods(): string[] {
  return [...METHODS.keys()];
}

/**
 * Minimises a scalar function of a tensor. Methods (each one's function documents how it
 * stops and what `converged` guarantees there):
 *
 * - `"trust-exact"` (SciPy's name): trust-region Newton with the subproblem solved exactly
 *   (Moré–Sorensen) by banded Cholesky factorisations of H + λI: the band from comb probes
 *   (`bandwidth`, detected unless given), or the dense Hessian (n ≤ 2000) when the pattern
 *   is too wide for a band. Negative curvature and the hard case handled; the most robust
 *   choice when the Hessian is banded or small.
 * - `"newton-banded"`: line-search Newton on the banded Hessian (`bandwidth`, detected from
 *   the Hessian's sparsity pattern unless given), τI added while it is not positive
 *   definite (N&W Alg. 3.3), trust-region steps on the same band where the line search
 *   stalls.
 * - `"newton-cg"`: line-search Newton-CG (N&W Alg. 7.1): truncated CG on Hessian-vector
 *   products, Armijo backtracking with a round-off allowance.
 * - `"trust-ncg"`: Steihaug–Toint CG in a trust region (N&W Alg. 7.2 and 4.1, SciPy's
 *   constants).
 * - `"adahessian"`: Yao et al. (2021), Hutchinson diagonal from Rademacher probes, spatial
 *   averaging, Hessian power, bias-corrected moments (the formula is in its docs).
 * - `"newton-sparse"`: Newton steps from the sparse Hessian (`sparseHessian`: a detected
 *   pattern, a star colouring, one batched HVP pass per iteration), solved by banded
 *   Cholesky after a reverse Cuthill–McKee reordering or by CG preconditioned by an
 *   incomplete Cholesky factor (CPU) or the diagonal (WebGPU), with
 *   the shift and line search of `"newton-banded"`; the iterates stay in the caller's order.
 * - `"ipm"`: a primal-dual interior-point method for `constraints: { eq, ineq }` and
 *   `bounds` (Wächter & Biegler 2006, IPOPT's algorithm; see the README's section on
 *   constrained problems); banded Newton systems on `bandwidth` (default: detected from the
 *   sparsity pattern), dense where no band pays.
 * - `"gradient-descent"` and `"adam"`: first-order baselines.
 *
 * Every method stops with `converged: true` (`status` 0) only when ‖∇f‖ < `gtol` and no
 * clearly negative curvature is found at x (a factorisation of the Hessian the method has,
 * or 16 Lanczos steps on Hessian-vector products): a saddle is
 * stepped off along its negative curvature, or reported with status 4 and `converged:
 * false`. Where the Hessian is singular to that tolerance, f is probed along its null
 * direction before converging (a fall beyond the gradient's first-order share continues
 * the run), and the message says "singular": the second-order necessary conditions hold,
 * a strict minimum is not verified. The other stops: `maxIter` (1), no further progress — f at its rounding floor, a
 * stalled search — (2), f or ∇f not finite (3), `onIteration` returning false (99).
 * Scalars are read back only where the algorithm branches on them: about once per
 * iteration (plus the inner CG's termination checks). Options are checked: a key the
 * method does not take is an error naming the right spelling or the methods that take it.
 * The Newton-type methods (all but the first-order ones and AdaHessian) replay the passes
 * they repeat (value and gradient, Hessian-vector products, the band, CG's bookkeeping)
 * with `jit`: f must be a pure function of x — host side effects in f happen at its first
 * evaluation only, and tensors it closes over must not change during the run. Those
 * programs last for one call when f is a plain function (a closure may see other values at
 * the next call: a reassigned target or weight is honoured). When f is a function `jit`
 * returned, they are kept with it, and a later `minimize` of the same f (re-solving one
 * problem from new starts, as model-predictive control does) replays them without tracing
 * f again — under jit's rule: values f closes over are fixed at its trace, so after
 * changing one, make a new `jit(f)`. `releaseCaches()` drops the kept programs.
 * The start is not modified or disposed; the result's `x` and `jac` belong to the caller.
 * The result carries SciPy's names too (`nit`, `success`, `status`, `jac`, `njev`, `nhev`).
 *
 * @example
 * ```ts
 * import { minimize, type Tensor, tensor } from "@curvature/curvature";
 * // Rosenbrock: minimum at (1, 1)
 * const rosen = (x: Tensor) => {
 *   const [a, b] = [x.slice([0], [1]), x.slice([1], [2])];
 *   return b.sub(a.square()).square().mul(100).add(a.neg().add(1).square()).sum();
 * };
 * const r = await minimize(rosen, tensor([-1.2, 1], { dtype: "f64" }), { method: "trust-exact", gtol: 1e-10 });
 * console.log(r.success, r.nit, await r.x.toArray()); // true 21 [1, 1] (to ~1e-10)
 * r.x.dispose();
 * r.jac.dispose();
 * ```
 *
 * @example Constraints and bounds (`"ipm"`)
 * ```ts
 * import { minimize, type Tensor, tensor } from "@curvature/curvature";
 * // the point of the unit disc nearest (2, 1) with x₁ ≤ 0.25: (√(1 − 0.25²), 0.25)
 * const f64 = { dtype: "f64" } as const;
 * const c = tensor([2, 1], f64);
 * const r = await minimize((x: Tensor) => x.sub(c).square().sum(), tensor([0, 0], f64), {
 *   method: "ipm",
 *   constraints: { ineq: (x: Tensor) => x.square().sum().neg().add(1) }, // 1 − ‖x‖² ≥ 0
 *   bounds: { upper: tensor([Infinity, 0.25], f64) }, // x₁ ≤ 0.25, x₀ free
 * });
 * console.log(r.success, await r.x.toArray(), r.constraintViolation); // true [0.96825, 0.25] 0
 * // ∇f = λ ∇c + z_L − z_U: λ = 1.0656, z_U = (0, 0.9672)
 * console.log(await r.multipliers!.ineq.toArray(), await r.multipliers!.upper.toArray());
 * ```
 */
export async function minimize(
  f: (x: Tensor) => Tensor,
  x0: Tensor,
  options: MinimizeOptions,
): Promise<MinimizeResult> {
  if (typeof f !== "function") {
    throw new TypeError(`minimize: f must be a function, got ${describeValue(f)}`);
  }
  if (!(x0 instanceof Tensor)) {
    throw new TypeError(`minimize: x0 must be a Tensor, got ${describeValue(x0)}`);
  }
  if (x0.dtype === "i32") {
    throw new TypeError("minimize: x0 must be a floating-point tensor (f32 or f64), got i32");
  }
  x0._check("minimize");
  if (x0.size === 0) {
    throw new RangeError(
      `minimize: x0 is empty (shape ${fmtShape(x0.shape)}); nothing to minimize`,
    );
  }
  if (!options || typeof options !== "object") {
    throw new TypeError(
      'minimize: options with a method are required, e.g. { method: "newton-cg" }',
    );
  }
  const entry = METHODS.get(options.method);
  if (!entry) {
    throw new RangeError(
      `minimize: unknown method ${JSON.stringify(options.method)}; known: ${
        [...METHODS.keys()].join(", ")
      }`,
    );
  }
  checkMethodOptions(options.method, entry, options);
  if (options.onIteration !== undefined && typeof options.onIteration !== "function") {
    throw new TypeError("minimize: onIteration must be a function");
  }
  const problem = new Objective(f, options.onIteration, entry.compiled);
  // a failure (f throws, a kernel fails) frees whatever the method had made
  const r = await ownedCall((own) => {
    const x = own(x0);
    if (entry.impl) return entry.impl(problem, x, options);
    // a built-in method's first call: its modules load once the call's owner holds x
    return entry.load!().then((impl) => (entry.impl = impl)(problem, x, options));
  });
  const drop = () => {
    for (const t of [r?.x, r?.jac, ...Object.values(r?.multipliers ?? {})]) t?.dispose?.();
  };
  if (!Number.isInteger(r?.status)) {
    drop();
    throw new TypeError(
      `minimize: method "${options.method}" returned no integer status (0 means converged)`,
    );
  }
  if (!r.jac) {
    try {
      const [fx, g] = problem.valueAndGrad(r.x);
      fx.dispose();
      r.jac = g;
    } catch (e) {
      drop();
      throw e;
    }
  }
  const jac = r.jac;
  const converged = r.status === 0;
  const [nfev, ngev, nhvp] = [
    r.nfev ?? problem.nfev,
    r.ngev ?? problem.ngev,
    r.nhvp ?? problem.nhvp,
  ];
  return {
    ...r,
    jac,
    nit: r.iterations,
    nfev,
    ngev,
    njev: ngev,
    nhvp,
    nhev: nhvp,
    converged,
    success: converged,
  };
}
