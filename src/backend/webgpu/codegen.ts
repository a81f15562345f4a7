/**
 * Writes the glue of a fused kernel: the body of `load(idx)` that evaluates a LazyStorage
 * expression at a linear index, the storage bindings of its leaf buffers, and the uniform
 * slots holding its numbers (sizes, strides, constants), so that one pipeline serves
 * every size. The maths itself is `unary_op` / `binary_op` from shaders/ops.wgsl; the
 * kernel around `load` is a hand-written template (shaders/fused_*.wgsl).
 */
import { BINARY_OPS, UNARY_OPS } from "../backend.ts";
import type { GpuStorage } from "./pool.ts";
import type { LazyStorage } from "./lazy.ts";

/** Binding index of the first leaf: 0 is the uniform block, then the kernel's own buffers. */
export interface GenOptions {
  firstBinding: number;
}

const f32Bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];

export class KernelGen {
  readonly lines: string[] = [];
  readonly slots: number[] = [];
  readonly leaves: GpuStorage[] = [];
  #leafIndex = new Map<GpuStorage, number>();
  #memo = new Map<string, string>();
  #n = 0;

  constructor(readonly opts: GenOptions) {}

  #name(prefix: string): string {
    return `${prefix}${this.#n++}`;
  }

  #slot(bits: number): string {
    const k = this.slots.push(bits >>> 0) - 1;
    return `p.v[${k >> 2}][${k & 3}]`;
  }

  u32(v: number): string {
    return this.#slot(v);
  }

  f32(v: number): string {
    return `bitcast<f32>(${this.#slot(f32Bits(v))})`;
  }

  #leaf(buf: GpuStorage): string {
    let k = this.#leafIndex.get(buf);
    if (k === undefined) {
      k = this.leaves.push(buf) - 1;
      this.#leafIndex.set(buf, k);
    }
    return `b${k}`;
  }

  #let(prefix: string, type: string, expr: string): string {
    const name = this.#name(prefix);
    this.lines.push(`let ${name}: ${type} = ${expr};`);
    return name;
  }

  /** Splits linear index `idx` over `shape` (row-major); returns the per-dim index names. */
  #unravel(idx: string, shape: readonly number[]): string[] {
    const out = new Array<string>(shape.length);
    let rem = idx;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (d === 0) {
        out[d] = rem;
        break;
      }
      const s = this.u32(shape[d]);
      out[d] = this.#let("q", "u32", `${rem} % ${s}`);
      rem = this.#let("r", "u32", `${rem} / ${s}`);
    }
    return out;
  }

  /** Name of a `let` holding ls's value at linear index `idx` (an expression of type u32). */
  value(ls: LazyStorage, idx: string): string {
    const key = `${ls.id}@${idx}`;
    const hit = this.#memo.get(key);
    if (hit) return hit;
    const v = this.#value(ls, idx);
    this.#memo.set(key, v);
    return v;
  }

  #value(ls: LazyStorage, idx: string): string {
    const T = ls.dtype === "i32" ? "i32" : "f32";
    if (ls.buf) return this.#let("v", T, `bitcast<${T}>(${this.#leaf(ls.buf)}[${idx}])`);
    const e = ls.expr!;
    switch (e.kind) {
      case "const":
        return this.#let(
          "v",
          T,
          `bitcast<${T}>(${this.#slot(T === "i32" ? e.value | 0 : f32Bits(e.value))})`,
        );
      case "iota":
        if (T === "i32") {
          return this.#let(
            "v",
            T,
            `bitcast<i32>(${this.u32(e.start | 0)}) + i32(${idx}) * bitcast<i32>(${
              this.u32(e.step | 0)
            })`,
          );
        }
        return this.#let("v", T, `fma(f32(${idx}), ${this.f32(e.step)}, ${this.f32(e.start)})`);
      case "unary":
        return this.#let("v", T, `unary_op(${UNARY_OPS.indexOf(e.op)}u, ${this.value(e.x, idx)})`);
      case "binary":
        return this.#let(
          "v",
          T,
          `binary_op(${BINARY_OPS.indexOf(e.op)}u, ${this.value(e.a, idx)}, ${
            this.value(e.b, idx)
          })`,
        );
      case "where": {
        const c = this.value(e.c, idx);
        return this.#let(
          "v",
          T,
          `select(${this.value(e.b, idx)}, ${this.value(e.a, idx)}, ${c} != 0.0 || is_nan(${c}))`,
        );
      }
      case "cast":
        return this.#let("v", T, `${T}(${this.value(e.x, idx)})`);
      case "view": {
        const r = e.shape.length;
        if (r === 0) return this.value(e.x, this.u32(e.offset));
        const parts = this.#unravel(idx, e.shape);
        const terms = parts.map((
          q,
          d,
        ) => (e.strides[d] === 1 ? q : `${q} * ${this.u32(e.strides[d])}`));
        const j = this.#let("j", "u32", [this.u32(e.offset), ...terms].join(" + "));
        return this.value(e.x, j);
      }
      case "pad": {
        const parts = this.#unravel(idx, e.outShape);
        const conds: string[] = [];
        let lin = "0u";
        parts.forEach((q, d) => {
          const k = this.#let("k", "u32", `${q} - ${this.u32(e.before[d])}`); // wraps below 0: fails the test
          const len = this.u32(e.inShape[d]);
          conds.push(`${k} < ${len}`);
          lin = d === 0 ? k : `(${lin}) * ${len} + ${k}`;
        });
        const inside = this.#let("in", "bool", conds.length ? conds.join(" && ") : "true");
        const j = this.#let("j", "u32", `select(0u, ${lin}, ${inside})`);
        const x = this.value(e.x, j);
        const pv = T === "i32" ? `bitcast<i32>(${this.u32(e.value | 0)})` : this.f32(e.value);
        return this.#let("v", T, `select(${pv}, ${x}, ${inside})`);
      }
    }
  }

  /** Storage declarations of the leaves. */
  bindings(): string {
    return this.leaves
      .map((_, k) =>
        `@group(0) @binding(${this.opts.firstBinding + k}) var<storage, read> b${k}: array<u32>;`
      )
      .join("\n");
  }

  /** Fills a template: `//@bindings`, `//@body` and the result placeholder of `load` (u32 bits). */
  fill(template: string, result: string): string {
    const body = this.lines.map((l) => `  ${l}`).join("\n");
    return template
      .replace("//@bindings", this.bindings())
      .replace("//@body", body)
      .replace("/*@result*/ 0u", `bitcast<u32>(${result})`);
  }
}
