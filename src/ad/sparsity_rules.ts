/**
 * Sparsity rules by family, for the `sparsity` field of the primitive blocks: how index sets
 * (which variables each element may depend on) flow through a primitive, and which
 * second-order pairs it creates for the Hessian tracer (as SparseConnectivityTracer.jl's
 * global tracers: a pair (i, j) is recorded where a primitive's second derivative in the
 * arguments that carry i and j is not identically zero).
 *
 * Where an element comes from is computed by running the primitive itself on the CPU over
 * the element numbers of its inputs (an index map), so movement rules share the primitives'
 * own index arithmetic instead of repeating it.
 */
import { evalPrimitive } from "./core.ts";
import { group, IndexSets, type PairSink, scratch, take, unionAligned } from "./index_sets.ts";
import { Tensor } from "../tensor.ts";
import { cpu } from "../device.ts";
import type { CpuBackend } from "../backend/cpu/cpu.ts";
import { scratchScope } from "../memory.ts";
import { sizeOf } from "../shape.ts";
import type { Params, Primitive, SparsityRule } from "../primitives/types.ts";
import { fromHost } from "../ops/creation.ts";

/**
 * Runs `run` on the CPU over element numbers: each shape in `inputs` becomes f64 numbers
 * 1, 2, … (consecutive across inputs), each index tensor a CPU copy of its host values.
 * Returns, per output element, the 0-based number it received (−1 for none: pads fill 0).
 */
function indexMap(
  inputs: readonly (readonly number[] | Tensor)[],
  run: (ids: Tensor[]) => Tensor,
): Int32Array {
  return scratchScope(() => {
    const dev = cpu();
    let at = 1;
    const ids = inputs.map((s) => {
      if (s instanceof Tensor) return fromHost("sparsity", s._index!.host, s.shape, dev);
      const n = sizeOf(s);
      const t = Tensor._fromStorage(dev.backend.iota("f64", n, at, 1), s, "f64", dev);
      at += n;
      return t;
    });
    const y = run(ids);
    const a = (dev.backend as CpuBackend).hostArray(y._ref!.storage) as Float64Array;
    const map = scratch(a.length);
    for (let e = 0; e < a.length; e++) map[e] = a[e] - 1;
    return map;
  });
}

/** Sets of a tensor of `shape` as seen broadcast to `outShape`. */
function broadcastSets(s: IndexSets, shape: readonly number[], outShape: readonly number[]) {
  // equal sizes: broadcasting only added axes of size 1, so the element order is unchanged
  if (sizeOf(shape) === sizeOf(outShape)) return s;
  return take(
    s,
    indexMap([shape], ([ids]) => evalPrimitive("broadcastTo", [ids], { shape: outShape })),
  );
}

/** For each element of `shape`, the element of the reduction over `axes` it lands in. */
function reduceMap(shape: readonly number[], axes: readonly number[]): Int32Array {
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return indexMap([kept], ([ids]) => evalPrimitive("broadcastTo", [ids], { shape }));
}

/** ∪ of s over `axes` of `shape`; the result keeps the reduced axes as size 1. */
function unionOver(s: IndexSets, shape: readonly number[], axes: readonly number[]): IndexSets {
  const m = sizeOf(shape.map((d, i) => (axes.includes(i) ? 1 : d)));
  return group(s, m === 1 ? null : reduceMap(shape, axes), m);
}

/**
 * Which derivatives of an elementwise primitive may be non-zero: `first[i]` of argument i
 * (default: all), `second[i]` the second derivative in argument i, `cross` the mixed ones.
 */
export interface Curvature {
  readonly first?: readonly boolean[];
  readonly second?: readonly boolean[];
  readonly cross?: boolean;
}

/** The elementwise rule for arguments already reduced to sets and shapes. */
function combine(
  args: readonly { s: IndexSets | null; shape: readonly number[] }[],
  outShape: readonly number[],
  c: Curvature,
  h: PairSink,
): IndexSets | null {
  const parts: IndexSets[] = [];
  args.forEach(({ s, shape }, i) => {
    if (!s || !(c.first?.[i] ?? true)) return;
    const b = broadcastSets(s, shape, outShape);
    if (c.second?.[i]) h.pairs(b, b);
    if (c.cross) { for (const q of parts) h.pairs(q, b); }
    parts.push(b);
  });
  return parts.length ? unionAligned(parts) : null;
}

/** Elementwise (with NumPy broadcasting): each element depends on its operands' elements. */
export function elementwise<P extends Primitive>(c: Curvature): SparsityRule<P> {
  return (s, x, y, _p, h) =>
    combine(s.map((si, i) => ({ s: si, shape: x[i].shape })), y.shape, c, h);
}

/** Linear in every argument: the same index sets, no second-order pairs. */
export const linear: SparsityRule<Primitive> = elementwise({});
/** A unary primitive with a non-zero second derivative: sets unchanged, pairs s × s. */
export const nonlinear: SparsityRule<Primitive> = elementwise({ second: [true] });
/** Zero derivative (comparisons, sign, integer casts): the result depends on no variable. */
export const constant: SparsityRule<Primitive> = () => null;
/** Bilinear (a · b): pairs across the arguments only. */
export const bilinear: SparsityRule<Primitive> = elementwise({ cross: true });

/** Reductions: the union over the reduced axes. */
export const reduction: SparsityRule<"sum" | "max" | "min"> = ([s], [x], _y, { axes }) =>
  s && unionOver(s, x.shape, axes);

/** Sets of several inputs laid end to end (the numbering `indexMap` gives float inputs). */
function joined(s: readonly (IndexSets | null)[], x: readonly Tensor[]): IndexSets {
  const parts = x.map((t, i) => ({ s: s[i], size: t.dtype === "i32" ? 0 : t.size }))
    .filter((p) => p.size > 0);
  if (parts.length === 1 && parts[0].s) return parts[0].s;
  const vars = s.find((si) => si)!.vars;
  const total = parts.reduce((a, p) => a + p.size, 0);
  const ptr = scratch(total + 1);
  ptr[0] = 0;
  let e = 0, nnz = 0;
  for (const p of parts) {
    for (let k = 0; k < p.size; k++, e++) {
      nnz += p.s ? p.s.ptr[k + 1] - p.s.ptr[k] : 0;
      ptr[e + 1] = nnz;
    }
  }
  const idx = scratch(nnz);
  e = 0;
  for (const p of parts) {
    if (p.s) idx.set(p.s.idx, ptr[e]);
    e += p.size;
  }
  return new IndexSets(vars, ptr, idx);
}

/**
 * Movement: each output element is one input element (or none), found by running the
 * primitive over element numbers; `numbered` adapts the parameters (a pad fills 0 = none).
 */
export function moved<P extends Primitive>(
  prim: P,
  numbered: (p: Params[P]) => Params[P] = (p) => p,
): SparsityRule<P> {
  return (s, x, _y, params) => {
    if (s.every((si) => !si)) return null;
    const map = indexMap(
      x.map((t) => (t.dtype === "i32" ? t : t.shape)),
      (ids) => evalPrimitive(prim, ids, numbered(params)),
    );
    return take(joined(s, x), map);
  };
}

/** Scatter-add: each output element is the union of the updates added into it. */
export const scattered: SparsityRule<"scatterAdd"> = ([s], [, idx], y, { axis }) => {
  if (!s) return null;
  const map = indexMap([y.shape, idx], ([ids, i]) => evalPrimitive("gather", [ids, i], { axis }));
  return group(s, map, sizeOf(y.shape));
};

const lastAxes = (rank: number, k: number) => Array.from({ length: k }, (_, i) => rank - k + i);

/**
 * matmul: (AB)[…, i, j] = Σₖ A[…, i, k] B[…, k, j]. Conservative: element (i, j) gets all of
 * row i of A and column j of B, and the cross pairs between the two (bilinear).
 */
export const matmulRule: SparsityRule<"matmul"> = ([sa, sb], [a, b], y, _p, h) => {
  const rowA = a.shape.map((d, i) => (i === a.rank - 1 ? 1 : d));
  const colB = b.shape.map((d, i) => (i === b.rank - 2 ? 1 : d));
  return combine(
    [
      { s: sa && unionOver(sa, a.shape, [a.rank - 1]), shape: rowA },
      { s: sb && unionOver(sb, b.shape, [b.rank - 2]), shape: colB },
    ],
    y.shape,
    { cross: true },
    h,
  );
};

/**
 * solve(A, B) = A⁻¹B: column j of X depends on all of A and column j of B; nonlinear in A,
 * linear in B, with cross terms (dense linear algebra is conservative per matrix).
 */
export const solveRule: SparsityRule<"solve"> = ([sa, sb], [a, b], y, _p, h) => {
  const allA = a.shape.map((d, i) => (i >= a.rank - 2 ? 1 : d));
  const colB = b.shape.map((d, i) => (i === b.rank - 2 ? 1 : d));
  return combine(
    [
      { s: sa && unionOver(sa, a.shape, lastAxes(a.rank, 2)), shape: allA },
      { s: sb && unionOver(sb, b.shape, [b.rank - 2]), shape: colB },
    ],
    y.shape,
    { second: [true, false], cross: true },
    h,
  );
};

/**
 * Dense factorisations (cholesky, eigh): every entry of a result matrix depends on all of its
 * input matrix, nonlinearly (conservative: L's zero upper triangle is not singled out).
 */
export const wholeMatrix: SparsityRule<"cholesky" | "eigh"> = ([s], [a], y, _p, h) =>
  s && combine(
    [{
      s: unionOver(s, a.shape, lastAxes(a.rank, 2)),
      shape: a.shape.map((d, i) => (i >= a.rank - 2 ? 1 : d)),
    }],
    y.shape,
    { second: [true] },
    h,
  );

/** cumsum: entry j along the axis depends on entries 0 … j (shifted unions, log₂ n rounds). */
export const prefix: SparsityRule<"cumsum"> = ([s], [x], _y, { axis }) => {
  if (!s) return null;
  const n = x.shape[axis], inner = sizeOf(x.shape.slice(axis + 1));
  let cur = s;
  for (let d = 1; d < n; d *= 2) {
    const map = scratch(cur.size);
    for (let e = 0; e < map.length; e++) {
      map[e] = Math.floor(e / inner) % n >= d ? e - d * inner : -1;
    }
    cur = unionAligned([cur, take(cur, map)]);
  }
  return cur;
};

/** det / logdet: each result depends on all of its matrix, nonlinearly. */
export const determinant: SparsityRule<"det" | "logdet"> = ([s], [a], y, _p, h) =>
  s && combine(
    [{ s: unionOver(s, a.shape, lastAxes(a.rank, 2)), shape: y.shape }],
    y.shape,
    { second: [true] },
    h,
  );
