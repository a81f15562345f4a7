/**
 * Gradient descent on linear least squares, once with the hand-written gradient and once
 * with `valueAndGrad`, for n features on a log-spaced grid from 10 to 10^4.
 *
 *   f(x) = ½‖Ax − b‖² / m,   ∇f(x) = Aᵀ(Ax − b) / m   (A: m samples × n features)
 *
 * Data: A has standard normal entries and b = A x_true with x_true ~ N(0, 1/n) (the
 * library's seeded `normal`), so the system is consistent: the optimum is f* = 0 exactly,
 * with no solve needed. "To 1e-9 in f" means f(x_k) − f* ≤ 1e-9 · (f(x_0) − f*), from
 * x_0 = 0; the iteration count reported is the first such k.
 *
 * Samples: m = 4n (a tall, well-conditioned system: the eigenvalues of AᵀA/m lie near
 * [(1 − ½)², (1 + ½)²], so κ ≈ 9) while A has at most `--max-entries` entries (default
 * 2^22, i.e. n ≤ 1024). Beyond that, m = min(128, n/4) samples: more features than samples,
 * still consistent (f* = 0), and gradient descent from 0 converges to the minimum-norm
 * solution at a rate set by the non-zero eigenvalues, again with κ ≲ 9. Dense m = 2n at
 * n = 10^4 would be a 2·10^4 × 10^4 matrix (800 MB in f32) that takes seconds per matrix-
 * vector product on a software GPU (lavapipe), i.e. hours for one descent; the cap keeps
 * the whole grid under two minutes there. Raise `--max-entries` on real hardware.
 *
 * Step size 1/L, with L the largest eigenvalue of AᵀA/m from 30 power-iteration steps.
 * Convergence is checked from f values stacked on the device and read back every
 * `--check-every` iterations (default 1 on the CPU, 10 on WebGPU, where a read-back is a
 * ~13 ms round trip); up to that many − 1 surplus steps are run, alike for both versions.
 * Both versions must take the same number of iterations and reach the same f and x
 * (asserted). Times are the minimum of `--runs` runs (default 3).
 *
 *   deno run -A examples/analytic_vs_autodiff.ts [--backend auto|cpu|webgpu] [--out analytic_vs_autodiff.svg]
 *     [--sizes 10,32,100,316,1000,3162,10000] [--runs 3] [--check-every K] [--max-entries 4194304]
 */
import { parseFlags } from "./cli.ts";
import {
  type Device,
  device,
  matmul,
  memory,
  mul,
  normal,
  sqrt,
  square,
  stack,
  sub,
  sum,
  type Tensor,
  tidy,
  valueAndGrad,
  zeros,
} from "../mod.ts";

const flags = parseFlags(
  `Gradient descent on least squares: a hand-written gradient against valueAndGrad.
  deno run -A examples/analytic_vs_autodiff.ts [flags]`,
  {
    backend: { default: "auto", help: "auto, cpu or webgpu" },
    out: { default: "analytic_vs_autodiff.svg", help: "where to write the timing plot" },
    sizes: { default: "10,32,100,316,1000,3162,10000", help: "feature counts n, comma-separated" },
    runs: { default: "3", help: "runs per size (the minimum time is kept)" },
    "check-every": {
      default: "",
      help: "iterations between read-backs (1 on the CPU, 10 on WebGPU)",
    },
    "max-entries": { default: String(2 ** 22), help: "most entries of A before m shrinks" },
  },
);
const flag = (name: keyof typeof flags, fallback: string) => flags[name] || fallback;

const backend = flag("backend", "auto");
if (backend !== "auto" && backend !== "cpu" && backend !== "webgpu") {
  throw new TypeError(`--backend must be auto, cpu or webgpu, got ${JSON.stringify(backend)}`);
}
const dev: Device = await device({ backend });
const out = flag("out", "analytic_vs_autodiff.svg");
const SIZES = flag("sizes", "10,32,100,316,1000,3162,10000").split(",").map(Number);
const RUNS = Number(flag("runs", "3"));
const CHECK = Number(flag("check-every", dev.kind === "webgpu" ? "10" : "1"));
const MAX_ENTRIES = Number(flag("max-entries", String(2 ** 22)));
const TOL = 1e-9;
const MAX_ITER = 10_000;
for (const n of SIZES) {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--sizes: bad size ${n}`);
}
for (const [name, v] of [["runs", RUNS], ["check-every", CHECK], ["max-entries", MAX_ENTRIES]]) {
  if (!Number.isInteger(v) || (v as number) < 1) {
    throw new RangeError(`--${name} must be a positive integer`);
  }
}

/** Samples for n features: 4n while A fits in MAX_ENTRIES, else min(128, n/4) (see above). */
function samples(n: number): number {
  return 4 * n * n <= MAX_ENTRIES ? 4 * n : Math.max(1, Math.min(128, Math.floor(n / 4)));
}

interface Problem {
  n: number;
  m: number;
  A: Tensor;
  b: Tensor;
  /** Step size 1/L. */
  eta: number;
}

async function makeProblem(n: number, seed: number): Promise<Problem> {
  const m = samples(n);
  const A = normal([m, n], { seed, device: dev });
  const b = tidy(() =>
    matmul(A, normal([n], { seed: seed + 1, device: dev }).mul(1 / Math.sqrt(n)))
  );
  // L = λ_max(AᵀA/m) by power iteration; AᵀAv is written (Av)ᵀA, a row vector times A
  let v = normal([n], { seed: seed + 2, device: dev });
  let w!: Tensor;
  for (let k = 0; k < 30; k++) {
    w = tidy(() => mul(matmul(matmul(A, v), A), 1 / m));
    const next = tidy(() => w.div(sqrt(sum(square(w)))));
    if (k < 29) w.dispose();
    v.dispose();
    v = next;
  }
  // v has converged to (near) the top eigenvector, so ‖AᵀAv/m‖ ≈ L
  const norm = tidy(() => sqrt(sum(square(w))));
  const L = await norm.item();
  norm.dispose(), w.dispose(), v.dispose();
  return { n, m, A, b, eta: 1 / L };
}

/** One iteration: f at x and the next iterate x − η∇f(x). */
type Step = (x: Tensor) => [Tensor, Tensor];

/** The hand-written gradient Aᵀ(Ax − b)/m, written as the row vector (Ax − b)ᵀA. */
function handWritten(p: Problem): Step {
  return (x) =>
    tidy(() => {
      const r = sub(matmul(p.A, x), p.b);
      const f = mul(sum(square(r)), 0.5 / p.m);
      const g = mul(matmul(r, p.A), 1 / p.m);
      return [f, sub(x, mul(g, p.eta))];
    });
}

/** The same loss, differentiated by `valueAndGrad`. */
function autodiff(p: Problem): Step {
  const loss = (x: Tensor) => mul(sum(square(sub(matmul(p.A, x), p.b))), 0.5 / p.m);
  const vg = valueAndGrad(loss);
  return (x) =>
    tidy(() => {
      const [f, g] = vg(x);
      return [f, sub(x, mul(g, p.eta))];
    });
}

interface Descent {
  iterations: number;
  f0: number;
  f: number;
  x: ArrayLike<number>;
  ms: number;
}

/** Gradient descent from 0 until f(x_k) ≤ TOL · f(x_0); reads f back every CHECK steps. */
async function descend(p: Problem, step: Step): Promise<Descent> {
  const t0 = performance.now();
  let x = zeros([p.n], { device: dev });
  let f0 = NaN;
  let done = 0; // iterates already checked
  const fs: Tensor[] = [], xs: Tensor[] = [];
  for (;;) {
    const [f, next] = step(x);
    fs.push(f), xs.push(x);
    x = next;
    if (fs.length < CHECK) continue;
    const stacked = tidy(() => stack(fs));
    const vals = await stacked.data();
    stacked.dispose();
    if (done === 0) f0 = vals[0];
    const hit = vals.findIndex((v) => v <= TOL * f0);
    if (hit >= 0) {
      const xHit = await xs[hit].data();
      const ms = performance.now() - t0;
      for (const t of [...fs, ...xs, x]) t.dispose();
      return { iterations: done + hit, f0, f: vals[hit], x: xHit, ms };
    }
    if (!vals.every(Number.isFinite)) throw new Error(`n = ${p.n}: gradient descent diverged`);
    done += fs.length;
    if (done > MAX_ITER) throw new Error(`n = ${p.n}: no convergence in ${MAX_ITER} iterations`);
    for (const t of [...fs, ...xs]) t.dispose();
    fs.length = 0, xs.length = 0;
  }
}

interface Row {
  n: number;
  m: number;
  iterations: number;
  hand: number;
  auto: number;
}

console.log(
  `device: ${dev.description}; f32; tolerance f(x_k) ≤ ${TOL} · f(x_0) (f* = 0); ` +
    `min of ${RUNS} runs; f read back every ${CHECK} iteration(s)\n`,
);
const baseline = memory();
console.log("| n | m | iterations | ms hand-written | ms autodiff | autodiff ÷ hand |");
console.log("|---|---|---|---|---|---|");
const rows: Row[] = [];
for (const n of SIZES) {
  const p = await makeProblem(n, 1000 + n);
  const steps = { hand: handWritten(p), auto: autodiff(p) };
  const best = { hand: Infinity, auto: Infinity };
  let ref: { hand: Descent; auto: Descent } | null = null;
  for (let r = 0; r < RUNS; r++) {
    // alternate the order so neither version always runs on a warmer machine
    const order = r % 2 === 0 ? (["hand", "auto"] as const) : (["auto", "hand"] as const);
    const res = {} as { hand: Descent; auto: Descent };
    for (const k of order) {
      res[k] = await descend(p, steps[k]);
      best[k] = Math.min(best[k], res[k].ms);
    }
    ref ??= res;
  }
  const { hand, auto } = ref!;
  // the same descent: same iteration count, same f, same iterate (to f32 rounding)
  if (hand.iterations !== auto.iterations) {
    throw new Error(
      `n = ${n}: hand-written took ${hand.iterations} iterations, autodiff ${auto.iterations}`,
    );
  }
  const fGap = Math.abs(hand.f - auto.f) / Math.max(hand.f, auto.f);
  let dx = 0, nx = 0;
  for (let i = 0; i < n; i++) (dx += (hand.x[i] - auto.x[i]) ** 2), (nx += hand.x[i] ** 2);
  const xGap = Math.sqrt(dx / nx);
  if (!(hand.f <= TOL * hand.f0 && auto.f <= TOL * auto.f0 && fGap < 0.05 && xGap < 1e-4)) {
    throw new Error(
      `n = ${n}: the two descents disagree: f ${hand.f} vs ${auto.f} (relative gap ${fGap}), ` +
        `iterates differ by ${xGap} (relative)`,
    );
  }
  p.A.dispose(), p.b.dispose();
  rows.push({ n, m: p.m, iterations: hand.iterations, hand: best.hand, auto: best.auto });
  console.log(
    `| ${n} | ${p.m} | ${hand.iterations} | ${best.hand.toFixed(1)} | ${best.auto.toFixed(1)} | ${
      (best.auto / best.hand).toFixed(2)
    } |`,
  );
}

/** Log-log plot of time against n, both series, with the tall/wide switch marked. */
function svg(rows: Row[]): string {
  const [W, H, L, R, T, B] = [680, 440, 70, 190, 40, 50];
  const ns = rows.map((r) => r.n), ts = rows.flatMap((r) => [r.hand, r.auto]);
  const x0 = Math.floor(Math.log10(Math.min(...ns))), x1 = Math.ceil(Math.log10(Math.max(...ns)));
  const y0 = Math.floor(Math.log10(Math.min(...ts))), y1 = Math.ceil(Math.log10(Math.max(...ts)));
  const sx = (n: number) => L + ((W - L - R) * (Math.log10(n) - x0)) / Math.max(1, x1 - x0);
  const sy = (t: number) => H - B - ((H - T - B) * (Math.log10(t) - y0)) / Math.max(1, y1 - y0);
  const f = (v: number) => v.toFixed(1);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="14">Gradient descent on least squares to 1e-9 in f (f32, ${dev.kind})</text>`,
  ];
  for (let e = y0; e <= y1; e++) {
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${f(sy(10 ** e))}" y2="${
        f(sy(10 ** e))
      }" stroke="#e5e5e5"/>`,
      `<text x="${L - 8}" y="${f(sy(10 ** e) + 4)}" text-anchor="end">${
        10 ** e >= 1 ? 10 ** e : `1e${e}`
      }</text>`,
    );
  }
  for (let e = x0; e <= x1; e++) {
    parts.push(
      `<line x1="${f(sx(10 ** e))}" x2="${f(sx(10 ** e))}" y1="${T}" y2="${
        H - B
      }" stroke="#e5e5e5"/>`,
      `<text x="${f(sx(10 ** e))}" y="${H - B + 18}" text-anchor="middle">${10 ** e}</text>`,
    );
  }
  // where m switches from 4n to min(128, n/4)
  const cut = rows.findIndex((r) => r.m < r.n);
  if (cut > 0) {
    const xc = (sx(rows[cut - 1].n) + sx(rows[cut].n)) / 2;
    parts.push(
      `<line x1="${f(xc)}" x2="${f(xc)}" y1="${T}" y2="${
        H - B
      }" stroke="#999" stroke-dasharray="4 4"/>`,
      `<text x="${f(xc - 6)}" y="${H - B - 8}" text-anchor="end" fill="#666">m = 4n</text>`,
      `<text x="${f(xc + 6)}" y="${H - B - 8}" fill="#666">m = ${
        rows[cut].m < 128 ? "n/4" : "128"
      }</text>`,
    );
  }
  parts.push(
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${
      H - T - B
    }" fill="none" stroke="#333"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">n (features)</text>`,
    `<text transform="translate(18 ${
      (T + H - B) / 2
    }) rotate(-90)" text-anchor="middle">time to converge (ms)</text>`,
  );
  const series = [
    { label: "hand-written Aᵀ(Ax − b)", color: "#1f77b4", t: (r: Row) => r.hand },
    { label: "autodiff (valueAndGrad)", color: "#d62728", t: (r: Row) => r.auto },
  ];
  // one polyline per regime (m = 4n, then few samples): the cost per iteration is m·n
  const regimes = [rows.filter((r) => r.m >= r.n), rows.filter((r) => r.m < r.n)];
  series.forEach((s, i) => {
    for (const part of regimes) {
      if (part.length === 0) continue;
      const pts = part.map((r) => [sx(r.n), sy(s.t(r))]);
      parts.push(
        `<polyline points="${
          pts.map(([a, b]) => `${f(a)},${f(b)}`).join(" ")
        }" fill="none" stroke="${s.color}" stroke-width="2"/>`,
        ...pts.map(([a, b]) => `<circle cx="${f(a)}" cy="${f(b)}" r="3.5" fill="${s.color}"/>`),
      );
    }
    parts.push(
      `<line x1="${W - R + 12}" x2="${W - R + 36}" y1="${T + 20 + 22 * i}" y2="${
        T + 20 + 22 * i
      }" stroke="${s.color}" stroke-width="3"/>`,
      `<text x="${W - R + 42}" y="${T + 24 + 22 * i}">${s.label}</text>`,
    );
  });
  parts.push(
    `<text x="${W - R + 12}" y="${T + 80}" fill="#666">m samples × n features;</text>`,
    `<text x="${W - R + 12}" y="${T + 96}" fill="#666">work per iteration ∝ m·n</text>`,
  );
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

// every tensor the descents, the problems and the transforms made has been freed
const left = memory();
if (left.tensors !== baseline.tensors || left.bytes !== baseline.bytes) {
  throw new Error(
    `leak: ${left.tensors - baseline.tensors} tensors (${left.bytes - baseline.bytes} bytes)`,
  );
}

await Deno.writeTextFile(out, svg(rows));
console.log(`\nwrote ${out}`);
