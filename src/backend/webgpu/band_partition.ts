/**
 * The partitioned banded Cholesky solve on WebGPU (shaders/band_partition*.wgsl): SPD
 * systems with one right-hand side, in parallel along the rows of each system as well as
 * across a batch.
 *
 * Each system is cut into P partitions of s rows; a partition's last b rows form a
 * separator, the rest its interior. Interiors couple only to the separators beside them,
 * so they are eliminated independently (one invocation each), leaving the separators'
 * Schur complement: a band of width 2b − 1 and (P − 1)·b rows, solved by the same method
 * (recursively, down to systems short enough for one invocation), after which every
 * interior is solved independently. One system of 10⁶ rows with b = 2 takes 7 dispatches
 * instead of 218. With P = 1 (short systems, or a batch that is parallel enough already)
 * each system is factored and solved by one invocation in one dispatch.
 *
 * The kernels read the user's band storage where it lies (no interleaving transposes) and
 * are generated per bandwidth: the sweep over the rows is unrolled over the band, the last
 * b columns of the factor held in registers, so each row costs its b + 1 band entries and
 * its right-hand side in, its b + 1 factor entries out.
 *
 * Stability: a symmetric reordering of an SPD matrix is SPD and the Schur complement of an
 * SPD block is SPD, so every block factorisation here meets only positive pivots and is as
 * stable as the plain Cholesky factorisation; no pivoting is needed. A matrix that is not
 * positive definite shows a non-positive pivot somewhere: with P = 1 that is LAPACK's info,
 * the first failing leading minor; with P > 1 the error names the partition's rows (a
 * principal submatrix that is not positive definite) or the separators' system.
 */
import type { GpuStorage } from "./pool.ts";
import type { GpuRuntime, KernelSpec } from "./runtime.ts";
import { Params } from "./params.ts";
import { SHADERS } from "../../shaders.generated.ts";
import { LOOP_BUDGET } from "./band_limits.ts";

/** Widest band that takes the partitioned path at the top level (registers hold ~b² numbers). */
export const MAX_PARTITION_BANDWIDTH = 8;
/** Widest band a generated kernel is made for (the separators' systems double the width). */
const MAX_GENERATED = 64;
/** Invocations a solve should offer: lavapipe fills its cores with ~16, a GPU wants more. */
const LANES = 1024;
/**
 * Most rows in one partition: MODE 2 sweeps the interior twice, and the last partition may
 * hold up to 2s − 1 rows, so 4 s passes stay within the loop budget.
 */
const sMax = () => Math.floor((LOOP_BUDGET - 100) / 4);
/**
 * Status codes: a failure at row j of the first level writes j + 1, of the separators'
 * system LEVEL1 + j + 1, of deeper levels DEEPER + j + 1 (rows stay below 2^30).
 */
const LEVEL1 = 2 ** 31;
const DEEPER = 3 * 2 ** 30;
const WG = 64;

/**
 * How a batch of systems of n rows is cut: P partitions of s rows (the last takes the
 * rest), enough for about LANES invocations. A batch that offers a quarter of those by
 * itself, and the separators' systems (`inner`), are solved one system per invocation where
 * one invocation can (each level of separators doubles the bandwidth, and wider kernels take
 * longer to compile than such a system takes to solve).
 */
export function partitionPlan(
  batch: number,
  n: number,
  b: number,
  inner = false,
): { parts: number; s: number } {
  const sMin = Math.max(64, 4 * b);
  const s = Math.min(sMax(), Math.max(sMin, Math.ceil((batch * n) / LANES)));
  if (n < 2 * sMax() && (inner || batch >= LANES / 4)) return { parts: 1, s };
  return { parts: Math.max(1, Math.floor(n / s)), s };
}

/** Numbers per partition in the slots: G, g, VV, Vy, ZV. */
const slotSize = (b: number) => 3 * b * b + 2 * b;

const range = (k: number) => [...Array(k).keys()];
const sum = (terms: string[]) => terms.map((t) => ` - ${t}`).join("");
const indent = (lines: string[]) => lines.map((l) => `  ${l}`);

/**
 * A sweep over rows [from, to) split where the band meets the partition's edges: the
 * first `head` rows and the last `tail` rows get `edge` code (with the tests that only
 * they need), the rows between get `plain` code. Downward sweeps run from `to` − 1.
 */
function split(
  from: string,
  to: string,
  head: number,
  tail: number,
  plain: string[],
  edge: string[],
  down = false,
): string[] {
  const loop = (a: string, b: string, body: string[]) =>
    down
      ? [`for (var jj = ${b}; jj > ${a}; jj--) {`, `  let j = jj - 1u;`, ...indent(body), `}`]
      : [`for (var j = ${a}; j < ${b}; j++) {`, ...indent(body), `}`];
  // a system shorter than the band (a separators' system of one boundary) is all edge
  const mid0 = head ? `min(${from} + ${head}u, ${to})` : from;
  const mid1 = tail ? `select(${mid0}, ${to} - ${tail}u, ${to} >= ${mid0} + ${tail}u)` : to;
  const parts = [
    ...(head ? [[from, mid0, edge]] : []),
    [mid0, mid1, plain],
    ...(tail ? [[mid1, to, edge]] : []),
  ] as [string, string, string[]][];
  return (down ? parts.reverse() : parts).flatMap(([a, b, body]) => loop(a, b, body));
}

/**
 * The bodies of band_partition.wgsl for bandwidth b (see the shader for the algorithm).
 * Window of the previous b columns j − k (k = 1…b): inv{k} = 1/U[j−k][j−k], yw{k} = y[j−k],
 * z{k}_{c} = Z[j−k][c], u{k}_{e} = U[j−k−e][j−k] (e ≤ b − k).
 */
function bodies(b: number): Record<string, string> {
  const B = range(b);
  const ks = range(b).map((k) => k + 1);
  const bb = b * b;
  const decl: string[] = [];
  for (const k of ks) {
    decl.push(`var inv${k} = 0.0;`, `var yw${k} = 0.0;`);
    for (const c of B) decl.push(`var z${k}_${c} = 0.0;`);
    for (let e = 1; e <= b - k; e++) decl.push(`var u${k}_${e} = 0.0;`);
  }
  for (const c of B) {
    decl.push(`var gv${c} = 0.0;`);
    for (let c2 = c; c2 < b; c2++) decl.push(`var G${c}_${c2} = 0.0;`);
  }
  // one step of the factorisation: column j of U, n{r} = U[j − b + r][j] (rows of the
  // partition only: above it, near its top edge, the band's entries are left out)
  const step = (edge: boolean, spikes: boolean): string[] => {
    const L = [`let a0 = a_at(t, 0u, j);`];
    for (let d = 1; d <= b; d++) {
      L.push(
        edge
          ? `let a${d} = select(0.0, a_at(t, ${d}u, j), j >= j0 + ${d}u);`
          : `let a${d} = a_at(t, ${d}u, j);`,
      );
    }
    for (const r of B) {
      const k = b - r;
      L.push(`let n${r} = (a${k}${sum(range(r).map((q) => `u${k}_${r - q} * n${q}`))}) * inv${k};`);
    }
    L.push(`var dg = a0;`, ...B.map((r) => `dg -= n${r} * n${r};`));
    L.push(`if (is_nan(dg) || dg <= 0.0) {`, `  fail(t, j);`, `  return;`, `}`);
    L.push(`let iv = 1.0 / sqrt(dg);`);
    L.push(`let yv = (rhs[xt + j]${sum(B.map((r) => `n${r} * yw${b - r}`))}) * iv;`);
    for (const r of B) L.push(`u[u_at(t, ${r}u, j)] = n${r};`);
    L.push(`u[u_at(t, B, j)] = iv;`);
    if (!spikes) L.push(`x[xt + j] = yv;`);
    // Z = U^-T E, E[j][c] = A[j0 − b + c][j] for j ≤ j0 + c (only near the top edge)
    for (const c of B) {
      if (!spikes) continue;
      const e = edge
        ? `select(0.0, a_at(t, j - j0 + ${b - c}u, j), q > 0u && j <= j0 + ${c}u)`
        : "";
      const terms = B.map((r) => `n${r} * z${b - r}_${c}`);
      L.push(
        e ? `let zc${c} = (${e}${sum(terms)}) * iv;` : `let zc${c} = -(${terms.join(" + ")}) * iv;`,
      );
    }
    for (const c of spikes ? B : []) {
      L.push(`gv${c} += zc${c} * yv;`);
      for (let c2 = c; c2 < b; c2++) L.push(`G${c}_${c2} += zc${c} * zc${c2};`);
    }
    for (let k = b; k >= 2; k--) {
      L.push(`inv${k} = inv${k - 1};`, `yw${k} = yw${k - 1};`);
      for (const c of spikes ? B : []) L.push(`z${k}_${c} = z${k - 1}_${c};`);
      for (let e = 1; e <= b - k; e++) L.push(`u${k}_${e} = u${k - 1}_${e};`);
    }
    if (b > 0) {
      L.push(`inv1 = iv;`, `yw1 = yv;`);
      for (const c of spikes ? B : []) L.push(`z1_${c} = zc${c};`);
      for (let e = 1; e <= b - 1; e++) L.push(`u1_${e} = n${b - e};`);
    }
    return L;
  };
  // MODE 1, after the sweep: V = U^-T F for the separator below (rows j1 − b + r', k = b − r')
  const tail: string[] = [];
  for (const c of B) {
    tail.push(`slots[base + ${bb}u + ${c}u] = gv${c};`);
    for (const c2 of B) {
      const [lo, hi] = c <= c2 ? [c, c2] : [c2, c];
      tail.push(`slots[base + ${c * b + c2}u] = G${lo}_${hi};`);
    }
  }
  tail.push(`if (!last) {`);
  for (const c of B) {
    for (const r of B) {
      const k = b - r;
      const f = c <= r ? `a_at(t, ${c + b - r}u, j1 + ${c}u)` : "0.0";
      tail.push(
        `  let v${r}_${c} = (${f}${
          sum(range(r).map((q) => `u${k}_${r - q} * v${q}_${c}`))
        }) * inv${k};`,
      );
    }
  }
  const dot = (f: (r: number) => string) => B.map(f).join(" + ");
  for (const c of B) {
    for (const c2 of B) {
      tail.push(
        `  slots[base + ${bb + b + c * b + c2}u] = ${dot((r) => `v${r}_${c} * v${r}_${c2}`)};`,
      );
      tail.push(
        `  slots[base + ${2 * bb + 2 * b + c * b + c2}u] = ${
          dot((r) => `z${b - r}_${c} * v${r}_${c2}`)
        };`,
      );
    }
    tail.push(`  slots[base + ${2 * bb + b + c}u] = ${dot((r) => `v${r}_${c} * yw${b - r}`)};`);
  }
  tail.push(`}`);
  const factor = [
    ...decl,
    `if (MODE == 0u) {`,
    ...indent(split("j0", "j1", b, 0, step(false, false), step(true, false))),
    `} else {`,
    ...indent(split("j0", "j1", b, 0, step(false, true), step(true, true))),
    ...(b > 0 ? indent(tail) : []),
    `}`,
  ];
  // MODE 2: U^T w = r − E xs_above (top edge) − F xs_below (bottom edge)
  const fwd = (edge: boolean): string[] => {
    const L = [`var rj = rhs[xt + j];`];
    for (const c of edge ? B : []) {
      L.push(
        `if (q > 0u && j <= j0 + ${c}u) { rj -= a_at(t, j - j0 + ${
          b - c
        }u, j) * xs[xsUp + ${c}u]; }`,
        `if (!last && j + ${
          b - c
        }u >= j1) { rj -= a_at(t, j1 + ${c}u - j, j1 + ${c}u) * xs[xsDown + ${c}u]; }`,
      );
    }
    L.push(
      `let wv = (rj${sum(B.map((r) => `u[u_at(t, ${r}u, j)] * w${b - r}`))}) * u[u_at(t, B, j)];`,
    );
    L.push(`x[xt + j] = wv;`);
    for (let k = b; k >= 2; k--) L.push(`w${k} = w${k - 1};`);
    if (b > 0) L.push(`w1 = wv;`);
    return L;
  };
  const forward = [
    ...ks.map((k) => `var w${k} = 0.0;`),
    ...split("j0", "j1", b, b, fwd(false), fwd(true)),
    `if (!last) {`,
    ...B.map((c) => `  x[xt + j1 + ${c}u] = xs[xsDown + ${c}u];`),
    `}`,
  ];
  // U x = w from the bottom, LAPACK's order (the far end of the row first); near the bottom
  // edge the columns past the interior are left out
  const back = (edge: boolean): string[] => {
    const L = [`var sv = x[xt + j];`];
    for (let e = b; e >= 1; e--) {
      const ue = `u[u_at(t, ${b - e}u, j + ${e}u)]`;
      L.push(`sv -= ${edge ? `select(0.0, ${ue}, j + ${e}u < j1)` : ue} * x${e};`);
    }
    L.push(`let xv = sv * u[u_at(t, B, j)];`, `x[xt + j] = xv;`);
    for (let e = b; e >= 2; e--) L.push(`x${e} = x${e - 1};`);
    if (b > 0) L.push(`x1 = xv;`);
    return L;
  };
  const backward = [
    ...ks.map((k) => `var x${k} = 0.0;`),
    ...split("j0", "j1", 0, b, back(false), back(true), true),
  ];
  return { factor: factor.join("\n"), forward: forward.join("\n"), backward: backward.join("\n") };
}

/** band_partition.wgsl with its bodies for bandwidth b. */
function source(b: number): string {
  const parts = bodies(b);
  const pad = (text: string, p: string) => text.split("\n").map((l) => p + l).join("\n");
  return SHADERS.band_partition
    .replace(/^const B: u32 = 1u; \/\/@B$/m, `const B: u32 = ${b}u;`)
    .replace(
      /^([ \t]*)\/\/@(factor|forward|backward)[ \t]*$/gm,
      (_, p: string, name: string) => pad(parts[name], p),
    );
}

const specs = new Map<number, KernelSpec>();
function spec(b: number): KernelSpec {
  if (b > MAX_GENERATED) {
    throw new Error(`internal: no partitioned kernel for bandwidth ${b} (most ${MAX_GENERATED})`);
  }
  let k = specs.get(b);
  if (!k) {
    k = {
      name: `band_partition_b${b}`,
      shader: "band_partition",
      workgroupSize: WG,
      generated: { key: `b${b}`, source: () => source(b) },
    };
    specs.set(b, k);
  }
  return k;
}
const REDUCE: KernelSpec = {
  name: "band_partition_reduce",
  shader: "band_partition_reduce",
  workgroupSize: 256,
};

/** How the first level of a solve was cut, for the error message (see `partitionFailure`). */
export interface PartitionFailure {
  parts: number;
  s: number;
  b: number;
}

/**
 * Solves A x = r for a batch of SPD systems ([batch, b+1, n] band storage, upper or
 * `lower`; r [batch, n]) into a fresh x [batch, n]. A failure writes status[t]: the failing
 * row + 1 at the first level (`fail` = 0), else `fail`. Returns x and the first level's
 * partition plan (the error message needs it).
 */
export function solvePartitioned(
  rt: GpuRuntime,
  ab: GpuStorage,
  rhs: GpuStorage,
  batch: number,
  n: number,
  b: number,
  lower: boolean,
  status: GpuStorage,
  fail = 0,
): { x: GpuStorage; plan: PartitionFailure } {
  const { parts, s } = partitionPlan(batch, n, b, fail !== 0);
  const x = rt.pool.acquire(batch * n * 4, rt.batch, false);
  const u = rt.pool.acquire(batch * (b + 1) * n * 4, rt.batch, false);
  const slot = slotSize(b);
  const split = parts > 1 && b > 0;
  const slots = rt.pool.acquire(split ? batch * parts * slot * 4 : 4, rt.batch, false);
  const dummy = rt.pool.acquire(4, rt.batch, false);
  const params = () =>
    new Params().u32(batch).u32(n).u32(parts).u32(s).u32(fail).u32(split ? slot : 0).buffer;
  const run = (mode: number, xs: GpuStorage) =>
    rt.dispatch(
      spec(b),
      { LOWER: lower ? 1 : 0, MODE: mode },
      params(),
      [ab, rhs, u, x, slots, xs, status],
      Math.ceil((batch * parts) / WG),
    );
  if (!split) {
    // b = 0 has no separators: its partitions are independent systems
    run(0, dummy);
  } else {
    run(1, dummy);
    const ns = (parts - 1) * b, b2 = 2 * b - 1;
    const tab = rt.pool.acquire(batch * (b2 + 1) * ns * 4, rt.batch, false);
    const rs = rt.pool.acquire(batch * ns * 4, rt.batch, false);
    rt.dispatch(
      REDUCE,
      { LOWER: lower ? 1 : 0 },
      new Params().u32(batch).u32(n).u32(s).u32(b).u32(slot).u32(ns).u32(parts).buffer,
      [ab, rhs, slots, tab, rs],
      Math.ceil((batch * ns) / 256),
    );
    const inner = solvePartitioned(
      rt,
      tab,
      rs,
      batch,
      ns,
      b2,
      false,
      status,
      fail ? DEEPER : LEVEL1,
    );
    rt.pool.release(tab, rt.batch);
    rt.pool.release(rs, rt.batch);
    run(2, inner.x);
    rt.pool.release(inner.x, rt.batch);
  }
  for (const buf of [u, slots, dummy]) rt.pool.release(buf, rt.batch);
  return { x, plan: { parts, s, b } };
}

/**
 * What a status value of the partitioned solve says: LAPACK's info with one partition
 * (`info`); else the rows of the partition whose interior block failed (`rows`), or the
 * row of A whose separator's pivot failed in the separators' system (`separator`; null
 * below the first level of separators).
 */
export function partitionFailure(
  plan: PartitionFailure,
  n: number,
  code: number,
): { info: number } | { rows: [number, number] } | { separator: number | null } {
  if (code >= DEEPER) return { separator: null };
  const { parts, s, b } = plan;
  if (code >= LEVEL1) {
    const k = code - LEVEL1 - 1; // row k of the separators' system: separator ⌊k/b⌋, row k mod b
    const q = Math.floor(k / b);
    return { separator: (q + 1) * s - b + (k - q * b) };
  }
  if (parts === 1) return { info: code };
  const j = code - 1;
  return { rows: [Math.min(Math.floor(j / s), parts - 1) * s, Math.min(j, n - 1)] };
}
