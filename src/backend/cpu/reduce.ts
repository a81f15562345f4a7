/** CPU reductions over `[outer, reduced, inner]` views (see shape_plan.ts). */
import type { ReduceOp } from "../backend.ts";
import type { TypedArray } from "../../dtype.ts";

/**
 * Sums `n` values from x[start], step `stride`, pairwise in blocks so that the f64 error
 * grows like log n rather than n (the f32 case accumulates in a JS double anyway).
 */
function sumRange(x: TypedArray, start: number, n: number, stride: number): number {
  if (n <= 256) {
    let s = 0;
    for (let i = 0, j = start; i < n; i++, j += stride) s += x[j];
    return s;
  }
  const h = n >> 1;
  return sumRange(x, start, h, stride) + sumRange(x, start + h * stride, n - h, stride);
}

function maxRange(x: TypedArray, start: number, n: number, stride: number, isMax: boolean): number {
  let m = x[start];
  for (let i = 0, j = start; i < n; i++, j += stride) {
    const v = x[j];
    if (v !== v) return NaN;
    if (isMax ? v > m : v < m) m = v;
  }
  return m;
}

export function reduceCpu(
  op: ReduceOp,
  x: TypedArray,
  o: TypedArray,
  outer: number,
  reduced: number,
  inner: number,
): void {
  for (let a = 0; a < outer; a++) {
    const base = a * reduced * inner;
    for (let c = 0; c < inner; c++) {
      const start = base + c;
      o[a * inner + c] = op === "sum"
        ? sumRange(x, start, reduced, inner)
        : maxRange(x, start, reduced, inner, op === "max");
    }
  }
}
