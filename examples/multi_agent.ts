/**
 * Several agents cross a room at once: their trajectories are planned together by
 * Newton's method on a sparse Hessian that is not banded as written. Each agent has T
 * points in the plane; the variables are stored agent by agent, x of shape [A, T, 2]. The
 * cost is
 *
 *   T² Σ ‖p_a(t+1) − 2p_a(t) + p_a(t−1)‖²               squared accelerations
 * + 100 Σ_a (‖p_a(0) − start_a‖² + ‖p_a(T−1) − goal_a‖²)  end points held by penalties
 * + ½ Σ_t Σ_{a≠b} exp(−‖p_a(t) − p_b(t)‖² / 2r²)          collisions between agents at equal times
 *
 * The collision terms couple every two agents at each time, so in the caller's order the
 * Hessian's bandwidth is about 2T(A − 1). `minimize(f, x0, { method: "newton-sparse" })`
 * detects the pattern by tracing f, reorders it by reverse Cuthill–McKee (time-major, a
 * band of about 4A), factors each Newton system with the banded Cholesky solver (adding
 * τI while the collision terms make H indefinite) and returns x in the caller's order.
 * Writes `multi_agent.svg`.
 *
 *   deno run -A examples/multi_agent.ts [--agents 6] [--steps 64] [--backend cpu|webgpu] [--out multi_agent.svg]
 */
import {
  device,
  exp,
  hessianSparsity,
  minimize,
  reshape,
  reverseCuthillMcKee,
  slice,
  sum,
  type Tensor,
  tensor,
} from "../mod.ts";
import { claimOutput, FORCE, parseFlags } from "./cli.ts";

const flags = parseFlags(
  "Multi-agent trajectories by Newton's method on a detected sparse Hessian.",
  {
    agents: { default: "6", help: "how many agents" },
    steps: { default: "64", help: "points per trajectory" },
    backend: { default: "cpu", help: "cpu (f64, to ‖g‖ ≤ 1e-8) or webgpu (f32)" },
    out: { default: "multi_agent.svg", help: "where to write the picture" },
    force: FORCE,
  },
);
claimOutput(flags.out, flags.force);
const A = Number(flags.agents), T = Number(flags.steps);
if (!Number.isInteger(A) || A < 2) throw new RangeError("--agents must be an integer ≥ 2");
if (!Number.isInteger(T) || T < 4) throw new RangeError("--steps must be an integer ≥ 4");
const dev = await device({ backend: flags.backend as "cpu" | "webgpu" });
const dtype = dev.kind === "cpu" ? "f64" : "f32";
const o = { dtype, device: dev } as const;
const R = 0.25; // the collision penalty's length scale

// starts on a circle, goals opposite: every straight path crosses the centre
const start: number[][] = [], goal: number[][] = [];
for (let a = 0; a < A; a++) {
  const th = (2 * Math.PI * a) / A + 0.1;
  start.push([Math.cos(th), Math.sin(th)]);
  goal.push([-Math.cos(th), -Math.sin(th)]);
}
const s = tensor(start, o), g = tensor(goal, o);
const notSelf = tensor(
  Array.from({ length: A }, (_, a) => Array.from({ length: A }, (_, b) => (a === b ? 0 : 1))),
  o,
);

const f = (x: Tensor): Tensor => {
  const acc = slice(x, [0, 2, 0], [A, T, 2]).sub(slice(x, [0, 1, 0], [A, T - 1, 2]).mul(2))
    .add(slice(x, [0, 0, 0], [A, T - 2, 2]));
  const ends = slice(x, [0, 0, 0], [A, 1, 2]).sub(reshape(s, [A, 1, 2])).square().sum()
    .add(slice(x, [0, T - 1, 0], [A, T, 2]).sub(reshape(g, [A, 1, 2])).square().sum());
  const diff = reshape(x, [A, 1, T, 2]).sub(reshape(x, [1, A, T, 2])); // [A, A, T, 2]
  const d2 = sum(diff.square(), 3);
  const collide = sum(exp(d2.mul(-1 / (2 * R * R))).mul(reshape(notSelf, [A, A, 1])));
  return sum(acc.square()).mul(T * T).add(ends.mul(100)).add(collide.mul(0.5));
};

// start from straight lines, each bowed sideways by its own amount (no symmetry to get stuck in)
const init = new Float64Array(A * T * 2);
for (let a = 0; a < A; a++) {
  const side = [-start[a][1], start[a][0]];
  for (let t = 0; t < T; t++) {
    const u = t / (T - 1), bow = 0.04 * (a + 1) * Math.sin(Math.PI * u);
    for (let k = 0; k < 2; k++) {
      init[(a * T + t) * 2 + k] = (1 - u) * start[a][k] + u * goal[a][k] + bow * side[k];
    }
  }
}
const x0 = tensor(init, { ...o, shape: [A, T, 2] });

const pattern = hessianSparsity(f, x0);
console.log(
  `${dev.description}; ${A} agents × ${T} points = ${x0.size} variables (${dtype}); Hessian ` +
    `pattern: ${pattern.nnz} entries, bandwidth ${pattern.bandwidth} as written, ` +
    `${reverseCuthillMcKee(pattern.withDiagonal()).bandwidth} after reverse Cuthill–McKee`,
);
const t0 = performance.now();
const r = await minimize(f, x0, {
  method: "newton-sparse",
  gtol: dtype === "f64" ? 1e-8 : 0,
  onIteration: (i) =>
    console.log(
      `iter ${String(i.iteration).padStart(2)}  f ${i.fun.toFixed(10)}  ‖g‖ ${
        i.gradNorm.toExponential(2)
      }  step ${i.stepSize ?? "-"}  τ ${i.shift?.toExponential(2) ?? "-"}`,
    ),
});
console.log(
  `${r.message} after ${r.iterations} iterations (${r.nhvp} Hessian-vector products) in ${
    ((performance.now() - t0) / 1000).toFixed(2)
  } s; ‖g‖ = ${r.gradNorm.toExponential(2)}`,
);

// the closest approach between two agents at one time, before and after
const xs = await r.x.data();
const closest = (v: ArrayLike<number>) => {
  let m = Infinity;
  for (let t = 0; t < T; t++) {
    for (let a = 0; a < A; a++) {
      for (let b = a + 1; b < A; b++) {
        const [i, j] = [(a * T + t) * 2, (b * T + t) * 2];
        m = Math.min(m, Math.hypot(v[i] - v[j], v[i + 1] - v[j + 1]));
      }
    }
  }
  return m;
};
console.log(
  `closest approach: ${closest(init).toFixed(3)} before, ${closest(xs).toFixed(3)} after`,
);

// the picture: one colour per agent, dots every fourth point, start and goal marked
const px = (v: number) => (300 + 240 * v).toFixed(1);
const hue = (a: number) => `hsl(${Math.round((360 * a) / A)}, 70%, 45%)`;
const paths: string[] = [];
for (let a = 0; a < A; a++) {
  const pts = Array.from(
    { length: T },
    (_, t) => `${px(xs[(a * T + t) * 2])},${px(-xs[(a * T + t) * 2 + 1])}`,
  );
  paths.push(
    `<polyline points="${pts.join(" ")}" fill="none" stroke="${hue(a)}" stroke-width="2"/>`,
  );
  for (let t = 0; t < T; t += 4) {
    const [cx, cy] = pts[t].split(",");
    paths.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${hue(a)}"/>`);
  }
  paths.push(
    `<rect x="${+px(start[a][0]) - 5}" y="${+px(-start[a][1]) - 5}" width="10" height="10" fill="${
      hue(a)
    }"/>`,
    `<circle cx="${px(goal[a][0])}" cy="${px(-goal[a][1])}" r="6" fill="none" stroke="${
      hue(a)
    }" stroke-width="2"/>`,
  );
}
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="600" height="600" viewBox="0 0 600 600">
<rect width="600" height="600" fill="white"/>
<text x="10" y="20" font-family="sans-serif" font-size="13">${A} agents, ${T} points each: newton-sparse, ${r.iterations} iterations (squares: starts, rings: goals)</text>
${paths.join("\n")}
</svg>
`;
await Deno.writeTextFile(flags.out, svg);
console.log(`wrote ${flags.out}`);
for (const t of [r.x, x0, s, g, notSelf]) t.dispose();
