/** Inverse Hessian-vector products (H + λI)⁻¹v by CG or a Neumann series on `hvp`. */
import type { Tensor } from "../tensor.ts";
import { Tensor as TensorClass } from "../tensor.ts";
import { hvp } from "../ad/transforms.ts";
import { ownedCall, tidy } from "../memory.ts";
import { checkOptions } from "../options.ts";
import { add, mul } from "../ops/elementwise.ts";
import { describeValue } from "../ops/common.ts";
import { fmtShape, shapesEqual } from "../shape.ts";
import { cg } from "../linalg/cg.ts";
import { compiledByRecord } from "../ad/auto_jit.ts";
import { neumannSeries } from "../linalg/neumann.ts";

/** Options of {@linkcode inverseHvp}. */
export interface InverseHvpOptions {
  /** `"cg"`: conjugate gradients; `"neumann"`: the truncated series s·Σ(I − s(H + λI))^k v. */
  method: "cg" | "neumann";
  /** λ ≥ 0 added to the Hessian's diagonal (default 0). */
  damping?: number;
  /** CG: residual tolerance relative to ‖v‖ (default 1e-5); see {@linkcode cg}. */
  rtol?: number;
  /** CG: absolute residual tolerance (default 0); CG stops at ‖r‖ ≤ max(rtol·‖v‖, atol). */
  atol?: number;
  /** CG: most iterations (default 10·n). */
  maxIter?: number;
  /** CG: read back every this many iterations (default 10). */
  checkEvery?: number;
  /** CG: what to do on negative curvature (default `"stop"`, an error here). */
  onNegativeCurvature?: "stop" | "continue";
  /** Neumann: number of terms (default 100). */
  terms?: number;
  /** Neumann: the step s, needed; 0 < s < 2/λ_max(H + λI) for convergence. */
  scale?: number;
}

/**
 * Solves `(H + damping·I) u = v` for the Hessian H of `f` at `x`, with `hvp` as the matvec
 * (one forward-over-reverse pass per iteration); `v` has x's shape.
 *
 * - `"cg"`: {@linkcode cg}. Negative curvature (H + λI not positive definite) is an error
 *   that gives pᵀHp/pᵀp and suggests a damping, unless `onNegativeCurvature: "continue"`.
 *   When CG has not converged within `maxIter`, the iterate after `maxIter` steps is
 *   returned (like SciPy's `cg` with `maxiter`); call `cg` directly for the diagnostics.
 * - `"neumann"`: {@linkcode neumann} with `terms` and `scale`; a diverging series is an
 *   error, never a tensor of Inf/NaN.
 *
 * **Repeated calls compile themselves**: the matvec H + λI (one program, replayed by every
 * iteration) is kept across calls whose f does the same operations, as {@linkcode bandedHessian}'s
 * band pass is (read there what that means for f's side effects and the tensors it closes over).
 *
 * @example
 * ```ts
 * import { inverseHvp, type Tensor, tensor } from "@curvature/curvature";
 * const f = (x: Tensor) => x.square().mul(tensor([1, 2, 4], { dtype: "f64" })).sum(); // H = diag(2, 4, 8)
 * const x = tensor([0.3, -1, 2], { dtype: "f64" });
 * const v = tensor([2, 4, 8], { dtype: "f64" });
 * const u = await inverseHvp(f, x, v, { method: "cg", rtol: 1e-12 });
 * console.log(await u.toArray()); // [1, 1, 1]
 * const w = await inverseHvp(f, x, v, { method: "neumann", terms: 200, scale: 0.2, damping: 0 });
 * console.log(await w.toArray()); // ≈ [1, 1, 1]
 * ```
 */
export function inverseHvp(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  v: Tensor,
  opts: InverseHvpOptions,
): Promise<Tensor> {
  return ownedCall((own) => solveHvp(f, own(x), own(v), opts));
}

async function solveHvp(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  v: Tensor,
  opts: InverseHvpOptions,
): Promise<Tensor> {
  const op = "inverseHvp";
  if (typeof f !== "function") {
    throw new TypeError(`${op}: expected a function, got ${describeValue(f)}`);
  }
  for (const [name, t] of [["x", x], ["v", v]] as const) {
    if (!(t instanceof TensorClass)) {
      throw new TypeError(`${op}: ${name} must be a Tensor, got ${describeValue(t)}`);
    }
  }
  if (!shapesEqual(v.shape, x.shape) || v.dtype !== x.dtype || v.device !== x.device) {
    throw new RangeError(
      `${op}: v is ${fmtShape(v.shape)} ${v.dtype} on ${v.device.kind}; expected x's ` +
        `${fmtShape(x.shape)} ${x.dtype} on ${x.device.kind}`,
    );
  }
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`${op}: options { method, … } are required`);
  }
  checkOptions(op, opts, [
    "method",
    "damping",
    "rtol",
    "atol",
    "maxIter",
    "checkEvery",
    "onNegativeCurvature",
    "terms",
    "scale",
  ], { tol: 'there is no "tol": pass rtol (relative to ‖v‖) or atol (absolute), as for cg' });
  const damping = opts.damping ?? 0;
  if (typeof damping !== "number" || !(damping >= 0) || !Number.isFinite(damping)) {
    throw new RangeError(`${op}: damping must be a finite number ≥ 0, got ${String(damping)}`);
  }
  // H + damping·I compiled: every iteration replays one program, kept across calls whose f
  // does the same operations (see auto_jit.ts)
  const Hd = (y: Tensor, u: Tensor) =>
    damping === 0 ? hvp(f, y, u) : add(hvp(f, y, u), mul(u, damping));
  const work = `hvp + ${Object.is(damping, -0) ? "-0" : damping}·I`;
  return await compiledByRecord(
    f,
    x,
    (run) =>
      iterate(op, (u: Tensor): Tensor => tidy(() => run(work, [x, u], Hd)), v, damping, opts),
  );
}

async function iterate(
  op: string,
  matvec: (u: Tensor) => Tensor,
  v: Tensor,
  damping: number,
  opts: InverseHvpOptions,
): Promise<Tensor> {
  if (opts.method === "cg") {
    const res = await cg(matvec, v, {
      rtol: opts.rtol,
      atol: opts.atol,
      maxIter: opts.maxIter,
      checkEvery: opts.checkEvery,
      onNegativeCurvature: opts.onNegativeCurvature,
    });
    const stopped = res.breakdown ||
      (res.negativeCurvature && (opts.onNegativeCurvature ?? "stop") === "stop");
    if (stopped) {
      res.x.dispose();
      throw new RangeError(`${op}: CG on H + ${damping}·I stopped. ${res.message}`);
    }
    return res.x;
  }
  if (opts.method === "neumann") {
    if (opts.scale === undefined) {
      throw new TypeError(
        `${op}: method "neumann" needs scale (0 < scale < 2/λ_max of H + damping·I)`,
      );
    }
    const res = await neumannSeries(matvec, v, { terms: opts.terms ?? 100, scale: opts.scale });
    if (res.diverged) {
      res.x.dispose();
      throw new RangeError(`${op}: the Neumann series on H + ${damping}·I ${res.message}`);
    }
    return res.x;
  }
  throw new TypeError(
    `${op}: method must be "cg" or "neumann", got ${JSON.stringify(opts.method)}`,
  );
}
