/**
 * The partitioned WebGPU banded Cholesky solver (src/backend/webgpu/band_partition.ts), used
 * by `solveBanded` on WebGPU for one right-hand side, against the CPU f64 solver (itself
 * checked against independent references in banded_solve_test.ts): systems past lavapipe's
 * 65,535 loop passes per invocation, sizes on either side of every partition boundary, both
 * storages, batches cut into partitions, SPD matrices that are far from diagonally dominant
 * (their partitions' blocks and the separators' Schur complement ill-conditioned), failures
 * in an interior and on a separator, and the dispatches a solve takes.
 */
import assert from "node:assert/strict";
import { solveBanded, type Tensor, tensor } from "../mod.ts";
import { cpu, gpuDev, rng } from "./helpers.ts";
import { partitionPlan } from "../src/backend/webgpu/band_partition.ts";

const gpuTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `${name} [webgpu-f32]`, ignore: !gpuDev, fn });

/** Upper or lower band storage [batch, b+1, n] from diagonals d[k][j] = A[j − k][j]. */
function storage(d: Float64Array[][], n: number, b: number, lower: boolean): Float64Array {
  const batch = d.length;
  const ab = new Float64Array(batch * (b + 1) * n).fill(NaN); // corners must never be read
  for (let t = 0; t < batch; t++) {
    for (let k = 0; k <= b; k++) {
      for (let j = k; j < n; j++) {
        if (lower) ab[(t * (b + 1) + k) * n + j - k] = d[t][k][j];
        else ab[(t * (b + 1) + b - k) * n + j] = d[t][k][j];
      }
    }
  }
  return ab;
}

/** Diagonals of a random SPD band, diagonally dominant by a margin of 1; values exact in f32. */
function dominant(n: number, b: number, seed: number): Float64Array[] {
  const r = rng(seed);
  const d = Array.from({ length: b + 1 }, () => new Float64Array(n));
  for (let k = 1; k <= b; k++) for (let j = k; j < n; j++) d[k][j] = Math.fround(r() - 0.5);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 1; k <= b; k++) s += Math.abs(d[k][j]) + (j + k < n ? Math.abs(d[k][j + k]) : 0);
    d[0][j] = Math.fround(1 + s + r());
  }
  return d;
}

function rhsOf(len: number, seed: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: len }, () => Math.fround(2 * r() - 1));
}

async function solveOn(
  dev: "cpu" | "gpu",
  ab: Float64Array,
  r: Float64Array,
  shape: number[],
  lower: boolean,
): Promise<Float64Array> {
  const opts = dev === "cpu"
    ? { dtype: "f64" as const, device: cpu }
    : { dtype: "f32" as const, device: gpuDev! };
  const batched = shape.length === 3;
  const n = shape[shape.length - 1];
  const a = tensor(ab, { shape, ...opts });
  const x = tensor(r, { shape: batched ? [shape[0], n] : [n], ...opts });
  const y: Tensor = solveBanded(a, x, { lower });
  const v = Float64Array.from(await y.data());
  for (const t of [a, x, y]) t.dispose();
  return v;
}

/** max |x − ref| / max |ref| over each system of the batch. */
function relErr(x: Float64Array, ref: Float64Array, batch: number): number {
  const n = x.length / batch;
  let worst = 0;
  for (let t = 0; t < batch; t++) {
    let e = 0, s = 0;
    for (let i = t * n; i < (t + 1) * n; i++) {
      e = Math.max(e, Math.abs(x[i] - ref[i]));
      s = Math.max(s, Math.abs(ref[i]));
    }
    worst = Math.max(worst, e / s);
  }
  return worst;
}

/**
 * f32 tolerance for the dominant matrices: κ ≤ 1 + 2·b·0.5·2 / 1 ≤ 2b + 1, and Cholesky's
 * backward error is ≈ (b + 1)·eps₃₂ per row, so the error is ≲ (b + 1)(2b + 1)·6e-8; the
 * separators' system adds one more solve of the same kind: twice that, at least 2e-6.
 */
const tol = (b: number) => Math.max(2e-6, 2 * (b + 1) * (2 * b + 1) * 6e-8);

gpuTest("long systems (n = 70,001), b = 0 … 8, upper and lower storage", async () => {
  const n = 70_001;
  for (const b of [0, 1, 2, 3, 5, 8]) {
    assert.ok(partitionPlan(1, n, b).parts > 1, `b = ${b}: partitioned`);
    const d = dominant(n, b, 100 + b);
    const r = rhsOf(n, 7);
    for (const lower of b === 2 ? [false, true] : [false]) {
      const ab = storage([d], n, b, lower);
      const ref = await solveOn("cpu", ab, r, [b + 1, n], lower);
      const x = await solveOn("gpu", ab, r, [b + 1, n], lower);
      const e = relErr(x, ref, 1);
      assert.ok(e <= tol(b), `b = ${b}, ${lower ? "lower" : "upper"}: error ${e.toExponential(2)}`);
    }
  }
});

gpuTest(
  "sizes on either side of the partition boundaries, and batches of partitioned systems",
  async () => {
    // (n, b, partitions): one partition short of two; exactly two, whose separators' system
    // (b rows) is shorter than its band (2b − 1); the last partition one row short of a
    // whole one more; long systems where s = ⌈n / 1024⌉ changes by one
    const cases: [number, number, number][] = [
      [127, 2, 1],
      [128, 2, 2],
      [129, 3, 2],
      [128, 5, 2],
      [191, 2, 2],
      [192, 2, 3],
      [102_400, 2, 1024],
      [102_401, 2, 1013],
    ];
    for (const [n, b, parts] of cases) {
      const plan = partitionPlan(1, n, b);
      assert.equal(plan.parts, parts, `n = ${n}, b = ${b}: the cut tested`);
      const d = dominant(n, b, n);
      const r = rhsOf(n, n + 1);
      const ab = storage([d], n, b, false);
      const e = relErr(
        await solveOn("gpu", ab, r, [b + 1, n], false),
        await solveOn("cpu", ab, r, [b + 1, n], false),
        1,
      );
      assert.ok(
        e <= tol(b),
        `n = ${n}, b = ${b} (${parts} × ${plan.s}): error ${e.toExponential(2)}`,
      );
    }
    // a batch of 3 long systems, each cut into partitions, and a batch of many short ones (one each)
    for (const [batch, n, bw] of [[3, 70_001, 3], [300, 200, 1]]) {
      const plan = partitionPlan(batch, n, bw);
      assert.equal(plan.parts > 1, n > 1000, `batch ${batch} × ${n}: ${plan.parts} partitions`);
      const ds = Array.from({ length: batch }, (_, t) => dominant(n, bw, 500 + t));
      const ab = storage(ds, n, bw, true);
      const r = rhsOf(batch * n, 9);
      const e = relErr(
        await solveOn("gpu", ab, r, [batch, bw + 1, n], true),
        await solveOn("cpu", ab, r, [batch, bw + 1, n], true),
        batch,
      );
      assert.ok(e <= tol(bw), `batch ${batch} × n = ${n}: error ${e.toExponential(2)}`);
    }
  },
);

/**
 * SPD but far from diagonally dominant: A = tridiag(−1, 2 + δ, −1) (κ ≈ 4/δ for long
 * systems; every partition block and the separators' Schur complement are ill-conditioned
 * too, nearly singular as δ → 0), and a pentadiagonal A = T² + δI. The partitioned solve
 * needs no pivoting (a reordering of an SPD matrix and its Schur complements stay SPD), so
 * its error should be that of the sequential Cholesky solve in f32: compared with the
 * sequential WebGPU kernels (two right-hand sides take that path) and bounded by κ·eps₃₂
 * times a small factor.
 */
gpuTest("ill-conditioned SPD systems: as accurate as the sequential solve", async () => {
  const n = 70_001;
  const delta = 1e-3;
  const tri = [new Float64Array(n).fill(2 + delta), new Float64Array(n).fill(-1)];
  // T² for T = tridiag(−1, 2, −1): diagonals 6, −4, 1 (with the ends' corrections), plus δ
  const penta = [
    new Float64Array(n).fill(6 + delta),
    new Float64Array(n).fill(-4),
    new Float64Array(n).fill(1),
  ];
  penta[0][0] = penta[0][n - 1] = 5 + delta;
  for (
    const [name, d, kappa] of [["tridiagonal", tri, 4 / delta], [
      "pentadiagonal",
      penta,
      16 / delta,
    ]] as const
  ) {
    const b = d.length - 1;
    const ab = storage([d as Float64Array[]], n, b, false);
    const r = rhsOf(n, 3);
    const ref = await solveOn("cpu", ab, r, [b + 1, n], false);
    const x = await solveOn("gpu", ab, r, [b + 1, n], false);
    // the sequential kernels: the same right-hand side twice
    const a2 = tensor(ab, { shape: [b + 1, n], device: gpuDev!, dtype: "f32" });
    const r2 = tensor(Float64Array.from({ length: 2 * n }, (_, i) => r[i >> 1]), {
      shape: [n, 2],
      device: gpuDev!,
      dtype: "f32",
    });
    const y2 = solveBanded(a2, r2);
    const seq = Float64Array.from(await y2.data()).filter((_, i) => i % 2 === 0);
    for (const t of [a2, r2, y2]) t.dispose();
    const e = relErr(x, ref, 1), eSeq = relErr(seq, ref, 1);
    assert.ok(
      e <= 4 * eSeq + 1e-6,
      `${name}: partitioned ${e.toExponential(2)} vs sequential ${eSeq.toExponential(2)}`,
    );
    assert.ok(
      e <= 2 * kappa * 6e-8,
      `${name}: error ${e.toExponential(2)} > 2 κ eps (κ ≈ ${kappa})`,
    );
  }
});

gpuTest(
  "not positive definite: the error names the partition's rows or the separators",
  async () => {
    const n = 70_001, b = 2;
    const { s, parts } = partitionPlan(1, n, b);
    assert.ok(parts > 2);
    const attempt = async (bad: number, pattern: RegExp) => {
      const d = dominant(n, b, 1);
      d[0][bad] = -1;
      const a = tensor(storage([d], n, b, false), {
        shape: [b + 1, n],
        device: gpuDev!,
        dtype: "f32",
      });
      const r = tensor(rhsOf(n, 2), { device: gpuDev!, dtype: "f32" });
      const x = solveBanded(a, r);
      await assert.rejects(() => x.data(), (e: Error) => {
        assert.equal(e.name, "RangeError");
        assert.match(e.message, pattern);
        return true;
      });
      for (const t of [a, r, x]) t.dispose();
    };
    // inside the interior of partition 1: the block's pivot at that row fails
    const row = s + 10;
    await attempt(
      row,
      new RegExp(
        `solveBanded: the matrix is not positive definite: its principal submatrix of rows ${s} to ${row} is not`,
      ),
    );
    // on the separator below partition 1 (its second row): only the separators' system sees it
    await attempt(
      2 * s - 1,
      new RegExp(
        `solveBanded: the matrix is not positive definite: eliminating the blocks between the ` +
          `partitions' boundary rows leaves a Schur complement on those rows that is not ` +
          `\\(its first failing pivot: row ${2 * s - 1}\\)`,
      ),
    );
  },
);

gpuTest("dispatches: 4 for one long system, 1 for a batch of short ones", async () => {
  const dev = gpuDev!;
  for (const [batch, n, expected] of [[1, 1_000_000, 4], [1024, 1024, 1]]) {
    const b = 2;
    const ab = storage(Array.from({ length: batch }, () => dominant(n, b, 3)), n, b, false);
    const a = tensor(ab, {
      shape: batch === 1 ? [b + 1, n] : [batch, b + 1, n],
      device: dev,
      dtype: "f32",
    });
    const r = tensor(rhsOf(batch * n, 4), {
      shape: batch === 1 ? [n] : [batch, n],
      device: dev,
      dtype: "f32",
    });
    const before = dev.stats.dispatches;
    const x = solveBanded(a, r);
    assert.equal(dev.stats.dispatches - before, expected, `batch ${batch} × n = ${n}`);
    await x.data();
    for (const t of [a, r, x]) t.dispose();
  }
});
