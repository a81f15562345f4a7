/**
 * Cases that exercise every primitive in the registry, some in several configurations, and
 * composite functions, shared by the derivative oracle tests, the vmap tests and the browser
 * suite (tests/browser/, so no Deno API here). Inputs stay away from kinks and
 * ties (|x| bounded below for abs, distinct entries for max/min, a gap between the
 * operands of maximum/minimum and the comparisons).
 */
import {
  abs,
  astype,
  atan2,
  broadcastTo,
  cholesky,
  concat,
  cos,
  cumsum,
  det,
  eigh,
  equal,
  exp,
  expm1,
  eye,
  gather,
  greater,
  greaterEqual,
  less,
  lessEqual,
  log,
  log1p,
  logdet,
  matmul,
  max,
  maximum,
  min,
  minimum,
  neg,
  notEqual,
  pad,
  pow,
  reciprocal,
  reshape,
  scatterAdd,
  sigmoid,
  sign,
  sin,
  slice,
  softplus,
  solve,
  solveBandedGeneral,
  sqrt,
  square,
  sum,
  tanh,
  type Tensor,
  tensor,
  transpose,
  where,
} from "../mod.ts";
import type { Primitive } from "../src/primitives/types.ts";
import { barrier } from "../src/ops/movement.ts";
import { randArray, rng } from "./inputs.ts";

// ---------- inputs ----------

export interface Arg {
  shape: number[];
  values: Float64Array;
  /** false: a constant operand (e.g. where's condition), not differentiated */
  diff?: boolean;
}

export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Uniform in [lo, hi). */
export function U(shape: number[], seed: number, lo = -1, hi = 1): Arg {
  return { shape, values: randArray(sizeOf(shape), seed, lo, hi) };
}

/** |x| in [lo, hi] with random signs: away from the kink of abs / sign at 0. */
export function away(shape: number[], seed: number, lo = 0.25, hi = 1.5): Arg {
  const m = randArray(sizeOf(shape), seed, lo, hi), s = randArray(m.length, seed + 7);
  return { shape, values: m.map((v, i) => (s[i] < 0 ? -v : v)) };
}

/** Distinct entries at least 1/n apart (so max / min have no ties, even after a step of h). */
export function distinct(shape: number[], seed: number): Arg {
  const n = sizeOf(shape), r = rng(seed);
  const p = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return { shape, values: Float64Array.from(p, (k) => (2 * (k + 0.25 + 0.5 * r())) / n - 1) };
}

/** Diagonally dominant matrices with a positive diagonal: well conditioned, det > 0. */
export function wellCond(batch: number[], n: number, seed: number): Arg {
  const v = randArray(sizeOf(batch) * n * n, seed, -0.4, 0.4);
  for (let b = 0; b < sizeOf(batch); b++) {
    for (let i = 0; i < n; i++) v[b * n * n + i * n + i] += 2 + 0.25 * i;
  }
  return { shape: [...batch, n, n], values: v };
}

/**
 * General band storage [batch..., l+u+1, n] (ab[u + i − j][j] = A[i][j]) with entries in
 * [−0.5, 0.5] and the diagonal `diag` + [0, 0.25): diag = 2 is dominant (no row
 * interchanges), diag = 0.1 makes partial pivoting swap rows; corners hold junk.
 */
export function generalBand(
  batch: number[],
  l: number,
  u: number,
  n: number,
  seed: number,
  diag: number,
): Arg {
  const v = randArray(sizeOf(batch) * (l + u + 1) * n, seed, -0.5, 0.5);
  for (let t = 0; t < sizeOf(batch); t++) {
    for (let j = 0; j < n; j++) {
      const k = (t * (l + u + 1) + u) * n + j;
      v[k] = diag + Math.abs(v[k]) / 2;
    }
  }
  return { shape: [...batch, l + u + 1, n], values: v };
}

/** Values on a coarse dyadic grid (multiples of 1/64), exact in f32 even after small dyadic steps. */
export function dyadic(shape: number[], seed: number): Arg {
  const r = randArray(sizeOf(shape), seed, -1, 1);
  return { shape, values: r.map((v) => (Math.round(v * 64) + 0.5) / 64) };
}

export const constant = (a: Arg): Arg => ({ ...a, diff: false });

// ---------- the cases: every primitive, some in several configurations ----------

export interface Case {
  name: string;
  /** the primitives this case must exercise (checked by instrumenting the registry) */
  prims: Primitive[];
  args: Arg[];
  f: (...xs: Tensor[]) => Tensor;
  /** finite-difference step (default 1e-6) */
  h?: number;
  /** directions on a dyadic grid (for the cast case, whose f32 round trip must be exact) */
  dyadicDirections?: boolean;
  /** tolerance of the HVP finite-difference check (default 1e-6) */
  hvpTol?: number;
  /** step of the HVP finite-difference check (default h) */
  hvpH?: number;
}

const unaryCase = (
  prim: Primitive,
  fn: (x: Tensor) => Tensor,
  arg: Arg,
): Case => ({ name: prim, prims: [prim], args: [arg], f: fn });

export const CASES: Case[] = [
  unaryCase("neg", neg, U([2, 3], 1, -1.5, 1.5)),
  unaryCase("exp", exp, U([2, 3], 2, -1.5, 1.5)),
  unaryCase("log", log, U([2, 3], 3, 0.5, 2)),
  unaryCase("sin", sin, U([2, 3], 4, -2, 2)),
  unaryCase("cos", cos, U([2, 3], 5, -2, 2)),
  unaryCase("tanh", tanh, U([2, 3], 6, -1.5, 1.5)),
  unaryCase("sqrt", sqrt, U([2, 3], 7, 0.5, 2)),
  unaryCase("abs", abs, away([2, 3], 8)),
  unaryCase("sigmoid", sigmoid, U([2, 3], 9, -2, 2)),
  unaryCase("log1p", log1p, U([2, 3], 10, -0.5, 1.5)),
  unaryCase("expm1", expm1, U([2, 3], 11, -1.5, 1.5)),
  unaryCase("square", square, U([2, 3], 12, -1.5, 1.5)),
  unaryCase("reciprocal", reciprocal, U([2, 3], 13, 0.5, 2)),
  unaryCase("sign", sign, away([2, 3], 14)),
  unaryCase("softplus", softplus, U([2, 3], 15, -3, 3)),
  // binary, with broadcasting on one side so the VJP's sum-to-shape is exercised
  { name: "add", prims: ["add"], args: [U([2, 3], 20), U([3], 21)], f: (a, b) => a.add(b) },
  { name: "sub", prims: ["sub"], args: [U([2, 1], 22), U([2, 3], 23)], f: (a, b) => a.sub(b) },
  { name: "mul", prims: ["mul"], args: [U([2, 3], 24), U([3], 25)], f: (a, b) => a.mul(b) },
  {
    name: "div",
    prims: ["div"],
    args: [U([2, 3], 26), away([2, 1], 27, 0.5, 2)],
    f: (a, b) => a.div(b),
  },
  {
    name: "atan2 (both operands, every quadrant)",
    prims: ["atan2"],
    args: [U([2, 3], 35, -2, 2), U([3], 36, -2, 2)],
    f: (a, b) => atan2(a, b),
  },
  {
    name: "barrier (the identity, computed where it stands)",
    prims: ["barrier"],
    args: [U([2, 3], 37)],
    f: (x) => barrier(x.sin()).mul(x),
  },
  {
    name: "pow (both operands)",
    prims: ["pow"],
    args: [U([2, 3], 28, 0.5, 2), U([3], 29, -1.5, 1.5)],
    f: (a, b) => pow(a, b),
  },
  {
    name: "pow (integer exponent, negative base)",
    prims: ["pow"],
    args: [away([2, 3], 30)],
    f: (a) => pow(a, 3),
  },
  {
    name: "maximum",
    prims: ["maximum"],
    args: [away([2, 3], 31, 0.5, 1.5), U([3], 32, -0.4, 0.4)],
    f: (a, b) => maximum(a, b),
  },
  {
    name: "minimum",
    prims: ["minimum"],
    args: [U([3], 33, -0.4, 0.4), away([2, 3], 34, 0.5, 1.5)],
    f: (a, b) => minimum(a, b),
  },
  ...([
    ["greater", greater],
    ["less", less],
    ["equal", equal],
    ["greaterEqual", greaterEqual],
    ["lessEqual", lessEqual],
    ["notEqual", notEqual],
  ] as const).map(([p, fn], i): Case => ({
    name: `${p} (piecewise constant: all derivatives 0)`,
    prims: [p],
    args: [away([2, 3], 40 + i, 0.5, 1.5), U([3], 50 + i, -0.4, 0.4)],
    f: (a, b) => fn(a, b),
  })),
  {
    name: "where (broadcast condition and branches)",
    prims: ["where"],
    args: [
      constant({ shape: [2, 3], values: Float64Array.from([1, 0, 1, 0, 0, 1]) }),
      U([2, 1], 60),
      U([3], 61),
    ],
    f: (c, a, b) => where(c, a, b),
  },
  {
    name: "cast f64 → f32 → f64 (exact on a dyadic grid)",
    prims: ["cast"],
    args: [dyadic([2, 3], 62)],
    f: (x) => astype(astype(x, "f32"), "f64"),
    h: 2 ** -12,
    dyadicDirections: true,
    // The HVP's inner cotangent is rounded to f32 when it crosses the cast back (relative
    // 6e-8); central differences of the gradient magnify that by |g|/h, so the step is 2^-7
    // and the tolerance 1e-4 (truncation h²/6 ≈ 1e-5, rounding ≈ 6e-8 / 2^-7 ≈ 8e-6).
    hvpTol: 1e-4,
    hvpH: 2 ** -7,
  },
  {
    name: "cast through i32 (truncation: derivative 0)",
    prims: ["cast"],
    args: [U([2, 3], 63, 0.1, 0.9)],
    f: (x) => astype(astype(astype(astype(x, "f32").mul(4), "i32"), "f32"), "f64"),
  },
  {
    name: "cumsum along a middle axis",
    prims: ["cumsum"],
    args: [U([2, 4, 3], 75)],
    f: (x) => cumsum(x, 1),
  },
  {
    name: "cumsum along the last axis",
    prims: ["cumsum"],
    args: [U([3, 5], 76)],
    f: (x) => cumsum(x, -1),
  },
  {
    name: "sum over some axes",
    prims: ["sum"],
    args: [U([2, 3, 4], 70)],
    f: (x) => sum(x, [0, 2]),
  },
  { name: "sum over all axes", prims: ["sum"], args: [U([2, 3, 4], 71)], f: (x) => sum(x) },
  {
    name: "max over an axis",
    prims: ["max"],
    args: [distinct([2, 3, 4], 72)],
    f: (x) => max(x, 1),
  },
  {
    name: "max over all axes, keepdims",
    prims: ["max"],
    args: [distinct([3, 4], 73)],
    f: (x) => max(x, undefined, true),
  },
  {
    name: "min over axes",
    prims: ["min"],
    args: [distinct([2, 3, 4], 74)],
    f: (x) => min(x, [0, 2]),
  },
  {
    name: "matmul",
    prims: ["matmul"],
    args: [U([2, 3], 80), U([3, 4], 81)],
    f: (a, b) => matmul(a, b),
  },
  {
    name: "matmul, batched with a broadcast operand",
    prims: ["matmul"],
    args: [U([2, 2, 3], 82), U([3, 2], 83)],
    f: (a, b) => matmul(a, b),
  },
  {
    name: "matmul, vector operands",
    prims: ["matmul"],
    args: [U([3], 84), U([3, 4], 85), U([4], 86)],
    f: (u, a, w) => matmul(matmul(u, a), w),
  },
  {
    name: "reshape",
    prims: ["reshape"],
    args: [U([2, 3, 4], 90)],
    f: (x) => reshape(x, [4, 6]).mul(reshape(x, [4, 6])),
  },
  {
    name: "transpose",
    prims: ["transpose"],
    args: [U([2, 3, 4], 91)],
    f: (x) => transpose(x, [2, 0, 1]),
  },
  {
    name: "broadcastTo",
    prims: ["broadcastTo"],
    args: [U([3, 1], 92)],
    f: (x) => broadcastTo(x, [2, 3, 4]),
  },
  {
    name: "slice, contiguous",
    prims: ["slice"],
    args: [U([6, 5], 93)],
    f: (x) => slice(x, [1, 2], [4, 5]),
  },
  {
    name: "slice, negative bounds and negative step",
    prims: ["slice"],
    args: [U([6, 5], 94)],
    f: (x) => slice(x, [-1, 0], [-Infinity, 5], [-2, 2]),
  },
  {
    name: "slice, steps 3 and −3",
    prims: ["slice"],
    args: [U([7, 5], 95)],
    f: (x) => slice(x, [1, -1], [7, -6], [3, -3]),
  },
  {
    name: "pad",
    prims: ["pad"],
    args: [U([2, 3], 96)],
    f: (x) => pad(x, [[1, 2], [0, 1]], 0.5),
  },
  {
    name: "concat",
    prims: ["concat"],
    args: [U([2, 1], 97), U([2, 3], 98), U([2, 2], 99)],
    f: (a, b, c) => concat([a, b, c], 1),
  },
  {
    name: "gather, repeated and negative indices",
    prims: ["gather"],
    args: [U([4, 3], 100)],
    f: (x) => gather(x, [2, 0, 2, -1, 1], 0),
  },
  {
    name: "gather along axis 1, 2-D indices",
    prims: ["gather"],
    args: [U([2, 4], 101)],
    f: (x) => gather(x, tensor([[3, 0], [3, 1]], { dtype: "i32", device: x.device }), 1),
  },
  {
    name: "scatterAdd, repeated indices",
    prims: ["scatterAdd"],
    args: [U([5, 3], 102)],
    f: (u) => scatterAdd(u, [2, 0, 2, 1, 2], 0, [4, 3]),
  },
  {
    name: "scatterAdd along axis 1",
    prims: ["scatterAdd"],
    args: [U([2, 3], 103)],
    f: (u) => scatterAdd(u, [0, 0, 3], 1, [2, 4]),
  },
  {
    name: "solve (matrix right-hand side)",
    prims: ["solve"],
    args: [wellCond([], 3, 110), U([3, 2], 111)],
    f: (a, b) => solve(a, b),
  },
  {
    name: "solve, batched A with a broadcast right-hand side",
    prims: ["solve"],
    args: [wellCond([2], 3, 112), U([3, 2], 113)],
    f: (a, b) => solve(a, b),
  },
  {
    name: "solve (vector right-hand side)",
    prims: ["solve"],
    args: [wellCond([], 3, 114), U([3], 115)],
    f: (a, b) => solve(a, b),
  },
  {
    name: "cholesky (of the symmetric part)",
    prims: ["cholesky"],
    args: [wellCond([], 3, 130)],
    f: (a) => cholesky(a),
  },
  {
    name: "cholesky, batched",
    prims: ["cholesky"],
    args: [wellCond([2], 3, 131)],
    f: (a) => cholesky(a),
  },
  {
    // distinct eigenvalues (the diagonal 2, 2.25, 2.5 spread by a random symmetric part)
    name: "eigh: eigenvalues and eigenvectors",
    prims: ["eigh"],
    args: [wellCond([], 3, 132)],
    f: (a) => {
      const [w, v] = eigh(a);
      return concat([reshape(w, [1, 3]), v], 0);
    },
  },
  {
    name: "eigh, batched",
    prims: ["eigh"],
    args: [wellCond([2], 3, 133)],
    f: (a) => eigh(a)[1].mul(eigh(a)[0].reshape([2, 1, 3])),
  },
  {
    name: "solveBandedGeneral (l = 2, u = 1, vector right-hand side)",
    prims: ["solveBandedGeneral"],
    args: [generalBand([], 2, 1, 6, 116, 2), U([6], 117)],
    f: (ab, r) => solveBandedGeneral([2, 1], ab, r),
  },
  {
    name: "solveBandedGeneral, batched, pivoting, two right-hand sides",
    prims: ["solveBandedGeneral"],
    args: [generalBand([2], 1, 2, 5, 118, 0.1), U([2, 5, 2], 119)],
    f: (ab, r) => solveBandedGeneral([1, 2], ab, r),
  },
  { name: "det", prims: ["det"], args: [wellCond([], 3, 120)], f: (a) => det(a) },
  { name: "det, batched", prims: ["det"], args: [wellCond([2], 3, 121)], f: (a) => det(a) },
  { name: "logdet", prims: ["logdet"], args: [wellCond([], 3, 122)], f: (a) => logdet(a) },
  {
    name: "logdet, batched",
    prims: ["logdet"],
    args: [wellCond([2], 3, 123)],
    f: (a) => logdet(a),
  },
];

// ---------- composite functions (f32 on every device against CPU f64) ----------

export interface Composite {
  name: string;
  x: Arg;
  consts: Arg[];
  f: (x: Tensor, ...c: Tensor[]) => Tensor;
}

export const COMPOSITES: Composite[] = [
  {
    name: "two-layer tanh network loss",
    x: U([6], 300),
    consts: [U([5, 6], 301, -0.6, 0.6), U([5], 302), U([5], 303)],
    f: (x, W, b, y) => W.matmul(x).add(b).tanh().sub(y).square().sum(),
  },
  {
    name: "Rosenbrock via slices",
    x: U([8], 304, -0.8, 1.2),
    consts: [],
    f: (x) => {
      const a = slice(x, [0], [-1]), b = slice(x, [1], [Infinity]);
      return b.sub(a.square()).square().mul(100).add(a.sub(1).neg().square()).sum();
    },
  },
  {
    name: "log det(XᵀX + I) + ‖solve(X + 3I, b)‖²",
    x: U([3, 3], 305),
    consts: [U([3], 306)],
    f: (X, b) => {
      const I = eye(3, 3, { dtype: X.dtype, device: X.device });
      const lg = logdet(transpose(X).matmul(X).add(I));
      return lg.add(solve(X.add(I.mul(3)), b).square().sum());
    },
  },
  {
    name: "stable log-sum-exp with gather, pad, concat, where, maximum",
    x: U([2, 4], 307, -2, 2),
    consts: [],
    f: (x) => {
      const z = concat([gather(x, [1, 0, 1], 1), pad(x, [[0, 0], [1, 0]], -1)], 1);
      const m = max(z, 1, true);
      const lse = z.sub(m).exp().sum(1).log().add(reshape(m, [-1]));
      const soft = maximum(x, 0).add(abs(x).neg().exp().log1p());
      return lse.sum().add(where(greater(x, 0), soft, soft.mul(0.5)).sum());
    },
  },
];
