/** Devices: which backend a tensor lives on, and how one is chosen. */
import { checkOptions } from "./options.ts";
import type { Backend } from "./backend/backend.ts";
import { CpuBackend } from "./backend/cpu/cpu.ts";
import { acquireGpu } from "./backend/webgpu/runtime.ts";
import { WebGpuBackend } from "./backend/webgpu/webgpu.ts";

/** A compute device: the CPU, or one WebGPU adapter. */
export class Device {
  /** @internal */
  constructor(
    /** `"cpu"` or `"webgpu"`. */
    readonly kind: "cpu" | "webgpu",
    /** @internal The kernels that run on this device. */
    readonly backend: Backend,
  ) {}

  /** What the device is, e.g. `WebGPU (llvmpipe (LLVM 15.0.6, 256 bits))`. */
  get description(): string {
    return this.backend.description;
  }

  /**
   * Why the device was lost (destroyed, a driver reset, …), or null while it works. Every
   * use of a lost device or of its tensors throws an error saying so; `device()` then
   * acquires a fresh one.
   */
  get lost(): { reason: string; message: string } | null {
    return this.backend.lost;
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

  /** A short text such as `cpu` or `webgpu`. */
  toString(): string {
    return this.kind;
  }
}

const cpuDevice = new Device("cpu", new CpuBackend());
let gpuPromise: Promise<Device | null> | null = null;
let defaultDevice: Device = cpuDevice;

/** The CPU device (always available). */
export function cpu(): Device {
  return cpuDevice;
}

function gpu(): Promise<Device | null> {
  if (!gpuPromise) {
    gpuPromise = acquireGpu().then((rt) => {
      if (!rt) return null;
      const dev = new Device("webgpu", new WebGpuBackend(rt));
      // a lost device is never handed out again: the next device() asks for a fresh one
      rt.onLost(() => {
        if (gpuPromise === pending) gpuPromise = null;
      });
      return dev;
    });
    const pending = gpuPromise;
  }
  return gpuPromise;
}

/** Options of {@linkcode device}. */
export interface DeviceOptions {
  /** `"auto"` (default) picks WebGPU when an adapter exists, else the CPU. */
  backend?: "auto" | "cpu" | "webgpu";
}

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
  checkOptions("device", opts, ["backend"]);
  const which = opts.backend ?? "auto";
  if (which === "cpu") return cpuDevice;
  if (which !== "auto" && which !== "webgpu") {
    throw new TypeError(
      `device: unknown backend ${JSON.stringify(which)}; expected "auto", "cpu" or "webgpu"`,
    );
  }
  const g = await gpu();
  if (g) return g;
  if (which === "auto") return cpuDevice;
  throw new Error(
    "device: no WebGPU adapter is available. On a machine without a GPU, Mesa's lavapipe gives " +
      'one (apt-get install mesa-vulkan-drivers libvulkan1); or use { backend: "cpu" }.',
  );
}

/** Makes `d` the device that creation functions use when none is given. */
export function setDefaultDevice(d: Device): void {
  if (!(d instanceof Device)) {
    throw new TypeError("setDefaultDevice: expected a Device from device()");
  }
  defaultDevice = d;
}

/** The device creation functions use when none is given (the CPU until set). */
export function getDefaultDevice(): Device {
  return defaultDevice;
}
