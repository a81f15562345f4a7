/**
 * Deferred elementwise work on WebGPU. Elementwise ops, movement views, pads and fills
 * return a LazyStorage holding an expression over other storages instead of running a
 * kernel; the expression runs when something needs memory: a read-back, a kernel that
 * is not elementwise (matmul, gather, …), or a reduction, which evaluates it inside its
 * first pass. A chain like `sum((x[1:] - x[:-1]²)²)` thus reads x once and writes one
 * partial per workgroup, and values nobody reads are never computed.
 */
import type { BinaryOp, Storage, UnaryOp } from "../backend.ts";
import type { Dtype } from "../../dtype.ts";
import type { GpuStorage } from "./pool.ts";

/** An expression node. Children always have this node's size unless a view/pad says otherwise. */
export type Expr =
  | { readonly kind: "const"; readonly value: number }
  | { readonly kind: "iota"; readonly start: number; readonly step: number }
  | { readonly kind: "comb"; readonly n: number; readonly period: number }
  | { readonly kind: "unary"; readonly op: UnaryOp; readonly x: LazyStorage }
  | {
    readonly kind: "binary";
    readonly op: BinaryOp;
    readonly a: LazyStorage;
    readonly b: LazyStorage;
  }
  | {
    readonly kind: "where";
    readonly c: LazyStorage;
    readonly a: LazyStorage;
    readonly b: LazyStorage;
  }
  | { readonly kind: "cast"; readonly x: LazyStorage }
  | {
    /** out[idx] = x[offset + Σ idx_d · strides_d] over `shape` (already coalesced). */
    readonly kind: "view";
    readonly x: LazyStorage;
    readonly shape: readonly number[];
    readonly offset: number;
    readonly strides: readonly number[];
  }
  | {
    /** A reduction (see WebGpuBackend.reduce): opaque to fusion, run when first needed. */
    readonly kind: "reduce";
    readonly op: number;
    readonly x: LazyStorage;
    readonly outer: number;
    readonly len: number;
    readonly inner: number;
  }
  | {
    readonly kind: "pad";
    readonly x: LazyStorage;
    readonly outShape: readonly number[];
    readonly inShape: readonly number[];
    readonly before: readonly number[];
    readonly value: number;
  };

export function children(e: Expr): LazyStorage[] {
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
export function ownParams(e: Expr): number {
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
export function measure(
  roots: readonly LazyStorage[],
): { nodes: number; leaves: number; params: number } {
  const seen = new Set<LazyStorage>();
  const bufs = new Set<unknown>();
  let nodes = 0, params = 0;
  const stack = [...roots];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    nodes++;
    if (s.buf || !s.expr || s.expr.kind === "reduce") {
      bufs.add(s.buf ?? s);
      continue;
    }
    params += ownParams(s.expr);
    stack.push(...children(s.expr));
  }
  return { nodes, leaves: bufs.size, params };
}

let nextId = 0;

/** WebGPU storage: a realized buffer, or an expression not yet run. Reference-counted. */
export class LazyStorage implements Storage {
  readonly id = nextId++;
  refs = 1;
  buf: GpuStorage | null;
  expr: Expr | null;
  readonly byteLength: number;
  /** Upper bounds over the unrealized expression DAG, used to cap fusion. */
  nodes: number;
  leaves: number;
  params: number;
  /** Longest path down to a buffer: bounds how far a value carried through a loop grows. */
  depth: number;

  constructor(
    readonly dtype: Dtype,
    readonly size: number,
    buf: GpuStorage | null,
    expr: Expr | null,
  ) {
    this.byteLength = size * 4;
    this.buf = buf;
    this.expr = expr;
    this.depth = expr && expr.kind !== "reduce"
      ? 1 + Math.max(0, ...children(expr).map((k) => k.depth))
      : 0;
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
  settle(buf: GpuStorage, release: (s: LazyStorage) => void): void {
    const e = this.expr;
    this.buf = buf;
    this.expr = null;
    this.nodes = 1;
    this.leaves = 1;
    this.params = 0;
    if (e) { for (const k of children(e)) release(k); }
  }
}
