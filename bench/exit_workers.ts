/**
 * Three Web Workers one after another, each with its own WebGPU device through the library
 * (a short gradient), then exit: the pattern that races process exit against a worker's
 * WebGPU teardown (see exit_heap.ts --what workers). CURVATURE_MOD names the checkout's
 * mod.ts; with CURVATURE_DESTROY=1 each worker destroys its device before it ends (workers
 * get no unload event, so only an explicit destroy() runs there).
 */
const mod = Deno.env.get("CURVATURE_MOD") ?? new URL("../mod.ts", import.meta.url).href;
const destroy = Deno.env.get("CURVATURE_DESTROY") === "1";
const src = `
  const lib = await import(${JSON.stringify(mod)});
  const dev = await lib.device({ backend: "webgpu" });
  const x = lib.linspace(-1, 1, 4096, { device: dev });
  const g = lib.grad((v) => lib.sum(lib.mul(lib.sin(v), lib.exp(v))))(x);
  const s = await lib.sum(g).item();
  if (${destroy}) await dev.destroy();
  postMessage(s);
`;
for (let i = 0; i < 3; i++) {
  const w = new Worker(`data:text/javascript,${encodeURIComponent(src)}`, { type: "module" });
  const v = await new Promise((res, rej) => {
    w.onmessage = (e) => res(e.data);
    w.onerror = (e) => rej(e);
  });
  w.terminate();
  console.log(`worker ${i}: ${v}`);
}
