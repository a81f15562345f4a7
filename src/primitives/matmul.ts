/** Batched matmul (operands of rank ≥ 2; 1-D promotion happens in the op). Bilinear. */
import * as o from "../ops/index.ts";
import { matmulShape } from "../ops/matmul.ts";
import type { PrimitiveTable } from "./types.ts";

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
    // ḡA = g Bᵀ, ḡB = Aᵀ g, each summed over broadcast batch dims
    vjp: (g, [a, b], _y, _p, needs) => [
      needs[0] ? o.sumToShape(o.matmul(g, o.mT(b)), a.shape) : null,
      needs[1] ? o.sumToShape(o.matmul(o.mT(a), g), b.shape) : null,
    ],
  },
};
