/** The WebGPU backend: launchers that turn Backend calls into WGSL dispatches. */
import {
  type Backend,
  BINARY_OPS,
  type BinaryOp,
  type IndexInfo,
  RANDOM_DISTS,
  type RandomDist,
  REDUCE_OPS,
  type ReduceOp,
  type Storage,
  UNARY_OPS,
  type UnaryOp,
} from "../backend.ts";
import { type Dtype, itemSize, type TypedArray } from "../../dtype.ts";
import { broadcastStrides, coalesce, fmtShape, MAX_RANK, sizeOf, stridesOf } from "../../shape.ts";
import { permutedStrides, planReduce } from "../../shape_plan.ts";
import { seedKey } from "../../random/philox.ts";
import type { GpuStorage } from "./pool.ts";
import type { GpuRuntime, KernelSpec } from "./runtime.ts";
import { Params } from "./params.ts";
import { logdetError, singularError } from "../linalg_errors.ts";
import { choleskyBandedGpu, solveBandedGpu } from "./banded.ts";

const WG = 256;
const k = (name: string, shader: KernelSpec["shader"], workgroupSize = WG): KernelSpec => ({
  name,
  shader,
  workgroupSize,
});
const K = {
  unary: k("unary", "unary"),
  binary: k("binary", "binary"),
  where: k("where", "where"),
  fill: k("fill", "fill"),
  iota: k("iota", "iota"),
  copy: k("copy", "copy"),
  cast: k("cast", "cast"),
  random: k("random", "random"),
  reduceTree: k("reduce_tree", "reduce_tree"),
  reduceStrided: k("reduce_strided", "reduce_strided"),
  matmul: k("matmul", "matmul"),
  stridedCopy: k("strided_copy", "strided_copy"),
  pad: k("pad", "pad"),
  copyInto: k("copy_into", "copy_into"),
  gather: k("gather", "gather"),
  scatterAdd: k("scatter_add", "scatter_add"),
  gjPivot: k("gj_pivot", "gj_pivot", 64),
  gjEliminate: k("gj_eliminate", "gj_eliminate"),
};

/** Rows per pass of the strided reduction, and of the tree reduction's workgroup chunk. */
const STRIDED_CHUNK = 64;
const TREE_CHUNK = WG * 4;
/** Most products one matmul invocation sums before the K dimension is split. */
const MATMUL_KCHUNK = 4096;
/** Most segment entries one scatter-add invocation sums per dispatch. */
const SCATTER_SPAN = 2048;
/** Index lists whose scatter-add CSR stays cached on the device. */
const CSR_CACHE = 8;

const groups = (n: number, wg = WG) => Math.ceil(n / wg);
const f32Bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];

function gs(s: Storage): GpuStorage {
  return s as GpuStorage;
}

function checkRank(op: string, shape: readonly number[]): void {
  if (shape.length > MAX_RANK) {
    throw new RangeError(
      `${op}: WebGPU kernels index at most ${MAX_RANK} dimensions after merging contiguous ones; ` +
        `this view has shape ${fmtShape(shape)}`,
    );
  }
}

export class WebGpuBackend implements Backend {
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

  constructor(readonly rt: GpuRuntime) {
    this.description = `WebGPU (${rt.adapterDescription})`;
    this.maxStorageBytes = rt.maxStorageBytes;
  }

  #alloc(bytes: number): GpuStorage {
    return this.rt.pool.acquire(bytes, this.rt.batch, false);
  }

  upload(data: TypedArray): Storage {
    const s = this.rt.pool.acquire(data.byteLength, this.rt.batch, true);
    if (data.byteLength > 0) {
      this.rt.device.queue.writeBuffer(s.buffer, 0, data as Float32Array<ArrayBuffer>);
    }
    return s;
  }
  async download(s: Storage, dtype: Dtype, size: number): Promise<TypedArray> {
    const buf = await this.rt.read(gs(s), size * itemSize(dtype));
    return dtype === "i32" ? new Int32Array(buf) : new Float32Array(buf);
  }
  release(s: Storage): void {
    this.rt.pool.release(gs(s), this.rt.batch);
  }
  sync(): Promise<void> {
    return this.rt.sync();
  }

  fill(_dtype: Dtype, size: number, value: number): Storage {
    const o = this.#alloc(size * 4);
    const bits = _dtype === "i32" ? value | 0 : f32Bits(value);
    this.rt.dispatch(K.fill, {}, new Params().u32(size).u32(bits).buffer, [o], groups(size));
    return o;
  }
  iota(dtype: Dtype, size: number, start: number, step: number): Storage {
    const o = this.#alloc(size * 4);
    const p = new Params().u32(size).f32(start).f32(step).buffer;
    this.rt.dispatch(K.iota, { INT: dtype === "i32" ? 1 : 0 }, p, [o], groups(size));
    return o;
  }
  random(dist: RandomDist, _dtype: Dtype, size: number, seed: number, offset: number): Storage {
    const o = this.#alloc(size * 4);
    const [k0, k1] = seedKey(seed);
    const p = new Params().u32(size).u32(offset).u32(k0).u32(k1).buffer;
    this.rt.dispatch(K.random, { DIST: RANDOM_DISTS.indexOf(dist) }, p, [o], groups(size));
    return o;
  }

  unary(op: UnaryOp, _dtype: Dtype, x: Storage, size: number): Storage {
    const o = this.#alloc(size * 4);
    this.rt.dispatch(K.unary, { OP: UNARY_OPS.indexOf(op) }, new Params().u32(size).buffer, [
      gs(x),
      o,
    ], groups(size));
    return o;
  }

  binary(
    op: BinaryOp,
    _dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    const n = sizeOf(outShape);
    const o = this.#alloc(n * 4);
    const na = sizeOf(aShape), nb = sizeOf(bShape);
    const OP = BINARY_OPS.indexOf(op);
    if ((na === n && nb === n) || (na === n && nb === 1) || (na === 1 && nb === n)) {
      const MODE = na === n && nb === n ? 0 : nb === 1 && na === n ? 1 : 2;
      this.rt.dispatch(
        K.binary,
        { OP, MODE },
        new Params().u32(n).u32(0).buffer,
        [gs(a), gs(b), o],
        groups(n),
      );
      return o;
    }
    const c = coalesce(outShape, [
      broadcastStrides(aShape, outShape),
      broadcastStrides(bShape, outShape),
    ]);
    checkRank(op, c.shape);
    const p = new Params().u32(n).u32(c.shape.length).u32x8(c.shape).u32x8(c.strides[0]).u32x8(
      c.strides[1],
    );
    this.rt.dispatch(K.binary, { OP, MODE: 3 }, p.buffer, [gs(a), gs(b), o], groups(n));
    return o;
  }

  where(
    _dtype: Dtype,
    c: Storage,
    cShape: readonly number[],
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    const n = sizeOf(outShape);
    const o = this.#alloc(n * 4);
    const co = coalesce(outShape, [
      broadcastStrides(cShape, outShape),
      broadcastStrides(aShape, outShape),
      broadcastStrides(bShape, outShape),
    ]);
    checkRank("where", co.shape);
    const p = new Params().u32(n).u32(co.shape.length).u32x8(co.shape)
      .u32x8(co.strides[0]).u32x8(co.strides[1]).u32x8(co.strides[2]);
    this.rt.dispatch(K.where, {}, p.buffer, [gs(c), gs(a), gs(b), o], groups(n));
    return o;
  }

  copy(_dtype: Dtype, x: Storage, size: number): Storage {
    const o = this.#alloc(size * 4);
    this.rt.dispatch(K.copy, {}, new Params().u32(size).buffer, [gs(x), o], groups(size));
    return o;
  }

  cast(x: Storage, from: Dtype, to: Dtype, size: number): Storage {
    if (from === to) return this.copy(to, x, size);
    const o = this.#alloc(size * 4);
    this.rt.dispatch(K.cast, { TO_INT: to === "i32" ? 1 : 0 }, new Params().u32(size).buffer, [
      gs(x),
      o,
    ], groups(size));
    return o;
  }

  reduce(
    op: ReduceOp,
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    axes: readonly number[],
  ): Storage {
    const plan = planReduce(shape, axes);
    const OP = REDUCE_OPS.indexOf(op);
    let src = gs(x);
    let owned = false;
    if (plan.perm) {
      const { outShape, strides } = permutedStrides(shape, plan.perm);
      src = gs(this.stridedCopy(dtype, x, outShape, 0, strides));
      owned = true;
    }
    const { outer, inner } = plan;
    let len = plan.reduced;
    if (len === 0) {
      // an empty reduced axis: the sum is 0 (max/min of nothing is refused above this
      // layer); a copy here would read past the end of the empty input
      if (owned) this.release(src);
      return this.fill(dtype, outer * inner, 0);
    }
    if (len <= 1) {
      // nothing to combine: a copy keeps the output's ownership simple
      const o = this.copy(dtype, src, outer * inner);
      if (owned) this.release(src);
      return o;
    }
    while (len > 1) {
      let o: GpuStorage;
      let chunks: number;
      if (inner === 1 && len > STRIDED_CHUNK) {
        chunks = Math.ceil(len / TREE_CHUNK);
        o = this.#alloc(outer * chunks * 4);
        const p = new Params().u32(len).u32(chunks).u32(outer).buffer;
        this.rt.dispatch(K.reduceTree, { OP }, p, [src, o], outer * chunks);
      } else {
        chunks = Math.ceil(len / STRIDED_CHUNK);
        const n = outer * chunks * inner;
        o = this.#alloc(n * 4);
        const p = new Params().u32(n).u32(len).u32(inner).u32(chunks).u32(STRIDED_CHUNK).buffer;
        this.rt.dispatch(K.reduceStrided, { OP }, p, [src, o], groups(n));
      }
      if (owned) this.release(src);
      src = o;
      owned = true;
      len = chunks;
    }
    return src;
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
    const tilesM = Math.ceil(m / 16), tilesN = Math.ceil(n / 16);
    const o = this.#alloc(splits * batch * m * n * 4);
    const p = new Params().u32(m).u32(n).u32(kk).u32(tilesM).u32(tilesN).u32(splits).u32(kChunk)
      .u32(batch).u32(c.shape.length).u32x8(c.shape).u32x8(c.strides[0]).u32x8(c.strides[1]);
    this.rt.dispatch(K.matmul, {}, p.buffer, [gs(a), gs(b), o], tilesM * tilesN * batch * splits);
    if (splits === 1) return o;
    const summed = this.reduce("sum", dtype, o, [splits, batch * m * n], [0]);
    this.release(o);
    return summed;
  }

  /**
   * Gauss-Jordan over W = [A | B] ([batch, n, cols]) in place: two dispatches per pivot
   * step, so no invocation loops over more than one row. Returns the accumulator
   * (log|det|, sign, first zero-pivot step + 1) per matrix.
   */
  #gaussJordan(
    w: GpuStorage,
    batch: number,
    n: number,
    cols: number,
    rowsBelow: boolean,
  ): GpuStorage {
    const acc = gs(this.upload(new Float32Array(batch * 3).map((_, i) => (i % 3 === 1 ? 1 : 0))));
    for (let step = 0; step < n; step++) {
      const pp = new Params().u32(batch).u32(n).u32(cols).u32(step).buffer;
      this.rt.dispatch(K.gjPivot, {}, pp, [w, acc], groups(batch, 64));
      const count = batch * n * (cols - step - 1);
      if (count === 0) continue;
      const pe = new Params().u32(count).u32(n).u32(cols).u32(step).buffer;
      this.rt.dispatch(
        K.gjEliminate,
        { ROWS_BELOW: rowsBelow ? 1 : 0 },
        pe,
        [w, acc],
        groups(count),
      );
    }
    return acc;
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
    const ab = this.stridedCopy(
      dtype,
      a,
      [...batchShape, n, n],
      0,
      broadcastStrides(aShape, [...batchShape, n, n]),
    );
    const bb = this.stridedCopy(
      dtype,
      b,
      [...batchShape, n, m],
      0,
      broadcastStrides(bShape, [...batchShape, n, m]),
    );
    const w = gs(
      this.concat(dtype, [ab, bb], [[batch, n, n], [batch, n, m]], 2, [batch, n, n + m]),
    );
    this.release(ab);
    this.release(bb);
    const acc = this.#gaussJordan(w, batch, n, n + m, false);
    this.rt.addCheck(acc, batch * 12, (v) => {
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
    const w = gs(this.copy(dtype, a, batch * n * n));
    const acc = this.#gaussJordan(w, batch, n, n, true);
    this.release(w);
    const logabs = this.stridedCopy(dtype, acc, [batch], 0, [3]);
    let out: Storage;
    if (mode === "logdet") {
      this.rt.addCheck(acc, batch * 12, (v) => {
        for (let i = 0; i < batch; i++) {
          const msg = logdetError(op, i, v[3 * i + 2], v[3 * i + 1]);
          if (msg) return msg;
        }
        return null;
      });
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

  stridedCopy(
    _dtype: Dtype,
    x: Storage,
    outShape: readonly number[],
    offset: number,
    strides: readonly number[],
  ): Storage {
    const n = sizeOf(outShape);
    const o = this.#alloc(n * 4);
    const c = coalesce(outShape, [strides, stridesOf(outShape)]);
    checkRank("stridedCopy", c.shape);
    const p = new Params().u32(n).u32(c.shape.length).i32(offset).u32x8(c.shape).i32x8(
      c.strides[0],
    );
    this.rt.dispatch(K.stridedCopy, {}, p.buffer, [gs(x), o], groups(n));
    return o;
  }

  pad(
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    pads: readonly (readonly [number, number])[],
    value: number,
  ): Storage {
    const outShape = shape.map((d, i) => d + pads[i][0] + pads[i][1]);
    checkRank("pad", outShape);
    const n = sizeOf(outShape);
    const o = this.#alloc(n * 4);
    const bits = dtype === "i32" ? value | 0 : f32Bits(value);
    const p = new Params().u32(n).u32(shape.length).u32(bits).u32x8(outShape).u32x8(shape)
      .u32x8(pads.map((q) => q[0]));
    this.rt.dispatch(K.pad, {}, p.buffer, [gs(x), o], groups(n));
    return o;
  }

  concat(
    _dtype: Dtype,
    xs: readonly Storage[],
    shapes: readonly (readonly number[])[],
    axis: number,
    outShape: readonly number[],
  ): Storage {
    const o = this.#alloc(sizeOf(outShape) * 4);
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
      this.rt.dispatch(K.copyInto, {}, p.buffer, [gs(x), o], groups(n));
      at += shape[axis];
    });
    return o;
  }

  gather(
    _dtype: Dtype,
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
    this.rt.dispatch(K.gather, {}, p, [gs(x), gs(idx), o], groups(n));
    return o;
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
      order: gs(this.upload(new Int32Array(order.buffer))),
      starts: gs(this.upload(new Int32Array(counts.buffer))),
      maxCount,
    };
    this.#csr.push(e);
    while (this.#csr.length > CSR_CACHE) {
      // safe while queued work still reads them: the pool tracks each buffer's last batch
      const old = this.#csr.shift()!;
      this.release(old.order);
      this.release(old.starts);
    }
    return e;
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
    for (let k0 = 0, first = true; first || k0 < csr.maxCount; k0 += SCATTER_SPAN, first = false) {
      const p = new Params().u32(n).u32(len).u32(m).u32(inner).u32(k0).u32(SCATTER_SPAN).buffer;
      this.rt.dispatch(
        K.scatterAdd,
        { ACCUM: first ? 0 : 1 },
        p,
        [gs(g), csr.order, csr.starts, o],
        groups(n),
      );
    }
    return o;
  }

  choleskyBanded(
    op: string,
    _dtype: Dtype,
    ab: Storage,
    batch: number,
    n: number,
    b: number,
    lower: boolean,
  ): Storage {
    return choleskyBandedGpu(this.rt, op, gs(ab), batch, n, b, lower);
  }
  solveBanded(
    op: string,
    _dtype: Dtype,
    ab: Storage,
    rhs: Storage,
    batch: number,
    n: number,
    b: number,
    m: number,
    lower: boolean,
  ): Storage {
    return solveBandedGpu(this.rt, op, gs(ab), gs(rhs), batch, n, b, m, lower);
  }
}
