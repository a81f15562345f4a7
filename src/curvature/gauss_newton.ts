/**
 * Gauss-Newton vector products `G v = Jᵀ H_L J v` for a model `(params, inputs) → outputs`
 * followed by a loss of the outputs: `J v` by forward mode (`jvp`), the loss's Hessian in
 * output space by `hvp` of the loss with respect to the outputs, and `Jᵀ u` by reverse
 * mode (`vjp`). No Jacobian is ever formed.
 */
import type { Tensor } from "../tensor.ts";
import { hvp, jvp, vjp } from "../ad/transforms.ts";
import { reshape, slice, stack } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import { fmtShape, shapesEqual } from "../shape.ts";

/**
 * The Gauss-Newton matrix (the generalised Gauss-Newton of Schraudolph 2002) times `v`:
 * `G v = Jᵀ H_L J v`, with `J` the Jacobian of `model(·, inputs)` at `params` and `H_L` the
 * Hessian of `loss` at the model's outputs. It drops the term of the full Hessian that
 * holds the model's second derivatives, so for a loss that is convex in the outputs
 * (mean squared error, softmax cross-entropy) `G` is positive semi-definite; for a model
 * linear in its parameters it equals the Hessian of `loss(model(params, inputs))`.
 *
 * `v` has the shape of `params`, or `[K, ...params.shape]` for K products (the forward
 * products `J v` and `H_L J v` are then batched; the pullback runs once per probe).
 *
 * @example
 * ```ts
 * import { gaussNewtonVp, mseLoss, type Tensor, tensor } from "@curvature/curvature";
 * const X = tensor([[1, 2], [3, 4], [5, 6]], { dtype: "f64" });
 * const y = tensor([[1], [0], [1]], { dtype: "f64" });
 * const model = (w: Tensor, x: Tensor) => x.matmul(w.reshape([2, 1]));
 * const loss = (out: Tensor) => mseLoss(out, y); // H_L = (2/3) I, so G = (2/3) XᵀX
 * const gv = gaussNewtonVp(model, loss, tensor([0, 0], { dtype: "f64" }), X, tensor([1, 0], { dtype: "f64" }));
 * console.log(await gv.toArray()); // [23.33…, 29.33…] = (2/3)·[35, 44]
 * ```
 */
export function gaussNewtonVp(
  model: (params: Tensor, inputs: Tensor) => Tensor,
  loss: (outputs: Tensor) => Tensor,
  params: Tensor,
  inputs: Tensor,
  v: Tensor,
): Tensor {
  const batched = v.rank === params.rank + 1 && shapesEqual(v.shape.slice(1), params.shape);
  if (!batched && !shapesEqual(v.shape, params.shape)) {
    throw new RangeError(
      `gaussNewtonVp: v has shape ${fmtShape(v.shape)}; expected the parameters' shape ${
        fmtShape(params.shape)
      } or [K, ...${fmtShape(params.shape)}] for K products`,
    );
  }
  const m = (p: Tensor) => model(p, inputs);
  return tidy(() => {
    const [y, jv] = jvp(m, [params], [v]); // J v (K-wide when batched)
    const hjv = hvp(loss, y, jv); // H_L J v
    const [, back] = vjp(m, params);
    try {
      if (!batched) return back(hjv)[0]; // Jᵀ H_L J v
      const rows: Tensor[] = [];
      for (let k = 0; k < v.shape[0]; k++) {
        rows.push(back(reshape(slice(hjv, [k], [k + 1]), y.shape))[0]);
      }
      return stack(rows, 0);
    } finally {
      back.dispose();
    }
  });
}
