/**
 * Library code uses web-standard APIs only (issue 8, defect 11): no `Deno.*` under src/, so
 * the package runs in browsers and on Node's CPU path, and needs no permission flags (an
 * environment read made the demo fail without `--allow-env`).
 */
import assert from "node:assert/strict";

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

Deno.test("library code under src/ and mod.ts uses no Deno.* API", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const offenders: string[] = [];
  let files = 0;
  for (const f of [`${root}mod.ts`, ...(await Array.fromAsync(sources(`${root}src`)))]) {
    files++;
    const lines = (await Deno.readTextFile(f)).split("\n");
    lines.forEach((l, i) => {
      // code only: a string naming a registry symbol (`Symbol.for("Deno.customInspect")`, which
      // browsers simply ignore) or a comment is no use of the Deno namespace
      const code = l.replace(/"[^"]*"|'[^']*'/g, '""').replace(/\/\/.*$/, "");
      if (/\bDeno\s*\./.test(code)) {
        offenders.push(`${f.slice(root.length)}:${i + 1}: ${l.trim()}`);
      }
    });
  }
  assert.ok(files > 50, `found only ${files} source files: is the path right?`);
  assert.deepEqual(offenders, [], `Deno.* in library code:\n${offenders.join("\n")}`);
});
