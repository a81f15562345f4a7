/**
 * The kernel IR: a fused kernel lowered to a straight-line list of small instructions
 * (uops) over integer indices, booleans and values. Lowering (lower.ts) appends uops in
 * dependency order; identical uops are merged as they are appended (hash-consing: common
 * subexpressions of the index arithmetic and of the maths are computed once); uops nothing
 * reads are dropped at the end. The kernel's cache key is a hash of this list, computed
 * without printing any source; each device's renderer prints the list as JavaScript or WGSL.
 *
 * Every uop has a level: 0 depends on no index (hoisted out of all loops where the target
 * can), 1 on the entry r of a split kernel only (run once per r), 2 on the full index.
 */

/** Uop codes. */
export const U = {
  /** The kernel's index (level 2). */
  Idx: 0,
  /** The probe q of a split kernel (level 2). */
  Q: 1,
  /** The entry r of a split kernel (level 1). */
  R: 2,
  /** An integer parameter: payload = its slot. */
  IParam: 3,
  /** An integer literal: payload = its value. */
  ILit: 4,
  IAdd: 5,
  ISub: 6,
  IMul: 7,
  /** ⌊a / d⌋ for an index a ≥ 0 and a divisor d ≥ 2 in parameter slot `payload` (a target that divides by multiply-and-shift keeps its magic numbers in the next two slots). */
  IDiv: 8,
  /** 0 ≤ a < b (a may be negative in JavaScript, or wrapped around on u32 targets). */
  InRange: 9,
  /** a < b for an index a known to be ≥ 0. */
  ILt: 10,
  BAnd: 11,
  IEq: 12,
  /** a ? b : c over indices (a boolean). */
  ISel: 13,
  /** A value read from leaf `payload` at index a. */
  Load: 14,
  /** A value parameter: payload = its slot. */
  VParam: 15,
  /** A value literal: payload = the number. */
  VLit: 16,
  /** b + a · c: the index a as a value, scaled by c and shifted by b. */
  Iota: 17,
  /** payload = unary op code. */
  Unary: 18,
  /** payload = binary op code. */
  Binary: 19,
  /** a ? b : c for a value condition a (≠ 0, or NaN, picks b). */
  Where: 20,
  /** a ? b : c for a boolean a. */
  Select: 21,
  /** A boolean as the value 1 or 0. */
  BToV: 22,
  /** a converted to this uop's dtype. */
  Cast: 23,
} as const;

/** What a uop produces: an index, a boolean, or a value of one dtype. */
export const T = {
  Int: 0,
  Bool: 1,
  F32: 2,
  F64: 3,
  I32: 4,
} as const;

/** Payload-free placeholder (uops whose payload is unused). */
const NONE = 0;

/** A lowered kernel: uops in dependency order plus the result uop. */
export class Uops {
  op: number[] = [];
  type: number[] = [];
  a: number[] = [];
  b: number[] = [];
  c: number[] = [];
  payload: number[] = [];
  level: number[] = [];
  /** Open-addressing table of uop ids + 1 by hash (0: empty), for merging identical uops. */
  #table = new Int32Array(256);

  get length(): number {
    return this.op.length;
  }

  /** Appends a uop (or returns the identical one already there). */
  push(op: number, type: number, a = -1, b = -1, c = -1, payload: number = NONE): number {
    const h = mix(mix(mix(mix(op * 7 + type, a), b), c), hashNum(payload));
    let mask = this.#table.length - 1;
    let at = h & mask;
    for (let e = this.#table[at]; e !== 0; e = this.#table[at = (at + 1) & mask]) {
      const k = e - 1;
      if (
        this.op[k] === op && this.type[k] === type && this.a[k] === a && this.b[k] === b &&
        this.c[k] === c && Object.is(this.payload[k], payload)
      ) return k;
    }
    const id = this.op.length;
    this.op.push(op);
    this.type.push(type);
    this.a.push(a);
    this.b.push(b);
    this.c.push(c);
    this.payload.push(payload);
    let lv = op === U.Idx || op === U.Q ? 2 : op === U.R ? 1 : 0;
    if (a >= 0 && this.level[a] > lv) lv = this.level[a];
    if (b >= 0 && this.level[b] > lv) lv = this.level[b];
    if (c >= 0 && this.level[c] > lv) lv = this.level[c];
    this.level.push(lv);
    this.#table[at] = id + 1;
    if (2 * (id + 1) > this.#table.length) {
      // keep the table at most half full
      const old = this.#table;
      this.#table = new Int32Array(old.length * 2);
      mask = this.#table.length - 1;
      for (let k = 0; k <= id; k++) {
        const hk = mix(
          mix(mix(mix(this.op[k] * 7 + this.type[k], this.a[k]), this.b[k]), this.c[k]),
          hashNum(this.payload[k]),
        );
        let j = hk & mask;
        while (this.#table[j] !== 0) j = (j + 1) & mask;
        this.#table[j] = k + 1;
      }
    }
    return id;
  }
}

/** The level-2 uops (run once per probe of a split kernel) that `result` depends on. */
export function perProbeCone(u: Uops, result: number): Set<number> {
  const cone = new Set<number>();
  const stack = [result];
  while (stack.length) {
    const i = stack.pop()!;
    if (i < 0 || cone.has(i) || u.level[i] < 2) continue;
    cone.add(i);
    stack.push(u.a[i], u.b[i], u.c[i]);
  }
  return cone;
}

/** A 32-bit mixing step (the multiply-xorshift of MurmurHash3's finaliser). */
export function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** The bits of a number, folded to 32 (integers are themselves). */
export function hashNum(v: number): number {
  if ((v | 0) === v && !Object.is(v, -0)) return v;
  f64[0] = v;
  return mix(u32[0], u32[1]);
}

/**
 * A finished kernel: the live uops (those the result depends on), renumbered densely with
 * their leaves and parameter slots, and a key naming the kernel's structure: two kernels
 * with equal keys print the same source. The key is a pair of 32-bit hashes plus counts.
 */
export interface Kernel {
  readonly uops: Uops;
  readonly result: number;
  readonly key: string;
  /** Leaves the kernel reads. */
  readonly leaves: number;
}

/**
 * A lowered kernel before it is compacted: its key and where its leaves and slots come
 * from are known; the compacted uops are built only when a cache misses (`kernel()`), and
 * a hit is confirmed against the cached kernel uop by uop (`matches`).
 */
export class Finished {
  readonly key: string;
  /** For each leaf of the kernel, its index among the lowering's leaves. */
  readonly leafOrder: number[] = [];
  /** For each parameter slot of the kernel, its slot in the lowering. */
  readonly slotOrder: number[] = [];
  /** Live uops in order, and each one's new number and payload. */
  readonly #live: number[] = [];
  readonly #map: Int32Array;
  readonly #payload: number[] = [];
  #kernel: Kernel | null = null;

  constructor(readonly u: Uops, readonly result: number, kind: string, divSlots: number) {
    const n = u.length;
    const live = new Uint8Array(n);
    live[result] = 1;
    for (let k = result; k >= 0; k--) {
      if (!live[k]) continue;
      if (u.a[k] >= 0) live[u.a[k]] = 1;
      if (u.b[k] >= 0) live[u.b[k]] = 1;
      if (u.c[k] >= 0) live[u.c[k]] = 1;
    }
    const map = this.#map = new Int32Array(n).fill(-1);
    const leafMap = new Map<number, number>(), slotMap = new Map<number, number>();
    // slots an IDiv reads take divSlots; find them first, as an IParam may name one earlier
    const wide = new Set<number>();
    for (let k = 0; k < n; k++) if (live[k] && u.op[k] === U.IDiv) wide.add(u.payload[k]);
    let h1 = 0x9e3779b9 | 0, h2 = 0x7f4a7c15;
    for (let i = 0; i < kind.length; i++) h1 = mix(h1, kind.charCodeAt(i));
    for (let k = 0; k < n; k++) {
      if (!live[k]) continue;
      const a = u.a[k] >= 0 ? map[u.a[k]] : -1;
      const b = u.b[k] >= 0 ? map[u.b[k]] : -1;
      const c = u.c[k] >= 0 ? map[u.c[k]] : -1;
      const op = u.op[k];
      let payload = u.payload[k];
      if (op === U.Load) {
        let j = leafMap.get(payload);
        if (j === undefined) leafMap.set(payload, j = this.leafOrder.push(payload) - 1);
        payload = j;
      } else if (op === U.IParam || op === U.VParam || op === U.IDiv) {
        let j = slotMap.get(payload);
        if (j === undefined) {
          j = this.slotOrder.length;
          const width = wide.has(payload) ? divSlots : 1;
          for (let w = 0; w < width; w++) this.slotOrder.push(payload + w);
          slotMap.set(payload, j);
        }
        payload = j;
      }
      map[k] = this.#live.length;
      this.#live.push(k);
      this.#payload.push(payload);
      const p = hashNum(payload);
      h1 = mix(mix(mix(mix(mix(h1, op * 8 + u.type[k]), a), b), c), p);
      h2 = mix(mix(h2, op ^ (p << 5)), a + 31 * b + 961 * c);
    }
    this.key = `${kind}:${this.leafOrder.length}:${this.#live.length}:${(h1 >>> 0).toString(36)}:${
      (h2 >>> 0).toString(36)
    }`;
  }

  /** The compacted kernel (built once, on demand). */
  kernel(): Kernel {
    if (this.#kernel) return this.#kernel;
    const u = this.u, map = this.#map;
    const out = new Uops();
    this.#live.forEach((k, i) => {
      out.op.push(u.op[k]);
      out.type.push(u.type[k]);
      out.a.push(u.a[k] >= 0 ? map[u.a[k]] : -1);
      out.b.push(u.b[k] >= 0 ? map[u.b[k]] : -1);
      out.c.push(u.c[k] >= 0 ? map[u.c[k]] : -1);
      out.payload.push(this.#payload[i]);
      out.level.push(u.level[k]);
    });
    return this.#kernel = {
      uops: out,
      result: map[this.result],
      key: this.key,
      leaves: this.leafOrder.length,
    };
  }

  /** True when `k` is this kernel, uop for uop (a cache hit is confirmed with this). */
  matches(k: Kernel): boolean {
    if (k === this.#kernel) return true; // this lowering made it (a cached lowering, again)
    const u = this.u, map = this.#map, live = this.#live, x = k.uops;
    if (x.length !== live.length || k.result !== map[this.result]) return false;
    for (let i = 0; i < live.length; i++) {
      const j = live[i];
      if (
        x.op[i] !== u.op[j] || x.type[i] !== u.type[j] ||
        x.a[i] !== (u.a[j] >= 0 ? map[u.a[j]] : -1) ||
        x.b[i] !== (u.b[j] >= 0 ? map[u.b[j]] : -1) ||
        x.c[i] !== (u.c[j] >= 0 ? map[u.c[j]] : -1) || !Object.is(x.payload[i], this.#payload[i])
      ) return false;
    }
    return true;
  }
}
