/**
 * The constrained trajectory demo (`deno task demo -- --constrained`) as a user runs it: a
 * subprocess whose output is checked against what the problem demands (hard constraints met,
 * clearance kept, the iteration table's columns), plus its --help and its refusal to overwrite.
 */
import assert from "node:assert/strict";

const script = new URL("../examples/trajectory.ts", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: res.code, out: dec.decode(res.stdout) + dec.decode(res.stderr) };
}

Deno.test("constrained demo: hard constraints met, clearance kept, violation and complementarity reported", async () => {
  const dir = await Deno.makeTempDir();
  const svgPath = `${dir}/c.svg`;
  try {
    const { code, out } = await run([
      "--constrained",
      "--points",
      "64",
      "--weights",
      "ipopt",
      "--backend",
      "cpu",
      "--out",
      svgPath,
    ]);
    assert.equal(code, 0, out);
    assert.match(out, /violation\s+complement\.\s+KKT error/);
    assert.match(out, /\nconverged: KKT error below gtol: \d+ interior-point iterations/, out);
    const viol = Number(out.match(/violation (\S+), KKT error/)?.[1]);
    assert.ok(viol <= 1e-8, `violation ${viol}`);
    // every point keeps the margin 0.02 from the obstacles (to the solver's tolerance)
    const clear = Number(out.match(/closest approach to an obstacle edge: (-?[\d.]+)/)?.[1]);
    assert.ok(clear >= 0.02 - 1e-6, `clearance ${clear}`);
    const svg = await Deno.readTextFile(svgPath);
    assert.match(svg, /stroke-dasharray="3 3"/, "the clearance circles");
    // a second run must not overwrite the picture silently
    const again = await run([
      "--constrained",
      "--points",
      "8",
      "--backend",
      "cpu",
      "--out",
      svgPath,
    ]);
    assert.notEqual(again.code, 0);
    assert.match(again.out, /exists; pass --force/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("demo --help lists the flags; an unknown flag is an error", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  for (const f of ["--constrained", "--points", "--weights", "--backend", "--out", "--force"]) {
    assert.ok(help.out.includes(f), `--help mentions ${f}`);
  }
  const bad = await run(["--contrained"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /unknown flag --contrained/);
});

Deno.test("`deno task demo -- --constrained` as the README writes it (the task passes the -- through)", async () => {
  const dir = await Deno.makeTempDir();
  const svgPath = `${dir}/task.svg`;
  try {
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["task", "demo", "--", "--constrained", "--points", "16", "--backend", "cpu"]
        .concat(["--out", svgPath]),
      cwd: new URL("..", import.meta.url).pathname,
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const out = dec.decode(res.stdout) + dec.decode(res.stderr);
    assert.equal(res.code, 0, out);
    assert.match(out, /violation\s+complement\.\s+KKT error/);
    assert.match(out, /\nconverged/, out);
    const svg = await Deno.readTextFile(svgPath);
    assert.match(svg, /stroke-dasharray="3 3"/, "the clearance circles");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
