/**
 * Elementwise ops on every backend (CPU f64, CPU f32, WebGPU f32), each checked against a
 * float64 reference computed here in plain JS: the 14 unary ops, the 13 binary ops and
 * `where`, with NumPy broadcasting, scalars, 0-d and empty tensors, sizes above 65,536,
 * and IEEE special values (NaN, ±Inf, ±0).
 *
 * Tolerances: f64 results must match the reference to 1e-12 relative; f32 results to
 * 1e-5 relative of the f64 value of the f32-rounded reference (a few ulp, leaving room
 * for the GPU's transcendental functions). Looser tolerances say why where they appear.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  abs,
  add,
  ceil,
  cos,
  div,
  equal as eq,
  exp,
  expm1,
  floor,
  greater,
  greaterEqual,
  less,
  lessEqual,
  log,
  log1p,
  maximum,
  memory,
  minimum,
  mul,
  neg,
  notEqual,
  pow,
  reciprocal,
  round,
  sigmoid,
  sign,
  sin,
  softplus,
  sqrt,
  square,
  sub,
  tanh,
  type Tensor,
  tensor,
  type TensorLike,
  tidy,
  where,
} from "../mod.ts";
import {
  assertClose,
  assertNoLeak,
  type Backend,
  cpu,
  expectClose,
  randArray,
  rng,
  testAll,
} from "./helpers.ts";

// ---------------------------------------------------------------- reference machinery

/** Relative tolerance for a backend's dtype. */
const rtolOf = (b: Backend) => (b.dtype === "f64" ? 1e-12 : 1e-5);

/** What the backend's dtype makes of an exact value (f32 rounds, overflows to ±Inf). */
const rnd = (b: Backend, v: number) => (b.dtype === "f32" ? Math.fround(v) : v);

/**
 * n inputs uniform in [lo, hi): f32-representable for f32 backends, full 53-bit values for
 * f64 (so a silent f32 downcast on the f64 path would show at the 1e-12 tolerance).
 */
function inputs(b: Backend, n: number, seed: number, lo: number, hi: number): Float64Array {
  if (b.dtype === "f32") return randArray(n, seed, lo, hi);
  const r = rng(seed);
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * (r() + r() * 2 ** -32);
  return a;
}

function T(b: Backend, data: ArrayLike<number>, shape: readonly number[]): Tensor {
  return tensor(Float64Array.from(data), { shape, dtype: b.dtype, device: b.dev });
}

const sizeOf = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);

/** NumPy broadcast of several shapes, computed independently of the library. */
function bshape(...shapes: (readonly number[])[]): number[] {
  const r = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - r + i] ?? 1;
      if (v !== 1) {
        if (d !== 1 && d !== v) throw new Error(`test bug: ${shapes} do not broadcast`);
        d = v;
      }
    }
    out.push(d);
  }
  return out;
}

/** out[idx] = f(x0[idx'], x1[idx''], …) by explicit multi-index arithmetic. */
function bref(
  shapes: (readonly number[])[],
  arrays: ArrayLike<number>[],
  f: (...v: number[]) => number,
): { shape: number[]; out: Float64Array } {
  const shape = bshape(...shapes);
  const n = sizeOf(shape);
  const out = new Float64Array(n);
  const idx = new Array(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let rem = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem = Math.floor(rem / shape[d]);
    }
    const vals = shapes.map((s, k) => {
      let off = 0;
      for (let d = 0; d < s.length; d++) {
        const od = shape.length - s.length + d;
        off = off * s[d] + (s[d] === 1 ? 0 : idx[od]);
      }
      return arrays[k][off];
    });
    out[i] = f(...vals);
  }
  return { shape, out };
}

/** Runs `build` in a tidy scope, checks the result and that nothing leaked. */
async function check(
  build: () => Tensor,
  expected: ArrayLike<number>,
  opts: { rtol: number; atol?: number; shape?: readonly number[]; msg?: string },
): Promise<void> {
  const base = memory();
  const y = tidy(build);
  try {
    await expectClose(y, expected, opts);
  } finally {
    y.dispose();
  }
  assertNoLeak(base, opts.msg);
}

// ---------------------------------------------------------------- unary ops

type UnaryFn = (x: Tensor) => Tensor;

interface UnaryCase {
  fn: UnaryFn;
  ref: (x: number) => number;
  lo: number;
  hi: number;
  /** extra absolute tolerance for f32, with the reason */
  atol32?: number;
}

// Reference functions in f64. sigmoid is written plainly: in f64 1/(1+e^-x) is accurate.
const UNARY: Record<string, UnaryCase> = {
  neg: { fn: neg, ref: (x) => -x, lo: -10, hi: 10 },
  exp: { fn: exp, ref: Math.exp, lo: -20, hi: 20 },
  log: { fn: log, ref: Math.log, lo: 1e-3, hi: 100 },
  // WGSL promises sin/cos only to an absolute error (2^-11 on [-π, π]); near their zeros
  // the relative error of any f32 sin is unbounded, so allow 1e-6 absolute as well
  // (lavapipe measured ≤ 8e-8 absolute on [-1000, 1000]).
  sin: { fn: sin, ref: Math.sin, lo: -10, hi: 10, atol32: 1e-6 },
  cos: { fn: cos, ref: Math.cos, lo: -10, hi: 10, atol32: 1e-6 },
  tanh: { fn: tanh, ref: Math.tanh, lo: -10, hi: 10 },
  sqrt: { fn: sqrt, ref: Math.sqrt, lo: 0, hi: 100 },
  abs: { fn: abs, ref: Math.abs, lo: -10, hi: 10 },
  sigmoid: { fn: sigmoid, ref: (x) => 1 / (1 + Math.exp(-x)), lo: -20, hi: 20 },
  log1p: { fn: log1p, ref: Math.log1p, lo: -0.99, hi: 10 },
  expm1: { fn: expm1, ref: Math.expm1, lo: -5, hi: 5 },
  square: { fn: square, ref: (x) => x * x, lo: -10, hi: 10 },
  reciprocal: { fn: reciprocal, ref: (x) => 1 / x, lo: -10, hi: 10 },
  sign: { fn: sign, ref: Math.sign, lo: -1, hi: 1 },
  // reference: log1p(e^x) in f64, one formula without branches (e^30 does not overflow)
  softplus: { fn: softplus, ref: (x) => Math.log1p(Math.exp(x)), lo: -30, hi: 30 },
  floor: { fn: floor, ref: Math.floor, lo: -1000, hi: 1000 },
  ceil: { fn: ceil, ref: Math.ceil, lo: -1000, hi: 1000 },
  // round half to even, from floor and the fraction
  round: {
    fn: round,
    ref: (x) => {
      const f = Math.floor(x), d = x - f;
      return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
    },
    lo: -1000,
    hi: 1000,
  },
};

// 70,001 elements: more than 65,536, an odd count (a partial last workgroup).
const N_UNARY = 70_001;

for (const [name, c] of Object.entries(UNARY)) {
  testAll(`unary ${name}: ${N_UNARY} random values in [${c.lo}, ${c.hi})`, async (b) => {
    const x = inputs(b, N_UNARY, 11 + name.length, c.lo, c.hi);
    const want = x.map((v) => rnd(b, c.ref(v)));
    await check(() => c.fn(T(b, x, [N_UNARY])), want, {
      rtol: rtolOf(b),
      atol: b.dtype === "f32" ? c.atol32 ?? 0 : 0,
      shape: [N_UNARY],
      msg: name,
    });
  });
}

testAll("unary ops on special values: NaN, ±Inf, ±0, ±1, domain edges", async (b) => {
  const specials = [
    NaN,
    Infinity,
    -Infinity,
    0,
    -0,
    1,
    -1,
    0.5,
    -0.5,
    2,
    -2,
    1e-4,
    -1e-4,
    1e-6,
    -1e-6,
    30,
    -30,
    100,
    -100,
  ];
  for (const [name, c] of Object.entries(UNARY)) {
    const want = specials.map((v) => rnd(b, c.ref(v)));
    await check(() => c.fn(T(b, specials, [specials.length])), want, {
      rtol: rtolOf(b),
      // e^100 overflows f32 (rnd() makes the reference Inf, as the result must be); e^-100
      // and sigmoid(-100) are f32 subnormals, which GPUs may flush to 0 (WGSL allows it)
      atol: b.dtype === "f32" ? 1.2e-38 : 0,
      msg: `${name}(${specials.join(", ")})`,
    });
  }
});

testAll("unary IEEE cases, written out", async (b) => {
  const cases: [UnaryFn, string, number, number][] = [
    [log, "log", -1, NaN],
    [log, "log", 0, -Infinity],
    [log, "log", -0, -Infinity],
    [log, "log", Infinity, Infinity],
    [log, "log", 1, 0],
    [sqrt, "sqrt", -1, NaN],
    [sqrt, "sqrt", Infinity, Infinity],
    [sqrt, "sqrt", 4, 2],
    [sign, "sign", NaN, NaN],
    [sign, "sign", -3, -1],
    [sign, "sign", 0, 0],
    [sign, "sign", Infinity, 1],
    [tanh, "tanh", 100, 1],
    [tanh, "tanh", -100, -1],
    [tanh, "tanh", Infinity, 1],
    [tanh, "tanh", -Infinity, -1],
    [sigmoid, "sigmoid", 100, 1],
    [sigmoid, "sigmoid", Infinity, 1],
    [sigmoid, "sigmoid", -Infinity, 0],
    [sigmoid, "sigmoid", 0, 0.5],
    [softplus, "softplus", 1000, 1000],
    [softplus, "softplus", Infinity, Infinity],
    [softplus, "softplus", -Infinity, 0],
    [softplus, "softplus", NaN, NaN],
    [exp, "exp", -Infinity, 0],
    [exp, "exp", Infinity, Infinity],
    [exp, "exp", 0, 1],
    [expm1, "expm1", -Infinity, -1],
    [expm1, "expm1", Infinity, Infinity],
    [log1p, "log1p", -1, -Infinity],
    [log1p, "log1p", -2, NaN],
    [log1p, "log1p", Infinity, Infinity],
    [reciprocal, "reciprocal", 0, Infinity],
    [reciprocal, "reciprocal", -0, -Infinity],
    [reciprocal, "reciprocal", Infinity, 0],
    [sin, "sin", Infinity, NaN],
    [cos, "cos", -Infinity, NaN],
    [abs, "abs", -Infinity, Infinity],
    [square, "square", -Infinity, Infinity],
    [neg, "neg", Infinity, -Infinity],
  ];
  for (const [fn, name, x, want] of cases) {
    await check(() => fn(T(b, [x], [1])), [want], { rtol: 1e-12, msg: `${name}(${x})` });
  }
  // sigmoid(-100) = 3.7e-44: finite and tiny (0 or a subnormal in f32), never NaN
  const s = await tidy(() => sigmoid(T(b, [-100], [1]))).data();
  ok(Number.isFinite(s[0]) && s[0] >= 0 && s[0] < 1e-40, `sigmoid(-100) = ${s[0]}`);
  // NaN in, NaN out for every op
  for (const [name, c] of Object.entries(UNARY)) {
    const y = await tidy(() => c.fn(T(b, [NaN, 1], [2]))).data();
    ok(Number.isNaN(y[0]), `${name}(NaN) = ${y[0]}, expected NaN`);
  }
});

testAll("expm1, log1p, tanh, sin near 0 keep relative accuracy (1e-6 in f32)", async (b) => {
  const xs: number[] = [];
  for (const m of [1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 1e-7, 1e-9]) {
    xs.push(rnd(b, m), rnd(b, -m), rnd(b, 1.2345 * m), rnd(b, -1.2345 * m));
  }
  // naive exp(x) - 1 in f32 would be off by ~100% at 1e-7; 1e-6 relative is a few ulp
  const rtol = b.dtype === "f64" ? 1e-12 : 1e-6;
  for (
    const [fn, ref, name] of [
      [expm1, Math.expm1, "expm1"],
      [log1p, Math.log1p, "log1p"],
      [tanh, Math.tanh, "tanh"],
      [sin, Math.sin, "sin"],
    ] as const
  ) {
    await check(() => fn(T(b, xs, [xs.length])), xs.map((v) => rnd(b, ref(v))), {
      rtol,
      msg: name,
    });
  }
});

testAll("log near 1 keeps relative accuracy", async (b) => {
  // log(1 + d) ≈ d: a log with only absolute accuracy (GPU log is ~2^-21 absolute near 1)
  // loses every digit here; the library must not.
  const xs: number[] = [];
  for (let k = 1; k <= 200; k++) {
    xs.push(rnd(b, 1 + k * 2 ** -20), rnd(b, 1 - k * 2 ** -21), rnd(b, 1 + k * 1e-3));
  }
  await check(() => log(T(b, xs, [xs.length])), xs.map((v) => rnd(b, Math.log(v))), {
    rtol: rtolOf(b),
    msg: "log near 1",
  });
});

testAll("exp on 1,000,003 elements", async (b) => {
  const n = 1_000_003;
  const x = inputs(b, n, 5, -30, 30);
  await check(() => exp(T(b, x, [n])), x.map((v) => rnd(b, Math.exp(v))), {
    rtol: rtolOf(b),
    shape: [n],
  });
});

testAll("unary ops on empty, 1-element and 0-d tensors", async (b) => {
  for (const [name, c] of Object.entries(UNARY)) {
    await check(() => c.fn(T(b, [], [0])), [], { rtol: 0, shape: [0], msg: `${name} empty` });
    await check(() => c.fn(T(b, [], [3, 0, 2])), [], {
      rtol: 0,
      shape: [3, 0, 2],
      msg: `${name} [3,0,2]`,
    });
    await check(() => c.fn(T(b, [0.75], [])), [rnd(b, c.ref(rnd(b, 0.75)))], {
      rtol: rtolOf(b),
      shape: [],
      msg: `${name} 0-d`,
    });
    await check(() => c.fn(T(b, [0.25], [1, 1])), [rnd(b, c.ref(0.25))], {
      rtol: rtolOf(b),
      shape: [1, 1],
      msg: `${name} [1,1]`,
    });
  }
});

testAll("unary ops keep dtype, shape and device, and work as methods", async (b) => {
  const base = memory();
  const x = T(b, [1, 4, 9, 16, 25, 36], [2, 3]);
  const y = x.sqrt();
  equal(y.dtype, b.dtype);
  equal(y.device, b.dev);
  deepEqual(y.shape, [2, 3]);
  assertClose(await y.data(), [1, 2, 3, 4, 5, 6], { rtol: rtolOf(b) });
  const z = tidy(() => x.neg().abs().log());
  assertClose(await z.data(), [1, 4, 9, 16, 25, 36].map((v) => rnd(b, Math.log(v))), {
    rtol: rtolOf(b),
  });
  x.dispose();
  y.dispose();
  z.dispose();
  assertNoLeak(base);
});

// ---------------------------------------------------------------- binary ops

type BinaryFn = (a: TensorLike, b: TensorLike) => Tensor;

interface BinaryCase {
  fn: BinaryFn;
  ref: (a: number, b: number) => number;
  /** input generator for a and b: returns [a values, b values] */
  gen: (b: Backend, n: number, seed: number) => [Float64Array, Float64Array];
}

const cmpRef = (f: (a: number, b: number) => boolean) => (a: number, b: number) => f(a, b) ? 1 : 0;
const nanMax = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a > b ? a : b);
const nanMin = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a < b ? a : b);

const genReal = (lo: number, hi: number) => (b: Backend, n: number, s: number) =>
  [inputs(b, n, s, lo, hi), inputs(b, n, s + 1, lo, hi)] as [Float64Array, Float64Array];
/** Small half-integers, so ties (a == b) are frequent: comparisons and max/min see them. */
const genTies = (_b: Backend, n: number, s: number) => {
  const r = rng(s);
  const f = () => Float64Array.from({ length: n }, () => (Math.floor(r() * 9) - 4) / 2);
  return [f(), f()] as [Float64Array, Float64Array];
};
const genDiv = (b: Backend, n: number, s: number) => {
  const d = inputs(b, n, s + 1, 0.5, 4);
  const r = rng(s + 2);
  for (let i = 0; i < n; i++) if (r() < 0.5) d[i] = -d[i];
  return [inputs(b, n, s, -10, 10), d] as [Float64Array, Float64Array];
};
const genPow = (b: Backend, n: number, s: number) =>
  [inputs(b, n, s, 0.1, 10), inputs(b, n, s + 1, -3, 3)] as [Float64Array, Float64Array];

const BINARY: Record<string, BinaryCase> = {
  add: { fn: add, ref: (a, b) => a + b, gen: genReal(-10, 10) },
  sub: { fn: sub, ref: (a, b) => a - b, gen: genReal(-10, 10) },
  mul: { fn: mul, ref: (a, b) => a * b, gen: genReal(-10, 10) },
  div: { fn: div, ref: (a, b) => a / b, gen: genDiv },
  pow: { fn: pow, ref: Math.pow, gen: genPow },
  maximum: { fn: maximum, ref: nanMax, gen: genTies },
  minimum: { fn: minimum, ref: nanMin, gen: genTies },
  greater: { fn: greater, ref: cmpRef((a, b) => a > b), gen: genTies },
  less: { fn: less, ref: cmpRef((a, b) => a < b), gen: genTies },
  equal: { fn: eq, ref: cmpRef((a, b) => a === b), gen: genTies },
  greaterEqual: { fn: greaterEqual, ref: cmpRef((a, b) => a >= b), gen: genTies },
  lessEqual: { fn: lessEqual, ref: cmpRef((a, b) => a <= b), gen: genTies },
  notEqual: { fn: notEqual, ref: cmpRef((a, b) => a !== b), gen: genTies },
};

const N_BINARY = 70_001;

for (const [name, c] of Object.entries(BINARY)) {
  testAll(`binary ${name}: ${N_BINARY} random pairs, same shape`, async (b) => {
    const [x, y] = c.gen(b, N_BINARY, 100 + name.length);
    const want = x.map((v, i) => rnd(b, c.ref(v, y[i])));
    await check(() => c.fn(T(b, x, [N_BINARY]), T(b, y, [N_BINARY])), want, {
      rtol: rtolOf(b),
      shape: [N_BINARY],
      msg: name,
    });
    // one operand a single element (the scalar fast paths), in both positions
    await check(
      () => c.fn(T(b, x, [N_BINARY]), T(b, [y[7]], [1])),
      x.map((v) => rnd(b, c.ref(v, y[7]))),
      {
        rtol: rtolOf(b),
        shape: [N_BINARY],
        msg: `${name} (tensor, [1])`,
      },
    );
    await check(
      () => c.fn(T(b, [x[3]], []), T(b, y, [N_BINARY])),
      y.map((v) => rnd(b, c.ref(x[3], v))),
      {
        rtol: rtolOf(b),
        shape: [N_BINARY],
        msg: `${name} (0-d, tensor)`,
      },
    );
  });
}

const BROADCAST_PAIRS: [number[], number[]][] = [
  [[3, 1], [1, 4]],
  [[2, 1, 5], [4, 1]],
  [[5], [2, 3, 5]],
  [[2, 3, 5], [3, 1]],
  [[1], [7]],
  [[], [3, 4]],
  [[4, 1, 3], [1, 5, 1]],
  [[2, 1, 3, 1, 2], [1, 4, 1, 5, 1]],
  [[6, 1], [6, 6]],
  [[1, 1, 1], [2, 3]],
  [[0, 3], [1, 3]],
  [[2, 0], []],
  [[3, 1], [3, 0]],
];

for (const [sa, sb] of BROADCAST_PAIRS) {
  testAll(`binary ops broadcast ${JSON.stringify(sa)} with ${JSON.stringify(sb)}`, async (b) => {
    for (const [name, c] of Object.entries(BINARY)) {
      const [x0, y0] = c.gen(b, Math.max(sizeOf(sa), sizeOf(sb), 1), 7);
      const x = x0.subarray(0, sizeOf(sa)), y = y0.subarray(0, sizeOf(sb));
      const r = bref([sa, sb], [x, y], (u, v) => rnd(b, c.ref(u, v)));
      await check(() => c.fn(T(b, x, sa), T(b, y, sb)), r.out, {
        rtol: rtolOf(b),
        shape: r.shape,
        msg: `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`,
      });
      // and the other way round
      const r2 = bref([sb, sa], [y, x], (u, v) => rnd(b, c.ref(u, v)));
      await check(() => c.fn(T(b, y, sb), T(b, x, sa)), r2.out, {
        rtol: rtolOf(b),
        shape: r2.shape,
        msg: `${name} ${JSON.stringify(sb)} ${JSON.stringify(sa)}`,
      });
    }
  });
}

testAll(
  "binary ops broadcast above 65,536 elements: [350001, 3] with [3] and [350001, 1]",
  async (b) => {
    const n = 350_001;
    const x = inputs(b, n * 3, 21, -5, 5);
    const row = inputs(b, 3, 22, -5, 5);
    const col = inputs(b, n, 23, -5, 5);
    const r1 = bref([[n, 3], [3]], [x, row], (u, v) => rnd(b, u * v));
    await check(() => mul(T(b, x, [n, 3]), T(b, row, [3])), r1.out, {
      rtol: rtolOf(b),
      shape: [n, 3],
    });
    const r2 = bref([[n, 1], [1, 3]], [col, row], (u, v) => rnd(b, u - v));
    await check(() => sub(T(b, col, [n, 1]), T(b, row, [1, 3])), r2.out, {
      rtol: rtolOf(b),
      shape: [n, 3],
    });
  },
);

testAll("add on 1,000,003 elements (same shape, scalar, broadcast)", async (b) => {
  const n = 1_000_003;
  const x = inputs(b, n, 31, -100, 100), y = inputs(b, n, 32, -100, 100);
  await check(() => add(T(b, x, [n]), T(b, y, [n])), x.map((v, i) => rnd(b, v + y[i])), {
    rtol: rtolOf(b),
    shape: [n],
  });
  await check(() => add(T(b, x, [n]), 0.375), x.map((v) => rnd(b, v + 0.375)), {
    rtol: rtolOf(b),
    shape: [n],
  });
});

testAll("JS numbers act as scalars of the tensor's dtype, on either side", async (b) => {
  const xs = [-2, -0.5, 0, 0.25, 1.5, 3];
  const x = () => T(b, xs, [2, 3]);
  const cases: [string, () => Tensor, (v: number) => number][] = [
    ["add(x, 2)", () => add(x(), 2), (v) => v + 2],
    ["add(2, x)", () => add(2, x()), (v) => 2 + v],
    ["sub(x, 0.1)", () => sub(x(), 0.1), (v) => v - rnd(b, 0.1)],
    ["sub(3, x)", () => sub(3, x()), (v) => 3 - v],
    ["mul(x, -4)", () => mul(x(), -4), (v) => v * -4],
    ["div(1, x)", () => div(1, x()), (v) => 1 / v],
    ["div(x, 8)", () => div(x(), 8), (v) => v / 8],
    ["pow(x, 2)", () => pow(x(), 2), (v) => v ** 2],
    ["pow(x, 3)", () => pow(x(), 3), (v) => v ** 3],
    ["pow(2, x)", () => pow(2, x()), (v) => 2 ** v],
    ["maximum(x, 0)", () => maximum(x(), 0), (v) => Math.max(v, 0)],
    ["minimum(0, x)", () => minimum(0, x()), (v) => Math.min(0, v)],
    ["greater(x, 0)", () => greater(x(), 0), (v) => (v > 0 ? 1 : 0)],
    ["less(0, x)", () => less(0, x()), (v) => (0 < v ? 1 : 0)],
    ["x.mul(3).add(1)", () => x().mul(3).add(1), (v) => v * 3 + 1],
    ["x.div(2).sub(1)", () => x().div(2).sub(1), (v) => v / 2 - 1],
    ["x.pow(0.5)", () => x().pow(0.5), (v) => Math.pow(v, 0.5)],
    ["x.maximum(1)", () => x().maximum(1), (v) => Math.max(v, 1)],
    ["x.equal(0.25)", () => x().equal(0.25), (v) => (v === 0.25 ? 1 : 0)],
  ];
  for (const [msg, build, f] of cases) {
    await check(build, xs.map((v) => rnd(b, f(v))), { rtol: rtolOf(b), shape: [2, 3], msg });
  }
  const y = tidy(() => add(x(), 1));
  equal(y.dtype, b.dtype);
  y.dispose();
});

testAll(
  "0-d tensors: op of two 0-d tensors is 0-d; 0-d broadcasts against any shape",
  async (b) => {
    await check(() => mul(T(b, [3], []), T(b, [-4], [])), [-12], { rtol: 0, shape: [] });
    await check(() => div(T(b, [1], []), T(b, [4], [])), [0.25], { rtol: 0, shape: [] });
    await check(() => add(T(b, [1, 2, 3, 4, 5, 6], [2, 1, 3]), T(b, [10], [])), [
      11,
      12,
      13,
      14,
      15,
      16,
    ], {
      rtol: 0,
      shape: [2, 1, 3],
    });
    await check(() => add(T(b, [5], []), 2), [7], { rtol: 0, shape: [] });
    await check(() => add(T(b, [], [0]), T(b, [1], [])), [], { rtol: 0, shape: [0] });
  },
);

testAll("binary IEEE cases: division by zero, NaN in max/min and comparisons, pow", async (b) => {
  const cases: [string, BinaryFn, number, number, number][] = [
    ["div", div, 1, 0, Infinity],
    ["div", div, -1, 0, -Infinity],
    ["div", div, 1, -0, -Infinity],
    ["div", div, 0, 0, NaN],
    ["div", div, Infinity, Infinity, NaN],
    ["div", div, 1, Infinity, 0],
    ["sub", sub, Infinity, Infinity, NaN],
    ["add", add, Infinity, -Infinity, NaN],
    ["add", add, Infinity, 1, Infinity],
    ["mul", mul, 0, Infinity, NaN],
    ["mul", mul, NaN, 0, NaN],
    ["add", add, NaN, 1, NaN],
    ["maximum", maximum, NaN, 1, NaN],
    ["maximum", maximum, 1, NaN, NaN],
    ["maximum", maximum, NaN, -Infinity, NaN],
    ["maximum", maximum, -Infinity, 2, 2],
    ["maximum", maximum, Infinity, 2, Infinity],
    ["minimum", minimum, NaN, 1, NaN],
    ["minimum", minimum, 1, NaN, NaN],
    ["minimum", minimum, -Infinity, 2, -Infinity],
    ["greater", greater, NaN, 1, 0],
    ["greater", greater, 1, NaN, 0],
    ["less", less, NaN, NaN, 0],
    ["equal", eq, NaN, NaN, 0],
    ["equal", eq, Infinity, Infinity, 1],
    ["equal", eq, 0, -0, 1],
    ["greaterEqual", greaterEqual, NaN, NaN, 0],
    ["lessEqual", lessEqual, 1, NaN, 0],
    ["notEqual", notEqual, NaN, NaN, 1],
    ["notEqual", notEqual, NaN, 1, 1],
    ["notEqual", notEqual, 2, 2, 0],
    ["greater", greater, Infinity, 1e30, 1],
    ["less", less, -Infinity, -1e30, 1],
    ["pow", pow, 0, 0, 1],
    ["pow", pow, NaN, 0, 1],
    ["pow", pow, 5, 0, 1],
    ["pow", pow, -2, 3, -8],
    ["pow", pow, -2, 2, 4],
    ["pow", pow, -2, -1, -0.5],
    ["pow", pow, -2, -2, 0.25],
    ["pow", pow, -3, 5, -243],
    ["pow", pow, -1.5, 4, 5.0625],
    ["pow", pow, -0.5, 7, -0.0078125],
    ["pow", pow, -8, 1 / 3, NaN],
    ["pow", pow, -2, 0.5, NaN],
    ["pow", pow, 0, 2, 0],
    ["pow", pow, 0, 0.5, 0],
    ["pow", pow, 0, -1, Infinity],
    ["pow", pow, 0, -2, Infinity],
    ["pow", pow, 2, 10, 1024],
    ["pow", pow, 2, -3, 0.125],
    ["pow", pow, 4, 0.5, 2],
    ["pow", pow, 1, 1e6, 1],
    ["pow", pow, NaN, 1, NaN],
    ["pow", pow, 2, NaN, NaN],
    ["pow", pow, Infinity, 2, Infinity],
    ["pow", pow, Infinity, -1, 0],
    ["pow", pow, 10, 40, Infinity], // overflows f32 (and is 1e40 in f64)
  ];
  for (const [name, fn, x, y, want] of cases) {
    const w = name === "pow" && x === 10 && y === 40 ? rnd(b, 1e40) : want;
    // pow goes through exp2/log2 on the GPU: allow 1e-6 relative in f32 (a few ulp)
    await check(() => fn(T(b, [x], [1]), T(b, [y], [1])), [w], {
      rtol: b.dtype === "f64" ? 1e-14 : 1e-6,
      msg: `${name}(${x}, ${y})`,
    });
    // the same through the general broadcasting kernel (shapes [2,1] and [1,2])
    await check(() => fn(T(b, [x, x], [2, 1]), T(b, [y, y], [1, 2])), [w, w, w, w], {
      rtol: b.dtype === "f64" ? 1e-14 : 1e-6,
      msg: `${name}(${x}, ${y}) broadcast`,
    });
  }
});

testAll("pow of negative bases with integer exponents, 70,001 values", async (b) => {
  const n = 70_001;
  const r = rng(77);
  const x = Float64Array.from({ length: n }, () => rnd(b, -(0.5 + 2.5 * r())));
  const y = Float64Array.from({ length: n }, () => Math.floor(r() * 13) - 6); // -6 … 6
  await check(() => pow(T(b, x, [n]), T(b, y, [n])), x.map((v, i) => rnd(b, Math.pow(v, y[i]))), {
    // |y log2 |x|| < 10 here, so exp2/log2-based pow keeps ~1e-6; 2e-6 leaves margin
    rtol: b.dtype === "f64" ? 1e-12 : 2e-6,
    shape: [n],
  });
});

testAll("binary ops reject mismatched dtypes and non-broadcastable shapes", (b) => {
  throws(() => add(T(b, [1, 2, 3], [3]), T(b, [1, 2], [2])), /add: .*\[3\].*\[2\].*broadcast/);
  throws(
    () => mul(T(b, [1, 2, 3, 4, 5, 6], [2, 3]), T(b, [1, 2], [2, 1]).reshape([1, 2])),
    /mul: .*broadcast/,
  );
  const other = b.dtype === "f64" ? "f32" : b.dev.kind === "cpu" ? "f64" : null;
  if (other) {
    const x = T(b, [1], [1]);
    const y = tensor([1], { dtype: other, device: b.dev });
    throws(() => add(x, y), /add: operands have different dtypes/);
    x.dispose();
    y.dispose();
  }
  throws(() => add(1 as unknown as Tensor, 2), /add: at least one operand must be a Tensor/);
});

// ---------------------------------------------------------------- where

const WHERE_SHAPES: [number[], number[], number[]][] = [
  [[6], [6], [6]],
  [[3, 1], [1, 4], []],
  [[2, 1, 5], [4, 1], [5]],
  [[], [2, 3], [2, 3]],
  [[4, 1, 3], [1, 5, 1], [4, 5, 3]],
  [[1], [1], [1]],
  [[0, 2], [2], []],
];

for (const [sc, sa, sb] of WHERE_SHAPES) {
  testAll(
    `where broadcasts cond ${JSON.stringify(sc)}, a ${JSON.stringify(sa)}, b ${JSON.stringify(sb)}`,
    async (b) => {
      const r = rng(sizeOf(sc) + 3);
      // conditions: 0, 1, other non-zero values, -0, NaN (non-zero: picks a, as NaN != 0)
      const pool = [0, 1, 0, 2.5, -0, -1, NaN, 0];
      const c = Float64Array.from(
        { length: sizeOf(sc) },
        () => pool[Math.floor(r() * pool.length)],
      );
      const x = inputs(b, sizeOf(sa), 41, -5, 5), y = inputs(b, sizeOf(sb), 42, 10, 20);
      const ref = bref([sc, sa, sb], [c, x, y], (cv, av, bv) => (cv !== 0 ? av : bv));
      await check(() => where(T(b, c, sc), T(b, x, sa), T(b, y, sb)), ref.out, {
        rtol: 0,
        shape: ref.shape,
      });
    },
  );
}

testAll(
  "where with JS numbers, comparisons as conditions, and above 65,536 elements",
  async (b) => {
    const n = 70_001;
    const x = inputs(b, n, 51, -1, 1);
    // relu written with where and a comparison
    await check(
      () => {
        const xt = T(b, x, [n]);
        return where(greater(xt, 0), xt, 0);
      },
      x.map((v) => (v > 0 ? v : 0)),
      { rtol: 0, shape: [n] },
    );
    await check(() => where(less(T(b, x, [n]), 0), -1, 1), x.map((v) => (v < 0 ? -1 : 1)), {
      rtol: 0,
      shape: [n],
    });
    // [n, 1] condition against [1, 3] values
    const col = x.map((v) => (v > 0.5 ? 1 : 0));
    const ref = bref([[n, 1], [1, 3], []], [col, [1, 2, 3], [-7]], (c, a, bb) => (c ? a : bb));
    await check(() => where(T(b, col, [n, 1]), T(b, [1, 2, 3], [1, 3]), T(b, [-7], [])), ref.out, {
      rtol: 0,
      shape: [n, 3],
    });
    throws(() => where(T(b, [1, 0], [2]), T(b, [1, 2, 3], [3]), 0), /where: .*broadcast/);
  },
);

// ---------------------------------------------------------------- chains

testAll("chains of elementwise ops (with broadcasting) above 65,536 elements", async (b) => {
  const n = 70_001;
  const x = inputs(b, n, 61, -3, 3);
  const rows = inputs(b, 3, 62, -1, 1);
  // y = sigmoid(2x - 1) · e^(-x²) + (tanh x + 2) / 2: positive terms, no cancellation, so
  // a few ulp per op stay within 1e-5 relative of the all-f64 value
  const f = (v: number) =>
    (1 / (1 + Math.exp(-(2 * v - 1)))) * Math.exp(-v * v) + (Math.tanh(v) + 2) / 2;
  await check(
    () => {
      const t = T(b, x, [n]);
      return add(mul(sigmoid(sub(mul(t, 2), 1)), exp(neg(square(t)))), div(add(tanh(t), 2), 2));
    },
    x.map((v) => rnd(b, f(v))),
    { rtol: rtolOf(b), shape: [n] },
  );
  // z = sqrt(|x[:, None] - r[None, :]|) · cos(x)²  + 1, an [n, 3] result from an [n, 1] and a [3]
  const ref = bref(
    [[n, 1], [3]],
    [x, rows],
    (u, v) => rnd(b, Math.sqrt(Math.abs(u - v)) * Math.cos(u) ** 2 + 1),
  );
  await check(
    () => {
      const t = T(b, x, [n, 1]);
      return add(mul(sqrt(abs(sub(t, T(b, rows, [3])))), square(cos(t))), 1);
    },
    ref.out,
    {
      rtol: rtolOf(b),
      // cos near its zeros: see the sin/cos note above (absolute 1e-6 in f32)
      atol: b.dtype === "f32" ? 1e-6 : 0,
      shape: [n, 3],
    },
  );
});

Deno.test("sigmoid far on the negative side (CPU f64): e^v / (1 + e^v) to rounding, down to subnormals", async () => {
  // the CPU evaluates 1 / (1 + e^−v) above −700 and e^v below (src/backend/cpu/elementwise.ts)
  const v = [-1, -30, -300, -699.5, -700, -700.5, -720, -744];
  const ref = v.map((x) => Math.exp(x) / (1 + Math.exp(x)));
  const got = await sigmoid(tensor(v, { dtype: "f64", device: cpu })).data();
  for (let i = 0; i < v.length; i++) {
    const tol = ref[i] < 2.3e-308 ? 4.9e-324 : 4 * 2 ** -52 * ref[i]; // one subnormal step
    ok(Math.abs(got[i] - ref[i]) <= tol, `sigmoid(${v[i]}) = ${got[i]}, expected ${ref[i]}`);
  }
});
