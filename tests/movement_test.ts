/**
 * Movement ops on every backend, checked against plain-JS f64 references written here:
 * reshape, transpose, broadcastTo, slice (NumPy semantics), pad, concat, stack, expandDims,
 * squeeze, mT, gather and scatterAdd. Movement is exact, so most checks demand bit equality;
 * the kernels are also run at > 65,536 elements (lavapipe stops a shader invocation's loops
 * after 65,535 iterations without an error).
 */
import assert from "node:assert/strict";
import {
  broadcastTo,
  concat,
  expandDims,
  gather,
  memory,
  mT,
  pad,
  reshape,
  scatterAdd,
  slice,
  squeeze,
  stack,
  type Tensor,
  tensor,
  transpose,
  vjp,
} from "../mod.ts";
import { assertClose, assertNoLeak, type Backend, randArray, rng, testAll } from "./helpers.ts";

// ---------- plain-JS references (row-major, f64) ----------

function sizeRef(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

function ravel(idx: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d] + idx[d];
  return i;
}

function transposeRef(x: ArrayLike<number>, shape: number[], perm: number[]) {
  const outShape = perm.map((p) => shape[p]);
  const out = new Float64Array(sizeRef(outShape));
  for (let i = 0; i < out.length; i++) {
    const o = unravel(i, outShape);
    const src = new Array<number>(shape.length);
    perm.forEach((p, d) => (src[p] = o[d]));
    out[i] = x[ravel(src, shape)];
  }
  return { out, shape: outShape };
}

function broadcastRef(x: ArrayLike<number>, shape: number[], to: number[]): Float64Array {
  const out = new Float64Array(sizeRef(to));
  const lead = to.length - shape.length;
  for (let i = 0; i < out.length; i++) {
    const o = unravel(i, to);
    const src = shape.map((n, d) => (n === 1 ? 0 : o[d + lead]));
    out[i] = x[ravel(src, shape)];
  }
  return out;
}

/** CPython's PySlice_AdjustIndices, then the index list it walks. */
function sliceIndices(n: number, start: number, stop: number, step: number): number[] {
  const adjust = (v: number) => {
    if (v < 0) {
      v += n;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= n) v = step < 0 ? n - 1 : n;
    return v;
  };
  const s = adjust(start), e = adjust(stop);
  const out: number[] = [];
  if (step > 0) { for (let i = s; i < e; i += step) out.push(i); }
  else for (let i = s; i > e; i += step) out.push(i);
  return out;
}

function sliceRef(
  x: ArrayLike<number>,
  shape: number[],
  start: number[],
  stop: number[],
  step?: number[],
) {
  const lists = shape.map((n, d) =>
    d < start.length ? sliceIndices(n, start[d], stop[d], step ? step[d] : 1) : [...Array(n).keys()]
  );
  const outShape = lists.map((l) => l.length);
  const out = new Float64Array(sizeRef(outShape));
  for (let i = 0; i < out.length; i++) {
    const o = unravel(i, outShape);
    out[i] = x[ravel(o.map((k, d) => lists[d][k]), shape)];
  }
  return { out, shape: outShape };
}

function padRef(x: ArrayLike<number>, shape: number[], pads: [number, number][], value: number) {
  const outShape = shape.map((n, d) => n + pads[d][0] + pads[d][1]);
  const out = new Float64Array(sizeRef(outShape)).fill(value);
  for (let i = 0; i < sizeRef(shape); i++) {
    const idx = unravel(i, shape).map((k, d) => k + pads[d][0]);
    out[ravel(idx, outShape)] = x[i];
  }
  return { out, shape: outShape };
}

function concatRef(xs: ArrayLike<number>[], shapes: number[][], axis: number) {
  const outShape = [...shapes[0]];
  outShape[axis] = shapes.reduce((a, s) => a + s[axis], 0);
  const out = new Float64Array(sizeRef(outShape));
  let at = 0;
  xs.forEach((x, j) => {
    for (let i = 0; i < x.length; i++) {
      const idx = unravel(i, shapes[j]);
      idx[axis] += at;
      out[ravel(idx, outShape)] = x[i];
    }
    at += shapes[j][axis];
  });
  return { out, shape: outShape };
}

function gatherRef(x: ArrayLike<number>, shape: number[], idx: number[], axis: number) {
  const len = shape[axis];
  const outer = sizeRef(shape.slice(0, axis)), inner = sizeRef(shape.slice(axis + 1));
  const out = new Float64Array(outer * idx.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (const q of idx) {
      const r = q < 0 ? q + len : q;
      for (let c = 0; c < inner; c++) out[o++] = x[(a * len + r) * inner + c];
    }
  }
  return out;
}

function scatterAddRef(u: ArrayLike<number>, idx: number[], axis: number, shape: number[]) {
  const len = shape[axis];
  const outer = sizeRef(shape.slice(0, axis)), inner = sizeRef(shape.slice(axis + 1));
  const out = new Float64Array(sizeRef(shape));
  let g = 0;
  for (let a = 0; a < outer; a++) {
    for (const q of idx) {
      const r = q < 0 ? q + len : q;
      for (let c = 0; c < inner; c++) out[(a * len + r) * inner + c] += u[g++];
    }
  }
  return out;
}

// ---------- helpers ----------

function mk(b: Backend, data: ArrayLike<number>, shape: readonly number[]): Tensor {
  return tensor(Float64Array.from(data), { shape, dtype: b.dtype, device: b.dev });
}

/** Bit-exact comparison (movement never rounds: inputs are already f32 values). */
async function expectExact(t: Tensor, expected: ArrayLike<number>, shape: number[], msg: string) {
  assert.deepEqual([...t.shape], shape, `${msg}: shape`);
  assertClose(await t.data(), expected, { rtol: 0, atol: 0, msg });
}

/** Small integers, exact in f32, so sums of them are exact on every backend. */
function intArray(n: number, seed: number, lo = -8, hi = 8): Float64Array {
  const r = rng(seed);
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + Math.floor((hi - lo + 1) * r());
  return a;
}

// ---------- reshape ----------

testAll("reshape: values kept, -1 inferred, views share memory", async (b) => {
  const base = memory();
  const data = randArray(24, 1);
  const x = mk(b, data, [2, 3, 4]);
  const y = reshape(x, [4, -1]);
  await expectExact(y, data, [4, 6], "reshape [4,-1]");
  const z = x.reshape([-1]);
  await expectExact(z, data, [24], "reshape [-1]");
  const w = reshape(x, [2, 1, 3, 1, 4]);
  await expectExact(w, data, [2, 1, 3, 1, 4], "reshape with unit dims");
  const empty = tensor([], { dtype: b.dtype, device: b.dev });
  const e = reshape(empty, [0, 5]);
  await expectExact(e, [], [0, 5], "reshape of an empty tensor");
  // each view adds a tensor but no bytes: 6 tensors over two storages (24 entries and 0)
  const m = memory();
  assert.equal(m.tensors - base.tensors, 6);
  assert.equal(m.bytes - base.bytes, 24 * (b.dtype === "f64" ? 8 : 4));
  // the view outlives its source
  x.dispose();
  await expectExact(y, data, [4, 6], "view after the source was disposed");
  for (const t of [y, z, w, e, empty]) t.dispose();
  assertNoLeak(base, "reshape");
});

// ---------- transpose ----------

testAll("transpose: random permutations up to rank 5, default reverses", async (b) => {
  const r = rng(7);
  for (let trial = 0; trial < 30; trial++) {
    const rank = 1 + (trial % 5);
    const shape = Array.from({ length: rank }, () => 1 + Math.floor(r() * 4));
    const perm = [...Array(rank).keys()];
    for (let i = rank - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    const data = randArray(sizeRef(shape), 100 + trial);
    const x = mk(b, data, shape);
    const y = transpose(x, perm);
    const ref = transposeRef(data, shape, perm);
    await expectExact(y, ref.out, ref.shape, `transpose ${shape} by ${perm}`);
    const rev = x.transpose();
    const refRev = transposeRef(data, shape, [...Array(rank).keys()].reverse());
    await expectExact(rev, refRev.out, refRev.shape, `default transpose of ${shape}`);
    // negative axes name the same permutation
    const yn = transpose(x, perm.map((p) => p - rank));
    await expectExact(yn, ref.out, ref.shape, `transpose with negative axes`);
    for (const t of [x, y, rev, yn]) t.dispose();
  }
});

testAll("transpose: [300, 301] (> 65,536 elements) and a rank-4 permutation", async (b) => {
  const data = randArray(300 * 301, 11);
  const x = mk(b, data, [300, 301]);
  const y = transpose(x);
  const ref = transposeRef(data, [300, 301], [1, 0]);
  await expectExact(y, ref.out, [301, 300], "transpose [300,301]");
  const x4 = mk(b, data, [7, 43, 10, 30]);
  const y4 = transpose(x4, [2, 0, 3, 1]);
  const ref4 = transposeRef(data, [7, 43, 10, 30], [2, 0, 3, 1]);
  await expectExact(y4, ref4.out, ref4.shape, "transpose rank 4, 90,300 elements");
  for (const t of [x, y, x4, y4]) t.dispose();
});

testAll("mT swaps the last two axes over batch dims", async (b) => {
  const data = randArray(2 * 3 * 5, 12);
  const x = mk(b, data, [2, 3, 5]);
  const y = mT(x);
  const ref = transposeRef(data, [2, 3, 5], [0, 2, 1]);
  await expectExact(y, ref.out, [2, 5, 3], "mT");
  x.dispose();
  y.dispose();
});

// ---------- broadcastTo ----------

testAll("broadcastTo: leading, middle and trailing broadcast", async (b) => {
  const cases: [number[], number[]][] = [
    [[3], [4, 3]],
    [[1], [5]],
    [[], [2, 3]],
    [[2, 1, 3], [2, 4, 3]],
    [[4, 1], [2, 4, 5]],
    [[1, 1, 2], [3, 2, 2]],
    [[3, 1], [3, 0]],
  ];
  for (const [from, to] of cases) {
    const data = randArray(sizeRef(from), 20);
    const x = mk(b, data, from);
    const y = broadcastTo(x, to);
    await expectExact(y, broadcastRef(data, from, to), to, `broadcast ${from} -> ${to}`);
    x.dispose();
    y.dispose();
  }
  // > 65,536 elements
  const data = randArray(301, 21);
  const x = mk(b, data, [1, 301]);
  const y = x.broadcastTo([300, 301]);
  await expectExact(y, broadcastRef(data, [1, 301], [300, 301]), [300, 301], "broadcast large");
  const col = mk(b, data.subarray(0, 300), [300, 1]);
  const z = broadcastTo(col, [2, 300, 301]);
  await expectExact(
    z,
    broadcastRef(data.subarray(0, 300), [300, 1], [2, 300, 301]),
    [2, 300, 301],
    "broadcast a column, large",
  );
  for (const t of [x, y, col, z]) t.dispose();
});

// ---------- slice ----------

testAll("slice: hand-written NumPy cases", async (b) => {
  const data = Float64Array.from({ length: 10 }, (_, i) => i);
  const x = mk(b, data, [10]);
  const cases: [number, number, number, number[]][] = [
    [1, 8, 3, [1, 4, 7]],
    [-1, -Infinity, -4, [9, 5, 1]],
    [-3, Infinity, 1, [7, 8, 9]],
    [8, 2, -2, [8, 6, 4]],
    [-100, 100, 1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]],
    [100, -100, -1, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]],
    [5, 5, 1, []],
    [5, 2, 1, []],
    [2, 5, -1, []],
    [Infinity, -Infinity, -3, [9, 6, 3, 0]],
    [-Infinity, Infinity, 4, [0, 4, 8]],
    [0, -1, 1, [0, 1, 2, 3, 4, 5, 6, 7, 8]],
    [-1, -2, -1, [9]],
    [3, 4, 100, [3]],
  ];
  for (const [s, e, p, want] of cases) {
    // the reference agrees with the hand-written answer
    assert.deepEqual(sliceIndices(10, s, e, p), want, `reference for ${s}:${e}:${p}`);
    const y = slice(x, [s], [e], [p]);
    await expectExact(y, want, [want.length], `slice ${s}:${e}:${p}`);
    y.dispose();
  }
  x.dispose();
});

testAll("slice: random NumPy-semantics cases on a rank-3 tensor", async (b) => {
  const shape = [7, 5, 6];
  const data = randArray(sizeRef(shape), 30);
  const x = mk(b, data, shape);
  const r = rng(31);
  const bound = () => {
    const u = r();
    if (u < 0.08) return Infinity;
    if (u < 0.16) return -Infinity;
    return Math.floor(r() * 21) - 10;
  };
  const steps = [-3, -2, -1, 1, 2, 3];
  let empties = 0;
  for (let trial = 0; trial < 60; trial++) {
    const k = 1 + (trial % 3);
    const start = Array.from({ length: k }, bound);
    const stop = Array.from({ length: k }, bound);
    const step = trial % 4 === 0
      ? undefined
      : Array.from({ length: k }, () => steps[Math.floor(r() * 6)]);
    const ref = sliceRef(data, shape, start, stop, step);
    if (ref.out.length === 0) empties++;
    const y = slice(x, start, stop, step);
    await expectExact(y, ref.out, ref.shape, `slice ${start} ${stop} ${step}`);
    y.dispose();
  }
  assert(empties > 0 && empties < 50, `the random cases include some empty results (${empties})`);
  x.dispose();
});

testAll("slice: 1,000,003 elements with step 3, and step -3", async (b) => {
  const n = 1_000_003;
  const data = randArray(n, 32);
  const x = mk(b, data, [n]);
  const y = slice(x, [0], [Infinity], [3]);
  const ref = sliceRef(data, [n], [0], [Infinity], [3]);
  assert.deepEqual(ref.shape, [333_335]);
  await expectExact(y, ref.out, ref.shape, "slice step 3");
  const z = x.slice([-2], [-Infinity], [-3]);
  const refz = sliceRef(data, [n], [-2], [-Infinity], [-3]);
  await expectExact(z, refz.out, refz.shape, "slice step -3");
  for (const t of [x, y, z]) t.dispose();
});

// ---------- pad ----------

testAll("pad: per-axis before/after and value", async (b) => {
  const cases: [number[], [number, number][], number][] = [
    [[3], [[2, 1]], 0],
    [[2, 3], [[1, 0], [0, 2]], -1.5],
    [[2, 3, 4], [[0, 1], [2, 0], [1, 1]], 7],
    [[0, 2], [[1, 1], [0, 1]], 3],
    [[1, 2, 1, 2], [[1, 1], [0, 0], [2, 0], [0, 3]], 0.25],
  ];
  for (const [shape, pads, value] of cases) {
    const data = randArray(sizeRef(shape), 40);
    const x = mk(b, data, shape);
    const y = pad(x, pads, value);
    const ref = padRef(data, shape, pads, value);
    await expectExact(y, ref.out, ref.shape, `pad ${shape} ${JSON.stringify(pads)}`);
    x.dispose();
    y.dispose();
  }
  // > 65,536 output elements
  const data = randArray(250 * 260, 41);
  const x = mk(b, data, [250, 260]);
  const y = x.pad([[3, 5], [7, 2]], 9);
  const ref = padRef(data, [250, 260], [[3, 5], [7, 2]], 9);
  await expectExact(y, ref.out, ref.shape, "pad large");
  x.dispose();
  y.dispose();
});

// ---------- concat / stack ----------

testAll("concat: any axis, three and more inputs", async (b) => {
  const specs: [number[][], number][] = [
    [[[2, 3], [4, 3], [1, 3]], 0],
    [[[2, 3], [2, 1], [2, 4], [2, 2]], 1],
    [[[2, 3], [2, 1], [2, 4]], -1],
    [[[2, 1, 3], [2, 4, 3], [2, 2, 3]], 1],
    [[[2, 2, 3], [2, 2, 1], [2, 2, 0], [2, 2, 2]], 2],
    [[[3], [0], [2]], 0],
  ];
  for (const [shapes, axis] of specs) {
    const datas = shapes.map((s, i) => randArray(sizeRef(s), 50 + i));
    const xs = shapes.map((s, i) => mk(b, datas[i], s));
    const y = concat(xs, axis);
    const a = axis < 0 ? axis + shapes[0].length : axis;
    const ref = concatRef(datas, shapes, a);
    await expectExact(y, ref.out, ref.shape, `concat ${JSON.stringify(shapes)} axis ${axis}`);
    for (const t of [...xs, y]) t.dispose();
  }
});

testAll("concat: two 70,000-element vectors, and 2-D blocks over 65,536", async (b) => {
  const d1 = randArray(70_000, 52), d2 = randArray(70_000, 53);
  const x1 = mk(b, d1, [70_000]), x2 = mk(b, d2, [70_000]);
  const y = concat([x1, x2]);
  const ref = concatRef([d1, d2], [[70_000], [70_000]], 0);
  await expectExact(y, ref.out, [140_000], "concat vectors");
  const m1 = mk(b, d1, [700, 100]), m2 = mk(b, d2.subarray(0, 700 * 30), [700, 30]);
  const z = concat([m1, m2], 1);
  const refz = concatRef([d1, d2.subarray(0, 700 * 30)], [[700, 100], [700, 30]], 1);
  await expectExact(z, refz.out, [700, 130], "concat along axis 1");
  for (const t of [x1, x2, y, m1, m2, z]) t.dispose();
});

testAll("stack: new axis at front, middle and end", async (b) => {
  const shape = [2, 3];
  const datas = [0, 1, 2].map((i) => randArray(6, 60 + i));
  const xs = datas.map((d) => mk(b, d, shape));
  for (const axis of [0, 1, 2, -1]) {
    const y = stack(xs, axis);
    const a = axis < 0 ? axis + 3 : axis;
    const outShape = [...shape];
    outShape.splice(a, 0, 3);
    const want = new Float64Array(18);
    for (let i = 0; i < 18; i++) {
      const idx = unravel(i, outShape);
      const which = idx.splice(a, 1)[0];
      want[i] = datas[which][ravel(idx, shape)];
    }
    await expectExact(y, want, outShape, `stack axis ${axis}`);
    y.dispose();
  }
  for (const t of xs) t.dispose();
});

// ---------- expandDims / squeeze ----------

testAll("expandDims and squeeze", async (b) => {
  const data = randArray(6, 70);
  const x = mk(b, data, [2, 3]);
  const shapes: [number, number[]][] = [[0, [1, 2, 3]], [1, [2, 1, 3]], [2, [2, 3, 1]], [
    -1,
    [2, 3, 1],
  ], [-3, [1, 2, 3]]];
  for (const [axis, want] of shapes) {
    const y = expandDims(x, axis);
    await expectExact(y, data, want, `expandDims ${axis}`);
    y.dispose();
  }
  const u = mk(b, data, [1, 2, 1, 3, 1]);
  const all = squeeze(u);
  await expectExact(all, data, [2, 3], "squeeze all");
  const one = squeeze(u, 2);
  await expectExact(one, data, [1, 2, 3, 1], "squeeze axis 2");
  const two = squeeze(u, [0, -1]);
  await expectExact(two, data, [2, 1, 3], "squeeze axes 0, -1");
  for (const t of [x, u, all, one, two]) t.dispose();
});

// ---------- gather ----------

testAll("gather: any axis, repeated and negative indices, arrays and i32 tensors", async (b) => {
  const shape = [4, 5, 3];
  const data = randArray(sizeRef(shape), 80);
  const x = mk(b, data, shape);
  const cases: [number, number[]][] = [
    [0, [3, 0, 0, -1, 2]],
    [1, [4, -5, 2, 2, 2, 0]],
    [2, [-1, 1]],
    [-1, [0, 0, 0]],
    [1, []],
  ];
  for (const [axis, idx] of cases) {
    const a = axis < 0 ? axis + 3 : axis;
    const outShape = [...shape.slice(0, a), idx.length, ...shape.slice(a + 1)];
    const want = gatherRef(data, shape, idx, a);
    const y1 = gather(x, idx, axis);
    await expectExact(y1, want, outShape, `gather array axis ${axis}`);
    const it = tensor(idx, { dtype: "i32", device: b.dev });
    const y2 = x.gather(it, axis);
    await expectExact(y2, want, outShape, `gather i32 tensor axis ${axis}`);
    for (const t of [y1, it, y2]) t.dispose();
  }
  // a 2-D index tensor: out shape = x.shape[:a] + idx.shape + x.shape[a+1:]
  const idx2 = [[1, -1, 0], [2, 2, 4]];
  const it = tensor(idx2, { dtype: "i32", device: b.dev });
  const y = gather(x, it, 1);
  await expectExact(y, gatherRef(data, shape, idx2.flat(), 1), [4, 2, 3, 3], "gather 2-D indices");
  for (const t of [x, it, y]) t.dispose();
});

testAll("gather: 100,000 indices (> 65,536 outputs)", async (b) => {
  const len = 5000;
  const data = randArray(len * 2, 81);
  const x = mk(b, data.subarray(0, len), [len]);
  const r = rng(82);
  const idx = Array.from({ length: 100_000 }, () => Math.floor(r() * 2 * len) - len);
  const it = tensor(idx, { dtype: "i32", device: b.dev });
  const y = gather(x, it, 0);
  await expectExact(y, gatherRef(data, [len], idx, 0), [100_000], "gather 1-D");
  const x2 = mk(b, data, [2, len]);
  const y2 = gather(x2, idx, 1);
  await expectExact(y2, gatherRef(data, [2, len], idx, 1), [2, 100_000], "gather axis 1");
  for (const t of [x, it, y, x2, y2]) t.dispose();
});

// ---------- scatterAdd ----------

testAll("scatterAdd: repeated indices add up, any axis", async (b) => {
  const shape = [4, 5, 3];
  const cases: [number, number[]][] = [
    [0, [3, 0, 0, -1, 2, 3]],
    [1, [4, -5, 2, 2, 2, 0, 1]],
    [2, [-1, 1, 1, 1]],
    [1, []],
  ];
  for (const [axis, idx] of cases) {
    const uShape = [...shape.slice(0, axis), idx.length, ...shape.slice(axis + 1)];
    const u = intArray(sizeRef(uShape), 90 + axis);
    const ut = mk(b, u, uShape);
    const want = scatterAddRef(u, idx, axis, shape);
    const y1 = scatterAdd(ut, idx, axis, shape);
    await expectExact(y1, want, shape, `scatterAdd array axis ${axis}`);
    const it = tensor(idx, { dtype: "i32", device: b.dev });
    const y2 = scatterAdd(ut, it, axis, shape);
    await expectExact(y2, want, shape, `scatterAdd i32 tensor axis ${axis}`);
    for (const t of [ut, y1, it, y2]) t.dispose();
  }
  // hand-checked: [1,2,3,4] into 3 slots at [2,0,2,-1] -> [2, 0, 1+3+4]
  const u = mk(b, [1, 2, 3, 4], [4]);
  const y = scatterAdd(u, [2, 0, 2, -1], 0, [3]);
  await expectExact(y, [2, 0, 8], [3], "hand-checked scatterAdd");
  u.dispose();
  y.dispose();
});

testAll("scatterAdd: a segment of 5,200 repeats (> 2,048 per dispatch)", async (b) => {
  // integers, so every summation order gives the exact answer on every backend
  const m = 8000, len = 50;
  const r = rng(91);
  const idx = Array.from({ length: m }, (_, j) => (j % 3 === 2 ? Math.floor(r() * len) : 7));
  const count7 = idx.filter((q) => q === 7).length;
  assert(count7 > 5000, `index 7 repeats ${count7} times`);
  const u = intArray(m, 92);
  const ut = mk(b, u, [m]);
  const it = tensor(idx, { dtype: "i32", device: b.dev });
  const y = scatterAdd(ut, it, 0, [len]);
  await expectExact(y, scatterAddRef(u, idx, 0, [len]), [len], "long segment");
  // with an inner axis and an outer axis: [3, m, 2] -> [3, len, 2]
  const u3 = intArray(3 * m * 2, 93);
  const ut3 = mk(b, u3, [3, m, 2]);
  const y3 = scatterAdd(ut3, idx, 1, [3, len, 2]);
  await expectExact(y3, scatterAddRef(u3, idx, 1, [3, len, 2]), [3, len, 2], "long segments, 3-D");
  for (const t of [ut, it, y, ut3, y3]) t.dispose();
});

testAll("scatterAdd: 70,000 indices into 10 targets", async (b) => {
  const m = 70_000;
  const r = rng(94);
  const idx = Array.from({ length: m }, () => Math.floor(r() * 20) - 10);
  const u = intArray(m, 95, -4, 4);
  const ut = mk(b, u, [m]);
  const y = scatterAdd(ut, idx, 0, [10]);
  await expectExact(y, scatterAddRef(u, idx, 0, [10]), [10], "70,000 into 10");
  // more than 65,536 outputs too: [m] scattered into [70,000] by a permutation-like map
  const perm = Array.from({ length: m }, (_, j) => (j * 7919) % m);
  const y2 = scatterAdd(ut, perm, 0, [m]);
  await expectExact(y2, scatterAddRef(u, perm, 0, [m]), [m], "70,000 into 70,000");
  // one segment of 70,000: more than one invocation may loop (lavapipe stops at 65,535)
  const same = Array.from({ length: m }, (_, j) => (j % 9 === 0 ? -1 : 3));
  const y3 = scatterAdd(ut, same, 0, [5]);
  await expectExact(y3, scatterAddRef(u, same, 0, [5]), [5], "a segment of 62,222 entries");
  const all = new Array<number>(m).fill(2);
  const y4 = scatterAdd(ut, all, 0, [4]);
  await expectExact(y4, scatterAddRef(u, all, 0, [4]), [4], "all 70,000 into one target");
  for (const t of [ut, y, y2, y3, y4]) t.dispose();
});

testAll("scatterAdd is the adjoint of gather: <gather(x), u> = <x, scatterAdd(u)>", async (b) => {
  const r = rng(96);
  const configs: [number[], number, number][] = [
    [[6, 9, 4], 1, 25],
    [[40], 0, 300],
    [[3, 4, 70], 2, 100_000 / 12],
  ];
  for (const [shape, axis, mRaw] of configs) {
    const m = Math.floor(mRaw);
    const len = shape[axis];
    const idx = Array.from({ length: m }, () => Math.floor(r() * 2 * len) - len);
    const xd = randArray(sizeRef(shape), 97);
    const uShape = [...shape.slice(0, axis), m, ...shape.slice(axis + 1)];
    const ud = randArray(sizeRef(uShape), 98);
    const x = mk(b, xd, shape), u = mk(b, ud, uShape);
    const gx = gather(x, idx, axis);
    const su = scatterAdd(u, idx, axis, shape);
    const [g, s] = [await gx.data(), await su.data()];
    let lhs = 0, rhs = 0, mag = 0;
    for (let i = 0; i < g.length; i++) {
      lhs += g[i] * ud[i];
      mag += Math.abs(g[i] * ud[i]);
    }
    for (let i = 0; i < s.length; i++) rhs += xd[i] * s[i];
    // each side is exact products of stored values summed in f64, so the only error is
    // the backend's rounding of scatterAdd's sums: at most (segment length)·eps·Σ|u|
    const tol = b.dtype === "f64" ? 1e-12 : 1e-5;
    assert(
      Math.abs(lhs - rhs) <= tol * mag,
      `adjoint ${shape} axis ${axis}: ${lhs} vs ${rhs} (scale ${mag})`,
    );
    // and both sides match the f64 reference
    const want = gatherRef(xd, shape, idx, axis);
    let ref = 0;
    for (let i = 0; i < want.length; i++) ref += want[i] * ud[i];
    assert(Math.abs(lhs - ref) <= 1e-12 * mag, `gather side vs reference`);
    for (const t of [x, u, gx, su]) t.dispose();
  }
});

testAll("no-op movement returns a tensor the caller may dispose on its own", async (b) => {
  const base = memory();
  const x = mk(b, [1, 2, 3, 4], [2, 2]);
  const ys = [
    reshape(x, [2, 2]),
    transpose(x, [0, 1]),
    broadcastTo(x, [2, 2]),
    slice(x, [0], [Infinity]),
    pad(x, [[0, 0], [0, 0]]),
    concat([x]),
  ];
  for (const y of ys) {
    y.dispose();
    assert.equal(x.disposed, false, "disposing the result must not dispose the input");
    await expectExact(x, [1, 2, 3, 4], [2, 2], "input still readable");
  }
  x.dispose();
  assertNoLeak(base, "no-op movement");
});

// ---------- reverse mode: each movement op's VJP is its adjoint ----------

testAll("movement VJPs are the adjoints of the forward maps", async (b) => {
  // Run each reference on the indices 0..n-1 (padding marked -1): that gives, for every
  // output entry, the input entry it copies. The adjoint adds u[out] into entry src[out].
  const cases: { name: string; shape: number[]; f: (x: Tensor) => Tensor; map: Float64Array }[] =
    [];
  const iota = (n: number) => Float64Array.from({ length: n }, (_, i) => i);
  const sh = [5, 6, 4];
  const n = sizeRef(sh);
  const r = rng(200);
  for (let t = 0; t < 8; t++) {
    const start = [Math.floor(r() * 12) - 6, Math.floor(r() * 12) - 6];
    const stop = [r() < 0.3 ? -Infinity : Math.floor(r() * 12) - 6, r() < 0.3 ? Infinity : 5];
    const step = [[-2, -1, 1, 3][t % 4], [2, -3, 1, -1][(t >> 1) % 4]];
    cases.push({
      name: `slice ${start} ${stop} ${step}`,
      shape: sh,
      f: (x) => slice(x, start, stop, step),
      map: sliceRef(iota(n), sh, start, stop, step).out,
    });
  }
  const pads: [number, number][] = [[1, 0], [0, 2], [3, 1]];
  cases.push({
    name: "pad",
    shape: sh,
    f: (x) => pad(x, pads, 5),
    map: padRef(iota(n), sh, pads, -1).out,
  });
  cases.push({
    name: "transpose",
    shape: sh,
    f: (x) => transpose(x, [2, 0, 1]),
    map: transposeRef(iota(n), sh, [2, 0, 1]).out,
  });
  cases.push({
    name: "broadcastTo",
    shape: [6, 1],
    f: (x) => broadcastTo(x, [3, 6, 5]),
    map: broadcastRef(iota(6), [6, 1], [3, 6, 5]),
  });
  const gi = [3, -1, 0, 3, 3, 2];
  cases.push({
    name: "gather",
    shape: sh,
    f: (x) => gather(x, gi, 1),
    map: gatherRef(iota(n), sh, gi, 1),
  });
  cases.push({
    name: "concat with itself",
    shape: sh,
    f: (x) => concat([x, slice(x, [1], [3]), x], 0),
    map: concatRef(
      [iota(n), sliceRef(iota(n), sh, [1], [3]).out, iota(n)],
      [sh, [2, 6, 4], sh],
      0,
    ).out,
  });
  for (const c of cases) {
    const size = sizeRef(c.shape);
    const x = mk(b, randArray(size, 201), c.shape);
    const [y, back] = vjp(c.f, x);
    assert.equal(y.size, c.map.length, `${c.name}: output size`);
    const ud = intArray(y.size, 202);
    const u = mk(b, ud, y.shape);
    const [gx] = back(u);
    const want = new Float64Array(size);
    c.map.forEach((src, o) => {
      if (src >= 0) want[src] += ud[o];
    });
    await expectExact(gx, want, c.shape, `VJP of ${c.name}`);
    for (const t of [x, y, u, gx]) t.dispose();
    back.dispose();
  }
});
