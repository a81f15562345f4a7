/**
 * Conjugate gradients with device-side scalars: α, β, rᵀz and ‖r‖² are 0-d tensors, and the
 * host reads a handful of them back once every `checkEvery` iterations.
 */
import type { Tensor } from "../tensor.ts";
import { Tensor as TensorClass } from "../tensor.ts";
import { ownedCall, tidy } from "../memory.ts";
import { describeValue } from "../ops/common.ts";
import { full, zeros } from "../ops/creation.ts";
import {
  abs,
  add,
  div,
  greater,
  less,
  lessEqual,
  maximum,
  mul,
  sub,
  where,
} from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { concat, stack } from "../ops/movement.ts";
import { fmtShape, shapesEqual } from "../shape.ts";
import { checkOptions, oneOf } from "../options.ts";
import { checkProgress, type ProgressCallback } from "../progress.ts";
import { jit } from "../ad/jit.ts";

/** The option keys of {@linkcode cg}. */
const CG_OPTIONS = [
  "rtol",
  "atol",
  "maxIter",
  "x0",
  "preconditioner",
  "checkEvery",
  "onNegativeCurvature",
  "onProgress",
] as const;

function disposeAll(...ts: Tensor[]): void {
  for (const t of ts) t.dispose();
}

/** Options of {@linkcode cg}. */
export interface CgOptions {
  /**
   * Tolerance relative to ‖b‖ (default 1e-5, SciPy's): CG stops at ‖b − Ax‖ ≤
   * max(rtol · ‖b‖, atol), SciPy's rule. (There is no `tol`: JAX's is relative, SciPy's old
   * one absolute; say which you mean with `rtol` or `atol`.)
   */
  rtol?: number;
  /** Absolute tolerance on the residual norm ‖b − Ax‖ (default 0, SciPy's). */
  atol?: number;
  /** Most iterations (matrix-vector products after the first), default 10·n (SciPy's). */
  maxIter?: number;
  /** Starting point (default zeros); not modified. */
  x0?: Tensor;
  /** Applies M⁻¹ for a symmetric positive definite preconditioner M: `r ↦ M⁻¹r`. */
  preconditioner?: (r: Tensor) => Tensor;
  /** Read back and test for convergence every this many iterations (default 10). */
  checkEvery?: number;
  /**
   * What to do when pᵀAp ≤ 0 (A is not positive definite): `"stop"` (default) freezes the
   * iterate before that direction and reports it; `"continue"` keeps iterating while
   * pᵀAp ≠ 0 (CG on an indefinite but non-singular system often still converges) and
   * reports that negative curvature was met.
   */
  onNegativeCurvature?: "stop" | "continue";
  /**
   * Called at every convergence check (each `checkEvery` iterations, when the host reads
   * the residual anyway): `{ done: iterations run, total: maxIter, unit: "iterations",
   * residual: ‖r‖ }`. Costs no extra read-back.
   */
  onProgress?: ProgressCallback;
}

/** The result of {@linkcode cg}. */
export interface CgResult {
  /** The solution (or the last good iterate, always finite); the caller owns it. */
  x: Tensor;
  /** CG steps taken (steps after convergence or a stop are not counted). */
  iterations: number;
  /** Matrix-vector products spent, including frozen steps between checks and the one for x0. */
  matvecs: number;
  /** ‖r‖ of the recursively updated residual at the end. */
  residualNorm: number;
  /** True when ‖r‖ ≤ max(rtol·‖b‖, atol). */
  converged: boolean;
  /** True when a direction with pᵀAp < 0 (below rounding) was met. */
  negativeCurvature?: boolean;
  /** pᵀAp / pᵀp for the first such direction: an upper bound on A's smallest eigenvalue. */
  curvature?: number;
  /**
   * True when CG could not go on: pᵀAp not finite (a NaN or Inf from the matvec), an update
   * that would leave x or r not finite, or pᵀAp zero to rounding (A singular along p, as when
   * b lies outside the range of a singular positive semidefinite A). x is the last iterate
   * before that step.
   */
  breakdown?: boolean;
  /** What happened, in words. */
  message: string;
}

/** The largest finite value of a dtype: |v| ≤ it is false for ±Infinity and NaN. */
function finiteMax(dtype: string): number {
  return dtype === "f64" ? Number.MAX_VALUE : 3.4028234663852886e38;
}

function dotAll(a: Tensor, b: Tensor): Tensor {
  return sum(mul(a, b));
}

function nonNegative(op: string, name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
    throw new RangeError(`${op}: ${name} must be a finite number ≥ 0, got ${String(v)}`);
  }
  return v;
}

function count(op: string, name: string, v: unknown, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`${op}: ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  return v;
}

/** @internal Throws unless a matvec's output matches its input's shape, dtype and device. */
export function checkMatvec(op: string, what: string, y: unknown, like: Tensor): Tensor {
  if (!(y instanceof TensorClass)) {
    throw new TypeError(`${op}: ${what} must return a Tensor, got ${describeValue(y)}`);
  }
  if (!shapesEqual(y.shape, like.shape) || y.dtype !== like.dtype || y.device !== like.device) {
    throw new RangeError(
      `${op}: ${what} returned ${fmtShape(y.shape)} ${y.dtype} on ${y.device.kind}; expected ` +
        `${fmtShape(like.shape)} ${like.dtype} on ${like.device.kind} (the shape of b)`,
    );
  }
  return y;
}

/** @internal Checks the right-hand side of a solver. */
export function checkRhs(op: string, matvec: unknown, b: unknown): Tensor {
  if (typeof matvec !== "function") {
    throw new TypeError(`${op}: matvec must be a function v ↦ Av, got ${describeValue(matvec)}`);
  }
  if (!(b instanceof TensorClass)) {
    throw new TypeError(`${op}: b must be a Tensor, got ${describeValue(b)}`);
  }
  if (b.dtype === "i32") throw new TypeError(`${op}: b must be f32 or f64, got i32`);
  if (b.size === 0) throw new RangeError(`${op}: b is empty`);
  return b;
}

/** One CG step before it is accepted (see `candidate` in cgRun). */
interface Candidate {
  pAp: Tensor;
  pp: Tensor;
  live: Tensor;
  usable: Tensor;
  xn: Tensor;
  rn: Tensor;
}

interface State {
  x: Tensor;
  r: Tensor;
  p: Tensor;
  rz: Tensor;
  rr: Tensor;
  /** 1 while iterating; 0 once converged or stopped (then nothing moves any more). */
  active: Tensor;
  /** CG steps taken. */
  iters: Tensor;
  /** pᵀAp of the step that stopped CG ("stop": ≤ 0 or not finite), else 0. */
  stopPAp: Tensor;
  /** "continue" mode: 1 once a step had pᵀAp < 0. */
  negSeen: Tensor;
  /** The largest Rayleigh quotient pᵀAp / pᵀp met: a lower bound on ‖A‖₂, the scale of "zero". */
  scale: Tensor;
}

function replace(old: State, next: Partial<State>): State {
  const kept = new Set<Tensor>(Object.values(next));
  for (const t of new Set<Tensor>(Object.values(old))) if (!kept.has(t)) t.dispose();
  return next as State;
}

/** Relative size, against ‖A‖, below which |pᵀAp| / pᵀp counts as zero (A singular along p). */
function zeroCurvature(dtype: string): number {
  return 64 * (dtype === "f64" ? 2 ** -52 : 2 ** -23);
}

/**
 * Solves `A x = b` by (preconditioned) conjugate gradients for a symmetric positive
 * definite A given as a function `v ↦ Av` (a Hessian-vector product, a banded matvec, …).
 * `b` may have any shape; `matvec` maps that shape to itself. It stops at ‖b − Ax‖ ≤
 * max(`rtol` · ‖b‖, `atol`) (SciPy's rule and names; defaults 1e-5 and 0), after `maxIter`
 * steps, when A shows it is not positive definite, or when CG breaks down.
 *
 * **Device-side scalars.** α = rᵀz / pᵀAp, β and the residual norms are 0-d tensors; no
 * iteration reads anything back. Every `checkEvery` iterations (default 10) one small tensor
 * of flags is read back (a single read-back) to test for convergence, so a solve costs about
 * ⌈iterations / checkEvery⌉ read-backs, and may spend up to `checkEvery − 1` extra
 * matrix-vector products after it has converged: those steps are frozen (they leave x
 * unchanged and are not counted in `iterations`, only in `matvecs`).
 *
 * **Freezing, negative curvature, breakdown.** Each iteration computes on the device the 0-d
 * flag `ok` — still running, ‖r‖ above the target, pᵀAp finite and (in `"stop"` mode)
 * positive beyond rounding, and the updated x and r finite — and moves x, r and p only
 * through `where(ok, new, old)`; then `active ← ok`. Once CG converges or stops, the
 * iterate stays where it was for good, and the pᵀAp of the stopping step is kept. The next
 * check reads it back and tells the cases apart on the host: pᵀAp < 0 beyond rounding is
 * negative curvature (result: the iterate before that direction, `negativeCurvature: true`,
 * `curvature` = pᵀAp/pᵀp); |pᵀAp| at rounding level of ‖A‖ (estimated by the largest
 * Rayleigh quotient met) means A is singular along p — as when b lies outside the range of
 * a singular positive semidefinite A — and is a breakdown, as is a non-finite pᵀAp or
 * update: `breakdown: true`, x the last finite iterate. NaN or Infinity in `b` or `x0` is an
 * error naming them (found at the first read-back). A step costs one matvec, four
 * reductions and about twenty elementwise ops (most of them on 0-d tensors).
 *
 * Memory: each iteration runs in a `tidy` scope and frees the previous state, so only x
 * (returned) outlives the call.
 *
 * @example
 * ```ts
 * import { cg, matmul, type Tensor, tensor } from "@curvature/curvature";
 * const A = tensor([[4, 1], [1, 3]], { dtype: "f64" });
 * const b = tensor([1, 2], { dtype: "f64" });
 * const res = await cg((v: Tensor) => matmul(A, v), b, { rtol: 1e-12 });
 * console.log(res.converged, res.iterations, await res.x.toArray()); // true 2 [1/11, 7/11]
 * ```
 */
export function cg(
  matvec: (v: Tensor) => Tensor,
  b: Tensor,
  opts: CgOptions = {},
): Promise<CgResult> {
  // a failure (the matvec throws) frees whatever the iteration had made
  return ownedCall((own) => cgRun(matvec, own(b), opts));
}

async function cgRun(
  matvec: (v: Tensor) => Tensor,
  b: Tensor,
  opts: CgOptions,
): Promise<CgResult> {
  const op = "cg";
  checkRhs(op, matvec, b);
  checkOptions(op, opts, CG_OPTIONS, {
    tol: "cg has no \"tol\" (JAX's is relative, SciPy's old one absolute): pass rtol (relative " +
      "to ‖b‖) or atol (absolute), or both: CG stops at ‖r‖ ≤ max(rtol·‖b‖, atol)",
  });
  const atol = nonNegative(op, "atol", opts.atol, 0);
  const rtol = nonNegative(op, "rtol", opts.rtol, 1e-5);
  const maxIter = count(op, "maxIter", opts.maxIter, 10 * b.size, 0);
  const checkEvery = count(op, "checkEvery", opts.checkEvery, 10, 1);
  const mode = oneOf(
    op,
    "onNegativeCurvature",
    opts.onNegativeCurvature,
    ["stop", "continue"],
    "stop",
  );
  const onProgress = checkProgress(op, opts.onProgress);
  const x0 = opts.x0;
  if (x0 !== undefined) {
    if (!(x0 instanceof TensorClass)) {
      throw new TypeError(`${op}: x0 must be a Tensor, got ${describeValue(x0)}`);
    }
    if (!shapesEqual(x0.shape, b.shape) || x0.dtype !== b.dtype || x0.device !== b.device) {
      throw new RangeError(
        `${op}: x0 is ${fmtShape(x0.shape)} ${x0.dtype} on ${x0.device.kind}; expected b's ` +
          `${fmtShape(b.shape)} ${b.dtype} on ${b.device.kind}`,
      );
    }
  }
  const M = opts.preconditioner;
  if (M !== undefined && typeof M !== "function") {
    throw new TypeError(`${op}: preconditioner must be a function r ↦ M⁻¹r`);
  }
  const fmax = finiteMax(b.dtype);
  const zero = zeroCurvature(b.dtype);
  const A = (v: Tensor) => checkMatvec(op, "matvec", matvec(v), b);
  const prec = (r: Tensor) => (M ? checkMatvec(op, "preconditioner", M(r), b) : r);

  // ‖b‖² and ‖x0‖² go out with the first check, where NaN/Inf in the inputs is named
  const [thr2, inputs] = tidy(() => {
    const bb = dotAll(b, b);
    return [
      maximum(mul(bb, rtol * rtol), atol * atol),
      stack([bb, x0 ? dotAll(x0, x0) : mul(bb, 0)]),
    ];
  });
  let st: State = tidy(() => {
    const scalar = (v: number) => full([], v, { dtype: b.dtype, device: b.device });
    const x = x0 ? mul(x0, 1) : zeros(b.shape, { dtype: b.dtype, device: b.device });
    const r = x0 ? sub(b, A(x0)) : mul(b, 1);
    const z = prec(r);
    const rz = dotAll(r, z);
    return {
      x,
      r,
      p: z === r ? mul(r, 1) : z,
      rz,
      rr: M ? dotAll(r, r) : rz,
      active: scalar(1),
      iters: scalar(0),
      stopPAp: scalar(0),
      negSeen: scalar(0),
      scale: scalar(0),
    };
  });
  // The iteration's own arithmetic runs compiled for the call (traced at the first step,
  // replayed after); the matvec and the preconditioner are the caller's functions and run
  // as they are, every step.
  const toward = jit(candidate);
  const acceptJ = jit((s: State, h: Candidate, z: Tensor) => {
    const { rr, ...rest } = next(s, h, z);
    return M ? { ...rest, rr } : rest; // without M, rr is rz: one result, not two
  });
  const accept = (s: State, h: Candidate, z: Tensor): State => {
    const n = acceptJ(s, h, z);
    return { ...n, rr: "rr" in n ? n.rr as Tensor : n.rz };
  };
  const clear = () => {
    toward.clear();
    acceptJ.clear();
  };
  let loops = 0;
  let flags: number[] = [];
  try {
    for (let first = true;; first = false) {
      const todo = Math.min(checkEvery, maxIter - loops);
      for (let i = 0; i < todo; i++) {
        st = replace(st, tidy(() => step(st)));
        loops++;
      }
      const probe = tidy(() =>
        concat([
          stack([
            st.active,
            st.rr,
            thr2,
            st.iters,
            st.stopPAp,
            dotAll(st.p, st.p),
            st.negSeen,
            st.scale,
          ]),
          ...(first ? [inputs] : []),
        ], 0)
      );
      try {
        flags = Array.from(await probe.data());
      } finally {
        probe.dispose();
      }
      if (first) {
        if (!Number.isFinite(flags[8])) throw new RangeError(`${op}: b contains NaN or Infinity`);
        if (!Number.isFinite(flags[9])) throw new RangeError(`${op}: x0 contains NaN or Infinity`);
      }
      onProgress?.({
        done: loops,
        total: maxIter,
        unit: "iterations",
        residual: Math.sqrt(flags[1]),
      });
      if (flags[0] === 0 || loops >= maxIter) break;
    }
  } catch (e) {
    clear();
    replace(st, {});
    disposeAll(thr2, inputs);
    throw e;
  }
  clear();
  const x = st.x;
  replace(st, { x });
  disposeAll(thr2, inputs);
  const [active, rr, t2, iters, stopPAp, pp, negSeen, scale] = flags;
  // Stopped with ‖r‖ still above the threshold: the stopping step's pᵀAp says why.
  const stopped = active === 0 && !(rr <= t2);
  const curv = stopPAp / pp; // the frozen p is the direction that stopped CG
  const singular = stopped && Number.isFinite(curv) && Math.abs(curv) <= zero * scale;
  const negStop = stopped && mode === "stop" && !singular && curv < 0;
  const neg = mode === "stop" ? negStop : negSeen !== 0;
  const bad = stopped && !negStop;
  const residualNorm = Math.sqrt(rr);
  const converged = !stopped && rr <= t2;
  const res: CgResult = {
    x,
    iterations: iters,
    matvecs: loops + (x0 ? 1 : 0),
    residualNorm,
    converged,
    message: "",
  };
  const fmt = (v: number) => v.toExponential(3);
  if (neg) res.negativeCurvature = true;
  if (negStop) res.curvature = curv;
  if (bad) {
    res.breakdown = true;
    res.message = singular
      ? `breakdown: A is singular along the search direction at iteration ${iters + 1} ` +
        `(pᵀAp/pᵀp = ${fmt(curv)}, zero to rounding against ‖A‖ ≥ ${fmt(scale)}); b is ` +
        `probably outside A's range. x is the last iterate before that direction.`
      : `breakdown: pᵀAp or the update was not finite at iteration ${iters + 1}; check the ` +
        `matvec for NaN/Inf. x is the last finite iterate.`;
  } else if (negStop) {
    res.message =
      `negative curvature: pᵀAp < 0 at iteration ${iters + 1} (pᵀAp/pᵀp = ${
        fmt(curv)
      }), so A is not positive definite; x is the iterate before that direction. ` +
      `Add damping (A + λI with λ > ${fmt(-curv)}) or pass onNegativeCurvature: "continue".`;
  } else if (converged) {
    res.message = `converged: ‖r‖ = ${fmt(residualNorm)} ≤ ${fmt(Math.sqrt(t2))} after ${iters} ` +
      `iterations${neg ? " (negative curvature was met on the way)" : ""}`;
  } else {
    res.message = `not converged: ${maxIter} iterations reached with ‖r‖ = ${fmt(residualNorm)} > ${
      fmt(Math.sqrt(t2))
    }`;
  }
  return res;

  /**
   * One CG iteration on device values. `ok` (0 or 1) says whether this step is taken; a step
   * not taken leaves x, r and p as they were (where() rather than α = 0 alone, since 0 · p
   * would be NaN if the matvec had produced one), and `active ← ok` keeps them frozen.
   */
  function step(s: State): State {
    const Ap = A(s.p);
    const h = toward(s, Ap);
    return accept(s, h, prec(h.rn));
  }

  /** The step's candidate: pᵀAp, pᵀp, whether it is usable, and the moved x and r. */
  function candidate(s: State, Ap: Tensor): Candidate {
    const pAp = dotAll(s.p, Ap);
    const pp = dotAll(s.p, s.p);
    const live = mul(s.active, greater(s.rr, thr2));
    // |pᵀAp| at rounding level of ‖A‖ pᵀp (‖A‖ ≥ the largest Rayleigh quotient so far): zero
    const tiny = mul(mul(maximum(s.scale, div(abs(pAp), pp)), pp), zero);
    // "stop": pᵀAp > tiny and ≤ max (false for NaN); "continue": |pᵀAp| > tiny and finite
    const usable = mode === "stop"
      ? mul(greater(pAp, tiny), lessEqual(pAp, fmax))
      : mul(greater(abs(pAp), tiny), lessEqual(abs(pAp), fmax));
    const alpha = div(s.rz, pAp); // used only where ok
    return { pAp, pp, live, usable, xn: add(s.x, mul(alpha, s.p)), rn: sub(s.r, mul(alpha, Ap)) };
  }

  /** The next state: the candidate where it is taken, else the old values (z = M⁻¹ rn). */
  function next(s: State, h: Candidate, z: Tensor): State {
    const { pAp, pp, live, usable, xn, rn } = h;
    const rzn = dotAll(rn, z);
    // the update stays finite: x and r (their squared norms, one more reduction for x)
    const finite = mul(lessEqual(abs(rzn), fmax), lessEqual(dotAll(xn, xn), fmax));
    const ok = mul(mul(live, usable), finite);
    const x = where(ok, xn, s.x);
    const r = where(ok, rn, s.r);
    const rz = where(ok, rzn, s.rz);
    const p = where(ok, add(z, mul(div(rzn, s.rz), s.p)), s.p);
    return {
      x,
      r,
      p,
      rz,
      rr: M ? where(ok, dotAll(rn, rn), s.rr) : rz,
      active: ok,
      iters: add(s.iters, ok),
      stopPAp: where(sub(live, ok), pAp, s.stopPAp),
      negSeen: mode === "stop" ? s.negSeen : maximum(s.negSeen, mul(ok, less(pAp, 0))),
      scale: where(live, maximum(s.scale, div(pAp, pp)), s.scale),
    };
  }
}
