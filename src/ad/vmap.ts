/**
 * `vmap`: the batching transform. A batch trace carries each mapped value with its batch
 * axis in front and hands every op to the primitive's batching rule, which runs it once
 * on the whole batch. Rules are written in library ops, so vmap nests under and over
 * every other transform (`vmap(grad(f))`, `grad(vmap(f))`, `vmap(vmap(f))`, …).
 */
import { popTrace, pushTrace, Trace } from "./core.ts";
import { TangentBatch } from "./batch.ts";
import { PRIMITIVES } from "../primitives/registry.ts";
import type { Aval, Params, Primitive } from "../primitives/types.ts";
import { Tensor, type Tracer } from "../tensor.ts";
import { transformScope } from "../memory.ts";
import { fmtShape, normAxis, shapesEqual } from "../shape.ts";
import { describeValue } from "../ops/common.ts";
import { broadcastTo, transpose } from "../ops/movement.ts";

class BatchTracer implements Tracer {
  constructor(readonly trace: BatchTrace, readonly value: Tensor) {}

  /** A batched value has no single primal: reading it inside the mapped function is an error. */
  get primal(): Tensor {
    throw new Error(
      `a tensor batched by vmap cannot be read inside the function given to vmap ` +
        `(it stands for ${this.trace.bb.k} values); return it from the function instead`,
    );
  }

  /** Applies `fn` to the batched value, keeping it batched (for stopGradient). */
  mapValue(fn: (v: Tensor) => Tensor): Tensor {
    return this.trace.wrap(fn(this.value));
  }
}

class BatchTrace extends Trace {
  readonly bb: TangentBatch;
  constructor(level: number, size: number) {
    super(level, "vmap");
    this.bb = new TangentBatch(size);
  }

  /** A mapped value: `value` is `[B, ...shape]`, the tracer shows `shape`. */
  wrap(value: Tensor): Tensor {
    return new Tensor(
      value.shape.slice(1),
      value.dtype,
      value.device,
      null,
      new BatchTracer(this, value),
    );
  }

  own(x: Tensor): BatchTracer | null {
    return x._tracer?.trace === this ? (x._tracer as BatchTracer) : null;
  }

  process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: Params[P]): Tensor {
    const xs = inputs.map((x) => this.own(x)?.value ?? x);
    const batched = inputs.map((x) => this.own(x) !== null);
    const out: Aval = PRIMITIVES[prim].abstract(inputs as readonly Aval[], params);
    const y = PRIMITIVES[prim].batch(xs, batched, params, this.bb, out);
    const want = this.bb.shape(out.shape);
    if (!shapesEqual(y.shape, want)) {
      throw new Error(
        `internal: the batching rule of ${prim} gave shape ${fmtShape(y.shape)}, expected ${
          fmtShape(want)
        }`,
      );
    }
    return this.wrap(y);
  }
}

/** Where the batch axis is in an argument or output: an axis, or `null` for none. */
export type Axis = number | null;

/**
 * Axes for `vmap`'s inputs: one for every argument, or one per argument. An argument that is
 * an array of tensors takes one axis for all of them (or a list, one per tensor).
 */
export type InAxes = Axis | readonly (Axis | readonly Axis[])[];
/** Axes for `vmap`'s outputs: one for every output, or one per output of an array result. */
export type OutAxes = Axis | readonly Axis[];

function checkAxisSpec(what: string, a: unknown): Axis {
  if (a === null || (typeof a === "number" && Number.isInteger(a))) return a as Axis;
  throw new TypeError(`vmap: ${what} must be an integer axis or null, got ${describeValue(a)}`);
}

/** x with axis `from` moved to `to`. */
function moveAxis(x: Tensor, from: number, to: number): Tensor {
  if (from === to) return x;
  const perm = [...Array(x.rank).keys()];
  perm.splice(from, 1);
  perm.splice(to, 0, from);
  return transpose(x, perm);
}

/** One leaf to map: the tensor and its batch axis (already resolved). */
interface Leaf {
  t: Tensor;
  axis: number;
  where: string;
}

/**
 * Vectorising map, as JAX's `vmap`: `vmap(f)(xs)` equals stacking `f(x)` over the slices `x`
 * of `xs` along axis 0, computed in one pass (each op runs once on the whole batch).
 * `inAxes` gives each argument's batch axis (`null`: not mapped, passed whole to every call;
 * numbers and other non-tensor arguments must be `null`); `outAxes` places the batch axis in
 * each output (`null`: the output must not depend on the mapped arguments). Composes with
 * every transform: `vmap(grad(f))` gives per-example gradients, `grad` of a `vmap`, `vmap`
 * of `hvp`, nested `vmap`.
 *
 * @example Per-example gradients of a loss `(θ, x, y) ↦ (θ·x − y)²`
 * ```ts
 * import { grad, type Tensor, tensor, vmap } from "@curvature/curvature";
 * const loss = (th: Tensor, x: Tensor, y: Tensor) => th.dot(x).sub(y).square();
 * const theta = tensor([1, 2]);
 * const X = tensor([[1, 0], [0, 1], [1, 1]]), Y = tensor([0, 0, 0]);
 * const perExample = vmap(grad(loss), [null, 0, 0])(theta, X, Y); // [3, 2]: one gradient per row
 * console.log(await perExample.toArray()); // [[2, 0], [0, 4], [6, 6]]
 * ```
 */
export function vmap<A extends unknown[], R extends Tensor | Tensor[]>(
  f: (...args: A) => R,
  inAxes: InAxes = 0,
  outAxes: OutAxes = 0,
): (...args: A) => R {
  if (typeof f !== "function") {
    throw new TypeError(`vmap: expected a function, got ${describeValue(f)}`);
  }
  if (Array.isArray(inAxes)) {
    inAxes.forEach((a, i) =>
      Array.isArray(a)
        ? a.forEach((b, j) => checkAxisSpec(`inAxes[${i}][${j}]`, b))
        : checkAxisSpec(`inAxes[${i}]`, a)
    );
  } else checkAxisSpec("inAxes", inAxes);
  if (Array.isArray(outAxes)) outAxes.forEach((a, i) => checkAxisSpec(`outAxes[${i}]`, a));
  else checkAxisSpec("outAxes", outAxes);

  return ((...args: A): R =>
    transformScope(() => {
      if (Array.isArray(inAxes) && inAxes.length !== args.length) {
        throw new RangeError(
          `vmap: inAxes has ${inAxes.length} entries but the function was called with ${args.length} argument(s)`,
        );
      }
      const axisOf = (i: number): Axis | readonly Axis[] =>
        Array.isArray(inAxes) ? inAxes[i] : (inAxes as Axis);
      const leaves: Leaf[] = [];
      // which argument (and tensor within an array argument) each leaf replaces
      const place: [number, number | null][] = [];
      args.forEach((arg, i) => {
        const spec = axisOf(i);
        if (arg instanceof Tensor) {
          if (Array.isArray(spec)) {
            throw new TypeError(`vmap: inAxes[${i}] is a list but argument ${i} is one tensor`);
          }
          if (spec !== null) {
            leaves.push({
              t: arg,
              axis: resolve(arg, spec as number, `argument ${i}`),
              where: `argument ${i}`,
            });
            place.push([i, null]);
          }
        } else if (Array.isArray(arg) && arg.every((a) => a instanceof Tensor)) {
          if (Array.isArray(spec) && spec.length !== arg.length) {
            throw new RangeError(
              `vmap: inAxes[${i}] has ${spec.length} entries for an array of ${arg.length} tensors`,
            );
          }
          arg.forEach((t: Tensor, j: number) => {
            const a = Array.isArray(spec) ? spec[j] : spec;
            if (a === null) return;
            const where = `argument ${i}[${j}]`;
            leaves.push({ t, axis: resolve(t, a as number, where), where });
            place.push([i, j]);
          });
        } else if (spec !== null && !(Array.isArray(spec) && spec.every((a) => a === null))) {
          throw new TypeError(
            `vmap: argument ${i} is ${describeValue(arg)}, which has no axis to map; ` +
              `give it the in axis null`,
          );
        }
      });
      if (leaves.length === 0) {
        throw new RangeError(
          "vmap: no argument is mapped (every in axis is null); map at least one tensor",
        );
      }
      const size = leaves[0].t.shape[leaves[0].axis];
      for (const l of leaves) {
        if (l.t.shape[l.axis] !== size) {
          throw new RangeError(
            `vmap: the mapped axes have different sizes: ${
              leaves.map((m) => `${m.where} ${fmtShape(m.t.shape)} axis ${m.axis}`).join(", ")
            }`,
          );
        }
      }
      if (size === 0) throw new RangeError("vmap: the mapped axes have size 0");

      const trace = pushTrace((l) => new BatchTrace(l, size));
      let result: unknown;
      try {
        const targs: unknown[] = args.map((a) => (Array.isArray(a) ? [...a] : a));
        leaves.forEach((l, k) => {
          const [i, j] = place[k];
          const mapped = trace.wrap(moveAxis(l.t, l.axis, 0));
          if (j === null) targs[i] = mapped;
          else (targs[i] as Tensor[])[j] = mapped;
        });
        result = f(...(targs as A));
      } finally {
        popTrace(trace);
      }
      const outs = result instanceof Tensor
        ? [result]
        : Array.isArray(result) && result.every((r) => r instanceof Tensor)
        ? result as Tensor[]
        : null;
      if (!outs) {
        throw new TypeError(
          `vmap: the function must return a Tensor or an array of Tensors, got ${
            describeValue(result)
          }`,
        );
      }
      if (Array.isArray(outAxes) && (!Array.isArray(result) || outAxes.length !== outs.length)) {
        throw new RangeError(
          `vmap: outAxes has ${outAxes.length} entries but the function returned ${
            Array.isArray(result) ? `${outs.length} tensors` : "one tensor"
          }`,
        );
      }
      const mapped = outs.map((y, k) => {
        const a = Array.isArray(outAxes) ? outAxes[k] : (outAxes as Axis);
        const own = trace.own(y);
        if (a === null) {
          if (own) {
            throw new RangeError(
              `vmap: output ${k} depends on the mapped arguments, but its out axis is null`,
            );
          }
          return y;
        }
        const value = own ? own.value : broadcastTo(y, [size, ...y.shape]);
        return moveAxis(value, 0, normAxis("vmap (out axis)", a, value.rank));
      });
      return (result instanceof Tensor ? mapped[0] : mapped) as R;
    })) as (...args: A) => R;
}

function resolve(t: Tensor, axis: number, where: string): number {
  if (t.rank === 0) {
    throw new RangeError(`vmap: ${where} is a 0-d tensor, which has no axis to map`);
  }
  return normAxis(`vmap (${where})`, axis, t.shape);
}
