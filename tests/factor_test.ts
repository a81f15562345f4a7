/**
 * cholesky, choleskySolve and eigh: values against NumPy/LAPACK (pasted from
 * tests/reference/linalg_ref.py, run with /usr/bin/python3) and a textbook Cholesky written
 * here, invariants (A V = V diag(w), VᵀV = I, Σw = tr A, Σw² = ‖A‖²_F) on random matrices of
 * both backends, larger sizes on WebGPU, derivatives by the oracle, the documented behaviour
 * at repeated eigenvalues, batching, and errors.
 */
import assert from "node:assert/strict";
import * as cv from "../mod.ts";
import { type Tensor, tensor } from "../mod.ts";
import { assertClose, type Backend, randArray, testAll } from "./helpers.ts";
import { checkGrads } from "./grad_check.ts";
import { solveDense } from "./dense_ref.ts";

/** NumPy 1.x / LAPACK, float64 (tests/reference/linalg_ref.py). */
const NP: { A: number[][]; w: number[]; V: number[][]; L: number[][]; solve: number[] } = {
  "A": [[4.0, 1.0, -2.0, 0.5, 0.0], [1.0, 3.0, 0.0, 1.0, -1.0], [-2.0, 0.0, 5.0, 0.25, 1.0], [
    0.5,
    1.0,
    0.25,
    2.0,
    0.5,
  ], [0.0, -1.0, 1.0, 0.5, 6.0]],
  "w": [
    1.1673405278275688,
    1.7712211058839007,
    4.05428962304681,
    5.610582679551369,
    7.3965660636903525,
  ],
  "V": [[
    0.13682800574507298,
    0.6736030984690993,
    0.2781690156358529,
    0.5123767140360382,
    -0.433161706791433,
  ], [
    -0.6034897721128463,
    -0.29128365242986365,
    0.7021991359166916,
    -0.03794849626403013,
    -0.2375504450247421,
  ], [
    0.07959807476223679,
    0.49297692234746715,
    0.460203023147203,
    -0.39746160797655494,
    0.6171509930299311,
  ], [
    0.75019755021015,
    -0.4481497435086798,
    0.46661720275977253,
    0.1365006826856168,
    0.0011801554132640502,
  ], [
    -0.21896569126656695,
    -0.13246984934644646,
    0.004464956086221994,
    0.7479450837835505,
    0.6124246736321535,
  ]],
  "L": [
    [2.0, 0.0, 0.0, 0.0, 0.0],
    [0.5, 1.6583123951777, 0.0, 0.0, 0.0],
    [-1.0, 0.30151134457776363, 1.9771421064483223, 0.0, 0.0],
    [0.25, 0.5276448530110863, 0.1724251837018886, 1.2764640477178661, 0.0],
    [0.0, -0.6030226891555273, 0.5977406368332138, 0.5602322136281803, 2.2282750355948275],
  ],
  "solve": [
    0.6162414660438377,
    -1.945382680560546,
    0.37513474667624874,
    2.461372619475386,
    -0.7585339561624148,
  ],
};
const B5 = [1, -2, 0.5, 3, -1];

/** A random symmetric positive definite n×n matrix (f32-exact entries): MMᵀ/n + I/2. */
function spd(n: number, seed: number): number[][] {
  const m = randArray(n * n, seed);
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let k = 0; k < n; k++) s += m[i * n + k] * m[j * n + k];
      return Math.fround(s / n + (i === j ? 0.5 : 0));
    }));
}

/** Symmetric with spread eigenvalues (not definite): (M + Mᵀ)/2, f32-exact. */
function symmetric(n: number, seed: number): number[][] {
  const m = randArray(n * n, seed);
  return Array.from(
    { length: n },
    (_, i) => Array.from({ length: n }, (_, j) => Math.fround((m[i * n + j] + m[j * n + i]) / 2)),
  );
}

/** Cholesky–Banachiewicz in f64: the textbook reference. */
function choleskyRef(a: number[][]): number[][] {
  const n = a.length, l = a.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i][j];
      for (let k = 0; k < j; k++) s -= l[i][k] * l[j][k];
      l[i][j] = i === j ? Math.sqrt(s) : s / l[j][j];
    }
  }
  return l;
}

const tolOf = (
  b: Backend,
) => (b.dtype === "f64" ? { rtol: 1e-12, atol: 1e-13 } : { rtol: 2e-5, atol: 2e-5 });

testAll("cholesky and choleskySolve match NumPy and a textbook Cholesky", async (b: Backend) => {
  const o = { dtype: b.dtype, device: b.dev };
  const A = tensor(NP.A, o);
  const L = cv.cholesky(A);
  assertClose(await L.data(), NP.L.flat(), tolOf(b));
  assertClose(await cv.choleskySolve(L, tensor(B5, o)).data(), NP.solve, tolOf(b));
  // batched, random SPD: against the textbook factor and a dense solve
  const mats = [spd(6, 1), spd(6, 2)];
  const batch = tensor(mats, o);
  const Lb = cv.cholesky(batch);
  assertClose(await Lb.data(), mats.flatMap((m) => choleskyRef(m).flat()), tolOf(b));
  const rhs = randArray(6 * 2, 3);
  const X = cv.choleskySolve(Lb, tensor(rhs, { ...o, shape: [6, 2] }));
  const want = mats.flatMap((m) => {
    const cols = [0, 1].map((c) => solveDense(m, [0, 1, 2, 3, 4, 5].map((i) => rhs[i * 2 + c])));
    return [0, 1, 2, 3, 4, 5].flatMap((i) => [cols[0][i], cols[1][i]]);
  });
  assertClose(
    await X.data(),
    want,
    b.dtype === "f64" ? { rtol: 1e-10 } : { rtol: 1e-3, atol: 1e-4 },
  );
  // only the symmetric part counts: a skewed copy of A factors the same
  const skew = tensor(NP.A.map((r, i) => r.map((v, j) => v + (i < j ? 0.5 : i > j ? -0.5 : 0))), o);
  assertClose(await cv.cholesky(skew).data(), NP.L.flat(), tolOf(b));
  [A, L, batch, Lb, X, skew].forEach((t) => t.dispose());
});

testAll(
  "eigh matches NumPy (values, vectors signed largest-entry positive) and eigvalsh",
  async (b: Backend) => {
    const o = { dtype: b.dtype, device: b.dev };
    const [w, V] = cv.eigh(tensor(NP.A, o));
    assertClose(await w.data(), NP.w, tolOf(b));
    assertClose(
      await V.data(),
      NP.V.flat(),
      b.dtype === "f64" ? { rtol: 1e-10, atol: 1e-12 } : { rtol: 1e-4, atol: 1e-5 },
    );
    assertClose(await cv.eigvalsh(tensor(NP.A, o)).data(), NP.w, tolOf(b));
    // 2×2 closed form: [[a, c], [c, d]] has (a + d)/2 ∓ √(((a − d)/2)² + c²)
    const [w2] = cv.eigh(tensor([[3, 2], [2, -1]], o));
    assertClose(await w2.data(), [1 - Math.sqrt(8), 1 + Math.sqrt(8)], tolOf(b));
  },
);

testAll(
  "eigh of a matrix holding NaN or ±∞: NaN throughout, its batch-mates unaffected",
  async (b) => {
    const o = { dtype: b.dtype, device: b.dev };
    // the Jacobi rotations used to return [4, 4, NaN] and a permutation for V here
    const A = tensor([
      [[4, 1, 0], [1, NaN, 1], [0, 1, 4]],
      [[2, 0, 0], [0, 3, 0], [0, 0, Infinity]],
      [[2, 1, 0], [1, 2, 0], [0, 0, 5]],
    ], o);
    const [w, V] = cv.eigh(A);
    const wd = Array.from(await w.data()), Vd = Array.from(await V.data());
    for (const m of [0, 1]) {
      assert.ok(wd.slice(3 * m, 3 * m + 3).every(Number.isNaN), `w of matrix ${m}: ${wd}`);
      assert.ok(Vd.slice(9 * m, 9 * m + 9).every(Number.isNaN), `V of matrix ${m}`);
    }
    // [[2, 1], [1, 2]] ⊕ [5]: eigenvalues 1, 3, 5
    assertClose(wd.slice(6), [1, 3, 5], tolOf(b));
    [A, w, V].forEach((t) => t.dispose());
  },
);

for (const n of [7, 48, 96]) {
  testAll(
    `eigh of random symmetric ${n}×${n} matrices (batch of 2): the invariants`,
    async (b: Backend) => {
      const o = { dtype: b.dtype, device: b.dev };
      const mats = [symmetric(n, 10 + n), symmetric(n, 11 + n)];
      const A = tensor(mats, o);
      const [w, V] = cv.eigh(A);
      const wd = Array.from(await w.data()), Vd = Array.from(await V.data());
      const eps = b.dtype === "f64" ? 1e-12 : 2e-5;
      for (let m = 0; m < 2; m++) {
        const a = mats[m],
          lam = wd.slice(m * n, (m + 1) * n),
          v = Vd.slice(m * n * n, (m + 1) * n * n);
        const norm = Math.sqrt(a.flat().reduce((s, x) => s + x * x, 0));
        // ascending
        for (let k = 1; k < n; k++) assert.ok(lam[k - 1] <= lam[k], "ascending");
        // Σw = tr A, Σw² = ‖A‖²_F
        assertClose([lam.reduce((s, x) => s + x, 0)], [a.reduce((s, r, i) => s + r[i], 0)], {
          atol: eps * norm * n,
        });
        assertClose([lam.reduce((s, x) => s + x * x, 0)], [norm * norm], { rtol: eps * 10 });
        let res = 0, orth = 0;
        for (let i = 0; i < n; i++) {
          for (let k = 0; k < n; k++) {
            let av = 0, vv = 0;
            for (let j = 0; j < n; j++) {
              av += a[i][j] * v[j * n + k];
              vv += v[j * n + i] * v[j * n + k];
            }
            res = Math.max(res, Math.abs(av - lam[k] * v[i * n + k]));
            orth = Math.max(orth, Math.abs(vv - (i === k ? 1 : 0)));
          }
        }
        assert.ok(res <= eps * norm * 4, `‖AV − V diag(w)‖ = ${res} (‖A‖ = ${norm})`);
        assert.ok(orth <= eps * 4 * Math.sqrt(n), `‖VᵀV − I‖ = ${orth}`);
      }
      [A, w, V].forEach((t) => t.dispose());
    },
  );
}

testAll("cholesky of a 100×100 matrix against the textbook factor", async (b: Backend) => {
  const a = spd(100, 40);
  const L = cv.cholesky(tensor(a, { dtype: b.dtype, device: b.dev }));
  assertClose(
    await L.data(),
    choleskyRef(a).flat(),
    b.dtype === "f64" ? { rtol: 1e-10, atol: 1e-12 } : { rtol: 1e-4, atol: 1e-5 },
  );
});

Deno.test("derivatives of cholesky, choleskySolve and eigh by the oracle", async () => {
  const a = { shape: [4, 4], values: spd(4, 50).flat() };
  await checkGrads("cholesky", (x) => cv.cholesky(x), [a]);
  await checkGrads("choleskySolve", (x, r) => cv.choleskySolve(cv.cholesky(x), r), [a, {
    shape: [4, 2],
    values: randArray(8, 51),
  }]);
  const s = { shape: [4, 4], values: symmetric(4, 52).flat() };
  await checkGrads("eigh values", (x) => cv.eigh(x)[0], [s]);
  await checkGrads("eigh vectors", (x) => cv.eigh(x)[1], [s]);
  await checkGrads(
    "log det through cholesky",
    (x) => cv.diagonal(cv.cholesky(x)).log().sum().mul(2),
    [a],
  );
});

Deno.test("eigh at repeated eigenvalues: no NaN; symmetric functions of w get exact gradients", async () => {
  const o = { dtype: "f64" as const };
  // A = diag(2, 2, 5): Σw = tr A has gradient I; Σw² = ‖A‖²_F has gradient 2A
  const A = tensor([[2, 0, 0], [0, 2, 0], [0, 0, 5]], o);
  const g1 = await cv.grad((x: Tensor) => cv.eigvalsh(x).sum())(A).data();
  assert.deepEqual(Array.from(g1), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const g2 = await cv.grad((x: Tensor) => cv.eigvalsh(x).square().sum())(A).data();
  assertClose(g2, [4, 0, 0, 0, 4, 0, 0, 0, 10], { rtol: 1e-14 });
  // the eigenvectors' derivative is finite: the within-eigenspace terms are dropped
  const gv = await cv.grad((x: Tensor) => cv.eigh(x)[1].sum())(A).data();
  assert.ok(gv.every(Number.isFinite), `finite: ${Array.from(gv)}`);
  // log det = Σ log w, at the identity: gradient I (A⁻¹)
  const I = cv.eye(4, 4, o);
  assertClose(await cv.grad((x: Tensor) => cv.eigvalsh(x).log().sum())(I).data(), await I.data(), {
    rtol: 1e-14,
  });
});

Deno.test("vmap over cholesky and eigh equals a loop", async () => {
  const mats = [spd(4, 60), spd(4, 61), spd(4, 62)];
  const A = tensor(mats, { dtype: "f64" });
  const got = await cv.vmap((x: Tensor) => cv.eigh(cv.cholesky(x))[0])(A).data();
  const loop: number[] = [];
  for (const m of mats) {
    loop.push(...await cv.eigh(cv.cholesky(tensor(m, { dtype: "f64" })))[0].data());
  }
  assertClose(got, loop, { rtol: 1e-14 });
});

testAll(
  "errors: not positive definite (LAPACK info, batch index), not square",
  async (b: Backend) => {
    const o = { dtype: b.dtype, device: b.dev };
    const bad = tensor([[[4, 0], [0, 1]], [[1, 2], [2, 1]]], o);
    await assert.rejects(
      async () => await cv.cholesky(bad).data(),
      /cholesky: the leading minor of order 2 of the matrix at batch index 1 is not positive definite \(LAPACK info = 2\)/,
    );
    assert.throws(() => cv.eigh(tensor([[1, 2, 3]], o)), /eigh: expected square matrices/);
    assert.throws(() => cv.cholesky(tensor([1, 2], o)), /cholesky: expected square matrices/);
  },
);
