/**
 * Fused CPU kernels: JavaScript generated from a LazyStorage expression (the counterpart of
 * webgpu/codegen.ts, sharing its structure). One loop evaluates a whole chain of
 * elementwise ops, views and pads per element, so an expression costs one pass over
 * memory instead of one pass and one fresh array per op. Numbers (sizes, strides,
 * constants) are read from a parameter array, so one compiled function serves every size.
 *
 * f32 values are rounded after every op (Math.fround), as the eager kernels and the GPU
 * do, so fusing changes no result.
 */
import type { TypedArray } from "../../dtype.ts";
import type { LazyStorage } from "../lazy.ts";
import { BINARY_JS, H, UNARY_JS } from "./elementwise.ts";
import type { CpuStorage } from "./storage.ts";

type L = LazyStorage<CpuStorage>;

/** An index: a JS expression name, whether it varies with q, and its (q, r) split if known. */
interface Ix {
  readonly e: string;
  readonly q: boolean;
  readonly split?: { readonly q: string; readonly r: string; readonly m: number };
  /** Independent of the loop entirely (a constant index): hoisted out of the loops. */
  readonly fixed?: boolean;
}

export interface JsGenOptions {
  /** Runs an opaque node (a reduction) so it can be read as a buffer. */
  realize: (s: L) => void;
  /** Inner size M of a split kernel (q outer over probes, r over the primal's entries). */
  splitM?: number;
}

function round(dtype: string, expr: string): string {
  if (dtype === "f32") return `Math.fround(${expr})`;
  if (dtype === "i32") return `(${expr} | 0)`;
  return expr;
}

export class JsGen {
  readonly inner: string[] = [];
  readonly outer: string[] = [];
  /** Lines that depend on nothing in the loop (constants, loads at fixed indices): run once. */
  readonly pre: string[] = [];
  readonly params: number[] = [];
  readonly leaves: TypedArray[] = [];
  #leafIndex = new Map<TypedArray, number>();
  #memo = new Map<string, { name: string; q: boolean; fixed?: boolean }>();
  #n = 0;

  constructor(readonly opts: JsGenOptions) {}

  root(): Ix {
    const m = this.opts.splitM;
    return m ? { e: "idx", q: true, split: { q: "q", r: "r", m } } : { e: "idx", q: true };
  }

  #p(v: number): string {
    return `P[${this.params.push(v) - 1}]`;
  }

  #leaf(a: TypedArray): string {
    let k = this.#leafIndex.get(a);
    if (k === undefined) {
      k = this.leaves.push(a) - 1;
      this.#leafIndex.set(a, k);
    }
    return `b${k}`;
  }

  #let(expr: string, q: boolean, fixed = false): string {
    const name = `v${this.#n++}`;
    const line = `const ${name} = ${expr};`;
    if (fixed) this.pre.push(line);
    else (q || !this.opts.splitM ? this.inner : this.outer).push(line);
    return name;
  }

  /** Splits `ix` over `shape`; with a split that lines up, trailing dims come from r. */
  #unravel(ix: Ix, shape: readonly number[]): { parts: Ix[]; cut: number } {
    const r = shape.length;
    const out = new Array<Ix>(r);
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
          out[d] = { e: "0", q: false };
          continue;
        }
        const s = this.#p(shape[d]);
        const quot = this.#let(`Math.floor(${rem.e} / ${s})`, rem.q);
        out[d] = { e: this.#let(`${rem.e} - ${quot} * ${s}`, rem.q), q: rem.q };
        rem = { e: quot, q: rem.q };
      }
    };
    if (cut >= 0) {
      walk({ e: ix.split!.r, q: false }, cut, r);
      if (cut > 0) walk({ e: ix.split!.q, q: true }, 0, cut);
    } else walk(ix, 0, r);
    return { parts: out, cut };
  }

  #splitIx(q: string, r: string, m: number): Ix {
    return { e: this.#let(`${q} * ${this.#p(m)} + ${r}`, true), q: true, split: { q, r, m } };
  }

  /** Name of a const holding ls's value at index `ix`. */
  value(ls: L, ix: Ix = this.root()): string {
    return this.#value(ls, ix).name;
  }

  #value(ls: L, ix: Ix): { name: string; q: boolean; fixed?: boolean } {
    const key = ls.expr?.kind === "const" ? `${ls.id}` : `${ls.id}@${ix.e}`;
    const hit = this.#memo.get(key);
    if (hit) return hit;
    const v = this.#compute(ls, ix);
    this.#memo.set(key, v);
    return v;
  }

  #compute(ls: L, ix: Ix): { name: string; q: boolean; fixed?: boolean } {
    type V = { name: string; q: boolean; fixed?: boolean };
    const mk = (expr: string, q: boolean, fixed = false): V => ({
      name: this.#let(round(ls.dtype, expr), q, fixed),
      q,
      fixed,
    });
    const fixedOf = (...vs: V[]) => vs.every((v) => v.fixed);
    if (ls.expr?.kind === "reduce") this.opts.realize(ls);
    if (ls.buf) {
      const fixed = ix.fixed === true;
      return {
        name: this.#let(`${this.#leaf(ls.buf.data)}[${ix.e}]`, ix.q, fixed),
        q: ix.q,
        fixed,
      };
    }
    const e = ls.expr!;
    switch (e.kind) {
      case "const":
        return mk(this.#p(e.value), false, true);
      case "iota":
        return mk(`${this.#p(e.start)} + ${ix.e} * ${this.#p(e.step)}`, ix.q, ix.fixed);
      case "comb": {
        const n = this.#p(e.n), per = this.#p(e.period);
        const [k, i] = ix.split && ix.split.m === e.n
          ? [{ e: ix.split.q, q: true }, { e: ix.split.r, q: false }]
          : [{ e: `Math.floor(${ix.e} / ${n})`, q: ix.q }, { e: `(${ix.e} % ${n})`, q: ix.q }];
        return mk(`(${i.e} % ${per} === ${k.e} ? 1 : 0)`, k.q || i.q, ix.fixed);
      }
      case "unary": {
        const x = this.#value(e.x, ix);
        return mk(UNARY_JS[e.op](x.name), x.q, fixedOf(x));
      }
      case "binary": {
        const a = this.#value(e.a, ix), b = this.#value(e.b, ix);
        // x·1, x/1 and x−0 are x exactly (NaN and −0 included): skip the op
        const one = (s: L, v: number) => s.expr?.kind === "const" && s.expr.value === v;
        if ((e.op === "mul" || e.op === "div") && one(e.b, 1) && ls.dtype === e.a.dtype) return a;
        if (e.op === "mul" && one(e.a, 1) && ls.dtype === e.b.dtype) return b;
        if (e.op === "sub" && one(e.b, 0) && ls.dtype === e.a.dtype) return a;
        return mk(BINARY_JS[e.op](a.name, b.name), a.q || b.q, fixedOf(a, b));
      }
      case "where": {
        const c = this.#value(e.c, ix), a = this.#value(e.a, ix), b = this.#value(e.b, ix);
        // a NaN condition picks a, as everywhere (NaN !== 0)
        return mk(`(${c.name} !== 0 ? ${a.name} : ${b.name})`, a.q || b.q || c.q, fixedOf(a, b, c));
      }
      case "cast": {
        const x = this.#value(e.x, ix);
        return mk(x.name, x.q, fixedOf(x));
      }
      case "view": {
        if (e.shape.length === 0 || e.strides.every((st) => st === 0)) {
          return this.#value(e.x, { e: this.#p(e.offset), q: false, fixed: true });
        }
        const { parts, cut } = this.#unravel(ix, e.shape);
        const term = (
          d: number,
        ) => (e.strides[d] === 1 ? parts[d].e : `${parts[d].e} * ${this.#p(e.strides[d])}`);
        const dims = parts.map((_, d) => d).filter((d) => e.strides[d] !== 0);
        const q = dims.some((d) => parts[d].q);
        if (q && cut === 1 && e.strides[0] > 0) {
          const trailing = dims.filter((d) => d >= 1);
          const reach = e.offset +
            trailing.reduce((a, d) => a + (e.shape[d] - 1) * e.strides[d], 0);
          if (e.offset >= 0 && trailing.every((d) => e.strides[d] > 0) && reach < e.strides[0]) {
            const r = this.#let([this.#p(e.offset), ...trailing.map(term)].join(" + "), false);
            return this.#value(e.x, this.#splitIx(parts[0].e, r, e.strides[0]));
          }
        }
        const j = this.#let([this.#p(e.offset), ...dims.map(term)].join(" + "), q);
        return this.#value(e.x, { e: j, q });
      }
      case "reduce":
        throw new Error("internal: a reduction was not realized before code generation");
      case "pad": {
        const { parts } = this.#unravel(ix, e.outShape);
        const q = parts.some((p) => p.q);
        const ks = parts.map((p, d) => ({
          e: this.#let(`${p.e} - ${this.#p(e.before[d])}`, p.q),
          len: this.#p(e.inShape[d]),
        }));
        const inside = this.#let(
          ks.length ? ks.map((k) => `${k.e} >= 0 && ${k.e} < ${k.len}`).join(" && ") : "true",
          q,
        );
        const lin = ks.reduce((acc, k, i) => (i === 0 ? k.e : `(${acc}) * ${k.len} + ${k.e}`), "0");
        const j = this.#let(`${inside} ? ${lin} : 0`, q);
        const x = this.#value(e.x, { e: j, q });
        return mk(`${inside} ? ${x.name} : ${this.#p(e.value)}`, q || x.q);
      }
    }
  }

  /** Identifies the generated code's structure (not its numbers): the compile cache key. */
  key(kind: string, result: string): string {
    const body = [this.pre, this.outer, this.inner].map((ls) => ls.join(";")).join("|");
    return `${kind}|${this.leaves.length}|${body}|${result}`;
  }

  #decl(): string {
    return [...this.leaves.map((_, k) => `const b${k} = L[${k}];`), ...this.pre].join(" ");
  }

  /** `(out, L, P, n)`: out[idx] = value for idx < n. */
  mapSource(result: string): string {
    return `function (out, L, P, n) { ${this.#decl()}
  for (let idx = 0; idx < n; idx++) {
    ${this.inner.join("\n    ")}
    out[idx] = ${result};
  }
}`;
  }

  /** `(out, L, P, M, Q)`: for r < M, the q-independent part once, then out[q·M + r] for q < Q. */
  splitSource(result: string): string {
    return `function (out, L, P, M, Q) { ${this.#decl()}
  for (let r = 0; r < M; r++) {
    ${this.outer.join("\n    ")}
    for (let q = 0; q < Q; q++) {
      const idx = q * M + r;
      ${this.inner.join("\n      ")}
      out[idx] = ${result};
    }
  }
}`;
  }

  /**
   * `(out, L, P, outer, len, inner)`: reduces the value over the middle axis of
   * [outer, len, inner]. Sums accumulate in f64 in blocks of 256 (error grows like
   * (256 + len/256)·ε, not len·ε); max/min propagate NaN.
   */
  reduceSource(op: "sum" | "max" | "min", result: string): string {
    const id = op === "sum" ? "0" : op === "max" ? "-Infinity" : "Infinity";
    const better = op === "max" ? ">" : "<";
    const combine = (acc: string) =>
      op === "sum"
        ? `${acc} += ${result};`
        : `{ const w = ${result}; if (w !== w) ${acc} = NaN; else if (w ${better} ${acc}) ${acc} = w; }`;
    return `function (out, L, P, outer, len, inner) { ${this.#decl()}
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      let total = ${id};
      for (let r0 = 0; r0 < len; r0 += 256) {
        let acc = ${id};
        const r1 = Math.min(len, r0 + 256);
        for (let r = r0; r < r1; r++) {
          const idx = o * len + r;
          ${this.inner.join("\n          ")}
          ${combine("acc")}
        }
        ${
      op === "sum"
        ? "total += acc;"
        : `if (acc !== acc || total !== total) total = NaN; else if (acc ${better} total) total = acc;`
    }
      }
      out[o] = total;
    }
    return;
  }
  const A = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    A.fill(${id});
    for (let r = 0; r < len; r++) {
      for (let c = 0; c < inner; c++) {
        const idx = (o * len + r) * inner + c;
        ${this.inner.join("\n        ")}
        ${combine("A[c]")}
      }
    }
    for (let c = 0; c < inner; c++) out[o * inner + c] = A[c];
  }
}`;
  }
}

// deno-lint-ignore no-explicit-any
type Kernel = (...args: any[]) => void;
const compiled = new Map<string, Kernel>();
/** Compilations so far (for the benchmarks). */
export const compileStats = { count: 0, ms: 0 };

/** The compiled function for a generated source, cached by the structure key. */
export function compile(key: string, source: () => string): Kernel {
  let f = compiled.get(key);
  if (!f) {
    compileStats.count++;
    const t0 = performance.now();
    f = (new Function("H", `"use strict"; return ${source()};`) as (h: typeof H) => Kernel)(H);
    compiled.set(key, f);
    compileStats.ms += performance.now() - t0;
  }
  return f;
}
