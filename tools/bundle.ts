/**
 * Bundles mod.ts into one ES module for browsers and Node (dist/curvature.js), with esbuild
 * from npm. The target is ES2022, so `using` declarations are lowered to try/finally: Node 22
 * runs the package's CPU path but has no `using` syntax (Chromium and Deno do).
 *
 *   deno run -A tools/bundle.ts [--outfile dist/curvature.js]
 */
import * as esbuild from "npm:esbuild@0.25.5";

/** Bundles `entry` (a path) and everything it imports into the ES module `outfile`. */
export async function bundle(entry: string, outfile: string): Promise<number> {
  try {
    const result = await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      sourcemap: "linked",
      logLevel: "warning",
    });
    if (result.errors.length > 0) throw new Error(`bundle: ${result.errors.length} errors`);
  } finally {
    await esbuild.stop();
  }
  return (await Deno.stat(outfile)).size;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--outfile");
  const outfile = i >= 0 ? Deno.args[i + 1] : "dist/curvature.js";
  const bytes = await bundle(new URL("../mod.ts", import.meta.url).pathname, outfile);
  console.log(`bundle: ${outfile} (${(bytes / 1024).toFixed(0)} KiB)`);
}
