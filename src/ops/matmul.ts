/** Matrix products with NumPy `matmul` semantics (1-D operands promoted, batch dims broadcast). */
import { bind } from "../ad/core.ts";
import type { Tensor } from "../tensor.ts";
import { broadcastShapes, fmtShape, normAxis } from "../shape.ts";
import { checkFloat, checkTensor, operands } from "./common.ts";
import { reshape, transpose } from "./movement.ts";
import { mul } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { tidy } from "../memory.ts";

/**
 * Matrix product. 1-D operands act as a row (left) or column (right) vector and that axis
 * is dropped from the result; leading batch dimensions broadcast.
 *
 * @example
 * ```ts
 * import { matmul, tensor } from "@curvature/curvature";
 * const a = tensor([[1, 2], [3, 4]]);
 * console.log(await matmul(a, tensor([1, 1])).toArray()); // [3, 7]
 * ```
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkTensor("matmul", a, "a");
  checkTensor("matmul", b, "b");
  [a, b] = operands("matmul", [a, b]);
  checkFloat("matmul", a);
  if (a.rank === 0 || b.rank === 0) {
    throw new RangeError(
      `matmul: operands must have at least one dimension, got shapes ${fmtShape(a.shape)} and ${
        fmtShape(b.shape)
      }`,
    );
  }
  if (a.rank > 1 && b.rank > 1) return bind("matmul", [a, b], {});
  const [x, z] = [a, b];
  return tidy(() => {
    const y = bind("matmul", [
      x.rank === 1 ? reshape(x, [1, x.shape[0]]) : x,
      z.rank === 1 ? reshape(z, [z.shape[0], 1]) : z,
    ], {});
    const s = [...y.shape];
    if (z.rank === 1) s.splice(s.length - 1, 1);
    if (x.rank === 1) s.splice(s.length - (z.rank === 1 ? 1 : 2), 1);
    return reshape(y, s);
  });
}

/**
 * Inner product of two vectors; for higher ranks, the same as `matmul`.
 *
 * @example
 * ```ts
 * import { dot, tensor } from "@curvature/curvature";
 * console.log(await dot(tensor([1, 2, 3]), tensor([4, 5, 6])).item()); // 32
 * ```
 */
export function dot(a: Tensor, b: Tensor): Tensor {
  checkTensor("dot", a, "a");
  checkTensor("dot", b, "b");
  if (a.rank === 1 && b.rank === 1) {
    if (a.shape[0] !== b.shape[0]) {
      throw new RangeError(
        `dot: vectors of shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} differ in length`,
      );
    }
    return tidy(() => sum(mul(a, b)));
  }
  return matmul(a, b);
}

/**
 * Outer product of two vectors (inputs of any shape are flattened first, as NumPy's
 * `outer`): `[a.size, b.size]` with entry (i, j) = aᵢ bⱼ.
 *
 * @example
 * ```ts
 * import { outer, tensor } from "@curvature/curvature";
 * console.log(await outer(tensor([1, 2]), tensor([3, 4, 5])).toArray()); // [[3, 4, 5], [6, 8, 10]]
 * ```
 */
export function outer(a: Tensor, b: Tensor): Tensor {
  checkTensor("outer", a, "a");
  checkTensor("outer", b, "b");
  return tidy(() => mul(reshape(a, [a.size, 1]), reshape(b, [1, b.size])));
}

/**
 * Sums products over the given axes, as NumPy's `tensordot`: `axes = N` pairs the last N
 * axes of `a` with the first N of `b` (default 2; 0 gives the outer product), and
 * `[axesA, axesB]` pairs the listed axes one to one. The result has a's free axes, then
 * b's. One matmul after moving the contracted axes together.
 *
 * @example
 * ```ts
 * import { arange, tensordot } from "@curvature/curvature";
 * const a = arange(6).reshape([2, 3]), b = arange(12).reshape([3, 4]);
 * console.log(tensordot(a, b, 1).shape); // [2, 4]: the matrix product
 * console.log(await tensordot(a, a, [[0, 1], [0, 1]]).item()); // 55 = Σ aᵢⱼ²
 * ```
 */
export function tensordot(
  a: Tensor,
  b: Tensor,
  axes: number | readonly [number | readonly number[], number | readonly number[]] = 2,
): Tensor {
  checkTensor("tensordot", a, "a");
  checkTensor("tensordot", b, "b");
  let ca: number[], cb: number[];
  if (typeof axes === "number") {
    if (!Number.isInteger(axes) || axes < 0 || axes > a.rank || axes > b.rank) {
      throw new RangeError(
        `tensordot: axes = ${axes} must be an integer in [0, ${
          Math.min(a.rank, b.rank)
        }] for shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`,
      );
    }
    ca = [...Array(axes).keys()].map((i) => a.rank - axes + i);
    cb = [...Array(axes).keys()];
  } else {
    const list = (v: number | readonly number[]) => (typeof v === "number" ? [v] : [...v]);
    ca = list(axes[0]).map((x) => normAxis("tensordot", x, a.shape));
    cb = list(axes[1]).map((x) => normAxis("tensordot", x, b.shape));
    if (ca.length !== cb.length || new Set(ca).size < ca.length || new Set(cb).size < cb.length) {
      throw new RangeError(
        `tensordot: axes ${JSON.stringify(axes)} must list as many distinct axes of a as of b`,
      );
    }
  }
  ca.forEach((x, i) => {
    if (a.shape[x] !== b.shape[cb[i]]) {
      throw new RangeError(
        `tensordot: axis ${x} of a ${fmtShape(a.shape)} has length ${a.shape[x]} but axis ${
          cb[i]
        } of b ${fmtShape(b.shape)} has length ${b.shape[cb[i]]}`,
      );
    }
  });
  const freeA = [...Array(a.rank).keys()].filter((i) => !ca.includes(i));
  const freeB = [...Array(b.rank).keys()].filter((i) => !cb.includes(i));
  const size = (t: Tensor, ax: number[]) => ax.reduce((p, i) => p * t.shape[i], 1);
  return tidy(() => {
    const k = size(a, ca);
    const x = reshape(transpose(a, [...freeA, ...ca]), [size(a, freeA), k]);
    const y = reshape(transpose(b, [...cb, ...freeB]), [k, size(b, freeB)]);
    return reshape(matmul(x, y), [
      ...freeA.map((i) => a.shape[i]),
      ...freeB.map((i) => b.shape[i]),
    ]);
  });
}

/**
 * Kronecker product, as NumPy's `kron`: the shorter shape is padded with leading 1s, and
 * the result has shape `a.shape[i] · b.shape[i]`, block (i, j) of a matrix result being
 * `aᵢⱼ b`.
 *
 * @example
 * ```ts
 * import { eye, kron, tensor } from "@curvature/curvature";
 * const k = kron(eye(2), tensor([[1, 2], [3, 4]])); // block-diagonal [4, 4]
 * console.log(await k.toArray());
 * ```
 */
export function kron(a: Tensor, b: Tensor): Tensor {
  checkTensor("kron", a, "a");
  checkTensor("kron", b, "b");
  const r = Math.max(a.rank, b.rank);
  const as = [...Array(r - a.rank).fill(1), ...a.shape];
  const bs = [...Array(r - b.rank).fill(1), ...b.shape];
  return tidy(() =>
    reshape(
      mul(reshape(a, as.flatMap((d) => [d, 1])), reshape(b, bs.flatMap((d) => [1, d]))),
      as.map((d, i) => d * bs[i]),
    )
  );
}

/** @internal Output shape of the matmul primitive (both operands of rank ≥ 2). */
export function matmulShape(a: readonly number[], b: readonly number[]): number[] {
  const k = a[a.length - 1];
  if (a.length < 2 || b.length < 2 || b[b.length - 2] !== k) {
    throw new RangeError(
      `matmul: shapes ${fmtShape(a)} and ${fmtShape(b)} do not line up ` +
        `(the last axis of a must equal the second-to-last of b)`,
    );
  }
  const batch = broadcastShapes("matmul", a.slice(0, -2), b.slice(0, -2));
  return [...batch, a[a.length - 2], b[b.length - 1]];
}
