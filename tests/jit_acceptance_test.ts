/**
 * `jit` as issue 12 (item 1) states it, through the public names only, on every backend:
 * one trace per signature (shapes, dtypes, static values; counted by `traces` and by a
 * side effect in f), transforms of a jitted function (jvp, vjp, hessian, hvp, vmap) and
 * jit of transforms and of jit, trees of tensors in and out, closed-over tensors as the
 * doc states, console output that is not replayed, WebGPU replays that make no pipeline
 * and submit once per read, and errors that name `jit`. References: closed forms of
 * f(x) = Σ x sin x (gradient sin x + x cos x, Hessian diag(2 cos x − x sin x)) and the
 * same function run without jit; jit_test.ts holds the other cases (Newton step with
 * solveBanded inside, K-probe HVP, dense linear algebra, kernel errors on replay).
 */
import { equal, ok, throws } from "node:assert/strict";
import {
  bandedHessian,
  grad,
  hessian,
  hvp,
  jit,
  jvp,
  memory,
  slice,
  solveBanded,
  square,
  sum,
  type Tensor,
  tensor,
  tidy,
  vjp,
  vmap,
} from "../mod.ts";
import { assertClose, gpuDev, randArray, sameMemory, testAll } from "./helpers.ts";

const f = (x: Tensor) => sum(x.sin().mul(x));
const df = (v: number) => Math.sin(v) + v * Math.cos(v);
const d2f = (v: number) => 2 * Math.cos(v) - v * Math.sin(v);
const fv = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, v) => a + v * Math.sin(v), 0);

/** Inputs exact in f32, so the closed forms see the values the device sees. */
const inputs = (n: number, seed: number) => Array.from(randArray(n, seed), (v) => Math.fround(v));

testAll("jit traces once per shape, dtype and static value; a repeat replays", async (b) => {
  const o = { dtype: b.dtype, device: b.dev };
  let runs = 0;
  const g = jit((x: Tensor, k: number) => {
    runs++;
    return x.mul(k).sum();
  }, { static: [1] });
  const run = async (x: Tensor, k: number) => {
    const y = g(x, k);
    const v = await y.item();
    y.dispose();
    return v;
  };
  const x3 = tensor([1, 2, 3], o);
  equal(await run(x3, 2), 12);
  equal(g.traces, 1);
  equal(await run(tensor([4, 5, 6], o), 2), 30, "same signature: new values");
  equal(g.traces, 1, "same shape, dtype and static value: replayed");
  equal(await run(tensor([1, 2], o), 2), 6);
  equal(g.traces, 2, "new shape: traced");
  equal(await run(tensor([[1, 2], [3, 4]], o), 2), 20);
  equal(g.traces, 3, "same size, new shape: traced");
  equal(await run(x3, 3), 18);
  equal(g.traces, 4, "new static value: traced");
  equal(await run(x3, 2), 12);
  equal(await run(tensor([1, 2], o), 2), 6);
  equal(g.traces, 4, "earlier signatures replayed");
  if (b.dev.kind === "cpu") {
    const other = b.dtype === "f64" ? "f32" : "f64";
    equal(await run(tensor([1, 2, 3], { dtype: other, device: b.dev }), 2), 12);
    equal(g.traces, 5, "new dtype: traced");
  }
  equal(runs, g.traces, "f ran once per trace, never on a replay");
  const traces = g.traces;
  g.clear();
  equal(await run(x3, 2), 12);
  equal(g.traces, traces + 1, "clear() drops the programs: the next call traces");
});

testAll("transforms of a jitted function: jvp, vjp, hvp, hessian, grad", async (b) => {
  const o = { dtype: b.dtype, device: b.dev };
  const xs = inputs(7, 1), vs = inputs(7, 2);
  const x = tensor(xs, o), v = tensor(vs, o);
  const jf = jit(f);
  const tol = { rtol: 10 * b.rtol, atol: 10 * b.rtol };
  const dot = (g: (v: number) => number) => xs.reduce((a, xi, i) => a + g(xi) * vs[i], 0);
  jf(x).dispose(); // traced and compiled first: the transforms must still see f's operations
  const [p, t] = jvp(jf, [x], [v]);
  assertClose([await p.item(), await t.item()], [fv(xs), dot(df)], { ...tol, msg: "jvp" });
  const [q, pull] = vjp(jf, x);
  const [ct] = pull(tensor(2, o));
  assertClose([await q.item()], [fv(xs)], { ...tol, msg: "vjp value" });
  assertClose(await ct.data(), xs.map((xi) => 2 * df(xi)), { ...tol, msg: "vjp" });
  assertClose(await hvp(jf, x, v).data(), xs.map((xi, i) => d2f(xi) * vs[i]), {
    ...tol,
    msg: "hvp",
  });
  const H = await hessian(jf)(x).data();
  const want = new Array(49).fill(0);
  xs.forEach((xi, i) => (want[i * 8] = d2f(xi)));
  assertClose(H, want, { ...tol, msg: "hessian" });
  assertClose(await grad(jf)(x).data(), xs.map(df), { ...tol, msg: "grad" });
  equal(jf.traces, 1, "the transforms ran f inline, with no trace of their own");
});

testAll("jit of jit, of hvp, of vmap; vmap of jit", async (b) => {
  const o = { dtype: b.dtype, device: b.dev };
  const tol = { rtol: 10 * b.rtol, atol: 10 * b.rtol };
  const xs = inputs(5, 3), ys = inputs(5, 4);
  const jj = jit(jit(f));
  for (const z of [xs, ys]) assertClose([await jj(tensor(z, o)).item()], [fv(z)], tol);
  equal(jj.traces, 1, "jit(jit(f)): one trace, the inner jit ran inline");
  const jh = jit((x: Tensor, v: Tensor) => hvp(f, x, v));
  for (const [z, w] of [[xs, ys], [ys, xs]]) {
    assertClose(await jh(tensor(z, o), tensor(w, o)).data(), z.map((zi, i) => d2f(zi) * w[i]), tol);
  }
  equal(jh.traces, 1, "jit(hvp): one trace");
  const rows = (a: number[], c: number[]) => tensor([...a, ...c], { ...o, shape: [2, 5] });
  const jv = jit(vmap(f));
  for (const [z, w] of [[xs, ys], [ys, xs]]) {
    assertClose(await jv(rows(z, w)).data(), [fv(z), fv(w)], { ...tol, msg: "jit(vmap(f))" });
  }
  equal(jv.traces, 1, "jit(vmap(f)): one trace");
  const vj = vmap(jit(f));
  assertClose(await vj(rows(xs, ys)).data(), [fv(xs), fv(ys)], { ...tol, msg: "vmap(jit(f))" });
  const jvg = jit(vmap(grad(f)));
  assertClose(await jvg(rows(xs, ys)).data(), [...xs.map(df), ...ys.map(df)], tol);
});

testAll(
  "jit of a whole Newton step (bandedHessian, solveBanded) equals the plain step",
  async (b) => {
    const o = { dtype: b.dtype, device: b.dev };
    const n = 3000;
    // Σ (x[i+1] − x[i])² + Σ x⁴/12 + Σ (x − 1)²: tridiagonal, convex
    const g = (x: Tensor) =>
      sum(square(slice(x, [1], [n]).sub(slice(x, [0], [n - 1])))).add(sum(x.pow(4).div(12)))
        .add(sum(square(x.sub(1))));
    const step = (x: Tensor) => {
      const H = bandedHessian(g, x, { bandwidth: 1 });
      return x.sub(solveBanded(H, grad(g)(x)));
    };
    let runs = 0;
    const jstep = jit((x: Tensor) => (runs++, step(x)));
    const start = Array.from({ length: n }, (_, i) => Math.fround(Math.cos(i)));
    let x = tensor(start, o), y = tensor(start, o);
    const base = memory();
    for (let k = 0; k < 6; k++) {
      const nx = jstep(x), ny = tidy(() => step(y));
      x.dispose();
      y.dispose();
      [x, y] = [nx, ny];
    }
    ok(sameMemory(base, memory()), "memory back to its baseline after six jitted steps");
    equal(jstep.traces, 1);
    equal(runs, 1, "the step ran once, while traced");
    const xs = await x.data();
    assertClose(xs, await y.data(), { rtol: b.rtol, atol: b.rtol, msg: "jitted against plain" });
    // the minimiser: the gradient, written out in JavaScript, vanishes there
    const grad0 = Array.from(
      xs,
      (v, i) =>
        (i > 0 ? 2 * (v - xs[i - 1]) : 0) - (i + 1 < n ? 2 * (xs[i + 1] - v) : 0) + v ** 3 / 3 +
        2 * (v - 1),
    );
    assertClose(grad0, new Array(n).fill(0), { atol: b.dtype === "f64" ? 1e-12 : 1e-5, rtol: 0 });
    x.dispose();
    y.dispose();
  },
);

testAll("jit: trees of tensors in and out (arrays, nested objects)", async (b) => {
  const o = { dtype: b.dtype, device: b.dev };
  let runs = 0;
  const g = jit((p: { w: Tensor; b: [Tensor, { c: Tensor }] }, scale: Tensor[]) => {
    runs++;
    const y = p.w.mul(p.b[0]).add(p.b[1].c).mul(scale[0]);
    return { y, parts: [y.sum(), p.w.neg()], note: "kept" };
  });
  const base = memory();
  for (let s = 1; s <= 3; s++) {
    const w = inputs(4, s), b0 = inputs(4, s + 10), c = inputs(4, s + 20);
    const args = [tensor(w, o), tensor(b0, o), tensor(c, o), tensor([s], o)];
    const r = g({ w: args[0], b: [args[1], { c: args[2] }] }, [args[3]]);
    const y = w.map((wi, i) => (wi * b0[i] + c[i]) * s);
    // (w·b + c cancels to near 0 at some entries: an absolute floor of f32's rounding)
    assertClose(await r.y.data(), y, { rtol: b.rtol, atol: 10 * b.rtol, msg: `y, call ${s}` });
    assertClose([await r.parts[0].item()], [y.reduce((a, v) => a + v, 0)], {
      rtol: 10 * b.rtol,
      atol: 10 * b.rtol,
    });
    assertClose(await r.parts[1].data(), w.map((v) => -v), { rtol: 0 });
    equal(r.note, "kept", "a non-tensor leaf of the result comes back as it was");
    for (const t of [r.y, ...r.parts, ...args]) t.dispose();
  }
  equal(g.traces, 1, "one tree structure, one trace");
  equal(runs, 1);
  ok(sameMemory(base, memory()), "memory back to its baseline");
  // another structure (another key in the object) is another signature
  const t = tensor([1, 2, 3, 4], o);
  const r2 = g({ w: t, b: [t.mul(2), { c: t.mul(0) }], extra: t } as never, [tensor([1], o)]);
  assertClose(await r2.y.data(), [2, 8, 18, 32], { rtol: b.rtol });
  equal(g.traces, 2, "a new tree structure is traced");
});

testAll("jit: closed-over tensors are baked in at the trace, as the doc states", async (b) => {
  const o = { dtype: b.dtype, device: b.dev };
  let w = tensor([1, 2, 3], o);
  const g = jit((x: Tensor) => x.mul(w).sum());
  const x = tensor([1, 1, 1], o);
  equal(await g(x).item(), 6);
  const old = w;
  w = tensor([10, 20, 30], o);
  old.dispose(); // the program keeps the value it closed over alive
  equal(await g(x).item(), 6, "a replay uses the value w had when traced");
  equal(await g(tensor([0, 0, 2], o)).item(), 6, "new argument, the traced w: 2 · 3");
  g.clear();
  equal(await g(x).item(), 60, "a new trace sees the new w");
  // a number f closes over is baked in the same way
  let k = 2;
  const h = jit((x: Tensor) => x.mul(k));
  assertClose(await h(x).data(), [2, 2, 2], { rtol: 0 });
  k = 5;
  assertClose(await h(x).data(), [2, 2, 2], { rtol: 0, msg: "the number as traced" });
  x.dispose();
  w.dispose();
});

Deno.test("jit's doc states the replay semantics this file tests", async () => {
  const src = await Deno.readTextFile(new URL("../src/ad/jit.ts", import.meta.url));
  ok(/side effects in `f`[^]*?happen during a trace\s*\*?\s*only, not on replays/.test(src));
  ok(
    /tensors `f` closes over are constants of the trace: a replay uses the values they had/.test(
      src,
    ),
  );
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  ok(/side effects in `f`[^]*?happen while tracing, not on replays/.test(readme));
  ok(/tensors `f` closes over are \*\*constants of the trace\*\*/.test(readme));
});

testAll("jit: console output inside f happens once per trace, not on replays", async (b) => {
  const o = { dtype: b.dtype, device: b.dev };
  const logged: unknown[][] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void logged.push(a);
  try {
    const g = jit((x: Tensor) => {
      console.log("tracing", x.shape);
      return x.square().sum();
    });
    for (const n of [3, 3, 4, 3, 4, 4]) {
      const y = g(tensor(inputs(n, n), o));
      await y.item();
    }
    equal(g.traces, 2);
  } finally {
    console.log = log;
  }
  equal(logged.length, 2, "two shapes, two traces, two lines");
  equal(logged[0][0], "tracing");
});

Deno.test({
  name:
    "jit on WebGPU: a replay makes no pipeline, dispatches as the plain call does, one submit a call",
  ignore: !gpuDev,
  fn: async () => {
    const g = gpuDev!;
    const xs = inputs(70_001, 5);
    const jg = jit(grad(f));
    const pipelines = () => memory().caches["webgpu pipelines"].entries;
    // the dispatches the same gradient takes uncompiled (one fused kernel)
    const x0 = tensor(xs, { device: g });
    await x0.ready();
    const s0 = g.stats;
    const eager = grad(f)(x0);
    await eager.data();
    const plain = g.stats.dispatches - s0.dispatches;
    const first = jg(x0);
    await first.data();
    const p0 = pipelines();
    for (let call = 0; call < 3; call++) {
      const x = tensor(xs.map((v) => v + call), { device: g });
      await x.ready();
      const s1 = g.stats;
      const y = jg(x);
      equal(g.stats.submits, s1.submits, "the replay only queues its dispatches");
      equal(g.stats.dispatches - s1.dispatches, plain, "the uncompiled call's dispatches");
      const got = await y.data();
      equal(g.stats.submits - s1.submits, 1, "one submit for the call (at its read)");
      assertClose(got, xs.map((v) => df(v + call)), { rtol: 1e-4, atol: 1e-4 });
      x.dispose();
      y.dispose();
    }
    equal(pipelines(), p0, "no pipeline made by a replay");
    equal(jg.traces, 1);
    for (const t of [x0, eager, first]) t.dispose();
  },
});

Deno.test("jit: errors name jit and say what was expected", () => {
  const x = tensor([1, 2]);
  const g = jit((x: Tensor) => x.sum());
  throws(() => g("abc" as never), /^TypeError: jit: argument 0 is string abc.*static/s);
  throws(() => g(null as never), /jit: argument 0 is null/);
  throws(() => g([x, 3] as never), /jit: argument 0\[1\] is number 3/);
  throws(() => g({ a: x, b: "s" } as never), /jit: argument 0\.b is string s/);
  throws(() => jit(3 as never), /jit: expected a function, got number 3/);
  const gone = tensor([1, 2]);
  gone.dispose();
  throws(() => g(gone), /^Error: jit: a tensor of shape \[2\] \(f32\) was used after dispose\(\)/);
  throws(() => jit((x: Tensor) => x, 5 as never), /jit: options must be an object/);
  throws(() => jit((x: Tensor) => x, { statics: [0] } as never), /jit.*"statics".*"static"/);
  throws(() => jit((x: Tensor) => x, { static_argnums: [0] } as never), /jit.*"static"/);
  throws(() => jit((x: Tensor) => x, { static: 0 } as never), /jit: static must be an array/);
  throws(() => jit((x: Tensor) => x, { static: [-1] }), /jit: static positions must be/);
  throws(() => jit((x: Tensor) => x, { static: [0.5] }), /jit: static positions must be/);
  // a position past the function's parameters, at jit (the arity is known) ...
  throws(
    () => jit((x: Tensor, k: number) => x.mul(k), { static: [2] }),
    /^RangeError: jit: static argument position 2 is out of range: the function takes 2/,
  );
  // ... or at the call, where the function may take more (defaults, rest parameters)
  const h = jit((x: Tensor, k: number = 2) => x.mul(k), { static: [1] });
  throws(() => h(x), /jit: static argument position 1 is out of range: .*called with 1/);
  const r = jit((...a: Tensor[]) => a[0], { static: [3] });
  throws(() => r(x), /jit: static argument position 3 is out of range/);
  throws(() => jit((x: Tensor) => x, { cacheSize: 0 }), /jit: cacheSize must be a positive/);
  throws(() => jit((x: Tensor) => x, { cacheSize: "3" } as never), /jit: cacheSize .* string 3/);
  x.dispose();
});
