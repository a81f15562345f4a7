/**
 * Printing a kernel: the walk over its uops shared by the device renderers, which supply
 * only their syntax (a table from uop to text). Uops that name a value without computing
 * it (the index, parameters, literals) are printed inline; every other uop becomes one
 * statement, filed by level (0: before any loop, 1: once per split entry, 2: per index).
 */
import type { Kernel } from "./uops.ts";

/** The operand names of a uop, its payload and its type, as a syntax table sees them. */
export interface Operands {
  readonly a: string;
  readonly b: string;
  readonly c: string;
  readonly p: number;
  readonly type: number;
}

/** A device's syntax: for each uop code, an inline name (`name`) or an expression (`expr`). */
export interface Syntax {
  readonly name: Partial<Record<number, (o: Operands) => string>>;
  readonly expr: Partial<Record<number, (o: Operands) => string>>;
  /** The statement defining value `v${i}` (computed by uop code `op`). */
  statement(i: number, type: number, expr: string, op: number): string;
}

/**
 * Statements by level and the name of the result. `replace` gives some uops another
 * expression (a renderer's specialised copy of the loop body); `keep`, when given, says
 * which uops get a statement (the others are named but not computed).
 */
export function print(
  k: Kernel,
  syntax: Syntax,
  replace?: ReadonlyMap<number, string>,
  keep?: (i: number) => boolean,
): { sections: string[][]; result: string; names: string[] } {
  const u = k.uops;
  const sections: string[][] = [[], [], []];
  const names = new Array<string>(u.length);
  for (let i = 0; i < u.length; i++) {
    const o: Operands = {
      a: names[u.a[i]],
      b: names[u.b[i]],
      c: names[u.c[i]],
      p: u.payload[i],
      type: u.type[i],
    };
    const inline = syntax.name[u.op[i]];
    if (inline) {
      names[i] = inline(o);
      continue;
    }
    const expr = syntax.expr[u.op[i]];
    if (!expr) throw new Error(`internal: no syntax for uop ${u.op[i]}`);
    names[i] = `v${i}`;
    if (keep && !keep(i)) continue;
    const text = replace?.get(i) ?? expr(o);
    sections[u.level[i]].push(syntax.statement(i, u.type[i], text, u.op[i]));
  }
  return { sections, result: names[k.result], names };
}
