/**
 * Diagonals and triangles of matrices, NumPy-style: `diagonal` (a strided slice of the
 * flattened matrix), `diag` (a vector onto a diagonal, or a diagonal out), `triu` / `tril`
 * (a mask made on the host). All are linear in x, so their derivatives, batching and
 * sparsity come from the movement primitives they are made of.
 */
import type { Tensor } from "../tensor.ts";
import { fmtShape, normAxis } from "../shape.ts";
import { checkTensor } from "./common.ts";
import { pad, reshape, slice, transpose } from "./movement.ts";
import { where } from "./elementwise.ts";
import { fromHost } from "./creation.ts";
import { allocArray } from "../dtype.ts";
import { tidy } from "../memory.ts";

function checkOffset(op: string, k: number): void {
  if (!Number.isSafeInteger(k)) {
    throw new RangeError(`${op}: the offset must be an integer, got ${k}`);
  }
}

/**
 * The `offset`-th diagonal of the matrices spanned by `axis1` and `axis2` (default the
 * first two axes), as NumPy's `diagonal`: those two axes are removed and the diagonal
 * becomes the last axis. `offset > 0` is above the main diagonal, `< 0` below.
 *
 * @example
 * ```ts
 * import { diagonal, tensor } from "@curvature/curvature";
 * const a = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
 * console.log(await diagonal(a).toArray(), await diagonal(a, 1).toArray()); // [1, 5, 9] [2, 6]
 * ```
 */
export function diagonal(x: Tensor, offset = 0, axis1 = 0, axis2 = 1): Tensor {
  checkTensor("diagonal", x);
  checkOffset("diagonal", offset);
  if (x.rank < 2) {
    throw new RangeError(`diagonal: expected at least 2 dimensions, got ${fmtShape(x.shape)}`);
  }
  const a1 = normAxis("diagonal", axis1, x.shape), a2 = normAxis("diagonal", axis2, x.shape);
  if (a1 === a2) throw new RangeError(`diagonal: axis1 and axis2 are both ${a1}`);
  const rest = x.shape.map((_, i) => i).filter((i) => i !== a1 && i !== a2);
  const n = x.shape[a1], m = x.shape[a2];
  const len = Math.max(0, Math.min(n - Math.max(0, -offset), m - Math.max(0, offset)));
  const lead = rest.map((i) => x.shape[i]);
  return tidy(() => {
    const flat = reshape(transpose(x, [...rest, a1, a2]), [...lead, n * m]);
    if (len === 0) return slice(flat, [...lead.map(() => 0), 0], [...lead, 0]);
    const start = offset >= 0 ? offset : -offset * m;
    return slice(
      flat,
      [...lead.map(() => 0), start],
      [...lead, start + (len - 1) * (m + 1) + 1],
      [...lead.map(() => 1), m + 1],
    );
  });
}

/**
 * NumPy's `diag`: for a vector `v`, the square matrix with `v` on its `k`-th diagonal
 * (zeros elsewhere); for a matrix, its `k`-th diagonal.
 *
 * @example
 * ```ts
 * import { diag, tensor } from "@curvature/curvature";
 * console.log(await diag(tensor([1, 2])).toArray()); // [[1, 0], [0, 2]]
 * console.log(await diag(tensor([[1, 2], [3, 4]]), -1).toArray()); // [3]
 * ```
 */
export function diag(v: Tensor, k = 0): Tensor {
  checkTensor("diag", v);
  checkOffset("diag", k);
  if (v.rank === 2) return diagonal(v, k);
  if (v.rank !== 1) {
    throw new RangeError(`diag: expected a vector or a matrix, got shape ${fmtShape(v.shape)}`);
  }
  const len = v.shape[0], n = len + Math.abs(k);
  return tidy(() => {
    // entry i goes to flat position i·(n + 1) + start of the n × n result
    const start = k >= 0 ? k : -k * n;
    const spread = reshape(pad(reshape(v, [len, 1]), [[0, 0], [0, n]]), [len * (n + 1)]);
    const end = start + len * (n + 1);
    const flat = end <= n * n
      ? pad(spread, [[start, n * n - end]])
      : slice(pad(spread, [[start, 0]]), [0], [n * n]);
    return reshape(flat, [n, n]);
  });
}

function triangle(op: "triu" | "tril", x: Tensor, k: number): Tensor {
  checkTensor(op, x);
  checkOffset(op, k);
  if (x.rank < 2) {
    throw new RangeError(`${op}: expected at least 2 dimensions, got ${fmtShape(x.shape)}`);
  }
  const n = x.shape[x.rank - 2], m = x.shape[x.rank - 1];
  const mask = allocArray(x.dtype === "f64" ? "f64" : "f32", n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) mask[i * m + j] = (op === "triu" ? j - i >= k : j - i <= k) ? 1 : 0;
  }
  return tidy(() => where(fromHost(op, mask, [n, m], x.device), x, 0));
}

/**
 * The upper triangle of the last two axes: entries with `j − i ≥ k` kept, the rest 0
 * (NumPy's `triu`).
 *
 * @example
 * ```ts
 * import { tensor, triu } from "@curvature/curvature";
 * console.log(await triu(tensor([[1, 2], [3, 4]])).toArray()); // [[1, 2], [0, 4]]
 * ```
 */
export function triu(x: Tensor, k = 0): Tensor {
  return triangle("triu", x, k);
}

/**
 * The lower triangle of the last two axes: entries with `j − i ≤ k` kept, the rest 0
 * (NumPy's `tril`).
 *
 * @example
 * ```ts
 * import { tensor, tril } from "@curvature/curvature";
 * console.log(await tril(tensor([[1, 2], [3, 4]])).toArray()); // [[1, 0], [3, 4]]
 * ```
 */
export function tril(x: Tensor, k = 0): Tensor {
  return triangle("tril", x, k);
}
