/**
 * What both backends share: the Backend calls that defer work (fills, elementwise ops,
 * views, pads, reductions) build nodes of the expression graph above the devices
 * (../compile/graph.ts) instead of running kernels. A device supplies the graph (its
 * fusion caps, how it runs a node, how it frees a buffer) and its opaque kernels.
 */
import type { BinaryOp, ReduceOp, Storage, UnaryOp } from "./backend.ts";
import type { Dtype } from "../dtype.ts";
import type { Graph } from "../compile/graph.ts";
import type { LazyStorage } from "../compile/lazy.ts";

export abstract class DeferredBackend<B> {
  /** The device's expression graph. */
  abstract readonly graph: Graph<B>;

  #lz(s: Storage): LazyStorage<B> {
    return s as LazyStorage<B>;
  }

  release(s: Storage): void {
    this.graph.release(this.#lz(s));
  }
  fill(dtype: Dtype, size: number, value: number): Storage {
    return this.graph.fill(dtype, size, value);
  }
  iota(dtype: Dtype, size: number, start: number, step: number): Storage {
    return this.graph.iota(dtype, size, start, step);
  }
  /** Comb probes as an expression: fused into the HVP that uses them, never stored. */
  comb(dtype: Dtype, n: number, period: number): Storage {
    return this.graph.comb(dtype, n, period);
  }
  unary(op: UnaryOp, dtype: Dtype, x: Storage, size: number): Storage {
    return this.graph.unary(op, dtype, this.#lz(x), size);
  }
  binary(
    op: BinaryOp,
    dtype: Dtype,
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    return this.graph.binary(op, dtype, this.#lz(a), aShape, this.#lz(b), bShape, outShape);
  }
  where(
    dtype: Dtype,
    c: Storage,
    cShape: readonly number[],
    a: Storage,
    aShape: readonly number[],
    b: Storage,
    bShape: readonly number[],
    outShape: readonly number[],
  ): Storage {
    const [lc, la, lb] = [c, a, b].map((s) => this.#lz(s));
    return this.graph.where(dtype, lc, cShape, la, aShape, lb, bShape, outShape);
  }
  cast(x: Storage, from: Dtype, to: Dtype, size: number): Storage {
    return this.graph.cast(this.#lz(x), from, to, size);
  }
  /** A deferred reduction: its input expression is evaluated inside the reducing kernel. */
  reduce(
    op: ReduceOp,
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    axes: readonly number[],
  ): Storage {
    return this.graph.reduce(op, dtype, this.#lz(x), shape, axes);
  }
  /** A deferred view: out[idx] = x[offset + Σ idx·strides] (transpose, broadcast, slice). */
  stridedCopy(
    _dtype: Dtype,
    x: Storage,
    outShape: readonly number[],
    offset: number,
    strides: readonly number[],
  ): Storage {
    return this.graph.view(this.#lz(x), outShape, offset, strides);
  }
  /**
   * Band storage from comb-probe products, deferred: the kernel that computes the products
   * writes the band directly (see Graph.band).
   */
  unshuffleBand(
    dtype: Dtype,
    hv: Storage,
    n: number,
    b: number,
    period: number,
    upper: boolean,
    mirror: boolean,
  ): Storage {
    return this.graph.band(dtype, this.#lz(hv), n, b, period, upper, mirror);
  }
  /** A deferred constant pad. */
  pad(
    dtype: Dtype,
    x: Storage,
    shape: readonly number[],
    pads: readonly (readonly [number, number])[],
    value: number,
  ): Storage {
    return this.graph.pad(dtype, this.#lz(x), shape, pads, value);
  }
}
