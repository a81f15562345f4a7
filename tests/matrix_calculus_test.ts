/**
 * Autodiff against closed-form matrix calculus. Every expected value below is a formula
 * derived by hand (the derivation is the one-line comment beside it) and evaluated with the
 * plain-JS f64 helpers of this file; the library's transforms are only the thing under test.
 * Gradients, Hessians (dense, or as Hessian-vector products where the Hessian is a 4-tensor)
 * and Jacobians are checked at fixed inputs on every backend: f64 on the CPU to 1e-10 and f32
 * (CPU and WebGPU) to 1e-4, both as max |error| / max |expected|. All inputs are dyadic
 * (exact in f32), so f32 and f64 runs see the same point.
 */
import assert from "node:assert/strict";
import {
  det,
  eye,
  grad,
  hessian,
  hvp,
  inv,
  jacobian,
  log,
  logdet,
  max,
  memory,
  stopGradient,
  type Tensor,
  tensor,
  tidy,
  trace,
} from "../mod.ts";
import { assertNoLeak, type Backend, testAll } from "./helpers.ts";

// ---------- plain-JS f64 matrix helpers (the reference arithmetic) ----------

type Vec = number[];
type Mat = number[][];
type Nested = number | Vec | Mat;

const T = (a: Mat): Mat => a[0].map((_, j) => a.map((r) => r[j]));
const mm = (a: Mat, b: Mat): Mat =>
  a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const mv = (a: Mat, x: Vec): Vec => a.map((r) => r.reduce((s, v, k) => s + v * x[k], 0));
const dotv = (a: Vec, b: Vec): number => a.reduce((s, v, i) => s + v * b[i], 0);
const addM = (a: Mat, b: Mat): Mat => a.map((r, i) => r.map((v, j) => v + b[i][j]));
const subM = (a: Mat, b: Mat): Mat => a.map((r, i) => r.map((v, j) => v - b[i][j]));
const scaleM = (a: Mat, s: number): Mat => a.map((r) => r.map((v) => v * s));
const addV = (a: Vec, b: Vec): Vec => a.map((v, i) => v + b[i]);
const subV = (a: Vec, b: Vec): Vec => a.map((v, i) => v - b[i]);
const scaleV = (a: Vec, s: number): Vec => a.map((v) => v * s);
const outer = (a: Vec, b: Vec): Mat => a.map((u) => b.map((v) => u * v));
const eyeM = (n: number): Mat =>
  Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
const diagM = (d: Vec): Mat => d.map((v, i) => d.map((_, j) => (i === j ? v : 0)));
const trM = (a: Mat): number => a.reduce((s, r, i) => s + r[i], 0);
const frob = (a: Mat, b: Mat): number => a.reduce((s, r, i) => s + dotv(r, b[i]), 0);
const sigm = (z: number): number => 1 / (1 + Math.exp(-z));

/** Gauss-Jordan inverse with partial pivoting. */
function invM(a: Mat): Mat {
  const n = a.length;
  const m = a.map((r, i) => [...r, ...eyeM(n)[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    const d = m[c][c];
    m[c] = m[c].map((v) => v / d);
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r][c];
      m[r] = m[r].map((v, j) => v - f * m[c][j]);
    }
  }
  return m.map((r) => r.slice(n));
}

/** Determinant by elimination with partial pivoting. */
function detM(a: Mat): number {
  const m = a.map((r) => [...r]);
  const n = m.length;
  let d = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    if (p !== c) {
      [m[c], m[p]] = [m[p], m[c]];
      d = -d;
    }
    d *= m[c][c];
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / m[c][c];
      m[r] = m[r].map((v, j) => v - f * m[c][j]);
    }
  }
  return d;
}

/** Dense Hessian [n, n, n, n] of a matrix argument from a closed-form HVP V ↦ H[V]. */
function hessOfMat(n: number, hv: (v: Mat) => Mat): number[] {
  const out: number[] = [];
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      const e = eyeM(n).map((r, i) => r.map((_, j) => (i === a && j === b ? 1 : 0)));
      out.push(...hv(e).flat());
    }
  }
  return out;
}

/** max |actual − expected| / max |expected| (absolute when the expected values are all 0). */
function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, "length mismatch");
  let err = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
    if (Number.isNaN(actual[i])) return Infinity;
  }
  return err / (scale || 1);
}

async function check(t: Tensor, expected: number[], shape: number[], tol: number, what: string) {
  assert.deepEqual(t.shape, shape, `${what}: shape`);
  const e = relErr(await t.data(), expected);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(3)} > ${tol}`);
}

// ---------- fixed inputs (dyadic, so exact in f32) ----------

const x4: Vec = [0.5, -0.25, 0.75, 1];
const b4: Vec = [0.25, -0.5, 0.125, 1];
const c4: Vec = [1.5, -2, 0.25, 0.75];
/** Non-symmetric, well conditioned. */
const A4: Mat = [
  [1.5, 0.25, -0.5, 0.125],
  [0.5, 2, 0.25, -0.25],
  [-0.25, 0.75, 1.25, 0.5],
  [0.375, -0.125, 0.5, 1.75],
];
/** Symmetric, diagonally dominant with a positive diagonal: SPD. */
const S4: Mat = [
  [2, 0.5, 0.25, 0],
  [0.5, 1.5, 0.25, 0.125],
  [0.25, 0.25, 1.75, 0.5],
  [0, 0.125, 0.5, 2],
];
/** 5 × 4 data matrix (rows aᵢ) and binary labels. */
const D54: Mat = [
  [0.5, -1, 0.25, 1.5],
  [1, 0.5, -0.75, 0.25],
  [-0.5, 0.25, 1, -1],
  [0.75, 1.25, 0.5, -0.25],
  [-1, -0.5, 0.25, 0.5],
];
const y5: Vec = [1, 0, 1, 1, 0];
/** 3 × 4 for a rectangular Jacobian. */
const R34: Mat = [[1, -0.5, 0.25, 2], [0.5, 1.5, -1, 0.125], [-0.75, 0.25, 0.5, 1]];
/** 3 × 3 matrices: X diagonally dominant with det > 0; V a direction. */
const X3: Mat = [[2, 0.5, -0.25], [0.25, 1.5, 0.5], [-0.5, 0.25, 1.75]];
const V3: Mat = [[0.5, -0.25, 1], [0.75, 0.125, -0.5], [-1, 0.25, 0.375]];
const W3: Mat = [[-0.25, 1, 0.5], [0.125, -0.75, 0.25], [1, 0.5, -0.5]];
const P3: Mat = [[1, 0.25, -0.5], [0.5, -1, 0.75], [0.25, 0.5, 1.25]];
const Q3: Mat = [[0.5, -0.75, 0.25], [1, 0.25, -0.5], [-0.25, 1.5, 0.75]];
/** Softmax regression: 4 samples × 3 features, one-hot labels over 3 classes, weights [3, 3]. */
const F43: Mat = [[0.5, -1, 0.25], [1, 0.5, -0.75], [-0.5, 0.25, 1], [0.75, 1.25, 0.5]];
const Y43: Mat = [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]];

// ---------- the cases ----------

type Consts = Record<string, Tensor>;

interface Case {
  name: string;
  x: Nested;
  consts?: Record<string, Nested>;
  f: (x: Tensor, c: Consts) => Tensor;
  /** closed-form gradient, flattened */
  grad?: () => number[];
  /** closed-form Hessian [...x.shape, ...x.shape], flattened */
  hess?: () => number[];
  /** closed-form Hessian-vector products (v of x's shape; also run as one batched probe) */
  hvps?: { v: Mat; expect: () => number[] }[];
}

const logSumExp = (z: Tensor, axis?: number): Tensor => {
  const m = stopGradient(max(z, axis, true));
  return z.sub(m).exp().sum(axis, true).log().add(m);
};

const CASES: Case[] = [
  {
    name: "cᵀx",
    x: x4,
    consts: { c: c4 },
    f: (x, { c }) => c.mul(x).sum(),
    grad: () => c4, // ∇ cᵀx = c
    hess: () => new Array(16).fill(0), // linear: H = 0
  },
  {
    name: "½xᵀAx + bᵀx, A non-symmetric",
    x: x4,
    consts: { A: A4, b: b4 },
    f: (x, { A, b }) => x.dot(A.matmul(x)).mul(0.5).add(b.dot(x)),
    grad: () => addV(mv(scaleM(addM(A4, T(A4)), 0.5), x4), b4), // ∇ = ½(A + Aᵀ)x + b
    hess: () => scaleM(addM(A4, T(A4)), 0.5).flat(), // H = ½(A + Aᵀ)
  },
  {
    name: "−exp(−xᵀx)",
    x: x4,
    f: (x) => x.dot(x).neg().exp().neg(),
    grad: () => scaleV(x4, 2 * Math.exp(-dotv(x4, x4))), // ∇ = 2x e^{−s}, s = xᵀx
    // H = e^{−s}(2I − 4xxᵀ)
    hess: () =>
      scaleM(subM(scaleM(eyeM(4), 2), scaleM(outer(x4, x4), 4)), Math.exp(-dotv(x4, x4))).flat(),
  },
  {
    name: "½‖Ax − b‖²",
    x: x4,
    consts: { A: A4, b: b4 },
    f: (x, { A, b }) => A.matmul(x).sub(b).square().sum().mul(0.5),
    grad: () => mv(T(A4), subV(mv(A4, x4), b4)), // ∇ = Aᵀ(Ax − b)
    hess: () => mm(T(A4), A4).flat(), // H = AᵀA
  },
  {
    name: "‖x‖₂",
    x: x4,
    f: (x) => x.square().sum().sqrt(),
    grad: () => scaleV(x4, 1 / Math.sqrt(dotv(x4, x4))), // ∇ = x / r
    hess: () => {
      const r = Math.sqrt(dotv(x4, x4)); // H = (I − xxᵀ/r²) / r
      return scaleM(subM(eyeM(4), scaleM(outer(x4, x4), 1 / r ** 2)), 1 / r).flat();
    },
  },
  {
    name: "‖Ax‖₂",
    x: x4,
    consts: { A: A4 },
    f: (x, { A }) => A.matmul(x).square().sum().sqrt(),
    grad: () => {
      const g = mv(T(A4), mv(A4, x4)); // ∇ = AᵀAx / r, r = ‖Ax‖
      return scaleV(g, 1 / Math.sqrt(dotv(mv(A4, x4), mv(A4, x4))));
    },
    hess: () => {
      const r = Math.sqrt(dotv(mv(A4, x4), mv(A4, x4)));
      const g = mv(T(A4), mv(A4, x4)); // H = AᵀA/r − (AᵀAx)(AᵀAx)ᵀ/r³
      return subM(scaleM(mm(T(A4), A4), 1 / r), scaleM(outer(g, g), 1 / r ** 3)).flat();
    },
  },
  {
    name: "−1/(1 + xᵀx)",
    x: x4,
    f: (x) => x.dot(x).add(1).reciprocal().neg(),
    grad: () => scaleV(x4, 2 / (1 + dotv(x4, x4)) ** 2), // ∇ = 2x / (1+s)²
    hess: () => {
      const s = 1 + dotv(x4, x4); // H = 2I/(1+s)² − 8xxᵀ/(1+s)³
      return subM(scaleM(eyeM(4), 2 / s ** 2), scaleM(outer(x4, x4), 8 / s ** 3)).flat();
    },
  },
  {
    name: "log(xᵀAx), A SPD",
    x: x4,
    consts: { A: S4 },
    f: (x, { A }) => log(x.dot(A.matmul(x))),
    grad: () => scaleV(mv(S4, x4), 2 / dotv(x4, mv(S4, x4))), // ∇ = 2Ax / q, q = xᵀAx
    hess: () => {
      const q = dotv(x4, mv(S4, x4)), ax = mv(S4, x4); // H = 2A/q − 4(Ax)(Ax)ᵀ/q²
      return subM(scaleM(S4, 2 / q), scaleM(outer(ax, ax), 4 / q ** 2)).flat();
    },
  },
  {
    name: "ln⟨Ax, x⟩, A non-symmetric",
    x: x4,
    consts: { A: A4 },
    f: (x, { A }) => log(A.matmul(x).dot(x)),
    grad: () => scaleV(mv(addM(A4, T(A4)), x4), 1 / dotv(mv(A4, x4), x4)), // ∇ = (A+Aᵀ)x / q
    hess: () => {
      const q = dotv(mv(A4, x4), x4), B = addM(A4, T(A4)), bx = mv(B, x4);
      return subM(scaleM(B, 1 / q), scaleM(outer(bx, bx), 1 / q ** 2)).flat(); // H = B/q − Bx(Bx)ᵀ/q²
    },
  },
  {
    name: "ln(1 + exp⟨a, x⟩)",
    x: x4,
    consts: { a: c4 },
    f: (x, { a }) => a.dot(x).exp().log1p(),
    grad: () => scaleV(c4, sigm(dotv(c4, x4))), // ∇ = σ(aᵀx) a
    hess: () => {
      const s = sigm(dotv(c4, x4)); // H = σ(1 − σ) aaᵀ
      return scaleM(outer(c4, c4), s * (1 - s)).flat();
    },
  },
  {
    name: "⅓‖x‖³",
    x: x4,
    f: (x) => x.square().sum().sqrt().pow(3).div(3),
    grad: () => scaleV(x4, Math.sqrt(dotv(x4, x4))), // ∇ = r x
    hess: () => {
      const r = Math.sqrt(dotv(x4, x4)); // H = r I + xxᵀ / r
      return addM(scaleM(eyeM(4), r), scaleM(outer(x4, x4), 1 / r)).flat();
    },
  },
  {
    name: "Rayleigh quotient ⟨Ax, x⟩ / ‖x‖²",
    x: x4,
    consts: { A: A4 },
    f: (x, { A }) => A.matmul(x).dot(x).div(x.dot(x)),
    grad: () => {
      const q = dotv(mv(A4, x4), x4), s = dotv(x4, x4), B = addM(A4, T(A4));
      return subV(scaleV(mv(B, x4), 1 / s), scaleV(x4, (2 * q) / s ** 2)); // ∇ = Bx/s − 2qx/s², B = A+Aᵀ
    },
    hess: () => {
      const q = dotv(mv(A4, x4), x4), s = dotv(x4, x4), B = addM(A4, T(A4)), bx = mv(B, x4);
      // H = B/s − 2(Bx xᵀ + x (Bx)ᵀ)/s² − 2qI/s² + 8q xxᵀ/s³
      let h = scaleM(B, 1 / s);
      h = subM(h, scaleM(addM(outer(bx, x4), outer(x4, bx)), 2 / s ** 2));
      h = subM(h, scaleM(eyeM(4), (2 * q) / s ** 2));
      return addM(h, scaleM(outer(x4, x4), (8 * q) / s ** 3)).flat();
    },
  },
  {
    name: "½‖A − xxᵀ‖²_F, A non-symmetric",
    x: x4,
    consts: { A: A4 },
    f: (x, { A }) => {
      const xc = x.reshape([4, 1]);
      return A.sub(xc.matmul(xc.transpose())).square().sum().mul(0.5);
    },
    // ∇ = −(A + Aᵀ)x + 2‖x‖²x
    grad: () => addV(scaleV(mv(addM(A4, T(A4)), x4), -1), scaleV(x4, 2 * dotv(x4, x4))),
    // H = −(A + Aᵀ) + 2‖x‖²I + 4xxᵀ
    hess: () =>
      addM(
        addM(scaleM(addM(A4, T(A4)), -1), scaleM(eyeM(4), 2 * dotv(x4, x4))),
        scaleM(outer(x4, x4), 4),
      ).flat(),
  },
  {
    name: "log-sum-exp(Ax + b)",
    x: x4,
    consts: { A: A4, b: b4 },
    f: (x, { A, b }) => logSumExp(A.matmul(x).add(b)).reshape([]),
    grad: () => mv(T(A4), softmax(addV(mv(A4, x4), b4))), // ∇ = Aᵀp, p = softmax(Ax + b)
    hess: () => {
      const p = softmax(addV(mv(A4, x4), b4)); // H = Aᵀ(diag p − ppᵀ)A
      return mm(mm(T(A4), subM(diagM(p), outer(p, p))), A4).flat();
    },
  },
  {
    name: "binary logistic regression loss (1/m)Σ[log(1 + e^{zᵢ}) − yᵢzᵢ], z = Dw",
    x: x4,
    consts: { D: D54, y: y5 },
    f: (w, { D, y }) => {
      const z = D.matmul(w);
      return z.exp().log1p().sub(y.mul(z)).mean();
    },
    grad: () => {
      const s = mv(D54, x4).map(sigm); // ∇ = Dᵀ(σ(z) − y) / m
      return scaleV(mv(T(D54), subV(s, y5)), 1 / 5);
    },
    hess: () => {
      const s = mv(D54, x4).map(sigm); // H = Dᵀ diag(σ(1−σ)) D / m
      return scaleM(mm(mm(T(D54), diagM(s.map((v) => v * (1 - v)))), D54), 1 / 5).flat();
    },
  },
  {
    name: "(1/n)Σ log(1 + exp(aᵢᵀx)) + μ/2‖x‖², stable softplus",
    x: x4,
    consts: { D: D54 },
    f: (x, { D }) => {
      const z = D.matmul(x); // softplus(z) = max(z, 0) + log1p(e^{−|z|})
      const sp = z.maximum(0).add(z.abs().neg().exp().log1p());
      return sp.mean().add(x.dot(x).mul(0.125 / 2));
    },
    grad: () => {
      const s = mv(D54, x4).map(sigm); // ∇ = Dᵀσ(Dx)/n + μx, μ = 1/8
      return addV(scaleV(mv(T(D54), s), 1 / 5), scaleV(x4, 0.125));
    },
    hess: () => {
      const s = mv(D54, x4).map(sigm); // H = Dᵀ diag(σ(1−σ)) D / n + μI
      const h = scaleM(mm(mm(T(D54), diagM(s.map((v) => v * (1 - v)))), D54), 1 / 5);
      return addM(h, scaleM(eyeM(4), 0.125)).flat();
    },
  },
  {
    name: "softmax regression loss (1/m)Σ[lse(xᵢᵀW) − yᵢᵀWᵀxᵢ]",
    x: W3,
    consts: { F: F43, Y: Y43 },
    f: (W, { F, Y }) => {
      const z = F.matmul(W);
      return logSumExp(z, 1).sub(Y.mul(z).sum(1, true)).mean();
    },
    grad: () => scaleM(mm(T(F43), subM(softmaxRows(mm(F43, W3)), Y43)), 1 / 4).flat(), // ∇ = Fᵀ(P − Y)/m
    // H[V] = Fᵀ dP / m with dPᵢ = (diag pᵢ − pᵢpᵢᵀ)(Vᵀfᵢ)
    hess: () =>
      hessOfMat(3, (V) => {
        const P = softmaxRows(mm(F43, W3));
        const dP = F43.map((f, i) => mv(subM(diagM(P[i]), outer(P[i], P[i])), mv(T(V), f)));
        return scaleM(mm(T(F43), dP), 1 / 4);
      }),
  },
  {
    name: "tr(AX)",
    x: X3,
    consts: { A: P3 },
    f: (X, { A }) => trace(A.matmul(X)),
    grad: () => T(P3).flat(), // ∇ tr(AX) = Aᵀ
    hess: () => new Array(81).fill(0), // linear: H = 0
  },
  {
    name: "det X",
    x: X3,
    f: (X) => det(X),
    grad: () => scaleM(T(invM(X3)), detM(X3)).flat(), // ∇ = det(X) X⁻ᵀ
    // H[V] = det X (tr(X⁻¹V) X⁻ᵀ − X⁻ᵀVᵀX⁻ᵀ)
    hess: () => hessOfMat(3, (V) => detHvp(X3, V)),
    hvps: [{ v: V3, expect: () => detHvp(X3, V3).flat() }, {
      v: W3,
      expect: () => detHvp(X3, W3).flat(),
    }],
  },
  {
    name: "log det X",
    x: X3,
    f: (X) => logdet(X),
    grad: () => T(invM(X3)).flat(), // ∇ = X⁻ᵀ
    hess: () => hessOfMat(3, (V) => logdetHvp(X3, V)), // H[V] = −X⁻ᵀVᵀX⁻ᵀ
    hvps: [
      { v: V3, expect: () => logdetHvp(X3, V3).flat() },
      { v: W3, expect: () => logdetHvp(X3, W3).flat() },
    ],
  },
  {
    name: "⟨S, X⟩ − log det X",
    x: X3,
    consts: { S: P3 },
    f: (X, { S }) => S.mul(X).sum().sub(logdet(X)),
    grad: () => subM(P3, T(invM(X3))).flat(), // ∇ = S − X⁻ᵀ
    hess: () => hessOfMat(3, (V) => scaleM(logdetHvp(X3, V), -1)), // H[V] = X⁻ᵀVᵀX⁻ᵀ
    hvps: [{ v: V3, expect: () => scaleM(logdetHvp(X3, V3), -1).flat() }],
  },
  {
    name: "tr(X⁻¹)",
    x: X3,
    f: (X) => trace(inv(X)),
    grad: () => scaleM(T(mm(invM(X3), invM(X3))), -1).flat(), // ∇ = −(X⁻²)ᵀ
    // H[V] = X⁻ᵀVᵀX⁻ᵀX⁻ᵀ + X⁻ᵀX⁻ᵀVᵀX⁻ᵀ   (from dX⁻ᵀ = −X⁻ᵀVᵀX⁻ᵀ)
    hess: () => hessOfMat(3, (V) => trInvHvp(X3, V)),
    hvps: [{ v: V3, expect: () => trInvHvp(X3, V3).flat() }],
  },
  {
    name: "‖AX − B‖_F",
    x: X3,
    consts: { A: P3, B: Q3 },
    f: (X, { A, B }) => A.matmul(X).sub(B).square().sum().sqrt(),
    grad: () => {
      const R = subM(mm(P3, X3), Q3); // ∇ = AᵀR / r, R = AX − B, r = ‖R‖_F
      return scaleM(mm(T(P3), R), 1 / Math.sqrt(frob(R, R))).flat();
    },
    // H[V] = AᵀAV/r − AᵀR ⟨R, AV⟩ / r³
    hess: () =>
      hessOfMat(3, (V) => {
        const R = subM(mm(P3, X3), Q3), r = Math.sqrt(frob(R, R));
        const AV = mm(P3, V);
        return subM(scaleM(mm(T(P3), AV), 1 / r), scaleM(mm(T(P3), R), frob(R, AV) / r ** 3));
      }),
  },
  {
    name: "tr(A X² B X⁻ᵀ)",
    x: X3,
    consts: { A: P3, B: Q3 },
    f: (X, { A, B }) => trace(A.matmul(X).matmul(X).matmul(B).matmul(inv(X).transpose())),
    // ∇ = AᵀX⁻¹BᵀXᵀ + XᵀAᵀX⁻¹Bᵀ − X⁻ᵀAX²BX⁻ᵀ
    //   (from tr(A dX XBX⁻ᵀ) + tr(AX dX BX⁻ᵀ) − tr(AX²BX⁻ᵀ dXᵀ X⁻ᵀ))
    grad: () => {
      const Y = invM(X3), X2 = mm(X3, X3);
      const g1 = mm(mm(mm(T(P3), Y), T(Q3)), T(X3));
      const g2 = mm(mm(mm(T(X3), T(P3)), Y), T(Q3));
      const g3 = mm(mm(mm(mm(T(Y), P3), X2), Q3), T(Y));
      return subM(addM(g1, g2), g3).flat();
    },
    // H[V]: the product rule on each term of ∇, with dY = −YVY (Y = X⁻¹) and d(X²) = VX + XV
    hess: () => hessOfMat(3, (V) => trAX2BXinvTHvp(P3, Q3, X3, V)),
    hvps: [{ v: V3, expect: () => trAX2BXinvTHvp(P3, Q3, X3, V3).flat() }, {
      v: W3,
      expect: () => trAX2BXinvTHvp(P3, Q3, X3, W3).flat(),
    }],
  },
];

function trAX2BXinvTHvp(A: Mat, B: Mat, X: Mat, V: Mat): Mat {
  const Y = invM(X), dY = scaleM(mm(mm(Y, V), Y), -1), X2 = mm(X, X);
  const dX2 = addM(mm(V, X), mm(X, V));
  const prod = (...ms: Mat[]) => ms.reduce((a, b) => mm(a, b));
  // d(AᵀYBᵀXᵀ) = AᵀdYBᵀXᵀ + AᵀYBᵀVᵀ
  const t1 = addM(prod(T(A), dY, T(B), T(X)), prod(T(A), Y, T(B), T(V)));
  // d(XᵀAᵀYBᵀ) = VᵀAᵀYBᵀ + XᵀAᵀdYBᵀ
  const t2 = addM(prod(T(V), T(A), Y, T(B)), prod(T(X), T(A), dY, T(B)));
  // d(YᵀAX²BYᵀ) = dYᵀAX²BYᵀ + YᵀA d(X²) BYᵀ + YᵀAX²B dYᵀ
  const t3 = addM(
    addM(prod(T(dY), A, X2, B, T(Y)), prod(T(Y), A, dX2, B, T(Y))),
    prod(T(Y), A, X2, B, T(dY)),
  );
  return subM(addM(t1, t2), t3);
}

function softmax(z: Vec): Vec {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function softmaxRows(z: Mat): Mat {
  return z.map(softmax);
}

function detHvp(X: Mat, V: Mat): Mat {
  const Y = invM(X), Yt = T(Y), d = detM(X); // det X (tr(X⁻¹V) X⁻ᵀ − X⁻ᵀVᵀX⁻ᵀ)
  return scaleM(subM(scaleM(Yt, trM(mm(Y, V))), mm(mm(Yt, T(V)), Yt)), d);
}

function logdetHvp(X: Mat, V: Mat): Mat {
  const Yt = T(invM(X)); // −X⁻ᵀVᵀX⁻ᵀ
  return scaleM(mm(mm(Yt, T(V)), Yt), -1);
}

function trInvHvp(X: Mat, V: Mat): Mat {
  const Yt = T(invM(X)), VtYt = mm(T(V), Yt);
  return addM(mm(mm(Yt, VtYt), Yt), mm(mm(Yt, Yt), VtYt));
}

const tolOf = (b: Backend) => (b.dtype === "f64" ? 1e-10 : 1e-4);

for (const c of CASES) {
  testAll(c.name, async (b) => {
    const tol = tolOf(b);
    const opts = { dtype: b.dtype, device: b.dev };
    const before = memory();
    const x = tensor(c.x, opts);
    const consts: Consts = {};
    for (const [k, v] of Object.entries(c.consts ?? {})) consts[k] = tensor(v, opts);
    const f = (y: Tensor) => c.f(y, consts);
    const shape = [...x.shape];
    if (c.grad) {
      const g = grad(f)(x);
      await check(g, c.grad(), shape, tol, "gradient");
      g.dispose();
    }
    if (c.hess) {
      const h = hessian(f)(x);
      await check(h, c.hess(), [...shape, ...shape], tol, "Hessian");
      h.dispose();
    }
    if (c.hvps) {
      for (const [i, { v, expect }] of c.hvps.entries()) {
        const vt = tensor(v, opts);
        const hv = hvp(f, x, vt);
        await check(hv, expect(), shape, tol, `HVP ${i}`);
        hv.dispose();
        vt.dispose();
      }
      // all directions at once, as one batched probe
      const vs = tensor(c.hvps.map((h) => h.v), opts);
      const hv = hvp(f, x, vs);
      await check(hv, c.hvps.flatMap((h) => h.expect()), vs.shape as number[], tol, "batched HVP");
      hv.dispose();
      vs.dispose();
    }
    x.dispose();
    for (const t of Object.values(consts)) t.dispose();
    assertNoLeak(before, c.name);
  });
}

testAll("f(x) = Ax: the Jacobian is A in both modes", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const A = tensor(R34, opts), x = tensor(x4, opts);
  for (const mode of ["fwd", "rev"] as const) {
    const J = jacobian((y: Tensor) => A.matmul(y), { mode })(x); // ∂(Ax)/∂x = A
    await check(J, R34.flat(), [3, 4], tolOf(b), `jacobian ${mode}`);
    J.dispose();
  }
  // and the Jacobian of a matrix-valued map X ↦ AX: ∂(AX)ᵢⱼ/∂Xₖₗ = Aᵢₖ δⱼₗ
  const P = tensor(P3, opts), X = tensor(X3, opts);
  const want: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      for (let k = 0; k < 3; k++) for (let l = 0; l < 3; l++) want.push(j === l ? P3[i][k] : 0);
    }
  }
  for (const mode of ["fwd", "rev"] as const) {
    const J = jacobian((y: Tensor) => P.matmul(y), { mode })(X);
    await check(J, want, [3, 3, 3, 3], tolOf(b), `jacobian of AX, ${mode}`);
    J.dispose();
  }
  for (const t of [A, x, P, X]) t.dispose();
});

testAll(
  "hessian(f) and jacobian(f) in chunks: progress per chunk, the same matrices",
  async (b) => {
    // f(x) = Σ xᵢ³ + (Σ xᵢ)²: H = diag(6x) + 2·11ᵀ (closed form); ∇f = 3x² + 2Σx
    const opts = { dtype: b.dtype, device: b.dev };
    const n = 7, xv = Array.from({ length: n }, (_, i) => (i - 3) / 4);
    const x = tensor(xv, opts);
    const f = (y: Tensor) => y.pow(3).sum().add(y.sum().square());
    const want = xv.flatMap((xi, i) => xv.map((_, j) => (i === j ? 6 * xi : 0) + 2));
    const before = memory();
    const seen: [number, number, string][] = [];
    const H = hessian(f, { chunkSize: 3, onProgress: (p) => seen.push([p.done, p.total, p.unit]) })(
      x,
    );
    await check(H, want, [n, n], tolOf(b), "chunked Hessian");
    assert.deepEqual(seen, [[3, 7, "Hessian columns"], [6, 7, "Hessian columns"], [
      7,
      7,
      "Hessian columns",
    ]]);
    const H2 = hessian(f, x); // the two-argument shorthand
    await check(H2, want, [n, n], tolOf(b), "hessian(f, x)");
    // the Jacobian of ∇f is H, by columns (fwd, chunked) and by rows (rev)
    const gf = (y: Tensor) => grad(f)(y);
    for (const mode of ["fwd", "rev"] as const) {
      const rows: number[] = [];
      const J = jacobian(gf, { mode, chunkSize: 4, onProgress: (p) => rows.push(p.done) })(x);
      await check(J, want, [n, n], tolOf(b), `jacobian of ∇f, ${mode}`);
      assert.deepEqual(rows, mode === "fwd" ? [4, 7] : [1, 2, 3, 4, 5, 6, 7]);
      J.dispose();
    }
    [H, H2].forEach((t) => t.dispose());
    assertNoLeak(before, "hessian / jacobian");
    assert.throws(
      () => hessian(f, { chunk_size: 3 } as never),
      /hessian: unknown option "chunk_size"; did you mean "chunkSize"\?/,
    );
    assert.throws(
      () => jacobian(f, { mode: "forward" } as never),
      /jacobian: option mode must be one of "fwd", "rev"/,
    );
    assert.throws(() => jacobian(f, x, { Mode: "fwd" } as never), /did you mean "mode"/);
    assert.throws(() => hessian(f, { chunkSize: 0 }), /chunkSize must be a positive integer/);
    x.dispose();
  },
);

/** Characteristic-polynomial data of a 3 × 3 matrix A at t, M = A − tI, computed two ways. */
function charPoly(A: Mat, t: number) {
  const M = subM(A, scaleM(eyeM(3), t)), Mi = invM(M), d = detM(M);
  const d1 = -d * trM(Mi); // d/dt det(A − tI) = −det M tr(M⁻¹)
  const d2 = d * (trM(Mi) ** 2 - trM(mm(Mi, Mi))); // d²/dt² = det M (tr(M⁻¹)² − tr(M⁻²))
  // det(A − tI) = −t³ + tr(A) t² − c₂ t + det A, c₂ = Σ principal 2×2 minors
  const c2 = A[0][0] * A[1][1] - A[0][1] * A[1][0] + A[0][0] * A[2][2] - A[0][2] * A[2][0] +
    A[1][1] * A[2][2] - A[1][2] * A[2][1];
  const poly = {
    p: -(t ** 3) + trM(A) * t ** 2 - c2 * t + detM(A),
    d1: -3 * t ** 2 + 2 * trM(A) * t - c2,
    d2: -6 * t + 2 * trM(A),
  };
  return { p: d, d1, d2, poly };
}

Deno.test("det(A − tI) references: the eigen-free formulas agree with the characteristic polynomial", () => {
  const r = charPoly(P3, 0.375);
  assert.ok(Math.abs(r.p - r.poly.p) < 1e-13, `p ${r.p} vs ${r.poly.p}`);
  assert.ok(Math.abs(r.d1 - r.poly.d1) < 1e-13, `p' ${r.d1} vs ${r.poly.d1}`);
  assert.ok(Math.abs(r.d2 - r.poly.d2) < 1e-13, `p'' ${r.d2} vs ${r.poly.d2}`);
});

testAll("det(A − tI) and its first and second derivatives in t", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const tol = tolOf(b);
  const before = memory();
  const A = tensor(P3, opts), I = eye(3, 3, opts), t = tensor(0.375, opts);
  const p = (s: Tensor) => det(A.sub(I.mul(s)));
  const ref = charPoly(P3, 0.375);
  const v = tidy(() => p(t)), d1 = grad(p)(t), d2 = grad(grad(p))(t);
  await check(v, [ref.p], [], tol, "det(A − tI)");
  await check(d1, [ref.d1], [], tol, "d/dt");
  await check(d2, [ref.d2], [], tol, "d²/dt²");
  for (const x of [A, I, t, v, d1, d2]) x.dispose();
  assertNoLeak(before);
});

testAll("tanh: four derivatives at 0.3 by nesting grad", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const th = Math.tanh(0.3), s = 1 - th * th;
  const want = [
    s, // tanh' = 1 − t²
    -2 * th * s, // tanh'' = −2t(1 − t²)
    s * (6 * th * th - 2), // tanh''' = (1 − t²)(6t² − 2)
    8 * th * s * (2 - 3 * th * th), // tanh'''' = 8t(1 − t²)(2 − 3t²)
  ];
  assert.ok(Math.abs(want[3] - 3.72248581661372) < 1e-13, `tanh'''' reference ${want[3]}`);
  const before = memory();
  // 0.3 is not exact in f32: the f32 runs differentiate at fround(0.3), a 1e-8 relative shift
  const x = tensor(0.3, opts);
  let f = (y: Tensor) => y.tanh();
  for (let k = 0; k < 4; k++) {
    f = grad(f);
    const d = f(x);
    await check(d, [want[k]], [], tolOf(b), `derivative ${k + 1}`);
    d.dispose();
  }
  x.dispose();
  assertNoLeak(before);
});
