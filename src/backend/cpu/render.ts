/**
 * Prints a lowered kernel (../../compile/uops.ts) as a JavaScript function: one loop that
 * evaluates a whole fused expression per element, so an expression costs one pass over
 * memory. Parameters are read into locals before the loops, so V8 sees loop invariants;
 * level-0 uops (no index) run once per call, level-1 uops once per entry of a split loop.
 *
 * f32 is computed in f64 and rounded once, when the value is stored (a Float32Array store
 * rounds): each f32 result is the f64-computed value rounded to f32, which is at least as
 * accurate as rounding after every operation (the WebGPU backend's f32 arithmetic) and
 * needs no `Math.fround` per operation. A cast to f32 inside an expression still rounds.
 * i32 results wrap to 32 bits after every operation, as integer arithmetic does.
 */
import { BINARY_OPS, UNARY_OPS } from "../backend.ts";
import { type Kernel, T, U } from "../../compile/uops.ts";
import { print, type Syntax } from "../../compile/render.ts";
import { BINARY_JS, UNARY_JS } from "./elementwise.ts";

const UNARY = UNARY_OPS.map((op) => UNARY_JS[op]);
const BINARY = BINARY_OPS.map((op) => BINARY_JS[op]);

function literal(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "(-Infinity)";
  return v < 0 || Object.is(v, -0) ? `(${Object.is(v, -0) ? "-0" : v})` : `${v}`;
}

/** Parameter slots a kernel reads (hoisted into locals before the loops). */
function slotsOf(k: Kernel): Set<number> {
  const slots = new Set<number>();
  const u = k.uops;
  for (let i = 0; i < u.length; i++) {
    if (u.op[i] === U.IParam || u.op[i] === U.VParam || u.op[i] === U.IDiv) slots.add(u.payload[i]);
  }
  return slots;
}

const JS: Syntax = {
  name: {
    [U.Idx]: () => "idx",
    [U.Q]: () => "q",
    [U.R]: () => "r",
    [U.IParam]: (o) => `p${o.p}`,
    [U.VParam]: (o) => `p${o.p}`,
    [U.ILit]: (o) => literal(o.p),
    [U.VLit]: (o) => literal(o.p),
  },
  expr: {
    [U.IAdd]: (o) => `${o.a} + ${o.b}`,
    [U.ISub]: (o) => `${o.a} - ${o.b}`,
    [U.IMul]: (o) => `${o.a} * ${o.b}`,
    [U.IDiv]: (o) => `Math.floor(${o.a} / p${o.p})`,
    [U.InRange]: (o) => `${o.a} >= 0 && ${o.a} < ${o.b}`,
    [U.ILt]: (o) => `${o.a} < ${o.b}`,
    [U.BAnd]: (o) => `${o.a} && ${o.b}`,
    [U.IEq]: (o) => `${o.a} === ${o.b}`,
    [U.ISel]: (o) => `${o.a} ? ${o.b} : ${o.c}`,
    [U.Select]: (o) => `${o.a} ? ${o.b} : ${o.c}`,
    [U.Load]: (o) => `b${o.p}[${o.a}]`,
    [U.Iota]: (o) => `${o.b} + ${o.a} * ${o.c}`,
    [U.Unary]: (o) => UNARY[o.p](o.a),
    [U.Binary]: (o) => BINARY[o.p](o.a, o.b),
    // a NaN condition picks the first branch, as everywhere (NaN !== 0)
    [U.Where]: (o) => `${o.a} !== 0 ? ${o.b} : ${o.c}`,
    [U.BToV]: (o) => `${o.a} ? 1 : 0`,
    [U.Cast]: (o) => (o.type === T.F32 ? `Math.fround(${o.a})` : o.a),
  },
  // i32 values wrap after every operation (a load already is one)
  statement: (i, type, expr, op) =>
    `const v${i} = ${type === T.I32 && op !== U.Load ? `(${expr}) | 0` : expr};`,
};

function body(k: Kernel): { sections: string[][]; name: string[]; slots: Set<number> } {
  const { sections, result } = print(k, JS);
  const name: string[] = [];
  name[k.result] = result;
  return { sections, name, slots: slotsOf(k) };
}

function prelude(leaves: number, slots: Set<number>, pre: string[]): string {
  const decl: string[] = [];
  for (let k = 0; k < leaves; k++) decl.push(`const b${k} = L[${k}];`);
  for (const s of [...slots].sort((x, y) => x - y)) decl.push(`const p${s} = P[${s}];`);
  return [...decl, ...pre].join("\n  ");
}

/** Number of leaves a kernel reads (the largest Load payload + 1). */
function leafCount(k: Kernel): number {
  let n = 0;
  for (let i = 0; i < k.uops.length; i++) {
    if (k.uops.op[i] === U.Load) n = Math.max(n, k.uops.payload[i] + 1);
  }
  return n;
}

/** `(out, L, P, n)`: out[idx] = value for idx < n. */
export function mapSource(k: Kernel): string {
  const { sections, name, slots } = body(k);
  return `function (out, L, P, n) {
  ${prelude(leafCount(k), slots, sections[0])}
  for (let idx = 0; idx < n; idx++) {
    ${[...sections[1], ...sections[2]].join("\n    ")}
    out[idx] = ${name[k.result]};
  }
}`;
}

/** `(out, L, P, M, Q)`: for r < M, the q-independent part once, then out[q·M + r] for q < Q. */
export function splitSource(k: Kernel): string {
  const { sections, name, slots } = body(k);
  return `function (out, L, P, M, Q) {
  ${prelude(leafCount(k), slots, sections[0])}
  for (let r = 0; r < M; r++) {
    ${sections[1].join("\n    ")}
    for (let q = 0; q < Q; q++) {
      const idx = q * M + r;
      ${sections[2].join("\n      ")}
      out[idx] = ${name[k.result]};
    }
  }
}`;
}

/**
 * `(out, L, P, outer, len, inner)`: reduces the value over the middle axis of
 * [outer, len, inner]. Sums accumulate in f64 in blocks of 256 (error grows like
 * (256 + len/256)·ε, not len·ε); max/min propagate NaN.
 */
export function reduceSource(op: "sum" | "max" | "min", k: Kernel): string {
  const { sections, name, slots } = body(k);
  const result = name[k.result];
  const inner = [...sections[1], ...sections[2]];
  const id = op === "sum" ? "0" : op === "max" ? "-Infinity" : "Infinity";
  const better = op === "max" ? ">" : "<";
  const combine = (acc: string) =>
    op === "sum"
      ? `${acc} += ${result};`
      : `{ const w = ${result}; if (w !== w) ${acc} = NaN; else if (w ${better} ${acc}) ${acc} = w; }`;
  return `function (out, L, P, outer, len, inner) {
  ${prelude(leafCount(k), slots, sections[0])}
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      let total = ${id};
      for (let r0 = 0; r0 < len; r0 += 256) {
        let acc = ${id};
        const r1 = Math.min(len, r0 + 256);
        for (let r = r0; r < r1; r++) {
          const idx = o * len + r;
          ${inner.join("\n          ")}
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
        ${inner.join("\n        ")}
        ${combine("A[c]")}
      }
    }
    for (let c = 0; c < inner; c++) out[o * inner + c] = A[c];
  }
}`;
}
