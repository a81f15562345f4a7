/**
 * Elementwise, reduction, broadcast and matmul throughput at n = 10^6 (f32) on each backend,
 * beside a plain copy on the same device as the bandwidth yardstick (a copy kernel on
 * WebGPU; TypedArray.set and a hand-written JS loop on the CPU).
 *
 *   deno bench -A bench/ops_bench.ts          # the deno bench table
 *   deno run -A bench/ops_bench.ts --report   # bandwidth as a fraction of the copy
 *
 * GPU timings await completed work (`Tensor.ready()`); R ops are queued per sync so the
 * fixed submit-and-wait cost (~13 ms on lavapipe) does not swamp a short kernel.
 */
import {
  add,
  cumsum,
  type Device,
  device,
  exp,
  matmul,
  prod,
  sum,
  type Tensor,
  uniform,
} from "../mod.ts";

const N = 1_000_000;
const R = 10;

interface Case {
  name: string;
  /** Bytes a kernel reads and writes (4 per f32 element). */
  bytes: number;
  run: (d: Device) => () => Tensor;
}

const inputs = new Map<
  Device,
  { x: Tensor; y: Tensor; m: Tensor; row: Tensor; a: Tensor; b: Tensor }
>();
function data(d: Device) {
  let v = inputs.get(d);
  if (!v) {
    v = {
      x: uniform([N], { seed: 1, device: d }),
      y: uniform([N], { seed: 2, device: d }),
      m: uniform([1000, 1000], { seed: 3, device: d }),
      row: uniform([1000], { seed: 4, device: d }),
      a: uniform([512, 512], { seed: 5, device: d }),
      b: uniform([512, 512], { seed: 6, device: d }),
    };
    inputs.set(d, v);
  }
  return v;
}

const CASES: Case[] = [
  { name: "copy (yardstick)", bytes: 8 * N, run: (d) => () => copyOf(d, data(d).x) },
  { name: "add", bytes: 12 * N, run: (d) => () => add(data(d).x, data(d).y) },
  { name: "exp", bytes: 8 * N, run: (d) => () => exp(data(d).x) },
  { name: "sum", bytes: 4 * N, run: (d) => () => sum(data(d).x) },
  { name: "cumsum", bytes: 8 * N, run: (d) => () => cumsum(data(d).x) },
  { name: "prod (halving tree)", bytes: 4 * N, run: (d) => () => prod(data(d).x) },
  {
    name: "broadcast add [1000,1000]+[1000]",
    bytes: 8 * N,
    run: (d) => () => add(data(d).m, data(d).row),
  },
  {
    name: "matmul 512x512",
    bytes: 3 * 512 * 512 * 4,
    run: (d) => () => matmul(data(d).a, data(d).b),
  },
];

/** A real copy kernel on the device (the bandwidth yardstick). */
function copyOf(d: Device, x: Tensor): Tensor {
  const c = x._concrete();
  // deno-lint-ignore no-explicit-any
  const T = c.constructor as any;
  return T._fromStorage(d.backend.copy(c.dtype, c._ref!.storage, c.size), c.shape, c.dtype, d);
}

async function timeOnce(d: Device, f: () => Tensor): Promise<number> {
  const t0 = performance.now();
  const outs: Tensor[] = [];
  for (let i = 0; i < R; i++) outs.push(f());
  for (const o of outs) d.backend.materialize(o._concrete()._ref!.storage);
  await outs[outs.length - 1].ready();
  const ms = (performance.now() - t0) / R;
  for (const o of outs) o.dispose();
  return ms;
}

const cpuDev = await device({ backend: "cpu" });
const gpu = await device({ backend: "auto" });
const devices = gpu.kind === "webgpu" ? [cpuDev, gpu] : [cpuDev];

if (Deno.args.includes("--report")) {
  const rows: string[] = [];
  for (const d of devices) {
    const best = new Map<string, number>();
    for (const c of CASES) {
      const f = c.run(d);
      await timeOnce(d, f); // warm up (pipeline compilation, JIT)
      let m = Infinity;
      for (let k = 0; k < 7; k++) m = Math.min(m, await timeOnce(d, f));
      best.set(c.name, m);
    }
    const copyBw = (8 * N) / best.get("copy (yardstick)")!;
    for (const c of CASES) {
      const ms = best.get(c.name)!;
      const bw = c.bytes / ms / 1e6; // GB/s
      rows.push(
        `| ${d.kind} | ${c.name} | ${ms.toFixed(3)} | ${bw.toFixed(2)} | ${
          ((c.bytes / ms) / copyBw * 100).toFixed(0)
        }% |`,
      );
    }
    if (d.kind === "cpu") {
      // the hand-written references on the CPU
      const a = new Float32Array(N).map(Math.random),
        b = new Float32Array(N).map(Math.random),
        o = new Float32Array(N);
      const bench = (g: () => void) => {
        g();
        let m = Infinity;
        for (let k = 0; k < 15; k++) {
          const t0 = performance.now();
          g();
          m = Math.min(m, performance.now() - t0);
        }
        return m;
      };
      const set = bench(() => o.set(a));
      const loopCopy = bench(() => {
        for (let i = 0; i < N; i++) o[i] = a[i];
      });
      const loopAdd = bench(() => {
        for (let i = 0; i < N; i++) o[i] = a[i] + b[i];
      });
      const loopExp = bench(() => {
        for (let i = 0; i < N; i++) o[i] = Math.exp(a[i]);
      });
      rows.push(
        `| cpu | TypedArray.set (yardstick) | ${set.toFixed(3)} | ${
          (8 * N / set / 1e6).toFixed(2)
        } | |`,
      );
      rows.push(
        `| cpu | JS loop copy | ${loopCopy.toFixed(3)} | ${
          (8 * N / loopCopy / 1e6).toFixed(2)
        } | |`,
      );
      rows.push(
        `| cpu | JS loop add | ${loopAdd.toFixed(3)} | ${
          (12 * N / loopAdd / 1e6).toFixed(2)
        } | library add ÷ loop: ${(best.get("add")! / loopAdd).toFixed(2)}× |`,
      );
      rows.push(
        `| cpu | JS loop exp | ${loopExp.toFixed(3)} | ${
          (8 * N / loopExp / 1e6).toFixed(2)
        } | library exp ÷ loop: ${(best.get("exp")! / loopExp).toFixed(2)}× |`,
      );
    }
  }
  console.log(`device: ${devices.map((d) => d.description).join("; ")}`);
  console.log("| backend | op (n = 10^6, f32) | ms | GB/s | of copy |\n|---|---|---|---|---|");
  console.log(rows.join("\n"));
} else {
  for (const d of devices) {
    for (const c of CASES) {
      const f = c.run(d);
      Deno.bench({
        name: `${c.name} [${d.kind}]`,
        group: `ops ${d.kind}`,
        baseline: c.name.startsWith("copy"),
        async fn(b) {
          b.start();
          await timeOnce(d, f);
          b.end();
        },
      });
    }
  }
}
