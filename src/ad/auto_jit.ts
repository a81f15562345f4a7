/**
 * Compiled programs without `jit`: the library's curvature calls (bandedHessian,
 * hessianDiagonal, hessianTrace, hessian, inverseHvp) keep the programs of their
 * Hessian-vector work across calls, keyed by what f computes, never by f itself.
 *
 * A function object does not say what it computes: a closure over a variable the caller
 * reassigns (a weight, a target, a barrier parameter) is the same object with other values.
 * So each call runs f's forward pass once on x, which on the lazy graph builds nodes and
 * runs no kernel, and keys the programs by that graph: each node's kind, dtype, size and
 * numbers (constants included, so a JS number f multiplies by is part of the key), which
 * nodes are shared, and which leaf is x. Every other leaf is a buffer that existed before
 * the call (a tensor f closes over): it is not part of the key but an input of the
 * program, bound on each replay to the buffer this call's graph reads there. The Hessian
 * work is a function of that graph, so a call whose graph matches an earlier one's runs the
 * earlier call's kernels on its own x and its own captured tensors.
 *
 * A run the graph cannot describe keys nothing, and the call compiles its work for itself
 * alone, as before: f launched a kernel while building its graph (an opaque op such as
 * `matmul`, a tensor made from host data inside f), read a value back, or stopped a
 * derivative (`stopGradient` of a concrete tensor is a view: the graph does not show it).
 */
import { Tensor, unseen } from "../tensor.ts";
import type { Storage } from "../backend/backend.ts";
import { BINARY_OPS, UNARY_OPS } from "../backend/backend.ts";
import { type Expr, forChildren, LazyStorage } from "../compile/lazy.ts";
import { recording } from "../compile/program.ts";
import { LruCache, type LruLimits, registerCache } from "../lru.ts";
import { tidy } from "../memory.ts";
import { fmtShape } from "../shape.ts";
import { traceDepth } from "./core.ts";
import { deviceTag, type Entry, flatten, jit, replayProgram, traceProgram } from "./jit.ts";

/** Counters (for tests and benchmarks): keys made, calls that could not key, replays, traces. */
export const autoJitStats: { keyed: number; unkeyed: number; hits: number; misses: number } = {
  keyed: 0,
  unkeyed: 0,
  hits: 0,
  misses: 0,
};

/** Switches the cache off (tests compare with the uncached path, benchmarks time both). */
export const autoJitConfig: { enabled: boolean } = { enabled: true };

const cache = new LruCache<string, Entry>({ maxEntries: 64, maxBytes: Infinity }, (e) => {
  if ("program" in e) e.program.dispose();
});
registerCache("auto-jit programs", {
  stats: () => cache.stats(),
  clear: () => cache.clear(),
  resize: (limits: Partial<LruLimits>) => cache.resize(limits),
});

/**
 * Functions whose last run keyed nothing, with how many calls to skip the key run for (it
 * would cost a forward pass for nothing). Only ever a reason not to look, never a program.
 */
const unkeyable = new WeakMap<object, number>();
const SKIP = 8;

const KINDS: Record<Expr["kind"], number> = {
  const: 1,
  iota: 2,
  comb: 3,
  unary: 4,
  binary: 5,
  where: 6,
  cast: 7,
  view: 8,
  pad: 9,
  band: 10,
  reduce: 11,
};
/** Tags of a leaf: x, a buffer bound at replay, a node met before (its position follows). */
const INPUT = 0, BOUND = 12, BACK = 13;
const DTYPES = ["f32", "f64", "i32"];

/**
 * The structure under `root` as text, and the buffers it reads other than `x` in the order
 * met; null when a buffer was made by the run (ids after `x`'s: the work behind it is not in
 * the graph). Each node is written where first met, as lower_cache.ts writes a kernel's
 * graph, except that reductions are walked into and every constant's value is written.
 */
function signature(
  root: LazyStorage,
  x: LazyStorage,
): { text: string; bound: LazyStorage[] } | null {
  const seen = new Map<LazyStorage, number>();
  const parts: number[] = [];
  const bound: LazyStorage[] = [];
  let made = false;
  const visit = (s: LazyStorage): void => {
    const at = seen.get(s);
    if (at !== undefined) {
      parts.push(BACK, at);
      return;
    }
    seen.set(s, seen.size);
    if (s === x) {
      parts.push(INPUT);
      return;
    }
    const dt = DTYPES.indexOf(s.dtype);
    const e = s.expr;
    if (s.buf !== null || e === null) {
      if (s.buf === null || s.id > x.id) made = true;
      parts.push(BOUND, dt, s.size);
      bound.push(s);
      return;
    }
    parts.push(KINDS[e.kind], dt, s.size);
    switch (e.kind) {
      case "const":
        parts.push(e.value);
        return;
      case "iota":
        parts.push(e.start, e.step);
        return;
      case "comb":
        parts.push(e.n, e.period);
        return;
      case "unary":
        parts.push(UNARY_OPS.indexOf(e.op));
        break;
      case "binary":
        parts.push(BINARY_OPS.indexOf(e.op));
        break;
      case "view":
        parts.push(e.offset, e.shape.length, ...e.shape, ...e.strides);
        break;
      case "pad":
        parts.push(e.value, e.outShape.length, ...e.outShape, ...e.inShape, ...e.before);
        break;
      case "band":
        parts.push(e.n, e.b, e.period, e.upper, e.mirror);
        break;
      case "reduce":
        parts.push(e.op, e.outer, e.len, e.inner);
        break;
    }
    forChildren(e, visit);
  };
  visit(root);
  if (made) return null;
  // -0 and NaN written so that equal text means Object.is-equal numbers
  const text = parts.map((v) => (Object.is(v, -0) ? "-0" : String(v))).join(",");
  return { text, bound };
}

/** f's forward graph at x as a key, with the buffers it binds (held until `release`). */
interface Key {
  readonly text: string;
  readonly bound: readonly Storage[];
}

/** Runs f once on x's buffer under a storage of its own and keys its graph; null if it cannot. */
function keyOf(f: (x: Tensor) => Tensor, x: Tensor): Key | null {
  const be = x.device.backend;
  const xs = x._ref!.storage as LazyStorage;
  be.materialize(xs);
  if (xs.buf === null || xs.size !== x.size) return null;
  // x's buffer under a storage object of its own: a tensor f closes over that shares x's
  // storage (f reads y, x is y) is then a leaf apart from x, as it is to the derivative.
  // Made last before f runs: every storage f makes has a larger id.
  const own = new LazyStorage(x.dtype, x.size, xs.buf, null);
  own.refs++; // never released to zero: the buffer is x's
  const reads = unseen.reads, stops = unseen.stops;
  let key: Key | null = null;
  // an error f raises here is the call's (f would raise it in the traced run as well)
  tidy(() => {
    const y = f(Tensor._fromStorage(own, x.shape, x.dtype, x.device));
    if (!(y instanceof Tensor) || y._tracer || !y._ref || y.device !== x.device) return;
    const sig = signature(y._ref.storage as LazyStorage, own);
    if (!sig) return;
    for (const s of sig.bound) s.refs++; // a replay reads them: held for the call
    key = {
      text: `${deviceTag(x.device)}|${x.dtype}${fmtShape(x.shape)}|${y.dtype}${
        fmtShape(y.shape)
      }|${sig.text}`,
      bound: sig.bound,
    };
  });
  if (key && (unseen.reads !== reads || unseen.stops !== stops)) {
    release(x, key);
    return null;
  }
  return key;
}

function release(x: Tensor, key: Key): void {
  for (const s of key.bound) x.device.backend.release(s);
}

/**
 * Runs tensor work `fn` on `args` compiled: `work` names what `fn` computes from f and its
 * arguments beyond their shapes (the options it was built with); one `work` name is one
 * `fn` for the length of a call.
 */
export type CompiledWork = <R>(
  work: string,
  args: readonly Tensor[],
  fn: (...traced: Tensor[]) => R,
) => R;

/** Calls `done` once `result` is settled (at once for a value, after a promise). */
function settle<T>(result: T, done: () => void): T {
  if (result instanceof Promise) return result.finally(done) as T;
  done();
  return result;
}

/**
 * @internal Runs `use` with the work of f at x compiled. When f's forward graph at x can
 * be keyed, each `run(work, args, fn)` replays the program an earlier call with the same
 * graph, work and argument signature recorded, binding this call's x, arguments and
 * captured tensors, or traces `fn` and records it for later calls. Otherwise the work is
 * compiled for this call only (a `jit` per work name, dropped when `use` returns or its
 * promise settles): repeated work inside one call still replays, as f is fixed for the call
 * (with `repeats` false, for work done once per call, it runs as it is). f runs once more
 * than the work itself needs (the key run), on every call.
 */
export function compiledByGraph<T>(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  use: (run: CompiledWork) => T,
  repeats = true,
): T {
  const look = lookable(f, x);
  const key = look ? keyOf(f, x) : null;
  if (key === null) {
    if (look) {
      autoJitStats.unkeyed++;
      unkeyable.set(f, SKIP);
    }
    // work done once per call gains nothing from a program that lives for the call
    return repeats ? forTheCall(use) : use((_work, args, fn) => fn(...args));
  }
  autoJitStats.keyed++;
  const run: CompiledWork = <R>(
    work: string,
    args: readonly Tensor[],
    fn: (...traced: Tensor[]) => R,
  ): R => {
    const at = `${work}|${flatten([...args], "argument", "error").key}|${key.text}`;
    const hit = cache.get(at);
    if (hit) {
      if ("uncompiled" in hit) return fn(...args);
      autoJitStats.hits++;
      return replayProgram(hit, args, key.bound) as R;
    }
    autoJitStats.misses++;
    const { result, entry } = traceProgram(args, key.bound, (t) => fn(...t));
    cache.set(at, entry);
    return result as R;
  };
  let result: T;
  try {
    result = use(run);
  } catch (e) {
    release(x, key);
    throw e;
  }
  return settle(result, () => release(x, key));
}

/** Whether to run the key run: not inside a transform or a recording, and f not skipped. */
function lookable(f: object, x: Tensor): boolean {
  if (!autoJitConfig.enabled || traceDepth() > 0 || recording()) return false;
  // what is not a float tensor with data, or not a function, gets its error from the call
  if (typeof f !== "function" || !(x instanceof Tensor) || x._tracer || !x._ref) return false;
  if (x.disposed || x.dtype === "i32" || x.size === 0) return false;
  const skip = unkeyable.get(f);
  if (skip === undefined) return true;
  if (skip <= 1) unkeyable.delete(f);
  else unkeyable.set(f, skip - 1);
  return false;
}

/** `use` with each work name compiled by a `jit` that lives for the call. */
function forTheCall<T>(use: (run: CompiledWork) => T): T {
  const jits = new Map<string, ReturnType<typeof jit<Tensor[], unknown>>>();
  const run: CompiledWork = <R>(
    work: string,
    args: readonly Tensor[],
    fn: (...traced: Tensor[]) => R,
  ): R => {
    let j = jits.get(work);
    if (!j) jits.set(work, j = jit((...a: Tensor[]) => fn(...a)));
    return j(...args) as R;
  };
  const clear = () => {
    for (const j of jits.values()) j.clear();
  };
  let result: T;
  try {
    result = use(run);
  } catch (e) {
    clear();
    throw e;
  }
  return settle(result, clear);
}
