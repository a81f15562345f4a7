/** Tensor: shape, dtype and device over backend storage (or over a tracer, inside transforms). */
import type { IndexInfo, Storage } from "./backend/backend.ts";
import type { Dtype, TypedArray } from "./dtype.ts";
import type { Device } from "./device.ts";
import { countBytes, countTensor, deferDisposal, trackTensor } from "./memory.ts";
import { fmtShape, sizeOf } from "./shape.ts";
import * as ops from "./ops/index.ts";

/** @internal Storage shared by tensors that view the same memory (reshape shares it). */
export class StorageRef {
  refs = 1;
  constructor(readonly storage: Storage, readonly device: Device) {
    countBytes(device.kind, storage.byteLength);
  }
  release(): void {
    if (--this.refs === 0) {
      countBytes(this.device.kind, -this.storage.byteLength);
      this.device.backend.release(this.storage);
    }
  }
}

/** @internal What a transform attaches to a traced tensor. */
export interface Tracer {
  readonly trace: { readonly level: number; readonly name: string };
  /** The value under a derivative tracer (a batching tracer has none and throws). */
  readonly primal: Tensor;
  /** Batching tracers: `fn` applied to the batched value, which stays batched. */
  mapValue?(fn: (v: Tensor) => Tensor): Tensor;
}

/** Anything ops accept where a tensor is expected: plain numbers broadcast as scalars. */
export type TensorLike = Tensor | number;

/**
 * An n-dimensional array on one device. Ops return new tensors at once; on WebGPU the work
 * is only queued, and reading values (`data`, `item`, `toArray`) is the one place that waits.
 * Free memory with `dispose()`, `using`, or `tidy`.
 */
export class Tensor {
  /** @internal Marks tensors for structural checks that must not import this module. */
  readonly _isTensor = true;
  /** The size of each dimension. */
  readonly shape: readonly number[];
  /** The element type. */
  readonly dtype: Dtype;
  /** The device holding the data. */
  readonly device: Device;
  /** The number of elements. */
  readonly size: number;
  /** @internal */
  _ref: StorageRef | null;
  /** @internal */
  _tracer: Tracer | null;
  /** @internal Host copy of an index tensor's values (i32 tensors made from host data). */
  _index: IndexInfo | null = null;
  /** @internal Pinned tensors (cached constants) ignore dispose and are not counted. */
  _pinned = false;
  #disposed = false;

  /** @internal Use the creation functions (`tensor`, `zeros`, …) instead. */
  constructor(
    shape: readonly number[],
    dtype: Dtype,
    device: Device,
    ref: StorageRef | null,
    tracer: Tracer | null,
  ) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = device;
    this.size = sizeOf(shape);
    this._ref = ref;
    this._tracer = tracer;
    if (ref) {
      countTensor(device.kind, 1);
      trackTensor(this);
    }
  }

  /** @internal A tensor owning fresh storage. */
  static _fromStorage(
    storage: Storage,
    shape: readonly number[],
    dtype: Dtype,
    device: Device,
  ): Tensor {
    return new Tensor(shape, dtype, device, new StorageRef(storage, device), null);
  }

  /** @internal A tensor sharing another's storage under a new shape. */
  static _view(src: Tensor, shape: readonly number[]): Tensor {
    const ref = src._ref!;
    ref.refs++;
    const t = new Tensor(shape, src.dtype, src.device, ref, null);
    t._index = src._index;
    return t;
  }

  /** The number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** True once disposed. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** @internal Throws if disposed; names the op that tried to use it. */
  _check(op: string): void {
    if (this.#disposed) {
      throw new Error(
        `${op}: a tensor of shape ${fmtShape(this.shape)} (${this.dtype}) was used after dispose()`,
      );
    }
  }

  /** @internal The concrete tensor under any tracers. */
  _concrete(): Tensor {
    return this._tracer ? this._tracer.primal._concrete() : this;
  }

  /** Reads the values back to the host (waits for queued GPU work). */
  async data(): Promise<TypedArray> {
    this._check("data");
    const c = this._concrete();
    c._check("data");
    return await c.device.backend.download(c._ref!.storage, c.dtype, c.size);
  }

  /**
   * Computes the tensor now and resolves once its value is in place, without reading it
   * back (JAX's `block_until_ready`): for timing, and for a copy to the CPU from WebGPU,
   * which arrives asynchronously.
   */
  async ready(): Promise<this> {
    this._check("ready");
    const c = this._concrete();
    await c.device.backend.settled(c._ref!.storage);
    return this;
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new RangeError(
        `item: expected a tensor with one element, got shape ${fmtShape(this.shape)}`,
      );
    }
    return (await this.data())[0];
  }

  /** The values as nested arrays (a number for a 0-d tensor). */
  async toArray(): Promise<unknown> {
    const d = await this.data();
    const build = (dim: number, off: number): unknown => {
      if (dim === this.shape.length) return d[off];
      const n = this.shape[dim];
      const step = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: n }, (_, i) => build(dim + 1, off + i * step));
    };
    return build(0, 0);
  }

  /** Frees the tensor's memory. Safe to call twice. Inside a transform, freeing waits until it ends. */
  dispose(): void {
    if (this.#disposed || this._pinned) return;
    if (this._ref && deferDisposal(this)) return;
    this.#disposed = true;
    if (this._ref) {
      countTensor(this.device.kind, -1);
      this._ref.release();
      this._ref = null;
    }
  }

  /** Frees the tensor at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** A short description: shape, dtype, device. */
  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}, ${this.device.kind}${
      this._tracer ? ", traced" : ""
    })`;
  }

  // ---- method forms of the ops ----

  /** `this + b` (broadcasting). */
  add(b: TensorLike): Tensor {
    return ops.add(this, b);
  }
  /** `this - b`. */
  sub(b: TensorLike): Tensor {
    return ops.sub(this, b);
  }
  /** `this * b`. */
  mul(b: TensorLike): Tensor {
    return ops.mul(this, b);
  }
  /** `this / b`. */
  div(b: TensorLike): Tensor {
    return ops.div(this, b);
  }
  /** `this ** b`. */
  pow(b: TensorLike): Tensor {
    return ops.pow(this, b);
  }
  /** Elementwise maximum. */
  maximum(b: TensorLike): Tensor {
    return ops.maximum(this, b);
  }
  /** Elementwise minimum. */
  minimum(b: TensorLike): Tensor {
    return ops.minimum(this, b);
  }
  /** 1 where `this > b`, else 0. */
  greater(b: TensorLike): Tensor {
    return ops.greater(this, b);
  }
  /** 1 where `this < b`, else 0. */
  less(b: TensorLike): Tensor {
    return ops.less(this, b);
  }
  /** 1 where `this == b`, else 0. */
  equal(b: TensorLike): Tensor {
    return ops.equal(this, b);
  }
  /** `-this`. */
  neg(): Tensor {
    return ops.neg(this);
  }
  /** `e^this`. */
  exp(): Tensor {
    return ops.exp(this);
  }
  /** Natural logarithm. */
  log(): Tensor {
    return ops.log(this);
  }
  /** Sine. */
  sin(): Tensor {
    return ops.sin(this);
  }
  /** Cosine. */
  cos(): Tensor {
    return ops.cos(this);
  }
  /** Hyperbolic tangent. */
  tanh(): Tensor {
    return ops.tanh(this);
  }
  /** Square root. */
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  /** Absolute value. */
  abs(): Tensor {
    return ops.abs(this);
  }
  /** Logistic sigmoid `1 / (1 + e^-x)`. */
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  /** `log(1 + x)`, accurate near 0. */
  log1p(): Tensor {
    return ops.log1p(this);
  }
  /** `e^x - 1`, accurate near 0. */
  expm1(): Tensor {
    return ops.expm1(this);
  }
  /** `x²`. */
  square(): Tensor {
    return ops.square(this);
  }
  /** `1 / x`. */
  reciprocal(): Tensor {
    return ops.reciprocal(this);
  }
  /** Sign: −1, 0 or 1. */
  sign(): Tensor {
    return ops.sign(this);
  }
  /** Sum over `axis` (all axes when omitted). */
  sum(axis?: number | number[], keepdims = false): Tensor {
    return ops.sum(this, axis, keepdims);
  }
  /** Mean over `axis` (all axes when omitted). */
  mean(axis?: number | number[], keepdims = false): Tensor {
    return ops.mean(this, axis, keepdims);
  }
  /** Maximum over `axis` (all axes when omitted). */
  max(axis?: number | number[], keepdims = false): Tensor {
    return ops.max(this, axis, keepdims);
  }
  /** Minimum over `axis` (all axes when omitted). */
  min(axis?: number | number[], keepdims = false): Tensor {
    return ops.min(this, axis, keepdims);
  }
  /** Matrix product (NumPy `matmul` semantics). */
  matmul(b: Tensor): Tensor {
    return ops.matmul(this, b);
  }
  /** Inner product of two vectors (or `matmul` for higher ranks). */
  dot(b: Tensor): Tensor {
    return ops.dot(this, b);
  }
  /** Same data, new shape (one entry may be −1). */
  reshape(shape: readonly number[]): Tensor {
    return ops.reshape(this, shape);
  }
  /** Permutes axes (reverses them when `perm` is omitted). */
  transpose(perm?: readonly number[]): Tensor {
    return ops.transpose(this, perm);
  }
  /** Broadcasts to `shape`. */
  broadcastTo(shape: readonly number[]): Tensor {
    return ops.broadcastTo(this, shape);
  }
  /** NumPy-style slice: `start`, `stop`, `step` per leading axis; negatives count from the end. */
  slice(start: readonly number[], stop: readonly number[], step?: readonly number[]): Tensor {
    return ops.slice(this, start, stop, step);
  }
  /** Pads each axis with `[before, after]` entries of `value`. */
  pad(pads: readonly (readonly [number, number])[], value = 0): Tensor {
    return ops.pad(this, pads, value);
  }
  /** Takes entries `indices` along `axis`. */
  gather(indices: Tensor | readonly number[], axis = 0): Tensor {
    return ops.gather(this, indices, axis);
  }
  /** Converts to `dtype`. */
  astype(dtype: Dtype): Tensor {
    return ops.astype(this, dtype);
  }
}
