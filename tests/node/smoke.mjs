// Node smoke test: the bundled package (tools/bundle.ts → dist/curvature.js) on Node ≥ 22,
// where WebGPU is absent and the CPU backend runs. Expected values are closed forms.
//
//   deno run -A tools/bundle.ts && node tests/node/smoke.mjs [dist/curvature.js]
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";

const lib = await import(pathToFileURL(process.argv[2] ?? "dist/curvature.js").href);
const { bandedHessian, device, grad, hvp, minimize, tensor } = lib;

let passed = 0, failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok: ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAILED: ${name}\n${e?.stack ?? e}`);
  }
}

function close(actual, expected, tol, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(
      err <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}] = ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

const f64 = (v) => tensor(v, { dtype: "f64" });

await check("device() falls back to the CPU without WebGPU", async () => {
  const dev = await device();
  assert.equal(dev.kind, "cpu");
});

await check("grad of Σ x³ is 3x²", async () => {
  const g = grad((x) => x.pow(3).sum())(f64([1, 2, 3]));
  close(await g.data(), [3, 12, 27], 1e-14, "grad");
});

// Rosenbrock Σ 100 (x[i+1] − x[i]²)² + (1 − x[i])²; H e₀ = [1200 x₀² − 400 x₁ + 2, −400 x₀, 0, 0]
const rosen = (x) => {
  const n = x.shape[0];
  const a = x.slice([0], [n - 1]), b = x.slice([1], [n]);
  return b.sub(a.square()).square().sum().mul(100).add(a.neg().add(1).square().sum());
};
await check("hvp of Rosenbrock at (−1.2, 1, −1.2, 1) along e₀", async () => {
  const hv = hvp(rosen, f64([-1.2, 1, -1.2, 1]), f64([1, 0, 0, 0]));
  close(await hv.data(), [1330, 480, 0, 0], 1e-12, "hvp");
});

await check("bandedHessian of a tridiagonal objective (lower layout)", async () => {
  const f = (x) =>
    x.slice([1], [4]).sub(x.slice([0], [3])).square().sum().add(x.pow(4).sum().div(12));
  const H = bandedHessian(f, f64([1, 1, 1, 1]), { bandwidth: 1, layout: "lower" });
  close(await H.data.data(), [3, 5, 5, 3, -2, -2, -2, 0], 1e-12, "band");
});

// A small trajectory: Σ (x[i+1] − x[i])² + Σ (x[i] − 1)⁴ + Σ (x[i] − 1)², minimised at x = 1
await check("minimize newton-banded reaches the minimiser x = 1", async () => {
  const n = 50;
  const f = (x) => {
    const d = x.slice([1], [n]).sub(x.slice([0], [n - 1]));
    const e = x.sub(1);
    return d.square().sum().add(e.pow(4).sum()).add(e.square().sum());
  };
  const res = await minimize(f, f64(new Array(n).fill(0).map((_, i) => Math.sin(i))), {
    method: "newton-banded",
    bandwidth: 1,
    gtol: 1e-10,
  });
  assert.ok(res.converged, `not converged: ${res.message}`);
  close(await res.x.data(), new Array(n).fill(1), 1e-8, "x*");
  assert.ok(Math.abs(res.fun) < 1e-16, `f* = ${res.fun}`);
});

console.log(`node smoke (Node ${process.version}): ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
