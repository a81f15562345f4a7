/**
 * The penalty form of the path-planning demo (`examples/trajectory_problem.ts`), issue 13's
 * benchmark: `trust-exact` and `newton-banded` to ‖g‖ ≤ 1e-7 (f64), beside IPOPT (form A of
 * `/work/shared/reference/ipopt/traj.c`, built with its `build.sh`; pass `--ipopt path/to/traj`)
 * with the IPOPT reference's weights (`--weights ipopt`, the default here), or the demo's
 * consistently scaled weights (`--weights scaled`: iterations against N, mesh independence).
 *
 *   deno run -A bench/trajectory_penalty.ts [--N 256,1024] [--methods trust-exact,newton-banded]
 *     [--weights ipopt|scaled] [--backend cpu|webgpu] [--maxIter 3000] [--ipopt /tmp/ipopt/traj]
 *     [--trace] [--warm 5] [--baseline /tmp/old_checkout]
 *
 * Each method first runs once at N = 64 (warm-up, not printed). For each run it prints
 * iterations, objective, final ‖g‖, whether the Hessian at the end is positive definite (a
 * banded Cholesky of the final band, independent of the method: a local minimum, not a
 * saddle), CPU seconds of the solve (process CPU time: user + system, so the
 * load of other processes does not count), wall seconds, and the evaluation counts. With
 * `--warm K`, each method then solves the same problem K more times with f as given and K
 * times with `jit(f)` (whose compiled passes `minimize` keeps between calls; its first,
 * tracing call is not counted), and a row gives the least CPU milliseconds of each: the
 * first solve at a size pays the traces of its shapes (and, early in a process, V8's
 * warm-up), a repeated one does not; IPOPT's row is then the median of K solves in its process
 * (`--reps K`), and IPOPT also runs between the rounds of repeated solves (3 solves in its
 * process each time, the first of which pays its set-up): a row gives the least of those
 * runs' median CPU times, and each repeated row its ratio to that.
 *
 * With `--baseline DIR` (a checkout of another commit: `git worktree add --detach DIR <commit>`)
 * each method also runs with that checkout's library (its `mod.ts` and
 * `examples/trajectory_problem.ts`) in the same process, in rows marked "(baseline)", and the
 * repeated solves of the two checkouts alternate: before and after under the same load.
 */
import process from "node:process";
import * as here from "../mod.ts";
import * as problemHere from "../examples/trajectory_problem.ts";
import { BANDWIDTH, type Weighting } from "../examples/trajectory_problem.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const Ns = flag("N", "256,1024").split(",").map(Number);
const methods = flag("methods", "trust-exact,newton-banded").split(",");
const weighting = flag("weights", "ipopt") as Weighting;
const backend = flag("backend", "cpu") as "cpu" | "webgpu";
const maxIter = Number(flag("maxIter", "3000"));
const ipopt = flag("ipopt", "");
const trace = Deno.args.includes("--trace");
const warm = Number(flag("warm", "0"));
const baseline = flag("baseline", "");

/** One copy of the library with its device: this checkout's, or the baseline's. */
interface Lib {
  label: string;
  lib: typeof here;
  problem: typeof problemHere.trajectoryProblem;
  o: { dtype: "f32" | "f64"; device: here.Device };
}
async function load(label: string, lib: typeof here, problem: Lib["problem"]): Promise<Lib> {
  const dev = await lib.device({ backend });
  return { label, lib, problem, o: { dtype: dev.kind === "cpu" ? "f64" : "f32", device: dev } };
}
const libs: Lib[] = [await load("", here, problemHere.trajectoryProblem)];
if (baseline) {
  const root = new URL(`file://${Deno.realPathSync(baseline)}/`);
  const lib = await import(new URL("mod.ts", root).href);
  const problem = (await import(new URL("examples/trajectory_problem.ts", root).href))
    .trajectoryProblem;
  libs.unshift(await load(" (baseline)", lib, problem));
}
const dev = libs[libs.length - 1].o.device;
const dtype = libs[libs.length - 1].o.dtype;
const gtol = dtype === "f64" ? 1e-7 : Number(flag("gtol", "0.1"));

/** CPU seconds of this process (user + system), from /proc (Linux). */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

console.log(
  `# ${dev.description}, ${dtype}, ${weighting} weights; load: ${
    Deno.loadavg().map((v) => v.toFixed(2)).join(" ")
  }`,
);
console.log(
  "| N | method | iterations | objective | ‖g‖ | H ≻ 0 at the end | CPU s | wall s | nfev | HVPs | message |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
// warm-up: each method once at N = 64, so that the first timed run does not pay V8's and the
// kernel compiler's first-use costs (IPOPT is compiled C)
for (const { lib, problem, o } of libs) {
  for (const method of methods) {
    const prob = problem(64, { weighting, ...o });
    const x0 = lib.tensor(dtype === "f64" ? prob.init : Float32Array.from(prob.init), o);
    const r = await lib.minimize(prob.penalty, x0, { method, bandwidth: BANDWIDTH, gtol, maxIter });
    for (const t of [r.x, r.jac, x0]) t.dispose();
    prob.dispose();
  }
}

/** The first solve at N with `method`, printed as a row; the problem and x0 stay the caller's. */
async function firstSolve({ label, lib, problem, o }: Lib, N: number, method: string) {
  const prob = problem(N, { weighting, ...o });
  const x0 = lib.tensor(dtype === "f64" ? prob.init : Float32Array.from(prob.init), o);
  const [cpu0, wall0] = [cpuSeconds(), performance.now()];
  const r = await lib.minimize(prob.penalty, x0, {
    method,
    bandwidth: BANDWIDTH,
    gtol,
    maxIter,
    onIteration: trace
      ? (it) =>
        console.error(
          `${it.iteration} f=${it.fun.toExponential(8)} g=${it.gradNorm.toExponential(2)} ` +
            `Δ=${it.trustRadius?.toExponential(2) ?? ""} t=${it.stepSize ?? ""} λ/τ=${
              it.shift?.toExponential(2) ?? ""
            }`,
        )
      : undefined,
  });
  const [cpu, wall] = [cpuSeconds() - cpu0, (performance.now() - wall0) / 1000];
  const h = lib.bandedHessian(prob.penalty, r.x, { bandwidth: BANDWIDTH, layout: "lower" });
  let pd = "yes";
  try {
    await lib.choleskyBanded(h, {}).data();
  } catch {
    pd = "NO";
  }
  h.dispose();
  console.log(
    `| ${N} | ${method}${label} | ${r.iterations} | ${r.fun.toPrecision(12)} | ${
      r.gradNorm.toExponential(2)
    } | ${pd} | ${cpu.toFixed(2)} | ${wall.toFixed(2)} | ${r.nfev} | ${r.nhvp} | ${r.message} |`,
  );
  r.x.dispose();
  r.jac.dispose();
  return { prob, x0 };
}

/** One IPOPT run at N (`reps` solves in its process): its summary's fields. */
function runIpopt(N: number, reps: number): (k: string) => string | undefined {
  const out = new Deno.Command(ipopt, {
    args: ["--form", "A", "--N", String(N), "--reps", String(reps)],
    env: { OPENBLAS_NUM_THREADS: "1" },
  }).outputSync();
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
    l.startsWith("summary")
  );
  return (k: string) => line?.match(new RegExp(`\\b${k}=(\\S+)`))?.[1];
}
const withIpopt = ipopt !== "" && weighting === "ipopt";

for (const N of Ns) {
  if (withIpopt) {
    const get = runIpopt(N, Math.max(1, warm));
    console.log(
      `| ${N} | IPOPT 3.11.9 | ${get("iters")} | ${get("obj")} | ${get("dualinf_own")} | | ${
        Number(get("med_cpu_s")).toFixed(3)
      } | ${Number(get("med_wall_s")).toFixed(3)} | | | status ${get("status")}${
        warm > 0 ? `, median of ${warm} solves` : ""
      } |`,
    );
  }
  for (const method of methods) {
    const runs = [];
    for (const l of libs) runs.push({ l, ...(await firstSolve(l, N, method)) });
    if (warm > 0) {
      // K more solves with f as given and K with jit(f) (its first, tracing call not
      // counted), the checkouts alternating
      const timed = runs.map(({ l, prob, x0 }) => {
        const again = async (f: (x: here.Tensor) => here.Tensor) => {
          const c0 = process.cpuUsage();
          const w = await l.lib.minimize(f, x0, { method, bandwidth: BANDWIDTH, gtol, maxIter });
          const c = process.cpuUsage(c0);
          w.x.dispose();
          w.jac.dispose();
          return (c.user + c.system) / 1000;
        };
        const f = prob.penalty, jf = l.lib.jit(prob.penalty);
        return { label: l.label, f, jf, again, plain: Infinity, jitted: Infinity };
      });
      for (const t of timed) await t.again(t.jf);
      // IPOPT once between each round too, so that its least CPU time shares the load
      let ip = Infinity;
      for (let k = 0; k < warm; k++) {
        for (const t of timed) t.plain = Math.min(t.plain, await t.again(t.f));
        for (const t of timed) t.jitted = Math.min(t.jitted, await t.again(t.jf));
        if (withIpopt) ip = Math.min(ip, 1000 * Number(runIpopt(N, 3)("med_cpu_s")));
      }
      const ratio = (ms: number) => (withIpopt ? ` (${(ms / ip).toFixed(2)}× IPOPT)` : "");
      if (withIpopt) {
        console.log(
          `| ${N} | IPOPT, between those: least median of 3 solves, ${warm} runs | | | | | ${
            ip.toFixed(1)
          } ms | | | | |`,
        );
      }
      for (const t of timed) {
        console.log(
          `| ${N} | ${method}${t.label}: repeated, min of ${warm} (f / jit(f)) | | | | | ${
            t.plain.toFixed(1)
          } ms${ratio(t.plain)} / ${t.jitted.toFixed(1)} ms${ratio(t.jitted)} | | | | |`,
        );
      }
    }
    for (const { x0, prob } of runs) {
      x0.dispose();
      prob.dispose();
    }
  }
}
