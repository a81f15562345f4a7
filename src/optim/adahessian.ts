/**
 * AdaHessian (Yao, Gholami, Shen, Mustafa, Keutzer, Mahoney: "ADAHESSIAN: An Adaptive
 * Second Order Optimizer for Machine Learning", AAAI 2021).
 */
import type { Tensor } from "../tensor.ts";
import { abs, add, div, mul, pow, sqrt, square, sub } from "../ops/elementwise.ts";
import { rademacher, zeros } from "../ops/creation.ts";
import { mean } from "../ops/reduce.ts";
import { broadcastTo, concat, reshape, slice } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import { disposeAll, numOpt } from "./objective.ts";
import { run } from "./first_order.ts";

/** |d| averaged over consecutive blocks of `b` entries of the flattened tensor (a shorter last block keeps its own mean). */
function blockAbsMean(d: Tensor, b: number): Tensor {
  return tidy(() => {
    const a = abs(d);
    if (b === 1) return a;
    const n = a.size;
    const flat = reshape(a, [n]);
    const full = Math.floor(n / b) * b;
    const parts: Tensor[] = [];
    if (full > 0) {
      const blocks = reshape(slice(flat, [0], [full]), [full / b, b]);
      parts.push(reshape(broadcastTo(mean(blocks, 1, true), [full / b, b]), [full]));
    }
    if (full < n) parts.push(broadcastTo(reshape(mean(slice(flat, [full], [n])), [1]), [n - full]));
    return reshape(concat(parts, 0), d.shape);
  });
}

/**
 * `minimize(f, x0, { method: "adahessian" })`, with this formula pinned (Yao et al. 2021,
 * eqs. 9–11 and Alg. 1, as in the authors' reference implementation):
 *
 * ```text
 * D_t    = (1/K) Σₖ zₖ ⊙ (H zₖ)               zₖ Rademacher (K = samples, one batched pass)
 * D⁽ˢ⁾_t = block mean of |D_t| over `blockSize` consecutive entries   (spatial averaging)
 * m_t    = β₁ m_{t−1} + (1 − β₁) g_t
 * v_t    = β₂ v_{t−1} + (1 − β₂) D⁽ˢ⁾_t ⊙ D⁽ˢ⁾_t
 * x_{t+1} = x_t − η (m_t / (1 − β₁ᵗ)) / ((v_t / (1 − β₂ᵗ))^{k/2} + ε)
 * ```
 *
 * Defaults are the paper's: η = 0.15, β₁ = 0.9, β₂ = 0.999, k = 1, ε = 1e-4, one probe, no
 * spatial averaging. The gradient and the K products come from one forward-over-reverse
 * pass; the probes are drawn from the library's counter-based generator keyed by `seed` with
 * counter offset t, so a run is the same on every backend. How it stops and what
 * `converged` means: as `"gradient-descent"` (‖∇f‖ < `gtol` and no clearly negative
 * curvature by 16 Lanczos steps; `maxIter`; not finite; a step that leaves x unchanged).
 */
export function adahessian(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "adahessian";
  const lr = numOpt(m, "lr", o.lr, 0.15, (v) => v > 0, "> 0");
  const b1 = numOpt(m, "beta1", o.beta1, 0.9, (v) => v >= 0 && v < 1, "in [0, 1)");
  const b2 = numOpt(m, "beta2", o.beta2, 0.999, (v) => v >= 0 && v < 1, "in [0, 1)");
  const eps = numOpt(m, "eps", o.eps, 1e-4, (v) => v >= 0, "≥ 0");
  const k = numOpt(m, "hessianPower", o.hessianPower, 1, (v) => v >= 0 && v <= 1, "in [0, 1]");
  const block = numOpt(
    m,
    "blockSize",
    o.blockSize,
    1,
    (v) => Number.isSafeInteger(v) && v >= 1,
    "a positive integer",
  );
  const samples = numOpt(
    m,
    "samples",
    o.samples,
    1,
    (v) => Number.isSafeInteger(v) && v >= 1,
    "a positive integer",
  );
  const seed = numOpt(m, "seed", o.seed, 0, (v) => Number.isSafeInteger(v) && v >= 0, "≥ 0");
  const opts = { dtype: x0.dtype, device: x0.device };
  let mom = zeros(x0.shape, opts), vel = zeros(x0.shape, opts);
  return run(m, prob, x0, o, {
    evaluate: (x, t) => {
      const z = rademacher([samples, ...x.shape], { seed, offset: t - 1, ...opts });
      const [fx, g, hz] = prob.valueGradHvp(x, z);
      const d = tidy(() => mean(mul(z, hz), 0)); // Hutchinson: E[z ⊙ Hz] = diag H
      disposeAll(z, hz);
      return [fx, g, d];
    },
    step: (x, g, d, t) => {
      const [m1, v1, next] = tidy(() => {
        const ds = blockAbsMean(d!, block);
        const m1 = add(mul(mom, b1), mul(g, 1 - b1));
        const v1 = add(mul(vel, b2), mul(square(ds), 1 - b2));
        const mhat = div(m1, 1 - b1 ** t);
        const vhat = div(v1, 1 - b2 ** t);
        const denom = add(k === 1 ? sqrt(vhat) : pow(vhat, k / 2), eps);
        return [m1, v1, sub(x, mul(div(mhat, denom), lr))];
      });
      disposeAll(mom, vel);
      [mom, vel] = [m1, v1];
      return next;
    },
    dispose: () => disposeAll(mom, vel),
  });
}
