/**
 * AdaHessian against Adam and gradient descent on a small regression: a 2-16-1 tanh MLP
 * fitting y = sin(3u) + v / 10 from 64 noisy samples, with the second input measured in
 * units 10× smaller than the first (so the problem is badly scaled, the case AdaHessian's
 * Hessian-diagonal preconditioner is for).
 *
 *   deno run -A examples/adahessian.ts                 # CPU, f64
 *   deno run -A examples/adahessian.ts --backend webgpu  # WebGPU, f32
 *   deno run -A examples/adahessian.ts --iters 500 --out curves.svg
 *
 * Each method runs with a few learning rates; the best (lowest final loss) is kept. Prints
 * a table of losses and writes the loss curves to adahessian.svg (log scale; no dependencies:
 * the SVG is written by hand below).
 */
import {
  device,
  minimize,
  type MinimizeOptions,
  mlp,
  mseLoss,
  type Tensor,
  tensor,
} from "../mod.ts";

const args = Deno.args;
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const backend = flag("backend", "cpu") as "cpu" | "webgpu";
const iters = Number(flag("iters", "500"));
const out = flag("out", "adahessian.svg");
const dev = await device({ backend });
const o = { dtype: dev.kind === "cpu" ? "f64" as const : "f32" as const, device: dev };
console.log(`device: ${dev.description} (${o.dtype}), ${iters} iterations per run`);

// ---- data ----
let seed = 2024;
const rand = () => ((seed = (seed * 16807) % 2147483647), seed / 2147483647);
const N = 64;
const U = Array.from({ length: N }, () => [2 * rand() - 1, 20 * rand() - 10]); // second input 10× larger range
const Yh = U.map(([u, v]) => [Math.sin(3 * u) + v / 10 + 0.05 * (rand() - 0.5)]);
const X = tensor(U, o), Y = tensor(Yh, o);
const net = mlp([2, 16, 1], "tanh", { seed: 5, ...o });
const loss = (p: Tensor) => mseLoss(net.apply(p, X), Y);

// ---- runs ----
interface Run {
  label: string;
  lr: number;
  losses: number[];
  ms: number;
  nhvp: number;
}
async function train(method: MinimizeOptions["method"], lr: number): Promise<Run> {
  const losses: number[] = [];
  const t0 = performance.now();
  const r = await minimize(loss, net.params, {
    method,
    lr,
    maxIter: iters,
    gtol: 0,
    onIteration: (i) => void losses.push(i.fun),
  });
  const ms = performance.now() - t0;
  r.x.dispose();
  r.jac.dispose();
  return { label: method, lr, losses, ms, nhvp: r.nhvp };
}
const sweeps: [MinimizeOptions["method"], number[]][] = [
  ["gradient-descent", [0.01, 0.03, 0.06]],
  ["adam", [0.01, 0.03, 0.1, 0.3]],
  ["adahessian", [0.1, 0.3, 1, 3]],
];
const best: Run[] = [];
for (const [method, lrs] of sweeps) {
  let keep: Run | null = null;
  for (const lr of lrs) {
    const r = await train(method, lr);
    const last = r.losses.at(-1)!;
    console.log(
      `  ${method.padEnd(16)} lr ${String(lr).padEnd(6)} final loss ${last.toExponential(3)}`,
    );
    if (!keep || !(last >= keep.losses.at(-1)!)) keep = r;
  }
  best.push(keep!);
}

// ---- table ----
const marks = [0, 10, 30, 100, 300, 1000].filter((k) => k <= iters);
if (!marks.includes(iters)) marks.push(iters);
console.log(
  `\n${"method".padEnd(17)}${"lr".padEnd(7)}` + marks.map((k) => `it ${k}`.padStart(11)).join("") +
    "   time (ms)  HVPs",
);
for (const r of best) {
  console.log(
    `${r.label.padEnd(17)}${String(r.lr).padEnd(7)}` +
      marks.map((k) => r.losses[k].toExponential(2).padStart(11)).join("") +
      `${r.ms.toFixed(0).padStart(12)}${String(r.nhvp).padStart(6)}`,
  );
}

// ---- SVG: log-scale loss curves ----
function svg(runs: Run[]): string {
  const [W, Hh, L, R, T, B] = [720, 440, 70, 170, 30, 50];
  const all = runs.flatMap((r) => r.losses).filter((v) => v > 0 && Number.isFinite(v));
  const lo = Math.floor(Math.log10(Math.min(...all))), hi = Math.ceil(Math.log10(Math.max(...all)));
  const x = (k: number) => L + ((W - L - R) * k) / iters;
  const y = (v: number) =>
    T + ((Hh - T - B) * (hi - Math.log10(Math.max(v, 10 ** lo)))) / (hi - lo);
  const colors = ["#888888", "#1f77b4", "#d62728"];
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${Hh}" fill="white"/>`,
    `<text x="${L}" y="18" font-size="14">Training loss (MSE), 2-16-1 tanh MLP, ${N} samples, ${o.dtype} on ${dev.kind}</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(10 ** e)}" y2="${y(10 ** e)}" stroke="#e5e5e5"/>`,
      `<text x="${L - 8}" y="${y(10 ** e) + 4}" text-anchor="end">1e${e}</text>`,
    );
  }
  for (let k = 0; k <= 4; k++) {
    const it = Math.round((iters * k) / 4);
    parts.push(
      `<line x1="${x(it)}" x2="${x(it)}" y1="${T}" y2="${Hh - B}" stroke="#f0f0f0"/>`,
      `<text x="${x(it)}" y="${Hh - B + 18}" text-anchor="middle">${it}</text>`,
    );
  }
  parts.push(
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${
      Hh - T - B
    }" fill="none" stroke="#333"/>`,
    `<text x="${(L + W - R) / 2}" y="${Hh - 12}" text-anchor="middle">iteration</text>`,
  );
  runs.forEach((r, i) => {
    const pts = r.losses.map((v, k) => `${x(k).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    parts.push(
      `<polyline points="${pts}" fill="none" stroke="${colors[i]}" stroke-width="2"/>`,
      `<line x1="${W - R + 12}" x2="${W - R + 36}" y1="${T + 20 + 22 * i}" y2="${
        T + 20 + 22 * i
      }" stroke="${colors[i]}" stroke-width="3"/>`,
      `<text x="${W - R + 42}" y="${T + 24 + 22 * i}">${r.label} (lr ${r.lr})</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
await Deno.writeTextFile(out, svg(best));
console.log(`\nwrote ${out}`);
