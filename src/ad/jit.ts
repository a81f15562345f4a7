/**
 * `jit`: a function traced once per input signature and replayed as a compiled program.
 *
 * The trace is one ordinary run of the function on the call's inputs, with the device
 * recording every kernel it launches (compile/program.ts); later calls with the same
 * signature run those kernels on the new inputs without running the function, the
 * transforms inside it, the graph building or the lowering again.
 */
import { Tensor } from "../tensor.ts";
import type { Device } from "../device.ts";
import { getDefaultDevice } from "../device.ts";
import type { Replayable, Storage } from "../backend/backend.ts";
import { transformScope } from "../memory.ts";
import { fmtShape, shapesEqual } from "../shape.ts";
import { checkOptions } from "../options.ts";
import { describeValue } from "../ops/common.ts";
import { traceDepth } from "./core.ts";
import { LruCache, registerCache } from "../lru.ts";
import { recording } from "../compile/program.ts";
import { mix } from "../compile/uops.ts";

/** Options of {@linkcode jit}. */
export interface JitOptions {
  /**
   * Positions of arguments that are not tensors (numbers, options objects, strings): each
   * distinct value (compared as JSON) gets its own trace. Other arguments must be tensors
   * or arrays and plain objects of tensors. A position past the function's parameters (or
   * past a call's arguments) is an error.
   */
  static?: readonly number[];
  /** Signatures kept compiled (default 32; the least recently used is dropped). */
  cacheSize?: number;
}

/** A jitted function: `f` with its compiled programs. */
export interface Jitted<A extends unknown[], R> {
  (...args: A): R;
  /** Times `f` has been traced (once per new input signature). */
  readonly traces: number;
  /** Drops every compiled program (the next call traces again). */
  clear(): void;
}

/**
 * Every jitted function's program cache, held weakly (a cache lives as long as its jitted
 * function): `memory().caches["jit programs"]` counts their entries, `releaseCaches()`
 * empties them (the next call traces again). Each cache is bounded by `cacheSize`.
 */
const jitCaches = new Set<WeakRef<LruCache<string, unknown>>>();
const forget = new FinalizationRegistry<WeakRef<LruCache<string, unknown>>>((r) =>
  jitCaches.delete(r)
);
registerCache("jit programs", {
  stats() {
    let entries = 0;
    for (const r of jitCaches) entries += r.deref()?.size ?? 0;
    return { entries, bytes: 0 };
  },
  clear() {
    for (const r of jitCaches) r.deref()?.clear();
  },
});

// Two devices of one kind (two WebGPU adapters, or one adapter acquired twice with other
// tunings) hold their own buffers: a program recorded on one must never replay on the other.
const deviceTags = new WeakMap<Device, number>();
let nextDeviceTag = 0;
/** @internal A small number naming a device object (two devices of one kind differ). */
export const deviceTag = (d: Device): number => {
  let t = deviceTags.get(d);
  if (t === undefined) deviceTags.set(d, t = nextDeviceTag++);
  return t;
};

/** A tree of values with its tensors taken out: how to put them back, and a key for its shape. */
export interface Flat {
  readonly tensors: Tensor[];
  readonly key: string;
  readonly rebuild: (ts: readonly Tensor[]) => unknown;
}

/**
 * @internal Splits a value (Tensor, array, plain object, or — where allowed — anything
 * else) into tensors and structure.
 */
export function flatten(
  v: unknown,
  where: string,
  other: "error" | "keep",
  positions?: readonly number[],
): Flat {
  const tensors: Tensor[] = [];
  const parts: string[] = [];
  const walk = (x: unknown, at: string): (ts: readonly Tensor[]) => unknown => {
    if (x instanceof Tensor) {
      // the same storage passed twice is one input of the program: part of the signature
      const i = tensors.push(x) - 1;
      const alias = aliasOf(tensors, i);
      // an index tensor's values are host data its ops are built from: part of the signature
      const idx = x._index ? `#${hashInts(x._index.host)}` : "";
      parts.push(
        `T${x.dtype}${fmtShape(x.shape)}${x.device.kind}${deviceTag(x.device)}${idx}${
          alias >= 0 ? `=${alias}` : ""
        }`,
      );
      return (ts) => ts[i];
    }
    if (Array.isArray(x)) {
      parts.push(`[${x.length}`);
      // the top level of the arguments is named by each argument's position
      const name = (i: number) => (x === v && positions ? `${at} ${positions[i]}` : `${at}[${i}]`);
      const fs = x.map((e, i) => walk(e, name(i)));
      parts.push("]");
      return (ts) => fs.map((g) => g(ts));
    }
    if (x !== null && typeof x === "object" && Object.getPrototypeOf(x) === Object.prototype) {
      const keys = Object.keys(x);
      parts.push(`{${keys.join(",")}`);
      const fs = keys.map((k) => walk((x as Record<string, unknown>)[k], `${at}.${k}`));
      parts.push("}");
      return (ts) => Object.fromEntries(keys.map((k, i) => [k, fs[i](ts)]));
    }
    if (
      x !== null && typeof x === "object" &&
      typeof (x as { tensors?: unknown }).tensors === "function"
    ) {
      throw new TypeError(
        `jit: ${at} is a ${
          (x as object).constructor?.name ?? "value"
        } holding tensors; return its tensors (and rebuild it outside the jitted function)`,
      );
    }
    if (other === "error") {
      throw new TypeError(
        `jit: ${at} is ${describeValue(x)}; arguments must be tensors (or arrays and plain ` +
          `objects of tensors). List the argument's position in \`static\` to compile one ` +
          `program per value, or pass it as a tensor to vary it without tracing again`,
      );
    }
    parts.push("v");
    return () => x;
  };
  const rebuild = walk(v, where);
  return { tensors, key: parts.join(","), rebuild };
}

/** @internal A hash of an index tensor's host values, for signatures. */
export function hashInts(a: Int32Array): string {
  let h = a.length, g = 0x9e3779b9;
  for (let i = 0; i < a.length; i++) {
    h = mix(h, a[i]);
    g = mix(g ^ i, a[i]);
  }
  return `${(h >>> 0).toString(36)}${(g >>> 0).toString(36)}`;
}

/** What a tensor argument puts in a signature (see `flatten`); storage aliases by position. */
interface TensorSig {
  readonly dtype: Tensor["dtype"];
  readonly shape: readonly number[];
  readonly device: Device;
  readonly alias: number;
}

/** The position of the first argument before `i` on `args[i]`'s storage, or −1. */
function aliasOf(args: readonly Tensor[], i: number): number {
  const s = args[i]._ref?.storage;
  for (let j = 0; j < i; j++) if (args[j]._ref !== null && args[j]._ref?.storage === s) return j;
  return -1;
}

/** The arguments' signatures, where all are tensors without host index values; else []. */
function signature(args: readonly unknown[]): TensorSig[] {
  if (!args.every((a) => a instanceof Tensor && !a._index)) return [];
  const ts = args as readonly Tensor[];
  return ts.map((t, i) => ({
    dtype: t.dtype,
    shape: t.shape,
    device: t.device,
    alias: aliasOf(ts, i),
  }));
}

/** Whether `args` have the signature `sig` (which then gives the same key as flatten's). */
function matches(sig: readonly TensorSig[], args: readonly unknown[]): boolean {
  if (sig.length === 0 || sig.length !== args.length) return false;
  for (let i = 0; i < sig.length; i++) {
    const t = args[i], s = sig[i];
    if (!(t instanceof Tensor) || t._index || t.dtype !== s.dtype || t.device !== s.device) {
      return false;
    }
    if (!shapesEqual(t.shape, s.shape) || aliasOf(args as Tensor[], i) !== s.alias) return false;
  }
  return true;
}

let nextId = 0;
const ids = new WeakMap<object, number>();

/** The functions `jit` returned. */
const jittedFns = new WeakSet<object>();

/**
 * @internal Whether `f` is a function `jit` returned: its caller accepted jit's rule that
 * the values it closes over are fixed at its trace, so a library call may keep programs it
 * compiled from `f` for later calls with the same `f` (minimize does).
 */
export function isJitted(f: unknown): boolean {
  return typeof f === "function" && jittedFns.has(f);
}

/** A static argument as part of a signature: JSON, with functions and class instances by identity. */
function staticKey(v: unknown, i: number): string {
  return JSON.stringify(v, (_k, x) => {
    if (x instanceof Tensor) {
      throw new TypeError(
        `jit: static argument ${i} holds a Tensor; static arguments are compared by value on ` +
          `the host, so pass tensors as ordinary arguments`,
      );
    }
    if (
      typeof x === "function" || (x !== null && typeof x === "object" && !Array.isArray(x) &&
        Object.getPrototypeOf(x) !== Object.prototype)
    ) {
      let id = ids.get(x);
      if (id === undefined) ids.set(x, id = nextId++);
      return `#${id}`;
    }
    if (typeof x === "number" && !Number.isFinite(x)) return `${x}`;
    if (typeof x === "bigint") return `${x}n`;
    return x;
  }) ?? "undefined";
}

/**
 * The `static` option checked: non-negative integer positions, each within `f`'s parameters
 * where its source shows how many it takes (no defaults or rest parameters, for which
 * `f.length` undercounts); other positions are checked against each call's arguments.
 */
function staticPositions(f: (...args: never[]) => unknown, given: unknown): Set<number> {
  if (given === undefined) return new Set();
  if (!Array.isArray(given)) {
    throw new TypeError(
      `jit: static must be an array of argument positions (e.g. { static: [1] }), got ` +
        describeValue(given),
    );
  }
  for (const i of given) {
    if (!Number.isInteger(i) || i < 0) {
      throw new RangeError(
        `jit: static positions must be non-negative integers, got ${describeValue(i)}`,
      );
    }
  }
  const arity = knownArity(f);
  const over = given.find((i) => arity !== null && i >= arity);
  if (over !== undefined) {
    throw new RangeError(
      `jit: static argument position ${over} is out of range: the function takes ${arity} ` +
        `argument${arity === 1 ? "" : "s"} (positions count from 0)`,
    );
  }
  return new Set(given as number[]);
}

/** How many arguments `f` takes, where its source says so exactly; null where it may take more. */
function knownArity(f: (...args: never[]) => unknown): number | null {
  const src = Function.prototype.toString.call(f);
  if (src.includes("[native code]")) return null; // bound functions, builtins
  const m = /^(?:async\s*)?(?:function\b[^(]*)?\(([^()]*)\)\s*(?:=>|\{)/.exec(src) ??
    /^(?:async\s+)?[A-Za-z_$][\w$]*\s*=>/.exec(src);
  if (!m || /[=.{[]/.test(m[1] ?? "")) return null;
  return f.length;
}

/**
 * @internal A compiled signature: the program and how to rebuild the result, or why it
 * runs uncompiled.
 */
export type Entry =
  | {
    readonly program: Replayable;
    readonly device: Device;
    readonly outs: readonly { shape: readonly number[]; dtype: Tensor["dtype"] }[];
    readonly rebuild: (ts: readonly Tensor[]) => unknown;
  }
  | { readonly uncompiled: string };

/**
 * @internal Runs `run` once on copies of `inputs` while the device records the kernels it
 * launches; returns its result and the program (or why there is none). `bound` storages
 * (realized, on the inputs' device) are read as they are and become the program's inputs
 * after `inputs`, not constants: a replay binds the storages it is given in their place.
 * A run that fails in a kernel (a matrix that is not positive definite) throws that error;
 * where the device recorded past it (the CPU) the program is whole, and `keepFailed` gets
 * it first, so the signature need not be traced again (its replays fail at that step
 * while the data makes it fail).
 */
export function traceProgram(
  inputs: readonly Tensor[],
  bound: readonly Storage[],
  run: (traced: Tensor[]) => unknown,
  keepFailed?: (entry: Entry) => void,
): { result: unknown; entry: Entry } {
  const devices = new Set(inputs.map((t) => t.device));
  const dev = inputs[0]?.device ?? getDefaultDevice();
  if (devices.size > 1) {
    return { result: run([...inputs]), entry: { uncompiled: "inputs on several devices" } };
  }
  const be = dev.backend;
  // Each input is traced on storage of its own: a tensor f closes over may share an input's
  // storage (minimize(f, y) where f reads y and x0 = y + 0 folds to y itself), and it must
  // stay a constant of the program, not become that input. Index tensors keep theirs: their
  // host values are part of the signature and build the ops that read them.
  const copies = new Map<unknown, Tensor>();
  const traced = inputs.map((t) => {
    if (t._index) return t;
    const s = t._ref!.storage;
    let c = copies.get(s);
    if (!c) {
      be.materialize(s);
      c = Tensor._fromStorage(be.copy(t.dtype, s, t.size), [t.size], t.dtype, dev, [t]);
      copies.set(s, c);
    }
    return Tensor._view(c, t.shape);
  });
  const storages = traced.map((t) => {
    be.materialize(t._ref!.storage);
    return t._ref!.storage;
  });
  const rec = be.record([...storages, ...bound]);
  let ended = false;
  /** Ends the recording: the entry for the result's tensors (realized). */
  const end = (outs: Flat): Entry => {
    if (outs.tensors.some((t) => t.device !== dev)) {
      ended = true;
      rec.abort();
      return { uncompiled: "a result is on another device" };
    }
    const program = rec.finish(outs.tensors.map((t) => t._ref!.storage));
    ended = true; // (a finish that throws is aborted by the caller)
    if (typeof program === "string") return { uncompiled: program };
    return {
      program,
      device: dev,
      outs: outs.tensors.map((t) => ({ shape: t.shape, dtype: t.dtype })),
      rebuild: outs.rebuild,
    };
  };
  /**
   * The failure a kernel met, with the program kept where it can be: the function ran on
   * to its end (on NaNs in place of the failed value), and its result is realized here as
   * the scope would realize it. Thrown inside the scope, which then frees what the run made.
   */
  const failed = (result: unknown): Error => {
    const failure = rec.failure!;
    if (!keepFailed || result instanceof Promise) return failure;
    try {
      const outs = flatten(result, "the result", "keep");
      if (outs.tensors.some((t) => t._tracer)) return failure;
      for (const t of outs.tensors) if (t.device === dev) be.materialize(t._ref!.storage);
      keepFailed(end(outs));
    } catch {
      // a result jit cannot compile: the failure is still the error to report
    }
    return failure;
  };
  let result: unknown;
  let outs: Flat;
  let flattenedOuts: Tensor[] = [];
  try {
    result = transformScope(() => {
      const r = run(traced);
      if (rec.failure) throw failed(r);
      return r;
    });
    if (result instanceof Promise) {
      throw new TypeError(
        "jit: the function returned a Promise; jit compiles synchronous functions",
      );
    }
    outs = flatten(result, "the result", "keep");
    flattenedOuts = outs.tensors;
    for (const t of outs.tensors) {
      if (t._tracer) {
        throw new Error(
          "jit: the function returned a traced value (a tracer escaped from a transform)",
        );
      }
      if (t.device === dev) be.materialize(t._ref!.storage);
    }
    if (rec.failure) throw rec.failure;
  } catch (e) {
    if (!ended) rec.abort();
    throw e;
  } finally {
    // results that are (views of) a copy hold references of their own
    const returned = new Set<Tensor>(flattenedOuts);
    for (const t of traced) if (!inputs.includes(t) && !returned.has(t)) t.dispose();
    for (const c of copies.values()) c.dispose();
  }
  return { result, entry: end(outs) };
}

/**
 * @internal Runs a recorded program on `inputs` (and, in place of the storages bound at
 * its trace, `bound`); returns the result rebuilt as the traced function returned it.
 */
export function replayProgram(
  e: Extract<Entry, { program: Replayable }>,
  inputs: readonly Tensor[],
  bound: readonly Storage[],
): unknown {
  const be = e.device.backend;
  const storages = inputs.map((t) => {
    be.materialize(t._ref!.storage);
    return t._ref!.storage;
  });
  const out = e.program.run(bound.length ? [...storages, ...bound] : storages);
  const ts = out.map((s: Storage, i) => {
    const at = storages.indexOf(s);
    if (at >= 0) {
      // the function returned an input: share its storage as a view does
      be.release(s);
      return Tensor._view(inputs[at], e.outs[i].shape);
    }
    // computed from the inputs (or a bound storage, with a reference of its own): owned as
    // an op's result is (a failing library call that made the inputs frees what it made
    // from them)
    return Tensor._fromStorage(s, e.outs[i].shape, e.outs[i].dtype, e.device, inputs);
  });
  return e.rebuild(ts);
}

/**
 * Compiles `f`: the first call with a given input signature (shapes, dtypes and devices of
 * the tensor arguments, values of the `static` ones) runs `f` once while the device
 * records the kernels it launches; later calls with that signature replay the kernels on
 * the new inputs, skipping `f`, the transforms inside it, graph building and kernel
 * generation. Transforms compose with it both ways: `jit(grad(f))` compiles the gradient;
 * `grad(jit(f))` (and any use of a jitted function inside a transform or inside another
 * jit's trace) runs `f` as ordinary traced code, so the enclosing transform or trace sees
 * its operations.
 *
 * What is replayed is the device work, nothing else:
 * - side effects in `f` (logging, pushing to an array, counters) happen during a trace
 *   only, not on replays;
 * - tensors `f` closes over are constants of the trace: a replay uses the values they had
 *   when it was traced (the program keeps them alive), even if the variable now names
 *   another tensor. Pass values that change as arguments;
 * - `f` must be synchronous and must not read values back (it cannot await anyway).
 * A function whose work spans several devices runs uncompiled. Each signature's program
 * is kept until `cacheSize` newer signatures displace it, or `clear()`.
 *
 * @example
 * ```ts
 * import { grad, jit, type Tensor, tensor } from "@curvature/curvature";
 * const f = (x: Tensor) => x.sin().mul(x).sum();
 * const g = jit(grad(f));
 * const a = g(tensor([0.5, 1, 2]));   // traced and compiled
 * const b = g(tensor([1.5, 2, 3]));   // replayed
 * console.log(g.traces); // 1
 * console.log(await b.toArray()); // sin x + x cos x at 1.5, 2, 3
 * a.dispose();
 * b.dispose();
 * ```
 */
export function jit<A extends unknown[], R>(
  f: (...args: A) => R,
  opts: JitOptions = {},
): Jitted<A, R> {
  if (typeof f !== "function") {
    throw new TypeError(`jit: expected a function, got ${describeValue(f)}`);
  }
  checkOptions("jit", opts, ["static", "cacheSize"]);
  const statics = staticPositions(f, opts.static);
  const cacheSize = opts.cacheSize ?? 32;
  if (!Number.isInteger(cacheSize) || cacheSize < 1) {
    throw new RangeError(
      `jit: cacheSize must be a positive integer, got ${describeValue(cacheSize)}`,
    );
  }
  const cache = new LruCache<string, Entry>({ maxEntries: cacheSize, maxBytes: Infinity }, (e) => {
    if ("program" in e) e.program.dispose();
  });
  const ref = new WeakRef(cache as LruCache<string, unknown>);
  jitCaches.add(ref);
  forget.register(cache, ref);
  let traces = 0;

  // The last signature of a call whose arguments were all tensors (the usual call): a call
  // that matches it takes its key without building the string, which cost about a third of
  // a small program's replay.
  let last: { key: string; sig: TensorSig[] } | null = null;

  const call = (...args: A): R => {
    // inside a transform or another trace: f's ops belong to that trace
    if (traceDepth() > 0 || recording()) return f(...args);
    if (last && statics.size === 0 && matches(last.sig, args)) {
      for (const t of args as Tensor[]) t._check("jit");
      const entry = cache.get(last.key);
      if (entry) {
        if ("uncompiled" in entry) return f(...args);
        return replayProgram(entry, args as Tensor[], []) as R;
      }
    }
    for (const i of statics) {
      if (i >= args.length) {
        throw new RangeError(
          `jit: static argument position ${i} is out of range: the function was called with ` +
            `${args.length} argument${args.length === 1 ? "" : "s"}`,
        );
      }
    }
    const dynamic = args.flatMap((_, i) => (statics.has(i) ? [] : [i]));
    const flat = flatten(dynamic.map((i) => args[i]), "argument", "error", dynamic);
    const key = [
      flat.key,
      ...args.map((a, i) => (statics.has(i) ? `${i}=${staticKey(a, i)}` : "")),
    ].join("|");
    const rebuildArgs = (ts: readonly Tensor[]) => {
      const d = flat.rebuild(ts) as unknown[];
      const out = [...args];
      dynamic.forEach((i, k) => (out[i] = d[k]));
      return out as A;
    };
    for (const t of flat.tensors) t._check("jit");
    last = statics.size === 0 ? { key, sig: signature(args) } : null;
    const entry = cache.get(key);
    if (entry) {
      if ("uncompiled" in entry) return f(...args);
      return replayProgram(entry, flat.tensors, []) as R;
    }
    traces++;
    return trace(key, flat.tensors, rebuildArgs);
  };

  const trace = (key: string, inputs: Tensor[], rebuildArgs: (ts: readonly Tensor[]) => A): R => {
    const keep = (entry: Entry) => cache.set(key, entry);
    const { result, entry } = traceProgram(
      inputs,
      [],
      (traced) => f(...rebuildArgs(traced)),
      keep,
    );
    keep(entry);
    return result as R;
  };

  jittedFns.add(call);
  Object.defineProperty(call, "traces", { get: () => traces });
  Object.defineProperty(call, "clear", { value: () => cache.clear() });
  return call as Jitted<A, R>;
}
