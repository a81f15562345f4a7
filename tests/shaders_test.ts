/**
 * Every WGSL kernel compiles on the WebGPU device with no errors and makes a compute
 * pipeline with its default override constants inside a validation error scope.
 *
 * Without an adapter these tests are skipped loudly, except with CURVATURE_REQUIRE_GPU=1
 * (CI), where importing ./helpers.ts throws, so this file fails instead of skipping.
 */
import { equal, ok } from "node:assert/strict";
import { SHADERS } from "../src/shaders.generated.ts";
import { WebGpuBackend } from "../src/backend/webgpu/webgpu.ts";
import { gpuDev, REQUIRE_GPU } from "./helpers.ts";

const NAMES = Object.keys(SHADERS) as (keyof typeof SHADERS)[];

function gpuDevice(): GPUDevice {
  const backend = gpuDev!.backend;
  ok(backend instanceof WebGpuBackend, "the WebGPU device's backend is a WebGpuBackend");
  return backend.rt.device;
}

/** Compiles `code` and builds its pipeline; returns every error message seen. */
async function compile(device: GPUDevice, label: string, code: string): Promise<string[]> {
  const errors: string[] = [];
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ label, code });
  const info = await module.getCompilationInfo();
  for (const m of info.messages) {
    if (m.type === "error") errors.push(`${label}:${m.lineNum}:${m.linePos}: ${m.message}`);
  }
  const moduleErr = await device.popErrorScope();
  if (moduleErr) errors.push(`${label}: createShaderModule: ${moduleErr.message}`);
  device.pushErrorScope("validation");
  device.createComputePipeline({
    label: `shaders_test ${label}`,
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const pipeErr = await device.popErrorScope();
  if (pipeErr) errors.push(`${label}: createComputePipeline: ${pipeErr.message}`);
  return errors;
}

Deno.test("a WebGPU adapter is present whenever CURVATURE_REQUIRE_GPU=1", () => {
  // (helpers.ts already throws at import in that case; this states the rule once more)
  if (REQUIRE_GPU) ok(gpuDev, "CURVATURE_REQUIRE_GPU=1 but no WebGPU adapter");
});

Deno.test("SHADERS embeds every kernel file of shaders/, and only include-only files are left out", () => {
  const dir = new URL("../shaders/", import.meta.url);
  const files = new Map<string, string>();
  for (const e of Deno.readDirSync(dir)) {
    if (e.isFile && e.name.endsWith(".wgsl")) {
      files.set(e.name.slice(0, -5), Deno.readTextFileSync(new URL(e.name, dir)));
    }
  }
  const included = new Set<string>();
  for (const text of files.values()) {
    for (const m of text.matchAll(/^\/\/!include (\S+)\.wgsl\s*$/gm)) included.add(m[1]);
  }
  for (const [name, text] of files) {
    if (/@compute\b/.test(text)) {
      ok(
        NAMES.includes(name as keyof typeof SHADERS),
        `${name}.wgsl is a kernel missing from SHADERS (run \`deno task shaders\`)`,
      );
    } else {
      ok(included.has(name), `${name}.wgsl has no entry point and is included by no shader`);
      ok(
        !NAMES.includes(name as keyof typeof SHADERS),
        `${name}.wgsl is include-only but in SHADERS`,
      );
    }
  }
  for (const n of NAMES) {
    ok(files.has(n), `SHADERS has ${n} but shaders/${n}.wgsl does not exist`);
    ok(!/^\/\/!include /m.test(SHADERS[n]), `${n}: an include was left unexpanded`);
    ok(/@compute\b/.test(SHADERS[n]) && /\bfn main\s*\(/.test(SHADERS[n]), `${n}: no entry point`);
  }
});

Deno.test({
  name: "the compile check catches a broken shader (the checks below can fail)",
  ignore: !gpuDev,
  fn: async () => {
    const device = gpuDevice();
    const parse = await compile(device, "broken-parse", "fn main( {");
    ok(parse.length > 0, "a parse error is reported");
    const types = await compile(
      device,
      "broken-type",
      "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }",
    );
    ok(types.length > 0, "a type error is reported");
    const noEntry = await compile(device, "no-main", "@compute @workgroup_size(1) fn other() {}");
    ok(noEntry.length > 0, "a missing entry point is reported");
    const fine = await compile(device, "fine", "@compute @workgroup_size(1) fn main() {}");
    equal(fine.length, 0, fine.join("\n"));
  },
});

for (const name of NAMES) {
  Deno.test({
    name: `shader ${name}.wgsl compiles without errors and makes a compute pipeline`,
    ignore: !gpuDev,
    fn: async () => {
      const errors = await compile(gpuDevice(), name, SHADERS[name]);
      equal(errors.length, 0, errors.join("\n"));
    },
  });
}
