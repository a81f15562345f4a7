/**
 * The general banded solve (`solveBandedGeneral`, LAPACK gbsv) as a primitive, in its
 * canonical shapes: ab [batch, l+u+1, n] in general band storage (ab[u + i − j][j] =
 * A[i][j]), rhs [batch, n, m] → x [batch, n, m], with l, u < n.
 * Its rules are banded too, written with the solve itself (so they nest):
 *   dx = A⁻¹ (dr − dA x),   r̄ = A⁻ᵀ x̄,   Ā = −r̄ xᵀ restricted to the band,
 * where Aᵀ is the (u, l) band whose storage is ab's rows reversed and shifted. Each costs
 * one more banded solve and O((l + u) n m) elementwise work.
 */
import type { Tensor } from "../tensor.ts";
import * as o from "../ops/index.ts";
import { bind } from "../ad/core.ts";
import { fmtShape } from "../shape.ts";
import type { TangentBatch } from "../ad/batch.ts";
import type { PrimitiveTable } from "./types.ts";
import { solveRule } from "../ad/sparsity_rules.ts";

/** t[..., start:stop, ...] along `axis`. */
function part(t: Tensor, axis: number, start: number, stop: number): Tensor {
  const st = t.shape.slice(0, axis + 1).map((_, d) => (d === axis ? start : 0));
  const sp = t.shape.slice(0, axis + 1).map((v, d) => (d === axis ? stop : v));
  return o.slice(t, st, sp);
}

/** Zeros before and after `t` along `axis`. */
function padAxis(t: Tensor, axis: number, before: number, after: number): Tensor {
  return o.pad(t, t.shape.map((_, d) => (d === axis ? [before, after] as const : [0, 0] as const)));
}

/**
 * The stored diagonals of an (l, u) band, as the columns j of row k that lie in the
 * matrix: row k holds A[j + k − u][j], so s = k − u is the offset i − j, and j runs over
 * [j0, j0 + len).
 */
function diagonals(
  n: number,
  l: number,
  u: number,
): { k: number; s: number; j0: number; len: number }[] {
  return Array.from({ length: l + u + 1 }, (_, k) => {
    const s = k - u;
    return { k, s, j0: Math.max(0, -s), len: n - Math.abs(s) };
  });
}

/** dA x for band storage `dab` ([K?, batch, l+u+1, n]) and x [batch, n, m]. */
function bandTimes(dab: Tensor, x: Tensor, l: number, u: number): Tensor {
  const ra = dab.rank, n = x.shape[1];
  let y: Tensor | null = null;
  for (const { k, s, j0, len } of diagonals(n, l, u)) {
    const row = part(part(dab, ra - 2, k, k + 1), ra - 1, j0, j0 + len); // [..., 1, len]
    const col = o.reshape(row, [...row.shape.slice(0, -2), len, 1]);
    const p = o.mul(col, part(x, 1, j0, j0 + len)); // y[j + s] += A[j + s][j] x[j]
    const shifted = padAxis(p, p.rank - 2, Math.max(0, s), Math.max(0, -s));
    y = y ? o.add(y, shifted) : shifted;
  }
  return y!;
}

/** Storage of Aᵀ, a (u, l) band: abT[k][j] = ab[l + u − k][j + k − l], 0 outside the matrix. */
function transposeBand(ab: Tensor, l: number, u: number): Tensor {
  const n = ab.shape[2], R = l + u + 1;
  const rows = Array.from({ length: R }, (_, k) => {
    const d = k - l; // abT[k][j] = ab[R − 1 − k][j + d]
    const src = part(ab, 1, R - 1 - k, R - k);
    return d >= 0
      ? padAxis(part(src, 2, d, n), 2, 0, d)
      : padAxis(part(src, 2, 0, n + d), 2, -d, 0);
  });
  return rows.length === 1 ? rows[0] : o.concat(rows, 1);
}

/**
 * A (l, u) band solve of right-hand sides with a leading probe (or vmap) axis,
 * [K, batch, n, m]: the K sets become columns of one solve, which factors A once.
 */
function solveProbes(ab: Tensor, r: Tensor, l: number, u: number, tb: TangentBatch): Tensor {
  if (tb.k === 0) return bind("solveBandedGeneral", [ab, r], { l, u });
  const [k, batch, n, m] = r.shape;
  const cols = o.reshape(o.transpose(r, [1, 2, 0, 3]), [batch, n, k * m]);
  const x = bind("solveBandedGeneral", [ab, cols], { l, u });
  return o.transpose(o.reshape(x, [batch, n, k, m]), [2, 0, 1, 3]);
}

export const BANDED: PrimitiveTable<"solveBandedGeneral"> = {
  solveBandedGeneral: {
    abstract: ([ab, r], { l, u }) => {
      const [batch, rows, n] = ab.shape;
      const ok = ab.shape.length === 3 && r.shape.length === 3 && rows === l + u + 1 &&
        l < Math.max(n, 1) && u < Math.max(n, 1) && r.shape[0] === batch && r.shape[1] === n &&
        ab.dtype === r.dtype;
      if (!ok) {
        throw new RangeError(
          `solveBandedGeneral: expected ab [batch, l+u+1, n] and rhs [batch, n, m] of one dtype ` +
            `with l = ${l}, u = ${u} < n; got ${fmtShape(ab.shape)} ${ab.dtype} and ` +
            `${fmtShape(r.shape)} ${r.dtype}`,
        );
      }
      return { shape: [...r.shape], dtype: r.dtype };
    },
    impl: (bk, [ab, r], { l, u }, out) => {
      const [batch, n, m] = r.shape;
      return bk.solveBandedGeneral(
        "solveBandedGeneral",
        out.dtype,
        ab._ref!.storage,
        r._ref!.storage,
        batch,
        n,
        l,
        u,
        m,
      );
    },
    // dx = A⁻¹ (dr − dA x)
    jvp: ([ab], [tab, tr], x, { l, u }, tb) => {
      let rhs = tr;
      if (tab) {
        const dax = bandTimes(tab, x, l, u);
        rhs = rhs ? o.sub(rhs, dax) : o.neg(dax);
      }
      return rhs ? solveProbes(ab, rhs, l, u, tb) : null;
    },
    // r̄ = A⁻ᵀ x̄,  Ā[i][j] = −Σ_c r̄[i][c] x[j][c] on the band (0 in the corners)
    vjp: (g, [ab], x, { l, u }, needs) => {
      const gr = bind("solveBandedGeneral", [transposeBand(ab, l, u), g], { l: u, u: l });
      let gab: Tensor | null = null;
      if (needs[0]) {
        const n = x.shape[1];
        const rows = diagonals(n, l, u).map(({ s, j0, len }) => {
          const prod = o.mul(part(gr, 1, j0 + s, j0 + s + len), part(x, 1, j0, j0 + len));
          const row = padAxis(o.sum(prod, 2), 1, j0, n - j0 - len); // [batch, n]
          return o.reshape(row, [row.shape[0], 1, n]);
        });
        gab = o.neg(rows.length === 1 ? rows[0] : o.concat(rows, 1));
      }
      return [gab, needs[1] ? gr : null];
    },
    // a batched band joins the systems' batch axis; a shared band takes the batch as columns
    batch: ([ab, r], [ba, br], { l, u }, bb) => {
      if (!ba) return solveProbes(ab, r, l, u, bb);
      const [k, batch, rows, n] = ab.shape, m = r.shape[r.rank - 1];
      const rb = br ? r : o.broadcastTo(r, [k, ...r.shape]);
      const x = bind(
        "solveBandedGeneral",
        [o.reshape(ab, [k * batch, rows, n]), o.reshape(rb, [k * batch, n, m])],
        { l, u },
      );
      return o.reshape(x, [k, batch, n, m]);
    },
    // A⁻¹ of a band is dense: as for solve, column c of x depends on all of its band and
    // on column c of its right-hand side
    sparsity: (s, x, y, _p, h) => solveRule(s, x, y, {}, h),
  },
};
