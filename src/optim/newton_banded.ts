/**
 * Newton's method with banded Hessians: each step takes the Hessian's band from 2b+1
 * batched comb-probe products (`bandedHessian`), solves H p = −g with the banded Cholesky
 * solver in O(n b²), and searches along p; τI where H is not positive definite and
 * trust-region steps on the same band where the line search stalls (see newton_loop.ts).
 */
import type { Tensor } from "../tensor.ts";
import { abs, neg } from "../ops/elementwise.ts";
import { max } from "../ops/reduce.ts";
import { reshape, slice } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import { type BandedMatrix, checkBandwidth, patternBandwidth } from "../curvature/banded.ts";
import { takeRows } from "../curvature/sparse.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import { newtonLoop, type NewtonSystem } from "./newton_loop.ts";
import { BandModel } from "./band_model.ts";
import { bandSecondOrder } from "./trust_exact.ts";

/**
 * @internal The Newton system of a band in lower storage (it takes ownership of `h`). With
 * `perm` (i32 tensors: new position k holds old index perm[k]; `inverse` undoes it), the
 * band is of the permuted matrix: g is permuted in and p permuted back, so the step is in
 * the caller's order. Without one, the band is also the system's `band` (trust-region
 * steps and the second-order check).
 */
export function bandedSystem(
  h: BandedMatrix,
  shape: readonly number[],
  perm: { perm: Tensor; inverse: Tensor } | null = null,
): NewtonSystem {
  const n = h.n;
  const model = new BandModel(h);
  return {
    solve: (g, tau) =>
      perm
        ? tidy(() => {
          const p = model.solve(tau, takeRows(neg(reshape(g, [n])), perm.perm));
          return reshape(takeRows(p, perm.inverse), shape);
        })
        : model.descent(tau, g),
    diagMax: () => tidy(() => max(abs(slice(h.data, [0], [1])))),
    band: perm ? undefined : model,
    // definiteness does not depend on the order of the variables; the null direction is
    // permuted back into the caller's
    secondOrder: async () => {
      const v = await bandSecondOrder(model, h.data);
      if (typeof v === "string" || !perm) return v;
      const z = tidy(() => takeRows(v.z, perm.inverse));
      v.z.dispose();
      return { ...v, z };
    },
    dispose: () => model.dispose(),
  };
}

/**
 * `minimize(f, x0, { method: "newton-banded", bandwidth })`: Newton steps from the banded
 * Hessian (see `bandedHessian`) and the banded Cholesky solver, with τI added while the
 * band is not positive definite (τ doubling from a small start or from an eighth of the
 * previous iteration's shift; τ = 0 is always tried first, so steps near the optimum are
 * pure Newton), a line search with the round-off allowance and one cubic extrapolation,
 * and trust-region steps on the same band where the line search stalls, so it does not
 * stall where plain line-search Newton does (how it stops and what `converged` means:
 * see `newtonLoop`). Options: `bandwidth` (default: detected from the Hessian's sparsity
 * pattern, kept by f's record: `MinimizeProblem.hessianSparsity`), `bandMethod`, `gtol`, `maxIter` (default 1000),
 * `c1`, `onIteration` (reports `stepSize`, `shift`, and `trustRadius` after a
 * trust-region step).
 */
export function newtonBanded(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "minimize (newton-banded)";
  const b = o.bandwidth === undefined
    ? patternBandwidth(m, prob.hessianSparsity(x0), x0.size)
    : checkBandwidth(m, o.bandwidth, x0.size);
  const method = o.bandMethod ?? "direct";
  return newtonLoop(
    "newton-banded",
    prob,
    x0,
    o,
    (x) => bandedSystem(prob.bandedHessian(x, { bandwidth: b, layout: "lower", method }), x.shape),
  );
}
