/**
 * Reductions (sum, max, min, mean) on every backend, checked against float64 references
 * computed here: any set of axes (single, several non-adjacent, negative, all), keepdims,
 * empty reductions, NaN propagation, every kernel layout above 65,536 elements, and the
 * accuracy of f32 sums of a million terms.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  full,
  max,
  mean,
  memory,
  min,
  sum,
  type Tensor,
  tensor,
  tidy,
  uniform,
  zeros,
} from "../mod.ts";
import { assertNoLeak, type Backend, randArray, rng, testAll } from "./helpers.ts";

type Op = "sum" | "max" | "min" | "mean";
const OPS: Record<Op, (x: Tensor, axis?: number | number[], keepdims?: boolean) => Tensor> = {
  sum,
  max,
  min,
  mean,
};

const sizeOf = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);

function T(b: Backend, data: ArrayLike<number>, shape: readonly number[]): Tensor {
  return tensor(Float64Array.from(data), { shape, dtype: b.dtype, device: b.dev });
}

/** Inputs: f32-representable for f32 backends, full 53-bit values for f64. */
function inputs(b: Backend, n: number, seed: number, lo = -1, hi = 1): Float64Array {
  if (b.dtype === "f32") return randArray(n, seed, lo, hi);
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * (r() + r() * 2 ** -32));
}

/**
 * For each input element: the index of its output entry and its position among the
 * reduced elements (row-major over the reduced axes). Written independently of the
 * library's reduction plans.
 */
function indexer(shape: readonly number[], axes: readonly number[]) {
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const outShape = kept.map((i) => shape[i]);
  const count = sizeOf(axes.map((a) => shape[a]));
  const idx = new Array(shape.length).fill(0);
  return {
    outShape,
    outSize: sizeOf(outShape),
    count,
    /** [output index, reduced index] of flat input index i */
    at(i: number): [number, number] {
      let rem = i;
      for (let d = shape.length - 1; d >= 0; d--) {
        idx[d] = rem % shape[d];
        rem = Math.floor(rem / shape[d]);
      }
      let o = 0, r = 0;
      for (const d of kept) o = o * shape[d] + idx[d];
      for (const d of axes) r = r * shape[d] + idx[d];
      return [o, r];
    },
  };
}

/** f64 reference of a reduction, plus Σ|x| per output (the scale of a sum's rounding error). */
function reference(
  op: Op,
  x: ArrayLike<number>,
  shape: readonly number[],
  axes: readonly number[],
): { out: Float64Array; scale: Float64Array; outShape: number[] } {
  const ix = indexer(shape, axes);
  const out = new Float64Array(ix.outSize).fill(
    op === "max" ? -Infinity : op === "min" ? Infinity : 0,
  );
  const scale = new Float64Array(ix.outSize);
  for (let i = 0; i < x.length; i++) {
    const [o] = ix.at(i);
    const v = x[i];
    if (op === "sum" || op === "mean") out[o] += v;
    else if (Number.isNaN(v) || Number.isNaN(out[o])) out[o] = NaN;
    else out[o] = op === "max" ? Math.max(out[o], v) : Math.min(out[o], v);
    scale[o] += Math.abs(v);
  }
  if (op === "mean") {
    for (let o = 0; o < out.length; o++) {
      out[o] /= ix.count;
      scale[o] /= ix.count;
    }
  }
  return { out, scale, outShape: ix.outShape };
}

/**
 * Checks y against the reference: max/min exactly (they round nothing); sum/mean to
 * `rtol` of Σ|x| (the natural bound for a rounded sum), or exactly when rtol is 0.
 */
async function expectReduced(
  y: Tensor,
  ref: { out: Float64Array; scale: Float64Array },
  shape: readonly number[],
  rtol: number,
  msg: string,
): Promise<void> {
  deepEqual(y.shape, shape, `${msg}: shape`);
  const a = await y.data();
  equal(a.length, ref.out.length, `${msg}: length`);
  for (let i = 0; i < a.length; i++) {
    const e = ref.out[i];
    if (Number.isNaN(e)) {
      ok(Number.isNaN(a[i]), `${msg}: entry ${i} is ${a[i]}, expected NaN`);
    } else if (!Number.isFinite(e)) {
      equal(a[i], e, `${msg}: entry ${i}`);
    } else {
      const err = Math.abs(a[i] - e);
      ok(
        err <= rtol * ref.scale[i],
        `${msg}: entry ${i} is ${a[i]}, expected ${e} (|diff| ${err}, allowed ${
          rtol * ref.scale[i]
        })`,
      );
    }
  }
}

/** rtol against Σ|x| for rounded sums of a few hundred terms. */
const sumTol = (b: Backend) => (b.dtype === "f64" ? 1e-12 : 1e-6);

/** Runs a reduction in a tidy scope, checks it, disposes it and checks for leaks. */
async function checkOp(
  b: Backend,
  op: Op,
  x: ArrayLike<number>,
  shape: readonly number[],
  axis: number | number[] | undefined,
  keepdims: boolean,
  normAxes: number[],
  rtol: number,
): Promise<void> {
  const msg = `${op}(${JSON.stringify(shape)}, axis ${JSON.stringify(axis)}, keepdims ${keepdims})`;
  const base = memory();
  const ref = reference(op, x, shape, normAxes);
  const outShape = keepdims ? shape.map((d, i) => (normAxes.includes(i) ? 1 : d)) : ref.outShape;
  const y = tidy(() => OPS[op](T(b, x, shape), axis, keepdims));
  try {
    await expectReduced(y, ref, outShape, op === "max" || op === "min" ? 0 : rtol, msg);
  } finally {
    y.dispose();
  }
  assertNoLeak(base, msg);
}

// ---------------------------------------------------------------- axis sets

const SHAPE = [3, 4, 5, 2];

/** Every subset of the axes of [3,4,5,2]: single, adjacent, non-adjacent, all, none. */
const SUBSETS: number[][] = [];
for (let m = 0; m < 16; m++) SUBSETS.push([0, 1, 2, 3].filter((a) => (m >> a) & 1));

for (const op of ["sum", "max", "min", "mean"] as const) {
  testAll(
    `${op} over every subset of the axes of [3,4,5,2], with and without keepdims`,
    async (b) => {
      const x = inputs(b, sizeOf(SHAPE), 3);
      for (const axes of SUBSETS) {
        for (const keepdims of [false, true]) {
          await checkOp(b, op, x, SHAPE, axes, keepdims, axes, sumTol(b));
        }
      }
    },
  );
}

testAll("negative axes, a single number, unsorted lists, and no axis (all)", async (b) => {
  const x = inputs(b, sizeOf(SHAPE), 4);
  const cases: [number | number[] | undefined, number[]][] = [
    [-1, [3]],
    [-4, [0]],
    [2, [2]],
    [[-2, -4], [0, 2]],
    [[2, 0], [0, 2]],
    [[3, -3], [1, 3]],
    [[-1, 0, 1], [0, 1, 3]],
    [undefined, [0, 1, 2, 3]],
  ];
  for (const op of ["sum", "max", "min", "mean"] as const) {
    for (const [axis, norm] of cases) {
      for (const keepdims of [false, true]) {
        await checkOp(b, op, x, SHAPE, axis, keepdims, norm, sumTol(b));
      }
    }
  }
});

testAll("reducing everything gives a 0-d tensor (or all-ones shape with keepdims)", async (b) => {
  const x = [1.5, -2, 3.25, 4, 0.5, -1];
  const base = memory();
  const t = T(b, x, [2, 3]);
  const s = sum(t);
  deepEqual(s.shape, []);
  equal(await s.item(), 6.25);
  const k = max(t, undefined, true);
  deepEqual(k.shape, [1, 1]);
  equal(await k.item(), 4);
  const m = t.mean();
  equal(await m.item(), b.dtype === "f32" ? Math.fround(6.25 / 6) : 6.25 / 6);
  const mn = t.min([0, 1]);
  equal(await mn.item(), -2);
  const z = tidy(() => T(b, [7], []).sum());
  deepEqual(z.shape, []);
  equal(await z.item(), 7);
  for (const u of [t, s, k, m, mn, z]) u.dispose();
  assertNoLeak(base);
});

testAll("size-1 axes: reducing them copies; keeping them does not change values", async (b) => {
  const x = inputs(b, 12, 5);
  for (const op of ["sum", "max", "min", "mean"] as const) {
    await checkOp(b, op, x, [3, 1, 4], 1, false, [1], sumTol(b));
    await checkOp(b, op, x, [3, 1, 4], [0, 1], true, [0, 1], sumTol(b));
    await checkOp(b, op, x, [1, 12, 1], [0, 2], false, [0, 2], sumTol(b));
    await checkOp(b, op, x, [1, 12, 1], 1, false, [1], sumTol(b));
  }
});

// ---------------------------------------------------------------- empty reductions

testAll("empty reductions: sum of nothing is 0, mean is NaN, max/min throw", async (b) => {
  // leave non-zero data in pooled buffers first, so a kernel that reads an empty input
  // (rather than writing zeros) is caught
  for (const n of [1, 4, 64]) {
    const junk = full([n], 7, { dtype: b.dtype, device: b.dev });
    await junk.data();
    junk.dispose();
  }
  const base = memory();
  const cases: [number[], number | number[] | undefined, number[], number][] = [
    [[0], undefined, [], 0],
    [[0], 0, [], 0],
    [[3, 0], 1, [3], 0],
    [[0, 4], 0, [4], 0],
    [[0, 4], 1, [0], 0],
    [[3, 0], 0, [0], 0],
    [[2, 0, 3], [0, 2], [0], 0],
    [[2, 0, 3], 1, [2, 3], 0],
    [[2, 0, 3], [1, 2], [2], 0],
  ];
  for (const [shape, axis, outShape] of cases) {
    const msg = `sum(zeros(${JSON.stringify(shape)}), ${JSON.stringify(axis)})`;
    const y = tidy(() => sum(zeros(shape, { dtype: b.dtype, device: b.dev }), axis));
    deepEqual(y.shape, outShape, msg);
    const d = await y.data();
    equal(d.length, sizeOf(outShape), msg);
    ok(d.every((v) => v === 0), `${msg}: got ${Array.from(d)}`);
    y.dispose();
    const k = tidy(() => sum(zeros(shape, { dtype: b.dtype, device: b.dev }), axis, true));
    equal(k.rank, shape.length, `${msg} keepdims`);
    k.dispose();
  }
  // mean over nothing: 0 / 0 = NaN (as NumPy)
  const m = tidy(() => mean(zeros([3, 0], { dtype: b.dtype, device: b.dev }), 1));
  deepEqual(m.shape, [3]);
  ok((await m.data()).every(Number.isNaN), "mean over an empty axis is NaN");
  m.dispose();
  assertNoLeak(base);

  const e = zeros([3, 0], { dtype: b.dtype, device: b.dev });
  for (const [name, fn] of [["max", max], ["min", min]] as const) {
    throws(() => fn(e, 1), new RegExp(`${name}: cannot reduce over an empty axis.*\\[3,0\\]`));
    throws(() => fn(e), new RegExp(`${name}: cannot reduce over an empty axis`));
    // reducing a non-empty axis of an empty tensor is fine: the result is empty
    const y = fn(e, 0);
    deepEqual(y.shape, [0]);
    equal((await y.data()).length, 0);
    y.dispose();
  }
  e.dispose();
});

testAll("bad axes are refused with the op's name", (b) => {
  const x = T(b, [1, 2, 3, 4, 5, 6], [2, 3]);
  throws(() => sum(x, 2), /sum: axis 2 is out of range for a tensor of/);
  throws(() => max(x, -3), /max: axis -3 is out of range/);
  throws(() => min(x, [0, -2]), /min: axis 0 is repeated/);
  throws(() => mean(x, 1.5), /mean: axis 1.5 is out of range/);
  x.dispose();
  const i = tensor([1, 2, 3], { dtype: "i32", device: b.dev });
  throws(() => sum(i), /sum: expected a floating-point tensor/);
  i.dispose();
});

// ---------------------------------------------------------------- large layouts

/**
 * Integer data in [-8, 8] with one planted maximum (+100) and minimum (-100) per output
 * row, at the first, the last or an inner position of the reduced range. Every partial
 * sum is an integer below 2^24, so f32 sums are exact in any order: any dropped or
 * repeated element shows as an exact mismatch, and a missed planted extreme as a wrong
 * max/min.
 */
function plantedData(shape: readonly number[], axes: readonly number[], seed: number) {
  const n = sizeOf(shape);
  const r = rng(seed);
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.floor(r() * 17) - 8;
  const ix = indexer(shape, axes);
  const posMax = new Int32Array(ix.outSize), posMin = new Int32Array(ix.outSize);
  for (let o = 0; o < ix.outSize; o++) {
    posMax[o] = o % 3 === 0 ? ix.count - 1 : o % 3 === 1 ? 0 : (o * 7919 + 13) % ix.count;
    posMin[o] = (posMax[o] + Math.floor(ix.count / 2) + o) % ix.count;
  }
  for (let i = 0; i < n; i++) {
    const [o, k] = ix.at(i);
    if (k === posMax[o]) x[i] = 100;
    else if (k === posMin[o]) x[i] = -100;
  }
  return x;
}

const LAYOUTS: [string, number[], number[]][] = [
  ["one long contiguous row", [1_000_003], [0]],
  ["a leading axis", [70_000, 3], [0]],
  ["rows longer than 65,536", [3, 70_001], [1]],
  ["the middle axis, inner > 1", [3, 70_001, 2], [1]],
  ["two leading rows of 140,001 columns", [2, 140_001], [0]],
  ["many short rows", [70_001, 3], [1]],
  ["non-adjacent axes (permuted first)", [300, 5, 300], [0, 2]],
];

for (const [what, shape, axes] of LAYOUTS) {
  testAll(
    `sum/max/min/mean over ${what}: ${JSON.stringify(shape)} axes ${JSON.stringify(axes)}`,
    async (b) => {
      const x = plantedData(shape, axes, sizeOf(shape) % 1000);
      const base = memory();
      const t = T(b, x, shape);
      for (const op of ["sum", "max", "min"] as const) {
        const ref = reference(op, x, shape, axes);
        const y = OPS[op](t, axes);
        // integer data: exact in every dtype (see plantedData)
        await expectReduced(y, ref, ref.outShape, 0, `${op} ${what}`);
        y.dispose();
      }
      const ref = reference("mean", x, shape, axes);
      const y = mean(t, axes, true);
      // one rounding of an exact sum divided by an exact count
      await expectReduced(
        y,
        ref,
        shape.map((d, i) => (axes.includes(i) ? 1 : d)),
        b.dtype === "f64" ? 1e-15 : 1e-7,
        `mean ${what}`,
      );
      y.dispose();
      t.dispose();
      assertNoLeak(base, what);
    },
  );
}

testAll("NaN propagates through max/min/sum in every layout, wherever it sits", async (b) => {
  const layouts: [number[], number[]][] = [
    [[200_003], [0]],
    [[70_000, 3], [0]],
    [[3, 70_001], [1]],
    [[3, 70_001, 2], [1]],
    [[300, 5, 300], [0, 2]],
    [[70_001, 3], [1]],
  ];
  for (const [shape, axes] of layouts) {
    const x = inputs(b, sizeOf(shape), 9);
    const ix = indexer(shape, axes);
    // output 0: NaN at its last reduced element; output 1: at its first; the rest clean
    for (let i = 0; i < x.length; i++) {
      const [o, k] = ix.at(i);
      if ((o === 0 && k === ix.count - 1) || (o === 1 && k === 0)) x[i] = NaN;
    }
    const t = T(b, x, shape);
    for (const op of ["max", "min", "sum"] as const) {
      const ref = reference(op, x, shape, axes);
      ok(Number.isNaN(ref.out[0]), "test bug: reference has no NaN");
      const y = OPS[op](t, axes);
      await expectReduced(
        y,
        ref,
        ref.outShape,
        b.dtype === "f64" ? 1e-12 : 1e-5,
        `${op} ${JSON.stringify(shape)} with NaN`,
      );
      y.dispose();
    }
    t.dispose();
  }
});

testAll("infinities: max/min pick them, sum of +Inf and -Inf is NaN", async (b) => {
  const x = [1, Infinity, -3, 2, -Infinity, 5, -Infinity, -Infinity, -Infinity];
  const t = T(b, x, [3, 3]);
  const cases: [Tensor, number[]][] = [
    [max(t, 1), [Infinity, 5, -Infinity]],
    [min(t, 1), [-3, -Infinity, -Infinity]],
    [sum(t, 1), [Infinity, -Infinity, -Infinity]],
    [sum(t, 0), [-Infinity, NaN, -Infinity]],
    [max(t), [Infinity]],
  ];
  for (const [y, want] of cases) {
    const d = await y.data();
    deepEqual(Array.from(d), want);
    y.dispose();
  }
  t.dispose();
});

// ---------------------------------------------------------------- accuracy

testAll("f32 sum of 10^6 uniform values agrees with f64 to 1e-6 relative", async (b) => {
  const n = 1_000_000;
  const x = randArray(n, 2024, 0, 1);
  let ref = 0;
  for (let i = 0; i < n; i++) ref += x[i];
  // Measured on lavapipe (WebGPU, pairwise tree): relative error 2.6e-9 … 2.7e-8 over
  // three seeds; a plain sequential f32 loop is off by 4e-6 … 1e-5 on the same data, so
  // this bound tells the two apart. CPU f32 sums in a double: one final rounding, ~6e-8.
  const rtol = b.dtype === "f64" ? 1e-12 : 1e-6;
  const t = tensor(x, { dtype: b.dtype, device: b.dev });
  const s = sum(t);
  const got = await s.item();
  ok(
    Math.abs(got - ref) <= rtol * ref,
    `sum ${got} vs f64 ${ref}: rel ${Math.abs(got - ref) / ref}`,
  );
  const m = mean(t);
  const gotMean = await m.item();
  ok(Math.abs(gotMean - ref / n) <= rtol * (ref / n), `mean ${gotMean} vs ${ref / n}`);
  // the same numbers summed down a leading axis ([250000, 4] over axis 0): the strided
  // kernel adds at most 64 rows per invocation per pass. Measured on lavapipe: 9e-8 … 2.2e-7.
  const t2 = tensor(x, { dtype: b.dtype, device: b.dev, shape: [250_000, 4] });
  const s2 = sum(t2, 0);
  const cols = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) cols[i % 4] += x[i];
  const d2 = await s2.data();
  for (let c = 0; c < 4; c++) {
    ok(
      Math.abs(d2[c] - cols[c]) <= rtol * cols[c],
      `column ${c}: ${d2[c]} vs ${cols[c]} (rel ${Math.abs(d2[c] - cols[c]) / cols[c]})`,
    );
  }
  for (const u of [t, s, m, t2, s2]) u.dispose();
});

testAll("sum of library-drawn uniforms matches the sum of the same values read back", async (b) => {
  // the reference is the f64 sum of the values the device holds, read back
  const u = uniform([300_001], { seed: 5, dtype: b.dtype, device: b.dev });
  const vals = await u.data();
  let ref = 0;
  for (const v of vals) ref += v;
  const s = u.sum();
  const got = await s.item();
  ok(Math.abs(got - ref) <= (b.dtype === "f64" ? 1e-12 : 1e-6) * ref, `${got} vs ${ref}`);
  u.dispose();
  s.dispose();
});

// ---------------------------------------------------------------- reductions of expressions

testAll("reductions of elementwise expressions, in every layout above 65,536", async (b) => {
  const layouts: [number[], number[] | undefined][] = [
    [[200_003], undefined],
    [[70_000, 3], [0]],
    [[3, 70_001], [1]],
    [[3, 70_001, 2], [1]],
  ];
  for (const [shape, axes] of layouts) {
    const all = axes ?? shape.map((_, i) => i);
    const x = inputs(b, sizeOf(shape), 71, -2, 2);
    const sq = x.map((v) => (v - 0.5) ** 2);
    const ab = x.map((v) => Math.abs(v) * 2 - 1);
    const base = memory();
    const t = T(b, x, shape);
    // sum((x - 0.5)²): positive terms; f32 error measured against Σ|terms|
    const s = tidy(() => sum(t.sub(0.5).square(), axes));
    await expectReduced(
      s,
      reference("sum", sq, shape, all),
      reference("sum", sq, shape, all).outShape,
      b.dtype === "f64" ? 1e-12 : 1e-6,
      `sum((x-0.5)²) ${JSON.stringify(shape)}`,
    );
    const m = tidy(() => max(t.abs().mul(2).sub(1), axes, true));
    const refM = reference("max", b.dtype === "f32" ? ab.map(Math.fround) : ab, shape, all);
    await expectReduced(
      m,
      refM,
      shape.map((d, i) => (all.includes(i) ? 1 : d)),
      0,
      `max(2|x|-1) ${JSON.stringify(shape)}`,
    );
    for (const u of [t, s, m]) u.dispose();
    assertNoLeak(base);
  }
});
