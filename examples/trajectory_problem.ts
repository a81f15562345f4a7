/**
 * The trajectory problem of the demo, in one place for the demo and the benchmarks: N points
 * p_0 … p_{N−1} from a start to a goal around three circular obstacles, variables interleaved
 * (x_0, y_0, x_1, y_1, …) so that every Hessian and Jacobian is banded.
 *
 * Two forms:
 * - penalty: squared accelerations + a little length + a smooth obstacle penalty + endpoint
 *   penalties, unconstrained (`newton-banded`, `trust-exact`);
 * - constrained: squared accelerations + length subject to p_0 = start, p_{N−1} = goal and
 *   ‖p_i − c_k‖² ≥ (r_k + margin)² for every point and obstacle (`ipm`).
 *
 * Two weightings:
 * - "scaled" (the default): with spacing h = 1/(N − 1), the sums approximate integrals over
 *   t ∈ [0, 1], ∫‖p''‖² dt ≈ Σ‖Δ²p‖²/h³, ∫‖p'‖² dt ≈ Σ‖Δp‖²/h, ∫φ(p)² dt ≈ h Σφ², so N is the
 *   resolution of one continuous problem and solutions converge as N grows. The constants are
 *   the ones that make N = 256 match the "ipopt" weights.
 * - "ipopt": the weights the IPOPT reference (`../shared/reference/ipopt/traj.c`) and the
 *   figures of issue 13 use: W_acc = 40N, W_vel = 1, obstacle weight 400 per point, endpoint
 *   weight 1000. They do not scale with N: the obstacle penalty's total grows with N while the
 *   smoothness terms shrink, so large N gives looping paths among many local minima.
 */
import {
  add,
  concat,
  type Device,
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

export const START: [number, number] = [0.05, 0.5];
export const GOAL: [number, number] = [0.95, 0.5];
export const OBSTACLES: { c: [number, number]; r: number }[] = [
  { c: [0.32, 0.55], r: 0.13 },
  { c: [0.58, 0.38], r: 0.11 },
  { c: [0.8, 0.6], r: 0.09 },
];
/** Clearance kept from every obstacle. */
export const MARGIN = 0.02;
/** Sharpness of the penalty form's softplus (1/length). */
export const KAPPA = 60;
/** The Hessian's bandwidth in the interleaved order: Δ² couples p_i with p_{i±2}. */
export const BANDWIDTH = 4;

export type Weighting = "scaled" | "ipopt";

/** The weights of the sums for N points. */
export function weights(
  n: number,
  w: Weighting,
): { acc: number; vel: number; obs: number; end: number } {
  if (w === "ipopt") return { acc: 40 * n, vel: 1, obs: 400, end: 1000 };
  const h = 1 / (n - 1);
  // A ∫‖p''‖², V ∫‖p'‖², O ∫φ²: A = 40·256/255³, V = 1/255, O = 400·255 match N = 256
  const A = 40 * 256 / 255 ** 3, V = 1 / 255, O = 400 * 255;
  return { acc: A / h ** 3, vel: V / h, obs: O * h, end: 1000 };
}

/** The trajectory problem for N points on a device. */
export interface TrajectoryProblem {
  n: number;
  /** The smoothness terms (the constrained form's objective). */
  smoothness: (x: Tensor) => Tensor;
  /** The penalty form's objective. */
  penalty: (x: Tensor) => Tensor;
  /** p_0 − start, p_{N−1} − goal (= 0). */
  eq: (x: Tensor) => Tensor;
  /** ‖p_i − c_k‖² − (r_k + margin)², ordered (i, k) (≥ 0). */
  ineq: (x: Tensor) => Tensor;
  /** The initial arc (host, f64). */
  init: Float64Array;
  /** Frees the problem's constant tensors. */
  dispose(): void;
}

/** Builds the problem (its constants live on `device` in `dtype`). */
export function trajectoryProblem(
  n: number,
  opts: { weighting: Weighting; dtype: "f32" | "f64"; device: Device },
): TrajectoryProblem {
  const o = { dtype: opts.dtype, device: opts.device } as const;
  const W = weights(n, opts.weighting);
  const ends = tensor([...START, ...GOAL], o);
  const radii = OBSTACLES.map((b) => b.r + MARGIN);
  // shaped at creation (a reshape of a fresh tensor would leave the unshaped one unowned)
  const centres = tensor(OBSTACLES.flatMap((b) => b.c), { ...o, shape: [1, OBSTACLES.length, 2] });
  const r2 = tensor(radii.map((r) => r * r), { ...o, shape: [1, OBSTACLES.length] });
  const rr = tensor(radii, { ...o, shape: [1, OBSTACLES.length] });

  const smoothness = (x: Tensor) => {
    const p = reshape(x, [n, 2]);
    const d2 = sub(add(slice(p, [2], [n]), slice(p, [0], [n - 2])), slice(p, [1], [n - 1]).mul(2));
    const d1 = sub(slice(p, [1], [n]), slice(p, [0], [n - 1]));
    return sum(square(d2)).mul(W.acc).add(sum(square(d1)).mul(W.vel));
  };
  const eq = (x: Tensor) => sub(concat([slice(x, [0], [2]), slice(x, [2 * n - 2], [2 * n])]), ends);
  const dist2 = (x: Tensor) => sum(square(sub(reshape(x, [n, 1, 2]), centres)), 2);
  const ineq = (x: Tensor) => reshape(sub(dist2(x), r2), [n * OBSTACLES.length]);
  const penalty = (x: Tensor) => {
    const dist = sqrt(dist2(x).add(1e-9));
    const inside = softplus(sub(rr, dist).mul(KAPPA)).div(KAPPA);
    const endPen = sum(square(eq(x))).mul(W.end);
    return smoothness(x).add(sum(square(inside)).mul(W.obs)).add(endPen);
  };

  // the initial path: a gentle arc from start to goal, through the obstacles
  const init = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const t = i / (n - 1);
    init[2 * i] = START[0] + t * (GOAL[0] - START[0]);
    init[2 * i + 1] = START[1] + t * (GOAL[1] - START[1]) + 0.08 * Math.sin(Math.PI * t);
  }
  return {
    n,
    smoothness,
    penalty,
    eq,
    ineq,
    init,
    dispose: () => {
      for (const t of [ends, centres, r2, rr]) t.dispose();
    },
  };
}

/** The smallest distance of a path (host, interleaved) from any obstacle's edge. */
export function clearance(path: ArrayLike<number>): number {
  let c = Infinity;
  for (let i = 0; 2 * i < path.length; i++) {
    for (const o of OBSTACLES) {
      c = Math.min(c, Math.hypot(path[2 * i] - o.c[0], path[2 * i + 1] - o.c[1]) - o.r);
    }
  }
  return c;
}
