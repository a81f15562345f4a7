/**
 * The way in from outside: README's first script — the one a user copies after
 * `deno add jsr:@curvature/curvature` — runs from a temporary directory outside the
 * repository whose import map points the package name (both `jsr:@curvature/curvature` and
 * the bare `@curvature/curvature` that `deno add` maps) at this checkout, as a user's
 * project would resolve it. Also: README's first line is the package description, every
 * relative README link is a file the package publishes, and the publishing workflow runs
 * `deno publish` with provenance.
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const readme = Deno.readTextFileSync(new URL("README.md", root));
const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root)));

/** The fenced code blocks of README.md: language and body, in order. */
function blocks(md: string): { lang: string; body: string }[] {
  return [...md.matchAll(/^```(\S*)[^\n]*\n([\s\S]*?)^```/gm)].map((m) => ({
    lang: m[1],
    body: m[2],
  }));
}

async function runOutside(script: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "curvature-user-" });
  try {
    const mod = new URL("mod.ts", root).href;
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({ imports: { "jsr:@curvature/curvature": mod, "@curvature/curvature": mod } }),
    );
    await Deno.writeTextFile(`${dir}/main.ts`, script);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-env", "main.ts"],
      cwd: dir,
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, `the script failed:\n${new TextDecoder().decode(out.stderr)}`);
    return text;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("README starts with the description, `deno add`, then a complete jsr: script", () => {
  const lines = readme.split("\n");
  assert.match(lines[0], /^# curvature: .{20,}/, "the first line describes the package");
  const code = blocks(readme);
  assert.equal(code[0].body.trim(), "deno add jsr:@curvature/curvature");
  assert.match(code[1].body, /from "jsr:@curvature\/curvature"/);
});

Deno.test("README's first script runs from a directory outside the repository", async () => {
  const script = blocks(readme)[1].body;
  const out = await runOutside(script);
  // the values the README's comments promise
  assert.match(out, /\[ 3, 12, 27 \]/);
  assert.match(out, /\[ 6, 0, 0 \]/);
});

Deno.test("a README block that imports the bare name (what `deno add` maps) runs outside too", async () => {
  const bare = blocks(readme).find((b) =>
    b.lang === "ts" && b.body.includes('from "@curvature/curvature"') && b.body.includes("vmap")
  );
  assert.ok(bare, "a README block imports @curvature/curvature and uses vmap");
  const out = await runOutside(bare.body);
  assert.match(out, /\[ 3, 33 \]/);
});

Deno.test("every relative README link is a file the package publishes", () => {
  const include: string[] = config.publish.include;
  const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1])
    .filter((l) => !/^[a-z]+:/.test(l) && !l.startsWith("#"));
  for (const link of links) {
    const path = link.split("#")[0];
    Deno.statSync(new URL(path, root)); // exists
    assert.ok(
      include.some((p) => path === p || (p.endsWith("/") && path.startsWith(p))),
      `README links ${link}, which publish.include leaves out (dead on the package page)`,
    );
  }
});

Deno.test("the publishing workflow runs deno publish with provenance (OIDC)", () => {
  const wf = Deno.readTextFileSync(new URL(".github/workflows/publish.yml", root));
  assert.match(wf, /id-token:\s*write/);
  assert.match(wf, /contents:\s*read/);
  assert.match(wf, /deno publish/);
});
