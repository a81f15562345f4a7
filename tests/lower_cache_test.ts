/**
 * Lowerings cached by structure (src/compile/lower_cache.ts): the eager path lowers a graph
 * whose structure it has lowered before from the cache. Graphs that differ in a constant, a
 * size, or in which leaves they share must not share a lowering; the cache is bounded and
 * emptied by releaseCaches. Every value is checked against a closed form computed here in
 * JavaScript.
 */
import assert from "node:assert/strict";
import { grad, memory, releaseCaches, slice, sum, type Tensor, tensor, tidy } from "../mod.ts";
import { limitCache } from "../src/lru.ts";
import { lowerCache, lowerCacheStats } from "../src/compile/lower_cache.ts";
import { cpu } from "./helpers.ts";

const f64 = { dtype: "f64" as const, device: cpu };
const vals = (n: number, k = 1) => Float64Array.from({ length: n }, (_, i) => Math.sin(k * i + 1));

function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= 1e-12 * (1 + Math.abs(want[i])),
      `${what}: entry ${i} is ${got[i]}, expected ${want[i]}`,
    );
  }
}

/** a·x² + y, realized (one fused kernel). */
function fused(x: Tensor, y: Tensor, a: number): Float64Array {
  return tidy(() => x.square().mul(a).add(y).dataSync()) as Float64Array;
}

Deno.test("lowering cache: a repeated eager gradient is lowered once", () => {
  // Σ c·(x[1:] − x[:-1]²)² + Σ (1 − x[:-1])², the extended Rosenbrock function
  const rosen = (c: number) => (x: Tensor) => {
    const n = x.size;
    const a = slice(x, [1], [n]), b = slice(x, [0], [n - 1]);
    return sum(a.sub(b.square()).square().mul(c)).add(sum(b.neg().add(1).square()));
  };
  const want = (c: number, x: Float64Array) =>
    Array.from(x, (xi, i) => {
      const n = x.length;
      let g = 0;
      if (i > 0) g += 2 * c * (xi - x[i - 1] ** 2);
      if (i < n - 1) g += -4 * c * xi * (x[i + 1] - xi * xi) - 2 * (1 - xi);
      return g;
    });
  const xs = vals(10);
  const x = tensor(xs, f64);
  // 3 is a literal of the kernel; 7.25 and 100 are parameters (data, not structure: a
  // weight such as 40N must give one kernel at every N), so 100 reuses 7.25's lowering
  const structure = (c: number) => (c === 3 ? "literal 3" : "parameter");
  const seen = new Set<string>();
  for (const c of [3, 3, 7.25, 3, 7.25, 100]) {
    const misses = lowerCacheStats.misses, hits = lowerCacheStats.hits;
    const g = grad(rosen(c))(x);
    close(g.dataSync(), want(c, xs), `gradient with c = ${c}`);
    g.dispose();
    if (seen.has(structure(c))) {
      // the structure was seen: nothing new lowered
      assert.equal(lowerCacheStats.misses, misses, `c = ${c}: a repeated gradient lowers nothing`);
      assert.ok(lowerCacheStats.hits > hits, "it was answered from the cache");
    } else assert.ok(lowerCacheStats.misses > misses, `c = ${c} is a structure of its own`);
    seen.add(structure(c));
  }
  x.dispose();
});

Deno.test("lowering cache: equal structures with other sizes or literals get their own", () => {
  const hits0 = lowerCacheStats.hits;
  for (const n of [5, 5, 9, 5]) {
    // 3 and −1 are literals of the kernel, 3.5 and −1.25 parameters
    for (const a of [3.5, 3, 3.5, -1.25, -1, 3.5, -1]) {
      const xs = vals(n), ys = vals(n, 2);
      const x = tensor(xs, f64), y = tensor(ys, f64);
      close(fused(x, y, a), xs.map((v, i) => a * v * v + ys[i]), `n = ${n}, a = ${a}`);
      x.dispose();
      y.dispose();
    }
  }
  assert.ok(lowerCacheStats.hits > hits0, "the repeated ones were hits");
});

Deno.test("lowering cache: a constant read as a parameter takes each graph's value", () => {
  // x·a + b for a step a that changes every call (a line search's x + α d): one lowering,
  // each call's constants in its parameters; literal constants (small integers) are part
  // of the kernel and get lowerings of their own
  const xs = vals(11), ys = vals(11, 4); // a size no other test lowers
  const x = tensor(xs, f64), y = tensor(ys, f64);
  const steps = [0.37, 1.91, -2.6e-3, 2, 0.5, 1e300, 7.25, 3];
  fused(x, y, 0.123); // lowered once
  const misses = lowerCacheStats.misses;
  for (const a of steps) {
    close(fused(x, y, a), xs.map((v, i) => a * v * v + ys[i]), `a = ${a}`);
  }
  // 2, 0.5 and 3 are literals: three more lowerings; the other five are parameters
  assert.equal(lowerCacheStats.misses - misses, 3, "only the literals were lowered anew");
  // and a graph with two such constants keeps them apart
  for (const [a, b] of [[0.3, 0.7], [0.7, 0.3], [1.1, 1.1]]) {
    const got = tidy(() => x.mul(a).add(y.mul(b)).dataSync());
    close(got, xs.map((v, i) => a * v + b * ys[i]), `a = ${a}, b = ${b}`);
  }
  x.dispose();
  y.dispose();
});

Deno.test("lowering cache: leaves shared or not, each read gets its own tensor", () => {
  // x·y and x·x have the same nodes; only the sharing of their leaves differs
  const xs = vals(7), ys = vals(7, 3);
  const x = tensor(xs, f64), y = tensor(ys, f64);
  for (let k = 0; k < 2; k++) {
    close(tidy(() => x.exp().mul(y).dataSync()), xs.map((v, i) => Math.exp(v) * ys[i]), "e^x·y");
    close(tidy(() => x.exp().mul(x).dataSync()), xs.map((v) => Math.exp(v) * v), "e^x·x");
    close(tidy(() => y.exp().mul(x).dataSync()), ys.map((v, i) => Math.exp(v) * xs[i]), "e^y·x");
  }
  x.dispose();
  y.dispose();
});

Deno.test("lowering cache: a leaf that is a reduction this time is run first", () => {
  // the same structure, (x − Σx)·2, with Σx a realized buffer once and a pending reduction
  // the next time: the cached lowering must still run the reduction
  const xs = vals(6);
  const x = tensor(xs, f64);
  const s = xs.reduce((p, v) => p + v, 0);
  for (let k = 0; k < 3; k++) {
    const got = tidy(() => {
      const t = sum(x);
      if (k === 0) t.dataSync(); // realized before the kernel that reads it
      return x.sub(t).mul(2).dataSync();
    });
    close(got, xs.map((v) => (v - s) * 2), `round ${k}`);
  }
  x.dispose();
});

Deno.test("lowering cache: the same values with the cache off", () => {
  const xs = vals(8), ys = vals(8, 5);
  const x = tensor(xs, f64), y = tensor(ys, f64);
  lowerCache.enabled = false;
  try {
    const misses = lowerCacheStats.misses, hits = lowerCacheStats.hits;
    close(fused(x, y, 0.3), xs.map((v, i) => 0.3 * v * v + ys[i]), "uncached");
    assert.equal(lowerCacheStats.misses + lowerCacheStats.hits, misses + hits, "not consulted");
  } finally {
    lowerCache.enabled = true;
  }
  x.dispose();
  y.dispose();
});

Deno.test("lowering cache: bounded, and emptied by releaseCaches", () => {
  const entries = () => memory().caches["lowerings"].entries;
  limitCache("lowerings", { maxEntries: 4 });
  try {
    const x = tensor(vals(12), f64), y = tensor(vals(12, 2), f64);
    // 20 distinct structures (each literal constant is a number of the structure)
    for (let k = 0; k < 20; k++) {
      const a = 3 + k;
      close(fused(x, y, a), vals(12).map((v, i) => a * v * v + vals(12, 2)[i]), `a = ${a}`);
      assert.ok(entries() <= 4, `${entries()} entries held, the limit is 4`);
    }
    assert.equal(entries(), 4);
    x.dispose();
    y.dispose();
    releaseCaches();
    assert.equal(entries(), 0);
  } finally {
    limitCache("lowerings", { maxEntries: 1024 });
  }
});
