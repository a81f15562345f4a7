/**
 * Compiled programs without `jit`: the library's curvature calls (bandedHessian,
 * hessianDiagonal, hessianTrace, hessian, inverseHvp) keep the programs of their
 * Hessian-vector work across calls, keyed by what f computes, never by f itself.
 *
 * A function object does not say what it computes: a closure over a variable the caller
 * reassigns (a weight, a target, a barrier parameter) is the same object with other values.
 * So each call runs f once on an abstract x (a tracer with a shape and no values: no graph
 * node is built, no kernel runs) and writes down what it did: each primitive with its
 * parameters and which earlier results it read, and every concrete tensor it read. A
 * concrete tensor's expression is written out too (constants with their values: a JS number
 * f multiplies by is part of the key); the buffers under it, which existed before the call
 * (tensors f closes over), are not part of the key but inputs of the program, bound on each
 * replay to the buffers this call's run of f read there. The Hessian work is traced from
 * exactly these operations, so a call that writes the same record runs the earlier call's
 * kernels on its own x and its own captured tensors.
 *
 * A run the record cannot describe keys nothing, and the call compiles its work for itself
 * alone, as before: f read a value (a tracer has none to read), or made a buffer while it
 * ran (an opaque op such as `matmul` on tensors it closes over, a tensor made from host
 * data inside f).
 */
import { Tensor, type Tracer } from "../tensor.ts";
import type { Storage } from "../backend/backend.ts";
import { forChildren, type LazyStorage, nextStorageId } from "../compile/lazy.ts";
import { recording } from "../compile/program.ts";
import { LruCache, type LruLimits, registerCache } from "../lru.ts";
import { transformScope } from "../memory.ts";
import { fmtShape } from "../shape.ts";
import { stopGradient } from "../ops/elementwise.ts";
import { PRIMITIVES } from "../primitives/registry.ts";
import type { Aval, Params, Primitive } from "../primitives/types.ts";
import { popTrace, pushTrace, Trace, traceDepth } from "./core.ts";
import {
  deviceTag,
  type Entry,
  flatten,
  hashInts,
  jit,
  replayProgram,
  traceProgram,
} from "./jit.ts";

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

/** Raised by the abstract run when f does what the record cannot describe. */
class Unkeyable extends Error {}

/** A number as text, so that equal text means Object.is-equal numbers. */
const num = (v: number): string => (Object.is(v, -0) ? "-0" : String(v));

/** A primitive's parameters (numbers, strings, arrays of them) as text. */
function paramText(v: unknown): string {
  if (typeof v === "number") return num(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(paramText).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    return keys.length ? `{${keys.map((k) => `${k}:${paramText(o[k])}`).join(",")}}` : "";
  }
  if (v === undefined) return "u";
  throw new Unkeyable(`a parameter the key cannot write (${typeof v})`);
}

/** The shape, dtype and device of a value. */
type Like = Pick<Tensor, "shape" | "dtype" | "device">;

/** A value of the abstract run: the position of the primitive that made it. */
class KeyTracer implements Tracer {
  constructor(readonly trace: KeyTrace, readonly at: number, readonly like: Like) {}

  get primal(): Tensor {
    throw new Unkeyable("f read a value");
  }

  /** stopGradient's hook: written down as an op of its own (the derivative depends on it). */
  mapValue(fn: (v: Tensor) => Tensor): Tensor {
    if (fn !== stopGradient) throw new Unkeyable("an unknown map over a value");
    const t = this.trace;
    t.parts.push(`stop(v${this.at})`);
    return t.value(this.like, t.parts.length - 1);
  }
}

/**
 * The abstract run: records each primitive applied to its values, with its parameters and
 * operands (a value by position, a concrete tensor written out where first met).
 */
class KeyTrace extends Trace {
  override readonly bindsFirst = true;
  readonly parts: string[] = [];
  readonly bound: LazyStorage[] = [];
  readonly #seen = new Map<LazyStorage, number>();

  constructor(level: number, readonly since: number) {
    super(level, "auto-jit key");
  }

  /** A value made at record position `at`, with `like`'s shape, dtype and device. */
  value(like: Like, at: number): Tensor {
    const tr = new KeyTracer(this, at, like);
    return new Tensor(like.shape, like.dtype, like.device, null, tr);
  }

  process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: Params[P]): Tensor {
    const out = PRIMITIVES[prim].abstract(inputs as readonly Aval[], params);
    const ops = inputs.map((x) => {
      const tr = x._tracer;
      if (tr instanceof KeyTracer && tr.trace === this) return `v${tr.at}`;
      if (tr) throw new Unkeyable("a value of another transform");
      x._check(prim);
      return this.leaf(x);
    });
    this.parts.push(`${prim}${paramText(params)}(${ops.join(",")})`);
    const like = { shape: out.shape, dtype: out.dtype, device: inputs[0].device };
    return this.value(like, this.parts.length - 1);
  }

  /** A concrete tensor read by f: its shape and its storage's expression, written out. */
  leaf(x: Tensor): string {
    const idx = x._index ? `#${hashInts(x._index.host)}` : "";
    return `c${x.dtype}${fmtShape(x.shape)}${idx}:${this.#storage(x._ref!.storage as LazyStorage)}`;
  }

  /**
   * A storage as text: a node met before by position; a buffer bound at replay (one made
   * during the run cannot be: its work is not in the record); an expression, its kind,
   * dtype, size and numbers, then its operands.
   */
  #storage(s: LazyStorage): string {
    const at = this.#seen.get(s);
    if (at !== undefined) return `@${at}`;
    this.#seen.set(s, this.#seen.size);
    const head = `${s.dtype}${s.size}`;
    const e = s.expr;
    if (s.buf !== null || e === null) {
      if (s.buf === null || s.id >= this.since) throw new Unkeyable("a buffer made while f ran");
      this.bound.push(s);
      return `b${head}`;
    }
    let own: string;
    switch (e.kind) {
      case "const":
        return `k${head}=${num(e.value)}`;
      case "iota":
        return `i${head}=${num(e.start)},${num(e.step)}`;
      case "comb":
        return `m${head}=${e.n},${e.period}`;
      case "unary":
        own = e.op;
        break;
      case "binary":
        own = e.op;
        break;
      case "view":
        own = `${e.offset};${e.shape};${e.strides}`;
        break;
      case "pad":
        own = `${num(e.value)};${e.outShape};${e.inShape};${e.before}`;
        break;
      case "band":
        own = `${e.n},${e.b},${e.period},${e.upper},${e.mirror}`;
        break;
      case "reduce":
        own = `${e.op},${e.outer},${e.len},${e.inner}`;
        break;
      default:
        own = "";
    }
    const kids: string[] = [];
    forChildren(e, (c: LazyStorage) => kids.push(this.#storage(c)));
    return `${e.kind}${head}=${own}(${kids.join(",")})`;
  }
}

/** f's record at x's signature as a key, with the buffers it binds (held until `release`). */
interface Key {
  readonly text: string;
  readonly bound: readonly Storage[];
}

/**
 * Runs f once on an abstract x and keys what it did; null if the record cannot describe it.
 * Tensors f makes from the ones it closes over (a reshape of a captured tensor) are real:
 * freed as a transform frees what f makes.
 */
function keyOf(f: (x: Tensor) => Tensor, x: Tensor): Key | null {
  return transformScope(() => keyRun(f, x));
}

function keyRun(f: (x: Tensor) => Tensor, x: Tensor): Key | null {
  const trace = pushTrace((l) => new KeyTrace(l, nextStorageId()));
  let text: string;
  try {
    const y = f(trace.value(x, -1));
    if (!(y instanceof Tensor)) return null; // the call's own run of f names the problem
    const tr = y._tracer;
    const out = tr instanceof KeyTracer && tr.trace === trace ? `v${tr.at}` : trace.leaf(y);
    text = `${deviceTag(x.device)}|${x.dtype}${fmtShape(x.shape)}|${y.dtype}${fmtShape(y.shape)}|${
      trace.parts.join(";")
    }|${out}`;
  } catch (e) {
    // an error of f's own is the call's (f raises it in the traced run as well)
    if (e instanceof Unkeyable) return null;
    throw e;
  } finally {
    popTrace(trace);
  }
  for (const s of trace.bound) s.refs++; // a replay reads them: held for the call
  return { text, bound: trace.bound };
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

/** Runs `body` and calls `done` once its result is settled (at once, after a promise, or on a throw). */
function settled<T>(body: () => T, done: () => void): T {
  let result: T;
  try {
    result = body();
  } catch (e) {
    done();
    throw e;
  }
  if (result instanceof Promise) return result.finally(done) as T;
  done();
  return result;
}

/**
 * @internal Runs `use` with the work of f at x compiled. When f's run on an abstract x can
 * be recorded, each `run(work, args, fn)` replays the program an earlier call with the same
 * record, work and argument signature recorded, binding this call's x, arguments and
 * captured tensors, or traces `fn` and records it for later calls. Otherwise the work is
 * compiled for this call only (a `jit` per work name, dropped when `use` returns or its
 * promise settles): repeated work inside one call still replays, as f is fixed for the call
 * (with `repeats` false, for work done once per call, it runs as it is). f runs once more
 * than the work itself needs (the key run), on every call. `use` also gets the record as
 * text (null when there is none), a key for anything else derived from what f computes.
 */
export function compiledByRecord<T>(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  use: (run: CompiledWork, record: string | null) => T,
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
    return repeats ? forTheCall(use) : use((_work, args, fn) => fn(...args), null);
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
  return settled(() => use(run, key.text), () => release(x, key));
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
function forTheCall<T>(use: (run: CompiledWork, record: null) => T): T {
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
  return settled(() => use(run, null), clear);
}
