/**
 * The main demo (`deno task demo`): 2-D path planning for a point robot, solved by Newton's
 * method on a banded Hessian.
 *
 * N points p_0 … p_{N−1} go from a start to a goal around circular obstacles. The cost is
 *
 *   w_a Σ ‖p_{i+1} − 2p_i + p_{i−1}‖²   squared accelerations (second differences)
 * + w_v Σ ‖p_{i+1} − p_i‖²              a little path length (keeps the problem well conditioned in f32)
 * + w_o Σ_i Σ_k φ(r_k + m − ‖p_i − c_k‖)² a smooth penalty for entering an obstacle (φ = softplus)
 * + w_e (‖p_0 − start‖² + ‖p_{N−1} − goal‖²)  endpoints fixed by penalties.
 *
 * Variables are interleaved (x_0, y_0, x_1, y_1, …), so the Hessian is banded with
 * bandwidth 5: the second differences couple neighbouring points only. Each Newton step
 * takes the band from 11 comb-probe Hessian-vector products in one batched pass, factors it
 * with the banded Cholesky solver (adding τI where the obstacles make it indefinite) and
 * backtracks along the step.
 *
 *   deno task demo [--points 256] [--backend cpu|webgpu] [--out trajectory.svg] [--method direct|substitution]
 */
import {
  add,
  type Device,
  device,
  minimize,
  reshape,
  slice,
  softplus,
  sqrt,
  square,
  sub,
  sum,
  type Tensor,
  tensor,
} from "../mod.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < Deno.args.length) return Deno.args[i + 1];
  const eq = Deno.args.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}

const N = Number(flag("points", "256"));
const backend = flag("backend", "auto") as "auto" | "cpu" | "webgpu";
const out = flag("out", "trajectory.svg");
const method = flag("method", "direct") as "direct" | "substitution";
if (!Number.isInteger(N) || N < 4) {
  throw new RangeError(`--points must be an integer ≥ 4, got ${flag("points", "")}`);
}
if (method !== "direct" && method !== "substitution") {
  throw new RangeError(`--method must be direct or substitution`);
}

/** The embedded default problem. */
const START: [number, number] = [0.05, 0.5];
const GOAL: [number, number] = [0.95, 0.5];
const OBSTACLES = [
  { c: [0.32, 0.55], r: 0.13 },
  { c: [0.58, 0.38], r: 0.11 },
  { c: [0.8, 0.6], r: 0.09 },
];
const MARGIN = 0.02;
const W = { acc: 40 * N, vel: 1, obs: 400 / N, end: 1000 };
const KAPPA = 60; // sharpness of the obstacle penalty (1/length)

const dev: Device = await device({ backend });
const dtype = dev.kind === "cpu" ? "f64" : "f32";
const opts = { dtype, device: dev } as const;
console.log(
  `device: ${dev.description}; ${N} points, ${
    2 * N
  } variables (${dtype}), bandwidth 5, ${method} band recovery`,
);

const start = tensor(START, opts), goal = tensor(GOAL, opts);
const centres = OBSTACLES.map((o) => tensor(o.c, opts));

function cost(x: Tensor): Tensor {
  const p = reshape(x, [N, 2]);
  const next = slice(p, [1], [N]), prev = slice(p, [0], [N - 1]);
  const d2 = sub(add(slice(p, [2], [N]), slice(p, [0], [N - 2])), slice(p, [1], [N - 1]).mul(2));
  let f = sum(square(d2)).mul(W.acc).add(sum(square(sub(next, prev))).mul(W.vel));
  OBSTACLES.forEach((o, k) => {
    const dist = sqrt(sum(square(sub(p, centres[k])), 1).add(1e-9));
    const inside = softplus(dist.neg().add(o.r + MARGIN).mul(KAPPA)).div(KAPPA);
    f = f.add(sum(square(inside)).mul(W.obs * N));
  });
  const ends = sum(square(sub(slice(p, [0], [1]), start))).add(
    sum(square(sub(slice(p, [N - 1], [N]), goal))),
  );
  return f.add(ends.mul(W.end));
}

// the initial path: a gentle arc from start to goal, through the obstacles
const init = new Float64Array(2 * N);
for (let i = 0; i < N; i++) {
  const t = i / (N - 1);
  init[2 * i] = START[0] + t * (GOAL[0] - START[0]);
  init[2 * i + 1] = START[1] + t * (GOAL[1] - START[1]) + 0.08 * Math.sin(Math.PI * t);
}
const x0 = tensor(dtype === "f64" ? init : Float32Array.from(init), opts);

console.log(" iter            f          ‖g‖    step        τ       ms");
let last = performance.now();
const t0 = last;
const result = await minimize(cost, x0, {
  method: "newton-banded",
  bandwidth: 5,
  bandMethod: method,
  // the rounding floor of ‖g‖ is about ε · (w_a ‖Δ²‖ ‖x‖) ≈ 1e-8 in f64 and 5e-2 in f32
  gtol: dtype === "f64" ? 1e-7 : 0.1,
  maxIter: 60,
  onIteration: (it) => {
    const now = performance.now();
    console.log(
      `${String(it.iteration).padStart(5)} ${it.fun.toExponential(6).padStart(13)} ${
        it.gradNorm.toExponential(3).padStart(11)
      } ` +
        `${(it.stepSize ?? 0).toString().padStart(7)} ${
          (it.shift ?? 0).toExponential(1).padStart(8)
        } ${(now - last).toFixed(1).padStart(8)}`,
    );
    last = now;
  },
});
console.log(
  `${result.message}: ${result.iterations} Newton iterations, ${result.nhvp} Hessian-vector products, ` +
    `f = ${result.fun.toPrecision(10)}, ‖g‖ = ${result.gradNorm.toExponential(2)}, ${
      ((performance.now() - t0) / 1000).toFixed(2)
    } s`,
);

const final = await result.x.data();
// the smallest clearance of the final path from any obstacle edge
let clearance = Infinity;
for (let i = 0; i < N; i++) {
  for (const o of OBSTACLES) {
    clearance = Math.min(
      clearance,
      Math.hypot(final[2 * i] - o.c[0], final[2 * i + 1] - o.c[1]) - o.r,
    );
  }
}
console.log(`closest approach to an obstacle edge: ${clearance.toFixed(4)} (margin ${MARGIN})`);

// the picture
const S = 600;
const X = (v: number) => (v * S).toFixed(2), Y = (v: number) => ((1 - v) * S).toFixed(2);
const path = (a: ArrayLike<number>) =>
  Array.from({ length: N }, (_, i) => `${X(a[2 * i])},${Y(a[2 * i + 1])}`).join(" ");
const svg =
  `<svg xmlns="http://www.w3.org/2000/svg" width="${S}" height="${S}" viewBox="0 0 ${S} ${S}">
  <rect width="${S}" height="${S}" fill="#fbfbf8"/>
  ${
    OBSTACLES.map((o) =>
      `<circle cx="${X(o.c[0])}" cy="${Y(o.c[1])}" r="${
        (o.r * S).toFixed(2)
      }" fill="#d9534f" fill-opacity="0.35" stroke="#a33"/>`
    ).join("\n  ")
  }
  <polyline points="${
    path(init)
  }" fill="none" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4"/>
  <polyline points="${path(final)}" fill="none" stroke="#1f5fa8" stroke-width="2.5"/>
  <circle cx="${X(START[0])}" cy="${Y(START[1])}" r="6" fill="#2a2"/>
  <circle cx="${X(GOAL[0])}" cy="${Y(GOAL[1])}" r="6" fill="#222"/>
  <text x="10" y="20" font-family="sans-serif" font-size="13">initial path (dashed), Newton on the banded Hessian (blue): ${result.iterations} iterations, ${dev.kind}</text>
</svg>
`;
await Deno.writeTextFile(out, svg);
console.log(`wrote ${out}`);
for (const t of [start, goal, ...centres, x0, result.x]) t.dispose();
