/**
 * The Hessian's dominant eigenvalues through `hvp` (PyHessian's `eigenvalues`): power
 * iteration with deflation, or Lanczos with full reorthogonalisation. Both keep their
 * scalars on the device and read back once every `checkEvery` iterations.
 */
import type { Tensor } from "../tensor.ts";
import { Tensor as TensorClass } from "../tensor.ts";
import type { FloatDtype } from "../dtype.ts";
import { hvp } from "../ad/transforms.ts";
import { ownedCall, tidy } from "../memory.ts";
import { describeValue } from "../ops/common.ts";
import { fromHost, rademacher, zeros } from "../ops/creation.ts";
import {
  abs,
  add,
  div,
  greater,
  maximum,
  mul,
  sqrt,
  square,
  sub,
  where,
} from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { matmul } from "../ops/matmul.ts";
import { concat, pad, reshape, slice, stack } from "../ops/movement.ts";
import { tridiagonalEigen } from "../linalg/tridiagonal.ts";
import { checkOptions } from "../options.ts";
import { checkProgress, type ProgressCallback } from "../progress.ts";

/** Options of {@linkcode hessianEigenvalues}. */
export interface EigenOptions {
  /** How many eigenvalues (default 1). */
  k?: number;
  /** `"lanczos"` (default) or `"power"` (power iteration with deflation, as PyHessian). */
  method?: "power" | "lanczos";
  /**
   * Power: most iterations per eigenvalue (default 1000). Lanczos: most Lanczos steps, i.e.
   * the largest Krylov space (default min(n, max(2k + 40, 60))).
   */
  maxIter?: number;
  /**
   * Relative residual at which an eigenpair counts as converged: ‖Hv − λv‖ ≤ tol·|λ|
   * (for Lanczos the Ritz residual |β_m s_m|). Default 1e-4 for f32, 1e-8 for f64.
   */
  tol?: number;
  /** Seed of the random starting vectors (default 0). */
  seed?: number;
  /** Read back every this many iterations (default 10). */
  checkEvery?: number;
  /**
   * Called at every read-back: `{ done, total, unit, residual }` with Lanczos steps (of the
   * most, `maxIter`) or power iterations (of `k · maxIter`), and the largest relative
   * residual of the current estimates. Costs no extra read-back.
   */
  onProgress?: ProgressCallback;
}

const EIGEN_OPTIONS = ["k", "method", "maxIter", "tol", "seed", "checkEvery", "onProgress"];

/** The result of {@linkcode hessianEigenvalues}. */
export interface EigenResult {
  /** The k eigenvalues of largest magnitude, by decreasing |λ|. */
  values: number[];
  /** Unit eigenvectors `[k, ...x.shape]`, row i for `values[i]`; the caller owns them. */
  vectors: Tensor;
  /** Relative residuals ‖Hv − λv‖ / |λ| (estimated by Lanczos), one per value. */
  residuals: number[];
  /** Hessian-vector products spent. */
  iterations: number;
  /** True when every residual is within `tol`. */
  converged: boolean;
}

type Fn = (x: Tensor) => Tensor;

function intOpt(op: string, name: string, v: unknown, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`${op}: ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  return v;
}

/** H applied to a flat vector [n]. */
function hvpFlat(f: Fn, x: Tensor, v: Tensor): Tensor {
  return reshape(hvp(f, x, reshape(v, x.shape)), [x.size]);
}

/** v − Vᵀ(V v), twice, for V [r, n] with orthonormal (or zero) rows. */
function project(V: Tensor | null, v: Tensor): Tensor {
  if (!V) return v;
  for (let pass = 0; pass < 2; pass++) v = sub(v, matmul(matmul(V, v), V));
  return v;
}

function norm(v: Tensor): Tensor {
  return sqrt(sum(square(v)));
}

/** A random unit vector (probe `offset`) orthogonal to V's rows. */
function startVector(x: Tensor, V: Tensor | null, seed: number, offset: number): Tensor {
  const dtype = x.dtype as FloatDtype;
  const r = rademacher([x.size], { seed, offset, dtype, device: x.device });
  const v = project(V, r);
  return div(v, norm(v));
}

/** Appends row `row` [n] at index j of the [m, n] matrix Q (whose row j is zero). */
function setRow(Q: Tensor, j: number, row: Tensor): Tensor {
  const [m, n] = Q.shape;
  return add(Q, pad(reshape(row, [1, n]), [[j, m - j - 1], [0, 0]]));
}

async function power(
  f: Fn,
  x: Tensor,
  k: number,
  maxIter: number,
  tol: number,
  seed: number,
  checkEvery: number,
  onProgress: ProgressCallback | undefined,
): Promise<EigenResult> {
  const n = x.size;
  let V: Tensor | null = null; // found eigenvectors, [i, n]
  const values: number[] = [], residuals: number[] = [];
  let iterations = 0;
  try {
    for (let i = 0; i < k; i++) {
      let st = tidy(() => ({
        v: startVector(x, V, seed, i),
        lam: zeros([], { dtype: x.dtype, device: x.device }),
        res: zeros([], { dtype: x.dtype, device: x.device }),
      }));
      let it = 0, lam = 0, res = Infinity;
      while (it < maxIter) {
        const todo = Math.min(checkEvery, maxIter - it);
        for (let t = 0; t < todo; t++) {
          const next = tidy(() => {
            const w = project(V, hvpFlat(f, x, st.v));
            const l = sum(mul(st.v, w)); // Rayleigh quotient
            const r = norm(sub(w, mul(st.v, l)));
            const nw = norm(w);
            const ok = greater(nw, 0); // w = 0: H vanishes on the rest, λ = 0 exactly
            return { v: where(ok, div(w, where(ok, nw, 1)), st.v), lam: l, res: r };
          });
          st.v.dispose(), st.lam.dispose(), st.res.dispose();
          st = next;
        }
        it += todo;
        const d = await readScalars([st.lam, st.res]);
        [lam, res] = d;
        onProgress?.({
          done: iterations + it,
          total: k * maxIter,
          unit: "power iterations",
          residual: lam === 0 ? res : res / Math.abs(lam),
        });
        if (res <= tol * Math.abs(lam)) break;
      }
      iterations += it;
      values.push(lam);
      residuals.push(lam === 0 ? res : res / Math.abs(lam));
      const grown: Tensor = tidy(() => {
        const u = project(V, st.v); // keep the rows orthonormal to rounding
        const row = reshape(div(u, norm(u)), [1, n]);
        return V ? concat([V, row], 0) : row;
      });
      V?.dispose();
      V = grown;
      st.v.dispose(), st.lam.dispose(), st.res.dispose();
    }
  } catch (e) {
    V?.dispose();
    throw e;
  }
  const order = [...values.keys()].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]));
  const vectors = tidy(() => reorderRows(V!, order, x.shape));
  V!.dispose();
  return {
    values: order.map((i) => values[i]),
    vectors,
    residuals: order.map((i) => residuals[i]),
    iterations,
    converged: residuals.every((r) => r <= tol),
  };
}

function reorderRows(V: Tensor, order: number[], shape: readonly number[]): Tensor {
  const [, n] = V.shape;
  const rows = order.map((i) => reshape(slice(V, [i, 0], [i + 1, n]), [n]));
  return reshape(stack(rows, 0), [order.length, ...shape]);
}

async function readScalars(ts: Tensor[]): Promise<number[]> {
  const s = tidy(() => stack(ts));
  try {
    return Array.from(await s.data());
  } finally {
    s.dispose();
  }
}

async function lanczos(
  f: Fn,
  x: Tensor,
  k: number,
  maxIter: number,
  tol: number,
  seed: number,
  checkEvery: number,
  onProgress: ProgressCallback | undefined,
): Promise<EigenResult> {
  const n = x.size;
  const m = Math.min(n, maxIter);
  if (m < k) {
    throw new RangeError(`hessianEigenvalues: maxIter (${maxIter}) must be at least k (${k})`);
  }
  // An off-diagonal β below this fraction of the largest |α|, β seen marks an invariant
  // subspace: the next vector is a fresh random one orthogonal to Q, and β is set to 0.
  const drop = x.dtype === "f64" ? 1e-12 : 1e-5;
  const dev = x.device, dtype = x.dtype as FloatDtype;
  let st = tidy(() => {
    const q = startVector(x, null, seed, 0);
    return {
      Q: setRow(zeros([m, n], { dtype, device: dev }), 0, q),
      q,
      ab: zeros([2, m], { dtype, device: dev }), // row 0: α, row 1: β
      scale: zeros([], { dtype, device: dev }),
    };
  });
  let steps = 0;
  let best: { theta: number[]; s: Float64Array; cols: number[]; res: number[] } | null = null;
  try {
    while (steps < m) {
      const todo = Math.min(checkEvery, m - steps);
      for (let t = 0; t < todo; t++) {
        const j = steps + t;
        const next = tidy(() => {
          const hq = hvpFlat(f, x, st.q);
          const alpha = sum(mul(st.q, hq));
          const w = project(st.Q, hq); // full reorthogonalisation (covers α q_j + β q_{j−1})
          const beta = norm(w);
          const scale = maximum(st.scale, maximum(abs(alpha), beta));
          const ok = greater(beta, mul(scale, drop));
          const betaKept = where(ok, beta, 0);
          const both = reshape(stack([alpha, betaKept]), [2, 1]);
          const ab = add(st.ab, pad(both, [[0, 0], [j, m - j - 1]]));
          if (j + 1 >= m) return { Q: st.Q, q: st.q, ab, scale };
          const fresh = startVector(x, st.Q, seed, j + 1);
          const q = where(ok, div(w, where(ok, beta, 1)), fresh);
          return { Q: setRow(st.Q, j + 1, q), q, ab, scale };
        });
        for (const key of ["Q", "q", "ab", "scale"] as const) {
          if (next[key] !== st[key]) st[key].dispose();
        }
        st = next;
      }
      steps += todo;
      const ab = await st.ab.data();
      best = ritz(ab, m, steps, k);
      const rel = best.res.map((r, i) => (best!.theta[i] === 0 ? r : r / Math.abs(best!.theta[i])));
      onProgress?.({ done: steps, total: m, unit: "Lanczos steps", residual: Math.max(...rel) });
      const done = best.res.every((r, i) => r <= tol * Math.abs(best!.theta[i]));
      if (done) break;
    }
  } catch (e) {
    for (const key of ["Q", "q", "ab", "scale"] as const) st[key].dispose();
    throw e;
  }
  const r = best!;
  const sMat = new Float64Array(k * steps);
  r.cols.forEach((c, i) => {
    for (let row = 0; row < steps; row++) sMat[i * steps + row] = r.s[row * steps + c];
  });
  const vectors = tidy(() => {
    const S = fromHost("hessianEigenvalues", dtype === "f64" ? sMat : Float32Array.from(sMat), [
      k,
      steps,
    ], dev);
    const Qs = steps === m ? st.Q : slice(st.Q, [0, 0], [steps, n]);
    return reshape(matmul(S, Qs), [k, ...x.shape]);
  });
  for (const key of ["Q", "q", "ab", "scale"] as const) st[key].dispose();
  return {
    values: r.theta,
    vectors,
    residuals: r.res.map((v, i) => (r.theta[i] === 0 ? v : v / Math.abs(r.theta[i]))),
    iterations: steps,
    converged: r.res.every((v, i) => v <= tol * Math.abs(r.theta[i])),
  };
}

/** Ritz values of the leading `steps` × `steps` Lanczos matrix, the k largest in |θ|. */
function ritz(ab: ArrayLike<number>, m: number, steps: number, k: number) {
  const alpha = Array.from({ length: steps }, (_, i) => ab[i]);
  const beta = Array.from({ length: steps }, (_, i) => ab[m + i]);
  const { values, vectors } = tridiagonalEigen(alpha, beta.slice(0, steps - 1));
  const cols = [...values.keys()].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]))
    .slice(0, k);
  const last = beta[steps - 1];
  return {
    theta: cols.map((c) => values[c]),
    s: vectors,
    cols,
    // ‖H y − θ y‖ = |β_last · s_last| for the Ritz vector y = Q s (exact arithmetic)
    res: cols.map((c) => Math.abs(last * vectors[(steps - 1) * steps + c])),
  };
}

/**
 * The k eigenvalues of the Hessian of `f` at `x` with the largest magnitude, by decreasing
 * |λ|, with unit eigenvectors, from Hessian-vector products only (PyHessian's
 * `eigenvalues`; no Hessian is formed).
 *
 * - `"lanczos"` (default): Lanczos with full reorthogonalisation (each new vector is
 *   projected off all earlier ones twice, on the device); the tridiagonal T is read back
 *   every `checkEvery` steps and solved on the host (implicit QL); it stops when the
 *   Ritz residuals |β_m s_{m,i}| of the top k are within `tol·|θ_i|`. Converges in far fewer
 *   products than power iteration, and finds clustered eigenvalues.
 * - `"power"`: power iteration with deflation: eigenvalue i iterates v ← P H v / ‖P H v‖
 *   with P projecting off the i eigenvectors already found; it stops when
 *   ‖Hv − λv‖ ≤ tol·|λ|. Its rate is |λ_{i+1}/λ_i|, so close magnitudes (or a ±λ pair) make
 *   it slow: `converged` reports whether it got there within `maxIter`.
 *
 * @example
 * ```ts
 * import { hessianEigenvalues, type Tensor, tensor } from "@curvature/curvature";
 * const c = tensor([1, -5, 3, 0.5], { dtype: "f64" });
 * const f = (x: Tensor) => x.square().mul(c).sum().mul(0.5); // H = diag(1, -5, 3, 0.5)
 * const { values, vectors } = await hessianEigenvalues(f, tensor([1, 1, 1, 1], { dtype: "f64" }), {
 *   k: 2,
 *   method: "lanczos",
 * });
 * console.log(values.map((v: number) => Math.round(v * 1e6) / 1e6), vectors.shape); // [-5, 3] [2, 4]
 * ```
 */
export function hessianEigenvalues(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  opts: EigenOptions = {},
): Promise<EigenResult> {
  return ownedCall((own) => eigenvalues(f, own(x), opts));
}

function eigenvalues(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  opts: EigenOptions,
): Promise<EigenResult> {
  const op = "hessianEigenvalues";
  try {
    if (typeof f !== "function") {
      throw new TypeError(`${op}: expected a function, got ${describeValue(f)}`);
    }
    if (!(x instanceof TensorClass)) {
      throw new TypeError(`${op}: x must be a Tensor, got ${describeValue(x)}`);
    }
    if (x.dtype === "i32") throw new TypeError(`${op}: x must be f32 or f64, got i32`);
    checkOptions(op, opts, EIGEN_OPTIONS);
    const onProgress = checkProgress(op, opts.onProgress);
    const n = x.size;
    const k = intOpt(op, "k", opts.k, 1, 1);
    if (k > n) throw new RangeError(`${op}: k = ${k} exceeds the ${n} eigenvalues of H`);
    const method = opts.method ?? "lanczos";
    const seed = intOpt(op, "seed", opts.seed, 0, 0);
    const checkEvery = intOpt(op, "checkEvery", opts.checkEvery, 10, 1);
    const tol = opts.tol ?? (x.dtype === "f64" ? 1e-8 : 1e-4);
    if (typeof tol !== "number" || !(tol > 0)) {
      throw new RangeError(`${op}: tol must be a number > 0, got ${String(tol)}`);
    }
    if (method === "power") {
      const maxIter = intOpt(op, "maxIter", opts.maxIter, 1000, 1);
      return power(f, x, k, maxIter, tol, seed, checkEvery, onProgress);
    }
    if (method === "lanczos") {
      const maxIter = intOpt(op, "maxIter", opts.maxIter, Math.min(n, Math.max(2 * k + 40, 60)), 1);
      return lanczos(f, x, k, maxIter, tol, seed, checkEvery, onProgress);
    }
    throw new TypeError(
      `${op}: method must be "power" or "lanczos", got ${JSON.stringify(method)}`,
    );
  } catch (e) {
    return Promise.reject(e);
  }
}
