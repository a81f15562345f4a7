/**
 * The WebGPU backend's own rules, each checked against plain-JS values or the CPU backend:
 * grids over 65,535 workgroups fold into 2-D; every kernel family run at > 65,536 elements
 * (lavapipe silently stops an invocation's loops after 65,535 iterations) agrees with the
 * CPU backend; f64 is refused; work is queued and batched (no read-back until data()); and
 * the scatter-add index cache stays bounded.
 *
 * Tolerances against the CPU f32 backend: movement, copies, fills, casts, comparisons,
 * where, a single add/sub/mul, max/min and the uniform/Rademacher draws are exact (WGSL requires
 * + − × to be correctly rounded; the rest moves bits). Division is 2.5 ULP in WGSL, so
 * rtol 4 ULP. Transcendentals get rtol 1e-5 plus atol 1e-6 (WGSL allows e.g. sin an
 * absolute 2^-11 error, but lavapipe does far better; a wrong formula is off by much more).
 * Sums are compared relative to Σ|x|: a tree of depth d over n terms errs by at most
 * (d + chunk)·u·Σ|x| with u = 2^-24.
 */
import assert from "node:assert/strict";
import {
  arange,
  astype,
  broadcastTo,
  concat,
  type Device,
  exp,
  gather,
  greater,
  matmul,
  max,
  maximum,
  min,
  normal,
  pad,
  rademacher,
  scatterAdd,
  slice,
  sum,
  type Tensor,
  tensor,
  to,
  transpose,
  uniform,
  where,
  zeros,
} from "../mod.ts";
import type { WebGpuBackend } from "../src/backend/webgpu/webgpu.ts";
import { assertClose, cpu, gpuDev, randArray, rng } from "./helpers.ts";

const U = 2 ** -24;

/** Deno.test on the GPU only; registered as ignored (loudly, by helpers.ts) without one. */
function gpuTest(name: string, fn: (g: Device) => Promise<void> | void): void {
  Deno.test({ name: `${name} [webgpu]`, ignore: !gpuDev, fn: () => fn(gpuDev!) });
}

function on(dev: Device, data: ArrayLike<number>, shape: readonly number[]): Tensor {
  return tensor(Float64Array.from(data), { shape, dtype: "f32", device: dev });
}

/** Runs `f` on the CPU (f32) and the GPU with the same inputs and compares the results. */
async function agree(
  g: Device,
  what: string,
  inputs: { data: ArrayLike<number>; shape: number[] }[],
  f: (...xs: Tensor[]) => Tensor,
  opts: { rtol?: number; atol?: number } = { rtol: 0, atol: 0 },
): Promise<void> {
  const xc = inputs.map((i) => on(cpu, i.data, i.shape));
  const xg = inputs.map((i) => on(g, i.data, i.shape));
  const yc = f(...xc), yg = f(...xg);
  assert.deepEqual([...yg.shape], [...yc.shape], `${what}: shape`);
  const [dc, dg] = [await yc.data(), await yg.data()];
  assertClose(dg, dc, { ...opts, msg: `${what} (GPU vs CPU)` });
  for (const t of [...xc, ...xg, yc, yg]) t.dispose();
}

// ---------- 2-D grids ----------

gpuTest("elementwise on 20,000,000 elements folds into a 2-D grid", async (g) => {
  const n = 20_000_000; // 78,125 workgroups of 256
  const host = new Float32Array(n);
  for (let i = 0; i < n; i++) host[i] = i % 1000;
  host[n - 1] = 4321;
  const x = tensor(host, { device: g });
  const y = x.mul(2).add(1);
  const d = await y.data();
  assert.equal(d.length, n);
  for (const i of [0, 1, 255, 256, 65535 * 256 - 1, 65535 * 256, n / 2, n - 2]) {
    assert.equal(d[i], 2 * (i % 1000) + 1, `entry ${i}`);
  }
  assert.equal(d[n - 1], 2 * 4321 + 1, "last entry");
  let bad = -1;
  for (let i = 0; i < n - 1 && bad < 0; i++) if (d[i] !== 2 * (i % 1000) + 1) bad = i;
  assert.equal(bad, -1, `first wrong entry ${bad}`);
  x.dispose();
  y.dispose();
});

gpuTest("iota, fill and strided copy on 20,000,000 elements fold into 2-D", async (g) => {
  const n = 20_000_000;
  const r = arange(n, undefined, 1, { device: g });
  const d = await r.data();
  // i < 2^24 is exact in f32; above, f32(i) is within one spacing (2) of i
  for (const i of [0, 1, 16_777_215, 16_777_216 - 1]) assert.equal(d[i], i, `arange entry ${i}`);
  for (const i of [16_777_217, n / 2 + 1, n - 1]) {
    assert.ok(Math.abs(d[i] - i) <= 2, `arange entry ${i}: ${d[i]}`);
  }
  assert.equal(d[n / 2], n / 2);
  r.dispose();
  const f = zeros([n], { device: g }).add(3);
  const fd = await f.data();
  assert.ok(fd[0] === 3 && fd[n / 2] === 3 && fd[n - 1] === 3, "fill + add at first/middle/last");
  f.dispose();
  // transpose of [4000, 5000]: out[j, i] = x[i, j] = i·5000 + j (as f32)
  const host = new Float32Array(n);
  for (let i = 0; i < n; i++) host[i] = i % 4093;
  const x = tensor(host, { shape: [4000, 5000], device: g });
  const t = transpose(x);
  const td = await t.data();
  for (const [j, i] of [[0, 0], [0, 3999], [2500, 2000], [4999, 0], [4999, 3999], [1234, 3210]]) {
    assert.equal(td[j * 4000 + i], (i * 5000 + j) % 4093, `transpose at [${j}, ${i}]`);
  }
  x.dispose();
  t.dispose();
});

// ---------- every kernel family at > 65,536 elements agrees with the CPU ----------

const N = 70_001;

gpuTest("unary kernels at 70,001 elements agree with the CPU", async (g) => {
  const x = randArray(N, 1, -3, 3), pos = randArray(N, 2, 0.01, 5);
  const ops: [string, (t: Tensor) => Tensor, Float64Array][] = [
    ["neg", (t) => t.neg(), x],
    ["abs", (t) => t.abs(), x],
    ["square", (t) => t.square(), x],
    ["exp", (t) => t.exp(), x],
    ["log", (t) => t.log(), pos],
    ["sqrt", (t) => t.sqrt(), pos],
    ["sin", (t) => t.sin(), x],
    ["cos", (t) => t.cos(), x],
    ["tanh", (t) => t.tanh(), x],
    ["sigmoid", (t) => t.sigmoid(), x],
    ["reciprocal", (t) => t.reciprocal(), pos],
  ];
  for (const [name, f, data] of ops) {
    const exact = ["neg", "abs", "square"].includes(name);
    await agree(
      g,
      name,
      [{ data, shape: [N] }],
      f,
      exact ? { rtol: 0 } : { rtol: 1e-5, atol: 1e-6 },
    );
  }
});

gpuTest(
  "binary and where kernels (all four modes) at 70,001 elements agree with the CPU",
  async (g) => {
    const a = randArray(N, 3), b = randArray(N, 4, 0.5, 2);
    const same = [{ data: a, shape: [N] }, { data: b, shape: [N] }];
    await agree(g, "add", same, (x, y) => x.add(y));
    await agree(g, "sub", same, (x, y) => x.sub(y));
    await agree(g, "mul", same, (x, y) => x.mul(y));
    await agree(g, "div", same, (x, y) => x.div(y), { rtol: 4 * U });
    await agree(g, "maximum", same, (x, y) => maximum(x, y));
    await agree(g, "greater", same, (x, y) => greater(x, y));
    // two fused ops: the GPU rounds 3x before subtracting, the CPU f32 rounds once per stored
    // value, so they differ by up to one rounding of 3x (|x| ≤ 1): 3 · 2^-24 absolute
    await agree(g, "scalar b", same, (x) => x.mul(3).sub(0.5), { rtol: U, atol: 3 * U });
    await agree(
      g,
      "scalar a",
      [{ data: b, shape: [N] }],
      (y) => tensor(2, { device: y.device }).div(y),
      {
        rtol: 4 * U,
      },
    );
    // broadcasting (mode 3): [233, 1] with [1, 301] -> 70,133
    await agree(
      g,
      "broadcast add",
      [{ data: a.subarray(0, 233), shape: [233, 1] }, {
        data: b.subarray(0, 301),
        shape: [1, 301],
      }],
      (x, y) => x.add(y),
    );
    await agree(
      g,
      "where",
      [{ data: a, shape: [N] }, { data: b, shape: [N] }],
      (x, y) => where(greater(x, 0), x, y),
    );
  },
);

gpuTest("reductions (tree and strided) over > 65,536 elements agree with the CPU", async (g) => {
  const a = randArray(300_001, 5);
  let mag = 0;
  for (const v of a) mag += Math.abs(v);
  // whole-array sum: tree passes of 1,024 (depth ≤ 10 per pass, 2 passes) — bound 40·u·Σ|x|
  await agree(g, "sum all", [{ data: a, shape: [300_001] }], (x) => sum(x), { atol: 40 * U * mag });
  await agree(g, "max all", [{ data: a, shape: [300_001] }], (x) => max(x));
  await agree(g, "min all", [{ data: a, shape: [300_001] }], (x) => min(x));
  // over axis 0 of [1000, 300] (strided chunks of 64, then 16): columns of 1,000 terms
  const b = a.subarray(0, 300_000);
  await agree(g, "sum axis 0", [{ data: b, shape: [1000, 300] }], (x) => sum(x, 0), {
    atol: 100 * U * 1000,
  });
  await agree(g, "max axis 0", [{ data: b, shape: [1000, 300] }], (x) => max(x, 0));
  // over the middle and the first+last axes (a permuted copy first)
  await agree(g, "sum axes 0,2", [{ data: b, shape: [100, 30, 100] }], (x) => sum(x, [0, 2]), {
    atol: 100 * U * 10_000,
  });
  await agree(g, "min axis 1", [{ data: b, shape: [100, 30, 100] }], (x) => min(x, 1));
  // one row of 300,000 — a single invocation looping over it would stop at 65,535
  const ones = new Float64Array(300_000).fill(1);
  const s = sum(on(g, ones, [300_000]));
  assert.equal(await s.item(), 300_000, "sum of 300,000 ones is exact");
  s.dispose();
});

gpuTest(
  "matmul, movement, gather and scatter kernels at > 65,536 agree with the CPU",
  async (g) => {
    const a = randArray(260 * 260, 6), b = randArray(260 * 260, 7);
    await agree(
      g,
      "matmul 260^3",
      [{ data: a, shape: [260, 260] }, { data: b, shape: [260, 260] }],
      (x, y) => matmul(x, y),
      { atol: 4 * Math.sqrt(260) * U * 260, rtol: 0 },
    );
    const big = randArray(300 * 301, 8);
    const m = [{ data: big, shape: [300, 301] }];
    await agree(g, "transpose", m, (x) => transpose(x));
    await agree(g, "slice", m, (x) => slice(x, [-1, 1], [-Infinity, 300], [-1, 2]));
    await agree(g, "pad", m, (x) => pad(x, [[2, 1], [0, 5]], -7));
    await agree(g, "concat", m, (x) => concat([x, x, x], 1));
    await agree(
      g,
      "broadcastTo",
      [{ data: big.subarray(0, 301), shape: [301] }],
      (x) => broadcastTo(x, [300, 301]),
    );
    const r = rng(9);
    const idx = Array.from({ length: 90_000 }, () => Math.floor(r() * 600) - 300);
    await agree(g, "gather", m, (x) =>
      gather(
        x,
        idx.slice(0, 80_000).map((v) => v % 300),
        0,
      ).sum(1), {
      atol: 1e-3,
    });
    await agree(g, "gather axis 1", m, (x) =>
      gather(
        x,
        idx.map((v) => v % 301),
        1,
      ));
    // scatter-add of integers is exact in any order
    const ints = Float64Array.from({ length: 90_000 }, () => Math.floor(r() * 9) - 4);
    await agree(
      g,
      "scatterAdd",
      [{ data: ints, shape: [90_000] }],
      (u) => scatterAdd(u, idx, 0, [600]),
    );
    // copy and cast
    await agree(g, "to() and back", m, (x) => x.add(0));
    const wide = randArray(N, 10, -1e5, 1e5);
    await agree(
      g,
      "cast f32 -> i32 -> f32",
      [{ data: wide, shape: [N] }],
      (x) => astype(astype(x, "i32"), "f32"),
    );
  },
);

gpuTest("random draws at 70,001 match the CPU (uniform, Rademacher bit for bit)", async (g) => {
  for (
    const [name, f] of [["uniform", uniform], ["rademacher", rademacher], [
      "normal",
      normal,
    ]] as const
  ) {
    const c = f([N], { seed: 1234, offset: 5, device: cpu });
    const w = f([N], { seed: 1234, offset: 5, device: g });
    const opts = name === "normal" ? { rtol: 1e-5, atol: 1e-6 } : { rtol: 0, atol: 0 };
    assertClose(await w.data(), await c.data(), { ...opts, msg: name });
    c.dispose();
    w.dispose();
  }
});

// ---------- f64, batching, caches ----------

gpuTest("f64 on WebGPU is an error, never a silent downcast", (g) => {
  assert.throws(() => zeros([3], { dtype: "f64", device: g }), {
    name: "TypeError",
    message: /WGSL/,
  });
  const c64 = tensor([1, 2, 3], { dtype: "f64", device: cpu });
  assert.throws(() => to(c64, g), { name: "TypeError", message: /f64/ });
  c64.dispose();
});

gpuTest(
  "queued work: 100 elementwise ops, no read-back and few submits before data()",
  async (g) => {
    await g.sync();
    const s0 = g.stats;
    const x = tensor(new Float32Array(100_000).fill(1), { device: g });
    let y = x;
    for (let i = 0; i < 100; i++) {
      const next = y.add(1);
      if (y !== x) y.dispose();
      y = exp(next.mul(0)).mul(next); // exp(0)·next = next: four kernels per step
      next.dispose();
    }
    const s1 = g.stats;
    assert.equal(s1.readbacks, s0.readbacks, "no read-back while queuing");
    assert.ok(s1.submits - s0.submits <= 3, `at most a few submits (${s1.submits - s0.submits})`);
    const d = await y.data();
    const s2 = g.stats;
    assert.equal(s2.readbacks - s0.readbacks, 1, "exactly one read-back");
    assert.ok(s2.submits - s0.submits <= 4, `submits ${s2.submits - s0.submits}`);
    assert.ok(s2.dispatches > s0.dispatches, "the work was dispatched");
    assert.ok(s2.dispatches - s0.dispatches <= 410, `dispatches ${s2.dispatches - s0.dispatches}`);
    assert.equal(d[0], 101);
    assert.equal(d[99_999], 101);
    x.dispose();
    y.dispose();
  },
);

gpuTest("scatter-add index caches stay bounded over many fresh index lists", async (g) => {
  const pool = (g.backend as WebGpuBackend).rt.pool;
  const u = tensor(new Float32Array(20_000).fill(1), { device: g });
  const run = async () => {
    for (let i = 0; i < 40; i++) {
      const idx = Array.from({ length: 20_000 }, (_, j) => (j * (i + 1)) % 500);
      scatterAdd(u, idx, 0, [500]).dispose();
    }
    await g.sync();
  };
  await run();
  const after1 = pool.deviceBytes;
  await run();
  await run();
  // each index list's CSR holds ~82 KB; 80 more lists would add > 6 MB if they were kept
  assert.ok(
    pool.deviceBytes - after1 < 1_000_000,
    `device memory grew by ${pool.deviceBytes - after1} bytes`,
  );
  const y = scatterAdd(u, Array.from({ length: 20_000 }, (_, j) => j % 500), 0, [500]);
  assert.ok((await y.data()).every((v) => v === 40), "values still right");
  u.dispose();
  y.dispose();
});
