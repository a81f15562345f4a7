/**
 * CPU elementwise kernels. Each op is written once, as a JS expression, and compiled into
 * its own loops (same shape, scalar operand, strided run) so that every loop stays
 * monomorphic and V8 inlines the maths: no call per element.
 */
import type { BinaryOp, UnaryOp } from "../backend.ts";
import type { TypedArray } from "../../dtype.ts";
import { broadcastStrides, coalesce } from "../../shape.ts";

type Arr = TypedArray;

/** Helpers the expressions may call. */
const H = {
  // two branches so exp never overflows
  sigmoid(v: number): number {
    if (v >= 0) return 1 / (1 + Math.exp(-v));
    const e = Math.exp(v);
    return e / (1 + e);
  },
  softplus(v: number): number {
    return v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
  },
};

/** The reference semantics of every unary op, in terms of `v`. */
const UNARY_EXPR: Record<UnaryOp, string> = {
  neg: "-v",
  exp: "Math.exp(v)",
  log: "Math.log(v)",
  sin: "Math.sin(v)",
  cos: "Math.cos(v)",
  tanh: "Math.tanh(v)",
  sqrt: "Math.sqrt(v)",
  abs: "Math.abs(v)",
  sigmoid: "H.sigmoid(v)",
  log1p: "Math.log1p(v)",
  expm1: "Math.expm1(v)",
  square: "v * v",
  reciprocal: "1 / v",
  sign: "Math.sign(v)",
  softplus: "H.softplus(v)",
};

/** The reference semantics of every binary op, in terms of `a` and `b`. */
const BINARY_EXPR: Record<BinaryOp, string> = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  pow: "Math.pow(a, b)",
  maximum: "(a !== a || b !== b ? NaN : a > b ? a : b)",
  minimum: "(a !== a || b !== b ? NaN : a < b ? a : b)",
  greater: "(a > b ? 1 : 0)",
  less: "(a < b ? 1 : 0)",
  equal: "(a === b ? 1 : 0)",
  greaterEqual: "(a >= b ? 1 : 0)",
  lessEqual: "(a <= b ? 1 : 0)",
  notEqual: "(a !== b ? 1 : 0)",
};

const compile = <T>(body: string): T =>
  (new Function("H", `"use strict"; return ${body};`) as (h: typeof H) => T)(H);

type UnaryLoop = (x: Arr, o: Arr, n: number) => void;
const UNARY = Object.fromEntries(
  Object.entries(UNARY_EXPR).map(([op, e]) => [
    op,
    compile<UnaryLoop>(
      `function (x, o, n) { for (let i = 0; i < n; i++) { const v = x[i]; o[i] = ${e}; } }`,
    ),
  ]),
) as Record<UnaryOp, UnaryLoop>;

interface BinaryLoops {
  same: (x: Arr, y: Arr, o: Arr, n: number) => void;
  scalarB: (x: Arr, b: number, o: Arr, n: number) => void;
  scalarA: (a: number, y: Arr, o: Arr, n: number) => void;
  run: (
    x: Arr,
    y: Arr,
    o: Arr,
    ia: number,
    ib: number,
    io: number,
    sa: number,
    sb: number,
    so: number,
    len: number,
  ) => void;
  fn: (a: number, b: number) => number;
}
const BINARY = Object.fromEntries(
  Object.entries(BINARY_EXPR).map(([op, e]) => [op, {
    same: compile(
      `function (x, y, o, n) { for (let i = 0; i < n; i++) { const a = x[i], b = y[i]; o[i] = ${e}; } }`,
    ),
    scalarB: compile(
      `function (x, b, o, n) { for (let i = 0; i < n; i++) { const a = x[i]; o[i] = ${e}; } }`,
    ),
    scalarA: compile(
      `function (a, y, o, n) { for (let i = 0; i < n; i++) { const b = y[i]; o[i] = ${e}; } }`,
    ),
    run: compile(
      `function (x, y, o, ia, ib, io, sa, sb, so, len) { for (let i = 0; i < len; i++, ia += sa, ib += sb, io += so) { const a = x[ia], b = y[ib]; o[io] = ${e}; } }`,
    ),
    fn: compile(`function (a, b) { return ${e}; }`),
  }]),
) as Record<BinaryOp, BinaryLoops>;

/** The scalar function of each binary op (the reference semantics both backends follow). */
export const BINARY_FN: Record<BinaryOp, (a: number, b: number) => number> = Object.fromEntries(
  Object.entries(BINARY).map(([op, l]) => [op, l.fn]),
) as Record<BinaryOp, (a: number, b: number) => number>;

export function unaryCpu(op: UnaryOp, x: Arr, o: Arr): void {
  UNARY[op](x, o, o.length);
}

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

export function binaryCpu(
  op: BinaryOp,
  a: Arr,
  aShape: readonly number[],
  b: Arr,
  bShape: readonly number[],
  o: Arr,
  outShape: readonly number[],
): void {
  const n = o.length;
  if (n === 0) return;
  const L = BINARY[op];
  if (a.length === n && b.length === n) return L.same(a, b, o, n);
  if (b.length === 1 && a.length === n) return L.scalarB(a, b[0], o, n);
  if (a.length === 1 && b.length === n) return L.scalarA(a[0], b, o, n);
  const c = coalesce(outShape, [
    broadcastStrides(aShape, outShape),
    broadcastStrides(bShape, outShape),
    broadcastStrides(outShape, outShape),
  ]);
  forEachRun(
    c.shape,
    c.strides,
    (off, len, st) => L.run(a, b, o, off[0], off[1], off[2], st[0], st[1], st[2], len),
  );
}

export function whereCpu(
  c: Arr,
  cShape: readonly number[],
  a: Arr,
  aShape: readonly number[],
  b: Arr,
  bShape: readonly number[],
  o: Arr,
  outShape: readonly number[],
): void {
  const n = o.length;
  if (n === 0) return;
  if (c.length === n && a.length === n && b.length === n) {
    for (let i = 0; i < n; i++) o[i] = c[i] !== 0 ? a[i] : b[i];
    return;
  }
  if (c.length === n && (a.length === n || a.length === 1) && (b.length === n || b.length === 1)) {
    const sa = a.length === n ? 1 : 0, sb = b.length === n ? 1 : 0;
    for (let i = 0, ia = 0, ib = 0; i < n; i++, ia += sa, ib += sb) {
      o[i] = c[i] !== 0 ? a[ia] : b[ib];
    }
    return;
  }
  const co = coalesce(outShape, [
    broadcastStrides(cShape, outShape),
    broadcastStrides(aShape, outShape),
    broadcastStrides(bShape, outShape),
    broadcastStrides(outShape, outShape),
  ]);
  forEachRun(co.shape, co.strides, (off, len, st) => {
    let ic = off[0], ia = off[1], ib = off[2], io = off[3];
    for (let i = 0; i < len; i++) {
      o[io] = c[ic] !== 0 ? a[ia] : b[ib];
      ic += st[0];
      ia += st[1];
      ib += st[2];
      io += st[3];
    }
  });
}
