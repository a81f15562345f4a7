/** Movement ops: reshape, transpose, broadcast, slice, pad, concat, stack, gather, scatter-add. */
import { bind } from "../ad/core.ts";
import { Tensor } from "../tensor.ts";
import {
  broadcastShapes,
  checkShape,
  fmtShape,
  normAxes,
  normAxis,
  shapesEqual,
  sizeOf,
} from "../shape.ts";
import { checkTensor, describeValue } from "./common.ts";
import { fromHost } from "./creation.ts";
import { sum } from "./reduce.ts";
import { tidy } from "../memory.ts";

/**
 * The result of a no-op (same shape, identity permutation, …): a new view of x's storage,
 * so the caller may dispose it without freeing x. A traced x is returned as is.
 */
export function same(op: string, x: Tensor): Tensor {
  x._check(op);
  return x._ref ? Tensor._view(x, x.shape) : x;
}

/**
 * Same data, new shape; one entry may be −1 (inferred). Shares memory with `x` when `x`
 * is not being traced.
 *
 * @example
 * ```ts
 * import { arange, reshape } from "@curvature/curvature";
 * console.log(await reshape(arange(6), [2, -1]).toArray()); // [[0, 1, 2], [3, 4, 5]]
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor("reshape", x);
  if (!Array.isArray(shape)) {
    throw new TypeError(`reshape: shape must be an array, got ${String(shape)}`);
  }
  const s = [...shape];
  const infer = s.indexOf(-1);
  if (infer >= 0) {
    if (s.indexOf(-1, infer + 1) >= 0) {
      throw new RangeError(`reshape: only one -1 is allowed, got ${fmtShape(s)}`);
    }
    const rest = sizeOf(s.filter((_, i) => i !== infer));
    if (rest === 0 || x.size % rest !== 0) {
      throw new RangeError(
        `reshape: cannot reshape ${fmtShape(x.shape)} (${x.size} entries) into ${fmtShape(s)}`,
      );
    }
    s[infer] = x.size / rest;
  }
  checkShape("reshape", s);
  if (sizeOf(s) !== x.size) {
    throw new RangeError(
      `reshape: cannot reshape ${fmtShape(x.shape)} (${x.size} entries) into ${fmtShape(s)} (${
        sizeOf(s)
      } entries)`,
    );
  }
  if (shapesEqual(s, x.shape)) return same("reshape", x);
  return bind("reshape", [x], { shape: s });
}

/**
 * Permutes axes; `perm` defaults to reversing them.
 *
 * @example
 * ```ts
 * import { transpose, zeros } from "@curvature/curvature";
 * const x = zeros([2, 3, 4]);
 * console.log(transpose(x).shape, transpose(x, [0, 2, 1]).shape); // [4, 3, 2] [2, 4, 3]
 * ```
 */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  checkTensor("transpose", x);
  const p = perm
    ? perm.map((a) => normAxis("transpose", a, x.shape))
    : [...Array(x.rank).keys()].reverse();
  if (p.length !== x.rank || new Set(p).size !== p.length) {
    throw new RangeError(
      `transpose: ${JSON.stringify(perm)} is not a permutation of the ${x.rank} axes of ${
        fmtShape(x.shape)
      }`,
    );
  }
  if (p.every((a, i) => a === i)) return same("transpose", x);
  return bind("transpose", [x], { perm: p });
}

/**
 * @internal The identity, with x computed where it stands (JAX's `optimization_barrier`):
 * composites that read one value through several views per step (halving trees, shifted
 * sums) put it between steps, so fused kernels do not recompute the whole chain per view.
 */
export function barrier(x: Tensor): Tensor {
  checkTensor("barrier", x);
  return bind("barrier", [x], {});
}

/**
 * Swaps the last two axes (a matrix transpose over any batch dims).
 *
 * @example
 * ```ts
 * import { mT, zeros } from "@curvature/curvature";
 * console.log(mT(zeros([5, 2, 3])).shape); // [5, 3, 2]
 * ```
 */
export function mT(x: Tensor): Tensor {
  if (x.rank < 2) {
    throw new RangeError(`mT: expected at least 2 dimensions, got ${fmtShape(x.shape)}`);
  }
  const p = [...Array(x.rank).keys()];
  [p[x.rank - 2], p[x.rank - 1]] = [p[x.rank - 1], p[x.rank - 2]];
  return transpose(x, p);
}

/**
 * Broadcasts `x` to `shape` (NumPy rules).
 *
 * @example
 * ```ts
 * import { broadcastTo, tensor } from "@curvature/curvature";
 * console.log(await broadcastTo(tensor([1, 2]), [2, 2]).toArray()); // [[1, 2], [1, 2]]
 * ```
 */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor("broadcastTo", x);
  const s = checkShape("broadcastTo", shape);
  const b = broadcastShapes("broadcastTo", x.shape, s);
  if (!shapesEqual(b, s)) {
    throw new RangeError(`broadcastTo: cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(s)}`);
  }
  if (shapesEqual(x.shape, s)) return same("broadcastTo", x);
  return bind("broadcastTo", [x], { shape: s });
}

/** @internal Sums `g` down to `shape` (the adjoint of broadcasting `shape` up to g's shape). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return tidy(() => reshape(axes.length ? sum(g, axes) : g, shape));
}

/**
 * Inserts a size-1 axis at `axis`.
 *
 * @example
 * ```ts
 * import { expandDims, zeros } from "@curvature/curvature";
 * console.log(expandDims(zeros([3]), 0).shape, expandDims(zeros([3]), -1).shape); // [1, 3] [3, 1]
 * ```
 */
export function expandDims(x: Tensor, axis: number): Tensor {
  checkTensor("expandDims", x);
  const a = normAxis("expandDims", axis, x.rank + 1);
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

/**
 * Removes size-1 axes (all of them, or those listed).
 *
 * @example
 * ```ts
 * import { squeeze, zeros } from "@curvature/curvature";
 * const x = zeros([1, 3, 1]);
 * console.log(squeeze(x).shape, squeeze(x, 0).shape); // [3] [3, 1]
 * ```
 */
export function squeeze(x: Tensor, axis?: number | readonly number[]): Tensor {
  checkTensor("squeeze", x);
  const axes = axis === undefined
    ? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
    : (typeof axis === "number" ? [axis] : [...axis]).map((a) => normAxis("squeeze", a, x.shape));
  for (const a of axes) {
    if (x.shape[a] !== 1) {
      throw new RangeError(
        `squeeze: axis ${a} of ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`,
      );
    }
  }
  return reshape(x, x.shape.filter((_, i) => !axes.includes(i)));
}

/** Resolves one axis of a NumPy slice; ±Infinity means "to the end" in either direction. */
function resolveSlice(n: number, start: number, stop: number, step: number): [number, number] {
  const norm = (v: number, lo: number, hi: number) => {
    const w = v < 0 ? v + n : v;
    return Math.min(Math.max(w, lo), hi);
  };
  if (step > 0) {
    const s = norm(start, 0, n), e = norm(stop, 0, n);
    return [s, Math.max(0, Math.ceil((e - s) / step))];
  }
  const s = norm(start, -1, n - 1), e = norm(stop, -1, n - 1);
  return [s, Math.max(0, Math.ceil((e - s) / step))];
}

/**
 * NumPy-style slicing of the leading axes (later axes are kept whole): `start`, `stop`
 * and optional `step` per axis; negative indices count from the end, out-of-range ones
 * clamp, and ±Infinity means "through the end" for either sign of step.
 *
 * @example
 * ```ts
 * import { arange, slice } from "@curvature/curvature";
 * const x = arange(10);
 * console.log(await slice(x, [1], [8], [3]).toArray());           // [1, 4, 7]
 * console.log(await slice(x, [-1], [-Infinity], [-4]).toArray()); // [9, 5, 1]
 * ```
 */
export function slice(
  x: Tensor,
  start: readonly number[],
  stop: readonly number[],
  step?: readonly number[],
): Tensor {
  checkTensor("slice", x);
  const k = start.length;
  if (stop.length !== k || (step && step.length !== k) || k > x.rank) {
    throw new RangeError(
      `slice: start ${JSON.stringify(start)}, stop ${JSON.stringify(stop)} and step ${
        JSON.stringify(step)
      } ` +
        `must have one entry per sliced axis (at most ${x.rank} for shape ${fmtShape(x.shape)})`,
    );
  }
  const st: number[] = [], sp: number[] = [], shape: number[] = [];
  for (let d = 0; d < x.rank; d++) {
    const n = x.shape[d];
    if (d >= k) {
      st.push(0);
      sp.push(1);
      shape.push(n);
      continue;
    }
    const s = step ? step[d] : 1;
    for (const v of [start[d], stop[d], s]) {
      if (
        typeof v !== "number" || Number.isNaN(v) || (!Number.isInteger(v) && Number.isFinite(v))
      ) {
        throw new RangeError(
          `slice: axis ${d}: bounds and steps must be integers (or ±Infinity), got ${v}`,
        );
      }
    }
    if (s === 0 || !Number.isFinite(s)) {
      throw new RangeError(
        `slice: axis ${d} of ${fmtShape(x.shape)}: step must be a non-zero integer, got ${s}`,
      );
    }
    const [first, size] = resolveSlice(n, start[d], stop[d], s);
    st.push(size === 0 ? 0 : first);
    sp.push(s);
    shape.push(size);
  }
  if (shapesEqual(shape, x.shape) && sp.every((s) => s === 1)) return same("slice", x);
  return bind("slice", [x], { start: st, step: sp, shape });
}

/**
 * Pads each axis with `[before, after]` entries of `value`.
 *
 * @example
 * ```ts
 * import { pad, tensor } from "@curvature/curvature";
 * console.log(await pad(tensor([1, 2]), [[1, 2]]).toArray()); // [0, 1, 2, 0, 0]
 * ```
 */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  checkTensor("pad", x);
  if (!Array.isArray(pads) || pads.length !== x.rank) {
    throw new RangeError(
      `pad: expected ${x.rank} [before, after] pairs for shape ${fmtShape(x.shape)}, got ${
        JSON.stringify(pads)
      }`,
    );
  }
  for (const p of pads) {
    if (!Array.isArray(p) || p.length !== 2 || !p.every((v) => Number.isSafeInteger(v) && v >= 0)) {
      throw new RangeError(
        `pad: each pad must be [before, after] with non-negative integers, got ${
          JSON.stringify(p)
        }`,
      );
    }
  }
  if (typeof value !== "number") throw new TypeError(`pad: value must be a number`);
  if (pads.every((p) => p[0] === 0 && p[1] === 0)) return same("pad", x);
  return bind("pad", [x], { pads: pads.map((p) => [p[0], p[1]] as const), value });
}

/**
 * Joins tensors along an existing axis.
 *
 * @example
 * ```ts
 * import { concat, tensor } from "@curvature/curvature";
 * console.log(await concat([tensor([1, 2]), tensor([3])]).toArray()); // [1, 2, 3]
 * ```
 */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) {
    throw new RangeError("concat: expected a non-empty array of tensors");
  }
  xs.forEach((x, i) => checkTensor("concat", x, `tensor ${i}`));
  const r = xs[0].rank;
  const a = normAxis("concat", axis, xs[0].shape);
  for (const x of xs) {
    if (
      x.rank !== r || x.shape.some((d: number, i: number) => i !== a && d !== xs[0].shape[i]) ||
      x.dtype !== xs[0].dtype
    ) {
      throw new RangeError(
        `concat: tensors must match in dtype and in every axis but ${a}; got ${
          xs.map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(", ")
        }`,
      );
    }
  }
  if (xs.length === 1) return same("concat", xs[0]);
  return bind("concat", xs, { axis: a });
}

/**
 * Stacks tensors of one shape along a new axis.
 *
 * @example
 * ```ts
 * import { stack, tensor } from "@curvature/curvature";
 * console.log(await stack([tensor([1, 2]), tensor([3, 4])], 1).toArray()); // [[1, 3], [2, 4]]
 * ```
 */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) {
    throw new RangeError("stack: expected a non-empty array of tensors");
  }
  xs.forEach((x, i) => checkTensor("stack", x, `tensor ${i}`));
  for (const x of xs) {
    if (!shapesEqual(x.shape, xs[0].shape)) {
      throw new RangeError(
        `stack: tensors must have one shape, got ${xs.map((t) => fmtShape(t.shape)).join(", ")}`,
      );
    }
  }
  const a = normAxis("stack", axis, xs[0].rank + 1);
  return tidy(() => concat(xs.map((x) => expandDims(x, a)), a));
}

/** Index tensor for gather/scatter, range-checked on the host; negative indices wrap once. */
function indexTensor(
  op: string,
  indices: Tensor | readonly number[],
  axis: number,
  shape: readonly number[],
  x: Tensor,
): { idx: Tensor } {
  const len = shape[axis];
  let host: Int32Array;
  let given: Tensor | null = null;
  if (indices instanceof Tensor) {
    if (indices.dtype !== "i32") {
      throw new TypeError(
        `${op}: indices must be an i32 tensor (tensor(values, { dtype: "i32" })), got ${indices.dtype}`,
      );
    }
    if (!indices._index) {
      throw new TypeError(
        `${op}: index tensors must be made from host values (tensor(values, { dtype: "i32" }))`,
      );
    }
    if (indices.device !== x.device) {
      throw new Error(
        `${op}: indices are on ${indices.device.kind} but the tensor is on ${x.device.kind}`,
      );
    }
    given = indices;
    host = indices._index.host;
  } else if (Array.isArray(indices)) {
    host = Int32Array.from(indices as number[]);
    if (host.some((v, i) => v !== indices[i])) {
      throw new RangeError(`${op}: indices must be integers`);
    }
  } else {
    throw new TypeError(`${op}: indices must be an i32 Tensor or an array of integers`);
  }
  let negative = false;
  for (let i = 0; i < host.length; i++) {
    const v = host[i];
    if (v < -len || v >= len) {
      throw new RangeError(
        `${op}: index ${v} at position ${i} is out of range for axis ${axis} (size ${len}) ` +
          `of shape ${fmtShape(shape)}`,
      );
    }
    if (v < 0) negative = true;
  }
  if (given && !negative) return { idx: given };
  const norm = host.map((v) => (v < 0 ? v + len : v));
  return { idx: fromHost(op, norm, given ? given.shape : [host.length], x.device) };
}

/**
 * Takes entries along `axis`: the result's shape is `x.shape[:axis] + indices.shape +
 * x.shape[axis+1:]`. Indices are an i32 tensor made from host values, or an array.
 *
 * @example
 * ```ts
 * import { gather, tensor } from "@curvature/curvature";
 * const x = tensor([[1, 2], [3, 4], [5, 6]]);
 * console.log(await gather(x, [2, 0], 0).toArray()); // [[5, 6], [1, 2]]
 * ```
 */
export function gather(x: Tensor, indices: Tensor | readonly number[], axis = 0): Tensor {
  checkTensor("gather", x);
  const a = normAxis("gather", axis, x.shape);
  return tidy(() => {
    const { idx } = indexTensor("gather", indices, a, x.shape, x);
    const flat = idx.rank === 1 ? idx : reshape(idx, [idx.size]);
    const y = bind("gather", [x, flat], { axis: a });
    return reshape(y, [...x.shape.slice(0, a), ...idx.shape, ...x.shape.slice(a + 1)]);
  });
}

/**
 * The adjoint of `gather`: a tensor of `shape`, zero except that each slice of `updates`
 * is added at its index along `axis` (repeated indices add up).
 *
 * @example
 * ```ts
 * import { scatterAdd, tensor } from "@curvature/curvature";
 * console.log(await scatterAdd(tensor([1, 2, 3]), [0, 2, 0], 0, [3]).toArray()); // [4, 0, 2]
 * ```
 */
export function scatterAdd(
  updates: Tensor,
  indices: Tensor | readonly number[],
  axis: number,
  shape: readonly number[],
): Tensor {
  checkTensor("scatterAdd", updates);
  const s = checkShape("scatterAdd", shape);
  const a = normAxis("scatterAdd", axis, s);
  return tidy(() => {
    const { idx } = indexTensor("scatterAdd", indices, a, s, updates);
    const expect = [...s.slice(0, a), ...idx.shape, ...s.slice(a + 1)];
    if (!shapesEqual(expect, updates.shape)) {
      throw new RangeError(
        `scatterAdd: updates of shape ${fmtShape(updates.shape)} do not match indices ` +
          `${fmtShape(idx.shape)} into ${fmtShape(s)} along axis ${a} (expected ${
            fmtShape(expect)
          })`,
      );
    }
    const flat = idx.rank === 1 ? idx : reshape(idx, [idx.size]);
    const g = reshape(updates, [...s.slice(0, a), idx.size, ...s.slice(a + 1)]);
    return bind("scatterAdd", [g, flat], { axis: a, shape: s });
  });
}

/**
 * Reverses the order of entries along `axis` (every axis when omitted), as NumPy's `flip`:
 * a slice with step −1, so it is a strided view for the backends.
 *
 * @example
 * ```ts
 * import { flip, tensor } from "@curvature/curvature";
 * const x = tensor([[1, 2], [3, 4]]);
 * console.log(await flip(x, 1).toArray(), await flip(x).toArray()); // [[2, 1], [4, 3]] [[4, 3], [2, 1]]
 * ```
 */
export function flip(x: Tensor, axis?: number | readonly number[]): Tensor {
  checkTensor("flip", x);
  const axes = normAxes("flip", axis, x.shape);
  const rev = (i: number) => axes.includes(i) && x.shape[i] > 1;
  if (!x.shape.some((_, i) => rev(i))) return same("flip", x);
  return slice(
    x,
    x.shape.map((d, i) => (rev(i) ? d - 1 : 0)),
    x.shape.map((d, i) => (rev(i) ? -Infinity : d)),
    x.shape.map((_, i) => (rev(i) ? -1 : 1)),
  );
}

/**
 * Rotates entries by `shift` along `axis`, as NumPy's `roll`: entries pushed past the end
 * come back at the start. Without `axis` the flattened array is rolled and reshaped back;
 * `shift` and `axis` may be lists of equal length (one shift per axis).
 *
 * @example
 * ```ts
 * import { roll, tensor } from "@curvature/curvature";
 * console.log(await roll(tensor([1, 2, 3, 4, 5]), 2).toArray()); // [4, 5, 1, 2, 3]
 * console.log(await roll(tensor([[1, 2], [3, 4]]), [1, -1], [0, 1]).toArray()); // [[4, 3], [2, 1]]
 * ```
 */
export function roll(
  x: Tensor,
  shift: number | readonly number[],
  axis?: number | readonly number[],
): Tensor {
  checkTensor("roll", x);
  const shifts = typeof shift === "number" ? [shift] : [...shift];
  if (!shifts.every((s) => Number.isSafeInteger(s))) {
    throw new RangeError(`roll: shifts must be integers, got ${JSON.stringify(shift)}`);
  }
  if (axis === undefined) {
    if (shifts.length !== 1) {
      throw new RangeError("roll: without an axis, give one shift (the flattened array is rolled)");
    }
    return tidy(() => reshape(roll(reshape(x, [x.size]), shifts[0], 0), x.shape));
  }
  const axes = (typeof axis === "number" ? [axis] : [...axis]).map((a) =>
    normAxis("roll", a, x.shape)
  );
  if (axes.length !== shifts.length) {
    throw new RangeError(
      `roll: ${shifts.length} shift(s) for ${axes.length} axis/axes; give one shift per axis`,
    );
  }
  return tidy(() => {
    let t = x;
    axes.forEach((a, k) => {
      const n = t.shape[a];
      const s = n === 0 ? 0 : ((shifts[k] % n) + n) % n;
      if (s === 0) return;
      const cut = (from: number, to: number) =>
        slice(
          t,
          t.shape.map((_, i) => (i === a ? from : 0)),
          t.shape.map((d, i) => (i === a ? to : d)),
        );
      t = concat([cut(n - s, n), cut(0, n - s)], a);
    });
    return t === x ? same("roll", x) : t;
  });
}

/**
 * Moves axes to new positions, the others keeping their order (NumPy's `moveaxis`):
 * `source` and `destination` are one axis each or equal-length lists.
 *
 * @example
 * ```ts
 * import { moveaxis, zeros } from "@curvature/curvature";
 * console.log(moveaxis(zeros([2, 3, 4]), 0, -1).shape); // [3, 4, 2]
 * ```
 */
export function moveaxis(
  x: Tensor,
  source: number | readonly number[],
  destination: number | readonly number[],
): Tensor {
  checkTensor("moveaxis", x);
  const list = (v: number | readonly number[]) => (typeof v === "number" ? [v] : [...v]);
  const src = list(source).map((a) => normAxis("moveaxis", a, x.shape));
  const dst = list(destination).map((a) => normAxis("moveaxis", a, x.shape));
  if (
    src.length !== dst.length || new Set(src).size < src.length || new Set(dst).size < dst.length
  ) {
    throw new RangeError(
      `moveaxis: source ${JSON.stringify(source)} and destination ${
        JSON.stringify(destination)
      } must list as many distinct axes`,
    );
  }
  const perm: number[] = [...Array(x.rank).keys()].filter((i) => !src.includes(i));
  // insert in order of destination so that earlier insertions do not shift later ones
  [...dst.keys()].sort((i, j) => dst[i] - dst[j]).forEach((k) => perm.splice(dst[k], 0, src[k]));
  return transpose(x, perm);
}

/**
 * Exchanges two axes (NumPy's `swapaxes`).
 *
 * @example
 * ```ts
 * import { swapaxes, zeros } from "@curvature/curvature";
 * console.log(swapaxes(zeros([2, 3, 4]), 0, 2).shape); // [4, 3, 2]
 * ```
 */
export function swapaxes(x: Tensor, axis1: number, axis2: number): Tensor {
  checkTensor("swapaxes", x);
  const a = normAxis("swapaxes", axis1, x.shape), b = normAxis("swapaxes", axis2, x.shape);
  const perm = [...Array(x.rank).keys()];
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return transpose(x, perm);
}

/**
 * Splits `x` along `axis` (default 0), as NumPy's `split`: a number `n` cuts it into n equal
 * parts (an error unless the length divides), a list of indices cuts before each of them
 * (indices past the end give empty parts). The parts are views.
 *
 * @example
 * ```ts
 * import { arange, split } from "@curvature/curvature";
 * const [a, b] = split(arange(6), 2); // [0, 1, 2] and [3, 4, 5]
 * const [w, bias] = split(arange(8), [6]); // unpack a flat parameter vector
 * console.log(await a.toArray(), await b.toArray(), w.shape, bias.shape); // … [6] [2]
 * ```
 */
export function split(
  x: Tensor,
  indicesOrSections: number | readonly number[],
  axis = 0,
): Tensor[] {
  checkTensor("split", x);
  const a = normAxis("split", axis, x.shape);
  const n = x.shape[a];
  let cuts: number[];
  if (typeof indicesOrSections === "number") {
    const k = indicesOrSections;
    if (!Number.isInteger(k) || k < 1 || n % k !== 0) {
      throw new RangeError(
        `split: cannot split axis ${a} of length ${n} (shape ${
          fmtShape(x.shape)
        }) into ${k} equal parts; give a divisor of ${n} or a list of indices`,
      );
    }
    cuts = [...Array(k - 1).keys()].map((i) => ((i + 1) * n) / k);
  } else {
    cuts = [...indicesOrSections];
    if (!cuts.every((c) => Number.isInteger(c))) {
      throw new RangeError(`split: indices must be integers, got ${JSON.stringify(cuts)}`);
    }
    // NumPy's rules for each bound: negative counts from the end, then clamp to [0, n]
    cuts = cuts.map((c) => Math.min(Math.max(c < 0 ? c + n : c, 0), n));
  }
  const bounds = [0, ...cuts, n];
  return bounds.slice(0, -1).map((from, i) => {
    const to = Math.max(from, bounds[i + 1]);
    return slice(
      x,
      x.shape.slice(0, a + 1).map((_, d) => (d === a ? from : 0)),
      x.shape.slice(0, a + 1).map((dd, d) => (d === a ? to : dd)),
    );
  });
}

/**
 * Repeats `x` `reps[i]` times along axis i (NumPy's `tile`): a shorter `reps` is padded with
 * leading 1s, a shorter shape with leading size-1 axes.
 *
 * @example
 * ```ts
 * import { tensor, tile } from "@curvature/curvature";
 * console.log(await tile(tensor([1, 2]), [2, 2]).toArray()); // [[1, 2, 1, 2], [1, 2, 1, 2]]
 * ```
 */
export function tile(x: Tensor, reps: number | readonly number[]): Tensor {
  checkTensor("tile", x);
  const r0 = typeof reps === "number" ? [reps] : [...reps];
  if (!r0.every((r) => Number.isInteger(r) && r >= 0)) {
    throw new RangeError(`tile: reps must be non-negative integers, got ${JSON.stringify(reps)}`);
  }
  const rank = Math.max(x.rank, r0.length);
  const r = [...Array(rank - r0.length).fill(1), ...r0];
  const s = [...Array(rank - x.rank).fill(1), ...x.shape];
  return tidy(() => {
    const spread = reshape(x, s.flatMap((d) => [1, d]));
    const big = broadcastTo(spread, s.flatMap((d, i) => [r[i], d]));
    return reshape(big, s.map((d, i) => d * r[i]));
  });
}

/**
 * Repeats each entry `repeats` times along `axis` (NumPy's `repeat` with one count); without
 * an axis the flattened tensor is repeated.
 *
 * @example
 * ```ts
 * import { repeat, tensor } from "@curvature/curvature";
 * console.log(await repeat(tensor([[1, 2], [3, 4]]), 2, 1).toArray()); // [[1, 1, 2, 2], [3, 3, 4, 4]]
 * console.log(await repeat(tensor([1, 2]), 3).toArray()); // [1, 1, 1, 2, 2, 2]
 * ```
 */
export function repeat(x: Tensor, repeats: number, axis?: number): Tensor {
  checkTensor("repeat", x);
  if (!Number.isInteger(repeats) || repeats < 0) {
    throw new RangeError(
      `repeat: repeats must be a non-negative integer, got ${describeValue(repeats)}`,
    );
  }
  if (axis === undefined) return tidy(() => repeat(reshape(x, [x.size]), repeats, 0));
  const a = normAxis("repeat", axis, x.shape);
  return tidy(() => {
    const s = [...x.shape];
    const spread = reshape(x, [...s.slice(0, a + 1), 1, ...s.slice(a + 1)]);
    const big = broadcastTo(spread, [...s.slice(0, a + 1), repeats, ...s.slice(a + 1)]);
    s[a] *= repeats;
    return reshape(big, s);
  });
}
