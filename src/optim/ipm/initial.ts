/**
 * The starting iterate of the interior-point method (Wächter & Biegler 2006, §3.6, and
 * IPOPT's `DefaultIterateInitializer`): x pushed into the bounds' interior, slacks
 * s = max(c_I(x₀), κ₁), bound multipliers z = z_L = z_U = 1, and the constraint multipliers
 * (y, λ) by least squares, as IPOPT's default `constr_mult_init_max` = 1000:
 *
 *   min_{y, λ} ‖∇f − z_L + z_U − J_Eᵀ y − J_Iᵀ λ‖² + ‖λ − z‖²,
 *
 * i.e. the multipliers that best make x₀ stationary, with λ pulled towards the slacks' bound
 * multipliers z (λ = z at a solution). Estimates larger than 1000 in max norm are discarded
 * for y = λ = 0.
 *
 * Why it matters: with y = 0, λ = 1 the first dual infeasibility is ‖∇f − J_Iᵀ 1‖, which on
 * the trajectory problem (192 obstacle constraints at N = 64, each pushing its point away
 * from the centre with weight 1) is several times IPOPT's, so the first barrier problem is not
 * yet "solved" and μ stays at 0.1 where IPOPT drops it to 0.02 at once; the Hessian weights
 * −λ ∇²c_I = −2λ I per point and obstacle also differ. The first steps, which are long
 * and decide on which side of an obstacle a path passes, then go another way.
 */
import type { Tensor } from "../../tensor.ts";
import { abs, add, maximum, neg, sub } from "../../ops/elementwise.ts";
import { max } from "../../ops/reduce.ts";
import { full, ones, zeros } from "../../ops/creation.ts";
import { concat, reshape, slice } from "../../ops/movement.ts";
import { tidy } from "../../memory.ts";
import { offDiagonalAbsSums } from "../band_model.ts";
import {
  BARRIER,
  type BoundSet,
  type Iterate,
  pushIntoBounds,
  split,
  thetaAndBarrier,
} from "./barrier.ts";
import { type CondensedStorage, solveKkt } from "./kkt.ts";
import { mendable } from "./direction.ts";
import type { ConstrainedProblem } from "./problem.ts";

/** IPOPT's constr_mult_init_max: larger least-squares estimates are replaced by 0. */
const MULT_INIT_MAX = 1000;

/**
 * The least-squares multipliers at x: with r = ∇f − z_L + z_U − J_Eᵀ y − J_Iᵀ λ the residual,
 * the normal equations give λ = J_I r + z and
 *
 *   [ I + J_Iᵀ J_I   J_Eᵀ ] [r]   [ ∇f − z_L + z_U − J_Iᵀ z ]
 *   [ J_E            0    ] [y] = [ 0                       ],
 *
 * the condensed system of the method itself with W = 0, Σ_s = I, Σ_x = I (banded when the
 * method's is), solved by the same `solveKkt`. Returns null when the estimate exceeds
 * `MULT_INIT_MAX` (IPOPT then starts from zero multipliers).
 */
async function leastSquareMultipliers(
  prob: ConstrainedProblem,
  it: Pick<Iterate, "x" | "ev" | "z" | "zL" | "zU">,
  storage: CondensedStorage,
  read: (...ts: Tensor[]) => Promise<number[]>,
): Promise<{ y: Tensor | null; lam: Tensor | null } | null> {
  const { mE, mI, n } = prob;
  const o = { dtype: it.x.dtype, device: it.x.device } as const;
  // every temporary is freed here, also when f or a constraint throws on the way
  const tmp: ({ dispose(): void } | null)[] = [];
  const keep = <T extends { dispose(): void } | null>(t: T): T => (tmp.push(t), t);
  try {
    const [w, sigma, unit] = tidy(() => [
      zeros([1 + mE + mI], o),
      concat([zeros([1 + mE], o), ones([mI], o)], 0),
      ones([n], o),
    ]).map(keep);
    const band = prob.condensedHessian(it.x, w, sigma, storage.bandwidth);
    const K = keep(storage.assemble(band, unit));
    const jEt = keep(mE ? prob.equalityJacobianT(it.x) : null);
    // r̃ = −(∇f − z_L + z_U − J_Iᵀ z): the system's right-hand side is −r̃
    const ct = keep(
      tidy(() => concat([full([1], -1, o), zeros([mE], o), ...(it.z ? [it.z] : [])], 0)),
    );
    const pulled = keep(prob.pull(it.ev, ct));
    const rTilde = keep(tidy(() => {
      let r = pulled;
      if (it.zL) r = add(r, it.zL);
      if (it.zU) r = sub(r, it.zU);
      return add(r, 0);
    }));
    const cE = keep(mE ? zeros([mE], o) : null);
    let step;
    try {
      step = solveKkt(K, 0, 0, 0, rTilde, cE, jEt);
    } catch (e) {
      // dependent equalities (J_E rank deficient), or values that are not finite at x₀:
      // IPOPT's estimate fails too, and it starts from zero multipliers; the iterations' δ_c
      // handles the rank deficiency, their finiteness test the rest
      if (mendable(e)) return null;
      throw e;
    }
    keep(step.dx);
    keep(step.dy);
    const jr = keep(mI ? prob.directional(it.x, step.dx) : null);
    const out = tidy(() => ({
      y: step.dy ? neg(step.dy) : null,
      lam: jr && it.z ? add(slice(jr, [1 + mE], [1 + mE + mI]), it.z) : null,
    }));
    const size = keep(tidy(() => {
      const parts = [out.y, out.lam].filter((t): t is Tensor => t !== null);
      return parts.map((t) => max(abs(t))).reduce((a, b) => maximum(a, b));
    }));
    let big = NaN;
    try {
      [big] = await read(size);
    } catch (e) {
      // WebGPU raises the same failures at the read
      if (!mendable(e)) throw e;
    }
    if (big <= MULT_INIT_MAX) return out;
    out.y?.dispose();
    out.lam?.dispose();
    return null;
  } finally {
    for (const t of tmp) t?.dispose();
  }
}

/** The starting iterate (see the module doc). */
export async function initialIterate(
  prob: ConstrainedProblem,
  x0: Tensor,
  b: BoundSet,
  storage: CondensedStorage,
  read: (...ts: Tensor[]) => Promise<number[]>,
): Promise<Iterate> {
  const flat = reshape(x0, [x0.size]);
  try {
    // at the user's x₀, as IPOPT (before its bound push)
    await prob.scaleObjective(flat, read);
  } catch (e) {
    flat.dispose();
    throw e;
  }
  const x = pushIntoBounds(flat, b);
  flat.dispose();
  const ev = prob.evaluate(x);
  const { mE, mI } = prob;
  const o = { dtype: x.dtype, device: x.device } as const;
  const v = tidy(() => {
    const { cI } = split(ev.values, mE, mI);
    return {
      s: cI ? maximum(cI, BARRIER.kappa1) : null,
      z: mI ? ones([mI], o) : null,
      zL: b.hasLower ? add(b.hasLower, 0) : null,
      zU: b.hasUpper ? add(b.hasUpper, 0) : null,
    };
  });
  let ls = null;
  try {
    if (mE + mI > 0) ls = await leastSquareMultipliers(prob, { x, ev, ...v }, storage, read);
  } catch (e) {
    for (const t of [x, ev.values, v.s, v.z, v.zL, v.zU]) t?.dispose();
    ev.back.dispose();
    throw e;
  }
  const mults = ls ?? tidy(() => ({
    y: mE ? zeros([mE], o) : null,
    lam: mI ? zeros([mI], o) : null,
  }));
  const [theta, bar] = thetaAndBarrier(ev.values, x, v.s, b, mE, mI);
  const fT = tidy(() => reshape(slice(ev.values, [0], [1]), []));
  const [f, th, br] = await read(fT, theta, bar);
  for (const t of [fT, theta, bar]) t.dispose();
  return { x, ...v, ...mults, ev, f, theta: th, barrier: br };
}

/**
 * The rounding floor of the KKT error in this precision, ε ‖∇²f(x₀)‖∞ max(1, ‖x₀‖∞): what
 * rounding alone leaves in ∇f where its terms, of size ‖∇²f‖ ‖x‖, cancel (a stiff objective:
 * on the trajectory problem ‖∇²f‖∞ = 32 W_acc, 3.3·10⁵ at N = 256, so ε_f32 times it is
 * 4·10⁻², and 1.8·10⁻⁵ in f64 at N = 16,384 with the scaled weights). E_μ cannot be driven
 * below it, so the barrier update and the acceptable termination take it as their least
 * target (`BarrierUpdate.floor`): without that, μ stays where κ_ε μ lies under the floor, and
 * there the barrier term μ Σ ln s outweighs f (f32, N = 256: μ = 5·10⁻⁴ against 768
 * constraints, f = 0.37 instead of 0.007) until the line search fails. ‖∇²f‖∞ is the band's
 * largest absolute row sum, from one more Hessian pass (Φ's weights [1, 0, …], σ = 0).
 */
export async function roundingFloor(
  prob: ConstrainedProblem,
  x: Tensor,
  storage: CondensedStorage,
  read: (...ts: Tensor[]) => Promise<number[]>,
): Promise<number> {
  const { mE, mI } = prob;
  const o = { dtype: x.dtype, device: x.device } as const;
  const [w, sigma] = tidy(() => [
    concat([ones([1], o), zeros([mE + mI], o)], 0),
    zeros([1 + mE + mI], o),
  ]);
  let band;
  try {
    band = prob.condensedHessian(x, w, sigma, storage.bandwidth);
  } finally {
    w.dispose();
    sigma.dispose();
  }
  const size = tidy(() => {
    const diag = reshape(slice(band.data, [0], [1]), [band.n]);
    return [max(add(abs(diag), offDiagonalAbsSums(band.data))), max(abs(x))];
  });
  band.dispose();
  try {
    const [h, xm] = await read(...size);
    const eps = x.dtype === "f64" ? 2 ** -52 : 2 ** -23;
    return eps * h * Math.max(1, xm);
  } finally {
    for (const t of size) t.dispose();
  }
}
