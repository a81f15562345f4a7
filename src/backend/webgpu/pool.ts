/**
 * GPU buffers and their reuse. A freed buffer goes back to a size-class bucket and may be
 * handed out again at once for a kernel's output (commands run in queue order), but not
 * for a `writeBuffer` upload while the unsubmitted batch still uses it: WebGPU applies
 * queued writes before the next submit's commands, so the write would land too early.
 */

export const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

/** One GPU buffer; `byteLength` is the tensor's size, `buffer.size` the (rounded) capacity. */
export class GpuStorage {
  /** Id of the last batch that recorded a command using this buffer. */
  lastBatch = -1;
  constructor(readonly buffer: GPUBuffer, readonly byteLength: number) {}
}

/** Capacity classes: 2^k·(1 + j/8), at least 256 bytes, so waste stays under 12.5%. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = Math.max(256, p / 8);
  return Math.ceil(bytes / step) * step;
}

/**
 * Free buffers by capacity class, bounded by bytes (`maxPooledBytes`) and by age: a buffer
 * not reused within `maxAgeMs` is destroyed after the next submit.
 */
export class BufferPool {
  #free = new Map<number, GPUBuffer[]>();
  #lastBatch = new WeakMap<GPUBuffer, number>();
  /** When each pooled buffer was returned, oldest first. */
  #since = new Map<GPUBuffer, number>();
  #pooledBytes = 0;
  maxAgeMs = 30_000;
  /** Bytes held by live buffers plus pooled ones (what the device really holds). */
  deviceBytes = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxPooledBytes: number,
  ) {}

  /** Told of every buffer handed out (a jit trace recording what it made). */
  onAcquire: ((s: GpuStorage) => void) | null = null;

  acquire(bytes: number, currentBatch: number, forUpload: boolean): GpuStorage {
    const s = this.#take(bytes, currentBatch, forUpload);
    this.onAcquire?.(s);
    return s;
  }

  #take(bytes: number, currentBatch: number, forUpload: boolean): GpuStorage {
    const cap = sizeClass(bytes);
    const list = this.#free.get(cap);
    if (list && list.length > 0) {
      for (let i = list.length - 1; i >= 0; i--) {
        const buf = list[i];
        const last = this.#lastBatch.get(buf) ?? -1;
        if (forUpload && last >= currentBatch) continue;
        list.splice(i, 1);
        this.#since.delete(buf);
        this.#pooledBytes -= cap;
        const s = new GpuStorage(buf, bytes);
        s.lastBatch = last;
        return s;
      }
    }
    const buffer = this.device.createBuffer({ size: cap, usage: STORAGE_USAGE });
    this.deviceBytes += cap;
    return new GpuStorage(buffer, bytes);
  }

  #doomed: GPUBuffer[] = [];

  release(s: GpuStorage, currentBatch: number): void {
    const cap = s.buffer.size;
    if (this.#pooledBytes + cap > this.maxPooledBytes) {
      // Destroying a buffer an unsubmitted command still uses would invalidate the submit.
      if (s.lastBatch >= currentBatch) this.#doomed.push(s.buffer);
      else s.buffer.destroy();
      this.deviceBytes -= cap;
      return;
    }
    this.#lastBatch.set(s.buffer, s.lastBatch);
    let list = this.#free.get(cap);
    if (!list) this.#free.set(cap, list = []);
    list.push(s.buffer);
    this.#since.set(s.buffer, performance.now());
    this.#pooledBytes += cap;
  }

  /** Destroys a buffer that is not pooled (a uniform block) once the open batch no longer uses it. */
  retire(buffer: GPUBuffer): void {
    this.#doomed.push(buffer);
  }

  /**
   * Called after a batch is submitted: buffers waiting on it may now be destroyed, and so
   * may pooled buffers idle for longer than `maxAgeMs` (no unsubmitted command uses them).
   */
  afterSubmit(): void {
    for (const b of this.#doomed) b.destroy();
    this.#doomed = [];
    const now = performance.now();
    for (const [b, at] of this.#since) {
      if (now - at <= this.maxAgeMs) break;
      const list = this.#free.get(b.size)!;
      list.splice(list.indexOf(b), 1);
      this.#since.delete(b);
      this.#pooledBytes -= b.size;
      this.deviceBytes -= b.size;
      b.destroy();
    }
  }

  /** Pooled buffers and their bytes. */
  stats(): { entries: number; bytes: number } {
    return { entries: this.#since.size, bytes: this.#pooledBytes };
  }

  /** Destroys every pooled buffer. */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.deviceBytes -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
    this.#since.clear();
    this.#pooledBytes = 0;
  }
}
