/**
 * bandedHessian and BandedMatrix on every backend (CPU f64, CPU f32, WebGPU f32), against
 * independent references:
 *
 * - the dense `hessian` (identity-column HVPs, a different code path) for n ≤ 60;
 * - for any n, the band computed here in f64 from second derivatives derived by hand
 *   (tests/banded_objectives.ts), checked itself against the dense Hessian for small n;
 * - dense products and band layouts computed on the host.
 *
 * Tolerances, relative to max |H| over the band (written s below), the same formula for
 * f64 and f32 with ε = 2^−52 or 2^−23:
 * - direct: 16 ε s. Each band entry is a sum of at most 3b + 1 ≤ 19 closed-form terms
 *   (and the HVP's reverse pass adds them up), each a few roundings off, mostly of terms
 *   well below s; measured: at most 2 ε s at n = 10^5 + 3 on every backend. Bitwise
 *   equality with the dense Hessian is not expected: its products sum the same terms in
 *   another order. (In f64, 16 ε = 3.6e-15, well inside the 1e-12 the issue asks for.)
 * - substitution: its entries come down chains of L ≈ n / (b + 1) subtractions, each
 *   adding one product's rounding error; modelled as a random walk the error is about
 *   ε √L s, and the test allows 16 ε s + 2 ε √L s (measured: at most 0.2 ε √L s). A worst
 *   case that adds every error up, L ε s, would be 6e-3 in f32 at n = 10^5: too loose to
 *   test anything. bench/substitution_error.ts measures the growth up to n = 10^6.
 */
import assert from "node:assert/strict";
import {
  bandedHessian,
  BandedMatrix,
  type Device,
  grad,
  hessian,
  jvp,
  memory,
  reshape,
  slice,
  sum,
  type Tensor,
  tensor,
  vjp,
} from "../mod.ts";
import {
  assertClose,
  assertNoLeak,
  type Backend,
  cpu,
  liveSince,
  randArray,
  testAll,
} from "./helpers.ts";
import {
  type BandedProblem,
  bandStorage,
  denseDiagonals,
  randomBandedProblem,
  relMaxError,
  trajectoryProblem,
} from "./banded_objectives.ts";
import { scheduler, scheduleStats } from "../src/compile/schedule.ts";
import { trajectoryProblem as demoProblem } from "../examples/trajectory_problem.ts";

const eps = (t: Backend) => (t.dtype === "f64" ? 2 ** -52 : 2 ** -23);
/** Tolerance of a directly recovered band (see the header), relative to max |H|. */
const directTol = (t: Backend) => 16 * eps(t);
/** Tolerance of substitution along chains of about n / (b + 1) links. */
const substTol = (t: Backend, n: number, b: number) =>
  directTol(t) + 2 * eps(t) * Math.sqrt(n / (b + 1));

const place = (t: Backend) => ({ dtype: t.dtype, device: t.dev });

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Asserts a band matches a reference within `rel` · max |reference|. */
function assertBand(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rel: number,
  msg: string,
): void {
  assertClose(actual, expected, { atol: rel * maxAbs(expected), rtol: 0, msg });
}

/** The sizes checked for bandwidth b: n = b + 1 (= dense), the n ≤ 2b + 1 edge, and more. */
function smallSizes(b: number): number[] {
  const ns = [1, 2, b + 1, 2 * b, 2 * b + 1, 2 * b + 2, 3 * b + 5, 60].filter((n) => n > b);
  return [...new Set(ns)];
}

const LAYOUTS = ["lower", "upper"] as const;
const METHODS = ["direct", "substitution"] as const;

testAll(
  "bandedHessian equals the dense hessian for b = 0…6, n ≤ 60 (both layouts, both methods)",
  async (t) => {
    const base = memory();
    const tol = directTol(t);
    for (let b = 0; b <= 6; b++) {
      for (const n of smallSizes(b)) {
        const prob = randomBandedProblem(n, b, 100 * b + n, place(t));
        const xh = randArray(n, 7 * n + b);
        const x = tensor(xh, place(t));
        const H = hessian(prob.f)(x);
        assert.deepEqual(H.shape, [n, n]);
        const dense = await H.data();
        H.dispose();
        const diag = denseDiagonals(dense, n, b);
        // the test's own closed form agrees with the library's dense Hessian (checks the reference)
        const closed = prob.hessianDiagonals(xh);
        const scale = maxAbs(closed[0]);
        for (let d = 0; d <= b; d++) {
          assertClose(diag[d].subarray(0, n - d), closed[d].subarray(0, n - d), {
            atol: tol * scale,
            rtol: 0,
            msg: `b=${b} n=${n}: dense hessian vs closed form, diagonal ${d}`,
          });
        }
        // and nothing outside the band: the objective really has bandwidth b
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            if (Math.abs(i - j) > b) {
              assert.equal(
                dense[i * n + j],
                0,
                `H[${i}][${j}] outside the band`,
              );
            }
          }
        }
        for (const layout of LAYOUTS) {
          const ref = bandStorage(diag, n, layout);
          for (const method of METHODS) {
            const B = bandedHessian(prob.f, x, { bandwidth: b, layout, method });
            assert.equal(B.n, n);
            assert.equal(B.bandwidth, b);
            assert.equal(B.layout, layout);
            assert.equal(B.symmetryError, null);
            assert.deepEqual(B.data.shape, [b + 1, n]);
            assert.equal(B.data.dtype, t.dtype);
            assert.equal(B.data.device, t.dev);
            const tolM = method === "direct" ? tol : substTol(t, n, b);
            assertBand(await B.data.data(), ref, tolM, `b=${b} n=${n} ${layout} ${method}`);
            B.dispose();
          }
        }
        x.dispose();
        prob.dispose();
      }
    }
    assertNoLeak(base, "bandedHessian small n");
  },
);

testAll("bandedHessian at n = 10^5 + 3 for b = 0…6 against the closed-form band", async (t) => {
  const base = memory();
  const n = 100_003; // past lavapipe's 65,535 loop passes per invocation
  for (let b = 0; b <= 6; b++) {
    const prob = randomBandedProblem(n, b, 31 + b, place(t));
    const xh = randArray(n, 5 + b);
    const x = tensor(xh, place(t));
    const diag = prob.hessianDiagonals(xh);
    // direct recovery in one layout and substitution in the other, alternating with b (the
    // small-n test covers every combination; the kernels differ only in where entries go)
    const layout = b % 2 === 0 ? "lower" : "upper";
    const other = b % 2 === 0 ? "upper" : "lower";
    const D = bandedHessian(prob.f, x, { bandwidth: b, layout });
    const S = bandedHessian(prob.f, x, { bandwidth: b, layout: other, method: "substitution" });
    const D2 = D.toLayout(other);
    const d = await D.data.data(), s = await S.data.data(), d2 = await D2.data.data();
    assertBand(d, bandStorage(diag, n, layout), directTol(t), `b=${b} direct ${layout}`);
    assertBand(d2, bandStorage(diag, n, other), directTol(t), `b=${b} direct → ${other}`);
    const tolS = substTol(t, n, b);
    assertBand(s, bandStorage(diag, n, other), tolS, `b=${b} substitution vs closed form`);
    assertBand(s, d2, tolS, `b=${b} substitution vs direct`);
    for (const M of [D, S, D2]) M.dispose();
    x.dispose();
    prob.dispose();
  }
  assertNoLeak(base, "bandedHessian n = 10^5 + 3");
});

testAll(
  "bandedHessian of the trajectory benchmark at n = 10^5 + 3: direct and substitution",
  async (t) => {
    const base = memory();
    const n = 100_003;
    const prob = trajectoryProblem(n, place(t));
    const xh = randArray(n, 99);
    const x = tensor(xh, place(t));
    const ref = bandStorage(prob.hessianDiagonals(xh), n, "upper");
    for (const method of METHODS) {
      const B = bandedHessian(prob.f, x, { bandwidth: 2, method });
      assert.equal(
        B.layout,
        "upper",
        "upper is the default layout (SciPy's solveh_banded default)",
      );
      // substitution is exact up to the direct tolerance here: the off-diagonal products are
      // sums of the smoothness term's small integers, so no rounding travels down the chains
      assertBand(await B.data.data(), ref, directTol(t), method);
      B.dispose();
    }
    x.dispose();
    prob.dispose();
    assertNoLeak(base, "trajectory band");
  },
);

testAll("bandedHessian flattens x: a [m, 2] point has the band of its flat index", async (t) => {
  const base = memory();
  const n = 42, b = 3;
  const prob = randomBandedProblem(n, b, 5, place(t));
  const xh = randArray(n, 6);
  const x = tensor(xh, { ...place(t), shape: [n / 2, 2] });
  const f = (y: Tensor) => prob.f(reshape(y, [n]));
  const B = bandedHessian(f, x, { bandwidth: b, layout: "lower" });
  assert.equal(B.n, n);
  assertBand(
    await B.data.data(),
    bandStorage(prob.hessianDiagonals(xh), n, "lower"),
    directTol(t),
    "2-D x",
  );
  B.dispose();
  x.dispose();
  prob.dispose();
  assertNoLeak(base, "2-D x");
});

testAll(
  "symmetryCheck: a 0-d tensor near 0 for a true Hessian, large for a wrong bandwidth",
  async (t) => {
    const base = memory();
    for (const [n, b] of [[1, 0], [5, 2], [13, 6], [200, 3], [70_001, 2]]) {
      const prob = randomBandedProblem(n, b, n + b, place(t));
      const x = tensor(randArray(n, 3), place(t));
      const B = bandedHessian(prob.f, x, { bandwidth: b, symmetryCheck: true });
      assert.ok(B.symmetryError, "symmetryError is set");
      assert.deepEqual(B.symmetryError.shape, []);
      const e = await B.symmetryError.item();
      const s = maxAbs(await B.data.data());
      assert.ok(
        e >= 0 && e <= directTol(t) * s,
        `n=${n} b=${b}: symmetry error ${e} (max |H| ${s})`,
      );
      B.dispose(); // frees the symmetry error too
      x.dispose();
      prob.dispose();
    }
    // true bandwidth 3 asked for as 1: entries alias into the 3 comb products, and the two
    // recoveries of an off-diagonal entry pick up different out-of-band entries
    const n = 30;
    const prob = randomBandedProblem(n, 3, 8, place(t));
    const x = tensor(randArray(n, 4), place(t));
    const B = bandedHessian(prob.f, x, { bandwidth: 1, symmetryCheck: true });
    const e = await B.symmetryError!.item();
    const s = maxAbs(await B.data.data());
    assert.ok(e > 0.01 * s, `a wrong bandwidth shows: symmetry error ${e}, max |band| ${s}`);
    B.dispose();
    x.dispose();
    prob.dispose();
    assertNoLeak(base, "symmetryCheck");
  },
);

testAll(
  "BandedMatrix: toDense, matvec ([n] and [n, m]), fromDense round trip, toLayout",
  async (t) => {
    const base = memory();
    const tol = directTol(t);
    for (const [n, b] of [[1, 0], [2, 1], [7, 3], [9, 0], [25, 4], [40, 6]]) {
      const prob = randomBandedProblem(n, b, 3 * n + b, place(t));
      const xh = randArray(n, n);
      const x = tensor(xh, place(t));
      const diag = prob.hessianDiagonals(xh);
      // the dense matrix on the host from the closed form
      const A = new Float64Array(n * n);
      for (let d = 0; d <= b; d++) {
        for (let j = 0; j + d < n; j++) A[(j + d) * n + j] = A[j * n + j + d] = diag[d][j];
      }
      const scale = maxAbs(A);
      for (const layout of LAYOUTS) {
        const B = bandedHessian(prob.f, x, { bandwidth: b, layout });
        // toDense
        const D = B.toDense();
        assert.deepEqual(D.shape, [n, n]);
        const dense = await D.data();
        assertClose(dense, A, {
          atol: tol * scale,
          rtol: 0,
          msg: `toDense n=${n} b=${b} ${layout}`,
        });
        // exactly symmetric, zero outside the band
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            assert.equal(dense[i * n + j], dense[j * n + i], `toDense symmetric at ${i},${j}`);
            if (Math.abs(i - j) > b) assert.equal(dense[i * n + j], 0);
          }
        }
        // matvec against the host product with the matrix's own entries (so only the
        // product's rounding is tested here), for v [n] and V [n, m]
        for (const m of [0, 1, 3]) {
          const vh = randArray(n * Math.max(m, 1), 40 + m);
          const v = tensor(vh, { ...place(t), shape: m === 0 ? [n] : [n, m] });
          const y = B.matvec(v);
          assert.deepEqual(y.shape, v.shape);
          const cols = Math.max(m, 1);
          const want = new Float64Array(n * cols);
          let bound = 0;
          for (let i = 0; i < n; i++) {
            for (let c = 0; c < cols; c++) {
              let s = 0, sa = 0;
              for (let j = 0; j < n; j++) {
                s += dense[i * n + j] * vh[j * cols + c];
                sa += Math.abs(dense[i * n + j] * vh[j * cols + c]);
              }
              want[i * cols + c] = s;
              bound = Math.max(bound, sa);
            }
          }
          // a sum of 2b + 1 products: (2b + 2) ε Σ|terms| bounds its rounding
          assertClose(await y.data(), want, {
            atol: (2 * b + 2) * eps(t) * bound + 1e-300,
            rtol: 0,
            msg: `matvec n=${n} b=${b} m=${m} ${layout}`,
          });
          v.dispose();
          y.dispose();
        }
        // fromDense(toDense) gives the same band back, exactly (it only moves entries)
        const F = BandedMatrix.fromDense(D, b, layout);
        assert.equal(F.layout, layout);
        assert.deepEqual(Array.from(await F.data.data()), Array.from(await B.data.data()));
        // toLayout: the other storage, exactly; and a copy for the same layout
        const other = layout === "lower" ? "upper" : "lower";
        const O = B.toLayout(other);
        assert.equal(O.layout, other);
        assertBand(await O.data.data(), bandStorage(diag, n, other), tol, `toLayout ${other}`);
        const back = O.toLayout(layout);
        assert.deepEqual(Array.from(await back.data.data()), Array.from(await B.data.data()));
        const same = B.toLayout(layout);
        assert.notEqual(same.data, B.data, "toLayout to its own layout is a copy");
        assert.deepEqual(Array.from(await same.data.data()), Array.from(await B.data.data()));
        for (const M of [F, O, back, same, B]) M.dispose();
        D.dispose();
      }
      x.dispose();
      prob.dispose();
    }
    assertNoLeak(base, "BandedMatrix");
  },
);

testAll("BandedMatrix.fromDense reads only the lower triangle and the band", async (t) => {
  const base = memory();
  const n = 6, b = 2;
  // lower triangle holds 10·i + j (i ≥ j); the upper triangle holds garbage
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = i >= j ? 10 * i + j : -999;
  const A = tensor(a, { ...place(t), shape: [n, n] });
  const L = BandedMatrix.fromDense(A, b, "lower");
  const lower = [
    [0, 11, 22, 33, 44, 55],
    [10, 21, 32, 43, 54, 0],
    [20, 31, 42, 53, 0, 0],
  ];
  assert.deepEqual(await L.data.toArray(), lower);
  const U = BandedMatrix.fromDense(A, b); // upper by default
  assert.equal(U.layout, "upper");
  const upper = [
    [0, 0, 20, 31, 42, 53],
    [0, 10, 21, 32, 43, 54],
    [0, 11, 22, 33, 44, 55],
  ];
  assert.deepEqual(await U.data.toArray(), upper);
  // and the SciPy layouts of the docs' example
  const T = tensor([[4, 1, 0], [1, 4, 1], [0, 1, 4]], place(t));
  const TL = BandedMatrix.fromDense(T, 1, "lower"), TU = BandedMatrix.fromDense(T, 1, "upper");
  assert.deepEqual(await TL.data.toArray(), [[4, 4, 4], [1, 1, 0]]);
  assert.deepEqual(await TU.data.toArray(), [[0, 1, 1], [4, 4, 4]]);
  for (const M of [L, U, TL, TU]) M.dispose();
  A.dispose();
  T.dispose();
  assertNoLeak(base, "fromDense");
});

testAll("bandedHessian without a bandwidth detects it from the Hessian's pattern", async (t) => {
  const base = memory();
  for (const b of [0, 1, 3]) {
    const prob = randomBandedProblem(40, b, 7 + b, place(t));
    const x = tensor(randArray(40, 3), place(t));
    const detected = bandedHessian(prob.f, x, { layout: "lower" });
    const given = bandedHessian(prob.f, x, { bandwidth: b, layout: "lower" });
    assert.equal(detected.bandwidth, b);
    assertClose(await detected.data.data(), await given.data.data(), { rtol: 0, atol: 0 });
    // the closed form, independent of the library
    const ref = bandStorage(prob.hessianDiagonals(await x.data()), 40, "lower");
    assertClose(await detected.data.data(), ref, {
      rtol: 0,
      atol: t.dtype === "f64" ? 1e-12 : 1e-4,
    });
    for (const m of [detected, given, x]) m.dispose();
    prob.dispose();
  }
  // an arrowhead: every variable meets x₀, so the band would be the whole matrix
  const x = tensor(randArray(9, 4), place(t));
  const arrow = (y: Tensor) => sum(slice(y, [0], [1]).mul(slice(y, [1], [9]).square()));
  assert.throws(
    () => bandedHessian(arrow, x),
    /bandedHessian: the Hessian's detected pattern has bandwidth 8 for n = 9.*pointless.*sparseHessian \(a star colouring of this pattern needs 2 products\)/s,
  );
  x.dispose();
  assertNoLeak(base, "bandedHessian with detection");
});

testAll("bandedHessian and BandedMatrix: clear errors for what the user passed", (t) => {
  const base = memory();
  const n = 5;
  const prob = randomBandedProblem(n, 1, 1, place(t));
  const x = tensor(randArray(n, 2), place(t));
  const f = prob.f;
  const bad: [unknown, RegExp][] = [
    [-1, /bandwidth -1 is out of range for n = 5; expected 0 ≤ bandwidth < n/],
    [5, /bandwidth 5 is out of range for n = 5/],
    [7, /bandwidth 7 is out of range/],
    [1.5, /bandwidth must be an integer, got number 1\.5/],
    [NaN, /bandwidth must be an integer, got number NaN/],
    [Infinity, /bandwidth must be an integer/],
    ["2", /bandwidth must be an integer, got string 2/],
  ];
  for (const [bw, re] of bad) {
    assert.throws(
      () => bandedHessian(f, x, { bandwidth: bw as number }),
      (e: Error) => /^bandedHessian: /.test(e.message) && re.test(e.message),
      `bandwidth ${String(bw)}`,
    );
  }
  assert.throws(() => bandedHessian(f, x, { bandwidth: 1.5 }), TypeError);
  assert.throws(() => bandedHessian(f, x, { bandwidth: -1 }), RangeError);
  assert.throws(
    () => bandedHessian(42 as unknown as (x: Tensor) => Tensor, x, { bandwidth: 1 }),
    /bandedHessian: expected a function, got/,
  );
  assert.throws(
    () => bandedHessian(f, [1, 2] as unknown as Tensor, { bandwidth: 1 }),
    /bandedHessian: x must be a Tensor/,
  );
  const xi = tensor([1, 2, 3], { dtype: "i32", device: t.dev });
  assert.throws(
    () => bandedHessian((y) => sum(y), xi, { bandwidth: 1 }),
    /bandedHessian: x must be a floating-point tensor, got i32/,
  );
  xi.dispose();
  assert.throws(
    () => bandedHessian(f, x, { bandwith: 1 } as unknown as { bandwidth: number }),
    /bandedHessian: unknown option "bandwith"; did you mean "bandwidth"\?/,
  );
  assert.throws(
    () => bandedHessian(f, x, { bandwidth: 1, method: "cheap" as "direct" }),
    /method must be "direct" or "substitution", got "cheap"/,
  );
  assert.throws(
    () => bandedHessian(f, x, { bandwidth: 1, layout: "diagonal" as "lower" }),
    /layout must be "lower" or "upper", got "diagonal"/,
  );
  assert.throws(
    () => bandedHessian(f, x, { bandwidth: 1, method: "substitution", symmetryCheck: true }),
    /symmetryCheck needs the direct method/,
  );
  // under a transform: x itself traced …
  const underTransform = /bandedHessian: cannot run under a transform/;
  assert.throws(
    () => grad((y: Tensor) => sum(bandedHessian(f, y, { bandwidth: 1 }).data))(x),
    underTransform,
  );
  assert.throws(
    () => jvp((y: Tensor) => bandedHessian(f, y, { bandwidth: 1 }).data, [x], [x]),
    underTransform,
  );
  // … or f closing over a traced value (this used to return the primal band silently,
  // so the outer derivative came out 0)
  const s = tensor(2, place(t));
  const closure = /bandedHessian: f depends on a value that an enclosing transform/;
  assert.throws(
    () => grad((c: Tensor) => sum(bandedHessian((y) => f(y).mul(c), x, { bandwidth: 1 }).data))(s),
    closure,
  );
  assert.throws(
    () => vjp((c: Tensor) => bandedHessian((y) => f(y).mul(c), x, { bandwidth: 1 }).data, s),
    closure,
  );
  s.dispose();
  // an error from f itself propagates, and nothing leaks
  assert.throws(
    () =>
      bandedHessian(
        () => {
          throw new Error("boom");
        },
        x,
        { bandwidth: 1 },
      ),
    /boom/,
  );
  // BandedMatrix construction and its methods
  const z = tensor(new Float64Array(6), { ...place(t), shape: [3, 2] }); // b = 2 ≥ n = 2
  assert.throws(() => new BandedMatrix(z), /BandedMatrix: bandwidth 2 is out of range for n = 2/);
  z.dispose();
  const r1 = tensor([1, 2, 3], place(t));
  assert.throws(
    () => new BandedMatrix(r1),
    /BandedMatrix: band storage must be \[b\+1, n\], got shape \[3\]/,
  );
  const row = r1.reshape([1, 3]);
  assert.throws(
    () => new BandedMatrix(row, "middle" as "lower"),
    /BandedMatrix: layout must be "lower" or "upper"/,
  );
  row.dispose();
  assert.throws(
    () => new BandedMatrix([[1]] as unknown as Tensor),
    /BandedMatrix: data must be a Tensor/,
  );
  assert.throws(
    () => BandedMatrix.fromDense(r1, 0),
    /BandedMatrix\.fromDense: expected a square \[n, n\] tensor, got \[3\]/,
  );
  const sq = tensor(new Float64Array(9), { ...place(t), shape: [3, 3] });
  assert.throws(
    () => BandedMatrix.fromDense(sq, 3),
    /fromDense: bandwidth 3 is out of range for n = 3/,
  );
  assert.throws(() => BandedMatrix.fromDense(sq, 0.5), /fromDense: bandwidth must be an integer/);
  const B = bandedHessian(f, x, { bandwidth: 1 });
  assert.throws(
    () => B.matvec(r1),
    /BandedMatrix\.matvec: expected v of shape \[5\] or \[5, m\], got \[3\]/,
  );
  assert.throws(() => B.toLayout("both" as "lower"), /toLayout: layout must be "lower" or "upper"/);
  B.dispose();
  sq.dispose();
  r1.dispose();
  x.dispose();
  prob.dispose();
  assertNoLeak(base, "errors");
});

testAll("bandedHessian works under tidy/using and frees every intermediate", async (t) => {
  const base = memory();
  const n = 50;
  const prob: BandedProblem = randomBandedProblem(n, 2, 9, place(t));
  const x = tensor(randArray(n, 1), place(t));
  const before = memory();
  {
    using B = bandedHessian(prob.f, x, { bandwidth: 2, symmetryCheck: true });
    // the band and the symmetry error are the only new tensors
    assert.equal(liveSince(before), 2);
    using S = bandedHessian(prob.f, x, { bandwidth: 2, method: "substitution" });
    assert.equal(liveSince(before), 3);
    assert.ok(relMaxError(await S.data.data(), await B.data.data()) < substTol(t, n, 2));
  }
  assertNoLeak(before, "using");
  x.dispose();
  prob.dispose();
  assertNoLeak(base, "tidy");
});

testAll("bandedHessian on WebGPU: no read-back until the band is read", async (t) => {
  const n = 70_000;
  const prob = trajectoryProblem(n, place(t));
  const x = tensor(randArray(n, 12), place(t));
  await t.dev.sync();
  const r0 = t.dev.stats.readbacks;
  const B = bandedHessian(prob.f, x, { bandwidth: 2, symmetryCheck: true });
  const S = bandedHessian(prob.f, x, { bandwidth: 2, method: "substitution" });
  await B.data.ready();
  await S.data.ready();
  assert.equal(t.dev.stats.readbacks, r0, "the probes, products and recovery stay on the device");
  const e = await B.symmetryError!.item();
  assert.equal(t.dev.stats.readbacks, r0 + 1);
  assert.ok(e <= directTol(t) * 12, `symmetry error ${e}`);
  B.dispose();
  S.dispose();
  x.dispose();
  prob.dispose();
}, ["webgpu-f32"]);

Deno.test("the trajectory's closed-form Hessian matches central differences of its gradient (f64)", async () => {
  // an independent check of the trajectory's hand-derived Hessian (the random objective's is
  // checked against the dense hessian above): central differences of ∇f in f64
  const n = 12, h = 1e-5;
  const prob = trajectoryProblem(n, { dtype: "f64", device: cpu });
  const xh = randArray(n, 77);
  const g = (v: Float64Array) => {
    const xt = tensor(v, { dtype: "f64", device: cpu });
    const gt = grad(prob.f)(xt) as Tensor;
    const out = gt.data();
    xt.dispose();
    return out.finally(() => gt.dispose());
  };
  const diag = prob.hessianDiagonals(xh);
  for (let j = 0; j < n; j++) {
    const p = Float64Array.from(xh), m = Float64Array.from(xh);
    p[j] += h;
    m[j] -= h;
    const [gp, gm] = [await g(p), await g(m)];
    for (let i = j; i < Math.min(n, j + 3); i++) {
      const fd = (gp[i] - gm[i]) / (2 * h);
      assert.ok(Math.abs(fd - diag[i - j][j]) < 1e-7, `H[${i}][${j}]: ${fd} vs ${diag[i - j][j]}`);
    }
  }
  prob.dispose();
});

testAll(
  "bandedHessian with bandwidth 0 (one comb probe) where f reads single entries",
  async (t) => {
    // x₀⁴ − x₀² + x₁² read through one-entry slices: the single probe's index is fixed, and
    // the CPU code generator once hoisted a line that read one left inside its loop (a
    // ReferenceError at run time). Closed form: H = diag(12x₀² − 2, 2).
    const base = memory();
    const f = (x: Tensor) => {
      const a = slice(x, [0], [1]), b = slice(x, [1], [2]);
      return a.pow(4).sub(a.square()).add(b.square()).sum();
    };
    for (const x0 of [0, 0.5]) {
      const x = tensor([x0, 0], { dtype: t.dtype, device: t.dev });
      const h = bandedHessian(f, x, { bandwidth: 0, layout: "lower" });
      assertClose(await h.data.data(), [12 * x0 * x0 - 2, 2], { rtol: t.rtol, atol: t.rtol });
      h.dispose();
      x.dispose();
    }
    assertNoLeak(base, "bandwidth 0");
  },
);

/**
 * f = Σ_d c_d Σ_i (x[i+d] − x[i])² + Σ x⁴ / 12 for d = 1 … b: one fused kernel whose band
 * is all comb terms. Closed form: H[i+d][i] = −2 c_d, H[i][i] = x_i² + 2 Σ_d c_d·(number of
 * i ± d inside [0, n)).
 */
function chainProblem(n: number, b: number, o: { dtype: "f32" | "f64"; device: Device }) {
  const c = Array.from({ length: b + 1 }, (_, d) => 1 + d / 4);
  const f = (x: Tensor) => {
    let s = x.pow(4).div(12).sum();
    for (let d = 1; d <= b; d++) {
      s = s.add(slice(x, [d], [n]).sub(slice(x, [0], [n - d])).square().sum().mul(c[d]));
    }
    return s;
  };
  const hessianDiagonals = (xh: ArrayLike<number>) =>
    Array.from({ length: b + 1 }, (_, d) => {
      const row = new Float64Array(n);
      for (let i = 0; i + d < n; i++) {
        if (d > 0) row[i] = -2 * c[d];
        else {
          row[i] = xh[i] * xh[i];
          for (let e = 1; e <= b; e++) row[i] += 2 * c[e] * (+(i + e < n) + +(i - e >= 0));
        }
      }
      return row;
    });
  return { f, hessianDiagonals, dispose: () => {}, o };
}

testAll(
  "the band is written by its products' kernel: every layout, the symmetry check, b past the row registers, and the gathered form",
  async (t) => {
    // The direct recovery is an expression ("band", src/compile/lazy.ts) that the CPU fuses
    // into the split kernel of the comb products (src/backend/cpu/render.ts,
    // bandSplitSource: row sums in locals for b + 1 ≤ 8, in an array beyond, the probes'
    // array when the products read per-probe values of their own) and that WebGPU, and the
    // CPU when the products are not split (more than 64 probes, or the scheduler off),
    // lowers as a gather. Each is checked against the closed-form band (f64, host).
    const base = memory();
    const cases: ["random" | "chain", number, number, boolean][] = [
      ["random", 2, 70_001, true], // past 65,535 entries per invocation on WebGPU
      ["random", 4, 37, true],
      ["chain", 7, 50, true], // 8 rows in locals
      ["chain", 9, 61, true], // 10 rows: the array form
      ["chain", 9, 19, true], // n = 2b + 1: as many probes as columns
      ["random", 9, 61, true], // products split over two kernels: the probes' array
      ["chain", 33, 100, false], // 67 probes: gathered from stored products on the CPU
    ];
    for (const [kind, b, n, split] of cases) {
      const prob = kind === "random"
        ? randomBandedProblem(n, b, 7 * b + n, place(t))
        : chainProblem(n, b, place(t));
      const xh = randArray(n, 11 + b);
      const x = tensor(xh, place(t));
      const diag = prob.hessianDiagonals(xh);
      for (const off of [false, true]) {
        scheduler.enabled = !off;
        try {
          for (const layout of LAYOUTS) {
            const before = scheduleStats.bandSplit;
            const B = bandedHessian(prob.f, x, { bandwidth: b, layout, symmetryCheck: true });
            const what = `${kind} b=${b} n=${n} ${layout}${off ? " (scheduler off)" : ""}`;
            assertBand(await B.data.data(), bandStorage(diag, n, layout), directTol(t), what);
            const e = await B.symmetryError!.item();
            const s = maxAbs(await B.data.data());
            assert.ok(e <= directTol(t) * s, `${what}: symmetry error ${e} (max |H| ${s})`);
            B.dispose();
            // without the check the band's products are read once: on the CPU their kernel
            // writes the band
            const C = bandedHessian(prob.f, x, { bandwidth: b, layout });
            assertBand(await C.data.data(), bandStorage(diag, n, layout), directTol(t), what);
            C.dispose();
            if (t.dev.kind === "cpu") {
              const fused = scheduleStats.bandSplit - before;
              assert.equal(fused, split && !off ? 1 : 0, `${what}: bands written by the kernel`);
            }
          }
        } finally {
          scheduler.enabled = true;
        }
      }
      x.dispose();
      prob.dispose();
    }
    assertNoLeak(base, "band written by its products' kernel");
  },
);

testAll(
  "the demo problem's band (per-probe products of its own) equals the dense Hessian",
  async (t) => {
    // the obstacle sums and the end-point penalty give each probe values of its own beside
    // the comb terms, which the fused kernel writes from its probes' array
    const base = memory();
    const N = 40;
    const p = demoProblem(N, { weighting: "ipopt", dtype: t.dtype, device: t.dev });
    const x = tensor(p.init, place(t));
    const H = hessian(p.penalty)(x);
    const dense = await H.data();
    H.dispose();
    const n = 2 * N, b = 4;
    const ref = bandStorage(denseDiagonals(dense, n, b), n, "lower");
    const B = bandedHessian(p.penalty, x, { bandwidth: b, layout: "lower" });
    // the dense Hessian's products sum the same terms in another order (measured: at most
    // 0.8 ε max |H| in f64, 0.1 ε in f32 on the CPU and lavapipe)
    assertBand(await B.data.data(), ref, directTol(t), `N=${N}`);
    B.dispose();
    x.dispose();
    p.dispose();
    assertNoLeak(base, "demo band");
  },
);
