/**
 * Lifetimes: `tidy` scopes, live-tensor accounting, deferred disposal while a transform
 * runs (a tape may still need a value the user's code disposed, so disposals inside a
 * transform wait until the outermost transform returns), and owners: what a running
 * asynchronous call (a library function such as `minimize`, or `tidy(async …)`) made.
 *
 * JavaScript has no asynchronous context: after an `await`, nothing says which call the
 * code that runs belongs to. So an owner claims (1) every tensor made in its call's first
 * synchronous part, (2) every tensor computed from a tensor it owns (lineage, set where a
 * tensor is made from others), and (3) a tensor made during the call from nothing (a fresh
 * probe, zeros) once it is combined with one it owns. What two interleaved calls make stays
 * apart, since neither computes from the other's tensors, and the user's own tensors are
 * never claimed unless computed from the call's values.
 */
import type { Tensor } from "./tensor.ts";
import { type CacheStats, cacheStats, clearCaches } from "./lru.ts";

const scopes: Set<Tensor>[] = [];
let deferred: Tensor[] | null = null;

const live = new Map<string, { tensors: number; bytes: number }>();

/** Tensors made so far: a tensor's sequence number says whether it is older than a call. */
let made = 0;
let nextOwner = 0;

/** @internal The tensors a running asynchronous call owns (see the module comment). */
export class Owner {
  readonly id: number = nextOwner++;
  readonly tensors: Set<Tensor> = new Set();
  /** Sequence number of the first tensor made after the call began. */
  readonly since: number = made;
  open = true;
  constructor(
    /** The owner whose first synchronous part started this call, if any. */
    readonly outer: Owner | null,
  ) {}
}

/** The owner of the synchronous code running now (the first part of an owned call). */
let ambient: Owner | null = null;

function claim(t: Tensor, o: Owner | null): void {
  if (t._owner === o) return;
  t._owner?.tensors.delete(t);
  t._owner = o;
  o?.tensors.add(t);
}

/**
 * @internal Called when a tensor that owns device memory is created: true when a `tidy`
 * scope now holds it (it needs no reclaim registration until it leaves the scopes: see
 * `leaveScopes`).
 */
export function trackTensor(t: Tensor): boolean {
  t._seq = made++;
  const s = scopes[scopes.length - 1];
  if (s) s.add(t);
  if (ambient) claim(t, ambient);
  return s !== undefined;
}

/**
 * A tensor no scope holds any more and that was not disposed: from now on only the
 * collector's safety net (tensor.ts, `reclaim`) frees it if it is dropped.
 */
function leaveScopes(t: Tensor): void {
  t._guard();
}

/** @internal Called when a tensor is freed: it leaves its owner. */
export function untrackTensor(t: Tensor): void {
  claim(t, null);
}

/**
 * @internal `out` was computed from `inputs`: it belongs to the innermost open owner among
 * theirs, which also adopts inputs made from nothing during its call. (With `out` null:
 * `inputs` came out of one synchronous scope together, so they share an owner.)
 */
export function inheritOwner(out: Tensor | null, inputs: readonly Tensor[]): void {
  let o: Owner | null = null;
  for (const x of inputs) {
    const xo = x._owner;
    if (xo && xo.open && (!o || xo.id > o.id)) o = xo;
  }
  if (!o) return;
  if (out && !out._pinned && out._ref) claim(out, o);
  for (const x of inputs) {
    if (!x._owner && x._ref && !x._pinned && !x.disposed && x._seq >= o.since) claim(x, o);
  }
}

/** @internal Bytes the live tensors of a backend hold. */
export function liveBytes(kind: string): number {
  return live.get(kind)?.bytes ?? 0;
}

/** @internal Counts storage allocated (+) or released (−) on a backend. */
export function countBytes(kind: string, bytes: number): void {
  counts(kind).bytes += bytes;
}

let reclaimed = 0;

/** @internal Counts a tensor the garbage collector reclaimed undisposed (see tensor.ts). */
export function countReclaimed(): void {
  reclaimed++;
}

/** @internal Counts tensors created (+1) or disposed (−1) on a backend. */
export function countTensor(kind: string, delta: number): void {
  counts(kind).tensors += delta;
}

let lastKind = "", lastCounts = { tensors: 0, bytes: 0 };

function counts(kind: string): { tensors: number; bytes: number } {
  // every tensor made and freed counts here, nearly always on the backend of the last one
  if (kind === lastKind) return lastCounts;
  let e = live.get(kind);
  if (!e) live.set(kind, e = { tensors: 0, bytes: 0 });
  lastKind = kind;
  lastCounts = e;
  return e;
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
  /**
   * Tensors the garbage collector reclaimed without `dispose()` since the program started:
   * the safety net freed their memory. A number that grows says some code forgets to
   * dispose (or `tidy`) what it makes; memory then waits for the collector.
   */
  reclaimed: number;
  /**
   * Memory held for reuse, per cache: compiled kernels (`cpu kernels`, `webgpu kernels`,
   * `webgpu pipelines`, `webgpu shader modules`) and pools of freed arrays and buffers (`cpu array pool`,
   * `webgpu buffer pool`, `sparsity scratch`), the programs of `jit`-compiled functions
   * (`jit programs`, entries only), and the lowered form of expressions whose structure was
   * seen before (`lowerings`: an eager call repeated with the same shapes lowers nothing). Every cache is bounded (entries and bytes, least recently used
   * evicted first; pools also drop what sits unused for seconds); `releaseCaches()` empties
   * them. Bytes of compiled code count its source, a proxy for what the compiler holds.
   */
  caches: Record<string, CacheStats>;
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
  return { tensors, bytes, backends, reclaimed, caches: cacheStats() };
}

/**
 * Empties every cache the library keeps for speed: compiled kernels and pipelines (they
 * are compiled again when next needed) and the pools of freed CPU arrays and GPU buffers.
 * Live tensors are untouched. For a long-running program that has finished a phase whose
 * kernels and shapes it will not see again; the caches are bounded anyway (see `memory()`).
 *
 * @example
 * ```ts
 * import { memory, releaseCaches, tensor } from "@curvature/curvature";
 * tensor([1, 2, 3]).mul(2).sum().dispose();
 * releaseCaches();
 * console.log(memory().caches["cpu kernels"].entries); // 0
 * ```
 */
export function releaseCaches(): void {
  clearCaches();
}

/**
 * A value that holds tensors and says which: library result types (`BandedMatrix`, …)
 * implement it, so `tidy` keeps their tensors and owned calls hand them over whole.
 */
export interface HoldsTensors {
  /** The tensors this value holds. */
  tensors(): readonly Tensor[];
}

/**
 * Collects every Tensor inside a (nested) result value: tensors, arrays, plain objects, and
 * objects with a `tensors()` method (Map and Set values too).
 */
function collect(v: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (v === null || typeof v !== "object" || seen.has(v)) return;
  seen.add(v);
  if ((v as { _isTensor?: boolean })._isTensor) {
    out.add(v as Tensor);
    return;
  }
  if (typeof (v as Partial<HoldsTensors>).tensors === "function") {
    for (const x of (v as HoldsTensors).tensors()) collect(x, out, seen);
  } else if (Array.isArray(v)) { for (const x of v) collect(x, out, seen); }
  else if (v instanceof Map || v instanceof Set) {
    for (const x of v.values()) {
      collect(x, out, seen);
    }
  } else if (
    Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null
  ) {
    for (const x of Object.values(v)) collect(x, out, seen);
  }
}

/**
 * @internal Runs the async body of a library call that allocates, so that a failure frees
 * what the call made: `fn` gets `own`, which returns an alias of an argument tensor that
 * the call's work is computed from (lineage then finds everything the call makes from it;
 * see the module comment). If the call fails, every tensor it owns is freed; if it
 * succeeds, its results (and anything it kept) pass to the caller's owner, if any.
 * `dispose` true frees everything but the results on success too (`tidy(async …)`).
 */
export async function ownedCall<T>(
  fn: (own: <U extends Tensor>(t: U) => U) => Promise<T>,
  dispose = false,
): Promise<T> {
  const o = new Owner(ambient);
  const inputs: Tensor[] = [];
  const own = <U extends Tensor>(t: U): U => {
    if (!t || !t._isTensor || !t._ref || t.disposed) return t;
    inputs.push(t);
    const a = t._alias() as U;
    claim(a, o);
    return a;
  };
  const prev = ambient;
  ambient = o;
  let pending: Promise<T>;
  try {
    pending = fn(own);
  } catch (e) {
    ambient = prev;
    finish(o, inputs, null, false, true);
    throw e;
  }
  ambient = prev;
  let result: T;
  try {
    result = await pending;
  } catch (e) {
    finish(o, inputs, null, false, true);
    throw e;
  }
  finish(o, inputs, result, true, dispose);
  return result;
}

/**
 * Closes an owner. Its results (and, unless `dispose`, what it kept) pass to the innermost
 * open owner among the one that started it and those of its inputs, or leave ownership.
 */
function finish(
  o: Owner,
  inputs: readonly Tensor[],
  result: unknown,
  ok: boolean,
  dispose: boolean,
): void {
  o.open = false;
  const keepSet = new Set<Tensor>();
  if (ok) collect(result, keepSet);
  let parent: Owner | null = o.outer?.open ? o.outer : null;
  for (const x of inputs) {
    const xo = x._owner;
    if (xo && xo.open && (!parent || xo.id > parent.id)) parent = xo;
  }
  for (const t of [...o.tensors]) {
    if (keepSet.has(t) || (ok && !dispose && !t._isAlias)) claim(t, parent);
    else t.dispose();
  }
  // a result still owned by this call may have been claimed by it from elsewhere
  for (const t of keepSet) if (t._owner === o) claim(t, parent);
}

/**
 * Runs `fn` and disposes every tensor created inside it except those in its result: a
 * Tensor, or arrays, plain objects, Maps and Sets holding Tensors, and library result
 * types (`BandedMatrix`, … : anything with a `tensors()` method).
 *
 * With an async `fn`, `tidy` returns a promise of its result and frees, once it settles
 * (resolved or rejected), what `fn` made: the tensors of its synchronous first part and
 * everything computed from them (work after an `await` that uses only tensors from outside
 * is not tracked: wrap it in a synchronous `tidy`, or dispose it).
 *
 * @example
 * ```ts
 * import { tidy, tensor } from "@curvature/curvature";
 * const y = tidy(() => tensor([1, 2, 3]).mul(2).sum()); // the temporaries are freed
 * console.log(await y.item()); // 12
 * const z = await tidy(async () => {
 *   const a = tensor([1, 2]).add(1);
 *   const s = await a.sum().item(); // 5; a and its sum are freed when the tidy ends
 *   return a.mul(s);
 * });
 * console.log(await z.toArray()); // [10, 15]
 * ```
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== "function") throw new TypeError("tidy: expected a function");
  if (fn.constructor?.name === "AsyncFunction") {
    return ownedCall(() => fn() as Promise<unknown>, true) as T;
  }
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
  if (result instanceof Promise) return adoptAsync(scope, result) as T;
  const keep = new Set<Tensor>();
  collect(result, keep);
  inheritOwner(null, [...keep]);
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
    if (!keep.has(t)) t.dispose();
    else if (parent) parent.add(t);
    else leaveScopes(t);
  }
  return result;
}

/**
 * A function that was not declared `async` returned a promise: what its synchronous part
 * made becomes an owner's, freed (but the result) once the promise settles, as for an
 * async function.
 */
function adoptAsync(scope: Set<Tensor>, pending: Promise<unknown>): Promise<unknown> {
  return ownedCall(() => {
    for (const t of scope) {
      if (t.disposed) continue;
      // held by the owner until it settles, and then perhaps by nothing
      leaveScopes(t);
      if (ambient) claim(t, ambient);
    }
    return pending;
  }, true);
}

/**
 * Makes `value` outlive the enclosing `tidy` scopes (and any running call's claim on it):
 * a Tensor, or anything `tidy` would keep as a result (arrays, plain objects, a
 * `BandedMatrix` or other value with a `tensors()` method).
 *
 * @example
 * ```ts
 * import { keep, tensor, tidy } from "@curvature/curvature";
 * let kept;
 * tidy(() => {
 *   kept = keep(tensor([1, 2]).mul(3));
 *   return null;
 * });
 * console.log(await kept!.toArray()); // [3, 6]
 * ```
 */
export function keep<T>(value: T): T {
  const ts = new Set<Tensor>();
  collect(value, ts);
  for (const t of ts) {
    for (const s of scopes) s.delete(t);
    claim(t, null);
    leaveScopes(t);
  }
  return value;
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
    else if (parent) parent.add(t);
    else leaveScopes(t);
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
  else {
    // held from now on by `free` only (or, the results, by the caller)
    for (const t of scope) if (!parent || !keepSet.has(t)) leaveScopes(t);
  }
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
