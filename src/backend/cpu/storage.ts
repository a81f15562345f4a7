/** CPU memory: typed arrays (possibly still arriving from another device) and their reuse. */
import { allocArray, type Dtype, type TypedArray } from "../../dtype.ts";
import { type CacheStats, registerCache, type Releasable } from "../../lru.ts";
import { liveBytes } from "../../memory.ts";

/** The `ready` of every buffer computed here (one promise, not one per kernel). */
const arrived = Promise.resolve();

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
      this.ready = arrived;
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
 *
 * Bounded two ways, oldest returned first: by bytes (a program whose shapes vary would
 * otherwise fill it with arrays of lengths it never asks for again) and by age (an array
 * not taken again within `maxAgeMs` is dropped at the next visit to the pool). The byte
 * bound follows the program: twice the most bytes its live CPU tensors held within
 * `maxAgeMs`, between 64 MiB and 1 GiB, so a large Newton iteration keeps its temporaries
 * and a loop over many small shapes does not hoard.
 */
class ArrayPool implements Releasable {
  /** Free arrays per dtype and length; and all of them, oldest returned first. */
  #free = new Map<string, TypedArray[]>();
  #age = new Map<TypedArray, { key: string; at: number }>();
  #bytes = 0;
  /**
   * Shorter arrays are allocated afresh (bookkeeping would cost more than the allocation).
   * 64, not 1024: at n = 1,000 (the discrete boundary value problem's inner CG, issue 11
   * item 7) every kernel output was a fresh Float64Array — allocation 19 % and GC 7 % of a
   * newton-cg profile; pooled, a CG iteration costs 0.21 instead of 0.27–0.31 ms.
   */
  static readonly MIN = 64;
  minCap = 64 * 1024 * 1024;
  maxCap = 1024 * 1024 * 1024;
  maxAgeMs = 10_000;

  #peak = 0;
  #peakAt = 0;

  /**
   * The byte bound at time `now` (ms). The clock is Date.now, read once per visit: a
   * visit comes with every kernel, and performance.now costs about 240 ns in Deno (4 reads
   * a kernel were ~1 µs), Date.now about 70; the age bound needs no finer time.
   */
  #cap(now: number): number {
    // sized by the largest live bytes of the last maxAgeMs, not the current ones: a Newton
    // iteration's temporaries are freed at its end, when the live bytes fall back to what
    // persists, and a cap of twice that dropped the arrays the next iteration asks for
    // again (a 5-colour sparse Hessian at n = 10⁶, CPU f64: 330 ms instead of 165)
    const live = liveBytes("cpu");
    if (live >= this.#peak || now - this.#peakAt > this.maxAgeMs) {
      this.#peak = live;
      this.#peakAt = now;
    }
    return Math.min(this.maxCap, Math.max(this.minCap, 2 * this.#peak));
  }

  take(dtype: Dtype, n: number): TypedArray {
    this.#expire(Date.now());
    if (n >= ArrayPool.MIN) {
      const a = this.#free.get(`${dtype}${n}`)?.pop();
      if (a) {
        this.#age.delete(a);
        this.#bytes -= a.byteLength;
        return a;
      }
    }
    return allocArray(dtype, n);
  }

  give(a: TypedArray): void {
    const now = Date.now();
    if (a.length < ArrayPool.MIN || a.byteLength > this.#cap(now)) return;
    const dtype = a instanceof Float64Array ? "f64" : a instanceof Int32Array ? "i32" : "f32";
    const key = `${dtype}${a.length}`;
    let list = this.#free.get(key);
    if (!list) this.#free.set(key, list = []);
    list.push(a);
    this.#age.set(a, { key, at: now });
    this.#bytes += a.byteLength;
    this.#expire(now);
  }

  /** Drops the oldest arrays while over the byte limit or older than the age limit. */
  #expire(now: number): void {
    const cap = this.#cap(now);
    for (const [a, e] of this.#age) {
      if (this.#bytes <= cap && now - e.at <= this.maxAgeMs) break;
      this.#drop(a, e.key);
    }
  }

  #drop(a: TypedArray, key: string): void {
    const list = this.#free.get(key)!;
    list.splice(list.indexOf(a), 1);
    if (list.length === 0) this.#free.delete(key);
    this.#age.delete(a);
    this.#bytes -= a.byteLength;
  }

  clear(): void {
    this.#free.clear();
    this.#age.clear();
    this.#bytes = 0;
  }

  stats(): CacheStats {
    return { entries: this.#age.size, bytes: this.#bytes };
  }
}

export const pool: ArrayPool = new ArrayPool();
registerCache("cpu array pool", pool);

/** An output array whose every entry the kernel will write (possibly reused, not zeroed). */
export function out(dtype: Dtype, n: number): TypedArray {
  return pool.take(dtype, n);
}
