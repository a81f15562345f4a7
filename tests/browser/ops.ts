/**
 * Every op of the public API on a WebGPU device in the page against the CPU backend in
 * f64 on the same (f32-rounded) inputs. Sizes cross 65,536 where a kernel loops or folds
 * its grid, and broadcasts along long leading axes reach the split kernels of both tunings.
 */
import * as c from "../../mod.ts";
import type { Device, Tensor } from "../../mod.ts";
import { randArray } from "../inputs.ts";
import { close, test } from "./harness.ts";

interface In {
  shape: number[];
  values: Float64Array;
  dtype?: "i32";
}

/** One op: its inputs, and the call (creation ops use the placement only). */
interface OpCase {
  name: string;
  inputs: In[];
  f: (o: { device: Device; dtype: "f32" | "f64" }, ...xs: Tensor[]) => Tensor;
  /** f32 relative tolerance (default 1e-5) and absolute one (default 1e-6). */
  rtol?: number;
  /** The reference's dtype on the CPU (default f64; f32 for the random generators). */
  ref?: "f32" | "f64";
  atol?: number;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const U = (shape: number[], seed: number, lo = -1, hi = 1): In => ({
  shape,
  values: randArray(size(shape), seed, lo, hi),
});
/** Integers in [0, k): exact in every dtype, so comparisons tie and differ on purpose. */
const ints = (shape: number[], seed: number, k: number): In => ({
  shape,
  values: randArray(size(shape), seed, 0, k).map(Math.floor),
});
const idx = (values: number[]): In => ({
  shape: [values.length],
  values: Float64Array.from(values),
  dtype: "i32",
});
/** Diagonally dominant matrices: well conditioned, positive determinant. */
function wellCond(batch: number[], n: number, seed: number): In {
  const v = randArray(size(batch) * n * n, seed, -0.4, 0.4);
  for (let b = 0; b < size(batch); b++) {
    for (let i = 0; i < n; i++) v[b * n * n + i * n + i] += 2 + 0.25 * i;
  }
  return { shape: [...batch, n, n], values: v };
}
/** Special values among ordinary ones: NaN, ±∞, ±0, a subnormal-free tiny, a large. */
const SPECIAL: In = {
  shape: [2, 5],
  values: Float64Array.from([NaN, Infinity, -Infinity, 0, -0, 1e-30, 3e38, -2.5, 1, 0.5]),
};

const BIG = 70_001; // above lavapipe's 65,535-iteration loop budget and one 2-D grid row

const unary: [string, (x: Tensor) => Tensor, number, number][] = [
  ["abs", c.abs, -2, 2],
  ["cos", c.cos, -3, 3],
  ["exp", c.exp, -5, 5],
  ["expm1", c.expm1, -2, 2],
  ["log", c.log, 0.01, 10],
  ["log1p", c.log1p, -0.9, 5],
  ["neg", c.neg, -2, 2],
  ["reciprocal", c.reciprocal, 0.1, 4],
  ["sigmoid", c.sigmoid, -8, 8],
  ["sign", c.sign, -2, 2],
  ["sin", c.sin, -3, 3],
  ["sqrt", c.sqrt, 0, 9],
  ["square", c.square, -3, 3],
  ["tanh", c.tanh, -4, 4],
  ["logcosh", c.logcosh, -20, 20],
  ["softplus", c.softplus, -30, 30],
  ["stopGradient", c.stopGradient, -2, 2],
  ["sinh", c.sinh, -5, 5],
  ["cosh", c.cosh, -5, 5],
  ["atan", c.atan, -20, 20],
  ["exp2", c.exp2, -10, 10],
  ["log2", c.log2, 0.01, 100],
];

const binary: [string, (a: Tensor, b: Tensor) => Tensor][] = [
  ["add", c.add],
  ["sub", c.sub],
  ["mul", c.mul],
  ["div", c.div],
  ["maximum", c.maximum],
  ["minimum", c.minimum],
  ["greater", c.greater],
  ["greaterEqual", c.greaterEqual],
  ["less", c.less],
  ["lessEqual", c.lessEqual],
  ["equal", c.equal],
  ["notEqual", c.notEqual],
];

export const OPS: OpCase[] = [
  ...unary.map(([name, f, lo, hi], i): OpCase => ({
    name: `${name} [${BIG}]`,
    inputs: [U([BIG], 10 + i, lo, hi)],
    f: (_, x) => f(x),
    // exp and friends: WGSL allows a few ulp (exp: 3 + 2|x| ulp)
    rtol: 4e-6 * (name === "exp" ? 4 : 1) + 1e-5,
  })),
  ...binary.map(([name, f], i): OpCase => ({
    name: `${name}, broadcast [3,1,5] with [4,1]`,
    inputs: [ints([3, 1, 5], 40 + i, 4), ints([4, 1], 60 + i, 4)].map((a) => ({
      ...a,
      values: a.values.map((v) => v - 1.5), // ±0.5, ±1.5: never 0, often equal
    })),
    f: (_, a, b) => f(a, b),
  })),
  {
    name: "pow: positive base, any exponent; negative base, integer exponents",
    inputs: [U([4, 5], 80, 0.1, 3), U([4, 5], 81, -3, 3), ints([5], 82, 4)],
    f: (_, a, b, k) => c.pow(a, b).add(c.pow(a.neg(), k)),
    rtol: 3e-5,
  },
  {
    name: "atan2 over all four quadrants, and clip",
    inputs: [U([7, 9], 87, -2, 2), U([9], 88, -2, 2)],
    f: (_, y, x) => c.concat([c.atan2(y, x).reshape([-1]), c.clip(y, -0.5, 0.75).reshape([-1])]),
  },
  {
    name: "where with a broadcast condition",
    inputs: [ints([1, 6], 83, 2), U([4, 6], 84), U([4, 1], 85)],
    f: (_, cond, a, b) => c.where(cond, a, b),
  },
  {
    name: "special values through add, maximum, minimum, exp, log, sqrt, tanh, sigmoid",
    inputs: [SPECIAL],
    f: (_, x) =>
      c.stack([
        x.add(1),
        c.maximum(x, 0.25),
        c.minimum(x, 0.25),
        c.exp(x.mul(1e-3)),
        c.log(c.abs(x)),
        c.sqrt(c.abs(x)),
        c.tanh(x),
        c.sigmoid(x),
        c.abs(x),
        c.sign(x),
      ]),
  },
  {
    name: "special values through sum, max, min (NaN wins, ∞ − ∞ is NaN)",
    inputs: [SPECIAL],
    f: (_, x) =>
      c.concat([
        c.sum(x, 1),
        c.max(x, 1),
        c.min(x, 1),
        c.sum(x.slice([1, 0], [2, 5])).reshape([1]),
      ]),
  },
  {
    name: "astype f32 → i32 → f32 (truncation toward 0)",
    inputs: [U([1000], 86, -50, 50)],
    f: (_, x) => c.astype(c.astype(x.astype("f32"), "i32"), "f32"),
  },
  // reductions
  ...(["sum", "mean", "max", "min", "logsumexp"] as const).flatMap((r, i): OpCase[] => {
    const fn = (x: Tensor, ax?: number | number[], k?: boolean) =>
      r === "logsumexp" ? c.logsumexp(x, ax, k) : c[r](x, ax, k);
    return [
      { name: `${r} of all [1000003]`, inputs: [U([1_000_003], 90 + i)], f: (_, x) => fn(x) },
      {
        name: `${r} over axis 1 of [3,${BIG}]`,
        inputs: [U([3, BIG], 95 + i)],
        f: (_, x) => fn(x, 1),
      },
      {
        name: `${r} over axis 0 of [${BIG},3]`,
        inputs: [U([BIG, 3], 100 + i)],
        f: (_, x) => fn(x, 0),
      },
      {
        name: `${r} over axes [0,2] of [30,5,300], keepdims`,
        inputs: [U([30, 5, 300], 105 + i)],
        f: (_, x) => fn(x, [0, 2], true),
      },
    ];
  }),
  {
    name: "prod, variance, std (ddof 1), cumsum, argmax, argmin over axes of [6,70]",
    inputs: [U([6, 70], 110, 0.5, 1.5)],
    f: (_, x) =>
      c.concat([
        c.prod(x, 0),
        c.variance(x, 1, { ddof: 1 }),
        c.std(x, 0),
        c.cumsum(x, 1).reshape([-1]),
        c.astype(c.argmax(x, 1), x.dtype),
        c.astype(c.argmin(x, 0), x.dtype),
      ]),
    rtol: 2e-5,
  },
  {
    name: `cumsum of ${BIG}`,
    inputs: [U([BIG], 111)],
    f: (_, x) => c.cumsum(x),
    rtol: 1e-4,
    atol: 1e-3,
  },
  {
    name: "softmax, logSoftmax over the last axis",
    inputs: [U([5, 300], 112, -10, 10)],
    f: (_, x) => c.concat([c.softmax(x), c.logSoftmax(x)]),
  },
  // matmul: tiles, register blocks, K split, batches and vectors
  {
    name: "matmul [33,47]·[47,29]",
    inputs: [U([33, 47], 120), U([47, 29], 121)],
    f: (_, a, b) => c.matmul(a, b),
  },
  {
    name: "matmul [130,70]·[70,90]",
    inputs: [U([130, 70], 122), U([70, 90], 123)],
    f: (_, a, b) => c.matmul(a, b),
  },
  {
    name: "matmul with K = 9000 (split over K)",
    inputs: [U([5, 9000], 124), U([9000, 3], 125)],
    f: (_, a, b) => c.matmul(a, b),
    rtol: 1e-4,
    atol: 1e-4,
  },
  {
    name: "matmul batched [2,3,17,9]·[9,5] (broadcast operand)",
    inputs: [U([2, 3, 17, 9], 126), U([9, 5], 127)],
    f: (_, a, b) => c.matmul(a, b),
  },
  {
    name: "matmul vector·matrix, matrix·vector, dot",
    inputs: [U([40], 128), U([40, 30], 129), U([30], 130)],
    f: (_, u, a, w) =>
      c.concat([c.matmul(u, a), c.matmul(a, w), c.dot(c.matmul(u, a), w).reshape([1])]),
  },
  {
    name: "outer and einsum (batched contraction, trace, transpose)",
    inputs: [U([7], 131), U([5], 132), U([3, 4, 6], 133), U([3, 6, 5], 134)],
    f: (_, u, w, a, b) =>
      c.concat([
        c.outer(u, w).reshape([-1]),
        c.einsum("bij,bjk->bik", a, b).reshape([-1]),
        c.einsum("ij->ji", c.reshape(u.slice([0], [6]), [2, 3])).reshape([-1]),
        c.einsum("bii->b", c.slice(a, [0, 0, 0], [3, 4, 4])),
      ]),
  },
  // small dense linear algebra
  {
    name: "solve, batched A, matrix right-hand side",
    inputs: [wellCond([3], 5, 140), U([5, 2], 141)],
    f: (_, a, b) => c.solve(a, b),
    rtol: 1e-4,
    atol: 1e-5,
  },
  { name: "inv", inputs: [wellCond([], 6, 142)], f: (_, a) => c.inv(a), rtol: 1e-4, atol: 1e-5 },
  {
    name: "det, logdet, trace (batched)",
    inputs: [wellCond([4], 5, 143)],
    f: (_, a) => c.concat([c.det(a), c.logdet(a), c.trace(a)]),
    rtol: 1e-4,
  },
  {
    name: "cholesky, choleskySolve (batched)",
    inputs: [wellCond([2], 6, 144), U([6, 3], 145)],
    f: (_, a, b) => {
      const spd = c.matmul(c.mT(a), a);
      const l = c.cholesky(spd);
      return c.concat([l.reshape([-1]), c.choleskySolve(l, b).reshape([-1])]);
    },
    rtol: 1e-4,
    atol: 1e-5,
  },
  {
    name: "eigvalsh, and eigh's V diag(w) Vᵀ rebuilding the matrix",
    inputs: [wellCond([2], 7, 146)],
    f: (_, a) => {
      const sym = a.add(c.mT(a));
      const [w, v] = c.eigh(sym);
      const rebuilt = c.matmul(v.mul(c.expandDims(w, 1)), c.mT(v));
      return c.concat([c.eigvalsh(sym).reshape([-1]), rebuilt.reshape([-1])]);
    },
    rtol: 1e-4,
    atol: 1e-4,
  },
  {
    name: "norm: Frobenius, 1, ∞ and 2 along axes",
    inputs: [U([5, 8], 147)],
    f: (_, x) =>
      c.concat([
        c.norm(x).reshape([1]),
        c.norm(x, 1, 0),
        c.norm(x, Infinity, 1),
        c.norm(x, 2, 1),
      ]),
  },
  {
    name: "diag, diagonal, triu, tril",
    inputs: [U([5, 6], 148), U([4], 149)],
    f: (_, x, v) =>
      c.concat([
        c.diag(v, 1).reshape([-1]),
        c.diagonal(x, -1),
        c.triu(x, 1).reshape([-1]),
        c.tril(x).reshape([-1]),
      ]),
  },
  // movement
  {
    name: "reshape, transpose, mT",
    inputs: [U([4, 5, 6], 150)],
    f: (_, x) => c.concat([c.transpose(x, [2, 0, 1]).reshape([-1]), c.mT(x).reshape([-1])]),
  },
  {
    name: "broadcastTo, expandDims, squeeze",
    inputs: [U([3, 1], 151)],
    f: (_, x) => c.broadcastTo(c.expandDims(c.squeeze(x, 1), 0), [2, 4, 3]),
  },
  {
    name: "slice with negative bounds and steps",
    inputs: [U([9, 8], 152)],
    f: (_, x) => c.slice(x, [-1, 1], [-Infinity, 8], [-2, 3]),
  },
  {
    name: `pad and slice of a long vector [${BIG}]`,
    inputs: [U([BIG], 153)],
    f: (_, x) => c.pad(x, [[3, 5]], 0.5).slice([1], [BIG + 7]).mul(2),
  },
  {
    name: "flip and roll",
    inputs: [U([4, 7], 165)],
    f: (_, x) => c.concat([c.flip(x, 1).reshape([-1]), c.roll(x, [1, -3], [0, 1]).reshape([-1])]),
  },
  {
    name: "concat and stack",
    inputs: [U([2, 3], 154), U([2, 1], 155), U([2, 3], 156)],
    f: (_, a, b, d) =>
      c.concat([c.concat([a, b, d], 1).reshape([-1]), c.stack([a, d], 1).reshape([-1])]),
  },
  {
    name: "gather with repeated and negative indices",
    inputs: [U([5, 4], 157), idx([4, 0, 4, -1, 2])],
    f: (_, x, i) => c.gather(x, i, 0),
  },
  {
    name: "scatterAdd with repeated indices (sums collide)",
    inputs: [U([6, 3], 158), idx([2, 0, 2, 1, 2, 0])],
    f: (_, u, i) => c.scatterAdd(u, i, 0, [4, 3]),
  },
  {
    name: `scatterAdd of ${BIG} rows into 7`,
    inputs: [U([BIG], 159), {
      shape: [BIG],
      values: Float64Array.from({ length: BIG }, (_, k) => (k * 5) % 7),
      dtype: "i32",
    }],
    f: (_, u, i) => c.scatterAdd(u, i, 0, [7]),
    rtol: 1e-4,
    atol: 1e-3,
  },
  // broadcasts along long leading axes: split kernels (short loops on GPUs, long on CPU-like)
  {
    name: "broadcast add along a leading axis of 40 ([40,2048] + [2048])",
    inputs: [U([40, 2048], 160), U([2048], 161)],
    f: (_, a, b) => c.add(a, b).mul(b),
  },
  {
    name: "broadcast add along a leading axis of 1000 ([1000,512] + [512])",
    inputs: [U([1000, 512], 162), U([512], 163)],
    f: (_, a, b) => c.add(a, b).mul(b),
  },
  // creation
  {
    name: "arange, linspace, eye, full, zeros, ones",
    inputs: [],
    f: (o) =>
      c.concat([
        c.arange(-3, 7, 0.5, o),
        c.linspace(-1, 2, 11, o),
        c.eye(4, 5, { ...o, k: 1 }).reshape([-1]),
        c.full([3], 2.5, o),
        c.zeros([2], o),
        c.ones([2], o),
      ]),
  },
  {
    name: "uniform, normal, rademacher: the CPU's numbers for the same seeds",
    inputs: [],
    f: (o) =>
      c.concat([
        c.uniform([BIG], { seed: 7, ...o }),
        c.normal([1000], { seed: 8, ...o }),
        c.rademacher([1000], { seed: 9, ...o }),
      ]),
    ref: "f32",
  },
  {
    name: `arange of ${BIG}`,
    inputs: [],
    f: (o) => c.arange(0, BIG, 1, o).mul(0.5),
  },
];

/** Runs `op` on `dev` in `dtype`. */
function run(op: OpCase, device: Device, dtype: "f32" | "f64"): Tensor {
  const xs = op.inputs.map((a) =>
    c.tensor(a.values, { shape: a.shape, dtype: a.dtype ?? dtype, device })
  );
  try {
    return c.tidy(() => op.f({ device, dtype }, ...xs));
  } finally {
    xs.forEach((x) => x.dispose());
  }
}

/** Registers every op case on each GPU device (the CPU in f64 is the reference). */
export async function opTests(gpus: [string, Device][], cpu: Device): Promise<void> {
  for (const op of OPS) {
    let want: ArrayLike<number> = [], shape: readonly number[] = [], refError = "";
    try {
      const ref = run(op, cpu, op.ref ?? "f64");
      want = await ref.data();
      shape = ref.shape;
      ref.dispose();
    } catch (e) {
      refError = `the CPU reference failed: ${e}`;
    }
    for (const [label, dev] of gpus) {
      await test(`op ${op.name} [${label}]`, async () => {
        if (refError) throw new Error(refError);
        const before = c.memory();
        const got = run(op, dev, "f32");
        close(
          await got.data(),
          // the reference, rounded to f32 the way the GPU's result must be
          Float32Array.from(want),
          op.rtol ?? 1e-5,
          op.atol ?? 1e-6,
          op.name,
        );
        if (JSON.stringify(got.shape) !== JSON.stringify(shape)) {
          throw new Error(`shape ${JSON.stringify(got.shape)}, expected ${JSON.stringify(shape)}`);
        }
        got.dispose();
        const after = c.memory();
        // tensors an earlier (failed) test left behind may be reclaimed by the garbage
        // collector meanwhile: those leave the live count through `reclaimed`
        const leaked = after.tensors - before.tensors + after.reclaimed - before.reclaimed;
        if (leaked !== 0) throw new Error(`${leaked} tensors leaked`);
      });
    }
  }
}
