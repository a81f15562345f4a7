/**
 * Binding primitives to values. Each transform opens a trace with a level (its nesting
 * depth); an op goes to the highest-level trace among its operands, which computes the
 * primal by binding again one level down, so perturbations of different levels never mix.
 * With no traced operand, the op runs eagerly on the backend.
 */
import { PRIMITIVES } from "../primitives/registry.ts";
import { viewOf } from "../primitives/movement.ts";
import type { Aval, Params, Primitive } from "../primitives/types.ts";
import { Tensor } from "../tensor.ts";
import { fmtShape, sizeOf } from "../shape.ts";
import { itemSize } from "../dtype.ts";

/** A transform's trace: how it processes an op when one of its tracers is an operand. */
export abstract class Trace {
  active = true;
  /**
   * True for a trace whose `process` binds the primals before running any rule: that bind
   * validates the op (with its name in the error), so `bind` need not do it first.
   */
  readonly bindsFirst: boolean = false;
  constructor(readonly level: number, readonly name: string) {}
  abstract process<P extends Primitive>(
    prim: P,
    inputs: readonly Tensor[],
    params: Params[P],
  ): Tensor;
}

const stack: Trace[] = [];

/** Opens a trace one level above the current ones; close it with `popTrace`. */
export function pushTrace<T extends Trace>(make: (level: number) => T): T {
  const t = make(stack.length + 1);
  stack.push(t);
  return t;
}

export function popTrace(t: Trace): void {
  const top = stack.pop();
  if (top !== t) throw new Error("internal: trace stack out of order");
  t.active = false;
}

/** Number of transforms running now. */
export function traceDepth(): number {
  return stack.length;
}

function describe(x: Tensor): string {
  return `${fmtShape(x.shape)} ${x.dtype} on ${x.device.kind}`;
}

/** Runs a primitive on concrete tensors of one device. */
export function evalPrimitive<P extends Primitive>(
  prim: P,
  inputs: readonly Tensor[],
  params: Params[P],
): Tensor {
  const def = PRIMITIVES[prim];
  const dev = inputs[0].device;
  for (const x of inputs) {
    x._check(prim);
    if (x.device !== dev) {
      throw new Error(
        `${prim}: operands are on different devices (${inputs.map(describe).join(" and ")}); ` +
          `move one with to(x, device)`,
      );
    }
  }
  dev.backend.alive(prim);
  const out = def.abstract(inputs as readonly Aval[], params);
  const view = viewOf(prim, inputs[0], params);
  if (view) return view;
  if (!dev.backend.dtypes.includes(out.dtype)) {
    throw new TypeError(`${prim}: dtype ${out.dtype} is not supported on ${dev.kind}`);
  }
  const bytes = sizeOf(out.shape) * itemSize(out.dtype);
  if (bytes > dev.backend.maxStorageBytes) {
    // caught here, the error names the op; on WebGPU it would otherwise surface as a
    // binding-size validation error at the next read-back
    throw new RangeError(
      `${prim}: the result, a ${out.dtype} tensor of shape ${fmtShape(out.shape)}, needs ` +
        `${bytes} bytes, more than this ${dev.kind} device's limit of ` +
        `${dev.backend.maxStorageBytes} bytes per buffer (maxStorageBufferBindingSize on WebGPU)`,
    );
  }
  const storage = def.impl(dev.backend, inputs, params, out);
  return Tensor._fromStorage(storage, out.shape, out.dtype, dev, inputs);
}

/** Applies a primitive to tensors, traced or concrete. */
export function bind<P extends Primitive>(
  prim: P,
  inputs: readonly Tensor[],
  params: Params[P],
): Tensor {
  let top: Trace | null = null;
  for (const x of inputs) {
    const tr = x._tracer?.trace as Trace | undefined;
    if (tr && (!top || tr.level > top.level)) top = tr;
  }
  if (!top) return evalPrimitive(prim, inputs, params);
  if (!top.active) {
    throw new Error(
      `${prim}: an operand is a traced value from a ${top.name} transform that has already returned ` +
        `(a tracer escaped, e.g. through a closure or a global)`,
    );
  }
  // Validate once here so errors name the op even inside transforms.
  if (!top.bindsFirst) PRIMITIVES[prim].abstract(inputs as readonly Aval[], params);
  return top.process(prim, inputs, params);
}
