/**
 * Newton's method with banded Hessians: each step takes the Hessian's band from 2b+1
 * batched comb-probe products (`bandedHessian`), solves H p = −g with the banded Cholesky
 * solver in O(n b²), and backtracks along p (Armijo with a round-off allowance). Where H
 * is not positive definite, τI is added and the factorisation retried with τ doubling
 * (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 3.3; see newton_loop.ts).
 */
import type { Tensor } from "../tensor.ts";
import { abs, add, neg } from "../ops/elementwise.ts";
import { concat, gather, reshape, slice } from "../ops/movement.ts";
import { max } from "../ops/reduce.ts";
import { tidy } from "../memory.ts";
import { type BandedMatrix, checkBandwidth, detectedBandwidth } from "../curvature/banded.ts";
import { solveBanded } from "../linalg/banded.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import { newtonLoop, type NewtonSystem } from "./newton_loop.ts";

/** H + τI for a band in lower storage (row 0 is the diagonal). */
function shifted(h: BandedMatrix, tau: number): Tensor {
  return tidy(() => {
    const d = h.data;
    if (tau === 0) return add(d, 0);
    const diag = add(slice(d, [0], [1]), tau);
    return h.bandwidth === 0 ? diag : concat([diag, slice(d, [1], [h.bandwidth + 1])], 0);
  });
}

/**
 * @internal The Newton system of a band in lower storage (it takes ownership of `h`). With
 * `perm` (i32 tensors: new position k holds old index perm[k]; `inverse` undoes it), the
 * band is of the permuted matrix: g is permuted in and p permuted back, so the step is in
 * the caller's order.
 */
export function bandedSystem(
  h: BandedMatrix,
  shape: readonly number[],
  perm: { perm: Tensor; inverse: Tensor } | null = null,
): NewtonSystem {
  const n = h.n;
  return {
    solve: (g, tau) =>
      tidy(() => {
        const rhs = neg(reshape(g, [n]));
        const p = solveBanded(shifted(h, tau), perm ? gather(rhs, perm.perm, 0) : rhs, {
          lower: true,
        });
        return reshape(perm ? gather(p, perm.inverse, 0) : p, shape);
      }),
    diagMax: () => tidy(() => max(abs(slice(h.data, [0], [1])))),
    dispose: () => h.dispose(),
  };
}

/**
 * `minimize(f, x0, { method: "newton-banded", bandwidth })`: Newton steps from the banded
 * Hessian (see `bandedHessian`) and the banded Cholesky solver, with τI added while the
 * band is not positive definite (τ doubling from a small start or from an eighth of the
 * previous iteration's shift; τ = 0 is always tried first, so steps near the optimum are
 * pure Newton) and Armijo backtracking that accepts `f(x + t p) ≤ f + c₁ t gᵀp + 10 ε |f|`
 * (the allowance keeps quadratic convergence near the optimum, where the predicted
 * decrease falls below the rounding of f). Options: `bandwidth` (default: detected from
 * the Hessian's sparsity pattern, once per function and shape), `bandMethod`, `gtol`,
 * `maxIter`, `c1`, `onIteration` (reports `stepSize` and `shift`).
 */
export function newtonBanded(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "minimize (newton-banded)";
  const b = o.bandwidth === undefined
    ? detectedBandwidth(m, prob.f, x0)
    : checkBandwidth(m, o.bandwidth, x0.size);
  const method = o.bandMethod ?? "direct";
  return newtonLoop("newton-banded", prob, x0, o, (x) =>
    bandedSystem(
      prob.bandedHessian(x, { bandwidth: b, layout: "lower", method }),
      x.shape,
    ));
}
