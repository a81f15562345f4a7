/**
 * Sparse Hessians and Jacobians from compressed products: a pattern (given or detected),
 * a colouring of it, ONE batched pass of Hessian-vector (or Jacobian-vector) products over
 * the colours' indicator vectors, and a recovery that reads each entry from the product
 * where it sits alone (a gather on the device). The result is a `SparseMatrix` in CSR.
 */
import { Tensor } from "../tensor.ts";
import { keep, tidy } from "../memory.ts";
import { fmtShape } from "../shape.ts";
import { describeValue, pin, unpin } from "../ops/common.ts";
import type { Device } from "../device.ts";
import type { Dtype, TypedArray } from "../dtype.ts";
import { tensor, zeros } from "../ops/creation.ts";
import { mul } from "../ops/elementwise.ts";
import { concat, reshape } from "../ops/movement.ts";
import { bind } from "../ad/core.ts";
import { hvp, jvp } from "../ad/transforms.ts";
import { compiledByRecord } from "../ad/auto_jit.ts";
import { checkOptions, oneOf } from "../options.ts";
import { checkProgress, type ProgressCallback } from "../progress.ts";
import { BandedMatrix, type BandLayout } from "./banded.ts";
import type { Ordering } from "../linalg/ordering.ts";
import { cachedHessianSparsity, checkArgs, jacobianSparsity, SparsityPattern } from "./pattern.ts";
import {
  cachedColoring,
  type Coloring,
  COLORING_ORDERS,
  type ColoringKind,
  type ColoringOrder,
} from "./coloring.ts";

/**
 * @internal `x[idx]` along axis 0, for index tensors built here (valid by construction:
 * the gather primitive directly, without the op's O(n) range check of every call).
 */
export function takeRows(x: Tensor, idx: Tensor): Tensor {
  return bind("gather", [x, idx], { axis: 0 });
}

/** Zeros of `shape` with the rows of g added at idx along axis 0 (the adjoint of takeRows). */
function addRows(g: Tensor, idx: Tensor, shape: readonly number[]): Tensor {
  return bind("scatterAdd", [g, idx], { axis: 0, shape });
}

/** An i32 index tensor on `device` (host values kept for range checks). */
const indexTensor = (a: Int32Array, device: Device) => tensor(a, { dtype: "i32", device });

/**
 * Device copies of a pattern's or colouring's arrays (pinned), kept for the few most
 * recently used owners: a Newton loop evaluates H at every iteration with one colouring,
 * and uploading nnz indices each time would cost about as much as the gather they feed.
 */
const copies = new Map<object, Map<string, Tensor>>();
const COPIES_MAX = 8;

function deviceCopy(
  owner: object,
  name: string,
  device: Device,
  dtype: Dtype,
  make: () => TypedArray,
): Tensor {
  let byKey = copies.get(owner);
  if (byKey) copies.delete(owner); // re-inserted below as the most recent
  copies.set(owner, byKey ??= new Map());
  while (copies.size > COPIES_MAX) {
    const [old, ts] = copies.entries().next().value!;
    copies.delete(old);
    for (const t of ts.values()) unpin(t);
  }
  const key = `${name}|${device.kind}|${dtype}`;
  let t = byKey.get(key);
  if (!t) byKey.set(key, t = pin(keep(tensor(make(), { dtype, device }))));
  return t;
}

/**
 * A sparse matrix in CSR form: the pattern's `rowPtr` and `colIdx` on the host, the
 * `values` (one per entry, in CSR order) in a tensor on the device. Returned by
 * `sparseHessian` and `sparseJacobian`; it owns `values`.
 */
export class SparseMatrix {
  /** `[rows, columns]`. */
  readonly shape: readonly [number, number];
  /** Where the entries are. */
  readonly pattern: SparsityPattern;
  /** The entries, `[nnz]`, in the order of `colIdx`. */
  readonly values: Tensor;
  /** The colouring the entries were recovered with (null if built otherwise). */
  readonly coloring: Coloring | null;

  /** Wraps `values` ([nnz], one per entry of `pattern`); the matrix takes ownership of them. */
  constructor(pattern: SparsityPattern, values: Tensor, coloring: Coloring | null = null) {
    if (!(pattern instanceof SparsityPattern)) {
      throw new TypeError(
        `SparseMatrix: pattern must be a SparsityPattern, got ${describeValue(pattern)}`,
      );
    }
    if (!(values instanceof Tensor) || values.rank !== 1 || values.size !== pattern.nnz) {
      throw new RangeError(
        `SparseMatrix: values must be a 1-D tensor with one entry per pattern entry (${pattern.nnz}), got ${
          values instanceof Tensor ? fmtShape(values.shape) : describeValue(values)
        }`,
      );
    }
    this.shape = pattern.shape;
    this.pattern = pattern;
    this.values = values;
    this.coloring = coloring;
  }

  /** Row starts into `colIdx` (length rows + 1). */
  get rowPtr(): Int32Array {
    return this.pattern.rowPtr;
  }

  /** Column of each entry, ascending within a row. */
  get colIdx(): Int32Array {
    return this.pattern.colIdx;
  }

  /** The number of stored entries. */
  get nnz(): number {
    return this.pattern.nnz;
  }

  /** The colour of each column (null if the matrix was not built from a colouring). */
  get colors(): Int32Array | null {
    return this.coloring?.colors ?? null;
  }

  /** The row of each entry, on the device (cached per pattern). */
  #rowIndex(): Tensor {
    return deviceCopy(this.pattern, "rows", this.values.device, "i32", () => {
      const rows = new Int32Array(this.nnz);
      for (let i = 0; i < this.shape[0]; i++) rows.fill(i, this.rowPtr[i], this.rowPtr[i + 1]);
      return rows;
    });
  }

  /** The column of each entry, on the device (cached per pattern). */
  #colIndex(): Tensor {
    return deviceCopy(this.pattern, "cols", this.values.device, "i32", () => this.colIdx);
  }

  /** The dense matrix `[rows, columns]` (for small matrices). */
  toDense(): Tensor {
    const [m, n] = this.shape;
    return tidy(() => {
      const flat = new Int32Array(this.nnz);
      for (let i = 0; i < m; i++) {
        for (let k = this.rowPtr[i]; k < this.rowPtr[i + 1]; k++) flat[k] = i * n + this.colIdx[k];
      }
      return reshape(addRows(this.values, indexTensor(flat, this.values.device), [m * n]), [
        m,
        n,
      ]);
    });
  }

  /**
   * `A v` for v of shape [columns] or [columns, k] (k right-hand sides), on the device:
   * each entry times its column's value of v, summed per row (a gather and a segmented
   * sum), O(nnz) work.
   */
  matvec(v: Tensor): Tensor {
    const [m, n] = this.shape;
    if (!(v instanceof Tensor) || (v.rank !== 1 && v.rank !== 2) || v.shape[0] !== n) {
      throw new RangeError(
        `SparseMatrix.matvec: expected v of shape [${n}] or [${n}, k], got ${
          v instanceof Tensor ? fmtShape(v.shape) : describeValue(v)
        }`,
      );
    }
    if (v.device !== this.values.device || v.dtype !== this.values.dtype) {
      throw new TypeError(
        `SparseMatrix.matvec: v is ${v.dtype} on ${v.device.kind}; the matrix is ${this.values.dtype} on ${this.values.device.kind}`,
      );
    }
    const rows = this.#rowIndex(), cols = this.#colIndex();
    return tidy(() => {
      const vals = v.rank === 2 ? reshape(this.values, [this.nnz, 1]) : this.values;
      const terms = mul(takeRows(v, cols), vals);
      return addRows(terms, rows, v.rank === 2 ? [m, v.shape[1]] : [m]);
    });
  }

  /**
   * The matrix in LAPACK band storage (symmetric patterns only), with the bandwidth of its
   * pattern: ready for `solveBanded` / `choleskyBanded`.
   */
  toBanded(layout: BandLayout = "upper"): BandedMatrix {
    if (!this.pattern.symmetric) {
      throw new RangeError(
        `SparseMatrix.toBanded: band storage holds symmetric matrices; this ${this.shape[0]} × ${
          this.shape[1]
        } pattern is not symmetric`,
      );
    }
    const lay = oneOf(
      "SparseMatrix.toBanded",
      "layout",
      layout,
      ["lower", "upper"] as const,
      "upper",
    );
    return bandedFrom(this.values, this.pattern, lay, null);
  }

  /**
   * The tensors this matrix holds (its values): `tidy` keeps them when a SparseMatrix is (or
   * is inside) its result.
   *
   * @example
   * ```ts
   * import { sparseHessian, type Tensor, tensor, tidy } from "@curvature/curvature";
   * const x = tensor([1, 2, 3]);
   * const H = tidy(() => sparseHessian((z: Tensor) => z.pow(3).sum(), x));
   * console.log(await H.values.toArray()); // [6, 12, 18]: the values survived the tidy
   * ```
   */
  tensors(): Tensor[] {
    return [this.values];
  }

  /** Frees the values. */
  dispose(): void {
    this.values.dispose();
  }

  /** Frees the matrix at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * @internal Band storage [b+1, n] of a symmetric matrix given by its CSR `values` over
 * `pattern`, after the symmetric permutation `ordering` (entry (i, j) moves to
 * (inverse[i], inverse[j]); null: none), with b its bandwidth then. One gather on the
 * device, from the values with a zero appended; the gather's indices are cached per
 * pattern or ordering.
 */
export function bandedFrom(
  values: Tensor,
  pattern: SparsityPattern,
  layout: BandLayout,
  ordering: Ordering | null,
): BandedMatrix {
  const n = pattern.shape[0], nnz = pattern.nnz;
  const b = ordering ? ordering.bandwidth : pattern.bandwidth;
  const src = deviceCopy(ordering ?? pattern, `band|${layout}`, values.device, "i32", () => {
    const iperm = ordering?.inverse;
    const src = new Int32Array((b + 1) * n).fill(nnz); // nnz: the appended zero
    for (let i = 0; i < n; i++) {
      const pi = iperm ? iperm[i] : i;
      for (let k = pattern.rowPtr[i]; k < pattern.rowPtr[i + 1]; k++) {
        const j = pattern.colIdx[k], pj = iperm ? iperm[j] : j;
        // lower: ab[pi − pj][pj] (pi ≥ pj); upper: ab[b + pi − pj][pj] (pi ≤ pj)
        if (layout === "lower" ? pi >= pj : pi <= pj) {
          src[(layout === "lower" ? pi - pj : b + pi - pj) * n + pj] = k;
        }
      }
    }
    return src;
  });
  const data = tidy(() => {
    const padded = concat([values, zeros([1], { dtype: values.dtype, device: values.device })], 0);
    return reshape(takeRows(padded, src), [b + 1, n]);
  });
  return new BandedMatrix(data, layout);
}

/** Options of {@linkcode sparseHessian}. */
export interface SparseHessianOptions {
  /**
   * The Hessian's pattern (n × n over the flattened x, symmetric). Default: detected by
   * `hessianSparsity` once per record of f (see `sparseHessian`), then cached.
   */
  pattern?: SparsityPattern;
  /** A colouring to reuse (its pattern is then the pattern). Default: a star colouring, cached per pattern. */
  coloring?: Coloring;
  /** The vertex order of the colouring (default `"largest-first"`). */
  order?: ColoringOrder;
  /**
   * Called after each stage, `{ done, total: 3, unit: "stages" }`: the pattern (detected
   * or given), its colouring, the compressed products (queued, on WebGPU). Detection is
   * the slow stage on a first call; later calls reuse the cached pattern and colouring.
   */
  onProgress?: ProgressCallback;
}

/** Options of {@linkcode sparseJacobian}. */
export interface SparseJacobianOptions {
  /** The Jacobian's pattern (c(x).size × x.size). Default: detected by `jacobianSparsity`. */
  pattern?: SparsityPattern;
  /** A column colouring to reuse. Default: computed, cached per pattern. */
  coloring?: Coloring;
  /** The vertex order of the colouring (default `"largest-first"`). */
  order?: ColoringOrder;
}

function checkCall(op: string, f: unknown, x: unknown): Tensor {
  checkArgs(op, f, x);
  if ((x as Tensor)._tracer) {
    throw new Error(`${op}: cannot run under a transform (its recovery has no derivative rules)`);
  }
  return x as Tensor;
}

/** The pattern and colouring a call uses, from its options, checked against the shapes. */
function plan(
  op: string,
  kind: ColoringKind,
  opts: SparseHessianOptions | SparseJacobianOptions,
  shape: readonly [number | null, number],
  detect: () => SparsityPattern,
): Coloring {
  checkOptions(op, opts, [
    "pattern",
    "coloring",
    "order",
    ...(kind === "star" ? ["onProgress"] : []),
  ]);
  const order = opts.order === undefined
    ? undefined
    : oneOf(op, "order", opts.order, COLORING_ORDERS, "largest-first");
  let pattern = opts.pattern;
  if (pattern !== undefined && !(pattern instanceof SparsityPattern)) {
    throw new TypeError(`${op}: pattern must be a SparsityPattern, got ${describeValue(pattern)}`);
  }
  const c = opts.coloring;
  if (c !== undefined) {
    if (!c || typeof c !== "object" || !(c.colors instanceof Int32Array) || c.kind !== kind) {
      throw new TypeError(`${op}: coloring must be a ${kind} colouring from colorPattern`);
    }
    if (pattern && c.pattern !== pattern) {
      throw new RangeError(`${op}: the coloring was made for another pattern than the one given`);
    }
    pattern = c.pattern;
  }
  pattern ??= detect();
  if ((shape[0] !== null && pattern.shape[0] !== shape[0]) || pattern.shape[1] !== shape[1]) {
    throw new RangeError(
      `${op}: the pattern is ${pattern.shape[0]} × ${pattern.shape[1]}; expected ${
        shape[0] ?? "c(x).size"
      } × ${shape[1]} for x of size ${shape[1]}`,
    );
  }
  if (kind === "star" && !pattern.symmetric) {
    throw new RangeError(
      `${op}: a Hessian's pattern must be symmetric, and this one is not (add the mirror of each entry)`,
    );
  }
  return c ?? cachedColoring(pattern, kind, order);
}

/**
 * The probes of a colouring, `[count, ...shape]`: probe c is 1 on the columns of colour c.
 * Kept on the device with the colouring: read as a plain buffer, they make the batched HVP
 * cheaper than probes computed from the colours inside its kernels (CPU, n = 10⁶, 5
 * colours: 5.5 gradients against 7.5; comb probes, computed from the index alone, 7.3).
 */
function colorProbes(c: Coloring, x: Tensor): Tensor {
  const n = x.size;
  const probes = deviceCopy(c, "probes", x.device, x.dtype, () => {
    const p = new Float64Array(c.count * n);
    c.colors.forEach((k, j) => (p[k * n + j] = 1));
    return p;
  });
  return reshape(probes, [c.count, ...x.shape]);
}

/** Each entry from the compressed products `[count, rows]` (flattened): one gather. */
function recover(op: string, products: Tensor, c: Coloring): Tensor {
  if (products._tracer) {
    // the function closes over a value an outer transform differentiates: taking the
    // primal here would silently drop that derivative, so refuse instead
    throw new Error(
      `${op}: the function depends on a value that an enclosing transform is ` +
        `differentiating, and the recovery has no derivative rules; call ${op} outside the transform`,
    );
  }
  const source = deviceCopy(c, "source", products.device, "i32", () => c.source);
  return takeRows(reshape(products, [products.size]), source);
}

/**
 * The Hessian of scalar `f` at `x` (flattened, n × n) as a `SparseMatrix`, from ONE
 * batched forward-over-reverse pass: the pattern (given, or detected by
 * `hessianSparsity` and cached) is star-coloured (Gebremedhin, Manne &
 * Pothen 2005), the products with the colours' indicator vectors come from one K-probe
 * HVP (K = the number of colours), and each entry is read where it sits alone in them
 * (direct recovery: a gather on the device, the gather kernel on WebGPU).
 *
 * The colour count is what the Hessian costs: `H.coloring.count` HVPs, against at least
 * `pattern.maxRowNonzeros` products for a column colouring (a star colouring can beat
 * that bound: an arrowhead needs two colours).
 *
 * Repeated calls compile themselves, and the detected pattern is kept, by what f computes
 * rather than by the function object (see `bandedHessian`): a closure whose captured tensors
 * change replays the earlier call's kernels on them, and one whose couplings change (a captured
 * number or structure) gets its new pattern. A function that cannot be recorded (it reads a
 * value back, or makes a buffer from host data while it runs) has its pattern kept per
 * function object and shape; if its structure changes between calls, pass `pattern`.
 *
 * @example
 * ```ts
 * import { sparseHessian, type Tensor, tensor } from "@curvature/curvature";
 * // x₀ · Σ x[1:] + Σ x²: an arrowhead plus the diagonal
 * const f = (x: Tensor) => x.slice([0], [1]).mul(x.slice([1], [4]).sum()).sum().add(x.square().sum());
 * const H = sparseHessian(f, tensor([1, 2, 3, 4]));
 * console.log(H.nnz, H.coloring!.count); // 10 2
 * console.log(await H.toDense().toArray());
 * // [[2, 1, 1, 1], [1, 2, 0, 0], [1, 0, 2, 0], [1, 0, 0, 2]]
 * H.dispose();
 * ```
 */
export function sparseHessian(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  opts: SparseHessianOptions = {},
): SparseMatrix {
  checkCall("sparseHessian", f, x);
  const progress = checkProgress("sparseHessian", opts.onProgress);
  const stage = (done: number) => progress?.({ done, total: 3, unit: "stages" });
  const n = x.size;
  // the pattern and the program are kept by what f computes, not by f (auto_jit.ts)
  return compiledByRecord(f, x, (run, record) => {
    const c = plan("sparseHessian", "star", opts, [n, n], () => {
      const p = cachedHessianSparsity(f, x, record);
      stage(1);
      return p;
    });
    if (opts.pattern !== undefined || opts.coloring !== undefined) stage(1);
    stage(2);
    const values = c.count === 0
      ? zeros([c.pattern.nnz], { dtype: x.dtype, device: x.device })
      // the probes and the gather's indices are the colouring's: constants of its program
      : run(
        `sparse ${coloringId(c)}`,
        [x],
        (y) => tidy(() => recover("sparseHessian", hvp(f, y, colorProbes(c, y)), c)),
      );
    stage(3);
    return new SparseMatrix(c.pattern, values, c);
  }, false);
}

const coloringIds = new WeakMap<Coloring, number>();
let nextColoringId = 0;

/** A number per colouring object, naming the programs built from it. */
function coloringId(c: Coloring): number {
  let id = coloringIds.get(c);
  if (id === undefined) coloringIds.set(c, id = nextColoringId++);
  return id;
}

/**
 * The Jacobian of `c` at `x` (c(x).size × x.size, both flattened) as a `SparseMatrix`,
 * from ONE batched forward-mode pass: the pattern (given, or detected by
 * `jacobianSparsity`) is column-coloured (columns sharing a row differ), the products with
 * the colours' indicator vectors come from one K-tangent JVP, and each entry is read
 * where it sits alone. Needs at least `pattern.maxRowNonzeros` colours.
 *
 * @example
 * ```ts
 * import { sparseJacobian, type Tensor, tensor } from "@curvature/curvature";
 * const c = (x: Tensor) => x.slice([1], [4]).sub(x.slice([0], [3])).square(); // (x[i+1] − x[i])²
 * const J = sparseJacobian(c, tensor([0, 1, 3, 6]));
 * console.log(J.coloring!.count, await J.toDense().toArray());
 * // 2 [[-2, 2, 0, 0], [0, -4, 4, 0], [0, 0, -6, 6]]
 * J.dispose();
 * ```
 */
export function sparseJacobian(
  c: (x: Tensor) => Tensor,
  x: Tensor,
  opts: SparseJacobianOptions = {},
): SparseMatrix {
  checkCall("sparseJacobian", c, x);
  const col = plan("sparseJacobian", "column", opts, [null, x.size], () => jacobianSparsity(c, x));
  const values = tidy(() => {
    const [y, t] = col.count === 0 ? [c(x), null] : jvp(c, [x], [colorProbes(col, x)]);
    if (col.pattern.shape[0] !== y.size || col.pattern.shape[1] !== x.size) {
      throw new RangeError(
        `sparseJacobian: the pattern is ${col.pattern.shape[0]} × ${col.pattern.shape[1]}; ` +
          `expected ${y.size} × ${x.size} for c(x) of shape ${
            fmtShape(y.shape)
          } and x of size ${x.size}`,
      );
    }
    if (!t) return zeros([col.pattern.nnz], { dtype: x.dtype, device: x.device });
    return recover("sparseJacobian", t, col);
  });
  return new SparseMatrix(col.pattern, values, col);
}
