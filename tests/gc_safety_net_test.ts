/**
 * The FinalizationRegistry safety net (issue 8, defect 7): tensors a loop forgot to
 * dispose are freed once the garbage collector reclaims them, and `memory()` counts them.
 * Runs a child process with `--expose-gc` so the collection can be forced.
 */
import assert from "node:assert/strict";
import { gpuDev } from "./helpers.ts";

async function run(backend: string, fixture = "forgotten_tensors.ts") {
  const script = new URL(`./fixtures/${fixture}`, import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", script, backend],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(text.trim().split("\n").pop()!);
}

for (const backend of ["cpu", "webgpu"]) {
  Deno.test({
    name: `safety net: forgotten tensors are freed when collected [${backend}]`,
    ignore: backend === "webgpu" && !gpuDev,
    fn: async () => {
      const { before, after, collected } = await run(backend);
      // the loop forgets 3 tensors per iteration (g, g², Σg²) and x: without the net they
      // stay live for good; with it, the collector may free some while the loop still runs
      assert.equal(after.tensors - before.tensors + after.reclaimed, 301);
      assert.equal(collected.tensors, before.tensors, "the collector's tensors were freed");
      assert.equal(collected.bytes, before.bytes, "and their bytes");
      assert.equal(collected.reclaimed, 301, "memory().reclaimed counts them");
    },
  });
}

for (const backend of ["cpu", "webgpu"]) {
  Deno.test({
    name: `safety net: tensors that leave tidy scopes alive are freed when collected [${backend}]`,
    ignore: backend === "webgpu" && !gpuDev,
    fn: async () => {
      // made inside scopes, registered only when they leave the last one (src/tensor.ts)
      const { before, after, collected } = await run(backend, "escaped_tensors.ts");
      assert.ok(after.tensors + after.reclaimed - before.tensors >= 80, "they were left alive");
      assert.equal(collected.tensors, before.tensors, "the collector's tensors were freed");
      assert.equal(collected.bytes, before.bytes, "and their bytes");
      assert.equal(
        collected.reclaimed - before.reclaimed,
        after.tensors + after.reclaimed - before.tensors - before.reclaimed,
        "memory().reclaimed counts every one",
      );
    },
  });
}
