/** Forward mode: dual numbers (primal, tangent); the tangent may carry a leading probe axis. */
import { bind, Trace } from "./core.ts";
import type { TangentBatch } from "./batch.ts";
import { PRIMITIVES } from "../primitives/registry.ts";
import type { Params, Primitive } from "../primitives/types.ts";
import { Tensor, type Tracer } from "../tensor.ts";
import { fmtShape, shapesEqual } from "../shape.ts";

export class JvpTracer implements Tracer {
  constructor(readonly trace: JvpTrace, readonly primal: Tensor, readonly tangent: Tensor) {}
}

export class JvpTrace extends Trace {
  constructor(level: number, readonly tb: TangentBatch) {
    super(level, "jvp");
  }

  /** A dual number of this trace. */
  wrap(primal: Tensor, tangent: Tensor): Tensor {
    return new Tensor(
      primal.shape,
      primal.dtype,
      primal.device,
      null,
      new JvpTracer(this, primal, tangent),
    );
  }

  own(x: Tensor): JvpTracer | null {
    return x._tracer?.trace === this ? (x._tracer as JvpTracer) : null;
  }

  process<P extends Primitive>(prim: P, inputs: readonly Tensor[], params: Params[P]): Tensor {
    const xs = inputs.map((x) => this.own(x)?.primal ?? x);
    const ts = inputs.map((x) => this.own(x)?.tangent ?? null);
    const y = bind(prim, xs, params);
    const t = PRIMITIVES[prim].jvp(xs, ts, y, params, this.tb);
    if (!t) return y;
    const want = this.tb.shape(y.shape);
    if (!shapesEqual(t.shape, want)) {
      throw new Error(
        `internal: the JVP rule of ${prim} gave a tangent of shape ${fmtShape(t.shape)}, expected ${
          fmtShape(want)
        }`,
      );
    }
    return this.wrap(y, t);
  }
}
