/**
 * The penalty form of the path-planning demo (today's weights, issue 13's benchmark) solved
 * by `trust-exact` and `newton-banded` to ‖g‖ ≤ 1e-7, beside IPOPT (form A of
 * `/work/shared/reference/ipopt/traj.c`, built with its `build.sh`; pass `--ipopt path/to/traj`).
 *
 *   deno run -A bench/trajectory_penalty.ts [--N 256,1024] [--methods trust-exact,newton-banded]
 *     [--backend cpu|webgpu] [--maxIter 2000] [--ipopt /tmp/ipopt/traj] [--trace]
 *
 * For each run it prints iterations, objective, final ‖g‖, whether the Hessian at the end is
 * positive definite (a banded Cholesky of the final band: a local minimum, not a saddle), CPU
 * seconds of the whole solve, and the evaluation counts.
 */
import { bandedHessian, choleskyBanded, device, minimize, tensor } from "../mod.ts";
import { trajectoryPenaltyProblem } from "../tests/banded_objectives.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const Ns = flag("N", "256,1024").split(",").map(Number);
const methods = flag("methods", "trust-exact,newton-banded").split(",");
const backend = flag("backend", "cpu") as "cpu" | "webgpu";
const maxIter = Number(flag("maxIter", "3000"));
const ipopt = flag("ipopt", "");
const trace = Deno.args.includes("--trace");
const dev = await device({ backend });
const dtype = dev.kind === "cpu" ? "f64" : "f32";
const gtol = dtype === "f64" ? 1e-7 : Number(flag("gtol", "0.1"));
const o = { dtype, device: dev } as const;

console.log(
  `# ${dev.description}, ${dtype}; load: ${Deno.loadavg().map((v) => v.toFixed(2)).join(" ")}`,
);
console.log(
  "| N | method | iterations | objective | ‖g‖ | H ≻ 0 at the end | CPU s | nfev | HVPs | message |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const N of Ns) {
  if (ipopt) {
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
      } | | | status ${get("status")} |`,
    );
  }
  for (const method of methods) {
    const prob = trajectoryPenaltyProblem(N, o);
    const x0 = tensor(dtype === "f64" ? prob.x0 : Float32Array.from(prob.x0), o);
    const cpu0 = performance.now();
    const r = await minimize(prob.f, x0, {
      method,
      bandwidth: 5,
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
    const secs = (performance.now() - cpu0) / 1000;
    const h = bandedHessian(prob.f, r.x, { bandwidth: 5, layout: "lower" });
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
      } | ${pd} | ${secs.toFixed(2)} | ${r.nfev} | ${r.nhvp} | ${r.message} |`,
    );
    r.x.dispose();
    r.jac.dispose();
    x0.dispose();
    prob.dispose();
  }
}
