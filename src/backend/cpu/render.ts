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
import { type Kernel, perProbeCone, T, U } from "../../compile/uops.ts";
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

/**
 * The bounds tests of pads and clamped reads on the loop variable (`idx`, or `r` of a split
 * kernel: uops of level `level`) that hold on one range [lo, hi) of it: `i + c < b` and
 * `0 ≤ i + c < b` with c and b loop-invariant. Inside the range the loop body runs with
 * them as `true` (V8 then folds the selects they feed), so a kernel over x[1:] − x[:-1]²
 * tests bounds only at its edges. Null when the body has no such test.
 */
function interior(
  k: Kernel,
  level: number,
  keep?: (i: number) => boolean,
): { lo: string; hi: string; body: string[] } | null {
  const u = k.uops;
  const { names } = print(k, JS);
  const loopVar = level === 2 ? U.Idx : U.R;
  /** The invariant c of i + c (as text), or null when `a` is not of that form. */
  const offset = (a: number): string | null => {
    if (u.op[a] === loopVar) return "0";
    const inv = (x: number) => x >= 0 && u.level[x] === 0;
    if (u.op[a] === U.IAdd) {
      if (u.op[u.a[a]] === loopVar && inv(u.b[a])) return names[u.b[a]];
      if (u.op[u.b[a]] === loopVar && inv(u.a[a])) return names[u.a[a]];
    }
    if (u.op[a] === U.ISub && u.op[u.a[a]] === loopVar && inv(u.b[a])) {
      return `-(${names[u.b[a]]})`;
    }
    return null;
  };
  const los: string[] = [], his: string[] = [];
  const always = new Map<number, string>();
  for (let i = 0; i < u.length; i++) {
    if (u.level[i] !== level || (u.op[i] !== U.ILt && u.op[i] !== U.InRange)) continue;
    if (keep && !keep(i)) continue;
    if (u.level[u.b[i]] !== 0) continue;
    const c = offset(u.a[i]);
    if (c === null) continue;
    if (u.op[i] === U.InRange) los.push(`-(${c})`);
    his.push(`${names[u.b[i]]} - (${c})`);
    always.set(i, "true");
  }
  if (always.size === 0) return null;
  const { sections } = print(k, JS, always, keep);
  return {
    lo: los.length ? `Math.max(0, ${los.join(", ")})` : "0",
    hi: `Math.min(${his.join(", ")})`,
    body: sections[level],
  };
}

/**
 * A loop over `v` from 0 to `n` running `inside(body)`, with `at` the body's level: split
 * into edge, interior and edge runs when `interior` finds bounds tests (see there).
 */
function peeled(
  k: Kernel,
  at: number,
  v: string,
  n: string,
  general: string[],
  inside: (body: string[]) => string,
  keep?: (i: number) => boolean,
): string {
  const loop = (from: string, to: string, body: string[]) =>
    `for (let ${v} = ${from}; ${v} < ${to}; ${v}++) {
    ${inside(body)}
  }`;
  const p = interior(k, at, keep);
  if (!p) return loop("0", n, general);
  return `const lo_ = Math.min(${n}, ${p.lo});
  const hi_ = Math.max(lo_, Math.min(${n}, ${p.hi}));
  ${loop("0", "lo_", general)}
  ${loop("lo_", "hi_", read(p.body, inside([])))}
  ${loop("hi_", n, general)}`;
}

/**
 * The statements of a loop body whose value is read, by the rest of the loop (`rest`) or
 * by a statement kept after them: in the interior run the bounds tests are `true`, and the
 * index arithmetic only they read would otherwise be printed (and run) for nothing.
 */
function read(body: readonly string[], rest: string): string[] {
  const names = (text: string) => text.match(/\bv\d+\b/g) ?? [];
  const used = new Set(names(rest));
  const kept: string[] = [];
  for (let i = body.length - 1; i >= 0; i--) {
    const def = /^const (v\d+) = /.exec(body[i]);
    if (def && !used.has(def[1])) continue;
    kept.push(body[i]);
    for (const v of names(def ? body[i].slice(def[0].length) : body[i])) used.add(v);
  }
  return kept.reverse();
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
  const each = (b: string[]) =>
    `${[...sections[1], ...b].join("\n    ")}
    out[idx] = ${name[k.result]};`;
  return `function (out, L, P, n) {
  ${prelude(leafCount(k), slots, sections[0])}
  ${peeled(k, 2, "idx", "n", sections[2], each)}
}`;
}

/**
 * A split kernel's per-entry work (see splitSource) that leaves entry r's Q values in
 * T[0 … Q): level-1 statements come from the loop printer, `values` follows them.
 */
function probeValues(k: Kernel): { sections: string[][]; slots: Set<number>; values: string } {
  const { sections, name, slots } = body(k);
  const comb = combTerms(k);
  if (!comb) {
    return {
      sections,
      slots,
      values: `for (let q = 0; q < Q; q++) {
      const idx = q * M + r;
      ${sections[2].join("\n      ")}
      T[q] = ${name[k.result]};
    }`,
    };
  }
  // base + Σ_j (ρ_j = q ? c_j : 0): each entry's Q values are made in a small array,
  // one add per term, instead of Q·(terms) compares and selects
  const { names } = print(k, JS);
  const adds = comb.terms.map(([rho, c]) =>
    `{ const j = ${names[rho]}; if (j >= 0 && j < Q) T[j] += ${names[c]}; }`
  );
  const init = comb.perProbe
    ? `for (let q = 0; q < Q; q++) {
      const idx = q * M + r;
      ${comb.probe.join("\n      ")}
      T[q] = ${names[comb.base]};
    }`
    : `for (let q = 0; q < Q; q++) T[q] = ${comb.base < 0 ? "0" : names[comb.base]};`;
  return { sections, slots, values: [init, ...adds].join("\n    ") };
}

/** `(out, L, P, M, Q)`: for r < M, the q-independent part once, then out[q·M + r] for q < Q. */
export function splitSource(k: Kernel): string {
  if (combTerms(k)) {
    const { sections, slots, values } = probeValues(k);
    const each = (b: string[]) =>
      `${b.join("\n    ")}
    ${values}
    for (let q = 0; q < Q; q++) out[q * M + r] = T[q];`;
    return `function (out, L, P, M, Q) {
  ${prelude(leafCount(k), slots, sections[0])}
  const T = new Float64Array(Q);
  ${peeled(k, 1, "r", "M", sections[1], each)}
}`;
  }
  const { sections, name, slots } = body(k);
  const each = (b: string[]) =>
    `${b.join("\n    ")}
    for (let q = 0; q < Q; q++) {
      const idx = q * M + r;
      ${sections[2].join("\n      ")}
      out[idx] = ${name[k.result]};
    }`;
  return `function (out, L, P, M, Q) {
  ${prelude(leafCount(k), slots, sections[0])}
  ${peeled(k, 1, "r", "M", sections[1], each)}
}`;
}

/**
 * `(out, L, P, M, Q)`: a split kernel over the Q comb-probe products of a banded Hessian
 * (rows M = n) that writes their band instead of the products: the b + 1 rows of band
 * storage of the "band" expression (../../compile/lazy.ts; not its mirror). Product row r
 * holds H[r][c] at probe c mod Q for |r − c| ≤ b; storage row s takes, from row r, the entry
 * of probe (r + e_s) mod Q at column r − shift, e_s = −shift, shift = s − (upper ? b : 0).
 * Entries no row reaches (outside the matrix) are 0. The rows are printed one by one, so b
 * and upper are part of the kernel.
 *
 * In the comb-probe form (combTerms) with every residue ρ_j = (r + δ_j) mod Q for a δ_j
 * fixed for the kernel (the comb reads of shifted views: see lower.ts, #residue), term j
 * lands in the one row s with e_s ≡ δ_j, found once per call: each entry then adds its
 * coefficients to b + 1 row sums (branches the processor predicts, since the rows do not
 * change with r) and stores them, with no per-probe values, residues or probe array.
 * Otherwise the entry's Q values are made in a small array (see probeValues) and the rows
 * read from it.
 */
export function bandSplitSource(k: Kernel, b: number, upper: boolean): string {
  const rows = Array.from({ length: b + 1 }, (_, s) => {
    const sh = s - (upper ? b : 0);
    // the column written, r − shift, lies inside the matrix
    const col = sh === 0 ? "r" : sh > 0 ? `r - ${sh}` : `r + ${-sh}`;
    const ok = sh === 0 ? "" : sh > 0 ? `r >= ${sh}` : `r < M - ${-sh}`;
    // storage columns j whose row j + shift falls outside the matrix
    const zero = sh > 0
      ? `out.fill(0, ${s} * M + Math.max(0, M - ${sh}), ${s + 1} * M);`
      : sh < 0
      ? `out.fill(0, ${s} * M, ${s} * M + Math.min(M, ${-sh}));`
      : "";
    return {
      e: -sh,
      store: (v: string) => (ok ? `if (${ok}) ` : "") + `out[${s} * M + ${col}] = ${v};`,
      zero,
    };
  });
  const zero = rows.map((w) => w.zero).filter((z) => z);
  const fixed = fixedRows(k);
  if (fixed) {
    const { sections, slots, names, terms, base, keep } = fixed;
    const S = b + 1;
    // a few rows: sums in locals, each term's row picked by branches; many: a small array
    // whose last slot takes the terms no row stores
    const few = S <= 8;
    // the row of each term (−1: a probe no row stores)
    const find = `const rowOf = (d) => {
    ${rows.map((w, s) => `if ((${w.e} - d) % Q === 0) return ${s};`).join("\n    ")}
    return ${few ? -1 : S};
  };`;
    const check = [...new Set(terms.map((t) => t.slot))].map((p) =>
      `if (p${p} !== Q) throw new Error("internal: a comb residue modulo " + p${p} + " in a band of " + Q + " probes");`
    );
    const rowDecl = terms.map((t, j) =>
      `const s${j}_ = rowOf(${t.delta < 0 ? "0" : names[t.delta]});`
    );
    const init = base < 0 ? "0" : names[base];
    const acc = Array.from({ length: S }, (_, s) => (few ? `a${s}_` : `A_[${s}]`));
    const adds = terms.map((t, j) =>
      few
        ? acc.map((a, s) => `if (s${j}_ === ${s}) ${a} += ${names[t.coef]};`).join(" else ")
        : `A_[s${j}_] += ${names[t.coef]};`
    );
    const start = few ? `let ${acc.map((a) => `${a} = ${init}`).join(", ")};` : `A_.fill(${init});`;
    if (!few) rowDecl.push(`const A_ = new Float64Array(${S + 1});`);
    const each = (body: string[]) =>
      `${body.join("\n    ")}
    ${start}
    ${adds.join("\n    ")}
    ${rows.map((w, s) => w.store(acc[s])).join("\n    ")}`;
    return `function (out, L, P, M, Q) {
  ${prelude(leafCount(k), slots, sections[0])}
  ${check.join("\n  ")}
  ${find}
  ${rowDecl.join("\n  ")}
  ${zero.join("\n  ")}
  ${peeled(k, 1, "r", "M", sections[1], each, keep)}
}`;
  }
  const { sections, slots, values } = probeValues(k);
  // the probe (r mod Q) + e, corrected once (|e| ≤ b < Q)
  const probe = (e: number) =>
    e === 0
      ? "rq"
      : e > 0
      ? `(rq + ${e} < Q ? rq + ${e} : rq + ${e} - Q)`
      : `(rq >= ${-e} ? rq - ${-e} : rq + Q - ${-e})`;
  const each = (body: string[]) =>
    `${body.join("\n    ")}
    ${values}
    ${rows.map((w) => w.store(`T[${probe(w.e)}]`)).join("\n    ")}
    if (++rq === Q) rq = 0;`;
  return `function (out, L, P, M, Q) {
  ${prelude(leafCount(k), slots, sections[0])}
  const T = new Float64Array(Q);
  ${zero.join("\n  ")}
  let rq = 0; // r mod Q
  ${peeled(k, 1, "r", "M", sections[1], each)}
}`;
}

/**
 * A split kernel in comb-probe form (combTerms) whose per-probe part is only its terms (no
 * per-probe rest) and whose residues are all ρ_j = (r + δ_j) mod p, as lower.ts's #residue
 * prints the comb reads of shifted views: r − ⌊r/p⌋·p, or s < p ? s : s − p with
 * s = (r mod p) + δ and δ fixed for the kernel. Gives each term's δ (a level-0 uop, −1 for
 * 0), p's slot and coefficient, the base (−1: none), and which uops the entry loop needs
 * (the coefficients' and the base's, not the residues'). Null for any other kernel.
 */
function fixedRows(k: Kernel): {
  sections: string[][];
  slots: Set<number>;
  names: string[];
  terms: { delta: number; slot: number; coef: number }[];
  base: number;
  keep: (i: number) => boolean;
} | null {
  const comb = combTerms(k);
  if (!comb || comb.perProbe) return null;
  const u = k.uops;
  // r mod p as r − ⌊r/p⌋·p: p's slot, else −1
  const modR = (i: number): number => {
    if (u.op[i] !== U.ISub || u.op[u.a[i]] !== U.R || u.op[u.b[i]] !== U.IMul) return -1;
    const m = u.b[i], x = u.a[m], y = u.b[m];
    const ok = u.op[x] === U.IDiv && u.a[x] === u.a[i] && u.op[y] === U.IParam &&
      u.payload[y] === u.payload[x];
    return ok ? u.payload[x] : -1;
  };
  const residue = (rho: number): { delta: number; slot: number } | null => {
    const slot = modR(rho);
    if (slot >= 0) return { delta: -1, slot };
    if (u.op[rho] !== U.ISel) return null;
    const lt = u.a[rho], sum = u.b[rho], wrap = u.c[rho];
    const p = u.b[lt];
    if (u.op[lt] !== U.ILt || u.a[lt] !== sum || u.op[p] !== U.IParam) return null;
    if (u.op[wrap] !== U.ISub || u.a[wrap] !== sum || u.b[wrap] !== p) return null;
    if (u.op[sum] !== U.IAdd) return null;
    for (const [x, d] of [[u.a[sum], u.b[sum]], [u.b[sum], u.a[sum]]]) {
      if (u.level[d] === 0 && modR(x) === u.payload[p]) return { delta: d, slot: u.payload[p] };
    }
    return null;
  };
  const terms: { delta: number; slot: number; coef: number }[] = [];
  for (const [rho, coef] of comb.terms) {
    const r = residue(rho);
    if (!r) return null;
    terms.push({ ...r, coef });
  }
  // the entry loop computes the coefficients and the base, and what they read
  const need = new Set<number>();
  const stack = [comb.base, ...terms.map((t) => t.coef)];
  while (stack.length) {
    const i = stack.pop()!;
    if (i < 0 || need.has(i)) continue;
    need.add(i);
    stack.push(u.a[i], u.b[i], u.c[i]);
  }
  const keep = (i: number) => u.level[i] === 0 || need.has(i);
  const { sections, names } = print(k, JS, undefined, keep);
  return { sections, slots: slotsOf(k), names, terms, base: comb.base, keep };
}

const ADD = BINARY_OPS.indexOf("add");

/**
 * A split kernel whose per-probe program has the comb-probe form that
 * ../../compile/lower.ts's combLinear writes, base + Σ_j (ρ_j = q ? c_j : 0) with ρ_j and
 * c_j computed per entry: base (a uop, −1 for none; per probe when `perProbe`, then `probe`
 * holds the statements computing it, given q and idx) and the terms [ρ_j, c_j] in order of
 * addition. Null for any other per-probe program.
 */
function combTerms(
  k: Kernel,
): { base: number; terms: [number, number][]; perProbe: boolean; probe: string[] } | null {
  const u = k.uops;
  const terms: [number, number][] = [];
  let v = k.result, base = -1;
  const term = (i: number): boolean => {
    if (u.op[i] !== U.Select || u.level[u.b[i]] > 1) return false;
    const z = u.c[i], eq = u.a[i];
    if (u.op[z] !== U.VLit || u.payload[z] !== 0 || u.op[eq] !== U.IEq) return false;
    if (u.op[u.b[eq]] !== U.Q || u.level[u.a[eq]] > 1) return false;
    terms.push([u.a[eq], u.b[i]]);
    return true;
  };
  for (;;) {
    if (u.level[v] <= 1) {
      base = v;
      break;
    }
    if (term(v)) break;
    if (u.op[v] === U.Binary && u.payload[v] === ADD && term(u.b[v])) {
      v = u.a[v];
      continue;
    }
    base = v; // the per-probe rest
    break;
  }
  if (terms.length === 0) return null;
  terms.reverse();
  const perProbe = base >= 0 && u.level[base] === 2;
  if (!perProbe) return { base, terms, perProbe, probe: [] };
  // the statements of the rest: the per-probe uops it depends on
  const cone = perProbeCone(u, base);
  const { sections } = print(k, JS, undefined, (i) => u.level[i] < 2 || cone.has(i));
  return { base, terms, perProbe, probe: sections[2] };
}

/** The accumulation of one value into `acc`: a sum, or max/min propagating NaN. */
function accumulate(op: "sum" | "max" | "min", acc: string, value: string): string {
  if (op === "sum") return `${acc} += ${value};`;
  const better = op === "max" ? ">" : "<";
  return `{ const w = ${value}; if (w !== w) ${acc} = NaN; else if (w ${better} ${acc}) ${acc} = w; }`;
}

/** The identity of a reduction. */
function identity(op: "sum" | "max" | "min"): string {
  return op === "sum" ? "0" : op === "max" ? "-Infinity" : "Infinity";
}

/**
 * `(out, L, P, outer, len, inner, Q)`: a split reduction (see splitSource): Q probes, each
 * reduced over the middle axis of its own [outer, len, inner], the input index being
 * q·M + r with M = outer·len·inner. For each input entry r the probe-independent part runs
 * once, then each probe's value goes to its own accumulator; a comb-probe form (see
 * combTerms) adds each entry's coefficients to the accumulators of the probes they belong
 * to. Sums accumulate in f64 in blocks of 256 along the reduced axis, as reduceSource's.
 */
export function reduceSplitSource(op: "sum" | "max" | "min", k: Kernel): string {
  const { sections, name, slots } = body(k);
  const id = identity(op);
  const comb = op === "sum" ? combTerms(k) : null;
  let each: string;
  if (comb) {
    const { names } = print(k, JS);
    const base = comb.base < 0 ? "" : comb.perProbe
      ? `for (let q = 0; q < Q; q++) {
            const idx = q * M + r;
            ${comb.probe.join("\n            ")}
            A[q * inner + c] += ${names[comb.base]};
          }`
      : `{ const b_ = ${names[comb.base]}; for (let q = 0; q < Q; q++) A[q * inner + c] += b_; }`;
    const adds = comb.terms.map(([rho, c]) =>
      `{ const j_ = ${names[rho]}; if (j_ >= 0 && j_ < Q) A[j_ * inner + c] += ${names[c]}; }`
    );
    each = [...sections[1], base, ...adds].join("\n          ");
  } else {
    each = `${sections[1].join("\n          ")}
          for (let q = 0; q < Q; q++) {
            const idx = q * M + r;
            ${sections[2].join("\n            ")}
            ${accumulate(op, "A[q * inner + c]", name[k.result])}
          }`;
  }
  const merge = op === "sum"
    ? "T[w] += A[w];"
    : `if (A[w] !== A[w] || T[w] !== T[w]) T[w] = NaN; else if (A[w] ${
      op === "max" ? ">" : "<"
    } T[w]) T[w] = A[w];`;
  return `function (out, L, P, outer, len, inner, Q) {
  ${prelude(leafCount(k), slots, sections[0])}
  const M = outer * len * inner;
  const W = Q * inner;
  const A = new Float64Array(W), T = new Float64Array(W);
  for (let o = 0; o < outer; o++) {
    for (let w = 0; w < W; w++) T[w] = ${id};
    for (let s0 = 0; s0 < len; s0 += 256) {
      for (let w = 0; w < W; w++) A[w] = ${id};
      const s1 = Math.min(len, s0 + 256);
      for (let s = s0; s < s1; s++) {
        for (let c = 0; c < inner; c++) {
          const r = (o * len + s) * inner + c;
          ${each}
        }
      }
      for (let w = 0; w < W; w++) ${merge}
    }
    for (let q = 0; q < Q; q++) {
      for (let c = 0; c < inner; c++) out[(q * outer + o) * inner + c] = T[q * inner + c];
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
