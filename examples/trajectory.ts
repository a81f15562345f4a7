/**
 * The main demo (`deno task demo`): 2-D path planning for a point robot around circular
 * obstacles, solved by Newton's method on banded matrices (the problem is in
 * `trajectory_problem.ts`).
 *
 * Penalty form (the default): squared accelerations + a little length + a smooth obstacle
 * penalty + endpoint penalties, minimised by `newton-banded`: each step takes the Hessian's
 * band from 9 comb-probe Hessian-vector products in one batched pass, factors it with the
 * banded Cholesky solver (adding τI where the obstacles make it indefinite) and backtracks.
 *
 * Constrained form (`--constrained`): the same smoothness objective with hard constraints,
 * p_0 = start, p_{N−1} = goal and ‖p_i − c_k‖² ≥ (r_k + 0.02)², solved by the interior-point
 * method (`ipm`) on the banded KKT system.
 *
 *   deno task demo [--constrained] [--points 256] [--weights scaled|ipopt] [--backend …] [--out …]
 *   deno task demo --help
 */
import { type Device, device, minimize, type MinimizeResult, tensor } from "../mod.ts";
import {
  BANDWIDTH,
  clearance,
  GOAL,
  MARGIN,
  OBSTACLES,
  START,
  trajectoryProblem,
  type Weighting,
} from "./trajectory_problem.ts";

const HELP = `Path planning around three circular obstacles by Newton's method on banded matrices.

  deno task demo [flags]

  --constrained          hard constraints (endpoints fixed, clearance ≥ ${MARGIN}), solved by the
                         interior-point method; default: the penalty form, solved by newton-banded
  --points N             number of points (default 256; 2N variables)
  --weights W            scaled: sums weighted like integrals over t ∈ [0, 1] with h = 1/(N − 1),
                         so N is resolution and solutions converge as N grows (default);
                         ipopt: W_acc = 40N, W_vel = 1 (the IPOPT reference's weights)
  --backend B            auto | cpu | webgpu (default auto: WebGPU if an adapter exists)
  --method M             penalty form: band recovery, direct | substitution (default direct)
  --max-iter K           iteration limit (default 100 penalty, 3000 constrained)
  --out FILE             the SVG to write (default trajectory-<form>-<weights>-N<N>.svg)
  --force                overwrite FILE if it exists (otherwise an existing file is an error)
  --help                 this text
`;

// `deno task demo -- --constrained` passes the "--" through: it ends no options here
const args = Deno.args.filter((a) => a !== "--");
if (args.includes("--help") || args.includes("-h")) {
  console.log(HELP);
  Deno.exit(0);
}
const KNOWN = new Set([
  "--constrained",
  "--points",
  "--weights",
  "--backend",
  "--method",
  "--max-iter",
  "--out",
  "--force",
  "--help",
]);
for (const a of args) {
  const name = a.split("=")[0];
  if (a.startsWith("--") && !KNOWN.has(name)) {
    console.error(`unknown flag ${name}\n\n${HELP}`);
    Deno.exit(2);
  }
}

function flag(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}

function fail(msg: string): never {
  console.error(msg);
  Deno.exit(2);
}

const constrained = args.includes("--constrained");
const N = Number(flag("points", "256"));
const weighting = flag("weights", "scaled") as Weighting;
const backend = flag("backend", "auto") as "auto" | "cpu" | "webgpu";
const method = flag("method", "direct") as "direct" | "substitution";
const maxIter = Number(flag("max-iter", constrained ? "3000" : "100"));
const form = constrained ? "constrained" : "penalty";
const out = flag("out", `trajectory-${form}-${weighting}-N${N}.svg`);
if (!Number.isInteger(N) || N < 5) {
  fail(`--points must be an integer ≥ 5, got ${flag("points", "")}`);
}
if (weighting !== "scaled" && weighting !== "ipopt") fail("--weights must be scaled or ipopt");
if (method !== "direct" && method !== "substitution") {
  fail("--method must be direct or substitution");
}
if (!(Number.isInteger(maxIter) && maxIter >= 0)) fail("--max-iter must be an integer ≥ 0");
if (!["auto", "cpu", "webgpu"].includes(backend)) fail("--backend must be auto, cpu or webgpu");
const exists = await Deno.stat(out).then(() => true, () => false);
if (exists && !args.includes("--force")) {
  fail(`${out} exists; pass --force to overwrite it, or --out another.svg`);
}

const dev: Device = await device({ backend });
const dtype = dev.kind === "cpu" ? "f64" : "f32";
const opts = { dtype, device: dev } as const;
const prob = trajectoryProblem(N, { weighting, dtype, device: dev });
console.log(
  `device: ${dev.description}; ${N} points, ${
    2 * N
  } variables (${dtype}), bandwidth ${BANDWIDTH}, ` +
    `${form} form, ${weighting} weights`,
);
const x0 = tensor(dtype === "f64" ? prob.init : Float32Array.from(prob.init), opts);

let last = performance.now();
const t0 = last;
const ms = () => {
  const now = performance.now(), d = now - last;
  last = now;
  return d.toFixed(1).padStart(8);
};
const e = (v: number | undefined, w: number, p = 3) => (v ?? 0).toExponential(p).padStart(w);
let result: MinimizeResult;
if (constrained) {
  console.log(
    " iter            f    violation  complement.    KKT error      μ      step      δ_w       ms",
  );
  result = await minimize(prob.smoothness, x0, {
    method: "ipm",
    bandwidth: BANDWIDTH,
    constraints: { eq: prob.eq, ineq: prob.ineq },
    maxIter,
    onIteration: (it) => {
      console.log(
        `${String(it.iteration).padStart(5)} ${e(it.fun, 12, 6)} ${
          e(it.constraintViolation, 12, 2)
        } ${e(it.complementarity, 12, 2)} ${e(it.kktError, 12, 2)} ${e(it.mu, 8, 1)} ${
          (it.stepSize ?? 0).toFixed(4).padStart(9)
        } ${e(it.shift, 8, 1)} ${ms()}`,
      );
    },
  });
} else {
  console.log(" iter            f          ‖g‖    step        τ       ms");
  result = await minimize(prob.penalty, x0, {
    method: "newton-banded",
    bandwidth: BANDWIDTH,
    bandMethod: method,
    // the rounding floor of ‖g‖ is about ε · (w_a ‖Δ²‖ ‖x‖): ≈ 1e-8 in f64, 5e-2 in f32
    gtol: dtype === "f64" ? 1e-7 : 0.1,
    maxIter,
    onIteration: (it) => {
      console.log(
        `${String(it.iteration).padStart(5)} ${e(it.fun, 13, 6)} ${e(it.gradNorm, 11)} ` +
          `${(it.stepSize ?? 0).toString().padStart(7)} ${e(it.shift, 8, 1)} ${ms()}`,
      );
    },
  });
}
const secs = ((performance.now() - t0) / 1000).toFixed(2);
console.log(
  `${result.message}: ${result.iterations} ${
    constrained ? "interior-point" : "Newton"
  } iterations, ` +
    `${result.nhvp} Hessian-vector products, ` +
    `f = ${result.fun.toPrecision(10)}, ${
      constrained
        ? `violation ${result.constraintViolation!.toExponential(2)}, KKT error ${
          result.kktError!.toExponential(2)
        } (unscaled ${result.kktResidual!.toExponential(2)})`
        : `‖g‖ = ${result.gradNorm.toExponential(2)}`
    }, ${secs} s`,
);

const final = await result.x.data();
console.log(
  `closest approach to an obstacle edge: ${clearance(final).toFixed(4)} (margin ${MARGIN})`,
);

// the picture: obstacles, the clearance each constraint keeps (dashed), both paths
const S = 600;
const X = (v: number) => (v * S).toFixed(2), Y = (v: number) => ((1 - v) * S).toFixed(2);
const path = (a: ArrayLike<number>) =>
  Array.from({ length: N }, (_, i) => `${X(a[2 * i])},${Y(a[2 * i + 1])}`).join(" ");
const circles = OBSTACLES.map((o) =>
  `<circle cx="${X(o.c[0])}" cy="${Y(o.c[1])}" r="${(o.r * S).toFixed(2)}" ` +
  `fill="#d9534f" fill-opacity="0.35" stroke="#a33"/>\n  ` +
  `<circle cx="${X(o.c[0])}" cy="${Y(o.c[1])}" r="${((o.r + MARGIN) * S).toFixed(2)}" ` +
  `fill="none" stroke="#a33" stroke-width="1" stroke-dasharray="3 3"/>`
).join("\n  ");
const title = constrained
  ? `interior point, hard constraints (dashed: clearance ${MARGIN})`
  : "Newton on the banded Hessian, obstacle penalty";
const svg =
  `<svg xmlns="http://www.w3.org/2000/svg" width="${S}" height="${S}" viewBox="0 0 ${S} ${S}">
  <rect width="${S}" height="${S}" fill="#fbfbf8"/>
  ${circles}
  <polyline points="${
    path(prob.init)
  }" fill="none" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4"/>
  <polyline points="${path(final)}" fill="none" stroke="#1f5fa8" stroke-width="2.5"/>
  <circle cx="${X(START[0])}" cy="${Y(START[1])}" r="6" fill="#2a2"/>
  <circle cx="${X(GOAL[0])}" cy="${Y(GOAL[1])}" r="6" fill="#222"/>
  <text x="10" y="20" font-family="sans-serif" font-size="13">initial path (dashed); ${title}: ${result.iterations} iterations, N = ${N}, ${dev.kind}</text>
</svg>
`;
await Deno.writeTextFile(out, svg);
console.log(`wrote ${out}`);
const m = result.multipliers;
for (const t of [x0, result.x, m?.eq, m?.ineq, m?.lower, m?.upper]) t?.dispose();
prob.dispose();
