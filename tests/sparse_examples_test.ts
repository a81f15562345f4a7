/**
 * The two newton-sparse examples run as subprocesses, as a user runs them: the 64 × 64
 * grid denoising (the size) and six agents' trajectories on the CPU (f64) must
 * reach ‖g‖ ≤ 1e-8 and write their pictures; on WebGPU (f32) smaller instances must run
 * through and write theirs. References independent of the solver: the PNG's own header
 * and the RMS error against the clean image (the example computes it from the pixels on
 * the host), the agents' closest approach computed from the returned positions.
 * tests/newton_sparse_test.ts checks the same objectives against hand-written gradients.
 */
import assert from "node:assert/strict";
import { testAll } from "./helpers.ts";

async function run(
  script: string,
  args: string[],
  ext: string,
): Promise<{ code: number; out: string; file: Uint8Array }> {
  const path = await Deno.makeTempFile({ suffix: ext });
  const res = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(`../examples/${script}`, import.meta.url).pathname,
      ...args,
      "--out",
      path,
    ],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr);
  const file = await Deno.readFile(path).catch(() => new Uint8Array());
  await Deno.remove(path);
  return { code: res.code, out, file };
}

/** The final ‖g‖ the example prints. */
const finalGradNorm = (out: string) => Number(out.match(/; ‖g‖ = ([-\d.e+]+)/)![1]);

testAll("examples/grid_denoising.ts: newton-sparse denoises and writes the PNG", async (be) => {
  const s = be.dtype === "f64" ? 64 : 32;
  const { code, out, file } = await run(
    "grid_denoising.ts",
    ["--size", String(s), "--backend", be.dev.kind],
    ".png",
  );
  assert.equal(code, 0, out);
  assert.match(out, new RegExp(`${s}×${s} = ${s * s} variables`));
  assert.match(out, /at most 5 per row/, out);
  assert.match(out, /\nconverged: gradient norm below gtol/, out);
  if (be.dtype === "f64") assert.ok(finalGradNorm(out) <= 1e-8, out);
  const [noisy, denoised] = out.match(/noisy ([\d.]+), denoised ([\d.]+)/)!.slice(1).map(Number);
  assert.ok(denoised < 0.5 * noisy, `RMS error ${noisy} → ${denoised}`);
  // a PNG of clean | noisy | denoised: signature, then IHDR width 3s + 8 and height s
  assert.deepEqual([...file.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const ihdr = new DataView(file.buffer, file.byteOffset + 16, 8);
  assert.deepEqual([ihdr.getUint32(0), ihdr.getUint32(4)], [3 * s + 8, s]);
}, ["cpu-f64", "webgpu-f32"]);

testAll(
  "examples/multi_agent.ts: newton-sparse keeps the agents apart and writes the SVG",
  async (be) => {
    const [agents, steps] = be.dtype === "f64" ? [6, 64] : [3, 24];
    const { code, out, file } = await run(
      "multi_agent.ts",
      ["--agents", String(agents), "--steps", String(steps), "--backend", be.dev.kind],
      ".svg",
    );
    assert.equal(code, 0, out);
    // stored agent by agent, the band is wide; reverse Cuthill–McKee makes it narrow
    const [wide, narrow] = out.match(/bandwidth (\d+) as written, (\d+) after/)!.slice(1).map(
      Number,
    );
    assert.ok(narrow < wide / 4, out);
    if (be.dtype === "f64") {
      assert.match(out, /\nconverged: gradient norm below gtol/, out);
      assert.ok(finalGradNorm(out) <= 1e-8, out);
    }
    const [before, after] = out.match(/closest approach: ([\d.]+) before, ([\d.]+) after/)!
      .slice(1).map(Number);
    assert.ok(after > 5 * before, out);
    const svg = new TextDecoder().decode(file);
    assert.equal(svg.match(/<polyline/g)?.length, agents, "one path per agent");
  },
  ["cpu-f64", "webgpu-f32"],
);
