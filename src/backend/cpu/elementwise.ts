/**
 * The CPU's elementwise maths: each op written once, as a JavaScript expression, from which
 * the fused kernels of cpu/codegen.ts are generated (V8 then inlines the maths: no call per
 * element). Also the odometer the remaining strided kernels iterate with.
 */
import type { BinaryOp, UnaryOp } from "../backend.ts";

/** Helpers the expressions may call (passed to every generated function as `H`). */
export const H = {
  // exp(−v) overflows to ∞ below −709 (σ then 0 instead of e^v); the branch taken for
  // such v alone is one the processor predicts, where a branch on the sign of v is not
  sigmoid(v: number): number {
    return v > -700 ? 1 / (1 + Math.exp(-v)) : Math.exp(v);
  },
  softplus(v: number): number {
    return v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
  },
  // NumPy's rint: halves go to the even neighbour (Math.round sends them up)
  rint(v: number): number {
    const r = Math.round(v);
    return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
  },
};

/** The reference semantics of every unary op, as an expression of its operand. */
export const UNARY_JS: Record<UnaryOp, (v: string) => string> = {
  neg: (v) => `-${v}`,
  exp: (v) => `Math.exp(${v})`,
  log: (v) => `Math.log(${v})`,
  sin: (v) => `Math.sin(${v})`,
  cos: (v) => `Math.cos(${v})`,
  tanh: (v) => `Math.tanh(${v})`,
  sqrt: (v) => `Math.sqrt(${v})`,
  abs: (v) => `Math.abs(${v})`,
  sigmoid: (v) => `H.sigmoid(${v})`,
  log1p: (v) => `Math.log1p(${v})`,
  expm1: (v) => `Math.expm1(${v})`,
  square: (v) => `${v} * ${v}`,
  reciprocal: (v) => `1 / ${v}`,
  sign: (v) => `Math.sign(${v})`,
  softplus: (v) => `H.softplus(${v})`,
  floor: (v) => `Math.floor(${v})`,
  ceil: (v) => `Math.ceil(${v})`,
  round: (v) => `H.rint(${v})`,
};

/** The reference semantics of every binary op, as an expression of its operands. */
export const BINARY_JS: Record<BinaryOp, (a: string, b: string) => string> = {
  add: (a, b) => `${a} + ${b}`,
  sub: (a, b) => `${a} - ${b}`,
  mul: (a, b) => `${a} * ${b}`,
  div: (a, b) => `${a} / ${b}`,
  pow: (a, b) => `Math.pow(${a}, ${b})`,
  maximum: (a, b) => `(${a} !== ${a} || ${b} !== ${b} ? NaN : ${a} > ${b} ? ${a} : ${b})`,
  minimum: (a, b) => `(${a} !== ${a} || ${b} !== ${b} ? NaN : ${a} < ${b} ? ${a} : ${b})`,
  greater: (a, b) => `(${a} > ${b} ? 1 : 0)`,
  less: (a, b) => `(${a} < ${b} ? 1 : 0)`,
  equal: (a, b) => `(${a} === ${b} ? 1 : 0)`,
  greaterEqual: (a, b) => `(${a} >= ${b} ? 1 : 0)`,
  lessEqual: (a, b) => `(${a} <= ${b} ? 1 : 0)`,
  notEqual: (a, b) => `(${a} !== ${b} ? 1 : 0)`,
  atan2: (a, b) => `Math.atan2(${a}, ${b})`,
};

/** Iterates the coalesced index space, calling `inner` on runs along the last dimension. */
export function forEachRun(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  inner: (offsets: number[], len: number, innerStrides: number[]) => void,
): void {
  const r = shape.length;
  const k = strides.length;
  if (r === 0) {
    inner(new Array(k).fill(0), 1, new Array(k).fill(0));
    return;
  }
  const len = shape[r - 1];
  const innerStrides = strides.map((s) => s[r - 1]);
  const idx = new Array<number>(r).fill(0);
  const offs = new Array<number>(k).fill(0);
  let outer = 1;
  for (let d = 0; d < r - 1; d++) outer *= shape[d];
  for (let o = 0; o < outer; o++) {
    inner(offs.slice(), len, innerStrides);
    // odometer over the outer dims
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++;
      for (let j = 0; j < k; j++) offs[j] += strides[j][d];
      if (idx[d] < shape[d]) break;
      for (let j = 0; j < k; j++) offs[j] -= strides[j][d] * shape[d];
      idx[d] = 0;
    }
  }
}
