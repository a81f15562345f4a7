/**
 * The penalty form of the path-planning demo (`examples/trajectory_problem.ts`), issue 13's
 * benchmark: `trust-exact` and `newton-banded` to ‖g‖ ≤ 1e-7 (f64), beside IPOPT (form A of
 * `/work/shared/reference/ipopt/traj.c`, built with its `build.sh`; pass `--ipopt path/to/traj`)
 * with the IPOPT reference's weights (`--weights ipopt`, the default here), or the demo's
 * consistently scaled weights (`--weights scaled`: iterations against N, mesh independence).
 *
 *   deno run -A bench/trajectory_penalty.ts [--N 256,1024] [--methods trust-exact,newton-banded]
 *     [--weights ipopt|scaled] [--backend cpu|webgpu] [--maxIter 3000] [--ipopt /tmp/ipopt/traj]
 *     [--trace] [--warm 5]
 *
 * Each method first runs once at N = 64 (warm-up, not printed). For each run it prints iterations, objective, final ‖g‖, whether the Hessian at the end is
 * positive definite (a banded Cholesky of the final band, independent of the method: a local
 * minimum, not a saddle), CPU seconds of the solve (process CPU time: user + system, so the
 * load of other processes does not count), wall seconds, and the evaluation counts. With
 * `--warm K`, each method then solves the same problem K more times with f as given and K
 * times with `jit(f)` (whose compiled passes `minimize` keeps between calls; its first,
 * tracing call is not counted), and a row gives the least CPU milliseconds of each: the
 * first solve at a size pays the traces of its shapes (and, early in a process, V8's
 * warm-up), a repeated one does not.
 */
import process from "node:process";
import { bandedHessian, choleskyBanded, device, jit, minimize, tensor } from "../mod.ts";
import { BANDWIDTH, trajectoryProblem, type Weighting } from "../examples/trajectory_problem.ts";

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
const dev = await device({ backend });
const dtype = dev.kind === "cpu" ? "f64" : "f32";
const gtol = dtype === "f64" ? 1e-7 : Number(flag("gtol", "0.1"));
const o = { dtype, device: dev } as const;

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
for (const method of methods) {
  const prob = trajectoryProblem(64, { weighting, ...o });
  const x0 = tensor(dtype === "f64" ? prob.init : Float32Array.from(prob.init), o);
  const r = await minimize(prob.penalty, x0, { method, bandwidth: BANDWIDTH, gtol, maxIter });
  for (const t of [r.x, r.jac, x0]) t.dispose();
  prob.dispose();
}
for (const N of Ns) {
  if (ipopt && weighting === "ipopt") {
    const out = new Deno.Command(ipopt, {
      args: ["--form", "A", "--N", String(N)],
      env: { OPENBLAS_NUM_THREADS: "1" },
    }).outputSync();
    const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
      l.startsWith("summary")
    );
    const get = (k: string) => line?.match(new RegExp(`\\b${k}=(\\S+)`))?.[1];
    console.log(
      `| ${N} | IPOPT 3.11.9 | ${get("iters")} | ${get("obj")} | ${get("dualinf_own")} | | ${
        Number(get("med_cpu_s")).toFixed(2)
      } | ${Number(get("med_wall_s")).toFixed(2)} | | | status ${get("status")} |`,
    );
  }
  for (const method of methods) {
    const prob = trajectoryProblem(N, { weighting, ...o });
    const x0 = tensor(dtype === "f64" ? prob.init : Float32Array.from(prob.init), o);
    const [cpu0, wall0] = [cpuSeconds(), performance.now()];
    const r = await minimize(prob.penalty, x0, {
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
    const h = bandedHessian(prob.penalty, r.x, { bandwidth: BANDWIDTH, layout: "lower" });
    let pd = "yes";
    try {
      await choleskyBanded(h, {}).data();
    } catch {
      pd = "NO";
    }
    h.dispose();
    console.log(
      `| ${N} | ${method} | ${r.iterations} | ${r.fun.toPrecision(12)} | ${
        r.gradNorm.toExponential(2)
      } | ${pd} | ${cpu.toFixed(2)} | ${wall.toFixed(2)} | ${r.nfev} | ${r.nhvp} | ${r.message} |`,
    );
    r.x.dispose();
    r.jac.dispose();
    if (warm > 0) {
      const jf = jit(prob.penalty);
      const again = async (f: typeof prob.penalty) => {
        const c0 = process.cpuUsage();
        const w = await minimize(f, x0, { method, bandwidth: BANDWIDTH, gtol, maxIter });
        const c = process.cpuUsage(c0);
        w.x.dispose();
        w.jac.dispose();
        return (c.user + c.system) / 1000;
      };
      await again(jf);
      let [plain, jitted] = [Infinity, Infinity];
      for (let k = 0; k < warm; k++) {
        plain = Math.min(plain, await again(prob.penalty));
        jitted = Math.min(jitted, await again(jf));
      }
      console.log(
        `| ${N} | ${method}: repeated, min of ${warm} (f / jit(f)) | | | | | ${
          plain.toFixed(1)
        } ms / ${jitted.toFixed(1)} ms | | | | |`,
      );
    }
    x0.dispose();
    prob.dispose();
  }
}
