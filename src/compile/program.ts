/**
 * Compiled programs (`jit`): the kernels one run of a function launched, recorded with the
 * buffers they read and wrote, and replayed on new inputs without tracing the function,
 * building its graph or lowering its kernels again.
 *
 * Recording maps each buffer to a slot: the inputs' buffers are the input slots; a buffer
 * a recorded step wrote gets a new slot (a pool may hand the same buffer out again later:
 * it then gets another slot); any other buffer a step reads existed before the run (a
 * closed-over tensor, a constant made inside the function): it is a constant of the
 * program, kept alive by it. Replay runs the steps in order on fresh buffers, frees each
 * intermediate after its last reader, and returns the output slots' buffers.
 */
import type { Dtype } from "../dtype.ts";
import type { LazyStorage } from "./lazy.ts";

/** One recorded unit of device work. */
export interface Step<B> {
  /** Slots the step reads. */
  readonly ins: readonly number[];
  /** The slot it writes, or −1 for a step that only checks (raises an error). */
  readonly out: number;
  /** Runs the step on the input buffers; returns the buffer written (fresh). */
  readonly run: (ins: readonly B[]) => B | null;
}

/** A value of the program: an input, a constant, or what a step wrote. */
type Slot<B> =
  | { readonly kind: "input"; readonly index: number }
  | { readonly kind: "const"; readonly storage: LazyStorage<B> }
  | { readonly kind: "step" };

let depth = 0;

/** True while a jit trace records (a nested jit then runs its function inline). */
export function recording(): boolean {
  return depth > 0;
}

/** Marks a recording as running; call the function returned when it ends. */
export function recordingScope(): () => void {
  depth++;
  let done = false;
  return () => {
    if (!done) depth--;
    done = true;
  };
}

export class Recorder<B> {
  readonly slots: Slot<B>[] = [];
  readonly steps: Step<B>[] = [];
  #current = new Map<B, number>();
  /** Set when the run did something a replay cannot repeat. */
  poisoned: string | null = null;
  /**
   * The first kernel failure met (a matrix that is not positive definite): a synchronous
   * backend records on past it, as a replay would run, so the program is whole; the trace
   * raises it at its end.
   */
  failure: Error | null = null;

  constructor(inputs: readonly LazyStorage<B>[]) {
    inputs.forEach((s, index) => {
      if (!s.buf) throw new Error("internal: a recorded input must be realized");
      if (!this.#current.has(s.buf)) {
        this.#current.set(s.buf, this.slots.push({ kind: "input", index }) - 1);
      }
    });
  }

  /** The slot of a realized storage read by a step (a constant if nothing made it). */
  slotOf(s: LazyStorage<B>): number {
    const buf = s.buf!;
    let k = this.#current.get(buf);
    if (k === undefined) {
      s.refs++; // the program keeps its constants alive
      k = this.slots.push({ kind: "const", storage: s }) - 1;
      this.#current.set(buf, k);
    }
    return k;
  }

  /** Records a step that read `ins` and wrote `out` (null: a check). */
  step(ins: readonly LazyStorage<B>[], out: B | null, run: Step<B>["run"]): void {
    const slots = ins.map((s) => this.slotOf(s));
    let o = -1;
    if (out !== null) {
      o = this.slots.push({ kind: "step" }) - 1;
      this.#current.set(out, o);
    }
    this.steps.push({ ins: slots, out: o, run });
  }

  /** The slot holding a realized output. */
  output(s: LazyStorage<B>): number {
    return this.slotOf(s);
  }

  /** Releases the constants held (a recording that yields no program). */
  dispose(release: (s: LazyStorage<B>) => void): void {
    for (const s of this.slots) if (s.kind === "const") release(s.storage);
    this.slots.length = 0;
  }
}

/** What a program needs from its device. */
export interface ProgramHost<B> {
  /** Returns an intermediate buffer to its pool. */
  readonly free: (buf: B) => void;
  /** A buffer a replay produced, as an output storage. */
  readonly wrap: (buf: B, dtype: Dtype, size: number) => LazyStorage<B>;
  /** Drops a reference to a storage (the constants, when the program is disposed). */
  readonly release: (s: LazyStorage<B>) => void;
}

/** An output of a program: its slot, and whether a step wrote it (else an input or a constant). */
interface Out {
  readonly slot: number;
  readonly dtype: Dtype;
  readonly size: number;
}

export class Program<B> {
  readonly #slots: Slot<B>[];
  readonly #steps: Step<B>[];
  readonly #outs: Out[];
  /** For each step, the intermediate slots to free once it has run. */
  readonly #frees: number[][];
  #disposed = false;

  constructor(rec: Recorder<B>, outputs: readonly LazyStorage<B>[], readonly host: ProgramHost<B>) {
    this.#slots = rec.slots;
    this.#steps = rec.steps;
    this.#outs = outputs.map((s) => ({ slot: rec.output(s), dtype: s.dtype, size: s.size }));
    const last = new Map<number, number>();
    this.#steps.forEach((st, i) => {
      for (const k of st.ins) last.set(k, i);
      if (st.out >= 0 && !last.has(st.out)) last.set(st.out, i); // written, never read
    });
    const kept = new Set(this.#outs.map((o) => o.slot));
    this.#frees = this.#steps.map(() => []);
    for (const [k, i] of last) {
      if (this.#slots[k].kind === "step" && !kept.has(k)) this.#frees[i].push(k);
    }
  }

  /** Steps per run. */
  get steps(): number {
    return this.#steps.length;
  }

  /** Runs the program on input storages (realized, in the recorded order); returns the outputs. */
  run(inputs: readonly LazyStorage<B>[]): LazyStorage<B>[] {
    const { free, wrap } = this.host;
    if (this.#disposed) throw new Error("internal: a disposed program was run");
    const bufs = new Array<B | null>(this.#slots.length).fill(null);
    this.#slots.forEach((s, k) => {
      if (s.kind === "input") bufs[k] = inputs[s.index].buf;
      else if (s.kind === "const") bufs[k] = s.storage.buf;
    });
    const steps = this.#steps;
    try {
      for (let i = 0; i < steps.length; i++) {
        const st = steps[i];
        const ins = st.ins.map((k) => bufs[k]!);
        const o = st.run(ins);
        if (st.out >= 0) bufs[st.out] = o;
        for (const k of this.#frees[i]) {
          free(bufs[k]!);
          bufs[k] = null;
        }
      }
    } catch (e) {
      // nothing escapes a failed run: free what it made
      this.#slots.forEach((s, k) => {
        if (s.kind === "step" && bufs[k] !== null) free(bufs[k]!);
      });
      throw e;
    }
    const made = new Map<number, LazyStorage<B>>();
    return this.#outs.map((o) => {
      const s = this.#slots[o.slot];
      if (s.kind === "input") return shared(inputs[s.index]);
      if (s.kind === "const") return shared(s.storage);
      const hit = made.get(o.slot);
      if (hit) return shared(hit);
      const w = wrap(bufs[o.slot]!, o.dtype, o.size);
      made.set(o.slot, w);
      return w;
    });
  }

  /** Releases the constants the program holds. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const s of this.#slots) if (s.kind === "const") this.host.release(s.storage);
  }
}

function shared<B>(s: LazyStorage<B>): LazyStorage<B> {
  s.refs++;
  return s;
}
