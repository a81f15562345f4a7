/**
 * The expression compiler as issue 12 (item 3) states it, read off the programs it
 * generates: common subexpressions evaluated once, small constants written as literals,
 * dead code (a subtree multiplied by 0, index arithmetic of a bounds test that holds)
 * absent from the printed kernel, comb probes' residue computed once per element rather
 * than once per probe, and the rewrites firing on every backend (the simplifier sits above
 * the devices). Each value against a plain JavaScript computation. compile_test.ts holds
 * the per-rule unit tests and the randomised simplified-against-unsimplified test.
 */
import { equal, ok } from "node:assert/strict";
import {
  add,
  bandedHessian,
  broadcastTo,
  combProbes,
  exp,
  grad,
  hvp,
  mul,
  neg,
  pad,
  releaseCaches,
  reshape,
  sigmoid,
  slice,
  softplus,
  square,
  sub,
  sum,
  type Tensor,
  tensor,
} from "../mod.ts";
import { assertClose, cpu, gpuDev, randArray, testAll } from "./helpers.ts";
import { kernels } from "../src/backend/cpu/cpu.ts";
import { H } from "../src/backend/cpu/elementwise.ts";
import { ruleStats } from "../src/compile/rewrite.ts";

const f64 = { dtype: "f64" as const, device: cpu };

/** The CPU kernels compiled while `run` runs (the caches emptied first), as source text. */
async function generated(run: () => Promise<void>): Promise<string[]> {
  releaseCaches();
  const sources: string[] = [];
  const get = kernels.get;
  kernels.get = (f, compile) =>
    get.call(kernels, f, (k) => {
      const fn = compile(k);
      sources.push(fn.toString());
      return fn;
    });
  try {
    await run();
  } finally {
    // deno-lint-ignore no-explicit-any
    delete (kernels as any).get; // the prototype's method again
  }
  return sources;
}

/**
 * Statements `const vN = …` whose value nothing reads: one declared before the loops and
 * read nowhere, or one declared in a loop over the entries and read nowhere in that loop
 * (a kernel's edge and interior loops each declare their own copy).
 */
function deadValues(src: string): string[] {
  const [prelude, ...loops] = src.split(/for \(let (?:r|idx) = /);
  const dead = (scope: string, reader: string) =>
    [...scope.matchAll(/const (v\d+) = /g)].map((m) => m[1]).filter((v) =>
      (reader.match(new RegExp(`\\b${v}\\b`, "g"))?.length ?? 0) === 1
    );
  return [...dead(prelude, src), ...loops.flatMap((l) => dead(l, l))];
}

const n = 1000;
const xs = randArray(n, 17);

/** Σ (x[i+2] − 2x[i+1] + x[i])² + Σ x⁴/4: pentadiagonal Hessian. */
const penta = (x: Tensor) => {
  const m = x.size;
  const d2 = slice(x, [2], [m]).sub(slice(x, [1], [m - 1]).mul(2)).add(slice(x, [0], [m - 2]));
  return sum(square(d2)).add(sum(x.pow(4).mul(0.25)));
};

/** H of `penta` times v, in JavaScript. */
function pentaHv(x: ArrayLike<number>, v: ArrayLike<number>): Float64Array {
  const m = x.length, out = new Float64Array(m);
  for (let i = 0; i < m; i++) out[i] = 3 * x[i] * x[i] * v[i];
  for (let i = 0; i + 2 < m; i++) {
    const d = v[i + 2] - 2 * v[i + 1] + v[i];
    out[i + 2] += 2 * d;
    out[i + 1] -= 4 * d;
    out[i] += 2 * d;
  }
  return out;
}

Deno.test("CSE: a subexpression built twice is evaluated once per element", async () => {
  let calls = 0;
  const sig = H.sigmoid;
  H.sigmoid = (v) => (calls++, sig(v));
  try {
    const x = tensor(xs, f64);
    // sigmoid(x) written three times, through separate calls
    const y = await add(mul(sigmoid(x), sigmoid(x)), sigmoid(x)).data();
    equal(calls, n, "σ evaluated once per entry, not three times");
    const s = Array.from(xs, (v) => 1 / (1 + Math.exp(-v)));
    assertClose(y, s.map((v) => v * v + v), { rtol: 1e-15 });
    x.dispose();
  } finally {
    H.sigmoid = sig;
  }
});

Deno.test("literal constants and dead code: x·0 drops its operand, small numbers are literals", async () => {
  const x = tensor(xs, f64);
  let y: Float64Array | null = null;
  const [src] = await generated(async () => {
    y = (await add(mul(exp(x), 0), x.mul(3)).sub(0.5).data()) as Float64Array;
  });
  ok(!/Math\.exp|H\.exp/.test(src), `exp(x)·0 computes no exp:\n${src}`);
  ok(/\* 3\b/.test(src) && /0\.5/.test(src), `3 and 0.5 printed as literals:\n${src}`);
  ok(!/P\[/.test(src), `no parameter read for a literal:\n${src}`);
  assertClose(y!, Array.from(xs, (v) => 3 * v - 0.5), { rtol: 1e-15 });
  x.dispose();
});

Deno.test("dead code: no generated kernel computes a value it never reads", async () => {
  const x = tensor(xs, f64);
  const sources = await generated(async () => {
    await grad(penta)(x).data();
    await hvp(penta, x, combProbes(n, 5, f64)).data();
    for (const b of [1, 2]) {
      const h = bandedHessian(penta, x, { bandwidth: b });
      await h.data.data();
      h.dispose();
    }
    const chain = (y: Tensor) =>
      sum(square(softplus(sub(slice(y, [1], [n]), slice(y, [0], [n - 1])))));
    await grad(chain)(x).data();
    const h = bandedHessian(chain, x, { bandwidth: 1, layout: "lower" });
    await h.data.data();
    h.dispose();
    await sum(mul(broadcastTo(reshape(sigmoid(x), [1, n]), [3, n]), 2), [0]).data();
    await slice(pad(neg(neg(exp(x))), [[2, 3]]), [2], [n + 2]).add(0).data();
  });
  ok(sources.length >= 6, `kernels compiled: ${sources.length}`);
  for (const src of sources) {
    const dead = deadValues(src);
    equal(dead.length, 0, `dead values ${dead.join(", ")} in\n${src}`);
  }
  x.dispose();
});

Deno.test("comb probes: the residue is computed once per element, not once per probe", async () => {
  const x = tensor(xs, f64);
  const combs = ruleStats.get("comb probes") ?? 0;
  let hv: Float64Array | null = null;
  const sources = await generated(async () => {
    hv = (await hvp(penta, x, combProbes(n, 5, f64)).data()) as Float64Array;
  });
  ok((ruleStats.get("comb probes") ?? 0) > combs, "the comb-probe pattern was recognised");
  // the products' kernel: loops over r (entries), each with the probes' loop inside
  const src = sources.find((s) => /for \(let r = /.test(s));
  ok(src, `a split kernel over the entries:\n${sources.join("\n\n")}`);
  const loops = src!.split(/for \(let r = [^)]*\) \{/).slice(1);
  ok(loops.length >= 1);
  for (const body of loops) {
    equal(
      body.match(/Math\.floor\(/g)?.length ?? 0,
      1,
      `one division per entry (r mod 5):\n${src}`,
    );
    ok(!/%/.test(body), `no % per entry or probe:\n${src}`);
    for (const q of body.split(/for \(let q = /).slice(1)) {
      const inner = q.slice(0, q.indexOf("}"));
      ok(!/Math\.floor|%/.test(inner), `nothing divides inside the probes' loop:\n${src}`);
    }
  }
  for (let k = 0; k < 5; k++) {
    const v = Float64Array.from({ length: n }, (_, i) => (i % 5 === k ? 1 : 0));
    assertClose(hv!.subarray(k * n, (k + 1) * n), pentaHv(xs, v), {
      rtol: 1e-12,
      atol: 1e-12,
      msg: `probe ${k}`,
    });
  }
  x.dispose();
});

testAll("the rewrites fire on every backend (the simplifier is above the devices)", async (b) => {
  const o = { dtype: b.dtype, device: b.dev };
  const vs = Array.from(randArray(12, 3), (v) => Math.fround(v));
  const x = () => tensor(vs, o);
  const sin = Math.sin;
  const cases: [string, () => Tensor, number[]][] = [
    ["x·0", () => add(mul(x().sin(), 0), 1), vs.map(() => 1)],
    ["x·1", () => mul(x().sin(), 1), vs.map(sin)],
    ["x+0", () => add(x().sin(), 0), vs.map(sin)],
    ["−(−x)", () => neg(neg(x().sin())), vs.map(sin)],
    ["fold binary", () => add(x(), mul(tensor(3, o), tensor(4, o))), vs.map((v) => v + 12)],
    [
      "reduction over a broadcast",
      () => sum(broadcastTo(reshape(x().sin(), [1, 12]), [5, 12]), [0]),
      vs.map((v) => 5 * sin(v)),
    ],
    ["view of a pad", () => slice(pad(x().sin(), [[2, 3]]), [2], [14]), vs.map(sin)],
  ];
  for (const [name, build, want] of cases) {
    const before = ruleStats.get(name) ?? 0;
    const t = build();
    ok((ruleStats.get(name) ?? 0) > before, `${name} fired on ${b.name}`);
    assertClose(await t.data(), want, { rtol: 4 * b.rtol, atol: 4 * b.rtol, msg: name });
    t.dispose();
  }
});

Deno.test("cache keys are structural: a lookup prints no source, a new size compiles nothing", async () => {
  // the CPU backend prints a kernel's source only inside the compile callback, which the
  // cache calls on a miss (src/compile/kernels.ts): count lookups and prints apart
  const run = async (m: number) => {
    const x = tensor(randArray(m, m), f64);
    const g = await grad(penta)(x).data();
    x.dispose();
    return g;
  };
  await run(100);
  let lookups = 0, printed = 0;
  const get = kernels.get;
  kernels.get = (f, compile) => {
    lookups++;
    return get.call(kernels, f, (k) => (printed++, compile(k)));
  };
  try {
    for (const m of [101, 5_000, 70_001]) {
      const xs = randArray(m, m);
      const g = await run(m);
      // ∇ penta = 2 D2ᵀ D2 x + x³ = H(x)·x − 2x³, with H(x)·v = 2 D2ᵀ D2 v + 3x²v
      const want = pentaHv(xs, xs).map((v, i) => v - 2 * xs[i] ** 3);
      assertClose(g, want, { rtol: 1e-12, atol: 1e-12, msg: `n = ${m}` });
    }
  } finally {
    // deno-lint-ignore no-explicit-any
    delete (kernels as any).get;
  }
  ok(lookups > 0, "kernels were looked up");
  equal(printed, 0, "no source printed: every lookup was answered by the structural key");
});

Deno.test({
  name: "WebGPU: the generated WGSL drops x·0's operand and computes no value it never reads",
  ignore: !gpuDev,
  fn: async () => {
    const g = gpuDev!;
    // the WGSL of every generated kernel launched meanwhile (the runtime's pipeline lookup)
    // deno-lint-ignore no-explicit-any
    const rt = (g.backend as any).rt;
    const sources: string[] = [];
    const pipeline = rt.pipeline;
    // deno-lint-ignore no-explicit-any
    rt.pipeline = (spec: any, c: unknown) => {
      if (spec.generated) sources.push(spec.generated.source());
      return pipeline.call(rt, spec, c);
    };
    const o = { dtype: "f32" as const, device: g };
    const vs = Array.from(xs, (v) => Math.fround(v));
    let y: Float32Array, hv: Float32Array;
    const x = tensor(vs, o);
    try {
      y = (await add(mul(exp(x), 0), x.mul(3)).sub(0.5).data()) as Float32Array;
      const first = sources.length;
      ok(first >= 1);
      const load = sources[first - 1].slice(sources[first - 1].indexOf("fn load"));
      ok(!/unary_op\(/.test(load), `exp(x)·0 computes no exp:\n${load}`);
      await grad(penta)(x).data();
      hv = (await hvp(penta, x, combProbes(n, 5, o)).data()) as Float32Array;
    } finally {
      rt.pipeline = pipeline;
    }
    ok(sources.length >= 3, `kernels launched: ${sources.length}`);
    for (const src of sources) {
      for (const m of src.matchAll(/let (v\d+)\b/g)) {
        const uses = src.match(new RegExp(`\\b${m[1]}\\b`, "g"))!.length;
        ok(uses > 1, `${m[1]} is never read in\n${src.slice(src.indexOf("fn load"))}`);
      }
    }
    assertClose(y!, vs.map((v) => 3 * v - 0.5), { rtol: 1e-6, atol: 1e-6 });
    for (let k = 0; k < 5; k++) {
      const v = Float64Array.from({ length: n }, (_, i) => (i % 5 === k ? 1 : 0));
      assertClose(hv!.subarray(k * n, (k + 1) * n), pentaHv(vs, v), {
        rtol: 1e-4,
        atol: 1e-4,
        msg: `probe ${k}`,
      });
    }
    x.dispose();
  },
});
