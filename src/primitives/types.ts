/**
 * The closed set of primitives. Each is declared once, in its family's file, as a
 * PrimitiveDef: shape/dtype rule, backend call, JVP, VJP and batching rules. The registry's type
 * is a total map over `Primitive`, so a primitive without a rule fails `deno check`.
 */
import type { Backend, BinaryOp, Storage, UnaryOp } from "../backend/backend.ts";
import type { Dtype } from "../dtype.ts";
import type { Tensor } from "../tensor.ts";
import type { TangentBatch } from "../ad/batch.ts";
import type { IndexSets, PairSink } from "../ad/index_sets.ts";

/** Shape and dtype of a value: all a rule needs to know before running. */
export interface Aval {
  readonly shape: readonly number[];
  readonly dtype: Dtype;
}

type NoParams = Record<string, never>;
type UnaryParams = { [K in UnaryOp]: NoParams };
type BinaryParams = { [K in BinaryOp]: NoParams };

/** Parameters of each primitive (normalised: absolute axes, resolved slices). */
export interface Params extends UnaryParams, BinaryParams {
  where: NoParams;
  cast: { readonly dtype: Dtype };
  barrier: NoParams;
  cumsum: { readonly axis: number };
  cholesky: NoParams;
  eigh: NoParams;
  sum: { readonly axes: readonly number[] };
  max: { readonly axes: readonly number[] };
  min: { readonly axes: readonly number[] };
  matmul: NoParams;
  /** `op`: the public function that asked for the solve, named by its errors (default "solve"). */
  solve: { readonly op?: "inv" | "choleskySolve" };
  det: NoParams;
  logdet: NoParams;
  /** Subdiagonals l and superdiagonals u of the band (both < n). */
  solveBandedGeneral: { readonly l: number; readonly u: number };
  reshape: { readonly shape: readonly number[] };
  transpose: { readonly perm: readonly number[] };
  broadcastTo: { readonly shape: readonly number[] };
  /** Resolved NumPy slice: first index, step (non-zero) and output size per axis. */
  slice: {
    readonly start: readonly number[];
    readonly step: readonly number[];
    readonly shape: readonly number[];
  };
  pad: { readonly pads: readonly (readonly [number, number])[]; readonly value: number };
  concat: { readonly axis: number };
  gather: { readonly axis: number };
  scatterAdd: { readonly axis: number; readonly shape: readonly number[] };
}

/** Every primitive's name. */
export type Primitive = keyof Params;

/** Forward-mode rule: the output tangent from input tangents (null = symbolic zero). */
export type JvpRule<P extends Primitive> = (
  x: readonly Tensor[],
  t: readonly (Tensor | null)[],
  y: Tensor,
  params: Params[P],
  tb: TangentBatch,
) => Tensor | null;

/** Reverse-mode rule: input cotangents from the output cotangent (null = zero / not needed). */
export type VjpRule<P extends Primitive> = (
  g: Tensor,
  x: readonly Tensor[],
  y: Tensor,
  params: Params[P],
  needs: readonly boolean[],
) => readonly (Tensor | null)[];

/**
 * Batching rule (`vmap`): `x[i]` carries the batch axis at position 0 where `batched[i]`,
 * none where not (at least one is batched); `bb.k` is the batch size and `bb`'s helpers
 * shift axes past it, as for probe-batched tangents; `out` is the unbatched output's aval.
 * Returns the output with the batch axis at 0, shaped `[bb.k, ...out.shape]`. Written in
 * library ops, so it nests under every other transform.
 */
export type BatchRule<P extends Primitive> = (
  x: readonly Tensor[],
  batched: readonly boolean[],
  params: Params[P],
  bb: TangentBatch,
  out: Aval,
) => Tensor;

/**
 * Sparsity rule (index-set propagation, for `hessianSparsity` / `jacobianSparsity`): from
 * the index sets of the inputs (`s[i]` null: input i is a constant) and the primal inputs
 * `x` (their shapes; index tensors' host values), the output's sets (null: a constant).
 * Second-order pairs go to `h` (`h.pairs(r, c)`: r[e] × c[e] for every element e) where
 * the primitive's second derivative is not identically zero. Conservative: a set may hold
 * a variable the element does not depend on, never miss one. The family helpers are in
 * src/ad/sparsity_rules.ts (elementwise: same index set; reductions: union over the axis).
 */
export type SparsityRule<P extends Primitive> = (
  s: readonly (IndexSets | null)[],
  x: readonly Tensor[],
  y: Aval,
  params: Params[P],
  h: PairSink,
) => IndexSets | null;

/**
 * One primitive: how to type it, run it, differentiate it, batch it (`vmap`) and how
 * index sets flow through it (sparsity detection). Every field is required, so the table
 * stays total: a primitive without a rule fails `deno check`.
 */
export interface PrimitiveDef<P extends Primitive> {
  /** Validates inputs and returns the output's aval; errors name the op and the shapes. */
  abstract(x: readonly Aval[], params: Params[P]): Aval;
  /** Runs on concrete tensors of one device and returns the output's storage. */
  impl(b: Backend, x: readonly Tensor[], params: Params[P], out: Aval): Storage;
  jvp: JvpRule<P>;
  vjp: VjpRule<P>;
  batch: BatchRule<P>;
  sparsity: SparsityRule<P>;
}

/** A family's table: each entry typed by its own primitive. */
export type PrimitiveTable<K extends Primitive> = { readonly [P in K]: PrimitiveDef<P> };
