/**
 * The Backend contract: everything a device must do, nothing about differentiation.
 *
 * Storage is opaque to the layers above; every kernel returns fresh storage it owns.
 * Shapes passed in are already validated by the tensor layer, so backends only check
 * what they alone know (dtype support, size limits).
 */
import type { Dtype, TypedArray } from "../dtype.ts";

/** Opaque handle to a backend's memory for one tensor. */
export interface Storage {
  readonly byteLength: number;
}

export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "sin"
  | "cos"
  | "tanh"
  | "sqrt"
  | "abs"
  | "sigmoid"
  | "log1p"
  | "expm1"
  | "square"
  | "reciprocal"
  | "sign"
  | "softplus"
  | "floor"
  | "ceil"
  | "round";

export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  | "greater"
  | "less"
  | "equal"
  | "greaterEqual"
  | "lessEqual"
  | "notEqual"
  | "atan2";

export type ReduceOp = "sum" | "max" | "min";

export type RandomDist = "uniform" | "normal" | "rademacher";

/** Kernel ids shared by both backends' switch tables and the WGSL `OP` override. */
export const UNARY_OPS: readonly UnaryOp[] = [
  "neg",
  "exp",
  "log",
  "sin",
  "cos",
  "tanh",
  "sqrt",
  "abs",
  "sigmoid",
  "log1p",
  "expm1",
  "square",
  "reciprocal",
  "sign",
  "softplus",
  "floor",
  "ceil",
  "round",
];
export const BINARY_OPS: readonly BinaryOp[] = [
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "maximum",
  "minimum",
  "greater",
  "less",
  "equal",
  "greaterEqual",
  "lessEqual",
  "notEqual",
  "atan2",
];
export const REDUCE_OPS: readonly ReduceOp[] = ["sum", "max", "min"];
export const RANDOM_DISTS: readonly RandomDist[] = ["uniform", "normal", "rademacher"];

/** Host copy of an i32 index tensor, kept so gathers can be range-checked without a read-back. */
export interface IndexInfo {
  readonly host: Int32Array;
}

/**
 * jit: the kernels a device launched between `record` and `finish` (see
 * ../compile/program.ts).
 */
export interface Recording {
  /** Ends the recording: a program replayable on new inputs, or why there is none. */
  finish(outputs: readonly Storage[]): Replayable | string;
  /** Ends the recording without a program (the traced function failed). */
  abort(): void;
  /**
   * The first kernel failure of the run so far, where a synchronous backend records past it
   * (the CPU); the traced function's ops after it read a value of NaNs. Always null where
   * kernel errors are deferred to reads anyway (WebGPU: see fault.ts).
   */
  readonly failure: Error | null;
}

/** A recorded program. */
export interface Replayable {
  /** Runs the kernels on new inputs (realized, in the recorded order); returns the outputs. */
  run(inputs: readonly Storage[]): Storage[];
  /** Kernels (and checks) per run. */
  readonly steps: number;
  /** Releases what the program holds (the constants it read). */
  dispose(): void;
}

/** One compute device. */
export interface Backend {
  readonly kind: "cpu" | "webgpu";
  /** What the device is, for messages: "CPU" or the adapter description. */
  readonly description: string;
  readonly dtypes: readonly Dtype[];
  /** Largest tensor, in bytes, one storage may hold. */
  readonly maxStorageBytes: number;
  /** Why the device was lost, or null while it works (the CPU never is). */
  readonly lost: { reason: string; message: string } | null;
  /** Throws an error naming `op`, the loss and its reason once the device is lost. */
  alive(op: string): void;

  upload(data: TypedArray): Storage;
  /**
   * The values of `s`, in a fresh array or, with `into` (of the dtype's array type and
   * `size` long), written into `into` and returned.
   */
  download(s: Storage, dtype: Dtype, size: number, into?: TypedArray): Promise<TypedArray>;
  /**
   * `download` without waiting, on backends whose memory the host reads directly (the
   * CPU); absent on WebGPU, whose buffers can only be mapped asynchronously.
   */
  readSync?(s: Storage, dtype: Dtype, size: number, into?: TypedArray): TypedArray;
  release(s: Storage): void;
  /**
   * Makes `target` fail with `RangeError(message)` if the first element of `flag` is
   * non-zero: a synchronous backend throws at once; WebGPU (kernels cannot throw) attaches
   * the error to `target`, so every read of it, or of anything computed from it, raises it
   * and no other read does (see fault.ts).
   */
  raiseIf(target: Storage, flag: Storage, message: string): void;
  /** Runs any deferred work behind `s` (a no-op on backends that do not defer). */
  materialize(s: Storage): void;
  /** Runs the deferred work behind `s` and resolves once its data is in place. */
  settled(s: Storage): Promise<void>;
  /** Waits until all queued work has finished (a no-op on synchronous backends). */
  sync(): Promise<void>;
  /** Starts recording the kernels this device launches, for `jit`; `inputs` are realized. */
  record(inputs: readonly Storage[]): Recording;

  fill(dtype: Dtype, size: number, value: number): Storage;
  /** out[i] = start + i * step */
  iota(dtype: Dtype, size: number, start: number, step: number): Storage;
  /** Philox4x32-10 keyed by `seed`; element i draws from counter (i, offset). */
  random(dist: RandomDist, dtype: Dtype, size: number, seed: number, offset: number): Storage;

  unary(op: UnaryOp, dtype: Dtype, x: Storage, size: number): Storage;
  binary(
    op: BinaryOp,
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage;
  where(
    dtype: Dtype,
    c: Storage,
    cShape: readonly number[],
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage;
  /** A plain copy (also the bandwidth yardstick of the benchmarks). */
  copy(dtype: Dtype, x: Storage, size: number): Storage;
  cast(x: Storage, from: Dtype, to: Dtype, size: number): Storage;

  /** Reduces over `axes` (sorted, unique); the output drops them. */
  reduce(
    op: ReduceOp,
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    axes: readonly number[],
  ): Storage;

  /** a [...batchA, m, k] @ b [...batchB, k, n] → out [...batch, m, n] (batch dims broadcast). */
  matmul(
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage;

  /**
   * Solves A X = B for each matrix of a batch (A [...batchA, n, n], B [...batchB, n, m],
   * batch dims broadcast) by Gauss-Jordan with partial pivoting. A singular A is an error
   * naming `op`: thrown at once on the CPU; on WebGPU owned by the result, raised by every
   * read of it or of what is computed from it (see fault.ts).
   */
  solve(
    op: string,
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage;
  /**
   * det (mode "det") or log det (mode "logdet") of each matrix of a [..., n, n] batch.
   * For "logdet", a singular matrix or a negative determinant is an error naming `op`.
   */
  det(
    op: string,
    mode: "det" | "logdet",
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
  ): Storage;

  /** Comb probes [period, n]: out[k][i] = 1 where i ≡ k (mod period), else 0. */
  comb(dtype: Dtype, n: number, period: number): Storage;
  /**
   * LAPACK band storage [b+1, n] (lower, or upper with `upper`) from hv [period, n], the
   * Hessian's products with `period` = 2b+1 comb probes; `mirror` takes each off-diagonal
   * entry from its other product (for the symmetry check).
   */
  unshuffleBand(
    dtype: Dtype,
    hv: Storage,
    n: number,
    b: number,
    period: number,
    upper: boolean,
    mirror: boolean,
  ): Storage;
  /** Band storage [b+1, n] by substitution from hv [b+1, n], products with b+1 comb probes. */
  substituteBand(dtype: Dtype, hv: Storage, n: number, b: number, upper: boolean): Storage;

  /** out[idx] = x[offset + Σ idx[d]·strides[d]]: transpose, broadcast and slice in one kernel. */
  stridedCopy(
    dtype: Dtype,
    x: Storage,
    outShape: readonly number[],
    offset: number,
    strides: readonly number[],
  ): Storage;
  pad(
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    pads: readonly (readonly [number, number])[],
    value: number,
  ): Storage;
  concat(
    dtype: Dtype,
    xs: readonly Storage[],
    shapes: readonly (readonly number[])[],
    axis: number,
    outShape: readonly number[],
  ): Storage;
  /** out = x indexed by `idx` along `axis`; out shape = x.shape[:axis] + idxShape + x.shape[axis+1:]. */
  gather(
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    axis: number,
    idx: Storage,
    idxInfo: IndexInfo,
  ): Storage;
  /** The adjoint of gather: zeros of `outShape` with g's slices added at `idx` along `axis`. */
  scatterAdd(
    dtype: Dtype,
    g: Storage,
    gShape: readonly number[],
    axis: number,
    idx: Storage,
    idxInfo: IndexInfo,
    outShape: readonly number[],
  ): Storage;

  /**
   * Banded Cholesky factorisation (LAPACK pbtrf) of each of `batch` symmetric positive
   * definite n×n matrices of bandwidth b, given in LAPACK band storage `ab`
   * [batch, b+1, n]: upper, `ab[b+i−j][j] = A[i][j]` (i ≤ j), or `lower`,
   * `ab[i−j][j] = A[i][j]` (i ≥ j); the unused corners are ignored. Returns the factor in
   * the same storage (U with A = UᵀU, or L with A = LLᵀ) with the corners set to 0.
   * A matrix that is not positive definite is an error naming `op` and the order of the
   * failing leading minor: thrown at once on the CPU; on WebGPU owned by the result (as
   * for `solve`).
   */
  choleskyBanded(
    op: string,
    dtype: Dtype,
    ab: Storage,
    batch: number,
    n: number,
    b: number,
    lower: boolean,
  ): Storage;
  /** Inclusive prefix sums along `axis` of x of `shape` (same shape out). */
  cumsum(dtype: Dtype, x: Storage, shape: readonly number[], axis: number): Storage;
  /**
   * Symmetric eigen-decomposition (LAPACK syev's job, by cyclic Jacobi rotations) of each of
   * `batch` symmetric n×n matrices `a` [batch, n, n]. Returns [batch, n+1, n]: row 0 the
   * eigenvalues in ascending order (NaN last), rows 1…n the matrix whose columns are the
   * unit eigenvectors in the same order, each signed so its entry of largest magnitude (the
   * first such) is positive.
   */
  eigh(dtype: Dtype, a: Storage, batch: number, n: number): Storage;
  /**
   * Solves A X = R for each matrix of a batch (`scipy.linalg.solveh_banded`): `ab` as in
   * `choleskyBanded`, `rhs` [batch, n, m]; returns X [batch, n, m]. Errors as there.
   */
  solveBanded(
    op: string,
    dtype: Dtype,
    ab: Storage,
    rhs: Storage,
    batch: number,
    n: number,
    b: number,
    m: number,
    lower: boolean,
  ): Storage;
  /**
   * Solves A X = R for each matrix of a batch by banded LU with partial pivoting (LAPACK
   * gbsv, `scipy.linalg.solve_banded`): `ab` [batch, l+u+1, n] in general band storage,
   * `ab[u + i − j][j] = A[i][j]`, the corners ignored (l, u < n); `rhs` [batch, n, m];
   * returns X [batch, n, m]. A zero pivot is an error naming `op`, the matrix and the
   * step: thrown at once on the CPU; on WebGPU owned by the result (as for `solve`).
   */
  solveBandedGeneral(
    op: string,
    dtype: Dtype,
    ab: Storage,
    rhs: Storage,
    batch: number,
    n: number,
    l: number,
    u: number,
    m: number,
  ): Storage;
}
