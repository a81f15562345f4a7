/**
 * Progress reports of long computations (chunked Hessians, estimators, iterative solvers):
 * one shape for all, so a display written once serves every function.
 */

/** How far a computation has got: `done` of `total` units (probes, chunks, iterations). */
export interface Progress {
  /** Units finished so far. */
  readonly done: number;
  /** Units in all (for an iterative solver: the iteration limit, which it may stop short of). */
  readonly total: number;
  /** What the units are, for a display: "probes", "iterations", "Hessian columns". */
  readonly unit: string;
  /** The current estimate of the quantity's error where the algorithm has one (‖r‖ in CG). */
  readonly residual?: number;
}

/** Called as a computation advances; return values are ignored. */
export type ProgressCallback = (p: Progress) => void;

/** @internal Throws unless `cb` is undefined or a function. */
export function checkProgress(op: string, cb: unknown): ProgressCallback | undefined {
  if (cb === undefined) return undefined;
  if (typeof cb !== "function") {
    throw new TypeError(`${op}: onProgress must be a function (p: Progress) => void`);
  }
  return cb as ProgressCallback;
}
