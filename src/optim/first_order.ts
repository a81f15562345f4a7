/**
 * The first-order baselines of `minimize`: gradient descent and Adam (Kingma & Ba 2015),
 * and the iteration loop they share with AdaHessian.
 */
import type { Tensor } from "../tensor.ts";
import { add, div, mul, sqrt, square, sub } from "../ops/elementwise.ts";
import { zeros } from "../ops/creation.ts";
import { tidy } from "../memory.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import { disposeAll, norm, numOpt, readScalars } from "./objective.ts";

/** @internal One optimiser of the shared loop. */
export interface Loop {
  /** `[f, ∇f, extra]` at x for iteration t (1-based); `extra` is what `step` needs beyond the gradient. */
  evaluate(x: Tensor, t: number): [Tensor, Tensor, Tensor | null];
  /** The next point and the new state tensors, from x, the gradient, `extra` and t. */
  step(x: Tensor, g: Tensor, extra: Tensor | null, t: number): Tensor;
  /** Frees the state. */
  dispose(): void;
}

/** @internal The loop shared by the first-order methods and AdaHessian: one read-back (f, ‖g‖) per iteration. */
export async function run(
  name: string,
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
  loop: Loop,
): Promise<MethodResult> {
  let x: Tensor | null = null;
  let k = 0, f = NaN, gnorm = NaN;
  let message = "";
  try {
    const gtol = numOpt(name, "gtol", o.gtol, 1e-5, (v) => v >= 0, "a number ≥ 0");
    const maxIter = numOpt(
      name,
      "maxIter",
      o.maxIter,
      1000,
      (v) => Number.isSafeInteger(v) && v >= 0,
      "an integer ≥ 0",
    );
    x = tidy(() => add(x0, 0));
    for (;;) {
      const [fT, g, extra] = loop.evaluate(x, k + 1);
      const gn = norm(g);
      [f, gnorm] = await readScalars(fT, gn);
      disposeAll(fT, gn);
      if (!(await prob.report({ iteration: k, x, fun: f, gradNorm: gnorm }))) {
        message = "stopped by onIteration";
      } else if (gnorm < gtol) message = "converged: gradient norm below gtol";
      else if (!Number.isFinite(f) || !Number.isFinite(gnorm)) {
        message = `stopped: the objective or its gradient is not finite (f = ${f}, ‖g‖ = ${gnorm})`;
      } else if (k >= maxIter) message = "stopped: maximum iterations reached";
      if (message) {
        disposeAll(g, extra);
        break;
      }
      const next = loop.step(x, g, extra, k + 1);
      disposeAll(x, g, extra);
      x = next;
      k++;
    }
    return { x, fun: f, gradNorm: gnorm, iterations: k, converged: gnorm < gtol, message };
  } catch (e) {
    x?.dispose();
    throw e;
  } finally {
    loop.dispose();
  }
}

/** `minimize(f, x0, { method: "gradient-descent", lr })`: `x ← x − lr ∇f(x)` (default lr 0.01). */
export function gradientDescent(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const lr = numOpt("gradient-descent", "lr", o.lr, 0.01, (v) => v > 0, "> 0");
  return run("gradient-descent", prob, x0, o, {
    evaluate: (x) => [...prob.valueAndGrad(x), null],
    step: (x, g) => tidy(() => sub(x, mul(g, lr))),
    dispose: () => {},
  });
}

/**
 * `minimize(f, x0, { method: "adam" })` (Kingma & Ba 2015, Alg. 1):
 * `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `x ← x − lr (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`;
 * defaults lr = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
 */
export function adam(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "adam";
  const lr = numOpt(m, "lr", o.lr, 0.001, (v) => v > 0, "> 0");
  const b1 = numOpt(m, "beta1", o.beta1, 0.9, (v) => v >= 0 && v < 1, "in [0, 1)");
  const b2 = numOpt(m, "beta2", o.beta2, 0.999, (v) => v >= 0 && v < 1, "in [0, 1)");
  const eps = numOpt(m, "eps", o.eps, 1e-8, (v) => v >= 0, "≥ 0");
  const opts = { dtype: x0.dtype, device: x0.device };
  let mom = zeros(x0.shape, opts), vel = zeros(x0.shape, opts);
  return run(m, prob, x0, o, {
    evaluate: (x) => [...prob.valueAndGrad(x), null],
    step: (x, g, _extra, t) => {
      const [m1, v1, next] = tidy(() => {
        const m1 = add(mul(mom, b1), mul(g, 1 - b1));
        const v1 = add(mul(vel, b2), mul(square(g), 1 - b2));
        const denom = add(sqrt(div(v1, 1 - b2 ** t)), eps);
        return [m1, v1, sub(x, mul(div(div(m1, 1 - b1 ** t), denom), lr))];
      });
      disposeAll(mom, vel);
      [mom, vel] = [m1, v1];
      return next;
    },
    dispose: () => disposeAll(mom, vel),
  });
}
