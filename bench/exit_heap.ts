/**
 * Counts heap corruption at process exit after WebGPU use: runs a command many times and
 * counts runs whose output holds a glibc heap message or that die by a signal.
 *
 *   deno run -A bench/exit_heap.ts --what probe|workers|modules|doc --runs 30 [--trees "DIR[+K=V…];…"]
 *
 * `probe` is bench/exit_probe.ts (a short WebGPU session in one isolate); `workers` is
 * bench/exit_workers.ts (three workers, each with its own device, then exit); `modules` is
 * `deno test` of bench/exit_modules/ (six test modules, each an isolate with its own WebGPU
 * device, as in the doc tests); `doc` is the doc tests (`deno test -A --doc mod.ts src/
 * README.md`). `--trees` lists checkouts to run (default:
 * this one), each optionally with environment variables for its runs (`DIR+K=V+K2=V2`); an
 * older commit's checkout comes from `git archive <rev> | tar -x -C DIR`. The configurations
 * run alternately in one session, so before/after rates share the machine's load.
 */

/** glibc's heap-check messages (malloc.c); .ci/run greps for the same list (HEAP). */
export const HEAP_MESSAGE =
  /corrupted (size|double-linked|top size|unsorted)|double free|free\(\): |malloc\(\): |realloc\(\): |munmap_chunk|malloc_consolidate/;

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

interface Tally {
  runs: number;
  heap: number;
  signal: number;
  failed: number;
  examples: string[];
}

async function once(
  root: string,
  what: string,
  extraEnv: Record<string, string>,
): Promise<[string, number, string | null]> {
  const here = new URL("..", import.meta.url).pathname;
  const args = what === "probe"
    ? ["run", "-A", `${here}bench/exit_probe.ts`, `${root}/mod.ts`]
    : what === "workers"
    ? ["run", "-A", `${here}bench/exit_workers.ts`]
    : what === "modules"
    ? ["test", "-A", `${here}bench/exit_modules/`]
    : ["test", "-A", "--doc", "mod.ts", "src/", "README.md"];
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: {
      NO_COLOR: "1",
      XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp",
      CURVATURE_MOD: `file://${root}/mod.ts`,
      ...extraEnv,
    },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return [text, out.code, out.signal];
}

if (import.meta.main) {
  const what = arg("what", "probe");
  const runs = Number(arg("runs", "30"));
  const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const trees = arg("trees", here).split(";").map((spec) => {
    const [dir, ...kvs] = spec.split("+");
    const env = Object.fromEntries(kvs.map((kv) => kv.split("=", 2) as [string, string]));
    return { name: spec, dir, env };
  });
  const tally = new Map<string, Tally>(
    trees.map((t) => [t.name, { runs: 0, heap: 0, signal: 0, failed: 0, examples: [] }]),
  );
  for (let i = 0; i < runs; i++) {
    for (const { name, dir, env } of trees) {
      const [text, code, signal] = await once(dir, what, env);
      const t = tally.get(name)!;
      t.runs++;
      const m = text.match(HEAP_MESSAGE);
      if (m) {
        t.heap++;
        const line = text.split("\n").find((l) => HEAP_MESSAGE.test(l)) ?? m[0];
        if (t.examples.length < 5) {
          t.examples.push(`${line.trim()} (exit ${code}${signal ? ` ${signal}` : ""})`);
        }
      }
      if (signal || code >= 128) t.signal++;
      else if (code !== 0) {
        t.failed++;
        const tail = text.trim().split("\n").slice(-6).join("\n    ");
        if (t.examples.length < 5) t.examples.push(`failed (exit ${code}):\n    ${tail}`);
      }
      console.log(
        `${what} run ${i + 1} [${name}]: exit ${code}${signal ? ` (${signal})` : ""}${
          m ? ` HEAP: ${m[0]}` : ""
        }`,
      );
    }
  }
  console.log(
    `\n${what}: runs, runs with a glibc heap message, runs killed by a signal, other failures`,
  );
  for (const [name, t] of tally) {
    console.log(
      `${name}: ${t.runs} runs, ${t.heap} heap messages, ${t.signal} signals, ${t.failed} failed`,
    );
    for (const e of t.examples) console.log(`  ${e}`);
  }
}
