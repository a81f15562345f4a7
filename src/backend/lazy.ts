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
import type { BinaryOp, Storage, UnaryOp } from "./backend.ts";
import { type Dtype, itemSize } from "../dtype.ts";
import { type Fault, joinFaults } from "./fault.ts";

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
    readonly kind: "pad";
    readonly x: LazyStorage<B>;
    readonly outShape: readonly number[];
    readonly inShape: readonly number[];
    readonly before: readonly number[];
    readonly value: number;
  };

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
    case "reduce":
      return [e.x];
    case "binary":
      return [e.a, e.b];
    case "where":
      return [e.c, e.a, e.b];
  }
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
  buf: B | null;
  expr: Expr<B> | null;
  readonly byteLength: number;
  /** Upper bounds over the unrealized expression DAG, used to cap fusion. */
  nodes: number;
  leaves: number;
  params: number;
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
    this.depth = expr && expr.kind !== "reduce"
      ? 1 + Math.max(0, ...children(expr).map((k) => k.depth))
      : 0;
    this.fault = expr ? joinFaults(children(expr).map((k) => k.fault)) : null;
    if (expr?.kind === "reduce") {
      expr.x.refs++;
      // a consumer reads it as a buffer: it counts as one leaf
      this.nodes = 1;
      this.leaves = 1;
      this.params = 0;
    } else if (expr) {
      const kids = children(expr);
      for (const k of kids) k.refs++;
      this.nodes = 1 + kids.reduce((a, k) => a + k.nodes, 0);
      this.leaves = kids.reduce((a, k) => a + k.leaves, 0);
      this.params = ownParams(expr) + kids.reduce((a, k) => a + k.params, 0);
    } else {
      this.nodes = 1;
      this.leaves = 1;
      this.params = 0;
    }
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
