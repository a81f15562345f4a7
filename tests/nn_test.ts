/**
 * The nn layer set against plain f64 JavaScript: dense layers, activations, losses (values
 * and closed-form derivatives), flattening, and the mlp helper's initialisation and
 * forward pass. f64 on the CPU to 1e-12 relative (a handful of roundings on O(1) values);
 * the WebGPU check compares the same seeded network with the CPU at f32 precision.
 */
import assert from "node:assert/strict";
import {
  activate,
  dense,
  flattenParams,
  grad,
  hessian,
  hvp,
  jvp,
  logSoftmax,
  logsumexp,
  memory,
  mlp,
  mseLoss,
  relu,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  tidy,
  unflattenParams,
  valueAndGrad,
} from "../mod.ts";
import { assertClose, assertNoLeak, cpu, gpuDev, randArray } from "./helpers.ts";

const f64 = { dtype: "f64" as const, device: cpu };
const t64 = (a: ArrayLike<number> | number[][], shape?: number[]) =>
  tensor(Array.isArray(a) ? (a as number[][]) : Float64Array.from(a as ArrayLike<number>), {
    ...f64,
    shape,
  });
const sigm = (z: number) => 1 / (1 + Math.exp(-z));

Deno.test("dense: x W + b against a plain product, [N, in] × [in, out]", async () => {
  const x = randArray(4 * 3, 1), w = randArray(3 * 2, 2), b = randArray(2, 3);
  const want: number[] = [];
  for (let n = 0; n < 4; n++) {
    for (let j = 0; j < 2; j++) {
      let s = b[j];
      for (let i = 0; i < 3; i++) s += x[n * 3 + i] * w[i * 2 + j];
      want.push(s);
    }
  }
  const y = dense(t64(x, [4, 3]), t64(w, [3, 2]), t64(b));
  assert.deepEqual(y.shape, [4, 2]);
  assertClose(await y.data(), want, { rtol: 1e-12, atol: 1e-15 });
  assert.throws(() => dense(t64(x, [4, 3]), t64(w, [2, 3]), t64(b)), /dense: expected x/);
});

Deno.test("activations: values, and relu's derivative is 0 at 0 and 1 above", async () => {
  const z = [-2, -0.5, 0, 0.5, 2];
  const x = t64(z);
  assertClose(await activate(x, "sigmoid").data(), z.map(sigm), { rtol: 1e-14 });
  assertClose(await activate(x, "tanh").data(), z.map(Math.tanh), { rtol: 1e-14 });
  assertClose(await activate(x, "relu").data(), z.map((v) => Math.max(v, 0)), { rtol: 0 });
  assertClose(await activate(x, "identity").data(), z, { rtol: 0 });
  const d = grad((y: Tensor) => relu(y).sum())(x);
  assert.deepEqual(Array.from(await d.data()), [0, 0, 0, 1, 1]);
  assert.throws(() => activate(x, "gelu" as "relu"), /unknown activation "gelu"/);
});

Deno.test("mseLoss: mean of squared errors; gradient 2(p − t)/N", async () => {
  const p = [1, 2, 3, 4, 5, 6], t = [0, 2, 5, 4, 1, 6];
  const want = p.reduce((s, v, i) => s + (v - t[i]) ** 2, 0) / 6;
  const P = t64(p, [3, 2]), T = t64(t, [3, 2]);
  assertClose([await mseLoss(P, T).item()], [want], { rtol: 1e-15 });
  const g = grad((q: Tensor) => mseLoss(q, T))(P);
  assertClose(await g.data(), p.map((v, i) => (2 * (v - t[i])) / 6), { rtol: 1e-15 });
  assert.throws(() => mseLoss(P, t64(t)), /mseLoss: pred \[3,2\] and target \[6\]/);
});

Deno.test("logsumexp: stable at large values; gradient softmax; Hessian diag(s) − ssᵀ", async () => {
  // log(e^1000 + e^1000) = 1000 + log 2; a naive exp would overflow to Infinity.
  assertClose([await logsumexp(t64([1000, 1000])).item()], [1000 + Math.LN2], { rtol: 1e-15 });
  const z = [0.3, -1.2, 2.0, 0.7];
  const m = Math.max(...z), e = z.map((v) => Math.exp(v - m)), se = e.reduce((a, b) => a + b);
  const s = e.map((v) => v / se);
  const x = t64(z);
  assertClose([await logsumexp(x, -1).item()], [m + Math.log(se)], { rtol: 1e-15 });
  // The max is held constant by stopGradient; the shift cancels, so derivatives are exact.
  assertClose(await grad((y: Tensor) => logsumexp(y, -1))(x).data(), s, { rtol: 1e-14 });
  const H = await hessian((y: Tensor) => logsumexp(y, -1))(x).data();
  const want = s.flatMap((si, i) => s.map((sj, j) => (i === j ? si : 0) - si * sj));
  assertClose(H, want, { rtol: 1e-13, atol: 1e-16 });
  // along an axis, with and without keepdims
  const X = t64([1, 2, 3, 10, 20, 30], [2, 3]);
  const rows = [[1, 2, 3], [10, 20, 30]].map((r) => {
    const mm = Math.max(...r);
    return mm + Math.log(r.reduce((a, v) => a + Math.exp(v - mm), 0));
  });
  assertClose(await logsumexp(X, 1).data(), rows, { rtol: 1e-15 });
  assert.deepEqual(logsumexp(X, 1, true).shape, [2, 1]);
  assertClose(
    await logSoftmax(X).data(),
    [1, 2, 3, 10, 20, 30].map((v, i) => v - rows[i < 3 ? 0 : 1]),
    {
      rtol: 1e-14,
    },
  );
});

Deno.test("softmaxCrossEntropy: value −(1/N)Σ y log softmax; gradient (softmax − y)/N", async () => {
  const logits = [[2, 0, -1], [0.5, 0.5, 3]], labels = [[0, 1, 0], [0, 0, 1]];
  const sm = logits.map((r) => {
    const e = r.map(Math.exp), s = e.reduce((a, b) => a + b);
    return e.map((v) => v / s);
  });
  const want = -(Math.log(sm[0][1]) + Math.log(sm[1][2])) / 2;
  const L = t64(logits), Y = t64(labels);
  assertClose([await softmaxCrossEntropy(L, Y).item()], [want], { rtol: 1e-14 });
  const g = grad((z: Tensor) => softmaxCrossEntropy(z, Y))(L);
  assertClose(await g.data(), sm.flatMap((r, n) => r.map((v, c) => (v - labels[n][c]) / 2)), {
    rtol: 1e-13,
  });
  // large logits stay finite
  const big = softmaxCrossEntropy(t64([[1000, 0]]), t64([[0, 1]]));
  assertClose([await big.item()], [1000], { rtol: 1e-15 });
  assert.throws(() => softmaxCrossEntropy(L, t64([1, 2])), /softmaxCrossEntropy: expected/);
});

Deno.test("flattenParams / unflattenParams: round trip, and gradients flow both ways", async () => {
  const base = memory();
  const a = t64([1, 2, 3, 4, 5, 6], [2, 3]), b = t64([7, 8]);
  tidy(() => {
    const flat = flattenParams([a, b]);
    assert.deepEqual(flat.shape, [8]);
    const [a2, b2] = unflattenParams(flat, [[2, 3], [2]]);
    assert.deepEqual([a2.shape, b2.shape], [[2, 3], [2]]);
  });
  const flat = flattenParams([a, b]);
  assert.deepEqual(Array.from(await flat.data()), [1, 2, 3, 4, 5, 6, 7, 8]);
  const [a2, b2] = unflattenParams(flat, [[2, 3], [2]]);
  assert.deepEqual(await a2.toArray(), [[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(await b2.toArray(), [7, 8]);
  // f(v) = Σ A² + 3 Σ b  through unflatten: ∇ = [2A, 3, 3]
  const g = grad((v: Tensor) => {
    const [A, B] = unflattenParams(v, [[2, 3], [2]]);
    return A.square().sum().add(B.sum().mul(3));
  })(flat);
  assert.deepEqual(Array.from(await g.data()), [2, 4, 6, 8, 10, 12, 3, 3]);
  // and through flatten: ∇_A Σ (flat ⊙ w) = w[:6] reshaped
  const w = t64([1, -1, 2, -2, 3, -3, 4, -4]);
  const [gA, gB] = grad((A: Tensor, B: Tensor) => flattenParams([A, B]).mul(w).sum(), {
    argnums: [0, 1],
  })(a, b) as Tensor[];
  assert.deepEqual(await gA.toArray(), [[1, -1, 2], [-2, 3, -3]]);
  assert.deepEqual(await gB.toArray(), [4, -4]);
  assert.throws(
    () => unflattenParams(flat, [[3, 3]]),
    /hold 9 entries, but the vector has shape \[8\]/,
  );
  for (const t of [a, b, flat, a2, b2, g, w, gA, gB]) t.dispose();
  assertNoLeak(base, "flatten/unflatten");
});

/** Plain-JS forward pass of an mlp from its flat parameters. */
function mlpForward(
  sizes: number[],
  act: (z: number) => number,
  p: ArrayLike<number>,
  x: number[][],
) {
  let h = x, at = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const [i, o] = [sizes[l], sizes[l + 1]];
    const W = (r: number, c: number) => p[at + r * o + c];
    const b = (c: number) => p[at + i * o + c];
    h = h.map((row) =>
      Array.from({ length: o }, (_, c) => {
        const s = row.reduce((acc, v, r) => acc + v * W(r, c), b(c));
        return l + 2 < sizes.length ? act(s) : s;
      })
    );
    at += i * o + o;
  }
  return h;
}

Deno.test("mlp: 3-5-1 has 26 parameters in ±1/√fan_in, seeded, and its forward pass matches", async () => {
  const net = mlp([3, 5, 1], "sigmoid", { seed: 7, dtype: "f64", device: cpu });
  assert.equal(net.numParams, 26);
  assert.deepEqual(net.shapes, [[3, 5], [5], [5, 1], [1]]);
  const p = await net.params.data();
  const bound = [...Array(20).fill(1 / Math.sqrt(3)), ...Array(6).fill(1 / Math.sqrt(5))];
  p.forEach((v: number, i: number) =>
    assert.ok(Math.abs(v) <= bound[i], `param ${i} = ${v} exceeds ${bound[i]}`)
  );
  assert.ok(new Set(p).size === 26, "parameters are distinct draws");
  const again = mlp([3, 5, 1], "sigmoid", { seed: 7, dtype: "f64", device: cpu });
  assert.deepEqual(Array.from(await again.params.data()), Array.from(p));
  const other = mlp([3, 5, 1], "sigmoid", { seed: 8, dtype: "f64", device: cpu });
  assert.notDeepEqual(Array.from(await other.params.data()), Array.from(p));
  const X = [[0.1, -0.4, 0.9], [1.5, 0.2, -0.3]];
  const y = net.apply(net.params, t64(X));
  assert.deepEqual(y.shape, [2, 1]);
  assertClose(await y.data(), mlpForward([3, 5, 1], sigm, p, X).flat(), { rtol: 1e-14 });
  const deep = mlp([2, 4, 3, 2], "tanh", { seed: 1, dtype: "f64", device: cpu });
  const yd = deep.apply(deep.params, t64([[0.5, -1]]));
  assertClose(
    await yd.data(),
    mlpForward([2, 4, 3, 2], Math.tanh, await deep.params.data(), [[0.5, -1]]).flat(),
    {
      rtol: 1e-13,
    },
  );
  assert.throws(() => net.apply(t64([1, 2]), t64(X)), /flat parameter vector of 26 entries/);
  assert.throws(() => mlp([3], "tanh"), /at least two positive integer widths/);
  for (const t of [net.params, again.params, other.params, y, deep.params, yd]) t.dispose();
});

Deno.test({
  name: "mlp: the same seed gives the same network on WebGPU (f32) as on the CPU",
  ignore: !gpuDev,
  fn: async () => {
    const a = mlp([3, 5, 1], "tanh", { seed: 3, dtype: "f32", device: cpu });
    const b = mlp([3, 5, 1], "tanh", { seed: 3, dtype: "f32", device: gpuDev! });
    // uniform draws are bit-identical across backends; the affine map to ±bound is one f32 mul and sub
    assertClose(await b.params.data(), await a.params.data(), { rtol: 1e-6, atol: 1e-7 });
    const X = tensor([[0.5, -1, 2]], { device: cpu }),
      Xg = tensor([[0.5, -1, 2]], { device: gpuDev! });
    assertClose(await b.apply(b.params, Xg).data(), await a.apply(a.params, X).data(), {
      rtol: 1e-5,
    });
  },
});

Deno.test("memory: transforms inside tidy free the results of functions that use tidy themselves", () => {
  // Regression: a transform's result made inside an inner tidy (mlp.apply, unflattenParams, …)
  // had its disposal deferred and then belonged to no scope, so the enclosing tidy leaked it.
  const net = mlp([2, 3, 1], "tanh", { seed: 0, dtype: "f64", device: cpu });
  const X = t64([1, 2, 3, 4], [2, 2]);
  const v = t64(new Array(net.numParams).fill(1));
  const base = memory();
  tidy(() => {
    jvp((p: Tensor) => net.apply(p, X), [net.params], [v]);
    valueAndGrad((p: Tensor) => net.apply(p, X).sum())(net.params);
    hvp((p: Tensor) => net.apply(p, X).square().sum(), net.params, v);
  });
  assertNoLeak(base, "transforms in tidy");
  for (const t of [net.params, X, v]) t.dispose();
});
