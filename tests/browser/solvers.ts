/**
 * Banded Hessians, the banded solver, CG and newton-banded on a WebGPU device in the page.
 * References are independent of the GPU: closed-form Hessian bands (tests/banded_objectives.ts),
 * residuals computed here in f64, and the CPU backend in f64.
 */
import {
  bandedHessian,
  cg,
  choleskyBanded,
  type Device,
  minimize,
  pad,
  slice,
  solveBanded,
  type Tensor,
  tensor,
} from "../../mod.ts";
import {
  bandStorage,
  randomBandedProblem,
  relMaxError,
  trajectoryProblem,
} from "../banded_objectives.ts";
import { randArray } from "../inputs.ts";
import { check, near, test } from "./harness.ts";

const N = 70_001; // above lavapipe's loop budget: no kernel may loop over n in one invocation

/** ‖A x − r‖∞ / (‖A‖∞ ‖x‖∞ + ‖r‖∞) for a lower band ab [b+1, n], in f64. */
function bandResidual(
  ab: ArrayLike<number>,
  b: number,
  n: number,
  x: ArrayLike<number>,
  r: ArrayLike<number>,
) {
  let worst = 0, normA = 0, normX = 0, normR = 0;
  for (let i = 0; i < n; i++) {
    let ax = 0, row = 0;
    for (let j = Math.max(0, i - b); j <= Math.min(n - 1, i + b); j++) {
      const a = i >= j ? ab[(i - j) * n + j] : ab[(j - i) * n + i];
      ax += a * x[j];
      row += Math.abs(a);
    }
    worst = Math.max(worst, Math.abs(ax - r[i]));
    normA = Math.max(normA, row);
    normX = Math.max(normX, Math.abs(x[i]));
    normR = Math.max(normR, Math.abs(r[i]));
  }
  return worst / (normA * normX + normR);
}

/** A diagonally dominant SPD band in lower storage (f32-exact values). */
function spdBand(n: number, b: number, seed: number): Float64Array {
  const ab = new Float64Array((b + 1) * n);
  for (let d = 1; d <= b; d++) ab.set(randArray(n, seed + d, -0.5, 0.5), d * n);
  for (let j = 0; j < n; j++) ab[j] = Math.fround(b + 1 + randArray(1, seed + j)[0]);
  for (let d = 1; d <= b; d++) for (let j = n - d; j < n; j++) ab[d * n + j] = 0;
  return ab;
}

export async function solverTests(gpus: [string, Device][], cpu: Device): Promise<void> {
  for (const [label, dev] of gpus) {
    const o = { dtype: "f32" as const, device: dev };

    await test(`bandedHessian of a random b = 3 objective, n = ${N}, vs its closed form [${label}]`, async () => {
      const prob = randomBandedProblem(N, 3, 11, o);
      const xv = randArray(N, 12, -1, 1);
      const x = tensor(xv, o);
      for (const method of ["direct", "substitution"] as const) {
        const H = bandedHessian(prob.f, x, { bandwidth: 3, layout: "lower", method });
        const got = await H.data.data();
        H.dispose();
        const want = bandStorage(prob.hessianDiagonals(xv), N, "lower");
        const err = relMaxError(got, want);
        // direct: a few f32 roundings; substitution: chains of ~n/(b+1) subtractions (README)
        check(err < (method === "direct" ? 1e-5 : 5e-5), `${method}: max relative error ${err}`);
      }
      x.dispose();
      prob.dispose();
    });

    await test(`bandedHessian of the trajectory objective (upper layout) [${label}]`, async () => {
      const n = 4097;
      const prob = trajectoryProblem(n, o);
      const xv = randArray(n, 13, -2, 2);
      const x = tensor(xv, o);
      const H = bandedHessian(prob.f, x, { bandwidth: 2 });
      const err = relMaxError(
        await H.data.data(),
        bandStorage(prob.hessianDiagonals(xv), n, "upper"),
      );
      check(err < 1e-5, `max relative error ${err}`);
      H.dispose();
      x.dispose();
      prob.dispose();
    });

    await test(`choleskyBanded and solveBanded, b = 3, n = ${N}: residual and the CPU f64 solve [${label}]`, async () => {
      const b = 3, ab = spdBand(N, b, 20), r = randArray(N, 21);
      const abT = tensor(ab, { ...o, shape: [b + 1, N] }), rT = tensor(r, o);
      const x = solveBanded(abT, rT, { lower: true });
      const xv = await x.data();
      const res = bandResidual(ab, b, N, xv, r);
      check(res < 1e-6, `relative residual ${res}`);
      const ref = solveBanded(
        tensor(ab, { shape: [b + 1, N], dtype: "f64", device: cpu }),
        tensor(r, { dtype: "f64", device: cpu }),
        { lower: true },
      );
      near(xv, await ref.data(), 1e-5, "x");
      const L = choleskyBanded(abT, { lower: true });
      const refL = choleskyBanded(tensor(ab, { shape: [b + 1, N], dtype: "f64", device: cpu }), {
        lower: true,
      });
      near(await L.data(), await refL.data(), 1e-5, "Cholesky factor");
      [abT, rT, x, ref, L, refL].forEach((t) => t.dispose());
    });

    await test(`cg on the tridiagonal [−1, 2.5, −1], n = ${N}: residual below rtol [${label}]`, async () => {
      const rv = randArray(N, 30);
      const r = tensor(rv, o);
      // A v = 2.5 v − v[i−1] − v[i+1], zero outside
      const A = (v: Tensor) =>
        v.mul(2.5).sub(pad(slice(v, [0], [N - 1]), [[1, 0]])).sub(
          pad(slice(v, [1], [N]), [[0, 1]]),
        );
      const res = await cg(A, r, { rtol: 1e-5 });
      check(res.converged, `not converged after ${res.iterations} iterations`);
      const x = await res.x.data();
      let rr = 0, bb = 0;
      for (let i = 0; i < N; i++) {
        const ax = 2.5 * x[i] - (i > 0 ? x[i - 1] : 0) - (i < N - 1 ? x[i + 1] : 0);
        rr += (ax - rv[i]) ** 2;
        bb += rv[i] ** 2;
      }
      // the recurrence's residual is below 1e-5; the true one carries f32 rounding too
      check(Math.sqrt(rr / bb) < 5e-5, `true relative residual ${Math.sqrt(rr / bb)}`);
      res.x.dispose();
      r.dispose();
    });

    await test(`minimize newton-banded: a 400-point trajectory to the f64 minimiser's f* [${label}]`, async () => {
      const n = 400;
      const solve = async (p: { dtype: "f32" | "f64"; device: Device }, gtol: number) => {
        const prob = trajectoryProblem(n, p);
        const x0 = tensor(new Float64Array(n), p);
        const res = await minimize(prob.f, x0, { method: "newton-banded", bandwidth: 2, gtol });
        const x = await res.x.data();
        res.x.dispose();
        x0.dispose();
        prob.dispose();
        return { res, x };
      };
      const ref = await solve({ dtype: "f64", device: cpu }, 1e-9);
      // at n = 400, f64 may stop at its rounding floor just above gtol: a stationary point
      check(ref.res.gradNorm < 1e-7, `CPU f64: ‖g‖ = ${ref.res.gradNorm} (${ref.res.message})`);
      const got = await solve(o, 1e-6); // below the f32 floor: it stops there
      // The GPU's x, judged in f64 on the CPU: f(x) within 1e-6 of f*. The f32 value the GPU
      // reports is looser (5e-5): log cosh = softplus(2x) − x − log 2 cancels near 0, and
      // each of the 400 terms carries exp's few-ulp error (WGSL allows 3 + 2|x| ulp).
      const prob = trajectoryProblem(n, { dtype: "f64", device: cpu });
      const xg = tensor(Float64Array.from(got.x), { dtype: "f64", device: cpu });
      const f64AtX = await prob.f(xg).item();
      xg.dispose();
      prob.dispose();
      const fStar = ref.res.fun;
      check(f64AtX - fStar <= 1e-6 * fStar, `f64 at the GPU's x: ${f64AtX}, f* = ${fStar}`);
      check(
        Math.abs(got.res.fun - fStar) <= 5e-5 * fStar,
        `f32 f = ${got.res.fun}, f* = ${fStar} (${got.res.message})`,
      );
      near(got.x, ref.x, 1e-3, "x");
      check(got.res.iterations <= 20, `${got.res.iterations} iterations`);
    });
  }
}
