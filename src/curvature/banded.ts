/**
 * Banded Hessians from comb probes, in LAPACK / SciPy `solveh_banded` band storage.
 *
 * Storage of a symmetric matrix with bandwidth b (H[i][j] = 0 for |i − j| > b) as
 * `[b + 1, n]`: lower `ab[i − j][j] = H[i][j]` (i ≥ j), upper `ab[b + i − j][j] = H[i][j]`
 * (i ≤ j); entries that fall outside the matrix are 0.
 */
import { Tensor } from "../tensor.ts";
import type { FloatDtype } from "../dtype.ts";
import { tidy } from "../memory.ts";
import { fmtShape } from "../shape.ts";
import { hvp } from "../ad/transforms.ts";
import { abs, mul } from "../ops/elementwise.ts";
import { max, sum } from "../ops/reduce.ts";
import { zeros } from "../ops/creation.ts";
import { itemSize } from "../dtype.ts";
import { add } from "../ops/elementwise.ts";
import { pad, reshape, slice, stack, transpose } from "../ops/movement.ts";
import { combProbes } from "./probes.ts";
import { describeValue } from "../ops/common.ts";
import { boolOption, checkOptions } from "../options.ts";
import { cachedHessianSparsity, type SparsityPattern } from "./pattern.ts";
import { cachedColoring } from "./coloring.ts";
import { reverseCuthillMcKee } from "../linalg/ordering.ts";
import { compiledByRecord } from "../ad/auto_jit.ts";

/** Which triangle band storage holds: LAPACK's `uplo`. */
export type BandLayout = "lower" | "upper";

function checkLayout(op: string, layout: unknown): BandLayout {
  if (layout !== "lower" && layout !== "upper") {
    throw new TypeError(`${op}: layout must be "lower" or "upper", got ${JSON.stringify(layout)}`);
  }
  return layout;
}

/** @internal Throws unless b is an integer bandwidth for an n × n matrix (0 ≤ b < n). */
export function checkBandwidth(op: string, b: unknown, n: number): number {
  if (typeof b !== "number" || !Number.isInteger(b)) {
    throw new TypeError(`${op}: bandwidth must be an integer, got ${describeValue(b)}`);
  }
  if (b < 0 || b >= Math.max(n, 1)) {
    throw new RangeError(
      `${op}: bandwidth ${b} is out of range for n = ${n}; expected 0 ≤ bandwidth < n`,
    );
  }
  return b;
}

/**
 * Band rows ([n] each) from one storage to the other: lower row d is upper row b − d shifted
 * by d. Lower → upper: ab_u[b−d][j] = ab_l[d][j−d]; upper → lower: ab_l[d][j] = ab_u[b−d][j+d].
 */
function relayout(rows: Tensor[], to: BandLayout, n: number): Tensor[] {
  const b = rows.length - 1;
  return rows.map((_, r) => {
    const src = rows[b - r];
    const d = to === "upper" ? b - r : r; // the shift
    if (d === 0) return src;
    return to === "upper"
      ? pad(slice(src, [0], [n - d]), [[d, 0]])
      : pad(slice(src, [d], [n]), [[0, d]]);
  });
}

/** A symmetric banded matrix in LAPACK band storage. */
export class BandedMatrix {
  /** Order of the matrix. */
  readonly n: number;
  /** Number of sub-diagonals (= super-diagonals) stored. */
  readonly bandwidth: number;
  /** Which triangle `data` holds. */
  readonly layout: BandLayout;
  /** Band storage `[bandwidth + 1, n]`, ready for `scipy.linalg.solveh_banded(ab, lower=…)`. */
  readonly data: Tensor;
  /**
   * With `bandedHessian(…, { symmetryCheck: true })`: max |H[i][j] − H[j][i]| between the
   * two independent recoveries of each off-diagonal entry (a 0-d tensor), else null.
   */
  readonly symmetryError: Tensor | null;

  /** Wraps band storage `data` ([b+1, n]); the matrix takes ownership of it. */
  constructor(data: Tensor, layout: BandLayout = "upper", symmetryError: Tensor | null = null) {
    if (!(data instanceof Tensor)) {
      throw new TypeError(`BandedMatrix: data must be a Tensor, got ${describeValue(data)}`);
    }
    if (data.rank !== 2 || data.shape[0] < 1) {
      throw new RangeError(
        `BandedMatrix: band storage must be [b+1, n], got shape ${fmtShape(data.shape)}`,
      );
    }
    this.layout = checkLayout("BandedMatrix", layout);
    this.data = data;
    this.n = data.shape[1];
    this.bandwidth = data.shape[0] - 1;
    checkBandwidth("BandedMatrix", this.bandwidth, this.n);
    this.symmetryError = symmetryError;
  }

  /**
   * The band of a dense symmetric matrix `a` ([n, n]); only its lower triangle is read.
   *
   * @example
   * ```ts
   * import { BandedMatrix, tensor } from "@curvature/curvature";
   * const A = tensor([[4, 1, 0], [1, 4, 1], [0, 1, 4]]);
   * const B = BandedMatrix.fromDense(A, 1, "lower");
   * console.log(await B.data.toArray()); // [[4, 4, 4], [1, 1, 0]]
   * ```
   */
  static fromDense(a: Tensor, bandwidth: number, layout: BandLayout = "upper"): BandedMatrix {
    if (!(a instanceof Tensor) || a.rank !== 2 || a.shape[0] !== a.shape[1]) {
      throw new RangeError(
        `BandedMatrix.fromDense: expected a square [n, n] tensor, got ${
          a instanceof Tensor ? fmtShape(a.shape) : describeValue(a)
        }`,
      );
    }
    const n = a.shape[0];
    const b = checkBandwidth("BandedMatrix.fromDense", bandwidth, n);
    checkLayout("BandedMatrix.fromDense", layout);
    const data = tidy(() => {
      const flat = reshape(a, [n * n]);
      // diagonal d below the main one: H[j+d][j] sits at flat index d·n + j·(n+1)
      const lower = Array.from(
        { length: b + 1 },
        (_, d) => pad(slice(flat, [d * n], [d * n + (n - d - 1) * (n + 1) + 1], [n + 1]), [[0, d]]),
      );
      return stack(layout === "lower" ? lower : relayout(lower, "upper", n));
    });
    return new BandedMatrix(data, layout);
  }

  /** The b+1 rows of the band in lower storage (views; dispose inside a tidy). */
  #lowerRows(): Tensor[] {
    const rows = Array.from(
      { length: this.bandwidth + 1 },
      (_, r) => reshape(slice(this.data, [r], [r + 1]), [this.n]),
    );
    return this.layout === "lower" ? rows : relayout(rows, "lower", this.n);
  }

  /** The dense symmetric matrix `[n, n]` (for small n). */
  toDense(): Tensor {
    const n = this.n;
    return tidy(() => {
      let lowerPart: Tensor | null = null, strict: Tensor | null = null;
      this.#lowerRows().forEach((row, d) => {
        // put row[j] (j < n−d) at flat index d·n + j·(n+1): rows of n+1 with one entry each
        const v = reshape(slice(row, [0], [n - d]), [n - d, 1]);
        const spread = reshape(pad(v, [[0, 0], [0, n]]), [(n - d) * (n + 1)]);
        const placed = reshape(slice(pad(spread, [[d * n, 0]]), [0], [n * n]), [n, n]);
        lowerPart = lowerPart ? add(lowerPart, placed) : placed;
        if (d > 0) strict = strict ? add(strict, placed) : placed;
      });
      return strict ? add(lowerPart!, transpose(strict)) : lowerPart!;
    });
  }

  /** `H v` for v of shape [n] or [n, m] (m right-hand sides), in O(n b) work. */
  matvec(v: Tensor): Tensor {
    const n = this.n;
    if (!(v instanceof Tensor) || (v.rank !== 1 && v.rank !== 2) || v.shape[0] !== n) {
      throw new RangeError(
        `BandedMatrix.matvec: expected v of shape [${n}] or [${n}, m], got ${
          v instanceof Tensor ? fmtShape(v.shape) : describeValue(v)
        }`,
      );
    }
    return tidy(() => {
      const col = (t: Tensor) => (v.rank === 2 ? reshape(t, [t.size, 1]) : t);
      const padV = (t: Tensor, before: number, after: number) =>
        pad(t, v.rank === 2 ? [[before, after], [0, 0]] : [[before, after]]);
      let y: Tensor | null = null;
      this.#lowerRows().forEach((row, d) => {
        const l = col(slice(row, [0], [n - d])); // H[j+d][j], j < n−d
        // below the diagonal: y[j+d] += H[j+d][j] v[j]
        const lo = padV(mul(l, slice(v, [0], [n - d])), d, 0);
        y = y ? add(y, lo) : lo;
        // above it (d > 0): y[j] += H[j][j+d] v[j+d]
        if (d > 0) y = add(y, padV(mul(l, slice(v, [d], [n])), 0, d));
      });
      return y!;
    });
  }

  /** The same matrix in the other storage (or this layout: a copy). */
  toLayout(layout: BandLayout): BandedMatrix {
    checkLayout("BandedMatrix.toLayout", layout);
    const data = tidy(() => {
      const rows = this.#lowerRows();
      return stack(layout === "lower" ? rows : relayout(rows, "upper", this.n));
    });
    return new BandedMatrix(data, layout);
  }

  /**
   * The tensors this matrix holds (the band, and the symmetry error if any): `tidy` keeps
   * them when a BandedMatrix is (or is inside) its result.
   *
   * @example
   * ```ts
   * import { bandedHessian, type Tensor, tensor, tidy } from "@curvature/curvature";
   * const x = tensor([1, 2, 3]);
   * const H = tidy(() => bandedHessian((z: Tensor) => z.pow(3).sum(), x, { bandwidth: 0 }));
   * console.log(await H.data.toArray()); // [[6, 12, 18]]: the band survived the tidy
   * ```
   */
  tensors(): Tensor[] {
    return this.symmetryError ? [this.data, this.symmetryError] : [this.data];
  }

  /** Frees the band (and the symmetry error). */
  dispose(): void {
    this.data.dispose();
    this.symmetryError?.dispose();
  }

  /** Frees the band at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * @internal The bandwidth of f's Hessian at x's shape, from its detected pattern (traced
 * once per record, or per function and shape without one: `cachedHessianSparsity`). Throws when band storage would be
 * pointless: 2b + 1 comb probes at least as many as the n columns (the dense Hessian's
 * cost), saying what the sparse path would cost instead.
 */
export function detectedBandwidth(
  op: string,
  f: (x: Tensor) => Tensor,
  x: Tensor,
  record?: string | null,
): number {
  return patternBandwidth(op, cachedHessianSparsity(f, x, record), x.size);
}

/** @internal A detected pattern's bandwidth, refused where band storage would be pointless. */
export function patternBandwidth(op: string, p: SparsityPattern, n: number): number {
  const b = p.bandwidth;
  if (b > 0 && 2 * b + 1 >= n) {
    const colors = cachedColoring(p, "star", undefined).count;
    const rcm = reverseCuthillMcKee(p).bandwidth;
    throw new RangeError(
      `${op}: the Hessian's detected pattern has bandwidth ${b} for n = ${n}, so a band needs ` +
        `2b + 1 = ${2 * b + 1} comb probes, no fewer than the dense Hessian's ${n}: band ` +
        `storage is pointless here. Use sparseHessian (a star colouring of this pattern needs ` +
        `${colors} products) or minimize's "newton-sparse"; reordering the variables by ` +
        `reverseCuthillMcKee would give bandwidth ${rcm}. To force a band, pass bandwidth.`,
    );
  }
  return b;
}

/** Options of {@linkcode bandedHessian}. */
export interface BandedHessianOptions {
  /**
   * b: H[i][j] = 0 for |i − j| > b (of the flattened x). Default: detected from the
   * Hessian's sparsity pattern (`hessianSparsity`, traced once per record of f, see below).
   */
  bandwidth?: number;
  /**
   * `"direct"` (default): 2b+1 comb probes, each entry read alone from one product.
   * `"substitution"`: b+1 probes, entries recovered along chains using symmetry; errors
   * accumulate along the chains (see the README's table), so it is never the default.
   */
  method?: "direct" | "substitution";
  /** Band storage of the result (default `"upper"`, SciPy's default for solveh_banded). */
  layout?: BandLayout;
  /** Direct method only: also report max |H[i][j] − H[j][i]| over the band (`symmetryError`). */
  symmetryCheck?: boolean;
}

/**
 * The band of the Hessian of `f` at `x` (flattened) from batched Hessian-vector products:
 * all probes go through ONE forward-over-reverse pass whose kernels are K wide, the probes
 * are built on the device, and a kernel scatters the compressed products into LAPACK band
 * storage without a round trip through the host.
 *
 * Direct recovery: probe k (k < 2b+1) is 1 on {i : i ≡ k mod 2b+1}. Row i of H·probe_k
 * sums H[i][j] over j ≡ k; at most one such j lies within b of i, so H[i][j] is entry i of
 * the product of probe j mod 2b+1.
 *
 * Without `bandwidth`, the bandwidth is read from the Hessian's detected sparsity pattern
 * (traced once per record of f, see below, then cached); a pattern whose band would hold
 * about the whole matrix is an error that points to `sparseHessian`.
 *
 * **Repeated calls compile themselves.** The band's compiled pass is kept across calls, keyed by
 * what f does, not by f: each call runs `f` once on an abstract `x` (no values, no kernels) and
 * records its operations, and a later call with the same record (the same operations, shapes and
 * constants, whatever the tensors f closes over hold) replays the recorded kernels on its own x
 * and its own captured tensors instead of tracing again. So `f` runs on every call (once more on a
 * call that traces), and a captured tensor, number or structure that changed is never served an
 * old program. A function that reads a value back or makes a buffer from host data while it runs
 * cannot be recorded, and is traced on every call. The detected sparsity pattern is kept by the
 * same record, so a closure whose couplings change between calls (through a captured number or
 * structure) gets its new pattern; for a function that cannot be recorded it is kept per function
 * object and shape, and one whose structure changes must pass `bandwidth`.
 *
 * @example
 * ```ts
 * import { bandedHessian, type Tensor, tensor } from "@curvature/curvature";
 * // f = Σ (x[i+1] − x[i])² + Σ x⁴ / 12: tridiagonal Hessian
 * const f = (x: Tensor) => x.slice([1], [4]).sub(x.slice([0], [3])).square().sum()
 *   .add(x.pow(4).sum().div(12));
 * const H = bandedHessian(f, tensor([1, 1, 1, 1]), { bandwidth: 1, layout: "lower" });
 * console.log(await H.data.toArray()); // [[3, 5, 5, 3], [-2, -2, -2, 0]]
 * const G = bandedHessian(f, tensor([1, 1, 1, 1]), { layout: "lower" }); // bandwidth detected
 * console.log(G.bandwidth); // 1
 * ```
 */
export function bandedHessian(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  opts: BandedHessianOptions = {},
): BandedMatrix {
  if (typeof f !== "function") {
    throw new TypeError(`bandedHessian: expected a function, got ${describeValue(f)}`);
  }
  if (!(x instanceof Tensor)) {
    throw new TypeError(`bandedHessian: x must be a Tensor, got ${describeValue(x)}`);
  }
  if (x.dtype === "i32") {
    throw new TypeError("bandedHessian: x must be a floating-point tensor, got i32");
  }
  if (x._tracer) {
    throw new Error(
      "bandedHessian: cannot run under a transform (its recovery kernels are not differentiable)",
    );
  }
  checkOptions("bandedHessian", opts, ["bandwidth", "method", "layout", "symmetryCheck"]);
  const n = x.size;
  if (n === 0) {
    throw new RangeError(
      `bandedHessian: x is empty (shape ${fmtShape(x.shape)}); nothing to recover`,
    );
  }
  const given = opts.bandwidth === undefined
    ? null
    : checkBandwidth("bandedHessian", opts.bandwidth, n);
  const method = opts.method ?? "direct";
  if (method !== "direct" && method !== "substitution") {
    throw new TypeError(
      `bandedHessian: method must be "direct" or "substitution", got ${JSON.stringify(method)}`,
    );
  }
  const layout = checkLayout("bandedHessian", opts.layout ?? "upper");
  const symmetryCheck = boolOption("bandedHessian", "symmetryCheck", opts.symmetryCheck, false);
  if (symmetryCheck && method !== "direct") {
    throw new TypeError(
      "bandedHessian: symmetryCheck needs the direct method (each entry is recovered twice only there)",
    );
  }
  // a given band too big for a buffer is refused before f runs (a detected one after its
  // abstract run: the pattern is kept by f's record)
  const sized = given === null ? null : bandSize(x, given, method, symmetryCheck);
  if (sized?.chunked) {
    return chunkedBand(f, x, given!, sized.period, layout, x.device.backend.maxStorageBytes);
  }
  // the detected pattern and the band program are kept by what f computes (auto_jit.ts)
  return compiledByRecord(f, x, (run, record) => {
    const b = given ?? detectedBandwidth("bandedHessian", f, x, record);
    const { period, chunked } = bandSize(x, b, method, symmetryCheck);
    if (chunked) return chunkedBand(f, x, b, period, layout, x.device.backend.maxStorageBytes);
    const work = `band ${b} ${period} ${method} ${layout} ${symmetryCheck}`;
    const [data, sym] = run(
      work,
      [x],
      (y) => bandFromProducts(f, y, b, period, method, layout === "upper", symmetryCheck),
    );
    return new BandedMatrix(data, layout, sym);
  }, false);
}

/**
 * The probes of a band of width b (`period`), checked against the device's buffer limit:
 * `chunked` when their products must be taken a few at a time.
 */
function bandSize(
  x: Tensor,
  b: number,
  method: "direct" | "substitution",
  symmetryCheck: boolean,
): { period: number; chunked: boolean } {
  const n = x.size;
  // more probes than columns would be empty: n probes are the identity
  const period = Math.min(method === "direct" ? 2 * b + 1 : b + 1, n);
  const item = itemSize(x.dtype);
  const limit = x.device.backend.maxStorageBytes;
  if ((b + 1) * n * item > limit) {
    throw new RangeError(
      `bandedHessian: the band of n = ${n}, bandwidth ${b} needs ${(b + 1) * n * item} bytes ` +
        `(${b + 1} × ${n} ${x.dtype}), more than this ${x.device.kind} device's limit of ` +
        `${limit} bytes per buffer; use the CPU device, or split the problem`,
    );
  }
  if (period * n * item > limit) {
    // the products of all the probes at once would not fit one buffer: take them in chunks
    if (method !== "direct" || symmetryCheck) {
      throw new RangeError(
        `bandedHessian: ${period} products of n = ${n} need ${period * n * item} bytes, more ` +
          `than this ${x.device.kind} device's limit of ${limit} bytes per buffer; only the ` +
          `direct method without symmetryCheck takes them in chunks`,
      );
    }
    return { period, chunked: true };
  }
  return { period, chunked: false };
}

/** The band (and the symmetry error) from one batched pass of `period` comb-probe products. */
function bandFromProducts(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  b: number,
  period: number,
  method: "direct" | "substitution",
  upper: boolean,
  symmetryCheck: boolean,
): [Tensor, Tensor | null] {
  const n = x.size;
  const be = x.device.backend;
  const make = (s: ReturnType<typeof be.comb>) =>
    Tensor._fromStorage(s, [b + 1, n], x.dtype, x.device, [x]);
  return tidy(() => {
    const probes = reshape(
      combProbes(n, period, { dtype: x.dtype as FloatDtype, device: x.device }),
      [period, ...x.shape],
    );
    const hv = reshape(hvp(f, x, probes), [period, n]);
    if (hv._tracer) {
      // f closes over a value that an outer grad/jvp/vjp differentiates: taking the primal
      // here would silently drop that derivative (a zero gradient), so refuse instead
      throw new Error(
        "bandedHessian: f depends on a value that an enclosing transform (grad, jvp, vjp, hvp) " +
          "is differentiating, and the band's recovery kernels have no derivative rules; " +
          "call bandedHessian outside the transform",
      );
    }
    const st = hv._ref!.storage;
    if (method === "substitution") return [make(be.substituteBand(x.dtype, st, n, b, upper)), null];
    const band = make(be.unshuffleBand(x.dtype, st, n, b, period, upper, false));
    if (!symmetryCheck) return [band, null];
    const other = make(be.unshuffleBand(x.dtype, st, n, b, period, upper, true));
    return [band, max(abs(band.sub(other)))];
  });
}

/**
 * The direct recovery with the probes taken `m` at a time, for products that do not fit one
 * buffer together (n in the millions on WebGPU): lower row d at column j is
 * (H v_k)[j + d] with k = j mod period, so each chunk adds, for every d, the sum over its
 * probes of comb mask ⊙ (products shifted by d). Chunks hold half the buffer limit, leaving
 * room for f's intermediates that are a little larger than x.
 */
function chunkedBand(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  b: number,
  period: number,
  layout: BandLayout,
  limit: number,
): BandedMatrix {
  const n = x.size;
  const m = Math.max(1, Math.floor(limit / (2 * n * itemSize(x.dtype))));
  const o = { dtype: x.dtype as FloatDtype, device: x.device };
  let rows: Tensor[] = Array.from({ length: b + 1 }, () => zeros([n], o));
  for (let k0 = 0; k0 < period; k0 += m) {
    const k1 = Math.min(period, k0 + m), c = k1 - k0;
    const next = tidy(() => {
      const mask = slice(combProbes(n, period, o), [k0, 0], [k1, n]);
      const hv = reshape(hvp(f, x, reshape(mask, [c, ...x.shape])), [c, n]);
      return rows.map((row, d) => {
        const shifted = d === 0 ? hv : pad(slice(hv, [0, d], [c, n]), [[0, 0], [0, d]]);
        return add(row, sum(mul(mask, shifted), 0));
      });
    });
    for (const r of rows) r.dispose();
    rows = next;
  }
  const data = tidy(() => stack(layout === "lower" ? rows : relayout(rows, "upper", n)));
  for (const r of rows) r.dispose();
  return new BandedMatrix(data, layout);
}
