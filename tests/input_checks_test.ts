/**
 * Nothing silently wrong, no cryptic message (issue 8, defects 9 and 10): values are checked
 * before a conversion could change them, infinite inputs give their exact limits, empty
 * probe batches and empty inputs are handled, NaN in a solve gives the same result on both
 * backends, unknown option keys are errors naming the right spelling, and bad arguments get
 * errors that name the function and what was wrong.
 */
import assert from "node:assert/strict";
import * as lib from "../mod.ts";
import {
  arange,
  argmax,
  bandedHessian,
  choleskyBanded,
  choleskySolve,
  combProbes,
  device,
  eye,
  full,
  grad,
  hvp,
  inv,
  inverseHvp,
  linspace,
  logSoftmax,
  logsumexp,
  max,
  mean,
  minimize,
  mlp,
  neumann,
  norm,
  prod,
  softmax,
  softmaxCrossEntropy,
  solve,
  solveBanded,
  sum,
  type Tensor,
  tensor,
  to,
  uniform,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import { type Backend, cpu, expectKernelError, testAll } from "./helpers.ts";

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
  // generated values too: arange and linspace used to truncate (0, 0, 0, 0) or overflow (∞)
  assert.throws(
    () => arange(0, 2, 0.5, { dtype: "i32", device: bk.dev }),
    /arange: i32 values must be integers .*got 0\.5 at index 1/,
  );
  assert.throws(
    () => linspace(0, 1, 3, { dtype: "i32", device: bk.dev }),
    /linspace: i32 values must be integers .*got 0\.5 at index 1/,
  );
  assert.throws(
    () => linspace(0, 1e300, 3, { device: bk.dev }),
    /linspace: 5e\+299 at index 1 is beyond the f32 range/,
  );
  assert.throws(
    () => arange(0, 1e40, 3e38, { device: bk.dev }),
    /arange: 9\.9[0-9]*e\+39 at index 33 is beyond the f32 range/,
  );
});

testAll(
  "integer arange and linspace keep their exact values; linspace(a, b, 1) is [a]",
  async (bk) => {
    const read = async (t: Tensor) => {
      const v = Array.from(await t.data());
      t.dispose();
      return v;
    };
    assert.deepEqual(await read(arange(-3, 10, 4, { dtype: "i32", device: bk.dev })), [
      -3,
      1,
      5,
      9,
    ]);
    assert.deepEqual(await read(linspace(0, 10, 6, { dtype: "i32", device: bk.dev })), [
      0,
      2,
      4,
      6,
      8,
      10,
    ]);
    assert.deepEqual(await read(linspace(2, 3, 1, { device: bk.dev })), [2]);
    assert.deepEqual(await read(linspace(2, 3, 0, { device: bk.dev })), []);
  },
);

testAll("keepdims must be a boolean, and softmax names itself for a bad axis", (bk) => {
  const x = mk(bk, [[1, 2], [3, 4]]);
  const no = "no" as unknown as boolean;
  for (
    const [name, call] of [
      ["sum", () => sum(x, 0, no)],
      ["mean", () => mean(x, 0, no)],
      ["max", () => max(x, 0, no)],
      ["prod", () => prod(x, 0, no)],
      ["argmax", () => argmax(x, 0, no)],
      ["logsumexp", () => logsumexp(x, 0, no)],
      ["norm", () => norm(x, undefined, 0, no)],
    ] as const
  ) {
    assert.throws(
      call,
      new RegExp(`^TypeError: ${name}: keepdims must be true or false, got string no`),
      name,
    );
  }
  assert.throws(() => softmax(x, 1.5), /^RangeError: softmax: axis 1\.5 is out of range/);
  assert.throws(() => logSoftmax(x, 2), /^RangeError: logSoftmax: axis 2 is out of range/);
  x.dispose();
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

testAll(
  "inv, choleskySolve and mlp name themselves, not the solve or uniform inside",
  async (bk) => {
    const S = mk(bk, [[1, 2], [2, 4]]), Z = mk(bk, [[0, 0], [1, 1]]);
    const b = mk(bk, [1, 1]), b3 = mk(bk, [1, 2, 3]);
    await expectKernelError(bk, () => inv(S), /^inv: the matrix is singular/);
    await expectKernelError(
      bk,
      () => choleskySolve(Z, b),
      /^choleskySolve: the matrix is singular/,
    );
    assert.throws(
      () => choleskySolve(Z, b3),
      /^RangeError: choleskySolve: A must be \[\.\.\., n, n\] and B \[\.\.\., n, m\] with the same n/,
    );
    for (const t of [S, Z, b, b3]) t.dispose();
    assert.throws(
      () => mlp([2, 1], "tanh", { seed: "1" as unknown as number }),
      /^RangeError: mlp: seed must be a non-negative integer, got string 1/,
    );
  },
);

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

/**
 * The sweep behind "unknown option keys are errors everywhere": every exported function whose
 * signature has an options parameter (found from its source text, so a new one cannot be
 * forgotten) is called with an extra key and must name it.
 */
Deno.test("every exported function that takes options rejects an unknown key", async () => {
  const x = tensor([1, 2, 3], { dtype: "f64" });
  const f = (z: Tensor) => z.square().sum();
  const twice = (z: Tensor) => z.mul(2);
  const band = tensor([[1, 1, 1]], { dtype: "f64" });
  const pattern = lib.hessianSparsity(f, x);
  const B = { zzBogus: 1 };
  // deno-lint-ignore no-explicit-any
  const L = lib as any;
  const calls: Record<string, () => unknown> = {
    device: () => L.device({ backend: "cpu", ...B }),
    tensor: () => L.tensor([1], B),
    zeros: () => L.zeros([1], B),
    ones: () => L.ones([1], B),
    full: () => L.full([1], 1, B),
    arange: () => L.arange(0, 3, 1, B),
    eye: () => L.eye(2, B),
    linspace: () => L.linspace(0, 1, 3, B),
    uniform: () => L.uniform([2], { seed: 1, ...B }),
    normal: () => L.normal([2], { seed: 1, ...B }),
    rademacher: () => L.rademacher([2], { seed: 1, ...B }),
    variance: () => L.variance(x, 0, B),
    var: () => L.var(x, 0, B),
    std: () => L.std(x, 0, B),
    grad: () => L.grad(f, B),
    valueAndGrad: () => L.valueAndGrad(f, B),
    hessian: () => L.hessian(f, B),
    jacobian: () => L.jacobian(twice, x, B),
    jit: () => L.jit(f, B),
    combProbes: () => L.combProbes(3, 1, B),
    colorPattern: () => L.colorPattern(pattern, { kind: "star", ...B }),
    sparseHessian: () => L.sparseHessian(f, x, B),
    sparseJacobian: () => L.sparseJacobian(twice, x, B),
    hessianDiagonal: () => L.hessianDiagonal(f, x, { method: "comb", bandwidth: 0, ...B }),
    hessianTrace: () => L.hessianTrace(f, x, { method: "hutchinson", samples: 2, seed: 1, ...B }),
    hessianEigenvalues: () => L.hessianEigenvalues(f, x, B),
    inverseHvp: () => L.inverseHvp(f, x, x, { method: "cg", ...B }),
    cg: () => L.cg((v: Tensor) => v, x, B),
    neumann: () => L.neumann((v: Tensor) => v, x, { terms: 2, scale: 0.5, ...B }),
    neumannSeries: () => L.neumannSeries((v: Tensor) => v, x, { terms: 2, scale: 0.5, ...B }),
    mlp: () => L.mlp([2, 1], "tanh", B),
    minimize: () => L.minimize(f, x, { method: "newton-cg", ...B }),
    registerMethod: () => L.registerMethod("zz-never-registered", () => {}, B),
    choleskyBanded: () => L.choleskyBanded(band, B),
    solveBanded: () => L.solveBanded(band, x, B),
    bandedHessian: () => L.bandedHessian(f, x, { bandwidth: 0, ...B }),
  };
  const takesOptions = Object.entries(lib)
    .filter(([, v]) => typeof v === "function" && !/^class\b/.test(String(v)))
    .filter(([, v]) =>
      /\b(opts|options|xOrOpts|maybeOpts)\b/.test(/\(([^)]*)\)/.exec(String(v))![1])
    )
    .map(([k]) => k);
  assert.ok(takesOptions.length > 30, `found ${takesOptions.length}: is the signature scan right?`);
  const missing = takesOptions.filter((k) => !(k in calls));
  assert.deepEqual(missing, [], `exports that take options but are not in this sweep: ${missing}`);
  for (const [name, call] of Object.entries(calls)) {
    await assert.rejects(
      async () => await call(),
      (e: Error) =>
        /unknown option "zzBogus"/.test(e.message) &&
        e.message.startsWith(
          `${name === "variance" ? "var" : name}${name === "minimize" ? " (" : ":"}`,
        ),
      name,
    );
  }
  for (const t of [x, band]) t.dispose();
});
