/**
 * Symmetric factorisations: dense Cholesky (A = LLᵀ) and the symmetric eigen-decomposition
 * (A = V diag(w) Vᵀ). Their inputs are symmetric (the ops symmetrize, as JAX does), so the
 * rules may take tangents symmetric too. Rules, in library ops (they nest):
 *   cholesky  dL = L Φ(L⁻¹ dA L⁻ᵀ),  Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹)   (Φ: lower triangle, half diagonal)
 *   eigh      dw = diag(Vᵀ dA V),  dV = V (F ∘ Vᵀ dA V),  Ā = sym(V (diag(w̄) + F ∘ Vᵀ V̄) Vᵀ)
 *             with F_ij = 1 / (w_j − w_i) off the diagonal — and 0 where w_i = w_j exactly:
 *             within a repeated eigenvalue's eigenspace the eigenvectors are not unique, and
 *             the rule holds the computed ones fixed (see `eigh`).
 * eigh's primitive returns one tensor [..., n+1, n]: row 0 the eigenvalues, then V.
 */
import type { Tensor } from "../tensor.ts";
import * as o from "../ops/index.ts";
import { eye } from "../ops/creation.ts";
import type { PrimitiveTable } from "./types.ts";
import { leadingBatch } from "./batch_rules.ts";
import { wholeMatrix } from "../ad/sparsity_rules.ts";
import { sizeOf } from "../shape.ts";

const st = (x: Tensor) => x._ref!.storage;

/** Φ(X): the lower triangle of X with its diagonal halved. */
function phi(x: Tensor): Tensor {
  return o.sub(o.tril(x), o.mul(o.mul(x, eye(x.shape.at(-1)!, undefined, like(x))), 0.5));
}

const like = (x: Tensor) => ({ dtype: x.dtype, device: x.device });

/** (X + Xᵀ) / 2 over the last two axes. */
const sym = (x: Tensor) => o.mul(o.add(x, o.mT(x)), 0.5);

/** L⁻¹ X L⁻ᵀ for symmetric X (two triangular solves). */
function sandwichInv(l: Tensor, x: Tensor): Tensor {
  return o.solve(l, o.mT(o.solve(l, x)));
}

/** Eigenvalues and eigenvectors out of eigh's packed result [..., n+1, n]. */
function unpack(y: Tensor): [Tensor, Tensor] {
  const r = y.rank, n = y.shape[r - 1];
  const at = (from: number, to: number) =>
    o.slice(
      y,
      y.shape.map((_, i) => (i === r - 2 ? from : 0)),
      y.shape.map((d, i) => (i === r - 2 ? to : d)),
    );
  return [o.squeeze(at(0, 1), r - 2), at(1, n + 1)];
}

/** F_ij = 1 / (w_j − w_i), 0 where w_i = w_j (the diagonal included), safe to differentiate. */
function gapInverse(w: Tensor): Tensor {
  const d = o.sub(o.expandDims(w, -2), o.expandDims(w, -1));
  const tie = o.equal(d, 0);
  return o.where(tie, 0, o.reciprocal(o.where(tie, 1, d)));
}

export const FACTOR: PrimitiveTable<"cholesky" | "eigh"> = {
  cholesky: {
    abstract: ([a]) => ({ shape: a.shape, dtype: a.dtype }),
    // dense = band storage with b = n − 1 (lower, ab[i − j][j] = A[i][j]): the banded kernels
    // of both backends factor it, and the factor is spread back to a dense lower triangle.
    // Strided reads of a copy padded with n zero rows take the diagonals without leaving it.
    impl: (b, [a], _p, out) => {
      const n = a.shape.at(-1)!, batch = sizeOf(a.shape.slice(0, -2));
      const padded = b.pad(out.dtype, st(a), [batch, n, n], [[0, 0], [0, n], [0, 0]], 0);
      const ab = b.stridedCopy(out.dtype, padded, [batch, n, n], 0, [2 * n * n, n, n + 1]);
      b.release(padded);
      const f = b.choleskyBanded("cholesky", out.dtype, ab, batch, n, n - 1, true);
      b.release(ab);
      const fp = b.pad(out.dtype, f, [batch, n, n], [[0, 0], [n, 0], [0, 0]], 0);
      b.release(f);
      // L[i][j] = band[i − j][j] = fp[(i − j + n)·n + j]
      const l = b.stridedCopy(out.dtype, fp, [batch, n, n], n * n, [2 * n * n, n, 1 - n]);
      b.release(fp);
      return l;
    },
    jvp: ([_a], [t], l, _p, tb) =>
      t
        ? o.broadcastTo(o.matmul(l, phi(sandwichInv(l, tb.lift(t, l.rank)))), tb.shape(l.shape))
        : null,
    vjp: (g, [_a], l) => {
      const p = phi(o.matmul(o.mT(l), g));
      const s = o.mT(o.solve(o.mT(l), o.mT(o.solve(o.mT(l), p))));
      return [sym(s)];
    },
    batch: leadingBatch("cholesky"),
    sparsity: wholeMatrix,
  },
  eigh: {
    abstract: ([a]) => {
      const s = [...a.shape];
      s[s.length - 2] += 1;
      return { shape: s, dtype: a.dtype };
    },
    impl: (b, [a], _p, out) => {
      const n = a.shape.at(-1)!;
      return b.eigh(out.dtype, st(a), sizeOf(a.shape.slice(0, -2)), n);
    },
    jvp: ([_a], [t], y, _p, tb) => {
      if (!t) return null;
      const [w, v] = unpack(y);
      const x = o.matmul(o.mT(v), o.matmul(tb.lift(t, y.rank), v));
      const dw = o.diagonal(x, 0, -2, -1);
      const dv = o.matmul(v, o.mul(gapInverse(w), x));
      return o.broadcastTo(o.concat([o.expandDims(dw, -2), dv], -2), tb.shape(y.shape));
    },
    vjp: (g, [_a], y) => {
      const [w, v] = unpack(y);
      const [gw, gv] = unpack(g);
      const n = w.shape.at(-1)!;
      const inner = o.add(
        o.mul(o.expandDims(gw, -2), eye(n, undefined, like(w))),
        o.mul(gapInverse(w), o.matmul(o.mT(v), gv)),
      );
      return [sym(o.matmul(v, o.matmul(inner, o.mT(v))))];
    },
    batch: leadingBatch("eigh"),
    sparsity: wholeMatrix,
  },
};
