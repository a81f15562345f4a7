/**
 * Writes the glue of a fused kernel: code that evaluates a LazyStorage expression at an
 * index, the storage bindings of its leaf buffers, and the uniform slots holding its
 * numbers (sizes, strides, constants), so that one pipeline serves every size. The maths
 * is `unary_op` / `binary_op` from shaders/ops.wgsl; the kernel around the glue is a
 * hand-written template (shaders/fused_map*.wgsl, reduce_*.wgsl).
 *
 * Split kernels: when an output of size N = Q·M is built from operands broadcast along its
 * leading axis (K probes against one primal), each invocation owns one r < M and loops
 * over q < Q. Code whose index does not depend on q (the primal's share of the work) is
 * emitted once before the loop: a K-wide kernel does the primal work once, not K times.
 */
import { BINARY_OPS, UNARY_OPS } from "../backend.ts";
import type { GpuStorage } from "./pool.ts";
import type { LazyStorage } from "../lazy.ts";

export interface GenOptions {
  /** Binding index of the first leaf: 0 is the uniform block, then the kernel's own buffers. */
  firstBinding: number;
  /** Runs an opaque node (a reduction) so it can be read as a buffer. */
  realize: (s: LazyStorage<GpuStorage>) => void;
  /** Inner size M of a split kernel (see above), or undefined for a plain one. */
  splitM?: number;
}

/** An index: the name of a u32 `let`, whether it varies with q, and its (q, r) split if known. */
interface Ix {
  readonly e: string;
  readonly q: boolean;
  readonly split?: { readonly q: string; readonly r: string; readonly m: number };
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

export class KernelGen {
  /** Lines that depend on q (all lines, in a plain kernel). */
  readonly inner: string[] = [];
  /** Lines that do not depend on q (split kernels only). */
  readonly outer: string[] = [];
  readonly slots: number[] = [];
  readonly leaves: GpuStorage[] = [];
  #leafIndex = new Map<GpuStorage, number>();
  #memo = new Map<string, { name: string; q: boolean }>();
  #n = 0;

  constructor(readonly opts: GenOptions) {}

  /** The index a kernel starts from: `idx`, split as q·M + r in a split kernel. */
  root(): Ix {
    const m = this.opts.splitM;
    return m ? { e: "idx", q: true, split: { q: "q", r: "r", m } } : { e: "idx", q: true };
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
    const name = `${prefix}${this.#n++}`;
    (q || !this.opts.splitM ? this.inner : this.outer).push(`let ${name}: ${type} = ${expr};`);
    return name;
  }

  /**
   * Splits index `ix` over `shape` (row-major); returns the per-dim indices and, when ix's
   * (q, r) split lines up with the shape, the first dim that comes from r (else -1).
   */
  #unravel(ix: Ix, shape: readonly number[]): { parts: Ix[]; cut: number } {
    const r = shape.length;
    const out = new Array<Ix>(r);
    // with a known split, dims whose suffix product is M come from r, the rest from q
    let cut = -1;
    if (ix.split) {
      let p = 1;
      for (let d = r - 1; d >= 0 && p < ix.split.m; d--) {
        p *= shape[d];
        if (p === ix.split.m) cut = d;
      }
    }
    const walk = (from: Ix, lo: number, hi: number) => {
      let rem = from;
      for (let d = hi - 1; d >= lo; d--) {
        if (d === lo) {
          out[d] = rem;
          break;
        }
        if (shape[d] === 1) {
          out[d] = { e: "0u", q: false };
          continue;
        }
        const [m, sh] = magicDivisor(shape[d]);
        const quot = this.#let(
          "i",
          "u32",
          `udiv_magic(${rem.e}, ${this.u32(m)}, ${this.u32(sh)})`,
          rem.q,
        );
        out[d] = {
          e: this.#let("i", "u32", `${rem.e} - ${quot} * ${this.u32(shape[d])}`, rem.q),
          q: rem.q,
        };
        rem = { e: quot, q: rem.q };
      }
    };
    if (cut >= 0) {
      walk({ e: ix.split!.r, q: false }, cut, r);
      if (cut > 0) walk({ e: ix.split!.q, q: true }, 0, cut);
    } else walk({ e: ix.e, q: ix.q }, 0, r);
    return { parts: out, cut };
  }

  /** An index q·m + r with a known split (r must be below m for every r the kernel sees). */
  #splitIx(q: string, r: string, m: number): Ix {
    const e = this.#let("j", "u32", `${q} * ${this.u32(m)} + ${r}`, true);
    return { e, q: true, split: { q, r, m } };
  }

  /** Name of a `let` holding ls's value at index `ix`. */
  value(ls: LazyStorage<GpuStorage>, ix: Ix = this.root()): string {
    return this.#value(ls, ix).name;
  }

  #value(ls: LazyStorage<GpuStorage>, ix: Ix): { name: string; q: boolean } {
    // a constant reads the same at every index: emit it once
    const key = ls.expr?.kind === "const" ? `${ls.id}` : `${ls.id}@${ix.e}`;
    const hit = this.#memo.get(key);
    if (hit) return hit;
    const v = this.#compute(ls, ix);
    this.#memo.set(key, v);
    return v;
  }

  #compute(ls: LazyStorage<GpuStorage>, ix: Ix): { name: string; q: boolean } {
    const T = ls.dtype === "i32" ? "i32" : "f32";
    const mk = (expr: string, q: boolean) => ({ name: this.#let("v", T, expr, q), q });
    if (ls.expr?.kind === "reduce") this.opts.realize(ls);
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
        const n = this.u32(e.n);
        let k: { e: string; q: boolean }, i: { e: string; q: boolean };
        if (ix.split && ix.split.m === e.n) {
          [k, i] = [{ e: ix.split.q, q: true }, { e: ix.split.r, q: false }];
        } else {
          const [m, sh] = magicDivisor(Math.max(2, e.n));
          const kq = e.n === 1
            ? ix.e
            : this.#let("i", "u32", `udiv_magic(${ix.e}, ${this.u32(m)}, ${this.u32(sh)})`, ix.q);
          k = { e: kq, q: ix.q };
          i = {
            e: e.n === 1 ? "0u" : this.#let("i", "u32", `${ix.e} - ${kq} * ${n}`, ix.q),
            q: ix.q,
          };
        }
        const [pm, ps] = magicDivisor(Math.max(2, e.period));
        const per = this.u32(e.period);
        const rem = e.period === 1
          ? "0u"
          : `${i.e} - udiv_magic(${i.e}, ${this.u32(pm)}, ${this.u32(ps)}) * ${per}`;
        return mk(`select(0.0, 1.0, ${rem} == ${k.e})`, k.q || i.q);
      }
      case "unary": {
        const x = this.#value(e.x, ix);
        return mk(`unary_op(${UNARY_OPS.indexOf(e.op)}u, ${x.name})`, x.q);
      }
      case "binary": {
        const a = this.#value(e.a, ix), b = this.#value(e.b, ix);
        return mk(`binary_op(${BINARY_OPS.indexOf(e.op)}u, ${a.name}, ${b.name})`, a.q || b.q);
      }
      case "where": {
        const c = this.#value(e.c, ix), a = this.#value(e.a, ix), b = this.#value(e.b, ix);
        return mk(
          `select(${b.name}, ${a.name}, ${c.name} != 0.0 || is_nan(${c.name}))`,
          a.q || b.q || c.q,
        );
      }
      case "cast": {
        const x = this.#value(e.x, ix);
        return mk(`${T}(${x.name})`, x.q);
      }
      case "view": {
        if (e.shape.length === 0 || e.strides.every((st) => st === 0)) {
          return this.#value(e.x, { e: this.u32(e.offset), q: false });
        }
        const { parts, cut } = this.#unravel(ix, e.shape);
        const term = (
          d: number,
        ) => (e.strides[d] === 1 ? parts[d].e : `${parts[d].e} * ${this.u32(e.strides[d])}`);
        const dims = parts.map((_, d) => d).filter((d) => e.strides[d] !== 0);
        const q = dims.some((d) => parts[d].q);
        if (q && cut === 1 && e.strides[0] > 0) {
          // the probe axis steps whole rows of the child: keep the split for the child
          const trailing = dims.filter((d) => d >= 1);
          const reach = e.offset +
            trailing.reduce((a, d) => a + (e.shape[d] - 1) * e.strides[d], 0);
          if (e.offset >= 0 && trailing.every((d) => e.strides[d] > 0) && reach < e.strides[0]) {
            const r = this.#let(
              "j",
              "u32",
              [this.u32(e.offset), ...trailing.map(term)].join(" + "),
              false,
            );
            return this.#value(e.x, this.#splitIx(parts[0].e, r, e.strides[0]));
          }
        }
        const j = this.#let("j", "u32", [this.u32(e.offset), ...dims.map(term)].join(" + "), q);
        return this.#value(e.x, { e: j, q });
      }
      case "reduce":
        throw new Error("internal: a reduction was not realized before code generation");
      case "pad": {
        const { parts, cut } = this.#unravel(ix, e.outShape);
        const ks = parts.map((p, d) => ({
          // below `before` the subtraction wraps around and fails the bound test
          e: this.#let("k", "u32", `${p.e} - ${this.u32(e.before[d])}`, p.q),
          q: p.q,
          len: this.u32(e.inShape[d]),
        }));
        const part = (lo: number, hi: number) => {
          const sel = ks.slice(lo, hi);
          const q = sel.some((k) => k.q);
          const ok = this.#let(
            "ok",
            "bool",
            sel.length ? sel.map((k) => `${k.e} < ${k.len}`).join(" && ") : "true",
            q,
          );
          const lin = sel.reduce(
            (acc, k, i) => (i === 0 ? k.e : `(${acc}) * ${k.len} + ${k.e}`),
            "0u",
          );
          return { ok, lin: this.#let("j", "u32", `select(0u, ${lin}, ${ok})`, q), q };
        };
        let inside: string, child: Ix, q: boolean;
        if (cut > 0) {
          // rows of the probe axis stay rows of the child: keep the split
          const lead = part(0, cut), tail = part(cut, ks.length);
          q = true;
          inside = this.#let("ok", "bool", `${lead.ok} && ${tail.ok}`, true);
          let m = 1;
          for (let d = cut; d < e.inShape.length; d++) m *= e.inShape[d];
          child = this.#splitIx(lead.lin, tail.lin, m);
        } else {
          const all = part(0, ks.length);
          q = all.q;
          inside = all.ok;
          child = { e: all.lin, q };
        }
        const x = this.#value(e.x, child);
        const pv = T === "i32" ? `bitcast<i32>(${this.u32(e.value | 0)})` : this.f32(e.value);
        return mk(`select(${pv}, ${x.name}, ${inside})`, q || x.q);
      }
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
