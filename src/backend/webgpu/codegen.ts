/**
 * Writes the glue of a fused WGSL kernel: code that evaluates a LazyStorage expression at
 * an index (structure shared with the CPU's generator in ../exprgen.ts), the storage
 * bindings of its leaf buffers, and the uniform slots holding its numbers (sizes, strides,
 * constants), so that one pipeline serves every size. The maths is `unary_op` /
 * `binary_op` from shaders/ops.wgsl; the kernel around the glue is a hand-written template
 * (shaders/fused_map*.wgsl, reduce_*.wgsl).
 */
import { BINARY_OPS, UNARY_OPS } from "../backend.ts";
import type { GpuStorage } from "./pool.ts";
import type { LazyStorage } from "../lazy.ts";
import { ExprGen, type Ix, type Val } from "../exprgen.ts";

export interface GenOptions {
  /** Binding index of the first leaf: 0 is the uniform block, then the kernel's own buffers. */
  firstBinding: number;
  /** Runs an opaque node (a reduction) so it can be read as a buffer. */
  realize: (s: LazyStorage<GpuStorage>) => void;
  /** Inner size M of a split kernel, or undefined for a plain one. */
  splitM?: number;
}

const f32Bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];

/**
 * Multiplier and shift with floor(x / d) = mulhi(x, m) >> s for every x < 2^31 and d ≥ 2
 * (Granlund & Montgomery 1994, Thm 4.2 with N = 31: l = ⌈log2 d⌉, m = ⌊2^(31+l) / d⌋ + 1,
 * which fits in 32 bits; s = l − 1). Buffers hold under 2^31 elements, so indices qualify.
 */
export function magicDivisor(d: number): [number, number] {
  const l = Math.ceil(Math.log2(d));
  const m = (2n ** BigInt(31 + l)) / BigInt(d) + 1n;
  return [Number(m), l - 1];
}

export class KernelGen extends ExprGen<GpuStorage> {
  readonly slots: number[] = [];
  readonly leaves: GpuStorage[] = [];
  #leafIndex = new Map<GpuStorage, number>();
  protected readonly hoists = false; // WGSL templates have no place before their loops
  protected readonly zero = "0u";

  constructor(readonly opts: GenOptions) {
    super(opts.splitM, opts.realize);
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

  #let(prefix: string, type: string, expr: string, q: boolean): string {
    const name = this.fresh(prefix);
    this.push(`let ${name}: ${type} = ${expr};`, q);
    return name;
  }

  protected int(v: number): string {
    return this.u32(v);
  }
  protected intLet(expr: string, q: boolean): string {
    return this.#let("j", "u32", expr, q);
  }
  // GPUs divide integers slowly (lavapipe most of all): multiply and shift instead
  protected quotient(x: Ix, d: number): string {
    const [m, sh] = magicDivisor(d);
    return this.#let("i", "u32", `udiv_magic(${x.e}, ${this.u32(m)}, ${this.u32(sh)})`, x.q);
  }
  // u32 arithmetic: an index below `before` wraps around and fails the bound test
  protected inRange(k: string, len: string): string {
    return `${k} < ${len}`;
  }
  protected boolLet(expr: string, q: boolean): string {
    return this.#let("ok", "bool", expr, q);
  }
  protected pick(cond: string, a: string, b: string): string {
    return `select(${b}, ${a}, ${cond})`;
  }

  protected compute(ls: LazyStorage<GpuStorage>, ix: Ix): Val {
    const T = ls.dtype === "i32" ? "i32" : "f32";
    const mk = (expr: string, q: boolean) => ({ name: this.#let("v", T, expr, q), q });
    if (ls.buf) return mk(`bitcast<${T}>(${this.#leaf(ls.buf)}[${ix.e}])`, ix.q);
    const e = ls.expr!;
    switch (e.kind) {
      case "const":
        return mk(
          `bitcast<${T}>(${this.#slot(T === "i32" ? e.value | 0 : f32Bits(e.value))})`,
          false,
        );
      case "iota":
        if (T === "i32") {
          return mk(
            `bitcast<i32>(${this.u32(e.start | 0)}) + i32(${ix.e}) * bitcast<i32>(${
              this.u32(e.step | 0)
            })`,
            ix.q,
          );
        }
        return mk(`fma(f32(${ix.e}), ${this.f32(e.step)}, ${this.f32(e.start)})`, ix.q);
      case "comb": {
        // probe k = idx / n has a 1 at i = idx % n when i ≡ k (mod period)
        let k: Ix, i: Ix;
        if (ix.split && ix.split.m === e.n) {
          [k, i] = [{ e: ix.split.q, q: true }, { e: ix.split.r, q: false }];
        } else if (e.n === 1) [k, i] = [ix, { e: "0u", q: false }];
        else {
          const kq = this.quotient(ix, e.n);
          [k, i] = [{ e: kq, q: ix.q }, {
            e: this.intLet(`${ix.e} - ${kq} * ${this.u32(e.n)}`, ix.q),
            q: ix.q,
          }];
        }
        const rem = e.period === 1
          ? "0u"
          : `${i.e} - ${this.quotient(i, e.period)} * ${this.u32(e.period)}`;
        return mk(`select(0.0, 1.0, ${rem} == ${k.e})`, k.q || i.q);
      }
      case "unary": {
        const x = this.valueOf(e.x, ix);
        return mk(`unary_op(${UNARY_OPS.indexOf(e.op)}u, ${x.name})`, x.q);
      }
      case "binary": {
        const a = this.valueOf(e.a, ix), b = this.valueOf(e.b, ix);
        return mk(`binary_op(${BINARY_OPS.indexOf(e.op)}u, ${a.name}, ${b.name})`, a.q || b.q);
      }
      case "where": {
        const c = this.valueOf(e.c, ix), a = this.valueOf(e.a, ix), b = this.valueOf(e.b, ix);
        return mk(
          `select(${b.name}, ${a.name}, ${c.name} != 0.0 || is_nan(${c.name}))`,
          a.q || b.q || c.q,
        );
      }
      case "cast": {
        const x = this.valueOf(e.x, ix);
        return mk(`${T}(${x.name})`, x.q);
      }
      case "view":
        return this.valueOf(e.x, this.viewIx(e, ix));
      case "pad": {
        const { child, inside, q } = this.padIx(e, ix);
        const x = this.valueOf(e.x, child);
        const pv = T === "i32" ? `bitcast<i32>(${this.u32(e.value | 0)})` : this.f32(e.value);
        return mk(`select(${pv}, ${x.name}, ${inside})`, q || x.q);
      }
      case "reduce":
        throw new Error("internal: a reduction was not realized before code generation");
    }
  }

  /** Identifies the generated code's structure (not its numbers): the pipeline cache key. */
  key(result: string): string {
    return `${this.leaves.length}|${this.outer.join(";")}|${this.inner.join(";")}|${result}`;
  }

  /** Storage declarations of the leaves. */
  bindings(): string {
    return this.leaves
      .map((_, k) =>
        `@group(0) @binding(${this.opts.firstBinding + k}) var<storage, read> b${k}: array<u32>;`
      )
      .join("\n");
  }

  /** Fills a template's `//@bindings`, `//@outer`, `//@body` and result placeholder (u32 bits). */
  fill(template: string, result: string): string {
    const indent = (ls: string[]) => ls.map((l) => `  ${l}`).join("\n");
    // placeholders are whole lines, so comments may mention them
    return template
      .replace(/^[ \t]*\/\/@bindings[ \t]*$/m, () => this.bindings())
      .replace(/^[ \t]*\/\/@outer[ \t]*$/m, () => indent(this.outer))
      .replace(/^[ \t]*\/\/@body[ \t]*$/m, () => indent(this.inner))
      .replace("/*@result*/ 0u", () => `bitcast<u32>(${result})`);
  }
}
