/**
 * Sizes past the device's buffer limit (issue 8, defect 8): `bandedHessian` takes its
 * probes in chunks when all the products together would not fit one buffer, and `hessian`
 * / `jacobian` refuse a result that cannot be one tensor before doing the products. The
 * limit is lowered for the test (a real WebGPU limit is 128 MiB or more, reached at n in
 * the millions).
 */
import assert from "node:assert/strict";
import { bandedHessian, hessian, jacobian, sum, type Tensor, tensor } from "../mod.ts";
import { assertClose, assertNoLeak, type Backend, testAll } from "./helpers.ts";
import { memory } from "../mod.ts";

/** Runs `fn` with the device's per-buffer limit set to `bytes`. */
async function withLimit<T>(bk: Backend, bytes: number, fn: () => T | Promise<T>): Promise<T> {
  const be = bk.dev.backend as { maxStorageBytes: number };
  const saved = be.maxStorageBytes;
  be.maxStorageBytes = bytes;
  try {
    return await fn();
  } finally {
    be.maxStorageBytes = saved;
  }
}

const B = 3;
/** f(x) = Σ c_i x_i x_{i+3} + Σ x_i⁴ / 12: H_ii = x_i², H_{i,i+3} = c_i, bandwidth 3. */
function problem(bk: Backend, n: number) {
  const xs = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
  const cs = Array.from({ length: n - B }, (_, i) => Math.cos(2 * i) + 0.5);
  const c = tensor(cs, { dtype: bk.dtype, device: bk.dev });
  let calls = 0;
  const f = (x: Tensor) => {
    calls++;
    const a = x.slice([0], [n - B]), b = x.slice([B], [n]);
    return sum(a.mul(b).mul(c)).add(sum(x.square().square()).div(12));
  };
  /** Expected band in `layout` storage, from the closed form. */
  const band = (layout: "lower" | "upper") => {
    const ab = Array.from({ length: B + 1 }, () => new Array(n).fill(0));
    for (let j = 0; j < n; j++) {
      // lower ab[d][j] = H[j+d][j]; upper ab[B-d][j+d] = H[j][j+d]
      const put = (d: number, v: number) => {
        if (layout === "lower") ab[d][j] = v;
        else ab[B - d][j + d] = v;
      };
      put(0, xs[j] ** 2);
      if (j + B < n) put(B, cs[j]);
    }
    return ab.flat();
  };
  return { xs, c, f, band, calls: () => calls };
}

testAll("bandedHessian takes its probes in chunks past the buffer limit", async (bk) => {
  const base = memory();
  const n = 300;
  const { xs, c, f, band, calls } = problem(bk, n);
  const x = tensor(xs, { dtype: bk.dtype, device: bk.dev });
  const item = bk.dtype === "f64" ? 8 : 4;
  // the band fits (4 rows); the 7 products do not: chunks of 2 probes
  const limit = 5 * n * item;
  for (const layout of ["lower", "upper"] as const) {
    const H = await withLimit(bk, limit, () => bandedHessian(f, x, { bandwidth: B, layout }));
    assert.equal(H.layout, layout);
    assertClose(await H.data.data(), band(layout), { rtol: bk.rtol * 10, atol: bk.rtol * 10 });
    H.dispose();
  }
  assert.ok(calls() >= 4 * 2, "the probes went through f in chunks");
  x.dispose();
  c.dispose();
  assertNoLeak(base, "chunked band");
});

testAll("sizes past the buffer limit are refused before any work", async (bk) => {
  const base = memory();
  const n = 300;
  const { xs, c, f, calls } = problem(bk, n);
  const x = tensor(xs, { dtype: bk.dtype, device: bk.dev });
  const item = bk.dtype === "f64" ? 8 : 4;
  await withLimit(bk, 3 * n * item, () => {
    // the band itself (4 rows) is too big
    assert.throws(
      () => bandedHessian(f, x, { bandwidth: B }),
      /bandedHessian: the band of n = 300, bandwidth 3 needs \d+ bytes .*limit of \d+ bytes/,
    );
    // the dense Hessian (n² entries) is refused before its products
    assert.throws(
      () => hessian(f)(x),
      /hessian: the result, \[300,300\] f(32|64), needs \d+ bytes/,
    );
  });
  await withLimit(bk, 5 * n * item, () => {
    // substitution needs all 4 products at once and cannot be chunked: clear, and early
    assert.doesNotThrow(() =>
      bandedHessian(f, x, { bandwidth: B, method: "substitution" }).dispose()
    );
    assert.throws(
      () => bandedHessian(f, x, { bandwidth: B, symmetryCheck: true }),
      /only the direct method without symmetryCheck takes them in chunks/,
    );
  });
  // once to key its programs (src/ad/auto_jit.ts), once traced
  assert.equal(calls(), 2, "f ran only for the substitution band that fitted");
  // jacobian: one evaluation of f to learn the output's shape, then refused
  let jcalls = 0;
  const g = (z: Tensor) => (jcalls++, z.mul(2));
  await withLimit(bk, n * n * item - 1, () => {
    for (const mode of ["rev", "fwd"] as const) {
      jcalls = 0;
      assert.throws(() => jacobian(g, { mode })(x), /jacobian: the result, \[300,300\]/);
      assert.ok(jcalls <= 1, `${mode}: f ran ${jcalls} times before the refusal`);
    }
  });
  x.dispose();
  c.dispose();
  assertNoLeak(base, "refusals");
});
