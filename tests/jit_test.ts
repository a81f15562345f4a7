/**
 * jit: compiled calls give the uncompiled values, on every backend; a function is traced
 * once per input signature and replayed after (f itself no longer runs); closed-over
 * tensors are constants of the trace; memory returns to its baseline; transforms compose
 * with jit both ways; errors raised by kernels are raised on replays too.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  assertClose,
  type Backend,
  cpu,
  gpuDev,
  randArray,
  sameMemory,
  testAll,
} from "./helpers.ts";
import {
  choleskyBanded,
  grad,
  hessian,
  hessianDiagonal,
  hessianTrace,
  hvp,
  inverseHvp,
  jit,
  matmul,
  memory,
  minimize,
  reshape,
  slice,
  solve,
  solveBanded,
  square,
  stack,
  sum,
  type Tensor,
  tensor,
  tidy,
  transpose,
  valueAndGrad,
} from "../mod.ts";

const rosen = (x: Tensor) => {
  const n = x.size;
  const a = slice(x, [1], [n]), b = slice(x, [0], [n - 1]);
  return sum(square(a.sub(b.square())).mul(100)).add(sum(square(b.neg().add(1))));
};

/** Values of a result tree (tensors read back), for comparing compiled and plain calls. */
async function values(v: unknown): Promise<unknown> {
  if (v && typeof v === "object" && "_isTensor" in v) return Array.from(await (v as Tensor).data());
  if (Array.isArray(v)) return Promise.all(v.map(values));
  if (v && typeof v === "object") {
    return Object.fromEntries(
      await Promise.all(Object.entries(v).map(async ([k, x]) => [k, await values(x)])),
    );
  }
  return v;
}

function disposeAll(v: unknown): void {
  if (v && typeof v === "object" && "_isTensor" in v) (v as Tensor).dispose();
  else if (Array.isArray(v)) v.forEach(disposeAll);
  else if (v && typeof v === "object") Object.values(v).forEach(disposeAll);
}

/**
 * Checks `jit(f)` against `f` on several inputs: equal values (to rounding: the same
 * kernels run, so exactly on the CPU), one trace, `f` run only by the trace, and memory
 * back to its baseline.
 */
async function agree(
  b: Backend,
  f: (...xs: Tensor[]) => unknown,
  inputs: (seed: number) => Tensor[],
  rtol = b.rtol,
): Promise<void> {
  let runs = 0;
  const counted = (...xs: Tensor[]) => {
    runs++;
    return f(...xs);
  };
  const jf = jit(counted);
  const base = memory().tensors;
  for (let seed = 1; seed <= 4; seed++) {
    const xs = inputs(seed);
    const plain = tidy(() => f(...xs));
    const want = await values(plain);
    disposeAll(plain);
    const got = jf(...xs);
    const have = await values(got);
    const flat = (v: unknown): number[] =>
      Array.isArray(v)
        ? v.flatMap(flat)
        : typeof v === "number"
        ? [v]
        : Object.values(v as object).flatMap(flat);
    assertClose(flat(have), flat(want), { rtol, atol: rtol, msg: `seed ${seed}` });
    disposeAll(got);
    for (const x of xs) x.dispose();
  }
  equal(jf.traces, 1, "traced once");
  equal(runs, 1, "f ran only while tracing: later calls replayed the compiled program");
  equal(memory().tensors, base, "memory back to its baseline");
}

testAll("jit(grad(f)) equals grad(f), traced once", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  await agree(b, grad(rosen), (s) => [tensor(randArray(70_001, s), opts)]);
});

testAll("jit of a K-probe HVP and of valueAndGrad equals the plain calls", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const n = 1000;
  await agree(
    b,
    (x, v) => hvp(rosen, x, v),
    (
      s,
    ) => [
      tensor(randArray(n, s), opts),
      tensor(randArray(5 * n, s + 7), { ...opts, shape: [5, n] }),
    ],
  );
  await agree(b, (x) => valueAndGrad(rosen)(x), (s) => [tensor(randArray(n, s), opts)]);
});

testAll(
  "jit of a Newton step (band by hand, banded Cholesky, solve) equals the plain step",
  async (b) => {
    const opts = { dtype: b.dtype, device: b.dev };
    const n = 64;
    // f = Σ (x[i+1] − x[i])² + Σ x⁴/12 + Σ x²: tridiagonal Hessian
    const f = (x: Tensor) =>
      sum(square(slice(x, [1], [n]).sub(slice(x, [0], [n - 1])))).add(sum(x.pow(4)).div(12))
        .add(sum(square(x)));
    const step = (x: Tensor) => {
      const g = grad(f)(x);
      const x2 = square(x);
      // lower band storage: diagonal 2 + 2·[interior] + x², off-diagonal −2
      const inner = tensor(
        Array.from({ length: n }, (_, i) => (i === 0 || i === n - 1 ? 2 : 4)),
        opts,
      );
      const diag = inner.add(x2).add(2);
      const off = tensor(Array.from({ length: n }, (_, i) => (i < n - 1 ? -2 : 0)), opts);
      const ab = stack([diag, off]);
      return {
        x: x.sub(solveBanded(ab, g, { lower: true })),
        L: choleskyBanded(ab, { lower: true }),
      };
    };
    await agree(b, step, (s) => [tensor(randArray(n, s), opts)], b.dtype === "f64" ? 1e-12 : 1e-4);
  },
);

testAll("jit of dense linear algebra and matmul equals the plain calls", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const f = (a: Tensor, y: Tensor) => {
    const spd = matmul(a, transpose(a)).add(tensor([[4, 0, 0], [0, 4, 0], [0, 0, 4]], opts));
    return [solve(spd, y), sum(matmul(spd, y))];
  };
  await agree(
    b,
    f,
    (
      s,
    ) => [
      tensor(randArray(9, s), { ...opts, shape: [3, 3] }),
      tensor(randArray(6, s + 1), { ...opts, shape: [3, 2] }),
    ],
    b.dtype === "f64" ? 1e-12 : 1e-4,
  );
});

Deno.test("jit: side effects are not replayed; closed-over tensors are constants of the trace", async () => {
  const log: number[] = [];
  let w = tensor([1, 2, 3], { dtype: "f64" });
  const f = jit((x: Tensor) => {
    log.push(x.size);
    return x.mul(w).sum();
  });
  const x = tensor([1, 1, 1], { dtype: "f64" });
  const r1 = f(x);
  equal(await r1.item(), 6);
  const old = w;
  w = tensor([10, 20, 30], { dtype: "f64" });
  old.dispose(); // the program keeps the value it closed over alive
  const r2 = f(x);
  equal(await r2.item(), 6, "the replay uses the value w had when traced");
  deepEqual(log, [3], "the push ran once, during the trace");
  f.clear();
  const r3 = f(x);
  equal(await r3.item(), 60, "a new trace sees the new w");
  for (const t of [r1, r2, r3, x, w]) t.dispose();
});

Deno.test("jit composes with transforms both ways, and nests", async () => {
  const opts = { dtype: "f64" as const, device: cpu };
  const x = tensor(randArray(50, 3), opts);
  const want = await grad(rosen)(x).data();
  const inner = jit(rosen);
  // grad of a jitted function: the transform sees its ops (jit runs inline under it)
  assertClose(await grad(inner)(x).data(), want, { rtol: 1e-14 });
  // jit of grad of jit
  const outer = jit(grad(inner));
  assertClose(await outer(x).data(), want, { rtol: 1e-14 });
  assertClose(await outer(x).data(), want, { rtol: 1e-14 });
  equal(outer.traces, 1);
  // a jitted function called inside another's trace runs inline
  const both = jit((y: Tensor) => inner(y).add(inner(y.mul(2))));
  const v = await both(x).item();
  const w = (await rosen(x).item()) + (await rosen(x.mul(2)).item());
  assertClose([v], [w], { rtol: 1e-14 });
});

Deno.test("jit: a returned input, nested results and non-tensor results", async () => {
  const f = jit((x: Tensor) => ({ same: x, twice: [x.mul(2), 7], sum: x.sum() }));
  const x = tensor([1, 2], { dtype: "f64" });
  f(x);
  const y = tensor([3, 4], { dtype: "f64" });
  const r = f(y) as { same: Tensor; twice: [Tensor, number]; sum: Tensor };
  deepEqual(Array.from(await r.same.data()), [3, 4]);
  deepEqual(Array.from(await r.twice[0].data()), [6, 8]);
  equal(r.twice[1], 7);
  equal(await r.sum.item(), 7);
  equal(f.traces, 1);
});

Deno.test("jit: a singular solve raises on a replay as it does uncompiled", async () => {
  const f = jit((a: Tensor) => solve(a, tensor([[1], [1]], { dtype: "f64" })));
  await f(tensor([[2, 0], [0, 1]], { dtype: "f64" })).data();
  const before = memory().tensors;
  throws(() => f(tensor([[1, 2], [2, 4]], { dtype: "f64" })), /singular/);
  equal(memory().tensors, before + 1, "only the argument is left (the failed call frees its work)");
});

Deno.test("jit: clear errors for what cannot be compiled", () => {
  const f = jit((x: Tensor, k: number) => x.mul(k));
  throws(() => f(tensor([1]), 2), /argument 1 is number 2.*static/s);
  throws(() => jit(3 as unknown as () => Tensor), /expected a function/);
  throws(
    () => jit((x: Tensor) => x, { statics: [1] } as never),
    /unknown option "statics".*"static"/,
  );
  const p = jit((x: Tensor) => Promise.resolve(x) as unknown as Tensor);
  throws(() => p(tensor([1])), /Promise/);
  const g = jit((x: Tensor, o: { t: Tensor }) => x.add(o.t), { static: [1] });
  throws(() => g(tensor([1]), { t: tensor([1]) }), /static argument 1 holds a Tensor/);
});

Deno.test("jit: inputs that alias, and a reshape view as output", async () => {
  const f = jit((a: Tensor, b: Tensor) => reshape(a.add(b), [2, 2]));
  const x = tensor([1, 2, 3, 4], { dtype: "f64" });
  deepEqual(await f(x, x).toArray(), [[2, 4], [6, 8]]);
  const y = tensor([1, 1, 1, 1], { dtype: "f64" });
  deepEqual(await f(y, x).toArray(), [[2, 3], [4, 5]], "a new signature: distinct inputs");
  ok(f.traces >= 1);
});

Deno.test({
  name: "jit on WebGPU: replays record no new pipelines, and queue without a submit of their own",
  ignore: !gpuDev,
  fn: async () => {
    const g = gpuDev!;
    const f = jit(grad(rosen));
    const x = tensor(randArray(5000, 1), { device: g, dtype: "f32" });
    await f(x).data(); // trace
    const s0 = g.stats;
    const outs = Array.from({ length: 5 }, () => f(x));
    const s1 = g.stats;
    equal(s1.submits, s0.submits, "five replays queued, nothing submitted");
    ok(s1.dispatches - s0.dispatches >= 5, "each replay dispatches its kernels");
    await outs[4].data();
    equal(g.stats.submits - s1.submits, 1, "one submit when the result is read");
    const want = await grad(rosen)(x).data();
    for (const o of outs) assertClose(await o.data(), want, { rtol: 1e-6, atol: 1e-6 });
  },
});

Deno.test({
  name: "jit on WebGPU: a replay's kernel error belongs to its result, not to unrelated reads",
  ignore: !gpuDev,
  fn: async () => {
    const g = gpuDev!;
    const f = jit((a: Tensor) => solve(a, tensor([[1], [1]], { device: g })).mul(2));
    await f(tensor([[2, 0], [0, 1]], { device: g })).data();
    const bad = f(tensor([[1, 2], [2, 4]], { device: g }));
    const fine = f(tensor([[3, 0], [0, 1]], { device: g }));
    const other = tensor([5, 6], { device: g }).mul(2);
    deepEqual(Array.from(await other.data()), [10, 12], "an unrelated read does not raise");
    assertClose(await fine.data(), [2 / 3, 2], { rtol: 1e-6 });
    let raised = "";
    await bad.data().catch((e) => (raised = String(e)));
    ok(/singular/.test(raised), `the failed replay's result raises its error (got "${raised}")`);
  },
});

Deno.test("jit: a function that reads a value while traced (dataSync) runs uncompiled, correctly", async () => {
  let runs = 0;
  const f = jit((x: Tensor) => {
    runs++;
    return x.sum().dataSync()[0] > 0 ? x.mul(2) : x.mul(-1);
  });
  deepEqual(Array.from(await f(tensor([1, 2], { dtype: "f64" })).data()), [2, 4]);
  deepEqual(Array.from(await f(tensor([-1, -2], { dtype: "f64" })).data()), [1, 2]);
  equal(runs, 2, "the branch depends on the value: f runs on every call");
});

testAll(
  "the library's repeated work runs compiled: f is traced once per shape, values as closed forms",
  async (b) => {
    const opts = { dtype: b.dtype, device: b.dev };
    const n = 12;
    // f = Σ c_i x_i⁴ / 12 + Σ x_i²/2: H = diag(c x² + 1), computed here in JavaScript
    const cs = Array.from({ length: n }, (_, i) => 1 + (i % 3));
    const xs = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
    const hdiag = xs.map((v, i) => cs[i] * v * v + 1);
    const c = tensor(cs, opts);
    let calls = 0;
    const f = (x: Tensor) => {
      // a side effect: runs when f is traced, and once per call for the graph that keys the
      // call's programs (src/ad/auto_jit.ts), not when its kernels are replayed
      calls++;
      return sum(x.pow(4).mul(c)).div(12).add(sum(square(x)).div(2));
    };
    const x = tensor(xs, opts);
    const base = memory();

    // hessianDiagonal (comb, one probe per batch: b + 1 = 4 batches of one shape)
    calls = 0;
    const d = await hessianDiagonal(f, x, { method: "comb", bandwidth: 3, batch: 1 });
    assertClose(await d.value.data(), hdiag, { rtol: b.rtol, msg: "comb diagonal" });
    d.value.dispose();
    equal(calls, 2, "hessianDiagonal: 4 batches, one trace (and the key run)");

    // hessianTrace (Hutchinson, 30 probes in batches of 8: shapes 8 and 6)
    calls = 0;
    const t = await hessianTrace(f, x, { method: "hutchinson", samples: 30, batch: 8, seed: 3 });
    assertClose([t.value], [hdiag.reduce((a, v) => a + v, 0)], { rtol: 10 * b.rtol });
    equal(calls, 3, "hessianTrace: two batch shapes, two traces (and the key run)");

    // hessian in chunks of 5 columns: 5, 5, 2
    calls = 0;
    const H = hessian(f, { chunkSize: 5 })(x);
    const want = new Array(n * n).fill(0);
    hdiag.forEach((v, i) => (want[i * n + i] = v));
    assertClose(await H.data(), want, { rtol: b.rtol, atol: 1e-6, msg: "hessian" });
    H.dispose();
    equal(calls, 3, "hessian: two chunk shapes, two traces (and the key run)");

    // inverseHvp by CG: H u = v with u known
    calls = 0;
    const us = xs.map((v) => 1 - v);
    const v = tensor(us.map((u, i) => hdiag[i] * u), opts);
    const u = await inverseHvp(f, x, v, { method: "cg", rtol: b.dtype === "f64" ? 1e-12 : 1e-6 });
    assertClose(await u.data(), us, { rtol: 100 * b.rtol, atol: 100 * b.rtol, msg: "inverseHvp" });
    u.dispose();
    v.dispose();
    equal(calls, 2, "inverseHvp: every CG iteration replays one trace (and the key run)");

    // minimize by Newton-CG (its evaluations are not compiled on main: see bench/RESULTS.md)
    const r = await minimize(f, x, { method: "newton-cg", gtol: b.dtype === "f64" ? 1e-10 : 1e-4 });
    assertClose(await r.x.data(), new Array(n).fill(0), { atol: b.dtype === "f64" ? 1e-8 : 1e-3 });
    r.x.dispose();
    r.jac.dispose();
    ok(sameMemory(base, memory()), "memory back to its baseline");
    x.dispose();
    c.dispose();
  },
);

testAll(
  "jit: consecutive calls differing in shape or in aliasing each replay their own program",
  async (b) => {
    const o = { dtype: b.dtype, device: b.dev };
    const g = jit((x: Tensor, y: Tensor) => x.mul(2).add(y));
    const a = tensor([1, 2, 3], o), c = tensor([10, 20, 30], o), d = tensor([1, 2], o);
    // each call right after one of another signature: 2x + y
    const calls: [Tensor, Tensor, number[]][] = [
      [a, a, [3, 6, 9]], // one storage, one input of the program
      [a, c, [12, 24, 36]],
      [d, d, [3, 6]],
      [a, a, [3, 6, 9]],
      [a, c, [12, 24, 36]],
      [a, c, [12, 24, 36]],
      [d, d, [3, 6]],
    ];
    for (const [x, y, want] of calls) {
      const r = g(x, y);
      assertClose(await r.data(), want, { rtol: b.rtol });
      r.dispose();
    }
    equal(g.traces, 3);
    for (const t of [a, c, d]) t.dispose();
  },
);
