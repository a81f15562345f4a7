/**
 * Tangents with a leading probe axis. A JVP trace may carry K tangents at once, shaped
 * [K, ...primal.shape]; rules use these helpers to shift axes and to line tangents up
 * for broadcasting, so K Hessian-vector products cost one pass with K-wide kernels.
 */
import type { Tensor } from "../tensor.ts";
import { reshape } from "../ops/movement.ts";
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

  /** A materialised zero tangent for a primal. */
  zeros(x: Tensor): Tensor {
    return zeros(this.shape(x.shape), { dtype: x.dtype, device: x.device });
  }
}
