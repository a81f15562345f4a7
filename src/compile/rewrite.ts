/**
 * The simplifier: rewrite rules, each a pattern over a node and its operands and the
 * replacement to build, applied to every node as the graph builds it (graph.ts). The
 * operands of a new node are already simplified, so one bottom-up pass suffices; a
 * replacement is built through the graph and so is simplified in turn.
 *
 * Numerics. The rules are exact in IEEE arithmetic except where noted:
 * - x + 0 → x gives −0 + 0 = −0 (IEEE: +0), and 0 − x → −x gives −0 for x = 0: only the
 *   sign of a zero result can differ;
 * - x · 0 → 0 even where x is infinite or NaN, as JAX's symbolic zero tangents do: a
 *   derivative program multiplies by zeros that stand for "no dependence";
 * - constants fold on the host in f64, then round to the dtype (on WebGPU, where the
 *   device would compute in f32, the folded value is the more accurate one);
 * - sum over a broadcast axis becomes a product by the axis length (one rounding instead
 *   of a sum's).
 */
import { BINARY_OPS, type BinaryOp, UNARY_OPS, type UnaryOp } from "../backend/backend.ts";
import { BINARY_JS, H, UNARY_JS } from "../backend/cpu/elementwise.ts";
import type { Dtype } from "../dtype.ts";
import { coalesce, stridesOf } from "../shape.ts";
import type { Expr, LazyStorage } from "./lazy.ts";
import type { Graph } from "./graph.ts";
import { asDtype } from "./lower.ts";

// ---- patterns ----

type Kind = Expr["kind"];

/**
 * A pattern: `{ const: v }` a constant node (of value v, or any value with "any"),
 * `{ kind, op?, ...operands }` an expression node, `"name"` any node, bound to the name
 * (a name used twice must bind the same node).
 */
export type Pat =
  | string
  | { readonly const: number | "any"; readonly as?: string }
  | {
    readonly kind: Kind;
    readonly op?: string;
    readonly x?: Pat;
    readonly a?: Pat;
    readonly b?: Pat;
    readonly c?: Pat;
    readonly as?: string;
  };

/** What a match binds: names to nodes. */
export type Match<B> = Record<string, LazyStorage<B>>;

/** A rule: a name (for tests and for reading), a pattern, and what to build on a match. */
export interface Rule {
  readonly name: string;
  readonly pat: Exclude<Pat, string | { const: unknown }>;
  /** The replacement; null declines (a condition the pattern cannot say). */
  // deno-lint-ignore no-explicit-any
  readonly out: (m: Match<any>, n: Node<any>) => LazyStorage<any> | null;
}

/** The node being built, as the rules see it. */
export interface Node<B> {
  readonly g: Graph<B>;
  readonly e: Expr<B>;
  readonly dtype: Dtype;
  readonly size: number;
}

const constOf = <B>(s: LazyStorage<B>): number | undefined =>
  !s.buf && s.expr?.kind === "const" ? s.expr.value : undefined;

function matchPat<B>(p: Pat, s: LazyStorage<B>, m: Match<B>): boolean {
  if (typeof p === "string") {
    const prev = m[p];
    if (prev && prev !== s) return false;
    m[p] = s;
    return true;
  }
  if ("const" in p) {
    const v = constOf(s);
    if (v === undefined || (p.const !== "any" && !Object.is(v, p.const) && v !== p.const)) {
      return false;
    }
    if (p.as) m[p.as] = s;
    return true;
  }
  if (s.buf || !s.expr || s.expr.kind !== p.kind) return false;
  return matchExpr(p, s.expr, m) && (!p.as || (m[p.as] = s) !== undefined);
}

function matchExpr<B>(
  p: Exclude<Pat, string | { const: unknown }>,
  e: Expr<B>,
  m: Match<B>,
): boolean {
  if (e.kind !== p.kind) return false;
  const ex = e as unknown as {
    op?: unknown;
    x?: LazyStorage<B>;
    a?: LazyStorage<B>;
    b?: LazyStorage<B>;
    c?: LazyStorage<B>;
  };
  if (p.op !== undefined && ex.op !== p.op) return false;
  if (p.x !== undefined && !matchPat(p.x, ex.x!, m)) return false;
  if (p.a !== undefined && !matchPat(p.a, ex.a!, m)) return false;
  if (p.b !== undefined && !matchPat(p.b, ex.b!, m)) return false;
  return p.c === undefined || matchPat(p.c, ex.c!, m);
}

// ---- pattern builders ----

const C = (v: number | "any", as?: string): Pat => ({ const: v, as });
const un = (op: UnaryOp | undefined, x: Pat) => ({ kind: "unary" as const, op, x });
const bin = (op: BinaryOp | undefined, a: Pat, b: Pat) => ({ kind: "binary" as const, op, a, b });

// ---- replacements ----

/** An existing node as the result (a new reference to it). */
function same<B>(s: LazyStorage<B>): LazyStorage<B> {
  s.refs++;
  return s;
}

const fill = <B>(n: Node<B>, v: number) => n.g.fill(n.dtype, n.size, v);

type Fold1 = (h: typeof H, v: number) => number;
type Fold2 = (a: number, b: number) => number;

/**
 * The reference semantics of each op (the CPU's), as functions for folding constants. Each
 * is compiled at its first fold: compiling all 32 took 1–2 ms of every import.
 */
export const unaryFn: Fold1[] = UNARY_OPS.map((op) => {
  let f: Fold1 | undefined;
  return (h, v) => (f ??= new Function("H", "v", `return ${UNARY_JS[op]("v")};`) as Fold1)(h, v);
});
/** The same for binary ops. */
export const binaryFn: Fold2[] = BINARY_OPS.map((op) => {
  let f: Fold2 | undefined;
  return (a, b) =>
    (f ??= new Function("a", "b", `return ${BINARY_JS[op]("a", "b")};`) as Fold2)(a, b);
});

/** A constant's value as its dtype holds it. */
const val = <B>(s: LazyStorage<B>) => asDtype(s.dtype, constOf(s)!);

// ---- views: merging a view with the view or pad it reads ----

interface Box {
  /** The view's dims (its own, some split in rows); their row-major order is the view's. */
  shape: number[];
  /** For each of those dims, the dim of the shape it walks (−1: broadcast) and its step there. */
  dim: number[];
  step: number[];
  /** The coordinates of the view's first element, and each coordinate's range. */
  start: number[];
  lo: number[];
  hi: number[];
}

/**
 * Reads a strided view of the row-major index space of `shape` as a box in its
 * coordinates: each view dim walks one dim of `shape` with a fixed step and never carries
 * into the next. Null when the view does not align so.
 */
function boxOf(
  shape: readonly number[],
  view: { shape: readonly number[]; offset: number; strides: readonly number[] },
): Box | null {
  const rs = stridesOf(shape);
  const r = shape.length;
  const start = new Array<number>(r);
  let rem = view.offset;
  if (rem < 0) return null;
  for (let j = 0; j < r; j++) {
    start[j] = Math.floor(rem / rs[j]);
    rem -= start[j] * rs[j];
  }
  if (r > 0 && start[0] >= shape[0]) return null;
  const lo = [...start], hi = [...start];
  const vshape: number[] = [], dim: number[] = [], step: number[] = [];
  // the dim of `shape` whose row-major stride is the largest one dividing |st|
  const target = (st: number) => {
    let j = 0;
    while (j < r && rs[j] > Math.abs(st)) j++;
    return j < r && st % rs[j] === 0 ? j : -1;
  };
  for (let d = 0; d < view.shape.length; d++) {
    const st = view.strides[d];
    let n = view.shape[d];
    if (st === 0 || n === 1) {
      vshape.push(n);
      dim.push(-1);
      step.push(0);
      continue;
    }
    let j = target(st);
    if (j < 0) return null;
    const s = st / rs[j];
    // a unit-step run that sweeps whole rows of dim j from its start (a view merged by
    // coalescing) is split back into rows: [n / len_j] over dim j−1, then [len_j]
    const tail: [number, number, number][] = [];
    while (s === 1 && j > 0 && n > shape[j] && start[j] === 0 && n % shape[j] === 0) {
      tail.unshift([shape[j], j, 1]);
      n /= shape[j];
      j--;
    }
    if (Math.abs(s) >= shape[j] && n > 1) return null;
    for (
      const [len, jj, ss] of [[n, j, tail.length ? 1 : s] as [number, number, number], ...tail]
    ) {
      vshape.push(len);
      dim.push(jj);
      step.push(ss);
      if (ss > 0) hi[jj] += (len - 1) * ss;
      else lo[jj] += (len - 1) * ss;
    }
  }
  for (let j = 0; j < r; j++) if (lo[j] < 0 || hi[j] >= shape[j]) return null;
  return { shape: vshape, dim, step, start, lo, hi };
}

type ViewE<B> = Extract<Expr<B>, { kind: "view" }>;
type PadE<B> = Extract<Expr<B>, { kind: "pad" }>;

/** view(view(x)) as one view of x, when the outer view walks the inner one's dims as a box. */
function viewOfView<B>(m: Match<B>, n: Node<B>): LazyStorage<B> | null {
  const outer = n.e as ViewE<B>, inner = m.v.expr as ViewE<B>;
  const box = boxOf(inner.shape, outer);
  if (!box) return null;
  let offset = inner.offset;
  for (let j = 0; j < inner.shape.length; j++) offset += box.start[j] * inner.strides[j];
  const strides = box.dim.map((j, d) => (j < 0 ? 0 : box.step[d] * inner.strides[j]));
  return n.g.view(inner.x, box.shape, offset, strides);
}

/**
 * A view of a pad that reads only the padded child (the VJP of a slice meeting a slice of
 * it: the pad cancels) is a view of the child; one that reads only padding is a constant.
 */
function viewOfPad<B>(m: Match<B>, n: Node<B>): LazyStorage<B> | null {
  const outer = n.e as ViewE<B>, pad = m.p.expr as PadE<B>;
  const box = boxOf(pad.outShape, outer);
  if (!box) return null;
  const r = pad.outShape.length;
  let inside = true;
  for (let j = 0; j < r; j++) {
    const a = pad.before[j], z = pad.before[j] + pad.inShape[j];
    if (box.hi[j] < a || box.lo[j] >= z) return fill(n, pad.value); // all padding
    if (box.lo[j] < a || box.hi[j] >= z) inside = false;
  }
  if (!inside) return null;
  const rs = stridesOf(pad.inShape);
  let offset = 0;
  for (let j = 0; j < r; j++) offset += (box.start[j] - pad.before[j]) * rs[j];
  const strides = box.dim.map((j, d) => (j < 0 ? 0 : box.step[d] * rs[j]));
  return n.g.view(pad.x, box.shape, offset, strides);
}

// ---- reductions ----

type ReduceE<B> = Extract<Expr<B>, { kind: "reduce" }>;

/**
 * Σ over an axis the operand is broadcast along (stride 0) is the operand times the axis
 * length; max and min over it are the operand. The view's dims must group into
 * [outer | len | inner] blocks for the reduced block to be recognised.
 */
function reduceOfBroadcast<B>(m: Match<B>, n: Node<B>): LazyStorage<B> | null {
  const r = n.e as ReduceE<B>, v = m.v.expr as ViewE<B>;
  const dims = v.shape;
  // find where the prefix products reach outer and outer·len
  let p = 1, cut1 = -1, cut2 = -1;
  if (r.outer === 1) cut1 = 0;
  for (let d = 0; d < dims.length; d++) {
    p *= dims[d];
    if (p === r.outer && cut1 < 0) cut1 = d + 1;
    if (p === r.outer * r.len) {
      cut2 = d + 1;
      break;
    }
  }
  if (cut1 < 0 || cut2 < 0 || cut2 <= cut1) return null;
  for (let d = cut1; d < cut2; d++) if (v.strides[d] !== 0) return null;
  const keep = dims.map((_, d) => d).filter((d) => d < cut1 || d >= cut2);
  const c = coalesce(keep.map((d) => dims[d]), [keep.map((d) => v.strides[d])]);
  const g = n.g;
  const rest = g.view(v.x, c.shape, v.offset, c.strides[0]);
  if (r.op !== 0) return rest; // max, min
  const len = g.fill(n.dtype, n.size, r.len);
  const out = g.node({ kind: "binary", op: "mul", a: rest, b: len }, n.dtype, n.size);
  g.release(rest);
  g.release(len);
  return out;
}

// ---- the rules ----

const bin2 = <B>(n: Node<B>, op: BinaryOp, a: LazyStorage<B>, b: LazyStorage<B>) =>
  n.g.node({ kind: "binary", op, a, b }, n.dtype, n.size);
const neg = <B>(n: Node<B>, x: LazyStorage<B>) =>
  n.g.node({ kind: "unary", op: "neg", x }, n.dtype, n.size);

/** Every rule, in the order they are tried. */
export const RULES: readonly Rule[] = [
  // constant folding
  {
    name: "fold unary",
    pat: un(undefined, C("any", "k")),
    out: (m, n) => {
      const e = n.e as Extract<Expr<unknown>, { kind: "unary" }>;
      return fill(n, unaryFn[UNARY_OPS.indexOf(e.op)](H, val(m.k)));
    },
  },
  {
    name: "fold binary",
    pat: bin(undefined, C("any", "j"), C("any", "k")),
    out: (m, n) => {
      const e = n.e as Extract<Expr<unknown>, { kind: "binary" }>;
      return fill(n, binaryFn[BINARY_OPS.indexOf(e.op)](val(m.j), val(m.k)));
    },
  },
  {
    name: "fold where",
    pat: { kind: "where", c: C("any", "k"), a: "a", b: "b" },
    out: (m) => same(val(m.k) !== 0 ? m.a : m.b), // NaN !== 0: the first branch
  },
  { name: "fold cast", pat: { kind: "cast", x: C("any", "k") }, out: (m, n) => fill(n, val(m.k)) },
  // algebraic identities
  { name: "x·1", pat: bin("mul", "x", C(1)), out: (m) => same(m.x) },
  { name: "1·x", pat: bin("mul", C(1), "x"), out: (m) => same(m.x) },
  { name: "x/1", pat: bin("div", "x", C(1)), out: (m) => same(m.x) },
  { name: "x+0", pat: bin("add", "x", C(0)), out: (m) => same(m.x) },
  { name: "0+x", pat: bin("add", C(0), "x"), out: (m) => same(m.x) },
  { name: "x−0", pat: bin("sub", "x", C(0)), out: (m) => same(m.x) },
  { name: "x·0", pat: bin("mul", "x", C(0, "z")), out: (m) => same(m.z) },
  { name: "0·x", pat: bin("mul", C(0, "z"), "x"), out: (m) => same(m.z) },
  { name: "0−x", pat: bin("sub", C(0), "x"), out: (m, n) => neg(n, m.x) },
  { name: "x·−1", pat: bin("mul", "x", C(-1)), out: (m, n) => neg(n, m.x) },
  { name: "−1·x", pat: bin("mul", C(-1), "x"), out: (m, n) => neg(n, m.x) },
  { name: "−(−x)", pat: un("neg", un("neg", "x")), out: (m) => same(m.x) },
  { name: "a−(−b)", pat: bin("sub", "a", un("neg", "b")), out: (m, n) => bin2(n, "add", m.a, m.b) },
  { name: "a+(−b)", pat: bin("add", "a", un("neg", "b")), out: (m, n) => bin2(n, "sub", m.a, m.b) },
  { name: "(−a)+b", pat: bin("add", un("neg", "a"), "b"), out: (m, n) => bin2(n, "sub", m.b, m.a) },
  {
    name: "(−a)·(−b)",
    pat: bin("mul", un("neg", "a"), un("neg", "b")),
    out: (m, n) => bin2(n, "mul", m.a, m.b),
  },
  { name: "where(c, x, x)", pat: { kind: "where", a: "x", b: "x" }, out: (m) => same(m.x) },
  // movement
  {
    name: "view of a constant",
    pat: { kind: "view", x: C("any", "k") },
    out: (m, n) => fill(n, val(m.k)),
  },
  {
    name: "pad of a constant with its value",
    pat: { kind: "pad", x: C("any", "k") },
    out: (m, n) => {
      const p = n.e as PadE<unknown>;
      return Object.is(asDtype(n.dtype, p.value), val(m.k)) ? fill(n, p.value) : null;
    },
  },
  { name: "view of a view", pat: { kind: "view", x: { kind: "view", as: "v" } }, out: viewOfView },
  { name: "view of a pad", pat: { kind: "view", x: { kind: "pad", as: "p" } }, out: viewOfPad },
  // reductions
  {
    name: "reduction of a constant",
    pat: { kind: "reduce", x: C("any", "k") },
    out: (m, n) => {
      const r = n.e as ReduceE<unknown>;
      return fill(n, r.op === 0 ? val(m.k) * r.len : val(m.k));
    },
  },
  {
    name: "reduction over a broadcast",
    pat: { kind: "reduce", x: { kind: "view", as: "v" } },
    out: reduceOfBroadcast,
  },
];

/**
 * A test of the operands of a node one level down (their kinds and constants) that a
 * rule's pattern needs, made once per rule: most nodes match no rule, and this answers
 * before a match object is made.
 */
function operandTest(p: Rule["pat"]): (e: Expr<unknown>) => boolean {
  // deno-lint-ignore no-explicit-any
  const tests: ((e: any) => boolean)[] = [];
  for (const k of ["x", "a", "b", "c"] as const) {
    const q = p[k];
    if (q === undefined || typeof q === "string") continue;
    // deno-lint-ignore no-explicit-any
    const get = k === "x" ? (e: any) => e.x : k === "a" ? (e: any) => e.a : k === "b"
      // deno-lint-ignore no-explicit-any
      ? (e: any) => e.b
      // deno-lint-ignore no-explicit-any
      : (e: any) => e.c;
    if ("const" in q) {
      const want = q.const;
      tests.push((e) => {
        const v = constOf(get(e));
        return v !== undefined && (want === "any" || Object.is(v, want) || v === want);
      });
    } else {
      const kind = q.kind;
      tests.push((e) => {
        const s = get(e) as LazyStorage<unknown>;
        return s.buf === null && s.expr !== null && s.expr.kind === kind;
      });
    }
  }
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0];
  return (e) => tests.every((t) => t(e));
}

/** A rule with its operand test. */
interface Ready {
  readonly rule: Rule;
  readonly test: (e: Expr<unknown>) => boolean;
}

// the rules each node can match: by kind, and for unary and binary nodes by op too
const byKind = new Map<string, Ready[]>();
const byOp = new Map<string, Ready[]>();
for (const rule of RULES) {
  const r: Ready = { rule, test: operandTest(rule.pat) };
  const k = rule.pat.kind;
  const ops = k === "unary" ? UNARY_OPS : k === "binary" ? BINARY_OPS : [];
  for (const op of ops) {
    if (rule.pat.op !== undefined && op !== rule.pat.op) continue;
    const list = byOp.get(op) ?? [];
    list.push(r);
    byOp.set(op, list);
  }
  if (ops.length === 0) byKind.set(k, [...byKind.get(k) ?? [], r]);
}

/** Counts of rules applied, by name (for tests and benchmarks). */
export const ruleStats: Map<string, number> = new Map();

/** Turns the simplifier off (tests compare simplified programs with unsimplified ones). */
export const simplifier: { enabled: boolean } = { enabled: true };

/** Whether any rule could match: every pattern looks at an unrealized operand (or two equal ones). */
function candidate<B>(e: Expr<B>): boolean {
  const open = (s: LazyStorage<B>) => s.expr !== null && s.buf === null;
  switch (e.kind) {
    case "binary":
      return open(e.a) || open(e.b);
    case "where":
      return e.a === e.b || open(e.c);
    case "const":
    case "iota":
    case "comb":
      return false;
    default:
      return open(e.x);
  }
}

/** A node equivalent to `e`, built from existing ones, or null to build `e` as it is. */
export function simplify<B>(
  g: Graph<B>,
  e: Expr<B>,
  dtype: Dtype,
  size: number,
): LazyStorage<B> | null {
  if (!simplifier.enabled || !candidate(e)) return null;
  const rules = e.kind === "unary" || e.kind === "binary" ? byOp.get(e.op) : byKind.get(e.kind);
  if (!rules) return null;
  const n: Node<B> = { g, e, dtype, size };
  for (const { rule: r, test } of rules) {
    if (!test(e as Expr<unknown>)) continue;
    const m: Match<B> = {};
    if (!matchExpr(r.pat, e, m)) continue;
    const out = r.out(m, n);
    if (out) {
      ruleStats.set(r.name, (ruleStats.get(r.name) ?? 0) + 1);
      return out;
    }
  }
  return null;
}
