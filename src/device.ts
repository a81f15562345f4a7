/** Devices: which backend a tensor lives on, and how one is chosen. */
import type { Backend } from "./backend/backend.ts";
import { CpuBackend } from "./backend/cpu/cpu.ts";
import type { GpuTuning } from "./backend/webgpu/runtime.ts";
import type { WebGpuBackend } from "./backend/webgpu/webgpu.ts";
import { checkOptions, oneOf } from "./options.ts";

export type { GpuTuning };

/** A compute device: the CPU, or one WebGPU adapter. */
export class Device {
  /** @internal */
  constructor(
    /** `"cpu"` or `"webgpu"`. */
    readonly kind: "cpu" | "webgpu",
    /** @internal The kernels that run on this device. */
    readonly backend: Backend,
  ) {}

  /**
   * Why the device was lost (destroyed, a driver reset, …), or null while it works. Every
   * use of a lost device or of its tensors throws an error saying so; `device()` then
   * acquires a fresh one.
   */
  get lost(): { reason: string; message: string } | null {
    return this.backend.lost;
  }

  /** What the device is, e.g. `WebGPU (llvmpipe (LLVM 15.0.6, 256 bits))`. */
  get description(): string {
    return this.backend.description;
  }

  /** Waits until every queued kernel has finished (for timing; reads wait by themselves). */
  sync(): Promise<void> {
    return this.backend.sync();
  }

  /** Counters of work issued: dispatches, submits and read-backs (zeros on the CPU). */
  get stats(): { dispatches: number; submits: number; readbacks: number } {
    const b = this.backend as Partial<WebGpuBackend>;
    return b.rt ? { ...b.rt.stats } : { dispatches: 0, submits: 0, readbacks: 0 };
  }

  /**
   * Waits for queued kernels, then frees the device's GPU memory and the WebGPU device
   * itself. Its tensors cannot be used afterwards, and {@linkcode device} opens a fresh
   * device. A Deno program does this by itself when it unloads; call it (or use
   * `await using`) to release the GPU earlier. Does nothing on the CPU.
   *
   * @example
   * ```ts
   * import { device, tensor } from "@curvature/curvature";
   * {
   *   await using dev = await device({ backend: "auto" });
   *   console.log(await tensor([1, 2], { device: dev }).sum().item()); // 3
   * } // the device is destroyed here (the CPU device is left alone)
   * ```
   */
  async destroy(): Promise<void> {
    const rt = (this.backend as Partial<WebGpuBackend>).rt;
    if (!rt || rt.destroyed) return;
    forget(this);
    try {
      rt.flush();
      await rt.device.queue.onSubmittedWorkDone();
    } finally {
      rt.destroy();
    }
  }

  /** `await using dev = await device()` destroys the device at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  /** A short text such as `cpu` or `webgpu`. */
  toString(): string {
    return this.kind;
  }
}

const cpuDevice = new Device("cpu", new CpuBackend());
/** One WebGPU device per tuning asked for (almost always just `"auto"`). */
const gpuPromises = new Map<GpuTuning, Promise<Device | null>>();
const tunings = new WeakMap<Device, GpuTuning>();
let defaultDevice: Device = cpuDevice;

/**
 * The CPU device (always available).
 *
 * @example
 * ```ts
 * import { cpu, tensor } from "@curvature/curvature";
 * const x = tensor([1, 2], { device: cpu(), dtype: "f64" }); // f64 lives on the CPU
 * console.log(x.device.kind, x.dtype); // "cpu" "f64"
 * ```
 */
export function cpu(): Device {
  return cpuDevice;
}

function gpu(tuning: GpuTuning): Promise<Device | null> {
  let p = gpuPromises.get(tuning);
  if (!p) {
    const pending = loadGpu(tuning).then(({ rt, WebGpuBackend }) => {
      if (!rt) return null;
      const d = new Device("webgpu", new WebGpuBackend(rt));
      tunings.set(d, tuning);
      // a lost device is never handed out again: the next device() asks for a fresh one
      rt.onLost(() => {
        if (gpuPromises.get(tuning) === pending) gpuPromises.delete(tuning);
      });
      return d;
    });
    gpuPromises.set(tuning, pending);
    p = pending;
  }
  return p;
}

/**
 * The WebGPU backend is loaded on the first request for it: a program on the CPU (and every
 * import) does not load, parse or evaluate its modules and WGSL sources.
 */
async function loadGpu(tuning: GpuTuning) {
  const [{ acquireGpu }, { WebGpuBackend }] = await Promise.all([
    import("./backend/webgpu/runtime.ts"),
    import("./backend/webgpu/webgpu.ts"),
  ]);
  return { rt: await acquireGpu(tuning), WebGpuBackend };
}

/** Drops a destroyed device from the cache, so the next device() call opens a fresh one. */
function forget(d: Device): void {
  const tuning = tunings.get(d);
  if (tuning !== undefined) gpuPromises.delete(tuning);
}

/** Options of {@linkcode device}. */
export interface DeviceOptions {
  /** `"auto"` (default) picks WebGPU when an adapter exists, else the CPU. */
  backend?: "auto" | "cpu" | "webgpu";
  /**
   * A testing aid: which WebGPU kernel variants to use. `"auto"` (default) picks by adapter:
   * a software adapter running on the CPU (lavapipe, SwiftShader) gets register-blocked
   * matmul and long loops over broadcast axes, a real GPU gets tiled matmul and short
   * loops. `"gpu"` or `"cpu-like"` forces one set on any adapter, so the other paths can be
   * tested where only a software adapter exists. Each tuning is a separate device: tensors
   * of one cannot meet tensors of another.
   */
  tuning?: GpuTuning;
}

const TUNINGS: readonly GpuTuning[] = ["auto", "gpu", "cpu-like"];

/**
 * Returns a device. `"auto"` never fails: with no WebGPU adapter (Deno Deploy, a CI box
 * without a GPU driver) it returns the CPU. `"webgpu"` throws when no adapter exists.
 *
 * @example
 * ```ts
 * import { device, tensor } from "@curvature/curvature";
 * const dev = await device({ backend: "cpu" });
 * const x = tensor([1, 2, 3], { device: dev });
 * console.log(await x.toArray()); // [1, 2, 3]
 * ```
 */
export async function device(opts: DeviceOptions = {}): Promise<Device> {
  checkOptions("device", opts, ["backend", "tuning"]);
  const which = opts.backend ?? "auto";
  if (which !== "auto" && which !== "webgpu" && which !== "cpu") {
    throw new TypeError(
      `device: unknown backend ${JSON.stringify(which)}; expected "auto", "cpu" or "webgpu"`,
    );
  }
  const tuning = oneOf("device", "tuning", opts.tuning, TUNINGS, "auto");
  if (which === "cpu") {
    if (tuning !== "auto") {
      throw new TypeError(`device: tuning "${tuning}" applies to WebGPU, not to backend "cpu"`);
    }
    return cpuDevice;
  }
  const g = await gpu(tuning);
  if (g) return g;
  if (which === "auto") return cpuDevice;
  throw new Error(
    "device: no WebGPU adapter is available. On a machine without a GPU, Mesa's lavapipe gives " +
      'one (apt-get install mesa-vulkan-drivers libvulkan1); or use { backend: "cpu" }.',
  );
}

/**
 * Makes `d` the device that creation functions use when none is given.
 *
 * @example
 * ```ts
 * import { cpu, setDefaultDevice, zeros } from "@curvature/curvature";
 * setDefaultDevice(cpu()); // or setDefaultDevice(await device()) for WebGPU when present
 * console.log(zeros([2]).device.kind); // "cpu"
 * ```
 */
export function setDefaultDevice(d: Device): void {
  if (!(d instanceof Device)) {
    throw new TypeError("setDefaultDevice: expected a Device from device()");
  }
  defaultDevice = d;
}

/**
 * The device creation functions use when none is given (the CPU until set).
 *
 * @example
 * ```ts
 * import { getDefaultDevice } from "@curvature/curvature";
 * console.log(getDefaultDevice().kind); // "cpu" until setDefaultDevice is called
 * ```
 */
export function getDefaultDevice(): Device {
  return defaultDevice;
}
