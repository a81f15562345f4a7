/**
 * K-FAC (Martens & Grosse 2015) for the dense layers of an {@linkcode mlp}: per layer, the
 * Fisher block of the layer's weights and bias is approximated by a Kronecker product
 * `A ⊗ G` of the second moment of the layer's (bias-augmented) inputs and the second moment
 * of the loss gradients with respect to the layer's pre-activations.
 */
import type { Tensor } from "../tensor.ts";
import type { Mlp } from "../nn/layers.ts";
import { activate, dense } from "../nn/layers.ts";
import { flattenParams, unflattenParams } from "../nn/params.ts";
import { grad } from "../ad/transforms.ts";
import { add, mul } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { solve } from "../ops/linalg.ts";
import { concat, mT, reshape, slice } from "../ops/movement.ts";
import { eye, ones, zeros } from "../ops/creation.ts";
import { tidy } from "../memory.ts";
import { fmtShape } from "../shape.ts";

/** The two Kronecker factors of one dense layer (see {@linkcode kfacFactors}). */
export interface KfacFactors {
  /** `A = (1/N) Σₙ āₙ āₙᵀ`, `[in + 1, in + 1]`: āₙ is the layer's input for sample n with a 1 appended (the bias). */
  A: Tensor;
  /** `G = (1/N) Σₙ gₙ gₙᵀ`, `[out, out]`: gₙ = ∂ℓₙ/∂sₙ, the gradient of sample n's loss with respect to the layer's pre-activations sₙ. */
  G: Tensor;
}

/**
 * The K-FAC factors of every layer of `net` at `params` on a batch `inputs` `[N, in]`.
 *
 * Pinned convention: the **empirical** Fisher. `G` is built from the gradients of the loss
 * at the given targets (closed over by `loss`), not from targets sampled from the model's
 * predictive distribution; so the factors are deterministic, and `A ⊗ G` approximates the
 * empirical Fisher `(1/N) Σₙ ∇ℓₙ ∇ℓₙᵀ` of each layer's block. `loss` must be the **mean**
 * over the N rows of per-sample losses ℓₙ (as `mseLoss` and `softmaxCrossEntropy` are): then
 * `gₙ = N · ∂loss/∂sₙ`, and the per-sample gradients come from one reverse pass.
 *
 * @example
 * ```ts
 * import { kfacFactors, mlp, mseLoss, type Tensor, tensor } from "@curvature/curvature";
 * const net = mlp([2, 3, 1], "tanh", { seed: 0, dtype: "f64" });
 * const X = tensor([[0, 1], [1, 0], [1, 1]], { dtype: "f64" });
 * const Y = tensor([[1], [0], [1]], { dtype: "f64" });
 * const fs = kfacFactors(net, net.params, X, (out: Tensor) => mseLoss(out, Y));
 * console.log(fs.map((f) => [f.A.shape, f.G.shape])); // [[[3, 3], [3, 3]], [[4, 4], [1, 1]]]
 * ```
 */
export function kfacFactors(
  net: Mlp,
  params: Tensor,
  inputs: Tensor,
  loss: (outputs: Tensor) => Tensor,
): KfacFactors[] {
  if (inputs.rank !== 2 || inputs.shape[1] !== net.sizes[0]) {
    throw new RangeError(
      `kfacFactors: inputs must be [N, ${net.sizes[0]}] for this network, got ${
        fmtShape(inputs.shape)
      }`,
    );
  }
  const n = inputs.shape[0];
  const opts = { dtype: params.dtype, device: params.device };
  return tidy(() => {
    const layers = net.layers(params);
    const last = layers.length - 1;
    // Layer inputs (no derivatives needed), each with a column of ones for the bias.
    const acts: Tensor[] = [];
    let h = inputs;
    layers.forEach(({ w, b }, l) => {
      acts.push(concat([h, ones([n, 1], opts)], 1));
      h = dense(h, w, b);
      if (l < last) h = activate(h, net.activation);
    });
    // Pre-activation gradients: differentiate with respect to zero offsets added to each sₗ.
    const forward = (...offsets: Tensor[]) => {
      let a = inputs;
      layers.forEach(({ w, b }, l) => {
        a = add(dense(a, w, b), offsets[l]);
        if (l < last) a = activate(a, net.activation);
      });
      return loss(a);
    };
    const offsets = layers.map(({ b }) => zeros([n, b.shape[0]], opts));
    const argnums = layers.map((_, l) => l);
    const sGrads = grad(forward, { argnums })(...offsets) as Tensor[];
    return layers.map((_, l) => ({
      A: mul(matmul(mT(acts[l]), acts[l]), 1 / n),
      G: mul(matmul(mT(sGrads[l]), sGrads[l]), n), // (1/N) Σ (N sₙ)(N sₙ)ᵀ
    }));
  });
}

/**
 * Applies the damped K-FAC inverse to a flat gradient of `net`'s parameters: for each layer,
 * with `Ḡ = [∇W; ∇bᵀ]` (`[in + 1, out]`, the bias gradient as the last row),
 * `Ḡ ↦ (A + √λ I)⁻¹ Ḡ (G + √λ I)⁻¹`, which is `((A + √λ I) ⊗ (G + √λ I))⁻¹` applied to the
 * layer's slice of the flat vector (row-major `W` then `b` is exactly row-major `Ḡ`). This is
 * the factored Tikhonov damping of Martens & Grosse (2015, §6.3) with π = 1; `damping` is λ.
 *
 * @example
 * ```ts
 * import { grad, kfacFactors, kfacPrecondition, mlp, mseLoss, type Tensor, tensor } from "@curvature/curvature";
 * const net = mlp([2, 3, 1], "tanh", { seed: 0, dtype: "f64" });
 * const X = tensor([[0, 1], [1, 0], [1, 1]], { dtype: "f64" });
 * const Y = tensor([[1], [0], [1]], { dtype: "f64" });
 * const loss = (out: Tensor) => mseLoss(out, Y);
 * const g = grad((p: Tensor) => loss(net.apply(p, X)))(net.params);
 * const step = kfacPrecondition(net, kfacFactors(net, net.params, X, loss), g, 1e-3);
 * console.log(step.shape); // [13]
 * ```
 */
export function kfacPrecondition(
  net: Mlp,
  factors: readonly KfacFactors[],
  gradient: Tensor,
  damping: number,
): Tensor {
  if (!(damping >= 0) || !Number.isFinite(damping)) {
    throw new RangeError(`kfacPrecondition: damping must be a finite number ≥ 0, got ${damping}`);
  }
  if (factors.length !== net.sizes.length - 1) {
    throw new RangeError(
      `kfacPrecondition: expected ${net.sizes.length - 1} layers' factors, got ${factors.length}`,
    );
  }
  if (gradient.rank !== 1 || gradient.size !== net.numParams) {
    throw new RangeError(
      `kfacPrecondition: the gradient must be a flat vector of ${net.numParams} entries, got ${
        fmtShape(gradient.shape)
      }`,
    );
  }
  const s = Math.sqrt(damping);
  const opts = { dtype: gradient.dtype, device: gradient.device };
  return tidy(() => {
    const parts = unflattenParams(gradient, net.shapes);
    const out: Tensor[] = [];
    factors.forEach(({ A, G }, l) => {
      const [gw, gb] = [parts[2 * l], parts[2 * l + 1]];
      const [nin, nout] = gw.shape;
      const gbar = concat([gw, reshape(gb, [1, nout])], 0);
      const left = solve(add(A, mul(eye(nin + 1, nin + 1, opts), s)), gbar); // (A + √λI)⁻¹ Ḡ
      const both = mT(solve(add(G, mul(eye(nout, nout, opts), s)), mT(left))); // … (G + √λI)⁻¹ (G symmetric)
      out.push(slice(both, [0], [nin]), slice(both, [nin], [nin + 1]));
    });
    return flattenParams(out);
  });
}
