/**
 * Reductions: sum (linear) and max/min (the derivative flows to the extreme entries, ties
 * share it); and the scan cumsum (linear).
 */
import type { Tensor } from "../tensor.ts";
import * as o from "../ops/index.ts";
import { bind } from "../ad/core.ts";
import type { Aval, PrimitiveDef, PrimitiveTable } from "./types.ts";
import { reduceBatch } from "./batch_rules.ts";
import { prefix, reduction } from "../ad/sparsity_rules.ts";

function reducedAval([x]: readonly Aval[], { axes }: { readonly axes: readonly number[] }): Aval {
  return { shape: x.shape.filter((_, i) => !axes.includes(i)), dtype: x.dtype };
}

/** g (reduced shape) reshaped with the reduced axes kept as 1 and broadcast back to x's shape. */
function expandBack(g: Tensor, x: Tensor, axes: readonly number[]): Tensor {
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return o.broadcastTo(o.reshape(g, kept), x.shape);
}

/** Weights w with Σ w = 1 over each reduced slice, on the entries equal to the extreme y. */
function extremeWeights(x: Tensor, y: Tensor, axes: readonly number[]): Tensor {
  const mask = o.equal(x, expandBack(y, x, axes));
  return o.div(mask, o.sum(mask, axes, true));
}

function extreme<P extends "max" | "min">(op: P): PrimitiveDef<P> {
  return {
    abstract: reducedAval,
    impl: (b, [x], { axes }, out) => b.reduce(op, out.dtype, x._ref!.storage, x.shape, axes),
    jvp: (
      [x],
      [t],
      y,
      { axes },
      tb,
    ) => (t ? o.sum(o.mul(t, extremeWeights(x, y, axes)), tb.axes(axes)) : null),
    vjp: (g, [x], y, { axes }) => [o.mul(expandBack(g, x, axes), extremeWeights(x, y, axes))],
    batch: reduceBatch(op),
    sparsity: reduction, // piecewise linear: no second-order pairs
  };
}

/** The reversed cumulative sum along `axis`: the adjoint of cumsum. */
const revCumsum = (g: Tensor, axis: number) => o.flip(o.cumsum(o.flip(g, axis), axis), axis);

export const REDUCE: PrimitiveTable<"sum" | "max" | "min" | "cumsum"> = {
  sum: {
    abstract: reducedAval,
    impl: (b, [x], { axes }, out) => b.reduce("sum", out.dtype, x._ref!.storage, x.shape, axes),
    jvp: (_x, [t], _y, { axes }, tb) => (t ? o.sum(t, tb.axes(axes)) : null),
    vjp: (g, [x], _y, { axes }) => [expandBack(g, x, axes)],
    batch: reduceBatch("sum"),
    sparsity: reduction,
  },
  max: extreme("max"),
  min: extreme("min"),
  // linear: the JVP is the cumulative sum of the tangent, the VJP the reversed one
  cumsum: {
    abstract: ([x]) => ({ shape: x.shape, dtype: x.dtype }),
    impl: (b, [x], { axis }, out) => b.cumsum(out.dtype, x._ref!.storage, x.shape, axis),
    jvp: (_x, [t], _y, { axis }, tb) => (t ? bind("cumsum", [t], { axis: tb.axis(axis) }) : null),
    vjp: (g, _x, _y, { axis }) => [revCumsum(g, axis)],
    batch: ([x], _b, { axis }, bb) => bind("cumsum", [x], { axis: bb.axis(axis) }),
    sparsity: prefix,
  },
};
