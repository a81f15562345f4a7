/**
 * The second-order check of the Hessian-free methods: at a point they would call optimal,
 * a few Lanczos steps on Hessian-vector products estimate H's smallest eigenvalue, so a
 * saddle is not reported as a minimum.
 */
import type { Tensor } from "../tensor.ts";
import type { FloatDtype } from "../dtype.ts";
import { add, div, maximum, mul, sqrt, sub } from "../ops/elementwise.ts";
import { rademacher } from "../ops/creation.ts";
import { reshape, stack } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import { tridiagonalEigen } from "../linalg/tridiagonal.ts";
import type { MinimizeProblem } from "./types.ts";
import { disposeAll, epsOf, readScalars, type Stop, STOPS, vdot } from "./objective.ts";
import { pointScalars, stepTo, type Trial } from "./line_search.ts";

/** Lanczos steps of the check (Hessian-vector products spent, at most n). */
export const LANCZOS_STEPS = 16;

/** What the check found. */
export interface Curvature {
  /** The smallest Ritz value: an upper bound on λ_min(H), usually close after 16 steps. */
  lowest: number;
  /** The largest |Ritz value|: about ‖H‖₂, the scale `lowest` is judged against. */
  scale: number;
  /** The unit Ritz vector of `lowest` (x's shape); the caller owns it. */
  vector: Tensor;
}

/**
 * Lanczos on `prob.hvp` at x from a fixed Rademacher start, with full reorthogonalisation
 * (each new vector projected off all earlier ones, twice), min(n, 16) steps, the
 * tridiagonal matrix read back once and solved on the host.
 */
export async function lowestCurvature(prob: MinimizeProblem, x: Tensor): Promise<Curvature> {
  const n = x.size;
  const m = Math.min(n, LANCZOS_STEPS);
  const like = { dtype: x.dtype as FloatDtype, device: x.device };
  const Q: Tensor[] = [tidy(() => div(rademacher([n], { seed: 11, ...like }), Math.sqrt(n)))];
  const ab: Tensor[] = [];
  try {
    for (let j = 0; j < m; j++) {
      const q = Q[j];
      const [alpha, beta, next] = tidy(() => {
        let w = reshape(prob.hvp(x, reshape(q, x.shape)), [n]);
        const alpha = vdot(q, w);
        for (let pass = 0; pass < 2; pass++) {
          for (const qi of Q) w = sub(w, mul(qi, vdot(qi, w)));
        }
        const beta = sqrt(vdot(w, w));
        return [alpha, beta, div(w, maximum(beta, Number.MIN_VALUE))];
      });
      ab.push(alpha, beta);
      if (j + 1 < m) Q.push(next);
      else next.dispose();
    }
    const packed = tidy(() => stack(ab));
    const v = await readScalars(packed);
    packed.dispose();
    const alphas = v.filter((_, i) => i % 2 === 0), betas = v.filter((_, i) => i % 2 === 1);
    // an invariant subspace ends the Krylov space: β tiny against the matrix's scale
    const big = Math.max(...alphas.map(Math.abs), ...betas.map(Math.abs));
    let r = 1;
    while (r < m && betas[r - 1] > 1e-10 * big) r++;
    const { values, vectors } = tridiagonalEigen(alphas.slice(0, r), betas.slice(0, r - 1));
    let lo = 0;
    for (let i = 1; i < r; i++) if (values[i] < values[lo]) lo = i;
    const scale = Math.max(...Array.from(values, Math.abs));
    const vector = tidy(() => {
      let y = mul(Q[0], vectors[lo]);
      for (let i = 1; i < r; i++) y = y.add(mul(Q[i], vectors[i * r + lo]));
      return reshape(div(y, sqrt(vdot(y, y))), x.shape);
    });
    return { lowest: values[lo], scale, vector };
  } finally {
    for (const t of [...Q, ...ab]) t.dispose();
  }
}

/**
 * Relative size of the curvature below which the second-order checks call H positive
 * semidefinite: λ_min ≥ −tol · ‖H‖, tol = √ε in f64 and 10⁻³ in f32 (Hessian products and
 * bands carry rounding of about ε ‖H‖ times the terms per entry).
 */
export function curvatureTolerance(dtype: string): number {
  return dtype === "f64" ? 2 ** -26 : 1e-3;
}

/** Trials of {@linkcode firstLower} evaluated before each read-back. */
const TRIALS_PER_READ = 8;

/**
 * The first trial x + α d (d over `dirs`, tried in turn at each α) with f below
 * `below(α)`, for α = α₀, α₀/2, … (`halvings` of them); null when none is. The trials' f
 * come from the value pass, {@linkcode TRIALS_PER_READ} per read-back (a probe at a
 * minimum runs to its end), and the gradient only at the trial taken.
 */
async function firstLower(
  prob: MinimizeProblem,
  x: Tensor,
  dirs: Tensor[],
  alpha0: number,
  halvings: number,
  below: (alpha: number) => number,
): Promise<Trial | null> {
  const trials: { d: Tensor; a: number }[] = [];
  for (let i = 0, a = alpha0; i < halvings; i++, a *= 0.5) {
    for (const d of dirs) trials.push({ d, a });
  }
  for (let at = 0; at < trials.length; at += TRIALS_PER_READ) {
    const chunk = trials.slice(at, at + TRIALS_PER_READ);
    const fs: Tensor[] = [];
    let vals: number[];
    try {
      for (const { d, a } of chunk) {
        const xt = stepTo(x, d, a);
        try {
          fs.push(prob.value(xt));
        } finally {
          xt.dispose();
        }
      }
      vals = await readScalars(...fs);
    } finally {
      disposeAll(...fs);
    }
    const k = chunk.findIndex(({ a }, i) => vals[i] < below(a));
    if (k < 0) continue;
    const { d, a } = chunk[k];
    const xt = stepTo(x, d, a);
    const [ft, gt] = prob.valueAndGrad(xt);
    const [f, gnorm, xnorm] = await pointScalars(ft, gt, xt);
    return { x: xt, g: gt, f, gnorm, xnorm, t: a };
  }
  return null;
}

/**
 * A step from a stationary point along the unit direction `v` of curvature `lowest` < 0:
 * d = ±v (the sign that does not climb), step lengths α = max(1, ‖x‖), α/2, … (at most 40),
 * taken at the first with f(x + αd) < f − ¼ α² |lowest| (the decrease the curvature
 * promises, halved: Moré & Sorensen's second-order sufficient decrease). Returns null when
 * no α gives it.
 */
export async function escape(
  prob: MinimizeProblem,
  x: Tensor,
  f: number,
  g: Tensor,
  v: Tensor,
  lowest: number,
  xnorm: number,
): Promise<Trial | null> {
  const gvT = vdot(g, v);
  const [gv] = await readScalars(gvT);
  gvT.dispose();
  const d = tidy(() => mul(v, gv > 0 ? -1 : 1));
  try {
    const a0 = Math.max(1, xnorm);
    return await firstLower(prob, x, [d], a0, 40, (a) => f - 0.25 * a * a * Math.abs(lowest));
  } finally {
    d.dispose();
  }
}

/** Halvings of the null-direction probe: steps from max(1, ‖x‖) down to 2⁻¹¹ of it. */
export const NULL_PROBES = 12;

/**
 * The probe at a stationary point whose Hessian is singular to tolerance (0 ≤ λ_min ≲
 * tol ‖H‖, unit vector `z` of it): there the quadratic model cannot tell a minimum from a
 * point where f falls at higher order along z (x² − y⁴ + y⁶ at the origin: g = 0, H =
 * diag(2, 0), f falls along y). f is evaluated at x ± α z, α = max(1, ‖x‖), α/2, … (12
 * lengths, 24 evaluations at most), and the first point with f(x ± αz) < f − ‖g‖ α − 10 ε |f|
 * is returned: a fall beyond what the gradient (‖g‖ < gtol) can give at first order, and
 * beyond rounding, so the point is no minimum. Null when f does not fall so along z.
 */
export async function probeNull(
  prob: MinimizeProblem,
  x: Tensor,
  f: number,
  z: Tensor,
  gnorm: number,
  xnorm: number,
): Promise<Trial | null> {
  const minus = tidy(() => mul(z, -1));
  const slack = 10 * epsOf(x.dtype) * Math.abs(f);
  try {
    const a0 = Math.max(1, xnorm);
    return await firstLower(prob, x, [z, minus], a0, NULL_PROBES, (a) => f - gnorm * a - slack);
  } finally {
    minus.dispose();
  }
}

/**
 * The end of a run at a point with ‖g‖ < gtol whose Hessian is positive semidefinite but
 * singular to tolerance (unit null direction `z`, which this frees): the probe's point
 * when f falls along z ({@linkcode probeNull}: no minimum, the run goes on from there), else
 * `converged` with a message that says the Hessian is singular and what was checked.
 */
export async function settleSingular(
  prob: MinimizeProblem,
  x: Tensor,
  f: number,
  g: Tensor,
  xnorm: number,
  s: { lowest: number; scale: number; z: Tensor },
): Promise<Stop | Trial> {
  try {
    const z = tidy(() => reshape(s.z, x.shape));
    try {
      const gnT = tidy(() => sqrt(vdot(g, g)));
      const [gnorm] = await readScalars(gnT);
      gnT.dispose();
      return (await probeNull(prob, x, f, z, gnorm, xnorm)) ??
        STOPS.convergedSingular(s.lowest, curvatureTolerance(x.dtype) * s.scale);
    } finally {
      z.dispose();
    }
  } finally {
    s.z.dispose();
  }
}

/**
 * The second-order check of a Hessian-free method at a point with ‖g‖ < gtol: a local
 * minimum to the tolerance (`converged`, with the checked message), or a step off the
 * saddle along the negative curvature found, or the saddle stop when no step lowers f.
 */
export async function checkStationary(
  prob: MinimizeProblem,
  x: Tensor,
  f: number,
  g: Tensor,
  xnorm: number,
): Promise<Stop | Trial> {
  const c = await lowestCurvature(prob, x);
  const tol = curvatureTolerance(x.dtype) * c.scale;
  try {
    if (c.lowest < -tol) {
      return (await escape(prob, x, f, g, c.vector, c.lowest, xnorm)) ?? STOPS.saddle(c.lowest);
    }
    if (c.lowest > tol) return STOPS.converged(true);
    return await settleSingular(prob, x, f, g, xnorm, { ...c, z: tidy(() => add(c.vector, 0)) });
  } finally {
    c.vector.dispose();
  }
}
