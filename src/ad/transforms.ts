/**
 * The transforms: grad, valueAndGrad, jvp, vjp, hvp, hessian, jacobian (vmap is in
 * vmap.ts). Each opens a trace one level above the current ones, so they nest to any depth;
 * like JAX's, grad, valueAndGrad, hessian and jacobian take f and return a function of x.
 */
import { popTrace, pushTrace } from "./core.ts";
import { JvpTrace } from "./jvp.ts";
import { backward, type Node, VjpTrace, type VjpTracer } from "./vjp.ts";
import { TangentBatch } from "./batch.ts";
import { Tensor } from "../tensor.ts";
import { inheritOwner, ownedScope, transformScope } from "../memory.ts";
import { fmtShape, shapesEqual, sizeOf } from "../shape.ts";
import { describeValue } from "../ops/common.ts";
import { fromHost, ones, zeros } from "../ops/creation.ts";
import { concat, reshape, transpose } from "../ops/movement.ts";
import { allocArray, itemSize } from "../dtype.ts";
import { checkOptions, oneOf } from "../options.ts";
import { checkProgress, type ProgressCallback } from "../progress.ts";
import { compiledByRecord } from "./auto_jit.ts";

/** Options of {@linkcode grad} and {@linkcode valueAndGrad}. */
export interface GradOptions {
  /** Which arguments to differentiate: an index or a list (default 0). A list gives a list of gradients. */
  argnums?: number | readonly number[];
}

// deno-lint-ignore no-explicit-any
type Fn = (...args: any[]) => Tensor;

function checkArgnums(
  op: string,
  argnums: number | readonly number[] | undefined,
  n: number,
): number[] {
  const list = argnums === undefined ? [0] : typeof argnums === "number" ? [argnums] : [...argnums];
  if (list.length === 0) throw new RangeError(`${op}: argnums is empty`);
  for (const a of list) {
    if (!Number.isInteger(a) || a < 0 || a >= n) {
      throw new RangeError(
        `${op}: argnums ${
          JSON.stringify(argnums)
        } is out of range for a call with ${n} argument(s)`,
      );
    }
  }
  return list;
}

function checkFunction(op: string, f: unknown): void {
  if (typeof f !== "function") {
    throw new TypeError(`${op}: expected a function, got ${describeValue(f)}`);
  }
}

function checkFloatArg(op: string, x: unknown, what: string): Tensor {
  if (!(x instanceof Tensor)) {
    throw new TypeError(`${op}: ${what} must be a Tensor, got ${describeValue(x)}`);
  }
  if (x.dtype === "i32") {
    throw new TypeError(`${op}: ${what} must be a floating-point tensor, got i32`);
  }
  return x;
}

function checkOutput(op: string, y: unknown, scalar: boolean): Tensor {
  if (!(y instanceof Tensor)) {
    throw new TypeError(`${op}: the function must return a Tensor, got ${describeValue(y)}`);
  }
  if (scalar && y.size !== 1) {
    throw new RangeError(
      `${op}: the function must return a scalar (one element), got shape ${fmtShape(y.shape)}; ` +
        `use vjp or jacobian for non-scalar outputs`,
    );
  }
  return y;
}

/** Runs f under a fresh VJP trace with args[argnums] as leaves; returns y's primal and gradients. */
function gradCore(op: string, f: Fn, argnums: number[], args: unknown[]): [Tensor, Tensor[]] {
  const trace = pushTrace((l) => new VjpTrace(l));
  let y: Tensor;
  let leaves: Node[];
  try {
    const targs = [...args];
    leaves = argnums.map((i) => {
      const { t, node } = trace.leaf(checkFloatArg(op, args[i], `argument ${i}`));
      targs[i] = t;
      return node;
    });
    y = checkOutput(op, f(...targs), true);
    if (y.dtype === "i32") {
      throw new TypeError(`${op}: the function returned an i32 tensor; gradients need f32 or f64`);
    }
  } finally {
    popTrace(trace);
  }
  const own = trace.own(y) as VjpTracer | null;
  const yPrimal = own ? own.primal : y;
  const grads = own
    ? backward(own.node, ones(yPrimal.shape, { dtype: yPrimal.dtype, device: yPrimal.device }))
    : new Map();
  const out = leaves.map((n, k) => {
    const x = args[argnums[k]] as Tensor;
    return grads.get(n) ?? zeros(x.shape, { dtype: x.dtype, device: x.device });
  });
  return [yPrimal, out];
}

/**
 * The gradient of a scalar function. Composes with every transform: `grad(grad(f))`,
 * `jvp(grad(f))`, … With `argnums` a list, returns a list of gradients.
 *
 * @example
 * ```ts
 * import { type Tensor, grad, tensor } from "@curvature/curvature";
 * const f = (x: Tensor) => x.mul(x).sum();           // Σ x²
 * const g = grad(f)(tensor([1, 2, 3]));       // 2x
 * console.log(await g.toArray()); // [2, 4, 6]
 * const d2 = grad((x: Tensor) => grad((y: Tensor) => y.pow(3).sum())(x).sum())(tensor([2])); // 6x
 * console.log(await d2.toArray()); // [12]
 * ```
 */
export function grad<A extends unknown[]>(
  f: (...args: A) => Tensor,
  opts: GradOptions = {},
): (...args: A) => Tensor & Tensor[] {
  checkFunction("grad", f);
  checkOptions("grad", opts, ["argnums"]);
  const many = Array.isArray(opts.argnums);
  return ((...args: A) =>
    transformScope(() => {
      const argnums = checkArgnums("grad", opts.argnums, args.length);
      const [, gs] = gradCore("grad", f as Fn, argnums, args);
      return many ? gs : gs[0];
    })) as (...args: A) => Tensor & Tensor[];
}

/**
 * Like {@linkcode grad}, but returns `[value, gradient]` from one pass.
 *
 * @example
 * ```ts
 * import { type Tensor, tensor, valueAndGrad } from "@curvature/curvature";
 * const [v, g] = valueAndGrad((x: Tensor) => x.exp().sum())(tensor([0, 0]));
 * console.log(await v.item(), await g.toArray()); // 2 [1, 1]
 * ```
 */
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => Tensor,
  opts: GradOptions = {},
): (...args: A) => [Tensor, Tensor & Tensor[]] {
  checkFunction("valueAndGrad", f);
  checkOptions("valueAndGrad", opts, ["argnums"]);
  const many = Array.isArray(opts.argnums);
  return ((...args: A) =>
    transformScope(() => {
      const argnums = checkArgnums("valueAndGrad", opts.argnums, args.length);
      const [y, gs] = gradCore("valueAndGrad", f as Fn, argnums, args);
      return [y, many ? gs : gs[0]];
    })) as (...args: A) => [Tensor, Tensor & Tensor[]];
}

/** The probe count carried by tangents: 0 when each has its primal's shape, K for [K, ...shape]. */
function probeCount(op: string, primals: readonly Tensor[], tangents: readonly Tensor[]): number {
  let k: number | null = null;
  primals.forEach((p, i) => {
    const t = tangents[i];
    let ki: number;
    if (shapesEqual(t.shape, p.shape)) ki = 0;
    else if (t.rank === p.rank + 1 && shapesEqual(t.shape.slice(1), p.shape)) ki = t.shape[0];
    else {
      throw new RangeError(
        `${op}: tangent ${i} has shape ${fmtShape(t.shape)}; expected the primal's shape ${
          fmtShape(p.shape)
        } ` +
          `or [K, ...${fmtShape(p.shape)}] for K probes`,
      );
    }
    if (t.dtype !== p.dtype) {
      throw new TypeError(`${op}: tangent ${i} is ${t.dtype} but its primal is ${p.dtype}`);
    }
    if (t.device !== p.device) {
      throw new Error(
        `${op}: tangent ${i} is on ${t.device.kind} but its primal is on ${p.device.kind}`,
      );
    }
    if (k !== null && k !== ki) {
      throw new RangeError(
        `${op}: tangents disagree on the probe count (${k} and ${ki}); give all of them the same leading K`,
      );
    }
    k = ki;
  });
  return k ?? 0;
}

/**
 * Forward mode: `[f(primals), J·tangents]`. A tangent of shape `[K, ...x.shape]` carries K
 * directions at once; the K products come from one pass with K-wide kernels.
 *
 * @example
 * ```ts
 * import { type Tensor, jvp, tensor } from "@curvature/curvature";
 * const [y, t] = jvp((x: Tensor) => x.sin(), [tensor([0])], [tensor([2])]);
 * console.log(await y.toArray(), await t.toArray()); // [0] [2]
 * ```
 */
export function jvp(
  f: (...xs: Tensor[]) => Tensor,
  primals: readonly Tensor[],
  tangents: readonly Tensor[],
): [Tensor, Tensor] {
  checkFunction("jvp", f);
  if (!Array.isArray(primals) || !Array.isArray(tangents) || primals.length !== tangents.length) {
    throw new RangeError(`jvp: primals and tangents must be arrays of equal length`);
  }
  primals.forEach((p, i) => checkFloatArg("jvp", p, `primal ${i}`));
  tangents.forEach((t, i) => checkFloatArg("jvp", t, `tangent ${i}`));
  inheritOwner(null, [...primals, ...tangents]); // a fresh probe belongs to x's call
  return transformScope(() => {
    const tb = new TangentBatch(probeCount("jvp", primals, tangents));
    const trace = pushTrace((l) => new JvpTrace(l, tb));
    let y: Tensor;
    try {
      y = checkOutput("jvp", f(...primals.map((p, i) => trace.wrap(p, tangents[i]))), false);
    } finally {
      popTrace(trace);
    }
    const own = trace.own(y);
    if (own) return [own.primal, own.tangent] as [Tensor, Tensor];
    return [y, zeros(tb.shape(y.shape), { dtype: y.dtype, device: y.device })] as [Tensor, Tensor];
  });
}

/** The pullback of {@linkcode vjp}: maps an output cotangent to one cotangent per primal. */
export interface Pullback {
  (cotangent: Tensor): Tensor[];
  /** Frees the values the forward pass kept for the pullback. */
  dispose(): void;
  /** Same as `dispose()`, for `using`. */
  [Symbol.dispose](): void;
}

/**
 * Reverse mode: `[f(...primals), pullback]` with `pullback(ȳ) = [ȳᵀ∂f/∂x₀, …]`. The forward
 * pass's values stay alive until `pullback.dispose()`.
 *
 * @example
 * ```ts
 * import { type Tensor, tensor, vjp } from "@curvature/curvature";
 * const [y, back] = vjp((x: Tensor) => x.mul(3), tensor([1, 2]));
 * const [gx] = back(tensor([1, 10]));
 * console.log(await gx.toArray()); // [3, 30]
 * back.dispose();
 * ```
 */
export function vjp(f: (...xs: Tensor[]) => Tensor, ...primals: Tensor[]): [Tensor, Pullback] {
  checkFunction("vjp", f);
  primals.forEach((p, i) => checkFloatArg("vjp", p, `primal ${i}`));
  inheritOwner(null, primals);
  let leaves: Node[] = [];
  let trace!: VjpTrace;
  const { result: y, free } = ownedScope(() => {
    trace = pushTrace((l) => new VjpTrace(l));
    try {
      const wrapped = primals.map((p) => {
        const { t, node } = trace.leaf(p);
        leaves.push(node);
        return t;
      });
      return checkOutput("vjp", f(...wrapped), false);
    } finally {
      popTrace(trace);
    }
  });
  const own = trace.own(y);
  const yPrimal = own ? own.primal : y;
  let disposed = false;
  const pullback = ((ct: Tensor): Tensor[] => {
    if (disposed) throw new Error("vjp: the pullback was used after dispose()");
    checkFloatArg("vjp pullback", ct, "the cotangent");
    if (!shapesEqual(ct.shape, yPrimal.shape) || ct.dtype !== yPrimal.dtype) {
      throw new RangeError(
        `vjp pullback: the cotangent has shape ${
          fmtShape(ct.shape)
        } ${ct.dtype}; expected the output's ${fmtShape(yPrimal.shape)} ${yPrimal.dtype}`,
      );
    }
    return transformScope(() => {
      const grads = own ? backward(own.node, ct) : new Map<Node, Tensor>();
      return leaves.map((n, i) =>
        grads.get(n) ??
          zeros(primals[i].shape, { dtype: primals[i].dtype, device: primals[i].device })
      );
    });
  }) as Pullback;
  pullback.dispose = () => {
    if (disposed) return;
    disposed = true;
    leaves = [];
    free();
  };
  pullback[Symbol.dispose] = pullback.dispose;
  return [yPrimal, pullback];
}

/**
 * Hessian-vector product by forward-over-reverse (`jvp` of `grad`, Pearlmutter's trick).
 * `v` has x's shape, or `[K, ...x.shape]` for K products from one pass whose kernels are
 * K wide; the primal work is done once.
 *
 * @example
 * ```ts
 * import { type Tensor, hvp, tensor } from "@curvature/curvature";
 * const f = (x: Tensor) => x.pow(3).sum();                  // H = diag(6x)
 * const hv = hvp(f, tensor([1, 2]), tensor([[1, 0], [0, 1]]));
 * console.log(await hv.toArray()); // [[6, 0], [0, 12]]
 * ```
 */
export function hvp(f: (x: Tensor) => Tensor, x: Tensor, v: Tensor): Tensor {
  checkFloatArg("hvp", x, "x");
  checkFloatArg("hvp", v, "v");
  const probes = v.rank === x.rank + 1 && shapesEqual(v.shape.slice(1), x.shape);
  if (!probes && !shapesEqual(v.shape, x.shape)) {
    throw new RangeError(
      `hvp: v has shape ${fmtShape(v.shape)}; expected x's shape ${fmtShape(x.shape)} ` +
        `or [K, ...${fmtShape(x.shape)}] for K probes`,
    );
  }
  if (v.dtype !== x.dtype) throw new TypeError(`hvp: v is ${v.dtype} but x is ${x.dtype}`);
  if (v.device !== x.device) {
    throw new Error(`hvp: v is on ${v.device.kind} but x is on ${x.device.kind}`);
  }
  // no probes, no products (f is not called, as for a batch of none)
  if (probes && v.shape[0] === 0) return zeros(v.shape, { dtype: x.dtype, device: x.device });
  return transformScope(() => jvp((y) => grad(f)(y), [x], [v])[1]);
}

/** Identity rows s … s+k−1 of an n×n identity, shaped [k, ...shape]. */
function identityChunk(op: string, x: Tensor, s: number, k: number): Tensor {
  const n = x.size;
  const a = allocArray(x.dtype, k * n);
  for (let i = 0; i < k; i++) a[i * n + s + i] = 1;
  return fromHost(op, a, [k, ...x.shape], x.device);
}

/**
 * Probes per batched pass so a chunk's tangents stay near 2^24 elements, and within half
 * the device's buffer limit (f's intermediates may be a little larger than x).
 */
function chunkSize(x: Tensor): number {
  const n = Math.max(1, x.size);
  const fit = Math.floor(x.device.backend.maxStorageBytes / (2 * n * itemSize(x.dtype)));
  return Math.max(1, Math.min(n, Math.floor(2 ** 24 / n), fit));
}

/** Options of {@linkcode hessian}. */
export interface HessianOptions {
  /**
   * Columns per forward-over-reverse pass (torch.func's `chunk_size`): memory grows with it,
   * passes shrink. Default: as many as keep a pass's tangents near 2^24 entries.
   */
  chunkSize?: number;
  /**
   * Called after each chunk of columns: `{ done, total: x.size, unit: "Hessian columns" }`.
   * On WebGPU a chunk's kernels are queued when it is reported, not yet finished.
   */
  onProgress?: ProgressCallback;
}

/**
 * The dense Hessian `[...x.shape, ...x.shape]` of a scalar function, as JAX's
 * `hessian(f)(x)`: from batched HVPs against identity columns, in chunks that bound memory
 * (each chunk is one forward-over-reverse pass whose kernels are as wide as the chunk).
 * `hessian(f, x)` is the same as `hessian(f)(x)`.
 *
 * **Repeated calls compile themselves**: the chunks' HVP pass (one program per chunk size) is kept
 * across calls whose f does the same operations, as {@linkcode bandedHessian}'s band pass is (read
 * there what that means for f's side effects and the tensors it closes over).
 *
 * @example
 * ```ts
 * import { type Tensor, hessian, tensor } from "@curvature/curvature";
 * const f = (x: Tensor) => x.mul(x).sum().square(); // (Σx²)²: H = 4(Σx²)I + 8xxᵀ
 * console.log(await hessian(f)(tensor([1, 2])).toArray()); // [[28, 16], [16, 52]]
 * ```
 */
export function hessian(
  f: (x: Tensor) => Tensor,
  opts?: HessianOptions,
): (x: Tensor) => Tensor;
/** `hessian(f)(x)` in one call. */
export function hessian(f: (x: Tensor) => Tensor, x: Tensor): Tensor;
export function hessian(
  f: (x: Tensor) => Tensor,
  xOrOpts?: Tensor | HessianOptions,
): Tensor | ((x: Tensor) => Tensor) {
  checkFunction("hessian", f);
  if (xOrOpts instanceof Tensor) return hessianAt(f, xOrOpts, {});
  checkOptions("hessian", xOrOpts, ["chunkSize", "onProgress"]);
  const opts = xOrOpts ?? {};
  const chunk = checkChunk("hessian", opts.chunkSize);
  const onProgress = checkProgress("hessian", opts.onProgress);
  return (x: Tensor) => hessianAt(f, x, { onProgress, chunkSize: chunk });
}

function checkChunk(op: string, c: unknown): number | undefined {
  if (c === undefined) return undefined;
  if (typeof c !== "number" || !Number.isSafeInteger(c) || c < 1) {
    throw new RangeError(`${op}: chunkSize must be a positive integer, got ${describeValue(c)}`);
  }
  return c;
}

/** Throws before any work when a dense result of `shape` cannot be one tensor on `x`'s device. */
function checkResultSize(op: string, x: Tensor, shape: readonly number[], advice: string): void {
  const bytes = sizeOf(shape) * itemSize(x.dtype);
  const limit = x.device.backend.maxStorageBytes;
  if (bytes > limit) {
    throw new RangeError(
      `${op}: the result, ${fmtShape(shape)} ${x.dtype}, needs ${bytes} bytes, more than this ` +
        `${x.device.kind} device's limit of ${limit} bytes per buffer; ${advice}`,
    );
  }
}

function hessianAt(f: (x: Tensor) => Tensor, x: Tensor, opts: HessianOptions): Tensor {
  checkFloatArg("hessian", x, "x");
  checkResultSize(
    "hessian",
    x,
    [...x.shape, ...x.shape],
    "for a banded Hessian use bandedHessian, or take products with hvp",
  );
  return transformScope(() => {
    const n = x.size;
    if (n === 0) return zeros([...x.shape, ...x.shape], { dtype: x.dtype, device: x.device });
    const k = opts.chunkSize ?? chunkSize(x);
    const parts: Tensor[] = [];
    // chunks of one size replay one compiled pass, kept across calls whose f does the same
    // operations (see auto_jit.ts)
    compiledByRecord(f, x, (run) => {
      for (let s = 0; s < n; s += k) {
        const kk = Math.min(k, n - s);
        const V = identityChunk("hessian", x, s, kk);
        parts.push(run("hvp", [x, V], (y, W) => hvp(f, y, W)));
        opts.onProgress?.({ done: s + kk, total: n, unit: "Hessian columns" });
      }
    });
    const h = parts.length === 1 ? parts[0] : concat(parts, 0);
    return reshape(h, [...x.shape, ...x.shape]);
  });
}

/** Options of {@linkcode jacobian}. */
export interface JacobianOptions {
  /** `"fwd"`: one batched JVP over identity tangents (cheap when x is small); `"rev"`: one pullback per output (cheap when f(x) is small). Default `"rev"`. */
  mode?: "fwd" | "rev";
  /** `"fwd"`: columns per batched JVP (as in {@linkcode HessianOptions}); ignored by `"rev"`. */
  chunkSize?: number;
  /**
   * Called as the Jacobian fills: after each chunk of columns (`"fwd"`, unit "Jacobian
   * columns") or each row (`"rev"`, unit "Jacobian rows").
   */
  onProgress?: ProgressCallback;
}

/**
 * The Jacobian `[...f(x).shape, ...x.shape]`, as JAX's `jacfwd(f)(x)` / `jacrev(f)(x)`
 * (pick with `mode`). `jacobian(f, x, opts)` is the same as `jacobian(f, opts)(x)`.
 *
 * @example
 * ```ts
 * import { type Tensor, jacobian, tensor } from "@curvature/curvature";
 * const A = tensor([[1, 2], [3, 4], [5, 6]]);
 * const J = jacobian((x: Tensor) => A.matmul(x), { mode: "fwd" })(tensor([1, 1]));
 * console.log(await J.toArray()); // [[1, 2], [3, 4], [5, 6]]
 * ```
 */
export function jacobian(
  f: (x: Tensor) => Tensor,
  opts?: JacobianOptions,
): (x: Tensor) => Tensor;
/** `jacobian(f, opts)(x)` in one call. */
export function jacobian(f: (x: Tensor) => Tensor, x: Tensor, opts?: JacobianOptions): Tensor;
export function jacobian(
  f: (x: Tensor) => Tensor,
  xOrOpts?: Tensor | JacobianOptions,
  maybeOpts?: JacobianOptions,
): Tensor | ((x: Tensor) => Tensor) {
  checkFunction("jacobian", f);
  const at = xOrOpts instanceof Tensor;
  const opts = (at ? maybeOpts : xOrOpts) ?? {};
  checkOptions("jacobian", opts, ["mode", "chunkSize", "onProgress"]);
  const mode = oneOf("jacobian", "mode", opts.mode, ["fwd", "rev"] as const, "rev");
  const chunk = checkChunk("jacobian", opts.chunkSize);
  const onProgress = checkProgress("jacobian", opts.onProgress);
  const run = (x: Tensor) => jacobianAt(f, x, mode, chunk, onProgress);
  return at ? run(xOrOpts) : run;
}

const JACOBIAN_ADVICE = "take products with jvp or vjp instead";

function jacobianAt(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  mode: "fwd" | "rev",
  chunk: number | undefined,
  onProgress: ProgressCallback | undefined,
): Tensor {
  checkFloatArg("jacobian", x, "x");
  const n = x.size;
  if (mode === "fwd") {
    return transformScope(() => {
      const k = chunk ?? chunkSize(x);
      const parts: Tensor[] = [];
      let yShape: readonly number[] = [];
      for (let s = 0; s < n || parts.length === 0; s += k) {
        const kk = Math.max(1, Math.min(k, n - s));
        const [y, t] = n === 0
          ? [checkOutput("jacobian", f(x), false), null]
          : jvp(f, [x], [identityChunk("jacobian", x, s, kk)]);
        yShape = y.shape;
        if (parts.length === 0) {
          checkResultSize("jacobian", x, [...yShape, ...x.shape], JACOBIAN_ADVICE);
        }
        if (!t) return zeros([...yShape, ...x.shape], { dtype: x.dtype, device: x.device });
        parts.push(t);
        onProgress?.({ done: s + kk, total: n, unit: "Jacobian columns" });
      }
      const m = parts[0].size / parts[0].shape[0];
      const jt = reshape(parts.length === 1 ? parts[0] : concat(parts, 0), [n, m]);
      return reshape(transpose(jt), [...yShape, ...x.shape]);
    });
  }
  const [y, back] = vjp(f, x);
  try {
    checkResultSize("jacobian", x, [...y.shape, ...x.shape], JACOBIAN_ADVICE);
    return transformScope(() => {
      const m = y.size;
      const rows: Tensor[] = [];
      for (let i = 0; i < m; i++) {
        const e = allocArray(y.dtype, m);
        e[i] = 1;
        rows.push(reshape(back(fromHost("jacobian", e, y.shape, y.device))[0], [1, n]));
        onProgress?.({ done: i + 1, total: m, unit: "Jacobian rows" });
      }
      const j = m === 0 ? zeros([0, n], { dtype: x.dtype, device: x.device }) : concat(rows, 0);
      return reshape(j, [...y.shape, ...x.shape]);
    });
  } finally {
    back.dispose();
    if (y !== x) y.dispose();
  }
}
