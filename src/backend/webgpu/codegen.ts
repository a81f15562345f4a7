/**
 * Prints a lowered kernel (../../compile/uops.ts) as the glue of a fused WGSL kernel: the
 * storage bindings of its leaf buffers and the code that evaluates its value at an index.
 * Numbers live in the uniform slots `p.v`, so one pipeline serves every size. The maths is
 * `unary_op` / `binary_op` from shaders/ops.wgsl; the kernel around the glue is a
 * hand-written template (shaders/fused_map*.wgsl, reduce_*.wgsl).
 */
import { type Kernel, T, U } from "../../compile/uops.ts";
import { print, type Syntax } from "../../compile/render.ts";

const f32Bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];

const TYPE = ["u32", "bool", "f32", "f32", "i32"];

const slot = (s: number) => `p.v[${s >> 2}][${s & 3}]`;

function literal(type: number, v: number): string {
  if (type === T.I32) return `${v}i`;
  const s = Number.isInteger(v) ? `${v}.0` : `${v}`;
  return v < 0 ? `(${s})` : s;
}

/** The uniform slots' u32 bits from a kernel's parameters and their types. */
export function packSlots(params: readonly number[], ptypes: readonly number[]): number[] {
  return params.map((v, k) => (ptypes[k] === T.F32 ? f32Bits(v) : v >>> 0));
}

const WGSL: Syntax = {
  name: {
    [U.Idx]: () => "idx",
    [U.Q]: () => "q",
    [U.R]: () => "r",
    [U.IParam]: (o) => slot(o.p),
    [U.ILit]: (o) => `${o.p}u`,
    [U.VLit]: (o) => literal(o.type, o.p),
    [U.VParam]: (o) => `bitcast<${TYPE[o.type]}>(${slot(o.p)})`,
  },
  expr: {
    [U.IAdd]: (o) => `${o.a} + ${o.b}`,
    [U.ISub]: (o) => `${o.a} - ${o.b}`,
    [U.IMul]: (o) => `${o.a} * ${o.b}`,
    // GPUs divide integers slowly (lavapipe most of all): multiply and shift instead
    [U.IDiv]: (o) => `udiv_magic(${o.a}, ${slot(o.p + 1)}, ${slot(o.p + 2)})`,
    // u32 arithmetic: an index below the pad's start wraps and fails the test
    [U.InRange]: (o) => `${o.a} < ${o.b}`,
    [U.ILt]: (o) => `${o.a} < ${o.b}`,
    [U.BAnd]: (o) => `${o.a} && ${o.b}`,
    [U.IEq]: (o) => `${o.a} == ${o.b}`,
    [U.ISel]: (o) => `select(${o.c}, ${o.b}, ${o.a})`,
    [U.Select]: (o) => `select(${o.c}, ${o.b}, ${o.a})`,
    [U.Load]: (o) => `bitcast<${TYPE[o.type]}>(b${o.p}[${o.a}])`,
    [U.Iota]: (o) =>
      o.type === T.I32 ? `${o.b} + i32(${o.a}) * ${o.c}` : `fma(f32(${o.a}), ${o.c}, ${o.b})`,
    [U.Unary]: (o) => `unary_op(${o.p}u, ${o.a})`,
    [U.Binary]: (o) => `binary_op(${o.p}u, ${o.a}, ${o.b})`,
    [U.Where]: (o) => `select(${o.c}, ${o.b}, ${o.a} != 0.0 || is_nan(${o.a}))`,
    [U.BToV]: (o) => (o.type === T.I32 ? `select(0i, 1i, ${o.a})` : `select(0.0, 1.0, ${o.a})`),
    [U.Cast]: (o) => `${TYPE[o.type]}(${o.a})`,
  },
  statement: (i, type, expr) => `let v${i}: ${TYPE[type]} = ${expr};`,
};

/**
 * Fills a template's `//@bindings`, `//@outer`, `//@body` and result placeholder (u32
 * bits). Leaves bind from `firstBinding` on; level-0 and level-1 code goes to `//@outer`
 * when the template has one (split kernels), else everything goes to `//@body`.
 */
export function fill(template: string, k: Kernel, firstBinding: number): string {
  const { sections: lines, result } = print(k, WGSL);
  const leaves = k.leaves;
  const indent = (ls: string[]) => ls.map((l) => `  ${l}`).join("\n");
  const bindings = Array.from(
    { length: leaves },
    (_, i) => `@group(0) @binding(${firstBinding + i}) var<storage, read> b${i}: array<u32>;`,
  ).join("\n");
  const split = /^[ \t]*\/\/@outer[ \t]*$/m.test(template);
  const outer = split ? [...lines[0], ...lines[1]] : [];
  const inner = split ? lines[2] : [...lines[0], ...lines[1], ...lines[2]];
  // placeholders are whole lines, so comments may mention them
  return template
    .replace(/^[ \t]*\/\/@bindings[ \t]*$/m, () => bindings)
    .replace(/^[ \t]*\/\/@outer[ \t]*$/m, () => indent(outer))
    .replace(/^[ \t]*\/\/@body[ \t]*$/m, () => indent(inner))
    .replace("/*@result*/ 0u", () => `bitcast<u32>(${result})`);
}
