/**
 * Small dense linear algebra: solve (A X = B), det and logdet, batched over leading dims.
 * Their rules are written with solve itself, so second derivatives come for free:
 *   d(A⁻¹B) = A⁻¹(dB − dA X),  d det A = Σ cof(A) ⊙ dA,  d log det A = tr(A⁻¹ dA).
 */
import type { Tensor } from "../tensor.ts";
import * as o from "../ops/index.ts";
import { cofactor, inv, solveShape } from "../ops/linalg.ts";
import type { PrimitiveTable } from "./types.ts";
import { broadcastBatch, leadingBatch } from "./batch_rules.ts";
import { determinant, solveRule } from "../ad/sparsity_rules.ts";

/** tr(A⁻¹ dA) for a (possibly probe-batched) tangent: Σ (A⁻ᵀ ⊙ dA) over the last two axes. */
function traceInvTimes(a: Tensor, t: Tensor, lead: number): Tensor {
  const r = a.rank;
  return o.sum(o.mul(o.mT(inv(a)), t), [r - 2 + lead, r - 1 + lead]);
}

/** g[..., None, None] — a per-matrix scalar broadcast over its matrix. */
const perMatrix = (g: Tensor) => o.reshape(g, [...g.shape, 1, 1]);

export const LINALG: PrimitiveTable<"solve" | "det" | "logdet"> = {
  solve: {
    abstract: ([a, b], p) => ({
      shape: solveShape(p.op ?? "solve", a.shape, b.shape),
      dtype: a.dtype,
    }),
    impl: (bk, [a, b], p, out) =>
      bk.solve(
        p.op ?? "solve",
        out.dtype,
        a._ref!.storage,
        a.shape,
        b._ref!.storage,
        b.shape,
        out.shape,
      ),
    // dX = A⁻¹ (dB − dA X)
    jvp: ([a], [ta, tbb], x, _p, tb) => {
      let rhs: Tensor | null = tbb ? tb.lift(tbb, x.rank) : null;
      if (ta) {
        const dax = o.matmul(tb.lift(ta, x.rank), x);
        rhs = rhs ? o.sub(rhs, dax) : o.neg(dax);
      }
      return o.broadcastTo(o.solve(a, rhs!), tb.shape(x.shape));
    },
    // B̄ = A⁻ᵀ X̄,  Ā = −B̄ Xᵀ (each summed over broadcast batch dims)
    vjp: (g, [a, b], x, _p, needs) => {
      const gb = o.solve(o.mT(a), g);
      return [
        needs[0] ? o.sumToShape(o.neg(o.matmul(gb, o.mT(x))), a.shape) : null,
        needs[1] ? o.sumToShape(gb, b.shape) : null,
      ];
    },
    batch: broadcastBatch("solve"),
    sparsity: solveRule,
  },
  det: {
    abstract: ([a]) => ({ shape: a.shape.slice(0, -2), dtype: a.dtype }),
    impl: (bk, [a], _p, out) => bk.det("det", "det", out.dtype, a._ref!.storage, a.shape),
    // d det A = Σ cof(A) ⊙ dA: the cofactors, not det · A⁻ᵀ, so singular A has its gradient
    jvp: ([a], [t], _y, _p, tb) =>
      t ? o.sum(o.mul(cofactor(a), t), [a.rank - 2 + tb.lead, a.rank - 1 + tb.lead]) : null,
    vjp: (g, [a]) => [o.mul(perMatrix(g), cofactor(a))],
    batch: leadingBatch("det"),
    sparsity: determinant,
  },
  logdet: {
    abstract: ([a]) => ({ shape: a.shape.slice(0, -2), dtype: a.dtype }),
    impl: (bk, [a], _p, out) => bk.det("logdet", "logdet", out.dtype, a._ref!.storage, a.shape),
    jvp: ([a], [t], _y, _p, tb) => (t ? traceInvTimes(a, t, tb.lead) : null),
    vjp: (g, [a]) => [o.mul(perMatrix(g), o.mT(inv(a)))],
    batch: leadingBatch("logdet"),
    sparsity: determinant,
  },
};
