/**
 * Bounded caches (issue 8 defect 6, issue 11 item 3): a program whose kernels keep changing
 * runs in a bounded footprint. Each case runs tests/fixtures/many_kernels.ts in a child
 * process that compiles thousands of distinct fused kernels and reports `memory().caches`
 * and its resident set after forced collections.
 */
import assert from "node:assert/strict";
import { gpuDev } from "./helpers.ts";
import {
  grad,
  hessianSparsity,
  jit,
  memory,
  releaseCaches,
  sum,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";
import { pool } from "../src/backend/cpu/storage.ts";
import { liveBytes } from "../src/memory.ts";
import { LruCache } from "../src/lru.ts";
import { scratchLimits } from "../src/ad/index_sets.ts";

interface Report {
  kernels: number;
  rss: number;
  heapUsed: number;
  caches: Record<string, { entries: number; bytes: number }>;
}

async function run(
  args: string[],
  v8 = "--expose-gc",
): Promise<{ code: number; reports: Report[]; err: string }> {
  const script = new URL("./fixtures/many_kernels.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--v8-flags=${v8}`, script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n").filter((l) => l);
  return {
    code: out.code,
    reports: lines.map((l) => JSON.parse(l)),
    err: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("caches: 8000 distinct CPU kernels compile within a 48 MiB JavaScript heap", async () => {
  // Unbounded, the compiled-function cache keeps every kernel alive and the heap runs out
  // before 4,000 (each kernel holds its source and bytecode); bounded, V8 can reclaim
  // evicted kernels and the heap stays flat (~33 MB at 2,000 … 8,000, measured). V8's own
  // compilation cache is turned off in the child: it keeps every evaluated source until
  // heap pressure ages it out, and how soon that happens varied from run to run, so 6,000
  // kernels sometimes ran out of heap with the bounded cache too.
  const { code, reports, err } = await run(
    ["cpu", "8000", "2000"],
    "--expose-gc,--max-old-space-size=48,--no-compilation-cache",
  );
  assert.equal(code, 0, `the child failed: ${err.slice(-500)}`);
  assert.equal(reports.length, 4);
  for (const r of reports) {
    const k = r.caches["cpu kernels"];
    assert.ok(k.entries <= 2048, `${k.entries} compiled kernels cached`);
    assert.ok(k.bytes <= 64 * 1024 * 1024);
  }
});

Deno.test({
  name: "caches: distinct WebGPU pipelines beyond the cache limit do not grow the process",
  ignore: !gpuDev,
  fn: async () => {
    // 400 distinct kernels with room for 25 pipelines. Unbounded, each pipeline keeps about
    // 2.2 MB on lavapipe (measured): some 440 MB from kernel 200 to 400. Bounded, the
    // resident set levels off once the allocators have warmed up (within the first ~200
    // kernels; later windows of 100 grew by 2-20 MB when measured, under load).
    const { code, reports, err } = await run(["webgpu", "400", "100", "25"]);
    assert.equal(code, 0, `the child failed: ${err.slice(-500)}`);
    for (const r of reports) {
      assert.ok(r.caches["webgpu pipelines"].entries <= 25);
      assert.ok(r.caches["webgpu shader modules"].entries <= 25);
    }
    const growth = (reports[3].rss - reports[1].rss) / 2 ** 20;
    assert.ok(growth < 100, `the resident set grew by ${growth.toFixed(1)} MiB over 200 kernels`);
  },
});

Deno.test("caches: memory() reports them and releaseCaches() empties them", async () => {
  const x = tensor(Array.from({ length: 5000 }, (_, i) => i), { dtype: "f64" });
  const y = x.mul(2).sin().sum();
  await y.data();
  const z = x.add(1); // a pooled array: z's realisation frees into the pool when disposed
  await z.data();
  z.dispose();
  const g = jit((t: Tensor) => t.mul(3).sum());
  g(x).dispose();
  hessianSparsity((t: Tensor) => t.square().sum(), x);
  const before = memory().caches;
  assert.ok(before["cpu kernels"].entries >= 1);
  assert.equal(before["jit programs"].entries, 1);
  assert.ok(before["sparsity scratch"].bytes > 0);
  assert.ok(before["cpu array pool"].bytes >= 5000 * 8, JSON.stringify(before));
  releaseCaches();
  const after = memory().caches;
  for (const [name, c] of Object.entries(after)) {
    assert.equal(c.entries, 0, `${name} still holds ${c.entries} entries`);
    assert.equal(c.bytes, 0, `${name} still holds ${c.bytes} bytes`);
  }
  // and everything still works afterwards (kernels compile again)
  assert.equal(
    await y.item(),
    await (() => {
      const w = x.mul(2).sin().sum();
      return w.item().finally(() => w.dispose());
    })(),
  );
  g(x).dispose();
  assert.equal(g.traces, 2, "the released program is traced again");
  x.dispose();
  y.dispose();
});

Deno.test("caches: the CPU array pool stays bounded when shapes vary, and ages out", async () => {
  releaseCaches();
  // the pattern: gradients of many different sizes, nothing live afterwards
  const f = (x: Tensor) => sum(x.mul(x).sin());
  let peak = 0;
  for (let n = 4096; n < 4096 + 1500; n++) {
    const x = tensor(new Float64Array(n).fill(0.5), { dtype: "f64" });
    const g = grad(f)(x) as Tensor;
    await g.data();
    g.dispose();
    x.dispose();
    peak = Math.max(peak, memory().caches["cpu array pool"].bytes);
  }
  // with nothing live the cap is its floor, 64 MiB (without a bound: 1500 sizes × a few
  // arrays of 32-44 KB each, about 110 MB, all kept)
  assert.ok(peak <= 64 * 2 ** 20, `the pool held ${(peak / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(peak > 0, "the pool was used");
  // arrays not taken again within maxAgeMs leave at the next visit
  const saved = pool.maxAgeMs;
  pool.maxAgeMs = 20;
  try {
    await new Promise((r) => setTimeout(r, 40));
    pool.take("f64", 7); // a visit
    assert.equal(memory().caches["cpu array pool"].bytes, 0);
  } finally {
    pool.maxAgeMs = saved;
  }
});

Deno.test("caches: the CPU array pool keeps a freed working set for the next iteration", async () => {
  releaseCaches();
  const saved = { minCap: pool.minCap, maxAgeMs: pool.maxAgeMs };
  pool.minCap = 2 ** 20; // a 1 MiB floor, so that 4 MiB arrays count
  try {
    // an "iteration": five 4 MiB arrays live at its peak, all freed at its end
    const xs = [tensor(new Float64Array(2 ** 19).fill(0.5), { dtype: "f64" })];
    for (let k = 0; k < 4; k++) {
      const t = xs[k].add(1);
      await t.data();
      xs.push(t);
    }
    for (const t of xs) t.dispose();
    pool.take("f64", 7); // a visit
    // sized by the live bytes of this moment the pool would hold at most twice them; sized
    // by the recent peak it keeps the iteration's arrays for the next one
    const held = memory().caches["cpu array pool"].bytes;
    const now = Math.max(pool.minCap, 2 * liveBytes("cpu"));
    assert.ok(held >= 4 * 2 ** 22 && held > now, `pool ${held} B, twice live now ${now} B`);
    // and the peak ages out with the arrays
    pool.maxAgeMs = 20;
    await new Promise((r) => setTimeout(r, 40));
    pool.take("f64", 7);
    assert.equal(memory().caches["cpu array pool"].bytes, 0);
  } finally {
    Object.assign(pool, saved);
    releaseCaches();
  }
});

Deno.test("caches: sparsity detection's scratch pool is reported, ages out and is released", async () => {
  releaseCaches();
  const n = 100_000; // above the pool's 1,024-entry floor, so detection draws from it
  using x = zeros([n], { dtype: "f64" });
  const f = (z: Tensor) => sum(z.slice([1], [n]).sub(z.slice([0], [n - 1]).square()).square());
  const held = () => memory().caches["sparsity scratch"];
  hessianSparsity(f, x);
  // a tridiagonal pattern's sets take a few arrays of ~n entries: held for the next detection
  assert.ok(held().bytes >= n * 4 && held().bytes <= 64 * n * 4, JSON.stringify(held()));
  releaseCaches();
  assert.deepEqual(held(), { entries: 0, bytes: 0 });
  // unused for longer than the age limit: dropped when the next detection starts
  hessianSparsity(f, x);
  const saved = scratchLimits.maxAgeMs;
  scratchLimits.maxAgeMs = 20;
  try {
    await new Promise((r) => setTimeout(r, 40));
    const before = held().bytes;
    hessianSparsity((z: Tensor) => z.slice([0], [1000]).square().sum(), x); // small: no scratch
    assert.ok(before > 0 && held().bytes < before, `${before} → ${held().bytes} bytes`);
  } finally {
    scratchLimits.maxAgeMs = saved;
  }
});

Deno.test("caches: an LruCache evicts the least recently used, hits on the newest included", () => {
  const evicted: string[] = [];
  const c = new LruCache<string, number>(
    { maxEntries: 3, maxBytes: Infinity },
    (_v, k) => evicted.push(k),
  );
  c.set("a", 1);
  c.set("b", 2);
  c.set("c", 3);
  assert.equal(c.get("c"), 3); // the newest: nothing moves
  assert.equal(c.get("a"), 1); // b, c, a
  assert.equal(c.get("a"), 1);
  assert.equal(c.get("b"), 2); // c, a, b
  c.set("d", 4);
  assert.deepEqual(evicted, ["c"]);
  c.delete("d"); // the newest gone: a, b
  assert.equal(c.get("a"), 1); // b, a
  c.set("e", 5);
  c.set("f", 6);
  assert.deepEqual(evicted, ["c", "d", "b"]);
  assert.deepEqual([c.has("a"), c.has("e"), c.has("f")], [true, true, true]);
});
