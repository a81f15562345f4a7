/**
 * Derivative rules at boundary points (issue 11, items 1 and 2): integer powers at a zero
 * base, where the textbook rule b·a^(b−1) differentiated again meets 0·0⁻¹, and `det` at
 * singular matrices, whose gradient (the cofactor matrix) exists everywhere. References are
 * closed forms and cofactors computed here by hand-written minors.
 */
import assert from "node:assert/strict";
import {
  det,
  grad,
  hessian,
  hvp,
  jvp,
  memory,
  pow,
  sum,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { assertClose, testAll } from "./helpers.ts";

testAll("pow with an integer exponent has finite higher derivatives at a zero base", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const x = tensor([0, 1.5, -2], opts);
  const v = tensor([1, 1, 1], opts);
  // d²/dz² z = 0 everywhere (was NaN at z = 0)
  assertClose(await hvp((z) => sum(pow(z, 1)), x, v).data(), [0, 0, 0]);
  // d²/dz² z² = 2; d³ = 0 (was NaN at z = 0)
  assertClose(await hvp((z) => sum(pow(z, 2)), x, v).data(), [2, 2, 2]);
  const [, third] = jvp((z) => hvp((y) => sum(pow(y, 2)), z, v), [x], [v]);
  assertClose(await third.data(), [0, 0, 0]);
  // z³: second derivative 6z, third 6, at 0 and at a negative base
  assertClose(await hvp((z) => sum(pow(z, 3)), x, v).data(), [0, 9, -12], { rtol: b.rtol });
  const [, d3] = jvp((z) => hvp((y) => sum(pow(y, 3)), z, v), [x], [v]);
  assertClose(await d3.data(), [6, 6, 6], { rtol: b.rtol });
  // z⁰ = 1: every derivative is 0
  assertClose(await grad((z: Tensor) => sum(pow(z, 0)))(x).data(), [0, 0, 0]);
  assertClose(await hvp((z) => sum(pow(z, 0)), x, v).data(), [0, 0, 0]);
});

testAll("pow with a tensor exponent: exact at b = 0 and b = 1 with a zero base", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const e = tensor([0, 1, 2, 3], opts);
  const x = tensor([0, 0, 0, 0], opts);
  const v = tensor([1, 1, 1, 1], opts);
  // ∂²/∂z² z^b = b(b−1) z^(b−2): at z = 0 → [0, 0, 2, 0]
  assertClose(await hvp((z) => sum(pow(z, e)), x, v).data(), [0, 0, 2, 0]);
  // third derivative b(b−1)(b−2) z^(b−3): [0, 0, 0, 6]
  const [, d3] = jvp((z) => hvp((y) => sum(pow(y, e)), z, v), [x], [v]);
  assertClose(await d3.data(), [0, 0, 0, 6]);
  // a fractional exponent keeps its true infinite derivative at 0
  const half = await grad((z: Tensor) => sum(pow(z, tensor(0.5, opts))))(tensor([0], opts))
    .data();
  assert.equal(half[0], Infinity);
});

/** Cofactor matrix by explicit minors (an independent reference). */
function cofactorRef(a: number[][]): number[][] {
  const detRef = (m: number[][]): number => {
    if (m.length === 1) return m[0][0];
    let s = 0;
    for (let j = 0; j < m.length; j++) {
      const minor = m.slice(1).map((row) => row.filter((_, k) => k !== j));
      s += (j % 2 ? -1 : 1) * m[0][j] * detRef(minor);
    }
    return s;
  };
  return a.map((_, i) =>
    a.map((_, j) => {
      const minor = a.filter((_, r) => r !== i).map((row) => row.filter((_, c) => c !== j));
      return ((i + j) % 2 ? -1 : 1) * detRef(minor);
    })
  );
}

testAll("grad(det) is the cofactor matrix, also at singular matrices", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const cases: number[][][] = [
    [[1, 2], [2, 4]], // rank 1 (the example: [[4, −2], [−2, 1]])
    [[1, 2, 3], [4, 5, 6], [7, 8, 9]], // rank 2
    [[1, 2, 3], [2, 4, 6], [3, 6, 9]], // rank 1: every 2×2 minor is 0
    [[2, -1, 0, 1], [1, 3, 2, 0], [3, 2, 2, 1], [0, 1, -1, 2]], // rank 3 (row 3 = row 1 + row 2)
    [[0.5, 0.2, -0.1], [0.3, -0.4, 0.8], [1.1, 0.6, 0.25]], // invertible
  ];
  for (const a of cases) {
    const g = grad((m: Tensor) => det(m))(tensor(a, opts));
    assertClose(await g.data(), cofactorRef(a).flat(), { rtol: b.rtol, atol: 1e-5 });
  }
  assertClose(await grad((m: Tensor) => det(m))(tensor([[3]], opts)).data(), [1]);
});

testAll("hessian(det) at a singular matrix matches the cofactors' own derivatives", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const a = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
  const n = 3, h = 1e-3;
  // d cof / dA by central differences of the reference cofactors (they are quadratic in A,
  // so the difference quotient is exact up to rounding)
  const expected: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const p = a.map((r) => [...r]), m = a.map((r) => [...r]);
      p[i][j] += h;
      m[i][j] -= h;
      const cp = cofactorRef(p).flat(), cm = cofactorRef(m).flat();
      expected.push(...cp.map((c, k) => (c - cm[k]) / (2 * h)));
    }
  }
  const H = hessian((m: Tensor) => det(m))(tensor(a, opts));
  assert.deepEqual(H.shape, [3, 3, 3, 3]);
  assertClose(await H.data(), expected, { rtol: 1e-4, atol: 1e-4 });
});

testAll("det above the minors threshold keeps its gradient det · A⁻ᵀ", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const n = 10;
  const a = Array.from(
    { length: n },
    (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 2 : 0) + Math.sin(i * n + j) / 4),
  );
  // reference: central differences of det in f64, computed by Gaussian elimination here
  const detRef = (m: number[][]): number => {
    const u = m.map((r) => [...r]);
    let d = 1;
    for (let k = 0; k < n; k++) {
      let p = k;
      for (let i = k + 1; i < n; i++) if (Math.abs(u[i][k]) > Math.abs(u[p][k])) p = i;
      if (p !== k) [u[p], u[k], d] = [u[k], u[p], -d];
      d *= u[k][k];
      for (let i = k + 1; i < n; i++) {
        const f = u[i][k] / u[k][k];
        for (let j = k; j < n; j++) u[i][j] -= f * u[k][j];
      }
    }
    return d;
  };
  const expected: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const p = a.map((r) => [...r]), m = a.map((r) => [...r]);
      p[i][j] += 1e-6;
      m[i][j] -= 1e-6;
      expected.push((detRef(p) - detRef(m)) / 2e-6);
    }
  }
  const g = grad((m: Tensor) => det(m))(tensor(a, opts));
  assertClose(await g.data(), expected, { rtol: b.dtype === "f64" ? 1e-7 : 1e-4, atol: 1e-6 });
});

testAll("the boundary rules leave nothing behind", (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const x = tensor([[1, 2], [2, 4]], opts);
  const base = memory();
  tidy(() => {
    grad((m: Tensor) => det(m))(x);
    hvp((z) => sum(pow(z, 3)), x, x);
  });
  const after = memory();
  assert.equal(after.tensors, base.tensors);
  x.dispose();
});
