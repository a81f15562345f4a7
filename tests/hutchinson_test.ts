/**
 * Hessian diagonal and trace estimators against Hessians known in closed form: dense
 * quadratics ½xᵀAx (H = A), Σ cosh xᵢ plus banded couplings (H = diag(cosh x) + band).
 * Statistical checks state their tolerance's justification; exact methods are checked to
 * rounding. The same seed must give the same estimate on CPU f32 and WebGPU f32.
 */
import assert from "node:assert/strict";
import {
  add,
  exp,
  hessianDiagonal,
  hessianTrace,
  matmul,
  memory,
  mul,
  type Progress,
  reshape,
  slice,
  sum,
  Tensor,
  tensor,
} from "../mod.ts";
import {
  assertClose,
  assertNoLeak,
  type Backend,
  cpu,
  gpuDev,
  randArray,
  testAll,
} from "./helpers.ts";
import { fromEigen, type Mat, randomOrthogonal, randomSymmetric } from "./dense_ref.ts";

function mk(b: Backend, data: ArrayLike<number>, shape?: readonly number[]): Tensor {
  return tensor(Float64Array.from(data), {
    shape: shape ?? [data.length],
    dtype: b.dtype,
    device: b.dev,
  });
}

/** f(x) = ½ xᵀ A x, so H = A (A symmetric). */
function quadratic(b: Backend, A: Mat): { f: (x: Tensor) => Tensor; At: Tensor } {
  const At = mk(b, A.flat(), [A.length, A.length]);
  return { f: (x: Tensor) => matmul(x, matmul(At, x)).mul(0.5), At };
}

/**
 * f(x) = Σ cosh xᵢ + Σ cᵢ xᵢ xᵢ₊₁ + Σ dᵢ xᵢ xᵢ₊₂ over the flat x: H = diag(cosh x) with
 * H[i][i±1] = c, H[i][i±2] = d (half-bandwidth 2).
 */
function coshBand(b: Backend, n: number, seed: number) {
  const c = randArray(n - 1, seed + 1), d = randArray(n - 2, seed + 2);
  const ct = mk(b, c), dt = mk(b, d);
  const f = (x: Tensor) => {
    const v = reshape(x, [n]);
    const cosh = exp(v).add(exp(v.neg())).mul(0.5);
    const c1 = mul(ct, mul(slice(v, [0], [n - 1]), slice(v, [1], [n])));
    const c2 = mul(dt, mul(slice(v, [0], [n - 2]), slice(v, [2], [n])));
    return add(add(sum(cosh), sum(c1)), sum(c2));
  };
  return { f, c, d, dispose: () => (ct.dispose(), dt.dispose()) };
}

/** A symmetric matrix with a clear diagonal, entries rounded to f32. */
function testMatrix(n: number, seed: number): Mat {
  const A = randomSymmetric(n, seed);
  for (let i = 0; i < n; i++) A[i][i] = Math.fround(A[i][i] + 3 + i / 2);
  return A;
}

testAll(
  "hutchinson diagonal: unbiased within 4 standard errors, stderr as predicted",
  async (b) => {
    const base = memory();
    const n = 8, m = 512;
    const A = testMatrix(n, 11);
    const { f, At } = quadratic(b, A);
    const x = mk(b, randArray(n, 3));
    const est = await hessianDiagonal(f, x, {
      method: "hutchinson",
      samples: m,
      seed: 7,
      batch: 50,
    });
    assert.equal(est.samples, m);
    assert.deepEqual(est.value.shape, [n]);
    const v = await est.value.data(), se = await est.stderr!.data();
    for (let i = 0; i < n; i++) {
      // Entry i is a mean of m i.i.d. terms Aᵢᵢ + Σ_{j≠i} Aᵢⱼ vᵢvⱼ: variance Σ_{j≠i} Aᵢⱼ².
      const sd = Math.sqrt(A[i].reduce((s, a, j) => s + (j === i ? 0 : a * a), 0));
      // 4 standard errors: a correct estimator fails this for one of 8 entries with
      // probability < 8·6e-5 (CLT); the seed is fixed, so the test is deterministic.
      assert.ok(
        Math.abs(v[i] - A[i][i]) <= 4 * se[i],
        `entry ${i}: ${v[i]} vs ${A[i][i]} ± ${se[i]}`,
      );
      // The sample sd over 512 probes has relative spread ≈ 1/√(2m) ≈ 3%; 20% is > 6 spreads.
      assert.ok(
        Math.abs(se[i] / (sd / Math.sqrt(m)) - 1) < 0.2,
        `stderr ${i}: ${se[i]} vs ${sd / Math.sqrt(m)}`,
      );
    }
    est.value.dispose(), est.stderr!.dispose(), At.dispose(), x.dispose();
    assertNoLeak(base);
  },
);

testAll("hutchinson trace: unbiased within 4 standard errors, stderr as predicted", async (b) => {
  const base = memory();
  const n = 10, m = 600;
  const A = testMatrix(n, 12);
  const { f, At } = quadratic(b, A);
  const x = mk(b, randArray(n, 4));
  const est = await hessianTrace(f, x, { method: "hutchinson", samples: m, seed: 3, batch: 64 });
  const tr = A.reduce((s, row, i) => s + row[i], 0);
  // vᵀAv = tr A + Σ_{i≠j} Aᵢⱼ vᵢvⱼ: variance 2 Σ_{i<j}·2 Aᵢⱼ² = 2 Σ_{i≠j} Aᵢⱼ²
  let off = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) off += A[i][j] ** 2;
  const predicted = Math.sqrt(2 * off / m);
  assert.equal(typeof est.value, "number");
  // 4 standard errors: a false failure has probability 6e-5 under the CLT
  assert.ok(Math.abs(est.value - tr) <= 4 * est.stderr!, `${est.value} vs ${tr} ± ${est.stderr}`);
  // relative spread of the sample sd ≈ 1/√(2m) ≈ 3%; 20% is > 6 spreads
  assert.ok(Math.abs(est.stderr! / predicted - 1) < 0.2, `stderr ${est.stderr} vs ${predicted}`);
  At.dispose(), x.dispose();
  assertNoLeak(base);
});

testAll("comb diagonal and trace are exact for a banded Hessian (any x shape)", async (b) => {
  const base = memory();
  const n = 30;
  const { f, c, d, dispose } = coshBand(b, n, 21);
  const xs = randArray(n, 5);
  const exact = Array.from(xs, (v) => Math.cosh(v));
  const tol = b.dtype === "f64" ? { rtol: 1e-10, atol: 1e-12 } : { rtol: 1e-5, atol: 1e-5 };
  for (const shape of [[n], [5, 6]]) {
    const x = mk(b, xs, shape);
    for (const bw of [2, 4]) {
      const est = await hessianDiagonal(f, x, { method: "comb", bandwidth: bw });
      assert.equal(est.samples, bw + 1);
      assert.equal(est.stderr, undefined, "an exact method has no standard error");
      assert.deepEqual(est.value.shape, shape);
      assertClose(await est.value.data(), exact, { ...tol, msg: `comb b=${bw} ${shape}` });
      est.value.dispose();
    }
    // Too small a bandwidth (1 for a band of 2) adds the entries 2 apart: H[i][i±2].
    const wrong = await hessianDiagonal(f, x, { method: "comb", bandwidth: 1 });
    const expected = exact.map((h, i) => h + (i >= 2 ? d[i - 2] : 0) + (i + 2 < n ? d[i] : 0));
    assertClose(await wrong.value.data(), expected, { ...tol, msg: "bandwidth 1" });
    wrong.value.dispose();
    const tr = await hessianTrace(f, x, { method: "comb", bandwidth: 2, batch: 2 });
    assertClose([tr.value], [exact.reduce((s, v) => s + v, 0)], tol);
    x.dispose();
  }
  assert.ok(c.length === n - 1);
  dispose();
  assertNoLeak(base);
});

testAll("a diagonal Hessian is recovered exactly by Hutchinson (no variance)", async (b) => {
  const base = memory();
  const xs = [0.5, -1, 2, 0.25];
  const x = mk(b, xs);
  const f = (t: Tensor) => t.pow(4).sum(); // H = diag(12 x²)
  const est = await hessianDiagonal(f, x, { method: "hutchinson", samples: 5, seed: 2 });
  assertClose(await est.value.data(), xs.map((v) => 12 * v * v), { rtol: b.rtol * 10 });
  assertClose(await est.stderr!.data(), [0, 0, 0, 0], { atol: 1e-5 });
  const one = await hessianDiagonal(f, x, { method: "hutchinson", samples: 1, seed: 2 });
  assert.equal(one.stderr, undefined, "one sample has no standard error");
  est.value.dispose(), est.stderr!.dispose(), one.value.dispose(), x.dispose();
  assertNoLeak(base);
});

Deno.test("hutchinson error falls like 1/√samples (fitted slope −1/2 ± 0.15)", async () => {
  const b: Backend = { name: "cpu-f64", dev: cpu, dtype: "f64", rtol: 1e-10 };
  const n = 10;
  const A = testMatrix(n, 13);
  const { f, At } = quadratic(b, A);
  const x = mk(b, randArray(n, 6));
  const ms = [16, 64, 256, 1024], seeds = 16;
  const logM: number[] = [], logErr: number[] = [];
  for (const [mi, m] of ms.entries()) {
    let se = 0;
    for (let s = 0; s < seeds; s++) {
      const est = await hessianDiagonal(f, x, {
        method: "hutchinson",
        samples: m,
        seed: 1000 * mi + s,
        batch: 256,
      });
      const v = await est.value.data();
      for (let i = 0; i < n; i++) se += (v[i] - A[i][i]) ** 2;
      est.value.dispose(), est.stderr!.dispose();
    }
    logM.push(Math.log(m));
    logErr.push(0.5 * Math.log(se / (seeds * n)));
  }
  const mx = logM.reduce((s, v) => s + v) / ms.length,
    my = logErr.reduce((s, v) => s + v) / ms.length;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < ms.length; i++) {
    sxy += (logM[i] - mx) * (logErr[i] - my);
    sxx += (logM[i] - mx) ** 2;
  }
  const slope = sxy / sxx;
  // Each RMS error averages 160 squared errors (relative spread ≈ √(2/160)/2 ≈ 6%), so the
  // fitted slope's standard error is ≈ 0.06/√Σ(log m − mean)² ≈ 0.02: ±0.15 is ~8 of them.
  assert.ok(Math.abs(slope + 0.5) <= 0.15, `slope ${slope} (log RMS errors ${logErr})`);
  At.dispose(), x.dispose();
});

/** ½xᵀAx with A = Q diag(λ) Qᵀ: five large eigenvalues over 55 small ones. */
function lowRankDominated(b: Backend) {
  const n = 60;
  const lam = Array.from({ length: n }, (_, i) => (i < 5 ? [200, 150, 100, 80, 60][i] : 0.5));
  const A = fromEigen(randomOrthogonal(n, 31), lam);
  return { ...quadratic(b, A), n, tr: lam.reduce((s, v) => s + v) };
}

Deno.test("hutch++ beats hutchinson for the same matvecs on a low-rank-dominated Hessian", async () => {
  const b: Backend = { name: "cpu-f64", dev: cpu, dtype: "f64", rtol: 1e-10 };
  const { f, At, n, tr } = lowRankDominated(b);
  const x = mk(b, randArray(n, 7));
  const seeds = 20, m = 30;
  let eh = 0, epp = 0, mpp = 0;
  const ppValues: number[] = [];
  for (let s = 0; s < seeds; s++) {
    const h = await hessianTrace(f, x, { method: "hutchinson", samples: m, seed: s });
    const pp = await hessianTrace(f, x, { method: "hutch++", samples: m, seed: s });
    assert.equal(pp.samples, m);
    eh += (h.value - tr) ** 2;
    epp += (pp.value - tr) ** 2;
    mpp += pp.value / seeds;
    ppValues.push(pp.value);
  }
  const rmsH = Math.sqrt(eh / seeds), rmsPP = Math.sqrt(epp / seeds);
  // Theory for this spectrum: Hutchinson's sd ≈ √(2‖A‖²_F/m) ≈ 70, Hutch++'s remainder
  // (55 eigenvalues of 0.5) ≈ √(2·14/10) ≈ 1.7: a factor ≈ 40; we ask for 5.
  assert.ok(rmsPP * 5 < rmsH, `hutch++ RMS ${rmsPP} vs hutchinson ${rmsH}`);
  // unbiased: the mean of 20 estimates is within 4 standard errors of the mean
  const sd = Math.sqrt(ppValues.reduce((s, v) => s + (v - mpp) ** 2, 0) / (seeds - 1));
  assert.ok(Math.abs(mpp - tr) <= 4 * sd / Math.sqrt(seeds) + 1e-9, `mean ${mpp} vs ${tr}`);
  At.dispose(), x.dispose();
});

testAll("hutch++ is exact when the Hessian's rank is within the sketch", async (b) => {
  const base = memory();
  const n = 30;
  const lam = Array.from({ length: n }, (_, i) => (i < 3 ? [7, -4, 2.5][i] : 0));
  const { f, At } = quadratic(b, fromEigen(randomOrthogonal(n, 41), lam));
  const x = mk(b, randArray(n, 8));
  // 30 matvecs: a sketch of 10 ≥ rank 3, so Q spans range(H) and the remainder is 0
  const est = await hessianTrace(f, x, { method: "hutch++", samples: 30, seed: 5, batch: 4 });
  const tol = b.dtype === "f64" ? 1e-9 : 2e-4;
  assertClose([est.value], [5.5], { atol: tol, msg: "trace" });
  assert.ok(est.stderr! < tol, `stderr ${est.stderr}`);
  At.dispose(), x.dispose();
  assertNoLeak(base);
});

Deno.test("probes do not depend on batching: batch 1, 7 and all give the same estimate", async () => {
  const b: Backend = { name: "cpu-f64", dev: cpu, dtype: "f64", rtol: 1e-10 };
  const { f, dispose } = coshBand(b, 12, 50);
  const x = mk(b, randArray(12, 9));
  const ref = await hessianDiagonal(f, x, { method: "hutchinson", samples: 20, seed: 4 });
  const refT = await hessianTrace(f, x, { method: "hutchinson", samples: 20, seed: 4 });
  for (const batch of [1, 7]) {
    const e = await hessianDiagonal(f, x, { method: "hutchinson", samples: 20, seed: 4, batch });
    assertClose(await e.value.data(), await ref.value.data(), { rtol: 1e-12, atol: 1e-12 });
    assertClose(await e.stderr!.data(), await ref.stderr!.data(), { rtol: 1e-9, atol: 1e-12 });
    const t = await hessianTrace(f, x, { method: "hutchinson", samples: 20, seed: 4, batch });
    assertClose([t.value, t.stderr!], [refT.value, refT.stderr!], { rtol: 1e-12 });
    e.value.dispose(), e.stderr!.dispose();
  }
  const other = await hessianTrace(f, x, { method: "hutchinson", samples: 20, seed: 5 });
  assert.notEqual(other.value, refT.value, "another seed draws other probes");
  ref.value.dispose(), ref.stderr!.dispose(), x.dispose(), dispose();
});

Deno.test({
  name: "the same seed gives the same estimates on CPU f32 and WebGPU f32",
  ignore: !gpuDev,
  fn: async () => {
    const results: number[][] = [];
    for (const dev of [cpu, gpuDev!]) {
      const b: Backend = { name: dev.kind, dev, dtype: "f32", rtol: 1e-5 };
      const { f, dispose } = coshBand(b, 40, 60);
      const x = mk(b, randArray(40, 10));
      const d = await hessianDiagonal(f, x, {
        method: "hutchinson",
        samples: 24,
        seed: 9,
        batch: 8,
      });
      const t = await hessianTrace(f, x, { method: "hutchinson", samples: 24, seed: 9 });
      const pp = await hessianTrace(f, x, { method: "hutch++", samples: 24, seed: 9 });
      results.push([
        ...await d.value.data(),
        ...await d.stderr!.data(),
        t.value,
        t.stderr!,
        pp.value,
        pp.stderr!,
      ]);
      d.value.dispose(), d.stderr!.dispose(), x.dispose(), dispose();
    }
    // identical probes; only f32 rounding of the HVP and the reductions differs
    assertClose(results[1], results[0], { rtol: 1e-5, atol: 1e-5 });
  },
});

testAll("comb diagonal at n > 65536 (tiled comb probes)", async (b) => {
  const n = 70001;
  const xs = randArray(n, 11);
  const x = mk(b, xs);
  // f = Σ cosh x + ½ Σ xᵢxᵢ₊₁: bandwidth 1, diagonal cosh x
  const f = (t: Tensor) =>
    add(
      sum(exp(t).add(exp(t.neg())).mul(0.5)),
      sum(mul(slice(t, [0], [n - 1]), slice(t, [1], [n]))).mul(0.5),
    );
  const est = await hessianDiagonal(f, x, { method: "comb", bandwidth: 1 });
  assertClose(await est.value.data(), Array.from(xs, Math.cosh), { rtol: 1e-5, atol: 1e-6 });
  est.value.dispose(), x.dispose();
}, ["cpu-f32", "webgpu-f32"]);

Deno.test("onProgress reports probes after every batched pass, for each method", async () => {
  const n = 6;
  const x = tensor(randArray(n, 5), { dtype: "f64" });
  const f = (y: Tensor) => y.pow(4).sum().add(y.sum().square());
  const runs: [string, (cb: (p: Progress) => void) => Promise<unknown>, number[]][] = [
    [
      "diagonal, hutchinson",
      (cb) => hessianDiagonal(f, x, { method: "hutchinson", samples: 7, batch: 3, onProgress: cb }),
      [3, 6, 7],
    ],
    [
      "diagonal, comb",
      (cb) => hessianDiagonal(f, x, { method: "comb", bandwidth: 5, batch: 4, onProgress: cb }),
      [4, 6],
    ],
    [
      "trace, hutchinson",
      (cb) => hessianTrace(f, x, { method: "hutchinson", samples: 5, batch: 2, onProgress: cb }),
      [2, 4, 5],
    ],
    [
      // 9 products: sketch 3, exact part 3, remainder 3
      "trace, hutch++",
      (cb) => hessianTrace(f, x, { method: "hutch++", samples: 9, batch: 2, onProgress: cb }),
      [2, 3, 5, 6, 8, 9],
    ],
  ];
  for (const [name, run, want] of runs) {
    const seen: number[] = [];
    let total = 0;
    const r = await run((p) => {
      seen.push(p.done);
      total = p.total;
      assert.equal(p.unit, "probes");
    }) as { value: unknown; stderr?: unknown };
    assert.deepEqual(seen, want, name);
    assert.equal(total, want[want.length - 1], name);
    for (const v of [r.value, r.stderr]) if (v instanceof Tensor) v.dispose();
  }
  await assert.rejects(
    () => hessianTrace(f, x, { method: "hutchinson", n_samples: 4 } as never),
    /hessianTrace: unknown option "n_samples"; did you mean "samples"\?/,
  );
  x.dispose();
});

Deno.test("estimator errors name the problem", async () => {
  const x = tensor([1, 2, 3]);
  const f = (t: Tensor) => t.square().sum();
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => hessianDiagonal(f, x, { method: "nope" as any }),
    /method must be "hutchinson" or "comb"/,
  );
  await assert.rejects(() => hessianDiagonal(f, x, { method: "comb" }), /bandwidth/);
  await assert.rejects(
    () => hessianTrace(f, x, { method: "hutch++", samples: 2 }),
    /needs samples ≥ 3/,
  );
  await assert.rejects(
    () => hessianDiagonal(f, x, { method: "hutchinson", samples: 0 }),
    /samples must be an integer ≥ 1/,
  );
  // deno-lint-ignore no-explicit-any
  await assert.rejects(() => hessianTrace(f, [1, 2] as any, { method: "hutchinson" }), /Tensor/);
  x.dispose();
});
