/**
 * The truncated Neumann series for A⁻¹b, with divergence detected on the device and one
 * read-back at the end.
 */
import type { Tensor } from "../tensor.ts";
import { ownedCall, tidy } from "../memory.ts";
import { checkOptions } from "../options.ts";
import { full } from "../ops/creation.ts";
import { add, lessEqual, mul, sqrt, sub, where } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { slice, stack } from "../ops/movement.ts";
import { checkMatvec, checkRhs } from "./cg.ts";

/** Options of {@linkcode neumann} and {@linkcode neumannSeries}. */
export interface NeumannOptions {
  /** Number of terms K of the series (K − 1 matrix-vector products). */
  terms: number;
  /** The step s: the series converges when the spectral radius of I − s·A is below 1. */
  scale: number;
  /**
   * A term (I − sA)^k b whose norm exceeds `growth · ‖b‖` (default 10) marks the series as
   * diverged. For a symmetric A with ‖I − sA‖ ≤ 1 the term norms never increase.
   */
  growth?: number;
}

/** The result of {@linkcode neumannSeries}. */
export interface NeumannResult {
  /** `s · Σ_{k<K} (I − sA)^k b`, or the partial sum before divergence; the caller owns it. */
  x: Tensor;
  /** Terms summed into x (K unless the series diverged). */
  terms: number;
  /** True when a term grew beyond `growth · ‖b‖` or became non-finite. */
  diverged: boolean;
  /** ‖s · (I − sA)^k b‖ for the last term summed: the size of the last correction to x. */
  lastTermNorm: number;
  /** What happened, in words. */
  message: string;
}

/**
 * `x = s · Σ_{k<K} (I − s·A)^k b`, the truncated Neumann series for A⁻¹b (the series behind
 * LiSSA-style inverse-HVPs). It converges when every eigenvalue λ of A has |1 − sλ| < 1,
 * i.e. 0 < s < 2/λ_max for a positive definite A; the error after K terms is
 * (I − sA)^K A⁻¹b.
 *
 * **Divergence.** Each term's squared norm is compared on the device with `growth²·‖b‖²`;
 * the first term above it (or non-finite) stops the accumulation, which stays frozen (via
 * `where`) so x is always the finite partial sum before divergence. One read-back at the end
 * fetches the flags, and the result says `diverged: true` with a message naming the term;
 * x is never Inf or NaN because of a divergent series. {@linkcode neumann} is the same
 * series returning the tensor at once, with divergence raised as an error instead.
 *
 * @example
 * ```ts
 * import { neumannSeries, type Tensor, tensor } from "@curvature/curvature";
 * const d = tensor([1, 2], { dtype: "f64" }); // A = diag(1, 2), A⁻¹b = [1, 0.5]
 * const res = await neumannSeries((v: Tensor) => v.mul(d), tensor([1, 1], { dtype: "f64" }), {
 *   terms: 60,
 *   scale: 0.6,
 * });
 * console.log(res.diverged, await res.x.toArray()); // false [1, 0.5] (to ~1e-13)
 * const bad = await neumannSeries((v: Tensor) => v.mul(d), tensor([1, 1], { dtype: "f64" }), {
 *   terms: 60,
 *   scale: 1.5, // |1 − 1.5·2| = 2: diverges
 * });
 * console.log(bad.diverged); // true
 * ```
 */
export function neumannSeries(
  matvec: (v: Tensor) => Tensor,
  b: Tensor,
  opts: NeumannOptions,
): Promise<NeumannResult> {
  return ownedCall((own) => seriesReport(matvec, own(b), opts));
}

async function seriesReport(
  matvec: (v: Tensor) => Tensor,
  b: Tensor,
  opts: NeumannOptions,
): Promise<NeumannResult> {
  const op = "neumannSeries";
  const { x, flags, growth } = series(op, matvec, b, opts);
  let d: Float32Array | Float64Array;
  try {
    d = (await flags.data()) as Float32Array | Float64Array;
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    flags.dispose();
  }
  const [ok, used, lastTermNorm, lim] = d;
  const diverged = ok === 0 || !Number.isFinite(lim);
  const message = diverged
    ? (Number.isFinite(lim)
      ? `diverged: term ${used} (I − sA)^${used}b had a norm above ${growth}·‖b‖ ` +
        `(or a NaN/Inf); x is the sum of the first ${used} terms. The series needs ` +
        `|1 − s·λ| < 1 for every eigenvalue λ of A: use a smaller scale (s < 2/λ_max) or ` +
        `add damping.`
      : `diverged: b is not finite`)
    : `summed ${used} terms; the last changed x by ${lastTermNorm.toExponential(3)}`;
  return { x, terms: used, diverged, lastTermNorm, message };
}

/**
 * `x = s · Σ_{k<K} (I − s·A)^k b` returned at once, as a tensor, without any read-back (see
 * {@linkcode neumannSeries} for the maths and a version that reports how the series went).
 * A divergent series (a term beyond `growth · ‖b‖`, or non-finite) is an error, never an
 * Inf/NaN result: thrown here on the CPU; on WebGPU raised by every read of x (or of anything
 * computed from it), like a singular `solve`. The returned x is the finite partial sum before divergence.
 *
 * @example
 * ```ts
 * import { neumann, type Tensor, tensor } from "@curvature/curvature";
 * const d = tensor([1, 2], { dtype: "f64" }); // A = diag(1, 2), A⁻¹b = [1, 0.5]
 * const x = neumann((v: Tensor) => v.mul(d), tensor([1, 1], { dtype: "f64" }), { terms: 60, scale: 0.6 });
 * console.log(await x.toArray()); // [1, 0.5] (to ~1e-13)
 * ```
 */
export function neumann(matvec: (v: Tensor) => Tensor, b: Tensor, opts: NeumannOptions): Tensor {
  const op = "neumann";
  const { x, flags, growth } = series(op, matvec, b, opts);
  // flags[0] is 1 while the series converges; raise unless it still is
  const bad = tidy(() => lessEqual(slice(flags, [0], [1]), 0));
  flags.dispose();
  try {
    b.device.backend.raiseIf(
      x._ref!.storage,
      bad._ref!.storage,
      `${op}: the series diverged (a term (I − sA)^k b grew beyond ${growth}·‖b‖ or was not finite). ` +
        `It needs |1 − s·λ| < 1 for every eigenvalue λ of A: use a smaller scale (s < 2/λ_max) or add damping; ` +
        `neumannSeries() reports the term where it happened`,
    );
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    bad.dispose();
  }
  return x;
}

/** The series itself, on the device: x and the flags [ok, terms used, last term norm, bound]. */
function series(
  op: string,
  matvec: (v: Tensor) => Tensor,
  b: Tensor,
  opts: NeumannOptions,
): { x: Tensor; flags: Tensor; growth: number } {
  checkRhs(op, matvec, b);
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`${op}: options { terms, scale } are required`);
  }
  checkOptions(op, opts, ["terms", "scale", "growth"]);
  const { terms, scale } = opts;
  const growth = opts.growth ?? 10;
  if (typeof terms !== "number" || !Number.isSafeInteger(terms) || terms < 1) {
    throw new RangeError(`${op}: terms must be an integer ≥ 1, got ${String(terms)}`);
  }
  if (typeof scale !== "number" || !Number.isFinite(scale) || scale === 0) {
    throw new RangeError(`${op}: scale must be a finite non-zero number, got ${String(scale)}`);
  }
  if (typeof growth !== "number" || !(growth >= 1) || !Number.isFinite(growth)) {
    throw new RangeError(`${op}: growth must be a finite number ≥ 1, got ${String(growth)}`);
  }
  const init = tidy(() => {
    const bb = sum(mul(b, b));
    return {
      bound: mul(bb, growth * growth),
      term: mul(b, 1),
      acc: mul(b, 1),
      ok: full([], 1, { dtype: b.dtype, device: b.device }),
      used: full([], 1, { dtype: b.dtype, device: b.device }),
      last: bb,
    };
  });
  let st = init;
  const bound = init.bound;
  try {
    for (let k = 1; k < terms; k++) {
      const next = tidy(() => {
        const t = sub(st.term, mul(checkMatvec(op, "matvec", matvec(st.term), b), scale));
        const tt = sum(mul(t, t));
        const ok = mul(st.ok, lessEqual(tt, bound)); // NaN and ±Inf compare false
        return {
          bound,
          term: where(ok, t, st.term),
          acc: where(ok, add(st.acc, t), st.acc),
          ok,
          used: add(st.used, ok),
          last: where(ok, tt, st.last),
        };
      });
      for (const key of ["term", "acc", "ok", "used", "last"] as const) st[key].dispose();
      st = next;
    }
    const [x, flags] = tidy(() => [
      mul(st.acc, scale),
      stack([st.ok, st.used, mul(sqrt(st.last), Math.abs(scale)), sqrt(bound)]),
    ]);
    return { x, flags, growth };
  } finally {
    for (const key of ["term", "acc", "ok", "used", "last", "bound"] as const) st[key].dispose();
  }
}
