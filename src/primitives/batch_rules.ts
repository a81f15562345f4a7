/**
 * Batching-rule families (`vmap`): most primitives batch by running themselves once on the
 * batched operands, with axes shifted past the batch axis. Each family is one helper so a
 * primitive's block names its rule in one line.
 */
import { bind } from "../ad/core.ts";
import type { BatchRule, Params, Primitive } from "./types.ts";

/**
 * Ops whose operands broadcast against each other — elementwise ones (unary, binary, where,
 * cast) and those that broadcast leading batch dims (matmul, solve): batched operands are
 * lifted to the output's rank with the batch axis in front, so it becomes one more
 * broadcast dim and the op runs once.
 */
export function broadcastBatch<P extends Primitive>(op: P): BatchRule<P> {
  return (xs, batched, params, bb, out) =>
    bind(op, bb.align(xs, batched, out.shape.length), params);
}

/** Reductions over `axes`: the same reduction over the axes shifted past the batch axis. */
export function reduceBatch<P extends "sum" | "max" | "min">(op: P): BatchRule<P> {
  return ([x], _b, { axes }, bb) => bind(op, [x], { axes: bb.axes(axes) } as Params[P]);
}

/** One-operand ops acting on trailing dims only (det, logdet): run on the batch as it is. */
export function leadingBatch<P extends Primitive>(op: P): BatchRule<P> {
  return ([x], _b, params) => bind(op, [x], params);
}
