/**
 * Oracle tests for the derivative rules of every primitive in the registry, in f64 on the
 * CPU (JAX's `check_grads` recipe):
 *   1. JVP against central finite differences of the function;
 *   2. VJP against JVP through ⟨J u, v⟩ = ⟨u, Jᵀ v⟩;
 *   3. HVP (forward-over-reverse) against finite differences of the gradient;
 *   4. batched-probe JVP / HVP (tangents [K, ...shape]) against K separate passes;
 *   5. second order three more ways: reverse-over-reverse (grad of ⟨∇f, v⟩), explicit
 *      jvp-of-grad and reverse-over-forward (grad of the JVP), all equal to Hv;
 *   7. memory() back at its baseline after every transform once its results are disposed.
 * Then (6) WebGPU f32 (and CPU f32) against CPU f64 for grad and HVP of composite
 * functions, the perturbation-confusion test, and 4th derivatives by nesting.
 * Inputs stay away from kinks and ties (|x| bounded below for abs, distinct entries for
 * max/min, a gap between the operands of maximum/minimum and the comparisons).
 */
import assert from "node:assert/strict";
import {
  abs,
  concat,
  grad,
  hvp,
  jvp,
  logdet,
  max,
  maximum,
  memory,
  min,
  minimum,
  reshape,
  type Tensor,
  tensor,
  tidy,
  vjp,
} from "../mod.ts";
import { PRIMITIVES } from "../src/primitives/registry.ts";
import type { Primitive } from "../src/primitives/types.ts";
import { assertNoLeak, type Backend, cpu, randArray, testAll } from "./helpers.ts";
import { type Arg, type Case, CASES, COMPOSITES, sizeOf, U, wellCond } from "./primitive_cases.ts";

// ---------- helpers ----------

const f64 = (a: Arg | { shape: number[]; values: Float64Array }): Tensor =>
  tensor(a.values, { shape: a.shape, dtype: "f64", device: cpu });

async function take(t: Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.data());
  t.dispose();
  return d;
}

/** max |a − e| ≤ tol · max |e| (exact equality when e is all zeros). */
function near(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let err = 0, scale = 0, worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= err)) [err, worst] = [d, i];
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  assert.ok(
    err <= tol * scale,
    `${what}: entry ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
      `(max error ${err.toExponential(3)} > ${tol} × ${scale.toExponential(3)})`,
  );
}

const dotArr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

const axpy = (x: Float64Array, h: number, u: Float64Array) => x.map((v, i) => v + h * u[i]);

/** A random direction; on a grid of 1/16 when it must be exact in f32. */
function direction(n: number, seed: number, grid: boolean): Float64Array {
  const r = randArray(n, seed);
  return grid ? r.map((v) => Math.round(v * 16) / 16 || 0.5) : r;
}

/**
 * Runs `f` eagerly with the registry instrumented and returns which of `prims` it reached.
 * Counting `abstract` catches every bind, views (reshape) included.
 */
function primitivesReached(c: Case, prims: readonly Primitive[]): Set<Primitive> {
  const reached = new Set<Primitive>();
  const defs = PRIMITIVES as unknown as Record<string, { abstract: (...a: unknown[]) => unknown }>;
  const saved = prims.map((p) => defs[p].abstract);
  prims.forEach((p, i) => {
    defs[p].abstract = (...a: unknown[]) => {
      reached.add(p);
      return saved[i](...a);
    };
  });
  try {
    tidy(() => {
      c.f(...c.args.map(f64)); // everything, the result included, is freed by tidy
    });
  } finally {
    prims.forEach((p, i) => (defs[p].abstract = saved[i]));
  }
  return reached;
}

const K = 3;

for (const c of CASES) {
  Deno.test(`oracle: ${c.name}`, async () => {
    const h = c.h ?? 1e-6;
    const grid = c.dyadicDirections ?? false;
    const base = memory();
    const reached = primitivesReached(c, c.prims);
    for (const p of c.prims) assert.ok(reached.has(p), `the case never binds ${p}`);
    assertNoLeak(base, "eager run");

    const di = c.args.flatMap((a, i) => (a.diff === false ? [] : [i]));
    const xs = c.args.map(f64);
    /** f of the differentiable arguments only, the constants closed over. */
    const fd = (...ds: Tensor[]) =>
      c.f(...c.args.map((_, i) => (di.includes(i) ? ds[di.indexOf(i)] : xs[i])));
    const primals = di.map((i) => xs[i]);
    const evalAt = async (vals: Float64Array[]) => {
      const ts = vals.map((v, k) => f64({ shape: c.args[di[k]].shape, values: v }));
      const y = await take(tidy(() => fd(...ts)));
      ts.forEach((t) => t.dispose());
      return y;
    };

    // 1. JVP vs central differences
    const us = di.map((i, k) => direction(sizeOf(c.args[i].shape), 1000 + k, grid));
    const uT = di.map((i, k) => f64({ shape: c.args[i].shape, values: us[k] }));
    const held = memory();
    const check = (what: string) => assertNoLeak(held, `${c.name}: memory after ${what}`);
    const [y0, jt] = jvp(fd, primals, uT);
    const outShape = [...y0.shape];
    await take(y0);
    const ju = await take(jt);
    check("jvp");
    const plus = await evalAt(di.map((i, k) => axpy(c.args[i].values, h, us[k])));
    const minus = await evalAt(di.map((i, k) => axpy(c.args[i].values, -h, us[k])));
    const fdJu = plus.map((v, i) => (v - minus[i]) / (2 * h));
    near(ju, fdJu, 1e-6, "JVP vs finite differences");

    // 2. VJP vs JVP: ⟨J u, v⟩ = ⟨u, Jᵀ v⟩
    const v = direction(sizeOf(outShape), 2000, grid);
    const vT = f64({ shape: outShape, values: v });
    const [y1, back] = vjp(fd, ...primals);
    const cts = back(vT);
    assert.equal(cts.length, di.length);
    let rhs = 0, scale = 0;
    for (const [k, ct] of cts.entries()) {
      assert.deepEqual(ct.shape, c.args[di[k]].shape, "cotangent shape");
      const d = await take(ct);
      rhs += dotArr(d, us[k]);
      for (let i = 0; i < d.length; i++) scale += Math.abs(d[i] * us[k][i]);
    }
    back.dispose();
    y1.dispose();
    vT.dispose();
    check("vjp");
    const lhs = dotArr(ju, v);
    for (let i = 0; i < v.length; i++) scale += Math.abs(ju[i] * v[i]);
    assert.ok(
      Math.abs(lhs - rhs) <= 1e-12 * scale,
      `⟨Ju, v⟩ = ${lhs} but ⟨u, Jᵀv⟩ = ${rhs}`,
    );

    // 4a. batched-probe JVP: K tangents in one pass equal K passes
    const ub = di.map((i, k) => {
      const n = sizeOf(c.args[i].shape);
      const vals = new Float64Array(K * n);
      for (let p = 0; p < K; p++) vals.set(direction(n, 3000 + 10 * k + p, grid), p * n);
      return vals;
    });
    const ubT = di.map((i, k) => f64({ shape: [K, ...c.args[i].shape], values: ub[k] }));
    const [yb, tb] = jvp(fd, primals, ubT);
    assert.deepEqual(tb.shape, [K, ...outShape], "batched tangent shape");
    yb.dispose();
    const batched = await take(tb);
    const single: number[] = [];
    for (let p = 0; p < K; p++) {
      const ts = di.map((i, k) => {
        const n = sizeOf(c.args[i].shape);
        return f64({ shape: c.args[i].shape, values: ub[k].slice(p * n, (p + 1) * n) });
      });
      const [ys, t] = jvp(fd, primals, ts);
      ys.dispose();
      single.push(...await take(t));
      ts.forEach((t) => t.dispose());
    }
    ubT.forEach((t) => t.dispose());
    check("batched jvp");
    near(batched, single, 1e-12, "batched JVP vs separate JVPs");

    // 3, 4b, 5. second order, per differentiable argument, through s = Σ w ⊙ sin(f)
    // (sin makes s nonlinear, so both f's Jacobian and its second derivative enter H)
    const w = f64({ shape: outShape, values: randArray(sizeOf(outShape), 4000, 0.5, 1.5) });
    const wHeld = memory();
    for (const [k, ai] of di.entries()) {
      const shape = c.args[ai].shape, n = sizeOf(shape);
      const s = (x: Tensor) => {
        const args = primals.map((p, j) => (j === k ? x : p));
        return fd(...args).sin().mul(w).sum();
      };
      const x = primals[k];
      const vv = direction(n, 5000 + k, grid);
      const vvT = f64({ shape, values: vv });
      const argHeld = memory();
      const checkArg = (what: string) =>
        assertNoLeak(argHeld, `${c.name}: memory after ${what} (argument ${ai})`);
      const hv = await take(hvp(s, x, vvT));
      checkArg("hvp");

      // 3. HVP vs central differences of the gradient
      const hh = c.hvpH ?? h;
      const gAt = async (vals: Float64Array) => {
        const t = f64({ shape, values: vals });
        const g = await take(grad(s)(t));
        t.dispose();
        checkArg("grad");
        return g;
      };
      const gp = await gAt(axpy(c.args[ai].values, hh, vv));
      const gm = await gAt(axpy(c.args[ai].values, -hh, vv));
      const fdHv = gp.map((val, i) => (val - gm[i]) / (2 * hh));
      near(
        hv,
        fdHv,
        c.hvpTol ?? 1e-6,
        `HVP (argument ${ai}) vs finite differences of the gradient`,
      );

      // 5. the same product by reverse-over-reverse, explicit jvp-of-grad, reverse-over-forward
      const rr = await take(grad((y: Tensor) => grad(s)(y).mul(vvT).sum())(x));
      checkArg("grad of grad");
      near(rr, hv, 1e-10, `grad of ⟨grad, v⟩ (argument ${ai}) vs HVP`);
      const [g0, fr] = jvp((y: Tensor) => grad(s)(y), [x], [vvT]);
      g0.dispose();
      near(await take(fr), hv, 1e-12, `jvp of grad (argument ${ai}) vs HVP`);
      checkArg("jvp of grad");
      const rf = await take(grad((y: Tensor) => jvp(s, [y], [vvT])[1])(x));
      checkArg("grad of jvp");
      near(rf, hv, 1e-10, `grad of jvp (argument ${ai}) vs HVP`);

      // 4b. batched-probe HVP vs K separate HVPs
      const vb = new Float64Array(K * n);
      for (let p = 0; p < K; p++) vb.set(direction(n, 6000 + 10 * k + p, grid), p * n);
      const vbT = f64({ shape: [K, ...shape], values: vb });
      const hb = hvp(s, x, vbT);
      assert.deepEqual(hb.shape, [K, ...shape], "batched HVP shape");
      const hbd = await take(hb);
      const hs: number[] = [];
      for (let p = 0; p < K; p++) {
        const t = f64({ shape, values: vb.slice(p * n, (p + 1) * n) });
        hs.push(...await take(hvp(s, x, t)));
        t.dispose();
      }
      near(hbd, hs, 1e-12, `batched HVP (argument ${ai}) vs separate HVPs`);
      vbT.dispose();
      vvT.dispose();
      assertNoLeak(wHeld, `${c.name}: memory after the second-order checks of argument ${ai}`);
    }

    // 3b. with several differentiable arguments, the joint HVP (mixed partials included):
    // jvp of the concatenated gradients against central differences of them
    if (di.length > 1) {
      const all = di.map((_, k) => k);
      const sAll = (...ds: Tensor[]) => fd(...ds).sin().mul(w).sum();
      const gradFlat = (...ds: Tensor[]) =>
        concat(grad(sAll, { argnums: all })(...ds).map((g) => reshape(g, [-1])), 0);
      const vs = di.map((i, k) => direction(sizeOf(c.args[i].shape), 7000 + k, grid));
      const vsT = di.map((i, k) => f64({ shape: c.args[i].shape, values: vs[k] }));
      const jointHeld = memory();
      const [g0, hvT] = jvp(gradFlat, primals, vsT);
      g0.dispose();
      const hv = await take(hvT);
      assertNoLeak(jointHeld, `${c.name}: memory after the joint HVP`);
      const hh = c.hvpH ?? h;
      const gAt = async (sign: number) => {
        const ts = di.map((i, k) =>
          f64({ shape: c.args[i].shape, values: axpy(c.args[i].values, sign * hh, vs[k]) })
        );
        const g = await take(tidy(() => gradFlat(...ts)));
        ts.forEach((t) => t.dispose());
        return g;
      };
      const gp = await gAt(1), gm = await gAt(-1);
      const fdHv = gp.map((val, i) => (val - gm[i]) / (2 * hh));
      near(hv, fdHv, c.hvpTol ?? 1e-6, "joint HVP over all arguments vs finite differences");
      vsT.forEach((t) => t.dispose());
      assertNoLeak(wHeld, `${c.name}: memory after the joint HVP checks`);
    }
    w.dispose();
    check("all transforms");
    uT.forEach((t) => t.dispose());
    xs.forEach((x) => x.dispose());
    assertNoLeak(base, `${c.name}: memory at the end`);
  });
}

Deno.test("oracle: every primitive in the registry has a case", () => {
  const covered = new Set(CASES.flatMap((c) => c.prims));
  const missing = Object.keys(PRIMITIVES).filter((p) => !covered.has(p as Primitive));
  assert.deepEqual(missing, [], `primitives without an oracle case: ${missing.join(", ")}`);
});

Deno.test("at ties and kinks: the documented subgradients, with forward and reverse agreeing", async () => {
  // Not differentiable there, so no finite-difference oracle: the convention (as in JAX) is
  // that tied operands of maximum / minimum and tied extremes of max / min share the
  // derivative equally, and abs′(0) = sign(0) = 0.
  const base = memory();
  const x = f64({ shape: [4], values: Float64Array.from([0.5, -1, 0.5, 0]) });
  const c = f64({ shape: [4], values: Float64Array.from([0.5, 2, -3, 0]) });
  const u = f64({ shape: [4], values: Float64Array.from([1, 2, 3, 4]) });
  const cases: [string, (y: Tensor) => Tensor, number[]][] = [
    // entries 0 and 3 tie with c: half each; entry 1 loses (0), entry 2 wins (1)
    ["maximum", (y) => maximum(y, c), [0.5, 0, 1, 0.5]],
    ["minimum", (y) => minimum(c, y), [0.5, 1, 0, 0.5]],
    ["max", (y) => max(y), [0.5, 0, 0.5, 0]], // x₀ = x₂ = 0.5 tie for the maximum
    ["min", (y) => min(y.neg()), [-0.5, 0, -0.5, 0]], // −x₀ = −x₂ = −0.5 tie for the minimum
    ["abs", (y) => abs(y), [1, -1, 1, 0]],
  ];
  for (const [name, f, want] of cases) {
    const held = memory();
    const fs = (y: Tensor) => f(y).sum();
    const g = await take(grad(fs)(x));
    const [y0, t] = jvp(fs, [x], [u]);
    y0.dispose();
    const jt = await take(t);
    near(g, want, 0, `${name}: gradient`);
    near([jt[0]], [dotArr(want, [1, 2, 3, 4])], 0, `${name}: JVP = ⟨∇, u⟩`);
    assertNoLeak(held, `${name}: memory`);
  }
  [x, c, u].forEach((t) => t.dispose());
  assertNoLeak(base);
});

// ---------- 6. f32 (WebGPU and CPU) against CPU f64 on composite functions ----------

for (const c of COMPOSITES) {
  testAll(`f32 vs CPU f64: grad and batched HVP of ${c.name}`, async (b: Backend) => {
    const run = async (dtype: "f32" | "f64", dev: Backend["dev"]) => {
      const mk = (a: Arg) => tensor(a.values, { shape: a.shape, dtype, device: dev });
      const x = mk(c.x), cs = c.consts.map(mk);
      const s = (y: Tensor) => c.f(y, ...cs);
      const n = sizeOf(c.x.shape);
      const v = tensor(randArray(2 * n, 308), { shape: [2, ...c.x.shape], dtype, device: dev });
      const before = memory();
      const g = await take(grad(s)(x));
      const hv = await take(hvp(s, x, v));
      assertNoLeak(before, `${c.name} on ${dev.kind} ${dtype}`);
      [x, v, ...cs].forEach((t) => t.dispose());
      return { g, hv };
    };
    const ref = await run("f64", cpu);
    const got = await run("f32", b.dev);
    near(got.g, ref.g, 1e-4, `gradient on ${b.name}`);
    near(got.hv, ref.hv, 1e-4, `HVP on ${b.name}`);
  }, ["cpu-f32", "webgpu-f32"]);
}

// ---------- nesting ----------

const scalar64 = (v: number) => tensor(v, { dtype: "f64", device: cpu });

Deno.test("perturbation confusion: d/dx [x · d/dy (x + y)] at y = 1 is 1, not 2", async () => {
  const base = memory();
  const x = scalar64(2.5), one = scalar64(1);
  // reverse over reverse
  const inner = (xv: Tensor) => grad((y: Tensor) => xv.add(y))(one);
  const r = grad((xv: Tensor) => xv.mul(inner(xv)))(x);
  assert.equal(await r.item(), 1);
  // forward over forward
  const innerF = (xv: Tensor) => jvp((y: Tensor) => xv.add(y), [one], [one])[1];
  const [yf, tf] = jvp((xv: Tensor) => xv.mul(innerF(xv)), [x], [one]);
  assert.equal(await tf.item(), 1);
  // forward over reverse and reverse over forward
  const [ym, tm] = jvp((xv: Tensor) => xv.mul(inner(xv)), [x], [one]);
  assert.equal(await tm.item(), 1);
  const rm = grad((xv: Tensor) => xv.mul(innerF(xv)))(x);
  assert.equal(await rm.item(), 1);
  [x, one, r, yf, tf, ym, tm, rm].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("perturbation confusion: d/dx [x · d/dy (x · y)] at y = 1 is 2x", async () => {
  // Each level must see only its own perturbation: inner derivative x, then d(x²)/dx = 2x.
  const base = memory();
  const x = scalar64(1.75), one = scalar64(1);
  const r = grad((xv: Tensor) => xv.mul(grad((y: Tensor) => xv.mul(y))(one)))(x);
  assert.equal(await r.item(), 3.5);
  [x, one, r].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("4th derivative by nesting grad four times: d⁴(eˣ sin x) = −4 eˣ sin x", async () => {
  // (eˣ sin x)'' = 2eˣ cos x, so (eˣ sin x)'''' = 2(eˣ cos x)'' = −4 eˣ sin x
  const base = memory();
  const x = scalar64(0.7);
  const f = (y: Tensor) => y.exp().mul(y.sin());
  const d4 = grad(grad(grad(grad(f))))(x);
  near([await d4.item()], [-4 * Math.exp(0.7) * Math.sin(0.7)], 1e-12, "grad⁴");
  // and mixing modes: forward(reverse(forward(reverse f)))
  const one = scalar64(1);
  const fwd = (g: (y: Tensor) => Tensor) => (y: Tensor) => jvp(g, [y], [one])[1];
  const d4m = tidy(() => fwd(grad(fwd(grad(f))))(x));
  near([await d4m.item()], [-4 * Math.exp(0.7) * Math.sin(0.7)], 1e-12, "jvp∘grad∘jvp∘grad");
  [x, one, d4, d4m].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("4th derivative through a matrix primitive: d⁴/dt⁴ log det(A + tB) = −6 tr((A+tB)⁻¹B)⁴", async () => {
  // g(t) = log det M, M = A + tB, C = M⁻¹B: g' = tr C, g'' = −tr C², g''' = 2 tr C³, g'''' = −6 tr C⁴
  const A = wellCond([], 3, 400), B = U([3, 3], 401, -0.5, 0.5);
  const t0 = 0.25;
  const m = A.values.map((v, i) => v + t0 * B.values[i]);
  const C = matmul3(inv3(m), B.values);
  const C2 = matmul3(C, C);
  const want = -6 * (matmul3(C2, C2)[0] + matmul3(C2, C2)[4] + matmul3(C2, C2)[8]);
  const base = memory();
  const At = f64(A), Bt = f64(B), t = scalar64(t0);
  const g = (s: Tensor) => logdet(At.add(Bt.mul(s)));
  const d4 = grad(grad(grad(grad(g))))(t);
  near([await d4.item()], [want], 1e-10, "d⁴ log det");
  [At, Bt, t, d4].forEach((x) => x.dispose());
  assertNoLeak(base);
});

/** 3 × 3 helpers (row-major) for the reference above. */
function matmul3(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const o = new Float64Array(9);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      for (let k = 0; k < 3; k++) o[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
    }
  }
  return o;
}

function inv3(a: ArrayLike<number>): Float64Array {
  // adjugate / determinant
  const [p, q, r, s, t, u, v, w, x] = Array.from(a);
  const d = p * (t * x - u * w) - q * (s * x - u * v) + r * (s * w - t * v);
  return Float64Array.from([
    t * x - u * w,
    r * w - q * x,
    q * u - r * t,
    u * v - s * x,
    p * x - r * v,
    r * s - p * u,
    s * w - t * v,
    q * v - p * w,
    p * t - q * s,
  ].map((e) => e / d));
}
