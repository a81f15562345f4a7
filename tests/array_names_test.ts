/**
 * The NumPy / JAX names a user reaches for first: (1) the list of 51 common names, each
 * exported from mod.ts as a function with a doc example (`deno doc --json` says which; the
 * examples run under `deno test --doc`); (2) the functions added for the names that were
 * missing, against NumPy's values (tests/reference/numpy_names.py, run with /usr/bin/python3,
 * output in numpy_names.json) on every backend, their derivatives by the oracle (JVP vs
 * finite differences, VJP vs JVP, HVP vs finite differences) in f64, and vmap against a loop.
 */
import assert from "node:assert/strict";
import * as cv from "../mod.ts";
import { type Tensor, tensor } from "../mod.ts";
import { assertClose, assertNoLeak, type Backend, cpu, testAll } from "./helpers.ts";
import { checkGrads } from "./grad_check.ts";
import ref from "./reference/numpy_names.json" with { type: "json" };

/**
 * 51 common JAX / NumPy names and ours (camelCase of NumPy's; `atan` etc. are the Array API
 * spellings JAX also has). When issue 10 was filed, only the first 10 existed; the next 29
 * are the ones the issue named; the last 12 are further names as common in numerical code
 * that were also missing.
 */
export const NAMES: readonly (readonly [jax: string, ours: string])[] = [
  // present before
  ["jax.grad", "grad"],
  ["jax.value_and_grad", "valueAndGrad"],
  ["jax.jvp", "jvp"],
  ["jax.vjp", "vjp"],
  ["jax.hessian", "hessian"],
  ["jnp.sum", "sum"],
  ["jnp.mean", "mean"],
  ["jnp.matmul", "matmul"],
  ["jnp.linalg.solve", "solve"],
  ["jnp.where", "where"],
  // named by the issue
  ["jax.vmap", "vmap"],
  ["jax.jit", "jit"],
  ["jnp.linalg.norm", "norm"],
  ["jnp.argmax", "argmax"],
  ["jnp.argmin", "argmin"],
  ["jnp.var", "variance"],
  ["jnp.std", "std"],
  ["jnp.prod", "prod"],
  ["jnp.cumsum", "cumsum"],
  ["jnp.clip", "clip"],
  ["jnp.sinh", "sinh"],
  ["jnp.cosh", "cosh"],
  ["jnp.arctan", "atan"],
  ["jnp.arctan2", "atan2"],
  ["jnp.log2", "log2"],
  ["jnp.exp2", "exp2"],
  ["jax.nn.softmax", "softmax"],
  ["jax.nn.log_softmax", "logSoftmax"],
  ["jnp.outer", "outer"],
  ["jnp.einsum", "einsum"],
  ["jnp.linalg.cholesky", "cholesky"],
  ["jax.scipy.linalg.cho_solve", "choleskySolve"],
  ["jnp.linalg.eigh", "eigh"],
  ["jnp.triu", "triu"],
  ["jnp.tril", "tril"],
  ["jnp.flip", "flip"],
  ["jnp.roll", "roll"],
  ["jnp.diag", "diag"],
  ["jnp.diagonal", "diagonal"],
  // further common names
  ["jnp.zeros_like", "zerosLike"],
  ["jnp.ones_like", "onesLike"],
  ["jnp.full_like", "fullLike"],
  ["jnp.tan", "tan"],
  ["jnp.logaddexp", "logaddexp"],
  ["jnp.tensordot", "tensordot"],
  ["jnp.kron", "kron"],
  ["jnp.moveaxis", "moveaxis"],
  ["jnp.swapaxes", "swapaxes"],
  ["jnp.split", "split"],
  ["jnp.tile", "tile"],
  ["jnp.repeat", "repeat"],
];

/** Names added beyond the 51, held to the same rule. */
const MORE: readonly (readonly [jax: string, ours: string])[] = [
  ["jnp.floor", "floor"],
  ["jnp.ceil", "ceil"],
  ["jnp.round", "round"],
  ["jnp.isnan", "isnan"],
  ["jnp.isfinite", "isfinite"],
  ["jnp.all", "all"],
  ["jnp.any", "any"],
];

Deno.test("51 common JAX/NumPy names: exported from mod.ts, each with a doc example", async () => {
  assert.equal(NAMES.length, 51);
  assert.equal(new Set(NAMES.map(([, o]) => o)).size, 51, "no name twice");
  const names = [...NAMES, ...MORE];
  const mod = cv as unknown as Record<string, unknown>;
  const missing = names.filter(([, o]) => typeof mod[o] !== "function");
  assert.deepEqual(missing, [], "not exported as functions");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", new URL("../mod.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  interface Decl {
    kind: string;
    jsDoc?: { doc?: string; tags?: { kind: string }[] };
  }
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols: { name: string; declarations: Decl[] }[] }>;
  };
  const symbols = Object.values(doc.nodes)[0].symbols;
  const hasExample = (d: Decl) =>
    (d.jsDoc?.tags ?? []).some((t) => t.kind === "example") || /```ts/.test(d.jsDoc?.doc ?? "");
  const undocumented = names.filter(([, o]) => {
    const s = symbols.find((s) => s.name === o);
    return !s || !s.declarations.some(hasExample);
  });
  assert.deepEqual(undocumented, [], "exports without a doc example");
});

// ---------- the added functions against NumPy ----------

interface Arr {
  shape: number[];
  values: (number | string)[];
}
/** Python writes non-finite floats as "inf", "-inf", "nan". */
const num = (a: Arr) =>
  a.values.map((v) =>
    typeof v === "number" ? v : v === "nan" ? NaN : v.startsWith("-") ? -Infinity : Infinity
  );

/** The library call for each `fn` of the reference (same arguments as NumPy's). */
const FNS: Record<string, (...xs: Tensor[]) => Tensor | Tensor[]> = {
  tan: (x) => cv.tan(x),
  logaddexp: (a, b) => cv.logaddexp(a, b),
  tensordot2: (a, b) => cv.tensordot(a, b),
  tensordotPairs: (a, c) => cv.tensordot(a, c, [[0, 2], [2, 0]]),
  tensordot0: (v, w) => cv.tensordot(v, w, 0),
  kron: (a, b) => cv.kron(a, b),
  moveaxis: (x) => cv.moveaxis(x, [0, 1], [2, 0]),
  swapaxes: (x) => cv.swapaxes(x, 0, -1),
  split3: (x) => cv.split(x, 3, 0),
  splitAt: (x) => cv.split(x, [1, -2, 10], 1),
  tile: (x) => cv.tile(x, [2, 1, 2]),
  tile2: (x) => cv.tile(x, 2),
  repeat: (x) => cv.repeat(x, 2, 1),
  repeatFlat: (x) => cv.repeat(x, 3),
  floor: (x) => cv.floor(x),
  ceil: (x) => cv.ceil(x),
  round: (x) => cv.round(x),
  isnan: (x) => cv.isnan(x),
  isfinite: (x) => cv.isfinite(x),
  all1: (x) => cv.all(x, 1),
  any0: (x) => cv.any(x, 0, true),
  allAny: (x) => [cv.all(x), cv.any(x)],
  allAnyEmpty: (x) => [cv.all(x, 1), cv.any(x, 1)],
};

interface RefCase {
  name: string;
  fn: string;
  args: Arr[];
  out: Arr[];
  /** piecewise constant or boolean: no derivative check */
  nograd?: boolean;
}
const CASES = (ref as { cases: RefCase[] }).cases;

for (const c of CASES) {
  const f = FNS[c.fn];
  const limits = c.args.some((a) => a.values.some((v) => typeof v === "string"));
  testAll(`${c.name}: values against NumPy`, async (b: Backend) => {
    const xs = c.args.map((a) => tensor(num(a), { shape: a.shape, dtype: b.dtype, device: b.dev }));
    const base = cv.memory();
    const ys = [f(...xs)].flat();
    assert.equal(ys.length, c.out.length, "number of results");
    const tol = b.dtype === "f64" ? { rtol: 1e-13, atol: 1e-14 } : { rtol: 2e-6, atol: 2e-6 };
    for (const [k, y] of ys.entries()) {
      assert.deepEqual(y.shape, c.out[k].shape, `result ${k}: shape`);
      const got = Array.from(await y.data()), want = num(c.out[k]);
      if (limits) {
        // infinities must match exactly; finite entries to rounding
        want.forEach((w, i) => {
          if (!Number.isFinite(w)) assert.equal(got[i], w, `entry ${i}`);
          else assert.ok(Math.abs(got[i] - w) <= 1e-6 * Math.max(1, Math.abs(w)), `entry ${i}`);
        });
      } else assertClose(got, want, tol);
      y.dispose();
    }
    assertNoLeak(base, "memory");
    xs.forEach((x) => x.dispose());
  });
  if (limits || c.nograd) continue;
  Deno.test(`${c.name}: derivatives (JVP, VJP, HVP) against finite differences`, async () => {
    // one output: the parts of a split, flattened and joined
    const g = (...xs: Tensor[]) => {
      const ys = [f(...xs)].flat();
      return ys.length === 1 ? ys[0] : cv.concat(ys.map((y) => y.reshape([-1])));
    };
    await checkGrads(c.name, g, c.args.map((a) => ({ shape: a.shape, values: num(a) })));
  });
}

Deno.test("vmap over the added functions equals a loop of single calls", async () => {
  const fs: [string, number[], (t: Tensor) => Tensor][] = [
    ["tan", [3, 4], (t) => cv.tan(t)],
    ["logaddexp", [3, 4], (t) => cv.logaddexp(t, cv.flip(t))],
    ["tensordot", [3, 4, 5], (t) => cv.tensordot(t, t, [[0], [0]])],
    ["kron", [3, 2, 3], (t) => cv.kron(t, cv.tensor([[1, -2], [0.5, 3]], { dtype: "f64" }))],
    ["moveaxis", [3, 2, 3, 4], (t) => cv.moveaxis(t, 0, 2)],
    ["swapaxes", [3, 2, 3, 4], (t) => cv.swapaxes(t, 0, 2)],
    ["split", [3, 6, 2], (t) => cv.split(t, 3, 0)[1]],
    ["tile", [3, 2, 3], (t) => cv.tile(t, [2, 1, 3])],
    ["repeat", [3, 2, 3], (t) => cv.repeat(t, 2, 0)],
    ["zerosLike + x", [3, 4], (t) => cv.zerosLike(t).add(t)],
  ];
  for (const [name, shape, f] of fs) {
    const n = shape.reduce((p, d) => p * d, 1), per = n / shape[0];
    const vals = Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + 0.3));
    const x = tensor(vals, { shape, dtype: "f64", device: cpu });
    const batched = await cv.vmap(f)(x).data();
    const loop: number[] = [];
    for (let i = 0; i < shape[0]; i++) {
      const xi = tensor(vals.slice(i * per, (i + 1) * per), {
        shape: shape.slice(1),
        dtype: "f64",
        device: cpu,
      });
      loop.push(...await f(xi).data());
    }
    assertClose(batched, loop, { rtol: 1e-14, msg: name });
  }
});

testAll(
  "zerosLike / onesLike / fullLike: x's shape, dtype and device unless overridden",
  async (b) => {
    const x = tensor([[1, 2, 3], [4, 5, 6]], { dtype: b.dtype, device: b.dev });
    const z = cv.zerosLike(x), o = cv.onesLike(x), f = cv.fullLike(x, -2.5);
    for (const [t, v] of [[z, 0], [o, 1], [f, -2.5]] as const) {
      assert.deepEqual(t.shape, [2, 3]);
      assert.equal(t.dtype, b.dtype);
      assert.equal(t.device, b.dev);
      assert.deepEqual(Array.from(await t.data()), [v, v, v, v, v, v]);
      t.dispose();
    }
    const i = cv.onesLike(x, { dtype: "i32" });
    assert.equal(i.dtype, "i32");
    assert.deepEqual(await i.toArray(), [[1, 1, 1], [1, 1, 1]]);
    const c = cv.zerosLike(x, { device: cpu });
    assert.equal(c.device, cpu);
    // a constant to the transforms: d/dx Σ (zerosLike(x) + 1) x = 1
    const g = cv.grad((t: Tensor) => cv.onesLike(t).mul(t).sum())(x);
    assert.deepEqual(Array.from(await g.data()), [1, 1, 1, 1, 1, 1]);
    [i, c, g, x].forEach((t) => t.dispose());
  },
);

Deno.test("the added functions reject bad arguments with errors that name them", () => {
  const x = tensor([[1, 2, 3], [4, 5, 6]]);
  assert.throws(
    () => cv.zerosLike(x, { dtyp: "f32" } as never),
    /zerosLike: unknown option "dtyp"; did you mean "dtype"\?/,
  );
  assert.throws(() => cv.fullLike([1, 2] as never, 0), /fullLike: argument must be a Tensor/);
  assert.throws(
    () => cv.split(x, 4, 1),
    /split: cannot split axis 1 of length 3 \(shape \[2,3\]\) into 4 equal parts/,
  );
  assert.throws(() => cv.split(x, [1.5]), /split: indices must be integers/);
  assert.throws(
    () => cv.tensordot(x, x, 1),
    /tensordot: axis 1 of a \[2,3\] has length 3 but axis 0 of b \[2,3\] has length 2/,
  );
  assert.throws(() => cv.tensordot(x, x, 3), /tensordot: axes = 3 must be an integer in \[0, 2\]/);
  assert.throws(() => cv.tensordot(x, x, [[0, 1], [0]]), /must list as many distinct axes/);
  assert.throws(
    () => cv.moveaxis(x, [0, 0], [0, 1]),
    /moveaxis: .* must list as many distinct axes/,
  );
  assert.throws(() => cv.swapaxes(x, 0, 2), /swapaxes: axis 2 is out of range/);
  assert.throws(() => cv.tile(x, [-1]), /tile: reps must be non-negative integers/);
  assert.throws(
    () => cv.repeat(x, 1.5),
    /repeat: repeats must be a non-negative integer, got number 1.5/,
  );
  assert.throws(
    () => cv.tan(tensor([1], { dtype: "i32" })),
    /tan: expected a floating-point tensor/,
  );
  x.dispose();
});
