/**
 * Nothing silently wrong, no cryptic message (issue 8, defects 9 and 10): values are checked
 * before a conversion could change them, infinite inputs give their exact limits, empty
 * probe batches and empty inputs are handled, NaN in a solve gives the same result on both
 * backends, unknown option keys are errors naming the right spelling, and bad arguments get
 * errors that name the function and what was wrong.
 */
import assert from "node:assert/strict";
import {
  bandedHessian,
  choleskyBanded,
  combProbes,
  device,
  eye,
  full,
  grad,
  hvp,
  inverseHvp,
  linspace,
  logSoftmax,
  logsumexp,
  minimize,
  mlp,
  neumann,
  softmaxCrossEntropy,
  solve,
  solveBanded,
  type Tensor,
  tensor,
  to,
  uniform,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import { type Backend, cpu, testAll } from "./helpers.ts";

const mk = (bk: Backend, data: number[] | number[][], dtype = bk.dtype) =>
  tensor(data, { dtype, device: bk.dev });

testAll("values are checked before conversion (i32 range, f32 overflow)", (bk) => {
  assert.throws(
    () => tensor([NaN, 1.5, 1e10], { dtype: "i32", device: bk.dev }),
    /tensor: i32 values must be integers in \[-2\^31, 2\^31\), got NaN at index 0/,
  );
  assert.throws(() => tensor([1, 1.5], { dtype: "i32", device: bk.dev }), /got 1\.5 at index 1/);
  assert.throws(() => tensor([2 ** 31], { dtype: "i32", device: bk.dev }), /got 2147483648/);
  assert.throws(
    () => tensor(new Float64Array([1, 1e300]), { dtype: "f32", device: bk.dev }),
    /tensor: 1e\+300 at index 1 is beyond the f32 range/,
  );
  assert.throws(
    () => tensor([[1], [-1e39]], { dtype: "f32", device: bk.dev }),
    /-1e\+39 at index 1/,
  );
  assert.throws(() => full([2], 1e39, { device: bk.dev }), /full: 1e\+39 .* beyond the f32 range/);
  // NaN and infinities given as such stay what they are in float dtypes
  const t = tensor([NaN, Infinity, -Infinity, 2 ** 31 - 1], { dtype: "f32", device: bk.dev });
  assert.equal(t.size, 4);
  t.dispose();
  tensor([-(2 ** 31), 2 ** 31 - 1], { dtype: "i32", device: bk.dev }).dispose();
});

testAll("logsumexp gives the exact limits for infinite entries", async (bk) => {
  const read = async (t: Tensor) => {
    const v = Array.from(await t.data());
    t.dispose();
    return v;
  };
  assert.deepEqual(await read(logsumexp(mk(bk, [-Infinity, -Infinity]))), [-Infinity]);
  assert.deepEqual(await read(logsumexp(mk(bk, [Infinity, 1]))), [Infinity]);
  assert.deepEqual(await read(logsumexp(mk(bk, [[-Infinity, -Infinity], [0, Infinity]]), 1)), [
    -Infinity,
    Infinity,
  ]);
  // finite values unchanged: log(1 + 3) = log 4
  const [v] = await read(logsumexp(mk(bk, [0, Math.log(3)])));
  assert.ok(Math.abs(v - Math.log(4)) < 1e-6);
  // a masked logit (−∞) in log-softmax and cross-entropy: its target is 0, so it is ignored
  const ls = await read(logSoftmax(mk(bk, [[0, -Infinity], [0, 0]])));
  assert.deepEqual(ls.slice(0, 2), [0, -Infinity]);
  const ce = await read(
    softmaxCrossEntropy(mk(bk, [[0, -Infinity], [0, 0]]), mk(bk, [[1, 0], [0, 1]])),
  );
  assert.ok(Math.abs(ce[0] - Math.log(2) / 2) < 1e-6, `cross-entropy ${ce[0]}`);
});

testAll("hvp with K = 0 probes gives an empty batch without calling f", async (bk) => {
  let calls = 0;
  const x = mk(bk, [1, 2]);
  const v = zeros([0, 2], { dtype: bk.dtype, device: bk.dev });
  const hv = hvp((z: Tensor) => (calls++, z.square().sum()), x, v);
  assert.deepEqual(hv.shape, [0, 2]);
  assert.equal(calls, 0);
  assert.equal((await hv.data()).length, 0);
  for (const t of [x, v, hv]) t.dispose();
});

testAll("solve with NaN gives the same result on every backend", async (bk) => {
  // references: the WebGPU elimination spreads a NaN into every entry (0 · NaN), and a zero
  // pivot met before the NaN is reached is still "singular"
  const rhs = [[1, 2], [3, 4], [5, 6]];
  const cases: [number[][], "nan" | "singular"][] = [
    [[[1, 2, 3], [4, NaN, 6], [7, 8, 10]], "nan"],
    [[[2, 0, 0], [0, 3, 0], [0, 0, NaN]], "nan"],
    [[[NaN, 0, 0], [0, 3, 0], [0, 0, 1]], "nan"],
    [[[NaN, 0, 0], [0, 0, 0], [0, 0, 0]], "nan"],
    [[[0, 0, 0], [0, 1, 0], [0, 0, NaN]], "singular"],
  ];
  for (const [A, want] of cases) {
    const a = mk(bk, A), b = mk(bk, rhs);
    if (want === "singular") {
      if (bk.dev.kind === "cpu") assert.throws(() => solve(a, b), /singular/);
      else {
        const x = solve(a, b);
        await assert.rejects(() => x.data(), /singular/);
        x.dispose();
      }
    } else {
      const x = solve(a, b);
      assert.ok(Array.from(await x.data()).every(Number.isNaN), JSON.stringify(A));
      x.dispose();
    }
    a.dispose();
    b.dispose();
  }
  // NaN only in the right-hand side
  const a = mk(bk, [[2, 0], [0, 4]]), b = mk(bk, [[NaN], [1]]);
  const x = solve(a, b);
  assert.ok(Array.from(await x.data()).every(Number.isNaN));
  for (const t of [a, b, x]) t.dispose();
});

testAll("eye, linspace and sizes: checked before anything is allocated", (bk) => {
  assert.throws(() => eye(3, { k: 1.5, device: bk.dev }), /eye: k must be an integer/);
  assert.throws(
    () => eye(1e5, { device: bk.dev }),
    /eye: a f32 tensor of shape \[100000,100000\] needs/,
  );
  assert.throws(
    () => linspace(0, 1, 1e12, { device: bk.dev }),
    /linspace: a f32 tensor of shape \[1000000000000\]/,
  );
});

Deno.test("eye(n, { k }) puts ones on diagonal k", async () => {
  const e = eye(3, { k: 1 });
  assert.deepEqual(await e.toArray(), [[0, 1, 0], [0, 0, 1], [0, 0, 0]]);
  const f = eye(2, 3, { k: -1 });
  assert.deepEqual(await f.toArray(), [[0, 0, 0], [1, 0, 0]]);
  e.dispose();
  f.dispose();
});

Deno.test("bad arguments get errors that name the function", async () => {
  assert.throws(
    () => tensor([1, 2], { device: "cpu" as never }),
    /tensor: device must be a Device from device\(\), got string cpu \(use await device\(\{ backend: "cpu" \}\)\)/,
  );
  assert.throws(() => zeros([2], { device: {} as never }), /zeros: device must be a Device/);
  const x = tensor([1, 2]);
  assert.throws(() => to(x, "webgpu" as never), /to: device must be a Device/);
  await assert.rejects(
    () => minimize(((_x: Tensor) => 3) as never, x, { method: "newton-cg" }),
    /minimize: the objective must return a scalar Tensor computed from x, got number 3/,
  );
  await assert.rejects(
    () => minimize((z: Tensor) => z.sum(), tensor([]), { method: "newton-cg" }),
    /minimize: x0 is empty \(shape \[0\]\)/,
  );
  assert.throws(
    () => bandedHessian((z: Tensor) => z.sum(), tensor([]), { bandwidth: 0 }),
    /bandedHessian: x is empty/,
  );
  // lower must be a boolean: "no" is not false
  const ab = tensor([[4, 5, 6], [1, 1, 0]]);
  assert.throws(
    () => solveBanded(ab, tensor([1, 1, 1]), { lower: "no" as unknown as boolean }),
    /solveBanded: option lower must be true or false, got string no/,
  );
  assert.throws(
    () => choleskyBanded(ab, { lower: 1 as unknown as boolean }),
    /choleskyBanded: option lower/,
  );
  x.dispose();
  ab.dispose();
});

Deno.test("unknown option keys are errors that suggest the right spelling, everywhere", async () => {
  const x = tensor([1, 2, 3]);
  const f = (z: Tensor) => z.square().sum();
  const cases: [string, () => unknown, RegExp][] = [
    [
      "tensor",
      () => tensor([1], { dtyp: "f32" } as never),
      /tensor: unknown option "dtyp"; did you mean "dtype"\?/,
    ],
    [
      "zeros",
      () => zeros([1], { devise: cpu } as never),
      /zeros: unknown option "devise"; did you mean "device"\?/,
    ],
    ["full", () => full([1], 2, { type: "f32" } as never), /full: unknown option "type"/],
    ["eye", () => eye(2, { diag: 1 } as never), /eye: unknown option "diag"/],
    [
      "linspace",
      () => linspace(0, 1, 3, { endpoint: true } as never),
      /linspace: unknown option "endpoint"/,
    ],
    [
      "uniform",
      () => uniform([2], { seed: 1, ofset: 2 } as never),
      /uniform: unknown option "ofset"; did you mean "offset"\?/,
    ],
    [
      "grad",
      () => grad(f, { argnum: 0 } as never),
      /grad: unknown option "argnum"; did you mean "argnums"\?/,
    ],
    [
      "valueAndGrad",
      () => valueAndGrad(f, { argnum: 0 } as never),
      /valueAndGrad: unknown option "argnum"/,
    ],
    [
      "neumann",
      () => neumann((v) => v, x, { terms: 2, scale: 1, maxiter: 3 } as never),
      /neumann: unknown option "maxiter"/,
    ],
    [
      "bandedHessian",
      () => bandedHessian(f, x, { bandwidth: 0, band_width: 1 } as never),
      /bandedHessian: unknown option "band_width"/,
    ],
    [
      "solveBanded",
      () => solveBanded(tensor([[1, 1, 1]]), x, { uplo: "L" } as never),
      /solveBanded: unknown option "uplo"/,
    ],
    [
      "combProbes",
      () => combProbes(3, 1, { dtyp: "f32" } as never),
      /combProbes: unknown option "dtyp"; did you mean "dtype"\?/,
    ],
    [
      "mlp",
      () => mlp([2, 1], "tanh", { random_state: 1 } as never),
      /mlp: unknown option "random_state"; did you mean "seed"\?/,
    ],
  ];
  for (const [name, call, pattern] of cases) assert.throws(call, pattern, name);
  await assert.rejects(
    () => device({ backnd: "cpu" } as never),
    /device: unknown option "backnd"; did you mean "backend"\?/,
  );
  await assert.rejects(
    () => inverseHvp(f, x, x, { method: "cg", max_iter: 3 } as never),
    /inverseHvp: unknown option "max_iter"; did you mean "maxIter"\?/,
  );
  x.dispose();
});
