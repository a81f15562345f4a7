/** Helpers shared by the op functions: turning numbers into tensors, operand checks. */
import type { Dtype } from "../dtype.ts";
import { Device, getDefaultDevice } from "../device.ts";
import { Tensor, type TensorLike } from "../tensor.ts";
import { fmtShape } from "../shape.ts";
import { countBytes, countTensor, keep } from "../memory.ts";

/**
 * Per Device object, not per kind: two WebGPU devices (tunings, a replaced lost device) share
 * nothing. Keyed by dtype, then by the number itself (−0 under its own key: a Map takes −0
 * for 0), so a lookup makes no string.
 */
const constCaches = new WeakMap<Device, Map<string, Map<unknown, Tensor>>>();
const NEG_ZERO = "-0";
const CONST_CACHE_MAX = 4096;
const hostValues = new WeakMap<Tensor, number>();

/**
 * The value of a constant made from a plain number (`x.mul(2)`'s 2), known on the host
 * without a read-back; undefined for any other tensor. Rules use it to take exact forms
 * (an integer exponent's derivative never meets 0·∞).
 */
export function hostScalar(t: Tensor): number | undefined {
  return hostValues.get(t);
}

/**
 * A 0-d constant. Scalars in expressions (`x.mul(2)`) are cached per device and dtype and
 * pinned (never freed, never counted), so they cost one upload, not one per use.
 */
export function scalar(value: number, dtype: Dtype, device: Device): Tensor {
  let byDtype = constCaches.get(device);
  if (!byDtype) constCaches.set(device, byDtype = new Map());
  let constCache = byDtype.get(dtype);
  if (!constCache) byDtype.set(dtype, constCache = new Map());
  const key = Object.is(value, -0) ? NEG_ZERO : value;
  let t = constCache.get(key);
  if (t && !t.disposed) return t;
  const arr = dtype === "f64"
    ? new Float64Array([value])
    : dtype === "i32"
    ? new Int32Array([value])
    : new Float32Array([value]);
  t = Tensor._fromStorage(device.backend.upload(arr), [], dtype, device);
  hostValues.set(t, arr[0]);
  if (constCache.size < CONST_CACHE_MAX) {
    // Pinned constants live for the program; keep them out of memory() and of tidy scopes.
    pin(t);
    constCache.set(key, t);
  }
  return t;
}

/** @internal Makes `t` a cached constant: dispose() ignores it, memory() does not count it. */
export function pin(t: Tensor): Tensor {
  t._pin();
  untrack(t);
  return t;
}

/** @internal Frees a tensor made by `pin` (counted back first, so memory() stays balanced). */
export function unpin(t: Tensor): void {
  if (!t._pinned) return;
  t._pinned = false;
  countTensor(t.device.kind, 1);
  countBytes(t.device.kind, t._ref!.storage.byteLength);
  t.dispose();
}

function untrack(t: Tensor): void {
  keep(t);
  countTensor(t.device.kind, -1);
  countBytes(t.device.kind, -t._ref!.storage.byteLength);
}

/** Throws unless `x` is a Tensor; `op` and `what` name the call and the argument. */
export function checkTensor(op: string, x: unknown, what = "argument"): Tensor {
  if (!(x instanceof Tensor)) {
    throw new TypeError(`${op}: ${what} must be a Tensor, got ${describeValue(x)}`);
  }
  return x;
}

export function describeValue(x: unknown): string {
  if (x === null) return "null";
  if (x === undefined) return "undefined";
  if (Array.isArray(x)) return `an array (wrap it with tensor(...))`;
  if (typeof x === "object") return (x as object).constructor?.name ?? "an object";
  return `${typeof x} ${String(x)}`;
}

/** Turns the operands of an n-ary op into tensors of one dtype and device. */
export function operands(op: string, xs: readonly TensorLike[]): Tensor[] {
  // the common case: tensors of one dtype already (every op of a traced function pays this)
  if (xs.length === 2) {
    const a = xs[0], b = xs[1];
    if (a instanceof Tensor && b instanceof Tensor && a.dtype === b.dtype) return [a, b];
  }
  const like = xs.find((x): x is Tensor => x instanceof Tensor);
  if (!like) {
    throw new TypeError(
      `${op}: at least one operand must be a Tensor, got ${xs.map(describeValue).join(", ")}`,
    );
  }
  const out = xs.map((x, i) => {
    if (x instanceof Tensor) return x;
    if (typeof x === "number") return scalar(x, like.dtype, like.device);
    throw new TypeError(
      `${op}: operand ${i} must be a Tensor or a number, got ${describeValue(x)}`,
    );
  });
  for (const x of out) {
    if (x.dtype !== like.dtype) {
      throw new TypeError(
        `${op}: operands have different dtypes (${
          out.map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(" and ")
        }); ` +
          `convert one with astype()`,
      );
    }
  }
  return out;
}

/** `keepdims` as a boolean: `sum(x, 0, "no")` must not silently mean true. */
export function checkKeepdims(op: string, keepdims: unknown): boolean {
  if (typeof keepdims !== "boolean") {
    throw new TypeError(`${op}: keepdims must be true or false, got ${describeValue(keepdims)}`);
  }
  return keepdims;
}

/** Throws unless `x` holds floating-point values. */
export function checkFloat(op: string, x: Tensor): void {
  if (x.dtype === "i32") {
    throw new TypeError(
      `${op}: expected a floating-point tensor (f32 or f64), got i32 of shape ${fmtShape(x.shape)}`,
    );
  }
}

/** The device from options (checked), else the default device. */
export function pickDevice(d: Device | undefined, op = "device option"): Device {
  if (d === undefined) return getDefaultDevice();
  if (!(d instanceof Device)) {
    throw new TypeError(
      `${op}: device must be a Device from device(), got ${describeValue(d)}` +
        (typeof d === "string" ? ` (use await device({ backend: ${JSON.stringify(d)} }))` : ""),
    );
  }
  return d;
}
