/**
 * The interior-point method on the constrained trajectory problem, beside IPOPT in the same
 * run (issue 13's benchmarks). For each N it solves `examples/trajectory_problem.ts`'s
 * constrained form with `minimize(…, { method: "ipm", bandwidth: 4 })` and, with `--ipopt`,
 * runs the IPOPT reference (`/work/shared/reference/ipopt/traj.c`, built here into a temporary
 * directory against the system's IPOPT) on the same problem with
 * `OPENBLAS_NUM_THREADS=1 ./traj --form B --N …`. Both report iterations, objective,
 * constraint violation, and process CPU seconds of the solve alone (IPOPT:
 * CLOCK_PROCESS_CPUTIME_ID around IpoptSolve; ours: process.cpuUsage() around minimize), and
 * wall seconds. Ours is timed twice per N: the first solve at that N ("first CPU s": V8's
 * compilation, and the `jit` programs of the method's bookkeeping traced for these shapes)
 * and a second, repeated solve (the CPU s compared with IPOPT's: the use case of a problem
 * solved again and again). A warm-up solve at N = 16 comes before everything.
 *
 *   deno run -A bench/ipm_trajectory.ts [--N 64,256,1024] [--ipopt] [--weights ipopt|scaled]
 *        [--backend cpu|webgpu] [--f32] [--ipopt-max N]   (IPOPT only up to this N; default 4096;
 *        --f32: f32 on the CPU) [--reps K] [--baseline DIR]
 *
 * With `--reps K` the repeated solve is timed K times (each a new problem object, as a
 * caller re-solving with new data makes) and "CPU s" is the least. With `--baseline DIR` (a
 * checkout of another commit: `git worktree add --detach DIR <commit>`) each N is also solved
 * with that checkout's library (its `mod.ts` and `examples/trajectory_problem.ts`) in this
 * process, in rows marked "(baseline)"; the two checkouts' solves alternate, so that both
 * see the same load.
 *
 * Prints one markdown table row per N. CPU seconds of a loaded machine are comparable only
 * within one run; RESULTS.md records the load (`uptime`) beside them.
 */
import process from "node:process";
import * as here from "../mod.ts";
import * as problemHere from "../examples/trajectory_problem.ts";
import { BANDWIDTH, clearance, type Weighting } from "../examples/trajectory_problem.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const sizes = flag("N", "64,256,1024,4096,16384").split(",").map(Number);
const weighting = flag("weights", "ipopt") as Weighting;
const backend = flag("backend", "cpu") as "cpu" | "webgpu";
const withIpopt = Deno.args.includes("--ipopt");
const ipoptMax = Number(flag("ipopt-max", "4096"));
const reps = Number(flag("reps", "1"));
const baseline = flag("baseline", "");

/** One copy of the library with its device: this checkout's, or the baseline's. */
interface Lib {
  label: string;
  lib: typeof here;
  problem: typeof problemHere.trajectoryProblem;
  dev: here.Device;
}
const libs: Lib[] = [{
  label: "",
  lib: here,
  problem: problemHere.trajectoryProblem,
  dev: await here.device({ backend }),
}];
if (baseline) {
  const root = new URL(`file://${Deno.realPathSync(baseline)}/`);
  const lib = await import(new URL("mod.ts", root).href);
  const problem = (await import(new URL("examples/trajectory_problem.ts", root).href))
    .trajectoryProblem;
  libs.unshift({ label: " (baseline)", lib, problem, dev: await lib.device({ backend }) });
}
const dev = libs[libs.length - 1].dev;
const dtype = dev.kind === "cpu" && !Deno.args.includes("--f32") ? "f64" : "f32";

async function buildIpopt(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ipm_bench_" });
  const pc = await new Deno.Command("pkg-config", { args: ["--cflags", "--libs", "ipopt"] })
    .output();
  if (!pc.success) throw new Error("pkg-config ipopt failed: install coinor-libipopt-dev");
  const flags = new TextDecoder().decode(pc.stdout).trim().split(/\s+/);
  const cc = await new Deno.Command("gcc", {
    args: [
      "-O2",
      "-std=c11",
      "-D_GNU_SOURCE",
      "/work/shared/reference/ipopt/traj.c",
      "-o",
      `${dir}/traj`,
      ...flags,
      "-lm",
      "-ldl",
    ],
  }).output();
  if (!cc.success) throw new Error(new TextDecoder().decode(cc.stderr));
  return `${dir}/traj`;
}

interface Row {
  iters: number;
  obj: number;
  viol: number;
  cpu: number;
  wall: number;
  status: string;
}

async function runIpopt(traj: string, n: number): Promise<Row> {
  const out = await new Deno.Command(traj, {
    args: ["--form", "B", "--N", String(n)],
    env: { OPENBLAS_NUM_THREADS: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) => l.startsWith("summary")) ?? "";
  const get = (k: string) => Number(line.match(new RegExp(`\\b${k}=([^ ]+)`))?.[1]);
  return {
    iters: get("iters"),
    obj: get("obj"),
    viol: get("cviol"),
    cpu: get("med_cpu_s"),
    wall: get("med_wall_s"),
    status: get("status") === 0 ? "solved" : `status ${get("status")}`,
  };
}

async function runOurs(
  n: number,
  { lib, problem, dev }: Lib,
): Promise<Row & { clearance: number }> {
  const prob = problem(n, { weighting, dtype, device: dev });
  const o = { dtype, device: dev } as const;
  const x0 = lib.tensor(dtype === "f64" ? prob.init : Float32Array.from(prob.init), o);
  const c0 = process.cpuUsage(), t0 = performance.now();
  const r = await lib.minimize(prob.smoothness, x0, {
    method: "ipm",
    bandwidth: BANDWIDTH,
    constraints: { eq: prob.eq, ineq: prob.ineq },
  });
  const wall = (performance.now() - t0) / 1000, c = process.cpuUsage(c0);
  const path = await r.x.data();
  const m = r.multipliers!;
  for (const t of [x0, r.x, m.eq, m.ineq, m.lower, m.upper]) t.dispose();
  prob.dispose();
  return {
    iters: r.iterations,
    obj: r.fun,
    viol: r.constraintViolation!,
    cpu: (c.user + c.system) / 1e6,
    wall,
    status: r.converged ? "solved" : r.message,
    clearance: clearance(path),
  };
}

const uptime = await new Deno.Command("uptime").output().then(
  (o) => new TextDecoder().decode(o.stdout).trim(),
  () => "?",
);
console.log(`# ${dev.description}, ${dtype}, ${weighting} weights; ${uptime}`);
for (const l of libs) await runOurs(16, l); // warm-up: JIT and kernel caches
const traj = withIpopt ? await buildIpopt() : "";
console.log(
  "| N | ours: iterations | objective | violation | first CPU s | CPU s | wall s |" +
    (withIpopt
      ? " IPOPT: iterations | objective | violation | CPU s | wall s | objective ratio | CPU ratio |"
      : ""),
);
console.log("|---|---|---|---|---|---|---|" + (withIpopt ? "---|---|---|---|---|---|---|" : ""));
for (const n of sizes) {
  const firsts = [];
  for (const l of libs) firsts.push(await runOurs(n, l));
  // the repeated solves, the checkouts alternating; the least CPU time of each
  const best: (Row & { clearance: number })[] = [];
  for (let k = 0; k < reps; k++) {
    for (const [i, l] of libs.entries()) {
      const a = await runOurs(n, l);
      if (!best[i] || a.cpu < best[i].cpu) best[i] = a;
    }
  }
  const b = withIpopt && n <= ipoptMax ? await runIpopt(traj, n) : null;
  for (const [i, l] of libs.entries()) {
    const [first, a] = [firsts[i], best[i]];
    const ours =
      `| ${n}${l.label} | ${a.iters}${a.status === "solved" ? "" : ` (${a.status})`} | ${
        a.obj.toPrecision(10)
      } | ` +
      `${a.viol.toExponential(1)} | ${first.cpu.toFixed(3)} | ${a.cpu.toFixed(3)} | ${
        a.wall.toFixed(2)
      } |`;
    if (!b) {
      console.log(ours + (withIpopt ? " (not run) | | | | | | |" : ""));
      continue;
    }
    console.log(
      ours +
        ` ${b.iters}${b.status === "solved" ? "" : ` (${b.status})`} | ${
          b.obj.toPrecision(10)
        } | ` +
        `${b.viol.toExponential(1)} | ${b.cpu.toFixed(3)} | ${b.wall.toFixed(2)} | ` +
        `${(a.obj / b.obj).toFixed(4)} | ${(a.cpu / b.cpu).toFixed(2)} |`,
    );
  }
}
if (traj) await Deno.remove(traj.replace(/\/traj$/, ""), { recursive: true });
