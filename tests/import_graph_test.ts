/**
 * What importing the library loads: the modules reached from mod.ts by static imports. The
 * WebGPU backend (with its WGSL sources) loads when `device()` first asks for WebGPU, and
 * each `minimize` method at its first call; a static import of one of them from the rest
 * of the library would make every import (and every CPU-only program) load, parse and
 * evaluate it again. The graph is Deno's own (`deno info --json`), not the code's idea of it.
 */
import assert from "node:assert/strict";

interface Dep {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface Graph {
  roots: string[];
  modules: { specifier: string; dependencies?: Dep[] }[];
}

const root = new URL("../", import.meta.url);

async function moduleGraph(): Promise<Graph> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "mod.ts"],
    cwd: root,
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Paths (relative to the repository) of the modules reached from mod.ts; `dynamic` follows import() too. */
function reached(g: Graph, dynamic: boolean): Set<string> {
  const deps = new Map(g.modules.map((m) => [m.specifier, m.dependencies ?? []]));
  const seen = new Set<string>();
  const stack = [...g.roots];
  while (stack.length > 0) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of deps.get(s) ?? []) {
      if (d.code && (dynamic || !d.isDynamic)) stack.push(d.code.specifier);
    }
  }
  return new Set([...seen].map((s) => s.slice(root.href.length)));
}

/** Modules that only a first use may load. */
const deferred = (path: string) =>
  (path.startsWith("src/backend/webgpu/") && path !== "src/backend/webgpu/band_limits.ts") ||
  path === "src/shaders.generated.ts" || path.startsWith("src/optim/ipm/") ||
  /^src\/optim\/(newton_cg|trust_ncg|trust_exact|newton_banded|newton_sparse|adahessian|first_order)\.ts$/
    .test(path);

Deno.test("import graph: WebGPU and minimize's methods load on first use, not at import", async () => {
  const g = await moduleGraph();
  const all = reached(g, true);
  const eager = reached(g, false);
  // the deferred modules are in the package, reached through import()
  for (
    const p of [
      "src/backend/webgpu/webgpu.ts",
      "src/shaders.generated.ts",
      "src/optim/ipm/ipm.ts",
      "src/optim/newton_banded.ts",
    ]
  ) {
    assert.ok(all.has(p), `${p} is not in the module graph at all`);
    assert.ok(!eager.has(p), `${p} is loaded by importing mod.ts`);
  }
  const loaded = [...eager].filter(deferred);
  assert.deepEqual(loaded, [], `importing mod.ts loads ${loaded.join(", ")}`);
  assert.ok(eager.has("src/optim/minimize.ts") && eager.has("src/device.ts"));
});
