/**
 * The expression compiler (src/compile/): each rewrite rule fires where it should and
 * gives the value a plain JavaScript computation gives; random programs agree with the
 * simplifier on and off; kernels are cached by structure, so a second size reuses the
 * first's compiled code.
 */
import { equal, ok } from "node:assert/strict";
import { assertClose, BACKENDS, cpu, randArray, testAll } from "./helpers.ts";
import {
  abs,
  add,
  bandedHessian,
  broadcastTo,
  combProbes,
  cos,
  div,
  exp,
  grad,
  hvp,
  mul,
  neg,
  pad,
  reshape,
  sigmoid,
  sin,
  slice,
  softplus,
  square,
  sub,
  sum,
  tanh,
  type Tensor,
  tensor,
  transpose,
  valueAndGrad,
  where,
} from "../mod.ts";
import { H } from "../src/backend/cpu/elementwise.ts";
import { max } from "../src/ops/reduce.ts";
import { RULES, ruleStats, simplifier } from "../src/compile/rewrite.ts";
import { kernels } from "../src/backend/cpu/cpu.ts";
import { scheduler, scheduleStats } from "../src/compile/schedule.ts";

const f64 = { dtype: "f64" as const, device: cpu };

/** Runs `build`, returns its values and how often each named rule fired meanwhile. */
async function traced(
  build: () => Tensor,
): Promise<{ v: Float64Array; fired: Map<string, number> }> {
  const before = new Map(ruleStats);
  const t = build();
  const fired = new Map<string, number>();
  for (const [k, n] of ruleStats) {
    const d = n - (before.get(k) ?? 0);
    if (d > 0) fired.set(k, d);
  }
  const v = (await t.data()) as Float64Array;
  t.dispose();
  return { v, fired };
}

/** Asserts that `rule` fires while building and the values equal `want` (computed in JS). */
async function rule(name: string, build: () => Tensor, want: ArrayLike<number>): Promise<void> {
  ok(RULES.some((r) => r.name === name), `no rule named ${name}`);
  const { v, fired } = await traced(build);
  ok(fired.has(name), `${name} did not fire (fired: ${[...fired.keys()].join(", ") || "none"})`);
  assertClose(v, want, { rtol: 1e-15, atol: 0, msg: name });
}

const xs = randArray(12, 7);
const x = () => tensor(xs, f64);
const map = (f: (v: number) => number) => Array.from(xs, f);

Deno.test("rewrite rules: each fires and keeps the value", async (t) => {
  const cases: [string, () => Tensor, ArrayLike<number>][] = [
    ["fold unary", () => add(x(), exp(tensor(2, f64))), map((v) => v + Math.exp(2))],
    ["fold binary", () => add(x(), mul(tensor(3, f64), tensor(4, f64))), map((v) => v + 12)],
    ["fold where", () => where(tensor(1, f64), x(), tensor(5, f64)), xs],
    [
      "fold cast",
      () => add(x(), tensor(2.5, { dtype: "f32", device: cpu }).astype("f64")),
      map((v) => v + 2.5),
    ],
    ["x·1", () => mul(sin(x()), 1), map(Math.sin)],
    ["1·x", () => mul(1, sin(x())), map(Math.sin)],
    ["x/1", () => div(sin(x()), 1), map(Math.sin)],
    ["x+0", () => add(sin(x()), 0), map(Math.sin)],
    ["0+x", () => add(0, sin(x())), map(Math.sin)],
    ["x−0", () => sub(sin(x()), 0), map(Math.sin)],
    ["x·0", () => add(mul(sin(x()), 0), 1), map(() => 1)],
    ["0·x", () => add(mul(0, sin(x())), 1), map(() => 1)],
    ["0−x", () => sub(0, sin(x())), map((v) => -Math.sin(v))],
    ["x·−1", () => mul(sin(x()), -1), map((v) => -Math.sin(v))],
    ["−1·x", () => mul(-1, sin(x())), map((v) => -Math.sin(v))],
    ["−(−x)", () => neg(neg(sin(x()))), map(Math.sin)],
    ["a−(−b)", () => sub(sin(x()), neg(cos(x()))), map((v) => Math.sin(v) + Math.cos(v))],
    ["a+(−b)", () => add(sin(x()), neg(cos(x()))), map((v) => Math.sin(v) - Math.cos(v))],
    ["(−a)+b", () => add(neg(sin(x())), cos(x())), map((v) => Math.cos(v) - Math.sin(v))],
    ["(−a)·(−b)", () => mul(neg(sin(x())), neg(cos(x()))), map((v) => Math.sin(v) * Math.cos(v))],
    ["where(c, x, x)", () => {
      const t = x();
      return where(sin(t), cos(t), cos(t)); // the two cos(t) are one node
    }, map(Math.cos)],
    ["view of a constant", () => add(x(), broadcastTo(tensor([3], f64), [12])), map((v) => v + 3)],
    [
      "pad of a constant with its value",
      () => add(x(), pad(tensor(0, f64).reshape([1]).broadcastTo([10]), [[1, 1]])),
      xs,
    ],
    [
      "view of a view",
      () => slice(transpose(reshape(sin(x()), [3, 4])), [1, 0], [3, 3]),
      [1, 5, 9, 2, 6, 10].map((i) => Math.sin(xs[i])),
    ],
    [
      // the VJP of a slice (a pad) read back through the same slice
      "view of a pad",
      () => slice(pad(sin(x()), [[2, 3]]), [2], [14]),
      map(Math.sin),
    ],
    ["view of a pad", () => add(slice(pad(sin(x()), [[2, 3]]), [14], [17]), 4), [4, 4, 4]],
    ["reduction of a constant", () => add(sum(broadcastTo(tensor(2.5, f64), [4, 3]), [0]), 0.25), [
      10.25,
      10.25,
      10.25,
    ]],
    [
      "reduction over a broadcast",
      () => sum(broadcastTo(reshape(sin(x()), [1, 12]), [5, 12]), [0]),
      map((v) => 5 * Math.sin(v)),
    ],
    [
      "reduction over a broadcast",
      () => max(broadcastTo(reshape(sin(x()), [12, 1]), [12, 4]), [1]),
      map(Math.sin),
    ],
  ];
  const names = new Set(cases.map((c) => c[0]));
  for (const r of RULES) ok(names.has(r.name), `rule ${r.name} has no test case`);
  for (const [name, build, want] of cases) {
    await t.step(name, () => rule(name, build, want));
  }
});

Deno.test("rewrite rules: x·0 is 0 even for an infinite x (symbolic-zero semantics)", async () => {
  const y = mul(tensor([Infinity, NaN, 2], f64), 0);
  assertClose(await y.data(), [0, 0, 0], { rtol: 0, atol: 0 });
});

/** A random program over x of shape [6, 7]: finite values only (x·0 folds NaN away). */
function program(seed: number): (x: Tensor) => Tensor {
  return (x0: Tensor) => {
    // the same choices on every call
    let s = seed >>> 0;
    const next = (n: number) => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return (s >>> 8) % n;
    };
    const vals: Tensor[] = [x0];
    const pick = () => vals[next(vals.length)];
    const consts = [0, 1, -1, 2, 0.5, 3.25];
    for (let k = 0; k < 14; k++) {
      const a = pick();
      let v: Tensor;
      switch (next(12)) {
        case 0:
          v = add(a, pick());
          break;
        case 1:
          v = sub(a, consts[next(consts.length)]);
          break;
        case 2:
          v = mul(a, consts[next(consts.length)]);
          break;
        case 3:
          v = mul(a, pick());
          break;
        case 4:
          v = [sin, cos, tanh, sigmoid, abs, neg][next(6)](a);
          break;
        case 5:
          v = div(a, add(square(pick()), 1));
          break;
        case 6:
          v = transpose(a);
          v = transpose(add(v, consts[next(consts.length)]));
          break;
        case 7: {
          const inner = slice(pad(a, [[1, 2], [0, 1]]), [1, 0], [7, 7]);
          v = add(inner, 0);
          break;
        }
        case 8:
          v = mul(broadcastTo(sum(a, [next(2)], true), [6, 7]), 0.1);
          break;
        case 9:
          v = where(sub(a, 0.1), pick(), mul(pick(), 0));
          break;
        case 10:
          v = neg(neg(a));
          break;
        default:
          v = sub(0, mul(a, 1));
      }
      vals.push(v.shape.length === 2 && v.shape[0] === 6 ? v : reshape(v, [6, 7]));
    }
    return add(sum(vals[vals.length - 1]), sum(mul(vals[vals.length - 2], vals[3])));
  };
}

Deno.test("random programs: simplified and unsimplified agree (values, gradients, HVPs, comb HVPs)", async () => {
  // the unsimplified programs are scheduled plainly too (no comb or reduction splits, no
  // shared costly ops realized apart), so the reference shares neither with the other
  const x0 = () => tensor(randArray(42, 3), { ...f64, shape: [6, 7] });
  const v0 = () => tensor(randArray(42, 4), { ...f64, shape: [6, 7] });
  for (let seed = 1; seed <= 60; seed++) {
    const f = program(seed);
    const run = async (on: boolean) => {
      simplifier.enabled = on;
      scheduler.enabled = on;
      try {
        const x = x0(), v = v0();
        // five comb probes (the banded-Hessian pattern) besides a random direction
        const comb = combProbes(42, 5, { dtype: "f64", device: cpu, shape: [6, 7] });
        const out = [f(x), grad(f)(x), hvp(f, x, v), hvp(f, x, comb)];
        comb.dispose();
        const vals = await Promise.all(out.map((t) => t.data()));
        for (const t of [...out, x, v]) t.dispose();
        return vals;
      } finally {
        simplifier.enabled = true;
        scheduler.enabled = true;
      }
    };
    const [plain, simple] = [await run(false), await run(true)];
    for (let k = 0; k < 4; k++) {
      assertClose(simple[k], plain[k], {
        rtol: 1e-12,
        atol: 1e-12,
        msg: `seed ${seed}, ${["value", "gradient", "hvp", "comb hvp"][k]}`,
      });
    }
  }
});

Deno.test("kernels are cached by structure: a new size reuses the compiled code", async () => {
  const f = (x: Tensor) => sum(square(sub(slice(x, [1], [x.size]), slice(x, [0], [x.size - 1]))));
  const run = async (n: number) => {
    const g = grad(f)(tensor(randArray(n, n), f64));
    await g.data();
    g.dispose();
  };
  await run(100);
  const before = kernels.stats.count;
  for (const n of [101, 5_000, 70_001]) await run(n);
  equal(kernels.stats.count, before, "no new kernel for new sizes");
  // a different structure does compile
  const h = grad((x: Tensor) => sum(exp(slice(x, [2], [x.size]))))(tensor(randArray(50, 1), f64));
  await h.data();
  h.dispose();
  ok(kernels.stats.count > before);
});

/**
 * Σ_i Σ_k softplus(r_k − ‖p_i − c_k‖²)² over points p_i = (x_2i, x_2i+1) and three circles:
 * its gradient and its block-diagonal Hessian (lower band storage, bandwidth 1) in closed form.
 */
function obstacles(xs: ArrayLike<number>): { g: Float64Array; band: Float64Array[] } {
  const n = xs.length;
  const g = new Float64Array(n), diag = new Float64Array(n), off = new Float64Array(n);
  for (let i = 0; i < n / 2; i++) {
    for (let k = 0; k < 3; k++) {
      const d = [xs[2 * i] - CIRCLES[k][0], xs[2 * i + 1] - CIRCLES[k][1]];
      const u = RADII[k] - d[0] * d[0] - d[1] * d[1];
      const s = Math.log1p(Math.exp(u)), sg = 1 / (1 + Math.exp(-u));
      // ∇u = −2d, ∇²u = −2I: H = 2(σ² + sσ(1 − σ))·4ddᵀ − 4sσI
      const c = 8 * (sg * sg + s * sg * (1 - sg));
      for (let a = 0; a < 2; a++) {
        g[2 * i + a] += -4 * s * sg * d[a];
        diag[2 * i + a] += c * d[a] * d[a] - 4 * s * sg;
      }
      off[2 * i] += c * d[0] * d[1];
    }
  }
  return { g, band: [diag, off] };
}
const CIRCLES = [[0.3, 0.5], [0.6, 0.4], [0.8, 0.6]], RADII = [0.02, 0.015, 0.01];

Deno.test("CPU: a row broadcast over N points gives kernels of one structure at every N", async () => {
  // [1, 3, 2] circles against [N, 1, 2] points: the N axis of the broadcast is the problem's
  // size, not a probe count; split as probes while N ≤ 64 and not above, every first
  // gradient or band at a size past 64 compiled kernels of another structure
  const circles = tensor(CIRCLES.flat(), { ...f64, shape: [1, 3, 2] });
  const radii = tensor(RADII, { ...f64, shape: [1, 3] });
  const f = (x: Tensor) => {
    const d2 = sum(square(sub(reshape(x, [x.size / 2, 1, 2]), circles)), [2]);
    return sum(square(softplus(sub(radii, d2))));
  };
  const run = async (n: number) => {
    const xs = Float64Array.from({ length: 2 * n }, (_, i) => 0.2 + 0.7 * Math.abs(Math.sin(i)));
    const x = tensor(xs, f64);
    const g = grad(f)(x);
    const h = bandedHessian(f, x, { bandwidth: 1, layout: "lower" });
    const [gv, hv] = [await g.data(), await h.data.data()];
    const want = obstacles(xs);
    assertClose(gv, want.g, { rtol: 1e-12, atol: 1e-14, msg: `gradient at N = ${n}` });
    assertClose(hv.subarray(0, 2 * n), want.band[0], { rtol: 1e-12, atol: 1e-14, msg: `N ${n}` });
    assertClose(hv.subarray(2 * n, 2 * n - 1 + 2 * n), want.band[1].subarray(0, 2 * n - 1), {
      rtol: 1e-12,
      atol: 1e-14,
      msg: `sub-diagonal at N = ${n}`,
    });
    for (const t of [x, g, h]) t.dispose();
  };
  // at N = 16 the band's HVP batch ([3 probes, N, 3, 2]) has both a comb and a broadcast
  // short enough to split over: the comb's probes are taken, as at every larger N
  await run(16);
  const before = kernels.stats.count;
  for (const n of [40, 64, 100, 256, 1_000]) await run(n);
  equal(kernels.stats.count, before, "no new kernel for new sizes");
  circles.dispose();
  radii.dispose();
});

Deno.test("bounds tests split off at the edges: shifted slices and pads agree with JS at every size", async () => {
  // the gradient of Σ (x[i+s] − x[i]²)² is one kernel whose pad guards hold on an interior
  // range of the index (run without the tests there); sizes below, at and above the shift
  for (const s of [1, 2, 3]) {
    for (const n of [s + 1, s + 2, 2 * s + 1, 9, 70_001]) {
      const xs = randArray(n, n + s);
      const g = await grad((x: Tensor) =>
        sum(square(sub(slice(x, [s], [n]), square(slice(x, [0], [n - s])))))
      )(tensor(xs, f64)).data();
      const want = new Float64Array(n);
      for (let i = 0; i + s < n; i++) {
        const d = xs[i + s] - xs[i] * xs[i];
        want[i + s] += 2 * d;
        want[i] += -4 * d * xs[i];
      }
      assertClose(g, want, { rtol: 1e-13, atol: 1e-13, msg: `shift ${s}, n ${n}` });
    }
  }
  // a pad wider than its input, read back whole and through a slice
  const p = await pad(sin(tensor([0.5, 1], f64)), [[3, 4]]).add(1).data();
  assertClose(p, [1, 1, 1, 1 + Math.sin(0.5), 1 + Math.sin(1), 1, 1, 1, 1], { rtol: 1e-15 });
});

/** Runs `f` counting the CPU kernels' sigmoid and softplus evaluations. */
async function counting<T>(
  f: () => Promise<T>,
): Promise<[T, { sigmoid: number; softplus: number }]> {
  const n = { sigmoid: 0, softplus: 0 };
  const { sigmoid, softplus } = H;
  H.sigmoid = (v) => (n.sigmoid++, sigmoid(v));
  H.softplus = (v) => (n.softplus++, softplus(v));
  try {
    return [await f(), n];
  } finally {
    Object.assign(H, { sigmoid, softplus });
  }
}

Deno.test("CPU: costly work under a broadcast runs once, not once per copy", async () => {
  const n = 300, k = 7;
  const xs = randArray(n, 4), ys = randArray(k * n, 5);
  const x = tensor(xs, f64);
  const sig = xs.map((v) => 1 / (1 + Math.exp(-v)));
  // Σ_i y[j][i]·σ(x_i) for each j, the 7 copies along the leading axis: a split kernel
  // evaluates σ once per i and reads it for every j
  const y = tensor(ys, { ...f64, shape: [k, n] });
  const [lead, c1] = await counting(() => sum(mul(y, broadcastTo(sigmoid(x), [k, n])), [1]).data());
  equal(c1.sigmoid, n, "σ evaluated once per entry");
  assertClose(
    lead,
    Array.from({ length: k }, (_, j) => sig.reduce((a, s, i) => a + ys[j * n + i] * s, 0)),
    { rtol: 1e-13 },
  );
  // 70 copies along the trailing axis (y as [n, 70], reduced over n; more copies than a
  // split kernel loops over): σ(x) runs on its own first, then the reduction reads it
  const count = () => scheduleStats.broadcastWork;
  const before = count();
  const K = 70, zs = randArray(n * K, 6);
  const yt = tensor(zs, { ...f64, shape: [n, K] });
  // (a tensor of its own: σ(x) above is still read by the first product, which is alive)
  const x2 = tensor(xs, f64);
  const [trail, c2] = await counting(() =>
    sum(mul(yt, broadcastTo(reshape(sigmoid(x2), [n, 1]), [n, K])), [0]).data()
  );
  equal(c2.sigmoid, n, "σ evaluated once per entry");
  equal(count(), before + 1, "the costly operand was run on its own");
  assertClose(
    trail,
    Array.from({ length: K }, (_, j) => sig.reduce((a, s, i) => a + zs[i * K + j] * s, 0)),
    { rtol: 1e-13 },
  );
  // cheap work (no library call) stays fused; so does costly work read once per value
  const cheap = await sum(mul(yt, broadcastTo(reshape(x.mul(3).add(1), [n, 1]), [n, K])), [0])
    .data();
  const once = await sum(exp(x)).data();
  equal(count(), before + 1, "nothing else was split off");
  assertClose(
    cheap,
    Array.from({ length: K }, (_, j) => xs.reduce((a, v, i) => a + zs[i * K + j] * (3 * v + 1), 0)),
    { rtol: 1e-13 },
  );
  assertClose(once, [xs.reduce((a, v) => a + Math.exp(v), 0)], { rtol: 1e-13 });
  for (const t of [x, x2, y, yt]) t.dispose();
});

/** Σ_i softplus(x_{i+1} − x_i)²: its gradient and (tridiagonal) Hessian in closed form. */
function softplusChain(xs: ArrayLike<number>): { g: Float64Array; band: Float64Array[] } {
  const n = xs.length;
  const g = new Float64Array(n), diag = new Float64Array(n), off = new Float64Array(n);
  for (let i = 0; i + 1 < n; i++) {
    const d = xs[i + 1] - xs[i];
    const s = Math.log1p(Math.exp(d)), sg = 1 / (1 + Math.exp(-d));
    // (s²)' = 2sσ, (s²)'' = 2(σ² + sσ(1 − σ))
    const g1 = 2 * s * sg, h = 2 * (sg * sg + s * sg * (1 - sg));
    g[i + 1] += g1;
    g[i] -= g1;
    diag[i] += h;
    diag[i + 1] += h;
    off[i] = -h; // lower storage: ab[1][i] = H[i+1][i]
  }
  return { g, band: [diag, off] };
}

const chain = (x: Tensor) => {
  const n = x.size;
  return sum(square(softplus(sub(slice(x, [1], [n]), slice(x, [0], [n - 1])))));
};

Deno.test("CPU: costly work shared by kernels runs once (value and gradient, band)", async () => {
  const n = 500;
  const xs = randArray(n, 11);
  const x = tensor(xs, f64);
  const want = softplusChain(xs);
  const before = scheduleStats.sharedWork;
  // the value's reduction and the gradient's kernel both need softplus(d)
  const [[v, g], c1] = await counting(async () => {
    const [v, g] = valueAndGrad(chain)(x) as [Tensor, Tensor];
    const out = [await v.item(), await g.data()] as const;
    v.dispose();
    g.dispose();
    return out;
  });
  equal(c1.softplus, n - 1, "softplus evaluated once per entry (twice before)");
  equal(c1.sigmoid, n - 1, "sigmoid evaluated once per entry");
  ok(scheduleStats.sharedWork > before);
  let value = 0;
  for (let i = 0; i + 1 < n; i++) value += Math.log1p(Math.exp(xs[i + 1] - xs[i])) ** 2;
  assertClose([v], [value], { rtol: 1e-13 });
  assertClose(g, want.g, { rtol: 1e-12, atol: 1e-13 });
  // the band: its 3 comb-probe products need σ and softplus of the primal once each
  const [band, c2] = await counting(async () => {
    const h = bandedHessian(chain, x, { bandwidth: 1, layout: "lower" });
    const d = await h.data.data();
    h.dispose();
    return d;
  });
  equal(c2.softplus, n - 1, "softplus evaluated once per entry (twice before)");
  equal(c2.sigmoid, n - 1, "sigmoid evaluated once per entry (twice before)");
  assertClose(band.subarray(0, n), want.band[0], { rtol: 1e-12, atol: 1e-13 });
  assertClose(band.subarray(n, 2 * n), want.band[1], { rtol: 1e-12, atol: 1e-13 });
  x.dispose();
});

testAll("split reductions and comb-probe kernels agree with closed forms", async (b) => {
  // n > 65,536 (WebGPU's loop limit); the band's products reduce over a probe-leading axis
  const n = 70_001;
  const xs = randArray(n, 12).map((v) => 2 * v);
  const opts = { dtype: b.dtype, device: b.dev };
  const want = softplusChain(b.dtype === "f32" ? Float32Array.from(xs) : xs);
  const x = tensor(xs, opts);
  const h = bandedHessian(chain, x, { bandwidth: 1, layout: "lower" });
  const band = await h.data.data();
  const tol = b.dtype === "f64" ? { rtol: 1e-12, atol: 1e-13 } : { rtol: 1e-4, atol: 1e-4 };
  assertClose(band.subarray(0, n), want.band[0], { ...tol, msg: "diagonal" });
  assertClose(band.subarray(n, 2 * n), want.band[1], { ...tol, msg: "subdiagonal" });
  // weighted sums of the probes' products, Σ_i w_i (H c_k)_i, reduced apart per probe
  const ws = randArray(n, 13).map((v) => 1 + v);
  const hv = hvp(chain, x, combProbes(n, 3, opts));
  const w = tensor(ws, opts);
  const sums = await sum(mul(reshape(hv, [3, n]), w), [1]).data();
  const expect = [0, 1, 2].map((k) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      // (H c_k)_i = Σ_j H[i][j] c_k[j]
      let hc = 0;
      if (i % 3 === k) hc += want.band[0][i];
      if (i > 0 && (i - 1) % 3 === k) hc += want.band[1][i - 1];
      if (i + 1 < n && (i + 1) % 3 === k) hc += want.band[1][i];
      s += ws[i] * hc;
    }
    return s;
  });
  assertClose(sums, expect, { rtol: b.dtype === "f64" ? 1e-11 : 1e-3, msg: "probe sums" });
  for (const t of [h.data, hv, w, x]) t.dispose();
});

for (const b of BACKENDS) {
  Deno.test(`comb-probe band products equal dense HVP columns [${b.name}]`, async () => {
    // a banded objective; its 5 comb-probe products against 5 single HVPs with the probes
    const n = 70_003;
    const f = (x: Tensor) => {
      const d2 = slice(x, [2], [n]).sub(slice(x, [1], [n - 1]).mul(2)).add(slice(x, [0], [n - 2]));
      return sum(square(d2)).add(sum(tanh(x).mul(x)));
    };
    const opts = { dtype: b.dtype, device: b.dev };
    const x = tensor(randArray(n, 9), opts);
    const probes = Array.from(
      { length: 5 },
      (_, k) => Float64Array.from({ length: n }, (_, i) => (i % 5 === k ? 1 : 0)),
    );
    const V = tensor(probes.flatMap((p) => Array.from(p)), { ...opts, shape: [5, n] });
    const combs = ruleStats.get("comb probes") ?? 0;
    const batched = await hvp(f, x, combProbes(n, 5, opts)).data();
    if (b.dev === cpu) {
      ok((ruleStats.get("comb probes") ?? 0) > combs, "the comb-probe pattern was recognised");
    }
    assertClose(batched, await hvp(f, x, V).data(), {
      rtol: b.dtype === "f64" ? 1e-12 : 1e-5,
      atol: b.dtype === "f64" ? 1e-12 : 1e-5,
      msg: "comb probes made on the device against the same probes uploaded",
    });
    for (let k = 0; k < 5; k++) {
      const one = await hvp(f, x, tensor(probes[k], opts)).data();
      assertClose(batched.subarray(k * n, (k + 1) * n), one, {
        rtol: b.dtype === "f64" ? 1e-12 : 1e-4,
        atol: b.dtype === "f64" ? 1e-12 : 1e-4,
        msg: `probe ${k}`,
      });
    }
  });
}
