/** Shape arithmetic shared by the tensor layer and both backends. */

/** Most dimensions a tensor may have after adjacent dimensions are merged (GPU index math). */
export const MAX_RANK = 8;

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i];
  return n;
}

/** A level of the table of frozen shapes: arrays by their next dimension. */
interface ShapeLevel {
  next: Map<number, ShapeLevel> | null;
  shape: readonly number[] | null;
}

const frozenRoot: ShapeLevel = { next: null, shape: Object.freeze([]) };
/** Most shapes kept (a program has few; one that keeps making new ones gets copies). */
const FROZEN_MAX = 4096;
let frozenCount = 0;

/**
 * A frozen array equal to `shape`, the same array for equal shapes: tensors hold their
 * shape frozen (callers cannot change it under them), and freezing an array costs V8 a
 * runtime call and a copy, which every op paid for its result. Shared, a shape is frozen
 * once per program. Bounded: past FROZEN_MAX distinct shapes, a fresh frozen copy.
 */
export function frozenShape(shape: readonly number[]): readonly number[] {
  let level = frozenRoot;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    let to = level.next?.get(d);
    if (to === undefined) {
      if (frozenCount >= FROZEN_MAX) return Object.freeze([...shape]);
      to = { next: null, shape: null };
      (level.next ??= new Map()).set(d, to);
    }
    level = to;
  }
  if (level.shape === null) {
    if (frozenCount >= FROZEN_MAX) return Object.freeze([...shape]);
    frozenCount++;
    level.shape = Object.freeze([...shape]);
  }
  return level.shape;
}

/** Row-major strides in elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** `[2,3]` style text for error messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

export function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Throws unless every entry is a non-negative safe integer. */
export function checkShape(op: string, shape: readonly number[]): number[] {
  if (!Array.isArray(shape)) {
    throw new TypeError(`${op}: shape must be an array of sizes, got ${String(shape)}`);
  }
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(
        `${op}: shape [${shape.map(String).join(",")}] has an invalid size ${String(d)}; ` +
          `sizes must be non-negative integers`,
      );
    }
  }
  return [...shape];
}

/** NumPy broadcasting of two or more shapes; throws naming the op and the shapes. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  // the common cases: two equal shapes, or a scalar and a shape (copied by spreading: a
  // tensor's shape is frozen, and V8's slice() of a frozen array is some 20× slower)
  if (shapes.length === 2) {
    const a = shapes[0], b = shapes[1];
    if (b.length === 0 || shapesEqual(a, b)) return [...a];
    if (a.length === 0) return [...b];
  }
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else {
        throw new RangeError(
          `${op}: shapes ${shapes.map(fmtShape).join(" and ")} cannot be broadcast together ` +
            `(dimension ${i - s.length} is ${d} against ${out[o]})`,
        );
      }
    }
  }
  return out;
}

/**
 * Strides that read an input of `shape` as if broadcast to `outShape` (0 where broadcast).
 * The result has `outShape.length` entries.
 */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const st = stridesOf(shape);
  const r = outShape.length;
  const out = new Array<number>(r).fill(0);
  for (let i = 0; i < shape.length; i++) {
    const o = r - shape.length + i;
    out[o] = shape[i] === 1 && outShape[o] !== 1 ? 0 : st[i];
  }
  return out;
}

/**
 * Normalises one axis (negative counts from the end); throws naming the op, and the shape
 * when given one (else the rank).
 */
export function normAxis(
  op: string,
  axis: number,
  rankOrShape: number | readonly number[],
): number {
  const rank = typeof rankOrShape === "number" ? rankOrShape : rankOrShape.length;
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    const what = typeof rankOrShape === "number"
      ? `a tensor of rank ${rank}`
      : `a tensor of shape ${fmtShape(rankOrShape)} (rank ${rank})`;
    throw new RangeError(`${op}: axis ${axis} is out of range for ${what}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalises an axis list (undefined = all axes); sorted, deduplicated check. */
export function normAxes(
  op: string,
  axes: number | readonly number[] | undefined,
  rankOrShape: number | readonly number[],
): number[] {
  const rank = typeof rankOrShape === "number" ? rankOrShape : rankOrShape.length;
  if (axes === undefined || axes === null) return [...Array(rank).keys()];
  const list = typeof axes === "number" ? [axes] : [...axes];
  const out = list.map((a) => normAxis(op, a, rankOrShape)).sort((a, b) => a - b);
  for (let i = 1; i < out.length; i++) {
    if (out[i] === out[i - 1]) {
      throw new RangeError(`${op}: axis ${out[i]} is repeated in ${JSON.stringify(list)}`);
    }
  }
  return out;
}

/**
 * Merges adjacent dimensions that are contiguous for every stride set, and drops size-1
 * dimensions. Returns the smaller shape and matching strides; used to keep GPU index math
 * within MAX_RANK and to spot contiguous fast paths.
 */
export function coalesce(
  shape: readonly number[],
  strideSets: (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strideSets.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = outShape.length - 1;
    if (
      last >= 0 &&
      strideSets.every((st, k) => outStrides[k][last] === st[i] * shape[i])
    ) {
      outShape[last] *= shape[i];
      strideSets.forEach((st, k) => (outStrides[k][last] = st[i]));
    } else {
      outShape.push(shape[i]);
      strideSets.forEach((st, k) => outStrides[k].push(st[i]));
    }
  }
  return { shape: outShape, strides: outStrides };
}
