/**
 * choleskyBanded and solveBanded (scipy.linalg.cholesky_banded / solveh_banded semantics)
 * on every backend, against references written here: a dense f64 Gaussian elimination with
 * partial pivoting, a banded Gaussian elimination without pivoting (f64, not Cholesky) for
 * large n, residuals ‖A x − r‖, and matrices built as A = L Lᵀ from a known integer L, so
 * the exact Cholesky factor is known in advance.
 *
 * Band storage as LAPACK: upper ab[b + i − j][j] = A[i][j] (i ≤ j), lower ab[i − j][j] =
 * A[i][j] (i ≥ j). The corners outside the matrix hold NaN in these tests, so any kernel
 * that read them would show it.
 */
import assert from "node:assert/strict";
import { choleskyBanded, memory, solveBanded, type Tensor, tensor } from "../mod.ts";
import {
  assertNoLeak,
  type Backend,
  cpu,
  expectKernelError,
  gpuDev,
  rng,
  testAll,
} from "./helpers.ts";
import { MAX_GPU_BANDWIDTH } from "../src/backend/webgpu/band_limits.ts";
import { partitionPlan } from "../src/backend/webgpu/band_partition.ts";

// ---------------------------------------------------------------- band matrices (f64)

/**
 * A symmetric band matrix by diagonals: d[k][j] = A[j − k][j] = A[j][j − k] for j ≥ k
 * (d[k][j] for j < k is unused).
 */
interface Band {
  n: number;
  b: number;
  d: Float64Array[];
}

/** Random, diagonally dominant by a margin of at least 1 (so λ_min ≥ 1); values are f32. */
function dominantBand(n: number, b: number, seed: number): Band {
  const r = rng(seed);
  const d = Array.from({ length: b + 1 }, () => new Float64Array(n));
  for (let k = 1; k <= b; k++) for (let j = k; j < n; j++) d[k][j] = Math.fround(2 * r() - 1);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let k = 1; k <= b; k++) {
      if (i + k < n) off += Math.abs(d[k][i + k]);
      if (i >= k) off += Math.abs(d[k][i]);
    }
    d[0][i] = Math.fround(1 + r() + off);
  }
  return { n, b, d };
}

/**
 * A = L Lᵀ for a random lower banded integer L (diagonal 2…4, below it −1, 0 or 1): the
 * entries of A are small integers, exact in f32, and its Cholesky factor is exactly L.
 * Returns A and L (L by diagonals: l[k][j] = L[j + k][j]).
 */
function factoredBand(n: number, b: number, seed: number): { band: Band; l: Float64Array[] } {
  const r = rng(seed);
  const l = Array.from({ length: b + 1 }, () => new Float64Array(n));
  for (let j = 0; j < n; j++) {
    l[0][j] = 2 + Math.floor(3 * r());
    for (let k = 1; k <= b && j + k < n; k++) l[k][j] = Math.floor(3 * r()) - 1;
  }
  const L = (i: number, j: number) => (i >= j && i - j <= b ? l[i - j][j] : 0);
  const d = Array.from({ length: b + 1 }, () => new Float64Array(n));
  for (let k = 0; k <= b; k++) {
    for (let j = k; j < n; j++) {
      let s = 0; // A[j − k][j] = Σ_c L[j − k][c] L[j][c]
      for (let c = Math.max(0, j - b); c <= j - k; c++) s += L(j - k, c) * L(j, c);
      d[k][j] = s;
    }
  }
  return { band: { n, b, d }, l };
}

/** LAPACK band storage [b+1, n] of `band`, corners set to `corner`. */
function storage(band: Band, lower: boolean, corner = NaN): Float64Array {
  const { n, b, d } = band;
  const ab = new Float64Array((b + 1) * n).fill(corner);
  for (let k = 0; k <= b; k++) {
    for (let j = k; j < n; j++) {
      if (lower) ab[k * n + j - k] = d[k][j];
      else ab[(b - k) * n + j] = d[k][j];
    }
  }
  return ab;
}

function dense(band: Band): Float64Array {
  const { n, b, d } = band;
  const A = new Float64Array(n * n);
  for (let k = 0; k <= b; k++) {
    for (let j = k; j < n; j++) A[(j - k) * n + j] = A[j * n + j - k] = d[k][j];
  }
  return A;
}

/** A X for X [n, m] row-major, in f64. */
function matmulBand(band: Band, x: ArrayLike<number>, m: number): Float64Array {
  const { n, b, d } = band;
  const y = new Float64Array(n * m);
  for (let j = 0; j < n; j++) {
    for (let c = 0; c < m; c++) y[j * m + c] += d[0][j] * x[j * m + c];
    for (let k = 1; k <= b && k <= j; k++) {
      for (let c = 0; c < m; c++) {
        y[(j - k) * m + c] += d[k][j] * x[j * m + c];
        y[j * m + c] += d[k][j] * x[(j - k) * m + c];
      }
    }
  }
  return y;
}

/** Solves A X = R ([n, m]) by dense Gaussian elimination with partial pivoting, in f64. */
function denseSolve(A0: Float64Array, n: number, R: ArrayLike<number>, m: number): Float64Array {
  const A = A0.slice();
  const X = Float64Array.from(R);
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(A[i * n + k]) > Math.abs(A[p * n + k])) p = i;
    for (let j = 0; j < n; j++) [A[k * n + j], A[p * n + j]] = [A[p * n + j], A[k * n + j]];
    for (let c = 0; c < m; c++) [X[k * m + c], X[p * m + c]] = [X[p * m + c], X[k * m + c]];
    for (let i = k + 1; i < n; i++) {
      const f = A[i * n + k] / A[k * n + k];
      for (let j = k; j < n; j++) A[i * n + j] -= f * A[k * n + j];
      for (let c = 0; c < m; c++) X[i * m + c] -= f * X[k * m + c];
    }
  }
  for (let k = n - 1; k >= 0; k--) {
    for (let c = 0; c < m; c++) {
      let s = X[k * m + c];
      for (let j = k + 1; j < n; j++) s -= A[k * n + j] * X[j * m + c];
      X[k * m + c] = s / A[k * n + k];
    }
  }
  return X;
}

/**
 * Solves A x = r by banded Gaussian elimination without pivoting (stable for the
 * diagonally dominant matrices it is used on), in f64: O(n b²), an elimination, not a
 * Cholesky factorisation, so it shares no code path or arithmetic order with the solver.
 */
function bandGaussSolve(band: Band, r: ArrayLike<number>): Float64Array {
  const { n, b, d } = band;
  const w = 2 * b + 1; // row i holds columns i − b … i + b at M[i * w + (col − i + b)]
  const M = new Float64Array(n * w);
  for (let k = 0; k <= b; k++) {
    for (let j = k; j < n; j++) {
      M[(j - k) * w + k + b] = d[k][j]; // A[j − k][j]
      M[j * w - k + b] = d[k][j]; // A[j][j − k]
    }
  }
  const x = Float64Array.from(r);
  for (let k = 0; k < n; k++) {
    const piv = M[k * w + b];
    for (let i = k + 1; i <= Math.min(n - 1, k + b); i++) {
      const f = M[i * w + k - i + b] / piv;
      for (let j = k; j <= Math.min(n - 1, k + b); j++) {
        M[i * w + j - i + b] -= f * M[k * w + j - k + b];
      }
      x[i] -= f * x[k];
    }
  }
  for (let k = n - 1; k >= 0; k--) {
    let s = x[k];
    for (let j = k + 1; j <= Math.min(n - 1, k + b); j++) s -= M[k * w + j - k + b] * x[j];
    x[k] = s / M[k * w + b];
  }
  return x;
}

function randomRhs(len: number, seed: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: len }, () => Math.fround(2 * r() - 1));
}

// ---------------------------------------------------------------- checks

/**
 * Tolerances, norm-wise: max |x − x_ref| ≤ tol · max |x_ref|.
 * - cpu-f64: the test matrices have κ(A) ≤ 2 + 4b (diagonally dominant by ≥ 1 with
 *   off-diagonals in [−1, 1]; or the κ ≈ 30 matrices below); Cholesky is backward stable,
 *   so the error is a few ulps times κ: 1e-12.
 * - cpu-f32: computed in f64 and rounded once, so half an f32 ulp (6e-8) of each entry: 2e-7.
 * - webgpu-f32: f32 arithmetic throughout: backward error ≈ (b + 1)·eps₃₂ per row and
 *   κ ≤ 2 + 4b, so ≲ (b + 1)(2 + 4b)·6e-8, which is ≤ 1.2e-5 for b ≤ 6: 2e-5, or that bound
 *   for wider bands.
 */
function tolOf(bk: Backend, b = 0): number {
  if (bk.name === "cpu-f64") return 1e-12;
  if (bk.name === "cpu-f32") return 2e-7;
  return Math.max(2e-5, (b + 1) * (2 + 4 * b) * 6e-8);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function assertNormClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  msg: string,
): void {
  assert.equal(actual.length, expected.length, `${msg}: length`);
  let worst = 0, at = 0;
  for (let i = 0; i < actual.length; i++) {
    const e = Math.abs(actual[i] - expected[i]);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  const scale = maxAbs(expected);
  assert.ok(
    worst <= tol * scale,
    `${msg}: entry ${at} is ${actual[at]}, expected ${expected[at]} ` +
      `(max error ${worst.toExponential(3)} > ${tol} · max|x| = ${(tol * scale).toExponential(3)})`,
  );
}

/** ‖A x − r‖∞ ≤ tol · ‖A‖∞ ‖x‖∞ (the backward error, independent of κ). */
function assertResidual(
  band: Band,
  x: ArrayLike<number>,
  r: ArrayLike<number>,
  m: number,
  tol: number,
  msg: string,
): void {
  const ax = matmulBand(band, x, m);
  let res = 0;
  for (let i = 0; i < ax.length; i++) res = Math.max(res, Math.abs(ax[i] - r[i]));
  let normA = 0;
  for (let i = 0; i < band.n; i++) {
    let s = Math.abs(band.d[0][i]);
    for (let k = 1; k <= band.b; k++) {
      if (i + k < band.n) s += Math.abs(band.d[k][i + k]);
      if (i >= k) s += Math.abs(band.d[k][i]);
    }
    normA = Math.max(normA, s);
  }
  const bound = tol * normA * maxAbs(x);
  assert.ok(res <= bound, `${msg}: residual ${res.toExponential(3)} > ${bound.toExponential(3)}`);
}

const mk = (bk: Backend, data: Float64Array, shape: number[]): Tensor =>
  tensor(data, { shape, dtype: bk.dtype, device: bk.dev });

// ---------------------------------------------------------------- solveBanded

testAll("solveBanded matches a dense f64 solve, upper and lower storage", async (bk) => {
  // n = 1; b = 0 (diagonal); b = 1, 2 (specialised CPU paths); b = 3…16 (unrolled on the
  // CPU); b = 17 (the CPU's general loop); b = n − 1 (dense)
  const cases = [[1, 0], [7, 0], [9, 1], [12, 2], [20, 3], [33, 5], [6, 5], [40, 6], [17, 16]];
  cases.push([45, 16], [45, 17]);
  for (const [n, b] of cases) {
    const band = dominantBand(n, b, 11 + n * 7 + b);
    const r = randomRhs(n, 5 + n);
    const ref = denseSolve(dense(band), n, r, 1);
    const tol = tolOf(bk, b);
    for (const lower of [false, true]) {
      const x = await solveBanded(mk(bk, storage(band, lower), [b + 1, n]), mk(bk, r, [n]), {
        lower,
      }).data();
      const what = `n=${n} b=${b} ${lower ? "lower" : "upper"}`;
      assertNormClose(x, ref, tol, what);
      assertResidual(band, x, r, 1, 4 * tol, what);
    }
  }
});

testAll("solveBanded: upper and lower storage of one matrix give the same numbers", async (bk) => {
  for (const b of [0, 1, 2, 4]) {
    const n = 25;
    const band = dominantBand(n, b, 99 + b);
    const r = mk(bk, randomRhs(n * 2, 3), [n, 2]);
    const up = await solveBanded(mk(bk, storage(band, false), [b + 1, n]), r).data();
    const lo = await solveBanded(mk(bk, storage(band, true), [b + 1, n]), r, { lower: true })
      .data();
    // the same entries reach the same arithmetic in the same order
    assert.deepEqual(lo, up, `b=${b}`);
  }
});

testAll("solveBanded: several right-hand sides at once", async (bk) => {
  const tol = tolOf(bk);
  for (const [n, b, m] of [[15, 1, 3], [30, 2, 4], [18, 4, 2], [10, 0, 5]]) {
    const band = dominantBand(n, b, 7 * n + b);
    const R = randomRhs(n * m, n + m);
    const ref = denseSolve(dense(band), n, R, m);
    const ab = mk(bk, storage(band, false), [b + 1, n]);
    const X = await solveBanded(ab, mk(bk, R, [n, m])).data();
    assertNormClose(X, ref, tol, `n=${n} b=${b} m=${m}`);
    assertResidual(band, X, R, m, 4 * tol, `n=${n} b=${b} m=${m}`);
    // column c alone gives column c of the block solve
    for (let c = 0; c < m; c++) {
      const rc = Float64Array.from({ length: n }, (_, i) => R[i * m + c]);
      const xc = await solveBanded(ab, mk(bk, rc, [n])).data();
      const want = Float64Array.from({ length: n }, (_, i) => X[i * m + c]);
      assertNormClose(xc, want, tol, `column ${c}`);
    }
  }
});

testAll("solveBanded: a batch equals the systems solved one by one", async (bk) => {
  const tol = tolOf(bk);
  const batch = 5, n = 21, b = 3, m = 2;
  const bands = Array.from({ length: batch }, (_, t) => dominantBand(n, b, 400 + t));
  for (const lower of [false, true]) {
    const ab = new Float64Array(batch * (b + 1) * n);
    bands.forEach((band, t) => ab.set(storage(band, lower), t * (b + 1) * n));
    const abT = mk(bk, ab, [batch, b + 1, n]);
    for (const cols of [0, m]) {
      const k = Math.max(1, cols);
      const R = randomRhs(batch * n * k, 77 + cols);
      const X = await solveBanded(abT, mk(bk, R, cols ? [batch, n, cols] : [batch, n]), { lower })
        .data();
      for (let t = 0; t < batch; t++) {
        const rt = R.subarray(t * n * k, (t + 1) * n * k);
        const one = await solveBanded(
          mk(bk, storage(bands[t], lower), [b + 1, n]),
          mk(bk, Float64Array.from(rt), cols ? [n, cols] : [n]),
          { lower },
        ).data();
        const xt = X.subarray(t * n * k, (t + 1) * n * k);
        assertNormClose(xt, one, tol, `system ${t} (${lower ? "lower" : "upper"}, m=${cols})`);
        assertNormClose(xt, denseSolve(dense(bands[t]), n, rt, k), tol, `system ${t} vs dense`);
      }
    }
  }
});

testAll("solveBanded: SPD but not diagonally dominant matrices", async (bk) => {
  // A = L Lᵀ with integer L (diagonal 2…4, off-diagonal −1…1): rows of A are not
  // dominated by their diagonal, yet A is SPD. κ(A) ≤ 40 for these seeds (checked below
  // through the solution's size), so the dominant-case tolerances hold with a factor 2.
  const tol = 2 * tolOf(bk);
  for (const [n, b] of [[16, 1], [24, 2], [30, 3]]) {
    const { band } = factoredBand(n, b, 1000 + n);
    const A = dense(band);
    let dominant = true;
    for (let i = 0; i < n; i++) {
      let off = 0;
      for (let j = 0; j < n; j++) if (j !== i) off += Math.abs(A[i * n + j]);
      if (off >= A[i * n + i]) dominant = false;
    }
    assert.ok(!dominant, `n=${n} b=${b}: the test matrix should not be diagonally dominant`);
    const r = randomRhs(n, n);
    const ref = denseSolve(A, n, r, 1);
    assert.ok(maxAbs(ref) < 40 * maxAbs(r), "κ-bound of the test matrix (‖x‖ < 40‖r‖)");
    for (const lower of [false, true]) {
      const x = await solveBanded(mk(bk, storage(band, lower), [b + 1, n]), mk(bk, r, [n]), {
        lower,
      }).data();
      assertNormClose(x, ref, tol, `n=${n} b=${b}`);
    }
  }
});

testAll(
  "solveBanded: b = 0 is a diagonal solve, b = n − 1 a dense one, n = 1 a division",
  async (bk) => {
    const tol = tolOf(bk);
    const diag = dominantBand(9, 0, 5);
    const r = randomRhs(9, 6);
    const x = await solveBanded(mk(bk, storage(diag, false), [1, 9]), mk(bk, r, [9])).data();
    assertNormClose(x, r.map((v, i) => v / diag.d[0][i]), tol, "diagonal");
    const full = dominantBand(8, 7, 8);
    const xf = await solveBanded(
      mk(bk, storage(full, true), [8, 8]),
      mk(bk, r.subarray(0, 8), [8]),
      {
        lower: true,
      },
    ).data();
    assertNormClose(xf, denseSolve(dense(full), 8, r.subarray(0, 8), 1), tol, "dense (b = n − 1)");
    const x1 = await solveBanded(
      mk(bk, new Float64Array([4]), [1, 1]),
      mk(bk, new Float64Array([3]), [1]),
    )
      .data();
    assert.deepEqual([...x1], [0.75]);
  },
);

testAll("solveBanded: the example of SciPy's solveh_banded documentation", async (bk) => {
  // A = [[4, 2, −1, 0, 0, 0], [2, 5, 2, −1, 0, 0], [−1, 2, 6, 2, −1, 0], [0, −1, 2, 7, 2, −1],
  //      [0, 0, −1, 2, 8, 2], [0, 0, 0, −1, 2, 9]] in upper storage, b = [1, 2, 2, 3, 3, 3]
  const ab = new Float64Array([0, 0, -1, -1, -1, -1, 0, 2, 2, 2, 2, 2, 4, 5, 6, 7, 8, 9]);
  const r = new Float64Array([1, 2, 2, 3, 3, 3]);
  const published = [0.03431373, 0.45938375, 0.05602241, 0.47759104, 0.17577031, 0.34733894];
  const band: Band = {
    n: 6,
    b: 2,
    d: [ab.slice(12), ab.slice(6, 12), ab.slice(0, 6)],
  };
  const ref = denseSolve(dense(band), 6, r, 1);
  assertNormClose(ref, published, 2e-8, "the dense reference reproduces SciPy's digits");
  const x = await solveBanded(mk(bk, ab, [3, 6]), mk(bk, r, [6])).data();
  assertNormClose(x, ref, tolOf(bk), "solveBanded");
});

// ---------------------------------------------------------------- choleskyBanded

testAll("choleskyBanded returns the known factor of A = L Lᵀ, in both storages", async (bk) => {
  // L is the exact factor (unique with a positive diagonal). Its entries are integers and
  // the factorisation of these κ ≤ 40 matrices loses at most κ·eps relative to max|L|.
  const tol = bk.name === "cpu-f64" ? 1e-12 : bk.name === "cpu-f32" ? 2e-7 : 4e-5;
  for (const [n, b] of [[1, 0], [10, 0], [13, 1], [17, 2], [23, 3], [9, 8]]) {
    const { band, l } = factoredBand(n, b, 2000 + 31 * n + b);
    for (const lower of [false, true]) {
      const f = await choleskyBanded(mk(bk, storage(band, lower), [b + 1, n]), { lower }).data();
      // expected: U = Lᵀ in upper storage (ab[b − k][j] = U[j − k][j] = L[j][j − k]) or L in
      // lower storage (ab[k][j] = L[j + k][j]), corners 0
      const want = new Float64Array((b + 1) * n);
      for (let k = 0; k <= b; k++) {
        for (let j = k; j < n; j++) {
          if (lower) want[k * n + j - k] = l[k][j - k];
          else want[(b - k) * n + j] = l[k][j - k];
        }
      }
      const what = `n=${n} b=${b} ${lower ? "lower" : "upper"}`;
      assertNormClose(f, want, tol, what);
      // the corners are exactly 0
      for (let k = 1; k <= b; k++) {
        for (let c = 0; c < k; c++) {
          const at = lower ? k * n + n - 1 - c : (b - k) * n + c;
          assert.equal(f[at], 0, `${what}: corner entry ${at}`);
        }
      }
    }
  }
});

testAll(
  "choleskyBanded: the factor reconstructs A (UᵀU and LLᵀ) for random SPD bands",
  async (bk) => {
    const tol = tolOf(bk);
    for (const [n, b] of [[12, 1], [30, 2], [25, 4], [7, 6]]) {
      const band = dominantBand(n, b, 3000 + n + b);
      for (const lower of [false, true]) {
        const f = await choleskyBanded(mk(bk, storage(band, lower), [b + 1, n]), { lower }).data();
        // T[i][j] = entry of the triangular factor: U[i][j] (upper, i ≤ j) or L[i][j] (lower, i ≥ j)
        const T = (i: number, j: number) =>
          lower
            ? (i >= j && i - j <= b ? f[(i - j) * n + j] : 0)
            : (j >= i && j - i <= b ? f[(b + i - j) * n + j] : 0);
        let worst = 0;
        for (let i = 0; i < n; i++) {
          for (let j = Math.max(0, i - b); j <= Math.min(n - 1, i + b); j++) {
            let s = 0; // (UᵀU)[i][j] = Σ U[k][i] U[k][j];  (LLᵀ)[i][j] = Σ L[i][k] L[j][k]
            for (let k = 0; k < n; k++) s += lower ? T(i, k) * T(j, k) : T(k, i) * T(k, j);
            const a = i <= j ? band.d[j - i][j] : band.d[i - j][i];
            worst = Math.max(worst, Math.abs(s - a));
          }
        }
        // backward error of Cholesky: |A − UᵀU| ≲ (b + 1)·eps·‖A‖; ‖A‖ ≤ 2 + 4b here
        const what = `n=${n} b=${b} ${lower ? "lower" : "upper"}`;
        assert.ok(worst <= tol * (2 + 4 * b), `${what}: |A − factor product| = ${worst}`);
      }
    }
  },
);

testAll("choleskyBanded: a batch equals the matrices factored one by one", async (bk) => {
  const batch = 4, n = 19, b = 2;
  const bands = Array.from({ length: batch }, (_, t) => dominantBand(n, b, 500 + t));
  for (const lower of [false, true]) {
    const ab = new Float64Array(batch * (b + 1) * n);
    bands.forEach((band, t) => ab.set(storage(band, lower), t * (b + 1) * n));
    const F = await choleskyBanded(mk(bk, ab, [batch, b + 1, n]), { lower }).data();
    for (let t = 0; t < batch; t++) {
      const one = await choleskyBanded(mk(bk, storage(bands[t], lower), [b + 1, n]), { lower })
        .data();
      assertNormClose(F.subarray(t * (b + 1) * n, (t + 1) * (b + 1) * n), one, tolOf(bk), `${t}`);
    }
  }
});

// ---------------------------------------------------------------- not positive definite

/** Tridiagonal A with diagonal `diag` and off-diagonal 1: minors D₁ = 2, D₂ = 3, D₃ = −1.7. */
function thirdMinorNegative(n: number): Band {
  const d0 = new Float64Array(n).fill(2);
  d0[2] = 0.1; // D₃ = 0.1·D₂ − 1·D₁ = 0.3 − 2 = −1.7
  const d1 = new Float64Array(n).fill(1);
  const band = { n, b: 1, d: [d0, d1] };
  const minors = denseLeadingMinors(dense(band), n);
  assert.ok(minors[0] > 0 && minors[1] > 0 && minors[2] < 0, `leading minors ${minors}`);
  return band;
}

testAll("not positive definite: the error names the failing leading minor", async (bk) => {
  for (const lower of [false, true]) {
    const band = thirdMinorNegative(6);
    const ab = () => mk(bk, storage(band, lower), [2, 6]);
    const rhs = mk(bk, new Float64Array(6).fill(1), [6]);
    const order3 = /solveBanded: the leading minor of order 3 is not positive definite/;
    await expectKernelError(bk, () => solveBanded(ab(), rhs, { lower }), order3);
    await expectKernelError(
      bk,
      () => choleskyBanded(ab(), { lower }),
      /choleskyBanded: the leading minor of order 3 is not positive definite/,
    );
    // with two right-hand sides (another code path) and with b = 3 (the general one)
    const rhs2 = mk(bk, new Float64Array(12).fill(1), [6, 2]);
    await expectKernelError(bk, () => solveBanded(ab(), rhs2, { lower }), order3);
    const wide: Band = { n: 6, b: 3, d: [...band.d, new Float64Array(6), new Float64Array(6)] };
    await expectKernelError(
      bk,
      () => solveBanded(mk(bk, storage(wide, lower), [4, 6]), rhs, { lower }),
      order3,
    );
  }
  // a negative first pivot, a zero one, and a NaN: errors, never NaN results
  for (const [v, order] of [[-1, 1], [0, 1], [NaN, 1]] as const) {
    const ab = mk(bk, new Float64Array([0, 1, v, 2]), [2, 2]);
    await expectKernelError(
      bk,
      () => solveBanded(ab, mk(bk, new Float64Array([1, 1]), [2])),
      new RegExp(`leading minor of order ${order} is`),
    );
  }
  // b = 0 and b = 2 (unrolled paths)
  await expectKernelError(
    bk,
    () =>
      solveBanded(
        mk(bk, new Float64Array([1, 2, -3, 4]), [1, 4]),
        mk(bk, new Float64Array(4), [4]),
      ),
    /leading minor of order 3 is/,
  );
  const penta: Band = {
    n: 5,
    b: 2,
    d: [
      new Float64Array([4, 4, 4, -1, 4]),
      new Float64Array(5).fill(1),
      new Float64Array(5).fill(1),
    ],
  };
  const ref = denseLeadingMinors(dense(penta), 5);
  const firstBad = ref.findIndex((m) => !(m > 0)) + 1;
  assert.equal(firstBad, 4, "the test matrix's first non-positive leading minor is the 4th");
  await expectKernelError(
    bk,
    () => solveBanded(mk(bk, storage(penta, false), [3, 5]), mk(bk, new Float64Array(5), [5])),
    /leading minor of order 4 is/,
  );
});

/** The leading principal minors det A[:k, :k], k = 1…n, by elimination in f64. */
function denseLeadingMinors(A0: Float64Array, n: number): number[] {
  const out: number[] = [];
  for (let k = 1; k <= n; k++) {
    const A = new Float64Array(k * k);
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) A[i * k + j] = A0[i * n + j];
    let det = 1;
    for (let c = 0; c < k; c++) {
      let p = c;
      for (let i = c + 1; i < k; i++) if (Math.abs(A[i * k + c]) > Math.abs(A[p * k + c])) p = i;
      if (A[p * k + c] === 0) {
        det = 0;
        break;
      }
      if (p !== c) {
        det = -det;
        for (let j = 0; j < k; j++) [A[c * k + j], A[p * k + j]] = [A[p * k + j], A[c * k + j]];
      }
      det *= A[c * k + c];
      for (let i = c + 1; i < k; i++) {
        const f = A[i * k + c] / A[c * k + c];
        for (let j = c; j < k; j++) A[i * k + j] -= f * A[c * k + j];
      }
    }
    out.push(det);
  }
  return out;
}

testAll(
  "not positive definite in a batch: the error names the matrix and the minor",
  async (bk) => {
    const n = 6, good = dominantBand(n, 1, 1), bad = thirdMinorNegative(n);
    const ab = new Float64Array(3 * 2 * n);
    ab.set(storage(good, false), 0);
    ab.set(storage(bad, false), 2 * n);
    ab.set(storage(good, false), 4 * n);
    await expectKernelError(
      bk,
      () => solveBanded(mk(bk, ab, [3, 2, n]), mk(bk, new Float64Array(3 * n), [3, n])),
      /solveBanded: the leading minor of order 3 of the matrix at batch index 1 is not positive definite/,
    );
    await expectKernelError(
      bk,
      () => choleskyBanded(mk(bk, ab, [3, 2, n])),
      /choleskyBanded: the leading minor of order 3 of the matrix at batch index 1/,
    );
  },
);

testAll(
  "not positive definite deep inside a long system (past one invocation's loop budget)",
  async (bk) => {
    const n = 70_001, b = 2;
    const band = dominantBand(n, b, 9);
    band.d[0][50_000] = -1; // the first failing minor is of order 50,001
    const ab = mk(bk, storage(band, false), [b + 1, n]);
    const rhs = mk(bk, new Float64Array(n).fill(1), [n]);
    // the CPU reports LAPACK's info; WebGPU solves a long system in partitions
    // (band_partition.ts) and names the block whose pivot fails: the partition's rows up to
    // the bad one (the first failing leading minor needs a sequential pass)
    const { s } = partitionPlan(1, n, b);
    const j0 = Math.floor(50_000 / s) * s;
    assert.ok(50_000 < j0 + s - b, "row 50,000 lies in a partition's interior");
    await expectKernelError(
      bk,
      () => solveBanded(ab, rhs),
      bk.dev.kind === "cpu"
        ? /leading minor of order 50001 is not positive definite/
        : new RegExp(`principal submatrix of rows ${j0} to 50000 is not`),
    );
    // two right-hand sides take the sequential kernels, which find LAPACK's info on WebGPU too
    await expectKernelError(
      bk,
      () => solveBanded(ab, mk(bk, new Float64Array(2 * n).fill(1), [n, 2])),
      /leading minor of order 50001 is not positive definite/,
    );
  },
);

// ---------------------------------------------------------------- large n

/**
 * CPU, n = 10^5 + 3, b = 0…6, upper and lower, against the banded Gaussian elimination.
 * Tolerances as tolOf: the matrices are diagonally dominant by a margin ≥ 1, so errors do
 * not grow with n.
 */
testAll("solveBanded at n = 10^5 + 3 for b = 0…6 (CPU)", async (bk) => {
  const n = 100_003;
  for (let b = 0; b <= 6; b++) {
    const band = dominantBand(n, b, 600 + b);
    const r = randomRhs(n, 700 + b);
    const ref = bandGaussSolve(band, r);
    for (const lower of [false, true]) {
      const x = await solveBanded(mk(bk, storage(band, lower), [b + 1, n]), mk(bk, r, [n]), {
        lower,
      }).data();
      assertNormClose(x, ref, tolOf(bk), `b=${b} ${lower ? "lower" : "upper"}`);
    }
  }
}, ["cpu-f64", "cpu-f32"]);

/**
 * WebGPU past lavapipe's 65,535-iteration loop limit for every b = 0…6: n = 70,001 columns
 * need several dispatches of the factorisation and of each solve at every bandwidth, so a
 * wrong chunk length (a truncated loop) shows as a wrong solution. Tolerance as tolOf.
 */
testAll(
  "solveBanded past the loop limit: n = 70,001, b = 0…6, one and two right-hand sides",
  async (bk) => {
    const n = 70_001;
    for (let b = 0; b <= 6; b++) {
      const band = dominantBand(n, b, 800 + b);
      const lower = b % 2 === 1;
      const m = b === 2 || b === 5 ? 2 : 1;
      const R = randomRhs(n * m, 900 + b);
      const ref = m === 1 ? bandGaussSolve(band, R) : denseColumns(band, R, m);
      const x = await solveBanded(
        mk(bk, storage(band, lower), [b + 1, n]),
        mk(bk, R, m === 1 ? [n] : [n, m]),
        { lower },
      ).data();
      assertNormClose(x, ref, tolOf(bk), `b=${b} m=${m}`);
    }
  },
  ["webgpu-f32"],
);

/** Column by column banded elimination for R [n, m]. */
function denseColumns(band: Band, R: Float64Array, m: number): Float64Array {
  const X = new Float64Array(R.length);
  for (let c = 0; c < m; c++) {
    const xc = bandGaussSolve(band, Float64Array.from({ length: band.n }, (_, i) => R[i * m + c]));
    xc.forEach((v, i) => (X[i * m + c] = v));
  }
  return X;
}

testAll("a batch of long systems past the loop limit (3 × n = 70,001, b = 3)", async (bk) => {
  const batch = 3, n = 70_001, b = 3;
  const bands = Array.from({ length: batch }, (_, t) => dominantBand(n, b, 40 + t));
  const ab = new Float64Array(batch * (b + 1) * n);
  bands.forEach((band, t) => ab.set(storage(band, true), t * (b + 1) * n));
  const R = randomRhs(batch * n, 41);
  const X = await solveBanded(mk(bk, ab, [batch, b + 1, n]), mk(bk, R, [batch, n]), {
    lower: true,
  }).data();
  for (let t = 0; t < batch; t++) {
    const ref = bandGaussSolve(bands[t], R.subarray(t * n, (t + 1) * n));
    assertNormClose(X.subarray(t * n, (t + 1) * n), ref, tolOf(bk), `system ${t}`);
  }
  const F = await choleskyBanded(mk(bk, ab, [batch, b + 1, n]), { lower: true }).data();
  const F0 = await choleskyBanded(mk(bk, storage(bands[2], true), [b + 1, n]), { lower: true })
    .data();
  assertNormClose(F.subarray(2 * (b + 1) * n), F0, tolOf(bk), "factor of system 2");
}, ["webgpu-f32"]);

/**
 * One long system on WebGPU, n = 10^6, b = 2, against the CPU f64 solver (itself checked
 * against independent references above). f32 tolerance: the matrix is diagonally dominant
 * by ≥ 1 (κ ≤ 10), Cholesky's backward error is ≈ (b + 1)·eps₃₂ per row and does not
 * accumulate along the band for such a matrix (the substitutions contract errors by the
 * dominance ratio), so the norm-wise error is ≲ 3 · 10 · 6e-8 ≈ 2e-6: assert 1e-5.
 */
testAll("WebGPU: one system of n = 10^6, b = 2", async (bk) => {
  const n = 1_000_000, b = 2;
  const band = dominantBand(n, b, 12345);
  const r = randomRhs(n, 54321);
  const ab = storage(band, false);
  const ref = await solveBanded(
    tensor(ab, { shape: [b + 1, n], dtype: "f64", device: cpu }),
    tensor(r, { dtype: "f64", device: cpu }),
  ).data();
  const x = await solveBanded(mk(bk, ab, [b + 1, n]), mk(bk, r, [n])).data();
  assertNormClose(x, ref, 1e-5, "n = 10^6");
}, ["webgpu-f32"]);

testAll("a batch of 1,024 systems of n = 1,024, b = 2, against the CPU one by one", async (bk) => {
  const batch = 1024, n = 1024, b = 2;
  const ab = new Float64Array(batch * (b + 1) * n);
  const bands: Band[] = [];
  for (let t = 0; t < batch; t++) {
    bands.push(dominantBand(n, b, 7000 + t));
    ab.set(storage(bands[t], false), t * (b + 1) * n);
  }
  const R = randomRhs(batch * n, 8);
  const X = await solveBanded(mk(bk, ab, [batch, b + 1, n]), mk(bk, R, [batch, n])).data();
  for (const t of [0, 1, 511, 1023]) {
    const ref = bandGaussSolve(bands[t], R.subarray(t * n, (t + 1) * n));
    assertNormClose(X.subarray(t * n, (t + 1) * n), ref, tolOf(bk), `system ${t}`);
  }
  // every system: the residual (backward error) is small
  for (let t = 0; t < batch; t++) {
    const x = X.subarray(t * n, (t + 1) * n), r = R.subarray(t * n, (t + 1) * n);
    assertResidual(bands[t], x, r, 1, 4 * tolOf(bk), `system ${t}`);
  }
}, ["webgpu-f32", "cpu-f32"]);

// ---------------------------------------------------------------- validation

testAll("validation errors name the op and the shapes", (bk) => {
  const z = (shape: number[]) => mk(bk, new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  assert.throws(() => solveBanded(z([4, 3]), z([3])), {
    name: "RangeError",
    message: /solveBanded: ab of shape \[4,3\] has 4 rows, so bandwidth b = 3, but .* n = 3/,
  });
  assert.throws(() => choleskyBanded(z([2, 5, 4])), {
    name: "RangeError",
    message: /choleskyBanded: ab of shape \[2,5,4\] has 5 rows/,
  });
  assert.throws(() => choleskyBanded(z([0, 5])), {
    name: "RangeError",
    message: /choleskyBanded: ab of shape \[0,5\] has no rows/,
  });
  assert.throws(() => choleskyBanded(z([5])), {
    name: "RangeError",
    message: /choleskyBanded: ab must be band storage \[b\+1, n\] .* got shape \[5\]/,
  });
  assert.throws(() => solveBanded(z([2, 5]), z([4])), {
    name: "RangeError",
    message:
      /solveBanded: rhs of shape \[4\] does not match ab of shape \[2,5\].*\[5\] or \[5, m\]/,
  });
  assert.throws(() => solveBanded(z([3, 2, 5]), z([2, 5])), {
    name: "RangeError",
    message: /solveBanded: rhs of shape \[2,5\] does not match ab of shape \[3,2,5\].*\[3, 5\]/,
  });
  assert.throws(() => solveBanded(z([2, 5]), z([5, 2, 1])), { name: "RangeError" });
  const ints = tensor([[0, 1], [2, 2]], { dtype: "i32", device: bk.dev });
  assert.throws(() => choleskyBanded(ints), {
    name: "TypeError",
    message: /choleskyBanded: ab must be a floating-point tensor .* got i32 of shape \[2,2\]/,
  });
  assert.throws(() => solveBanded(z([2, 2]), tensor([1, 2], { dtype: "i32", device: bk.dev })), {
    name: "TypeError",
    message: /solveBanded: rhs must be a floating-point tensor/,
  });
  assert.throws(() => solveBanded(z([2, 2]), [1, 2] as unknown as Tensor), {
    name: "TypeError",
    message: /solveBanded: rhs must be a Tensor/,
  });
});

Deno.test("validation: dtypes and devices must agree; f64 never reaches WebGPU", () => {
  const ab64 = tensor([[0, 1], [2, 2]], { dtype: "f64", device: cpu });
  assert.throws(() => solveBanded(ab64, tensor([1, 1], { dtype: "f32", device: cpu })), {
    name: "TypeError",
    message: /solveBanded: ab is f64 but rhs is f32/,
  });
  const gpu = gpuDev;
  if (!gpu) return;
  assert.throws(
    () => solveBanded(tensor([[0, 1], [2, 2]], { device: cpu }), tensor([1, 1], { device: gpu })),
    { message: /solveBanded: ab is on cpu but rhs is on webgpu/ },
  );
  // WebGPU has no f64 tensors at all: the band cannot even be made there
  assert.throws(() => tensor([[0, 1], [2, 2]], { dtype: "f64", device: gpu }), {
    message: /f64 is not available on WebGPU/,
  });
});

testAll("WebGPU: a band too wide for one invocation's loop budget is refused at the call", (bk) => {
  const b = MAX_GPU_BANDWIDTH + 1, n = b + 1;
  const ab = mk(bk, new Float64Array((b + 1) * n), [b + 1, n]);
  assert.throws(() => choleskyBanded(ab), {
    name: "RangeError",
    message: new RegExp(`choleskyBanded: bandwidth b = ${b} is more than .* limit of ${b - 1}`),
  });
  // the widest allowed band works (checked against the dense solve)
  const w = MAX_GPU_BANDWIDTH, band = dominantBand(w + 1, w, 3);
  const r = randomRhs(w + 1, 4);
  const x = solveBanded(mk(bk, storage(band, false), [w + 1, w + 1]), mk(bk, r, [w + 1]));
  return x.data().then((v) =>
    assertNormClose(v, denseSolve(dense(band), w + 1, r, 1), tolOf(bk, w), "b = max")
  );
}, ["webgpu-f32"]);

testAll("no tensors or bytes are left behind", async (bk) => {
  const band = dominantBand(30, 2, 1);
  const ab = mk(bk, storage(band, true), [3, 30]);
  const r = mk(bk, randomRhs(60, 2), [30, 2]);
  const base = memory();
  for (let k = 0; k < 3; k++) {
    const x = solveBanded(ab, r, { lower: true });
    const f = choleskyBanded(ab, { lower: true });
    await x.data();
    x.dispose();
    f.dispose();
  }
  assertNoLeak(base, "solveBanded / choleskyBanded");
});

testAll("solveBanded and choleskyBanded refuse to be differentiated, clearly", async (bk) => {
  const { grad } = await import("../mod.ts");
  const ab = mk(bk, new Float64Array([0, 1, 2, 2]), [2, 2]);
  const f = (r: Tensor) => solveBanded(ab, r).sum();
  assert.throws(() => grad(f)(mk(bk, new Float64Array([1, 1]), [2])), {
    name: "TypeError",
    message: /solveBanded: rhs is being differentiated .* no derivative rule/,
  });
});
