/**
 * Compiled kernels by structure: a device's compile cache, keyed by the kernel's
 * structural hash (uops.ts) and confirmed uop by uop, bounded by count with the least
 * recently used evicted.
 */
import { type CacheStats, LruCache, type LruLimits } from "../lru.ts";
import type { Finished, Kernel } from "./uops.ts";

/** Counters of one cache, for the benchmarks. */
export interface CompileStats {
  /** Kernels compiled. */
  count: number;
  /** Milliseconds spent compiling them (source printing included). */
  ms: number;
  /** Lookups answered from the cache. */
  hits: number;
}

export class KernelCache<V> {
  readonly stats: CompileStats = { count: 0, ms: 0, hits: 0 };
  #lru: LruCache<string, { kernel: Kernel; value: V }>;

  constructor(
    capacity: number,
    onEvict?: (value: V) => void,
    /** Bytes an entry holds (for the byte bound and `memory().caches`); 0 when not given. */
    readonly sizeOf?: (value: V) => number,
    maxBytes = 64 * 1024 * 1024,
  ) {
    this.#lru = new LruCache(
      { maxEntries: capacity, maxBytes },
      onEvict && ((e) => onEvict(e.value)),
    );
  }

  /** The compiled form of a lowered kernel, made by `compile` on a miss. */
  get(f: Finished, compile: (k: Kernel) => V): V {
    const hit = this.#lru.get(f.key);
    if (hit && f.matches(hit.kernel)) {
      this.stats.hits++;
      return hit.value;
    }
    const t0 = performance.now();
    const kernel = f.kernel();
    const value = compile(kernel);
    this.stats.ms += performance.now() - t0;
    this.stats.count++;
    this.#lru.set(f.key, { kernel, value }, this.sizeOf?.(value) ?? 0);
    return value;
  }

  get size(): number {
    return this.#lru.size;
  }

  /** Entries and bytes held (see `memory().caches`). */
  usage(): CacheStats {
    return this.#lru.stats();
  }

  /** New limits (entries, bytes), evicting down to them. */
  resize(limits: Partial<LruLimits>): void {
    this.#lru.resize(limits);
  }

  clear(): void {
    this.#lru.clear();
  }
}
