/**
 * Index sets for sparsity tracing: for each element of a tensor, the variables (flat
 * indices of the traced input) it may depend on, stored CSR-style. Sets are unique but
 * unsorted; the operations below build new sets in O(total size) with a stamp array
 * instead of sorting. The loops keep their arrays in locals: they run over every element
 * of every traced value, so they are the cost of detection.
 */
import { registerCache } from "../lru.ts";

/**
 * Scratch Int32Arrays for one detection, reused across detections: on a busy machine the
 * first touch of fresh memory (page faults) costs more than the set arithmetic itself.
 * Arrays come in power-of-two sizes and are handed out as views of the length asked for;
 * `withScratch` returns them all when the detection ends (nothing of it outlives it but
 * fresh copies).
 */
const free = new Map<number, Int32Array[]>();
let freeBytes = 0;
let freeCount = 0;
/** When the last detection returned its arrays (the pool is dropped if unused for long). */
let freeAt = 0;
const FREE_MAX_BYTES = 512 * 1024 * 1024;
/** @internal The pool's age limit (tests shorten it). */
export const scratchLimits = { maxAgeMs: 10_000 };
let lent: Int32Array[] | null = null;

function clearScratch(): void {
  free.clear();
  freeBytes = 0;
  freeCount = 0;
}

// bounded by bytes and by age, reported by memory().caches, emptied by releaseCaches()
registerCache("sparsity scratch", {
  stats: () => ({ entries: freeCount, bytes: freeBytes }),
  clear: clearScratch,
});

/** An Int32Array of length n, zeroed when `zero`; from the scratch pool inside `withScratch`. */
export function scratch(n: number, zero = false): Int32Array {
  if (lent === null || n < 1024) return new Int32Array(n);
  const cap = 2 ** Math.ceil(Math.log2(n));
  const a = free.get(cap)?.pop();
  let buf: Int32Array;
  if (a) {
    freeBytes -= a.byteLength;
    freeCount--;
    buf = a;
    if (zero) buf.fill(0, 0, n);
  } else buf = new Int32Array(cap);
  lent.push(buf);
  return buf.subarray(0, n);
}

/** Runs a detection whose `scratch` arrays all go back to the pool when it returns. */
export function withScratch<T>(fn: () => T): T {
  if (lent !== null) return fn();
  if (performance.now() - freeAt > scratchLimits.maxAgeMs) clearScratch();
  lent = [];
  try {
    return fn();
  } finally {
    for (const a of lent) {
      if (freeBytes + a.byteLength > FREE_MAX_BYTES) continue;
      let list = free.get(a.length);
      if (!list) free.set(a.length, list = []);
      list.push(a);
      freeBytes += a.byteLength;
      freeCount++;
    }
    lent = null;
    freeAt = performance.now();
  }
}

/**
 * Element e depends on variables `idx[ptr[e] .. ptr[e+1])` (unique, in no particular
 * order), out of `vars` variables.
 */
export class IndexSets {
  constructor(readonly vars: number, readonly ptr: Int32Array, readonly idx: Int32Array) {}

  /** The number of elements. */
  get size(): number {
    return this.ptr.length - 1;
  }

  /** Element e depends on variable e alone (the input of a trace). */
  static identity(n: number): IndexSets {
    const ptr = scratch(n + 1), idx = scratch(n);
    ptr[0] = 0;
    for (let e = 0; e < n; e++) {
      ptr[e + 1] = e + 1;
      idx[e] = e;
    }
    return new IndexSets(n, ptr, idx);
  }
}

/**
 * Stamps for de-duplication: within one round, `mark[v] === round` says v was seen.
 * One array serves every union; a new round costs O(1).
 */
class Stamps {
  mark = new Int32Array(0);
  round = 0;

  /** The stamp array for variables 0 … n−1, cleared when the round counter wraps. */
  reserve(n: number): Int32Array {
    if (this.mark.length < n) this.mark = new Int32Array(n);
    return this.mark;
  }

  /** A fresh round number. */
  next(): number {
    if (++this.round === 0x7fffffff) {
      this.mark.fill(0);
      this.round = 1;
    }
    return this.round;
  }
}

const stamps = new Stamps();

/** out[e] = s[map[e]], or the empty set where map[e] < 0 (movement ops). */
export function take(s: IndexSets, map: Int32Array): IndexSets {
  const m = map.length, sp = s.ptr, si = s.idx;
  const ptr = scratch(m + 1);
  ptr[0] = 0;
  let total = 0;
  for (let e = 0; e < m; e++) {
    const k = map[e];
    if (k >= 0) total += sp[k + 1] - sp[k];
    ptr[e + 1] = total;
  }
  const idx = scratch(total);
  let at = 0;
  for (let e = 0; e < m; e++) {
    const k = map[e];
    if (k < 0) continue;
    for (let t = sp[k], z = sp[k + 1]; t < z; t++) idx[at++] = si[t];
  }
  return new IndexSets(s.vars, ptr, idx);
}

/** out[e] = ∪ sets[k][e] over k, for sets of one size (elementwise ops after broadcasting). */
export function unionAligned(sets: readonly IndexSets[]): IndexSets {
  const distinct = [...new Set(sets)].filter((s) => s.idx.length > 0);
  if (distinct.length === 0) return sets[0];
  if (distinct.length === 1) return distinct[0];
  const m = distinct[0].size, vars = distinct[0].vars;
  const mark = stamps.reserve(vars);
  const ptr = scratch(m + 1);
  ptr[0] = 0;
  const idx = scratch(distinct.reduce((a, s) => a + s.idx.length, 0));
  let at = 0;
  for (let e = 0; e < m; e++) {
    const round = stamps.next();
    for (let q = 0; q < distinct.length; q++) {
      const sp = distinct[q].ptr, si = distinct[q].idx;
      if (sp[e + 1] - sp[e] === vars) {
        // this operand depends on every variable (a full reduction): so does the result
        at = ptr[e];
        for (let t = sp[e], z = sp[e + 1]; t < z; t++) idx[at++] = si[t];
        break;
      }
      for (let t = sp[e], z = sp[e + 1]; t < z; t++) {
        const v = si[t];
        if (mark[v] !== round) {
          mark[v] = round;
          idx[at++] = v;
        }
      }
    }
    ptr[e + 1] = at;
  }
  return new IndexSets(vars, ptr, idx.subarray(0, at));
}

/**
 * out[q] = ∪ s[e] over the e with map[e] = q (reductions, scatter-add); `m` output elements,
 * entries with map[e] < 0 are dropped. A null map (with m = 1) unites everything.
 */
export function group(s: IndexSets, map: Int32Array | null, m: number): IndexSets {
  if (map === null) return unionAll(s);
  // the members of each group, by counting sort
  const start = scratch(m + 1, true);
  for (let e = 0; e < map.length; e++) if (map[e] >= 0) start[map[e] + 1]++;
  for (let q = 0; q < m; q++) start[q + 1] += start[q];
  const members = scratch(start[m]);
  const fill = scratch(m);
  fill.set(start.subarray(0, m));
  for (let e = 0; e < map.length; e++) if (map[e] >= 0) members[fill[map[e]]++] = e;
  const sp = s.ptr, si = s.idx;
  const mark = stamps.reserve(s.vars);
  const ptr = scratch(m + 1);
  ptr[0] = 0;
  const idx = scratch(si.length);
  let at = 0;
  for (let q = 0; q < m; q++) {
    const round = stamps.next();
    for (let t = start[q]; t < start[q + 1]; t++) {
      const e = members[t];
      for (let k = sp[e], z = sp[e + 1]; k < z; k++) {
        const v = si[k];
        if (mark[v] !== round) {
          mark[v] = round;
          idx[at++] = v;
        }
      }
    }
    ptr[q + 1] = at;
  }
  return new IndexSets(s.vars, ptr, idx.subarray(0, at));
}

/** The one set ∪ s[e] over all e (a full reduction). */
function unionAll(s: IndexSets): IndexSets {
  const si = s.idx, mark = stamps.reserve(s.vars), round = stamps.next();
  const idx = scratch(Math.min(si.length, s.vars));
  let at = 0;
  for (let k = 0; k < si.length && at < s.vars; k++) {
    const v = si[k];
    if (mark[v] !== round) {
      mark[v] = round;
      idx[at++] = v;
    }
  }
  return new IndexSets(s.vars, Int32Array.of(0, at), idx.subarray(0, at));
}

/** Where sparsity rules record second-order pairs (the Hessian tracer keeps them; others drop them). */
export interface PairSink {
  /** Records r[e] × c[e] (and its mirror) for every element e; r and c have one size. */
  pairs(r: IndexSets, c: IndexSets): void;
}

/**
 * Second-order pairs, as the Hessian tracer records them: every (r[e] × c[e]) for aligned
 * r and c. Kept unexpanded until the pattern is assembled (`assemblePairs`).
 */
export interface PairBlock {
  readonly r: IndexSets;
  readonly c: IndexSets;
}

/**
 * The symmetric n × n pattern holding every pair of the blocks (both orders), as sorted
 * CSR rows: each c[e] is copied into the row of every i ∈ r[e] (and r[e] into the rows of
 * c[e]), then each row is de-duplicated and sorted in place. The work is Σ |r[e]|·|c[e]|,
 * the size of the pattern before de-duplication.
 */
export function assemblePairs(blocks: readonly PairBlock[], n: number): {
  rowPtr: Int32Array;
  colIdx: Int32Array;
} {
  const sides: [IndexSets, IndexSets][] = [];
  for (const { r, c } of blocks) {
    sides.push([r, c]);
    if (r !== c) sides.push([c, r]);
  }
  // room per row: the sizes of the sets copied into it
  const room = scratch(n + 1, true);
  for (const [from, to] of sides) {
    const fp = from.ptr, fi = from.idx, tp = to.ptr, m = from.size;
    for (let e = 0; e < m; e++) {
      const w = tp[e + 1] - tp[e];
      for (let t = fp[e], z = fp[e + 1]; t < z; t++) room[fi[t] + 1] += w;
    }
  }
  for (let i = 0; i < n; i++) room[i + 1] += room[i];
  const raw = scratch(room[n]);
  const fill = scratch(n);
  fill.set(room.subarray(0, n));
  for (const [from, to] of sides) {
    const fp = from.ptr, fi = from.idx, tp = to.ptr, ti = to.idx, m = from.size;
    for (let e = 0; e < m; e++) {
      const a = tp[e], b = tp[e + 1];
      for (let t = fp[e], z = fp[e + 1]; t < z; t++) {
        let at = fill[fi[t]];
        for (let q = a; q < b; q++) raw[at++] = ti[q];
        fill[fi[t]] = at;
      }
    }
  }
  // de-duplicate and sort each row, compacting towards the front
  const mark = stamps.reserve(n);
  const rowPtr = new Int32Array(n + 1);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const round = stamps.next();
    const first = at;
    for (let t = room[i], z = room[i + 1]; t < z; t++) {
      const v = raw[t];
      if (mark[v] !== round) {
        mark[v] = round;
        raw[at++] = v;
      }
    }
    sortRange(raw, first, at);
    rowPtr[i + 1] = at;
  }
  return { rowPtr, colIdx: raw.slice(0, at) };
}

/** Sorts a[from .. to) ascending (insertion sort for the short rows of sparse patterns). */
export function sortRange(a: Int32Array, from: number, to: number): void {
  if (to - from > 32) {
    a.subarray(from, to).sort();
    return;
  }
  for (let i = from + 1; i < to; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= from && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

/** Rows of sorted CSR from per-element sets (a Jacobian's pattern: row e = the set of element e). */
export function sortedRows(s: IndexSets): { rowPtr: Int32Array; colIdx: Int32Array } {
  const colIdx = s.idx.slice();
  for (let e = 0; e < s.size; e++) sortRange(colIdx, s.ptr[e], s.ptr[e + 1]);
  return { rowPtr: s.ptr.slice(), colIdx };
}
