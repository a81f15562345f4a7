/**
 * The WebGPU backend defers elementwise work and fuses it (src/backend/webgpu/lazy.ts):
 * these tests check that fused results equal the CPU backend's, that fusion caps split
 * big expressions correctly, and that the kernels counted per operation are what the
 * design promises (one kernel for a Rosenbrock gradient or a batched HVP).
 */
import { assertClose, cpu, gpuDev } from "./helpers.ts";
import {
  add,
  concat,
  type Device,
  grad,
  hvp,
  mul,
  pad,
  reshape,
  slice,
  sum,
  type Tensor,
  tensor,
  transpose,
} from "../mod.ts";
import { equal as assertEquals } from "node:assert/strict";

const gpuTest = (name: string, fn: (g: Device) => Promise<void>) =>
  Deno.test({ name: `fusion [webgpu]: ${name}`, ignore: !gpuDev, fn: () => fn(gpuDev!) });

function data(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    a[i] = (s / 2147483648) * 2 - 1;
  }
  return a;
}

/** Runs `f` on both devices and compares (f32 on both: the same inputs, the same maths). */
async function same(f: (d: Device) => Tensor, rtol = 1e-5, atol = 1e-6): Promise<void> {
  const a = f(cpu), b = f(gpuDev!);
  assertClose(await b.data(), await a.data(), { rtol, atol });
  a.dispose();
  b.dispose();
}

const rosen = (n: number) => (x: Tensor) => {
  const a = slice(x, [1], [n]), b = slice(x, [0], [n - 1]);
  return add(mul(b.square().neg().add(a).square(), 100), b.neg().add(1).square()).sum();
};

gpuTest("a chain of 400 ops (beyond the node cap) equals the CPU", async () => {
  await same((d) => {
    let x = tensor(data(70_001, 1), { device: d });
    for (let i = 0; i < 400; i++) {
      x = i % 3 === 0 ? x.mul(0.999) : i % 3 === 1 ? x.add(0.001) : x.sin();
    }
    return x;
  });
});

gpuTest("a DAG with heavy sharing (bounds overcount) stays correct", async () => {
  await same((d) => {
    let x = tensor(data(5_000, 2), { device: d }).mul(0.1);
    for (let i = 0; i < 40; i++) x = x.mul(x).add(x).mul(0.5);
    return x;
  }, 1e-4);
});

gpuTest("more distinct buffers than one kernel binds", async () => {
  // atol: the terms reach 30 and the sum cancels to ~0.1 in places; the GPU rounds after
  // each of the 60 operations (error up to ~60 · 30 · 6e-8 ≈ 1e-4), the CPU once per value
  await same(
    (d) => {
      let acc = tensor(data(1_000, 0), { device: d });
      for (let i = 1; i <= 30; i++) acc = acc.add(tensor(data(1_000, i), { device: d }).mul(i));
      return acc;
    },
    1e-5,
    2e-4,
  );
});

gpuTest("views of pads of views (slice, pad, transpose, broadcast) equal the CPU", async () => {
  await same((d) => {
    const x = reshape(tensor(data(300 * 301, 3), { device: d }), [300, 301]);
    const s = slice(x, [1, -1], [-1, 0], [2, -3]); // [149, 100]
    const p = pad(s.exp(), [[2, 1], [0, 3]], 0.5); // [152, 103]
    const t = transpose(p).mul(tensor(data(152, 4), { device: d })); // [103, 152] · [152]
    return concat([t.sqrt(), t.log1p()], 1);
  });
});

for (const k of [1, 2, 7, 64, 65]) {
  gpuTest(`batched HVP with ${k} probes equals the CPU and is one kernel`, async (g) => {
    const n = 70_003;
    await same(
      (d) =>
        hvp(
          rosen(n),
          tensor(data(n, 5), { device: d }),
          tensor(data(k * n, 6), { device: d, shape: [k, n] }),
        ),
      1e-4,
      1e-3,
    );
    const x = tensor(data(n, 5), { device: g });
    const v = tensor(data(k * n, 6), { device: g, shape: [k, n] });
    await x.data(); // flush the uploads
    const before = g.stats.dispatches;
    const h = hvp(rosen(n), x, v);
    await h.data();
    assertEquals(g.stats.dispatches - before, 1, "one fused kernel for the whole batched HVP");
    h.dispose();
    x.dispose();
    v.dispose();
  });
}

gpuTest("a Rosenbrock gradient is one kernel; the unused forward sum never runs", async (g) => {
  const n = 100_001;
  const x = tensor(data(n, 7), { device: g });
  await x.data();
  const before = g.stats.dispatches;
  const gr = grad(rosen(n))(x);
  await gr.data();
  assertEquals(g.stats.dispatches - before, 1);
  await same((d) => grad(rosen(n))(tensor(data(n, 7), { device: d })), 1e-5, 1e-4);
  gr.dispose();
  x.dispose();
});

gpuTest("sum of a fused expression over a leading axis and a middle axis", async () => {
  await same(
    (d) => {
      const x = reshape(tensor(data(70 * 1001 * 3, 8), { device: d }), [70, 1001, 3]);
      return concat([sum(x.mul(x).exp(), 0).reshape([-1]), sum(x.abs().sqrt(), 1).reshape([-1])]);
    },
    1e-5,
    1e-3,
  );
});
