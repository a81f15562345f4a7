/**
 * `ipm` on the constrained trajectory problem (issue 13's constrained form, IPOPT's weights)
 * against IPOPT's optimum of the same problem. The references are IPOPT 3.11.9's objectives,
 * from `/work/shared/reference/ipopt/traj.c` built as `bench/ipm_trajectory.ts` builds it and
 * run as `OPENBLAS_NUM_THREADS=1 ./traj --form B --N <N>` (its `summary` line's `obj=`):
 *
 *   N = 160: obj=0.0147754191287   (167 iterations)
 *   N = 256: obj=0.00709068019021  (242 iterations)
 *
 * (f64 at N = 64, IPOPT's obj=0.0720440296806, is checked in `ipm_test.ts`.) These f32 cases are the
 * regression of 2 December: in f32 the KKT error cannot fall below
 * ε ‖∇²f‖ ‖x‖ (≈ 4·10⁻² at N = 256), μ stalled where κ_ε μ lies under that floor, and the
 * barrier term pushed the path off (N = 160: f = 0.157 reported as converged; N = 256:
 * feasibility restoration failed at f = 0.37).
 */
import assert from "node:assert/strict";
import { device, minimize, tensor } from "../mod.ts";
import { BANDWIDTH, clearance, trajectoryProblem } from "../examples/trajectory_problem.ts";

async function solve(n: number, dtype: "f32" | "f64") {
  const dev = await device({ backend: "cpu" });
  const prob = trajectoryProblem(n, { weighting: "ipopt", dtype, device: dev });
  const x0 = tensor(dtype === "f64" ? prob.init : Float32Array.from(prob.init), {
    dtype,
    device: dev,
  });
  try {
    const r = await minimize(prob.smoothness, x0, {
      method: "ipm",
      bandwidth: BANDWIDTH,
      constraints: { eq: prob.eq, ineq: prob.ineq },
    });
    const path = await r.x.data();
    const m = r.multipliers!;
    for (const t of [r.x, m.eq, m.ineq, m.lower, m.upper]) t.dispose();
    return { r, clear: clearance(path) };
  } finally {
    x0.dispose();
    prob.dispose();
  }
}

for (const [n, ref, tol] of [[160, 0.0147754191287, 0.05], [256, 0.00709068019021, 0.3]]) {
  Deno.test(`ipm trajectory: f32 near IPOPT's optimum, not stalled at a large μ (N = ${n})`, async () => {
    const { r, clear } = await solve(n, "f32");
    assert.ok(r.converged, r.message);
    assert.ok(r.constraintViolation! <= 1e-4, `violation ${r.constraintViolation}`);
    assert.ok(clear >= 0.02 - 1e-3, `clearance ${clear}`);
    // why not closer in f32: gtol is 1e-4, μ stops at gtol/10 = 1e-5, and with 3N obstacle
    // constraints the barrier's duality gap 3N μ (7.7e-3 at N = 256) is of the size of f
    // itself; measured 2 December: +3.2 % at N = 160, +22 % at N = 256 (before the fix:
    // 0.157, i.e. 10.6×, and a failed restoration at 0.368, i.e. 52×)
    assert.ok(r.fun <= ref * (1 + tol), `f = ${r.fun} against IPOPT's ${ref}`);
    assert.ok(r.fun >= ref * (1 - 0.01), `f = ${r.fun} below IPOPT's local optimum ${ref}`);
  });
}
