/**
 * Deterministic test inputs, independent of the library's generator. No Deno API here: the
 * browser suite (tests/browser/) bundles this file too.
 */

/** Deterministic pseudo-random numbers for test inputs (independent of the library's generator). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32 → [0, 1)
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** n values uniform in [lo, hi), rounded to f32 so CPU f32, GPU and f64 references see the same inputs. */
export function randArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.fround(lo + (hi - lo) * r());
  return a;
}
