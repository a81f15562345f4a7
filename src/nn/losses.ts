/**
 * Losses written in library ops (so they differentiate to any order): mean squared error,
 * softmax cross-entropy (log-sum-exp and log-softmax are ops).
 */
import type { Tensor } from "../tensor.ts";
import { logSoftmax } from "../ops/special.ts";
import { equal, mul, neg, square, sub, where } from "../ops/elementwise.ts";
import { mean, sum } from "../ops/reduce.ts";
import { tidy } from "../memory.ts";
import { fmtShape, shapesEqual } from "../shape.ts";

/**
 * Mean squared error: the mean over every entry of `(pred − target)²` (PyTorch's
 * `MSELoss()` with its default mean reduction).
 *
 * @example
 * ```ts
 * import { mseLoss, tensor } from "@curvature/curvature";
 * console.log(await mseLoss(tensor([1, 2]), tensor([1, 4])).item()); // 2
 * ```
 */
export function mseLoss(pred: Tensor, target: Tensor): Tensor {
  if (!shapesEqual(pred.shape, target.shape)) {
    throw new RangeError(
      `mseLoss: pred ${fmtShape(pred.shape)} and target ${fmtShape(target.shape)} differ in shape`,
    );
  }
  return tidy(() => mean(square(sub(pred, target))));
}

/**
 * Softmax cross-entropy averaged over the batch: `−(1/N) Σₙ Σ_c yₙc log softmax(zₙ)_c` for
 * logits `z` of shape `[N, C]` and targets `y` of the same shape (one-hot labels or class
 * probabilities).
 *
 * @example
 * ```ts
 * import { softmaxCrossEntropy, tensor } from "@curvature/curvature";
 * const loss = softmaxCrossEntropy(tensor([[0, 0]]), tensor([[1, 0]]));
 * console.log(await loss.item()); // 0.6931… (log 2)
 * ```
 */
export function softmaxCrossEntropy(logits: Tensor, targets: Tensor): Tensor {
  if (logits.rank !== 2 || !shapesEqual(logits.shape, targets.shape)) {
    throw new RangeError(
      `softmaxCrossEntropy: expected logits [N, C] and targets of the same shape, got ${
        fmtShape(logits.shape)
      } and ${fmtShape(targets.shape)}`,
    );
  }
  // a target of 0 ignores its logit, even a masked one (log softmax −∞: 0 · −∞ would be NaN)
  return tidy(() => {
    const logp = where(equal(targets, 0), 0, logSoftmax(logits, 1));
    return neg(sum(mul(targets, logp)).div(logits.shape[0]));
  });
}
