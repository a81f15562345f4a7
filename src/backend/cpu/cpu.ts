/**
 * The CPU backend: TypedArray kernels in f32, f64 and i32, the reference for every GPU
 * kernel. Elementwise work, views, pads and reductions are deferred and fused into
 * generated loops (see ../lazy.ts and codegen.ts), exactly as on WebGPU; the rest runs at
 * once.
 */
import { registerCache } from "../../lru.ts";
import type { Backend, IndexInfo, RandomDist, Recording, Storage } from "../backend.ts";
import { allocArray, type Dtype, type TypedArray } from "../../dtype.ts";
import { broadcastStrides, sizeOf } from "../../shape.ts";
import { REDUCE_OPS } from "../backend.ts";
import { children, type LazyStorage } from "../../compile/lazy.ts";
import { Graph } from "../../compile/graph.ts";
import { DeferredBackend } from "../deferred.ts";
import type { Target } from "../../compile/lower.ts";
import {
  lowerFitting,
  lowerOnce,
  realizeBroadcastWork,
  realizeSharedProducts,
  realizeSharedWork,
  scheduler,
  scheduleStats,
  splitSize,
} from "../../compile/schedule.ts";
import { KernelCache } from "../../compile/kernels.ts";
import type { Finished, Kernel } from "../../compile/uops.ts";
import { Program, Recorder, recordingScope } from "../../compile/program.ts";
import {
  bandSplitSource,
  mapSource,
  reduceSource,
  reduceSplitSource,
  splitSource,
} from "./render.ts";
import { H } from "./elementwise.ts";
import { CpuStorage, out, pool } from "./storage.ts";
import { matmulCpu } from "./matmul.ts";
import { concatCpu, gatherCpu, scatterAddCpu } from "./movement.ts";
import { randomCpu } from "./random.ts";
import { eighCpu, gaussJordan, packColumns } from "./linalg.ts";
import { substituteCpu } from "./band_recovery.ts";
import { forEachRun } from "./elementwise.ts";
import { logdetError, singularError } from "../linalg_errors.ts";
import { choleskyBandedCpu, solveBandedCpu } from "./banded.ts";
import { solveBandedGeneralCpu } from "./banded_lu.ts";

/** Calls fn with each batch entry's offsets (row-major order over `batchShape`). */
function forEachBatch(
  batchShape: readonly number[],
  strides: number[][],
  fn: (...offs: number[]) => void,
): void {
  if (sizeOf(batchShape) === 0) return;
  if (batchShape.length === 0) return fn(...strides.map(() => 0));
  forEachRun(batchShape, strides, (off, len, st) => {
    for (let t = 0; t < len; t++) fn(...off.map((o, i) => o + t * st[i]));
  });
}

type L = LazyStorage<CpuStorage>;

/** Most probes a split kernel loops over (see compile/lower.ts). */
const MAX_SPLIT = 64;

/**
 * Whether a split kernel of `size` entries may loop over a probes. A broadcasting view's
 * leading axis must also be no longer than the rest (a² ≤ size): K probes against a primal
 * of n ≥ K entries qualify at every n, while a row broadcast over N points ([N, 3] from
 * [1, 3]) never does. Without that test such a view was split while N ≤ MAX_SPLIT and not
 * above, so the first solve at each larger size compiled kernels of another structure.
 */
function splitOk(a: number, comb: boolean, size: number): boolean {
  return a <= MAX_SPLIT && (comb || a * a <= size);
}
const TARGET: Target = { magicDivision: false, signedIndex: true, literals: true };

// deno-lint-ignore no-explicit-any
type Fn = (...args: any[]) => void;

/**
 * Compiled JavaScript kernels by structure (bounded: least recently used evicted). The
 * bytes counted are the source's (UTF-16); V8's compiled code is freed with the function.
 */
export const kernels: KernelCache<Fn> = new KernelCache<Fn>(
  2048,
  undefined,
  (fn) => 2 * fn.toString().length,
);
registerCache("cpu kernels", {
  stats: () => kernels.usage(),
  clear: () => kernels.clear(),
  resize: (limits) => kernels.resize(limits),
});

function compileJs(source: string): Fn {
  return (new Function("H", `"use strict"; return ${source};`) as (h: typeof H) => Fn)(H);
}

function lz(s: Storage): L {
  return s as L;
}

function dtypeOf(a: TypedArray): Dtype {
  return a instanceof Float64Array ? "f64" : a instanceof Int32Array ? "i32" : "f32";
}

const graph: Graph<CpuStorage> = new Graph<CpuStorage>(
  { maxNodes: 256, maxDepth: 64, maxParams: Infinity, maxLeaves: Infinity },
  (s) => realize(s),
  (b) => {
    if (b.arrived) pool.give(b.data);
  },
);

/** Lowerings under way (a reduction read by a kernel is realized while it is lowered). */
let lowering = 0;

/** Runs a storage's expression (if any) with a generated loop; returns the buffer. */
function realize(s: L): CpuStorage {
  if (s.buf) return s.buf;
  const e = s.expr!;
  const sub = (c: L) => void realize(c);
  // costly work that other kernels would evaluate again runs first, on its own
  realizeSharedProducts(s, sub);
  if (lowering === 0) realizeSharedWork(s, sub);
  // a reduction splits when its probe axis leads its outer one (each probe's entries reduced
  // apart), so the probe count must divide the outer size
  const m = s.size === 0
    ? 0
    : e.kind === "reduce"
    ? (scheduler.enabled
      ? splitSize(e.x, (a, comb) => splitOk(a, comb, e.x.size) && e.outer % a === 0)
      : 0)
    : splitSize(s, (a, comb) => splitOk(a, comb, s.size));
  // a band whose products' split kernel writes it (see bandSplit; the symmetry check's
  // mirror shares its products with the band, so they are stored and both gathered)
  const band = e.kind === "band" && !e.mirror && bandSplit(e.x, e.n, e.period) ? e : null;
  // costly work the kernel (or a reduction it reads) would repeat runs first, on its own
  if (lowering === 0) {
    const root = e.kind === "reduce" ? e.x : band ? band.x : s;
    realizeBroadcastWork(root, sub, m > 0 || band !== null);
  }
  const compiled = (f: Finished, source: (k: Kernel) => string) =>
    kernels.get(f, (k) => compileJs(source(k)));
  let leaves: L[] = [];
  let launch = (_o: TypedArray, _ls: TypedArray[]) => {};
  if (e.kind === "reduce") {
    const op = REDUCE_OPS[e.op];
    const kind = m ? `reduce-split-${op}` : `reduce-${op}`;
    const l = lowerOnce(
      () => lowered(() => lowerFitting(TARGET, e.x, kind, m || undefined, sub)),
      sub,
      e.x.size,
      lowering === 0,
    );
    const fn = compiled(l.kernel, (k) => (m ? reduceSplitSource(op, k) : reduceSource(op, k)));
    const { outer, len, inner } = e;
    leaves = l.leaves;
    const q = m ? e.x.size / m : 0;
    launch = m
      ? (o, ls) => fn(o, ls, l.params, outer / q, len, inner, q)
      : (o, ls) => fn(o, ls, l.params, outer, len, inner);
  } else if (band) {
    const { x, n, period, b, upper } = band;
    scheduleStats.bandSplit++;
    const kind = `band-split-${b}-${upper}`;
    const l = lowerOnce(
      () => lowered(() => lowerFitting(TARGET, x, kind, n, sub)),
      sub,
      x.size,
      lowering === 0,
    );
    leaves = l.leaves;
    const fn = compiled(l.kernel, (k) => bandSplitSource(k, b, upper === 1));
    launch = (o, ls) => fn(o, ls, l.params, n, period);
  } else if (s.size > 0) {
    const l = lowerOnce(
      () => lowered(() => lowerFitting(TARGET, s, m ? "split" : "map", m || undefined, sub)),
      sub,
      s.size,
      lowering === 0,
    );
    const size = s.size;
    leaves = l.leaves;
    const fn = compiled(l.kernel, m ? splitSource : mapSource);
    launch = m ? (o, ls) => fn(o, ls, l.params, m, size / m) : (o, ls) => fn(o, ls, l.params, size);
  }
  const buf = kernel(s.dtype, s.size, leaves, launch);
  graph.settle(s, buf);
  return buf;
}

/**
 * Whether a band's products `x` ([period, n]) are computed by a split kernel over their
 * probes that can write the band instead (see bandSplitSource): unrealized, read by no
 * other expression (which would compute them again), and split with one probe per row.
 */
function bandSplit(x: L, n: number, period: number): boolean {
  if (x.buf || !x.expr || x.expr.kind === "reduce" || x.users > 1 || !scheduler.enabled) {
    return false;
  }
  return splitSize(x, (a) => a === period) === n;
}

function lowered<T>(f: () => T): T {
  lowering++;
  try {
    return f();
  } finally {
    lowering--;
  }
}

/** The recording in progress (jit), if any. */
let rec: Recorder<CpuStorage> | null = null;

/**
 * Runs a kernel that writes a fresh array of `size` from the arrays of realized `inputs`
 * (`zeroed`: one that starts at zero, else one from the pool with old values), and
 * records it while a jit trace is recording.
 */
function kernel(
  dtype: Dtype,
  size: number,
  inputs: readonly L[],
  body: (o: TypedArray, xs: TypedArray[]) => void,
  zeroed = false,
): CpuStorage {
  const run = (xs: readonly CpuStorage[]) => {
    const o = zeroed ? allocArray(dtype, size) : out(dtype, size);
    try {
      body(o, xs.map((x) => x.data));
    } catch (e) {
      pool.give(o); // a kernel that throws (a singular matrix) returns its array
      throw e;
    }
    return new CpuStorage(o);
  };
  let buf: CpuStorage;
  try {
    buf = run(inputs.map((x) => x.buf!));
  } catch (e) {
    if (!failedWhileRecording(e)) throw e;
    buf = new CpuStorage(out(dtype, size).fill(dtype === "i32" ? 0 : NaN));
  }
  rec?.step(inputs, buf, run);
  return buf;
}

/**
 * Whether a kernel's error is kept for the end of the jit trace in progress instead of
 * thrown at the call: a failure of the data (RangeError: not positive definite, singular),
 * while recording. The trace then goes on to record the rest of the function, so the
 * failed signature gets its program (a replay throws at the same step) instead of being
 * traced again at its next call, as a Newton loop raising its shift does many times.
 */
function failedWhileRecording(e: unknown): boolean {
  if (!rec || !(e instanceof RangeError)) return false;
  rec.failure ??= e;
  return true;
}

/** An opaque kernel's result as storage: inputs realized, the kernel run (and recorded). */
function op(
  dtype: Dtype,
  size: number,
  inputs: readonly Storage[],
  body: (o: TypedArray, xs: TypedArray[]) => void,
  zeroed = false,
): L {
  const ins = inputs.map((x) => {
    realize(lz(x));
    return lz(x);
  });
  return graph.leaf(kernel(dtype, size, ins, body, zeroed), dtype, size);
}

/**
 * Marks the recording in progress as not replayable (work it cannot repeat). A host read
 * after a kernel failed raises that failure: the value read would be the NaNs standing in.
 */
function unrecordable(why: string): void {
  if (!rec) return;
  rec.poisoned ??= why;
  if (rec.failure) throw rec.failure;
}

/** Waits for every buffer under `s` still arriving from another device (see `to`). */
async function arrivals(s: L): Promise<void> {
  const seen = new Set<L>();
  const stack = [s];
  const waits: Promise<void>[] = [];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.buf) {
      if (!t.buf.arrived) waits.push(t.buf.ready);
    } else if (t.expr) stack.push(...children(t.expr));
  }
  await Promise.all(waits);
  // a copy that failed raises its error now
  for (const t of seen) if (t.buf && !t.buf.arrived) void t.buf.data;
}

/** The typed array behind a storage, running its expression first if needed. */
function arr(s: Storage): TypedArray {
  return realize(lz(s)).data;
}

export class CpuBackend extends DeferredBackend<CpuStorage> implements Backend {
  readonly graph: Graph<CpuStorage> = graph;
  readonly kind = "cpu" as const;
  readonly description = "CPU (TypeScript)";
  readonly dtypes: readonly Dtype[] = ["f32", "f64", "i32"];
  // Typed arrays may hold up to 2^32 elements in V8; keep well inside that.
  readonly maxStorageBytes = 2 ** 32;
  readonly lost = null;
  alive(_op: string): void {}

  upload(data: TypedArray): Storage {
    // one number stays a constant of the generated loops
    if (data.length === 1) return graph.fill(dtypeOf(data), 1, data[0]);
    return op(dtypeOf(data), data.length, [], (o) => o.set(data));
  }
  /** The typed array behind a storage (computed if deferred), for copies to another device. */
  hostArray(s: Storage): TypedArray {
    unrecordable("a copy to another device");
    return arr(s);
  }
  /** CPU storage for data still being read back from another device (see `to`). */
  fromTransit(data: Promise<TypedArray>, dtype: Dtype, size: number): Storage {
    unrecordable("a copy from another device");
    return graph.leaf(new CpuStorage(data), dtype, size);
  }
  async download(s: Storage, dtype: Dtype, size: number, into?: TypedArray): Promise<TypedArray> {
    await arrivals(lz(s));
    // realize and copy in one go, while the tensor is alive: after an await its array may be reused
    return this.readSync(s, dtype, size, into);
  }
  readSync(s: Storage, _dtype: Dtype, _size: number, into?: TypedArray): TypedArray {
    // a value read while a jit trace records: the program would depend on it, so none is made
    unrecordable("a value read with dataSync() or itemSync()");
    const a = realize(lz(s)).data;
    if (!into) return a.slice();
    into.set(a);
    return into;
  }
  materialize(s: Storage): void {
    realize(lz(s));
  }
  async settled(s: Storage): Promise<void> {
    await arrivals(lz(s));
    realize(lz(s));
  }
  raiseIf(_target: Storage, flag: Storage, message: string): void {
    const check = (xs: readonly CpuStorage[]) => {
      if (xs[0].data[0] !== 0) throw new RangeError(message);
      return null;
    };
    const f = lz(flag);
    try {
      check([realize(f)]);
    } catch (e) {
      if (!failedWhileRecording(e)) throw e;
    }
    rec?.step([f], null, check);
  }

  /** Records the kernels run from now until `finish`, as a program replayable on new inputs. */
  record(inputs: readonly Storage[]): Recording {
    if (rec) throw new Error("internal: a jit trace is already recording on the CPU");
    const r = new Recorder<CpuStorage>(inputs.map(lz));
    rec = r;
    const end = recordingScope();
    const stop = () => {
      if (rec === r) rec = null;
      end();
    };
    const release = (x: L) => graph.release(x);
    return {
      finish: (outputs) => {
        for (const o of outputs) realize(lz(o));
        stop();
        if (r.poisoned) {
          r.dispose(release);
          return r.poisoned;
        }
        return new Program(r, outputs.map(lz), {
          free: (b) => graph.free(b),
          wrap: (b, dtype, size) => graph.leaf(b, dtype, size),
          release,
        });
      },
      abort: () => {
        stop();
        r.dispose(release);
      },
      get failure() {
        return r.failure;
      },
    };
  }
  sync(): Promise<void> {
    return Promise.resolve();
  }

  random(dist: RandomDist, dtype: Dtype, size: number, seed: number, offset: number): Storage {
    return op(dtype, size, [], (o) => randomCpu(dist, o, seed, offset));
  }

  copy(dtype: Dtype, x: Storage, size: number): Storage {
    return op(dtype, size, [x], (o, [a]) => o.set(a.subarray(0, size)));
  }

  matmul(
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    return op(
      dtype,
      sizeOf(outShape),
      [a, b],
      (o, [A, B]) => matmulCpu(A, aShape, B, bShape, o, outShape),
    );
  }

  solve(
    name: string,
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    const r = outShape.length;
    const n = outShape[r - 2], m = outShape[r - 1], cols = n + m;
    const batchShape = outShape.slice(0, r - 2);
    const aB = broadcastStrides(aShape.slice(0, -2), batchShape).map((s) => s * n * n);
    const bB = broadcastStrides(bShape.slice(0, -2), batchShape).map((s) => s * n * m);
    return op(dtype, sizeOf(outShape), [a, b], (o, [A, B]) => {
      const w = new Float64Array(n * cols);
      let at = 0;
      forEachBatch(batchShape, [aB, bB], (ao, bo) => {
        packColumns(w, cols, A, ao, n, n, 0);
        packColumns(w, cols, B, bo, n, m, n);
        const { singular } = gaussJordan(w, n, cols, false);
        if (singular) throw singularError(name, at, singular);
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < m; j++) o[at * n * m + i * m + j] = w[i * cols + n + j];
        }
        at++;
      });
    });
  }
  det(
    name: string,
    mode: "det" | "logdet",
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
  ): Storage {
    const r = aShape.length, n = aShape[r - 1];
    const count = sizeOf(aShape.slice(0, -2));
    return op(dtype, count, [a], (o, [A]) => {
      const w = new Float64Array(n * n);
      for (let b = 0; b < count; b++) {
        packColumns(w, n, A, b * n * n, n, n, 0);
        const { logabs, sign, singular } = gaussJordan(w, n, n, true);
        if (mode === "det") o[b] = singular ? 0 : sign * Math.exp(logabs);
        else {
          const msg = logdetError(name, b, singular, sign);
          if (msg) throw new RangeError(msg);
          o[b] = logabs;
        }
      }
    });
  }

  cumsum(dtype: Dtype, x: Storage, shape: readonly number[], axis: number): Storage {
    const n = shape[axis], inner = sizeOf(shape.slice(axis + 1));
    const outer = sizeOf(shape.slice(0, axis));
    return op(dtype, sizeOf(shape), [x], (o, [X]) => {
      for (let a = 0; a < outer; a++) {
        for (let c = 0; c < inner; c++) {
          let s = 0; // accumulated in f64, each prefix rounded once on storing
          for (let j = 0, at = a * n * inner + c; j < n; j++, at += inner) o[at] = s += X[at];
        }
      }
    });
  }

  eigh(dtype: Dtype, a: Storage, batch: number, n: number): Storage {
    return op(dtype, batch * (n + 1) * n, [a], (o, [A]) => {
      for (let b = 0; b < batch; b++) eighCpu(A, b * n * n, n, o, b * (n + 1) * n);
    });
  }

  substituteBand(dtype: Dtype, hv: Storage, n: number, b: number, upper: boolean): Storage {
    return op(dtype, (b + 1) * n, [hv], (o, [h]) => substituteCpu(h, o, n, b, upper));
  }

  concat(
    dtype: Dtype,
    xs: readonly Storage[],
    shapes: readonly (readonly number[])[],
    axis: number,
    outShape: readonly number[],
  ): Storage {
    return op(dtype, sizeOf(outShape), xs, (o, as) => concatCpu(as, shapes, axis, o, outShape));
  }
  gather(
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    axis: number,
    _idx: Storage,
    idxInfo: IndexInfo,
  ): Storage {
    // the indices are host values known when the op is built (jit keys on them)
    const m = idxInfo.host.length;
    const size = sizeOf(shape.slice(0, axis)) * m * sizeOf(shape.slice(axis + 1));
    return op(dtype, size, [x], (o, [a]) => gatherCpu(a, shape, axis, idxInfo.host, o));
  }
  scatterAdd(
    dtype: Dtype,
    g: Storage,
    _gShape: readonly number[],
    axis: number,
    _idx: Storage,
    idxInfo: IndexInfo,
    outShape: readonly number[],
  ): Storage {
    return op(
      dtype,
      sizeOf(outShape),
      [g],
      (o, [a]) => scatterAddCpu(a, outShape, axis, idxInfo.host, o),
    );
  }

  choleskyBanded(
    name: string,
    dtype: Dtype,
    ab: Storage,
    batch: number,
    n: number,
    b: number,
    lower: boolean,
  ): Storage {
    return op(
      dtype,
      batch * (b + 1) * n,
      [ab],
      (o, [a]) => choleskyBandedCpu(name, a, o, batch, n, b, lower),
    );
  }
  solveBanded(
    name: string,
    dtype: Dtype,
    ab: Storage,
    rhs: Storage,
    batch: number,
    n: number,
    b: number,
    m: number,
    lower: boolean,
  ): Storage {
    return op(
      dtype,
      batch * n * m,
      [ab, rhs],
      (o, [a, r]) => solveBandedCpu(name, a, r, o, batch, n, b, m, lower),
    );
  }
  solveBandedGeneral(
    name: string,
    dtype: Dtype,
    ab: Storage,
    rhs: Storage,
    batch: number,
    n: number,
    l: number,
    u: number,
    m: number,
  ): Storage {
    return op(
      dtype,
      batch * n * m,
      [ab, rhs],
      (o, [a, r]) => solveBandedGeneralCpu(name, a, r, o, batch, n, l, u, m),
    );
  }
}
