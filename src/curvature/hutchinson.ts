/**
 * Stochastic and exact estimates of the Hessian's diagonal and trace from Hessian-vector
 * products: Hutchinson (Rademacher probes), Hutch++ (low-rank sketch plus Hutchinson on the
 * rest), and comb probes (exact for banded Hessians). Probes go through the batched `hvp`,
 * so a batch of K probes costs one forward-over-reverse pass with K-wide kernels.
 */
import type { Tensor } from "../tensor.ts";
import type { FloatDtype } from "../dtype.ts";
import { hvp } from "../ad/transforms.ts";
import { compiledByRecord } from "../ad/auto_jit.ts";
import { ownedCall, tidy } from "../memory.ts";
import { add, div, greater, maximum, mul, sqrt, square, sub, where } from "../ops/elementwise.ts";
import { mean, sum } from "../ops/reduce.ts";
import { matmul } from "../ops/matmul.ts";
import { concat, pad, reshape, slice, stack, transpose } from "../ops/movement.ts";
import { zeros } from "../ops/creation.ts";
import { describeValue } from "../ops/common.ts";
import { Tensor as TensorClass } from "../tensor.ts";
import { combProbes, rademacherProbes } from "./probes.ts";
import { checkOptions } from "../options.ts";
import { checkProgress, type ProgressCallback } from "../progress.ts";

/**
 * An estimate with its standard error and the number of Hessian-vector products it used.
 * `stderr` is absent for exact methods (`"comb"`) and for a single sample.
 */
export interface Estimate<V extends Tensor | number = Tensor | number> {
  /** The estimate: a tensor of x's shape (diagonal) or a number (trace). */
  value: V;
  /** Its standard error (sample standard deviation / √samples), same kind as `value`. */
  stderr?: V;
  /** Hessian-vector products used (probes). */
  samples: number;
}

/** Options of {@linkcode hessianDiagonal}. */
export interface HessianDiagonalOptions {
  /** `"hutchinson"`: mean of v ⊙ Hv over Rademacher probes; `"comb"`: exact for a banded Hessian. */
  method: "hutchinson" | "comb";
  /** Number of probes for `"hutchinson"` (default 100). */
  samples?: number;
  /** Seed of the probes (default 0): probe j is `rademacher(x.shape, { seed, offset: j })`. */
  seed?: number;
  /**
   * Probes per batched `hvp` pass. Default: as many as fit in about 2^22 probe entries
   * (K·n) on WebGPU, where batching saves dispatches, and 2^16 on the CPU, where a pass
   * costs about the same per probe and only small problems gain from batching.
   */
  batch?: number;
  /** Half-bandwidth b of the Hessian for `"comb"` (H[i][j] = 0 when |i − j| > b, flat indices). */
  bandwidth?: number;
  /**
   * Called after each batched pass: `{ done, total, unit: "probes" }`. On WebGPU a pass's
   * kernels are queued when it is reported, not yet finished.
   */
  onProgress?: ProgressCallback;
}

/** Options of {@linkcode hessianTrace}. */
export interface HessianTraceOptions {
  /**
   * `"hutchinson"`: mean of vᵀHv; `"hutch++"`: Meyer–Musco–Musco–Woodruff (2021); `"comb"`:
   * exact for a banded Hessian.
   */
  method: "hutchinson" | "hutch++" | "comb";
  /** Hessian-vector products to spend (default 100; Hutch++ needs at least 3). */
  samples?: number;
  /** Seed of the probes (default 0). */
  seed?: number;
  /**
   * Probes per batched `hvp` pass. Default: as many as fit in about 2^22 probe entries
   * (K·n) on WebGPU, where batching saves dispatches, and 2^16 on the CPU, where a pass
   * costs about the same per probe and only small problems gain from batching.
   */
  batch?: number;
  /** Half-bandwidth b for `"comb"`. */
  bandwidth?: number;
  /** Called after each batched pass: `{ done, total, unit: "probes" }` (as for the diagonal). */
  onProgress?: ProgressCallback;
}

const ESTIMATOR_OPTIONS = ["method", "samples", "seed", "batch", "bandwidth", "onProgress"];

type Fn = (x: Tensor) => Tensor;
/** H V for probes V [k, ...x.shape]: the call's compiled batched HVP (see `withHvp`). */
type Hv = (x: Tensor, V: Tensor) => Tensor;

/**
 * Runs `body` with f's batched HVP at x compiled: batches of one size replay one program,
 * kept across calls whose f does the same operations (see auto_jit.ts).
 */
function withHvp<T>(f: Fn, x: Tensor, body: (H: Hv) => T): T {
  return compiledByRecord(
    f,
    x,
    (run) => body((y: Tensor, V: Tensor) => run("hvp", [y, V], (a, b) => hvp(f, a, b))),
  );
}

function checkInputs(op: string, f: unknown, x: unknown, opts: unknown): void {
  if (typeof f !== "function") {
    throw new TypeError(`${op}: expected a function, got ${describeValue(f)}`);
  }
  if (!(x instanceof TensorClass)) {
    throw new TypeError(`${op}: x must be a Tensor, got ${describeValue(x)}`);
  }
  if (x.dtype === "i32") throw new TypeError(`${op}: x must be f32 or f64, got i32`);
  if (x.size === 0) throw new RangeError(`${op}: x is empty`);
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`${op}: options { method, … } are required`);
  }
  checkOptions(op, opts, ESTIMATOR_OPTIONS);
}

function positiveInt(op: string, name: string, v: unknown, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`${op}: ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  return v;
}

function seedOf(op: string, v: unknown): number {
  return positiveInt(op, "seed", v, 0, 0);
}

/** Probes per pass: the option, else up to 2^22 (WebGPU) or 2^16 (CPU) probe entries. */
function batchOf(op: string, v: unknown, total: number, x: Tensor): number {
  const cap = x.device.kind === "cpu" ? 2 ** 16 : 2 ** 22;
  const dflt = Math.max(1, Math.min(total, Math.floor(cap / x.size)));
  return Math.min(positiveInt(op, "batch", v, dflt), total);
}

/** Reports how many probes of the whole computation are done. */
type Report = ((done: number) => void) | undefined;

function reporter(op: string, cb: unknown, all: number): Report {
  const p = checkProgress(op, cb);
  return p && ((done) => p({ done, total: all, unit: "probes" }));
}

/**
 * Calls `fn(start, count)` for consecutive batches covering `0 … total−1`, reporting
 * `base + start + count` after each.
 */
function batches(
  total: number,
  batch: number,
  fn: (start: number, count: number) => void,
  report?: Report,
  base = 0,
): void {
  for (let s = 0; s < total; s += batch) {
    const k = Math.min(batch, total - s);
    fn(s, k);
    report?.(base + s + k);
  }
}

/** Replaces `old` by `next`, disposing what `next` does not reuse. */
function swap<T extends Record<string, Tensor | null>>(old: T, next: T): T {
  const kept = new Set(Object.values(next));
  for (const t of Object.values(old)) if (t && !kept.has(t)) t.dispose();
  return next;
}

/** Per-probe quadratic forms vᵀHv for probes `V` [k, ...x.shape] → [k]. */
function quadForms(H: Hv, x: Tensor, V: Tensor): Tensor {
  const axes = x.shape.map((_, i) => i + 1);
  return axes.length ? sum(mul(V, H(x, V)), axes) : mul(V, H(x, V));
}

/** Mean and standard error of a [m] tensor's entries, read back together (one read-back). */
async function meanAndStderr(z: Tensor): Promise<[number, number | undefined]> {
  const m = z.shape[0];
  const both = tidy(() => {
    const mu = mean(z);
    const v = m > 1 ? div(sum(square(sub(z, mu))), m - 1) : mu;
    return stack([mu, sqrt(div(v, m))]);
  });
  try {
    const d = await both.data();
    return [d[0], m > 1 ? d[1] : undefined];
  } finally {
    both.dispose();
  }
}

function combDiagonal(
  op: string,
  H: Hv,
  x: Tensor,
  bandwidth: unknown,
  batchOpt: unknown,
  progress: unknown,
) {
  if (bandwidth === undefined) {
    throw new TypeError(`${op}: method "comb" needs the Hessian's half-bandwidth (bandwidth: b)`);
  }
  const b = positiveInt(op, "bandwidth", bandwidth, 0, 0);
  const n = x.size;
  const c = Math.min(b + 1, n);
  const batch = batchOf(op, batchOpt, c, x);
  const report = reporter(op, progress, c);
  return tidy(() => {
    const P = combProbes(n, c, { dtype: x.dtype as FloatDtype, device: x.device, shape: x.shape });
    let acc: Tensor | null = null;
    batches(c, batch, (s, k) => {
      const part = tidy(() => {
        const Pk = c === k ? P : slice(P, [s, ...x.shape.map(() => 0)], [s + k, ...x.shape]);
        const d = sum(mul(Pk, H(x, Pk)), 0);
        return acc ? add(acc, d) : d;
      });
      acc?.dispose();
      acc = part;
    }, report);
    return { value: acc!, samples: c };
  });
}

/**
 * The Hessian's diagonal, of x's shape.
 *
 * - `"hutchinson"` (Bekas, Kokiopoulou & Saad 2007): `mean_j v_j ⊙ H v_j` over Rademacher
 *   probes (E[v vᵀ] = I, so E[v ⊙ Hv]_i = H_ii); `stderr` is the per-entry sample standard
 *   deviation over √samples. Entry i's variance is Σ_{j≠i} H_ij², so a diagonal Hessian is
 *   recovered exactly. Probe j is `rademacher(x.shape, { seed, offset: j })` whatever the
 *   batching, and both backends draw the same probes.
 * - `"comb"` with `bandwidth: b`: exact when H[i][j] = 0 for |i − j| > b (over flat indices),
 *   from b + 1 probes. Probe k is the indicator of `{ i : i mod (b+1) = k }`. Entry i of
 *   probe_k ⊙ H probe_k, for k = i mod (b+1), is Σ_{j ≡ i mod (b+1)} H[i][j]; every such
 *   j ≠ i is at least b + 1 away from i, where H vanishes, so the sum is H[i][i]. Summing the
 *   b + 1 products (each entry is non-zero in exactly one) gives the diagonal. No `stderr`.
 *
 * No value is read back; the returned tensors belong to the caller.
 *
 * **Repeated calls compile themselves**: the batched HVP pass (one program per batch size) is kept
 * across calls whose f does the same operations, as {@linkcode bandedHessian}'s band pass is (read
 * there what that means for f's side effects and the tensors it closes over).
 *
 * @example
 * ```ts
 * import { hessianDiagonal, type Tensor, tensor } from "@curvature/curvature";
 * const f = (x: Tensor) => x.pow(3).sum(); // H = diag(6x)
 * const est = await hessianDiagonal(f, tensor([1, 2, 3]), { method: "comb", bandwidth: 0 });
 * console.log(await est.value.toArray()); // [6, 12, 18]
 * const h = await hessianDiagonal(f, tensor([1, 2, 3]), { method: "hutchinson", samples: 8, seed: 1 });
 * console.log(await h.value.toArray(), h.samples); // [6, 12, 18] 8 (exact: H is diagonal)
 * ```
 */
export function hessianDiagonal(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  opts: HessianDiagonalOptions,
): Promise<Estimate<Tensor>> {
  return ownedCall((own) => {
    const y = own(x);
    return withHvp(f, y, (H) => diagonal(f, H, y, opts));
  });
}

function diagonal(
  f: (x: Tensor) => Tensor,
  H: Hv,
  x: Tensor,
  opts: HessianDiagonalOptions,
): Promise<Estimate<Tensor>> {
  const op = "hessianDiagonal";
  try {
    checkInputs(op, f, x, opts);
    if (opts.method === "comb") {
      return Promise.resolve(
        combDiagonal(op, H, x, opts.bandwidth, opts.batch, opts.onProgress),
      );
    }
    if (opts.method !== "hutchinson") {
      throw new TypeError(
        `${op}: method must be "hutchinson" or "comb", got ${JSON.stringify(opts.method)}`,
      );
    }
    const m = positiveInt(op, "samples", opts.samples, 100);
    const seed = seedOf(op, opts.seed);
    const batch = batchOf(op, opts.batch, m, x);
    const report = reporter(op, opts.onProgress, m);
    const dtype = x.dtype as FloatDtype;
    // Shifted sums: with c the first batch's mean, Σ(y − c) and Σ(y − c)² give the variance
    // without the cancellation of Σy² − m·mean² when the diagonal dominates the spread.
    let st: { c: Tensor | null; s1: Tensor | null; s2: Tensor | null } = {
      c: null,
      s1: null,
      s2: null,
    };
    batches(m, batch, (s, k) => {
      const next = tidy(() => {
        const V = rademacherProbes(x.shape, s, k, { seed, dtype, device: x.device });
        const Y = mul(V, H(x, V));
        const c = st.c ?? mean(Y, 0);
        const D = sub(Y, c);
        const a1 = sum(D, 0), a2 = sum(square(D), 0);
        return { c, s1: st.s1 ? add(st.s1, a1) : a1, s2: st.s2 ? add(st.s2, a2) : a2 };
      });
      st = swap(st, next);
    }, report);
    const out = tidy(() => {
      const value = add(st.c!, div(st.s1!, m));
      if (m < 2) return { value };
      const v = div(sub(st.s2!, div(square(st.s1!), m)), m - 1);
      return { value, stderr: sqrt(div(maximum(v, 0), m)) };
    });
    swap(st, { c: null, s1: null, s2: null });
    return Promise.resolve({ ...out, samples: m });
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Orthonormal rows spanning Y's rows [k, n]; rows found dependent come out as zeros. */
function orthonormalRows(Y: Tensor): Tensor {
  const [k, n] = Y.shape;
  // A row whose residual after projection is below this fraction of its norm is numerically
  // in the span of the earlier rows: it is dropped (a zero row) rather than normalised noise.
  const drop = Y.dtype === "f64" ? 1e-12 : 1e-4;
  let Q = zeros([k, n], { dtype: Y.dtype, device: Y.device });
  for (let j = 0; j < k; j++) {
    const next = tidy(() => {
      const y = reshape(slice(Y, [j, 0], [j + 1, n]), [n]);
      let v = y;
      // classical Gram–Schmidt twice ("twice is enough"): orthogonal to working precision
      for (let pass = 0; pass < 2; pass++) v = sub(v, matmul(matmul(Q, v), Q));
      const nv = sqrt(sum(square(v)));
      const ok = greater(nv, mul(sqrt(sum(square(y))), drop));
      const q = where(ok, div(v, where(ok, nv, 1)), 0);
      return add(Q, pad(reshape(q, [1, n]), [[j, k - j - 1], [0, 0]]));
    });
    Q.dispose();
    Q = next;
  }
  return Q;
}

/** [k, ...shape] → [k, n] and back. */
function flat(V: Tensor): Tensor {
  return reshape(V, [V.shape[0], V.size / V.shape[0]]);
}

async function hutchPlusPlus(
  H: Hv,
  x: Tensor,
  m: number,
  seed: number,
  batch: number,
  report: Report,
): Promise<Estimate<number>> {
  const op = "hessianTrace";
  if (m < 3) throw new RangeError(`${op}: "hutch++" needs samples ≥ 3, got ${m}`);
  const k = Math.floor(m / 3), g = m - 2 * k;
  const dtype = x.dtype as FloatDtype;
  const dev = x.device;
  let spent = 0;
  const hvpBatched = (V: Tensor): Tensor => {
    // H applied to the rows of V [r, ...shape], `batch` rows per pass
    const parts: Tensor[] = [];
    batches(
      V.shape[0],
      batch,
      (s, r) => {
        const Vs = r === V.shape[0]
          ? V
          : slice(V, [s, ...x.shape.map(() => 0)], [s + r, ...x.shape]);
        parts.push(H(x, Vs));
      },
      report,
      spent,
    );
    spent += V.shape[0];
    return parts.length === 1 ? parts[0] : concat(parts, 0);
  };
  const z = tidy(() => {
    // sketch: Q = orth(H S) with S the first k probes
    const S = rademacherProbes(x.shape, 0, k, { seed, dtype, device: dev });
    const Q = orthonormalRows(flat(hvpBatched(S)));
    const Qs = reshape(Q, [k, ...x.shape]);
    // exact part: tr(Qᵀ H Q) (zero rows add nothing)
    const t1 = sum(mul(Qs, hvpBatched(Qs)));
    // remainder: Hutchinson on (I − QQᵀ) H (I − QQᵀ) with probes k … k+g−1
    const G = flat(rademacherProbes(x.shape, k, g, { seed, dtype, device: dev }));
    const Gp = sub(G, matmul(matmul(G, transpose(Q)), Q));
    const Gs = reshape(Gp, [g, ...x.shape]);
    const zr = sum(flat(mul(Gs, hvpBatched(Gs))), 1);
    return add(zr, t1); // per-probe estimates of the whole trace
  });
  try {
    const [value, stderr] = await meanAndStderr(z);
    return stderr === undefined ? { value, samples: m } : { value, stderr, samples: m };
  } finally {
    z.dispose();
  }
}

/**
 * The Hessian's trace, read back as a number (one read-back).
 *
 * - `"hutchinson"`: `mean_j v_jᵀ H v_j` over Rademacher probes (probe j is
 *   `rademacher(x.shape, { seed, offset: j })`), with the standard error of the mean.
 * - `"hutch++"` (Meyer, Musco, Musco & Woodruff, "Hutch++: Optimal Stochastic Trace
 *   Estimation", SOSA 2021): of `samples` = m products, k = ⌊m/3⌋ sketch H S (probes
 *   0 … k−1), Q = orth(HS) by Gram–Schmidt (twice) in library ops on the device, k more give
 *   tr(QᵀHQ) exactly, and the remaining m − 2k probes (k, k+1, …) estimate
 *   tr((I − QQᵀ)H(I − QQᵀ)) by Hutchinson. When H is dominated by a few large eigenvalues the
 *   sketch captures them and the error is far below Hutchinson's for the same m. `stderr`
 *   is that of the remainder's estimate (the sketch part is exact given Q).
 * - `"comb"` with `bandwidth: b`: the exact trace of a banded Hessian (see
 *   {@linkcode hessianDiagonal}); no `stderr`.
 *
 * Repeated calls replay the batched HVP pass as {@linkcode hessianDiagonal}'s do.
 *
 * @example
 * ```ts
 * import { hessianTrace, type Tensor, tensor } from "@curvature/curvature";
 * const f = (x: Tensor) => x.pow(3).sum(); // H = diag(6x): trace 36 at [1, 2, 3]
 * const t = await hessianTrace(f, tensor([1, 2, 3]), { method: "hutchinson", samples: 10, seed: 0 });
 * console.log(t.value, t.stderr); // 36 0 (a diagonal H has no Hutchinson variance)
 * ```
 */
export function hessianTrace(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  opts: HessianTraceOptions,
): Promise<Estimate<number>> {
  return ownedCall((own) => {
    const y = own(x);
    return withHvp(f, y, (H) => trace(f, H, y, opts));
  });
}

async function trace(
  f: (x: Tensor) => Tensor,
  H: Hv,
  x: Tensor,
  opts: HessianTraceOptions,
): Promise<Estimate<number>> {
  const op = "hessianTrace";
  checkInputs(op, f, x, opts);
  const method = opts.method;
  if (method === "comb") {
    const { value, samples } = combDiagonal(
      op,
      H,
      x,
      opts.bandwidth,
      opts.batch,
      opts.onProgress,
    );
    const t = tidy(() => sum(value));
    value.dispose();
    try {
      return { value: await t.item(), samples };
    } finally {
      t.dispose();
    }
  }
  if (method !== "hutchinson" && method !== "hutch++") {
    throw new TypeError(
      `${op}: method must be "hutchinson", "hutch++" or "comb", got ${JSON.stringify(method)}`,
    );
  }
  const m = positiveInt(op, "samples", opts.samples, 100);
  const seed = seedOf(op, opts.seed);
  const batch = batchOf(op, opts.batch, m, x);
  const report = reporter(op, opts.onProgress, m);
  if (method === "hutch++") return await hutchPlusPlus(H, x, m, seed, batch, report);
  const parts: Tensor[] = [];
  batches(m, batch, (s, k) => {
    parts.push(tidy(() =>
      quadForms(
        H,
        x,
        rademacherProbes(x.shape, s, k, {
          seed,
          dtype: x.dtype as FloatDtype,
          device: x.device,
        }),
      )
    ));
  }, report);
  const z = tidy(() => (parts.length === 1 ? parts[0] : concat(parts, 0)));
  if (z !== parts[0]) { for (const p of parts) p.dispose(); }
  try {
    const [value, stderr] = await meanAndStderr(z);
    return stderr === undefined ? { value, samples: m } : { value, stderr, samples: m };
  } finally {
    z.dispose();
  }
}
