/**
 * Lifetimes on every backend: memory() returns to its baseline after tidy scopes (nested,
 * returning arrays and objects, throwing), `using`, double dispose, shared reshape storage,
 * and after every transform once the results it returned are disposed. Transform results
 * are also checked against closed-form derivatives so a transform that "frees" memory by
 * returning garbage fails too.
 */
import assert from "node:assert/strict";
import {
  bandedHessian,
  cg,
  concat,
  gather,
  grad,
  hessian,
  hessianDiagonal,
  hessianEigenvalues,
  hvp,
  jacobian,
  jvp,
  keep,
  matmul,
  memory,
  minimize,
  mlp,
  pad,
  reshape,
  slice,
  sparseHessian,
  sparseJacobian,
  type Tensor,
  tensor,
  tidy,
  transpose,
  valueAndGrad,
  vjp,
  zeros,
} from "../mod.ts";
import {
  assertClose,
  assertNoLeak,
  type Backend,
  liveSince,
  randArray,
  testAll,
} from "./helpers.ts";

function mk(b: Backend, data: ArrayLike<number>, shape: readonly number[]): Tensor {
  return tensor(Float64Array.from(data), { shape, dtype: b.dtype, device: b.dev });
}

const bytesOf = (b: Backend, n: number) => n * (b.dtype === "f64" ? 8 : 4);

/** Live tensors and bytes on this backend's device alone. */
function onDevice(b: Backend): { tensors: number; bytes: number } {
  return memory().backends[b.dev.kind] ?? { tensors: 0, bytes: 0 };
}

testAll("tidy frees intermediates, keeps its result, and nests", async (b) => {
  const base = memory();
  const x = mk(b, [1, 2, 3], [3]);
  const y = tidy(() => {
    const a = x.mul(2); // freed
    const inner = tidy(() => {
      const c = a.add(1).exp(); // freed
      return c.log(); // kept by the inner tidy, then freed by the outer one
    });
    assert.equal(inner.disposed, false, "the inner result survives the inner tidy");
    return inner.sub(a); // (2x + 1) - 2x = 1
  });
  assert.equal(x.disposed, false, "tensors from outside a tidy are left alone");
  assert.equal(liveSince(base), 2, "only x and the result are live");
  assert.equal(onDevice(b).bytes - (base.backends[b.dev.kind]?.bytes ?? 0), bytesOf(b, 6));
  assertClose(await y.data(), [1, 1, 1], { rtol: b.rtol * 10 });
  y.dispose();
  x.dispose();
  assertNoLeak(base, "nested tidy");
});

testAll("tidy returning arrays and objects keeps every tensor in them", async (b) => {
  const base = memory();
  const x = mk(b, [1, 2], [2]);
  const out = tidy(() => {
    const t = x.add(1);
    t.mul(3); // garbage
    return { a: t, list: [x.mul(2), { deep: x.neg() }] as const, n: 3, s: "text", x };
  });
  assert.equal(liveSince(base), 4, "x, a, list[0] and deep live");
  assertClose(await out.a.data(), [2, 3], { rtol: 0 });
  assertClose(await out.list[0].data(), [2, 4], { rtol: 0 });
  assertClose(await out.list[1].deep.data(), [-1, -2], { rtol: 0 });
  assert.equal(out.x, x);
  const arr = tidy(() => [x.exp(), x.sin(), x.cos()]);
  assert.equal(liveSince(base), 7);
  for (const t of [out.a, out.list[0], out.list[1].deep, ...arr]) t.dispose();
  x.dispose();
  assertNoLeak(base, "tidy returning containers");
});

testAll("tidy that throws frees everything it made and rethrows", (b) => {
  const base = memory();
  const x = mk(b, [1, 2, 3], [3]);
  assert.throws(
    () =>
      tidy(() => {
        x.mul(2).exp();
        tidy(() => x.add(1)); // nested result, then the outer scope throws
        throw new Error("boom");
      }),
    /boom/,
  );
  assert.equal(liveSince(base), 1);
  // an op error inside tidy (shape mismatch) frees what was made before it
  assert.throws(() => tidy(() => x.add(1).add(zeros([2], { dtype: b.dtype, device: b.dev }))), {
    name: "RangeError",
  });
  assert.equal(liveSince(base), 1);
  // a tensor moved out of the scope with keep() survives
  let k: Tensor | null = null;
  const r = tidy(() => {
    k = keep(x.mul(5));
    x.mul(6);
    return null;
  });
  assert.equal(r, null);
  assert.equal(liveSince(base), 2);
  assert.equal(k!.disposed, false);
  k!.dispose();
  x.dispose();
  assertNoLeak(base, "tidy that throws");
});

testAll("`using` disposes at the end of the block; dispose twice is harmless", (b) => {
  const base = memory();
  {
    using x = mk(b, [1, 2, 3, 4], [4]);
    using y = x.mul(x);
    assert.equal(liveSince(base), 2);
    assert.equal(y.disposed, false);
  }
  assertNoLeak(base, "using");
  const z = mk(b, [1], [1]);
  z.dispose();
  z.dispose();
  z[Symbol.dispose]();
  assert.equal(z.disposed, true);
  assertNoLeak(base, "double dispose");
});

testAll("reshape views share storage: bytes counted once, freed with the last view", async (b) => {
  const base = memory();
  const b0 = base.backends[b.dev.kind]?.bytes ?? 0;
  const x = mk(b, randArray(12, 1), [3, 4]);
  const v1 = reshape(x, [12]);
  const v2 = reshape(v1, [2, 6]);
  const v3 = x.reshape([3, 4]); // a no-op reshape is a view too
  assert.equal(liveSince(base), 4);
  assert.equal(onDevice(b).bytes - b0, bytesOf(b, 12), "one storage for four views");
  x.dispose();
  v1.dispose();
  assert.equal(onDevice(b).bytes - b0, bytesOf(b, 12), "still held by v2 and v3");
  assertClose(await v2.data(), randArray(12, 1), { rtol: 0 });
  v3.dispose();
  assertClose(await v2.data(), randArray(12, 1), { rtol: 0 });
  v2.dispose();
  assertNoLeak(base, "views");
  assert.equal(onDevice(b).bytes, b0);
});

// ---------- transforms ----------

/**
 * f(x) = Σ sin(x)·x + Σ (A x)² + Σ gather(x, I)·slice(x) + Σ pad(x)·concat(x, 1) + Σ xᵀ-ish,
 * touching most primitives' rules. Its gradient and Hessian are written out by hand below.
 */
function makeF(A: Tensor) {
  return (x: Tensor): Tensor => {
    const n = x.shape[0];
    const t1 = x.sin().mul(x).sum();
    const ax = matmul(A, x);
    const t2 = ax.mul(ax).sum();
    const t3 = gather(x, [0, 2, 2, n - 1]).mul(slice(x, [0], [4])).sum();
    const ones = zeros([1], { dtype: x.dtype, device: x.device }).add(1);
    const t4 = pad(x, [[1, 0]]).mul(concat([x, ones])).sum();
    const t5 = transpose(reshape(x, [2, n / 2])).sum().square();
    return t1.add(t2).add(t3).add(t4).add(t5);
  };
}

/** The gradient and Hessian of makeF's f, in f64. */
function fRef(x: Float64Array, A: Float64Array, m: number) {
  const n = x.length;
  const g = new Float64Array(n), H = new Float64Array(n * n);
  const h = (i: number, j: number, v: number) => (H[i * n + j] += v);
  for (let i = 0; i < n; i++) {
    g[i] += Math.cos(x[i]) * x[i] + Math.sin(x[i]);
    h(i, i, -Math.sin(x[i]) * x[i] + 2 * Math.cos(x[i]));
  }
  for (let r = 0; r < m; r++) {
    let ax = 0;
    for (let j = 0; j < n; j++) ax += A[r * n + j] * x[j];
    for (let j = 0; j < n; j++) {
      g[j] += 2 * ax * A[r * n + j];
      for (let k = 0; k < n; k++) h(j, k, 2 * A[r * n + j] * A[r * n + k]);
    }
  }
  const I = [0, 2, 2, n - 1];
  for (let k = 0; k < 4; k++) {
    g[I[k]] += x[k];
    g[k] += x[I[k]];
    h(I[k], k, 1);
    h(k, I[k], 1);
  }
  // pad(x)[i]·concat(x,1)[i]: Σ_{i=1}^{n-1} x[i-1]·x[i] + x[n-1]·1
  for (let i = 1; i < n; i++) {
    g[i - 1] += x[i];
    g[i] += x[i - 1];
    h(i - 1, i, 1);
    h(i, i - 1, 1);
  }
  g[n - 1] += 1;
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i];
  for (let i = 0; i < n; i++) {
    g[i] += 2 * s;
    for (let j = 0; j < n; j++) h(i, j, 2);
  }
  return { g, H };
}

function setup(b: Backend) {
  const n = 6, m = 3;
  const xd = randArray(n, 11), Ad = randArray(m * n, 12);
  const x = mk(b, xd, [n]), A = mk(b, Ad, [m, n]);
  return { n, m, xd, Ad, x, A, f: makeF(A), ref: fRef(xd, Ad, m) };
}

const tol = (b: Backend) => ({
  rtol: b.dtype === "f64" ? 1e-9 : 1e-4,
  atol: b.dtype === "f64" ? 1e-9 : 1e-4,
});

testAll("grad and valueAndGrad leave nothing behind", async (b) => {
  const s = setup(b);
  const base = memory();
  const g = grad(s.f)(s.x);
  assertClose(await g.data(), s.ref.g, tol(b));
  g.dispose();
  assertNoLeak(base, "grad");
  const [v, g2] = valueAndGrad(s.f)(s.x);
  assertClose(await g2.data(), s.ref.g, tol(b));
  assert.equal(v.size, 1);
  v.dispose();
  g2.dispose();
  assertNoLeak(base, "valueAndGrad");
  // several argnums
  const gs = grad((a: Tensor, x: Tensor) => matmul(a, x).square().sum(), { argnums: [0, 1] })(
    s.A,
    s.x,
  );
  assert.equal(gs.length, 2);
  for (const t of gs) t.dispose();
  assertNoLeak(base, "grad with argnums");
  // grad of grad
  const gg = grad((x: Tensor) => grad(s.f)(x).sum())(s.x);
  const rowSums = Array.from({ length: s.n }, (_, j) => {
    let acc = 0;
    for (let i = 0; i < s.n; i++) acc += s.ref.H[i * s.n + j];
    return acc;
  });
  assertClose(await gg.data(), rowSums, tol(b));
  gg.dispose();
  assertNoLeak(base, "grad of grad");
  // a transform whose function throws frees what it made
  assert.throws(() =>
    grad((x: Tensor) => {
      x.mul(2).exp();
      throw new Error("inside");
    })(s.x), /inside/);
  assertNoLeak(base, "grad that throws");
  s.x.dispose();
  s.A.dispose();
});

testAll("jvp and hvp (one probe and K probes) leave nothing behind", async (b) => {
  const s = setup(b);
  const base = memory();
  const vd = randArray(s.n, 13);
  const v = mk(b, vd, [s.n]);
  const [y, t] = jvp(s.f, [s.x], [v]);
  let dd = 0;
  for (let i = 0; i < s.n; i++) dd += s.ref.g[i] * vd[i];
  assertClose(await t.data(), [dd], tol(b));
  y.dispose();
  t.dispose();
  v.dispose();
  assertNoLeak(base, "jvp");
  const K = 4;
  const Vd = randArray(K * s.n, 14);
  const V = mk(b, Vd, [K, s.n]);
  const hv = hvp(s.f, s.x, V);
  const want = new Float64Array(K * s.n);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < s.n; i++) {
      for (let j = 0; j < s.n; j++) want[k * s.n + i] += s.ref.H[i * s.n + j] * Vd[k * s.n + j];
    }
  }
  assert.deepEqual([...hv.shape], [K, s.n]);
  assertClose(await hv.data(), want, tol(b));
  hv.dispose();
  const v1 = V.slice([1], [2]), v1r = v1.reshape([s.n]);
  const hv1 = hvp(s.f, s.x, v1r);
  assertClose(await hv1.data(), want.subarray(s.n, 2 * s.n), tol(b));
  for (const t of [hv1, v1, v1r]) t.dispose();
  V.dispose();
  assertNoLeak(base, "hvp");
  s.x.dispose();
  s.A.dispose();
});

testAll("hessian and jacobian (fwd and rev) leave nothing behind", async (b) => {
  const s = setup(b);
  const base = memory();
  const H = hessian(s.f)(s.x);
  assert.deepEqual([...H.shape], [s.n, s.n]);
  assertClose(await H.data(), s.ref.H, tol(b));
  H.dispose();
  assertNoLeak(base, "hessian");
  // J of x -> A·sin(x): J = A diag(cos x)
  const fv = (x: Tensor) => matmul(s.A, x.sin());
  const Jwant = new Float64Array(s.m * s.n);
  for (let r = 0; r < s.m; r++) {
    for (let j = 0; j < s.n; j++) Jwant[r * s.n + j] = s.Ad[r * s.n + j] * Math.cos(s.xd[j]);
  }
  for (const mode of ["fwd", "rev"] as const) {
    const J = jacobian(fv, { mode })(s.x);
    assert.deepEqual([...J.shape], [s.m, s.n]);
    assertClose(await J.data(), Jwant, tol(b));
    J.dispose();
    assertNoLeak(base, `jacobian ${mode}`);
  }
  s.x.dispose();
  s.A.dispose();
});

testAll("vjp: the pullback keeps what it needs until pullback.dispose()", async (b) => {
  const s = setup(b);
  const base = memory();
  const fv = (x: Tensor) => matmul(s.A, x.exp());
  const [y, back] = vjp(fv, s.x);
  assert.deepEqual([...y.shape], [s.m]);
  const ctd = randArray(s.m, 15);
  const ct = mk(b, ctd, [s.m]);
  const want = new Float64Array(s.n);
  for (let j = 0; j < s.n; j++) {
    for (let r = 0; r < s.m; r++) want[j] += ctd[r] * s.Ad[r * s.n + j] * Math.exp(s.xd[j]);
  }
  // two pullbacks from one forward pass
  for (let rep = 0; rep < 2; rep++) {
    const [gx] = back(ct);
    assertClose(await gx.data(), want, tol(b));
    gx.dispose();
  }
  // the pullback holds the forward values: more than y is alive until it is disposed
  assert.ok(liveSince(base) > 2, "the forward pass's values are held");
  ct.dispose();
  y.dispose();
  back.dispose();
  back.dispose(); // harmless twice
  assertNoLeak(base, "vjp + pullback.dispose()");
  assert.throws(() => back(ct), /dispose/);
  s.x.dispose();
  s.A.dispose();
});

testAll("vjp: the user may dispose the output before pulling back", async (b) => {
  const s = setup(b);
  const base = memory();
  const [y, back] = vjp((x: Tensor) => x.exp().mul(2), s.x);
  y.dispose();
  const ct = mk(b, new Float64Array(s.n).fill(1), [s.n]);
  const [gx] = back(ct);
  assertClose(await gx.data(), s.xd.map((v) => 2 * Math.exp(v)), tol(b));
  for (const t of [gx, ct]) t.dispose();
  back.dispose();
  assertNoLeak(base, "vjp with y disposed first");
  s.x.dispose();
  s.A.dispose();
});

testAll("memory is per backend and returns to baseline after a mixed workload", (b) => {
  const base = memory();
  const d0 = onDevice(b);
  const x = mk(b, randArray(100, 16), [10, 10]);
  assert.equal(onDevice(b).tensors - d0.tensors, 1);
  assert.equal(onDevice(b).bytes - d0.bytes, bytesOf(b, 100));
  const r = tidy(() => {
    const y = matmul(x, transpose(x)).add(1).sum(0);
    const z = concat([y, slice(y, [0], [3])]).gather([1, 2, 3]);
    return { y, z };
  });
  assert.equal(onDevice(b).tensors - d0.tensors, 3);
  assert.equal(onDevice(b).bytes - d0.bytes, bytesOf(b, 100 + 10 + 3));
  for (const t of [x, r.y, r.z]) t.dispose();
  assertNoLeak(base, "mixed workload");
});

/**
 * Issue 8, defect 7: `tidy(() => bandedHessian(…))` disposed the band it returned, because
 * `tidy` kept tensors only in arrays and plain objects. Every result type of the library
 * survives `tidy` (sync, and async for the async calls), with the right values (closed
 * forms: f = Σ xᵢ³ has the diagonal Hessian 6x), and frees everything once disposed.
 */
testAll(
  "every result type of the library survives tidy, and frees all once disposed",
  async (b) => {
    const base = memory();
    const x = mk(b, [1, 2, 3, 4], [4]);
    const f = (z: Tensor) => z.pow(3).sum();
    const hdiag = [6, 12, 18, 24];
    const read = async (t: Tensor) => Array.from(await t.data());
    // sync calls whose results are classes
    const band = tidy(() => bandedHessian(f, x, { bandwidth: 1, symmetryCheck: true }));
    assertClose(await read(band.data), [0, 0, 0, 0, ...hdiag], {
      rtol: b.rtol,
      atol: 1e-6,
      msg: "band",
    });
    assert.ok((await band.symmetryError!.item()) < 1e-6);
    const sp = tidy(() => sparseHessian(f, x));
    assertClose(await read(sp.values), hdiag, { rtol: b.rtol, atol: 1e-6, msg: "sparse values" });
    const spb = tidy(() => sparseHessian(f, x).toBanded("lower"));
    assertClose(await read(spb.data), hdiag, { rtol: b.rtol, atol: 1e-6, msg: "sparse → band" });
    const sj = tidy(() => [sparseJacobian((z: Tensor) => z.mul(2), x)]);
    assertClose(await read(sj[0].values), [2, 2, 2, 2], {
      rtol: b.rtol,
      atol: 1e-6,
      msg: "sparse Jacobian",
    });
    // a pullback (a function holding the forward pass) and a network (an object with params)
    const [y, pull] = tidy(() => vjp(f, x));
    {
      using one = tensor(1, { dtype: b.dtype, device: b.dev });
      using gx = pull(one)[0];
      assertClose(await read(gx), [3, 12, 27, 48], { rtol: b.rtol });
    }
    const net = tidy(() => mlp([2, 3, 1], "tanh", { seed: 1, dtype: b.dtype, device: b.dev }));
    assert.equal((await read(net.params)).length, net.numParams);
    // async calls whose results are plain objects holding tensors
    const est = await tidy(() => hessianDiagonal(f, x, { method: "comb", bandwidth: 0 }));
    assertClose(await read(est.value as Tensor), hdiag, {
      rtol: b.rtol,
      atol: 1e-6,
      msg: "estimate",
    });
    const eig = await tidy(() => hessianEigenvalues(f, x, { k: 1 }));
    assert.ok(Math.abs(eig.values[0] - 24) < 1e-3 * 24, `λ = ${eig.values[0]}`);
    const sol = await tidy(() => cg((v: Tensor) => v.mul(2), x));
    assertClose(await read(sol.x), [0.5, 1, 1.5, 2], { rtol: b.rtol, atol: 1e-6, msg: "cg" });
    const opt = await tidy(() =>
      minimize((z: Tensor) => z.sub(3).square().sum(), x, { method: "newton-cg" })
    );
    assertClose(await read(opt.x), [3, 3, 3, 3], { rtol: 1e-4, atol: 1e-4, msg: "minimize" });
    for (const r of [band, sp, spb, sj[0], est.value as Tensor, eig.vectors, sol.x, opt.x]) {
      r.dispose();
    }
    for (const t of [opt.jac, y, net.params]) (t as Tensor | undefined)?.dispose();
    pull.dispose?.();
    x.dispose();
    assertNoLeak(base, "result types under tidy");
  },
);
