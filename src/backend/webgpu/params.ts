import { SLOT } from "./runtime.ts";

/**
 * Builds a kernel's uniform block following WGSL's layout rules: scalars at 4-byte
 * alignment, `array<vec4<u32|i32>, 2>` (a rank-8 shape or stride list) at 16.
 * Fields must be written in the order the WGSL struct declares them.
 */
export class Params {
  #view = new DataView(new ArrayBuffer(SLOT));
  #at = 0;

  u32(v: number): this {
    this.#align(4);
    this.#view.setUint32(this.#at, v >>> 0, true);
    this.#at += 4;
    return this;
  }
  i32(v: number): this {
    this.#align(4);
    this.#view.setInt32(this.#at, v, true);
    this.#at += 4;
    return this;
  }
  f32(v: number): this {
    this.#align(4);
    this.#view.setFloat32(this.#at, v, true);
    this.#at += 4;
    return this;
  }
  /** Eight entries as `array<vec4<u32>, 2>` (unused entries are 0). */
  u32x8(vs: readonly number[]): this {
    this.#align(16);
    for (let i = 0; i < 8; i++) this.#view.setUint32(this.#at + 4 * i, (vs[i] ?? 0) >>> 0, true);
    this.#at += 32;
    return this;
  }
  /** Eight entries as `array<vec4<i32>, 2>`. */
  i32x8(vs: readonly number[]): this {
    this.#align(16);
    for (let i = 0; i < 8; i++) this.#view.setInt32(this.#at + 4 * i, vs[i] ?? 0, true);
    this.#at += 32;
    return this;
  }
  /** Generated uniform slots (`v: array<vec4u, N>`), 16-byte aligned, after the fixed fields. */
  slots(vs: readonly number[]): this {
    this.#align(16);
    if (this.#at + 4 * vs.length > SLOT) {
      throw new RangeError(`internal: ${vs.length} uniform slots overflow the ${SLOT}-byte block`);
    }
    for (const v of vs) {
      this.#view.setUint32(this.#at, v >>> 0, true);
      this.#at += 4;
    }
    return this;
  }
  #align(a: number): void {
    this.#at = Math.ceil(this.#at / a) * a;
  }
  get buffer(): ArrayBuffer {
    return this.#view.buffer.slice(0, Math.max(16, Math.ceil(this.#at / 16) * 16)) as ArrayBuffer;
  }
}
