/** The CPU backend: TypedArray kernels in f32, f64 and i32. The reference for every GPU kernel. */
import type {
  Backend,
  BinaryOp,
  IndexInfo,
  RandomDist,
  ReduceOp,
  Storage,
  UnaryOp,
} from "../backend.ts";
import { allocArray, type Dtype, type TypedArray } from "../../dtype.ts";
import { sizeOf } from "../../shape.ts";
import { permutedStrides, planReduce } from "../../shape_plan.ts";
import { binaryCpu, unaryCpu, whereCpu } from "./elementwise.ts";
import { reduceCpu } from "./reduce.ts";
import { matmulCpu } from "./matmul.ts";
import { concatCpu, gatherCpu, padCpu, scatterAddCpu, stridedCopyCpu } from "./movement.ts";
import { randomCpu } from "./random.ts";
import { gaussJordan, packColumns } from "./linalg.ts";
import { combCpu, substituteCpu, unshuffleCpu } from "./band_recovery.ts";
import { broadcastStrides } from "../../shape.ts";
import { forEachRun } from "./elementwise.ts";
import { logdetError, singularError } from "../linalg_errors.ts";
import { choleskyBandedCpu, solveBandedCpu } from "./banded.ts";

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

/**
 * CPU storage is a typed array. One copied from another device is filled when its
 * read-back resolves; until then kernels refuse it (`Tensor.ready()` waits for it).
 */
export class CpuStorage implements Storage {
  #data: TypedArray | null;
  readonly byteLength: number;
  /** Resolves when the data has arrived (already resolved for ordinary storage). */
  readonly ready: Promise<void>;

  constructor(data: TypedArray | Promise<TypedArray>, byteLength = 0) {
    if (data instanceof Promise) {
      this.#data = null;
      this.byteLength = byteLength;
      this.ready = data.then((d) => {
        this.#data = d;
      });
    } else {
      this.#data = data;
      this.byteLength = data.byteLength;
      this.ready = Promise.resolve();
    }
  }

  /** True once the data is in place. */
  get arrived(): boolean {
    return this.#data !== null;
  }

  get data(): TypedArray {
    if (this.#data === null) {
      throw new Error(
        "a tensor copied to the CPU from another device is still in transit; " +
          "await tensor.ready() (or read it with data()) before using it in CPU ops",
      );
    }
    return this.#data;
  }
}

/**
 * Reuses freed arrays of the same dtype and length. A fresh typed array costs a zeroed
 * allocation (page faults for large ones) and later garbage collection; eager ops make
 * one per op, so reuse roughly halves their cost. Arrays from the pool hold old values:
 * only kernels that write every entry take them.
 */
class ArrayPool {
  #free = new Map<string, TypedArray[]>();
  #bytes = 0;
  static readonly MIN = 1024;
  static readonly MAX_BYTES = 256 * 1024 * 1024;

  take(dtype: Dtype, n: number): TypedArray {
    if (n >= ArrayPool.MIN) {
      const list = this.#free.get(`${dtype}${n}`);
      const a = list?.pop();
      if (a) {
        this.#bytes -= a.byteLength;
        return a;
      }
    }
    return allocArray(dtype, n);
  }

  give(a: TypedArray): void {
    if (a.length < ArrayPool.MIN || this.#bytes + a.byteLength > ArrayPool.MAX_BYTES) return;
    const dtype = a instanceof Float64Array ? "f64" : a instanceof Int32Array ? "i32" : "f32";
    const key = `${dtype}${a.length}`;
    let list = this.#free.get(key);
    if (!list) this.#free.set(key, list = []);
    list.push(a);
    this.#bytes += a.byteLength;
  }
}

const pool = new ArrayPool();
/** An output array whose every entry the kernel will write (possibly reused, not zeroed). */
const out = (dtype: Dtype, n: number) => pool.take(dtype, n);

function arr(s: Storage): TypedArray {
  return (s as CpuStorage).data;
}

function wrap(a: TypedArray): CpuStorage {
  return new CpuStorage(a);
}

export class CpuBackend implements Backend {
  readonly kind = "cpu" as const;
  readonly description = "CPU (TypeScript)";
  readonly dtypes: readonly Dtype[] = ["f32", "f64", "i32"];
  // Typed arrays may hold up to 2^32 elements in V8; keep well inside that.
  readonly maxStorageBytes = 2 ** 32;

  upload(data: TypedArray): Storage {
    return wrap(data.slice());
  }
  async download(s: Storage): Promise<TypedArray> {
    const cs = s as CpuStorage;
    // copy now while the tensor is alive: after an await its array may be reused
    if (cs.arrived) return arr(s).slice();
    await cs.ready;
    return arr(s).slice();
  }
  release(s: Storage): void {
    const cs = s as CpuStorage;
    if (cs.arrived) pool.give(cs.data);
  }
  materialize(_s: Storage): void {}
  raiseIf(flag: Storage, message: string): void {
    if (arr(flag)[0] !== 0) throw new RangeError(message);
  }
  sync(): Promise<void> {
    return Promise.resolve();
  }

  fill(dtype: Dtype, size: number, value: number): Storage {
    const a = out(dtype, size);
    a.fill(value);
    return wrap(a);
  }
  iota(dtype: Dtype, size: number, start: number, step: number): Storage {
    const a = out(dtype, size);
    for (let i = 0; i < size; i++) a[i] = start + i * step;
    return wrap(a);
  }
  random(dist: RandomDist, dtype: Dtype, size: number, seed: number, offset: number): Storage {
    const a = out(dtype, size);
    randomCpu(dist, a, seed, offset);
    return wrap(a);
  }

  unary(op: UnaryOp, dtype: Dtype, x: Storage, size: number): Storage {
    const o = out(dtype, size);
    unaryCpu(op, arr(x), o);
    return wrap(o);
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
    const o = out(dtype, sizeOf(outShape));
    binaryCpu(op, arr(a), aShape, arr(b), bShape, o, outShape);
    return wrap(o);
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
    const o = out(dtype, sizeOf(outShape));
    whereCpu(arr(c), cShape, arr(a), aShape, arr(b), bShape, o, outShape);
    return wrap(o);
  }
  copy(_dtype: Dtype, x: Storage, size: number): Storage {
    return wrap(arr(x).slice(0, size));
  }
  cast(x: Storage, _from: Dtype, to: Dtype, size: number): Storage {
    const o = out(to, size);
    o.set(arr(x));
    return wrap(o);
  }

  reduce(
    op: ReduceOp,
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    axes: readonly number[],
  ): Storage {
    const plan = planReduce(shape, axes);
    let src = arr(x);
    if (plan.perm) {
      const { outShape, strides } = permutedStrides(shape, plan.perm);
      const t = out(dtype, src.length);
      stridedCopyCpu(src, t, outShape, 0, strides);
      src = t;
    }
    const o = out(dtype, plan.outer * plan.inner);
    reduceCpu(op, src, o, plan.outer, plan.reduced, plan.inner);
    if (plan.perm) pool.give(src);
    return wrap(o);
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

  comb(dtype: Dtype, n: number, period: number): Storage {
    const o = out(dtype, period * n);
    combCpu(o, n, period);
    return wrap(o);
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
    dtype: Dtype,
    x: Storage,
    outShape: readonly number[],
    offset: number,
    strides: readonly number[],
  ): Storage {
    const o = out(dtype, sizeOf(outShape));
    stridedCopyCpu(arr(x), o, outShape, offset, strides);
    return wrap(o);
  }
  pad(
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    pads: readonly (readonly [number, number])[],
    value: number,
  ): Storage {
    const outShape = shape.map((d, i) => d + pads[i][0] + pads[i][1]);
    const o = out(dtype, sizeOf(outShape));
    padCpu(arr(x), shape, pads, value, o, outShape);
    return wrap(o);
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
    const o = allocArray(dtype, batch * (b + 1) * n);
    choleskyBandedCpu(op, arr(ab), o, batch, n, b, lower);
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
    const o = allocArray(dtype, batch * n * m);
    solveBandedCpu(op, arr(ab), arr(rhs), o, batch, n, b, m, lower);
    return wrap(o);
  }
}
