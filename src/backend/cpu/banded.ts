/**
 * Banded Cholesky on the CPU, in f64: LAPACK pbtrf / pbtrs (and ptsv for b = 1, which is
 * what SciPy's `solveh_banded` calls there).
 *
 * Both LAPACK layouts are read where they lie, through one offset per diagonal: A[j − d][j]
 * (the entry d above the diagonal in column j) is at `a[offs[d] + j]`, with
 * offs[d] = (b − d)·n in upper storage and d·n − d in lower storage (A is symmetric, so
 * lower storage holds the same numbers as A[j][j − d]). No layout conversion, no copy.
 *
 * The factor A = UᵀU is built left-looking, one column of U at a time, into a
 * column-packed work array (U[j − b + r][j] at w[j(b + 1) + r], the diagonal at r = b),
 * so each column reads the b previous ones from a window of (b + 1)² contiguous numbers.
 * The arithmetic follows LAPACK's order (subtractions in ascending k, scaling by the
 * reciprocal of the pivot, back substitution as column sweeps), so results agree with
 * LAPACK to rounding. `solveBanded` runs the forward substitution in the same pass as the
 * factorisation and the back substitution after it. With one right-hand side, b = 0, 1
 * and 2 have hand-written loops and b = 3…16 a generated, fully unrolled solver (the JIT
 * then keeps the band's last columns in registers, about twice as fast as the loops).
 */
import type { TypedArray } from "../../dtype.ts";
import { notPositiveDefinite } from "../banded_errors.ts";
import { pool } from "./storage.ts";

/** offs[d] such that A[j − d][j] = ab[offs[d] + j] for the matrix starting at `base`. */
function diagOffsets(n: number, b: number, lower: boolean, base: number): number[] {
  const offs: number[] = [];
  for (let d = 0; d <= b; d++) offs.push(base + (lower ? d * n - d : (b - d) * n));
  return offs;
}

/**
 * Left-looking factorisation of one matrix into `w` (column-packed U, see the module doc)
 * and `inv` (1/U[j][j]). With `x`, also the forward substitution Uᵀ Y = R for the m
 * right-hand sides R (rows of m numbers at r[rOff…]), Y written to x[xOff…].
 * Returns 0, or the order of the first leading minor that is not positive definite.
 */
function factorGeneral(
  a: Float64Array,
  offs: readonly number[],
  n: number,
  b: number,
  w: Float64Array,
  inv: Float64Array,
  r: Float64Array | null,
  rOff: number,
  x: Float64Array | null,
  xOff: number,
  m: number,
): number {
  const S = b + 1;
  for (let j = 0; j < n; j++) {
    const p = j * b + b; // U[k][j] at w[p + k]
    const i0 = j > b ? j - b : 0;
    let d = a[offs[0] + j];
    for (let i = i0; i < j; i++) {
      let s = a[offs[j - i] + j];
      const q = i * b + b; // U[k][i] at w[q + k]
      for (let k = i0; k < i; k++) s -= w[q + k] * w[p + k];
      const u = s * inv[i];
      w[p + i] = u;
      d -= u * u;
    }
    if (!(d > 0)) return j + 1;
    const ujj = Math.sqrt(d);
    w[j * S + b] = ujj;
    const ij = 1 / ujj;
    inv[j] = ij;
    if (x !== null && r !== null) {
      for (let c = 0; c < m; c++) {
        let y = r[rOff + j * m + c];
        for (let i = i0; i < j; i++) y -= w[p + i] * x[xOff + i * m + c];
        x[xOff + j * m + c] = y * ij;
      }
    }
  }
  return 0;
}

/**
 * factorGeneral for one right-hand side, columns [j0, j1) (the earlier ones done), the
 * forward substitution folded into the column loop. `w` holds U column-packed as in
 * factorGeneral, except that the diagonal slot keeps 1/U[j][j]: the solve needs only that.
 */
function forward1(
  a: Float64Array,
  offs: readonly number[],
  j0: number,
  j1: number,
  b: number,
  r: Float64Array,
  rOff: number,
  x: Float64Array,
  xOff: number,
  w: Float64Array,
): number {
  const S = b + 1;
  for (let j = j0; j < j1; j++) {
    const p = j * b + b;
    const i0 = j > b ? j - b : 0;
    let d = a[offs[0] + j];
    let y = r[rOff + j];
    for (let i = i0; i < j; i++) {
      let s = a[offs[j - i] + j];
      const q = i * b + b;
      for (let k = i0; k < i; k++) s -= w[q + k] * w[p + k];
      const u = s * w[i * S + b];
      w[p + i] = u;
      d -= u * u;
      y -= u * x[xOff + i];
    }
    if (!(d > 0)) return j + 1;
    const ij = 1 / Math.sqrt(d);
    w[j * S + b] = ij;
    x[xOff + j] = y * ij;
  }
  return 0;
}

/** The back substitution U x = y after forward1, columns j1 − 1 down to j0 (the later ones done). */
function back1(
  n: number,
  j0: number,
  j1: number,
  b: number,
  x: Float64Array,
  xOff: number,
  w: Float64Array,
): void {
  const S = b + 1;
  for (let j = j1 - 1; j >= j0; j--) {
    const i1 = Math.min(n - 1, j + b);
    let s = x[xOff + j];
    for (let i = i1; i > j; i--) s -= w[i * b + b + j] * x[xOff + i];
    x[xOff + j] = s * w[j * S + b];
  }
}

/** A solver of one band system with one right-hand side (forward1 then back1). */
type Solve1 = (
  a: Float64Array,
  offs: readonly number[],
  n: number,
  r: Float64Array,
  rOff: number,
  x: Float64Array,
  xOff: number,
  w: Float64Array,
) => number;

/** Widest band that gets a generated, fully unrolled solver (code size grows as b³). */
const UNROLL_MAX = 16;
const unrolled = new Map<number, Solve1>();

/**
 * forward1 and back1 for one bandwidth b, unrolled: the b previous columns of U, their
 * pivots and solution values live in local variables that shift by one column per step,
 * so the steady-state loop reads A once and writes U once, with no inner loops or index
 * arithmetic. The same operations in the same order as forward1 / back1, so the results
 * are identical. The first and last b columns go through forward1 / back1. Generated
 * once per b from the bandwidth alone (no user data reaches the source).
 */
function unrolledSolve(b: number): Solve1 {
  let f = unrolled.get(b);
  if (f) return f;
  const S = b + 1;
  const L: string[] = [];
  const range = (k: number) => [...Array(k).keys()];
  L.push(`let info = forward1(a, offs, 0, Math.min(n, ${b}), ${b}, r, rOff, x, xOff, w);`);
  L.push(`if (info !== 0 || n <= ${b}) return info;`);
  for (const d of range(S)) L.push(`const o${d} = offs[${d}];`);
  // window for column j = b: W{p}_{q} = U[j−b+q][j−p] (q < b−p), I{p} = 1/U[j−p][j−p], Y{p} = y[j−p]
  for (let p = 1; p <= b; p++) {
    for (const q of range(b - p)) L.push(`let W${p}_${q} = w[${(b - p) * S + q + p}];`);
    L.push(`let I${p} = w[${(b - p) * S + b}];`);
    L.push(`let Y${p} = x[xOff + ${b - p}];`);
  }
  L.push(`for (let j = ${b}; j < n; j++) {`);
  for (const rr of range(b)) {
    // N{r} = U[j−b+r][j] = (A[j−b+r][j] − Σ_{q<r} U[j−b+q][j−b+r] U[j−b+q][j]) / U[i][i]
    const p = b - rr;
    const sum = range(rr).map((q) => ` - W${p}_${q} * N${q}`).join("");
    L.push(`  const N${rr} = (a[o${p} + j]${sum}) * I${p};`);
  }
  L.push(`  let d = a[o0 + j];`);
  for (const rr of range(b)) L.push(`  d -= N${rr} * N${rr};`);
  L.push(`  if (!(d > 0)) return j + 1;`);
  L.push(`  const ij = 1 / Math.sqrt(d);`);
  const ysum = range(b).map((rr) => ` - N${rr} * Y${b - rr}`).join("");
  L.push(`  const y = (r[rOff + j]${ysum}) * ij;`);
  L.push(`  const c = j * ${S};`);
  for (const rr of range(b)) L.push(`  w[c + ${rr}] = N${rr};`);
  L.push(`  w[c + ${b}] = ij;`);
  L.push(`  x[xOff + j] = y;`);
  for (let p = b; p >= 2; p--) {
    for (const q of range(b - p)) L.push(`  W${p}_${q} = W${p - 1}_${q + 1};`);
    L.push(`  I${p} = I${p - 1}; Y${p} = Y${p - 1};`);
  }
  for (const q of range(b - 1)) L.push(`  W1_${q} = N${q + 1};`);
  L.push(`  I1 = ij; Y1 = y;`);
  L.push(`}`);
  // back substitution: x[j] = (y[j] − Σ_{e=b…1} U[j][j+e] x[j+e]) / U[j][j], U[j][j+e] at w[(j+e)S + b − e]
  L.push(`back1(n, n - ${b}, n, ${b}, x, xOff, w);`);
  for (let e = 1; e <= b; e++) L.push(`let X${e} = x[xOff + n - ${b + 1} + ${e}];`);
  L.push(`for (let j = n - ${b + 1}; j >= 0; j--) {`);
  const xsum = range(b).map((k) => b - k).map((e) => ` - w[(j + ${e}) * ${S} + ${b - e}] * X${e}`)
    .join("");
  L.push(`  const v = (x[xOff + j]${xsum}) * w[j * ${S} + ${b}];`);
  L.push(`  x[xOff + j] = v;`);
  for (let e = b; e >= 2; e--) L.push(`  X${e} = X${e - 1};`);
  L.push(`  X1 = v;`);
  L.push(`}`);
  L.push(`return 0;`);
  const make = new Function(
    "forward1",
    "back1",
    `return function solve${b}(a, offs, n, r, rOff, x, xOff, w) {\n${L.join("\n")}\n};`,
  );
  f = make(forward1, back1) as Solve1;
  unrolled.set(b, f);
  return f;
}

/** forward1 then back1 over the whole matrix (bandwidths beyond UNROLL_MAX). */
function solveGeneral1(
  a: Float64Array,
  offs: readonly number[],
  n: number,
  b: number,
  r: Float64Array,
  rOff: number,
  x: Float64Array,
  xOff: number,
  w: Float64Array,
): number {
  const info = forward1(a, offs, 0, n, b, r, rOff, x, xOff, w);
  if (info === 0) back1(n, 0, n, b, x, xOff, w);
  return info;
}

/** Back substitution U X = Y in place on x[xOff…] ([n, m] rows), with w and inv from factorGeneral. */
function backGeneral(
  n: number,
  b: number,
  w: Float64Array,
  inv: Float64Array,
  x: Float64Array,
  xOff: number,
  m: number,
): void {
  for (let j = n - 1; j >= 0; j--) {
    const i1 = Math.min(n - 1, j + b);
    for (let c = 0; c < m; c++) {
      let s = x[xOff + j * m + c];
      // U[j][i] at w[i(b+1) + b + j − i] = w[i·b + b + j]; LAPACK subtracts from the far end
      for (let i = i1; i > j; i--) s -= w[i * b + b + j] * x[xOff + i * m + c];
      x[xOff + j * m + c] = s * inv[j];
    }
  }
}

/** b = 0: x = r / a. */
function solveDiagonal(
  a: Float64Array,
  offs: readonly number[],
  n: number,
  r: Float64Array,
  rOff: number,
  x: Float64Array,
  xOff: number,
  m: number,
): number {
  const o = offs[0];
  for (let j = 0; j < n; j++) {
    const d = a[o + j];
    if (!(d > 0)) return j + 1;
    for (let c = 0; c < m; c++) x[xOff + j * m + c] = r[rOff + j * m + c] / d;
  }
  return 0;
}

/**
 * b = 1, one right-hand side: LAPACK ptsv (A = L D Lᵀ, pivots d[j] = A[j][j] − A[j][j−1]² /
 * d[j − 1]), the routine SciPy's solveh_banded uses for b = 1. The recurrence has no square
 * root on its critical path. d[j] > 0 exactly when the leading minor of order j + 1 is
 * positive, so the failure order is the same as Cholesky's. `w` holds n + n numbers.
 */
function solveTridiagonal(
  a: Float64Array,
  offs: readonly number[],
  n: number,
  r: Float64Array,
  rOff: number,
  x: Float64Array,
  xOff: number,
  w: Float64Array,
): number {
  const o0 = offs[0], o1 = offs[1]; // A[j][j] = a[o0 + j], A[j − 1][j] = a[o1 + j]
  let dPrev = a[o0];
  if (!(dPrev > 0)) return 1;
  w[0] = dPrev;
  let y = r[rOff];
  x[xOff] = y;
  for (let j = 1; j < n; j++) {
    const e = a[o1 + j];
    const l = e / dPrev;
    const dj = a[o0 + j] - l * e;
    if (!(dj > 0)) return j + 1;
    w[j] = dj;
    w[n + j - 1] = l;
    y = r[rOff + j] - y * l;
    x[xOff + j] = y;
    dPrev = dj;
  }
  let xs = x[xOff + n - 1] / w[n - 1];
  x[xOff + n - 1] = xs;
  for (let j = n - 2; j >= 0; j--) {
    xs = x[xOff + j] / w[j] - xs * w[n + j];
    x[xOff + j] = xs;
  }
  return 0;
}

/**
 * b = 2, one right-hand side: factorGeneral and backGeneral unrolled, the last two columns'
 * pivots and solutions kept in locals. `w` holds 3n numbers: per column U[j−2][j],
 * U[j−1][j], 1/U[j][j]. Needs n ≥ 3 (b < n is checked above this layer).
 */
function solvePentadiagonal(
  a: Float64Array,
  offs: readonly number[],
  n: number,
  r: Float64Array,
  rOff: number,
  x: Float64Array,
  xOff: number,
  w: Float64Array,
): number {
  const o0 = offs[0], o1 = offs[1], o2 = offs[2];
  // columns 0 and 1
  let d = a[o0];
  if (!(d > 0)) return 1;
  let im2 = 1 / Math.sqrt(d);
  let ym2 = r[rOff] * im2;
  w[0] = 0;
  w[1] = 0;
  w[2] = im2;
  x[xOff] = ym2;
  let u1 = a[o1 + 1] * im2;
  d = a[o0 + 1] - u1 * u1;
  if (!(d > 0)) return 2;
  let im1 = 1 / Math.sqrt(d);
  let ym1 = (r[rOff + 1] - u1 * ym2) * im1;
  w[3] = 0;
  w[4] = u1;
  w[5] = im1;
  x[xOff + 1] = ym1;
  for (let j = 2; j < n; j++) {
    const v2 = a[o2 + j] * im2;
    const v1 = (a[o1 + j] - u1 * v2) * im1;
    d = a[o0 + j] - v2 * v2;
    d -= v1 * v1;
    if (!(d > 0)) return j + 1;
    const ij = 1 / Math.sqrt(d);
    const y = (r[rOff + j] - v2 * ym2 - v1 * ym1) * ij;
    w[3 * j] = v2;
    w[3 * j + 1] = v1;
    w[3 * j + 2] = ij;
    x[xOff + j] = y;
    im2 = im1;
    im1 = ij;
    u1 = v1;
    ym2 = ym1;
    ym1 = y;
  }
  // U x = y from the bottom: x[j] = (y[j] − U[j][j+2] x[j+2] − U[j][j+1] x[j+1]) / U[j][j]
  let x1 = x[xOff + n - 1] * w[3 * n - 1];
  x[xOff + n - 1] = x1;
  let x2 = (x[xOff + n - 2] - w[3 * n - 2] * x1) * w[3 * n - 4];
  x[xOff + n - 2] = x2;
  for (let j = n - 3; j >= 0; j--) {
    const xj = (x[xOff + j] - w[3 * j + 6] * x1 - w[3 * j + 4] * x2) * w[3 * j + 2];
    x[xOff + j] = xj;
    x1 = x2;
    x2 = xj;
  }
  return 0;
}

/** Work arrays up to this many numbers are kept for the next call. */
const KEEP = 1 << 24;
let kept = new Float64Array(0);

/**
 * A work array of at least `size` numbers, reused across calls: on these machines fresh
 * pages cost about 6 ms per 8 MB, more than a whole b = 1 solve of n = 10^6. Every kernel
 * here writes each work entry before reading it, so stale contents do no harm.
 */
export function scratch(size: number): Float64Array {
  if (kept.length >= size) return kept;
  const w = new Float64Array(size);
  if (size <= KEEP) kept = w;
  return w;
}

/** The numbers of `t` as f64 (f32 inputs are widened: the kernels compute in f64). */
export const asF64 = (t: TypedArray): Float64Array =>
  t instanceof Float64Array ? t : Float64Array.from(t);

/**
 * Runs `solve` on an f64 array for the results `out` receives: `out` itself, or for f32 a
 * pooled f64 array rounded into `out` once at the end (and pooled again, also when `solve`
 * throws).
 */
export function inF64(out: TypedArray, solve: (x: Float64Array) => void): void {
  if (out instanceof Float64Array) return solve(out);
  const x = pool.take("f64", out.length) as Float64Array;
  try {
    solve(x);
    out.set(x);
  } finally {
    pool.give(x);
  }
}

/**
 * Factors each matrix of `ab` ([batch, b+1, n] band storage) into `out` (same storage and
 * size; every entry written, the unused corners with 0). Throws on a matrix that is not
 * positive definite, naming `op` and the leading minor.
 */
export function choleskyBandedCpu(
  op: string,
  ab: TypedArray,
  out: TypedArray,
  batch: number,
  n: number,
  b: number,
  lower: boolean,
): void {
  const a = asF64(ab);
  const S = b + 1;
  const work = scratch(n * S + n);
  const w = work.subarray(0, n * S), inv = work.subarray(n * S);
  for (let t = 0; t < batch; t++) {
    const offs = diagOffsets(n, b, lower, t * S * n);
    const info = factorGeneral(a, offs, n, b, w, inv, null, 0, null, 0, 0);
    if (info) throw notPositiveDefinite(op, batch > 1 ? t : null, info);
    for (let d = 0; d <= b; d++) {
      const o = offs[d];
      for (let j = d; j < n; j++) out[o + j] = w[j * S + b - d];
      // the d corner entries of this diagonal: the last ones of lower row d, the first of upper row b − d
      for (let j = lower ? n : 0, e = j + d; j < e; j++) out[o + j] = 0;
    }
  }
}

/**
 * Solves A X = R for each matrix of `ab` ([batch, b+1, n] band storage) and right-hand
 * sides `rhs` ([batch, n, m]) into `out` ([batch, n, m]). Throws on a matrix that is not
 * positive definite, naming `op` and the leading minor.
 */
export function solveBandedCpu(
  op: string,
  ab: TypedArray,
  rhs: TypedArray,
  out: TypedArray,
  batch: number,
  n: number,
  b: number,
  m: number,
  lower: boolean,
): void {
  const a = asF64(ab);
  const r = asF64(rhs);
  inF64(out, (x) => solveInto(op, a, r, x, batch, n, b, m, lower));
}

function solveInto(
  op: string,
  a: Float64Array,
  r: Float64Array,
  x: Float64Array,
  batch: number,
  n: number,
  b: number,
  m: number,
  lower: boolean,
): void {
  const S = b + 1;
  const single = m === 1;
  const work = scratch(b === 0 ? 0 : single ? n * S : n * S + n);
  const w = work;
  const inv = work.subarray(single ? 0 : n * S);
  for (let t = 0; t < batch; t++) {
    const offs = diagOffsets(n, b, lower, t * S * n);
    const o = t * n * m;
    let info: number;
    if (b === 0) info = solveDiagonal(a, offs, n, r, o, x, o, m);
    else if (single && b === 1) info = solveTridiagonal(a, offs, n, r, o, x, o, w);
    else if (single && b === 2) info = solvePentadiagonal(a, offs, n, r, o, x, o, w);
    else if (single && b <= UNROLL_MAX) info = unrolledSolve(b)(a, offs, n, r, o, x, o, w);
    else if (single) info = solveGeneral1(a, offs, n, b, r, o, x, o, w);
    else {
      info = factorGeneral(a, offs, n, b, w, inv, r, o, x, o, m);
      if (!info) backGeneral(n, b, w, inv, x, o, m);
    }
    if (info) throw notPositiveDefinite(op, batch > 1 ? t : null, info);
  }
}
