/**
 * Lowerings by structure: the eager path builds the same expression again on every call
 * (a gradient of the same function, a line search's evaluations), and lowering it to uops
 * again each time cost more than the kernel. A lowering is a function of the expression's
 * structure alone — each node's kind, dtype, size and numbers, which nodes are shared, and
 * which are leaves (buffers, or reductions the lowering runs first) — so a lowering made
 * once serves every later graph of the same structure: its kernel, parameter values and
 * the positions of its leaves are kept, and a hit maps the positions to the new graph's
 * nodes. The key is the whole structure written out as numbers (a hash selects the entry,
 * the numbers confirm it), so two graphs that differ in any size, sharing or number that
 * shapes the kernel never share a lowering. One kind of number is left out: the value of a
 * constant node that the kernel reads as a parameter (not a literal), such as the step of
 * a line search, which changes from call to call; a hit writes this graph's values into
 * those parameters.
 */
import { BINARY_OPS, UNARY_OPS } from "../backend/backend.ts";
import { type CacheStats, LruCache, type LruLimits, registerCache } from "../lru.ts";
import { type Expr, forChildren, type LazyStorage } from "./lazy.ts";
import { asDtype, isLiteral, type Lowered, Lowering, type Target } from "./lower.ts";
import { ruleStats, simplifier } from "./rewrite.ts";
import { type Finished, hashNum, mix } from "./uops.ts";

/** What one lowering left, by position in its graph's walk (no reference to a node). */
interface Entry {
  /** The structure, in full (see `walk`): a hit must match it number for number. */
  readonly sig: readonly number[];
  readonly kernel: Finished;
  readonly params: number[];
  readonly ptypes: number[];
  /** Walk positions of the kernel's leaves, in the kernel's order. */
  readonly leaves: readonly number[];
  /** Walk positions of the reductions the lowering ran first, in the order it ran them. */
  readonly ran: readonly number[];
  readonly repeated: readonly { readonly node: number; readonly count: number }[];
  /** The comb-probe rewrite applied (counted again on a hit, for the rule statistics). */
  readonly comb: boolean;
  /** Constants read as parameters: walk position of the node, index among `params`. */
  readonly consts: readonly { readonly node: number; readonly param: number }[];
}

/** Counters (for tests and benchmarks). */
export const lowerCacheStats: { hits: number; misses: number } = { hits: 0, misses: 0 };

const cache = new LruCache<number, Entry>({ maxEntries: 1024, maxBytes: 16 * 1024 * 1024 });
registerCache("lowerings", {
  stats: (): CacheStats => cache.stats(),
  clear: () => cache.clear(),
  resize: (limits: Partial<LruLimits>) => cache.resize(limits),
});

/** Switches the cache off (tests compare lowering with and without it). */
export const lowerCache: { enabled: boolean } = { enabled: true };

/** Small ids for the strings and objects of a key (targets, kernel kinds). */
const ids = new Map<unknown, number>();
const idOf = (v: unknown): number => {
  let id = ids.get(v);
  if (id === undefined) ids.set(v, id = ids.size);
  return id;
};

const KIND: Record<Exclude<Expr["kind"], "reduce">, number> = {
  const: 2,
  iota: 3,
  comb: 4,
  unary: 5,
  binary: 6,
  where: 7,
  cast: 8,
  view: 9,
  pad: 10,
  band: 11,
};
/** Tags of a child slot in the signature. */
const BACK = 0, LEAF = 1;
/** Tags of a constant's value: a literal of the kernel (its value follows) or a parameter. */
const LITERAL = 0, PARAM = 1;

let stamps = 0;

/**
 * The structure under `root` as numbers, and its nodes in the order they were first met.
 * Each node is written where it is first met: LEAF, dtype, size for a buffer or a
 * reduction; for an expression its kind, dtype, size, its numbers and then its operands;
 * a node met again is BACK and its position. The numbers after a tag are fixed by the tag
 * and the counts written before them, so equal signatures are equal structures.
 */
function walk<B>(
  target: Target,
  root: LazyStorage<B>,
  head: number[],
): { sig: number[]; nodes: LazyStorage<B>[] } {
  const stamp = ++stamps;
  const sig = head;
  const nodes: LazyStorage<B>[] = [];
  const visit = (s: LazyStorage<B>): void => {
    if (s._walk === stamp) {
      sig.push(BACK, s._walkIx);
      return;
    }
    s._walk = stamp;
    s._walkIx = nodes.push(s) - 1;
    const dt = s.dtype.charCodeAt(0) * 128 + s.dtype.charCodeAt(1);
    const e = s.expr;
    if (s.buf !== null || e === null || e.kind === "reduce") {
      sig.push(LEAF, dt, s.size);
      return;
    }
    sig.push(KIND[e.kind], dt, s.size);
    switch (e.kind) {
      case "const":
        // as lower.ts decides: a literal is part of the kernel, a parameter is not
        if (target.literals && isLiteral(asDtype(s.dtype, e.value))) sig.push(LITERAL, e.value);
        else sig.push(PARAM);
        return;
      case "iota":
        sig.push(e.start, e.step);
        return;
      case "comb":
        sig.push(e.n, e.period);
        return;
      case "unary":
        sig.push(UNARY_OPS.indexOf(e.op));
        break;
      case "binary":
        sig.push(BINARY_OPS.indexOf(e.op));
        break;
      case "view":
        sig.push(e.offset, e.shape.length, ...e.shape, ...e.strides);
        break;
      case "pad":
        sig.push(e.value, e.outShape.length, ...e.outShape, ...e.inShape, ...e.before);
        break;
      case "band":
        sig.push(e.n, e.b, e.period, e.upper, e.mirror);
        break;
    }
    forChildren(e, visit);
  };
  visit(root);
  return { sig, nodes };
}

function hashOf(sig: readonly number[]): number {
  let h = 0x2545f491;
  for (let i = 0; i < sig.length; i++) h = mix(h, hashNum(sig[i]));
  return h & 0x3fffffff; // a small integer: a Map keys it without allocating
}

function same(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/**
 * `new Lowering(target, splitM, realize).lower(s, kind)`, answered from the cache when a
 * graph of the same structure was lowered before: the reductions it reads are run first
 * (through `realize`, as the lowering would), and the kernel, parameters and leaves are
 * the earlier lowering's, the leaves taken from this graph.
 */
export function lowerCached<B>(
  target: Target,
  s: LazyStorage<B>,
  kind: string,
  splitM: number | undefined,
  realize: (c: LazyStorage<B>) => void,
): Lowered<B> {
  if (!lowerCache.enabled) return new Lowering<B>(target, splitM, realize).lower(s, kind);
  const { sig, nodes } = walk(target, s, [
    idOf(target),
    idOf(kind),
    splitM ?? 0,
    +simplifier.enabled,
  ]);
  const h = hashOf(sig);
  const hit = cache.get(h);
  if (hit && same(hit.sig, sig)) {
    lowerCacheStats.hits++;
    // a leaf that was a buffer then may be a reduction now: it runs first too
    for (const i of hit.ran) if (!nodes[i].buf) realize(nodes[i]);
    for (const i of hit.leaves) if (!nodes[i].buf) realize(nodes[i]);
    if (hit.comb) ruleStats.set("comb probes", (ruleStats.get("comb probes") ?? 0) + 1);
    let params = hit.params;
    if (hit.consts.length > 0) {
      params = params.slice();
      for (const c of hit.consts) {
        const n = nodes[c.node], e = n.expr as Extract<Expr<B>, { kind: "const" }>;
        params[c.param] = asDtype(n.dtype, e.value);
      }
    }
    return {
      kernel: hit.kernel,
      params,
      ptypes: hit.ptypes,
      leaves: hit.leaves.map((i) => nodes[i]),
      repeated: hit.repeated.map((r) => ({ node: nodes[r.node], count: r.count })),
    };
  }
  lowerCacheStats.misses++;
  // the reductions the lowering runs: unrealized before, realized after
  const pending = nodes.filter((n) => n.buf === null && n.expr?.kind === "reduce");
  const combs = ruleStats.get("comb probes") ?? 0;
  const lowering = new Lowering<B>(target, splitM, realize);
  const l = lowering.lower(s, kind);
  // (the reductions run inside the lowering walked graphs of their own: positions by map)
  const index = new Map<LazyStorage<B>, number>();
  nodes.forEach((n, i) => index.set(n, i));
  const at = (n: LazyStorage<B>) => index.get(n) ?? -1;
  const leaves = l.leaves.map(at);
  const repeated = l.repeated.map((r) => ({ node: at(r.node), count: r.count }));
  // a node the walk did not meet (none should be) leaves this lowering out of the cache
  const consts: { node: number; param: number }[] = [];
  for (const { node, slot } of lowering.constSlots) {
    const param = l.kernel.slotOrder.indexOf(slot);
    if (param >= 0) consts.push({ node: at(node), param });
  }
  if (leaves.includes(-1) || repeated.some((r) => r.node < 0) || consts.some((c) => c.node < 0)) {
    return l;
  }
  const ran = pending.filter((n) => n.buf !== null).map(at);
  cache.set(h, {
    sig,
    kernel: l.kernel,
    params: l.params,
    ptypes: l.ptypes,
    leaves,
    ran,
    repeated,
    comb: (ruleStats.get("comb probes") ?? 0) > combs,
    consts,
  }, 8 * sig.length + 64 * l.kernel.u.length);
  return l;
}
