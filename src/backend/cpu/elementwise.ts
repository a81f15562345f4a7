/** CPU elementwise kernels: one tight loop per op so each stays monomorphic and fast. */
import type { BinaryOp, UnaryOp } from "../backend.ts";
import type { TypedArray } from "../../dtype.ts";
import { broadcastStrides, coalesce } from "../../shape.ts";

type Arr = TypedArray;
type UnaryLoop = (x: Arr, o: Arr, n: number) => void;

function sigmoid(v: number): number {
  // Two branches so exp never overflows: for v < 0, e^v / (1 + e^v).
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

const UNARY: Record<UnaryOp, UnaryLoop> = {
  neg: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = -x[i];
  },
  exp: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.exp(x[i]);
  },
  log: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.log(x[i]);
  },
  sin: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.sin(x[i]);
  },
  cos: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.cos(x[i]);
  },
  tanh: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.tanh(x[i]);
  },
  sqrt: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.sqrt(x[i]);
  },
  abs: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.abs(x[i]);
  },
  sigmoid: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = sigmoid(x[i]);
  },
  log1p: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.log1p(x[i]);
  },
  expm1: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.expm1(x[i]);
  },
  square: (x, o, n) => {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      o[i] = v * v;
    }
  },
  reciprocal: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = 1 / x[i];
  },
  sign: (x, o, n) => {
    for (let i = 0; i < n; i++) o[i] = Math.sign(x[i]);
  },
};

export function unaryCpu(op: UnaryOp, x: Arr, o: Arr): void {
  UNARY[op](x, o, o.length);
}

/** The scalar function of each binary op; the reference semantics both backends follow. */
export const BINARY_FN: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  maximum: (a, b) => (a !== a || b !== b ? NaN : a > b ? a : b),
  minimum: (a, b) => (a !== a || b !== b ? NaN : a < b ? a : b),
  greater: (a, b) => (a > b ? 1 : 0),
  less: (a, b) => (a < b ? 1 : 0),
  equal: (a, b) => (a === b ? 1 : 0),
  greaterEqual: (a, b) => (a >= b ? 1 : 0),
  lessEqual: (a, b) => (a <= b ? 1 : 0),
  notEqual: (a, b) => (a !== b ? 1 : 0),
};

type SameLoop = (a: Arr, b: Arr, o: Arr, n: number) => void;

// The hot ops get hand-written loops for the same-shape and scalar cases; the rest go
// through BINARY_FN (still one call per element, inlined by V8 in practice).
const SAME: Partial<Record<BinaryOp, SameLoop>> = {
  add: (a, b, o, n) => {
    for (let i = 0; i < n; i++) o[i] = a[i] + b[i];
  },
  sub: (a, b, o, n) => {
    for (let i = 0; i < n; i++) o[i] = a[i] - b[i];
  },
  mul: (a, b, o, n) => {
    for (let i = 0; i < n; i++) o[i] = a[i] * b[i];
  },
  div: (a, b, o, n) => {
    for (let i = 0; i < n; i++) o[i] = a[i] / b[i];
  },
};

const SCALAR_B: Partial<Record<BinaryOp, (a: Arr, s: number, o: Arr, n: number) => void>> = {
  add: (a, s, o, n) => {
    for (let i = 0; i < n; i++) o[i] = a[i] + s;
  },
  sub: (a, s, o, n) => {
    for (let i = 0; i < n; i++) o[i] = a[i] - s;
  },
  mul: (a, s, o, n) => {
    for (let i = 0; i < n; i++) o[i] = a[i] * s;
  },
  div: (a, s, o, n) => {
    for (let i = 0; i < n; i++) o[i] = a[i] / s;
  },
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
  const f = BINARY_FN[op];
  if (a.length === n && b.length === n) {
    const loop = SAME[op];
    if (loop) loop(a, b, o, n);
    else for (let i = 0; i < n; i++) o[i] = f(a[i], b[i]);
    return;
  }
  if (b.length === 1 && a.length === n) {
    const s = b[0];
    const loop = SCALAR_B[op];
    if (loop) loop(a, s, o, n);
    else for (let i = 0; i < n; i++) o[i] = f(a[i], s);
    return;
  }
  if (a.length === 1 && b.length === n) {
    const s = a[0];
    for (let i = 0; i < n; i++) o[i] = f(s, b[i]);
    return;
  }
  const c = coalesce(outShape, [
    broadcastStrides(aShape, outShape),
    broadcastStrides(bShape, outShape),
    broadcastStrides(outShape, outShape),
  ]);
  forEachRun(c.shape, c.strides, (off, len, st) => {
    let ia = off[0], ib = off[1], io = off[2];
    const sa = st[0], sb = st[1], so = st[2];
    for (let i = 0; i < len; i++, ia += sa, ib += sb, io += so) o[io] = f(a[ia], b[ib]);
  });
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
  if (o.length === 0) return;
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
