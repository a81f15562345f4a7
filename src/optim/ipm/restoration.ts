/**
 * Feasibility restoration (Wächter & Biegler 2006, A-9 and §3.3), simplified: when the
 * filter line search finds no acceptable step length (or no shift makes the Newton matrix
 * positive definite), the method looks for a less infeasible point by minimising
 *
 *   ψ(x) = ½ ‖c_E(x)‖² + ½ ‖min(c_I(x), 0)‖² − μ Σ ln(x − x_L) − μ Σ ln(x_U − x)
 *
 * with Levenberg–Marquardt steps, (J_Eᵀ J_E + J_Vᵀ J_V + Σ_x + λ I) dx = −∇ψ, where V are the
 * violated inequalities. The Gauss–Newton matrix is again the Hessian of a stacked function
 * with zero residuals (`ConstrainedProblem.condensedHessian` with w = 0), so it has the
 * problem's band and the same banded Cholesky solves it. IPOPT solves a second
 * interior-point problem (ℓ₁ elastic variables and a proximal term) instead; Gauss–Newton
 * keeps the same structure with less machinery, and where it stalls at a stationary point
 * of ψ with ψ > 0 it has found what IPOPT reports as "converged to a point of local
 * infeasibility": the problem is reported infeasible, not converged.
 *
 * A failed restoration hands back the iterate it started from (the method's last, which ψ's
 * barrier terms may leave less violated than restoration's own last point): the result's x,
 * and the violation its message and `constraintViolation` report, are that iterate's.
 *
 * The restored point has slacks s = max(c_I(x), μ), bound multipliers z = μ/s (centred) and
 * μ / distance, and constraint multipliers y = λ = 0 (as IPOPT with its default
 * constr_mult_reset_threshold = 0).
 */
import type { Tensor } from "../../tensor.ts";
import {
  abs,
  add,
  div,
  less,
  log,
  maximum,
  minimum,
  mul,
  neg,
  square,
  sub,
} from "../../ops/elementwise.ts";
import { max, sum } from "../../ops/reduce.ts";
import { concat, reshape, slice } from "../../ops/movement.ts";
import { ones, zeros } from "../../ops/creation.ts";
import { tidy } from "../../memory.ts";
import {
  type BoundSet,
  disposeIterate,
  distances,
  fractionToBoundary,
  type Iterate,
  split,
  thetaAndBarrier,
} from "./barrier.ts";
import type { CondensedStorage } from "./kkt.ts";
import type { Filter } from "./filter.ts";
import type { ConstrainedProblem, Evaluation } from "./problem.ts";

/** How restoration ended. */
export type Restoration =
  | { kind: "restored"; it: Iterate; iterations: number }
  | { kind: "infeasible" | "failed"; it: Iterate; iterations: number; message: string };

/** κ_resto: restoration ends once θ ≤ κ_resto θ_k (and the point is acceptable to the filter). */
const KAPPA_RESTO = 0.9;

interface Point {
  x: Tensor;
  ev: Evaluation;
}

/** ψ, ‖∇ψ‖∞, the largest violation and ∇ψ at a point (∇ψ on the device). */
async function psiAt(
  prob: ConstrainedProblem,
  p: Point,
  b: BoundSet,
  mu: number,
  read: (...ts: Tensor[]) => Promise<number[]>,
): Promise<{ psi: number; gmax: number; viol: number; g: Tensor }> {
  const { mE, mI } = prob;
  const o = { dtype: p.x.dtype, device: p.x.device } as const;
  const ct = tidy(() => {
    const { cE, cI } = split(p.ev.values, mE, mI);
    const parts = [zeros([1], o)];
    if (cE) parts.push(cE);
    if (cI) parts.push(minimum(cI, 0));
    return concat(parts, 0);
  });
  const pulled = prob.pull(p.ev, ct);
  const [g, scalars] = tidy(() => {
    const { cE, cI } = split(p.ev.values, mE, mI);
    let g = pulled, psi = mul(sum(square(ct)), 0.5), viol = zeros([], o);
    if (cE) viol = max(abs(cE));
    if (cI) viol = maximum(viol, max(neg(cI)));
    const { dl, du } = distances(p.x, b);
    if (dl) {
      g = sub(g, div(mul(b.hasLower!, mu), dl));
      psi = sub(psi, mul(sum(mul(b.hasLower!, log(dl))), mu));
    }
    if (du) {
      g = add(g, div(mul(b.hasUpper!, mu), du));
      psi = sub(psi, mul(sum(mul(b.hasUpper!, log(du))), mu));
    }
    return [g, [psi, max(abs(g)), viol]] as const;
  });
  ct.dispose();
  if (g !== pulled) pulled.dispose();
  try {
    const [psi, gmax, viol] = await read(...scalars);
    return { psi, gmax, viol, g };
  } finally {
    for (const t of scalars) t.dispose();
  }
}

/**
 * Restoration from `it` (which it takes over: the result's iterate replaces it). `tol` is
 * the KKT tolerance: ψ stationary (‖∇ψ‖∞ ≤ tol) with a violation above it means infeasible.
 */
export async function restoreFeasibility(
  prob: ConstrainedProblem,
  it: Iterate,
  b: BoundSet,
  storage: CondensedStorage,
  filter: Filter,
  mu: number,
  tol: number,
  eps: number,
  maxIter: number,
  read: (...ts: Tensor[]) => Promise<number[]>,
): Promise<Restoration> {
  const { mE, mI } = prob;
  const o = { dtype: it.x.dtype, device: it.x.device } as const;
  const thetaStart = it.theta;
  let p: Point = { x: tidy(() => add(it.x, 0)), ev: prob.evaluate(it.x) };
  let lambda = -1;
  let state = await psiAt(prob, p, b, mu, read);
  const give = (kind: "infeasible" | "failed", message: string, k: number): Restoration => {
    state.g.dispose();
    p.x.dispose();
    p.ev.values.dispose();
    p.ev.back.dispose();
    return { kind, it, iterations: k, message };
  };
  for (let k = 0; k < maxIter; k++) {
    // the candidate iterate at p: slacks max(c_I, μ), then θ and φ against the filter
    const cand = await candidate(prob, p, b, mu, read);
    const phi = cand.f - mu * cand.barrier;
    if (
      k > 0 && cand.theta <= KAPPA_RESTO * thetaStart && filter.acceptable(cand.theta, phi)
    ) {
      state.g.dispose();
      disposeIterate(it);
      return { kind: "restored", it: centred(prob, p, cand, b, mu), iterations: k };
    }
    cand.s?.dispose();
    if (state.viol <= tol && k > 0) {
      return give("failed", "feasible, but not acceptable to the filter", k);
    }
    if (state.viol > tol && state.gmax <= Math.max(tol, 100 * eps) * Math.max(1, state.viol)) {
      return give(
        "infeasible",
        "the constraints appear infeasible: restoration converged to a stationary point of " +
          "the violation",
        k,
      );
    }
    // Levenberg–Marquardt: (G + Σ_x + λ I) dx = −∇ψ
    const sigma = tidy(() => {
      const { cI } = split(p.ev.values, mE, mI);
      return concat([
        zeros([1], o),
        ...(mE ? [ones([mE], o)] : []),
        ...(cI ? [less(cI, 0).astype(o.dtype)] : []),
      ], 0);
    });
    const w = zeros([1 + mE + mI], o);
    const band = prob.condensedHessian(p.x, w, sigma, storage.bandwidth);
    w.dispose();
    sigma.dispose();
    const diag = tidy(() => {
      const { dl, du } = distances(p.x, b);
      let d = zeros([prob.n], o);
      if (dl) d = add(d, div(mul(b.hasLower!, mu), square(dl)));
      if (du) d = add(d, div(mul(b.hasUpper!, mu), square(du)));
      return d;
    });
    const K = storage.assemble(band, diag);
    diag.dispose();
    if (lambda < 0) {
      // Nielsen's start: λ₀ = 10⁻⁶ max G_ii
      const dmax = K.diagonalMax();
      const [gmax] = await read(dmax);
      dmax.dispose();
      lambda = 1e-6 * Math.max(gmax, eps);
    }
    let accepted = false;
    for (let tries = 0; tries < 40 && !accepted; tries++) {
      const rhs = neg(state.g);
      const dx = K.solve(lambda, 0, rhs);
      rhs.dispose();
      const alphaT = tidy(() => {
        const { dl, du } = distances(p.x, b);
        const pairs: [Tensor, Tensor][] = [];
        if (dl) pairs.push([dl, mul(b.hasLower!, dx)]);
        if (du) pairs.push([du, neg(mul(b.hasUpper!, dx))]);
        return fractionToBoundary(0.99, pairs, dx);
      });
      const [alpha] = await read(alphaT);
      alphaT.dispose();
      const x = tidy(() => add(p.x, mul(dx, alpha)));
      dx.dispose();
      const q: Point = { x, ev: prob.evaluate(x) };
      const next = await psiAt(prob, q, b, mu, read);
      if (next.psi < state.psi) {
        accepted = true;
        state.g.dispose();
        p.x.dispose();
        p.ev.values.dispose();
        p.ev.back.dispose();
        p = q;
        state = next;
        lambda = Math.max(lambda / 3, 1e-20);
      } else {
        next.g.dispose();
        q.x.dispose();
        q.ev.values.dispose();
        q.ev.back.dispose();
        lambda *= 4;
      }
    }
    K.dispose();
    if (!accepted) {
      // no step, not even a tiny steepest-descent one (λ grew 4⁴⁰-fold), reduces ψ: a
      // local minimiser of the violation within the precision
      if (state.viol > tol) {
        return give(
          "infeasible",
          `the constraints appear infeasible: no step reduces the violation any further ` +
            `(‖∇ψ‖∞ = ${state.gmax.toExponential(2)})`,
          k,
        );
      }
      return give("failed", "no Levenberg–Marquardt step reduced the violation", k);
    }
  }
  return give("failed", `no acceptable point within ${maxIter} restoration iterations`, maxIter);
}

interface Candidate {
  s: Tensor | null;
  f: number;
  theta: number;
  barrier: number;
}

async function candidate(
  prob: ConstrainedProblem,
  p: Point,
  b: BoundSet,
  mu: number,
  read: (...ts: Tensor[]) => Promise<number[]>,
): Promise<Candidate> {
  const { mE, mI } = prob;
  const s = mI ? tidy(() => maximum(split(p.ev.values, mE, mI).cI!, mu)) : null;
  const [theta, bar] = thetaAndBarrier(p.ev.values, p.x, s, b, mE, mI);
  const f = tidy(() => reshape(slice(p.ev.values, [0], [1]), []));
  const v = await read(f, theta, bar);
  for (const t of [f, theta, bar]) t.dispose();
  return { s, f: v[0], theta: v[1], barrier: v[2] };
}

/** The restored iterate: centred bound multipliers z = μ/s and μ/d, y = λ = 0. */
function centred(
  prob: ConstrainedProblem,
  p: Point,
  c: Candidate,
  b: BoundSet,
  mu: number,
): Iterate {
  const o = { dtype: p.x.dtype, device: p.x.device } as const;
  const m = tidy(() => {
    const { dl, du } = distances(p.x, b);
    return {
      y: prob.mE ? zeros([prob.mE], o) : null,
      lam: prob.mI ? zeros([prob.mI], o) : null,
      z: c.s ? div(mu, c.s) : null,
      zL: dl ? mul(b.hasLower!, div(mu, dl)) : null,
      zU: du ? mul(b.hasUpper!, div(mu, du)) : null,
    };
  });
  return { x: p.x, s: c.s, ...m, ev: p.ev, f: c.f, theta: c.theta, barrier: c.barrier };
}
