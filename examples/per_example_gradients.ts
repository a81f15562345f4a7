/**
 * Per-example gradients of a small network with `vmap(grad(loss))`: one pass gives the
 * gradient of every example's loss (an [N, P] matrix), which a loop would take N passes
 * for. Uses them for what they are needed for: the spread of gradient norms, the gradient
 * noise (trace of the per-example gradient covariance), and DP-SGD-style clipping, where
 * each example's gradient is clipped before averaging.
 *
 *   deno run -A examples/per_example_gradients.ts
 *   deno run -A examples/per_example_gradients.ts --examples 1024 --backend webgpu
 *
 * Checks the batched gradients against the loop (max difference) and prints both times.
 */
import { device, grad, mlp, mseLoss, type Tensor, tensor, tidy, vmap } from "../mod.ts";
import { parseFlags } from "./cli.ts";

const flags = parseFlags(
  `Per-example gradients of a 4-16-1 tanh network with vmap(grad(loss)).
  deno run -A examples/per_example_gradients.ts [flags]`,
  {
    examples: { default: "256", help: "number of training examples N" },
    backend: { default: "cpu", help: "cpu (f64) or webgpu (f32)" },
    clip: { default: "0.5", help: "per-example gradient norm bound for the clipped mean" },
  },
);
const N = Number(flags.examples), C = Number(flags.clip);
if (!Number.isInteger(N) || N < 2) throw new RangeError(`--examples must be an integer ≥ 2`);
if (!(C > 0)) throw new RangeError(`--clip must be positive`);
if (flags.backend !== "cpu" && flags.backend !== "webgpu") {
  throw new RangeError(`--backend must be cpu or webgpu`);
}
const dev = await device({ backend: flags.backend });
const o = { dtype: dev.kind === "cpu" ? "f64" as const : "f32" as const, device: dev };

// ---- data: y = sin(x₀) + x₁x₂ − x₃² / 2 with noise ----
let seed = 7;
const rand = () => ((seed = (seed * 16807) % 2147483647), seed / 2147483647);
const Xh = Array.from({ length: N }, () => [0, 0, 0, 0].map(() => 2 * rand() - 1));
const Yh = Xh.map(([a, b, c, d]) => [Math.sin(a) + b * c - d * d / 2 + 0.05 * (rand() - 0.5)]);
const X = tensor(Xh, o), Y = tensor(Yh, o);
const net = mlp([4, 16, 1], "tanh", { seed: 1, ...o });
const P = net.numParams;

/** One example's loss: x [4], y [1]. */
const lossOne = (p: Tensor, x: Tensor, y: Tensor) =>
  mseLoss(net.apply(p, x.reshape([1, 4])), y.reshape([1, 1]));

console.log(`device: ${dev.description} (${o.dtype}); ${N} examples, ${P} parameters`);

// ---- per-example gradients: one vmap call, then the loop it replaces ----
let t0 = performance.now();
const G = vmap(grad(lossOne), [null, 0, 0])(net.params, X, Y); // [N, P]
const Gh = await G.data();
const tVmap = performance.now() - t0;

const xs = Xh.map((r) => tensor(r, o)), ys = Yh.map((r) => tensor(r, o));
t0 = performance.now();
const loop: ArrayLike<number>[] = [];
for (let i = 0; i < N; i++) {
  const g = grad(lossOne)(net.params, xs[i], ys[i]);
  loop.push(await g.data());
  g.dispose();
}
const tLoop = performance.now() - t0;
let maxDiff = 0, scale = 0;
for (let i = 0; i < N; i++) {
  for (let k = 0; k < P; k++) {
    maxDiff = Math.max(maxDiff, Math.abs(Gh[i * P + k] - loop[i][k]));
    scale = Math.max(scale, Math.abs(loop[i][k]));
  }
}
console.log(
  `vmap(grad): ${tVmap.toFixed(1)} ms for all ${N}; loop of grad: ${tLoop.toFixed(1)} ms ` +
    `(${(tLoop / tVmap).toFixed(1)}× longer); max |difference| ${maxDiff.toExponential(2)} ` +
    `(largest entry ${scale.toFixed(3)})`,
);

// ---- what per-example gradients are for ----
const stats = tidy(() => {
  const norms = G.square().sum(1).sqrt(); // ‖gᵢ‖
  const mean = G.mean(0); // the full-batch gradient
  // gradient noise: tr Cov(g) = mean ‖gᵢ − ḡ‖²
  const noise = G.sub(mean).square().sum(1).mean();
  // clipping: gᵢ · min(1, C / ‖gᵢ‖), then the mean
  const clipped = G.mul(norms.reshape([N, 1]).div(C).maximum(1).reciprocal()).mean(0);
  const cosine = clipped.dot(mean).div(
    clipped.square().sum().sqrt().mul(mean.square().sum().sqrt()),
  );
  return { norms, meanNorm: mean.square().sum().sqrt(), noise, cosine };
});
const norms = Array.from(await stats.norms.data()).sort((a, b) => a - b);
const q = (p: number) => norms[Math.min(N - 1, Math.floor(p * N))];
console.log(
  `per-example gradient norms: min ${q(0).toFixed(4)}, median ${q(0.5).toFixed(4)}, ` +
    `90% ${q(0.9).toFixed(4)}, max ${norms[N - 1].toFixed(4)}`,
);
console.log(
  `full-batch gradient norm ${(await stats.meanNorm.item()).toFixed(4)}; gradient noise ` +
    `tr Cov(g) = ${(await stats.noise.item()).toFixed(4)}`,
);
const clippedShare = norms.filter((v) => v > C).length / N;
console.log(
  `clipping at ${C}: ${(100 * clippedShare).toFixed(0)}% of examples clipped; the clipped mean ` +
    `points within ${
      (Math.acos(Math.min(1, await stats.cosine.item())) * 180 / Math.PI).toFixed(1)
    }° ` +
    `of the full-batch gradient`,
);
