// One of six test modules, each in its own isolate with its own WebGPU device, like the doc
// tests (see ../exit_heap.ts --what modules). CURVATURE_MOD names the checkout's mod.ts.
const lib = await import(
  Deno.env.get("CURVATURE_MOD") ?? "../../mod.ts"
) as typeof import("../../mod.ts");

Deno.test("a WebGPU gradient", async () => {
  const dev = await lib.device({ backend: "webgpu" });
  const x = lib.tensor([1, 2, 3], { device: dev });
  const g = lib.grad((v: typeof x) => v.pow(3).sum())(x) as typeof x;
  const s = await g.sum().item();
  if (s !== 42) throw new Error(`sum of 3x² is ${s}, expected 42`);
});
