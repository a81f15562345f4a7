/**
 * Banded solvers over LAPACK / SciPy band storage: `choleskyBanded`
 * (`scipy.linalg.cholesky_banded`) and `solveBanded` (`scipy.linalg.solveh_banded`) for
 * symmetric positive definite matrices, `solveBandedGeneral` (`scipy.linalg.solve_banded`)
 * for any banded matrix; batched over an optional leading axis. O(n b²) work and O(n b)
 * memory per matrix.
 *
 * Band storage of a symmetric n×n matrix A of bandwidth b is a [b+1, n] array `ab`:
 * upper (the default, SciPy's `lower=False`): `ab[b + i − j][j] = A[i][j]` for i ≤ j;
 * lower: `ab[i − j][j] = A[i][j]` for i ≥ j. The b(b+1)/2 corner entries that fall outside
 * the matrix are ignored.
 */
import { Tensor } from "../tensor.ts";
import { checkTensor, describeValue } from "../ops/common.ts";
import { zeros } from "../ops/creation.ts";
import { reshape, slice } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import { bind } from "../ad/core.ts";
import { fmtShape, sizeOf } from "../shape.ts";
import { itemSize } from "../dtype.ts";

import { BandedMatrix } from "../curvature/banded.ts";
import { boolOption, checkOptions } from "../options.ts";

/** Options of {@linkcode choleskyBanded} and {@linkcode solveBanded}. */
export interface BandedOptions {
  /**
   * `ab` holds the lower triangle, `ab[i − j][j] = A[i][j]` for i ≥ j (default false: the
   * upper triangle, `ab[b + i − j][j] = A[i][j]` for i ≤ j, like SciPy's `lower=False`).
   */
  lower?: boolean;
}

/** @internal The sizes of a banded problem, from {@linkcode bandedShapes}. */
export interface BandedShapes {
  /** Matrices in the batch (1 when unbatched). */
  batch: number;
  /** Whether `ab` had a leading batch axis. */
  batched: boolean;
  /** The order of each matrix. */
  n: number;
  /** The bandwidth b (`ab` has b + 1 rows). */
  b: number;
  /** Right-hand sides per matrix (1 for a vector rhs; 0 without rhs). */
  m: number;
  /** The shape of the solution (the rhs shape), or of the factor without rhs. */
  outShape: number[];
}

/**
 * @internal Validates the shapes of band storage `ab` ([b+1, n] or [batch, b+1, n]) and,
 * for a solve, of `rhs` ([n] or [n, m]; batched: [batch, n] or [batch, n, m]). Errors
 * name `op` and the shapes. Shared by every entry point that takes band storage.
 */
export function bandedShapes(
  op: string,
  abShape: readonly number[],
  rhsShape?: readonly number[],
): BandedShapes {
  const r = abShape.length;
  if (r !== 2 && r !== 3) {
    throw new RangeError(
      `${op}: ab must be band storage [b+1, n] or a batch [batch, b+1, n], got shape ${
        fmtShape(abShape)
      }`,
    );
  }
  const batched = r === 3;
  const batch = batched ? abShape[0] : 1;
  const rows = abShape[r - 2], n = abShape[r - 1];
  const b = rows - 1;
  if (rows < 1) {
    throw new RangeError(
      `${op}: ab of shape ${fmtShape(abShape)} has no rows; band storage has b + 1 ≥ 1 rows`,
    );
  }
  if (b >= n) {
    throw new RangeError(
      `${op}: ab of shape ${fmtShape(abShape)} has ${rows} rows, so bandwidth b = ${b}, ` +
        `but an n×n matrix with n = ${n} has bandwidth at most n − 1 = ${n - 1} ` +
        `(ab must be [b+1, n] with b + 1 ≤ n)`,
    );
  }
  if (!rhsShape) return { batch, batched, n, b, m: 0, outShape: [...abShape] };
  return { batch, batched, n, b, ...rhsShapes(op, abShape, batched, rhsShape) };
}

/**
 * @internal The right-hand sides' count m and the solution's shape, after checking that
 * `rhs` is [n] or [n, m] (batched: [batch, n] or [batch, n, m]) for band storage of shape
 * `abShape` (n its last axis, batch its first when `batched`).
 */
export function rhsShapes(
  op: string,
  abShape: readonly number[],
  batched: boolean,
  rhsShape: readonly number[],
): { m: number; outShape: number[] } {
  const n = abShape[abShape.length - 1], batch = abShape[0];
  const lead = batched ? 1 : 0;
  const k = rhsShape.length - lead;
  const ok = (k === 1 || k === 2) && rhsShape[lead] === n && (!batched || rhsShape[0] === batch);
  if (!ok) {
    const want = batched ? `[${batch}, ${n}] or [${batch}, ${n}, m]` : `[${n}] or [${n}, m]`;
    throw new RangeError(
      `${op}: rhs of shape ${fmtShape(rhsShape)} does not match ab of shape ${
        fmtShape(abShape)
      } (a${batched ? " batch of" : "n"} ${n}×${n} matri${batched ? "ces" : "x"}); ` +
        `rhs must be ${want}`,
    );
  }
  return { m: k === 2 ? rhsShape[rhsShape.length - 1] : 1, outShape: [...rhsShape] };
}

/** A BandedMatrix brings its own storage layout; an explicit `lower` must agree with it. */
function unwrapBanded(
  op: string,
  ab: Tensor | BandedMatrix,
  opts: BandedOptions,
): [Tensor, BandedOptions] {
  checkOptions(op, opts, ["lower"]);
  // "no" or 0 must not silently mean lower: true
  boolOption(op, "lower", opts?.lower, false);
  if (!(ab instanceof BandedMatrix)) return [ab, opts ?? {}];
  const lower = ab.layout === "lower";
  if (opts?.lower !== undefined && opts.lower !== lower) {
    throw new TypeError(
      `${op}: the BandedMatrix is stored ${ab.layout} but options say lower: ${opts.lower}; drop the option`,
    );
  }
  return [ab.data, { ...opts, lower }];
}

/**
 * A float tensor on a device that supports its dtype; concrete (not being differentiated)
 * unless the op has derivative rules.
 */
function checkOperand(op: string, x: unknown, what: string, differentiable = false): Tensor {
  const t = checkTensor(op, x, what);
  t._check(op);
  if (t._tracer && !differentiable) {
    throw new TypeError(
      `${op}: ${what} is being differentiated (inside grad, jvp, vjp or hvp), and ${op} has no ` +
        `derivative rule; call it outside the transform`,
    );
  }
  if (t.dtype !== "f32" && t.dtype !== "f64") {
    throw new TypeError(
      `${op}: ${what} must be a floating-point tensor (f32 or f64), got ${t.dtype} of shape ${
        fmtShape(t.shape)
      }`,
    );
  }
  const bk = t.device.backend;
  if (!bk.dtypes.includes(t.dtype)) {
    throw new TypeError(
      `${op}: ${what} is ${t.dtype}, which the ${t.device.kind} device does not support ` +
        `(WebGPU has no f64; use f32, or the CPU device for f64)`,
    );
  }
  return t;
}

/** `ab` and `rhs` as operands of one solve: the same dtype and device. */
function checkPair(
  op: string,
  ab: unknown,
  rhs: unknown,
  differentiable: boolean,
): [Tensor, Tensor] {
  const a = checkOperand(op, ab, "ab", differentiable);
  const r = checkOperand(op, rhs, "rhs", differentiable);
  if (a.dtype !== r.dtype) {
    throw new TypeError(
      `${op}: ab is ${a.dtype} but rhs is ${r.dtype}; convert one with astype()`,
    );
  }
  if (a.device !== r.device) {
    throw new Error(
      `${op}: ab is on ${a.device.kind} but rhs is on ${r.device.kind}; move one with to(x, device)`,
    );
  }
  return [a, r];
}

function checkSize(op: string, t: Tensor, shape: readonly number[]): void {
  const bytes = sizeOf(shape) * itemSize(t.dtype);
  const limit = t.device.backend.maxStorageBytes;
  if (bytes > limit) {
    throw new RangeError(
      `${op}: the result, a ${t.dtype} tensor of shape ${fmtShape(shape)}, needs ${bytes} ` +
        `bytes, more than this ${t.device.kind} device's limit of ${limit} bytes per buffer`,
    );
  }
}

/**
 * The Cholesky factor of symmetric positive definite matrices in band storage, like
 * `scipy.linalg.cholesky_banded`: `ab` is `[b+1, n]` (or a batch `[batch, b+1, n]`) in
 * upper storage, `ab[b + i − j][j] = A[i][j]` (i ≤ j), or with `lower: true` in lower
 * storage, `ab[i − j][j] = A[i][j]` (i ≥ j). Returns the factor in the same storage: U with
 * A = UᵀU (upper) or L with A = LLᵀ (lower).
 *
 * The corner entries outside the matrix are ignored on input and are 0 in the result.
 * (LAPACK's pbtrf leaves them untouched and SciPy returns the input's corners there; 0 is
 * what a user rebuilding the matrix from the band expects, and it does not depend on the
 * input's garbage.)
 *
 * A matrix that is not positive definite is an error naming the first leading minor that
 * is not positive, like LAPACK's `info` — never NaN. On the CPU it is thrown here; on
 * WebGPU, where kernels cannot throw, the result owns it: every read (`data()`, `item()`)
 * of the result, or of anything computed from it, raises it.
 *
 * @example
 * ```ts
 * import { choleskyBanded, tensor } from "@curvature/curvature";
 * // A = [[4, 2], [2, 5]] in upper band storage (b = 1): row 0 holds A[0][1], row 1 the diagonal
 * const ab = tensor([[0, 2], [4, 5]]);
 * console.log(await choleskyBanded(ab).toArray()); // [[0, 1], [2, 2]]: U = [[2, 1], [0, 2]]
 * ```
 */
export function choleskyBanded(ab: Tensor | BandedMatrix, opts: BandedOptions = {}): Tensor {
  const op = "choleskyBanded";
  [ab, opts] = unwrapBanded(op, ab, opts);
  const a = checkOperand(op, ab, "ab");
  const s = bandedShapes(op, a.shape);
  if (s.batch === 0) return zeros(s.outShape, { dtype: a.dtype, device: a.device });
  checkSize(op, a, s.outShape);
  const out = a.device.backend.choleskyBanded(
    op,
    a.dtype,
    a._ref!.storage,
    s.batch,
    s.n,
    s.b,
    opts.lower ?? false,
  );
  return Tensor._fromStorage(out, s.outShape, a.dtype, a.device, [a]);
}

/**
 * Solves A x = rhs for a symmetric positive definite banded A, like
 * `scipy.linalg.solveh_banded`: `ab` is `[b+1, n]` band storage (upper by default, or
 * `lower: true`; see {@linkcode choleskyBanded}), `rhs` is `[n]` or `[n, m]` (m right-hand
 * sides). A batch `ab` of `[batch, b+1, n]` takes `rhs` `[batch, n]` or `[batch, n, m]`.
 * The result has the shape of `rhs`. Costs O(n b²) per matrix.
 *
 * A matrix that is not positive definite is an error naming the failing leading minor
 * (thrown here on the CPU; on WebGPU raised by every read of the result or of anything
 * computed from it). On WebGPU a long system with one right-hand side is solved in
 * partitions, in parallel along its rows (partitioned Cholesky: each block between
 * boundary rows eliminated on its own, then the boundary rows' Schur complement; stable
 * for SPD matrices, no pivoting needed); a failure there names the block (a principal
 * submatrix that is not positive definite) or the boundary row where it was found, since
 * the first failing leading minor would take a sequential pass.
 *
 * @example
 * ```ts
 * import { solveBanded, tensor } from "@curvature/curvature";
 * // A = [[4, 1, 0], [1, 4, 1], [0, 1, 4]]: upper storage puts the superdiagonal first
 * const ab = tensor([[0, 1, 1], [4, 4, 4]]);
 * console.log(await solveBanded(ab, tensor([5, 6, 5])).toArray()); // [1, 1, 1]
 * ```
 */
export function solveBanded(
  ab: Tensor | BandedMatrix,
  rhs: Tensor,
  opts: BandedOptions = {},
): Tensor {
  const op = "solveBanded";
  [ab, opts] = unwrapBanded(op, ab, opts);
  const [a, r] = checkPair(op, ab, rhs, false);
  const s = bandedShapes(op, a.shape, r.shape);
  if (s.batch === 0 || s.m === 0) return zeros(s.outShape, { dtype: a.dtype, device: a.device });
  checkSize(op, a, s.outShape);
  const out = a.device.backend.solveBanded(
    op,
    a.dtype,
    a._ref!.storage,
    r._ref!.storage,
    s.batch,
    s.n,
    s.b,
    s.m,
    opts.lower ?? false,
  );
  return Tensor._fromStorage(out, s.outShape, a.dtype, a.device, [a, r]);
}

function checkLU(op: string, lu: unknown): [number, number] {
  const ok = Array.isArray(lu) && lu.length === 2 &&
    lu.every((v) => Number.isSafeInteger(v) && v >= 0);
  if (!ok) {
    throw new TypeError(
      `${op}: the first argument must be [l, u], the numbers of subdiagonals and ` +
        `superdiagonals (non-negative integers), got ${JSON.stringify(lu) ?? describeValue(lu)}`,
    );
  }
  return [lu[0], lu[1]];
}

/**
 * Solves A x = rhs for a general banded A by LU factorisation with partial pivoting, like
 * `scipy.linalg.solve_banded((l, u), ab, rhs)` (LAPACK gbsv). A has `l` subdiagonals and
 * `u` superdiagonals, given in LAPACK general band storage `ab` of shape `[l+u+1, n]`:
 * `ab[u + i − j][j] = A[i][j]`, so row `u` is the diagonal, the rows above it the
 * superdiagonals (right-aligned) and the rows below the subdiagonals (left-aligned). The
 * entries of `ab` that fall outside the matrix are ignored. `rhs` is `[n]` or `[n, m]`; a
 * batch `ab` of `[batch, l+u+1, n]` takes `rhs` `[batch, n]` or `[batch, n, m]`. The
 * result has the shape of `rhs`. Costs O(n l (l + u)) per matrix and right-hand side.
 *
 * Like LAPACK, the solve fails only on a pivot that is exactly zero, with an error naming
 * the matrix and the step (LAPACK's `info`): thrown here on the CPU, by the next read-back
 * (`data()`, `item()`) on WebGPU, where kernels cannot throw. A nearly singular matrix
 * gives large values, as in SciPy. Two small differences from SciPy: for n = 1 the
 * diagonal `ab[u][0]` is used (SciPy divides by `ab[1][0]`, the diagonal only when
 * u = 1), and a zero pivot there is the same error.
 *
 * Differentiable in both arguments (JVP and VJP to any order): dx = A⁻¹(drhs − dA x),
 * rhs̄ = A⁻ᵀ x̄ (a banded solve with the transposed band) and ab̄ = −rhs̄ xᵀ restricted to
 * the band, so a derivative costs one more banded solve. The derivative assumes the
 * pivot order stays fixed, which holds almost everywhere.
 *
 * On WebGPU each system is factored by one invocation, step after step, and a batch of
 * systems runs in parallel. Partial pivoting makes every step depend on the last, and a
 * partitioned LU (SPIKE) would have to factor each partition's block without pivoting
 * across partitions, which breaks down when such a block is singular or ill-conditioned
 * although A is not; so unlike `solveBanded` a single long system is not split.
 *
 * @example
 * ```ts
 * import { solveBandedGeneral, tensor } from "@curvature/curvature";
 * // A = [[2, 1, 0], [3, 2, 1], [0, 3, 2]]: one subdiagonal (l = 1), one superdiagonal (u = 1)
 * const ab = tensor([
 *   [0, 1, 1], // superdiagonal, A[i][i+1], right-aligned
 *   [2, 2, 2], // diagonal
 *   [3, 3, 0], // subdiagonal, A[i+1][i], left-aligned
 * ]);
 * console.log(await solveBandedGeneral([1, 1], ab, tensor([3, 6, 5])).toArray()); // [1, 1, 1]
 * ```
 */
export function solveBandedGeneral(
  lu: readonly [number, number],
  ab: Tensor,
  rhs: Tensor,
): Tensor {
  const op = "solveBandedGeneral";
  const [l, u] = checkLU(op, lu);
  const [a, r] = checkPair(op, ab, rhs, true);
  const rank = a.shape.length;
  if (rank !== 2 && rank !== 3) {
    throw new RangeError(
      `${op}: ab must be band storage [l+u+1, n] or a batch [batch, l+u+1, n], got shape ${
        fmtShape(a.shape)
      }`,
    );
  }
  const rows = a.shape[rank - 2], n = a.shape[rank - 1], batch = rank === 3 ? a.shape[0] : 1;
  if (rows !== l + u + 1) {
    throw new RangeError(
      `${op}: l + u + 1 = ${l + u + 1} (l = ${l}, u = ${u}) must equal the rows of ab, but ab ` +
        `of shape ${fmtShape(a.shape)} has ${rows}`,
    );
  }
  const { m, outShape } = rhsShapes(op, a.shape, rank === 3, r.shape);
  if (batch === 0 || m === 0 || n === 0) {
    return zeros(outShape, { dtype: a.dtype, device: a.device });
  }
  checkSize(op, a, outShape);
  return tidy(() => {
    let a3 = reshape(a, [batch, rows, n]);
    // diagonals n or more away from the main one lie wholly outside the matrix
    const lIn = Math.min(l, n - 1), uIn = Math.min(u, n - 1);
    if (lIn < l || uIn < u) a3 = slice(a3, [0, u - uIn], [batch, u + lIn + 1]);
    const x = bind(op, [a3, reshape(r, [batch, n, m])], { l: lIn, u: uIn });
    return reshape(x, outShape);
  });
}
