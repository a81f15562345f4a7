/**
 * Fused CPU kernels: JavaScript generated from a LazyStorage expression (the counterpart of
 * webgpu/codegen.ts; the shared structure is in ../exprgen.ts). One loop evaluates a whole
 * chain of elementwise ops, views and pads per element, so an expression costs one pass
 * over memory instead of one pass and one fresh array per op. Numbers (sizes, strides,
 * constants) are read from a parameter array, so one compiled function serves every size;
 * values that depend on no index are computed once, before the loop.
 *
 * f32 values are rounded after every op (Math.fround), as the eager kernels and the GPU
 * do, so fusing changes no result.
 */
import type { TypedArray } from "../../dtype.ts";
import type { LazyStorage } from "../lazy.ts";
import { ExprGen, type Ix, type Val } from "../exprgen.ts";
import { BINARY_JS, H, UNARY_JS } from "./elementwise.ts";
import type { CpuStorage } from "./storage.ts";

type L = LazyStorage<CpuStorage>;

export interface JsGenOptions {
  /** Runs an opaque node (a reduction) so it can be read as a buffer. */
  realize: (s: L) => void;
  /** Inner size M of a split kernel (q outer over probes, r over the primal's entries). */
  splitM?: number;
}

const NAME = /\bv\d+\b/g;
const DEF = /^const (v\d+) = /;

function round(dtype: string, expr: string): string {
  if (dtype === "f32") return `Math.fround(${expr})`;
  if (dtype === "i32") return `(${expr} | 0)`;
  return expr;
}

export class JsGen extends ExprGen<CpuStorage> {
  readonly params: number[] = [];
  readonly leaves: TypedArray[] = [];
  #leafIndex = new Map<TypedArray, number>();
  protected readonly hoists = true;
  protected readonly zero = "0";

  constructor(readonly opts: JsGenOptions) {
    super(opts.splitM, opts.realize);
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
    const name = this.fresh("v");
    this.push(`const ${name} = ${expr};`, q, fixed);
    return name;
  }

  protected int(v: number): string {
    return this.#p(v);
  }
  protected intLet(expr: string, q: boolean, fixed = false): string {
    return this.#let(expr, q, fixed);
  }
  protected quotient(x: Ix, d: number): string {
    return this.#let(`Math.floor(${x.e} / ${this.#p(d)})`, x.q, x.fixed);
  }
  protected inRange(k: string, len: string): string {
    return `${k} >= 0 && ${k} < ${len}`;
  }
  protected boolLet(expr: string, q: boolean): string {
    return this.#let(expr, q);
  }
  protected pick(cond: string, a: string, b: string): string {
    return `(${cond} ? ${a} : ${b})`;
  }

  protected compute(ls: L, ix: Ix): Val {
    const mk = (expr: string, q: boolean, fixed = false): Val => ({
      name: this.#let(round(ls.dtype, expr), q, fixed),
      q,
      fixed,
    });
    const fixedOf = (...vs: Val[]) => vs.every((v) => v.fixed === true);
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
        // a fixed index (one that depends on no loop variable) keeps every line it makes
        // fixed, so that a hoisted line never reads one left inside the loop
        const fixed = ix.fixed === true;
        const [k, i] = ix.split && ix.split.m === e.n
          ? [{ e: ix.split.q, q: true }, { e: ix.split.r, q: false }]
          : [{ e: `Math.floor(${ix.e} / ${this.#p(e.n)})`, q: ix.q, fixed }, {
            e: `(${ix.e} % ${this.#p(e.n)})`,
            q: ix.q,
            fixed,
          }];
        // i − ⌊i/p⌋·p: exact for i < 2^53, and several times faster in V8 than an int32 `%`
        // (an integer division); once per entry r, not per (r, probe), when i is the r part
        const p = this.#p(e.period);
        const rem = this.#let(`${i.e} - ${this.quotient(i, e.period)} * ${p}`, i.q, fixed);
        return mk(`(${rem} === ${k.e} ? 1 : 0)`, k.q || i.q, ix.fixed);
      }
      case "unary": {
        const x = this.valueOf(e.x, ix);
        return mk(UNARY_JS[e.op](x.name), x.q, fixedOf(x));
      }
      case "binary": {
        const a = this.valueOf(e.a, ix), b = this.valueOf(e.b, ix);
        // x·1, x/1 and x−0 are x exactly (NaN and −0 included): skip the op
        const is = (s: L, v: number) => s.expr?.kind === "const" && s.expr.value === v;
        if ((e.op === "mul" || e.op === "div") && is(e.b, 1) && ls.dtype === e.a.dtype) return a;
        if (e.op === "mul" && is(e.a, 1) && ls.dtype === e.b.dtype) return b;
        if (e.op === "sub" && is(e.b, 0) && ls.dtype === e.a.dtype) return a;
        return mk(BINARY_JS[e.op](a.name, b.name), a.q || b.q, fixedOf(a, b));
      }
      case "where": {
        const c = this.valueOf(e.c, ix), a = this.valueOf(e.a, ix), b = this.valueOf(e.b, ix);
        // a NaN condition picks a, as everywhere (NaN !== 0)
        return mk(`(${c.name} !== 0 ? ${a.name} : ${b.name})`, a.q || b.q || c.q, fixedOf(a, b, c));
      }
      case "cast": {
        const x = this.valueOf(e.x, ix);
        return mk(x.name, x.q, fixedOf(x));
      }
      case "view":
        return this.valueOf(e.x, this.viewIx(e, ix));
      case "pad": {
        const { child, inside, q } = this.padIx(e, ix);
        const x = this.valueOf(e.x, child);
        return mk(`${inside} ? ${x.name} : ${this.#p(e.value)}`, q || x.q);
      }
      case "reduce":
        throw new Error("internal: a reduction was not realized before code generation");
    }
  }

  /**
   * Drops lines whose value nothing uses (index arithmetic of views whose only reader was
   * folded away, say): V8 keeps them, since each reads the parameter array behind a bounds
   * check. Sections are scanned uses-first (inner reads outer and pre, outer reads pre).
   */
  #prune(result: string): void {
    const live = new Set(result.match(NAME) ?? []);
    for (const ls of [this.inner, this.outer, this.pre]) {
      const kept: string[] = [];
      for (let k = ls.length - 1; k >= 0; k--) {
        const def = DEF.exec(ls[k]);
        if (def && !live.has(def[1])) continue;
        for (const u of ls[k].match(NAME) ?? []) live.add(u);
        kept.push(ls[k]);
      }
      ls.splice(0, ls.length, ...kept.reverse());
    }
  }

  /** Identifies the generated code's structure (not its numbers): the compile cache key. */
  key(kind: string, result: string): string {
    this.#prune(result);
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
