/**
 * Building the expression graph, for every backend: the Backend calls that defer work
 * (elementwise ops, views, pads, fills, reductions) become LazyStorage nodes here. Each
 * new node is first offered to the simplifier (rewrite.ts), which may answer with a node
 * that already exists; identical nodes are merged (common subexpressions); and the fusion
 * caps decide which operands must run as kernels of their own first. A backend supplies
 * only how to run a node (`realize`) and how to free a buffer.
 */
import type { BinaryOp, ReduceOp, UnaryOp } from "../backend/backend.ts";
import { REDUCE_OPS } from "../backend/backend.ts";
import type { Dtype } from "../dtype.ts";
import { broadcastStrides, coalesce, sizeOf } from "../shape.ts";
import { permutedStrides, planReduce } from "../shape_plan.ts";
import {
  children,
  type Expr,
  forChildren,
  hashFields,
  LazyStorage,
  measure,
  ownParams,
  sameExpr,
} from "./lazy.ts";
import { simplifier, simplify } from "./rewrite.ts";
import { hashNum, mix } from "./uops.ts";

/** Limits on what one fused kernel may hold. */
export interface Caps {
  /** Expression nodes. */
  readonly maxNodes: number;
  /** Longest chain: a value carried through a loop is run once it gets this deep. */
  readonly maxDepth: number;
  /** Parameter slots (WebGPU's uniform block), or Infinity. */
  readonly maxParams: number;
  /** Leaf buffers (WebGPU's storage bindings), or Infinity. */
  readonly maxLeaves: number;
}

type Size = { nodes: number; leaves: number; params: number };

const KINDS = [
  "const",
  "iota",
  "comb",
  "unary",
  "binary",
  "where",
  "cast",
  "view",
  "pad",
  "reduce",
  "band",
];

/** A structural hash of a node's own fields and its children's identities. */
function hashExpr<B>(e: Expr<B>, dtype: Dtype, size: number): number {
  const h = hashFields(e, mix(mix(KINDS.indexOf(e.kind), dtype.charCodeAt(1)), size), mix, hashNum);
  // 30 bits: a small integer, which a Map keys without allocating
  return h & 0x3fffffff;
}

/** Whether an operand of `e` carries a kernel error. */
function faultyKids<B>(e: Expr<B>): boolean {
  switch (e.kind) {
    case "const":
    case "iota":
    case "comb":
      return false;
    case "binary":
      return e.a.fault !== null || e.b.fault !== null;
    case "where":
      return e.c.fault !== null || e.a.fault !== null || e.b.fault !== null;
    default:
      return e.x.fault !== null;
  }
}

/** Whether the live node `s` is `e` of `dtype` and `size`. */
function same<B>(s: LazyStorage<B>, e: Expr<B>, dtype: Dtype, size: number): boolean {
  return s.expr !== null && s.dtype === dtype && s.size === size && sameExpr(s.expr, e);
}

export class Graph<B> {
  /** Live unrealized nodes by structural hash, for merging identical ones. */
  #nodes = new Map<number, LazyStorage<B> | LazyStorage<B>[]>();

  constructor(
    readonly caps: Caps,
    /** Runs a node's deferred work into a buffer (a backend's kernel launcher). */
    readonly realize: (s: LazyStorage<B>) => B,
    /** Returns a buffer whose last reference is gone to its pool. */
    readonly free: (buf: B) => void,
  ) {}

  /** A realized buffer as storage. */
  leaf(buf: B, dtype: Dtype, size: number): LazyStorage<B> {
    return new LazyStorage<B>(dtype, size, buf, null);
  }

  /** Drops a reference; the last one frees the buffer, or the expression's references. */
  release(s: LazyStorage<B>): void {
    if (--s.refs > 0) return;
    this.#forget(s);
    if (s.buf) this.free(s.buf);
    else if (s.expr) forChildren(s.expr, Graph.#unreadIn, this);
    s.buf = null;
    s.expr = null;
  }

  /** Drops an expression's reference to its operand `c`. */
  #unread(c: LazyStorage<B>): void {
    c.users--;
    this.release(c);
  }

  /** Takes a node out of the merge table (it died, or its expression was replaced by a buffer). */
  #forget(s: LazyStorage<B>): void {
    const h = s._hash;
    if (h === null) return;
    s._hash = null;
    const e = this.#nodes.get(h);
    if (e === s) this.#nodes.delete(h);
    else if (Array.isArray(e)) {
      const at = e.indexOf(s);
      if (at >= 0) e.splice(at, 1);
      if (e.length === 1) this.#nodes.set(h, e[0]);
    }
  }

  /**
   * A deferred expression node: simplified, merged with an identical live node, and with
   * operands run first where the fused kernel would grow past the caps.
   */
  node(e: Expr<B>, dtype: Dtype, size: number): LazyStorage<B> {
    // a rewrite may drop an operand; one that carries a kernel error must stay (its error
    // belongs to everything computed from it)
    const simpler = faultyKids(e) ? null : simplify(this, e, dtype, size);
    if (simpler) return simpler;
    // constants are not merged: they cost a parameter either way, and two slots keep a GPU
    // compiler from folding c − c to 0 when c is infinite
    if (e.kind === "const" || !simplifier.enabled) return this.#fit(e, dtype, size);
    const h = hashExpr(e, dtype, size);
    const hit = this.#nodes.get(h);
    if (hit !== undefined) {
      if (!Array.isArray(hit)) {
        if (same(hit, e, dtype, size)) return (hit.refs++, hit);
      } else {
        for (const s of hit) if (same(s, e, dtype, size)) return (s.refs++, s);
      }
    }
    const out = this.#fit(e, dtype, size);
    out._hash = h;
    if (hit === undefined) this.#nodes.set(h, out);
    else if (Array.isArray(hit)) hit.push(out);
    else this.#nodes.set(h, [hit, out]);
    return out;
  }

  /** Creates the node, running its biggest operands first while it would not fit the caps. */
  #fit(e: Expr<B>, dtype: Dtype, size: number): LazyStorage<B> {
    if (e.kind === "reduce") return new LazyStorage<B>(dtype, size, null, e);
    const caps = this.caps;
    const own = ownParams(e);
    const fits = (m: Size) =>
      m.nodes + 1 <= caps.maxNodes && m.leaves <= caps.maxLeaves &&
      m.params + own <= caps.maxParams;
    // a chain deeper than this (an eager loop that never ends a tidy) is cut: its fused
    // kernels would otherwise grow, and be compiled anew, with every iteration
    const bound = { nodes: 0, leaves: 0, params: 0, graph: this };
    forChildren(e, Graph.#bound, bound);
    let exact: Size | null = null;
    if (!fits(bound)) {
      const kids = children(e);
      exact = measure(kids);
      while (!fits(exact)) {
        const big = kids.filter((c) =>
          !c.buf
        ).sort((a, b) => b.nodes + b.params - (a.nodes + a.params))[0];
        if (!big) break;
        this.realize(big);
        exact = measure(kids);
      }
    }
    const out = new LazyStorage<B>(dtype, size, null, e);
    if (exact) {
      // the bounds would keep growing with sharing; start again from the exact size
      out.nodes = exact.nodes + 1;
      out.leaves = exact.leaves;
      out.params = exact.params + own;
    }
    return out;
  }

  /** Adds operand c's size to `bound`, first running c if it is too deep (see #fit). */
  static #bound<B>(c: LazyStorage<B>, bound: Size & { graph: Graph<B> }): void {
    if (c.depth >= bound.graph.caps.maxDepth) bound.graph.realize(c);
    bound.nodes += c.nodes;
    bound.leaves += c.leaves;
    bound.params += c.params;
  }

  /** Drops the reference of an expression of graph `g` to its operand `c`. */
  static #unreadIn<B>(c: LazyStorage<B>, g: Graph<B>): void {
    g.#unread(c);
  }

  /** Marks `s` realized into `buf` (its expression's references are dropped). */
  settle(s: LazyStorage<B>, buf: B): void {
    this.#forget(s);
    s.settle(buf, (c) => this.#unread(c as LazyStorage<B>));
  }

  fill(dtype: Dtype, size: number, value: number): LazyStorage<B> {
    return this.node({ kind: "const", value }, dtype, size);
  }

  iota(dtype: Dtype, size: number, start: number, step: number): LazyStorage<B> {
    return this.node({ kind: "iota", start, step }, dtype, size);
  }

  /** Comb probes [period, n]: out[k][i] = 1 where i ≡ k (mod period), else 0. */
  comb(dtype: Dtype, n: number, period: number): LazyStorage<B> {
    return this.node({ kind: "comb", n, period }, dtype, period * n);
  }

  unary(op: UnaryOp, dtype: Dtype, x: LazyStorage<B>, size: number): LazyStorage<B> {
    return this.node({ kind: "unary", op, x }, dtype, size);
  }

  binary(
    op: BinaryOp,
    dtype: Dtype,
    a: LazyStorage<B>,
    aShape: readonly number[],
    b: LazyStorage<B>,
    bShape: readonly number[],
    outShape: readonly number[],
  ): LazyStorage<B> {
    const av = this.broadcast(a, aShape, outShape), bv = this.broadcast(b, bShape, outShape);
    const o = this.node({ kind: "binary", op, a: av, b: bv }, dtype, sizeOf(outShape));
    this.release(av);
    this.release(bv);
    return o;
  }

  where(
    dtype: Dtype,
    c: LazyStorage<B>,
    cShape: readonly number[],
    a: LazyStorage<B>,
    aShape: readonly number[],
    b: LazyStorage<B>,
    bShape: readonly number[],
    outShape: readonly number[],
  ): LazyStorage<B> {
    const cv = this.broadcast(c, cShape, outShape);
    const av = this.broadcast(a, aShape, outShape), bv = this.broadcast(b, bShape, outShape);
    const o = this.node({ kind: "where", c: cv, a: av, b: bv }, dtype, sizeOf(outShape));
    this.release(cv);
    this.release(av);
    this.release(bv);
    return o;
  }

  cast(x: LazyStorage<B>, from: Dtype, to: Dtype, size: number): LazyStorage<B> {
    if (from === to) {
      x.refs++;
      return x;
    }
    return this.node({ kind: "cast", x }, to, size);
  }

  /** x of `shape` read as if broadcast to `outShape` (no node when the sizes agree). */
  broadcast(
    x: LazyStorage<B>,
    shape: readonly number[],
    outShape: readonly number[],
  ): LazyStorage<B> {
    if (sizeOf(shape) === sizeOf(outShape)) {
      x.refs++;
      return x;
    }
    return this.view(x, outShape, 0, broadcastStrides(shape, outShape));
  }

  /** A deferred view: out[idx] = x[offset + Σ idx·strides] (transpose, broadcast, slice). */
  view(
    x: LazyStorage<B>,
    outShape: readonly number[],
    offset: number,
    strides: readonly number[],
  ): LazyStorage<B> {
    const n = sizeOf(outShape);
    const c = coalesce(outShape, [strides]);
    if (
      offset === 0 && n === x.size && c.shape.length <= 1 &&
      (c.shape.length === 0 || c.strides[0][0] === 1)
    ) {
      x.refs++; // the identity view
      return x;
    }
    return this.node(
      { kind: "view", x, shape: c.shape, offset, strides: c.strides[0] },
      x.dtype,
      n,
    );
  }

  /** A deferred constant pad. */
  pad(
    dtype: Dtype,
    x: LazyStorage<B>,
    shape: readonly number[],
    pads: readonly (readonly [number, number])[],
    value: number,
  ): LazyStorage<B> {
    const outShape = shape.map((d, i) => d + pads[i][0] + pads[i][1]);
    return this.node(
      { kind: "pad", x, outShape, inShape: [...shape], before: pads.map((q) => q[0]), value },
      dtype,
      sizeOf(outShape),
    );
  }

  /**
   * Band storage [b + 1, n] from the products x [period, n] of `period` comb probes (a
   * banded Hessian's direct recovery; see the "band" expression in lazy.ts). Deferred, so
   * the kernel that computes the products writes the band instead (no products array and
   * no second pass).
   */
  band(
    dtype: Dtype,
    x: LazyStorage<B>,
    n: number,
    b: number,
    period: number,
    upper: boolean,
    mirror: boolean,
  ): LazyStorage<B> {
    if (!(b < period && period <= n && x.size === period * n)) {
      throw new Error(`internal: band of b = ${b} from ${x.size} products of ${period} × ${n}`);
    }
    const e = { kind: "band", x, n, b, period, upper: +upper, mirror: +mirror } as const;
    return this.node(e, dtype, (b + 1) * n);
  }

  /**
   * A deferred reduction over `axes` (sorted, unique): its input expression is evaluated
   * inside the reducing kernel. A value nobody reads (the forward sum under grad) costs
   * nothing.
   */
  reduce(
    op: ReduceOp,
    dtype: Dtype,
    x: LazyStorage<B>,
    shape: readonly number[],
    axes: readonly number[],
  ): LazyStorage<B> {
    const plan = planReduce(shape, axes);
    const { outer, inner } = plan;
    let src: LazyStorage<B>;
    if (plan.perm) {
      const { outShape, strides } = permutedStrides(shape, plan.perm);
      src = this.view(x, outShape, 0, strides); // a view: no copy is made
    } else {
      src = x;
      src.refs++;
    }
    if (plan.reduced === 0) {
      // an empty reduced axis: the sum is 0 (max/min of nothing is refused above this layer)
      this.release(src);
      return this.fill(dtype, outer * inner, 0);
    }
    if (plan.reduced === 1) return src;
    const o = this.node(
      { kind: "reduce", op: REDUCE_OPS.indexOf(op), x: src, outer, len: plan.reduced, inner },
      dtype,
      outer * inner,
    );
    this.release(src);
    return o;
  }
}
