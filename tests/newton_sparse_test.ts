/**
 * minimize(..., { method: "newton-sparse" }) on the two example problems (a grid and
 * several agents' trajectories), both linear solvers, the caller's variable order, and
 * errors. References independent of the library's derivatives: the grid's gradient by hand
 * (tests/sparse_objectives.ts) at the result; newton-banded on the same problem written in
 * its natural (banded) order; the two solvers of newton-sparse against each other.
 */
import assert from "node:assert/strict";
import {
  gather,
  memory,
  minimize,
  type MinimizeResult,
  slice,
  SparsityPattern,
  square,
  sum,
  type Tensor,
  tensor,
} from "../mod.ts";
import { assertClose, assertNoLeak, gpuDev, randArray, testAll } from "./helpers.ts";
import {
  agentsObjective,
  gridGradientByHand,
  gridObjective,
  noisyImage,
} from "./sparse_objectives.ts";

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

async function done(r: MinimizeResult): Promise<Float64Array> {
  const x = Float64Array.from(await r.x.data());
  r.x.dispose();
  r.jac.dispose();
  return x;
}

testAll(
  "newton-sparse on the grid problem: ‖g‖ ≤ 1e-8 (f64), the hand gradient agrees",
  async (be) => {
    const [h, w] = [40, 36]; // RCM leaves a band of ~36: the CG solver is cheaper
    const opt = { dtype: be.dtype, device: be.dev } as const;
    const base = memory();
    const yv = noisyImage(h, w);
    const y = tensor(yv, { ...opt, shape: [h, w] });
    const f = gridObjective(h, w, y);
    const x0 = tensor(yv, opt);
    const iters: number[] = [];
    const r = await minimize(f, x0, {
      method: "newton-sparse",
      gtol: be.dtype === "f64" ? 1e-8 : 1e-3,
      onIteration: (i) => void (i.iteration > 0 && iters.push(i.cgIterations!)),
    });
    assert.ok(r.converged, r.message);
    assert.ok(iters.every((k) => k > 0), "the grid takes the CG solver (its band stays wide)");
    const u = await done(r);
    // the gradient written out by hand, at the result: independent of the library's AD
    const g = gridGradientByHand(
      h,
      w,
      be.dtype === "f64" ? u : Float64Array.from(u, Math.fround),
      yv,
    );
    assert.ok(norm(g) <= (be.dtype === "f64" ? 1e-8 : 5e-3), `hand-gradient norm ${norm(g)}`);
    // one colour batch per iteration, and the second-order check at the end: the CG solver
    // has no factorisation, so 16 Lanczos steps on Hessian-vector products
    assert.ok(
      r.nhvp <= 6 * (r.iterations + 1) + 16,
      `${r.nhvp} HVPs: one colour batch per iteration`,
    );
    x0.dispose();
    y.dispose();
    assertNoLeak(base, "newton-sparse (grid)");
  },
);

testAll(
  "newton-sparse on the agents problem: RCM + banded Cholesky, ‖g‖ ≤ 1e-8 (f64)",
  async (be) => {
    const base = memory();
    const prob = agentsObjective(4, 24, { dtype: be.dtype, device: be.dev });
    const x0 = prob.straight();
    const shifts: number[] = [];
    const r = await minimize(prob.f, x0, {
      method: "newton-sparse",
      gtol: be.dtype === "f64" ? 1e-8 : 0,
      onIteration: (i) => {
        assert.equal(i.cgIterations, undefined, "the reordered band is narrow: banded Cholesky");
        if (i.shift !== undefined) shifts.push(i.shift);
      },
    });
    if (be.dtype === "f64") assert.ok(r.converged && r.gradNorm <= 1e-8, r.message);
    else assert.ok(r.gradNorm < 0.1, `f32: ${r.message}, ‖g‖ ${r.gradNorm}`);
    assert.ok(
      shifts.some((s) => s > 0),
      "the collisions make H indefinite at first: τ > 0 was needed",
    );
    assert.equal(shifts[shifts.length - 1], 0, "pure Newton steps at the end");
    // the CG solver on the same problem reaches the same point (same order, same minimiser)
    if (be.dtype === "f64") {
      const r2 = await minimize(prob.f, x0, {
        method: "newton-sparse",
        gtol: 1e-8,
        sparseSolver: "cg",
      });
      assert.ok(r2.converged, r2.message);
      assertClose(await done(r2), await done(r), { atol: 1e-7, rtol: 0 });
    } else r.x.dispose(), r.jac.dispose();
    x0.dispose();
    prob.dispose();
    assertNoLeak(base, "newton-sparse (agents)");
  },
);

testAll("newton-sparse returns x in the caller's order: a scrambled banded problem", async (be) => {
  // g(z) = Σ (z[i+1] − z[i])² + Σ (z[i] − t_i)⁴/12 + z[i]²/2 is banded in z; f(x) = g(x[σ])
  // scrambles it. newton-banded on g and newton-sparse on f must agree up to σ.
  const n = 60;
  const opt = { dtype: be.dtype, device: be.dev } as const;
  const t = tensor(randArray(n, 5), opt);
  const g = (z: Tensor) =>
    sum(square(slice(z, [1], [n]).sub(slice(z, [0], [n - 1]))))
      .add(sum(z.sub(t).pow(4).div(12).add(z.square().mul(0.5))));
  const sigma = Array.from({ length: n }, (_, i) => (i * 17) % n); // gcd(17, 60) = 1
  const f = (x: Tensor) => g(gather(x, sigma));
  const x0 = tensor(new Float64Array(n), opt);
  const gtol = be.dtype === "f64" ? 1e-10 : 1e-4;
  const rs = await minimize(f, x0, { method: "newton-sparse", gtol });
  const rb = await minimize(g, x0, { method: "newton-banded", bandwidth: 1, gtol });
  assert.ok(rs.converged && rb.converged, `${rs.message} / ${rb.message}`);
  const xs = await done(rs), zb = await done(rb);
  assertClose(sigma.map((s) => xs[s]), zb, { atol: be.dtype === "f64" ? 1e-9 : 1e-4, rtol: 0 });
  x0.dispose();
  t.dispose();
});

Deno.test("newton-sparse: incomplete Cholesky and Jacobi preconditioners reach one minimiser", async () => {
  const [h, w] = [30, 34];
  const yv = noisyImage(h, w);
  const y = tensor(yv, { dtype: "f64", shape: [h, w] });
  const f = gridObjective(h, w, y);
  const x0 = tensor(yv, { dtype: "f64" });
  const run = async (pre: "jacobi" | "incomplete-cholesky" | "auto") => {
    let cg = 0;
    const r = await minimize(f, x0, {
      method: "newton-sparse",
      gtol: 1e-9,
      sparseSolver: "cg",
      sparsePreconditioner: pre,
      onIteration: (i) => void (cg += i.cgIterations ?? 0),
    });
    assert.ok(r.converged, `${pre}: ${r.message}`);
    return { x: await done(r), cg };
  };
  const ic = await run("incomplete-cholesky"), jac = await run("jacobi");
  const auto = await run("auto");
  assertClose(ic.x, jac.x, { atol: 1e-9, rtol: 0 });
  // IC(0) of a 5-point stencil cuts CG's iterations well below the diagonal's (here ~3×)
  assert.ok(ic.cg < 0.6 * jac.cg, `CG iterations: IC ${ic.cg}, Jacobi ${jac.cg}`);
  assert.equal(auto.cg, ic.cg, "on the CPU, auto is incomplete Cholesky");
  // the hand gradient at IC's result
  assert.ok(norm(gridGradientByHand(h, w, ic.x, yv)) <= 1e-9);
  x0.dispose();
  y.dispose();
});

Deno.test("newton-sparse: clear errors for bad options", async () => {
  const f = (x: Tensor) => sum(square(x));
  const x0 = tensor([1, 2, 3], { dtype: "f64" });
  const bad = SparsityPattern.fromEntries([4, 4], [[0, 0]]);
  await assert.rejects(
    minimize(f, x0, { method: "newton-sparse", pattern: bad }),
    /newton-sparse\): the pattern is 4 × 4; expected 3 × 3/,
  );
  const nonsym = SparsityPattern.fromEntries([3, 3], [[0, 1]]);
  await assert.rejects(
    minimize(f, x0, { method: "newton-sparse", pattern: nonsym }),
    /newton-sparse\): a Hessian's pattern must be symmetric/,
  );
  await assert.rejects(
    minimize(f, x0, { method: "newton-sparse", sparseSolver: "lu" as "cg" }),
    /sparseSolver must be one of "auto", "banded", "cg", got "lu"/,
  );
  await assert.rejects(
    minimize(f, x0, { method: "newton-sparse", sparsePreconditioner: "ilu" as "jacobi" }),
    /sparsePreconditioner must be one of "auto", "jacobi", "incomplete-cholesky", got "ilu"/,
  );
  x0.dispose();
});

Deno.test({
  name: "newton-sparse: incomplete Cholesky on WebGPU is a clear error",
  ignore: !gpuDev,
  fn: async () => {
    const x0 = tensor([1, 2, 3], { dtype: "f32", device: gpuDev! });
    await assert.rejects(
      minimize((x: Tensor) => sum(square(x)), x0, {
        method: "newton-sparse",
        sparseSolver: "cg",
        sparsePreconditioner: "incomplete-cholesky",
      }),
      /runs on the host .* x0 is on WebGPU; use sparsePreconditioner: "jacobi" there/,
    );
    x0.dispose();
  },
});

Deno.test("newton-sparse reaches SciPy's minimum of the 40 × 40 grid problem", async () => {
  // f* from `/usr/bin/python3 bench/scipy_newton_sparse.py 40` (SciPy 1.10, trust-krylov and
  // Newton-CG with a hand-written hessp; both print 121.5867270268248x)
  const F_SCIPY = 121.58672702682482;
  const s = 40;
  const yv = noisyImage(s, s);
  const y = tensor(yv, { dtype: "f64", shape: [s, s] });
  const x0 = tensor(yv, { dtype: "f64" });
  const r = await minimize(gridObjective(s, s, y), x0, { method: "newton-sparse", gtol: 1e-8 });
  assert.ok(r.converged && r.gradNorm <= 1e-8, r.message);
  assert.ok(Math.abs(r.fun - F_SCIPY) <= 1e-12 * F_SCIPY, `f = ${r.fun}, SciPy ${F_SCIPY}`);
  for (const t of [r.x, x0, y]) t.dispose();
});
