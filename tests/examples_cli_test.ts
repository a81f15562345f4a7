/**
 * Every example prints its flags on --help and exits 0, and every example that writes a
 * file refuses to overwrite an existing one without --force (before doing any work).
 */
import assert from "node:assert/strict";

const dir = new URL("../examples/", import.meta.url);
/** Modules the examples import, not examples themselves. */
const HELPERS = new Set(["cli.ts", "png.ts", "trajectory_problem.ts"]);
const EXAMPLES = [...Deno.readDirSync(dir)]
  .map((e) => e.name)
  .filter((n) => n.endsWith(".ts") && !HELPERS.has(n))
  .sort();

async function run(name: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(name, dir).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("examples: --help prints the flags and exits; an existing --out is kept without --force", async (t) => {
  assert.ok(EXAMPLES.length >= 8, `found ${EXAMPLES.join(", ")}`);
  for (const name of EXAMPLES) {
    await t.step(name, async () => {
      const help = await run(name, ["--help"]);
      assert.equal(help.code, 0, `${name} --help: ${help.stderr}`);
      assert.match(help.stdout, /--help/, `${name} --help lists its flags`);
      if (!/--out\b/.test(help.stdout)) return;
      assert.match(help.stdout, /--force/, `${name} writes a file, so it takes --force`);
      const tmp = await Deno.makeTempFile({ suffix: ".out" });
      try {
        await Deno.writeTextFile(tmp, "keep me");
        const r = await run(name, ["--out", tmp]);
        assert.notEqual(r.code, 0, `${name} overwrote an existing file`);
        assert.match(r.stderr, /exists; pass --force/);
        assert.equal(await Deno.readTextFile(tmp), "keep me");
      } finally {
        await Deno.remove(tmp);
      }
    });
  }
});

Deno.test("examples' flags: a `--` that `deno task name -- …` passes through is skipped", async () => {
  const { parseFlags } = await import("../examples/cli.ts");
  const spec = {
    points: { default: "8", help: "" },
    force: { default: "false", help: "", switch: true },
  };
  assert.deepEqual(parseFlags("u", spec, ["--", "--points", "16", "--force"]), {
    points: "16",
    force: "true",
  });
  assert.throws(() => parseFlags("u", spec, ["--", "--pionts", "16"]), /unknown flag --pionts/);
});
