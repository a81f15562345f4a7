/**
 * Does Deno's WebGPU itself grow the process's memory per dispatch? A raw loop (no library):
 * 200 submits of 100 dispatches each, with a fresh bind group per dispatch, then per submit
 * one of: a staging read-back (`read`), error scopes and a `writeBuffer` (`scope`), a buffer
 * created, written and destroyed (`newbuf`), or cached bind groups (`cached`). Prints RSS every
 * 50 submits, after a forced GC. Context: bench/RESULTS.md, "Memory per iteration" of the
 * constrained trajectory section (the library's ipm grew RSS by ~8.5 KB per dispatch).
 *
 * `inline` is the cause found: the library's `matmul_regs` kernel at the ipm's shape
 * (4×128 by 128×4), one dispatch per submit, its parameter block bound first as read-only
 * storage (what the runtime does on lavapipe now), then as a uniform buffer (before): RSS and
 * wall time per dispatch of each phase, in one process. On Mesa's lavapipe a uniform that
 * alone decides a loop bound (`p.rank`) makes the driver recompile the shader at every
 * dispatch, and Mesa 22.3 never frees the copies.
 *
 *   deno run -A --v8-flags=--expose-gc bench/webgpu_rss_raw.ts read|scope|newbuf|cached|inline
 */
import { SHADERS } from "../src/shaders.generated.ts";
import { paramsAsStorage } from "../src/backend/webgpu/runtime.ts";

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
const device = await adapter.requestDevice();
const module = device.createShaderModule({
  code: `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&a)) { a[g.x] = a[g.x] + 1.0; }
}`,
});
const pipe = device.createComputePipeline({
  layout: "auto",
  compute: { module, entryPoint: "main" },
});
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const bufs = Array.from({ length: 8 }, () => device.createBuffer({ size: 4096, usage }));
const group = (b: GPUBuffer) =>
  device.createBindGroup({
    layout: pipe.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: b } }],
  });
const cached = bufs.map(group);
const mode = Deno.args[0] ?? "read";
if (mode === "inline") {
  const params = device.createBuffer({
    size: 1024,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  // m, n, k, tilesM, tilesN, splits, kChunk, batch, rank: one 4×4 block, k = 128
  device.queue.writeBuffer(params, 0, new Uint32Array([4, 4, 128, 1, 1, 1, 128, 1, 0]));
  const [a, b, out] = [2048, 2048, 256].map((size) => device.createBuffer({ size, usage }));
  for (const phase of ["storage", "uniform"]) {
    const code = phase === "storage" ? paramsAsStorage(SHADERS.matmul_regs) : SHADERS.matmul_regs;
    const mm = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    });
    const bind = device.createBindGroup({
      layout: mm.getBindGroupLayout(0),
      entries: [params, a, b, out].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const dispatches = 300;
    let rss0 = 0, t0 = 0;
    for (let i = -50; i < dispatches; i++) { // 50 warm-up dispatches
      if (i === 0) {
        await device.queue.onSubmittedWorkDone();
        rss0 = Deno.memoryUsage().rss;
        t0 = performance.now();
      }
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(mm);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(1);
      pass.end();
      device.queue.submit([enc.finish()]);
      if (i % 10 === 0) await device.queue.onSubmittedWorkDone();
    }
    await device.queue.onSubmittedWorkDone();
    const ms = (performance.now() - t0) / dispatches;
    const kb = (Deno.memoryUsage().rss - rss0) / 1024 / dispatches;
    console.log(
      `${phase}: ${kb.toFixed(1)} KB of RSS and ${ms.toFixed(2)} ms per dispatch (${dispatches})`,
    );
  }
  Deno.exit(0);
}
const gc = (globalThis as { gc?: () => void }).gc;
for (let it = 0; it <= 200; it++) {
  if (mode === "scope") {
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    device.queue.writeBuffer(bufs[1], 0, new Float32Array(64));
  }
  if (mode === "newbuf") {
    const b = device.createBuffer({ size: 4096 * (1 + it % 7), usage });
    device.queue.writeBuffer(b, 0, new Float32Array(64));
    b.destroy();
  }
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipe);
  for (let k = 0; k < 100; k++) {
    pass.setBindGroup(0, mode === "cached" ? cached[k % 8] : group(bufs[k % 8]));
    pass.dispatchWorkgroups(16);
  }
  pass.end();
  device.queue.submit([enc.finish()]);
  if (mode === "scope") {
    await device.popErrorScope();
    await device.popErrorScope();
  }
  const staging = device.createBuffer({
    size: 4096,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const copy = device.createCommandEncoder();
  copy.copyBufferToBuffer(bufs[0], 0, staging, 0, 4096);
  device.queue.submit([copy.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  staging.destroy();
  gc?.();
  if (it % 50 === 0) {
    console.log(mode, it * 100, "dispatches", (Deno.memoryUsage().rss / 2 ** 20).toFixed(1), "MB");
  }
}
