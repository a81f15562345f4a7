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
 * Folds everything that identifies an expression given its kind into the hash `h`:
 * numbers (sizes, constants, op codes) through `num`, children by `id`. Written out per
 * kind (no closures, no arrays): it runs for every node the graph builds.
 */
export function hashFields<B>(
  e: Expr<B>,
  h: number,
  mix: (h: number, v: number) => number,
  num: (v: number) => number,
): number {
  const nums = (h: number, xs: readonly number[]) => {
    for (let i = 0; i < xs.length; i++) h = mix(h, num(xs[i]));
    return h;
  };
  switch (e.kind) {
    case "const":
      return mix(h, num(e.value));
    case "iota":
      return mix(mix(h, num(e.start)), num(e.step));
    case "comb":
      return mix(mix(h, num(e.n)), num(e.period));
    case "unary":
      return mix(mix(h, UNARY_OPS.indexOf(e.op)), e.x.id);
    case "binary":
      return mix(mix(mix(h, BINARY_OPS.indexOf(e.op)), e.a.id), e.b.id);
    case "where":
      return mix(mix(mix(h, e.c.id), e.a.id), e.b.id);
    case "cast":
      return mix(h, e.x.id);
    case "view":
      h = mix(mix(mix(h, e.x.id), num(e.offset)), e.shape.length);
      return nums(nums(h, e.shape), e.strides);
    case "pad":
      h = mix(mix(mix(h, e.x.id), num(e.value)), e.outShape.length);
      return nums(nums(nums(h, e.outShape), e.inShape), e.before);
    case "band":
      h = mix(mix(mix(mix(h, e.x.id), e.n), e.b), e.period);
      return mix(mix(h, e.upper), e.mirror);
    case "reduce":
      return mix(mix(mix(mix(mix(h, e.x.id), e.op), e.outer), e.len), e.inner);
  }
}

function sameNums(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** True when two expressions are the same op on the same children with the same numbers. */
export function sameExpr<B>(x: Expr<B>, y: Expr<B>): boolean {
  switch (x.kind) {
    case "const":
      return y.kind === "const" && Object.is(x.value, y.value);
    case "iota":
      return y.kind === "iota" && Object.is(x.start, y.start) && Object.is(x.step, y.step);
    case "comb":
      return y.kind === "comb" && x.n === y.n && x.period === y.period;
    case "unary":
      return y.kind === "unary" && x.op === y.op && x.x === y.x;
    case "binary":
      return y.kind === "binary" && x.op === y.op && x.a === y.a && x.b === y.b;
    case "where":
      return y.kind === "where" && x.c === y.c && x.a === y.a && x.b === y.b;
    case "cast":
      return y.kind === "cast" && x.x === y.x;
    case "view":
      return y.kind === "view" && x.x === y.x && x.offset === y.offset &&
        sameNums(x.shape, y.shape) && sameNums(x.strides, y.strides);
    case "pad":
      return y.kind === "pad" && x.x === y.x && Object.is(x.value, y.value) &&
        sameNums(x.outShape, y.outShape) && sameNums(x.inShape, y.inShape) &&
        sameNums(x.before, y.before);
    case "band":
      return y.kind === "band" && x.x === y.x && x.n === y.n && x.b === y.b &&
        x.period === y.period && x.upper === y.upper && x.mirror === y.mirror;
    case "reduce":
      return y.kind === "reduce" && x.x === y.x && x.op === y.op && x.outer === y.outer &&
        x.len === y.len && x.inner === y.inner;
  }
}

/**
 * Calls `f` on each child of an expression (no array made), with `ctx` (a fixed `f` and a
 * context make no closure per call, for the paths every op takes).
 */
export function forChildren<B, C = undefined>(
  e: Expr<B>,
  f: (c: LazyStorage<B>, ctx: C) => void,
  ctx?: C,
): void {
  switch (e.kind) {
    case "unary":
    case "cast":
    case "view":
    case "pad":
    case "band":
    case "reduce":
      f(e.x, ctx!);
      return;
    case "binary":
      f(e.a, ctx!);
      f(e.b, ctx!);
      return;
    case "where":
      f(e.c, ctx!);
      f(e.a, ctx!);
      f(e.b, ctx!);
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

/** Whether an expression node is itself a costly op. */
function costlyExpr<B>(e: Expr<B>): boolean {
  return e.kind === "unary" && COSTLY.has(e.op);
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

/** The id the next storage made will have: every storage made after this call has a larger one. */
export function nextStorageId(): number {
  return nextId;
}

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
  /** The structural walk of lower_cache.ts: the walk that last met this node, and where. */
  _walk = 0;
  _walkIx = -1;
  /** The graph's merge table (graph.ts): this node's structural hash, when it is listed there. */
  _hash: number | null = null;
  /** Longest path down to a buffer: bounds how far a value carried through a loop grows. */
  depth: number;
  /**
   * Whether an unrealized costly op (isCostly) may lie in this expression, reductions read
   * included: false lets the schedule skip looking for costly work to run first. Set when
   * the node is made and not cleared when parts of it are realized (so: may).
   */
  costly: boolean;
  /**
   * Whether a split candidate (schedule.ts, splitSize: a view broadcasting along its leading
   * axis, or comb probes) may lie in this expression above its buffers and reductions:
   * false lets the schedule skip looking for one. Like `costly`, a may.
   */
  splittable: boolean;
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
    this.costly = false;
    this.splittable = false;
    if (!expr) return;
    if (expr.kind === "reduce") {
      this.costly = expr.x.costly;
      this.fault = expr.x.fault;
      // a consumer reads it as a buffer: it counts as one leaf
      expr.x.refs++;
      expr.x.users++;
      return;
    }
    this.leaves = 0;
    this.params = ownParams(expr);
    this.costly = costlyExpr(expr);
    this.splittable = expr.kind === "comb" ||
      (expr.kind === "view" && expr.shape.length >= 2 && expr.strides[0] === 0);
    // the operands, without a closure (every node of every op is made here)
    let faults: Fault[] | null = null;
    switch (expr.kind) {
      case "const":
      case "iota":
      case "comb":
        break;
      case "binary":
        faults = this.#read(expr.a, faults);
        faults = this.#read(expr.b, faults);
        break;
      case "where":
        faults = this.#read(expr.c, faults);
        faults = this.#read(expr.a, faults);
        faults = this.#read(expr.b, faults);
        break;
      default:
        faults = this.#read(expr.x, faults);
    }
    if (faults) this.fault = joinFaults(faults);
    if (this.depth === 0) this.depth = 1;
  }

  /** Takes operand k into this node's reference counts, bounds and flags. */
  #read(k: LazyStorage<B>, faults: Fault[] | null): Fault[] | null {
    if (k.costly) this.costly = true;
    if (k.splittable) this.splittable = true;
    k.refs++;
    k.users++;
    if (k.depth >= this.depth) this.depth = k.depth + 1;
    this.nodes += k.nodes;
    this.leaves += k.leaves;
    this.params += k.params;
    if (k.fault) (faults ??= []).push(k.fault);
    return faults;
  }

  /** Marks this storage realized into `buf`, dropping its expression (and the references it held). */
  settle(buf: B, release: (s: LazyStorage<B>) => void): void {
    const e = this.expr;
    this.buf = buf;
    this.expr = null;
    this.costly = false;
    this.splittable = false;
    this.nodes = 1;
    this.leaves = 1;
    this.params = 0;
    if (e) { for (const k of children(e)) release(k); }
  }
}
