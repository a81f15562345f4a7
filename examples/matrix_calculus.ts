/**
 * Matrix calculus, checked: gradients, Hessians and Hessian-vector products from the
 * library's autodiff against textbook closed forms evaluated in plain f64 JavaScript.
 *
 *   deno run -A examples/matrix_calculus.ts          # the default device
 *   deno run -A examples/matrix_calculus.ts --cpu    # the CPU in f64
 *
 * Runs on the default device (WebGPU in f32 when an adapter exists, else the CPU in f64),
 * prints each case with its max relative error (max |error| / max |closed form|), and
 * exits with status 1 if any exceeds the tolerance (1e-4 in f32, 1e-10 in f64).
 */
import {
  det,
  device,
  eye,
  grad,
  hessian,
  hvp,
  inv,
  logdet,
  max,
  stopGradient,
  type Tensor,
  tensor,
  trace,
} from "../mod.ts";
import { parseFlags } from "./cli.ts";

// ---- plain f64 helpers for the closed forms ----
type Vec = number[];
type Mat = number[][];
const T = (a: Mat): Mat => a[0].map((_, j) => a.map((r) => r[j]));
const mm = (a: Mat, b: Mat): Mat =>
  a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const mv = (a: Mat, x: Vec): Vec => a.map((r) => r.reduce((s, v, k) => s + v * x[k], 0));
const dot = (a: Vec, b: Vec): number => a.reduce((s, v, i) => s + v * b[i], 0);
const lin = (a: Mat, s: number, b: Mat, t: number): Mat =>
  a.map((r, i) => r.map((v, j) => s * v + t * b[i][j]));
const outer = (a: Vec, b: Vec): Mat => a.map((u) => b.map((v) => u * v));
const eyeM = (n: number): Mat =>
  [...Array(n)].map((_, i) => [...Array(n)].map((_, j) => +(i === j)));
const tr = (a: Mat): number => a.reduce((s, r, i) => s + r[i], 0);
function invM(a: Mat): Mat {
  const n = a.length, m = a.map((r, i) => [...r, ...eyeM(n)[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    m[c] = m[c].map((v) => v / m[c][c]);
    for (let r = 0; r < n; r++) if (r !== c) m[r] = m[r].map((v, j) => v - m[r][c] * m[c][j]);
  }
  return m.map((r) => r.slice(n));
}
function detM(a: Mat): number {
  const m = a.map((r) => [...r]);
  let d = 1;
  for (let c = 0; c < m.length; c++) {
    let p = c;
    for (let r = c + 1; r < m.length; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    if (p !== c) [m[c], m[p], d] = [m[p], m[c], -d];
    d *= m[c][c];
    for (let r = c + 1; r < m.length; r++) {
      const f = m[r][c] / m[c][c];
      m[r] = m[r].map((v, j) => v - f * m[c][j]);
    }
  }
  return d;
}
const softmax = (z: Vec): Vec => {
  const e = z.map((v) => Math.exp(v - Math.max(...z)));
  return e.map((v) => v / e.reduce((s, w) => s + w, 0));
};
const sigm = (z: number) => 1 / (1 + Math.exp(-z));

// ---- inputs (dyadic, so exact in f32 too) ----
const x: Vec = [0.5, -0.25, 0.75, 1];
const b: Vec = [0.25, -0.5, 0.125, 1];
const A: Mat = [
  [1.5, 0.25, -0.5, 0.125],
  [0.5, 2, 0.25, -0.25],
  [-0.25, 0.75, 1.25, 0.5],
  [0.375, -0.125, 0.5, 1.75],
];
const D: Mat = [[0.5, -1, 0.25, 1.5], [1, 0.5, -0.75, 0.25], [-0.5, 0.25, 1, -1], [
  0.75,
  1.25,
  0.5,
  -0.25,
]];
const y: Vec = [1, 0, 1, 1];
const X: Mat = [[2, 0.5, -0.25], [0.25, 1.5, 0.5], [-0.5, 0.25, 1.75]];
const V: Mat = [[0.5, -0.25, 1], [0.75, 0.125, -0.5], [-1, 0.25, 0.375]];

const flags = parseFlags(
  `Matrix calculus: autodiff against textbook closed forms.
  deno run -A examples/matrix_calculus.ts [--cpu]`,
  {
    cpu: {
      default: "false",
      help: "run on the CPU in f64 (default: WebGPU in f32 if present)",
      switch: true,
    },
  },
);
const dev = await device({ backend: flags.cpu === "true" ? "cpu" : "auto" });
const dtype = dev.kind === "webgpu" ? "f32" : "f64";
const tol = dtype === "f32" ? 1e-4 : 1e-10;
const t = (v: number | Vec | Mat) => tensor(v, { dtype, device: dev });
const At = t(A), bt = t(b), Dt = t(D), yt = t(y), I3 = eye(3, 3, { dtype, device: dev });

function relErr(got: ArrayLike<number>, want: number[]): number {
  let err = 0, scale = 0;
  want.forEach((w, i) => {
    err = Math.max(err, Math.abs(got[i] - w));
    scale = Math.max(scale, Math.abs(w));
  });
  return Number.isNaN(err) ? Infinity : err / (scale || 1);
}

let failures = 0;
async function report(name: string, got: Tensor, want: number[]): Promise<void> {
  const e = relErr(await got.data(), want);
  got.dispose();
  const ok = e <= tol;
  if (!ok) failures++;
  console.log(`${ok ? "ok  " : "FAIL"}  ${e.toExponential(2).padStart(9)}  ${name}`);
}

console.log(`device: ${dev.description} (${dtype}), tolerance ${tol}\n`);
console.log(`      max rel err  case`);

// ½xᵀAx + bᵀx with A non-symmetric: ∇ = ½(A + Aᵀ)x + b, H = ½(A + Aᵀ)
const quad = (v: Tensor) => v.dot(At.matmul(v)).mul(0.5).add(bt.dot(v));
const Hs = lin(A, 0.5, T(A), 0.5);
await report("½xᵀAx + bᵀx: gradient", grad(quad)(t(x)), mv(Hs, x).map((v, i) => v + b[i]));
await report("½xᵀAx + bᵀx: Hessian ½(A + Aᵀ)", hessian(quad)(t(x)), Hs.flat());

// log-sum-exp(Ax + b): ∇ = Aᵀp, H = Aᵀ(diag p − ppᵀ)A with p = softmax(Ax + b)
const lse = (v: Tensor) => {
  const z = At.matmul(v).add(bt), m = stopGradient(max(z));
  return z.sub(m).exp().sum().log().add(m);
};
const p = softmax(mv(A, x).map((v, i) => v + b[i]));
await report("log-sum-exp(Ax + b): gradient Aᵀp", grad(lse)(t(x)), mv(T(A), p));
const Pm = lin(p.map((v, i) => p.map((_, j) => (i === j ? v : 0))), 1, outer(p, p), -1);
await report(
  "log-sum-exp(Ax + b): Hessian Aᵀ(diag p − ppᵀ)A",
  hessian(lse)(t(x)),
  mm(mm(T(A), Pm), A).flat(),
);

// logistic regression (1/m)Σ[log(1 + e^{zᵢ}) − yᵢzᵢ], z = Dw: ∇ = Dᵀ(σ(z) − y)/m, H = DᵀSD/m
const logistic = (w: Tensor) => {
  const z = Dt.matmul(w);
  return z.exp().log1p().sub(yt.mul(z)).mean();
};
const s = mv(D, x).map(sigm);
await report(
  "logistic loss: gradient Dᵀ(σ − y)/m",
  grad(logistic)(t(x)),
  mv(T(D), s.map((v, i) => v - y[i])).map((v) => v / 4),
);
const S = s.map((v, i) => s.map((_, j) => (i === j ? v * (1 - v) / 4 : 0)));
await report("logistic loss: Hessian DᵀSD/m", hessian(logistic)(t(x)), mm(mm(T(D), S), D).flat());

// Rayleigh quotient r = xᵀAx / xᵀx: ∇ = (A + Aᵀ)x / xᵀx − 2r x / xᵀx
const rayleigh = (v: Tensor) => At.matmul(v).dot(v).div(v.dot(v));
const r = dot(mv(A, x), x) / dot(x, x);
await report(
  "Rayleigh quotient: gradient",
  grad(rayleigh)(t(x)),
  mv(lin(A, 1, T(A), 1), x).map((v, i) => (v - 2 * r * x[i]) / dot(x, x)),
);

// log det X: ∇ = X⁻ᵀ, and the Hessian-vector product −X⁻ᵀVᵀX⁻ᵀ
const Yt = T(invM(X));
await report("log det X: gradient X⁻ᵀ", grad((m: Tensor) => logdet(m))(t(X)), Yt.flat());
await report(
  "log det X: HVP −X⁻ᵀVᵀX⁻ᵀ",
  hvp((m) => logdet(m), t(X), t(V)),
  mm(mm(Yt, T(V)), Yt).flat().map((v) => -v),
);

// det X: ∇ = det(X) X⁻ᵀ; tr(X⁻¹): ∇ = −(X⁻²)ᵀ
await report(
  "det X: gradient det(X) X⁻ᵀ",
  grad((m: Tensor) => det(m))(t(X)),
  Yt.flat().map((v) => v * detM(X)),
);
await report(
  "tr(X⁻¹): gradient −(X⁻²)ᵀ",
  grad((m: Tensor) => trace(inv(m)))(t(X)),
  mm(Yt, Yt).flat().map((v) => -v),
);

// p(t) = det(A − tI): p′ = −det M tr(M⁻¹), p″ = det M (tr(M⁻¹)² − tr(M⁻²)), M = A − tI
const charp = (u: Tensor) => det(t(X).sub(I3.mul(u)));
const M = lin(X, 1, eyeM(3), -0.375), Mi = invM(M);
await report("d/dt det(A − tI)", grad(charp)(t(0.375)), [-detM(M) * tr(Mi)]);
await report(
  "d²/dt² det(A − tI)",
  grad(grad(charp))(t(0.375)),
  [detM(M) * (tr(Mi) ** 2 - tr(mm(Mi, Mi)))],
);

// tanh'''' = 8t(1 − t²)(2 − 3t²) with t = tanh x, by nesting grad four times
const th = Math.tanh(0.3);
const d4 = grad(grad(grad(grad((u: Tensor) => u.tanh()))));
await report("tanh''''(0.3) by grad⁴", d4(t(0.3)), [8 * th * (1 - th * th) * (2 - 3 * th * th)]);

console.log(failures ? `\n${failures} case(s) over tolerance` : "\nall cases within tolerance");
if (failures) Deno.exit(1);
