/**
 * Lowering: a LazyStorage expression evaluated at a kernel's index, as uops (uops.ts).
 * Each node's value is lowered once per index it is read at (a DAG, not a tree); views and
 * pads become index arithmetic; numbers (sizes, strides, offsets, constants) become
 * parameter slots, so one compiled kernel serves every size, except small integral
 * constants, which are literals the renderer can fold.
 *
 * Split kernels: when an output of size N = Q·M is built from operands broadcast along its
 * leading axis (K probes against one primal), the kernel loops over q < Q for each r < M
 * and the index is known as q·M + r. Index arithmetic that does not depend on q lands at
 * level 1 (run once per r) by itself; views whose probe axis steps whole rows of their
 * child keep the (q, r) split, so the child's own views need no division either.
 */
import { BINARY_OPS, UNARY_OPS } from "../backend/backend.ts";
import type { Dtype } from "../dtype.ts";
import { type Expr, forChildren, isCostly, type LazyStorage } from "./lazy.ts";
import { Finished, perProbeCone, T, U, Uops } from "./uops.ts";
import { binaryFn, ruleStats, simplifier } from "./rewrite.ts";

/** What lowering needs to know about the device it lowers for. */
export interface Target {
  /** Divides indices by multiply-and-shift (the divisor's magic numbers take two more slots). */
  readonly magicDivision: boolean;
  /** Indices are signed (JavaScript numbers): a negative offset has a proper residue. */
  readonly signedIndex: boolean;
  /**
   * Prints small integral constants as literals. Not on WGSL, whose compilers may fold
   * 0 · x to 0 when they see a literal 0 (WGSL lets them assume no infinities or NaNs).
   */
  readonly literals: boolean;
}

/** An index uop, and its (q, r) split when known. */
interface Ix {
  readonly u: number;
  readonly split?: { readonly q: number; readonly r: number; readonly m: number };
  /**
   * The same index without the bounds guards of the pads above it, for values that read no
   * memory (comb probes): where a guard fails the pad discards the value anyway, and the
   * unguarded index stays affine in r, so its comb residue is cheap.
   */
  readonly safe?: Ix;
}

type View<B> = Extract<Expr<B>, { kind: "view" }>;
type Pad<B> = Extract<Expr<B>, { kind: "pad" }>;
type Band<B> = Extract<Expr<B>, { kind: "band" }>;

/** The uop type of a dtype's values. */
export function typeOf(dtype: Dtype): number {
  return dtype === "f32" ? T.F32 : dtype === "f64" ? T.F64 : T.I32;
}

/**
 * Whether a constant is printed as a literal: small integers and halves, which appear as
 * structure (the 2 of x², the 1 of 1 − σ) rather than as data; other numbers stay
 * parameters so that a loop whose scalar changes every iteration reuses one kernel. The
 * bound is low (16) because larger integers are mostly data: a weight 40N written as a
 * literal up to 1,024 made the kernels at N = 16 another structure than at N = 64, and a
 * parameter costs a kernel nothing (it is read once per launch).
 */
export function isLiteral(v: number): boolean {
  return (Number.isInteger(v) && Math.abs(v) <= 16 && !Object.is(v, -0)) || v === 0.5 ||
    v === -0.5;
}

/** A value as the dtype holds it. */
export function asDtype(dtype: Dtype, v: number): number {
  return dtype === "f32" ? Math.fround(v) : dtype === "i32" ? v | 0 : v;
}

/** A lowered kernel, with the numbers and buffers one launch of it needs. */
export interface Lowered<B> {
  readonly kernel: Finished;
  /** Parameter slots (read by IParam / VParam uops). */
  readonly params: number[];
  /** The uop type of each slot (how a device packs it). */
  readonly ptypes: number[];
  /** Realized storages read by the kernel (Load payloads index this list). */
  readonly leaves: LazyStorage<B>[];
  /** Costly ops the kernel evaluates at more than one index per entry (see schedule.ts, lowerOnce). */
  readonly repeated: { node: LazyStorage<B>; count: number }[];
}

let epochs = 0;

export class Lowering<B> {
  readonly u: Uops = new Uops();
  readonly params: number[] = [];
  readonly ptypes: number[] = [];
  readonly leaves: LazyStorage<B>[] = [];
  /** The parameter slot of each constant node lowered as a parameter (see lower_cache.ts). */
  readonly constSlots: { node: LazyStorage<B>; slot: number }[] = [];
  /** Stamps the nodes this lowering visits (their memo fields are valid for it only). */
  readonly #epoch = ++epochs;
  /** Values of nodes read at more than one index. */
  #more = new Map<LazyStorage<B>, Map<number, number>>();
  /** Whether a node's value reads no memory (see Ix.safe). */
  #loadFree = new Map<LazyStorage<B>, boolean>();
  /** The slot of each divisor value. */
  #divisors = new Map<number, number>();
  /** The slot of each integer parameter value. */
  #ints = new Map<number, number>();
  #zero: number;
  /** The node being lowered (a band is gathered only there). */
  #top: LazyStorage<B> | null = null;

  constructor(
    readonly target: Target,
    /** Inner size M of a split kernel, or undefined for a plain one. */
    readonly splitM: number | undefined,
    /** Runs an opaque node (a reduction) so it can be read as a buffer. */
    readonly realizeNode: (s: LazyStorage<B>) => void,
  ) {
    this.#zero = this.u.push(U.ILit, T.Int, -1, -1, -1, 0);
  }

  /** The index a kernel starts from: `idx`, split as q·M + r in a split kernel. */
  root(): Ix {
    const idx = this.u.push(U.Idx, T.Int);
    const m = this.splitM;
    if (!m) return { u: idx };
    return { u: idx, split: { q: this.u.push(U.Q, T.Int), r: this.u.push(U.R, T.Int), m } };
  }

  /** Lowers `ls` at the kernel's index and finishes the kernel. */
  lower(ls: LazyStorage<B>, kind: string): Lowered<B> {
    this.#top = ls;
    let v = this.value(ls, this.root());
    if (this.splitM && simplifier.enabled) {
      const lin = combLinear(this.u, v, (t) => this.u.push(U.VLit, t, -1, -1, -1, 0));
      if (lin >= 0) {
        v = lin;
        ruleStats.set("comb probes", (ruleStats.get("comb probes") ?? 0) + 1);
      }
    }
    const kernel = new Finished(this.u, v, kind, this.target.magicDivision ? 3 : 1);
    return {
      kernel,
      params: kernel.slotOrder.map((s) => this.params[s]),
      ptypes: kernel.slotOrder.map((s) => this.ptypes[s]),
      leaves: kernel.leafOrder.map((l) => this.leaves[l]),
      repeated: [...this.#more]
        .filter(([s]) => isCostly(s))
        .map(([node, at]) => ({ node, count: 1 + at.size })),
    };
  }

  #slot(v: number, type: number): number {
    this.ptypes.push(type);
    return this.params.push(v) - 1;
  }

  /** An integer parameter. */
  /**
   * An integer parameter (a size, stride or offset). Equal numbers share a slot, so index
   * arithmetic that two separately built views of one buffer repeat is merged (and with it
   * everything computed from what they read); the price is that a kernel's key notes which
   * of its sizes coincide, which changes with the sizes only when they are small.
   */
  int(v: number): number {
    // a divisor's slot holds the number itself first: d·⌊x/d⌋ then names the d of x mod d,
    // so re-linearising an unravelled index (⌊x/d⌋·d + x mod d) folds back to x (see add)
    let slot = this.#ints.get(v) ?? this.#divisors.get(v);
    if (slot === undefined) this.#ints.set(v, slot = this.#slot(v, T.Int));
    return this.u.push(U.IParam, T.Int, -1, -1, -1, slot);
  }

  lit(v: number): number {
    return v === 0 ? this.#zero : this.u.push(U.ILit, T.Int, -1, -1, -1, v);
  }

  /**
   * a + b, folding an index unravelled and linearised again back to itself: with A = d·⌊x/d⌋
   * and x mod d computed as x − A, A + (x − A) = x, and (A ± e) + (x − A) = x ± e for the
   * shifts of pads and slices (e fixed for the kernel), so shifted reads of one index stay
   * affine in it (a comb residue of x ± e is then cheap: see #residue).
   */
  add(a: number, b: number): number {
    if (a === this.#zero) return b;
    if (b === this.#zero) return a;
    const u = this.u;
    const folded = this.#refold(a, b) ?? this.#refold(b, a);
    if (folded !== null) return folded;
    return u.push(U.IAdd, T.Int, a, b);
  }

  /** a + r for r = x − A, when a is A, A + e, e + A or A − e; else null. */
  #refold(a: number, r: number): number | null {
    const u = this.u;
    if (u.op[r] !== U.ISub) return null;
    const [x, A] = [u.a[r], u.b[r]];
    if (a === A) return x;
    if (u.op[a] === U.IAdd && u.b[a] === A) return this.add(x, u.a[a]);
    if (u.op[a] === U.IAdd && u.a[a] === A) return this.add(x, u.b[a]);
    if (u.op[a] === U.ISub && u.a[a] === A) return u.push(U.ISub, T.Int, x, u.b[a]);
    return null;
  }

  /** a·b; (x ± c)·b = x·b ± c·b when c and b are fixed for the kernel (see add). */
  mul(a: number, b: number): number {
    const u = this.u;
    const op = u.op[a];
    if ((op === U.IAdd || op === U.ISub) && u.level[b] === 0 && u.level[u.b[a]] === 0) {
      const x = this.mul(u.a[a], b), c = this.mul(u.b[a], b);
      return op === U.IAdd ? this.add(x, c) : u.push(U.ISub, T.Int, x, c);
    }
    return u.push(U.IMul, T.Int, a, b);
  }

  /** ⌊x / d⌋ (d ≥ 2) and the uop of d. */
  quotient(x: number, d: number): { q: number; d: number } {
    const slot = this.#divisor(d);
    return {
      q: this.u.push(U.IDiv, T.Int, x, -1, -1, slot),
      d: this.u.push(U.IParam, T.Int, -1, -1, -1, slot),
    };
  }

  /** A value constant of a dtype: a literal when small and integral, else a parameter. */
  constant(dtype: Dtype, v: number): number {
    const x = asDtype(dtype, v);
    const t = typeOf(dtype);
    if (this.target.literals && isLiteral(x)) return this.u.push(U.VLit, t, -1, -1, -1, x);
    return this.u.push(U.VParam, t, -1, -1, -1, this.#slot(x, t));
  }

  #leaf(ls: LazyStorage<B>): number {
    if (ls._leaf < 0) ls._leaf = this.leaves.push(ls) - 1;
    return ls._leaf;
  }

  #isLoadFree(ls: LazyStorage<B>): boolean {
    if (ls.buf || !ls.expr) return false;
    const e = ls.expr;
    if (e.kind === "const" || e.kind === "iota" || e.kind === "comb") return true;
    if (e.kind === "reduce") return false;
    let hit = this.#loadFree.get(ls);
    if (hit === undefined) {
      hit = true;
      forChildren(e, (c) => (hit &&= this.#isLoadFree(c)));
      this.#loadFree.set(ls, hit);
    }
    return hit;
  }

  /** The value uop of `ls` at index `ix`, lowered once per (node, index). */
  value(ls: LazyStorage<B>, ix: Ix): number {
    if (ix.safe && ix.safe.u !== ix.u && this.#isLoadFree(ls)) ix = ix.safe;
    // a constant reads the same at every index: lower it once
    const at = ls.expr?.kind === "const" ? -2 : ix.u;
    if (ls._epoch !== this.#epoch) {
      ls._epoch = this.#epoch;
      ls._ix = -1;
      ls._leaf = -1;
    } else if (ls._ix === at) return ls._val;
    else if (ls._ix !== -1) {
      const hit = this.#more.get(ls)?.get(at);
      if (hit !== undefined) return hit;
    }
    // reductions are kernels of their own; so is a band read by another kernel (it gathers
    // its products at an index of its own, and its own kernel may write it from theirs)
    const kind = ls.expr?.kind;
    if (kind === "reduce" || (kind === "band" && ls !== this.#top)) this.realizeNode(ls);
    const v = this.#compute(ls, ix);
    if (ls._ix === -1) {
      ls._ix = at;
      ls._val = v;
    } else {
      let m = this.#more.get(ls);
      if (!m) this.#more.set(ls, m = new Map());
      m.set(at, v);
    }
    return v;
  }

  #compute(ls: LazyStorage<B>, ix: Ix): number {
    const t = typeOf(ls.dtype);
    const u = this.u;
    if (ls.buf) return u.push(U.Load, t, ix.u, -1, -1, this.#leaf(ls));
    const e = ls.expr!;
    switch (e.kind) {
      case "const": {
        const v = this.constant(ls.dtype, e.value);
        if (u.op[v] === U.VParam) this.constSlots.push({ node: ls, slot: u.payload[v] });
        return v;
      }
      case "iota":
        return u.push(
          U.Iota,
          t,
          ix.u,
          this.constant(ls.dtype, e.start),
          this.constant(ls.dtype, e.step),
        );
      case "comb": {
        // probe k = idx / n has a 1 at i = idx mod n where i ≡ k (mod period)
        let k: number, i: number;
        if (ix.split && ix.split.m === e.n) [k, i] = [ix.split.q, ix.split.r];
        else if (e.n === 1) [k, i] = [ix.u, this.#zero];
        else {
          const { q, d } = this.quotient(ix.u, e.n);
          [k, i] = [q, u.push(U.ISub, T.Int, ix.u, this.mul(q, d))];
        }
        // i mod p, once per entry r when i is the r of a split kernel
        const rem = e.period > 1 ? this.#residue(i, e.period) : this.#zero;
        return u.push(U.BToV, t, u.push(U.IEq, T.Bool, rem, k));
      }
      case "unary":
        return u.push(U.Unary, t, this.value(e.x, ix), -1, -1, UNARY_OPS.indexOf(e.op));
      case "binary":
        return u.push(
          U.Binary,
          t,
          this.value(e.a, ix),
          this.value(e.b, ix),
          -1,
          BINARY_OPS.indexOf(e.op),
        );
      case "where":
        return u.push(U.Where, t, this.value(e.c, ix), this.value(e.a, ix), this.value(e.b, ix));
      case "cast": {
        const x = this.value(e.x, ix);
        return e.x.dtype === ls.dtype ? x : u.push(U.Cast, t, x);
      }
      case "view":
        return this.value(e.x, this.#viewIx(e, ix));
      case "pad": {
        const { child, inside } = this.#padIx(e, ix);
        const x = this.value(e.x, child);
        if (inside < 0) return x;
        return u.push(U.Select, t, inside, x, this.constant(ls.dtype, e.value));
      }
      case "band": {
        const { child, inside } = this.#bandIx(e, ix);
        return u.push(U.Select, t, inside, this.value(e.x, child), this.constant(ls.dtype, 0));
      }
      case "reduce":
        throw new Error("internal: a reduction was not realized before lowering");
    }
  }

  /** The slot of a divisor (one per value, so equal quotients are shared). */
  #divisor(d: number): number {
    let slot = this.#divisors.get(d);
    // without magic numbers a divisor is one slot: an integer parameter's will do
    if (slot === undefined && !this.target.magicDivision) slot = this.#ints.get(d);
    if (slot === undefined) {
      slot = this.#slot(d, T.Int);
      if (this.target.magicDivision) {
        const [m, sh] = magicDivisor(d);
        this.#slot(m, T.Int);
        this.#slot(sh, T.Int);
      }
      this.#divisors.set(d, slot);
    }
    return slot;
  }

  /** i − ⌊i/p⌋·p. */
  #mod(i: number, p: number): number {
    const slot = this.#divisor(p);
    const u = this.u;
    const d = u.push(U.IParam, T.Int, -1, -1, -1, slot);
    const q = u.push(U.IDiv, T.Int, i, -1, -1, slot);
    return u.push(U.ISub, T.Int, i, this.mul(q, d));
  }

  /**
   * i mod p. When i is r + c with c fixed for the kernel (a comb read through shifted views)
   * and indices are signed, it is (r mod p + c mod p) reduced once: one division per entry
   * shared by every shift, and one per shift per kernel, instead of one per shift per entry.
   */
  #residue(i: number, p: number): number {
    const u = this.u;
    const aff = this.target.signedIndex ? this.#affine(i) : null;
    if (!aff || aff.base < 0 || u.level[aff.c] > 0) return this.#mod(i, p);
    if (aff.c === this.#zero) return this.#mod(aff.base, p);
    const s = this.add(this.#mod(aff.base, p), this.#mod(aff.c, p));
    const d = u.push(U.IParam, T.Int, -1, -1, -1, this.#divisor(p));
    return u.push(U.ISel, T.Int, u.push(U.ILt, T.Bool, s, d), s, u.push(U.ISub, T.Int, s, d));
  }

  /** i as base + c, base the entry r of a split kernel (or −1: none), c fixed for the kernel. */
  #affine(i: number): { base: number; c: number } | null {
    const u = this.u;
    if (u.level[i] === 0) return { base: -1, c: i };
    const op = u.op[i];
    if (op === U.R) return { base: i, c: this.#zero };
    if (op !== U.IAdd && op !== U.ISub) return null;
    const a = this.#affine(u.a[i]), b = this.#affine(u.b[i]);
    if (!a || !b || (a.base >= 0 && b.base >= 0) || (op === U.ISub && b.base >= 0)) return null;
    const c = op === U.IAdd
      ? this.add(a.c, b.c)
      : b.c === this.#zero
      ? a.c
      : u.push(U.ISub, T.Int, a.c, b.c);
    return { base: a.base >= 0 ? a.base : b.base, c };
  }

  /**
   * Splits `ix` over `shape` (row-major); returns the per-dim indices and, when ix's (q, r)
   * split lines up with the shape (the dims from `cut` on multiply to M), the first dim
   * that comes from r, else −1.
   */
  #unravel(ix: Ix, shape: readonly number[]): { parts: number[]; cut: number } {
    const r = shape.length;
    const out = new Array<number>(r);
    let cut = -1;
    if (ix.split) {
      let p = 1;
      for (let d = r - 1; d >= 0 && p < ix.split.m; d--) {
        p *= shape[d];
        if (p === ix.split.m) cut = d;
      }
    }
    const walk = (from: number, lo: number, hi: number) => {
      let rem = from;
      for (let d = hi - 1; d >= lo; d--) {
        if (d === lo) {
          out[d] = rem;
          break;
        }
        if (shape[d] === 1) {
          out[d] = this.#zero;
          continue;
        }
        const { q, d: dd } = this.quotient(rem, shape[d]);
        out[d] = this.u.push(U.ISub, T.Int, rem, this.mul(q, dd));
        rem = q;
      }
    };
    if (cut >= 0) {
      walk(ix.split!.r, cut, r);
      if (cut > 0) walk(ix.split!.q, 0, cut);
    } else walk(ix.u, 0, r);
    return { parts: out, cut };
  }

  /** An index q·m + r with a known split (r must stay below m wherever the kernel reads it). */
  #splitIx(q: number, r: number, m: number): Ix {
    return { u: this.add(this.mul(q, this.int(m)), r), split: { q, r, m } };
  }

  /** Σ terms, plus `offset` when it is not 0. */
  #sum(offset: number, terms: number[]): number {
    let acc = offset !== 0 ? this.int(offset) : -1;
    for (const t of terms) acc = acc < 0 ? t : this.add(acc, t);
    return acc < 0 ? this.#zero : acc;
  }

  /** The child's index under a view (out[idx] = x[offset + Σ idx_d·strides_d]). */
  #viewIx(e: View<B>, ix: Ix): Ix {
    const out = this.#viewIndex(e, ix);
    return ix.safe && ix.safe.u !== ix.u ? { ...out, safe: this.#viewIndex(e, ix.safe) } : out;
  }

  #viewIndex(e: View<B>, ix: Ix): Ix {
    const { offset } = e;
    if (e.shape.length === 0 || e.strides.every((st) => st === 0)) {
      return { u: this.#sum(offset, []) };
    }
    const { shape, strides } = ix.split ? alignSplit(e.shape, e.strides, ix.split.m) : e;
    const { parts, cut } = this.#unravel(ix, shape);
    const term = (d: number) =>
      strides[d] === 1 ? parts[d] : this.mul(parts[d], this.int(strides[d]));
    const dims: number[] = [];
    for (let d = 0; d < shape.length; d++) if (strides[d] !== 0) dims.push(d);
    const q = dims.some((d) => this.u.level[parts[d]] === 2);
    if (q && cut === 1 && strides[0] > 0) {
      const trailing = dims.filter((d) => d >= 1);
      const reach = offset + trailing.reduce((a, d) => a + (shape[d] - 1) * strides[d], 0);
      if (offset >= 0 && trailing.every((d) => strides[d] > 0) && reach < strides[0]) {
        return this.#splitIx(parts[0], this.#sum(offset, trailing.map(term)), strides[0]);
      }
    }
    return { u: this.#sum(offset, dims.map(term)) };
  }

  /**
   * The products' index under band storage (the "band" expression of lazy.ts) and the
   * condition "inside the matrix": entry (s, j) reads row j + g of the product of probe
   * j mod period, or with the mirror row j of probe (j + g) mod period, g = s − (upper ?
   * b : 0). Outside, the index is a harmless 0. The index keeps its (probe, row) split, so
   * comb probes inside the products read their probe without a division.
   */
  #bandIx(e: Band<B>, ix: Ix): { child: Ix; inside: number } {
    const u = this.u;
    const [s, j] = this.#unravel(ix, [e.b + 1, e.n]).parts;
    const shift = e.upper && e.b > 0 ? u.push(U.ISub, T.Int, s, this.int(e.b)) : s;
    const moved = this.add(j, shift);
    const inside = u.push(U.InRange, T.Bool, moved, this.int(e.n));
    const safe = u.push(U.ISel, T.Int, inside, moved, this.#zero);
    const [row, col] = e.mirror ? [j, safe] : [safe, j];
    const k = e.period > 1 ? this.#residue(col, e.period) : this.#zero;
    return { child: this.#splitIx(k, row, e.n), inside };
  }

  /**
   * The child's index under a constant pad and the condition "inside the child" (−1 when
   * always true): where it is false the index is 0 (a harmless read) and the pad value is
   * taken. Rows of the probe axis stay rows of the child, so a split survives the pad.
   */
  #padIx(e: Pad<B>, ix: Ix): { child: Ix; inside: number } {
    const here = this.#padIndex(e, ix);
    const safe = ix.safe && ix.safe.u !== ix.u ? this.#padIndex(e, ix.safe).raw : here.raw;
    return { child: { ...here.child, safe }, inside: here.inside };
  }

  /** The pad's child index, guarded (`child`) and not (`raw`), and the guard. */
  #padIndex(e: Pad<B>, ix: Ix): { child: Ix; raw: Ix; inside: number } {
    const { parts, cut } = this.#unravel(ix, e.outShape);
    const u = this.u;
    // an axis the pad leaves alone (nothing before or after) needs neither shift nor test
    const ks = parts.map((p, d) => {
      const open = e.before[d] === 0 && e.inShape[d] === e.outShape[d];
      const shifted = e.before[d] === 0 ? p : u.push(U.ISub, T.Int, p, this.int(e.before[d]));
      const len = this.int(e.inShape[d]);
      const test = open ? -1 : u.push(e.before[d] === 0 ? U.ILt : U.InRange, T.Bool, shifted, len);
      return { k: shifted, len, test };
    });
    const and = (a: number, b: number) => (a < 0 ? b : b < 0 ? a : u.push(U.BAnd, T.Bool, a, b));
    const part = (lo: number, hi: number) => {
      let lin = -1, ok = -1;
      for (let d = lo; d < hi; d++) {
        lin = lin < 0 ? ks[d].k : this.add(this.mul(lin, ks[d].len), ks[d].k);
        ok = and(ok, ks[d].test);
      }
      if (lin < 0) lin = this.#zero;
      return { ok, raw: lin, lin: ok < 0 ? lin : u.push(U.ISel, T.Int, ok, lin, this.#zero) };
    };
    if (cut > 0) {
      const lead = part(0, cut), tail = part(cut, ks.length);
      let m = 1;
      for (let d = cut; d < e.inShape.length; d++) m *= e.inShape[d];
      return {
        child: this.#splitIx(lead.lin, tail.lin, m),
        raw: this.#splitIx(lead.raw, tail.raw, m),
        inside: and(lead.ok, tail.ok),
      };
    }
    const all = part(0, ks.length);
    return { child: { u: all.lin }, raw: { u: all.raw }, inside: all.ok };
  }
}

/**
 * Multiplier and shift with floor(x / d) = mulhi(x, m) >> s for every x < 2^31 and d ≥ 2
 * (Granlund & Montgomery 1994, Thm 4.2 with N = 31: l = ⌈log2 d⌉, m = ⌊2^(31+l) / d⌋ + 1,
 * which fits in 32 bits; s = l − 1). Buffers hold under 2^31 elements, so indices qualify.
 */
export function magicDivisor(d: number): [number, number] {
  let hit = magic.get(d);
  if (!hit) {
    const l = Math.ceil(Math.log2(d));
    const m = (2n ** BigInt(31 + l)) / BigInt(d) + 1n;
    if (magic.size >= 4096) magic.clear();
    magic.set(d, hit = [Number(m), l - 1]);
  }
  return hit;
}
const magic = new Map<number, [number, number]>();

const NEG = UNARY_OPS.indexOf("neg");
const [ADD, SUB, MUL, DIV] = (["add", "sub", "mul", "div"] as const).map((o) =>
  BINARY_OPS.indexOf(o)
);

/**
 * Comb probes as a pattern. In a split kernel over comb probes (a banded Hessian's HVP
 * batch) the value for probe q is linear in the probe's indicators [ρ_j = q], where the
 * residues ρ_j and the coefficients c_j depend on the entry r only (a JVP is linear in its
 * tangent), plus what else the probe reads (its own tangent of an earlier reduction, say).
 * Rewritten as (base + rest) + Σ_j (ρ_j = q ? c_j : 0), base per entry and rest the
 * remaining per-probe work, the coefficients are computed once per entry instead of once
 * per probe: the per-probe program shrinks to the rest plus a compare, a select and an add
 * per indicator. Returns the new result uop, or −1 when the value has no indicator (or the
 * rewrite would not shrink the per-probe program).
 */
export function combLinear(u: Uops, result: number, zero: (type: number) => number): number {
  interface Lin {
    base: number; // a level ≤ 1 uop, or −1 for 0
    terms: Map<number, number>; // residue uop → coefficient uop
    rest: number; // a level-2 uop (per probe, not of this form), or −1 for 0
  }
  const memo = new Map<number, Lin>();
  let q = -1;
  const add = (t: number, a: number, b: number) => (a < 0 ? b : b < 0 ? a : bin(u, t, ADD, a, b));
  const sub = (t: number, a: number, b: number) =>
    b < 0 ? a : a < 0 ? negate(t, b) : bin(u, t, SUB, a, b);
  const negate = (t: number, a: number) => neg(u, t, a);
  const opaque = (i: number): Lin => ({ base: -1, terms: new Map(), rest: i });
  const lin = (i: number): Lin => {
    if (u.level[i] < 2) return { base: i, terms: new Map(), rest: -1 };
    const hit = memo.get(i);
    if (hit !== undefined) return hit;
    let out: Lin | null = null;
    const t = u.type[i], op = u.op[i];
    if (op === U.BToV) {
      const eq = u.a[i];
      if (u.op[eq] === U.IEq) {
        const [x, y] = [u.a[eq], u.b[eq]];
        const [rho, other] = u.op[y] === U.Q ? [x, y] : u.op[x] === U.Q ? [y, x] : [-1, -1];
        if (rho >= 0 && u.level[rho] < 2) {
          q = other;
          out = { base: -1, terms: new Map([[rho, u.push(U.VLit, t, -1, -1, -1, 1)]]), rest: -1 };
        }
      }
    } else if (op === U.Unary && u.payload[i] === NEG) {
      out = scale(lin(u.a[i]), (c) => negate(t, c));
    } else if (op === U.Binary) {
      const p = u.payload[i];
      const a = lin(u.a[i]), b = lin(u.b[i]);
      const fixed = (l: Lin) => l.terms.size === 0 && l.rest < 0;
      if (p === ADD || p === SUB) {
        const terms = new Map(a.terms);
        for (const [r, c] of b.terms) {
          const prev = terms.get(r);
          terms.set(
            r,
            prev === undefined ? (p === ADD ? c : negate(t, c)) : bin(u, t, p, prev, c),
          );
        }
        const base = p === ADD ? add(t, a.base, b.base) : sub(t, a.base, b.base);
        const rest = p === ADD ? add(t, a.rest, b.rest) : sub(t, a.rest, b.rest);
        out = { base, terms, rest };
      } else if (p === MUL && (fixed(a) || fixed(b))) {
        const [l, k] = fixed(a) ? [b, a.base] : [a, b.base];
        out = k < 0
          ? { base: -1, terms: new Map(), rest: -1 }
          : scale(l, (c) => bin(u, t, MUL, c, k));
      } else if (p === DIV && fixed(b) && b.base >= 0) {
        out = scale(a, (c) => bin(u, t, DIV, c, b.base));
      }
    } else if (op === U.Select || op === U.Where) {
      const c = u.a[i];
      if (u.level[c] < 2) {
        const a = lin(u.b[i]), b = lin(u.c[i]);
        const z = zero(t);
        const pick = (x: number, y: number) => {
          const [xx, yy] = [x < 0 ? z : x, y < 0 ? z : y];
          return xx === yy ? xx : u.push(op, t, c, xx, yy);
        };
        const terms = new Map<number, number>();
        for (const r of new Set([...a.terms.keys(), ...b.terms.keys()])) {
          terms.set(r, pick(a.terms.get(r) ?? -1, b.terms.get(r) ?? -1));
        }
        out = {
          base: a.base < 0 && b.base < 0 ? -1 : pick(a.base, b.base),
          terms,
          rest: a.rest < 0 && b.rest < 0 ? -1 : pick(a.rest, b.rest),
        };
      }
    }
    // anything else is per-probe work of its own (any indicator inside it stays there)
    out ??= opaque(i);
    memo.set(i, out);
    return out;
  };
  const scale = (l: Lin, f: (c: number) => number): Lin => ({
    base: l.base < 0 ? -1 : f(l.base),
    terms: new Map([...l.terms].map(([r, c]) => [r, f(c)])),
    rest: l.rest < 0 ? -1 : f(l.rest),
  });
  const l = lin(result);
  if (l.terms.size === 0 || q < 0) return -1;
  const t = u.type[result];
  let v = add(t, l.base, l.rest);
  for (const [rho, c] of l.terms) {
    const hit = u.push(U.IEq, T.Bool, rho, q);
    v = add(t, v, u.push(U.Select, t, hit, c, zero(t)));
  }
  if (v < 0) v = zero(t);
  // worth it only if the per-probe program shrinks
  return perProbeCone(u, v).size < perProbeCone(u, result).size ? v : -1;
}

const litOf = (u: Uops, i: number) => (u.op[i] === U.VLit ? u.payload[i] : undefined);
const round = (t: number, v: number) => (t === T.F32 ? Math.fround(v) : t === T.I32 ? v | 0 : v);

/** a op b, folded when both are literals or one is an identity (x·1, x + 0, x − 0, x/1, x·0). */
function bin(u: Uops, t: number, op: number, a: number, b: number): number {
  const x = litOf(u, a), y = litOf(u, b);
  if (x !== undefined && y !== undefined) {
    return u.push(U.VLit, t, -1, -1, -1, round(t, binaryFn[op](x, y)));
  }
  if (op === MUL && (x === 1 || y === 0)) return b;
  if (op === MUL && (y === 1 || x === 0)) return a;
  if (op === ADD && x === 0) return b;
  if ((op === ADD || op === SUB) && y === 0) return a;
  if (op === DIV && y === 1) return a;
  return u.push(U.Binary, t, a, b, -1, op);
}

/** −a, folded for a literal and for −(−x). */
function neg(u: Uops, t: number, a: number): number {
  const x = litOf(u, a);
  if (x !== undefined) return u.push(U.VLit, t, -1, -1, -1, -x);
  if (u.op[a] === U.Unary && u.payload[a] === NEG) return u.a[a];
  return u.push(U.Unary, t, a, -1, -1, NEG);
}

/**
 * A view's dims with the one that straddles a split kernel's inner size m cut in two, so
 * that the trailing dims multiply to m (a coalesced [K·n, …] view of K probes becomes
 * [K, n, …] again and its index keeps the (q, r) split). Unchanged when none straddles.
 */
function alignSplit(
  shape: readonly number[],
  strides: readonly number[],
  m: number,
): { shape: readonly number[]; strides: readonly number[] } {
  let p = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (p === m) break;
    const next = p * shape[d];
    if (next > m) {
      const k = m / p;
      if (!Number.isInteger(k) || shape[d] % k !== 0) break;
      return {
        shape: [...shape.slice(0, d), shape[d] / k, k, ...shape.slice(d + 1)],
        strides: [...strides.slice(0, d), strides[d] * k, strides[d], ...strides.slice(d + 1)],
      };
    }
    p = next;
  }
  return { shape, strides };
}
