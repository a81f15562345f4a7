/**
 * Probe vectors for the curvature estimators: comb (periodic indicator) probes and the
 * Rademacher probes of Hutchinson's estimator.
 */
import { checkOptions } from "../options.ts";
import type { Device } from "../device.ts";
import type { FloatDtype } from "../dtype.ts";
import { Tensor } from "../tensor.ts";
import { tidy } from "../memory.ts";
import { rademacher } from "../ops/creation.ts";
import { reshape, stack } from "../ops/movement.ts";
import { pickDevice } from "../ops/common.ts";
import { checkDeviceDtype } from "../ops/creation.ts";

/** Options of {@linkcode combProbes}. */
export interface CombProbeOptions {
  /** Element type (default `"f32"`). */
  dtype?: FloatDtype;
  /** Device (default: the default device). */
  device?: Device;
  /** Shape of each probe (default `[n]`); its size must be `n`. */
  shape?: readonly number[];
}

/**
 * The `period` comb probes of length `n`, stacked as `[period, ...shape]`: probe `k` is the
 * indicator of `{ i : i mod period = k }` (over the flat index `i`). Their sum is all ones.
 * With period 2b+1, each entry of a bandwidth-b Hessian appears alone in one product.
 *
 * Built on the device by a kernel of its own; on WebGPU the probes are not even stored,
 * but computed inside the fused kernel that uses them.
 *
 * @example
 * ```ts
 * import { combProbes } from "@curvature/curvature";
 * console.log(await combProbes(5, 2).toArray()); // [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0]]
 * ```
 */
export function combProbes(n: number, period: number, opts: CombProbeOptions = {}): Tensor {
  checkOptions("combProbes", opts, ["dtype", "device", "shape"]);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`combProbes: n must be a positive integer, got ${n}`);
  }
  if (!Number.isSafeInteger(period) || period < 1) {
    throw new RangeError(`combProbes: period must be a positive integer, got ${period}`);
  }
  const shape = opts.shape ?? [n];
  if (shape.reduce((a, d) => a * d, 1) !== n) {
    throw new RangeError(`combProbes: shape [${shape.join(", ")}] does not hold n = ${n} entries`);
  }
  const dtype = opts.dtype ?? "f32";
  if ((dtype as string) === "i32") throw new TypeError("combProbes: dtype must be f32 or f64");
  const device = pickDevice(opts.device, "combProbes");
  checkDeviceDtype("combProbes", device, dtype);
  const p = Tensor._fromStorage(device.backend.comb(dtype, n, period), [period, n], dtype, device);
  if (shape.length === 1) return p;
  return tidy(() => reshape(p, [period, ...shape]));
}

/**
 * Rademacher probes `first … first+count−1` for a point of `shape`, stacked as
 * `[count, ...shape]`. Probe `j` is `rademacher(shape, { seed, offset: j })`, so a probe does
 * not depend on how the probes are batched, and both backends draw the same ±1 values.
 */
export function rademacherProbes(
  shape: readonly number[],
  first: number,
  count: number,
  opts: { seed: number; dtype: FloatDtype; device: Device },
): Tensor {
  return tidy(() => {
    const rows: Tensor[] = [];
    for (let j = first; j < first + count; j++) {
      rows.push(
        rademacher(shape, { seed: opts.seed, offset: j, dtype: opts.dtype, device: opts.device }),
      );
    }
    return stack(rows, 0);
  });
}
