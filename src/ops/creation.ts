/** Creation functions: from host data, constants, ranges, identity, and counter-based random draws. */
import { allocArray, checkDtype, type Dtype, dtypeOfArray, type TypedArray } from "../dtype.ts";
import type { Device } from "../device.ts";
import { CpuBackend } from "../backend/cpu/cpu.ts";
import { Tensor } from "../tensor.ts";
import { checkShape, fmtShape, sizeOf } from "../shape.ts";
import { describeValue, pickDevice } from "./common.ts";
import { checkOptions } from "../options.ts";
import type { RandomDist } from "../backend/backend.ts";

/** Options of the creation functions. */
export interface CreateOptions {
  /** Element type: `"f32"` (default), `"f64"` (CPU only) or `"i32"` (indices). */
  dtype?: Dtype;
  /** Device; defaults to `getDefaultDevice()`. */
  device?: Device;
}

/** Options of {@linkcode tensor}. */
export interface TensorOptions extends CreateOptions {
  /** Shape for flat data; inferred from nesting when omitted. */
  shape?: readonly number[];
}

/** Nested arrays of numbers, as accepted by {@linkcode tensor}. */
export type NestedArray = number | readonly NestedArray[];

/** @internal Throws unless `device` can hold `dtype` (WebGPU has no f64). */
export function checkDeviceDtype(op: string, device: Device, dtype: Dtype): void {
  device.backend.alive(op);
  if (!device.backend.dtypes.includes(dtype)) {
    if (dtype === "f64" && device.kind === "webgpu") {
      throw new TypeError(
        `${op}: dtype f64 is not available on WebGPU (WGSL has no 64-bit floats). ` +
          `Use the CPU backend for f64 (device({ backend: "cpu" })), or dtype "f32" on WebGPU.`,
      );
    }
    throw new TypeError(`${op}: dtype ${dtype} is not supported on ${device.kind}`);
  }
}

function checkSize(op: string, device: Device, shape: readonly number[], dtype: Dtype): void {
  const bytes = sizeOf(shape) * (dtype === "f64" ? 8 : 4);
  if (bytes > device.backend.maxStorageBytes) {
    throw new RangeError(
      `${op}: a ${dtype} tensor of shape ${fmtShape(shape)} needs ${bytes} bytes, more than this ` +
        `${device.kind} device's limit of ${device.backend.maxStorageBytes} bytes per buffer ` +
        `(maxStorageBufferBindingSize on WebGPU)`,
    );
  }
}

/** @internal Creates a tensor on `device` from host values (copied). */
export function fromHost(
  op: string,
  data: TypedArray,
  shape: readonly number[],
  device: Device,
): Tensor {
  const dtype = dtypeOfArray(data)!;
  checkDeviceDtype(op, device, dtype);
  checkSize(op, device, shape, dtype);
  const t = Tensor._fromStorage(device.backend.upload(data), shape, dtype, device);
  if (dtype === "i32") t._index = { host: (data as Int32Array).slice() };
  return t;
}

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let d: NestedArray = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    d = d[0];
  }
  return shape;
}

function flatten(
  op: string,
  data: NestedArray,
  shape: readonly number[],
  out: TypedArray,
  check: (v: number, at: number) => void,
): void {
  let at = 0;
  const walk = (v: NestedArray, dim: number, path: number[]) => {
    if (dim === shape.length) {
      if (typeof v !== "number") {
        throw new TypeError(
          `${op}: entry at [${path.join(",")}] is ${
            Array.isArray(v) ? "an array" : typeof v
          }, expected a number (ragged nesting?)`,
        );
      }
      check(v, at);
      out[at++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) {
      throw new TypeError(
        `${op}: ragged nested array: entry at [${path.join(",")}] should be an array of length ${
          shape[dim]
        }`,
      );
    }
    v.forEach((x, i) => walk(x, dim + 1, [...path, i]));
  };
  walk(data, 0, []);
}

/**
 * A tensor from numbers, nested arrays or typed arrays (copied). The dtype defaults to the
 * typed array's (Float64Array → f64, Int32Array → i32) and to f32 otherwise.
 *
 * @example
 * ```ts
 * import { tensor } from "@curvature/curvature";
 * const a = tensor([[1, 2], [3, 4]]);            // f32, shape [2, 2]
 * const b = tensor(new Float64Array([1, 2, 3])); // f64
 * const c = tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3] });
 * console.log(a.shape, b.dtype, c.shape); // [2, 2] f64 [2, 3]
 * ```
 */
export function tensor(data: NestedArray | TypedArray, opts: TensorOptions = {}): Tensor {
  checkOptions("tensor", opts, ["shape", "dtype", "device"]);
  const device = pickDevice(opts.device, "tensor");
  const given = dtypeOfArray(data);
  const dtype = opts.dtype !== undefined ? checkDtype("tensor", opts.dtype) : given ?? "f32";
  const check = valueCheck("tensor", dtype);
  let arr: TypedArray;
  let shape: number[];
  if (given) {
    const src = data as TypedArray;
    if (given !== dtype) src.forEach(check);
    arr = given === dtype ? src.slice() : allocArray(dtype, src.length);
    if (given !== dtype) arr.set(src);
    shape = opts.shape ? checkShape("tensor", opts.shape) : [src.length];
  } else if (typeof data === "number" || Array.isArray(data)) {
    const nested = inferShape(data as NestedArray);
    arr = allocArray(dtype, sizeOf(nested));
    flatten("tensor", data as NestedArray, nested, arr, check);
    shape = opts.shape ? checkShape("tensor", opts.shape) : nested;
  } else {
    throw new TypeError(
      `tensor: expected numbers, nested arrays or a typed array, got ${describeValue(data)}`,
    );
  }
  if (sizeOf(shape) !== arr.length) {
    throw new RangeError(
      `tensor: ${arr.length} values do not fill shape ${fmtShape(shape)} (${
        sizeOf(shape)
      } entries)`,
    );
  }
  return fromHost("tensor", arr, shape, device);
}

/** Largest finite f32. */
const F32_MAX = 3.4028234663852886e38;

/**
 * A check of each value against the dtype it is converted to, run BEFORE the conversion:
 * i32 takes integers in its range only (NaN would become 0, 1e10 wrap around), and f32
 * refuses finite values beyond its range (they would become ±Infinity). NaN and ±Infinity
 * given as such stay what they are in a float dtype.
 */
function valueCheck(op: string, dtype: Dtype): (v: number, at: number) => void {
  if (dtype === "i32") {
    return (v, at) => {
      if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
        throw new RangeError(
          `${op}: i32 values must be integers in [-2^31, 2^31), got ${v} at index ${at}`,
        );
      }
    };
  }
  if (dtype === "f32") {
    return (v, at) => {
      if (Number.isFinite(v) && Math.abs(v) > F32_MAX) {
        throw new RangeError(
          `${op}: ${v} at index ${at} is beyond the f32 range (±3.4e38) and would become ` +
            `${v > 0 ? "" : "-"}Infinity; use dtype "f64" (CPU) or rescale`,
        );
      }
    };
  }
  return () => {};
}

/** A tensor of `shape` filled with `value`. */
export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  return fill("full", shape, value, opts);
}

/** `full` under the name of the function the user called, for its error messages. */
function fill(op: string, shape: readonly number[], value: number, opts: CreateOptions): Tensor {
  checkOptions(op, opts, ["dtype", "device"]);
  const s = checkShape(op, shape);
  const device = pickDevice(opts.device, op);
  const dtype = checkDtype(op, opts.dtype ?? "f32");
  checkDeviceDtype(op, device, dtype);
  checkSize(op, device, s, dtype);
  if (typeof value !== "number") {
    throw new TypeError(`${op}: value must be a number, got ${typeof value}`);
  }
  valueCheck(op, dtype)(value, 0);
  return Tensor._fromStorage(device.backend.fill(dtype, sizeOf(s), value), s, dtype, device);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return fill("zeros", shape, 0, opts);
}

/** A tensor of ones. */
export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return fill("ones", shape, 1, opts);
}

/**
 * Values `start, start + step, …` below `stop` (NumPy `arange`); `arange(n)` is `0 … n-1`.
 *
 * @example
 * ```ts
 * import { arange } from "@curvature/curvature";
 * console.log(await arange(1, 7, 2).toArray()); // [1, 3, 5]
 * ```
 */
export function arange(start: number, stop?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  for (const [k, v] of [["start", start], ["stop", stop], ["step", step]] as const) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new RangeError(`arange: ${k} must be a finite number, got ${v}`);
    }
  }
  if (step === 0) throw new RangeError("arange: step must not be 0");
  checkOptions("arange", opts, ["dtype", "device"]);
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const device = pickDevice(opts.device, "arange");
  const dtype = checkDtype("arange", opts.dtype ?? "f32");
  checkDeviceDtype("arange", device, dtype);
  checkSize("arange", device, [n], dtype);
  // every value is start + i·step: checking the first, the second and the last covers them all
  const check = valueCheck("arange", dtype);
  for (const i of new Set([0, 1, n - 1])) if (i >= 0 && i < n) check(start + i * step, i);
  return Tensor._fromStorage(device.backend.iota(dtype, n, start, step), [n], dtype, device);
}

/**
 * `num` evenly spaced values from `start` to `stop` inclusive (computed on the host, so
 * both backends hold the same values).
 */
export function linspace(
  start: number,
  stop: number,
  num: number,
  opts: CreateOptions = {},
): Tensor {
  if (!Number.isSafeInteger(num) || num < 0) {
    throw new RangeError(`linspace: num must be a non-negative integer, got ${num}`);
  }
  if (!Number.isFinite(start) || !Number.isFinite(stop)) {
    throw new RangeError("linspace: start and stop must be finite");
  }
  checkOptions("linspace", opts, ["dtype", "device"]);
  const dtype = checkDtype("linspace", opts.dtype ?? "f32");
  const device = pickDevice(opts.device, "linspace");
  checkDeviceDtype("linspace", device, dtype);
  checkSize("linspace", device, [num], dtype); // before the host array is allocated
  const a = allocArray(dtype, num);
  const step = num > 1 ? (stop - start) / (num - 1) : 0;
  const check = valueCheck("linspace", dtype); // before the conversion to dtype
  for (let i = 0; i < num; i++) {
    const v = i === num - 1 && num > 1 ? stop : start + i * step;
    check(v, i);
    a[i] = v;
  }
  return fromHost("linspace", a, [num], device);
}

/** Options of {@linkcode eye}. */
export interface EyeOptions extends CreateOptions {
  /** The diagonal that holds the ones: 0 the main one, k > 0 above it, k < 0 below (an integer). */
  k?: number;
}

/**
 * The `n × m` identity (ones on diagonal `k`); `eye(n, opts)` is `eye(n, n, opts)`.
 *
 * @example
 * ```ts
 * import { eye } from "@curvature/curvature";
 * console.log(await eye(2, { k: 1 }).toArray()); // [[0, 1], [0, 0]]
 * ```
 */
export function eye(n: number, m?: number | EyeOptions, opts: EyeOptions = {}): Tensor {
  if (typeof m === "object" && m !== null) [m, opts] = [undefined, m];
  const cols = m ?? n;
  checkOptions("eye", opts, ["dtype", "device", "k"]);
  checkShape("eye", [n, cols]);
  const k = opts.k ?? 0;
  if (!Number.isSafeInteger(k)) {
    throw new RangeError(
      `eye: k must be an integer (the diagonal's offset), got ${describeValue(k)}`,
    );
  }
  const dtype = checkDtype("eye", opts.dtype ?? "f32");
  const device = pickDevice(opts.device, "eye");
  checkDeviceDtype("eye", device, dtype);
  checkSize("eye", device, [n, cols], dtype); // before the host array is allocated
  const a = allocArray(dtype, n * cols);
  for (let i = 0; i < n; i++) {
    const j = i + k;
    if (j >= 0 && j < cols) a[i * cols + j] = 1;
  }
  return fromHost("eye", a, [n, cols], device);
}

/** Options of the random creation functions. */
export interface RandomOptions extends CreateOptions {
  /** Key of the counter-based generator: the same seed gives the same numbers on every backend. */
  seed: number;
  /** Counter offset (a second key word): draws with different offsets are independent. */
  offset?: number;
}

function randomTensor(
  op: string,
  dist: RandomDist,
  shape: readonly number[],
  opts: RandomOptions,
): Tensor {
  const s = checkShape(op, shape);
  checkOptions(op, opts, ["seed", "offset", "dtype", "device"]);
  if (!opts || typeof opts.seed !== "number" || !Number.isSafeInteger(opts.seed) || opts.seed < 0) {
    throw new TypeError(`${op}: options.seed must be a non-negative integer, got ${opts?.seed}`);
  }
  const offset = opts.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > 0xffffffff) {
    throw new RangeError(`${op}: offset must be an integer in [0, 2^32), got ${offset}`);
  }
  const device = pickDevice(opts.device, op);
  const dtype = checkDtype(op, opts.dtype ?? "f32");
  if (dtype === "i32") throw new TypeError(`${op}: dtype must be f32 or f64, got i32`);
  checkDeviceDtype(op, device, dtype);
  checkSize(op, device, s, dtype);
  if (sizeOf(s) > 0xffffffff) throw new RangeError(`${op}: at most 2^32 draws per call`);
  return Tensor._fromStorage(
    device.backend.random(dist, dtype, sizeOf(s), opts.seed, offset),
    s,
    dtype,
    device,
  );
}

/**
 * Uniform draws in [0, 1) from Philox4x32-10 keyed by `seed`. f32 draws are bit-identical on
 * the CPU and WebGPU; f64 draws use 53 random bits, the f32 draw's 24 and 29 more (so the
 * same seed gives the same numbers to within 2^-24).
 *
 * @example
 * ```ts
 * import { uniform } from "@curvature/curvature";
 * const u = uniform([3], { seed: 42 });
 * console.log((await u.data()).every((v) => v >= 0 && v < 1)); // true
 * ```
 */
export function uniform(shape: readonly number[], opts: RandomOptions): Tensor {
  return randomTensor("uniform", "uniform", shape, opts);
}

/**
 * Standard normal draws (Box–Muller on two 24-bit uniforms from Philox words). A seed gives
 * the same draws in every dtype and on every backend: f64 is the unrounded value, CPU f32
 * that value rounded, WebGPU f32 within 1e-6 of it (|z| < 5.8).
 *
 * @example
 * ```ts
 * import { normal } from "@curvature/curvature";
 * const a = await normal([3], { seed: 1, dtype: "f32" }).data();
 * const b = await normal([3], { seed: 1, dtype: "f64" }).data();
 * console.log(a.every((v, i) => v === Math.fround(b[i]))); // true
 * ```
 */
export function normal(shape: readonly number[], opts: RandomOptions): Tensor {
  return randomTensor("normal", "normal", shape, opts);
}

/** Rademacher draws (±1 with equal probability): Hutchinson's probes. Identical on every backend. */
export function rademacher(shape: readonly number[], opts: RandomOptions): Tensor {
  return randomTensor("rademacher", "rademacher", shape, opts);
}

/**
 * A copy of `x` on `device`. The result is returned at once; a copy from WebGPU to the CPU
 * arrives with the read-back, so await `ready()` on it (or read it with `data()`) before
 * using it in CPU ops.
 */
export function to(x: Tensor, device: Device): Tensor {
  if (!(x instanceof Tensor)) {
    throw new TypeError(`to: x must be a Tensor, got ${describeValue(x)}`);
  }
  x._check("to");
  if (device === undefined) throw new TypeError("to: the target device is required");
  pickDevice(device, "to");
  const c = x._concrete();
  if (c.device === device) {
    return Tensor._fromStorage(
      device.backend.copy(c.dtype, c._ref!.storage, c.size),
      c.shape,
      c.dtype,
      device,
      [c],
    );
  }
  checkDeviceDtype("to", device, c.dtype);
  checkSize("to", device, c.shape, c.dtype);
  let t: Tensor;
  if (c.device.kind === "cpu") {
    const host = (c.device.backend as CpuBackend).hostArray(c._ref!.storage);
    t = Tensor._fromStorage(device.backend.upload(host), c.shape, c.dtype, device, [c]);
  } else if (device.backend instanceof CpuBackend) {
    const pending = c.device.backend.download(c._ref!.storage, c.dtype, c.size);
    t = Tensor._fromStorage(
      device.backend.fromTransit(pending, c.dtype, c.size),
      c.shape,
      c.dtype,
      device,
      [c],
    );
  } else {
    throw new Error(
      `to: copies between two GPU devices are not supported (${c.device.kind} → ${device.kind})`,
    );
  }
  t._index = c._index;
  return t;
}
