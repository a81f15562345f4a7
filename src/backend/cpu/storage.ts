/** CPU memory: typed arrays (possibly still arriving from another device) and their reuse. */
import { allocArray, type Dtype, type TypedArray } from "../../dtype.ts";

/**
 * A realized CPU buffer. One copied from another device is filled when its read-back
 * resolves; until then kernels refuse it (`Tensor.ready()` waits for it). A read-back that
 * fails (the source owned a kernel error) leaves that error here: every use raises it.
 */
export class CpuStorage {
  #data: TypedArray | null;
  #error: unknown = null;
  /** Resolves when the data has arrived, or the copy has failed (never rejects). */
  readonly ready: Promise<void>;

  constructor(data: TypedArray | Promise<TypedArray>) {
    if (data instanceof Promise) {
      this.#data = null;
      this.ready = data.then((d) => {
        this.#data = d;
      }, (e) => {
        this.#error = e ?? new Error("a copy from another device failed");
      });
    } else {
      this.#data = data;
      this.ready = Promise.resolve();
    }
  }

  /** True once the data is in place. */
  get arrived(): boolean {
    return this.#data !== null;
  }

  get data(): TypedArray {
    if (this.#error !== null) throw this.#error;
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
 * allocation (page faults for large ones) and later garbage collection; reuse avoids both.
 * Arrays from the pool hold old values: only kernels that write every entry take them.
 */
class ArrayPool {
  #free = new Map<string, TypedArray[]>();
  #bytes = 0;
  static readonly MIN = 1024;
  static readonly MAX_BYTES = 1024 * 1024 * 1024;

  take(dtype: Dtype, n: number): TypedArray {
    if (n >= ArrayPool.MIN) {
      const a = this.#free.get(`${dtype}${n}`)?.pop();
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

export const pool: ArrayPool = new ArrayPool();

/** An output array whose every entry the kernel will write (possibly reused, not zeroed). */
export function out(dtype: Dtype, n: number): TypedArray {
  return pool.take(dtype, n);
}
