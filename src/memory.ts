/**
 * Lifetimes: `tidy` scopes, live-tensor accounting, and deferred disposal while a
 * transform runs (a tape may still need a value the user's code disposed, so disposals
 * inside a transform wait until the outermost transform returns).
 */
import type { Tensor } from "./tensor.ts";

const scopes: Set<Tensor>[] = [];
let deferred: Tensor[] | null = null;

const live = new Map<string, { tensors: number; bytes: number }>();

/** @internal Called when a tensor that owns device memory is created. */
export function trackTensor(t: Tensor): void {
  const s = scopes[scopes.length - 1];
  if (s) s.add(t);
}

/** @internal Counts storage allocated (+) or released (−) on a backend. */
export function countBytes(kind: string, bytes: number): void {
  const e = live.get(kind) ?? { tensors: 0, bytes: 0 };
  e.bytes += bytes;
  live.set(kind, e);
}

/** @internal Counts tensors created (+1) or disposed (−1) on a backend. */
export function countTensor(kind: string, delta: number): void {
  const e = live.get(kind) ?? { tensors: 0, bytes: 0 };
  e.tensors += delta;
  live.set(kind, e);
}

/** @internal True while a transform runs: disposal must wait. */
export function deferDisposal(t: Tensor): boolean {
  if (deferred === null) return false;
  deferred.push(t);
  return true;
}

/** Live tensors and their bytes, in all and per backend. */
export interface MemoryInfo {
  /** Live tensors that own or share device memory. */
  tensors: number;
  /** Bytes of device memory those tensors hold (shared storage counted once). */
  bytes: number;
  /** The same, per backend kind (`cpu`, `webgpu`). */
  backends: Record<string, { tensors: number; bytes: number }>;
}

/**
 * Reports live tensors and bytes. Tests use it to check that `tidy` and the transforms
 * free everything they made.
 *
 * @example
 * ```ts
 * import { memory, tidy, tensor } from "@curvature/curvature";
 * const before = memory().tensors;
 * tidy(() => tensor([1, 2]).add(1).exp());
 * console.log(memory().tensors === before); // true
 * ```
 */
export function memory(): MemoryInfo {
  let tensors = 0, bytes = 0;
  const backends: Record<string, { tensors: number; bytes: number }> = {};
  for (const [k, v] of live) {
    tensors += v.tensors;
    bytes += v.bytes;
    backends[k] = { ...v };
  }
  return { tensors, bytes, backends };
}

/** Collects every Tensor inside a (nested) result value. */
function collect(v: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (v === null || typeof v !== "object" || seen.has(v)) return;
  seen.add(v);
  if ((v as { _isTensor?: boolean })._isTensor) {
    out.add(v as Tensor);
    return;
  }
  if (Array.isArray(v)) { for (const x of v) collect(x, out, seen); }
  else if (Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out, seen);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it except those in its result
 * (a Tensor, or arrays / plain objects holding Tensors). `fn` must be synchronous.
 *
 * @example
 * ```ts
 * import { tidy, tensor } from "@curvature/curvature";
 * const y = tidy(() => tensor([1, 2, 3]).mul(2).sum()); // the temporaries are freed
 * console.log(await y.item()); // 12
 * ```
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== "function") throw new TypeError("tidy: expected a function");
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new TypeError(
      "tidy: the function returned a Promise; tidy only takes synchronous functions",
    );
  }
  const keep = new Set<Tensor>();
  collect(result, keep);
  const parent = scopes[scopes.length - 1];
  // The outermost scope is a statement boundary: run the deferred work behind its results
  // before their expressions are dropped. Values carried from one loop iteration to the
  // next then start each iteration as buffers, so fused kernels keep the same shape (and
  // compiled pipeline) every iteration instead of growing with the loop.
  if (!parent) {
    for (const t of keep) {
      if (!t.disposed && !t._tracer && t._ref) t.device.backend.materialize(t._ref.storage);
    }
  }
  for (const t of scope) {
    if (keep.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Removes `t` from the enclosing tidy scopes so it outlives them. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

/**
 * @internal Runs a transform body. The outermost one defers every disposal until it
 * returns, then frees what it made except its result; nested ones just run.
 */
export function transformScope<T>(fn: () => T): T {
  if (deferred !== null) return fn();
  deferred = [];
  let result: T;
  let list: Tensor[];
  try {
    result = tidy(fn);
  } catch (e) {
    list = deferred;
    deferred = null;
    for (const t of list) t.dispose();
    throw e;
  }
  list = deferred;
  deferred = null;
  const keepSet = new Set<Tensor>();
  collect(result, keepSet);
  // A result whose disposal was deferred (an inner tidy in the user's function made it) has
  // left every scope: hand it to the caller's scope, as tidy does with its results.
  const parent = scopes[scopes.length - 1];
  for (const t of list) {
    if (!keepSet.has(t)) t.dispose();
    else parent?.add(t);
  }
  return result;
}

/**
 * @internal Runs `fn` in a tidy scope whose disposals take effect at once even inside a
 * transform: for host-side scratch work on tensors no trace or tape can see (the index
 * maps of sparsity tracing), which would otherwise pile up until the transform returns.
 */
export function scratchScope<T>(fn: () => T): T {
  const saved = deferred;
  deferred = null;
  try {
    return tidy(fn);
  } finally {
    deferred = saved;
  }
}

/**
 * @internal Runs `fn` keeping everything it creates alive (for `vjp`, whose pullback needs
 * the forward pass's values later). Returns the result and a function that frees the rest.
 */
export function ownedScope<T>(fn: () => T): { result: T; free: () => void } {
  const outer = deferred === null;
  if (outer) deferred = [];
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  let list: Tensor[] = [];
  try {
    result = fn();
  } catch (e) {
    // nothing escapes a failed forward pass: free what it made, as tidy does
    scopes.pop();
    if (outer) {
      list = deferred!;
      deferred = null;
    }
    for (const t of scope) t.dispose();
    for (const t of list) t.dispose();
    throw e;
  }
  scopes.pop();
  if (outer) {
    list = deferred!;
    deferred = null;
  }
  const keepSet = new Set<Tensor>();
  collect(result, keepSet);
  const parent = scopes[scopes.length - 1];
  for (const t of keepSet) if (scope.has(t)) parent?.add(t);
  // nested inside a transform: the outer transform frees these when it returns
  if (!outer && parent) { for (const t of scope) parent.add(t); }
  let freed = false;
  return {
    result,
    free: () => {
      if (freed) return;
      freed = true;
      for (const t of scope) if (!keepSet.has(t)) t.dispose();
      for (const t of list) if (!keepSet.has(t)) t.dispose();
    },
  };
}
