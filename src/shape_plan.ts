/** Plans shared by both backends for reductions: which passes over which views. */
import { stridesOf } from "./shape.ts";

/**
 * A reduction seen as `[outer, reduced, inner]` with the reduced axes contiguous, or, when
 * the reduced axes are not one block, the permutation that moves them last first.
 */
export interface ReducePlan {
  /** Present when the input must first be permuted (reduced axes moved to the end). */
  perm?: number[];
  outer: number;
  reduced: number;
  inner: number;
}

export function planReduce(shape: readonly number[], axes: readonly number[]): ReducePlan {
  const isRed = shape.map((_, i) => axes.includes(i));
  // merge dims into runs of equal flag, ignoring size-1 dims
  const runs: { red: boolean; size: number }[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = runs[runs.length - 1];
    if (last && last.red === isRed[i]) last.size *= shape[i];
    else runs.push({ red: isRed[i], size: shape[i] });
  }
  const redRuns = runs.filter((r) => r.red).length;
  if (redRuns <= 1) {
    let outer = 1, reduced = 1, inner = 1, seen = false;
    for (const r of runs) {
      if (r.red) {
        reduced = r.size;
        seen = true;
      } else if (seen) inner *= r.size;
      else outer *= r.size;
    }
    return { outer, reduced, inner };
  }
  const kept = shape.map((_, i) => i).filter((i) => !isRed[i]);
  const perm = [...kept, ...axes];
  let outer = 1, reduced = 1;
  for (const i of kept) outer *= shape[i];
  for (const i of axes) reduced *= shape[i];
  return { perm, outer, reduced, inner: 1 };
}

/** Strides reading `shape` permuted by `perm`, for a strided copy. */
export function permutedStrides(shape: readonly number[], perm: readonly number[]): {
  outShape: number[];
  strides: number[];
} {
  const st = stridesOf(shape);
  return { outShape: perm.map((p) => shape[p]), strides: perm.map((p) => st[p]) };
}
