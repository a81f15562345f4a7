/**
 * Colourings, sparse Hessians and Jacobians, SparseMatrix, and reverse Cuthill–McKee.
 *
 * References, all independent of the code under test:
 * - colourings are checked by brute force on their graphs (distance-2 for columns; no
 *   two-coloured path on four vertices for stars) and against the lower bound max row
 *   nonzeros (column colourings cannot go below it);
 * - sparse Hessians against the dense `hessian` (identity-column HVPs, no colouring) and,
 *   for the grid objective, against second derivatives written out by hand;
 * - RCM + banded Cholesky against Gaussian elimination on the host (tests/dense_ref.ts).
 *
 * Tolerances: f64 entries to 1e-12 relative to max |H| (each entry is one HVP product
 * component, a sum of a few terms: rounding is ~1e-16); f32 to 1e-5 (the figure;
 * measured below 1e-6).
 */
import assert from "node:assert/strict";
import {
  colorPattern,
  concat,
  grad,
  hessian,
  jacobian,
  reshape,
  reverseCuthillMcKee,
  slice,
  solveBanded,
  sparseHessian,
  sparseJacobian,
  SparseMatrix,
  SparsityPattern,
  sqrt,
  sum,
  type Tensor,
  tensor,
} from "../mod.ts";
import { assertClose, assertNoLeak, randArray, testAll } from "./helpers.ts";
import { memory } from "../mod.ts";
import { matVec, solveDense } from "./dense_ref.ts";

/** Symmetric pattern from an edge list (plus the diagonal). */
function graph(n: number, edges: readonly (readonly [number, number])[]): SparsityPattern {
  const e: [number, number][] = [];
  for (let i = 0; i < n; i++) e.push([i, i]);
  for (const [a, b] of edges) e.push([a, b], [b, a]);
  return SparsityPattern.fromEntries([n, n], e);
}
function band(n: number, b: number): SparsityPattern {
  const e: [number, number][] = [];
  for (let i = 0; i < n; i++) for (let d = 1; d <= b && i + d < n; d++) e.push([i, i + d]);
  return graph(n, e);
}
function grid(h: number, w: number): SparsityPattern {
  const e: [number, number][] = [];
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      if (r + 1 < h) e.push([r * w + c, (r + 1) * w + c]);
      if (c + 1 < w) e.push([r * w + c, r * w + c + 1]);
    }
  }
  return graph(h * w, e);
}
function arrowhead(n: number, hub: number): SparsityPattern {
  const e: [number, number][] = [];
  for (let i = 0; i < n; i++) if (i !== hub) e.push([hub, i]);
  return graph(n, e);
}

/** Brute force: every path v0–v1–v2–v3 (distinct) uses at least three colours, and edges differ. */
function assertStar(p: SparsityPattern, colors: Int32Array): void {
  const n = p.shape[0];
  const nb = (v: number) =>
    Array.from(p.colIdx.subarray(p.rowPtr[v], p.rowPtr[v + 1])).filter((w) => w !== v);
  for (let a = 0; a < n; a++) {
    for (const b of nb(a)) {
      assert.notEqual(colors[a], colors[b], `edge (${a}, ${b}) has one colour`);
      for (const c of nb(b)) {
        if (c === a) continue;
        for (const d of nb(c)) {
          if (d === a || d === b) continue;
          const two = colors[a] === colors[c] && colors[b] === colors[d];
          assert.ok(!two, `path ${a}-${b}-${c}-${d} is two-coloured`);
        }
      }
    }
  }
}

/** Brute force: the columns of each row have distinct colours. */
function assertDistance2(p: SparsityPattern, colors: Int32Array): void {
  for (let i = 0; i < p.shape[0]; i++) {
    const cs = Array.from(p.colIdx.subarray(p.rowPtr[i], p.rowPtr[i + 1])).map((j) => colors[j]);
    assert.equal(new Set(cs).size, cs.length, `row ${i} has two columns of one colour`);
  }
}

Deno.test("star colouring: valid, and few colours against the bounds", async (t) => {
  await t.step("banded patterns take at most 2b + 1 colours", () => {
    for (const b of [1, 2, 3, 5]) {
      const p = band(40, b);
      const c = colorPattern(p, { kind: "star" });
      assertStar(p, c.colors);
      // the lower bound of a column colouring is 2b+1 (a full row); a star colouring needs
      // at least b+1 (the band holds cliques of b+1 vertices)
      assert.ok(c.count <= 2 * b + 1 && c.count >= b + 1, `b = ${b}: ${c.count} colours`);
    }
  });
  await t.step("an arrowhead takes two colours whatever n and wherever the hub", () => {
    for (const n of [5, 50, 500]) {
      for (const hub of [0, n - 1, n >> 1]) {
        const p = arrowhead(n, hub);
        const c = colorPattern(p, { kind: "star" });
        assertStar(p, c.colors);
        assert.equal(c.count, 2, `n = ${n}, hub ${hub}`);
        assert.equal(p.maxRowNonzeros, n); // far below the column-colouring bound
      }
    }
  });
  await t.step("5-point grids: 5 colours (the lower bound max row entries) from 30 × 30 up", () => {
    for (const [h, w, most] of [[12, 15, 6], [30, 30, 5], [40, 52, 5]]) {
      const p = grid(h, w);
      const c = colorPattern(p, { kind: "star" });
      assertStar(p, c.colors);
      assert.equal(p.maxRowNonzeros, 5);
      assert.ok(c.count <= most && c.count >= 5, `${h} × ${w}: ${c.count} colours`);
    }
  });
  await t.step("every order gives a valid colouring on random graphs", () => {
    for (let seed = 1; seed <= 24; seed++) {
      const r = randArray(40 + 20 * seed, seed, 0, 1);
      const n = 30;
      const edges: [number, number][] = [];
      for (let k = 0; k + 1 < r.length; k += 2) {
        const a = Math.floor(r[k] * n), b = Math.floor(r[k + 1] * n);
        if (a !== b) edges.push([a, b]);
      }
      const p = graph(n, edges);
      for (const order of ["natural", "largest-first", "smallest-last"] as const) {
        const c = colorPattern(p, { kind: "star", order });
        assertStar(p, c.colors);
        const cc = colorPattern(p, { kind: "column", order });
        assertDistance2(p, cc.colors);
        assert.ok(cc.count >= p.maxRowNonzeros, "a column colouring meets the lower bound");
      }
    }
  });
  await t.step("bad problems are clear errors", () => {
    const nonsym = SparsityPattern.fromEntries([3, 3], [[0, 0], [0, 1], [1, 1], [2, 2]]);
    assert.throws(() => colorPattern(nonsym, { kind: "star" }), {
      name: "RangeError",
      message: /symmetric/,
    });
    assert.throws(
      () => colorPattern(band(4, 1), { kind: "star", order: "random" as "natural" }),
      { name: "RangeError", message: /order must be one of/ },
    );
  });
});

/** The grid objective of the examples: ½‖u − y‖² + λ Σ √(ε² + (u_p − u_q)²) over neighbours. */
function gridObjective(h: number, w: number, y: Tensor, lam = 0.3, eps = 0.1) {
  return (x: Tensor) => {
    const u = reshape(x, [h, w]);
    const dx = slice(u, [1, 0], [h, w]).sub(slice(u, [0, 0], [h - 1, w]));
    const dy = slice(u, [0, 1], [h, w]).sub(slice(u, [0, 0], [h, w - 1]));
    const tv = sum(sqrt(dx.square().add(eps * eps))).add(sum(sqrt(dy.square().add(eps * eps))));
    return sum(x.sub(y).square()).mul(0.5).add(tv.mul(lam));
  };
}

/** The same Hessian by hand: I + λ Σ_edges φ''(d) (e_p − e_q)(e_p − e_q)ᵀ, φ'' = ε²/(ε² + d²)^{3/2}. */
function gridHessianByHand(h: number, w: number, u: Float64Array, lam = 0.3, eps = 0.1) {
  const n = h * w;
  const H = Array.from({ length: n }, (_, i) => {
    const row = new Array<number>(n).fill(0);
    row[i] = 1;
    return row;
  });
  const edge = (p: number, q: number) => {
    const d = u[p] - u[q];
    const c = lam * eps * eps / Math.pow(eps * eps + d * d, 1.5);
    H[p][p] += c;
    H[q][q] += c;
    H[p][q] -= c;
    H[q][p] -= c;
  };
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      if (r + 1 < h) edge((r + 1) * w + c, r * w + c);
      if (c + 1 < w) edge(r * w + c + 1, r * w + c);
    }
  }
  return H;
}

testAll("sparseHessian = dense Hessian (grid by hand, arrowhead, random couplings)", async (be) => {
  const tol = be.dtype === "f64" ? 1e-12 : 1e-5;
  const opt = { dtype: be.dtype, device: be.dev } as const;
  const base = memory();
  {
    const [h, w] = [6, 7];
    const y = tensor(randArray(h * w, 3), opt);
    const u = randArray(h * w, 4);
    const f = gridObjective(h, w, y);
    const ut = tensor(u, opt);
    const H = sparseHessian(f, ut);
    assert.ok(H.coloring!.count <= 6, `${H.coloring!.count} colours`);
    assert.equal(H.nnz, h * w + 2 * (2 * h * w - h - w));
    const ref = gridHessianByHand(h, w, u);
    const dense = H.toDense();
    assertClose(await dense.data(), ref.flat(), { atol: tol * 2, rtol: 0, msg: "grid" });
    // the matrix-vector product against the dense one on the host
    const v = randArray(h * w, 5);
    const vt = tensor(v, opt);
    const hv = H.matvec(vt);
    assertClose(await hv.data(), matVec(ref, [...v]), { atol: 8 * tol, rtol: 0 });
    for (const t of [H, dense, vt, hv, ut]) t.dispose();
    y.dispose();
  }
  {
    // x₀ Σ x[1:]² + Σ exp(x[i] x[i+1]) : arrowhead plus a tridiagonal band
    const n = 9;
    const f = (x: Tensor) =>
      slice(x, [0], [1]).mul(sum(slice(x, [1], [n]).square())).sum()
        .add(sum(slice(x, [0], [n - 1]).mul(slice(x, [1], [n])).exp()));
    const x = tensor(randArray(n, 7), opt);
    const H = sparseHessian(f, x);
    const D = hessian(f, x);
    const d = await D.data();
    const scale = Math.max(...Array.from(d, Math.abs));
    const dense = H.toDense();
    assertClose(await dense.data(), d, { atol: tol * scale, rtol: 0, msg: "arrowhead" });
    assert.ok(H.coloring!.count <= 4, `${H.coloring!.count} colours`);
    for (const t of [H, D, x, dense]) t.dispose();
  }
  assertNoLeak(base, "sparseHessian");
});

testAll(
  "sparseHessian at n > 65,536 matches the hand-written grid Hessian's products",
  async (be) => {
    const [h, w] = [260, 260]; // 67,600 variables: past lavapipe's loop limit
    const opt = { dtype: be.dtype, device: be.dev } as const;
    const y = tensor(randArray(h * w, 11), opt);
    const u = randArray(h * w, 12);
    const H = sparseHessian(gridObjective(h, w, y), tensor(u, opt));
    const vals = await H.values.data();
    // check every entry against φ'' by hand, entry by entry (no dense matrix at this size)
    const lam = 0.3, eps = 0.1;
    const c = (p: number, q: number) => {
      const d = u[p] - u[q];
      return lam * eps * eps / Math.pow(eps * eps + d * d, 1.5);
    };
    let worst = 0;
    for (let i = 0; i < h * w; i++) {
      const [r, col] = [Math.floor(i / w), i % w];
      const nbrs = [[r - 1, col], [r + 1, col], [r, col - 1], [r, col + 1]]
        .filter(([a, b]) => a >= 0 && a < h && b >= 0 && b < w).map(([a, b]) => a * w + b);
      let diag = 1;
      for (const q of nbrs) diag += c(i, q);
      for (let k = H.rowPtr[i]; k < H.rowPtr[i + 1]; k++) {
        const j = H.colIdx[k];
        const want = j === i ? diag : -c(i, j);
        worst = Math.max(worst, Math.abs(vals[k] - want));
      }
    }
    assert.ok(worst <= (be.dtype === "f64" ? 1e-12 : 1e-5), `worst |error| ${worst}`);
    H.dispose();
    y.dispose();
  },
  ["cpu-f64", "webgpu-f32"],
);

testAll("sparseJacobian = dense Jacobian", async (be) => {
  const opt = { dtype: be.dtype, device: be.dev } as const;
  const n = 8;
  // c_i = x_i² x_{i+1} − sin(x_{i+2}), and a last row coupling x₀ with x_{n−1}
  const c = (x: Tensor) => {
    const body = slice(x, [0], [n - 2]).square().mul(slice(x, [1], [n - 1])).sub(
      slice(x, [2], [n]).sin(),
    );
    return concat([body, slice(x, [0], [1]).mul(slice(x, [n - 1], [n]))], 0);
  };
  const x = tensor(randArray(n, 9), opt);
  const J = sparseJacobian(c, x);
  const D = jacobian(c, x, { mode: "fwd" });
  assert.equal(
    J.coloring!.count,
    J.pattern.maxRowNonzeros,
    "the column colouring meets its bound here",
  );
  assertClose(await J.toDense().data(), await D.data(), {
    atol: be.dtype === "f64" ? 1e-12 : 1e-5,
    rtol: 0,
  });
  J.dispose();
  D.dispose();
});

Deno.test("sparseHessian and sparseJacobian: clear errors for bad patterns and options", () => {
  const f = (x: Tensor) => sum(x.square());
  const x = tensor([1, 2, 3], { dtype: "f64" });
  assert.throws(() => sparseHessian(f, x, { pattern: band(4, 1) }), {
    name: "RangeError",
    message: /pattern is 4 × 4; expected 3 × 3/,
  });
  const nonsym = SparsityPattern.fromEntries([3, 3], [[0, 0], [0, 1], [1, 1], [2, 2]]);
  assert.throws(() => sparseHessian(f, x, { pattern: nonsym }), {
    name: "RangeError",
    message: /must be symmetric/,
  });
  assert.throws(() => sparseHessian(f, x, { patern: band(3, 1) } as never), {
    name: "TypeError",
    message: /unknown option "patern"; did you mean "pattern"/,
  });
  assert.throws(() => sparseJacobian((y: Tensor) => y.mul(2), x, { pattern: band(4, 1) }), {
    name: "RangeError",
    message: /pattern is 4 × 4; expected c\(x\)\.size × 3/,
  });
  const wide = SparsityPattern.fromEntries([2, 3], [[0, 0], [1, 1]]);
  assert.throws(() => sparseJacobian((y: Tensor) => y.mul(2), x, { pattern: wide }), {
    name: "RangeError",
    message: /pattern is 2 × 3; expected 3 × 3 for c\(x\) of shape \[3\]/,
  });
  const colored = colorPattern(band(3, 1), { kind: "star" });
  assert.throws(() => sparseHessian(f, x, { pattern: band(3, 2), coloring: colored }), {
    name: "RangeError",
    message: /another pattern/,
  });
});

Deno.test("SparseMatrix: toBanded, and checked construction", async () => {
  const p = band(6, 2);
  const vals = new Float64Array(p.nnz);
  for (let i = 0; i < 6; i++) {
    for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) {
      vals[k] = 10 * Math.min(i, p.colIdx[k]) + Math.abs(i - p.colIdx[k]);
    }
  }
  const A = new SparseMatrix(p, tensor(vals));
  const B = A.toBanded("lower");
  assert.equal(B.bandwidth, 2);
  assert.deepEqual(await B.data.toArray(), [[0, 10, 20, 30, 40, 50], [1, 11, 21, 31, 41, 0], [
    2,
    12,
    22,
    32,
    0,
    0,
  ]]);
  assertClose(await B.toDense().data(), await A.toDense().data(), { rtol: 0, atol: 0 });
  B.dispose();
  A.dispose();
  assert.throws(() => new SparseMatrix(p, tensor([1, 2])), {
    name: "RangeError",
    message: /one entry per pattern entry/,
  });
});

Deno.test("reverse Cuthill–McKee + banded Cholesky solves like a dense solve", async () => {
  // a scrambled 2-D grid: bandwidth near n before, about the grid's width after
  const [h, w] = [9, 11], n = h * w;
  const scramble = Array.from({ length: n }, (_, i) => (i * 37) % n); // a permutation (gcd(37, 99) = 1)
  const e: [number, number][] = [];
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      if (r + 1 < h) e.push([scramble[r * w + c], scramble[(r + 1) * w + c]]);
      if (c + 1 < w) e.push([scramble[r * w + c], scramble[r * w + c + 1]]);
    }
  }
  const p = graph(n, e);
  const o = reverseCuthillMcKee(p);
  assert.ok(p.bandwidth > 80, `scrambled bandwidth ${p.bandwidth}`);
  assert.ok(o.bandwidth <= w + 1, `RCM bandwidth ${o.bandwidth}`);
  assert.deepEqual([...o.perm].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  // an SPD matrix on that pattern: a graph Laplacian plus a diagonal
  const A = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) A[i][i] = 0.5 + (i % 3);
  for (const [a, b] of e) {
    A[a][b] -= 1;
    A[b][a] -= 1;
    A[a][a] += 1;
    A[b][b] += 1;
  }
  const vals = new Float64Array(p.nnz);
  for (let i = 0; i < n; i++) {
    for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) vals[k] = A[i][p.colIdx[k]];
  }
  const rhs = randArray(n, 21);
  // permute, factor and solve in band storage, permute back
  const Ap = new SparsityPattern([n, n], p.rowPtr, p.colIdx);
  const M = new SparseMatrix(Ap, tensor(vals));
  const permuted: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) {
      permuted.push([o.inverse[i], o.inverse[p.colIdx[k]]]);
    }
  }
  const P = SparsityPattern.fromEntries([n, n], permuted);
  const pv = new Float64Array(P.nnz);
  for (let i = 0; i < n; i++) {
    for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) {
      const [pi, pj] = [o.inverse[i], o.inverse[p.colIdx[k]]];
      let at = P.rowPtr[pi];
      while (P.colIdx[at] !== pj) at++;
      pv[at] = vals[k];
    }
  }
  const Bp = new SparseMatrix(P, tensor(pv)).toBanded("lower");
  const rp = tensor(Array.from({ length: n }, (_, k) => rhs[o.perm[k]]), { dtype: "f64" });
  const xp = await solveBanded(Bp, rp, { lower: true }).data();
  const x = new Float64Array(n);
  for (let k = 0; k < n; k++) x[o.perm[k]] = xp[k];
  assertClose(x, solveDense(A, [...rhs]), { rtol: 1e-10, atol: 1e-12 });
  assert.equal(Bp.bandwidth, o.bandwidth);
  Bp.dispose();
  M.dispose();
});

Deno.test("reverseCuthillMcKee: clear errors", () => {
  const nonsym = SparsityPattern.fromEntries([2, 2], [[0, 1]]);
  assert.throws(() => reverseCuthillMcKee(nonsym), {
    name: "RangeError",
    message: /square symmetric/,
  });
  assert.throws(() => reverseCuthillMcKee([] as never), {
    name: "TypeError",
    message: /SparsityPattern/,
  });
});

Deno.test("sparseHessian refuses to run where a transform would lose a derivative", () => {
  const x = tensor([1, 2, 3], { dtype: "f64" });
  const f = (y: Tensor) => sum(y.square());
  assert.throws(
    () => grad((y: Tensor) => sum(sparseHessian(f, y).values))(x),
    /sparseHessian: cannot run under a transform/,
  );
  assert.throws(
    () =>
      grad((w: Tensor) => sum(sparseHessian((y: Tensor) => sum(y.square().mul(w)), x).values))(x),
    /sparseHessian: the function depends on a value that an enclosing transform is differentiating/,
  );
  x.dispose();
});

Deno.test("sparseHessian onProgress: pattern, colouring, products; detection skipped when given", () => {
  const f = (x: Tensor) => x.square().sum().add(x.slice([1], [5]).mul(x.slice([0], [4])).sum());
  const x = tensor([1, 2, 3, 4, 5], { dtype: "f64" });
  const seen: [number, number, string][] = [];
  const H = sparseHessian(f, x, { onProgress: (p) => seen.push([p.done, p.total, p.unit]) });
  assert.deepEqual(seen, [[1, 3, "stages"], [2, 3, "stages"], [3, 3, "stages"]]);
  seen.length = 0;
  const H2 = sparseHessian(f, x, {
    pattern: H.pattern,
    onProgress: (p) => seen.push([p.done, p.total, p.unit]),
  });
  assert.deepEqual(seen.map((s) => s[0]), [1, 2, 3]);
  assert.throws(
    () => sparseJacobian(f, x, { onProgress: () => {} } as never),
    /sparseJacobian: unknown option "onProgress"/,
  );
  [H, H2, x].forEach((t) => t.dispose());
});
