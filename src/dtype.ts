/** Element types. `f64` lives only on the CPU backend (WGSL has no f64); `i32` holds indices. */
export type Dtype = "f32" | "f64" | "i32";
/** The floating-point element types, the only ones arithmetic accepts. */
export type FloatDtype = "f32" | "f64";

/** A typed array of one of the supported element types. */
export type TypedArray = Float32Array | Float64Array | Int32Array;

/** Bytes per element. */
export function itemSize(dtype: Dtype): number {
  return dtype === "f64" ? 8 : 4;
}

/** A new zero-filled typed array of `dtype`. */
export function allocArray(dtype: Dtype, size: number): TypedArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(size);
    case "f64":
      return new Float64Array(size);
    case "i32":
      return new Int32Array(size);
  }
}

/** The dtype a typed array holds, or undefined for other array types. */
export function dtypeOfArray(a: unknown): Dtype | undefined {
  if (a instanceof Float32Array) return "f32";
  if (a instanceof Float64Array) return "f64";
  if (a instanceof Int32Array) return "i32";
  return undefined;
}

/** Throws unless `d` names a dtype. */
export function checkDtype(op: string, d: unknown): Dtype {
  if (d === "f32" || d === "f64" || d === "i32") return d;
  throw new TypeError(`${op}: unknown dtype ${JSON.stringify(d)}; expected "f32", "f64" or "i32"`);
}
