/**
 * Gauss-Newton products and K-FAC against their definitions, evaluated in plain f64
 * JavaScript: `Jᵀ H_L J v` from explicit Jacobian and loss-Hessian matrices, the exact
 * Hessian of a linear least-squares model, K-FAC's factors from a hand-written forward and
 * backward pass, and the damped Kronecker inverse from an explicit Kronecker product and a
 * Gauss-Jordan solve. All on the CPU in f64, compared to 1e-11 relative to the largest
 * entry (a few hundred roundings of O(1) numbers; the plain-JS solves of well-conditioned
 * ≤ 15×15 systems lose at most a few digits more). One WebGPU check compares f32 with f64.
 */
import assert from "node:assert/strict";
import {
  gaussNewtonVp,
  grad,
  hessian,
  jacobian,
  kfacFactors,
  kfacPrecondition,
  memory,
  mlp,
  mseLoss,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
} from "../mod.ts";
import { assertNoLeak, cpu, gpuDev, randArray } from "./helpers.ts";

type Mat = number[][];
const f64 = { dtype: "f64" as const, device: cpu };
const t64 = (a: ArrayLike<number> | Mat, shape?: number[]) =>
  tensor(Float64Array.from(Array.from(a as ArrayLike<number>).flat()), {
    ...f64,
    shape: shape ?? [a.length],
  });
/** Reads a tensor and frees it. */
const read = async (t: Tensor) => {
  const d = await t.data();
  t.dispose();
  return d;
};
const mm = (a: Mat, b: Mat): Mat =>
  a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const T = (a: Mat): Mat => a[0].map((_, j) => a.map((r) => r[j]));
const col = (v: number[]): Mat => v.map((x) => [x]);
const kron = (a: Mat, b: Mat): Mat =>
  a.flatMap((ar) => b.map((br) => ar.flatMap((av) => br.map((bv) => av * bv))));
const addDiag = (a: Mat, s: number): Mat => a.map((r, i) => r.map((v, j) => v + (i === j ? s : 0)));
const toMat = (d: ArrayLike<number>, rows: number, cols: number): Mat =>
  Array.from({ length: rows }, (_, i) => Array.from(d).slice(i * cols, (i + 1) * cols));
const sigm = (z: number) => 1 / (1 + Math.exp(-z));

/** Solves A x = b by Gauss-Jordan elimination with partial pivoting. */
function solveM(a: Mat, b: number[]): number[] {
  const n = a.length;
  const m = a.map((r, i) => [...r, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  return m.map((r, i) => r[n] / r[i]);
}

/** max |a − b| ≤ rtol · max |b|, with the worst entry in the message. */
function near(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let scale = 0, worst = 0, at = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  assert.ok(
    worst <= rtol * scale,
    `${what}: entry ${at} is ${a[at]}, expected ${b[at]} (max error ${worst} > ${rtol} × ${scale})`,
  );
}

Deno.test("gaussNewtonVp: equals Jᵀ H_L J v from explicit Jacobian and loss-Hessian matrices", async () => {
  const base = memory();
  // a 2-3-2 tanh network with softmax cross-entropy: H_L is a full (non-diagonal) 6×6 matrix
  const net = mlp([2, 3, 2], "tanh", { seed: 11, ...f64 });
  const X = t64(toMat(randArray(6, 21, -2, 2), 3, 2), [3, 2]);
  const Y = t64([[1, 0], [0, 1], [0.3, 0.7]], [3, 2]);
  const model = (p: Tensor, x: Tensor) => net.apply(p, x);
  const loss = (out: Tensor) => softmaxCrossEntropy(out, Y);
  const n = net.numParams; // 17
  const J = toMat(await read(jacobian((p: Tensor) => model(p, X))(net.params)), 6, n);
  const y = model(net.params, X);
  const H = toMat(await read(hessian(loss)(y)), 6, 6);
  assert.ok(Math.abs(H[0][1]) > 1e-3, "the loss Hessian couples outputs (not a multiple of I)");
  const G = mm(mm(T(J), H), J);
  const V = toMat(randArray(3 * n, 5), 3, n);
  const v0 = t64(V[0]);
  const gv = await read(gaussNewtonVp(model, loss, net.params, X, v0));
  near(gv, mm(G, col(V[0])).flat(), 1e-11, "G v");
  // K probes in one call give the K single products
  const Vt = t64(V, [3, n]);
  const gV = gaussNewtonVp(model, loss, net.params, X, Vt);
  assert.deepEqual(gV.shape, [3, n]);
  near(await gV.data(), T(mm(G, T(V))).flat(), 1e-11, "G V (batched)");
  // GN is symmetric positive semi-definite for this convex loss: vᵀGv ≥ 0
  const quad = V.map((v) => mm([v], mm(G, col(v)))[0][0]);
  assert.ok(quad.every((q) => q >= 0), `vᵀGv = ${quad}`);
  const bad = t64([1, 2]);
  assert.throws(
    () => gaussNewtonVp(model, loss, net.params, X, bad),
    /gaussNewtonVp: v has shape \[2\]; expected the parameters' shape \[17\]/,
  );
  for (const t of [net.params, X, Y, y, v0, Vt, gV, bad]) t.dispose();
  assertNoLeak(base, "gaussNewtonVp");
});

Deno.test("gaussNewtonVp: for a linear model with MSE it is the exact Hessian (2/(N k)) XᵀX ⊗ I", async () => {
  const N = 5, d = 3, k = 2;
  const Xh = toMat(randArray(N * d, 9), N, d);
  const X = t64(Xh, [N, d]), Y = t64(toMat(randArray(N * k, 10), N, k), [N, k]);
  const model = (w: Tensor, x: Tensor) => x.matmul(w.reshape([d, k]));
  const loss = (out: Tensor) => mseLoss(out, Y);
  const w = t64(randArray(d * k, 12));
  const I = Array.from(
    { length: d * k },
    (_, i) => Array.from({ length: d * k }, (_, j) => +(i === j)),
  );
  const G = await gaussNewtonVp(model, loss, w, X, t64(I, [d * k, d * k])).data(); // columns Gᵉᵢ
  const closed = kron(mm(T(Xh), Xh), [[1, 0], [0, 1]]).map((r) => r.map((v) => (2 / (N * k)) * v));
  near(G, closed.flat(), 1e-12, "GN vs closed form");
  const H = await hessian((p: Tensor) => loss(model(p, X)))(w).data();
  near(G, H, 1e-12, "GN vs the library's exact Hessian");
});

/** Plain-JS forward and backward pass of a sigmoid mlp with MSE: layer inputs and per-sample pre-activation gradients. */
function kfacReference(sizes: number[], p: ArrayLike<number>, X: Mat, Y: Mat) {
  const N = X.length, L = sizes.length - 1;
  const W: Mat[] = [], b: number[][] = [];
  let at = 0;
  for (let l = 0; l < L; l++) {
    const [i, o] = [sizes[l], sizes[l + 1]];
    W.push(toMat(Array.from(p).slice(at, at + i * o), i, o));
    b.push(Array.from(p).slice(at + i * o, at + i * o + o));
    at += i * o + o;
  }
  const acts: Mat[] = [], pre: Mat[] = [];
  let h = X;
  for (let l = 0; l < L; l++) {
    acts.push(h);
    const s = mm(h, W[l]).map((r) => r.map((v, j) => v + b[l][j]));
    pre.push(s);
    h = l < L - 1 ? s.map((r) => r.map(sigm)) : s;
  }
  // ℓₙ = (1/k) Σ_c (outₙc − yₙc)²  ⇒  ∂ℓₙ/∂s_L = (2/k)(out − y); back through W and σ' = σ(1 − σ)
  const k = sizes[L];
  const gs: Mat[] = Array(L);
  gs[L - 1] = pre[L - 1].map((r, n) => r.map((v, c) => (2 / k) * (v - Y[n][c])));
  for (let l = L - 2; l >= 0; l--) {
    const back = mm(gs[l + 1], T(W[l + 1]));
    gs[l] = back.map((r, n) => r.map((v, j) => v * sigm(pre[l][n][j]) * (1 - sigm(pre[l][n][j]))));
  }
  const abar = acts.map((a) => a.map((r) => [...r, 1]));
  const A = abar.map((a) => mm(T(a), a).map((r) => r.map((v) => v / N)));
  const G = gs.map((g) => mm(T(g), g).map((r) => r.map((v) => v / N)));
  // ∇_{W̄} L = (1/N) Σₙ āₙ gₙᵀ, row-major = the layer's [W, b] slice of the flat gradient
  const grads = abar.map((a, l) => mm(T(a), gs[l]).flat().map((v) => v / N));
  return { A, G, grads };
}

Deno.test("kfacFactors: A = E[ā āᵀ] and G = E[g gᵀ] (empirical) match a hand-written backward pass", async () => {
  const base = memory();
  const sizes = [3, 4, 2], N = 5;
  const net = mlp(sizes, "sigmoid", { seed: 4, ...f64 });
  const Xh = toMat(randArray(N * 3, 31, -2, 2), N, 3), Yh = toMat(randArray(N * 2, 32), N, 2);
  const X = t64(Xh, [N, 3]), Y = t64(Yh, [N, 2]);
  const loss = (out: Tensor) => mseLoss(out, Y);
  const ref = kfacReference(sizes, await net.params.data(), Xh, Yh);
  const fs = kfacFactors(net, net.params, X, loss);
  assert.equal(fs.length, 2);
  for (let l = 0; l < 2; l++) {
    assert.deepEqual(fs[l].A.shape, [sizes[l] + 1, sizes[l] + 1]);
    assert.deepEqual(fs[l].G.shape, [sizes[l + 1], sizes[l + 1]]);
    near(await fs[l].A.data(), ref.A[l].flat(), 1e-13, `A[${l}]`);
    near(await fs[l].G.data(), ref.G[l].flat(), 1e-12, `G[${l}]`);
  }
  // the hand-written gradient agrees with the library's (checks the reference itself)
  const g = grad((p: Tensor) => loss(net.apply(p, X)))(net.params);
  near(await g.data(), ref.grads.flat(), 1e-12, "gradient");
  for (const t of [net.params, X, Y, g, ...fs.flatMap((f) => [f.A, f.G])]) t.dispose();
  assertNoLeak(base, "kfacFactors");
});

Deno.test("kfacPrecondition: equals ((A + √λI) ⊗ (G + √λI))⁻¹ ∇ from an explicit Kronecker product", async () => {
  const sizes = [3, 4, 2], N = 6;
  const net = mlp(sizes, "sigmoid", { seed: 9, ...f64 });
  const Xh = toMat(randArray(N * 3, 41, -2, 2), N, 3), Yh = toMat(randArray(N * 2, 42), N, 2);
  const X = t64(Xh, [N, 3]), Y = t64(Yh, [N, 2]);
  const loss = (out: Tensor) => mseLoss(out, Y);
  const ref = kfacReference(sizes, await net.params.data(), Xh, Yh);
  const fs = kfacFactors(net, net.params, X, loss);
  const g = grad((p: Tensor) => loss(net.apply(p, X)))(net.params);
  for (const lambda of [1e-3, 0.1, 10]) {
    const s = Math.sqrt(lambda);
    const want = ref.grads.flatMap((gl, l) =>
      solveM(kron(addDiag(ref.A[l], s), addDiag(ref.G[l], s)), gl)
    );
    const got = await kfacPrecondition(net, fs, g, lambda).data();
    near(got, want, 1e-10, `λ = ${lambda}`);
  }
  // λ = 0 would be the undamped inverse; with few samples A is rank-deficient, so it is not tested
  assert.throws(() => kfacPrecondition(net, fs, g, -1), /damping must be a finite number ≥ 0/);
  assert.throws(
    () => kfacPrecondition(net, fs.slice(1), g, 1),
    /expected 2 layers' factors, got 1/,
  );
});

Deno.test({
  name: "gaussNewtonVp and K-FAC on WebGPU (f32) agree with the CPU in f64",
  ignore: !gpuDev,
  fn: async () => {
    const g32 = { dtype: "f32" as const, device: gpuDev! };
    const sizes = [3, 4, 2], N = 5;
    const Xh = toMat(randArray(N * 3, 51, -2, 2), N, 3), Yh = toMat(randArray(N * 2, 52), N, 2);
    const run = async (o: typeof f64 | typeof g32) => {
      const net = mlp(sizes, "sigmoid", { seed: 2, ...o });
      const X = tensor(Xh, o), Y = tensor(Yh, o);
      const loss = (out: Tensor) => mseLoss(out, Y);
      const v = tensor(Array.from(randArray(net.numParams, 53)), o);
      const gv = await gaussNewtonVp(
        (p: Tensor, x: Tensor) => net.apply(p, x),
        loss,
        net.params,
        X,
        v,
      )
        .data();
      const fs = kfacFactors(net, net.params, X, loss);
      const g = grad((p: Tensor) => loss(net.apply(p, X)))(net.params);
      const pg = await kfacPrecondition(net, fs, g, 0.1).data();
      return { gv, pg };
    };
    const a = await run(f64), b = await run(g32);
    // f32 rounding (ε ≈ 1.2e-7) through ~10 dependent ops and two 5×5 solves with κ ≲ 100
    near(b.gv, a.gv, 1e-5, "G v");
    near(b.pg, a.pg, 1e-4, "K-FAC step");
  },
});
