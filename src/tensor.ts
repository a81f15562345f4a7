/** Tensor: shape, dtype and device over backend storage (or over a tracer, inside transforms). */
import type { IndexInfo, Storage } from "./backend/backend.ts";
import type { Dtype, TypedArray } from "./dtype.ts";
import type { Device } from "./device.ts";
import {
  countBytes,
  countReclaimed,
  countTensor,
  deferDisposal,
  inheritOwner,
  type Owner,
  trackTensor,
  untrackTensor,
} from "./memory.ts";
import { fmtShape, frozenShape, sizeOf } from "./shape.ts";
import type { NestedArray } from "./ops/creation.ts";
import { formatValues, nest, PRINT_MAX } from "./tensor_format.ts";
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

/**
 * The safety net behind `dispose` and `tidy`: a tensor the garbage collector reclaims
 * while it still holds memory gives its share of the storage back (and is counted in
 * `memory().reclaimed`). The held value is the storage, never the tensor itself.
 *
 * A tensor made inside a `tidy` scope is registered only if it leaves every scope alive
 * (memory.ts calls `_guard`): until then the scope holds it, so the collector cannot
 * reclaim it, and the intermediates of a transform or a tidy — nearly every tensor — are
 * disposed without ever being registered (a registration and its removal cost about as
 * much as the rest of making a tensor, and weak cells slow the collector down).
 */
const reclaim = new FinalizationRegistry<StorageRef>((ref) => {
  countTensor(ref.device.kind, -1);
  countReclaimed();
  ref.release();
});

/** Keeps `x` reachable up to this call (across an `await` before it). */
function keepAlive(x: unknown): void {
  if (x === keepAlive) throw new Error("unreachable");
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
  /** @internal The running call that owns this tensor (see memory.ts), if any. */
  _owner: Owner | null = null;
  /** @internal Creation order (see memory.ts). */
  _seq = 0;
  /** @internal An alias an owned call made of its argument (freed when the call ends). */
  _isAlias = false;
  /** @internal Registered with the reclaim registry (see `_guard`). */
  _guarded = false;
  #disposed = false;
  /** The values of the last read-back of a small tensor (what printing shows on WebGPU). */
  #shown: TypedArray | null = null;

  /** @internal Use the creation functions (`tensor`, `zeros`, …) instead. */
  constructor(
    shape: readonly number[],
    dtype: Dtype,
    device: Device,
    ref: StorageRef | null,
    tracer: Tracer | null,
  ) {
    this.shape = frozenShape(shape);
    this.dtype = dtype;
    this.device = device;
    this.size = sizeOf(shape);
    this._ref = ref;
    this._tracer = tracer;
    if (ref) {
      countTensor(device.kind, 1);
      // held by a tidy scope: registered only if it leaves the scopes alive
      if (!trackTensor(this)) this._guard();
    }
  }

  /**
   * @internal Puts a live tensor under the collector's safety net (see `reclaim`): memory.ts
   * calls it when the tensor leaves the last scope that held it without being disposed.
   */
  _guard(): void {
    if (this._guarded || this._pinned || !this._ref || this.#disposed) return;
    this._guarded = true;
    reclaim.register(this, this._ref, this);
  }

  /** @internal A tensor owning fresh storage, computed from `inputs` (for ownership). */
  static _fromStorage(
    storage: Storage,
    shape: readonly number[],
    dtype: Dtype,
    device: Device,
    inputs: readonly Tensor[] = [],
  ): Tensor {
    const t = new Tensor(shape, dtype, device, new StorageRef(storage, device), null);
    if (inputs.length) inheritOwner(t, inputs);
    return t;
  }

  /** @internal A tensor sharing another's storage under a new shape. */
  static _view(src: Tensor, shape: readonly number[]): Tensor {
    const ref = src._ref!;
    ref.refs++;
    const t = new Tensor(shape, src.dtype, src.device, ref, null);
    t._index = src._index;
    inheritOwner(t, [src]);
    return t;
  }

  /** @internal Pins a cached constant: dispose ignores it, and the collector never frees it. */
  _pin(): void {
    this._pinned = true;
    if (this._guarded) reclaim.unregister(this);
    this._guarded = false;
  }

  /** @internal A second handle on the same storage, for an owned call (see memory.ts). */
  _alias(): Tensor {
    const t = Tensor._view(this, this.shape);
    t._isAlias = true;
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

  /**
   * Reads the values back to the host (waits for queued GPU work), into a fresh array, or
   * into `out` when given: a typed array of the tensor's dtype (`Float32Array` for f32,
   * `Float64Array` for f64, `Int32Array` for i32) and length `size`, which is returned. A
   * loop that reads a result every iteration then allocates nothing.
   *
   * @example
   * ```ts
   * import { tensor } from "@curvature/curvature";
   * const x = tensor([1, 2, 3], { dtype: "f64" });
   * const out = new Float64Array(3);
   * await x.mul(2).data(out);
   * console.log(out); // Float64Array(3) [ 2, 4, 6 ]
   * ```
   */
  async data(out?: TypedArray): Promise<TypedArray> {
    const c = this.#readable("data", out);
    const v = await c.device.backend.download(c._ref!.storage, c.dtype, c.size, out);
    c.#remember(v);
    return v;
  }

  /**
   * The values at once, without waiting: on the CPU, whose memory the host reads directly.
   * On WebGPU values can only be read asynchronously, so this throws, naming `data()`.
   * `out` as for {@linkcode Tensor.data}.
   *
   * @example
   * ```ts
   * import { tensor } from "@curvature/curvature";
   * console.log(tensor([1, 2]).add(1).dataSync()); // Float32Array(2) [ 2, 3 ]
   * ```
   */
  dataSync(out?: TypedArray): TypedArray {
    const c = this.#readable("dataSync", out);
    const bk = c.device.backend;
    if (!bk.readSync) throw asyncOnly("dataSync", "data", c);
    const v = bk.readSync(c._ref!.storage, c.dtype, c.size, out);
    c.#remember(v);
    return v;
  }

  /** The concrete tensor to read, after checking it and `out`. */
  #readable(op: string, out?: TypedArray): Tensor {
    this._check(op);
    const c = this._concrete();
    c._check(op);
    if (out !== undefined) {
      const want = c.dtype === "f64" ? Float64Array : c.dtype === "i32" ? Int32Array : Float32Array;
      if (!(out instanceof want) || out.length !== c.size) {
        const got = ArrayBuffer.isView(out)
          ? `${out.constructor.name} of length ${(out as TypedArray).length}`
          : describe(out);
        throw new TypeError(
          `${op}: out must be a ${want.name} of length ${c.size} for a ${c.dtype} tensor of ` +
            `shape ${fmtShape(c.shape)}, got ${got}`,
        );
      }
    }
    return c;
  }

  /** Keeps a copy of a small tensor's values, for printing where they cannot be read at once. */
  #remember(v: TypedArray): void {
    if (this.size <= PRINT_MAX) this.#shown = v.slice();
  }

  /**
   * Computes the tensor now and resolves once its value is in place, without reading it
   * back (JAX's `block_until_ready`): for timing, and for a copy to the CPU from WebGPU,
   * which arrives asynchronously.
   */
  async ready(): Promise<this> {
    this._check("ready");
    const c = this._concrete();
    try {
      await c.device.backend.settled(c._ref!.storage);
    } finally {
      keepAlive(c);
    }
    return this;
  }

  /**
   * The single value of a one-element tensor. Reading does not free anything: in a loop,
   * read inside `await tidy(async () => …)` so the tensors behind the value are freed too.
   *
   * @example
   * ```ts
   * import { grad, norm, type Tensor, tensor, tidy } from "@curvature/curvature";
   * const x = tensor([3, 4]);
   * const f = (x: Tensor) => x.square().sum();
   * const gn = await tidy(async () => await norm(grad(f)(x)).item()); // the gradient is freed
   * console.log(gn); // 10
   * ```
   */
  async item(): Promise<number> {
    this.#oneElement("item");
    return (await this.data())[0];
  }

  /**
   * The single value of a one-element tensor, at once: on the CPU only (on WebGPU this
   * throws, naming `item()`).
   */
  itemSync(): number {
    this.#oneElement("itemSync");
    const c = this._concrete();
    if (!c.device.backend.readSync) throw asyncOnly("itemSync", "item", c);
    return this.dataSync()[0];
  }

  #oneElement(op: string): void {
    if (this.size !== 1) {
      throw new RangeError(
        `${op}: expected a tensor with one element, got shape ${fmtShape(this.shape)}`,
      );
    }
  }

  /**
   * The values as nested arrays of numbers (a number for a 0-d tensor).
   *
   * @example
   * ```ts
   * import { tensor } from "@curvature/curvature";
   * const m = (await tensor([[1, 2], [3, 4]]).toArray()) as number[][];
   * console.log(m[1][0]); // 3
   * ```
   */
  async toArray(): Promise<NestedArray> {
    return nest(await this.data(), this.shape);
  }

  /** Frees the tensor's memory. Safe to call twice. Inside a transform, freeing waits until it ends. */
  dispose(): void {
    if (this.#disposed || this._pinned) return;
    if (this._ref && deferDisposal(this)) return;
    this.#disposed = true;
    untrackTensor(this);
    if (this._ref) {
      if (this._guarded) reclaim.unregister(this);
      this._guarded = false;
      countTensor(this.device.kind, -1);
      this._ref.release();
      this._ref = null;
    }
  }

  /** Frees the tensor at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Shape, dtype and device and, for tensors of up to 100 elements, the values: read at
   * once on the CPU; on WebGPU those of the last read-back (`data()`, `item()`,
   * `toArray()`), or a hint to read them. `console.log(x)` prints the same, a matrix's
   * rows on lines of their own.
   */
  toString(): string {
    return this.#describe(false);
  }

  /** @internal The text of toString (one line) and of console.log (`multiline`). */
  _describe(multiline: boolean): string {
    return this.#describe(multiline);
  }

  #describe(multiline: boolean): string {
    const head = `Tensor(${fmtShape(this.shape)}, ${this.dtype}, ${this.device.kind}`;
    if (this.#disposed) return `${head}, disposed)`;
    if (this._tracer) return `${head}, traced by ${this._tracer.trace.name})`;
    if (this.size > PRINT_MAX) return `${head}) (${this.size} values; x.data() reads them)`;
    let values = this.#shown;
    if (!values && this.device.backend.readSync) {
      try {
        values = this.dataSync();
      } catch (e) {
        // a kernel error owned by this tensor, or a copy still in transit
        return `${head}) (${e instanceof Error ? e.message : String(e)})`;
      }
    }
    if (!values) return `${head}) (on the device: await x.toArray() reads it)`;
    const text = formatValues(values, this.shape, this.dtype, multiline);
    return `${head})${multiline && this.rank > 1 ? "\n" : " "}${text}`;
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
  /** Product over `axis` (all axes when omitted). */
  prod(axis?: number | number[], keepdims = false): Tensor {
    return ops.prod(this, axis, keepdims);
  }
  /** Variance over `axis` (`ddof`, `keepdims` as options), NumPy's `x.var()`. */
  var(axis?: number | number[], opts?: ops.VarianceOptions): Tensor {
    return ops.variance(this, axis, opts);
  }
  /** Standard deviation over `axis` (`ddof`, `keepdims` as options). */
  std(axis?: number | number[], opts?: ops.VarianceOptions): Tensor {
    return ops.std(this, axis, opts);
  }
  /** Cumulative sum along `axis` (of the flattened tensor when omitted). */
  cumsum(axis?: number): Tensor {
    return ops.cumsum(this, axis);
  }
  /** Index of the largest value along `axis` (flattened when omitted), an i32 tensor. */
  argmax(axis?: number, keepdims = false): Tensor {
    return ops.argmax(this, axis, keepdims);
  }
  /** Index of the smallest value along `axis` (flattened when omitted), an i32 tensor. */
  argmin(axis?: number, keepdims = false): Tensor {
    return ops.argmin(this, axis, keepdims);
  }
  /** Limits the values to `[min, max]` (either may be null). */
  clip(min?: TensorLike | null, max?: TensorLike | null): Tensor {
    return ops.clip(this, min, max);
  }
  /** Vector or matrix norm (see the `norm` function). */
  norm(ord?: ops.NormOrder | -1, axis?: number | number[], keepdims = false): Tensor {
    return ops.norm(this, ord, axis, keepdims);
  }
  /** The `offset`-th diagonal over `axis1`, `axis2` (default the first two axes). */
  diagonal(offset = 0, axis1 = 0, axis2 = 1): Tensor {
    return ops.diagonal(this, offset, axis1, axis2);
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

/** The error of a synchronous read on a device that only reads asynchronously. */
function asyncOnly(op: string, async: string, t: Tensor): Error {
  return new Error(
    `${op}: the tensor (${fmtShape(t.shape)}, ${t.dtype}) is on ${t.device.kind}, whose values ` +
      `can only be read asynchronously; use \`await x.${async}()\``,
  );
}

function describe(x: unknown): string {
  return x === null ? "null" : x === undefined ? "undefined" : typeof x;
}

// console.log in Deno and Node, and util.inspect: the multi-line description. Installed on
// the prototype by registry symbols (strings, not the Deno namespace), so browsers ignore them.
Object.defineProperty(Tensor.prototype, Symbol.for("Deno.customInspect"), {
  value(this: Tensor): string {
    return this._describe(true);
  },
});
Object.defineProperty(Tensor.prototype, Symbol.for("nodejs.util.inspect.custom"), {
  value(this: Tensor): string {
    return this._describe(true);
  },
});
