/** Batched matmul (operands of rank ≥ 2; 1-D promotion happens in the op). Bilinear. */
import * as o from "../ops/index.ts";
import { matmulShape } from "../ops/matmul.ts";
import type { PrimitiveTable } from "./types.ts";
import { broadcastBatch } from "./batch_rules.ts";
import { matmulRule } from "../ad/sparsity_rules.ts";

export const MATMUL: PrimitiveTable<"matmul"> = {
  matmul: {
    abstract: ([a, b]) => ({ shape: matmulShape(a.shape, b.shape), dtype: a.dtype }),
    impl: (bk, [a, b], _p, out) =>
      bk.matmul(out.dtype, a._ref!.storage, a.shape, b._ref!.storage, b.shape, out.shape),
    // d(AB) = dA B + A dB; tangents are lifted to the output's rank so a probe axis stays in front
    jvp: ([a, b], [ta, tb_], y, _p, tb) => {
      const l = ta ? o.matmul(tb.lift(ta, y.rank), b) : null;
      const r = tb_ ? o.matmul(a, tb.lift(tb_, y.rank)) : null;
      const s = l && r ? o.add(l, r) : (l ?? r)!;
      return o.broadcastTo(s, tb.shape(y.shape));
    },
    // ḡA = g Bᵀ, ḡB = Aᵀ g, each summed over broadcast batch dims. A transposed operand
    // is a strided copy, so each product is taken in whichever of its two equal forms
    // transposes less: Aᵀg = (gᵀA)ᵀ, and for a vector g the second reads A row by row.
    vjp: (g, [a, b], _y, _p, needs) => [
      needs[0]
        ? o.sumToShape(
          b.size <= g.size + a.size ? o.matmul(g, o.mT(b)) : o.mT(o.matmul(b, o.mT(g))),
          a.shape,
        )
        : null,
      needs[1]
        ? o.sumToShape(
          a.size <= g.size + b.size ? o.matmul(o.mT(a), g) : o.mT(o.matmul(o.mT(g), a)),
          b.shape,
        )
        : null,
    ],
    // the vmap axis is one more broadcast batch dim
    batch: broadcastBatch("matmul"),
    sparsity: matmulRule,
  },
};
