/**
 * vmap against a loop of single calls: every primitive (the shared oracle cases, each
 * batched three ways: every argument at axis 0, only the first mapped, and at the last axis
 * with the output's batch axis last), then compositions with every transform, axis
 * handling, errors and memory. References are host-stacked results of unbatched calls.
 */
import assert from "node:assert/strict";
import {
  grad,
  hessian,
  hvp,
  jit,
  jvp,
  logsumexp,
  memory,
  stopGradient,
  type Tensor,
  tensor,
  tidy,
  valueAndGrad,
  vjp,
  vmap,
} from "../mod.ts";
import { PRIMITIVES } from "../src/primitives/registry.ts";
import type { Primitive } from "../src/primitives/types.ts";
import { assertNoLeak, type Backend, cpu, randArray, testAll } from "./helpers.ts";
import { type Arg, CASES, sizeOf } from "./primitive_cases.ts";

const B = 3;

/** Host arrays `vals[b]` (each of `shape`) stacked along a new axis `ax`. */
function stackAt(vals: ArrayLike<number>[], shape: readonly number[], ax: number): Float64Array {
  const outer = sizeOf(shape.slice(0, ax)), inner = sizeOf(shape.slice(ax));
  const out = new Float64Array(vals.length * outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let b = 0; b < vals.length; b++) {
      for (let i = 0; i < inner; i++) {
        out[(o * vals.length + b) * inner + i] = vals[b][o * inner + i];
      }
    }
  }
  return out;
}

const withAxis = (shape: readonly number[], ax: number) => {
  const s = [...shape];
  s.splice(ax, 0, B);
  return s;
};

/** Example b of an argument: its values scaled by 1 + b/4 (signs and positivity kept). */
const variant = (a: Arg, b: number) => a.values.map((v) => v * (1 + b / 4));

const f64 = (values: Float64Array, shape: readonly number[]) =>
  tensor(values, { shape, dtype: "f64", device: cpu });

async function take(t: Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.data());
  t.dispose();
  return d;
}

function near(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i], d = Math.abs(actual[i] - e);
    assert.ok(
      d <= tol * Math.max(1, Math.abs(e)),
      `${what}: entry ${i} is ${actual[i]}, expected ${e}`,
    );
  }
}

/** Runs f with every batch rule instrumented; returns the primitives whose rule ran. */
function batchRulesReached<T>(fn: () => T): [T, Set<Primitive>] {
  const reached = new Set<Primitive>();
  const defs = PRIMITIVES as unknown as Record<string, { batch: (...a: unknown[]) => unknown }>;
  const names = Object.keys(defs);
  const saved = names.map((p) => defs[p].batch);
  names.forEach((p, i) => {
    defs[p].batch = (...a: unknown[]) => {
      reached.add(p as Primitive);
      return saved[i](...a);
    };
  });
  try {
    return [fn(), reached];
  } finally {
    names.forEach((p, i) => (defs[p].batch = saved[i]));
  }
}

type Mode = { name: string; mapped: (i: number) => boolean; inAx: number; outAx: number };
const MODES: Mode[] = [
  { name: "all arguments at axis 0", mapped: () => true, inAx: 0, outAx: 0 },
  { name: "first argument only", mapped: (i) => i === 0, inAx: 0, outAx: 0 },
  { name: "at the last axis, out axis last", mapped: () => true, inAx: -1, outAx: -1 },
];

for (const c of CASES) {
  Deno.test(`vmap vs loop: ${c.name}`, async () => {
    const base = memory();
    for (const mode of MODES) {
      if (mode.name === "first argument only" && c.args.length === 1) continue;
      // the loop of single calls
      const singles: Float64Array[] = [];
      let outShape: number[] = [];
      for (let b = 0; b < B; b++) {
        const xs = c.args.map((a, i) => f64(mode.mapped(i) ? variant(a, b) : a.values, a.shape));
        const y = tidy(() => c.f(...xs));
        outShape = [...y.shape];
        singles.push(await take(y));
        xs.forEach((x) => x.dispose());
      }
      // one batched call
      const inAxes = c.args.map((a, i) => {
        if (!mode.mapped(i)) return null;
        return mode.inAx < 0 ? a.shape.length + 1 + mode.inAx : mode.inAx;
      });
      const xs = c.args.map((a, i) => {
        const ax = inAxes[i];
        if (ax === null) return f64(a.values, a.shape);
        const vals = Array.from({ length: B }, (_, b) => variant(a, b));
        return f64(stackAt(vals, a.shape, ax), withAxis(a.shape, ax));
      });
      const held = memory();
      const [y, reached] = batchRulesReached(() =>
        vmap(c.f, inAxes.map((a) => (a === null ? null : mode.inAx)), mode.outAx)(...xs)
      );
      for (const p of c.prims) {
        assert.ok(reached.has(p), `${mode.name}: ${p}'s batch rule never ran`);
      }
      const outAx = mode.outAx < 0 ? outShape.length + 1 + mode.outAx : mode.outAx;
      assert.deepEqual(y.shape, withAxis(outShape, outAx), `${mode.name}: output shape`);
      near(await take(y), stackAt(singles, outShape, outAx), 1e-13, `${c.name}, ${mode.name}`);
      assertNoLeak(held, `${c.name}, ${mode.name}: memory after vmap`);
      xs.forEach((x) => x.dispose());
    }
    assertNoLeak(base, `${c.name}: memory`);
  });
}

Deno.test("vmap: every primitive in the registry has a batching rule that a case runs", () => {
  const covered = new Set(CASES.flatMap((c) => c.prims));
  const missing = Object.keys(PRIMITIVES).filter((p) => !covered.has(p as Primitive));
  assert.deepEqual(missing, [], `primitives without a vmap case: ${missing.join(", ")}`);
});

// ---------- compositions ----------

/** A small tanh network's squared loss for one example: θ = [W (3×2), b (3), v (3)]. */
function netLoss(theta: Tensor, x: Tensor, y: Tensor): Tensor {
  const W = theta.slice([0], [6]).reshape([3, 2]);
  const b = theta.slice([6], [9]), v = theta.slice([9], [12]);
  return W.matmul(x).add(b).tanh().dot(v).sub(y).square();
}

const theta64 = () => f64(randArray(12, 1, -0.8, 0.8), [12]);
const X64 = () => f64(randArray(4 * 2, 2), [4, 2]);
const Y64 = () => f64(randArray(4, 3), [4]);

/** Rows of a [n, ...] tensor as separate tensors (host copies: independent of slice). */
async function rows(t: Tensor): Promise<Tensor[]> {
  const d = await t.data(), n = t.shape[0], m = t.size / n;
  return Array.from(
    { length: n },
    (_, i) => f64(Float64Array.from(d.slice(i * m, (i + 1) * m)), t.shape.slice(1)),
  );
}

Deno.test("vmap(grad): per-example gradients of a small network equal one grad per example", async () => {
  const base = memory();
  const th = theta64(), X = X64(), Y = Y64();
  const per = await take(vmap(grad(netLoss), [null, 0, 0])(th, X, Y));
  const xr = await rows(X), yr = await rows(Y);
  const want: number[] = [];
  for (let i = 0; i < 4; i++) want.push(...await take(grad(netLoss)(th, xr[i], yr[i])));
  near(per, want, 1e-13, "per-example gradients");
  // argnums as a list: an array of outputs, each batched
  const [gx, gy] = vmap(grad(netLoss, { argnums: [1, 2] }), [null, 0, 0])(th, X, Y);
  assert.deepEqual([gx.shape, gy.shape], [[4, 2], [4]]);
  for (let i = 0; i < 4; i++) {
    const [a, b] = grad(netLoss, { argnums: [1, 2] })(th, xr[i], yr[i]);
    near((await gx.data()).slice(2 * i, 2 * i + 2), await take(a), 1e-13, "∂/∂x");
    near([(await gy.data())[i]], await take(b), 1e-13, "∂/∂y");
  }
  [gx, gy, th, X, Y, ...xr, ...yr].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("grad(vmap): the gradient of a batched loss equals the sum of per-example gradients", async () => {
  const base = memory();
  const th = theta64(), X = X64(), Y = Y64();
  const total = (t: Tensor) => vmap((x: Tensor, y: Tensor) => netLoss(t, x, y))(X, Y).sum();
  const g = await take(grad(total)(th));
  const xr = await rows(X), yr = await rows(Y);
  const want = new Float64Array(12);
  for (let i = 0; i < 4; i++) {
    (await take(grad(netLoss)(th, xr[i], yr[i]))).forEach((v, k) => (want[k] += v));
  }
  near(g, want, 1e-13, "grad of vmap");
  // and second order through it: hvp of the batched loss = Σ per-example HVPs
  const v = f64(randArray(12, 4), [12]);
  const hv = await take(hvp(total, th, v));
  const wantHv = new Float64Array(12);
  for (let i = 0; i < 4; i++) {
    const one = (t: Tensor) => netLoss(t, xr[i], yr[i]);
    (await take(hvp(one, th, v))).forEach((val, k) => (wantHv[k] += val));
  }
  near(hv, wantHv, 1e-12, "hvp of vmap");
  [th, X, Y, v, ...xr, ...yr].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("vmap(hvp), vmap(jvp), jvp(vmap), vmap(vjp) and vmap(hessian) against loops", async () => {
  const base = memory();
  const f = (x: Tensor) => x.sin().mul(x.square()).sum().add(x.sum().pow(3));
  const xs = f64(randArray(5 * 3, 5), [5, 3]), vs = f64(randArray(5 * 3, 6), [5, 3]);
  const xr = await rows(xs), vr = await rows(vs);
  // hvp with both x and v batched, then with v batched only (many directions, one point)
  const hb = await take(vmap((x: Tensor, v: Tensor) => hvp(f, x, v))(xs, vs));
  const hv1 = await take(vmap((v: Tensor) => hvp(f, xr[0], v))(vs));
  const want: number[] = [], want1: number[] = [];
  for (let i = 0; i < 5; i++) {
    want.push(...await take(hvp(f, xr[i], vr[i])));
    want1.push(...await take(hvp(f, xr[0], vr[i])));
  }
  near(hb, want, 1e-12, "vmap(hvp)");
  near(hv1, want1, 1e-12, "vmap(hvp) over directions");
  // jvp inside and outside vmap
  const jin = await take(vmap((x: Tensor, v: Tensor) => jvp(f, [x], [v])[1])(xs, vs));
  const [y0, jout] = jvp((x: Tensor) => vmap(f)(x), [xs], [vs]);
  y0.dispose();
  const wantJ: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [y, t] = jvp(f, [xr[i]], [vr[i]]);
    y.dispose();
    wantJ.push(await (await take(t))[0]);
  }
  near(jin, wantJ, 1e-12, "vmap(jvp)");
  near(await take(jout), wantJ, 1e-12, "jvp(vmap)");
  // vjp inside vmap: the pullback of x ↦ x ⊙ sin x applied to v
  const pb = await take(
    vmap((x: Tensor, v: Tensor) => {
      const [y, back] = vjp((z: Tensor) => z.mul(z.sin()), x);
      const [g] = back(v);
      y.dispose();
      return g;
    })(xs, vs),
  );
  const wantPb: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [y, back] = vjp((z: Tensor) => z.mul(z.sin()), xr[i]);
    wantPb.push(...await take(back(vr[i])[0]));
    back.dispose();
    y.dispose();
  }
  near(pb, wantPb, 1e-13, "vmap(vjp)");
  // dense Hessians per example
  const H = await take(vmap(hessian(f))(xs));
  const wantH: number[] = [];
  for (let i = 0; i < 5; i++) wantH.push(...await take(hessian(f)(xr[i])));
  near(H, wantH, 1e-12, "vmap(hessian)");
  [xs, vs, ...xr, ...vr].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("nested vmap and vmap(vmap(grad)) over two axes", async () => {
  const base = memory();
  const x = f64(randArray(2 * 3 * 4, 7), [2, 3, 4]);
  const f = (v: Tensor) => v.square().sum().sqrt();
  // outer over axis 1 (size 3), inner over the remaining axis 0 (size 2): out [3, 2]
  const y = vmap(vmap(f), 1)(x);
  assert.deepEqual(y.shape, [3, 2]);
  const d = await x.data();
  const want: number[] = [];
  for (let j = 0; j < 3; j++) {
    for (let i = 0; i < 2; i++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += d[(i * 3 + j) * 4 + k] ** 2;
      want.push(Math.sqrt(s));
    }
  }
  near(await take(y), want, 1e-14, "vmap(vmap(f), 1)");
  const g = vmap(vmap(grad(f)))(x); // ∇‖v‖ = v / ‖v‖
  const wantG: number[] = [];
  for (let r = 0; r < 6; r++) {
    let s = 0;
    for (let k = 0; k < 4; k++) s += d[r * 4 + k] ** 2;
    for (let k = 0; k < 4; k++) wantG.push(d[r * 4 + k] / Math.sqrt(s));
  }
  near(await take(g), wantG, 1e-14, "vmap(vmap(grad))");
  x.dispose();
  assertNoLeak(base);
});

Deno.test("vmap: out axes, unbatched outputs, null axes, arrays of tensors, stopGradient", async () => {
  const base = memory();
  const x = f64(Float64Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const c = f64(Float64Array.from([10, 20, 30]), [3]);
  // out axis 1: [3] per example → [3, 2]
  const y = vmap((v: Tensor, w: Tensor) => v.add(w), [0, null], 1)(x, c);
  assert.deepEqual(y.shape, [3, 2]);
  near(await take(y), [11, 14, 22, 25, 33, 36], 0, "out axis 1");
  // an output that does not depend on the mapped argument is broadcast along the batch
  const [a, b] = vmap((v: Tensor) => [v.sum(), c.mul(2)])(x);
  assert.deepEqual([a.shape, b.shape], [[2], [2, 3]]);
  near(await take(a), [6, 15], 0, "mapped output");
  near(await take(b), [20, 40, 60, 20, 40, 60], 0, "unbatched output broadcast");
  // out axis null for it keeps it whole
  const [a2, b2] = vmap((v: Tensor) => [v.sum(), c.mul(2)], 0, [0, null])(x);
  assert.deepEqual(b2.shape, [3]);
  [a2, b2].forEach((t) => t.dispose());
  // an argument that is an array of tensors, mapped leaf by leaf; a number passed through
  const s = vmap((vs: Tensor[], k: number) => vs[0].mul(vs[1]).sum().mul(k), [0, null])(
    [x, x],
    2,
  );
  near(await take(s), [2 * 14, 2 * 77], 0, "array argument");
  // stopGradient keeps the batch and blocks the derivative
  const sg = vmap(grad((v: Tensor) => v.mul(stopGradient(v)).sum()))(x);
  near(await take(sg), [1, 2, 3, 4, 5, 6], 0, "grad of v ⊙ stopGradient(v) = v");
  const lse = vmap((v: Tensor) => logsumexp(v))(x);
  const d = [1, 2, 3, 4, 5, 6];
  near(
    await take(lse),
    [0, 1].map((r) => Math.log(d.slice(3 * r, 3 * r + 3).reduce((s, v) => s + Math.exp(v), 0))),
    1e-14,
    "logsumexp (stopGradient inside) under vmap",
  );
  // valueAndGrad inside vmap returns [value, gradient], both batched
  const [vals, grads] = vmap(valueAndGrad((v: Tensor) => v.square().sum()))(x);
  near(await take(vals), [14, 77], 0, "values");
  near(await take(grads), [2, 4, 6, 8, 10, 12], 0, "gradients");
  [x, c].forEach((t) => t.dispose());
  assertNoLeak(base);
});

Deno.test("vmap errors name the problem", () => {
  const x = f64(new Float64Array(6), [2, 3]), z = f64(new Float64Array(3), [3]);
  const id = (v: Tensor) => v.mul(1);
  assert.throws(
    () => vmap(id, [0, 0])(x),
    /inAxes has 2 entries but the function was called with 1/,
  );
  assert.throws(
    () => vmap((a: Tensor, b: Tensor) => a.add(b))(x, z),
    /mapped axes have different sizes: argument 0 \[2,3\] axis 0, argument 1 \[3\] axis 0/,
  );
  assert.throws(() => vmap(id, 2)(x), /vmap \(argument 0\): axis 2 is out of range/);
  assert.throws(() => vmap(id, null)(x), /no argument is mapped/);
  assert.throws(() => vmap(id, 0, null)(x), /output 0 depends on the mapped arguments/);
  assert.throws(() => vmap((v: Tensor, _k: number) => v, [0, 0])(x, 3), /give it the in axis null/);
  const idx = tensor([[0], [2]], { dtype: "i32", device: cpu });
  assert.throws(
    () => vmap((v: Tensor, i: Tensor) => v.gather(i), [0, 0])(x, idx),
    /gather: index tensors must be made from host values/,
  );
  assert.throws(
    () => vmap((v: Tensor) => v.sum().mul(1) as unknown as Tensor[], 0, [0, 1])(x),
    /outAxes has 2 entries but the function returned one tensor/,
  );
  [x, z, idx].forEach((t) => t.dispose());
});

// ---------- both backends ----------

testAll("vmap(grad) per-example gradients on each backend against CPU f64", async (bk: Backend) => {
  const mk = (v: Float64Array, s: number[]) =>
    tensor(v, { shape: s, dtype: bk.dtype, device: bk.dev });
  const th = mk(randArray(12, 1, -0.8, 0.8), [12]);
  const X = mk(randArray(8, 2), [4, 2]), Y = mk(randArray(4, 3), [4]);
  const base = memory();
  const got = await take(vmap(grad(netLoss), [null, 0, 0])(th, X, Y));
  assertNoLeak(base);
  const th64 = theta64(), X6 = X64(), Y6 = Y64();
  const want = await take(vmap(grad(netLoss), [null, 0, 0])(th64, X6, Y6));
  const xr = await rows(X6), yr = await rows(Y6);
  const loop: number[] = [];
  for (let i = 0; i < 4; i++) loop.push(...await take(grad(netLoss)(th64, xr[i], yr[i])));
  near(want, loop, 1e-13, "f64 reference against the loop");
  near(got, want, bk.dtype === "f64" ? 1e-13 : 1e-5, `${bk.name} against CPU f64`);
  [th, X, Y, th64, X6, Y6, ...xr, ...yr].forEach((t) => t.dispose());
});

Deno.test("jit(vmap(grad(f))) and vmap(jit(grad(f))) equal per-example gradients", async () => {
  const f = (x: Tensor) => x.sin().mul(x).sum(); // ∇ = sin x + x cos x
  const X = f64(Float64Array.from([1, 2, 3, 4, 5, 6]), [3, 2]);
  const want = [1, 2, 3, 4, 5, 6].map((v) => Math.sin(v) + v * Math.cos(v));
  const jitted = jit(vmap(grad(f)));
  near(await take(jitted(X)), want, 1e-14, "jit(vmap(grad)), traced");
  near(await take(jitted(X)), want, 1e-14, "jit(vmap(grad)), replayed");
  near(await take(vmap(jit(grad(f)))(X)), want, 1e-14, "vmap(jit(grad))");
  X.dispose();
});
