/**
 * The barrier side of the interior-point method (Wächter & Biegler 2006, §2.1, §3.6): the
 * bounds and their distances, the iterate (x, s, y, z, z_L, z_U), the optimality errors
 * E_μ and E_0 with their scaling s_d, s_c (eq. 5), the barrier parameter's monotone update
 * (eq. 7), the fraction-to-the-boundary rule (eq. 15), and the reset of the bound
 * multipliers that keeps Σ close to the primal Hessian of the barrier (eq. 16).
 *
 * Notation: inequalities c_I(x) ≥ 0 become c_I(x) − s = 0 with slacks s ≥ 0; y are the
 * multipliers of c_E(x) = 0, λ those of c_I(x) − s = 0, and z ≥ 0, z_L, z_U ≥ 0 the bound
 * multipliers of s, x − x_L and x_U − x. The Lagrangian is
 * L = f − yᵀc_E − λᵀ(c_I − s) − zᵀs − z_Lᵀ(x − x_L) − z_Uᵀ(x_U − x), so λ = z at a solution.
 * They are kept apart as in IPOPT (its y_d and v_L): λ moves with the primal step and
 * weights the constraints' curvature in the Hessian, z moves with the dual step and enters
 * Σ = Z S⁻¹. Merged, a full dual step against a short primal one (z ← μ/s − z + (z/s)|r_I|
 * where the slack lags its constraint) multiplies z, and with it the constraints' negative
 * curvature and the shift δ_w, by |r_I|/s every iteration.
 */
import { compilable } from "./compiled.ts";
import { Tensor } from "../../tensor.ts";
import {
  abs,
  add,
  div,
  greater,
  lessEqual,
  log,
  maximum,
  minimum,
  mul,
  neg,
  sub,
  where,
} from "../../ops/elementwise.ts";
import { max, min, sum } from "../../ops/reduce.ts";
import { full, ones, tensor, zeros } from "../../ops/creation.ts";
import { concat, reshape, slice } from "../../ops/movement.ts";
import { tidy } from "../../memory.ts";
import { fmtShape } from "../../shape.ts";
import { describeValue } from "../../ops/common.ts";
import type { Bounds } from "../types.ts";
import type { ConstrainedProblem, Evaluation } from "./problem.ts";

/** IPOPT's defaults for the barrier parts. */
export const BARRIER = {
  /** κ_ε: a barrier problem is solved once E_μ ≤ κ_ε μ. */
  kappaEps: 10,
  /** κ_μ: linear decrease of μ. */
  kappaMu: 0.2,
  /** θ_μ: superlinear decrease of μ. */
  thetaMu: 1.5,
  /** τ_min: the least fraction-to-the-boundary parameter. */
  tauMin: 0.99,
  /** κ_Σ: how far z may stray from μ / s (eq. 16). */
  kappaSigma: 1e10,
  /** s_max: the scaling threshold of E (eq. 5). */
  sMax: 100,
  /** κ₁, κ₂: the push of the start into the bounds' interior (§3.6). */
  kappa1: 1e-2,
  kappa2: 1e-2,
} as const;

/** The bounds on x, flat, with 0/1 masks where a bound exists. */
export interface BoundSet {
  /** x_L where it exists (0 elsewhere). */
  lower: Tensor | null;
  /** x_U where it exists (0 elsewhere). */
  upper: Tensor | null;
  /** 1 where x has a lower bound. */
  hasLower: Tensor | null;
  /** 1 where x has an upper bound. */
  hasUpper: Tensor | null;
  /** How many components have a lower / upper bound. */
  nL: number;
  nU: number;
}

/** One side's bounds on the host (null when absent), checked against x's shape. */
async function hostBound(
  side: "lower" | "upper",
  v: unknown,
  x: Tensor,
): Promise<Float64Array | null> {
  if (v === undefined) return null;
  let a: Float64Array;
  if (typeof v === "number") a = new Float64Array(x.size).fill(v);
  else if (!(v instanceof Tensor)) {
    throw new TypeError(
      `minimize (ipm): bounds.${side} must be a number or a Tensor of x's shape, got ${
        describeValue(v)
      }`,
    );
  } else if (v.shape.length !== x.shape.length || v.shape.some((d, i) => d !== x.shape[i])) {
    // the same shape, not only the same size: a [2, 3] bound for a [3, 2] x would pair its
    // components with the wrong ones; no broadcasting either (a number bounds every component)
    throw new RangeError(
      `minimize (ipm): bounds.${side} has shape ${fmtShape(v.shape)}, but x0 has shape ${
        fmtShape(x.shape)
      }; expected a number or a tensor of shape ${fmtShape(x.shape)}`,
    );
  } else a = Float64Array.from(await v.data());
  const at = (i: number) => typeof v === "number" ? "" : `[${i}]`;
  const nan = a.findIndex((e) => Number.isNaN(e));
  if (nan >= 0) throw new RangeError(`minimize (ipm): bounds.${side}${at(nan)} is NaN`);
  // a lower bound of +∞ (an upper one of −∞) admits no x at all
  const none = side === "lower" ? Infinity : -Infinity;
  const bad = a.findIndex((e) => e === none);
  if (bad >= 0) {
    throw new RangeError(
      `minimize (ipm): bounds.${side}${at(bad)} is ${none}, which no x satisfies ` +
        `(no bound is ${-none})`,
    );
  }
  return a;
}

/** Reads and checks the bounds (one read-back of each bound tensor, once per solve). */
export async function boundSet(bounds: Bounds | undefined, x: Tensor): Promise<BoundSet> {
  const n = x.size, opts = { dtype: x.dtype, device: x.device } as const;
  const lo = await hostBound("lower", bounds?.lower, x);
  const up = await hostBound("upper", bounds?.upper, x);
  for (let i = 0; lo && up && i < n; i++) {
    if (lo[i] > up[i]) {
      throw new RangeError(
        `minimize (ipm): bounds.lower[${i}] = ${lo[i]} exceeds bounds.upper[${i}] = ${up[i]}`,
      );
    }
    if (lo[i] === up[i]) {
      throw new RangeError(
        `minimize (ipm): bounds.lower[${i}] = bounds.upper[${i}] = ${lo[i]}; ` +
          `a fixed variable belongs in constraints.eq (an interior point needs lower < upper)`,
      );
    }
  }
  // the finite entries and a 0/1 mask of them; no tensors for a side without any
  const side = (a: Float64Array | null, none: number) => {
    const mask = a ? a.map((e) => (e === none ? 0 : 1)) : null;
    const count = mask ? mask.reduce((c, e) => c + e, 0) : 0;
    if (!a || !mask || count === 0) return { value: null, mask: null, count: 0 };
    return {
      value: tensor(a.map((e, i) => (mask[i] ? e : 0)), opts),
      mask: tensor(mask, opts),
      count,
    };
  };
  const L = side(lo, -Infinity), U = side(up, Infinity);
  return {
    lower: L.value,
    upper: U.value,
    hasLower: L.mask,
    hasUpper: U.mask,
    nL: L.count,
    nU: U.count,
  };
}

/** Frees the bounds' tensors. */
export function disposeBounds(b: BoundSet): void {
  for (const t of [b.lower, b.upper, b.hasLower, b.hasUpper]) t?.dispose();
}

/**
 * §3.6: the start moved into the bounds' interior by p = min(κ₁ max(1, |x_L|), κ₂ (x_U − x_L))
 * (and symmetrically), so the barrier terms are finite.
 */
export function pushIntoBounds(x: Tensor, b: BoundSet): Tensor {
  return tidy(() => {
    const { kappa1: k1, kappa2: k2 } = BARRIER;
    let y = add(x, 0);
    const width = b.lower && b.upper
      ? where(mul(b.hasLower!, b.hasUpper!), mul(sub(b.upper, b.lower), k2), Infinity)
      : null;
    if (b.lower) {
      let p = mul(maximum(abs(b.lower), 1), k1);
      if (width) p = minimum(p, width);
      y = where(b.hasLower!, maximum(y, add(b.lower, p)), y);
    }
    if (b.upper) {
      let p = mul(maximum(abs(b.upper), 1), k1);
      if (width) p = minimum(p, width);
      y = where(b.hasUpper!, minimum(y, sub(b.upper, p)), y);
    }
    return y;
  });
}

/**
 * The point x + α dx of an untested (tiny) step, except where it comes within ε |bound| of a
 * bound: there the component keeps its value at x (strictly inside). The fraction to the
 * boundary leaves a gap (1 − τ) (x_U − x) ≈ μ (x_U − x), which in f32 near a bound of size 1
 * can lie below half an ulp: x_U − x rounded to exactly 0, and μ/(x_U − x) made ‖∇L‖∞ =
 * Infinity (a tested trial there has φ_μ = ∞ and is rejected). (The
 * margin, not a test of the rounded x against the bound: fused CPU kernels compare the
 * unrounded value.)
 */
export function trialX(x: Tensor, dx: Tensor, alpha: number, b: BoundSet, eps: number): Tensor {
  return tidy(() => {
    let xt = add(x, mul(dx, alpha));
    if (b.lower) {
      const near = lessEqual(sub(xt, b.lower), mul(abs(b.lower), eps));
      xt = where(mul(b.hasLower!, near), x, xt);
    }
    if (b.upper) {
      const near = lessEqual(sub(b.upper, xt), mul(abs(b.upper), eps));
      xt = where(mul(b.hasUpper!, near), x, xt);
    }
    return xt;
  });
}

/** The distances x − x_L and x_U − x (1 where there is no bound, so divisions stay finite). */
export function distances(x: Tensor, b: BoundSet): { dl: Tensor | null; du: Tensor | null } {
  return tidy(() => ({
    dl: b.lower ? where(b.hasLower!, sub(x, b.lower), 1) : null,
    du: b.upper ? where(b.hasUpper!, sub(b.upper, x), 1) : null,
  }));
}

/** The primal-dual iterate, flat; every tensor is owned by it. */
export interface Iterate {
  x: Tensor;
  /** Slacks of the inequalities (null without them). */
  s: Tensor | null;
  /** Multipliers of the equalities (null without them). */
  y: Tensor | null;
  /** Multipliers λ of the inequalities c_I − s = 0 (null without them). */
  lam: Tensor | null;
  /** Multipliers z ≥ 0 of the slacks' bounds s ≥ 0 (null without inequalities). */
  z: Tensor | null;
  /** Multipliers of the lower / upper bounds (0 where none; null without any). */
  zL: Tensor | null;
  zU: Tensor | null;
  /** F at x and its pullback. */
  ev: Evaluation;
  /** f(x). */
  f: number;
  /** θ = ‖c_E‖₁ + ‖c_I − s‖₁. */
  theta: number;
  /** The barrier sum B = Σ ln s + Σ ln(x − x_L) + Σ ln(x_U − x), so φ_μ = f − μ B. */
  barrier: number;
}

/** Frees an iterate's tensors (the pullback included). */
export function disposeIterate(it: Iterate): void {
  for (const t of [it.x, it.s, it.y, it.lam, it.z, it.zL, it.zU, it.ev.values]) t?.dispose();
  it.ev.back.dispose();
}

/** The parts of F's values: [f], c_E, c_I (views; dispose in a tidy). */
export function split(
  values: Tensor,
  mE: number,
  mI: number,
): { f: Tensor; cE: Tensor | null; cI: Tensor | null } {
  return {
    f: reshape(slice(values, [0], [1]), []),
    cE: mE ? slice(values, [1], [1 + mE]) : null,
    cI: mI ? slice(values, [1 + mE], [1 + mE + mI]) : null,
  };
}

/**
 * θ and the barrier sum B at (x, s) from F's values there, as 0-d tensors:
 * θ = ‖c_E‖₁ + ‖c_I − s‖₁ (IPOPT's choice of norm), B = Σ ln s + Σ ln d_L + Σ ln d_U.
 */
export function thetaAndBarrier(
  values: Tensor,
  x: Tensor,
  s: Tensor | null,
  b: BoundSet,
  mE: number,
  mI: number,
): [Tensor, Tensor] {
  return tidy(() => {
    const { cE, cI } = split(values, mE, mI);
    const zero = zeros([], { dtype: x.dtype, device: x.device });
    let theta = zero, bar = zero;
    if (cE) theta = add(theta, sum(abs(cE)));
    if (cI && s) {
      theta = add(theta, sum(abs(sub(cI, s))));
      bar = add(bar, sum(log(s)));
    }
    const { dl, du } = distances(x, b);
    if (dl) bar = add(bar, sum(log(dl)));
    if (du) bar = add(bar, sum(log(du)));
    return [theta, bar];
  });
}

/** The cotangent [1, −y, −w] that pulls F back to ∇f − J_Eᵀ y − J_Iᵀ w. */
export function lagrangianCotangent(x: Tensor, y: Tensor | null, w: Tensor | null): Tensor {
  return tidy(() => {
    const parts = [ones([1], { dtype: x.dtype, device: x.device })];
    if (y) parts.push(neg(y));
    if (w) parts.push(neg(w));
    return parts.length === 1 ? parts[0] : concat(parts, 0);
  });
}

/** What one read-back tells about an iterate (all unscaled). */
export interface Measures {
  /** max(‖∇_x L‖∞, ‖λ − z‖∞), and ‖∇_x L‖₂. */
  dualInf: number;
  gradNorm: number;
  /** max(‖c_E‖∞, ‖c_I − s‖∞): the primal infeasibility of the slack form. */
  primalInf: number;
  /** The largest violation of the user's constraints at x: max(|c_E|, −c_I, 0). */
  violation: number;
  /** max and min of the products s z, d_L z_L, d_U z_U (min: +∞ without any). */
  complMax: number;
  complMin: number;
  /** The mean of those products (0 without any). */
  complMean: number;
  /** max |c_I z| and bound-distance products: the complementarity of the user's problem. */
  complUser: number;
  /** s_d and s_c of eq. (5). */
  sd: number;
  sc: number;
}

/** E_μ of eq. (5) (E_0 for μ = 0), from the measures. */
export function optimalityError(m: Measures, mu: number): number {
  const compl = m.complMax === -Infinity ? 0 : Math.max(m.complMax - mu, mu - m.complMin);
  return Math.max(m.dualInf / m.sd, Math.max(m.primalInf, m.violation), compl / m.sc);
}

/**
 * The measures of an iterate, from one read-back: its Lagrangian gradient (one pullback of
 * the kept forward pass), residuals, complementarity and the multipliers' sizes.
 */
export async function measure(
  prob: ConstrainedProblem,
  it: Iterate,
  b: BoundSet,
  read: (...ts: Tensor[]) => Promise<number[]>,
): Promise<Measures> {
  const { mE, mI } = prob;
  const ct = lagrangianCotangent(it.x, it.y, it.lam);
  let gl: Tensor;
  try {
    gl = prob.pull(it.ev, ct);
  } finally {
    ct.dispose();
  }
  const inputs: MeasureInputs = {
    gl,
    values: it.ev.values,
    x: it.x,
    ...present({ y: it.y, s: it.s, z: it.z, lam: it.lam, zL: it.zL, zU: it.zU }),
    ...boundTensors(b),
  };
  const packed = measureProgram(prob.compiled, inputs, mE, mI);
  gl.dispose();
  let v: number[];
  try {
    v = await read(packed);
  } finally {
    packed.dispose();
  }
  const [dualInf, g2, primalInf, violation, complMax, complMin, complUser, ysum, zsum, csum] = v;
  const nz = mI + b.nL + b.nU;
  const { sMax } = BARRIER;
  return {
    dualInf,
    gradNorm: Math.sqrt(g2),
    primalInf,
    violation,
    complMax,
    complMin,
    complMean: csum / Math.max(1, mI + b.nL + b.nU),
    complUser,
    sd: Math.max(sMax, (ysum + zsum) / Math.max(1, mE + mI + nz)) / sMax,
    sc: Math.max(sMax, zsum / Math.max(1, nz)) / sMax,
  };
}

/** The tensors `measureTensors` reads (absent: no such constraints or bounds). */
interface MeasureInputs extends BoundTensors {
  /** ∇f − J_Eᵀ y − J_Iᵀ λ. */
  gl: Tensor;
  values: Tensor;
  x: Tensor;
  y?: Tensor;
  s?: Tensor;
  z?: Tensor;
  lam?: Tensor;
  zL?: Tensor;
  zU?: Tensor;
}

/**
 * The measures' ten scalars in one tensor: ‖∇L‖∞ (with λ − z), ‖∇L‖², the primal
 * infeasibility, the user's violation, max / min complementarity products, the user's
 * complementarity, Σ|y, λ|, Σz, Σ products. A pure function of tensors (`measureProgram`).
 */
function measureTensors(a: MeasureInputs, mE: number, mI: number): Tensor {
  const o = { dtype: a.x.dtype, device: a.x.device } as const;
  const zero = zeros([], o), ninf = full([], -Infinity, o), pinf = full([], Infinity, o);
  let g = a.gl;
  if (a.zL) g = sub(g, a.zL);
  if (a.zU) g = add(g, a.zU);
  const { cE, cI } = split(a.values, mE, mI);
  const b = boundSetOf(a);
  const { dl, du } = distances(a.x, b);
  let primal = zero, viol = zero, cmax = ninf, cmin = pinf, cuser = zero, csum = zero;
  let ysum = zero, zsum = zero;
  if (cE && a.y) {
    primal = max(abs(cE));
    viol = primal;
    ysum = sum(abs(a.y));
  }
  let dual = max(abs(g));
  if (cI && a.s && a.z && a.lam) {
    primal = maximum(primal, max(abs(sub(cI, a.s))));
    viol = maximum(viol, max(neg(cI)));
    // the slacks' stationarity λ − z = 0 belongs to the dual infeasibility (IPOPT's inf_du)
    dual = maximum(dual, max(abs(sub(a.lam, a.z))));
    const p = mul(a.s, a.z);
    cmax = maximum(cmax, max(p));
    cmin = minimum(cmin, min(p));
    csum = add(csum, sum(p));
    cuser = maximum(cuser, max(abs(mul(cI, a.lam))));
    ysum = add(ysum, sum(abs(a.lam)));
    zsum = add(zsum, sum(a.z));
  }
  const pair = (d: Tensor | null, zb: Tensor | undefined, has: Tensor | null) => {
    if (!d || !zb || !has) return;
    const p = mul(d, zb);
    cmax = maximum(cmax, max(where(has, p, -Infinity)));
    cmin = minimum(cmin, min(where(has, p, Infinity)));
    csum = add(csum, sum(mul(has, p)));
    cuser = maximum(cuser, max(p));
    zsum = add(zsum, sum(zb));
  };
  pair(dl, a.zL, b.hasLower);
  pair(du, a.zU, b.hasUpper);
  const all = [dual, sum(mul(g, g)), primal, maximum(viol, 0), cmax, cmin, cuser, ysum, zsum, csum];
  return concat(all.map((t) => reshape(t, [1])), 0);
}

const measureProgram = compilable(measureTensors, { static: [1, 2] });

/** The bounds' tensors that exist, for compiled programs (which take no nulls). */
export type BoundTensors = {
  lower?: Tensor;
  upper?: Tensor;
  hasLower?: Tensor;
  hasUpper?: Tensor;
};

/** The bounds' tensors of `b` that exist. */
export function boundTensors(b: BoundSet): BoundTensors {
  return present({ lower: b.lower, upper: b.upper, hasLower: b.hasLower, hasUpper: b.hasUpper });
}

/** A bound set (without counts) from its tensors, inside a compiled program. */
export function boundSetOf(a: BoundTensors): BoundSet {
  return {
    lower: a.lower ?? null,
    upper: a.upper ?? null,
    hasLower: a.hasLower ?? null,
    hasUpper: a.hasUpper ?? null,
    nL: 0,
    nU: 0,
  };
}

/** The present entries of an object of optional tensors (null and undefined dropped). */
export function present<T extends Record<string, Tensor | null | undefined>>(
  o: T,
): { [K in keyof T]?: Tensor } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v)) as { [K in keyof T]?: Tensor };
}

/** Eq. (7): μ ← max(ε_tol / 10, min(κ_μ μ, μ^θ_μ)). */
export function nextMu(mu: number, tol: number): number {
  return Math.max(tol / 10, Math.min(BARRIER.kappaMu * mu, Math.pow(mu, BARRIER.thetaMu)));
}

/**
 * LOQO's oracle (Vanderbei & Shanno 1999, IPOPT's `mu_oracle loqo`): μ = σ · mean(s∘z) with
 * σ = 0.1 min(0.05 (1 − ξ)/ξ, 2)³ and ξ = min(s∘z) / mean(s∘z): small when the products are
 * well centred, up to 0.8 · mean when one product lags far behind the others.
 */
export function loqoMu(m: Measures): number {
  const xi = m.complMin / m.complMean;
  return 0.1 * Math.pow(Math.min((0.05 * (1 - xi)) / xi, 2), 3) * m.complMean;
}

/** How μ is updated: `"monotone"` (Fiacco–McCormick, IPOPT's default) or `"adaptive"`. */
export type BarrierStrategy = "monotone" | "adaptive";

/**
 * The barrier parameter and its update (step A-3).
 *
 * Monotone: μ stays until the barrier problem is solved to E_μ ≤ κ_ε μ (or to the rounding
 * floor, `floor`), then falls by eq. (7) (repeatedly while that holds, as IPOPT's
 * mu_allow_fast_monotone_decrease).
 *
 * Adaptive (Nocedal, Wächter & Waltz, "Adaptive barrier update strategies for nonlinear
 * interior methods", SIAM J. Optim. 19, 2009; IPOPT's `mu_strategy adaptive` with its
 * default `obj-constr-filter` globalisation): in the free mode μ is chosen afresh every
 * iteration by the LOQO oracle, as long as each iterate is acceptable to a filter of the
 * free mode's earlier (θ, f) pairs (it must improve θ or f on each, with margins 10⁻⁵ θ).
 * Otherwise the method falls back to the monotone mode with μ = 0.8 mean(s∘z), and returns
 * to the free mode once a barrier problem is solved with E₀ below 0.9 of its value at the
 * fall-back. (The `kkt-error` globalisation, E₀ falling monotonically, measured worse here:
 * E₀ rises while a path is being pushed out of obstacles, and each fall-back restarts μ
 * high.) Centred steps are much longer
 * on problems with many nearly active constraints (a path pressed against obstacles), where
 * the monotone update spends many iterations at one μ cut short by the fraction-to-the-
 * boundary rule.
 */
export class BarrierUpdate {
  /** The barrier parameter μ. */
  mu: number;
  /** τ of the fraction-to-the-boundary rule. */
  tau: number;
  /**
   * The rounding floor of E (`roundingFloor`): a barrier problem counts as solved once
   * E_μ ≤ max(κ_ε μ, floor), since no step brings E_μ below what rounding leaves in ∇f.
   */
  floor = 0;
  #free: boolean;
  #refs: [number, number][] = [];
  #switchedAt = Infinity;
  #muMax = Infinity;

  constructor(readonly strategy: BarrierStrategy, muInit: number, readonly tol: number) {
    this.mu = muInit;
    this.tau = fractionToBoundaryTau(muInit);
    this.#free = strategy === "adaptive";
  }

  /** Which mode the update is in. */
  get mode(): "free" | "monotone" {
    return this.#free ? "free" : "monotone";
  }

  /**
   * A-3 for the iterate with measures `m`, constraint violation θ and objective f; true when
   * μ changed (the line search's filter is then reset).
   */
  update(m: Measures, theta: number, f: number): boolean {
    const muMin = this.tol / 10, e0 = optimalityError(m, 0);
    const before = this.mu;
    const g = 1e-5;
    if (this.#free && m.complMean > 0) {
      // IPOPT's mu_max = mu_max_fact (1000) × the first mean complementarity
      if (this.#muMax === Infinity) this.#muMax = 1000 * Math.max(this.mu, m.complMean);
      if (this.#refs.every(([t, v]) => theta <= (1 - g) * t || f <= v - g * t)) {
        this.#refs.push([theta, f]);
        this.mu = Math.min(this.#muMax, Math.max(muMin, loqoMu(m)));
      } else this.#toMonotone(m);
    } else if (this.strategy === "adaptive" && m.complMean > 0 && !this.#free) {
      // back to the free mode once a barrier problem is solved with enough progress
      if (
        this.#solved(m, this.mu) && e0 <= 0.9 * this.#switchedAt
      ) {
        this.#free = true;
        this.#refs = [[theta, f]];
        this.mu = Math.min(this.#muMax, Math.max(muMin, loqoMu(m)));
      }
    }
    if (!this.#free) {
      while (this.mu > muMin && this.#solved(m, this.mu)) {
        this.mu = nextMu(this.mu, this.tol);
      }
    }
    this.tau = fractionToBoundaryTau(this.mu);
    return this.mu !== before;
  }

  /** Whether the barrier problem at μ is solved, to κ_ε μ or to the rounding floor. */
  #solved(m: Measures, mu: number): boolean {
    return optimalityError(m, mu) <= Math.max(BARRIER.kappaEps * mu, this.floor);
  }

  /** The free mode's step failed: continue in the monotone mode from the iterate's `m`. */
  fallBack(m: Measures): boolean {
    if (!this.#free) return false;
    this.#toMonotone(m);
    this.tau = fractionToBoundaryTau(this.mu);
    return true;
  }

  #toMonotone(m: Measures): void {
    this.#free = false;
    this.#switchedAt = optimalityError(m, 0);
    this.mu = Math.min(this.#muMax, Math.max(this.tol / 10, 0.8 * m.complMean));
  }
}

/** Eq. (8): τ = max(τ_min, 1 − μ). */
export function fractionToBoundaryTau(mu: number): number {
  return Math.max(BARRIER.tauMin, 1 - mu);
}

/**
 * Eq. (15), the fraction-to-the-boundary rule: the largest α ∈ (0, 1] with
 * v + α dv ≥ (1 − τ) v for every pair (v > 0), as a 0-d tensor. Entries with dv ≥ 0 do
 * not limit α (masked-out bounds have v = 1, dv = 0).
 */
export function fractionToBoundary(
  tau: number | Tensor,
  pairs: [Tensor, Tensor][],
  like: Tensor,
): Tensor {
  return tidy(() => {
    let a = ones([], { dtype: like.dtype, device: like.device });
    const minusTau = typeof tau === "number" ? -tau : neg(tau);
    for (const [v, dv] of pairs) {
      const neg = greater(0, dv);
      // where dv < 0: −τ v / dv; elsewhere 1 (the divisor is replaced to stay finite)
      const ratio = where(neg, div(mul(v, minusTau), where(neg, dv, -1)), 1);
      a = minimum(a, min(ratio));
    }
    return a;
  });
}

/**
 * Eq. (16): z_i ← max(min(z_i, κ_Σ μ / v_i), μ / (κ_Σ v_i)), so that the primal-dual Σ
 * never strays far from the primal barrier Hessian μ / v². `has` masks bounds that exist.
 */
export function resetMultipliers(
  z: Tensor,
  v: Tensor,
  mu: number | Tensor,
  has: Tensor | null,
): Tensor {
  return tidy(() => {
    const k = BARRIER.kappaSigma;
    const [hi, lo] = typeof mu === "number" ? [k * mu, mu / k] : [mul(mu, k), div(mu, k)];
    const r = maximum(minimum(z, div(hi, v)), div(lo, v));
    return has ? mul(r, has) : r;
  });
}
