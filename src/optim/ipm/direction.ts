/**
 * The search direction of the interior-point method (Wächter & Biegler 2006, §2.2 and
 * §3.1): the condensed Newton system of `kkt.ts` at the current iterate, with the inertia
 * correction (Algorithm IC) that raises δ_w until K + δ_w I is positive definite and uses
 * δ_c > 0 when the equality Jacobian is rank deficient; then the slack and multiplier steps
 * recovered from dx, and the fraction-to-the-boundary step sizes.
 */
import { compilable } from "./compiled.ts";
import type { Tensor } from "../../tensor.ts";
import { add, div, mul, neg, square, sub } from "../../ops/elementwise.ts";
import { max, sum } from "../../ops/reduce.ts";
import { abs } from "../../ops/elementwise.ts";
import { concat, reshape, slice } from "../../ops/movement.ts";
import { tensor, zeros } from "../../ops/creation.ts";
import { tidy } from "../../memory.ts";
import { type CondensedMatrix, type CondensedStorage, solveKkt, solveKktCompiled } from "./kkt.ts";
import {
  type BoundSet,
  boundSetOf,
  type BoundTensors,
  boundTensors,
  distances,
  fractionToBoundary,
  type Iterate,
  lagrangianCotangent,
  present,
  split,
} from "./barrier.ts";
import type { ConstrainedProblem } from "./problem.ts";

/** Algorithm IC's constants (IPOPT's defaults). */
export const INERTIA = {
  /** δ̄_w⁰: the first trial shift. */
  first: 1e-4,
  /** δ_w^min and δ_w^max. */
  min: 1e-20,
  max: 1e40,
  /** κ_w⁻: the next iteration starts from κ_w⁻ δ_w^last. */
  decrease: 1 / 3,
  /** κ_w⁺ and κ̄_w⁺: growth of δ_w, the first time and afterwards. */
  increase: 8,
  increaseFirst: 100,
  /** δ̄_c and κ_c: δ_c = δ̄_c μ^κ_c for a rank-deficient equality Jacobian. */
  deltaC: 1e-8,
  kappaC: 0.25,
} as const;

/** What the Newton matrix needs from an iterate, computed once per iteration. */
export interface Linearization {
  /** K = W + J_Iᵀ Σ_s J_I + Σ_x (without δ_w). */
  K: CondensedMatrix;
  /** J_Eᵀ [n, m_E] (null without equalities). */
  jEt: Tensor | null;
  /** ρ of the augmented term ρ J_Eᵀ J_E (0 without equalities or where it leaves the band). */
  rho: number;
  /** Σ_s = Z S⁻¹. */
  sigmaS: Tensor | null;
  /** The barrier's gradient of the bounds: −μ/(x − x_L) + μ/(x_U − x). */
  boundGrad: Tensor | null;
  /** x − x_L and x_U − x (1 where none). */
  dl: Tensor | null;
  du: Tensor | null;
}

/** Frees a linearisation. */
export function disposeLinearization(l: Linearization): void {
  l.K.dispose();
  for (const t of [l.jEt, l.sigmaS, l.boundGrad, l.dl, l.du]) t?.dispose();
}

/**
 * The condensed matrix at the iterate: the band of ∇²Φ with Φ's weights [1, −y, −λ] (the
 * Lagrangian's Hessian W) and curvature weights Σ_s on the inequalities (J_Iᵀ Σ_s J_I), plus
 * the bounds' Σ_x on the diagonal; J_Eᵀ by one pullback per equality, and
 * ρ = max_i K_ii / max_i (J_Eᵀ J_E)_ii for the augmented term (see `solveKkt`): large enough
 * to make K + ρ J_Eᵀ J_E positive definite wherever the reduced Hessian is, at the scale of
 * K, and no larger. ρ J_Eᵀ J_E's rounding, ε ρ ‖J_E‖², lands on the reduced Hessian
 * (J_Eᵀ J_E vanishes on the null space of J_E only in exact arithmetic), so ρ must not
 * grow with the equalities' scale: ρ = max K_ii with HS071's ‖∇c_E‖² ≈ 90 made ρ J_Eᵀ J_E
 * ≈ 2·10⁹ in f32 at μ = 10⁻⁵ (K_ii ≈ 2·10⁷ from Σ_s = z/s), i.e. errors of ~200 against
 * a reduced Hessian of O(1), and the steps along the constraints' null space were noise.
 */
export async function linearize(
  prob: ConstrainedProblem,
  it: Iterate,
  b: BoundSet,
  storage: CondensedStorage,
  mu: number,
  read: (...ts: Tensor[]) => Promise<number[]>,
): Promise<Linearization> {
  const { mE, n } = prob;
  const muT = tensor(mu, { dtype: it.x.dtype, device: it.x.device });
  const inputs: LinearInputs = {
    x: it.x,
    mu: muT,
    ...present({ y: it.y, lam: it.lam, s: it.s, z: it.z, zL: it.zL, zU: it.zU }),
    ...boundTensors(b),
  };
  const { dl, du, sigmaS, boundGrad, sigmaX, w, sigma } = linearProgram(
    prob.compiled,
    inputs,
    n,
    mE,
  );
  muT.dispose();
  // freed here if f or a constraint throws in the passes below
  const kept = [sigmaS, boundGrad, dl, du];
  let K: CondensedMatrix | null = null, jEt: Tensor | null = null;
  try {
    const band = prob.condensedHessian(it.x, w, sigma, storage.bandwidth);
    K = storage.assemble(band, sigmaX);
    jEt = mE ? prob.equalityJacobianT(it.x) : null;
  } catch (e) {
    for (const t of kept) t?.dispose();
    K?.dispose();
    throw e;
  } finally {
    for (const t of [w, sigma, sigmaX]) t.dispose();
  }
  let rho = 0;
  if (jEt) {
    const ts = [K.diagonalMax(), tidy(() => max(sum(square(jEt!), 1))), ...K.augment(jEt)];
    const [dmax, jmax, inside, all] = await read(...ts);
    for (const t of ts) t.dispose();
    const eps = it.x.dtype === "f64" ? 2 ** -52 : 2 ** -23;
    if (inside >= all * (1 - 1e3 * eps) && jmax > 0) rho = Math.max(dmax, 1) / jmax;
  }
  return { K, jEt, rho, sigmaS, boundGrad, dl, du };
}

/** What the diagonal terms of the Newton matrix come from (absent: no such constraints). */
interface LinearInputs extends BoundTensors {
  x: Tensor;
  mu: Tensor;
  y?: Tensor;
  lam?: Tensor;
  s?: Tensor;
  z?: Tensor;
  zL?: Tensor;
  zU?: Tensor;
}

/**
 * Σ_s = Z S⁻¹, Σ_x, the bounds' barrier gradient, the distances to the bounds, and Φ's
 * weights [1, −y, −λ] and curvature weights [0, 0, Σ_s] (a pure function of tensors:
 * `linearProgram`).
 */
function linearTerms(a: LinearInputs, n: number, mE: number) {
  const o = { dtype: a.x.dtype, device: a.x.device } as const;
  const b = boundSetOf(a);
  const { dl, du } = distances(a.x, b);
  const sigmaS = a.z && a.s ? div(a.z, a.s) : null;
  let boundGrad: Tensor | null = null, sigmaX = zeros([n], o);
  if (dl) {
    boundGrad = neg(div(mul(b.hasLower!, a.mu), dl));
    sigmaX = add(sigmaX, div(a.zL!, dl));
  }
  if (du) {
    const t = div(mul(b.hasUpper!, a.mu), du);
    boundGrad = boundGrad ? add(boundGrad, t) : t;
    sigmaX = add(sigmaX, div(a.zU!, du));
  }
  const w = lagrangianCotangent(a.x, a.y ?? null, a.lam ?? null);
  const sigma = concat([zeros([1 + mE], o), ...(sigmaS ? [sigmaS] : [])], 0);
  return { dl, du, sigmaS, boundGrad, sigmaX, w, sigma };
}

const linearProgram = compilable(linearTerms, { static: [1, 2] });

/** A primal-dual step and what the line search needs to know about it. */
export interface Direction {
  dx: Tensor;
  ds: Tensor | null;
  dy: Tensor | null;
  dlam: Tensor | null;
  dz: Tensor | null;
  dzL: Tensor | null;
  dzU: Tensor | null;
  /** α^max (eq. 15) for x and s, and α^z for the bound multipliers. */
  alphaMax: number;
  alphaZ: number;
  /** ∇φ_μᵀ d: the barrier function's directional derivative. */
  slope: number;
  /** max |dx| and max |x| (for the tiny-step test). */
  dxMax: number;
  xMax: number;
  /** δ_w and δ_c used. */
  deltaW: number;
  deltaC: number;
}

/** Frees a direction's tensors. */
export function disposeDirection(
  d: Pick<Direction, "dx" | "ds" | "dy" | "dlam" | "dz" | "dzL" | "dzU">,
): void {
  for (const t of [d.dx, d.ds, d.dy, d.dlam, d.dz, d.dzL, d.dzU]) t?.dispose();
}

/** The constraint residuals the step aims to remove: c_E and c_I − s (replaced by a SOC). */
export interface Residuals {
  cE: Tensor | null;
  rI: Tensor | null;
}

/** The residuals at the iterate itself. */
export function residuals(prob: ConstrainedProblem, it: Iterate): Residuals {
  return tidy(() => {
    const { cE, cI } = split(it.ev.values, prob.mE, prob.mI);
    return { cE: cE ? add(cE, 0) : null, rI: cI && it.s ? sub(cI, it.s) : null };
  });
}

type Unread = Omit<Direction, "alphaMax" | "alphaZ" | "slope" | "dxMax" | "xMax"> & {
  /** [α^max, α^z, ∇φᵀd, max|dx|, max|x|], on the device until read. */
  scalars: Tensor;
};

/** What the eliminated steps are computed from (absent entries: no such constraints or bounds). */
interface StepInputs {
  jd: Tensor;
  dx: Tensor;
  x: Tensor;
  mu: Tensor;
  tau: Tensor;
  s?: Tensor;
  z?: Tensor;
  lam?: Tensor;
  rI?: Tensor;
  w?: Tensor;
  sigmaS?: Tensor;
  dl?: Tensor;
  zL?: Tensor;
  hasLower?: Tensor;
  du?: Tensor;
  zU?: Tensor;
  hasUpper?: Tensor;
}

/**
 * The eliminated steps (§3.5 with the slacks) from dx and J_F·dx:
 *   ds = J_I dx + r_I,  dz = μ/s − z − Σ_s ds,  dλ = μ/s − λ − Σ_s ds,
 *   dz_L = μ/d_L − z_L − Σ_L dx,  dz_U = μ/d_U − z_U + Σ_U dx,
 * and the scalars the line search needs. A pure function of tensors (μ and τ 0-d), so that
 * it compiles into one program (`eliminatedProgram`).
 */
function eliminated(a: StepInputs, mE: number, mI: number) {
  const { dx, mu } = a;
  let ds: Tensor | null = null, dz: Tensor | null = null, dlam: Tensor | null = null;
  let dzL: Tensor | null = null, dzU: Tensor | null = null;
  let slope = slice(a.jd, [0], [1]);
  const primal: [Tensor, Tensor][] = [], dual: [Tensor, Tensor][] = [];
  if (mI && a.s && a.z && a.lam && a.rI && a.w && a.sigmaS) {
    const jId = slice(a.jd, [1 + mE], [1 + mE + mI]);
    ds = add(jId, a.rI);
    const common = sub(a.w, mul(a.sigmaS, jId)); // μ/s − Σ_s ds
    dz = sub(common, a.z);
    dlam = sub(common, a.lam);
    slope = sub(slope, mul(sum(div(ds, a.s)), mu));
    primal.push([a.s, ds]);
    dual.push([a.z, dz]);
  }
  if (a.dl && a.zL && a.hasLower) {
    const has = a.hasLower;
    dzL = mul(has, sub(sub(div(mu, a.dl), a.zL), mul(div(a.zL, a.dl), dx)));
    slope = sub(slope, mul(sum(div(mul(has, dx), a.dl)), mu));
    primal.push([a.dl, mul(has, dx)]);
    dual.push([a.zL, dzL]);
  }
  if (a.du && a.zU && a.hasUpper) {
    const has = a.hasUpper;
    dzU = mul(has, add(sub(div(mu, a.du), a.zU), mul(div(a.zU, a.du), dx)));
    slope = add(slope, mul(sum(div(mul(has, dx), a.du)), mu));
    primal.push([a.du, neg(mul(has, dx))]);
    dual.push([a.zU, dzU]);
  }
  const scalars = concat(
    [
      fractionToBoundary(a.tau, primal, dx),
      fractionToBoundary(a.tau, dual, dx),
      sum(slope),
      max(abs(dx)),
      max(abs(a.x)),
    ].map((t) => reshape(t, [1])),
    0,
  );
  return { ds, dlam, dz, dzL, dzU, scalars };
}

const eliminatedProgram = compilable(eliminated, { static: [1, 2] });

/**
 * One solve of the condensed system for the residuals `r` with shifts (δ_w, δ_c), and the
 * eliminated steps (`eliminated`). Compiled problems replay both as programs.
 */
function solveDirection(
  prob: ConstrainedProblem,
  it: Iterate,
  lin: Linearization,
  b: BoundSet,
  mu: number,
  tau: number,
  r: Residuals,
  rTilde: Tensor,
  w: Tensor | null,
  deltaW: number,
  deltaC: number,
): Unread {
  const { mE, mI } = prob;
  const kkt = prob.compiled ? solveKktCompiled : solveKkt;
  const { dx, dy } = kkt(lin.K, deltaW, deltaC, lin.rho, rTilde, r.cE, lin.jEt);
  const jd = prob.directional(it.x, dx);
  const o = { dtype: dx.dtype, device: dx.device } as const;
  const [muT, tauT] = [tensor(mu, o), tensor(tau, o)];
  const inputs: StepInputs = {
    jd,
    dx,
    x: it.x,
    mu: muT,
    tau: tauT,
    ...present({ s: it.s, z: it.z, lam: it.lam, rI: r.rI, w, sigmaS: lin.sigmaS }),
    ...present({ dl: lin.dl, zL: it.zL, hasLower: b.hasLower }),
    ...present({ du: lin.du, zU: it.zU, hasUpper: b.hasUpper }),
  };
  const out = eliminatedProgram(prob.compiled, inputs, mE, mI);
  for (const t of [jd, muT, tauT]) t.dispose();
  return { dx, dy, ...out, deltaW, deltaC };
}

/** A failure of the factorisation that the inertia correction can mend, or null. */
export function mendable(e: unknown): "indefinite" | "singular" | null {
  if (!(e instanceof RangeError)) return null;
  if (/not positive definite/.test(e.message)) return "indefinite";
  if (/is singular/.test(e.message)) return "singular";
  return null;
}

/** The state Algorithm IC carries from one iteration to the next: δ_w^last. */
export interface InertiaState {
  lastDeltaW: number;
}

/**
 * The search direction for residuals `r` (the iterate's own, or a second-order correction's)
 * with Algorithm IC: try δ_w = 0; while K + δ_w I is not positive definite, δ_w grows from
 * δ̄_w⁰ (or κ_w⁻ δ_w^last) by κ̄_w⁺ (or κ_w⁺); a singular Schur complement sets δ_c. `fixed`
 * reuses the shifts of the step being corrected (a SOC solves the same matrix). Resolves to
 * null when no δ_w ≤ δ_w^max helps (the caller restores feasibility).
 */
export async function searchDirection(
  prob: ConstrainedProblem,
  it: Iterate,
  lin: Linearization,
  b: BoundSet,
  mu: number,
  tau: number,
  r: Residuals,
  state: InertiaState,
  read: (...ts: Tensor[]) => Promise<number[]>,
  fixed?: { deltaW: number; deltaC: number },
): Promise<Direction | null> {
  // w = μ/s − Σ_s r_I and r̃ = ∇f − J_Eᵀ y − J_Iᵀ w + the bounds' barrier gradient
  const w = r.rI && it.s && lin.sigmaS
    ? tidy(() => sub(div(mu, it.s!), mul(lin.sigmaS!, r.rI!)))
    : null;
  const ct = lagrangianCotangent(it.x, it.y, w);
  let pulled: Tensor;
  try {
    pulled = prob.pull(it.ev, ct);
  } catch (e) {
    w?.dispose();
    throw e;
  } finally {
    ct.dispose();
  }
  const rTilde = lin.boundGrad ? tidy(() => add(pulled, lin.boundGrad!)) : pulled;
  if (rTilde !== pulled) pulled.dispose();
  let deltaW = fixed?.deltaW ?? 0, deltaC = fixed?.deltaC ?? 0;
  let tries = 0;
  // δ^max (10⁴⁰) lies beyond f32's range (3.4·10³⁸): there the shifts stop at 10³⁸
  const maxShift = rTilde.dtype === "f32" ? Math.min(INERTIA.max, 1e38) : INERTIA.max;
  try {
    for (;;) {
      let u: Unread | null = null;
      try {
        u = solveDirection(prob, it, lin, b, mu, tau, r, rTilde, w, deltaW, deltaC);
        const [alphaMax, alphaZ, slope, dxMax, xMax] = await read(u.scalars);
        u.scalars.dispose();
        if (![alphaMax, alphaZ, slope, dxMax].every(Number.isFinite)) {
          throw new RangeError(
            "searchDirection: the Schur complement is singular (non-finite step)",
          );
        }
        if (deltaW > 0 && !fixed) state.lastDeltaW = deltaW;
        const { scalars: _, ...d } = u;
        return { ...d, alphaMax, alphaZ, slope, dxMax, xMax };
      } catch (e) {
        if (u) {
          u.scalars.dispose();
          disposeDirection(u);
        }
        const kind = mendable(e);
        if (!kind || fixed || ++tries > 200) throw e;
        if (kind === "singular") {
          // IPOPT's δ_c is sized for f64: in f32 it can vanish beside S's entries (S + δ_c I
          // rounds to S), so a shift that left S singular grows until it registers
          deltaC = deltaC > 0
            ? deltaC * INERTIA.increaseFirst
            : INERTIA.deltaC * Math.pow(mu, INERTIA.kappaC);
          if (deltaC > maxShift) throw e;
          continue;
        }
        // IC-3 … IC-6
        if (deltaW === 0) {
          deltaW = state.lastDeltaW === 0
            ? INERTIA.first
            : Math.max(INERTIA.min, INERTIA.decrease * state.lastDeltaW);
        } else {
          deltaW *= state.lastDeltaW === 0 ? INERTIA.increaseFirst : INERTIA.increase;
        }
        if (deltaW > maxShift) return null;
      }
    }
  } finally {
    rTilde.dispose();
    w?.dispose();
  }
}
