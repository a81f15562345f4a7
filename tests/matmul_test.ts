/**
 * matmul and dot on every backend, checked against a plain-JS f64 reference written here.
 *
 * Tolerances. Inputs are f32 values, so the reference (f64 sums of exact products) is
 * within ~1e-16 relative of the true product. A backend summing K products in precision u
 * (f32: u = 2^-24 ≈ 6e-8; f64: 1.1e-16) has error at most K·u·Σ|a_ik·b_kj| in the worst
 * case and about sqrt(K)·u·Σ|a_ik·b_kj| for rounding errors of random sign (Higham,
 * "Accuracy and Stability", §3.1 and the probabilistic bound of Higham & Mary 2019). We
 * check |got − ref| ≤ 4·sqrt(K)·u·Σ_k|a_ik·b_kj| + u·|ref| per entry (the last term is the
 * final rounding of a result accumulated in higher precision, as the CPU f32 kernel does).
 * The factor 4 leaves room for the probabilistic bound's constant; a wrong entry, a dropped
 * term or a lost K-chunk is off by far more than that. Tests on small-integer data need no
 * tolerance at all: every partial sum is an integer below 2^24, so every order of summation
 * is exact in f32.
 */
import assert from "node:assert/strict";
import { dot, matmul, type Tensor, tensor } from "../mod.ts";
import { assertClose, type Backend, randArray, rng, testAll } from "./helpers.ts";

const U = { f32: 2 ** -24, f64: 2 ** -53 };

function sizeRef(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** NumPy-semantics matmul on ranks >= 2 with broadcast batch dims: values and Σ|products|. */
function matmulRef(
  a: ArrayLike<number>,
  aShape: number[],
  b: ArrayLike<number>,
  bShape: number[],
) {
  const m = aShape[aShape.length - 2], k = aShape[aShape.length - 1];
  const n = bShape[bShape.length - 1];
  assert.equal(bShape[bShape.length - 2], k);
  const ab = aShape.slice(0, -2), bb = bShape.slice(0, -2);
  const r = Math.max(ab.length, bb.length);
  const pa = [...Array(r - ab.length).fill(1), ...ab],
    pb = [...Array(r - bb.length).fill(1), ...bb];
  const batch = pa.map((d, i) => Math.max(d, pb[i]));
  const nb = sizeRef(batch);
  const out = new Float64Array(nb * m * n), mag = new Float64Array(nb * m * n);
  for (let t = 0; t < nb; t++) {
    // unravel t over batch, then index each operand's (broadcast) batch
    let rem = t, ia = 0, ib = 0, sa = 1, sb = 1;
    for (let d = r - 1; d >= 0; d--) {
      const q = rem % batch[d];
      rem = Math.floor(rem / batch[d]);
      ia += (pa[d] === 1 ? 0 : q) * sa;
      ib += (pb[d] === 1 ? 0 : q) * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0, s1 = 0;
        for (let p = 0; p < k; p++) {
          const v = a[ia * m * k + i * k + p] * b[ib * k * n + p * n + j];
          s += v;
          s1 += Math.abs(v);
        }
        out[t * m * n + i * n + j] = s;
        mag[t * m * n + i * n + j] = s1;
      }
    }
  }
  return { out, mag, shape: [...batch, m, n] };
}

function mk(b: Backend, data: ArrayLike<number>, shape: readonly number[]): Tensor {
  return tensor(Float64Array.from(data), { shape, dtype: b.dtype, device: b.dev });
}

/** Checks each entry against the K-dependent bound described at the top of the file. */
async function expectMatmul(
  b: Backend,
  t: Tensor,
  ref: { out: Float64Array; mag: Float64Array; shape: number[] },
  k: number,
  msg: string,
) {
  assert.deepEqual([...t.shape], ref.shape, `${msg}: shape`);
  const got = await t.data();
  assert.equal(got.length, ref.out.length, `${msg}: length`);
  const u = U[b.dtype];
  for (let i = 0; i < got.length; i++) {
    const tol = 4 * Math.sqrt(Math.max(k, 1)) * u * ref.mag[i] + u * Math.abs(ref.out[i]);
    const err = Math.abs(got[i] - ref.out[i]);
    if (!(err <= tol)) {
      throw new Error(
        `${msg}: entry ${i} is ${got[i]}, expected ${ref.out[i]} (|diff| ${err}, bound ${tol})`,
      );
    }
  }
}

function intArray(n: number, seed: number, lo = -2, hi = 2): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => lo + Math.floor((hi - lo + 1) * r()));
}

testAll("matmul: 2-D, hand-checked and random", async (b) => {
  const a = mk(b, [1, 2, 3, 4, 5, 6], [2, 3]);
  const c = mk(b, [7, 8, 9, 10, 11, 12], [3, 2]);
  const y = matmul(a, c);
  // [[1·7+2·9+3·11, 1·8+2·10+3·12], [4·7+5·9+6·11, 4·8+5·10+6·12]]
  assertClose(await y.data(), [58, 64, 139, 154], { rtol: 0 });
  assert.deepEqual([...y.shape], [2, 2]);
  for (const t of [a, c, y]) t.dispose();
  for (const [m, k, n] of [[5, 7, 3], [16, 16, 16], [33, 20, 31]]) {
    const ad = randArray(m * k, m), bd = randArray(k * n, n);
    const x = mk(b, ad, [m, k]), w = mk(b, bd, [k, n]);
    const z = x.matmul(w);
    await expectMatmul(b, z, matmulRef(ad, [m, k], bd, [k, n]), k, `matmul ${m}x${k}x${n}`);
    for (const t of [x, w, z]) t.dispose();
  }
});

testAll("matmul: odd sizes 1x1, 1xK, 17x33 @ 33x5", async (b) => {
  const cases: [number[], number[]][] = [
    [[1, 1], [1, 1]],
    [[1, 40], [40, 1]],
    [[40, 1], [1, 40]],
    [[17, 33], [33, 5]],
    [[3, 0], [0, 4]],
    [[0, 3], [3, 2]],
  ];
  for (const [as, bs] of cases) {
    const ad = randArray(sizeRef(as), 3), bd = randArray(sizeRef(bs), 4);
    const x = mk(b, ad, as), w = mk(b, bd, bs);
    const z = matmul(x, w);
    await expectMatmul(b, z, matmulRef(ad, as, bd, bs), as[1], `matmul ${as} @ ${bs}`);
    for (const t of [x, w, z]) t.dispose();
  }
});

testAll("matmul: batched, with broadcast batch dims", async (b) => {
  const cases: [number[], number[]][] = [
    [[2, 1, 3, 4], [5, 4, 6]],
    [[3, 2, 5], [3, 5, 4]],
    [[4, 3], [2, 3, 5]],
    [[2, 3, 4], [4, 2]],
    [[1, 3, 2, 4], [2, 1, 4, 3]],
  ];
  for (const [as, bs] of cases) {
    const ad = randArray(sizeRef(as), 5), bd = randArray(sizeRef(bs), 6);
    const x = mk(b, ad, as), w = mk(b, bd, bs);
    const z = matmul(x, w);
    const ref = matmulRef(ad, as, bd, bs);
    await expectMatmul(b, z, ref, as[as.length - 1], `matmul ${as} @ ${bs}`);
    for (const t of [x, w, z]) t.dispose();
  }
  // the shapes NumPy gives
  const x = mk(b, randArray(24, 7), [2, 1, 3, 4]), w = mk(b, randArray(120, 8), [5, 4, 6]);
  const z = matmul(x, w);
  assert.deepEqual([...z.shape], [2, 5, 3, 6]);
  for (const t of [x, w, z]) t.dispose();
});

testAll("matmul: 1-D operands are promoted and the axis dropped; dot", async (b) => {
  const vd = randArray(7, 9), md = randArray(7 * 4, 10), m2 = randArray(4 * 7, 11);
  const v = mk(b, vd, [7]), M = mk(b, md, [7, 4]), N = mk(b, m2, [4, 7]);
  // vector @ matrix -> [4]
  const vm = matmul(v, M);
  const r1 = matmulRef(vd, [1, 7], md, [7, 4]);
  await expectMatmul(b, vm, { ...r1, shape: [4] }, 7, "vector @ matrix");
  // matrix @ vector -> [4]
  const mv = matmul(N, v);
  const r2 = matmulRef(m2, [4, 7], vd, [7, 1]);
  await expectMatmul(b, mv, { ...r2, shape: [4] }, 7, "matrix @ vector");
  // vector @ vector -> scalar, via matmul and via dot
  const w = mk(b, md.subarray(0, 7), [7]);
  const r3 = matmulRef(vd, [1, 7], md.subarray(0, 7), [7, 1]);
  const vv = matmul(v, w);
  await expectMatmul(b, vv, { ...r3, shape: [] }, 7, "vector @ vector");
  const d = dot(v, w);
  await expectMatmul(b, d, { ...r3, shape: [] }, 7, "dot");
  // batched matrix @ vector -> [3, 4]
  const bd = randArray(3 * 4 * 7, 12);
  const B = mk(b, bd, [3, 4, 7]);
  const bv = matmul(B, v);
  const r4 = matmulRef(bd, [3, 4, 7], vd, [7, 1]);
  await expectMatmul(b, bv, { ...r4, shape: [3, 4] }, 7, "batched matrix @ vector");
  // vector @ batched matrix -> [3, 7]
  const vb = matmul(mk(b, vd.subarray(0, 4), [4]), B);
  const r5 = matmulRef(vd.subarray(0, 4), [1, 4], bd, [3, 4, 7]);
  await expectMatmul(b, vb, { ...r5, shape: [3, 7] }, 4, "vector @ batched matrix");
  // dot of matrices is matmul
  const dm = dot(N, M);
  await expectMatmul(b, dm, matmulRef(m2, [4, 7], md, [7, 4]), 7, "dot of matrices");
  for (const t of [v, M, N, vm, mv, w, vv, d, B, bv, vb, dm]) t.dispose();
});

testAll("matmul: K = 70,000 (split-K on WebGPU; > 65,535 loop iterations)", async (b) => {
  const k = 70_000;
  // small integers: every partial sum is an exact integer, so the answer must be exact
  const ai = intArray(2 * k, 13), bi = intArray(k * 3, 14);
  const x = mk(b, ai, [2, k]), w = mk(b, bi, [k, 3]);
  const z = matmul(x, w);
  const ref = matmulRef(ai, [2, k], bi, [k, 3]);
  assertClose(await z.data(), ref.out, { rtol: 0, msg: "integer data, K = 70,000" });
  // positive data: a dropped chunk of K cannot cancel out
  const ap = randArray(2 * k, 15, 0, 1), bp = randArray(k * 3, 16, 0, 1);
  const xp = mk(b, ap, [2, k]), wp = mk(b, bp, [k, 3]);
  const zp = matmul(xp, wp);
  await expectMatmul(b, zp, matmulRef(ap, [2, k], bp, [k, 3]), k, "positive data, K = 70,000");
  // signed data
  const as = randArray(2 * k, 17), bs = randArray(k * 3, 18);
  const xs = mk(b, as, [2, k]), ws = mk(b, bs, [k, 3]);
  const zs = matmul(xs, ws);
  await expectMatmul(b, zs, matmulRef(as, [2, k], bs, [k, 3]), k, "signed data, K = 70,000");
  // a batch of two with K just over one split (4,097) and one over several
  for (const kk of [4097, 12_289]) {
    const ad = randArray(2 * 3 * kk, 19), bd = randArray(kk * 5, 20);
    const xa = mk(b, ad, [2, 3, kk]), wb = mk(b, bd, [kk, 5]);
    const zb = matmul(xa, wb);
    await expectMatmul(b, zb, matmulRef(ad, [2, 3, kk], bd, [kk, 5]), kk, `batched, K = ${kk}`);
    for (const t of [xa, wb, zb]) t.dispose();
  }
  for (const t of [x, w, z, xp, wp, zp, xs, ws, zs]) t.dispose();
});

testAll(
  "matmul: K = 1,100,000 (a 16-wide tiled loop over K would pass 65,535 steps)",
  async (b) => {
    // The WebGPU kernel steps through K 16 at a time, so one invocation looping over all of K
    // would need K / 16 > 65,535 iterations here: lavapipe would silently stop it.
    const k = 1_100_000;
    const ai = intArray(k, 23), bi = intArray(k * 2, 24);
    const x = mk(b, ai, [1, k]), w = mk(b, bi, [k, 2]);
    const z = matmul(x, w);
    const ref = matmulRef(ai, [1, k], bi, [k, 2]);
    // |partial sums| <= 4·K < 2^24: exact in f32 in any order
    assertClose(await z.data(), ref.out, { rtol: 0, msg: "integer data, K = 1,100,000" });
    for (const t of [x, w, z]) t.dispose();
  },
);

testAll("matmul: 512 x 512", async (b) => {
  const n = 512;
  const ad = randArray(n * n, 21), bd = randArray(n * n, 22);
  const x = mk(b, ad, [n, n]), w = mk(b, bd, [n, n]);
  const z = matmul(x, w);
  await expectMatmul(b, z, matmulRef(ad, [n, n], bd, [n, n]), n, "512x512");
  for (const t of [x, w, z]) t.dispose();
});

testAll("matmul: NaN and Inf propagate as IEEE says (0·Inf = NaN)", async (b) => {
  const inf = Infinity;
  const a = mk(b, [0, 1, 1, 1, NaN, 0], [3, 2]);
  const c = mk(b, [inf, 0, 1, 1], [2, 2]);
  const y = matmul(a, c);
  // row 0: [0·Inf + 1·1, 0·0 + 1·1] = [NaN, 1]; row 1: [Inf + 1, 0 + 1] = [Inf, 1];
  // row 2: [NaN·Inf + 0, NaN·0 + 0] = [NaN, NaN]
  assertClose(await y.data(), [NaN, 1, inf, 1, NaN, NaN], { rtol: 0, msg: "NaN/Inf" });
  // -Inf + Inf = NaN, and Inf survives large matrices / split-K
  const k = 5000;
  const ad = new Float64Array(2 * k).fill(1), bd = new Float64Array(k * 2).fill(1);
  ad[4500] = inf; // row 0, column 4500 (second K chunk on WebGPU)
  ad[k + 10] = -inf;
  ad[k + 4999] = inf; // row 1 has -Inf and +Inf: their products sum to NaN
  bd[4500 * 2 + 1] = 0; // b[4500, 1] = 0: row 0, column 1 gets Inf·0 = NaN
  const x = mk(b, ad, [2, k]), w = mk(b, bd, [k, 2]);
  const z = matmul(x, w);
  assertClose(await z.data(), [inf, NaN, NaN, NaN], { rtol: 0, msg: "Inf with split K" });
  for (const t of [a, c, y, x, w, z]) t.dispose();
});
