/**
 * The first-order baselines of `minimize`: gradient descent and Adam (Kingma & Ba 2015),
 * and the iteration loop they share with AdaHessian.
 */
import type { Tensor } from "../tensor.ts";
import { add, div, mul, sqrt, square, sub } from "../ops/elementwise.ts";
import { zeros } from "../ops/creation.ts";
import { tidy } from "../memory.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import {
  disposeAll,
  epsOf,
  loopOpts,
  norm,
  numOpt,
  readScalars,
  type Stop,
  stopReason,
  STOPS,
} from "./objective.ts";
import { checkStationary } from "./curvature_check.ts";

/** @internal One optimiser of the shared loop. */
export interface Loop {
  /** `[f, ∇f, extra]` at x for iteration t (1-based); `extra` is what `step` needs beyond the gradient. */
  evaluate(x: Tensor, t: number): [Tensor, Tensor, Tensor | null];
  /** The next point and the new state tensors, from x, the gradient, `extra` and t. */
  step(x: Tensor, g: Tensor, extra: Tensor | null, t: number): Tensor;
  /** Frees the state. */
  dispose(): void;
}

/**
 * @internal The loop shared by the first-order methods and AdaHessian: one read-back (f, ‖g‖,
 * ‖x‖ and how far the last step moved x) per iteration. It stops with `converged: true` when
 * ‖∇f‖ < `gtol` and 16 Lanczos steps on Hessian-vector products find no clearly negative
 * curvature (a saddle is stepped off along it, or reported with status 4); at `maxIter`;
 * when f or ∇f is not finite; and when a step leaves x unchanged to rounding (‖Δx‖ ≤
 * ε ‖x‖: the learning rate is below the resolution of x).
 */
export async function run(
  name: string,
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
  loop: Loop,
): Promise<MethodResult> {
  let x: Tensor | null = null;
  let k = 0, f = NaN, gnorm = NaN;
  let stopped: Stop | null = null;
  let g: Tensor | null = null;
  let moved: Tensor | null = null;
  try {
    const { gtol, maxIter } = loopOpts(name, o);
    const eps = epsOf(x0.dtype);
    x = tidy(() => add(x0, 0));
    let t = 1; // the step counter the optimiser's state sees
    for (;;) {
      const [fT, g1, extra] = loop.evaluate(x, t);
      g = g1;
      const gn = norm(g), xn = norm(x);
      const dx = moved ?? xn;
      let xnorm: number, step: number;
      [f, gnorm, xnorm, step] = await readScalars(fT, gn, xn, dx);
      disposeAll(fT, gn, xn, moved);
      moved = null;
      if (!(await prob.report({ iteration: k, x, fun: f, gradNorm: gnorm }))) {
        stopped = STOPS.callback;
      } else {
        stopped = stopReason(f, gnorm, k, gtol, maxIter);
        if (!stopped && k > 0 && step <= eps * xnorm) {
          stopped = STOPS.noProgress("the step no longer changes x (lr below its rounding)");
        }
      }
      if (stopped?.status === 0) {
        stopped = null;
        const c = await checkStationary(prob, x, f, g, xnorm);
        if ("status" in c) stopped = c;
        else {
          disposeAll(x, g, c.g, extra);
          x = c.x;
          k++;
          continue;
        }
      }
      if (stopped) {
        extra?.dispose();
        break;
      }
      const next = loop.step(x, g, extra, t);
      const prev = x;
      moved = tidy(() => norm(sub(next, prev)));
      disposeAll(x, g, extra);
      g = null;
      x = next;
      k++;
      t++;
    }
    return { x, fun: f, gradNorm: gnorm, iterations: k, ...stopped!, jac: g! };
  } catch (e) {
    disposeAll(x, g, moved);
    throw e;
  } finally {
    loop.dispose();
  }
}

/**
 * `minimize(f, x0, { method: "gradient-descent", lr })`: `x ← x − lr ∇f(x)` (default lr
 * 0.01). How it stops and what `converged` means: see `run` (‖∇f‖ < `gtol` and no clearly
 * negative curvature by 16 Lanczos steps; `maxIter`; not finite; a step that leaves x
 * unchanged to rounding).
 */
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
 * defaults lr = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8. How it stops and what `converged`
 * means: as `"gradient-descent"` (see `run`).
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
