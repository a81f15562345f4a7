/**
 * The 35 Moré–Garbow–Hillstrom problems (tests/mgh_problems.ts) run by every Newton-type
 * method of `minimize`, with default options and with gtol 1e-8, beside SciPy's counts
 * measured by `bench/mgh_scipy.py` (bench/mgh_scipy.json). Prints the tables that go into
 * bench/RESULTS.md.
 *
 *   /usr/bin/python3 bench/mgh_scipy.py > bench/mgh_scipy.json
 *   deno run -A bench/mgh.ts [--only 10,18] [--methods trust-exact] [--json out.json]
 *
 * "solved": status 0 (converged, second-order check passed) AND f within 1e-4 relative +
 * 1e-7 absolute of a minimum value the paper lists. "saddle": status 4. Every converged
 * answer's dense Hessian is checked independently (Jacobi eigenvalues on the host) for
 * negative curvature. "burnt": the run hit maxIter without lowering f by 1e-8 relative over
 * its last half (a run that spins). Cells: iterations / f evaluations / Hessian-vector
 * products (SciPy: nit / nfev / nhev, which for its trust-exact counts Hessians); "✗ f*":
 * stopped at the rounding floor (status 2) with f at a published minimum but ‖g‖ ≥ gtol.
 */
import { hessian, minimize, type MinimizeOptions, tensor } from "../mod.ts";
import { atPublishedMinimum, mghProblems, objective } from "../tests/mgh_problems.ts";
import { symmetricEigenvalues } from "../tests/dense_ref.ts";

function flag(name: string): string | null {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : null;
}
const only = flag("only")?.split(",").map(Number) ?? null;
const methods = flag("methods")?.split(",") ??
  ["trust-exact", "newton-banded", "newton-cg", "trust-ncg"];
const jsonOut = flag("json");

interface Run {
  status: number;
  solved: boolean;
  /** f within the tolerance of a published minimum (whatever the status). */
  atMin: boolean;
  fun: number;
  gnorm: number;
  nit: number;
  nfev: number;
  njev: number;
  nhev: number;
  ms: number;
  burnt: boolean;
  /** λ_min / ‖H‖ of the dense Hessian at a converged answer (an independent saddle check). */
  curvature: number;
  message: string;
}

const scipy = JSON.parse(
  await Deno.readTextFile(new URL("./mgh_scipy.json", import.meta.url)),
) as {
  scipy: string;
  problems: { id: number; f0: number; runs: Record<string, Record<string, number | boolean>> }[];
};

const results: Record<number, Record<string, Run>> = {};
for (const p of mghProblems()) {
  if (only && !only.includes(p.id)) continue;
  const f = objective(p);
  // the two implementations agree at the start (an independent check of both)
  const ref = scipy.problems.find((q) => q.id === p.id)!;
  const x0 = tensor(Float64Array.from(p.x0), { dtype: "f64" });
  const f0 = await f(x0).item();
  if (Math.abs(f0 - ref.f0) > 1e-12 * Math.max(1, Math.abs(ref.f0))) {
    throw new Error(`${p.name}: f(x0) = ${f0} here, ${ref.f0} in PyTorch`);
  }
  results[p.id] = {};
  for (const method of methods) {
    for (const tight of [false, true]) {
      const o: MinimizeOptions = { method };
      if (method === "newton-banded") o.bandwidth = p.n - 1;
      if (tight) o.gtol = 1e-8;
      const fs: number[] = [];
      o.onIteration = (it) => void fs.push(it.fun);
      const t0 = performance.now();
      let run: Run;
      try {
        const r = await minimize(f, x0, o);
        const ms = performance.now() - t0;
        const half = fs[Math.floor(fs.length / 2)];
        let curvature = NaN;
        if (r.status === 0) {
          const H = hessian(f, r.x);
          const h = Array.from(await H.data());
          H.dispose();
          const eig = symmetricEigenvalues(
            Array.from({ length: p.n }, (_, i) => h.slice(i * p.n, (i + 1) * p.n)),
          );
          curvature = eig[0] / Math.max(...eig.map(Math.abs));
        }
        run = {
          status: r.status,
          solved: r.status === 0 && atPublishedMinimum(p, r.fun),
          atMin: atPublishedMinimum(p, r.fun),
          fun: r.fun,
          gnorm: r.gradNorm,
          nit: r.nit,
          nfev: r.nfev,
          njev: r.njev,
          nhev: r.nhev,
          ms,
          burnt: r.status === 1 && !(r.fun < half - 1e-8 * Math.abs(half)),
          curvature,
          message: r.message,
        };
        r.x.dispose();
        r.jac.dispose();
      } catch (e) {
        run = {
          status: -1,
          solved: false,
          atMin: false,
          fun: NaN,
          gnorm: NaN,
          nit: 0,
          nfev: 0,
          njev: 0,
          nhev: 0,
          ms: performance.now() - t0,
          burnt: false,
          curvature: NaN,
          message: `threw ${(e as Error).message}`,
        };
      }
      results[p.id][method + (tight ? " tight" : "")] = run;
    }
  }
  x0.dispose();
  console.error(
    `${p.id} ${p.name}: ` +
      Object.entries(results[p.id]).map(([k, v]) =>
        `${k} ${v.solved ? "ok" : v.status === 4 ? "SADDLE" : "--"}${v.burnt ? " BURNT" : ""}`
      ).join(", "),
  );
}
if (jsonOut) await Deno.writeTextFile(jsonOut, JSON.stringify(results, null, 1));

// ---- the tables ----
const ours = methods;
const theirs = ["Newton-CG", "trust-ncg", "trust-krylov", "trust-exact", "BFGS", "L-BFGS-B"];
const ids = Object.keys(results).map(Number);
const cell = (r: Run | undefined) =>
  !r
    ? "—"
    : `${
      r.solved ? "✓" : r.status === 4 ? "saddle" : r.atMin && r.status === 2 ? "✗ f*" : "✗"
    } ${r.nit}/${r.nfev}/${r.nhev}${r.burnt ? " burnt" : ""}`;
const sciCell = (r: Record<string, number | boolean> | undefined) =>
  !r ? "—" : `${r.solved ? "✓" : "✗"} ${r.nit}/${r.nfev}/${r.nhev}`;
for (const tight of [false, true]) {
  const sfx = tight ? " tight" : "";
  console.log(
    `\n#### ${tight ? "gtol 1e-8 (SciPy: gtol 1e-8, Newton-CG xtol 1e-12)" : "Default options"}\n`,
  );
  console.log(
    `| # | problem | n | ${ours.join(" | ")} | ${theirs.map((t) => `SciPy ${t}`).join(" | ")} |`,
  );
  console.log(
    `|---|---|---|${ours.map(() => "---|").join("")}${theirs.map(() => "---|").join("")}`,
  );
  for (const id of ids) {
    const p = mghProblems().find((q) => q.id === id)!;
    const ref = scipy.problems.find((q) => q.id === id)!;
    console.log(
      `| ${id} | ${p.name} | ${p.n} | ${
        ours.map((m) => cell(results[id][m + sfx])).join(" | ")
      } | ${theirs.map((m) => sciCell(ref.runs[m + sfx])).join(" | ")} |`,
    );
  }
  const count = (m: string) => ids.filter((id) => results[id][m + sfx]?.solved).length;
  const sciCount = (m: string) =>
    ids.filter((id) => scipy.problems.find((q) => q.id === id)!.runs[m + sfx]?.solved).length;
  console.log(
    `| | **solved** | | ${ours.map((m) => `**${count(m)}**`).join(" | ")} | ${
      theirs.map((m) => `**${sciCount(m)}**`).join(" | ")
    } |`,
  );
  const any = ids.filter((id) => ours.some((m) => results[id][m + sfx]?.solved)).length;
  const short = ids.flatMap((id) =>
    ours.filter((m) => results[id][m + sfx]?.status === 0 && !results[id][m + sfx].solved)
      .map((m) => `${id}/${m}`)
  );
  const saddles = ids.flatMap((id) =>
    ours.filter((m) => results[id][m + sfx]?.curvature < -1e-6).map((m) => `${id}/${m}`)
  );
  const burnt = ids.flatMap((id) =>
    ours.filter((m) => results[id][m + sfx]?.burnt).map((m) => `${id}/${m}`)
  );
  console.log(
    `\nsolved by at least one of ours: ${any} of ${ids.length}; converged (status 0) but not ` +
      `within the tolerance of a published minimum: ${short.join(", ") || "none"}; saddles ` +
      `reported as converged (λ_min(H) < −1e-6 ‖H‖ at the answer, dense check): ${
        saddles.join(", ") || "none"
      }; runs that burnt their budget: ${burnt.join(", ") || "none"}`,
  );
}
