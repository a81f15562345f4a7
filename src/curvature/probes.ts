/** Probe vectors for compressed Hessian products. */
import type { Dtype } from "../dtype.ts";
import type { Device } from "../device.ts";
import { Tensor } from "../tensor.ts";
import { pickDevice } from "../ops/common.ts";
import { checkDeviceDtype } from "../ops/creation.ts";

/** Options of {@linkcode combProbes}. */
export interface ProbeOptions {
  /** Element type (default f32). */
  dtype?: Dtype;
  /** Device (default: the default device). */
  device?: Device;
}

/**
 * Comb probes `[period, n]`: probe k is 1 at every i with i ≡ k (mod period), else 0. Built on
 * the device; on WebGPU they are never stored, but computed inside the kernel that uses them.
 * With period 2b+1, each entry of a bandwidth-b Hessian appears alone in one product.
 *
 * @example
 * ```ts
 * import { combProbes } from "@curvature/curvature";
 * console.log(await combProbes(5, 2).toArray()); // [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0]]
 * ```
 */
export function combProbes(n: number, period: number, opts: ProbeOptions = {}): Tensor {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`combProbes: n must be a non-negative integer, got ${n}`);
  }
  if (!Number.isSafeInteger(period) || period < 1) {
    throw new RangeError(`combProbes: period must be a positive integer, got ${period}`);
  }
  const device = pickDevice(opts.device);
  const dtype = opts.dtype ?? "f32";
  if (dtype === "i32") throw new TypeError("combProbes: dtype must be f32 or f64");
  checkDeviceDtype("combProbes", device, dtype);
  return Tensor._fromStorage(device.backend.comb(dtype, n, period), [period, n], dtype, device);
}
