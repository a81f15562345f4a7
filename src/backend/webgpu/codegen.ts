/**
 * Prints a lowered kernel (../../compile/uops.ts) as the glue of a fused WGSL kernel: the
 * storage bindings of its leaf buffers and the code that evaluates its value at an index.
 * Numbers live in the uniform slots `p.v`, so one pipeline serves every size. The maths is
 * `unary_op` / `binary_op` from shaders/ops.wgsl; the kernel around the glue is a
 * hand-written template (shaders/fused_map*.wgsl, reduce_*.wgsl).
 */
import { type Kernel, T, U } from "../../compile/uops.ts";

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

/** Body lines by section (0: before any loop, 1: per split entry, 2: per index) and the result's name. */
function body(k: Kernel): { lines: string[][]; result: string; leaves: number } {
  const u = k.uops;
  const lines: string[][] = [[], [], []];
  const name = new Array<string>(u.length);
  let leaves = 0;
  for (let i = 0; i < u.length; i++) {
    const a = name[u.a[i]], b = name[u.b[i]], c = name[u.c[i]];
    const p = u.payload[i];
    const ty = TYPE[u.type[i]];
    let expr: string;
    switch (u.op[i]) {
      case U.Idx:
        name[i] = "idx";
        continue;
      case U.Q:
        name[i] = "q";
        continue;
      case U.R:
        name[i] = "r";
        continue;
      case U.IParam:
        name[i] = slot(p);
        continue;
      case U.ILit:
        name[i] = `${p}u`;
        continue;
      case U.VLit:
        name[i] = literal(u.type[i], p);
        continue;
      case U.VParam:
        name[i] = `bitcast<${ty}>(${slot(p)})`;
        continue;
      case U.IAdd:
        expr = `${a} + ${b}`;
        break;
      case U.ISub:
        expr = `${a} - ${b}`;
        break;
      case U.IMul:
        expr = `${a} * ${b}`;
        break;
      case U.IDiv:
        // GPUs divide integers slowly (lavapipe most of all): multiply and shift instead
        expr = `udiv_magic(${a}, ${slot(p + 1)}, ${slot(p + 2)})`;
        break;
      case U.InRange: // u32 arithmetic: an index below the pad's start wraps and fails the test
      case U.ILt:
        expr = `${a} < ${b}`;
        break;
      case U.BAnd:
        expr = `${a} && ${b}`;
        break;
      case U.IEq:
        expr = `${a} == ${b}`;
        break;
      case U.ISel:
      case U.Select:
        expr = `select(${c}, ${b}, ${a})`;
        break;
      case U.Load:
        leaves = Math.max(leaves, p + 1);
        expr = `bitcast<${ty}>(b${p}[${a}])`;
        break;
      case U.Iota:
        expr = u.type[i] === T.I32 ? `${b} + i32(${a}) * ${c}` : `fma(f32(${a}), ${c}, ${b})`;
        break;
      case U.Unary:
        expr = `unary_op(${p}u, ${a})`;
        break;
      case U.Binary:
        expr = `binary_op(${p}u, ${a}, ${b})`;
        break;
      case U.Where:
        expr = `select(${c}, ${b}, ${a} != 0.0 || is_nan(${a}))`;
        break;
      case U.BToV:
        expr = u.type[i] === T.I32 ? `select(0i, 1i, ${a})` : `select(0.0, 1.0, ${a})`;
        break;
      case U.Cast:
        expr = `${ty}(${a})`;
        break;
      default:
        throw new Error(`internal: unknown uop ${u.op[i]}`);
    }
    name[i] = `v${i}`;
    lines[u.level[i]].push(`let v${i}: ${ty} = ${expr};`);
  }
  return { lines, result: name[k.result], leaves };
}

/**
 * Fills a template's `//@bindings`, `//@outer`, `//@body` and result placeholder (u32
 * bits). Leaves bind from `firstBinding` on; level-0 and level-1 code goes to `//@outer`
 * when the template has one (split kernels), else everything goes to `//@body`.
 */
export function fill(template: string, k: Kernel, firstBinding: number): string {
  const { lines, result, leaves } = body(k);
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
