/**
 * jit on WebGPU: the dispatches, uploads and status checks of one run, recorded and
 * replayed (the CPU's counterpart is ../../compile/program.ts).
 *
 * A replay issues the recorded commands into the runtime's open command buffer: no
 * tracing, graph building, lowering or pipeline lookup, and no submit of its own (a call
 * adds its commands to the batch the next read-back submits). What a trace made is fixed
 * once: the program owns a buffer for every intermediate and a copy of every constant
 * (closed-over tensors, so a replay sees the values they had when traced), its uniform
 * data is written once, and the bind groups of dispatches that touch only the program's
 * own buffers are created once. Dispatches that bind a call's inputs or outputs get their
 * bind groups per call (a few are kept, for loops that alternate between buffers).
 * Uploads made while tracing (a status word reset, an accumulator's start) become copies
 * from a buffer holding the data, so they stay in order with the commands around them;
 * copies between buffers (a solver's working copy of its right-hand side) are replayed too.
 * Each status check is made again, and a result owns the checks (and the inputs' errors)
 * its traced counterpart owned (../fault.ts).
 */
import { type GpuRuntime, SLOT } from "./runtime.ts";
import type { GpuStorage } from "./pool.ts";
import { type Check, Fault } from "../fault.ts";
import { LazyStorage } from "../../compile/lazy.ts";
import type { Dtype } from "../../dtype.ts";

type Verdict = (v: Float32Array) => string | null;

type Step =
  | {
    readonly kind: "dispatch";
    readonly name: string;
    readonly pipeline: GPUComputePipeline;
    readonly params: ArrayBuffer;
    readonly slots: readonly number[];
    readonly gx: number;
    readonly gy: number;
  }
  | { readonly kind: "upload"; readonly slot: number; readonly data: ArrayBuffer }
  | { readonly kind: "copy"; readonly from: number; readonly to: number; readonly bytes: number }
  | {
    readonly kind: "check";
    readonly slot: number;
    readonly bytes: number;
    readonly verdict: Verdict;
    readonly traced: Check;
  };

type Slot =
  | { readonly kind: "input"; readonly index: number }
  | { readonly kind: "made" }
  | { readonly kind: "const"; readonly buf: GpuStorage };

/** Records what the runtime does while a jit trace runs (the runtime calls it). */
export class GpuRecorder {
  readonly slots: Slot[] = [];
  /** Bytes of each slot's buffer. */
  readonly bytes: number[] = [];
  readonly steps: Step[] = [];
  #slot = new Map<GpuStorage, number>();

  constructor(inputs: readonly GpuStorage[]) {
    inputs.forEach((b, index) => {
      if (!this.#slot.has(b)) this.#add(b, { kind: "input", index });
    });
  }

  #add(b: GpuStorage, s: Slot): number {
    this.bytes.push(b.byteLength);
    const k = this.slots.push(s) - 1;
    this.#slot.set(b, k);
    return k;
  }

  /** A buffer taken from the pool during the trace: an intermediate (or output) of the program. */
  made(b: GpuStorage): void {
    this.#add(b, { kind: "made" });
  }

  /** The slot of a buffer (one that existed before the trace is a constant). */
  slot(b: GpuStorage): number {
    return this.#slot.get(b) ?? this.#add(b, { kind: "const", buf: b });
  }

  dispatch(
    name: string,
    pipeline: GPUComputePipeline,
    params: ArrayBuffer,
    buffers: readonly GpuStorage[],
    gx: number,
    gy: number,
  ): void {
    const slots = buffers.map((b) => this.slot(b));
    this.steps.push({ kind: "dispatch", name, pipeline, params: params.slice(0), slots, gx, gy });
  }

  upload(b: GpuStorage, data: ArrayBufferView): void {
    const copy = new Uint8Array(data.byteLength);
    copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.steps.push({ kind: "upload", slot: this.slot(b), data: copy.buffer });
  }

  /** A buffer-to-buffer copy queued between kernels (a solver's working copy of its input). */
  copy(from: GpuStorage, to: GpuStorage, bytes: number): void {
    this.steps.push({ kind: "copy", from: this.slot(from), to: this.slot(to), bytes });
  }

  check(b: GpuStorage, bytes: number, verdict: Verdict, traced: Check): void {
    this.steps.push({ kind: "check", slot: this.slot(b), bytes, verdict, traced });
  }
}

/** Bind groups of one dispatch for the call buffers it last saw. */
interface Binding {
  readonly fixed: GPUBindGroup | null;
  readonly recent: { key: readonly GPUBuffer[]; group: GPUBindGroup }[];
}

/** How an output's error is rebuilt on a replay: the checks and input errors it depends on. */
interface Owns {
  readonly steps: number[];
  readonly inputs: number[];
  readonly other: Fault[];
}

export class GpuProgram {
  readonly #rt: GpuRuntime;
  readonly #slots: Slot[];
  readonly #steps: Step[];
  /** The program's own buffers: intermediates and constants' copies (null for inputs and outputs). */
  readonly #own: (GpuStorage | null)[];
  readonly #outs: { slot: number; dtype: Dtype; size: number; bytes: number; owns: Owns }[];
  readonly #uniform: GPUBuffer;
  readonly #offsets: number[] = [];
  readonly #bindings: (Binding | null)[] = [];
  readonly #staging: (GpuStorage | null)[] = [];
  #disposed = false;

  constructor(
    rt: GpuRuntime,
    rec: GpuRecorder,
    inputs: readonly LazyStorage<GpuStorage>[],
    outputs: readonly LazyStorage<GpuStorage>[],
  ) {
    this.#rt = rt;
    this.#slots = rec.slots;
    this.#steps = rec.steps;
    // outputs a step made get a fresh buffer per call; an input or constant returned as it is
    // is shared or copied
    const outSlots = new Set<number>();
    const inputFaults = new Map<Fault, number>();
    inputs.forEach((s, i) => s.fault && inputFaults.set(s.fault, i));
    const stepOf = new Map<Check, number>();
    this.#steps.forEach((st, i) => st.kind === "check" && stepOf.set(st.traced, i));
    this.#outs = outputs.map((s) => {
      const slot = rec.slot(s.buf!);
      if (this.#slots[slot].kind === "made") outSlots.add(slot);
      const owns = owned(s.fault, stepOf, inputFaults);
      return { slot, dtype: s.dtype, size: s.size, bytes: s.byteLength, owns };
    });
    this.#own = this.#slots.map((s, k) => {
      if (s.kind === "input" || outSlots.has(k)) return null;
      const b = rt.pool.acquire(rec.bytes[k], rt.batch, false);
      if (s.kind === "const") rt.copy(s.buf, b, s.buf.byteLength);
      return b;
    });
    // uniform data, written once
    let at = 0;
    for (const st of this.#steps) {
      this.#offsets.push(at);
      if (st.kind === "dispatch") at += SLOT;
    }
    this.#uniform = rt.device.createBuffer({
      size: Math.max(SLOT, at),
      usage: rt.paramsUsage,
    });
    this.#steps.forEach((st, i) => {
      if (st.kind === "dispatch") {
        rt.device.queue.writeBuffer(this.#uniform, this.#offsets[i], st.params);
      }
      this.#bindings.push(null);
      this.#staging.push(null);
      if (st.kind === "upload") {
        const s = rt.pool.acquire(st.data.byteLength, rt.batch, true);
        rt.device.queue.writeBuffer(s.buffer, 0, st.data);
        this.#staging[i] = s;
      }
    });
    this.#steps.forEach((st, i) => {
      if (st.kind !== "dispatch") return;
      const fixed = st.slots.every((k) => this.#own[k] !== null);
      this.#bindings[i] = {
        fixed: fixed ? this.#group(i, st.slots.map((k) => this.#own[k]!)) : null,
        recent: [],
      };
    });
  }

  /** Commands per run. */
  get steps(): number {
    return this.#steps.length;
  }

  #group(i: number, bufs: readonly GpuStorage[]): GPUBindGroup {
    const st = this.#steps[i] as Extract<Step, { kind: "dispatch" }>;
    const entries: GPUBindGroupEntry[] = [{
      binding: 0,
      resource: { buffer: this.#uniform, offset: this.#offsets[i], size: SLOT },
    }];
    bufs.forEach((b, j) =>
      entries.push({
        binding: j + 1,
        resource: { buffer: b.buffer, size: Math.max(4, b.byteLength) },
      })
    );
    return this.#rt.device.createBindGroup({ layout: st.pipeline.getBindGroupLayout(0), entries });
  }

  /** Runs the program on realized inputs (in the recorded order); returns the outputs. */
  run(inputs: readonly LazyStorage<GpuStorage>[]): LazyStorage<GpuStorage>[] {
    if (this.#disposed) throw new Error("internal: a disposed program was run");
    const rt = this.#rt;
    const bufs = this.#slots.map((
      s,
      k,
    ) => (s.kind === "input" ? inputs[s.index].buf! : this.#own[k]));
    for (const o of this.#outs) {
      if (!bufs[o.slot]) bufs[o.slot] = rt.pool.acquire(o.bytes, rt.batch, false);
    }
    const checks = new Map<number, Check>();
    this.#steps.forEach((st, i) => {
      if (st.kind === "upload") rt.copy(this.#staging[i]!, bufs[st.slot]!, st.data.byteLength);
      else if (st.kind === "copy") rt.copy(bufs[st.from]!, bufs[st.to]!, st.bytes);
      else if (st.kind === "check") {
        checks.set(i, rt.addCheck(bufs[st.slot]!, st.bytes, st.verdict));
      } else {
        const used = st.slots.map((k) => bufs[k]!);
        rt.replayDispatch(st.name, st.pipeline, this.#bindGroup(i, used), st.gx, st.gy, used);
      }
    });
    const made = new Map<number, LazyStorage<GpuStorage>>();
    return this.#outs.map((o) => {
      const slot = this.#slots[o.slot];
      if (slot.kind === "input") {
        const x = inputs[slot.index];
        x.refs++;
        return x;
      }
      const hit = made.get(o.slot);
      if (hit) return (hit.refs++, hit);
      let buf = bufs[o.slot]!;
      if (slot.kind === "const") {
        // a closed-over tensor returned as it is: a copy of the program's copy
        const b = rt.pool.acquire(o.bytes, rt.batch, false);
        rt.copy(buf, b, o.bytes);
        buf = b;
      }
      const s = new LazyStorage<GpuStorage>(o.dtype, o.size, buf, null);
      const own = o.owns.steps.map((i) => checks.get(i)!);
      const from = [...o.owns.other, ...o.owns.inputs.flatMap((i) => inputs[i].fault ?? [])];
      s.fault = own.length || from.length ? new Fault(own, from) : null;
      made.set(o.slot, s);
      return s;
    });
  }

  /** The dispatch's bind group for these buffers: fixed, or one of the few recently used. */
  #bindGroup(i: number, used: readonly GpuStorage[]): GPUBindGroup {
    const b = this.#bindings[i]!;
    if (b.fixed) return b.fixed;
    const key = used.map((u) => u.buffer);
    const hit = b.recent.find((r) => r.key.every((x, j) => x === key[j]));
    if (hit) return hit.group;
    const group = this.#group(i, used);
    b.recent.push({ key, group });
    if (b.recent.length > 4) b.recent.shift();
    return group;
  }

  /** Returns the program's buffers to the pool (once the work queued on them is done). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const rt = this.#rt;
    for (const b of [...this.#own, ...this.#staging]) if (b) rt.pool.release(b, rt.batch);
    rt.retire(this.#uniform);
  }
}

/** The checks (by step) and input errors (by input) a traced output's error was made of. */
function owned(f: Fault | null, stepOf: Map<Check, number>, inputs: Map<Fault, number>): Owns {
  const out: Owns = { steps: [], inputs: [], other: [] };
  const seen = new Set<Fault>();
  const stack = f ? [f] : [];
  while (stack.length) {
    const g = stack.pop()!;
    if (seen.has(g)) continue;
    seen.add(g);
    const i = inputs.get(g);
    if (i !== undefined) {
      out.inputs.push(i);
      continue;
    }
    const { checks, from } = g.parts();
    for (const c of checks) {
      const k = stepOf.get(c);
      if (k !== undefined) out.steps.push(k);
      // a check made before the trace (a constant's pending error) stays as it is
      else out.other.push(new Fault([c]));
    }
    stack.push(...from);
  }
  return out;
}
