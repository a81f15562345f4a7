/**
 * The browser suite: bundled by run.ts and run in headless Chromium, where WebGPU is Dawn
 * (Tint compiles the WGSL) over SwiftShader. Runs on the device as "auto" picks it (CPU-like
 * tuning on SwiftShader) and with the real-GPU tuning forced, against the CPU backend in
 * the same page. Reports through `globalThis.suiteReport` for the runner.
 */
import { device } from "../../mod.ts";
import type { WebGpuBackend } from "../../src/backend/webgpu/webgpu.ts";
import { results, test } from "./harness.ts";
import { shaderTests } from "./shaders.ts";
import { opTests } from "./ops.ts";
import { adTests } from "./ad.ts";
import { solverTests } from "./solvers.ts";

declare global {
  var suiteReport: { passed: number; failed: number; adapter: string; ms: number } | undefined;
}

const only = (new URLSearchParams(location.search).get("only") ?? "").split(",").filter(Boolean);
const want = (part: string) => only.length === 0 || only.includes(part);
const t0 = performance.now();
const cpu = await device({ backend: "cpu" });
const auto = await device({ backend: "webgpu" });
const forced = await device({ backend: "webgpu", tuning: "gpu" });
const gpus: [string, typeof auto][] = [["webgpu", auto], ["webgpu gpu-tuning", forced]];
console.log(`adapter: ${auto.description}; forced: ${forced.description}`);

await test("the auto device is WebGPU and the forced one uses the GPU tuning", () => {
  if (auto.kind !== "webgpu" || forced.kind !== "webgpu") throw new Error("no WebGPU device");
  const rt = (d: typeof auto) => (d.backend as WebGpuBackend).rt;
  if (!rt(auto).cpuLike) throw new Error("SwiftShader was not recognised as CPU-like");
  if (rt(forced).cpuLike) throw new Error("tuning: gpu did not take effect");
});
if (want("shaders")) await shaderTests((auto.backend as WebGpuBackend).rt.device);
if (want("ops")) await opTests(gpus, cpu);
if (want("ad")) await adTests(gpus, cpu);
if (want("solvers")) await solverTests(gpus, cpu);

const failed = results.filter((r) => !r.ok).length;
globalThis.suiteReport = {
  passed: results.length - failed,
  failed,
  adapter: auto.description,
  ms: performance.now() - t0,
};
