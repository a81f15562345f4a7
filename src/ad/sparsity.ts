/**
 * Sparsity tracing: runs f once with every value carrying, per element, the set of input
 * variables it may depend on (its first-order dependencies), propagated by each primitive's
 * `sparsity` rule. For Hessians each op also records its second-order pairs, and the
 * pattern is the union of the pairs of the ops that reach the output along paths of
 * non-zero first derivative (found by a backward walk, so dead code adds nothing).
 *
 * The pattern is global: it holds for every input of that shape, since rules look at
 * shapes, never values (the primal values are computed alongside, but nothing reads them).
 */
import { bind, popTrace, pushTrace, Trace } from "./core.ts";
import { assemblePairs, IndexSets, type PairBlock, sortedRows, withScratch } from "./index_sets.ts";
import { PRIMITIVES } from "../primitives/registry.ts";
import type { Params, Primitive } from "../primitives/types.ts";
import { Tensor, type Tracer } from "../tensor.ts";
import { transformScope } from "../memory.ts";

/** A traced value's sets, the traced values it was computed from, and the pairs its op made. */
interface Node {
  readonly sets: IndexSets;
  readonly parents: readonly Node[];
  readonly pairs: readonly PairBlock[];
}

class SparsityTracer implements Tracer {
  constructor(readonly trace: SparsityTrace, readonly primal: Tensor, readonly node: Node) {}
}

class SparsityTrace extends Trace {
  constructor(level: number, readonly secondOrder: boolean) {
    super(level, "sparsity");
  }

  wrap(primal: Tensor, node: Node): Tensor {
    return new Tensor(
      primal.shape,
      primal.dtype,
      primal.device,
      null,
      new SparsityTracer(this, primal, node),
    );
  }

  own(x: Tensor): SparsityTracer | null {
    return x._tracer?.trace === this ? (x._tracer as SparsityTracer) : null;
  }

  process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: Params[P]): Tensor {
    const xs = inputs.map((x) => this.own(x)?.primal ?? x);
    const nodes = inputs.map((x) => this.own(x)?.node ?? null);
    const y = bind(prim, xs, params);
    const pairs: PairBlock[] = [];
    const sink = {
      pairs: this.secondOrder ? (r: IndexSets, c: IndexSets) => pairs.push({ r, c }) : () => {},
    };
    const sets = PRIMITIVES[prim].sparsity(nodes.map((n) => n?.sets ?? null), xs, y, params, sink);
    // a value that depends on no variable is a constant: it leaves the trace
    if (!sets || sets.idx.length === 0) return y;
    return this.wrap(y, { sets, parents: nodes.filter((n) => n !== null), pairs });
  }
}

/** Runs f on x under a sparsity trace; returns the output's node (null: f(x) is constant). */
function traced(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  secondOrder: boolean,
  check: (y: unknown) => Tensor,
): { node: Node | null; y: Tensor } {
  const trace = pushTrace((l) => new SparsityTrace(l, secondOrder));
  try {
    const input: Node = { sets: IndexSets.identity(x.size), parents: [], pairs: [] };
    const y = check(f(trace.wrap(x, input)));
    return { node: trace.own(y)?.node ?? null, y };
  } finally {
    popTrace(trace);
  }
}

/** CSR rows (sorted columns) of a pattern. */
export interface PatternRows {
  rowPtr: Int32Array;
  colIdx: Int32Array;
}

/**
 * @internal The Hessian pattern of scalar f at x's shape (n × n, n = x.size): the pairs
 * recorded by the ops that reach the output. `check` validates f's result.
 */
export function traceHessianPattern(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  check: (y: unknown) => Tensor,
): PatternRows {
  return withScratch(() => hessianRows(f, x, check));
}

function hessianRows(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  check: (y: unknown) => Tensor,
): PatternRows {
  const n = x.size;
  const node = transformScope(() => traced(f, x, true, check).node);
  const blocks: PairBlock[] = [];
  const seen = new Set<Node>(), seenPair = new Map<IndexSets, Set<IndexSets>>();
  const stack = node ? [node] : [];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const p of v.pairs) {
      // an elementwise chain (sqrt(ε + t²)) records the same blocks once per nonlinear op
      let with_ = seenPair.get(p.r);
      if (!with_) seenPair.set(p.r, with_ = new Set());
      if (with_.has(p.c) || seenPair.get(p.c)?.has(p.r)) continue;
      with_.add(p.c);
      blocks.push(p);
    }
    stack.push(...v.parents);
  }
  return assemblePairs(blocks, n);
}

/**
 * @internal The Jacobian pattern of f at x's shape (f(x).size × x.size): row e holds the
 * variables output element e depends on. Also returns f(x)'s shape.
 */
export function traceJacobianPattern(
  f: (x: Tensor) => Tensor,
  x: Tensor,
  check: (y: unknown) => Tensor,
): PatternRows & { outShape: readonly number[] } {
  return withScratch(() => {
    const { node, outShape } = transformScope(() => {
      const { node, y } = traced(f, x, false, check);
      return { node, outShape: y.shape };
    });
    const m = outShape.reduce((a, d) => a * d, 1);
    if (!node) return { rowPtr: new Int32Array(m + 1), colIdx: new Int32Array(0), outShape };
    return { ...sortedRows(node.sets), outShape };
  });
}
