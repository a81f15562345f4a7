/**
 * Movement primitives. All are linear, so each JVP applies the primitive itself to the
 * tangent (axes shifted past a probe axis) and each VJP is the adjoint movement:
 * transpose ↔ inverse transpose, broadcast ↔ sum, slice ↔ zero-fill, pad ↔ slice,
 * concat ↔ slices, gather ↔ scatter-add, cast ↔ cast back. Batching (`vmap`) is the
 * primitive on the batched value with axes shifted past the batch axis, the same shift
 * the JVP rules make for a probe axis.
 */
import { bind } from "../ad/core.ts";
import { Tensor } from "../tensor.ts";
import * as o from "../ops/index.ts";
import { zeros } from "../ops/creation.ts";
import { broadcastStrides, stridesOf } from "../shape.ts";
import type { Params, PrimitiveTable } from "./types.ts";
import type { TangentBatch } from "../ad/batch.ts";
import { broadcastBatch } from "./batch_rules.ts";
import { moved, scattered } from "../ad/sparsity_rules.ts";

const st = (x: Tensor) => x._ref!.storage;

/** The slice's parameters with a leading (probe or batch) axis kept whole. */
function liftSlice(p: Params["slice"], tb: TangentBatch): Params["slice"] {
  return {
    start: tb.k > 0 ? [0, ...p.start] : p.start,
    step: tb.k > 0 ? [1, ...p.step] : p.step,
    shape: tb.shape(p.shape),
  };
}

/** gather / scatterAdd take host-made index tensors, which `vmap` cannot batch. */
function unbatchedIndices(op: string, batched: readonly boolean[]): void {
  if (batched[1]) {
    throw new TypeError(
      `${op}: vmap cannot batch the indices (index tensors are host values); ` +
        `pass them unbatched (in axis null) or gather along the batch axis outside vmap`,
    );
  }
}

/** Puts g (a slice result) back into zeros of `shape` at the sliced positions. */
function unslice(g: Tensor, shape: readonly number[], { start, step }: Params["slice"]): Tensor {
  let r = g;
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d], m = r.shape[d], p = step[d];
    let s = start[d];
    if (p === 1 && m === n) continue;
    if (m === 0) return zeros(shape, { dtype: g.dtype, device: g.device });
    const pads = (before: number, after: number) =>
      r.shape.map((_, i) => (i === d ? [before, after] as const : [0, 0] as const));
    if (p < 0) {
      // reverse the axis so positions ascend: s + (m-1)p, …, s with step |p|
      r = bind("slice", [r], {
        start: r.shape.map((sz, i) => (i === d ? sz - 1 : 0)),
        step: r.shape.map((_, i) => (i === d ? -1 : 1)),
        shape: r.shape,
      });
      s = s + (m - 1) * p;
    }
    const q = Math.abs(p);
    if (q > 1) {
      // interleave q-1 zeros after each entry: [.., m, ..] → [.., m, q, ..] → [.., m·q, ..]
      r = o.expandDims(r, d + 1);
      r = o.pad(r, r.shape.map((_, i) => (i === d + 1 ? [0, q - 1] as const : [0, 0] as const)));
      const s2 = [...r.shape];
      s2.splice(d, 2, m * q);
      r = o.reshape(r, s2);
    }
    const len = r.shape[d];
    if (len > n - s) {
      r = bind("slice", [r], {
        start: r.shape.map(() => 0),
        step: r.shape.map(() => 1),
        shape: r.shape.map((sz, i) => (i === d ? n - s : sz)),
      });
    }
    r = o.pad(r, pads(s, n - s - r.shape[d]));
  }
  return r;
}

export const MOVEMENT: PrimitiveTable<
  | "reshape"
  | "transpose"
  | "broadcastTo"
  | "slice"
  | "pad"
  | "concat"
  | "gather"
  | "scatterAdd"
  | "cast"
  | "barrier"
> = {
  reshape: {
    abstract: ([x], { shape }) => ({ shape, dtype: x.dtype }),
    impl: (b, [x], _p, out) => b.copy(out.dtype, st(x), x.size),
    jvp: (_x, [t], _y, { shape }, tb) => (t ? o.reshape(t, tb.shape(shape)) : null),
    vjp: (g, [x]) => [o.reshape(g, x.shape)],
    batch: ([x], _b, { shape }, bb) => o.reshape(x, bb.shape(shape)),
    sparsity: ([s]) => s, // the same elements in the same order
  },
  transpose: {
    abstract: ([x], { perm }) => ({ shape: perm.map((p) => x.shape[p]), dtype: x.dtype }),
    impl: (b, [x], { perm }, out) => {
      const s = stridesOf(x.shape);
      return b.stridedCopy(out.dtype, st(x), out.shape, 0, perm.map((p) => s[p]));
    },
    jvp: (_x, [t], _y, { perm }, tb) => (t ? o.transpose(t, tb.perm(perm)) : null),
    vjp: (g, _x, _y, { perm }) => {
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => (inv[p] = i));
      return [o.transpose(g, inv)];
    },
    batch: ([x], _b, { perm }, bb) => o.transpose(x, bb.perm(perm)),
    sparsity: moved("transpose"),
  },
  broadcastTo: {
    abstract: ([x], { shape }) => ({ shape, dtype: x.dtype }),
    impl: (b, [x], { shape }, out) =>
      b.stridedCopy(out.dtype, st(x), shape, 0, broadcastStrides(x.shape, shape)),
    jvp: (
      _x,
      [t],
      _y,
      { shape },
      tb,
    ) => (t ? o.broadcastTo(tb.lift(t, shape.length), tb.shape(shape)) : null),
    vjp: (g, [x]) => [o.sumToShape(g, x.shape)],
    batch: ([x], _b, { shape }, bb) => o.broadcastTo(bb.lift(x, shape.length), bb.shape(shape)),
    sparsity: moved("broadcastTo"),
  },
  slice: {
    abstract: ([x], { shape }) => ({ shape, dtype: x.dtype }),
    impl: (b, [x], { start, step }, out) => {
      const s = stridesOf(x.shape);
      let offset = 0;
      for (let d = 0; d < s.length; d++) offset += start[d] * s[d];
      return b.stridedCopy(out.dtype, st(x), out.shape, offset, step.map((p, d) => p * s[d]));
    },
    jvp: (_x, [t], _y, p, tb) => (t ? bind("slice", [t], liftSlice(p, tb)) : null),
    vjp: (g, [x], _y, p) => [unslice(g, x.shape, p)],
    batch: ([x], _b, p, bb) => bind("slice", [x], liftSlice(p, bb)),
    sparsity: moved("slice"),
  },
  pad: {
    abstract: ([x], { pads }) => ({
      shape: x.shape.map((d, i) => d + pads[i][0] + pads[i][1]),
      dtype: x.dtype,
    }),
    impl: (b, [x], { pads, value }, out) => b.pad(out.dtype, st(x), x.shape, pads, value),
    // the padding value is a constant: its tangent is 0
    jvp: (
      _x,
      [t],
      _y,
      { pads },
      tb,
    ) => (t ? o.pad(t, tb.k > 0 ? [[0, 0], ...pads] : pads, 0) : null),
    vjp: (g, [x], _y, { pads }) => [
      bind("slice", [g], { start: pads.map((p) => p[0]), step: pads.map(() => 1), shape: x.shape }),
    ],
    batch: ([x], _b, { pads, value }) => o.pad(x, [[0, 0], ...pads], value),
    sparsity: moved("pad", (p) => ({ ...p, value: 0 })), // the padding depends on nothing
  },
  concat: {
    abstract: (xs, { axis }) => {
      const shape = [...xs[0].shape];
      shape[axis] = xs.reduce((acc, x) => acc + x.shape[axis], 0);
      return { shape, dtype: xs[0].dtype };
    },
    impl: (b, xs, { axis }, out) =>
      b.concat(out.dtype, xs.map(st), xs.map((x) => x.shape), axis, out.shape),
    jvp: (xs, ts, _y, { axis }, tb) => {
      if (ts.every((t) => !t)) return null;
      return o.concat(xs.map((x, i) => ts[i] ?? tb.zeros(x)), tb.axis(axis));
    },
    vjp: (g, xs, _y, { axis }, needs) => {
      let at = 0;
      return xs.map((x, i) => {
        const from = at;
        at += x.shape[axis];
        if (!needs[i]) return null;
        return bind("slice", [g], {
          start: g.shape.map((_, d) => (d === axis ? from : 0)),
          step: g.shape.map(() => 1),
          shape: x.shape,
        });
      });
    },
    // unbatched pieces are broadcast along the batch axis before joining
    batch: (xs, batched, { axis }, bb) =>
      o.concat(xs.map((x, i) => bb.materialize(x, batched[i])), bb.axis(axis)),
    sparsity: moved("concat"),
  },
  gather: {
    abstract: ([x, idx], { axis }) => ({
      shape: [...x.shape.slice(0, axis), idx.shape[0], ...x.shape.slice(axis + 1)],
      dtype: x.dtype,
    }),
    impl: (b, [x, idx], { axis }, out) =>
      b.gather(out.dtype, st(x), x.shape, axis, st(idx), idx._index!),
    jvp: (
      [, idx],
      [t],
      _y,
      { axis },
      tb,
    ) => (t ? bind("gather", [t, idx], { axis: tb.axis(axis) }) : null),
    vjp: (
      g,
      [x, idx],
      _y,
      { axis },
    ) => [bind("scatterAdd", [g, idx], { axis, shape: x.shape }), null],
    batch: ([x, idx], batched, { axis }, bb) => {
      unbatchedIndices("gather", batched);
      return bind("gather", [x, idx], { axis: bb.axis(axis) });
    },
    sparsity: moved("gather"),
  },
  scatterAdd: {
    abstract: ([g], { shape }) => ({ shape, dtype: g.dtype }),
    impl: (b, [g, idx], { axis }, out) =>
      b.scatterAdd(out.dtype, st(g), g.shape, axis, st(idx), idx._index!, out.shape),
    jvp: ([, idx], [t], _y, { axis, shape }, tb) =>
      t ? bind("scatterAdd", [t, idx], { axis: tb.axis(axis), shape: tb.shape(shape) }) : null,
    vjp: (g, [, idx], _y, { axis }) => [bind("gather", [g, idx], { axis }), null],
    batch: ([g, idx], batched, { axis, shape }, bb) => {
      unbatchedIndices("scatterAdd", batched);
      return bind("scatterAdd", [g, idx], { axis: bb.axis(axis), shape: bb.shape(shape) });
    },
    sparsity: scattered,
  },
  cast: {
    abstract: ([x], { dtype }) => ({ shape: x.shape, dtype }),
    impl: (b, [x], { dtype }) => b.cast(st(x), x.dtype, dtype, x.size),
    jvp: (_x, [t], _y, { dtype }) => (t && dtype !== "i32" ? o.astype(t, dtype) : null),
    vjp: (g, [x]) => [x.dtype === "i32" ? null : o.astype(g, x.dtype)],
    batch: broadcastBatch("cast"),
    sparsity: ([s], _x, { dtype }) => (dtype === "i32" ? null : s),
  },
  // The identity, computed where it stands (JAX's optimization_barrier): its eager form runs
  // the deferred work behind x and views the result, so a fused kernel never reads x through
  // two different views (a tree of halving steps would otherwise be recomputed 2^depth
  // times). Its rules put the barrier on tangents and cotangents too.
  barrier: {
    abstract: ([x]) => ({ shape: x.shape, dtype: x.dtype }),
    impl: (b, [x], _p, out) => b.copy(out.dtype, st(x), x.size),
    jvp: (_x, [t]) => (t ? o.barrier(t) : null),
    vjp: (g) => [o.barrier(g)],
    batch: ([x]) => o.barrier(x),
    sparsity: ([s]) => s,
  },
};

/** @internal Primitives whose eager form is a view sharing the input's storage. */
export function viewOf(prim: string, x: Tensor, params: unknown): Tensor | null {
  if (prim === "reshape") return Tensor._view(x, (params as Params["reshape"]).shape);
  if (prim === "barrier") {
    x.device.backend.materialize(x._ref!.storage);
    return Tensor._view(x, x.shape);
  }
  return null;
}
