/**
 * The interior-point method's Newton step against an independent dense solve: the full,
 * unreduced primal-dual system (Wächter & Biegler 2006, eq. 11 with slacks and bounds) is
 * assembled in plain f64 JavaScript from hand-derived derivatives of a chain problem and
 * solved by Gaussian elimination; the library's condensed step (banded K, inequalities
 * condensed, equalities by the Schur complement) must give the same (dx, ds, dy, dλ, dz,
 * dz_L, dz_U), with banded storage and with the dense path. Also: option validation.
 */
import assert from "node:assert/strict";
import { concat, memory, minimize, type Tensor, tensor } from "../mod.ts";
import { assertClose, assertNoLeak, cpu, gpuDev, rng } from "./helpers.ts";
import { ConstrainedProblem } from "../src/optim/ipm/problem.ts";
import { boundSet, disposeBounds, type Iterate } from "../src/optim/ipm/barrier.ts";
import { condensedStorage } from "../src/optim/ipm/kkt.ts";
import { roundingFloor } from "../src/optim/ipm/initial.ts";
import {
  disposeDirection,
  disposeLinearization,
  linearize,
  residuals,
  searchDirection,
} from "../src/optim/ipm/direction.ts";
import { readScalars } from "../src/optim/objective.ts";

const n = 10;

// f = Σ (x_{i+1} − x_i)² + Σ x_i⁴ / 12 + 0.3 Σ x_i x_{i+2}: bandwidth 2
const f = (x: Tensor) => {
  const d = x.slice([1], [n]).sub(x.slice([0], [n - 1]));
  return d.square().sum().add(x.pow(4).sum().div(12))
    .add(x.slice([0], [n - 2]).mul(x.slice([2], [n])).sum().mul(0.3));
};
// c_E = [x₀ + x₁ − 1, x_{n−1}² − 0.5]; c_I,i = 2 − x_i² − x_{i+1}² (i < n − 1)
const eq = (x: Tensor) =>
  concat([x.slice([0], [2]).sum().sub(1).reshape([1]), x.slice([n - 1], [n]).square().sub(0.5)]);
const ineq = (x: Tensor) =>
  x.slice([0], [n - 1]).square().add(x.slice([1], [n]).square()).neg().add(2);

/** The same problem's derivatives by hand. */
function plain(x: number[]) {
  const g = new Array(n).fill(0);
  const H = Array.from({ length: n }, () => new Array(n).fill(0));
  for (let i = 0; i < n - 1; i++) {
    const d = x[i + 1] - x[i];
    g[i + 1] += 2 * d;
    g[i] -= 2 * d;
    H[i][i] += 2;
    H[i + 1][i + 1] += 2;
    H[i][i + 1] -= 2;
    H[i + 1][i] -= 2;
  }
  for (let i = 0; i < n; i++) {
    g[i] += x[i] ** 3 / 3;
    H[i][i] += x[i] ** 2;
  }
  for (let i = 0; i < n - 2; i++) {
    g[i] += 0.3 * x[i + 2];
    g[i + 2] += 0.3 * x[i];
    H[i][i + 2] += 0.3;
    H[i + 2][i] += 0.3;
  }
  const cE = [x[0] + x[1] - 1, x[n - 1] ** 2 - 0.5];
  const JE = [new Array(n).fill(0), new Array(n).fill(0)];
  JE[0][0] = JE[0][1] = 1;
  JE[1][n - 1] = 2 * x[n - 1];
  const cI = Array.from({ length: n - 1 }, (_, i) => 2 - x[i] ** 2 - x[i + 1] ** 2);
  const JI = cI.map((_, i) => {
    const row = new Array(n).fill(0);
    row[i] = -2 * x[i];
    row[i + 1] = -2 * x[i + 1];
    return row;
  });
  return { g, H, cE, JE, cI, JI };
}

/** Gaussian elimination with partial pivoting (f64). */
function denseSolve(A: number[][], b: number[]): number[] {
  const m = b.length;
  const M = A.map((r, i) => [...r, b[i]]);
  for (let c = 0; c < m; c++) {
    let p = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = c + 1; r < m; r++) {
      const t = M[r][c] / M[c][c];
      for (let k = c; k <= m; k++) M[r][k] -= t * M[c][k];
    }
  }
  const x = new Array(m).fill(0);
  for (let r = m - 1; r >= 0; r--) {
    let s = M[r][m];
    for (let k = r + 1; k < m; k++) s -= M[r][k] * x[k];
    x[r] = s / M[r][r];
  }
  return x;
}

/** The unreduced primal-dual step: unknowns (dx, ds, dy, dλ, dz, dz_L, dz_U). */
function referenceStep(
  x: number[],
  s: number[],
  y: number[],
  lam: number[],
  z: number[],
  zl: number[],
  zu: number[],
  lo: number[],
  up: number[],
  mu: number,
) {
  const { g, H, cE, JE, cI, JI } = plain(x);
  const mE = 2, mI = n - 1;
  // W = ∇²f − Σ y_j ∇²c_E,j − Σ λ_i ∇²c_I,i (∇²c_E,1 = 2 e eᵀ at n−1; ∇²c_I,i = −2 at i, i+1)
  const W = H.map((r) => [...r]);
  W[n - 1][n - 1] -= 2 * y[1];
  for (let i = 0; i < mI; i++) {
    W[i][i] += 2 * lam[i];
    W[i + 1][i + 1] += 2 * lam[i];
  }
  const N = n + mI + mE + mI + mI + n + n;
  const A = Array.from({ length: N }, () => new Array(N).fill(0));
  const rhs = new Array(N).fill(0);
  const X = 0, S = n, Y = n + mI, M = Y + mE, Z = M + mI, L = Z + mI, U = L + n;
  for (let i = 0; i < n; i++) {
    // W dx − J_Eᵀ dy − J_Iᵀ dλ − dz_L + dz_U = −∇_x L
    for (let j = 0; j < n; j++) A[X + i][X + j] = W[i][j];
    for (let k = 0; k < mE; k++) A[X + i][Y + k] = -JE[k][i];
    for (let k = 0; k < mI; k++) A[X + i][M + k] = -JI[k][i];
    A[X + i][L + i] = -1;
    A[X + i][U + i] = 1;
    let r = g[i] - zl[i] + zu[i];
    for (let k = 0; k < mE; k++) r -= y[k] * JE[k][i];
    for (let k = 0; k < mI; k++) r -= lam[k] * JI[k][i];
    rhs[X + i] = -r;
    // Z_L dx + (x − x_L) dz_L = μ − (x − x_L) z_L;  −Z_U dx + (x_U − x) dz_U = μ − (x_U − x) z_U
    A[L + i][X + i] = zl[i];
    A[L + i][L + i] = x[i] - lo[i];
    rhs[L + i] = mu - (x[i] - lo[i]) * zl[i];
    if (up[i] === Infinity) {
      A[U + i][U + i] = 1; // no upper bound: dz_U = 0
    } else {
      A[U + i][X + i] = -zu[i];
      A[U + i][U + i] = up[i] - x[i];
      rhs[U + i] = mu - (up[i] - x[i]) * zu[i];
    }
  }
  for (let k = 0; k < mE; k++) {
    for (let j = 0; j < n; j++) A[Y + k][X + j] = JE[k][j];
    rhs[Y + k] = -cE[k];
  }
  for (let k = 0; k < mI; k++) {
    // dλ − dz = −(λ − z)  (the slacks' stationarity)
    A[M + k][M + k] = 1;
    A[M + k][Z + k] = -1;
    rhs[M + k] = -(lam[k] - z[k]);
  }
  for (let k = 0; k < mI; k++) {
    // J_I dx − ds = −(c_I − s);  Z ds + S dz = μ − S z
    for (let j = 0; j < n; j++) A[S + k][X + j] = JI[k][j];
    A[S + k][S + k] = -1;
    rhs[S + k] = -(cI[k] - s[k]);
    A[Z + k][S + k] = z[k];
    A[Z + k][Z + k] = s[k];
    rhs[Z + k] = mu - s[k] * z[k];
  }
  const d = denseSolve(A, rhs);
  return {
    dx: d.slice(X, X + n),
    ds: d.slice(S, S + mI),
    dy: d.slice(Y, Y + mE),
    dlam: d.slice(M, M + mI),
    dz: d.slice(Z, Z + mI),
    dzl: d.slice(L, L + n),
    dzu: d.slice(U, U + n),
  };
}

for (const bandwidth of [2, null]) {
  const dev = gpuDev ?? cpu;
  for (const [dtype, device] of [["f64", cpu], ["f32", dev]] as const) {
    Deno.test(`ipm: the ${bandwidth === null ? "dense" : "banded"} condensed step equals a dense solve of the full primal-dual system [${device.kind}-${dtype}]`, async () => {
      const base = memory();
      const rand = rng(7);
      const x = Array.from({ length: n }, () => 0.6 * (rand() - 0.5));
      const s = Array.from({ length: n - 1 }, () => 0.2 + rand());
      const y = [0.3, -0.7];
      const z = Array.from({ length: n - 1 }, () => 0.1 + rand());
      const lam = z.map((v) => v + 0.3 * (rand() - 0.5)); // λ ≠ z away from a solution
      const lo = new Array(n).fill(-2), up = x.map((_, i) => (i % 3 === 0 ? 1.5 : Infinity));
      const zl = x.map(() => 0.1 + rand()), zu = up.map((u) => (u === Infinity ? 0 : 0.1 + rand()));
      const mu = 0.1;
      const ref = referenceStep(x, s, y, lam, z, zl, zu, lo, up, mu);

      const o = { dtype, device } as const;
      const xt = tensor(x, o);
      const prob = new ConstrainedProblem(f, eq, ineq, [n]);
      const upT = tensor(up, o);
      const b = await boundSet({ lower: -2, upper: upT }, xt);
      upT.dispose();
      const ev = prob.evaluate(xt);
      const it: Iterate = {
        x: xt,
        s: tensor(s, o),
        y: tensor(y, o),
        lam: tensor(lam, o),
        z: tensor(z, o),
        zL: tensor(zl, o),
        zU: tensor(zu, o),
        ev,
        f: 0,
        theta: 0,
        barrier: 0,
      };
      const storage = condensedStorage(bandwidth, n);
      const lin = await linearize(prob, it, b, storage, mu, readScalars);
      const r = residuals(prob, it);
      const d = await searchDirection(
        prob,
        it,
        lin,
        b,
        mu,
        0.99,
        r,
        { lastDeltaW: 0 },
        readScalars,
      );
      assert.ok(d, "a direction");
      assert.equal(d.deltaW, 0, "this K is positive definite: no shift");
      // f32: the condensed matrix's entries are O(10) and the step O(1): ~1e-5 relative
      const tol = dtype === "f64" ? { rtol: 1e-9, atol: 1e-11 } : { rtol: 2e-3, atol: 2e-4 };
      assertClose(await d.dx.data(), ref.dx, { ...tol, msg: "dx" });
      assertClose(await d.ds!.data(), ref.ds, { ...tol, msg: "ds" });
      assertClose(await d.dy!.data(), ref.dy, { ...tol, msg: "dy" });
      assertClose(await d.dlam!.data(), ref.dlam, { ...tol, msg: "dλ" });
      assertClose(await d.dz!.data(), ref.dz, { ...tol, msg: "dz" });
      assertClose(await d.dzL!.data(), ref.dzl, { ...tol, msg: "dz_L" });
      assertClose(await d.dzU!.data(), ref.dzu, { ...tol, msg: "dz_U" });
      disposeDirection(d);
      disposeLinearization(lin);
      r.cE?.dispose();
      r.rI?.dispose();
      for (const t of [it.x, it.s, it.y, it.lam, it.z, it.zL, it.zU, ev.values]) t?.dispose();
      ev.back.dispose();
      disposeBounds(b);
      assertNoLeak(base, "kkt");
    });
  }
}

for (const bandwidth of [2, null]) {
  for (const dtype of ["f64", "f32"] as const) {
    Deno.test(`ipm: the rounding floor is ε ‖∇²f‖∞ max(1, ‖x‖∞) with ∇²f by hand [${bandwidth === null ? "dense" : "banded"}, cpu-${dtype}]`, async () => {
      const base = memory();
      const rand = rng(11);
      for (const scale of [0.6, 5]) {
        const x = Array.from({ length: n }, () => scale * (rand() - 0.5));
        const xt = tensor(x, { dtype, device: cpu });
        const prob = new ConstrainedProblem(f, eq, ineq, [n]);
        const ev = prob.evaluate(xt); // the constraints' sizes become known here, as in ipm
        const got = await roundingFloor(prob, xt, condensedStorage(bandwidth, n), readScalars);
        const { H } = plain(Array.from(await xt.data()));
        const norm = Math.max(...H.map((row) => row.reduce((a, v) => a + Math.abs(v), 0)));
        const eps = dtype === "f64" ? 2 ** -52 : 2 ** -23;
        const want = eps * norm * Math.max(1, ...x.map(Math.abs));
        // f32: the Hessian's entries themselves carry rounding (x² at |x| ≤ 2.5)
        assertClose([got], [want], { rtol: dtype === "f64" ? 1e-12 : 1e-5 });
        xt.dispose();
        ev.values.dispose();
        ev.back.dispose();
      }
      assertNoLeak(base, "roundingFloor");
    });
  }
}

Deno.test("ipm: options are validated (unknown keys suggest the right spelling)", async () => {
  const x0 = tensor([1, 2], { dtype: "f64" });
  const obj = (x: Tensor) => x.square().sum();
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ method: "ipm", maxiter: 5 }, /unknown option "maxiter"; did you mean "maxIter"/],
    [{ method: "ipm", constraints: { equality: obj } }, /constraints: unknown option "equality"/],
    [{ method: "ipm", bounds: { lower_bound: 0 } }, /did you mean "lower"/],
    [{ method: "ipm", constraints: { eq: 3 } }, /constraints.eq must be a function/],
    [{ method: "ipm", bounds: { lower: tensor([0, 0, 0]) } }, /bounds.lower has shape \[3\]/],
    [{ method: "ipm", bounds: { lower: 2, upper: 1 } }, /exceeds bounds.upper/],
    [{ method: "ipm", bandwidth: 5 }, /bandwidth 5 is out of range for n = 2/],
    [{ method: "ipm", gtol: -1 }, /gtol must be > 0/],
    [
      { method: "ipm", constraints: { eq: (x: Tensor) => x.sum().reshape([1, 1]) } },
      /must return a 1-D tensor/,
    ],
  ];
  for (const [opts, msg] of bad) {
    await assert.rejects(
      () => minimize(obj, x0, opts as unknown as Parameters<typeof minimize>[2]),
      msg,
      JSON.stringify(Object.keys(opts)),
    );
  }
  x0.dispose();
});

Deno.test("ipm: onIteration sees violation, complementarity, KKT error and μ; returning false stops", async () => {
  const x0 = tensor([0.1, 0.1], { dtype: "f64" });
  const seen: number[][] = [];
  // the point of the unit disc nearest (2, 2)
  const r = await minimize((x: Tensor) => x.sub(2).square().sum(), x0, {
    method: "ipm",
    constraints: { ineq: (x: Tensor) => x.square().sum().neg().add(1).reshape([1]) },
    onIteration: (i) => {
      seen.push([i.iteration, i.constraintViolation!, i.complementarity!, i.kktResidual!, i.mu!]);
      return i.iteration < 3;
    },
  });
  assert.equal(seen.length, 4, JSON.stringify(seen));
  assert.ok(seen.every((v) => v.every(Number.isFinite)));
  assert.equal(r.converged, false);
  assert.match(r.message, /onIteration/);
  assert.ok(seen.every((v) => v[1] >= 0 && v[2] >= 0 && v[3] >= v[1] && v[4] > 0));
  r.x.dispose();
  r.jac.dispose();
  for (const t of Object.values(r.multipliers!)) t.dispose();
  x0.dispose();
});

Deno.test("ipm: without bandwidth the band is detected from the sparsity pattern; dense where none pays", async () => {
  const x0 = tensor(Array.from({ length: n }, (_, i) => 0.3 + 0.05 * i), { dtype: "f64" });
  // by hand: f couples x_i with x_{i+2}, c_I with x_{i+1}, c_E's x₀ + x₁ is linear: b = 2
  assert.equal(new ConstrainedProblem(f, eq, ineq, [n]).detectBandwidth(x0), 2);
  // one far coupling (x₀ x_{n−1} in a constraint) makes J_Iᵀ J_I dense
  const far = (x: Tensor) => concat([ineq(x), x.slice([0], [1]).mul(x.slice([n - 1], [n])).add(3)]);
  assert.equal(new ConstrainedProblem(f, eq, far, [n]).detectBandwidth(x0), n - 1);
  const solve = (bandwidth?: number) =>
    minimize(f, x0, { method: "ipm", constraints: { eq, ineq }, bandwidth });
  const [auto, banded, dense] = [await solve(), await solve(2), await solve(n - 1)];
  assert.ok(auto.converged && banded.converged && dense.converged, auto.message);
  // the detected band takes 2b + 1 = 5 probes per Hessian, as bandwidth: 2 does; dense takes n
  assert.equal(auto.nhvp, banded.nhvp);
  assert.equal(auto.iterations, banded.iterations);
  assert.ok(dense.nhvp! > auto.nhvp!, `dense ${dense.nhvp}, detected ${auto.nhvp}`);
  assertClose(await auto.x.data(), await dense.x.data(), { atol: 1e-7, rtol: 0 });
  for (const r of [auto, banded, dense]) {
    r.x.dispose();
    r.jac.dispose();
    for (const t of Object.values(r.multipliers!)) t.dispose();
  }
  x0.dispose();
});
