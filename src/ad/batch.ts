/**
 * Values with a leading batch axis: K probe tangents of a JVP trace, shaped
 * [K, ...primal.shape], or the B examples a `vmap` trace carries, shaped [B, ...shape].
 * Rules use these helpers to shift axes and to line values up for broadcasting, so K
 * Hessian-vector products (or B examples) cost one pass with K-wide kernels.
 */
import type { Tensor } from "../tensor.ts";
import { broadcastTo, reshape } from "../ops/movement.ts";
import { zeros } from "../ops/creation.ts";

export class TangentBatch {
  /** Probes carried (0 = plain tangents with no probe axis). */
  constructor(readonly k: number) {}

  /** Leading axes tangents carry beyond the primal's (0 or 1). */
  get lead(): number {
    return this.k > 0 ? 1 : 0;
  }

  /** A primal axis as an axis of the tangent. */
  axis(a: number): number {
    return a + this.lead;
  }

  axes(list: readonly number[]): number[] {
    return list.map((a) => a + this.lead);
  }

  /** A primal shape as the tangent's shape. */
  shape(s: readonly number[]): number[] {
    return this.k > 0 ? [this.k, ...s] : [...s];
  }

  /** A permutation of primal axes as one of tangent axes. */
  perm(p: readonly number[]): number[] {
    return this.k > 0 ? [0, ...p.map((a) => a + 1)] : [...p];
  }

  /**
   * Reshapes tangent `t` (of a primal with rank r ≤ `rank`) so its primal part has `rank`
   * dims, inserting 1s after the probe axis: it then broadcasts against primal-shaped
   * values of that rank the way the primal did.
   */
  lift(t: Tensor, rank: number): Tensor {
    const r = t.rank - this.lead;
    if (r >= rank) return t;
    const ones = new Array<number>(rank - r).fill(1);
    const s = this.k > 0 ? [this.k, ...ones, ...t.shape.slice(1)] : [...ones, ...t.shape];
    return reshape(t, s);
  }

  /**
   * Operands of a broadcasting op under `vmap`: batched ones lifted to `rank` per-example
   * dims (the batch axis stays in front, so it broadcasts against unbatched operands,
   * which broadcast from the right as before).
   */
  align(xs: readonly Tensor[], batched: readonly boolean[], rank: number): Tensor[] {
    return xs.map((x, i) => (batched[i] ? this.lift(x, rank) : x));
  }

  /** An unbatched value given the batch axis by broadcasting (batched ones pass through). */
  materialize(x: Tensor, batched: boolean): Tensor {
    return batched ? x : broadcastTo(x, this.shape(x.shape));
  }

  /** A materialised zero tangent for a primal. */
  zeros(x: Tensor): Tensor {
    return zeros(this.shape(x.shape), { dtype: x.dtype, device: x.device });
  }
}
