/**
 * Kernel errors belong to the tensor they produced (issue 8, defect 1). A singular `solve`,
 * a non-SPD `choleskyBanded` / `solveBanded`, a singular `logdet` and a divergent `neumann`:
 * on the CPU the call throws at once; on WebGPU (kernels cannot throw) every read of the
 * failed result, and of anything computed from it (deferred expressions, opaque kernels,
 * copies to the CPU), raises the error, and no other read does: not an unrelated read made
 * after it, not a sibling in `Promise.all`, not a read after the failed result was disposed
 * unread.
 */
import assert from "node:assert/strict";
import {
  choleskyBanded,
  concat,
  grad,
  logdet,
  matmul,
  memory,
  neumann,
  solve,
  solveBanded,
  solveBandedGeneral,
  sum,
  type Tensor,
  tensor,
  tidy,
  to,
} from "../mod.ts";
import { assertNoLeak, type Backend, cpu, testAll } from "./helpers.ts";

interface Failing {
  name: string;
  /** Makes the failing call (inputs created inside, so a CPU throw leaks nothing). */
  make: (bk: Backend) => Tensor;
  pattern: RegExp;
}

const mk = (bk: Backend, data: number[], shape?: number[]) =>
  tensor(data, { shape, dtype: bk.dtype, device: bk.dev });

const CASES: Failing[] = [
  {
    name: "solve of a singular matrix",
    make: (bk) => {
      using a = mk(bk, [1, 2, 2, 4], [2, 2]);
      using b = mk(bk, [1, 1], [2, 1]);
      return solve(a, b);
    },
    pattern: /solve: the matrix is singular/,
  },
  {
    name: "solveBanded of a matrix that is not positive definite",
    // A = [[1, 2, 0], [2, 1, 1], [0, 1, 3]] in upper band storage
    make: (bk) => {
      using ab = mk(bk, [0, 2, 1, 1, 1, 3], [2, 3]);
      using r = mk(bk, [1, 7, 3]);
      return solveBanded(ab, r);
    },
    pattern: /solveBanded: the leading minor of order 2 is not positive definite/,
  },
  {
    name: "solveBandedGeneral of a singular matrix",
    // A = [[1, 2, 0], [1, 2, 0], [0, 1, 3]]: rows 0 and 1 equal (l = u = 1); the zero pivot comes at step 3
    make: (bk) => {
      using ab = mk(bk, [0, 2, 0, 1, 2, 3, 1, 1, 0], [3, 3]);
      using r = mk(bk, [1, 1, 1]);
      return solveBandedGeneral([1, 1], ab, r);
    },
    pattern:
      /solveBandedGeneral: the matrix is singular: the pivot U\[2\]\[2\] .* \(LAPACK info = 3\)/,
  },
  {
    name: "choleskyBanded of a matrix that is not positive definite",
    make: (bk) => {
      using ab = mk(bk, [0, 2, 1, 1, 1, 3], [2, 3]);
      return choleskyBanded(ab);
    },
    pattern: /choleskyBanded: the leading minor of order 2 is not positive definite/,
  },
  {
    name: "logdet of a singular matrix",
    make: (bk) => {
      using a = mk(bk, [1, 2, 2, 4], [2, 2]);
      return logdet(a);
    },
    pattern: /logdet: the matrix is singular/,
  },
  {
    name: "a divergent neumann series",
    make: (bk) => {
      using d = mk(bk, [1, 4]);
      using b = mk(bk, [1, 1]);
      return neumann((v) => v.mul(d), b, { terms: 200, scale: 0.9 });
    },
    pattern: /neumann: the series diverged/,
  },
];

/** A read unrelated to the failure: a gradient, with a known value. */
async function unrelated(bk: Backend): Promise<void> {
  using x = mk(bk, [1, 2, 3]);
  using g = grad((z: Tensor) => sum(z.mul(z)))(x) as Tensor;
  assert.deepEqual(Array.from(await g.data()), [2, 4, 6]);
}

for (const c of CASES) {
  testAll(`error ownership: ${c.name}`, async (bk) => {
    const base = memory();
    if (bk.dev.kind === "cpu") {
      // a synchronous backend knows at once: the call throws, and nothing is left behind
      assert.throws(() => c.make(bk), c.pattern);
      await unrelated(bk);
      assertNoLeak(base, c.name);
      return;
    }
    const bad = c.make(bk);
    // an unrelated read made after the failing call is not poisoned
    await unrelated(bk);
    // every read of the failed result raises, each time
    await assert.rejects(() => bad.data(), c.pattern);
    await assert.rejects(() => bad.data(), c.pattern);
    await assert.rejects(() => bad.ready(), c.pattern);
    // and so does every read of what is computed from it: fused (deferred) expressions,
    // a reduction, opaque kernels (matmul, concat), and a copy to the CPU
    const flat = bad.reshape([bad.size]);
    const derived = tidy(() => [
      bad.add(1).exp(),
      sum(bad.mul(2)),
      matmul(flat.reshape([1, bad.size]), flat.reshape([bad.size, 1])),
      concat([flat, flat], 0),
    ]);
    for (const d of derived) await assert.rejects(() => d.data(), c.pattern);
    const host = to(bad, cpu);
    await assert.rejects(() => host.data(), c.pattern);
    const hostDerived = host.add(1);
    await assert.rejects(() => hostDerived.data(), c.pattern, "a CPU op on the failed copy");
    assert.throws(
      () => tidy(() => matmul(host.reshape([1, bad.size]), host.reshape([bad.size, 1]))),
      c.pattern,
    );
    // Promise.all: only the failed read rejects; its unrelated siblings resolve
    const ok = mk(bk, [5, 6]);
    const okSum = ok.sum();
    const results = await Promise.allSettled([ok.data(), bad.data(), okSum.data()]);
    assert.equal(results[0].status, "fulfilled");
    assert.equal(results[1].status, "rejected");
    assert.match(((results[1] as PromiseRejectedResult).reason as Error).message, c.pattern);
    assert.equal(results[2].status, "fulfilled");
    assert.deepEqual(Array.from((results[2] as PromiseFulfilledResult<Float32Array>).value), [11]);
    for (const t of [...derived, flat, host, hostDerived, ok, okSum, bad]) t.dispose();
    // a failed result disposed unread poisons nothing
    const unread = c.make(bk);
    unread.dispose();
    await unrelated(bk);
    assertNoLeak(base, c.name);
  });
}

testAll("error ownership: a successful result after a failed one reads normally", async (bk) => {
  if (bk.dev.kind === "cpu") return; // the CPU throws at the call (tested above)
  const base = memory();
  {
    using a = mk(bk, [1, 2, 2, 4], [2, 2]);
    using good = mk(bk, [2, 0, 0, 4], [2, 2]);
    using b = mk(bk, [2, 8], [2, 1]);
    using bad = solve(a, b);
    using x = solve(good, b);
    // the second solve ran in the same batch of kernels as the failed one
    assert.deepEqual(Array.from(await x.data()), [1, 2]);
    await assert.rejects(() => bad.data(), /singular/);
    // 100 parallel reads, one of them failed: exactly one rejection
    const reads = Array.from({ length: 100 }, (_, i) => (i === 37 ? bad : x).data());
    const settled = await Promise.allSettled(reads);
    assert.deepEqual(
      settled.flatMap((s, i) => (s.status === "rejected" ? [i] : [])),
      [37],
    );
  }
  assertNoLeak(base, "successful after failed");
}, ["webgpu-f32"]);
