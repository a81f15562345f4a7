/**
 * Binary elementwise primitives with NumPy broadcasting, comparisons, and `where`.
 * JVP: each tangent is lifted to the output's rank (so a probe axis lines up), scaled by
 * its partial derivative, and the terms summed. VJP: the same partials times g, summed
 * back down to each input's shape. Batching: the vmap axis is one more broadcast dim.
 */
import type { BinaryOp } from "../backend/backend.ts";
import type { Tensor } from "../tensor.ts";
import type { TangentBatch } from "../ad/batch.ts";
import * as o from "../ops/index.ts";
import { broadcastShapes } from "../shape.ts";
import { hostScalar } from "../ops/common.ts";
import type { Aval, PrimitiveDef, PrimitiveTable, SparsityRule } from "./types.ts";
import { broadcastBatch } from "./batch_rules.ts";
import { bilinear, constant, elementwise, linear } from "../ad/sparsity_rules.ts";

/** A partial derivative; a number is an exact constant (0 gives a symbolic-zero term). */
type Partial = (a: Tensor, b: Tensor, y: Tensor) => Tensor | number;

const one: Partial = () => 1;
const minusOne: Partial = () => -1;

function scale(t: Tensor, p: Partial, a: Tensor, b: Tensor, y: Tensor): Tensor | null {
  const d = p(a, b, y);
  if (typeof d !== "number") return o.mul(t, d);
  if (d === 0) return null;
  if (d === 1) return t;
  if (d === -1) return o.neg(t);
  return o.mul(t, d);
}

/** sumToShape of a term that may be a symbolic zero. */
function reduceTo(t: Tensor | null, shape: readonly number[]): Tensor | null {
  return t ? o.sumToShape(t, shape) : null;
}

/** Sums terms that may be null; lifts and broadcasts the result to the output's tangent shape. */
function jvpSum(terms: (Tensor | null)[], y: Tensor, tb: TangentBatch): Tensor | null {
  let acc: Tensor | null = null;
  for (const t of terms) if (t) acc = acc ? o.add(acc, t) : t;
  if (!acc) return null;
  return o.broadcastTo(tb.lift(acc, y.rank), tb.shape(y.shape));
}

function binaryAval(op: string, [a, b]: readonly Aval[]): Aval {
  return { shape: broadcastShapes(op, a.shape, b.shape), dtype: a.dtype };
}

/** A differentiable binary primitive from its two partial derivatives and its sparsity rule. */
function binary<P extends BinaryOp>(
  op: P,
  da: Partial,
  db: Partial,
  sparsity: SparsityRule<P>,
): PrimitiveDef<P> {
  return {
    abstract: (x) => binaryAval(op, x),
    impl: (bk, [a, b], _p, out) =>
      bk.binary(op, out.dtype, a._ref!.storage, a.shape, b._ref!.storage, b.shape, out.shape),
    jvp: ([a, b], [ta, tb_], y, _p, tb) =>
      jvpSum(
        [
          ta ? scale(tb.lift(ta, y.rank), da, a, b, y) : null,
          tb_ ? scale(tb.lift(tb_, y.rank), db, a, b, y) : null,
        ],
        y,
        tb,
      ),
    vjp: (g, [a, b], y, _p, needs) => [
      needs[0] ? reduceTo(scale(g, da, a, b, y), a.shape) : null,
      needs[1] ? reduceTo(scale(g, db, a, b, y), b.shape) : null,
    ],
    batch: broadcastBatch(op),
    sparsity,
  };
}

/** A comparison: piecewise constant, so both derivatives are zero. */
function compare<P extends BinaryOp>(op: P): PrimitiveDef<P> {
  return {
    abstract: (x) => binaryAval(op, x),
    impl: (bk, [a, b], _p, out) =>
      bk.binary(op, out.dtype, a._ref!.storage, a.shape, b._ref!.storage, b.shape, out.shape),
    jvp: () => null,
    vjp: () => [null, null],
    batch: broadcastBatch(op),
    sparsity: constant,
  };
}

// Where maximum/minimum tie, each side gets half the derivative (as JAX does).
const pickWeight = (cmp: (a: Tensor, b: Tensor) => Tensor) => (a: Tensor, b: Tensor) =>
  o.add(cmp(a, b), o.mul(o.equal(a, b), 0.5));

// d a^b / db = a^b · log a; zero bases are replaced by 1 so b's partial is 0 there, not NaN
// (the usual convention: 0^b is flat in b for b > 0).
const powDb = (a: Tensor, _b: Tensor, y: Tensor) => o.mul(y, o.log(o.where(o.equal(a, 0), 1, a)));

// d a^b / da = b a^(b−1). Differentiated again where b − 1 = 0 this would be 0 · a⁻¹ = NaN at
// a = 0 (the true value is 0), so: an exponent known on the host takes the exact form
// (k = 0: no a-dependence; k = 1: 1; k = 2: 2a; else k·a^(k−1) with a host-known k − 1, so
// every order stays exact); a tensor exponent masks b = 0 on both sides of the `where`, so
// neither branch of any higher derivative meets 0 · ∞.
const powDa = (a: Tensor, b: Tensor): Tensor | number => {
  const k = hostScalar(b);
  if (k !== undefined) {
    if (k === 0 || k === 1) return k;
    return k === 2 ? o.mul(a, 2) : o.mul(o.pow(a, k - 1), k);
  }
  const zero = o.equal(b, 0);
  return o.where(zero, 0, o.mul(b, o.pow(o.where(zero, 1, a), o.sub(b, 1))));
};

export const BINARY: PrimitiveTable<BinaryOp> = {
  add: binary("add", one, one, linear),
  sub: binary("sub", one, minusOne, linear),
  mul: binary("mul", (_a, b) => b, (a) => a, bilinear),
  // d(a/b) = da/b - (a/b²) db; linear in a, so no a·a pairs
  div: binary(
    "div",
    (_a, b) => o.reciprocal(b),
    (_a, b, y) => o.neg(o.div(y, b)),
    elementwise({ second: [false, true], cross: true }),
  ),
  // d a^b = b a^(b-1) da + a^b log a db
  pow: binary("pow", powDa, powDb, elementwise({ second: [true, true], cross: true })),
  // piecewise linear: no second-order pairs
  maximum: binary(
    "maximum",
    pickWeight(o.greater),
    (a, b) => pickWeight(o.greater)(b, a),
    linear,
  ),
  minimum: binary("minimum", pickWeight(o.less), (a, b) => pickWeight(o.less)(b, a), linear),
  greater: compare("greater"),
  less: compare("less"),
  equal: compare("equal"),
  greaterEqual: compare("greaterEqual"),
  lessEqual: compare("lessEqual"),
  notEqual: compare("notEqual"),
  // d atan2(a, b) = (b da − a db) / (a² + b²)
  atan2: binary(
    "atan2",
    (a, b) => o.div(b, o.add(o.square(a), o.square(b))),
    (a, b) => o.neg(o.div(a, o.add(o.square(a), o.square(b)))),
    elementwise({ second: [true, true], cross: true }),
  ),
};

/** where(c, a, b): linear in a and b, piecewise constant in c. */
export const WHERE: PrimitiveTable<"where"> = {
  where: {
    abstract: ([c, a, b]) => ({
      shape: broadcastShapes("where", c.shape, a.shape, b.shape),
      dtype: a.dtype,
    }),
    impl: (bk, [c, a, b], _p, out) =>
      bk.where(
        out.dtype,
        c._ref!.storage,
        c.shape,
        a._ref!.storage,
        a.shape,
        b._ref!.storage,
        b.shape,
        out.shape,
      ),
    jvp: ([c, a, b], [, ta, tbb], y, _p, tb) => {
      if (!ta && !tbb) return null;
      const lt = (t: Tensor | null, x: Tensor) => tb.lift(t ?? tb.zeros(x), y.rank);
      return o.broadcastTo(o.where(c, lt(ta, a), lt(tbb, b)), tb.shape(y.shape));
    },
    vjp: (g, [c, a, b], _y, _p, needs) => [
      null,
      needs[1] ? o.sumToShape(o.where(c, g, 0), a.shape) : null,
      needs[2] ? o.sumToShape(o.where(c, 0, g), b.shape) : null,
    ],
    batch: broadcastBatch("where"),
    sparsity: elementwise({ first: [false, true, true] }),
  },
};
