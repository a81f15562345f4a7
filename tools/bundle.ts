/**
 * Bundles mod.ts into one ES module for browsers and Node (dist/curvature.js), with esbuild
 * from npm. The target is ES2022, so `using` declarations are lowered to try/finally: Node 22
 * runs the package's CPU path but has no `using` syntax (Chromium and Deno do).
 *
 *   deno run -A tools/bundle.ts [--outfile dist/curvature.js]
 */
import * as esbuild from "npm:esbuild@0.25.5";

const i = Deno.args.indexOf("--outfile");
const outfile = i >= 0 ? Deno.args[i + 1] : "dist/curvature.js";
const root = new URL("..", import.meta.url).pathname;

const result = await esbuild.build({
  entryPoints: [`${root}mod.ts`],
  outfile,
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  sourcemap: "linked",
  logLevel: "warning",
});
await esbuild.stop();
if (result.errors.length > 0) Deno.exit(1);
const bytes = (await Deno.stat(outfile)).size;
console.log(`bundle: ${outfile} (${(bytes / 1024).toFixed(0)} KiB)`);
