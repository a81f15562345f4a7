/**
 * Sparsity patterns (which entries of a Hessian or Jacobian may be non-zero) and their
 * detection by index-set tracing (`hessianSparsity`, `jacobianSparsity`).
 */
import { Tensor } from "../tensor.ts";
import { describeValue } from "../ops/common.ts";
import { fmtShape } from "../shape.ts";
import { traceHessianPattern, traceJacobianPattern } from "../ad/sparsity.ts";
import { LruCache, type LruLimits, registerCache } from "../lru.ts";

let trusted = false;

/**
 * A sparsity pattern: the positions of the possibly non-zero entries of an m × n matrix,
 * as CSR (row i's columns are `colIdx[rowPtr[i] .. rowPtr[i+1])`, ascending). Host data
 * only; one pattern serves every matrix with that structure (colourings are computed from
 * it once and reused).
 */
export class SparsityPattern {
  /** `[rows, columns]`. */
  readonly shape: readonly [number, number];
  /** Row starts into `colIdx` (length rows + 1). */
  readonly rowPtr: Int32Array;
  /** Column of each entry, ascending within a row. */
  readonly colIdx: Int32Array;
  #symmetric: boolean | null = null;

  /**
   * A pattern from CSR arrays, checked: `rowPtr` has rows + 1 non-decreasing entries from
   * 0 to `colIdx.length`; each row's columns are ascending, distinct and in range.
   */
  constructor(shape: readonly [number, number], rowPtr: Int32Array, colIdx: Int32Array) {
    this.shape = [shape[0], shape[1]];
    this.rowPtr = rowPtr;
    this.colIdx = colIdx;
    if (!trusted) SparsityPattern.#check(shape, rowPtr, colIdx);
  }

  /** @internal A pattern built by the library (already valid: no O(nnz) check). */
  static _trusted(
    shape: readonly [number, number],
    rowPtr: Int32Array,
    colIdx: Int32Array,
  ): SparsityPattern {
    trusted = true;
    try {
      return new SparsityPattern(shape, rowPtr, colIdx);
    } finally {
      trusted = false;
    }
  }

  static #check(shape: readonly [number, number], rowPtr: Int32Array, colIdx: Int32Array): void {
    const op = "SparsityPattern";
    if (
      !Array.isArray(shape) || shape.length !== 2 ||
      !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      throw new RangeError(`${op}: shape must be [rows, columns], got ${describeValue(shape)}`);
    }
    if (!(rowPtr instanceof Int32Array) || !(colIdx instanceof Int32Array)) {
      throw new TypeError(`${op}: rowPtr and colIdx must be Int32Arrays`);
    }
    const [m, n] = shape;
    if (rowPtr.length !== m + 1 || rowPtr[0] !== 0 || rowPtr[m] !== colIdx.length) {
      throw new RangeError(
        `${op}: rowPtr must have ${m + 1} entries from 0 to colIdx.length = ${colIdx.length}, ` +
          `got ${rowPtr.length} entries ending at ${rowPtr[rowPtr.length - 1]}`,
      );
    }
    for (let i = 0; i < m; i++) {
      if (rowPtr[i + 1] < rowPtr[i]) {
        throw new RangeError(`${op}: rowPtr decreases at row ${i}`);
      }
      for (let k = rowPtr[i]; k < rowPtr[i + 1]; k++) {
        const j = colIdx[k];
        if (j < 0 || j >= n) {
          throw new RangeError(`${op}: column ${j} in row ${i} is out of range for ${n} columns`);
        }
        if (k > rowPtr[i] && j <= colIdx[k - 1]) {
          throw new RangeError(
            `${op}: the columns of row ${i} must be ascending and distinct (${
              colIdx[k - 1]
            } then ${j})`,
          );
        }
      }
    }
  }

  /**
   * A pattern from a list of `[row, column]` positions (in any order; repeats are merged).
   *
   * @example
   * ```ts
   * import { SparsityPattern } from "@curvature/curvature";
   * const p = SparsityPattern.fromEntries([3, 3], [[0, 0], [1, 1], [2, 2], [0, 2], [2, 0]]);
   * console.log(p.nnz, p.symmetric, p.bandwidth); // 5 true 2
   * ```
   */
  static fromEntries(
    shape: readonly [number, number],
    entries: readonly (readonly [number, number])[],
  ): SparsityPattern {
    if (!Array.isArray(entries)) {
      throw new TypeError(
        `SparsityPattern.fromEntries: entries must be an array of [row, column] pairs, got ${
          describeValue(entries)
        }`,
      );
    }
    const [m, n] = shape;
    const rows: number[][] = Array.from({ length: m }, () => []);
    for (const e of entries) {
      const [i, j] = e;
      if (
        !Number.isSafeInteger(i) || !Number.isSafeInteger(j) || i < 0 || i >= m || j < 0 || j >= n
      ) {
        throw new RangeError(
          `SparsityPattern.fromEntries: entry [${e}] is outside a ${m} × ${n} matrix`,
        );
      }
      rows[i].push(j);
    }
    const rowPtr = new Int32Array(m + 1);
    const cols: number[] = [];
    rows.forEach((r, i) => {
      const u = [...new Set(r)].sort((a, b) => a - b);
      cols.push(...u);
      rowPtr[i + 1] = cols.length;
    });
    return new SparsityPattern([m, n], rowPtr, Int32Array.from(cols));
  }

  /** The number of entries. */
  get nnz(): number {
    return this.colIdx.length;
  }

  /** True when (i, j) is an entry exactly when (j, i) is (square patterns only). */
  get symmetric(): boolean {
    if (this.#symmetric === null) {
      const [m, n] = this.shape;
      let sym = m === n;
      for (let i = 0; sym && i < m; i++) {
        for (let k = this.rowPtr[i]; k < this.rowPtr[i + 1]; k++) {
          if (!this.has(this.colIdx[k], i)) {
            sym = false;
            break;
          }
        }
      }
      this.#symmetric = sym;
    }
    return this.#symmetric;
  }

  /** The largest |i − j| over the entries (0 for a diagonal or empty pattern). */
  get bandwidth(): number {
    let b = 0;
    for (let i = 0; i < this.shape[0]; i++) {
      const a = this.rowPtr[i], z = this.rowPtr[i + 1];
      if (a < z) b = Math.max(b, i - this.colIdx[a], this.colIdx[z - 1] - i);
    }
    return b;
  }

  /**
   * The most entries in one row: a lower bound on the colours of any column colouring
   * (the columns of one row must all differ); a symmetric star colouring can beat it
   * (an arrowhead's dense row needs only two or three colours).
   */
  get maxRowNonzeros(): number {
    let w = 0;
    for (let i = 0; i < this.shape[0]; i++) w = Math.max(w, this.rowPtr[i + 1] - this.rowPtr[i]);
    return w;
  }

  /** True when (i, j) is an entry. */
  has(i: number, j: number): boolean {
    let lo = this.rowPtr[i], hi = this.rowPtr[i + 1] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1, c = this.colIdx[mid];
      if (c === j) return true;
      if (c < j) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /** The pattern with the diagonal added (square patterns; the same pattern if it has it). */
  withDiagonal(): SparsityPattern {
    const [m, n] = this.shape;
    const { rowPtr, colIdx } = this;
    let missing = 0;
    for (let i = 0; i < Math.min(m, n); i++) if (!this.has(i, i)) missing++;
    if (missing === 0) return this;
    const ptr = new Int32Array(m + 1), idx = new Int32Array(colIdx.length + missing);
    let at = 0;
    for (let i = 0; i < m; i++) {
      let placed = i >= n || this.has(i, i);
      for (let k = rowPtr[i]; k < rowPtr[i + 1]; k++) {
        if (!placed && colIdx[k] > i) {
          idx[at++] = i;
          placed = true;
        }
        idx[at++] = colIdx[k];
      }
      if (!placed) idx[at++] = i;
      ptr[i + 1] = at;
    }
    return SparsityPattern._trusted(this.shape, ptr, idx);
  }

  /** The pattern as rows of 0/1 (for small patterns: printing, tests). */
  toArray(): number[][] {
    const [m, n] = this.shape;
    return Array.from({ length: m }, (_, i) => {
      const row = new Array<number>(n).fill(0);
      for (let k = this.rowPtr[i]; k < this.rowPtr[i + 1]; k++) row[this.colIdx[k]] = 1;
      return row;
    });
  }
}

/** @internal Throws unless f is a function and x a floating-point tensor that is alive. */
export function checkArgs(op: string, f: unknown, x: unknown): Tensor {
  if (typeof f !== "function") {
    throw new TypeError(`${op}: expected a function, got ${describeValue(f)}`);
  }
  if (!(x instanceof Tensor)) {
    throw new TypeError(`${op}: x must be a Tensor, got ${describeValue(x)}`);
  }
  if (x.dtype === "i32") throw new TypeError(`${op}: x must be a floating-point tensor, got i32`);
  x._check(op);
  return x;
}

function returned(op: string, scalar: boolean): (y: unknown) => Tensor {
  return (y) => {
    if (!(y instanceof Tensor)) {
      throw new TypeError(`${op}: the function must return a Tensor, got ${describeValue(y)}`);
    }
    if (scalar && y.size !== 1) {
      throw new RangeError(
        `${op}: the function must return a scalar (one element), got shape ${fmtShape(y.shape)}; ` +
          `use jacobianSparsity for non-scalar outputs`,
      );
    }
    return y;
  };
}

/**
 * The sparsity pattern of the Hessian of scalar `f` at x's shape (n × n over the
 * flattened x), by tracing index sets through `f` once: each value carries the variables
 * it may depend on, and each primitive with a non-zero second derivative records the
 * pairs it couples. The pattern is global (conservative for every x of that shape: it
 * may hold entries that are zero at a given point, never miss one) and symmetric.
 * Costs about one evaluation of f plus set arithmetic on the host.
 *
 * @example
 * ```ts
 * import { hessianSparsity, type Tensor, tensor } from "@curvature/curvature";
 * // Σ (x[i+1] − x[i])² + x₀ x₃: tridiagonal plus the corners
 * const f = (x: Tensor) => x.slice([1], [4]).sub(x.slice([0], [3])).square().sum()
 *   .add(x.slice([0], [1]).mul(x.slice([3], [4])).sum());
 * const p = hessianSparsity(f, tensor([1, 2, 3, 4]));
 * console.log(p.toArray()); // [[1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]]
 * ```
 */
export function hessianSparsity(f: (x: Tensor) => Tensor, x: Tensor): SparsityPattern {
  checkArgs("hessianSparsity", f, x);
  const n = x.size;
  const { rowPtr, colIdx } = traceHessianPattern(f, x, returned("hessianSparsity", true));
  return SparsityPattern._trusted([n, n], rowPtr, colIdx);
}

/**
 * The sparsity pattern of the Jacobian of `c` at x's shape (c(x).size × x.size, both
 * flattened): row e holds the variables output element e may depend on, found by tracing
 * index sets through `c` once. Global and conservative, as {@linkcode hessianSparsity}.
 *
 * @example
 * ```ts
 * import { jacobianSparsity, type Tensor, tensor } from "@curvature/curvature";
 * const c = (x: Tensor) => x.slice([1], [3]).mul(x.slice([0], [2])); // x₁x₀, x₂x₁
 * console.log(jacobianSparsity(c, tensor([1, 2, 3])).toArray()); // [[1, 1, 0], [0, 1, 1]]
 * ```
 */
export function jacobianSparsity(c: (x: Tensor) => Tensor, x: Tensor): SparsityPattern {
  checkArgs("jacobianSparsity", c, x);
  const r = traceJacobianPattern(c, x, returned("jacobianSparsity", false));
  return SparsityPattern._trusted([r.rowPtr.length - 1, x.size], r.rowPtr, r.colIdx);
}

const detected = new WeakMap<object, Map<string, SparsityPattern>>();

/** Patterns by f's record (auto_jit.ts): bounded, as the programs kept under the same keys. */
const byRecord = new LruCache<string, SparsityPattern>({
  maxEntries: 64,
  maxBytes: 256 * 2 ** 20,
});
registerCache("hessian sparsity patterns", {
  stats: () => byRecord.stats(),
  clear: () => byRecord.clear(),
  resize: (limits: Partial<LruLimits>) => byRecord.resize(limits),
});

/**
 * @internal `hessianSparsity(f, x)`, traced once and then reused: the pattern is global, so
 * it does not depend on x's values. With `record` (f's record at x, from
 * `compiledByRecord`: every operation f does, its parameters, constants and index values)
 * it is kept per record, so a closure whose structure changes between calls gets its new
 * pattern; without, per function object and shape (a function whose structure changes
 * through state it closes over must then pass its pattern).
 */
export function cachedHessianSparsity(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  record?: string | null,
): SparsityPattern {
  if (record) {
    let p = byRecord.get(record);
    if (!p) {
      p = hessianSparsity(f, x);
      byRecord.set(record, p, 4 * (p.rowPtr.length + p.nnz));
    }
    return p;
  }
  let byShape = detected.get(f);
  if (!byShape) detected.set(f, byShape = new Map());
  const key = x.shape.join(",");
  let p = byShape.get(key);
  if (!p) byShape.set(key, p = hessianSparsity(f, x));
  return p;
}
