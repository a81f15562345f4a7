/**
 * Unary elementwise primitives. Each rule is its derivative written in library ops, so
 * the same rule serves JVP (t · f'(x)) and VJP (g · f'(x)) and differentiates again; each
 * batches (`vmap`) by running on the batched operand.
 * Tangents may carry a leading probe axis; f'(x) has the primal's shape and broadcasts.
 */
import type { UnaryOp } from "../backend/backend.ts";
import type { Tensor } from "../tensor.ts";
import * as o from "../ops/index.ts";
import { broadcastBatch } from "./batch_rules.ts";
import type { PrimitiveDef, PrimitiveTable, SparsityRule } from "./types.ts";
import { constant, linear, nonlinear } from "../ad/sparsity_rules.ts";

/**
 * A unary primitive from its derivative f'(x) (given x and y = f(x); null = zero
 * derivative) and its sparsity rule: `nonlinear` unless f'' is identically zero.
 */
function unary<P extends UnaryOp>(
  op: P,
  deriv: ((x: Tensor, y: Tensor) => Tensor) | null,
  sparsity: SparsityRule<P> = deriv ? nonlinear : constant,
): PrimitiveDef<P> {
  return {
    abstract: ([x]) => ({ shape: x.shape, dtype: x.dtype }),
    impl: (b, [x], _p, out) => b.unary(op, out.dtype, x._ref!.storage, x.size),
    jvp: ([x], [t], y) => (deriv && t ? o.mul(t, deriv(x, y)) : null),
    vjp: (g, [x], y) => [deriv ? o.mul(g, deriv(x, y)) : null],
    batch: broadcastBatch(op),
    sparsity,
  };
}

export const UNARY: PrimitiveTable<UnaryOp> = {
  // linear: d(-x) = -dx
  neg: {
    ...unary("neg", null, linear),
    jvp: (_x, [t]) => (t ? o.neg(t) : null),
    vjp: (g) => [o.neg(g)],
  },
  exp: unary("exp", (_x, y) => y), // d e^x = e^x dx
  log: unary("log", (x) => o.reciprocal(x)), // d log x = dx / x
  sin: unary("sin", (x) => o.cos(x)),
  cos: unary("cos", (x) => o.neg(o.sin(x))),
  tanh: unary("tanh", (_x, y) => o.sub(1, o.square(y))), // d tanh x = (1 - tanh² x) dx
  sqrt: unary("sqrt", (_x, y) => o.div(0.5, y)), // d √x = dx / (2√x)
  abs: unary("abs", (x) => o.sign(x), linear), // piecewise linear: f'' = 0 almost everywhere
  sigmoid: unary("sigmoid", (_x, y) => o.mul(y, o.sub(1, y))), // σ' = σ(1 - σ)
  log1p: unary("log1p", (x) => o.reciprocal(o.add(x, 1))),
  expm1: unary("expm1", (_x, y) => o.add(y, 1)), // d(e^x - 1) = e^x dx
  square: unary("square", (x) => o.mul(x, 2)),
  reciprocal: unary("reciprocal", (_x, y) => o.neg(o.square(y))), // d(1/x) = -dx / x²
  sign: unary("sign", null),
  softplus: unary("softplus", (x) => o.sigmoid(x)), // d log(1 + e^x) = σ(x) dx
  // piecewise constant: zero derivative (almost everywhere, as JAX's), constant sparsity
  floor: unary("floor", null),
  ceil: unary("ceil", null),
  round: unary("round", null),
};
