/**
 * Cold start (issue 12 item 7): what a fresh process pays before and during its first solve.
 * Prints process CPU milliseconds for Deno's own start (before this module ran), importing the
 * library, a first trivial op, then the first, second and third solve of the penalty
 * trajectory problem (IPOPT's weights, gtol 1e-7) at N points. Run it several times: each run
 * is one fresh process.
 *
 *   deno run -A bench/cold_start.ts [--N 256] [--method newton-banded|trust-exact|ipm]
 *     [--lib /path/to/other/checkout]   (that checkout's mod.ts and example problem instead)
 */
import process from "node:process";

const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const started = cpu();
function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const N = Number(flag("N", "256"));
const method = flag("method", "newton-banded");
const root = flag("lib", new URL("..", import.meta.url).pathname);

const t0 = cpu();
const lib: typeof import("../mod.ts") = await import(`${root}/mod.ts`);
const ex: typeof import("../examples/trajectory_problem.ts") = await import(
  `${root}/examples/trajectory_problem.ts`
);
const t1 = cpu();
const dev = await lib.device({ backend: "cpu" });
const o = { dtype: "f64", device: dev } as const;
const a = lib.tensor([1, 2, 3], o);
const s = lib.sum(a.mul(2));
await s.data();
a.dispose();
s.dispose();
const t2 = cpu();

async function solve(): Promise<number> {
  const prob = ex.trajectoryProblem(N, { weighting: "ipopt", ...o });
  const x0 = lib.tensor(prob.init, o);
  const c0 = cpu();
  const r = method === "ipm"
    ? await lib.minimize(prob.smoothness, x0, {
      method: "ipm",
      bandwidth: ex.BANDWIDTH,
      constraints: { eq: prob.eq, ineq: prob.ineq },
    })
    : await lib.minimize(prob.penalty, x0, { method, bandwidth: ex.BANDWIDTH, gtol: 1e-7 });
  const ms = cpu() - c0;
  const m = r.multipliers;
  for (const t of [r.x, r.jac, x0, m?.eq, m?.ineq, m?.lower, m?.upper]) t?.dispose();
  prob.dispose();
  return ms;
}
const solves = [await solve(), await solve(), await solve()];
console.log(
  `${method} N = ${N}, CPU ms: Deno start ${started.toFixed(0)}, import ${
    (t1 - t0).toFixed(0)
  }, first op ${(t2 - t1).toFixed(0)}, solves ${solves.map((v) => v.toFixed(0)).join(" / ")}` +
    ` (load ${Deno.loadavg().map((v) => v.toFixed(1)).join(" ")})`,
);
