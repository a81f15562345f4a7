/** CPU movement kernels that run at once: concat, gather, scatter-add (views and pads are deferred). */
import type { TypedArray } from "../../dtype.ts";
import { coalesce, sizeOf, stridesOf } from "../../shape.ts";
import { forEachRun } from "./elementwise.ts";

/** Copies `x` of `shape` into `o` (of `outShape`) at element `base`, using o's strides. */
function copyInto(
  x: TypedArray,
  shape: readonly number[],
  o: TypedArray,
  outShape: readonly number[],
  base: number,
): void {
  if (sizeOf(shape) === 0) return;
  const c = coalesce(shape, [stridesOf(shape), stridesOf(outShape)]);
  forEachRun(c.shape, c.strides, (off, len, st) => {
    let ix = off[0], io = base + off[1];
    for (let i = 0; i < len; i++, ix += st[0], io += st[1]) o[io] = x[ix];
  });
}

export function concatCpu(
  xs: readonly TypedArray[],
  shapes: readonly (readonly number[])[],
  axis: number,
  o: TypedArray,
  outShape: readonly number[],
): void {
  const os = stridesOf(outShape);
  let at = 0;
  xs.forEach((x, i) => {
    copyInto(x, shapes[i], o, outShape, at * os[axis]);
    at += shapes[i][axis];
  });
}

export function gatherCpu(
  x: TypedArray,
  shape: readonly number[],
  axis: number,
  idx: Int32Array,
  o: TypedArray,
): void {
  const outer = sizeOf(shape.slice(0, axis));
  const len = shape[axis];
  const inner = sizeOf(shape.slice(axis + 1));
  const m = idx.length;
  let io = 0;
  for (let a = 0; a < outer; a++) {
    for (let j = 0; j < m; j++) {
      const src = (a * len + idx[j]) * inner;
      for (let c = 0; c < inner; c++) o[io++] = x[src + c];
    }
  }
}

export function scatterAddCpu(
  g: TypedArray,
  outShape: readonly number[],
  axis: number,
  idx: Int32Array,
  o: TypedArray,
): void {
  const outer = sizeOf(outShape.slice(0, axis));
  const len = outShape[axis];
  const inner = sizeOf(outShape.slice(axis + 1));
  const m = idx.length;
  o.fill(0);
  let ig = 0;
  for (let a = 0; a < outer; a++) {
    for (let j = 0; j < m; j++) {
      const dst = (a * len + idx[j]) * inner;
      for (let c = 0; c < inner; c++) o[dst + c] += g[ig++];
    }
  }
}
