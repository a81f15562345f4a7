/** Test matrices shared by the banded-solver benchmarks. */

/**
 * Upper band storage [batch, b+1, n] of random diagonally dominant SPD matrices
 * (off-diagonals uniform in [−0.5, 0.5], diagonal 1 + b + uniform [0, 1]), from an
 * xorshift generator seeded by `seed`.
 */
export function spdBand(batch: number, n: number, b: number, seed: number): Float64Array {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const ab = new Float64Array(batch * (b + 1) * n);
  for (let t = 0; t < batch; t++) {
    const base = t * (b + 1) * n;
    for (let r = 0; r < b; r++) for (let j = 0; j < n; j++) ab[base + r * n + j] = rnd() - 0.5;
    for (let j = 0; j < n; j++) ab[base + b * n + j] = 1 + b + rnd();
  }
  return ab;
}
