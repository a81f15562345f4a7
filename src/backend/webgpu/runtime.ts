/**
 * The WebGPU runtime: device acquisition, the pipeline cache, and the dispatch queue.
 *
 * Dispatches are recorded into one command encoder per batch and submitted when a batch
 * fills or a value is read back; reading back is the only wait. Each dispatch's runtime
 * sizes live in a 1 KB slot of a per-batch uniform arena (read-only storage on lavapipe,
 * see INLINES_UNIFORMS), written once at submit, so one pipeline serves every size.
 * Validation errors are collected per batch with an error scope and rethrown at the next
 * read-back, naming the kernels of that batch (they are failures of the library or the
 * device, not of a value). A kernel's own status (a singular pivot) is a Check owned by
 * the value it produced (see ../fault.ts).
 */
import { BufferPool, type GpuStorage } from "./pool.ts";
import { Check } from "../fault.ts";
import { LruCache, registerCache, unregisterCache } from "../../lru.ts";
import { GpuRecorder } from "./program.ts";
import { SHADERS } from "../../shaders.generated.ts";

/**
 * Kernels: which shader file, and the workgroup size baked into its pipeline. A fused
 * kernel also carries its generated source and a key naming that source's structure.
 */
export interface KernelSpec {
  readonly name: string;
  readonly shader: keyof typeof SHADERS;
  readonly workgroupSize: number;
  /** Generated source (a filled template) and the cache key that identifies it. */
  readonly generated?: { readonly key: string; readonly source: () => string };
}

/** Bytes of uniform data each dispatch may use (fused kernels keep their sizes and constants there). */
export const SLOT = 1024;
const SLOTS = 256;
/** Workgroups per grid dimension (WebGPU's default and lavapipe's maximum). */
export const MAX_GROUPS = 65535;

/**
 * Mesa's lavapipe (llvmpipe) recompiles a compute shader at every dispatch when a branch or
 * loop bound depends on uniform-buffer values alone and inlining those values halves the
 * shader ("uniform inlining"), and Mesa 22.3 (Debian 12) never frees the recompiled copies:
 * `matmul_regs` (its loop over `p.rank`) leaked ~500 KB and cost ~3 ms per dispatch, so an
 * ipm solve grew by 2-4 MB per iteration. Storage buffers are never inlined, so there the
 * kernels read their parameter block as `var<storage, read>`: same WGSL layout, same bytes.
 */
const INLINES_UNIFORMS = /llvmpipe|lavapipe/i;

/** `source` with its uniform-buffer declarations made read-only storage ones. */
export function paramsAsStorage(source: string): string {
  return source.replace(/var\s*<\s*uniform\s*>/g, "var<storage, read>");
}

/**
 * The device is gone (destroyed, a driver reset, the GPU removed): every later use of it,
 * or of a tensor on it, says so and why. `device()` acquires a fresh one.
 */
export class DeviceLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeviceLostError";
  }
}

/** A GPU error, naming the kernels that were queued when it happened. */
export class GpuKernelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GpuKernelError";
  }
}

export class GpuRuntime {
  readonly pool: BufferPool;
  readonly maxStorageBytes: number;
  /**
   * Compiled pipelines and shader modules, least recently used evicted first (a dropped
   * pipeline is freed by the implementation once collected). Bytes counted: the WGSL
   * source's, a proxy for the compiled code the driver holds, which is far larger: about
   * 2 MB per pipeline on lavapipe (measured), so 256 pipelines bound it near 600 MB.
   */
  readonly pipelines = new LruCache<string, GPUComputePipeline>({
    maxEntries: 256,
    maxBytes: 32 * 1024 * 1024,
  });
  readonly modules = new LruCache<string, GPUShaderModule>({
    maxEntries: 256,
    maxBytes: 32 * 1024 * 1024,
  });
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #arenaCpu = new ArrayBuffer(SLOT * SLOTS);
  #arenaGpu: GPUBuffer;
  #slots = 0;
  #batchKernels: string[] = [];
  #pendingErrors: Promise<string | null>[] = [];
  #uncaptured: string[] = [];
  /** Status copies recorded in the open batch: read back in the background once it is submitted. */
  #checks: { staging: GPUBuffer; verdict: (v: Float32Array) => string | null; check: Check }[] = [];
  /** Id of the batch being recorded. */
  batch = 0;
  /** Why the device was lost, once it has been (see `device.lost`). */
  lost: { reason: string; message: string } | null = null;
  #lostListeners: (() => void)[] = [];
  /** Counters for the benchmarks: dispatches recorded and read-backs made. */
  readonly stats = { dispatches: 0, submits: 0, readbacks: 0 };
  /** Kernels read their parameter block from a storage binding (see INLINES_UNIFORMS). */
  readonly paramsInStorage: boolean;
  /** Usage of the buffers that hold kernels' parameter blocks. */
  readonly paramsUsage: number;

  constructor(
    readonly device: GPUDevice,
    readonly adapterDescription: string,
    /** A software adapter running on the CPU (lavapipe, SwiftShader): tuning differs. */
    readonly cpuLike = false,
  ) {
    this.maxStorageBytes = device.limits.maxStorageBufferBindingSize;
    this.pool = new BufferPool(device, 512 * 1024 * 1024);
    this.paramsInStorage = INLINES_UNIFORMS.test(adapterDescription);
    this.paramsUsage = (this.paramsInStorage ? GPUBufferUsage.STORAGE : GPUBufferUsage.UNIFORM) |
      GPUBufferUsage.COPY_DST;
    this.#arenaGpu = device.createBuffer({ size: SLOT * SLOTS, usage: this.paramsUsage });
    const bufferPool = {
      stats: () => this.pool.stats(),
      clear: () => {
        this.flush(); // a pooled buffer the open batch still uses must not be destroyed
        this.pool.trim();
      },
    };
    registerCache("webgpu pipelines", this.pipelines);
    registerCache("webgpu shader modules", this.modules);
    registerCache("webgpu buffer pool", bufferPool);
    device.lost.then((info) => {
      this.lost = { reason: info.reason ?? "unknown", message: info.message ?? "" };
      this.#encoder = null;
      this.#pass = null;
      for (const { check } of this.#checks.splice(0)) {
        check.settle(this.lostError("a kernel").message);
      }
      unregisterCache("webgpu pipelines", this.pipelines);
      unregisterCache("webgpu shader modules", this.modules);
      unregisterCache("webgpu buffer pool", bufferPool);
      for (const f of this.#lostListeners.splice(0)) f();
    });
    device.addEventListener("uncapturederror", (e) => {
      this.#uncaptured.push((e as GPUUncapturedErrorEvent).error.message);
    });
  }

  /** Runs `f` once the device is lost. */
  onLost(f: () => void): void {
    if (this.lost) f();
    else this.#lostListeners.push(f);
  }

  /** The error for a use of the lost device by `op`. */
  lostError(op: string): DeviceLostError {
    const { reason, message } = this.lost!;
    return new DeviceLostError(
      `${op}: the WebGPU device (${this.adapterDescription}) was lost (reason: ${reason}` +
        `${message ? `, "${message}"` : ""}); the values of its tensors are gone. ` +
        `Call device() again for a fresh device and make the tensors anew on it.`,
    );
  }

  /** Throws the lost-device error for `op` once the device is gone. */
  alive(op: string): void {
    if (this.lost) throw this.lostError(op);
  }

  /**
   * A GPU call failed: if the device is being lost, the loss is the error to report (the
   * `lost` promise may settle just after the failure it caused).
   */
  async #lostOr(e: unknown, op: string): Promise<unknown> {
    if (!this.lost && !(e instanceof GpuKernelError)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.device.lost,
        new Promise((r) => (timer = setTimeout(r, 200))),
      ]);
      clearTimeout(timer);
    }
    return this.lost ? this.lostError(op) : e;
  }

  module(shader: keyof typeof SHADERS, generated?: KernelSpec["generated"]): GPUShaderModule {
    const key = generated ? `${shader}|${generated.key}` : shader;
    let m = this.modules.get(key);
    if (!m) {
      const source = generated ? generated.source() : SHADERS[shader];
      const code = this.paramsInStorage ? paramsAsStorage(source) : source;
      m = this.device.createShaderModule({ label: shader, code });
      this.modules.set(key, m, code.length);
    }
    return m;
  }

  pipeline(spec: KernelSpec, constants: Record<string, number>): GPUComputePipeline {
    const key = `${spec.name}|${spec.workgroupSize}|${JSON.stringify(constants)}|${
      spec.generated?.key ?? ""
    }`;
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.module(spec.shader, spec.generated);
      p = this.device.createComputePipeline({
        label: `curvature kernel ${spec.name} ${JSON.stringify(constants)}`,
        layout: "auto",
        compute: {
          module,
          entryPoint: "main",
          constants: { ...constants, WG: spec.workgroupSize },
        },
      });
      this.pipelines.set(key, p, key.length);
    }
    return p;
  }

  #begin(): GPUCommandEncoder {
    if (this.destroyed) {
      throw new GpuKernelError(
        `WebGPU device ${this.adapterDescription} was destroyed (Device.destroy(), or the ` +
          "program unloading); its tensors cannot be used. device() opens a fresh one.",
      );
    }
    if (!this.#encoder) {
      this.device.pushErrorScope("validation");
      this.device.pushErrorScope("out-of-memory");
      this.#encoder = this.device.createCommandEncoder();
    }
    return this.#encoder;
  }

  #computePass(): GPUComputePassEncoder {
    if (!this.#pass) this.#pass = this.#begin().beginComputePass();
    return this.#pass;
  }

  /** An encoder for copy commands (the open compute pass is ended first). */
  copyEncoder(): GPUCommandEncoder {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    return this.#begin();
  }

  /**
   * Records one dispatch of `groups` workgroups (folded into 2-D above 65,535). `params`
   * fills the uniform slot bound at binding 0; `buffers` bind at 1, 2, ….
   */
  dispatch(
    spec: KernelSpec,
    constants: Record<string, number>,
    params: ArrayBuffer,
    buffers: readonly GpuStorage[],
    groups: number,
  ): void {
    if (groups === 0) return;
    this.alive(spec.name);
    if (this.#slots === SLOTS) this.flush();
    const pass = this.#computePass(); // opens the batch's error scopes before pipeline creation
    const pipeline = this.pipeline(spec, constants);
    const slot = this.#slots++;
    new Uint8Array(this.#arenaCpu, slot * SLOT, params.byteLength).set(new Uint8Array(params));
    const gx = Math.min(groups, MAX_GROUPS);
    const gy = Math.ceil(groups / gx);
    if (gy > MAX_GROUPS) {
      throw new GpuKernelError(
        `${spec.name}: ${groups} workgroups exceed the folded 2-D grid limit of ${MAX_GROUPS}²`,
      );
    }
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.#arenaGpu, offset: slot * SLOT, size: SLOT } },
    ];
    buffers.forEach((b, i) => {
      b.lastBatch = this.batch;
      entries.push({
        binding: i + 1,
        resource: { buffer: b.buffer, size: Math.max(4, b.byteLength) },
      });
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }),
    );
    pass.dispatchWorkgroups(gx, gy);
    this.#batchKernels.push(spec.name);
    this.stats.dispatches++;
    this.#recorder?.dispatch(spec.name, pipeline, params, buffers, gx, gy);
  }

  #recorder: GpuRecorder | null = null;

  /** Records every dispatch, upload, check and buffer taken until `stop` (jit). */
  record(inputs: readonly GpuStorage[]): { recorder: GpuRecorder; stop: () => void } {
    if (this.#recorder) throw new Error("internal: a jit trace is already recording on WebGPU");
    const recorder = new GpuRecorder(inputs);
    this.#recorder = recorder;
    this.pool.onAcquire = (s) => recorder.made(s);
    return {
      recorder,
      stop: () => {
        if (this.#recorder !== recorder) return;
        this.#recorder = null;
        this.pool.onAcquire = null;
      },
    };
  }

  /** Writes host data into a buffer (recorded as an upload while a jit trace records). */
  write(dst: GpuStorage, data: ArrayBufferView<ArrayBuffer>): void {
    if (data.byteLength > 0) this.device.queue.writeBuffer(dst.buffer, 0, data);
    this.#recorder?.upload(dst, data);
  }

  /**
   * Copies `bytes` from one buffer to another, in order with the queued kernels (recorded
   * while a jit trace records: every copy a kernel's input needs must come through here).
   */
  copy(src: GpuStorage, dst: GpuStorage, bytes: number): void {
    const size = Math.ceil(bytes / 4) * 4;
    if (size > 0) this.copyEncoder().copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, size);
    src.lastBatch = dst.lastBatch = this.batch;
    this.#recorder?.copy(src, dst, bytes);
  }

  /** Records a dispatch whose pipeline and bind group are already made (a jit replay). */
  replayDispatch(
    name: string,
    pipeline: GPUComputePipeline,
    group: GPUBindGroup,
    gx: number,
    gy: number,
    buffers: readonly GpuStorage[],
  ): void {
    const pass = this.#computePass();
    for (const b of buffers) b.lastBatch = this.batch;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(gx, gy);
    this.#batchKernels.push(name);
    this.stats.dispatches++;
  }

  /** Destroys a uniform buffer once the open batch no longer uses it. */
  retire(buffer: GPUBuffer): void {
    this.pool.retire(buffer);
  }

  /** Submits the batch being recorded, if any. Does not wait. */
  flush(): void {
    if (!this.#encoder || this.lost) return;
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    if (this.#slots > 0) {
      this.device.queue.writeBuffer(this.#arenaGpu, 0, this.#arenaCpu, 0, this.#slots * SLOT);
    }
    this.device.queue.submit([this.#encoder.finish()]);
    this.stats.submits++;
    const kernels = [...new Set(this.#batchKernels)].join(", ");
    const oom = this.device.popErrorScope();
    const val = this.device.popErrorScope();
    this.#pendingErrors.push(
      Promise.all([val, oom]).then(([v, o]) => {
        const e = v ?? o;
        return e
          ? `${e.message.trim()}\n(kernels in this batch: ${kernels || "copies only"})`
          : null;
      }),
    );
    this.#encoder = null;
    this.#slots = 0;
    this.#batchKernels = [];
    this.batch++;
    this.#startChecks();
    this.pool.afterSubmit();
  }

  /**
   * A status check: `bytes` of `src` are copied now and, once the batch is submitted, read
   * back in the background; `verdict` turns them into null (success) or an error message.
   * The caller attaches the returned Check to the storage the kernel produced. This is how a
   * kernel that finds a singular matrix reports it without a synchronisation of its own.
   */
  addCheck(src: GpuStorage, bytes: number, verdict: (v: Float32Array) => string | null): Check {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.copyEncoder().copyBufferToBuffer(src.buffer, 0, staging, 0, size);
    src.lastBatch = this.batch;
    const check = new Check();
    this.#checks.push({ staging, verdict, check });
    this.#recorder?.check(src, bytes, verdict, check);
    return check;
  }

  /** Starts reading back the status copies of the batch just submitted. */
  #startChecks(): void {
    for (const { staging, verdict, check } of this.#checks.splice(0)) {
      (async () => {
        try {
          await staging.mapAsync(GPUMapMode.READ);
          check.settle(verdict(new Float32Array(staging.getMappedRange())));
        } catch (e) {
          const err = await this.#lostOr(e, "a kernel") as Error;
          check.settle(
            err instanceof DeviceLostError
              ? err.message
              : `a kernel's status could not be read back: ${err.message}`,
          );
        } finally {
          staging.destroy();
        }
      })();
    }
  }

  /** Throws the first error any submitted batch raised. */
  async checkErrors(): Promise<void> {
    const pending = this.#pendingErrors;
    this.#pendingErrors = [];
    const msgs = (await Promise.all(pending)).filter((m): m is string => m !== null);
    msgs.push(...this.#uncaptured.splice(0));
    if (msgs.length > 0) throw new GpuKernelError(`WebGPU error: ${msgs[0]}`);
  }

  /** Copies `bytes` of a buffer back to the host; the only place the queue is waited on. */
  async read(src: GpuStorage, bytes: number): Promise<ArrayBuffer> {
    this.alive("data");
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    if (bytes > 0) {
      this.copyEncoder().copyBufferToBuffer(src.buffer, 0, staging, 0, size);
      src.lastBatch = this.batch;
    } else this.#begin();
    this.flush();
    this.stats.readbacks++;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      await this.checkErrors();
      return staging.getMappedRange().slice(0, bytes);
    } catch (e) {
      throw await this.#lostOr(e, "data");
    } finally {
      staging.destroy();
    }
  }

  async sync(): Promise<void> {
    this.alive("sync");
    this.flush();
    try {
      await this.device.queue.onSubmittedWorkDone();
      await this.checkErrors();
    } catch (e) {
      throw await this.#lostOr(e, "sync");
    }
  }

  /** Set by destroy(); later work is an error naming the destroyed device. */
  destroyed = false;

  /**
   * Destroys the pooled buffers and the device (which destroys every buffer made from it),
   * so the implementation releases its memory now, inside the program. Work queued but not
   * submitted is dropped: callers that care wait first (Device.destroy does).
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.#pass = null;
    this.#encoder = null;
    this.pool.trim();
    this.device.destroy();
  }
}

/**
 * Destroys `rt` when a Deno program or test module unloads, so the GPU driver's teardown
 * runs inside the program's life, not in whatever order process exit happens to take.
 * Browsers release a page's devices themselves (and an unload listener there is deprecated
 * and blocks the back/forward cache), so there is no listener where a document exists.
 */
function destroyOnUnload(rt: GpuRuntime): void {
  const g = globalThis as {
    document?: unknown;
    addEventListener?: (type: string, fn: () => void) => void;
  };
  if (g.document === undefined && typeof g.addEventListener === "function") {
    g.addEventListener("unload", () => rt.destroy());
  }
}

/** Which kernel variants to use: by adapter (`"auto"`), or forced (a testing aid). */
export type GpuTuning = "auto" | "gpu" | "cpu-like";

/** Asks for an adapter and a device with every limit raised to the adapter's maximum. */
export async function acquireGpu(tuning: GpuTuning = "auto"): Promise<GpuRuntime | null> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return null;
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch {
    return null;
  }
  if (!adapter) return null;
  const requiredLimits: Record<string, number> = {};
  for (const key of LIMIT_KEYS) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof v === "number") requiredLimits[key] = v;
  }
  const device = await adapter.requestDevice({ requiredLimits });
  const info = adapter.info;
  // Chromium leaves description empty and names SwiftShader in architecture
  const description =
    [info.description || info.architecture, info.vendor && `vendor ${info.vendor}`]
      .filter(Boolean).join(", ") || "WebGPU adapter";
  const cpuLike = tuning === "auto"
    ? info.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader/i.test(description)
    : tuning === "cpu-like";
  const rt = new GpuRuntime(
    device,
    tuning === "auto" ? description : `${description}; ${tuning} tuning`,
    cpuLike,
  );
  destroyOnUnload(rt);
  return rt;
}

const LIMIT_KEYS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
];
