/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), the
 * counter-based generator behind `uniform`, `normal` and `rademacher`. `shaders/random.wgsl`
 * implements the same function; both map words to numbers with the same formulas, so f32
 * uniform and Rademacher draws are bit-identical on the CPU and WebGPU.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32s, using only 32-bit-safe steps (as WGSL must). */
export function mulhi32(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const t = ah * bl + ((al * bl) >>> 16);
  const w1 = (t & 0xffff) + al * bh;
  return (ah * bh + Math.floor(t / 65536) + Math.floor(w1 / 65536)) >>> 0;
}

/** Philox4x32 with 10 rounds; writes four u32 words into `out`. */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/** Splits a seed (a safe non-negative integer) into the two key words. */
export function seedKey(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

const TWO_M24 = 1 / 16777216;
const TWO_M53 = 1 / 9007199254740992;

/** Uniform in [0, 1) from words: 24 bits for f32, 53 bits for f64. */
export function wordsToUniform(w0: number, w1: number, f64: boolean): number {
  return f64 ? ((w0 >>> 5) * 67108864 + (w1 >>> 6)) * TWO_M53 : (w0 >>> 8) * TWO_M24;
}

/**
 * Standard normal by Box–Muller (cosine branch) from two 24-bit uniforms of one draw, in
 * every dtype: a seed then gives the same normals in f32 and f64 (f64 is the same value
 * unrounded; |z| < 5.8). 53-bit uniforms for f64 would make them different numbers.
 */
export function wordsToNormal(w: Uint32Array): number {
  const u1 = ((w[0] >>> 8) + 1) * TWO_M24;
  const u2 = (w[1] >>> 8) * TWO_M24;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
