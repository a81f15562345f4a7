/**
 * solveBandedGeneral (scipy.linalg.solve_banded semantics) on every backend, against
 * references that share no code with it: SciPy's own values (tests/scipy_solve_banded.py),
 * the library's dense `solve` (Gauss-Jordan), a banded Gaussian elimination with partial
 * pivoting written here in f64 (row-oriented, dividing rather than scaling by a reciprocal),
 * and residuals ‖A x − r‖ (backward error, whatever the conditioning).
 *
 * General band storage as LAPACK: ab[u + i − j][j] = A[i][j], l subdiagonals, u
 * superdiagonals; entries outside the matrix hold junk (NaN or 7.5) that must be ignored.
 * Derivatives are checked by the oracle tests (tests/ad_oracle_test.ts).
 */
import assert from "node:assert/strict";
import { memory, solve, solveBandedGeneral, type Tensor, tensor } from "../mod.ts";
import { assertNoLeak, type Backend, cpu, expectKernelError, rng, testAll } from "./helpers.ts";
import { SINGULAR_CASES, SOLVE_BANDED_CASES } from "./scipy_solve_banded_values.ts";

// ---------------------------------------------------------------- band matrices (f64)

/** A general band matrix: l subdiagonals, u superdiagonals, storage ab [l+u+1, n]. */
interface GBand {
  n: number;
  l: number;
  u: number;
  ab: Float64Array;
}

const at = (g: GBand, i: number, j: number): number =>
  i - j <= g.l && j - i <= g.u && i >= 0 && j >= 0 && i < g.n && j < g.n
    ? g.ab[(g.u + i - j) * g.n + j]
    : 0;

/** Band storage with every corner set to `corner`, the band from `entry(i, j)`. */
function fromEntries(
  n: number,
  l: number,
  u: number,
  entry: (i: number, j: number) => number,
  corner = NaN,
): GBand {
  const ab = new Float64Array((l + u + 1) * n);
  for (let k = 0; k <= l + u; k++) {
    for (let j = 0; j < n; j++) {
      const i = j + k - u;
      ab[k * n + j] = i >= 0 && i < n ? entry(i, j) : corner;
    }
  }
  return { n, l, u, ab };
}

/** Random entries in [−1, 1] on a grid of 1/64 (exact in f32): pivoting happens. */
function randomBand(n: number, l: number, u: number, seed: number): GBand {
  const r = rng(seed);
  return fromEntries(n, l, u, () => Math.round((2 * r() - 1) * 64) / 64);
}

/**
 * A = P B: B an (l, u) band, diagonally dominant (|B[j][j]| ≥ 2 + Σ|off-diagonal|), with
 * rows 2k and 2k + 1 swapped for every k (`swap` = 1) or for a random fraction `swap` of
 * them. A is an (l + 1, u + 1) band with κ(A) = κ(B) small, and partial pivoting must swap
 * each such pair back: B's dominant diagonal entry sits one row below A's diagonal there.
 */
function swappedDominant(n: number, l: number, u: number, seed: number, swap = 1): GBand {
  const r = rng(seed);
  const B = fromEntries(n, l, u, (i, j) => (i === j ? 0 : Math.round((2 * r() - 1) * 64) / 64), 0);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = Math.max(0, i - l); j <= Math.min(n - 1, i + u); j++) s += Math.abs(at(B, i, j));
    for (let k = Math.max(0, i - u); k <= Math.min(n - 1, i + l); k++) s += Math.abs(at(B, k, i));
    B.ab[B.u * n + i] = (r() < 0.5 ? -1 : 1) * (2 + s + Math.round(r() * 64) / 64);
  }
  const swapped = Array.from({ length: n >> 1 }, () => r() < swap);
  const src = (i: number) =>
    i >> 1 >= swapped.length || !swapped[i >> 1] ? i : i % 2 === 0 ? i + 1 : i - 1;
  return fromEntries(n, l + 1, u + 1, (i, j) => at(B, src(i), j));
}

function denseOf(g: GBand): number[][] {
  return Array.from({ length: g.n }, (_, i) => Array.from({ length: g.n }, (_, j) => at(g, i, j)));
}

/**
 * Solves A X = R ([n, m]) by banded Gaussian elimination with partial pivoting, in f64:
 * row i keeps columns i − l … i + u + l (room for the fill-in) at M[i·W + c − i + l].
 * Returns null for a zero pivot.
 */
function bandLuReference(g: GBand, R: ArrayLike<number>, m: number): Float64Array | null {
  const { n, l, u } = g, W = 2 * l + u + 1;
  const M = new Float64Array(n * W);
  const ix = (i: number, c: number) => i * W + c - i + l;
  for (let i = 0; i < n; i++) {
    for (let c = Math.max(0, i - l); c <= Math.min(n - 1, i + u); c++) M[ix(i, c)] = at(g, i, c);
  }
  const X = Float64Array.from(R);
  for (let k = 0; k < n; k++) {
    const last = Math.min(n - 1, k + l), right = Math.min(n - 1, k + u + l);
    let p = k;
    for (let i = k + 1; i <= last; i++) if (Math.abs(M[ix(i, k)]) > Math.abs(M[ix(p, k)])) p = i;
    if (M[ix(p, k)] === 0) return null;
    if (p !== k) {
      for (let c = k; c <= right; c++) [M[ix(k, c)], M[ix(p, c)]] = [M[ix(p, c)], M[ix(k, c)]];
      for (let c = 0; c < m; c++) [X[k * m + c], X[p * m + c]] = [X[p * m + c], X[k * m + c]];
    }
    for (let i = k + 1; i <= last; i++) {
      const f = M[ix(i, k)] / M[ix(k, k)];
      if (f === 0) continue;
      for (let c = k; c <= right; c++) M[ix(i, c)] -= f * M[ix(k, c)];
      for (let c = 0; c < m; c++) X[i * m + c] -= f * X[k * m + c];
    }
  }
  for (let k = n - 1; k >= 0; k--) {
    for (let c = 0; c < m; c++) {
      let s = X[k * m + c];
      for (let j = k + 1; j <= Math.min(n - 1, k + u + l); j++) s -= M[ix(k, j)] * X[j * m + c];
      X[k * m + c] = s / M[ix(k, k)];
    }
  }
  return X;
}

/** max |A x − r| / (‖A‖∞ ‖x‖∞): the backward error of a computed solution (one rhs). */
function backwardError(g: GBand, x: ArrayLike<number>, r: ArrayLike<number>): number {
  let res = 0, normA = 0, normX = 0;
  for (let i = 0; i < g.n; i++) {
    let s = 0, row = 0;
    for (let j = Math.max(0, i - g.l); j <= Math.min(g.n - 1, i + g.u); j++) {
      s += at(g, i, j) * x[j];
      row += Math.abs(at(g, i, j));
    }
    res = Math.max(res, Math.abs(s - r[i]));
    normA = Math.max(normA, row);
    normX = Math.max(normX, Math.abs(x[i]));
  }
  return res / (normA * normX);
}

function randomRhs(len: number, seed: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: len }, () => Math.round((2 * r() - 1) * 64) / 64);
}

const mk = (bk: Backend, data: ArrayLike<number>, shape: number[]): Tensor =>
  tensor(Float64Array.from(data), { shape, dtype: bk.dtype, device: bk.dev });

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** max |x − x_ref| ≤ tol · max |x_ref|, naming the worst entry. */
function assertNormClose(x: ArrayLike<number>, ref: ArrayLike<number>, tol: number, msg: string) {
  assert.equal(x.length, ref.length, `${msg}: length`);
  let worst = 0, at = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - ref[i]);
    if (!(d <= worst)) [worst, at] = [d, i];
  }
  const scale = maxAbs(ref);
  assert.ok(
    worst <= tol * scale,
    `${msg}: entry ${at} is ${x[at]}, expected ${ref[at]} (error ${worst.toExponential(2)} > ` +
      `${tol.toExponential(2)} × ${scale.toExponential(2)})`,
  );
}

/**
 * Norm-wise tolerance for a system of order n and condition number κ. Partial pivoting
 * is backward stable in practice (growth factor ≤ 2^(l+u) for a band, and O(1) for these
 * matrices), so the forward error is ≲ c·n·κ·eps:
 * - cpu-f64: eps = 1.1e-16, with c = 4: 4nκ·1.1e-16, at least 1e-14.
 * - cpu-f32: computed in f64, rounded once: the f64 bound plus half an f32 ulp (6e-8).
 * - webgpu-f32: f32 arithmetic throughout: 4nκ·6e-8.
 */
function tolOf(bk: Backend, n: number, cond: number): number {
  const f64 = Math.max(1e-14, 4 * n * cond * 1.1e-16);
  if (bk.name === "cpu-f64") return f64;
  if (bk.name === "cpu-f32") return f64 + 1.2e-7;
  return 4 * n * cond * 6e-8;
}

// ---------------------------------------------------------------- SciPy's values

testAll("solveBandedGeneral reproduces scipy.linalg.solve_banded", async (bk) => {
  for (const c of SOLVE_BANDED_CASES) {
    const { l, u, n, m } = c;
    const ab = mk(bk, c.ab, [l + u + 1, n]);
    const rhs = mk(bk, c.rhs, m ? [n, m] : [n]);
    const x = solveBandedGeneral([l, u], ab, rhs);
    assert.deepEqual(x.shape, m ? [n, m] : [n], c.name);
    assertNormClose(await x.data(), c.x, tolOf(bk, n, c.cond), `${c.name} (${c.swaps} swaps)`);
    for (const t of [ab, rhs, x]) t.dispose();
  }
  // the cases exercise pivoting, corners, several right-hand sides and l + u ≥ n
  assert.ok(SOLVE_BANDED_CASES.filter((c) => c.swaps > 0).length >= 5);
  assert.ok(SOLVE_BANDED_CASES.some((c) => c.l + c.u >= c.n));
});

testAll(
  "singular matrices: the error names the zero pivot's step, as LAPACK's info",
  async (bk) => {
    for (const c of SINGULAR_CASES) {
      assert.equal(c.scipy, "singular matrix", "SciPy refuses these matrices too");
      const make = () =>
        solveBandedGeneral(
          [c.l, c.u],
          mk(bk, c.ab, [c.l + c.u + 1, c.n]),
          mk(bk, c.ab.slice(0, c.n), [c.n]),
        );
      const j = c.info - 1;
      const pattern = new RegExp(
        `^solveBandedGeneral: the matrix is singular: the pivot U\\[${j}\\]\\[${j}\\] .* ` +
          `exactly zero \\(LAPACK info = ${c.info}\\)$`,
      );
      await expectKernelError(bk, make, pattern);
    }
    // in a batch: the matrix is named; a zero 1×1 matrix
    const bad = SINGULAR_CASES[0];
    assert.equal(bad.info, 5);
    const n = 5, R = 3;
    const ab = new Float64Array(2 * R * n);
    ab.set(fromEntries(n, 1, 1, (i, j) => (i === j ? 4 : 1)).ab, 0);
    ab.set(bad.ab, R * n);
    await expectKernelError(
      bk,
      () =>
        solveBandedGeneral([1, 1], mk(bk, ab, [2, R, n]), mk(bk, new Float64Array(2 * n), [2, n])),
      /the matrix at batch index 1 is singular: the pivot U\[4\]\[4\]/,
    );
    await expectKernelError(
      bk,
      () => solveBandedGeneral([0, 0], mk(bk, [0], [1, 1]), mk(bk, [1], [1])),
      /pivot U\[0\]\[0\] .* \(LAPACK info = 1\)/,
    );
  },
);

// ---------------------------------------------------------------- other references

testAll("solveBandedGeneral matches the dense solve for many (l, u)", async (bk) => {
  const n = 13;
  for (const [l, u] of [[0, 0], [1, 0], [0, 1], [1, 1], [2, 2], [3, 1], [1, 4], [5, 2], [12, 0]]) {
    const g = randomBand(n, l, u, 100 * l + u);
    const r = randomRhs(n * 2, l + u);
    const x = await solveBandedGeneral([l, u], mk(bk, g.ab, [l + u + 1, n]), mk(bk, r, [n, 2]))
      .data();
    const ref = await solve(
      tensor(denseOf(g), { dtype: "f64", device: cpu }),
      tensor(r, { shape: [n, 2], dtype: "f64", device: cpu }),
    ).data();
    // random matrices: κ up to a few hundred (checked against the residual below)
    assertNormClose(x, ref, tolOf(bk, n, 1e3), `l = ${l}, u = ${u}`);
  }
});

testAll("a batch equals its systems solved one by one; columns equal vector solves", async (bk) => {
  const n = 20, l = 2, u = 1, R = 4, batch = 3, m = 2;
  const bands = [0, 1, 2].map((t) => randomBand(n, l, u, 40 + t));
  const ab = new Float64Array(batch * R * n);
  bands.forEach((g, t) => ab.set(g.ab, t * R * n));
  const rhs = randomRhs(batch * n * m, 9);
  const X = await solveBandedGeneral([l, u], mk(bk, ab, [batch, R, n]), mk(bk, rhs, [batch, n, m]))
    .data();
  for (let t = 0; t < batch; t++) {
    for (let c = 0; c < m; c++) {
      const r = Array.from({ length: n }, (_, i) => rhs[(t * n + i) * m + c]);
      const x1 = await solveBandedGeneral([l, u], mk(bk, bands[t].ab, [R, n]), mk(bk, r, [n]))
        .data();
      const col = Array.from({ length: n }, (_, i) => X[(t * n + i) * m + c]);
      // the same arithmetic on the same numbers
      assert.deepEqual(col, Array.from(x1), `system ${t}, column ${c}`);
    }
  }
  // a batch of vectors
  const Xv = await solveBandedGeneral(
    [l, u],
    mk(bk, ab, [batch, R, n]),
    mk(bk, rhs.slice(0, batch * n), [batch, n]),
  ).data();
  for (let t = 0; t < batch; t++) {
    const ref = bandLuReference(bands[t], rhs.slice(t * n, (t + 1) * n), 1)!;
    assertNormClose(Xv.subarray(t * n, (t + 1) * n), ref, tolOf(bk, n, 1e3), `vector ${t}`);
  }
});

/**
 * Long systems, past lavapipe's 65,535 loop passes per invocation: A = P B with a row
 * interchange at every other step (κ small), against the f64 reference elimination, and
 * a random band (pivoting wherever it falls) by its backward error. f32 tolerance for the
 * first: κ(B) ≤ 3 for these dominant matrices and the errors do not accumulate along the
 * band (each elimination contracts them by the dominance ratio), so ~10 eps₃₂ norm-wise:
 * assert 2e-6 (cpu-f64: 1e-13).
 */
testAll("long systems (n = 70,001) with pivoting, past the loop limit", async (bk) => {
  const n = 70_001;
  for (const [l, u] of [[0, 0], [1, 1], [2, 1]]) {
    const g = swappedDominant(n, l, u, 7 + l);
    const r = randomRhs(n, 3);
    const x = await solveBandedGeneral(
      [g.l, g.u],
      mk(bk, g.ab, [g.l + g.u + 1, n]),
      mk(bk, r, [n]),
    ).data();
    const ref = bandLuReference(g, r, 1)!;
    assertNormClose(
      x,
      ref,
      bk.name === "cpu-f64" ? 1e-13 : 2e-6,
      `A = P B, (l, u) = (${g.l}, ${g.u})`,
    );
  }
  // interchanges at random steps
  const g = swappedDominant(n, 2, 1, 11, 0.5);
  const r = randomRhs(n, 6);
  const x = await solveBandedGeneral([3, 2], mk(bk, g.ab, [6, n]), mk(bk, r, [n])).data();
  assertNormClose(
    x,
    bandLuReference(g, r, 1)!,
    bk.name === "cpu-f64" ? 1e-13 : 2e-6,
    "random swaps",
  );
});

/**
 * Random entries, pivoting wherever it falls: κ grows with n for such matrices, so the
 * check is the backward error, ≲ c·(l + u)·eps for partial pivoting; f64 only, since the
 * solution's entries can leave f32's range.
 */
testAll("a random long band (n = 70,001): backward error at rounding level", async (bk) => {
  const n = 70_001;
  const g = randomBand(n, 2, 3, 5);
  const r = randomRhs(n, 6);
  const x = await solveBandedGeneral([2, 3], mk(bk, g.ab, [6, n]), mk(bk, r, [n])).data();
  const be = backwardError(g, x, r);
  assert.ok(be <= 100 * 1.1e-16, `backward error ${be.toExponential(2)} > 100 eps`);
}, ["cpu-f64"]);

testAll(
  "a batch of long systems with several right-hand sides (3 × n = 70,001, m = 2)",
  async (bk) => {
    const n = 70_001, batch = 3, m = 2;
    const bands = [0, 1, 2].map((t) => swappedDominant(n, 1, 0, 20 + t));
    const R = bands[0].l + bands[0].u + 1;
    const ab = new Float64Array(batch * R * n);
    bands.forEach((g, t) => ab.set(g.ab, t * R * n));
    const rhs = randomRhs(batch * n * m, 4);
    const X = await solveBandedGeneral(
      [bands[0].l, bands[0].u],
      mk(bk, ab, [batch, R, n]),
      mk(bk, rhs, [batch, n, m]),
    ).data();
    for (let t = 0; t < batch; t++) {
      const ref = bandLuReference(bands[t], rhs.subarray(t * n * m, (t + 1) * n * m), m)!;
      assertNormClose(
        X.subarray(t * n * m, (t + 1) * n * m),
        ref,
        bk.name === "cpu-f64" ? 1e-13 : 2e-6,
        `system ${t}`,
      );
    }
  },
  ["cpu-f64", "webgpu-f32"],
);

// ---------------------------------------------------------------- validation and memory

testAll("validation errors name the op, l and u, and the shapes", (bk) => {
  const z = (shape: number[]) => mk(bk, new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  assert.throws(() => solveBandedGeneral([1, 1], z([4, 5]), z([5])), {
    name: "RangeError",
    message:
      /solveBandedGeneral: l \+ u \+ 1 = 3 \(l = 1, u = 1\) must equal the rows of ab, but ab of shape \[4,5\] has 4/,
  });
  assert.throws(() => solveBandedGeneral([1, -1] as [number, number], z([1, 5]), z([5])), {
    name: "TypeError",
    message: /solveBandedGeneral: the first argument must be \[l, u\].*got \[1,-1\]/,
  });
  assert.throws(
    () => solveBandedGeneral(z([3, 5]) as unknown as [number, number], z([3, 5]), z([5])),
    {
      name: "TypeError",
      message: /the first argument must be \[l, u\]/,
    },
  );
  assert.throws(() => solveBandedGeneral([1, 1], z([3, 5]), z([4])), {
    name: "RangeError",
    message:
      /solveBandedGeneral: rhs of shape \[4\] does not match ab of shape \[3,5\].*\[5\] or \[5, m\]/,
  });
  assert.throws(() => solveBandedGeneral([1, 1], z([2, 3, 5]), z([3, 5])), {
    name: "RangeError",
    message: /rhs of shape \[3,5\] does not match ab of shape \[2,3,5\].*\[2, 5\]/,
  });
  assert.throws(() => solveBandedGeneral([0, 0], z([5]), z([5])), {
    name: "RangeError",
    message: /solveBandedGeneral: ab must be band storage \[l\+u\+1, n\] .* got shape \[5\]/,
  });
  assert.throws(() => solveBandedGeneral([0, 0], z([1, 2]), [1, 2] as unknown as Tensor), {
    name: "TypeError",
    message: /solveBandedGeneral: rhs must be a Tensor/,
  });
  // empty systems give empty results
  assert.deepEqual(solveBandedGeneral([1, 1], z([3, 0]), z([0, 2])).shape, [0, 2]);
});

testAll("no tensors or bytes are left behind", async (bk) => {
  const g = randomBand(30, 2, 1, 1);
  const ab = mk(bk, g.ab, [4, 30]);
  const r = mk(bk, randomRhs(60, 2), [30, 2]);
  const base = memory();
  for (let k = 0; k < 3; k++) {
    const x = solveBandedGeneral([2, 1], ab, r);
    await x.data();
    x.dispose();
  }
  assertNoLeak(base, "solveBandedGeneral");
});

/** Gradients in both arguments, on each backend, against CPU f64 (itself checked against finite differences by the oracle tests). */
testAll("gradients through solveBandedGeneral agree with CPU f64", async (bk) => {
  const { grad } = await import("../mod.ts");
  const n = 40, l = 1, u = 2;
  const g = swappedDominant(n, l, u, 3, 0.5);
  const r = randomRhs(n, 8);
  const R = g.l + g.u + 1;
  const f = (ab: Tensor, rhs: Tensor) => solveBandedGeneral([g.l, g.u], ab, rhs).sin().sum();
  const run = async (dtype: "f32" | "f64", dev: typeof cpu) => {
    const [ab, rhs] = [
      tensor(g.ab, { shape: [R, n], dtype, device: dev }),
      tensor(r, { dtype, device: dev }),
    ];
    const [ga, gr] = grad(f, { argnums: [0, 1] })(ab, rhs) as Tensor[];
    const out = [await ga.data(), await gr.data()];
    for (const t of [ab, rhs, ga, gr]) t.dispose();
    return out;
  };
  const [refA, refR] = await run("f64", cpu);
  const [gA, gR] = await run(bk.dtype, bk.dev);
  // the corners carry no derivative
  for (let k = 0; k < R; k++) {
    for (let j = 0; j < n; j++) {
      const i = j + k - g.u;
      if (i < 0 || i >= n) assert.ok(gA[k * n + j] === 0, `corner (${k}, ${j}): ${gA[k * n + j]}`);
    }
  }
  const tol = bk.name === "cpu-f64" ? 1e-14 : 1e-5;
  assertNormClose(gA, refA, tol, "d/d ab");
  assertNormClose(gR, refR, tol, "d/d rhs");
});

testAll(
  "vmap over the right-hand side only: one factorisation, the same numbers as a loop",
  async (bk) => {
    const { vmap, stack } = await import("../mod.ts");
    const n = 12, g = randomBand(n, 1, 2, 77);
    const ab = mk(bk, g.ab, [4, n]);
    const rs = [0, 1, 2].map((k) => mk(bk, randomRhs(n, 30 + k), [n]));
    const f = (r: Tensor) => solveBandedGeneral([1, 2], ab, r);
    const y = await vmap(f, [0])(stack(rs)).data();
    for (let k = 0; k < 3; k++) {
      assert.deepEqual(
        Array.from(y.subarray(k * n, (k + 1) * n)),
        Array.from(await f(rs[k]).data()),
      );
    }
  },
);
