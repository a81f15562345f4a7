/**
 * Caches that stay bounded, and the registry `memory()` and `releaseCaches()` read.
 *
 * Every cache the library keeps (compiled kernels, pipelines, shader modules, pooled
 * arrays and buffers) is bounded by count and by bytes, evicts the least recently used
 * entry first, and registers itself here under a name, so `memory().caches` can report it
 * and `releaseCaches()` can empty it. A program whose kernels keep changing (a fuzzer, a
 * sweep over shapes) then runs in a bounded footprint.
 */

/** What a registered cache reports. */
export interface CacheStats {
  /** Entries held. */
  entries: number;
  /** Bytes held (an estimate for compiled code: the size of its source). */
  bytes: number;
}

/** Anything that holds memory for reuse and can give it back. */
export interface Releasable {
  stats(): CacheStats;
  /** Drops every entry (calling the eviction hook of each). */
  clear(): void;
  /** Sets new limits, evicting down to them (caches with entry limits). */
  resize?(limits: Partial<LruLimits>): void;
}

const registry = new Map<string, Releasable>();

/** Registers a cache under `name` (a later registration under the same name replaces it). */
export function registerCache(name: string, cache: Releasable): void {
  registry.set(name, cache);
}

/** Removes a cache from the registry (its device is gone). */
export function unregisterCache(name: string, cache: Releasable): void {
  if (registry.get(name) === cache) registry.delete(name);
}

/** Each registered cache's entries and bytes. */
export function cacheStats(): Record<string, CacheStats> {
  const out: Record<string, CacheStats> = {};
  for (const [name, c] of registry) out[name] = c.stats();
  return out;
}

/** Sets the limits of the registered cache `name` (for tests and tuning). */
export function limitCache(name: string, limits: Partial<LruLimits>): void {
  const c = registry.get(name);
  if (!c?.resize) throw new Error(`internal: no resizable cache named ${JSON.stringify(name)}`);
  c.resize(limits);
}

/** Empties every registered cache. */
export function clearCaches(): void {
  for (const c of registry.values()) c.clear();
}

/** Limits of an {@linkcode LruCache}. */
export interface LruLimits {
  /** Most entries held. */
  maxEntries: number;
  /** Most bytes held (the sum of the sizes given to `set`). */
  maxBytes: number;
}

/**
 * A map that keeps at most `maxEntries` entries and `maxBytes` bytes, evicting the least
 * recently used (a `get` that hits counts as a use). `onEvict` runs for every entry that
 * leaves, whether evicted, replaced, deleted or cleared.
 */
export class LruCache<K, V> implements Releasable {
  #map = new Map<K, { value: V; bytes: number }>();
  #bytes = 0;
  /**
   * The most recently used key (one deleted since is never hit). A hit on it moves nothing:
   * moving an entry is a Map delete and insert, and a jitted function called over and over
   * with one signature (a replay costs a few µs) paid them at every call.
   */
  #newest: K | undefined = undefined;
  limits: LruLimits;

  constructor(limits: LruLimits, readonly onEvict?: (value: V, key: K) => void) {
    this.limits = { ...limits };
  }

  /** The value under `key`, now the most recently used; undefined if absent. */
  get(key: K): V | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (key !== this.#newest) {
      this.#map.delete(key);
      this.#map.set(key, e);
      this.#newest = key;
    }
    return e.value;
  }

  /** True if `key` is held (does not count as a use). */
  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Stores `value` as the most recently used entry, then evicts down to the limits. */
  set(key: K, value: V, bytes = 0): void {
    this.delete(key);
    this.#map.set(key, { value, bytes });
    this.#newest = key;
    this.#bytes += bytes;
    this.#shrink();
  }

  /** Removes `key` (running `onEvict`); returns whether it was there. */
  delete(key: K): boolean {
    const e = this.#map.get(key);
    if (!e) return false;
    this.#map.delete(key);
    this.#bytes -= e.bytes;
    this.onEvict?.(e.value, key);
    return true;
  }

  /** Sets new limits and evicts down to them. */
  resize(limits: Partial<LruLimits>): void {
    this.limits = { ...this.limits, ...limits };
    this.#shrink();
  }

  #shrink(): void {
    // the newest entry stays even when it alone is over the byte limit
    while (
      this.#map.size > 1 &&
      (this.#map.size > this.limits.maxEntries || this.#bytes > this.limits.maxBytes)
    ) {
      this.delete(this.#map.keys().next().value as K);
    }
    if (this.limits.maxEntries < 1) this.clear();
  }

  clear(): void {
    for (const key of [...this.#map.keys()]) this.delete(key);
  }

  stats(): CacheStats {
    return { entries: this.#map.size, bytes: this.#bytes };
  }

  get size(): number {
    return this.#map.size;
  }
}
