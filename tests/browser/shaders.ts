/**
 * Every WGSL kernel compiled by the browser's WebGPU (Dawn/Tint in Chromium): no errors
 * and no warnings in getCompilationInfo(), and a compute pipeline made with the default
 * override constants inside a validation error scope.
 */
import { SHADERS } from "../../src/shaders.generated.ts";
import { check, test } from "./harness.ts";

export async function shaderTests(gpu: GPUDevice): Promise<void> {
  for (const name of Object.keys(SHADERS) as (keyof typeof SHADERS)[]) {
    await test(`shader ${name}.wgsl compiles on Tint without errors or warnings`, async () => {
      gpu.pushErrorScope("validation");
      const module = gpu.createShaderModule({ label: name, code: SHADERS[name] });
      const info = await module.getCompilationInfo();
      const msgs = info.messages.map((m) =>
        `${m.type} ${name}:${m.lineNum}:${m.linePos}: ${m.message}`
      );
      const moduleErr = await gpu.popErrorScope();
      gpu.pushErrorScope("validation");
      gpu.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
      const pipeErr = await gpu.popErrorScope();
      if (moduleErr) msgs.push(`createShaderModule: ${moduleErr.message}`);
      if (pipeErr) msgs.push(`createComputePipeline: ${pipeErr.message}`);
      check(msgs.length === 0, msgs.join("\n"));
    });
  }
}
