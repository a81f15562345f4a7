/**
 * The WebGPU backend: launchers that turn Backend calls into WGSL dispatches.
 *
 * Elementwise ops, views (transpose, broadcast, slice), pads, fills and iotas are deferred
 * (see lazy.ts): they build expressions that run as one fused kernel when something needs
 * their memory, and reductions evaluate them inside their first pass. Everything else
 * (matmul, gather, solve, …) realizes its inputs and runs its own kernel.
 */
import { type LruLimits, registerCache, unregisterCache } from "../../lru.ts";
import {
  type Backend,
  type IndexInfo,
  RANDOM_DISTS,
  type RandomDist,
  type Recording,
  type Storage,
} from "../backend.ts";
import { type Dtype, itemSize, type TypedArray } from "../../dtype.ts";
import { broadcastStrides, coalesce, fmtShape, MAX_RANK, sizeOf, stridesOf } from "../../shape.ts";
import { seedKey } from "../../random/philox.ts";
import type { GpuStorage } from "./pool.ts";
import type { GpuRuntime, KernelSpec } from "./runtime.ts";
import { Params } from "./params.ts";
import { logdetError, singularError } from "../linalg_errors.ts";
import { choleskyBandedGpu, solveBandedGpu } from "./banded.ts";
import { LazyStorage } from "../../compile/lazy.ts";
import { Graph } from "../../compile/graph.ts";
import { DeferredBackend } from "../deferred.ts";
import type { Lowered, Target } from "../../compile/lower.ts";
import { lowerFitting, realizeSharedProducts, splitSize } from "../../compile/schedule.ts";
import { KernelCache } from "../../compile/kernels.ts";
import { fill, packSlots } from "./codegen.ts";
import { recordingScope } from "../../compile/program.ts";
import { GpuProgram } from "./program.ts";
import { eighGpu } from "./eigh.ts";
import { cumsumGpu } from "./scan.ts";
import { solveBandedGeneralGpu } from "./banded_lu.ts";
import { SHADERS } from "../../shaders.generated.ts";
import { type Check, type Fault, joinFaults } from "../fault.ts";

const WG = 256;
const k = (name: string, shader: KernelSpec["shader"], workgroupSize = WG): KernelSpec => ({
  name,
  shader,
  workgroupSize,
});
const K = {
  copy: k("copy", "copy"),
  random: k("random", "random"),
  matmul: k("matmul", "matmul"),
  matmulRegs: k("matmul_regs", "matmul_regs"),
  copyInto: k("copy_into", "copy_into"),
  gather: k("gather", "gather"),
  scatterAdd: k("scatter_add", "scatter_add"),
  gjPivot: k("gj_pivot", "gj_pivot", 64),
  gjEliminate: k("gj_eliminate", "gj_eliminate"),
  substituteBand: k("substitute_band", "substitute_band", 1),
};

/** Rows per pass of the strided reduction, and of the tree reduction's workgroup chunk. */
const STRIDED_CHUNK = 64;
// Small workgroups with many values per invocation: measured on lavapipe, where every
// barrier level of the tree is costly, 32 × 64 ran 3-5× faster than 256 × 4 (sum of 10^6
// at about the copy kernel's speed instead of a fifth of it), with the same f32 error.
const TREE_WG = 32;
const TREE_PER = 64;
const TREE_CHUNK = TREE_WG * TREE_PER;
/** Most products one matmul invocation sums before the K dimension is split. */
const MATMUL_KCHUNK = 4096;
/** Most segment entries one scatter-add invocation sums per dispatch. */
const SCATTER_SPAN = 2048;
/** Index lists whose scatter-add CSR stays cached on the device. */
const CSR_CACHE = 8;
/** Fusion caps: expression nodes, uniform slots (of the 248 a kernel has), leaf buffers. */
const MAX_NODES = 128;
const MAX_DEPTH = 64;
const MAX_PARAMS = 236;
/** Uniform slots a fused kernel has (`v: array<vec4u, 62>` in the templates). */
const SLOT_CAPACITY = 248;
const TARGET: Target = { magicDivision: true, signedIndex: false, literals: false };

const groups = (n: number, wg = WG) => Math.ceil(n / wg);

/**
 * Most loop trips of a split kernel's invocation (see codegen.ts). On a GPU a split trades
 * parallelism for cheaper indexing, so only short loops pay; on a CPU-like adapter
 * (lavapipe), where a workgroup already runs as a loop and contiguous indices become
 * vector loads instead of gathers, long loops over a broadcast axis pay too.
 */
const MAX_SPLIT = 64;
const MAX_SPLIT_CPU_LIKE = 4096;

function lz(s: Storage): LazyStorage<GpuStorage> {
  return s as LazyStorage<GpuStorage>;
}

function checkRank(op: string, shape: readonly number[]): void {
  if (shape.length > MAX_RANK) {
    throw new RangeError(
      `${op}: WebGPU kernels index at most ${MAX_RANK} dimensions after merging contiguous ones; ` +
        `this view has shape ${fmtShape(shape)}`,
    );
  }
}

export class WebGpuBackend extends DeferredBackend<GpuStorage> implements Backend {
  readonly kind = "webgpu" as const;
  readonly description: string;
  readonly dtypes: readonly Dtype[] = ["f32", "i32"];
  readonly maxStorageBytes: number;
  /** Recently used scatter-add CSRs, most recent last (see #csrOf). */
  #csr: {
    info: IndexInfo;
    len: number;
    order: GpuStorage;
    starts: GpuStorage;
    maxCount: number;
  }[] = [];
  readonly #maxLeaves: number;
  /** The deferred expressions of this device. */
  readonly graph: Graph<GpuStorage>;
  /** Generated kernels by structure (the pipelines themselves are cached by the runtime). */
  readonly #kernels = new KernelCache<string>(2048);

  constructor(readonly rt: GpuRuntime) {
    super();
    this.description = `WebGPU (${rt.adapterDescription})`;
    this.maxStorageBytes = rt.maxStorageBytes;
    const kernels = {
      stats: () => this.#kernels.usage(),
      clear: () => this.#kernels.clear(),
      resize: (limits: Partial<LruLimits>) => this.#kernels.resize(limits),
    };
    registerCache("webgpu kernels", kernels);
    rt.onLost(() => unregisterCache("webgpu kernels", kernels));
    // one binding is the output and one may be the parameter block (a storage binding on
    // lavapipe: runtime.ts); stay inside the default limit of 8 on any device
    this.#maxLeaves = Math.max(
      4,
      Math.min(12, rt.device.limits.maxStorageBuffersPerShaderStage - 2),
    );
    this.graph = new Graph<GpuStorage>(
      {
        maxNodes: MAX_NODES,
        maxDepth: MAX_DEPTH,
        maxParams: MAX_PARAMS,
        maxLeaves: this.#maxLeaves,
      },
      (s) => this.#realize(s),
      (b) => this.rt.pool.release(b, this.rt.batch),
    );
  }

  get lost(): { reason: string; message: string } | null {
    return this.rt.lost;
  }
  alive(op: string): void {
    this.rt.alive(op);
  }

  // ---- storage: buffers, expressions, realization ----

  #alloc(bytes: number): GpuStorage {
    return this.rt.pool.acquire(bytes, this.rt.batch, false);
  }

  /**
   * A buffer a kernel wrote, as storage. It owns the kernel errors of the storages it was
   * computed from (`inputs`) and the kernel's own check, if it has one (see ../fault.ts).
   */
  #wrap(
    buf: GpuStorage,
    dtype: Dtype,
    size: number,
    inputs: readonly Storage[],
    own: Check | null = null,
  ): LazyStorage<GpuStorage> {
    const s = new LazyStorage(dtype, size, buf, null);
    s.fault = joinFaults(inputs.map((x) => lz(x).fault), own);
    return s;
  }

  /** Runs a storage's expression (if any) into a buffer. */
  #realize(s: LazyStorage<GpuStorage>): GpuStorage {
    if (s.buf) return s.buf;
    if (s.expr?.kind === "reduce") {
      const { op, x, outer, inner } = s.expr;
      let len = s.expr.len;
      let src = x;
      src.refs++;
      while (len > 1) {
        const next = this.#reducePass(op, src, outer, len, inner);
        this.release(src);
        src = next;
        len = Math.ceil(len / (inner === 1 && len > STRIDED_CHUNK ? TREE_CHUNK : STRIDED_CHUNK));
      }
      const buf = this.#realize(src); // len was 1 from the start: a (deferred) view
      this.graph.settle(s, buf);
      // the result buffer now belongs to s; drop src's claim on it without freeing it
      src.buf = null;
      src.refs = 0;
      return buf;
    }
    realizeSharedProducts(s, (c) => void this.#realize(c));
    const out = this.#alloc(s.byteLength);
    if (s.size > 0) {
      const maxSplit = this.rt.cpuLike ? MAX_SPLIT_CPU_LIKE : MAX_SPLIT;
      // on a GPU a split trades parallelism for cheaper indexing, so only short loops pay
      const m = splitSize(s, (a) => a <= MAX_SPLIT || (a <= maxSplit && s.size / a >= WG));
      const shader = m ? "fused_map_split" : "fused_map";
      const l = this.#lower(s, shader, m || undefined);
      const head = m ? new Params().u32(m).u32(s.size / m) : new Params().u32(s.size).u32(0);
      const params = head.u32(0).u32(0).slots(packSlots(l.params, l.ptypes)).buffer;
      const spec: KernelSpec = {
        name: shader,
        shader,
        workgroupSize: WG,
        generated: this.#generated(l, shader),
      };
      this.rt.dispatch(
        spec,
        {},
        params,
        [out, ...l.leaves.map((c) => c.buf!)],
        groups(m || s.size),
      );
    }
    this.graph.settle(s, out);
    return out;
  }

  /**
   * A lowered kernel's source for a template, named by an id the kernel cache confirms uop
   * by uop (the pipeline cache keys on it).
   */
  #generated(l: Lowered<GpuStorage>, shader: keyof typeof SHADERS): KernelSpec["generated"] {
    const key = this.#kernels.get(
      l.kernel,
      (k) => `${shader}|${k.key}|${this.#kernels.stats.count}`,
    );
    return { key, source: () => fill(SHADERS[shader], l.kernel.kernel(), 2) };
  }

  /** Lowers `s` for a template, running operands first while the kernel exceeds the uniform slots or bindings. */
  #lower(s: LazyStorage<GpuStorage>, shader: string, splitM?: number): Lowered<GpuStorage> {
    return lowerFitting(
      TARGET,
      s,
      shader,
      splitM,
      (c) => void this.#realize(c),
      (l) => l.params.length <= SLOT_CAPACITY && l.leaves.length <= this.#maxLeaves + 1,
    );
  }

  /** The buffer behind a storage, running its expression first if needed. */
  #buf(s: Storage): GpuStorage {
    return this.#realize(lz(s));
  }

  /** A storage of `shape` read as if broadcast to `outShape` (no node when shapes agree). */
  #broadcast(
    x: LazyStorage<GpuStorage>,
    shape: readonly number[],
    outShape: readonly number[],
  ): LazyStorage<GpuStorage> {
    return this.graph.broadcast(x, shape, outShape);
  }

  upload(data: TypedArray): Storage {
    const dtype: Dtype = data instanceof Int32Array ? "i32" : "f32";
    // one number: keep it on the host; fused kernels read it from their uniforms
    if (data.length === 1) return this.graph.fill(dtype, 1, data[0]);
    const s = this.rt.pool.acquire(data.byteLength, this.rt.batch, true);
    this.rt.write(s, data as Float32Array<ArrayBuffer>);
    return this.#wrap(s, dtype, data.length, []);
  }
  async download(s: Storage, dtype: Dtype, size: number, into?: TypedArray): Promise<TypedArray> {
    this.rt.alive("data");
    const fault = lz(s).fault;
    const buf = await this.rt.read(this.#buf(s), size * itemSize(dtype));
    await this.#raise(fault);
    const v = dtype === "i32" ? new Int32Array(buf) : new Float32Array(buf);
    if (!into) return v;
    into.set(v);
    return into;
  }
  /** Throws the kernel error a value owns, if any (waiting for the verdicts behind it). */
  async #raise(fault: Fault | null): Promise<void> {
    if (fault) await fault.raise(() => this.rt.flush());
  }
  sync(): Promise<void> {
    return this.rt.sync();
  }
  async settled(s: Storage): Promise<void> {
    this.rt.alive("ready");
    const fault = lz(s).fault;
    this.#buf(s);
    await this.rt.sync();
    await this.#raise(fault);
  }
  /** Records the kernels run from now until `finish`, as a program replayable on new inputs (jit). */
  record(inputs: readonly Storage[]): Recording {
    const ins = inputs.map(lz);
    const { recorder, stop } = this.rt.record(ins.map((s) => this.#buf(s)));
    const end = recordingScope();
    const done = () => {
      stop();
      end();
    };
    return {
      finish: (outputs) => {
        const outs = outputs.map(lz);
        for (const o of outs) this.#buf(o);
        done();
        return new GpuProgram(this.rt, recorder, ins, outs);
      },
      abort: done,
      failure: null,
    };
  }

  /** Runs any deferred work behind `s` now (for timing; reads do it by themselves). */
  materialize(s: Storage): void {
    this.#buf(s);
  }

  raiseIf(target: Storage, flag: Storage, message: string): void {
    const check = this.rt.addCheck(this.#buf(flag), 4, (v) => (v[0] !== 0 ? message : null));
    lz(target).fault = joinFaults([lz(target).fault, lz(flag).fault], check);
  }

  random(dist: RandomDist, dtype: Dtype, size: number, seed: number, offset: number): Storage {
    const o = this.#alloc(size * 4);
    const [k0, k1] = seedKey(seed);
    const p = new Params().u32(size).u32(offset).u32(k0).u32(k1).buffer;
    this.rt.dispatch(K.random, { DIST: RANDOM_DISTS.indexOf(dist) }, p, [o], groups(size));
    return this.#wrap(o, dtype, size, []);
  }

  /** A real copy kernel (the bandwidth yardstick of the benchmarks). */
  copy(dtype: Dtype, x: Storage, size: number): Storage {
    const src = this.#buf(x);
    const o = this.#alloc(size * 4);
    this.rt.dispatch(K.copy, {}, new Params().u32(size).buffer, [src, o], groups(size));
    return this.#wrap(o, dtype, size, [x]);
  }

  /**
   * One reduction pass over `src` viewed as [outer, len, inner]: a tree within workgroups
   * for contiguous rows, a bounded strided loop otherwise. `src` may be an expression: it
   * is evaluated inside the pass (a fused prologue).
   */
  #reducePass(
    OP: number,
    src: LazyStorage<GpuStorage>,
    outer: number,
    len: number,
    inner: number,
  ): LazyStorage<GpuStorage> {
    const tree = inner === 1 && len > STRIDED_CHUNK;
    const shader = tree ? "reduce_tree" : "reduce_strided";
    const l = this.#lower(src, shader);
    const slots = packSlots(l.params, l.ptypes);
    const generated = this.#generated(l, shader);
    let chunks: number, count: number, params: ArrayBuffer, groupCount: number;
    let spec: KernelSpec;
    if (tree) {
      chunks = Math.ceil(len / TREE_CHUNK);
      count = outer * chunks;
      params = new Params().u32(len).u32(chunks).u32(outer).u32(0).slots(slots).buffer;
      groupCount = count;
      spec = { name: shader, shader, workgroupSize: TREE_WG, generated };
    } else {
      chunks = Math.ceil(len / STRIDED_CHUNK);
      count = outer * chunks * inner;
      params = new Params().u32(count).u32(len).u32(inner).u32(chunks).u32(STRIDED_CHUNK)
        .u32(0).u32(0).u32(0).slots(slots).buffer;
      groupCount = groups(count);
      spec = { name: shader, shader, workgroupSize: WG, generated };
    }
    const o = this.#alloc(count * 4);
    const consts: Record<string, number> = tree ? { OP, PER: TREE_PER } : { OP };
    this.rt.dispatch(spec, consts, params, [o, ...l.leaves.map((c) => c.buf!)], groupCount);
    return this.#wrap(o, src.dtype, count, [src]);
  }

  matmul(
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    const r = outShape.length;
    const m = outShape[r - 2], n = outShape[r - 1], kk = aShape[aShape.length - 1];
    const batchShape = outShape.slice(0, r - 2);
    const batch = sizeOf(batchShape);
    if (kk === 0) return this.fill(dtype, batch * m * n, 0);
    const c = coalesce(batchShape, [
      broadcastStrides(aShape.slice(0, -2), batchShape).map((s) => s * m * kk),
      broadcastStrides(bShape.slice(0, -2), batchShape).map((s) => s * kk * n),
    ]);
    checkRank("matmul", c.shape);
    const splits = Math.ceil(kk / MATMUL_KCHUNK);
    const kChunk = Math.ceil(kk / splits);
    // tiles of 16x16 per workgroup (GPUs), or blocks of 4x4 per invocation (CPU-like adapters)
    const regs = this.rt.cpuLike;
    const t = regs ? 4 : 16;
    const tilesM = Math.ceil(m / t), tilesN = Math.ceil(n / t);
    const o = this.#alloc(splits * batch * m * n * 4);
    const p = new Params().u32(m).u32(n).u32(kk).u32(tilesM).u32(tilesN).u32(splits).u32(kChunk)
      .u32(batch).u32(c.shape.length).u32x8(c.shape).u32x8(c.strides[0]).u32x8(c.strides[1]);
    const count = tilesM * tilesN * batch * splits;
    this.rt.dispatch(
      regs ? K.matmulRegs : K.matmul,
      {},
      p.buffer,
      [this.#buf(a), this.#buf(b), o],
      regs ? groups(count) : count,
    );
    const out = this.#wrap(o, dtype, splits * batch * m * n, [a, b]);
    if (splits === 1) return out;
    const summed = this.reduce("sum", dtype, out, [splits, batch * m * n], [0]);
    this.release(out);
    return summed;
  }

  /**
   * Gauss-Jordan over W = [A | B] ([batch, n, cols]) in place: two dispatches per pivot
   * step, so no invocation loops over more than one row. Returns the accumulator
   * (log|det|, sign, first zero-pivot step + 1) per matrix; `check` turns it into the
   * error (or null) the results of `w` own.
   */
  #gaussJordan(
    w: LazyStorage<GpuStorage>,
    batch: number,
    n: number,
    cols: number,
    rowsBelow: boolean,
    check: ((v: Float32Array) => string | null) | null,
  ): LazyStorage<GpuStorage> {
    const wb = this.#buf(w);
    const init = new Float32Array(batch * 3).map((_, i) => (i % 3 === 1 ? 1 : 0));
    const acc = this.rt.pool.acquire(init.byteLength, this.rt.batch, true);
    this.rt.write(acc, init);
    for (let step = 0; step < n; step++) {
      const pp = new Params().u32(batch).u32(n).u32(cols).u32(step).buffer;
      this.rt.dispatch(K.gjPivot, {}, pp, [wb, acc], groups(batch, 64));
      const count = batch * n * (cols - step - 1);
      if (count === 0) continue;
      const pe = new Params().u32(count).u32(n).u32(cols).u32(step).buffer;
      this.rt.dispatch(
        K.gjEliminate,
        { ROWS_BELOW: rowsBelow ? 1 : 0 },
        pe,
        [wb, acc],
        groups(count),
      );
    }
    const own = check && this.rt.addCheck(acc, batch * 12, check);
    // w was solved in place: it owns the outcome too
    if (own) w.fault = joinFaults([w.fault], own);
    return this.#wrap(acc, "f32", batch * 3, [w], own);
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
    const n = outShape[r - 2], m = outShape[r - 1];
    const batchShape = outShape.slice(0, r - 2);
    const batch = sizeOf(batchShape);
    const ab = this.#broadcast(lz(a), aShape, [...batchShape, n, n]);
    const bb = this.#broadcast(lz(b), bShape, [...batchShape, n, m]);
    const w = lz(
      this.concat(dtype, [ab, bb], [[batch, n, n], [batch, n, m]], 2, [batch, n, n + m]),
    );
    this.release(ab);
    this.release(bb);
    const acc = this.#gaussJordan(w, batch, n, n + m, false, (v) => {
      for (let i = 0; i < batch; i++) {
        if (v[3 * i + 2] !== 0) return singularError(op, i, v[3 * i + 2]).message;
      }
      return null;
    });
    this.release(acc);
    // X = W[:, :, n:]
    const x = this.stridedCopy(dtype, w, [batch, n, m], n, [n * (n + m), n + m, 1]);
    this.release(w);
    return x;
  }

  det(
    op: string,
    mode: "det" | "logdet",
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
  ): Storage {
    const r = aShape.length, n = aShape[r - 1];
    const batch = sizeOf(aShape.slice(0, -2));
    const w = lz(this.copy(dtype, a, batch * n * n));
    const acc = this.#gaussJordan(
      w,
      batch,
      n,
      n,
      true,
      mode === "logdet"
        ? (v) => {
          for (let i = 0; i < batch; i++) {
            const msg = logdetError(op, i, v[3 * i + 2], v[3 * i + 1]);
            if (msg) return msg;
          }
          return null;
        }
        : null,
    );
    this.release(w);
    const logabs = this.stridedCopy(dtype, acc, [batch], 0, [3]);
    let out: Storage;
    if (mode === "logdet") {
      out = logabs;
    } else {
      // det = sign · e^{log|det|}; a zero pivot left sign = 0, so det = 0 there
      const e = this.unary("exp", dtype, logabs, batch);
      const sign = this.stridedCopy(dtype, acc, [batch], 1, [3]);
      out = this.binary("mul", dtype, sign, [batch], e, [batch], [batch]);
      this.release(e);
      this.release(sign);
      this.release(logabs);
    }
    this.release(acc);
    return out;
  }

  substituteBand(dtype: Dtype, hv: Storage, n: number, b: number, upper: boolean): Storage {
    const total = (b + 1) * n;
    const lower = lz(this.fill(dtype, total, 0));
    const l = this.#realize(lower);
    lower.fault = lz(hv).fault;
    const src = this.#buf(hv);
    // Rows per dispatch so that one invocation stays below lavapipe's 65,535 loop passes.
    // A row costs b + 2 of them, not b + 1: the pass that finds the inner loop's condition
    // false counts too (lavapipe's loops are SIMD-masked; the rule is measured in
    // ./banded.ts). Budgeting b + 1 let a dispatch stop silently after 65,535 / (b + 2)
    // of its rows, and every row recovered after them came out wrong (n > 16,384 at b = 2).
    const rows = Math.floor(60_000 / (b + 2));
    for (let hi = n; hi > 0; hi -= rows) {
      const p = new Params().u32(n).u32(b).u32(Math.max(0, hi - rows)).u32(hi).buffer;
      this.rt.dispatch(K.substituteBand, {}, p, [src, l], 1);
    }
    if (!upper) return lower;
    // upper ab[r][j] = L(j, b - r), stored in lower row d = b - r at column j - d
    const rowsUp: Storage[] = [];
    for (let r = 0; r <= b; r++) {
      const d = b - r;
      const row = this.stridedCopy(dtype, lower, [n - d], d * n, [1]);
      rowsUp.push(this.pad(dtype, row, [n - d], [[d, 0]], 0));
      this.release(row);
    }
    const out = this.concat(dtype, rowsUp, rowsUp.map(() => [n]), 0, [total]);
    for (const s of rowsUp) this.release(s);
    this.release(lower);
    return out;
  }

  concat(
    dtype: Dtype,
    xs: readonly Storage[],
    shapes: readonly (readonly number[])[],
    axis: number,
    outShape: readonly number[],
  ): Storage {
    const total = sizeOf(outShape);
    const o = this.#alloc(total * 4);
    const os = stridesOf(outShape);
    let at = 0;
    xs.forEach((x, i) => {
      const shape = shapes[i];
      const n = sizeOf(shape);
      const c = coalesce(shape, [os]);
      checkRank("concat", c.shape);
      const p = new Params().u32(n).u32(c.shape.length).u32(at * os[axis]).u32x8(c.shape).u32x8(
        c.strides[0],
      );
      this.rt.dispatch(K.copyInto, {}, p.buffer, [this.#buf(x), o], groups(n));
      at += shape[axis];
    });
    return this.#wrap(o, dtype, total, xs);
  }

  gather(
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    axis: number,
    idx: Storage,
    idxInfo: IndexInfo,
  ): Storage {
    const outer = sizeOf(shape.slice(0, axis)), inner = sizeOf(shape.slice(axis + 1));
    const m = idxInfo.host.length;
    const n = outer * m * inner;
    const o = this.#alloc(n * 4);
    const p = new Params().u32(n).u32(shape[axis]).u32(m).u32(inner).buffer;
    this.rt.dispatch(K.gather, {}, p, [this.#buf(x), this.#buf(idx), o], groups(n));
    return this.#wrap(o, dtype, n, [x, idx]);
  }

  /**
   * CSR of the index list per target length, built on the host and cached for the few most
   * recent index lists (a VJP reuses one many times). The cache is bounded and evicted
   * entries' buffers go back to the pool: index lists made afresh on every call (plain
   * arrays, normalised negative indices) would otherwise hold GPU memory forever.
   */
  #csrOf(info: IndexInfo, len: number) {
    const at = this.#csr.findIndex((c) => c.info === info && c.len === len);
    if (at >= 0) {
      const [hit] = this.#csr.splice(at, 1);
      this.#csr.push(hit);
      return hit;
    }
    const idx = info.host;
    const counts = new Uint32Array(len + 1);
    for (const q of idx) counts[q + 1]++;
    let maxCount = 0;
    for (let q = 0; q < len; q++) {
      maxCount = Math.max(maxCount, counts[q + 1]);
      counts[q + 1] += counts[q];
    }
    const fillAt = counts.slice(0, len);
    const order = new Uint32Array(idx.length);
    idx.forEach((q, j) => (order[fillAt[q]++] = j));
    const e = {
      info,
      len,
      order: this.#bufferFromHost(new Int32Array(order.buffer)),
      starts: this.#bufferFromHost(new Int32Array(counts.buffer)),
      maxCount,
    };
    this.#csr.push(e);
    while (this.#csr.length > CSR_CACHE) {
      // safe while queued work still reads them: the pool tracks each buffer's last batch
      const old = this.#csr.shift()!;
      this.rt.pool.release(old.order, this.rt.batch);
      this.rt.pool.release(old.starts, this.rt.batch);
    }
    return e;
  }

  #bufferFromHost(data: Int32Array<ArrayBuffer>): GpuStorage {
    const s = this.rt.pool.acquire(Math.max(4, data.byteLength), this.rt.batch, true);
    this.rt.write(s, data);
    return s;
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
    const outer = sizeOf(outShape.slice(0, axis)), inner = sizeOf(outShape.slice(axis + 1));
    const len = outShape[axis];
    const n = outer * len * inner;
    const m = idxInfo.host.length;
    if (m === 0) return this.fill(dtype, n, 0);
    const csr = this.#csrOf(idxInfo, len);
    const o = this.#alloc(n * 4);
    const gb = this.#buf(g);
    for (let k0 = 0, first = true; first || k0 < csr.maxCount; k0 += SCATTER_SPAN, first = false) {
      const p = new Params().u32(n).u32(len).u32(m).u32(inner).u32(k0).u32(SCATTER_SPAN).buffer;
      this.rt.dispatch(
        K.scatterAdd,
        { ACCUM: first ? 0 : 1 },
        p,
        [gb, csr.order, csr.starts, o],
        groups(n),
      );
    }
    return this.#wrap(o, dtype, n, [g]);
  }

  cumsum(dtype: Dtype, x: Storage, shape: readonly number[], axis: number): Storage {
    const n = shape[axis], inner = sizeOf(shape.slice(axis + 1));
    const outer = sizeOf(shape.slice(0, axis));
    const o = cumsumGpu(this.rt, this.#buf(x), outer, n, inner);
    return this.#wrap(o, dtype, outer * n * inner, [x]);
  }

  eigh(dtype: Dtype, a: Storage, batch: number, n: number): Storage {
    return this.#wrap(eighGpu(this.rt, this.#buf(a), batch, n), dtype, batch * (n + 1) * n, [a]);
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
    const { out, check } = choleskyBandedGpu(this.rt, op, this.#buf(ab), batch, n, b, lower);
    return this.#wrap(out, dtype, batch * (b + 1) * n, [ab], check);
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
    const { out, check } = solveBandedGpu(
      this.rt,
      op,
      this.#buf(ab),
      this.#buf(rhs),
      batch,
      n,
      b,
      m,
      lower,
    );
    return this.#wrap(out, dtype, batch * n * m, [ab, rhs], check);
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
    const [a, r] = [this.#buf(ab), this.#buf(rhs)];
    const { out, check } = solveBandedGeneralGpu(this.rt, op, a, r, batch, n, l, u, m);
    return this.#wrap(out, dtype, batch * n * m, [ab, rhs], check);
  }
}
