/**
 * Sparse objectives shared by the newton-sparse tests and the sparse benchmarks, with
 * their derivatives written out by hand (never by the library):
 *
 * - a grid (image-denoising) objective whose Hessian is a 5-point stencil:
 *   f(u) = ½‖u − y‖² + λ Σ_edges √(ε² + (u_p − u_q)²) over horizontal and vertical
 *   neighbours of an h × w grid;
 * - several agents' trajectories with collision penalties at equal times (a block
 *   structure that is not banded in the caller's order: agent-major [A, T, 2]).
 */
import { exp, reshape, slice, sqrt, sum, type Tensor, tensor } from "../mod.ts";
import type { Device } from "../mod.ts";

/** The grid objective; `y` is the noisy image [h, w]. */
export function gridObjective(h: number, w: number, y: Tensor, lam = 0.3, eps = 0.1) {
  return (x: Tensor): Tensor => {
    const u = reshape(x, [h, w]);
    const dx = slice(u, [1, 0], [h, w]).sub(slice(u, [0, 0], [h - 1, w]));
    const dy = slice(u, [0, 1], [h, w]).sub(slice(u, [0, 0], [h, w - 1]));
    const tv = sum(sqrt(dx.square().add(eps * eps))).add(sum(sqrt(dy.square().add(eps * eps))));
    return sum(reshape(x, [h, w]).sub(y).square()).mul(0.5).add(tv.mul(lam));
  };
}

/** Calls `edge(p, q)` for every neighbour pair (p below or right of q) of an h × w grid. */
function forEachEdge(h: number, w: number, edge: (p: number, q: number) => void): void {
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      if (r + 1 < h) edge((r + 1) * w + c, r * w + c);
      if (c + 1 < w) edge(r * w + c + 1, r * w + c);
    }
  }
}

/** ∇f by hand: u − y + λ Σ_edges φ'(d) (e_p − e_q), φ'(d) = d / √(ε² + d²). */
export function gridGradientByHand(
  h: number,
  w: number,
  u: ArrayLike<number>,
  y: ArrayLike<number>,
  lam = 0.3,
  eps = 0.1,
): Float64Array {
  const g = Float64Array.from(u, (v, i) => v - y[i]);
  forEachEdge(h, w, (p, q) => {
    const d = u[p] - u[q];
    const s = lam * d / Math.sqrt(eps * eps + d * d);
    g[p] += s;
    g[q] -= s;
  });
  return g;
}

/**
 * The Hessian by hand, as a map from "i,j" to the entry: I + λ Σ_edges φ''(d) (e_p − e_q)
 * (e_p − e_q)ᵀ with φ''(d) = ε² / (ε² + d²)^{3/2}.
 */
export function gridHessianByHand(
  h: number,
  w: number,
  u: ArrayLike<number>,
  lam = 0.3,
  eps = 0.1,
): Map<string, number> {
  const H = new Map<string, number>();
  const add = (i: number, j: number, v: number) =>
    H.set(`${i},${j}`, (H.get(`${i},${j}`) ?? 0) + v);
  for (let i = 0; i < h * w; i++) add(i, i, 1);
  forEachEdge(h, w, (p, q) => {
    const d = u[p] - u[q];
    const c = lam * eps * eps / Math.pow(eps * eps + d * d, 1.5);
    add(p, p, c);
    add(q, q, c);
    add(p, q, -c);
    add(q, p, -c);
  });
  return H;
}

/** A test image: a disc and a ramp, plus deterministic "noise". */
export function noisyImage(h: number, w: number): Float64Array {
  const y = new Float64Array(h * w);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const disc = (r - h / 2) ** 2 + (c - w / 3) ** 2 < (Math.min(h, w) / 4) ** 2 ? 1 : 0;
      const ramp = c > (2 * w) / 3 ? r / h : 0;
      y[r * w + c] = disc + ramp + 0.15 * Math.sin(12.9898 * r + 78.233 * c + r * c);
    }
  }
  return y;
}

/** Agents' start and goal points: on a circle of radius 1, each going to the opposite side. */
export function agentEndpoints(agents: number): { start: number[][]; goal: number[][] } {
  const start: number[][] = [], goal: number[][] = [];
  for (let a = 0; a < agents; a++) {
    const th = (2 * Math.PI * a) / agents + 0.1;
    start.push([Math.cos(th), Math.sin(th)]);
    goal.push([-Math.cos(th), -Math.sin(th)]);
  }
  return { start, goal };
}

/**
 * Multi-agent trajectories, x of shape [A, T, 2] (agent-major, the caller's order):
 * squared accelerations, the end points held by penalties, and a Gaussian collision
 * penalty exp(−‖p_a(t) − p_b(t)‖² / (2r²)) between every two agents at each time. The
 * Hessian couples all agents at one time and each agent with itself two steps away: a
 * bandwidth of about 2T(A − 1) as written, about 4A after reordering by time.
 */
export function agentsObjective(
  agents: number,
  steps: number,
  o: { dtype: "f32" | "f64"; device: Device },
  r = 0.25,
) {
  const { start, goal } = agentEndpoints(agents);
  const s = tensor(start, o), g = tensor(goal, o);
  const mask = tensor(
    Array.from(
      { length: agents },
      (_, a) => Array.from({ length: agents }, (_, b) => (a === b ? 0 : 1)),
    ),
    o,
  );
  const T = steps;
  const f = (x: Tensor): Tensor => {
    const acc = slice(x, [0, 2, 0], [agents, T, 2]).sub(
      slice(x, [0, 1, 0], [agents, T - 1, 2]).mul(2),
    )
      .add(slice(x, [0, 0, 0], [agents, T - 2, 2]));
    const ends = slice(x, [0, 0, 0], [agents, 1, 2]).sub(reshape(s, [agents, 1, 2])).square().sum()
      .add(slice(x, [0, T - 1, 0], [agents, T, 2]).sub(reshape(g, [agents, 1, 2])).square().sum());
    const diff = reshape(x, [agents, 1, T, 2]).sub(reshape(x, [1, agents, T, 2]));
    const d2 = sum(diff.square(), 3); // [A, A, T]
    const col = sum(exp(d2.mul(-1 / (2 * r * r))).mul(reshape(mask, [agents, agents, 1])));
    return sum(acc.square()).mul(T * T).add(ends.mul(100)).add(col.mul(0.5));
  };
  /**
   * Nearly straight lines from start to goal (they all cross the centre: collisions to
   * resolve), each bowed sideways by its own amount so no symmetry pins them together.
   */
  const straight = () => {
    const v = new Float64Array(agents * T * 2);
    for (let a = 0; a < agents; a++) {
      const side = [-start[a][1], start[a][0]]; // perpendicular to the path
      for (let t = 0; t < T; t++) {
        const u = t / (T - 1), bow = 0.04 * (a + 1) * Math.sin(Math.PI * u);
        for (let k = 0; k < 2; k++) {
          v[(a * T + t) * 2 + k] = (1 - u) * start[a][k] + u * goal[a][k] + bow * side[k];
        }
      }
    }
    return tensor(v, { ...o, shape: [agents, T, 2] });
  };
  return { f, straight, dispose: () => [s, g, mask].forEach((t) => t.dispose()) };
}
