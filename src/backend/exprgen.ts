/**
 * What the two code generators (webgpu/codegen.ts writes WGSL, cpu/codegen.ts JavaScript)
 * share: evaluating a LazyStorage expression at an index, node by node, with each value
 * emitted once per index (a DAG, not a tree), and the index arithmetic of views and pads.
 * Subclasses say how to write numbers, integer `let`s, quotients and each value op.
 *
 * Split kernels: when an output of size N = Q·M is built from operands broadcast along its
 * leading axis (K probes against one primal), the kernel loops over q < Q for each r < M
 * and the index is known as q·M + r. Code whose index does not depend on q (the primal's
 * share of the work) goes to `outer`, run once per r, the rest to `inner`; code that
 * depends on no index at all (constants) goes to `pre`, run once per kernel.
 */
import type { Expr, LazyStorage } from "./lazy.ts";

/** An index: an expression name, whether it varies with q, its (q, r) split if known, and whether it is a constant. */
export interface Ix {
  readonly e: string;
  readonly q: boolean;
  readonly split?: { readonly q: string; readonly r: string; readonly m: number };
  readonly fixed?: boolean;
}

/** A value: the name it was emitted under, and what it depends on. */
export interface Val {
  readonly name: string;
  readonly q: boolean;
  readonly fixed?: boolean;
}

type View<B> = Extract<Expr<B>, { kind: "view" }>;
type Pad<B> = Extract<Expr<B>, { kind: "pad" }>;

export abstract class ExprGen<B> {
  /** Lines that depend on q (all of them, in a plain kernel). */
  readonly inner: string[] = [];
  /** Lines that do not depend on q (split kernels only). */
  readonly outer: string[] = [];
  /** Lines that depend on no index (hoisted out of every loop where the target allows). */
  readonly pre: string[] = [];
  #memo = new Map<string, Val>();
  #n = 0;

  constructor(
    /** Inner size M of a split kernel, or undefined for a plain one. */
    readonly splitM: number | undefined,
    /** Runs an opaque node (a reduction) so it can be read as a buffer. */
    readonly realizeNode: (s: LazyStorage<B>) => void,
  ) {}

  /** The index a kernel starts from: `idx`, split as q·M + r in a split kernel. */
  root(): Ix {
    const m = this.splitM;
    return m ? { e: "idx", q: true, split: { q: "q", r: "r", m } } : { e: "idx", q: true };
  }

  /** A fresh name with a prefix. */
  protected fresh(prefix: string): string {
    return `${prefix}${this.#n++}`;
  }

  /** Files a line by what it depends on. */
  protected push(line: string, q: boolean, fixed = false): void {
    if (fixed && this.hoists) this.pre.push(line);
    else (q || !this.splitM ? this.inner : this.outer).push(line);
  }

  /** Whether `fixed` lines may go to `pre` (a target that declares them before its loops). */
  protected abstract readonly hoists: boolean;
  /** The literal zero index. */
  protected abstract readonly zero: string;
  /** A reference to integer parameter v (a size, stride or offset). */
  protected abstract int(v: number): string;
  /** Emits `name = expr` for an integer index; returns the name. */
  protected abstract intLet(expr: string, q: boolean, fixed?: boolean): string;
  /** Emits ⌊x / d⌋ for an index x and a size d ≥ 2; returns its name. */
  protected abstract quotient(x: Ix, d: number): string;
  /** A boolean: k (= index − before) lies in [0, len). */
  protected abstract inRange(k: string, len: string): string;
  /** Emits a boolean `let`; returns its name. */
  protected abstract boolLet(expr: string, q: boolean): string;
  /** The expression `cond ? a : b`. */
  protected abstract pick(cond: string, a: string, b: string): string;
  /** Emits the value of node `ls` at `ix` (children through `valueOf`). */
  protected abstract compute(ls: LazyStorage<B>, ix: Ix): Val;

  /** Name of the value of `ls` at index `ix`. */
  value(ls: LazyStorage<B>, ix: Ix = this.root()): string {
    return this.valueOf(ls, ix).name;
  }

  /** The value of `ls` at `ix`, emitted once per (node, index). */
  protected valueOf(ls: LazyStorage<B>, ix: Ix): Val {
    // a constant reads the same at every index: emit it once
    const key = ls.expr?.kind === "const" ? `${ls.id}` : `${ls.id}@${ix.e}`;
    const hit = this.#memo.get(key);
    if (hit) return hit;
    if (ls.expr?.kind === "reduce") this.realizeNode(ls);
    const v = this.compute(ls, ix);
    this.#memo.set(key, v);
    return v;
  }

  /**
   * Splits `ix` over `shape` (row-major); returns the per-dim indices and, when ix's (q, r)
   * split lines up with the shape (the dims from `cut` on multiply to M), the first dim
   * that comes from r, else −1.
   */
  protected unravel(ix: Ix, shape: readonly number[]): { parts: Ix[]; cut: number } {
    const r = shape.length;
    const out = new Array<Ix>(r);
    let cut = -1;
    if (ix.split) {
      let p = 1;
      for (let d = r - 1; d >= 0 && p < ix.split.m; d--) {
        p *= shape[d];
        if (p === ix.split.m) cut = d;
      }
    }
    const walk = (from: Ix, lo: number, hi: number) => {
      let rem = from;
      for (let d = hi - 1; d >= lo; d--) {
        if (d === lo) {
          out[d] = rem;
          break;
        }
        if (shape[d] === 1) {
          out[d] = { e: this.zero, q: false };
          continue;
        }
        const quot = this.quotient(rem, shape[d]);
        out[d] = { e: this.intLet(`${rem.e} - ${quot} * ${this.int(shape[d])}`, rem.q), q: rem.q };
        rem = { e: quot, q: rem.q };
      }
    };
    if (cut >= 0) {
      walk({ e: ix.split!.r, q: false }, cut, r);
      if (cut > 0) walk({ e: ix.split!.q, q: true }, 0, cut);
    } else walk(ix, 0, r);
    return { parts: out, cut };
  }

  /** An index q·m + r with a known split (r must stay below m wherever the kernel reads it). */
  protected splitIx(q: string, r: string, m: number): Ix {
    return { e: this.intLet(`${q} * ${this.int(m)} + ${r}`, true), q: true, split: { q, r, m } };
  }

  /**
   * The child's index under a view (out[idx] = x[offset + Σ idx_d·strides_d]). A view whose
   * probe axis steps whole rows of its child keeps the (q, r) split, so the child's own
   * views need no division either.
   */
  protected viewIx(e: View<B>, ix: Ix): Ix {
    if (e.shape.length === 0 || e.strides.every((st) => st === 0)) {
      return { e: this.int(e.offset), q: false, fixed: true };
    }
    const { parts, cut } = this.unravel(ix, e.shape);
    const term = (
      d: number,
    ) => (e.strides[d] === 1 ? parts[d].e : `${parts[d].e} * ${this.int(e.strides[d])}`);
    const dims = parts.map((_, d) => d).filter((d) => e.strides[d] !== 0);
    const q = dims.some((d) => parts[d].q);
    if (q && cut === 1 && e.strides[0] > 0) {
      const trailing = dims.filter((d) => d >= 1);
      const reach = e.offset + trailing.reduce((a, d) => a + (e.shape[d] - 1) * e.strides[d], 0);
      if (e.offset >= 0 && trailing.every((d) => e.strides[d] > 0) && reach < e.strides[0]) {
        const r = this.intLet([this.int(e.offset), ...trailing.map(term)].join(" + "), false);
        return this.splitIx(parts[0].e, r, e.strides[0]);
      }
    }
    return { e: this.intLet([this.int(e.offset), ...dims.map(term)].join(" + "), q), q };
  }

  /**
   * The child's index under a constant pad and the condition "inside the child": where it
   * is false the index is 0 (a harmless read) and the pad value is taken. Rows of the probe
   * axis stay rows of the child, so a split survives the pad.
   */
  protected padIx(e: Pad<B>, ix: Ix): { child: Ix; inside: string; q: boolean } {
    const { parts, cut } = this.unravel(ix, e.outShape);
    // an axis the pad leaves alone (nothing before or after) needs neither shift nor test
    const ks = parts.map((p, d) => {
      const open = e.before[d] === 0 && e.inShape[d] === e.outShape[d];
      const k = open ? p.e : this.intLet(`${p.e} - ${this.int(e.before[d])}`, p.q);
      return { e: k, q: p.q, len: this.int(e.inShape[d]), open };
    });
    const part = (lo: number, hi: number) => {
      const sel = ks.slice(lo, hi);
      const q = sel.some((k) => k.q);
      const lin = sel.reduce(
        (acc, k, i) => (i === 0 ? k.e : `(${acc}) * ${k.len} + ${k.e}`),
        this.zero,
      );
      const tests = sel.filter((k) => !k.open).map((k) => this.inRange(k.e, k.len));
      if (tests.length === 0) {
        return { ok: "true", lin: sel.length > 1 ? this.intLet(lin, q) : lin, q };
      }
      const ok = this.boolLet(tests.join(" && "), q);
      return { ok, lin: this.intLet(this.pick(ok, lin, this.zero), q), q };
    };
    if (cut > 0) {
      const lead = part(0, cut), tail = part(cut, ks.length);
      let m = 1;
      for (let d = cut; d < e.inShape.length; d++) m *= e.inShape[d];
      const tests = [lead.ok, tail.ok].filter((c) => c !== "true");
      const inside = tests.length === 0
        ? "true"
        : tests.length === 1
        ? tests[0]
        : this.boolLet(tests.join(" && "), true);
      return { child: this.splitIx(lead.lin, tail.lin, m), inside, q: true };
    }
    const all = part(0, ks.length);
    return { child: { e: all.lin, q: all.q }, inside: all.ok, q: all.q };
  }
}
