/**
 * Does Deno's WebGPU itself grow the process's memory per dispatch? A raw loop (no library):
 * 200 submits of 100 dispatches each, with a fresh bind group per dispatch, then per submit
 * one of: a staging read-back (`read`), error scopes and a `writeBuffer` (`scope`), a buffer
 * created, written and destroyed (`newbuf`), or cached bind groups (`cached`). Prints RSS every
 * 50 submits, after a forced GC. Context: bench/RESULTS.md, "Memory per iteration" of the
 * constrained trajectory section (the library's ipm grows RSS by ~8.5 KB per dispatch).
 *
 *   deno run -A --v8-flags=--expose-gc bench/webgpu_rss_raw.ts read|scope|newbuf|cached
 */
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
