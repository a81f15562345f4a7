/** A map that keeps at most `capacity` entries, evicting the least recently used. */
export class Lru<K, V> {
  #map = new Map<K, V>();

  constructor(
    readonly capacity: number,
    /** Called with each entry evicted (to free what it holds). */
    readonly onEvict?: (value: V, key: K) => void,
  ) {}

  get size(): number {
    return this.#map.size;
  }

  /** The value, marked most recently used. */
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.capacity) {
      const [k, v] = this.#map.entries().next().value!;
      this.#map.delete(k);
      this.onEvict?.(v, k);
    }
  }

  delete(key: K): void {
    const v = this.#map.get(key);
    if (v === undefined) return;
    this.#map.delete(key);
    this.onEvict?.(v, key);
  }

  clear(): void {
    for (const [k, v] of [...this.#map]) {
      this.#map.delete(k);
      this.onEvict?.(v, k);
    }
  }
}
