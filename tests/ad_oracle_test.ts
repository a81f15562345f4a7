/**
 * Oracle tests for the derivative rules of every primitive in the registry, in f64 on the
 * CPU (JAX's `check_grads` recipe):
 *   1. JVP against central finite differences of the function;
 *   2. VJP against JVP through ⟨J u, v⟩ = ⟨u, Jᵀ v⟩;
 *   3. HVP (forward-over-reverse) against finite differences of the gradient;
 *   4. batched-probe JVP / HVP (tangents [K, ...shape]) against K separate passes;
 *   5. second order three more ways: reverse-over-reverse (grad of ⟨∇f, v⟩), explicit
 *      jvp-of-grad and reverse-over-forward (grad of the JVP), all equal to Hv;
 *   7. memory() back at its baseline after every transform once its results are disposed.
 * Then (6) WebGPU f32 (and CPU f32) against CPU f64 for grad and HVP of composite
 * functions, the perturbation-confusion test, and 4th derivatives by nesting.
 * Inputs stay away from kinks and ties (|x| bounded below for abs, distinct entries for
 * max/min, a gap between the operands of maximum/minimum and the comparisons).
 */
import assert from "node:assert/strict";
import {
  abs,
  astype,
  broadcastTo,
  concat,
  cos,
  det,
  equal,
  exp,
  expm1,
  eye,
  gather,
  grad,
  greater,
  greaterEqual,
  hvp,
  jvp,
  less,
  lessEqual,
  log,
  log1p,
  logdet,
  matmul,
  max,
  maximum,
  memory,
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
  tidy,
  transpose,
  vjp,
  where,
} from "../mod.ts";
import { PRIMITIVES } from "../src/primitives/registry.ts";
import type { Primitive } from "../src/primitives/types.ts";
import { assertNoLeak, type Backend, cpu, randArray, rng, testAll } from "./helpers.ts";

// ---------- inputs ----------

interface Arg {
  shape: number[];
  values: Float64Array;
  /** false: a constant operand (e.g. where's condition), not differentiated */
  diff?: boolean;
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Uniform in [lo, hi). */
function U(shape: number[], seed: number, lo = -1, hi = 1): Arg {
  return { shape, values: randArray(sizeOf(shape), seed, lo, hi) };
}

/** |x| in [lo, hi] with random signs: away from the kink of abs / sign at 0. */
function away(shape: number[], seed: number, lo = 0.25, hi = 1.5): Arg {
  const m = randArray(sizeOf(shape), seed, lo, hi), s = randArray(m.length, seed + 7);
  return { shape, values: m.map((v, i) => (s[i] < 0 ? -v : v)) };
}

/** Distinct entries at least 1/n apart (so max / min have no ties, even after a step of h). */
function distinct(shape: number[], seed: number): Arg {
  const n = sizeOf(shape), r = rng(seed);
  const p = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return { shape, values: Float64Array.from(p, (k) => (2 * (k + 0.25 + 0.5 * r())) / n - 1) };
}

/** Diagonally dominant matrices with a positive diagonal: well conditioned, det > 0. */
function wellCond(batch: number[], n: number, seed: number): Arg {
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
function generalBand(
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
      v[(t * (l + u + 1) + u) * n + j] = diag + Math.abs(v[(t * (l + u + 1) + u) * n + j]) / 2;
    }
  }
  return { shape: [...batch, l + u + 1, n], values: v };
}

/** Values on a coarse dyadic grid (multiples of 1/64), exact in f32 even after small dyadic steps. */
function dyadic(shape: number[], seed: number): Arg {
  const r = randArray(sizeOf(shape), seed, -1, 1);
  return { shape, values: r.map((v) => (Math.round(v * 64) + 0.5) / 64) };
}

const constant = (a: Arg): Arg => ({ ...a, diff: false });

// ---------- the cases: every primitive, some in several configurations ----------

interface Case {
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

const CASES: Case[] = [
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
    f: (x) => gather(x, tensor([[3, 0], [3, 1]], { dtype: "i32", device: cpu }), 1),
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

// ---------- helpers ----------

const f64 = (a: Arg | { shape: number[]; values: Float64Array }): Tensor =>
  tensor(a.values, { shape: a.shape, dtype: "f64", device: cpu });

async function take(t: Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.data());
  t.dispose();
  return d;
}

/** max |a − e| ≤ tol · max |e| (exact equality when e is all zeros). */
function near(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let err = 0, scale = 0, worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= err)) [err, worst] = [d, i];
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  assert.ok(
    err <= tol * scale,
    `${what}: entry ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
      `(max error ${err.toExponential(3)} > ${tol} × ${scale.toExponential(3)})`,
  );
}

const dotArr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

const axpy = (x: Float64Array, h: number, u: Float64Array) => x.map((v, i) => v + h * u[i]);

/** A random direction; on a grid of 1/16 when it must be exact in f32. */
function direction(n: number, seed: number, grid: boolean): Float64Array {
  const r = randArray(n, seed);
  return grid ? r.map((v) => Math.round(v * 16) / 16 || 0.5) : r;
}

/**
 * Runs `f` eagerly with the registry instrumented and returns which of `prims` it reached.
 * Counting `abstract` catches every bind, views (reshape) included.
 */
function primitivesReached(c: Case, prims: readonly Primitive[]): Set<Primitive> {
  const reached = new Set<Primitive>();
  const defs = PRIMITIVES as unknown as Record<string, { abstract: (...a: unknown[]) => unknown }>;
  const saved = prims.map((p) => defs[p].abstract);
  prims.forEach((p, i) => {
    defs[p].abstract = (...a: unknown[]) => {
      reached.add(p);
      return saved[i](...a);
    };
  });
  try {
    tidy(() => {
      c.f(...c.args.map(f64)); // everything, the result included, is freed by tidy
    });
  } finally {
    prims.forEach((p, i) => (defs[p].abstract = saved[i]));
  }
  return reached;
}

const K = 3;

for (const c of CASES) {
  Deno.test(`oracle: ${c.name}`, async () => {
    const h = c.h ?? 1e-6;
    const grid = c.dyadicDirections ?? false;
    const base = memory();
    const reached = primitivesReached(c, c.prims);
    for (const p of c.prims) assert.ok(reached.has(p), `the case never binds ${p}`);
    assertNoLeak(base, "eager run");

    const di = c.args.flatMap((a, i) => (a.diff === false ? [] : [i]));
    const xs = c.args.map(f64);
    /** f of the differentiable arguments only, the constants closed over. */
    const fd = (...ds: Tensor[]) =>
      c.f(...c.args.map((_, i) => (di.includes(i) ? ds[di.indexOf(i)] : xs[i])));
    const primals = di.map((i) => xs[i]);
    const evalAt = async (vals: Float64Array[]) => {
      const ts = vals.map((v, k) => f64({ shape: c.args[di[k]].shape, values: v }));
      const y = await take(tidy(() => fd(...ts)));
      ts.forEach((t) => t.dispose());
      return y;
    };

    // 1. JVP vs central differences
    const us = di.map((i, k) => direction(sizeOf(c.args[i].shape), 1000 + k, grid));
    const uT = di.map((i, k) => f64({ shape: c.args[i].shape, values: us[k] }));
    const held = memory();
    const check = (what: string) => assertNoLeak(held, `${c.name}: memory after ${what}`);
    const [y0, jt] = jvp(fd, primals, uT);
    const outShape = [...y0.shape];
    await take(y0);
    const ju = await take(jt);
    check("jvp");
    const plus = await evalAt(di.map((i, k) => axpy(c.args[i].values, h, us[k])));
    const minus = await evalAt(di.map((i, k) => axpy(c.args[i].values, -h, us[k])));
    const fdJu = plus.map((v, i) => (v - minus[i]) / (2 * h));
    near(ju, fdJu, 1e-6, "JVP vs finite differences");

    // 2. VJP vs JVP: ⟨J u, v⟩ = ⟨u, Jᵀ v⟩
    const v = direction(sizeOf(outShape), 2000, grid);
    const vT = f64({ shape: outShape, values: v });
    const [y1, back] = vjp(fd, ...primals);
    const cts = back(vT);
    assert.equal(cts.length, di.length);
    let rhs = 0, scale = 0;
    for (const [k, ct] of cts.entries()) {
      assert.deepEqual(ct.shape, c.args[di[k]].shape, "cotangent shape");
      const d = await take(ct);
      rhs += dotArr(d, us[k]);
      for (let i = 0; i < d.length; i++) scale += Math.abs(d[i] * us[k][i]);
    }
    back.dispose();
    y1.dispose();
    vT.dispose();
    check("vjp");
    const lhs = dotArr(ju, v);
    for (let i = 0; i < v.length; i++) scale += Math.abs(ju[i] * v[i]);
    assert.ok(
      Math.abs(lhs - rhs) <= 1e-12 * scale,
      `⟨Ju, v⟩ = ${lhs} but ⟨u, Jᵀv⟩ = ${rhs}`,
    );

    // 4a. batched-probe JVP: K tangents in one pass equal K passes
    const ub = di.map((i, k) => {
      const n = sizeOf(c.args[i].shape);
      const vals = new Float64Array(K * n);
      for (let p = 0; p < K; p++) vals.set(direction(n, 3000 + 10 * k + p, grid), p * n);
      return vals;
    });
    const ubT = di.map((i, k) => f64({ shape: [K, ...c.args[i].shape], values: ub[k] }));
    const [yb, tb] = jvp(fd, primals, ubT);
    assert.deepEqual(tb.shape, [K, ...outShape], "batched tangent shape");
    yb.dispose();
    const batched = await take(tb);
    const single: number[] = [];
    for (let p = 0; p < K; p++) {
      const ts = di.map((i, k) => {
        const n = sizeOf(c.args[i].shape);
        return f64({ shape: c.args[i].shape, values: ub[k].slice(p * n, (p + 1) * n) });
      });
      const [ys, t] = jvp(fd, primals, ts);
      ys.dispose();
      single.push(...await take(t));
      ts.forEach((t) => t.dispose());
    }
    ubT.forEach((t) => t.dispose());
    check("batched jvp");
    near(batched, single, 1e-12, "batched JVP vs separate JVPs");

    // 3, 4b, 5. second order, per differentiable argument, through s = Σ w ⊙ sin(f)
    // (sin makes s nonlinear, so both f's Jacobian and its second derivative enter H)
    const w = f64({ shape: outShape, values: randArray(sizeOf(outShape), 4000, 0.5, 1.5) });
    const wHeld = memory();
    for (const [k, ai] of di.entries()) {
      const shape = c.args[ai].shape, n = sizeOf(shape);
      const s = (x: Tensor) => {
        const args = primals.map((p, j) => (j === k ? x : p));
        return fd(...args).sin().mul(w).sum();
      };
      const x = primals[k];
      const vv = direction(n, 5000 + k, grid);
      const vvT = f64({ shape, values: vv });
      const argHeld = memory();
      const checkArg = (what: string) =>
        assertNoLeak(argHeld, `${c.name}: memory after ${what} (argument ${ai})`);
      const hv = await take(hvp(s, x, vvT));
      checkArg("hvp");

      // 3. HVP vs central differences of the gradient
      const hh = c.hvpH ?? h;
      const gAt = async (vals: Float64Array) => {
        const t = f64({ shape, values: vals });
        const g = await take(grad(s)(t));
        t.dispose();
        checkArg("grad");
        return g;
      };
      const gp = await gAt(axpy(c.args[ai].values, hh, vv));
      const gm = await gAt(axpy(c.args[ai].values, -hh, vv));
      const fdHv = gp.map((val, i) => (val - gm[i]) / (2 * hh));
      near(
        hv,
        fdHv,
        c.hvpTol ?? 1e-6,
        `HVP (argument ${ai}) vs finite differences of the gradient`,
      );

      // 5. the same product by reverse-over-reverse, explicit jvp-of-grad, reverse-over-forward
      const rr = await take(grad((y: Tensor) => grad(s)(y).mul(vvT).sum())(x));
      checkArg("grad of grad");
      near(rr, hv, 1e-10, `grad of ⟨grad, v⟩ (argument ${ai}) vs HVP`);
      const [g0, fr] = jvp((y: Tensor) => grad(s)(y), [x], [vvT]);
      g0.dispose();
      near(await take(fr), hv, 1e-12, `jvp of grad (argument ${ai}) vs HVP`);
      checkArg("jvp of grad");
      const rf = await take(grad((y: Tensor) => jvp(s, [y], [vvT])[1])(x));
      checkArg("grad of jvp");
      near(rf, hv, 1e-10, `grad of jvp (argument ${ai}) vs HVP`);

      // 4b. batched-probe HVP vs K separate HVPs
      const vb = new Float64Array(K * n);
      for (let p = 0; p < K; p++) vb.set(direction(n, 6000 + 10 * k + p, grid), p * n);
      const vbT = f64({ shape: [K, ...shape], values: vb });
      const hb = hvp(s, x, vbT);
      assert.deepEqual(hb.shape, [K, ...shape], "batched HVP shape");
      const hbd = await take(hb);
      const hs: number[] = [];
      for (let p = 0; p < K; p++) {
        const t = f64({ shape, values: vb.slice(p * n, (p + 1) * n) });
        hs.push(...await take(hvp(s, x, t)));
        t.dispose();
      }
      near(hbd, hs, 1e-12, `batched HVP (argument ${ai}) vs separate HVPs`);
      vbT.dispose();
      vvT.dispose();
      assertNoLeak(wHeld, `${c.name}: memory after the second-order checks of argument ${ai}`);
    }

    // 3b. with several differentiable arguments, the joint HVP (mixed partials included):
    // jvp of the concatenated gradients against central differences of them
    if (di.length > 1) {
      const all = di.map((_, k) => k);
      const sAll = (...ds: Tensor[]) => fd(...ds).sin().mul(w).sum();
      const gradFlat = (...ds: Tensor[]) =>
        concat(grad(sAll, { argnums: all })(...ds).map((g) => reshape(g, [-1])), 0);
      const vs = di.map((i, k) => direction(sizeOf(c.args[i].shape), 7000 + k, grid));
      const vsT = di.map((i, k) => f64({ shape: c.args[i].shape, values: vs[k] }));
      const jointHeld = memory();
      const [g0, hvT] = jvp(gradFlat, primals, vsT);
      g0.dispose();
      const hv = await take(hvT);
      assertNoLeak(jointHeld, `${c.name}: memory after the joint HVP`);
      const hh = c.hvpH ?? h;
      const gAt = async (sign: number) => {
        const ts = di.map((i, k) =>
          f64({ shape: c.args[i].shape, values: axpy(c.args[i].values, sign * hh, vs[k]) })
        );
        const g = await take(tidy(() => gradFlat(...ts)));
        ts.forEach((t) => t.dispose());
        return g;
      };
      const gp = await gAt(1), gm = await gAt(-1);
      const fdHv = gp.map((val, i) => (val - gm[i]) / (2 * hh));
      near(hv, fdHv, c.hvpTol ?? 1e-6, "joint HVP over all arguments vs finite differences");
      vsT.forEach((t) => t.dispose());
      assertNoLeak(wHeld, `${c.name}: memory after the joint HVP checks`);
    }
    w.dispose();
    check("all transforms");
    uT.forEach((t) => t.dispose());
    xs.forEach((x) => x.dispose());
    assertNoLeak(base, `${c.name}: memory at the end`);
  });
}

Deno.test("oracle: every primitive in the registry has a case", () => {
  const covered = new Set(CASES.flatMap((c) => c.prims));
  const missing = Object.keys(PRIMITIVES).filter((p) => !covered.has(p as Primitive));
  assert.deepEqual(missing, [], `primitives without an oracle case: ${missing.join(", ")}`);
});

Deno.test("at ties and kinks: the documented subgradients, with forward and reverse agreeing", async () => {
  // Not differentiable there, so no finite-difference oracle: the convention (as in JAX) is
  // that tied operands of maximum / minimum and tied extremes of max / min share the
  // derivative equally, and abs′(0) = sign(0) = 0.
  const base = memory();
  const x = f64({ shape: [4], values: Float64Array.from([0.5, -1, 0.5, 0]) });
  const c = f64({ shape: [4], values: Float64Array.from([0.5, 2, -3, 0]) });
  const u = f64({ shape: [4], values: Float64Array.from([1, 2, 3, 4]) });
  const cases: [string, (y: Tensor) => Tensor, number[]][] = [
    // entries 0 and 3 tie with c: half each; entry 1 loses (0), entry 2 wins (1)
    ["maximum", (y) => maximum(y, c), [0.5, 0, 1, 0.5]],
    ["minimum", (y) => minimum(c, y), [0.5, 1, 0, 0.5]],
    ["max", (y) => max(y), [0.5, 0, 0.5, 0]], // x₀ = x₂ = 0.5 tie for the maximum
    ["min", (y) => min(y.neg()), [-0.5, 0, -0.5, 0]], // −x₀ = −x₂ = −0.5 tie for the minimum
    ["abs", (y) => abs(y), [1, -1, 1, 0]],
  ];
  for (const [name, f, want] of cases) {
    const held = memory();
    const fs = (y: Tensor) => f(y).sum();
    const g = await take(grad(fs)(x));
    const [y0, t] = jvp(fs, [x], [u]);
    y0.dispose();
    const jt = await take(t);
    near(g, want, 0, `${name}: gradient`);
    near([jt[0]], [dotArr(want, [1, 2, 3, 4])], 0, `${name}: JVP = ⟨∇, u⟩`);
    assertNoLeak(held, `${name}: memory`);
  }
  [x, c, u].forEach((t) => t.dispose());
  assertNoLeak(base);
});

// ---------- 6. f32 (WebGPU and CPU) against CPU f64 on composite functions ----------

interface Composite {
  name: string;
  x: Arg;
  consts: Arg[];
  f: (x: Tensor, ...c: Tensor[]) => Tensor;
}

const COMPOSITES: Composite[] = [
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

for (const c of COMPOSITES) {
  testAll(`f32 vs CPU f64: grad and batched HVP of ${c.name}`, async (b: Backend) => {
    const run = async (dtype: "f32" | "f64", dev: Backend["dev"]) => {
      const mk = (a: Arg) => tensor(a.values, { shape: a.shape, dtype, device: dev });
      const x = mk(c.x), cs = c.consts.map(mk);
      const s = (y: Tensor) => c.f(y, ...cs);
      const n = sizeOf(c.x.shape);
      const v = tensor(randArray(2 * n, 308), { shape: [2, ...c.x.shape], dtype, device: dev });
      const before = memory();
      const g = await take(grad(s)(x));
      const hv = await take(hvp(s, x, v));
      assertNoLeak(before, `${c.name} on ${dev.kind} ${dtype}`);
      [x, v, ...cs].forEach((t) => t.dispose());
      return { g, hv };
    };
    const ref = await run("f64", cpu);
    const got = await run("f32", b.dev);
    near(got.g, ref.g, 1e-4, `gradient on ${b.name}`);
    near(got.hv, ref.hv, 1e-4, `HVP on ${b.name}`);
  }, ["cpu-f32", "webgpu-f32"]);
}

// ---------- nesting ----------

const scalar64 = (v: number) => tensor(v, { dtype: "f64", device: cpu });

Deno.test("perturbation confusion: d/dx [x · d/dy (x + y)] at y = 1 is 1, not 2", async () => {
  const base = memory();
  const x = scalar64(2.5), one = scalar64(1);
  // reverse over reverse
  const inner = (xv: Tensor) => grad((y: Tensor) => xv.add(y))(one);
  const r = grad((xv: Tensor) => xv.mul(inner(xv)))(x);
  assert.equal(await r.item(), 1);
  // forward over forward
  const innerF = (xv: Tensor) => jvp((y: Tensor) => xv.add(y), [one], [one])[1];
  const [yf, tf] = jvp((xv: Tensor) => xv.mul(innerF(xv)), [x], [one]);
  assert.equal(await tf.item(), 1);
  // forward over reverse and reverse over forward
  const [ym, tm] = jvp((xv: Tensor) => xv.mul(inner(xv)), [x], [one]);
  assert.equal(await tm.item(), 1);
  const rm = grad((xv: Tensor) => xv.mul(innerF(xv)))(x);
  assert.equal(await rm.item(), 1);
  [x, one, r, yf, tf, ym, tm, rm].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("perturbation confusion: d/dx [x · d/dy (x · y)] at y = 1 is 2x", async () => {
  // Each level must see only its own perturbation: inner derivative x, then d(x²)/dx = 2x.
  const base = memory();
  const x = scalar64(1.75), one = scalar64(1);
  const r = grad((xv: Tensor) => xv.mul(grad((y: Tensor) => xv.mul(y))(one)))(x);
  assert.equal(await r.item(), 3.5);
  [x, one, r].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("4th derivative by nesting grad four times: d⁴(eˣ sin x) = −4 eˣ sin x", async () => {
  // (eˣ sin x)'' = 2eˣ cos x, so (eˣ sin x)'''' = 2(eˣ cos x)'' = −4 eˣ sin x
  const base = memory();
  const x = scalar64(0.7);
  const f = (y: Tensor) => y.exp().mul(y.sin());
  const d4 = grad(grad(grad(grad(f))))(x);
  near([await d4.item()], [-4 * Math.exp(0.7) * Math.sin(0.7)], 1e-12, "grad⁴");
  // and mixing modes: forward(reverse(forward(reverse f)))
  const one = scalar64(1);
  const fwd = (g: (y: Tensor) => Tensor) => (y: Tensor) => jvp(g, [y], [one])[1];
  const d4m = tidy(() => fwd(grad(fwd(grad(f))))(x));
  near([await d4m.item()], [-4 * Math.exp(0.7) * Math.sin(0.7)], 1e-12, "jvp∘grad∘jvp∘grad");
  [x, one, d4, d4m].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("4th derivative through a matrix primitive: d⁴/dt⁴ log det(A + tB) = −6 tr((A+tB)⁻¹B)⁴", async () => {
  // g(t) = log det M, M = A + tB, C = M⁻¹B: g' = tr C, g'' = −tr C², g''' = 2 tr C³, g'''' = −6 tr C⁴
  const A = wellCond([], 3, 400), B = U([3, 3], 401, -0.5, 0.5);
  const t0 = 0.25;
  const m = A.values.map((v, i) => v + t0 * B.values[i]);
  const C = matmul3(inv3(m), B.values);
  const C2 = matmul3(C, C);
  const want = -6 * (matmul3(C2, C2)[0] + matmul3(C2, C2)[4] + matmul3(C2, C2)[8]);
  const base = memory();
  const At = f64(A), Bt = f64(B), t = scalar64(t0);
  const g = (s: Tensor) => logdet(At.add(Bt.mul(s)));
  const d4 = grad(grad(grad(grad(g))))(t);
  near([await d4.item()], [want], 1e-10, "d⁴ log det");
  [At, Bt, t, d4].forEach((x) => x.dispose());
  assertNoLeak(base);
});

/** 3 × 3 helpers (row-major) for the reference above. */
function matmul3(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const o = new Float64Array(9);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      for (let k = 0; k < 3; k++) o[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
    }
  }
  return o;
}

function inv3(a: ArrayLike<number>): Float64Array {
  // adjugate / determinant
  const [p, q, r, s, t, u, v, w, x] = Array.from(a);
  const d = p * (t * x - u * w) - q * (s * x - u * v) + r * (s * w - t * v);
  return Float64Array.from([
    t * x - u * w,
    r * w - q * x,
    q * u - r * t,
    u * v - s * x,
    p * x - r * v,
    r * s - p * u,
    s * w - t * v,
    q * v - p * w,
    p * t - q * s,
  ].map((e) => e / d));
}
