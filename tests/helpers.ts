/**
 * Test helpers: the devices to run on, closeness assertions, and f64 references.
 *
 * GPU tests run wherever a WebGPU adapter exists (lavapipe gives one without a GPU).
 * Without one they are skipped loudly — unless CURVATURE_REQUIRE_GPU=1 (set by CI), which
 * turns a missing adapter into a failure so GPU tests can never silently skip.
 * CURVATURE_GPU_TUNING=gpu (or cpu-like) opens the WebGPU device with that tuning forced
 * (`device({ tuning })`), so CI runs the real-GPU kernel variants on lavapipe too. Only the
 * tests read it; the library reads no environment.
 */
import assert from "node:assert/strict";
import { type Device, device, type GpuTuning, memory, type Tensor } from "../mod.ts";

export { randArray, rng } from "./inputs.ts";

export const REQUIRE_GPU = Deno.env.get("CURVATURE_REQUIRE_GPU") === "1";

/** The WebGPU tuning the tests run under (see the file comment). */
export const GPU_TUNING = (Deno.env.get("CURVATURE_GPU_TUNING") ?? "auto") as GpuTuning;

const cpuDev = await device({ backend: "cpu" });
const autoDev = await device({ backend: "auto", tuning: GPU_TUNING });

export const gpuDev: Device | null = autoDev.kind === "webgpu" ? autoDev : null;

if (!gpuDev) {
  if (REQUIRE_GPU) {
    throw new Error(
      "CURVATURE_REQUIRE_GPU=1 but no WebGPU adapter was found (install mesa-vulkan-drivers for lavapipe)",
    );
  }
  console.warn(
    "\n*** No WebGPU adapter: WebGPU tests are SKIPPED (set CURVATURE_REQUIRE_GPU=1 to fail instead) ***\n",
  );
}

export const cpu: Device = cpuDev;

/** A device to run a test on, with the dtype and tolerance that suit it. */
export interface Backend {
  name: string;
  dev: Device;
  dtype: "f32" | "f64";
  /** relative tolerance for results computed in this dtype */
  rtol: number;
}

/** CPU f64, CPU f32 and (when present) WebGPU f32. */
export const BACKENDS: Backend[] = [
  { name: "cpu-f64", dev: cpuDev, dtype: "f64", rtol: 1e-10 },
  { name: "cpu-f32", dev: cpuDev, dtype: "f32", rtol: 1e-5 },
  ...(gpuDev ? [{ name: "webgpu-f32", dev: gpuDev, dtype: "f32" as const, rtol: 1e-5 }] : []),
];

/** Deno.test once per backend; WebGPU cases register as ignored (and say so) without an adapter. */
export function testAll(
  name: string,
  fn: (b: Backend) => Promise<void> | void,
  only?: string[],
): void {
  const all: Backend[] = [...BACKENDS];
  if (!gpuDev) all.push({ name: "webgpu-f32", dev: cpuDev, dtype: "f32", rtol: 1e-5 });
  for (const b of all) {
    if (only && !only.includes(b.name)) continue;
    const skip = b.name.startsWith("webgpu") && !gpuDev;
    Deno.test({ name: `${name} [${b.name}]`, ignore: skip, fn: () => fn(b) });
  }
}

/**
 * True when `now` is back at `base`. The garbage collector may meanwhile have freed tensors
 * an earlier test forgot (the safety net of memory.ts): the count then falls below the
 * baseline by at most the number reclaimed since.
 */
export function sameMemory(
  base: { tensors: number; bytes: number; reclaimed?: number },
  now: { tensors: number; bytes: number; reclaimed: number },
): boolean {
  if (now.tensors === base.tensors && now.bytes === base.bytes) return true;
  const reclaimed = now.reclaimed - (base.reclaimed ?? now.reclaimed);
  return now.tensors < base.tensors && base.tensors - now.tensors <= reclaimed &&
    now.bytes < base.bytes;
}

/**
 * Tensors made since `base` that are still live. Tensors an earlier test forgot, which the
 * collector may free meanwhile, are added back (see `sameMemory`).
 */
export function liveSince(base: { tensors: number; reclaimed: number }): number {
  const m = memory();
  return m.tensors - base.tensors + (m.reclaimed - base.reclaimed);
}

/** Max |a-b| / (atol + rtol |b|) style check with a message that shows the worst entry. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: { rtol?: number; atol?: number; msg?: string } = {},
): void {
  const rtol = opts.rtol ?? 1e-6;
  const atol = opts.atol ?? 0;
  if (actual.length !== expected.length) {
    throw new Error(
      `${opts.msg ?? "assertClose"}: length ${actual.length} != expected ${expected.length}`,
    );
  }
  let worst = -1, worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e)) {
      if (!Number.isNaN(a)) {
        throw new Error(`${opts.msg ?? "assertClose"}: entry ${i} is ${a}, expected NaN`);
      }
      continue;
    }
    if (!Number.isFinite(e)) {
      if (a !== e) {
        throw new Error(`${opts.msg ?? "assertClose"}: entry ${i} is ${a}, expected ${e}`);
      }
      continue;
    }
    const err = Math.abs(a - e) / (atol + rtol * Math.abs(e) || Number.MIN_VALUE);
    if (!(err <= 1) && (worst < 0 || !(err <= worstErr))) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${opts.msg ?? "assertClose"}: entry ${worst} is ${actual[worst]}, expected ${
        expected[worst]
      } ` +
        `(|diff| ${
          Math.abs(actual[worst] - expected[worst]).toExponential(3)
        }, rtol ${rtol}, atol ${atol})`,
    );
  }
}

/** Reads a tensor and checks it against expected values. */
export async function expectClose(
  t: Tensor,
  expected: ArrayLike<number>,
  opts: { rtol?: number; atol?: number; msg?: string; shape?: readonly number[] } = {},
): Promise<void> {
  if (opts.shape && JSON.stringify(t.shape) !== JSON.stringify(opts.shape)) {
    throw new Error(
      `${opts.msg ?? "expectClose"}: shape ${JSON.stringify(t.shape)}, expected ${
        JSON.stringify(opts.shape)
      }`,
    );
  }
  assertClose(await t.data(), expected, opts);
}

/** Asserts memory() is back at `base` tensors (and bytes). */
export function assertNoLeak(
  base: { tensors: number; bytes: number; reclaimed?: number },
  what = "memory",
): void {
  const m = memory();
  if (!sameMemory(base, m)) {
    throw new Error(
      `${what}: ${m.tensors - base.tensors} tensors / ${m.bytes - base.bytes} bytes leaked`,
    );
  }
}

/**
 * A call whose kernel rejects its input (a singular or not positive definite matrix): on
 * the CPU it throws a RangeError matching `pattern` at once; on WebGPU the call returns
 * (kernels cannot throw) and reading the result rejects with it.
 */
export async function expectKernelError(
  bk: Backend,
  make: () => Tensor,
  pattern: RegExp,
): Promise<void> {
  const check = (e: Error) => {
    assert.match(e.message, pattern);
    assert.equal(e.name, "RangeError");
    return true;
  };
  if (bk.dev.kind === "cpu") {
    assert.throws(make, check);
    return;
  }
  const t = make();
  await assert.rejects(() => t.data(), check);
  t.dispose();
}
