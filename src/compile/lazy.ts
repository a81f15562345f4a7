/**
 * Deferred elementwise work, shared by both backends. Elementwise ops, movement views,
 * pads, fills and reductions return a LazyStorage<B> holding an expression over other
 * storages instead of running a kernel; the expression runs when something needs memory:
 * a read-back, a kernel that is not elementwise (matmul, gather, …), or a reduction, which
 * evaluates it inside its first pass. A chain like `sum((x[1:] - x[:-1]²)²)` thus reads x
 * once, and values nobody reads are never computed. Each backend generates its own code
 * for an expression (WGSL in webgpu/codegen.ts, JavaScript in cpu/codegen.ts); B is the
 * type of a realized buffer.
 */
import {
  BINARY_OPS,
  type BinaryOp,
  type Storage,
  UNARY_OPS,
  type UnaryOp,
} from "../backend/backend.ts";
import { type Dtype, itemSize } from "../dtype.ts";
import { type Fault, joinFaults } from "../backend/fault.ts";

/** An expression node. Children always have this node's size unless a view/pad says otherwise. */
export type Expr<B = unknown> =
  | { readonly kind: "const"; readonly value: number }
  | { readonly kind: "iota"; readonly start: number; readonly step: number }
  | { readonly kind: "comb"; readonly n: number; readonly period: number }
  | { readonly kind: "unary"; readonly op: UnaryOp; readonly x: LazyStorage<B> }
  | {
    readonly kind: "binary";
    readonly op: BinaryOp;
    readonly a: LazyStorage<B>;
    readonly b: LazyStorage<B>;
  }
  | {
    readonly kind: "where";
    readonly c: LazyStorage<B>;
    readonly a: LazyStorage<B>;
    readonly b: LazyStorage<B>;
  }
  | { readonly kind: "cast"; readonly x: LazyStorage<B> }
  | {
    /** out[idx] = x[offset + Σ idx_d · strides_d] over `shape` (already coalesced). */
    readonly kind: "view";
    readonly x: LazyStorage<B>;
    readonly shape: readonly number[];
    readonly offset: number;
    readonly strides: readonly number[];
  }
  | {
    /** A reduction (see WebGpuBackend.reduce): opaque to fusion, run when first needed. */
    readonly kind: "reduce";
    readonly op: number;
    readonly x: LazyStorage<B>;
    readonly outer: number;
    readonly len: number;
    readonly inner: number;
  }
  | {
    /**
     * Band storage [b + 1, n] gathered from the products of `period` comb probes, x
     * [period, n]: a banded Hessian's direct recovery, which reads H[i][j] from row i of
     * the product of probe j mod period (no other column of that probe reaches row i
     * inside the band). Row s holds H[j + g][j] at column j, g = s − (upper ? b : 0)
     * (LAPACK's lower or upper storage); the mirror reads each entry from its other
     * product, H[j][j + g] (the symmetry check). 0 where j + g falls outside [0, n).
     */
    readonly kind: "band";
    readonly x: LazyStorage<B>;
    readonly n: number;
    readonly b: number;
    readonly period: number;
    /** 1: upper storage (LAPACK's uplo), else lower. */
    readonly upper: number;
    /** 1: each entry from its other product (H[j][i] for H[i][j]: the symmetry check). */
    readonly mirror: number;
  }
  | {
    readonly kind: "pad";
    readonly x: LazyStorage<B>;
    readonly outShape: readonly number[];
    readonly inShape: readonly number[];
    readonly before: readonly number[];
    readonly value: number;
  };

/**
 * Visits everything that identifies an expression given its kind, in a fixed order:
 * numbers (sizes, constants, op codes) through `num`, children through `kid`.
 */
export function visitFields<B>(
  e: Expr<B>,
  num: (v: number) => void,
  kid: (c: LazyStorage<B>) => void,
): void {
  const nums = (xs: readonly number[]) => {
    for (const x of xs) num(x);
  };
  switch (e.kind) {
    case "const":
      return num(e.value);
    case "iota":
      return nums([e.start, e.step]);
    case "comb":
      return nums([e.n, e.period]);
    case "unary":
      num(UNARY_OPS.indexOf(e.op));
      return kid(e.x);
    case "binary":
      num(BINARY_OPS.indexOf(e.op));
      kid(e.a);
      return kid(e.b);
    case "where":
      kid(e.c);
      kid(e.a);
      return kid(e.b);
    case "cast":
      return kid(e.x);
    case "view":
      kid(e.x);
      nums([e.offset, e.shape.length, ...e.shape, ...e.strides]);
      return;
    case "pad":
      kid(e.x);
      nums([e.value, e.outShape.length, ...e.outShape, ...e.inShape, ...e.before]);
      return;
    case "band":
      kid(e.x);
      nums([e.n, e.b, e.period, e.upper, e.mirror]);
      return;
    case "reduce":
      kid(e.x);
      nums([e.op, e.outer, e.len, e.inner]);
  }
}

/** Calls `f` on each child of an expression (no array made). */
export function forChildren<B>(e: Expr<B>, f: (c: LazyStorage<B>) => void): void {
  switch (e.kind) {
    case "unary":
    case "cast":
    case "view":
    case "pad":
    case "band":
    case "reduce":
      f(e.x);
      return;
    case "binary":
      f(e.a);
      f(e.b);
      return;
    case "where":
      f(e.c);
      f(e.a);
      f(e.b);
  }
}

export function children<B>(e: Expr<B>): LazyStorage<B>[] {
  switch (e.kind) {
    case "const":
    case "iota":
    case "comb":
      return [];
    case "unary":
    case "cast":
    case "view":
    case "pad":
    case "band":
    case "reduce":
      return [e.x];
    case "binary":
      return [e.a, e.b];
    case "where":
      return [e.c, e.a, e.b];
  }
}

/** Unary ops that cost far more than a read (a library call per element): all but these. */
const CHEAP = new Set<UnaryOp>(["neg", "abs", "square", "reciprocal", "sign"]);
const COSTLY = new Set<UnaryOp>(UNARY_OPS.filter((op) => !CHEAP.has(op)));

/** True for an unrealized costly unary op (see realizeSharedWork in schedule.ts). */
export function isCostly<B>(s: LazyStorage<B>): boolean {
  return s.buf === null && s.expr !== null && s.expr.kind === "unary" && COSTLY.has(s.expr.op);
}

/** Uniform slots an expression node uses for its own numbers. */
export function ownParams<B>(e: Expr<B>): number {
  switch (e.kind) {
    case "const":
      return 1;
    case "iota":
    case "comb":
      return 2;
    case "view":
      return 1 + 2 * e.shape.length;
    case "pad":
      return 1 + 3 * e.outShape.length;
    case "band":
      return 8; // n, b and the divisors n and period (with magic numbers)
    default:
      return 0;
  }
}

/**
 * Exact size of the expression DAG rooted at the given children (shared nodes counted
 * once, realized buffers and reductions as leaves). The per-node bounds overcount shared
 * subexpressions, so fusion limits are checked with this when the bounds say "too big".
 */
export function measure<B>(
  roots: readonly LazyStorage<B>[],
): { nodes: number; leaves: number; params: number } {
  const seen = new Set<LazyStorage<B>>();
  const bufs = new Set<unknown>();
  let nodes = 0, params = 0;
  const stack = [...roots];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    nodes++;
    if (s.buf !== null || !s.expr || s.expr.kind === "reduce") {
      bufs.add(s.buf ?? s);
      continue;
    }
    params += ownParams(s.expr);
    stack.push(...children(s.expr));
  }
  return { nodes, leaves: bufs.size, params };
}

let nextId = 0;

/** Storage that is a realized buffer, or an expression not yet run. Reference-counted. */
export class LazyStorage<B = unknown> implements Storage {
  readonly id = nextId++;
  refs = 1;
  /**
   * How many of `refs` are unrealized expressions reading this one (the rest are tensors
   * and programs): a kernel that fuses this node while some of its readers lie outside the
   * kernel leaves them to evaluate it again (see schedule.ts, realizeSharedWork).
   */
  users = 0;
  buf: B | null;
  expr: Expr<B> | null;
  readonly byteLength: number;
  /** Upper bounds over the unrealized expression DAG, used to cap fusion. */
  nodes: number;
  leaves: number;
  params: number;
  /** Lowering's scratch (lower.ts): the lowering that last visited, the index and value it memoized. */
  _epoch = 0;
  _ix = -1;
  _val = -1;
  _leaf = -1;
  /** The graph's merge table (graph.ts): this node's structural hash, when it is listed there. */
  _hash: number | null = null;
  /** Longest path down to a buffer: bounds how far a value carried through a loop grows. */
  depth: number;
  /**
   * Kernel errors this value owns (see ../fault.ts): inherited from the storages it is
   * computed from; a kernel that can fail adds its own check to its output.
   */
  fault: Fault | null;

  constructor(
    readonly dtype: Dtype,
    readonly size: number,
    buf: B | null,
    expr: Expr<B> | null,
  ) {
    this.byteLength = size * itemSize(dtype);
    this.buf = buf;
    this.expr = expr;
    this.depth = 0;
    this.nodes = 1;
    this.leaves = 1;
    this.params = 0;
    this.fault = null;
    if (!expr) return;
    if (expr.kind === "reduce") {
      this.fault = expr.x.fault;
      // a consumer reads it as a buffer: it counts as one leaf
      expr.x.refs++;
      expr.x.users++;
      return;
    }
    this.leaves = 0;
    this.params = ownParams(expr);
    let faults: (Fault | null)[] | null = null;
    forChildren(expr, (k) => {
      k.refs++;
      k.users++;
      if (k.depth >= this.depth) this.depth = k.depth + 1;
      this.nodes += k.nodes;
      this.leaves += k.leaves;
      this.params += k.params;
      if (k.fault) (faults ??= []).push(k.fault);
    });
    if (faults) this.fault = joinFaults(faults);
    if (this.depth === 0) this.depth = 1;
  }

  /** Marks this storage realized into `buf`, dropping its expression (and the references it held). */
  settle(buf: B, release: (s: LazyStorage<B>) => void): void {
    const e = this.expr;
    this.buf = buf;
    this.expr = null;
    this.nodes = 1;
    this.leaves = 1;
    this.params = 0;
    if (e) { for (const k of children(e)) release(k); }
  }
}
