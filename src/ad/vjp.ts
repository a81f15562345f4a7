/** Reverse mode: a tape of nodes recorded as ops run, and the backward pass over it. */
import { bind, Trace } from "./core.ts";
import { PRIMITIVES } from "../primitives/registry.ts";
import type { Params, Primitive } from "../primitives/types.ts";
import { Tensor, type Tracer } from "../tensor.ts";
import { fmtShape, shapesEqual } from "../shape.ts";
import { add } from "../ops/elementwise.ts";

/** One recorded op (or an input leaf, with prim null). */
export interface Node {
  readonly id: number;
  readonly prim: Primitive | null;
  readonly params: unknown;
  readonly xs: readonly Tensor[];
  readonly y: Tensor;
  readonly parents: readonly (Node | null)[];
}

let nextId = 0;

export class VjpTracer implements Tracer {
  constructor(readonly trace: VjpTrace, readonly primal: Tensor, readonly node: Node) {}
}

export class VjpTrace extends Trace {
  constructor(level: number) {
    super(level, "grad/vjp");
  }
  override readonly bindsFirst = true;

  /** Wraps an input as a leaf of the tape. */
  leaf(x: Tensor): { t: Tensor; node: Node } {
    const node: Node = { id: nextId++, prim: null, params: null, xs: [], y: x, parents: [] };
    return { t: this.#wrap(x, node), node };
  }

  #wrap(primal: Tensor, node: Node): Tensor {
    return new Tensor(
      primal.shape,
      primal.dtype,
      primal.device,
      null,
      new VjpTracer(this, primal, node),
    );
  }

  own(x: Tensor): VjpTracer | null {
    return x._tracer?.trace === this ? (x._tracer as VjpTracer) : null;
  }

  process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: Params[P]): Tensor {
    const xs: Tensor[] = [], parents: (Node | null)[] = [];
    for (const x of inputs) {
      const t = this.own(x);
      xs.push(t ? t.primal : x);
      parents.push(t ? t.node : null);
    }
    // binding the primals first validates the op (see Trace.bindsFirst)
    const y = bind(prim, xs, params);
    const node: Node = { id: nextId++, prim, params, xs, y, parents };
    return this.#wrap(y, node);
  }
}

/**
 * Propagates cotangent `seed` from `out` back through the tape; returns the cotangent of
 * every node reached (leaves included). Rules run as ordinary ops, so an enclosing
 * transform records them too: that is what makes grad-of-grad and jvp-of-grad work.
 */
export function backward(out: Node, seed: Tensor): Map<Node, Tensor> {
  const seen = new Set<Node>();
  const order: Node[] = [];
  const stack = [out];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    order.push(n);
    for (const p of n.parents) if (p && !seen.has(p)) stack.push(p);
  }
  order.sort((a, b) => b.id - a.id); // ids grow with recording order: a reverse topological order
  const ct = new Map<Node, Tensor>([[out, seed]]);
  const leaves = new Map<Node, Tensor>();
  for (const n of order) {
    const g = ct.get(n);
    if (!g) continue;
    if (!n.prim) {
      leaves.set(n, g);
      continue;
    }
    const needs = n.parents.map((p) => p !== null);
    const rule = PRIMITIVES[n.prim].vjp as (
      g: Tensor,
      x: readonly Tensor[],
      y: Tensor,
      p: unknown,
      needs: readonly boolean[],
    ) => readonly (Tensor | null)[];
    const cts = rule(g, n.xs, n.y, n.params, needs);
    n.parents.forEach((p, i) => {
      const c = cts[i];
      if (!p || !c) return;
      if (!shapesEqual(c.shape, n.xs[i].shape)) {
        throw new Error(
          `internal: the VJP rule of ${n.prim} gave a cotangent of shape ${
            fmtShape(c.shape)
          } for an input of shape ${fmtShape(n.xs[i].shape)}`,
        );
      }
      const prev = ct.get(p);
      ct.set(p, prev ? add(prev, c) : c);
    });
    ct.delete(n);
  }
  return leaves;
}
