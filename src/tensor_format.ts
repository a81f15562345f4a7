/** How tensors print: values as nested arrays, and the text `console.log` and `toString` show. */
import type { Dtype, TypedArray } from "./dtype.ts";
import type { NestedArray } from "./ops/creation.ts";
import { sizeOf } from "./shape.ts";

/** Tensors up to this many elements print their values. */
export const PRINT_MAX = 100;

/** Flat values of `shape` as nested arrays (a number for a 0-d tensor). */
export function nest(d: ArrayLike<number>, shape: readonly number[]): NestedArray {
  const build = (dim: number, off: number): NestedArray => {
    if (dim === shape.length) return d[off];
    const step = sizeOf(shape.slice(dim + 1));
    return Array.from({ length: shape[dim] }, (_, i) => build(dim + 1, off + i * step));
  };
  return build(0, 0);
}

/** f32 values with the 7 significant digits they hold (0.1, not 0.10000000149011612). */
function number(v: number, dtype: Dtype): string {
  return dtype === "f32" && Number.isFinite(v) ? String(Number(v.toPrecision(7))) : String(v);
}

/**
 * The values as nested brackets; with `multiline`, each row of a matrix (or deeper) on its
 * own line, aligned under the brackets, as NumPy prints.
 */
export function formatValues(
  d: TypedArray,
  shape: readonly number[],
  dtype: Dtype,
  multiline: boolean,
): string {
  const texts = Array.from(d, (v) => number(v, dtype));
  const width = multiline && shape.length > 1 ? Math.max(0, ...texts.map((t) => t.length)) : 0;
  const fmt = (dim: number, off: number, indent: string): string => {
    if (dim === shape.length) return texts[off].padStart(width);
    const step = sizeOf(shape.slice(dim + 1));
    const parts = Array.from(
      { length: shape[dim] },
      (_, i) => fmt(dim + 1, off + i * step, indent + " "),
    );
    const sep = multiline && dim < shape.length - 1 ? `,\n${indent} ` : ", ";
    return `[${parts.join(sep)}]`;
  };
  return fmt(0, 0, "");
}
