/**
 * The CPU backend: TypedArray kernels in f32, f64 and i32, the reference for every GPU
 * kernel. Elementwise work, views, pads and reductions are deferred and fused into
 * generated loops (see ../lazy.ts and codegen.ts), exactly as on WebGPU; the rest runs at
 * once.
 */
import type {
  Backend,
  BinaryOp,
  IndexInfo,
  RandomDist,
  ReduceOp,
  Storage,
  UnaryOp,
} from "../backend.ts";
import type { Dtype, TypedArray } from "../../dtype.ts";
import { broadcastStrides, coalesce, sizeOf } from "../../shape.ts";
import { permutedStrides, planReduce } from "../../shape_plan.ts";
import { REDUCE_OPS } from "../backend.ts";
import { children, type Expr, LazyStorage, measure } from "../lazy.ts";
import { compile, JsGen } from "./codegen.ts";
import { CpuStorage, out, pool } from "./storage.ts";
import { matmulCpu } from "./matmul.ts";
import { concatCpu, gatherCpu, scatterAddCpu } from "./movement.ts";
import { randomCpu } from "./random.ts";
import { eighCpu, gaussJordan, packColumns } from "./linalg.ts";
import { substituteCpu, unshuffleCpu } from "./band_recovery.ts";
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

/** Fusion caps: expression nodes per generated function, and the depth of carried chains. */
const MAX_NODES = 256;
const MAX_DEPTH = 64;
/** Most probes a split kernel loops over (see codegen.ts). */
const MAX_SPLIT = 64;

function lz(s: Storage): L {
  return s as L;
}

function dtypeOf(a: TypedArray): Dtype {
  return a instanceof Float64Array ? "f64" : a instanceof Int32Array ? "i32" : "f32";
}

function wrap(a: TypedArray, dtype: Dtype = dtypeOf(a)): L {
  return new LazyStorage<CpuStorage>(dtype, a.length, new CpuStorage(a), null);
}

/** A split kernel's inner size M (a view broadcasting along a leading axis), or 0. */
function splitSize(root: L): number {
  let best = 0;
  const seen = new Set<L>();
  const stack = [root];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s) || s.buf || !s.expr || s.expr.kind === "reduce") continue;
    seen.add(s);
    const e = s.expr;
    if (e.kind === "view") {
      const a = e.shape[0];
      if (
        e.shape.length >= 2 && e.strides[0] === 0 && a <= MAX_SPLIT && a > best &&
        root.size % a === 0
      ) best = a;
    }
    stack.push(...children(e));
  }
  return best > 1 ? root.size / best : 0;
}

/** Releases a storage reference; the last one returns the array to the pool. */
function release(s: L): void {
  if (--s.refs > 0) return;
  if (s.buf) {
    if (s.buf.arrived) pool.give(s.buf.data);
  } else if (s.expr) { for (const c of children(s.expr)) release(c); }
  s.buf = null;
  s.expr = null;
}

/** Runs a storage's expression (if any) with a generated loop; returns the buffer. */
function realize(s: L): CpuStorage {
  if (s.buf) return s.buf;
  const e = s.expr!;
  const o = out(s.dtype, s.size);
  const opts = { realize: (c: L) => void realize(c) };
  if (e.kind === "reduce") {
    const g = new JsGen(opts);
    const v = g.value(e.x);
    const op = REDUCE_OPS[e.op];
    compile(g.key(`reduce-${op}`, v), () => g.reduceSource(op, v))(
      o,
      g.leaves,
      g.params,
      e.outer,
      e.len,
      e.inner,
    );
  } else if (s.size > 0) {
    const m = splitSize(s);
    const g = new JsGen(m ? { ...opts, splitM: m } : opts);
    const v = g.value(s);
    if (m) compile(g.key("split", v), () => g.splitSource(v))(o, g.leaves, g.params, m, s.size / m);
    else compile(g.key("map", v), () => g.mapSource(v))(o, g.leaves, g.params, s.size);
  }
  const buf = new CpuStorage(o);
  s.settle(buf, release);
  return buf;
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

/** A deferred expression; operands are run first where the chain grows too deep or big. */
function expr(e: Expr<CpuStorage>, dtype: Dtype, size: number): L {
  const kids = children(e);
  for (const c of kids) if (c.depth >= MAX_DEPTH) realize(c);
  if (1 + kids.reduce((a, c) => a + c.nodes, 0) > MAX_NODES) {
    let m = measure(kids);
    while (m.nodes + 1 > MAX_NODES) {
      const big = kids.filter((c) => !c.buf).sort((a, b) => b.nodes - a.nodes)[0];
      if (!big) break;
      realize(big);
      m = measure(kids);
    }
  }
  return new LazyStorage<CpuStorage>(dtype, size, null, e);
}

/** x of `shape` read as if broadcast to `outShape` (no node when the sizes agree). */
function broadcast(x: L, shape: readonly number[], outShape: readonly number[]): L {
  if (sizeOf(shape) === sizeOf(outShape)) {
    x.refs++;
    return x;
  }
  return view(x, outShape, 0, broadcastStrides(shape, outShape));
}

/** A deferred view: out[idx] = x[offset + Σ idx·strides]. */
function view(x: L, outShape: readonly number[], offset: number, strides: readonly number[]): L {
  const n = sizeOf(outShape);
  const c = coalesce(outShape, [strides]);
  if (
    offset === 0 && n === x.size && c.shape.length <= 1 &&
    (c.shape.length === 0 || c.strides[0][0] === 1)
  ) {
    x.refs++; // the identity view
    return x;
  }
  return expr({ kind: "view", x, shape: c.shape, offset, strides: c.strides[0] }, x.dtype, n);
}

export class CpuBackend implements Backend {
  readonly kind = "cpu" as const;
  readonly description = "CPU (TypeScript)";
  readonly dtypes: readonly Dtype[] = ["f32", "f64", "i32"];
  // Typed arrays may hold up to 2^32 elements in V8; keep well inside that.
  readonly maxStorageBytes = 2 ** 32;

  upload(data: TypedArray): Storage {
    // one number stays a constant of the generated loops
    if (data.length === 1) return expr({ kind: "const", value: data[0] }, dtypeOf(data), 1);
    const a = out(dtypeOf(data), data.length);
    a.set(data);
    return wrap(a);
  }
  /** The typed array behind a storage (computed if deferred), for copies to another device. */
  hostArray(s: Storage): TypedArray {
    return arr(s);
  }
  /** CPU storage for data still being read back from another device (see `to`). */
  fromTransit(data: Promise<TypedArray>, dtype: Dtype, size: number): Storage {
    return new LazyStorage<CpuStorage>(dtype, size, new CpuStorage(data), null);
  }
  async download(s: Storage, dtype: Dtype, size: number, into?: TypedArray): Promise<TypedArray> {
    await arrivals(lz(s));
    // realize and copy in one go, while the tensor is alive: after an await its array may be reused
    return this.readSync(s, dtype, size, into);
  }
  readSync(s: Storage, _dtype: Dtype, _size: number, into?: TypedArray): TypedArray {
    const a = realize(lz(s)).data;
    if (!into) return a.slice();
    into.set(a);
    return into;
  }
  release(s: Storage): void {
    release(lz(s));
  }
  materialize(s: Storage): void {
    realize(lz(s));
  }
  async settled(s: Storage): Promise<void> {
    await arrivals(lz(s));
    realize(lz(s));
  }
  raiseIf(_target: Storage, flag: Storage, message: string): void {
    if (arr(flag)[0] !== 0) throw new RangeError(message);
  }
  sync(): Promise<void> {
    return Promise.resolve();
  }

  fill(dtype: Dtype, size: number, value: number): Storage {
    return expr({ kind: "const", value }, dtype, size);
  }
  iota(dtype: Dtype, size: number, start: number, step: number): Storage {
    return expr({ kind: "iota", start, step }, dtype, size);
  }
  random(dist: RandomDist, dtype: Dtype, size: number, seed: number, offset: number): Storage {
    const a = out(dtype, size);
    randomCpu(dist, a, seed, offset);
    return wrap(a, dtype);
  }

  unary(op: UnaryOp, dtype: Dtype, x: Storage, size: number): Storage {
    return expr({ kind: "unary", op, x: lz(x) }, dtype, size);
  }
  binary(
    op: BinaryOp,
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    const av = broadcast(lz(a), aShape, outShape), bv = broadcast(lz(b), bShape, outShape);
    const o = expr({ kind: "binary", op, a: av, b: bv }, dtype, sizeOf(outShape));
    release(av);
    release(bv);
    return o;
  }
  where(
    dtype: Dtype,
    c: Storage,
    cShape: readonly number[],
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    const cv = broadcast(lz(c), cShape, outShape);
    const av = broadcast(lz(a), aShape, outShape), bv = broadcast(lz(b), bShape, outShape);
    const o = expr({ kind: "where", c: cv, a: av, b: bv }, dtype, sizeOf(outShape));
    release(cv);
    release(av);
    release(bv);
    return o;
  }
  copy(dtype: Dtype, x: Storage, size: number): Storage {
    return wrap(arr(x).slice(0, size), dtype);
  }
  cast(x: Storage, from: Dtype, to: Dtype, size: number): Storage {
    if (from === to) {
      lz(x).refs++;
      return x;
    }
    return expr({ kind: "cast", x: lz(x) }, to, size);
  }

  /** A deferred reduction: its input expression is evaluated inside the reducing loop. */
  reduce(
    op: ReduceOp,
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    axes: readonly number[],
  ): Storage {
    const plan = planReduce(shape, axes);
    const { outer, inner } = plan;
    const src = plan.perm
      ? (() => {
        const { outShape, strides } = permutedStrides(shape, plan.perm!);
        return view(lz(x), outShape, 0, strides); // a view: no copy is made
      })()
      : (lz(x).refs++, lz(x));
    if (plan.reduced === 1) return src;
    const o = new LazyStorage<CpuStorage>(dtype, outer * inner, null, {
      kind: "reduce",
      op: REDUCE_OPS.indexOf(op),
      x: src,
      outer,
      len: plan.reduced,
      inner,
    });
    release(src);
    return o;
  }

  matmul(
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    const o = out(dtype, sizeOf(outShape));
    matmulCpu(arr(a), aShape, arr(b), bShape, o, outShape);
    return wrap(o);
  }

  solve(
    op: string,
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
    const A = arr(a), B = arr(b);
    const o = out(dtype, sizeOf(outShape));
    const w = new Float64Array(n * cols);
    let at = 0;
    forEachBatch(batchShape, [aB, bB], (ao, bo) => {
      packColumns(w, cols, A, ao, n, n, 0);
      packColumns(w, cols, B, bo, n, m, n);
      const { singular } = gaussJordan(w, n, cols, false);
      if (singular) throw singularError(op, at, singular);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < m; j++) o[at * n * m + i * m + j] = w[i * cols + n + j];
      }
      at++;
    });
    return wrap(o);
  }
  det(
    op: string,
    mode: "det" | "logdet",
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
  ): Storage {
    const r = aShape.length, n = aShape[r - 1];
    const count = sizeOf(aShape.slice(0, -2));
    const A = arr(a);
    const o = out(dtype, count);
    const w = new Float64Array(n * n);
    for (let b = 0; b < count; b++) {
      packColumns(w, n, A, b * n * n, n, n, 0);
      const { logabs, sign, singular } = gaussJordan(w, n, n, true);
      if (mode === "det") o[b] = singular ? 0 : sign * Math.exp(logabs);
      else {
        const msg = logdetError(op, b, singular, sign);
        if (msg) throw new RangeError(msg);
        o[b] = logabs;
      }
    }
    return wrap(o);
  }

  eigh(dtype: Dtype, a: Storage, batch: number, n: number): Storage {
    const A = arr(a);
    const o = out(dtype, batch * (n + 1) * n);
    for (let b = 0; b < batch; b++) eighCpu(A, b * n * n, n, o, b * (n + 1) * n);
    return wrap(o);
  }

  comb(dtype: Dtype, n: number, period: number): Storage {
    return expr({ kind: "comb", n, period }, dtype, period * n);
  }
  unshuffleBand(
    dtype: Dtype,
    hv: Storage,
    n: number,
    b: number,
    period: number,
    upper: boolean,
    mirror: boolean,
  ): Storage {
    const o = out(dtype, (b + 1) * n);
    unshuffleCpu(arr(hv), o, n, b, period, upper, mirror);
    return wrap(o);
  }
  substituteBand(dtype: Dtype, hv: Storage, n: number, b: number, upper: boolean): Storage {
    const o = out(dtype, (b + 1) * n);
    substituteCpu(arr(hv), o, n, b, upper);
    return wrap(o);
  }

  stridedCopy(
    _dtype: Dtype,
    x: Storage,
    outShape: readonly number[],
    offset: number,
    strides: readonly number[],
  ): Storage {
    return view(lz(x), outShape, offset, strides);
  }
  pad(
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    pads: readonly (readonly [number, number])[],
    value: number,
  ): Storage {
    const outShape = shape.map((d, i) => d + pads[i][0] + pads[i][1]);
    return expr(
      {
        kind: "pad",
        x: lz(x),
        outShape,
        inShape: [...shape],
        before: pads.map((q) => q[0]),
        value,
      },
      dtype,
      sizeOf(outShape),
    );
  }
  concat(
    dtype: Dtype,
    xs: readonly Storage[],
    shapes: readonly (readonly number[])[],
    axis: number,
    outShape: readonly number[],
  ): Storage {
    const o = out(dtype, sizeOf(outShape));
    concatCpu(xs.map(arr), shapes, axis, o, outShape);
    return wrap(o);
  }
  gather(
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    axis: number,
    _idx: Storage,
    idxInfo: IndexInfo,
  ): Storage {
    const m = idxInfo.host.length;
    const o = out(dtype, sizeOf(shape.slice(0, axis)) * m * sizeOf(shape.slice(axis + 1)));
    gatherCpu(arr(x), shape, axis, idxInfo.host, o);
    return wrap(o);
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
    const o = out(dtype, sizeOf(outShape));
    scatterAddCpu(arr(g), outShape, axis, idxInfo.host, o);
    return wrap(o);
  }

  choleskyBanded(
    op: string,
    dtype: Dtype,
    ab: Storage,
    batch: number,
    n: number,
    b: number,
    lower: boolean,
  ): Storage {
    const o = out(dtype, batch * (b + 1) * n);
    try {
      choleskyBandedCpu(op, arr(ab), o, batch, n, b, lower);
    } catch (e) {
      pool.give(o);
      throw e;
    }
    return wrap(o);
  }
  solveBanded(
    op: string,
    dtype: Dtype,
    ab: Storage,
    rhs: Storage,
    batch: number,
    n: number,
    b: number,
    m: number,
    lower: boolean,
  ): Storage {
    const o = out(dtype, batch * n * m);
    try {
      solveBandedCpu(op, arr(ab), arr(rhs), o, batch, n, b, m, lower);
    } catch (e) {
      pool.give(o);
      throw e;
    }
    return wrap(o);
  }
  solveBandedGeneral(
    op: string,
    dtype: Dtype,
    ab: Storage,
    rhs: Storage,
    batch: number,
    n: number,
    l: number,
    u: number,
    m: number,
  ): Storage {
    const o = out(dtype, batch * n * m);
    try {
      solveBandedGeneralCpu(op, arr(ab), arr(rhs), o, batch, n, l, u, m);
    } catch (e) {
      pool.give(o);
      throw e;
    }
    return wrap(o);
  }
}
