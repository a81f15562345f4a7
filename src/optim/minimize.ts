/**
 * `minimize`: one entry point over a table of optimisers. A method is a function from the
 * counted problem, the start and the options to a result; `registerMethod` adds one (a new
 * method file plus one entry in `METHODS`, or one call from user code).
 */
import { Tensor } from "../tensor.ts";
import { describeValue } from "../ops/common.ts";
import { Objective } from "./objective.ts";
import { ownedCall } from "../memory.ts";
import { newtonCg } from "./newton_cg.ts";
import { trustNcg } from "./trust_ncg.ts";
import { adahessian } from "./adahessian.ts";
import { adam, gradientDescent } from "./first_order.ts";
import { newtonBanded } from "./newton_banded.ts";
import { newtonSparse } from "./newton_sparse.ts";
import { ipm } from "./ipm/ipm.ts";
import type { MinimizeMethod, MinimizeOptions, MinimizeResult } from "./types.ts";

const METHODS = new Map<string, MinimizeMethod>([
  ["newton-cg", newtonCg],
  ["trust-ncg", trustNcg],
  ["adahessian", adahessian],
  ["gradient-descent", gradientDescent],
  ["adam", adam],
  ["newton-banded", newtonBanded],
  ["newton-sparse", newtonSparse],
  ["ipm", ipm],
]);

/**
 * Adds (or replaces) a method of {@linkcode minimize} under `name`. The implementation gets
 * the counted problem (`valueAndGrad`, `hvp`, … and `report` for `onIteration`), the start
 * (which it must not dispose) and the options; `minimize` adds nfev / ngev / nhvp.
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
 *   return { x, fun, gradNorm: NaN, iterations: 1, converged: false, message: "one step" };
 * });
 * const r = await minimize((x: Tensor) => x.square().sum(), tensor([2]), { method: "one-gradient-step" });
 * console.log(await r.x.toArray(), r.ngev); // [1] 1
 * ```
 */
export function registerMethod(name: string, impl: MinimizeMethod): void {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError("registerMethod: the name must be a non-empty string");
  }
  if (typeof impl !== "function") {
    throw new TypeError(`registerMethod: the implementation of "${name}" must be a function`);
  }
  METHODS.set(name, impl);
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
 * Minimises a scalar function of a tensor. Methods:
 *
 * - `"newton-cg"`: line-search Newton-CG (Nocedal & Wright Alg. 7.1): truncated CG on
 *   Hessian-vector products, SciPy's forcing `min(0.5, √‖g‖)‖g‖`, Armijo backtracking with
 *   a round-off allowance of 10 ε |f|.
 * - `"trust-ncg"`: Steihaug–Toint CG in a trust region (N&W Alg. 7.2 and 4.1, SciPy's
 *   defaults: radius 1, at most 1000, η = 0.15).
 * - `"adahessian"`: Yao et al. (2021), Hutchinson diagonal from Rademacher probes, spatial
 *   averaging, Hessian power, bias-corrected moments (the formula is in the option docs).
 * - `"newton-banded"`: Newton steps from the banded Hessian (`bandedHessian`, comb probes)
 *   and the banded Cholesky solver, τI added while the band is not positive definite
 *   (N&W Alg. 3.3), Armijo backtracking with the round-off allowance; `bandwidth` is
 *   detected from the Hessian's sparsity pattern unless given.
 * - `"newton-sparse"`: Newton steps from the sparse Hessian (`sparseHessian`: a detected
 *   pattern, a star colouring, one batched HVP pass per iteration), solved by banded
 *   Cholesky after a reverse Cuthill–McKee reordering or by Jacobi-preconditioned CG, with
 *   the shift and line search of `"newton-banded"`; the iterates stay in the caller's order.
 * - `"ipm"`: a primal-dual interior-point method for `constraints: { eq, ineq }` and
 *   `bounds` (Wächter & Biegler 2006, IPOPT's algorithm; see the README's section on
 *   constrained problems); banded Newton systems with `bandwidth`, dense without.
 * - `"gradient-descent"` and `"adam"`: first-order baselines.
 *
 * Each stops when ‖∇f‖ < `gtol` (converged), after `maxIter` iterations, or when asked by
 * `onIteration`. Scalars are read back only where the algorithm branches on them: about
 * once per iteration (plus the inner CG's termination checks, every `cgCheckEvery`
 * iterations). The start is not modified or disposed; the result's `x` belongs to the
 * caller.
 *
 * @example
 * ```ts
 * import { minimize, type Tensor, tensor } from "@curvature/curvature";
 * // Rosenbrock: minimum at (1, 1)
 * const rosen = (x: Tensor) => {
 *   const [a, b] = [x.slice([0], [1]), x.slice([1], [2])];
 *   return b.sub(a.square()).square().mul(100).add(a.neg().add(1).square()).sum();
 * };
 * const r = await minimize(rosen, tensor([-1.2, 1], { dtype: "f64" }), { method: "trust-ncg", gtol: 1e-10 });
 * console.log(r.converged, await r.x.toArray()); // true [1, 1] (to ~1e-10)
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
  if (!options || typeof options !== "object") {
    throw new TypeError(
      'minimize: options with a method are required, e.g. { method: "newton-cg" }',
    );
  }
  const impl = METHODS.get(options.method);
  if (!impl) {
    throw new RangeError(
      `minimize: unknown method ${JSON.stringify(options.method)}; known: ${
        [...METHODS.keys()].join(", ")
      }`,
    );
  }
  if (options.onIteration !== undefined && typeof options.onIteration !== "function") {
    throw new TypeError("minimize: onIteration must be a function");
  }
  const problem = new Objective(f, options.onIteration);
  try {
    // a failure (f throws, a kernel fails) frees whatever the method had made
    const r = await ownedCall((own) => impl(problem, own(x0), options));
    return { nfev: problem.nfev, ngev: problem.ngev, nhvp: problem.nhvp, ...r };
  } finally {
    problem.dispose();
  }
}
