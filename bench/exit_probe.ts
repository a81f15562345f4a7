/**
 * A short WebGPU session that then exits, for counting heap corruption at process exit
 * (see exit_heap.ts). Usage: `deno run -A bench/exit_probe.ts [path/to/mod.ts]`; the module
 * path lets one runner measure an older checkout beside this one.
 */
const modPath = Deno.args[0] ?? new URL("../mod.ts", import.meta.url).href;
const lib = await import(
  modPath.startsWith("file:") ? modPath : new URL(modPath, `file://${Deno.cwd()}/`).href
) as typeof import("../mod.ts");

const dev = await lib.device({ backend: "webgpu" });
const x = lib.linspace(-1, 1, 4096, { device: dev });
const f = (v: typeof x) => lib.sum(lib.mul(lib.sin(v), lib.exp(v)));
const g = lib.grad(f)(x);
const h = lib.hvp(f, x, lib.ones([4096], { device: dev }));
const a = lib.reshape(lib.slice(x, [0], [1024]), [32, 32]);
const m = lib.matmul(a, a);
const total = await lib.sum(g).item() + await lib.sum(h).item() + await lib.sum(m).item();
if (!Number.isFinite(total)) throw new Error(`exit_probe: non-finite result ${total}`);
console.log(`exit_probe: ok ${total.toFixed(3)}`);
