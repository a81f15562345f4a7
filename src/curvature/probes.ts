/**
 * Probe vectors for the curvature estimators: comb (periodic indicator) probes and the
 * Rademacher probes of Hutchinson's estimator.
 */
import type { Device } from "../device.ts";
import type { FloatDtype } from "../dtype.ts";
import type { Tensor } from "../tensor.ts";
import { tidy } from "../memory.ts";
import { eye, rademacher } from "../ops/creation.ts";
import { broadcastTo, reshape, slice, stack } from "../ops/movement.ts";

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
 *
 * Built on the device from a `period × period` identity tiled along the vector, so only
 * `period²` numbers are uploaded.
 *
 * @example
 * ```ts
 * import { combProbes } from "@curvature/curvature";
 * console.log(await combProbes(5, 2).toArray()); // [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0]]
 * ```
 */
export function combProbes(n: number, period: number, opts: CombProbeOptions = {}): Tensor {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`combProbes: n must be a positive integer, got ${n}`);
  }
  if (!Number.isSafeInteger(period) || period < 1) {
    throw new RangeError(`combProbes: period must be a positive integer, got ${period}`);
  }
  const shape = opts.shape ?? [n];
  if (shape.reduce((a, d) => a * d, 1) !== n) {
    throw new RangeError(
      `combProbes: shape [${shape.join(", ")}] does not hold n = ${n} entries`,
    );
  }
  const reps = Math.ceil(n / period);
  return tidy(() => {
    const id = eye(period, period, { dtype: opts.dtype ?? "f32", device: opts.device });
    // comb[k, q·period + r] = I[k, r] = (k == r) = (i mod period == k) for i = q·period + r
    const tiled = reshape(
      broadcastTo(reshape(id, [period, 1, period]), [period, reps, period]),
      [period, reps * period],
    );
    const cut = reps * period === n ? tiled : slice(tiled, [0, 0], [period, n]);
    return reshape(cut, [period, ...shape]);
  });
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
