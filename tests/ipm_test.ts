/**
 * `minimize(…, { method: "ipm" })` against independent references: the published optima of
 * Hock–Schittkowski problems (confirmed by SciPy in tests/hs_reference.py), and the KKT
 * conditions at the returned point checked outside the library — gradients by central
 * differences of the same expressions in plain f64 JavaScript (tests/hs_problems.ts):
 * stationarity of the Lagrangian with the returned multipliers, feasibility,
 * complementarity and the multipliers' signs. Infeasible problems must be reported as such.
 */
import assert from "node:assert/strict";
import {
  concat,
  memory,
  minimize,
  type MinimizeOptions,
  type MinimizeResult,
  type Tensor,
  tensor,
} from "../mod.ts";
import { assertClose, assertNoLeak, type Backend, cpu, testAll } from "./helpers.ts";
import { evalPlain, gradientsPlain, HS, type HsProblem, tensorFunctions } from "./hs_problems.ts";
import { ipm } from "../src/optim/ipm/ipm.ts";
import { boundSet, disposeBounds, trialX } from "../src/optim/ipm/barrier.ts";
import { Objective } from "../src/optim/objective.ts";

/** Tolerances per precision: f64 solves to the default gtol 1e-8, f32 to 1e-4. */
function tolerances(dtype: "f32" | "f64") {
  return dtype === "f64"
    // central differences with h = 1e-6 carry ~1e-9 error on these O(10) functions
    ? { kkt: 1e-6, feas: 1e-8, compl: 1e-7, f: 1e-8, x: 1e-5 }
    // f32 iterates: ε = 1.2e-7 times the problems' O(10–100) values, and gtol 1e-4
    : { kkt: 2e-2, feas: 1e-3, compl: 1e-3, f: 1e-4, x: 2e-2 };
}

/** The KKT conditions at r.x with r's multipliers, from plain-f64 central differences. */
async function checkKkt(p: HsProblem, r: MinimizeResult, dtype: "f32" | "f64"): Promise<void> {
  const tol = tolerances(dtype);
  const x = Array.from(await r.x.data());
  const mult = r.multipliers!;
  const y = Array.from(await mult.eq.data()), z = Array.from(await mult.ineq.data());
  const zl = Array.from(await mult.lower.data()), zu = Array.from(await mult.upper.data());
  const v = evalPlain(p, x), g = gradientsPlain(p, x);
  const n = x.length;
  assert.equal(y.length, v.eq.length, "one multiplier per equality");
  assert.equal(z.length, v.ineq.length, "one multiplier per inequality");
  // stationarity: ∇f − J_Eᵀ y − J_Iᵀ z − z_L + z_U = 0
  const scale = Math.max(1, ...g.f.map(Math.abs));
  for (let j = 0; j < n; j++) {
    let rj = g.f[j] - zl[j] + zu[j];
    y.forEach((yk, k) => (rj -= yk * g.eq[k][j]));
    z.forEach((zk, k) => (rj -= zk * g.ineq[k][j]));
    assert.ok(Math.abs(rj) <= tol.kkt * scale, `${p.name}: ∂L/∂x${j} = ${rj}`);
  }
  // feasibility
  for (const c of v.eq) assert.ok(Math.abs(c) <= tol.feas * 10, `${p.name}: c_E = ${c}`);
  for (const c of v.ineq) assert.ok(c >= -tol.feas * 10, `${p.name}: c_I = ${c} < 0`);
  for (let j = 0; j < n; j++) {
    if (p.lower) assert.ok(x[j] >= p.lower[j] - tol.feas, `${p.name}: x${j} below its bound`);
    if (p.upper) assert.ok(x[j] <= p.upper[j] + tol.feas, `${p.name}: x${j} above its bound`);
  }
  // signs and complementarity
  z.forEach((zk, k) => {
    assert.ok(zk >= 0, `${p.name}: inequality multiplier ${k} = ${zk} < 0`);
    assert.ok(Math.abs(zk * v.ineq[k]) <= tol.compl, `${p.name}: z·c_I = ${zk * v.ineq[k]}`);
  });
  for (let j = 0; j < n; j++) {
    assert.ok(zl[j] >= 0 && zu[j] >= 0, `${p.name}: bound multipliers of x${j} negative`);
    if (p.lower) assert.ok(Math.abs(zl[j] * (x[j] - p.lower[j])) <= tol.compl);
    else assert.equal(zl[j], 0, "no lower bound, no multiplier");
    if (p.upper) assert.ok(Math.abs(zu[j] * (p.upper[j] - x[j])) <= tol.compl);
    else assert.equal(zu[j], 0, "no upper bound, no multiplier");
  }
  // the published optimum
  assert.ok(
    Math.abs(r.fun - p.fStar) <= tol.f * Math.max(1, Math.abs(p.fStar)),
    `${p.name}: f = ${r.fun}, published ${p.fStar}`,
  );
  assertClose(x, p.xStar, { atol: tol.x, rtol: 0, msg: `${p.name}: x*` });
}

function dispose(r: MinimizeResult): void {
  r.x.dispose();
  r.jac.dispose();
  const m = r.multipliers!;
  for (const t of [m.eq, m.ineq, m.lower, m.upper]) t.dispose();
}

async function solveHs(
  p: HsProblem,
  b: Backend,
  extra: Partial<MinimizeOptions> = {},
): Promise<MinimizeResult> {
  const o = { dtype: b.dtype, device: b.dev } as const;
  const fns = tensorFunctions(p);
  const x0 = tensor(p.x0, o);
  const lower = p.lower ? tensor(p.lower, o) : undefined;
  const upper = p.upper ? tensor(p.upper, o) : undefined;
  try {
    return await minimize(fns.f, x0, {
      method: "ipm",
      constraints: { eq: fns.eq, ineq: fns.ineq },
      bounds: p.lower || p.upper ? { lower, upper } : undefined,
      ...extra,
    });
  } finally {
    for (const t of [x0, lower, upper]) t?.dispose();
  }
}

for (const p of HS) {
  testAll(
    `ipm: ${p.name} reaches the published optimum; KKT conditions hold independently`,
    async (b) => {
      const base = memory();
      const r = await solveHs(p, b);
      assert.ok(r.converged, `${p.name}: ${r.message} after ${r.iterations} iterations`);
      await checkKkt(p, r, b.dtype);
      // the reported measures agree with what the check found
      assert.ok(r.constraintViolation! <= tolerances(b.dtype).feas * 10);
      assert.ok(r.kktResidual! >= r.constraintViolation! && r.kktResidual! >= r.complementarity!);
      dispose(r);
      assertNoLeak(base, p.name);
    },
  );
}

for (const p of HS) {
  testAll(
    `ipm (monotone μ): ${p.name} reaches the published optimum; KKT conditions hold`,
    async (b) => {
      const r = await solveHs(p, b, { barrier: "monotone" });
      assert.ok(r.converged, `${p.name}: ${r.message} after ${r.iterations} iterations`);
      await checkKkt(p, r, b.dtype);
      dispose(r);
    },
    ["cpu-f64"],
  );
}

Deno.test("ipm: HS071 in IPOPT's 8 iterations (IPOPT's monotone μ), with IPOPT's multipliers", async () => {
  const hs071 = HS.find((p) => p.name === "hs071")!;
  const backend = { name: "cpu-f64", dev: cpu, dtype: "f64" as const, rtol: 0 };
  const r = await solveHs(hs071, backend, { barrier: "monotone" });
  // IPOPT 3.11's documented HS071 run: 8 iterations; λ = (−0.552, 0.1615) for
  // L = f + λᵀg with g = (x1x2x3x4 ≥ 25, Σx² = 40), z_L = (1.0879, ~0, ~0, ~0)
  assert.ok(r.iterations <= 10, `${r.iterations} iterations`);
  const m = r.multipliers!;
  assertClose(await m.ineq.data(), [0.55229366], { rtol: 1e-6 });
  assertClose(await m.eq.data(), [-0.16146857], { rtol: 1e-6 });
  assertClose(await m.lower.data(), [1.08787122, 0, 0, 0], { atol: 1e-7, rtol: 1e-6 });
  dispose(r);
});

testAll("ipm: infeasible problems are reported as infeasible, not converged", async (b) => {
  const o = { dtype: b.dtype, device: b.dev } as const;
  const base = memory();
  const cases: [string, Parameters<typeof minimize>[2]["constraints"], number[]][] = [
    // x² + 1 = 0 has no real solution; the least violation is at x = 0
    ["x² + 1 = 0", { eq: (x: Tensor) => x.square().add(1) }, [1.5]],
    // the unit disc and the half plane x + y ≥ 3 do not meet
    ["disc ∩ half plane", {
      ineq: (x: Tensor) =>
        concat([x.square().sum().neg().add(1).reshape([1]), x.sum().sub(3).reshape([1])]),
    }, [0.1, 0.2]],
  ];
  for (const [name, constraints, start] of cases) {
    const x0 = tensor(start, o);
    const r = await minimize((x: Tensor) => x.square().sum(), x0, {
      method: "ipm",
      constraints,
      maxIter: 200,
    });
    assert.equal(r.converged, false, `${name}: reported converged (${r.message})`);
    assert.match(r.message, /infeasible/, `${name}: ${r.message}`);
    assert.ok(r.constraintViolation! > 0.1, `${name}: violation ${r.constraintViolation}`);
    x0.dispose();
    dispose(r);
  }
  assertNoLeak(base, "infeasible");
});

testAll(
  "ipm: HS071 with its equality scaled by 10⁻² and 10² still converges, KKT conditions hold",
  async (b) => {
    // The augmented term ρ J_Eᵀ J_E must not grow with the equalities' scale: its rounding,
    // ε ρ ‖J_E‖², lands on the reduced Hessian. With ρ = max K_ii and c_E × 10², f32 steps
    // along the constraints' null space were noise and the solve stalled at KKT ~ 10⁻².
    const hs071 = HS.find((p) => p.name === "hs071")!;
    for (const scale of [1e-2, 1e2]) {
      const p: HsProblem = {
        ...hs071,
        name: `hs071 (c_E × ${scale})`,
        eq: (x) => hs071.eq!(x).map((c) => c.mul(scale)),
      };
      const r = await solveHs(p, b);
      assert.ok(r.converged, `${p.name}: ${r.message} after ${r.iterations} iterations`);
      await checkKkt(p, r, b.dtype);
      dispose(r);
    }
  },
);

testAll(
  "ipm: projection onto the disc with a steep objective (S ≤ 10⁴), with and without x₁ ≤ 0.5",
  async (b) => {
    // min S ‖x − (2, 2)‖² s.t. 1 − ‖x‖² ≥ 0 (and x₁ ≤ 0.5). In f32 at S = 1000 the unscaled
    // objective (‖∇f(x0)‖∞ = 3800) threw the first step far outside the disc, its slack to
    // 10⁻¹⁰ and Σ_s past what f32 factorises: the inertia correction's shift left the f32
    // range (a RangeError from the KKT solve). With x₁ ≤ 0.5, S ≥ 500, x₁ rounded onto its
    // bound and μ/(x_U − x) stopped the solve with ‖∇L‖∞ = Infinity.
    const o = { dtype: b.dtype, device: b.dev } as const;
    const base = memory();
    // f64 solves to gtol 1e-8; f32 to 1e-4 on the scaled KKT error, whose Lagrangian has
    // curvature ≥ 2 s_f S ≈ 50 here, so x lies within 1e-4 (measured: 3e-7)
    const xtol = b.dtype === "f64" ? 1e-7 : 1e-4, rtol = b.dtype === "f64" ? 1e-7 : 1e-3;
    const c = tensor([2, 2], o);
    for (const S of [1000, 1e4]) {
      for (const bounded of [false, true]) {
        const name = `S = ${S}${bounded ? ", x₁ ≤ 0.5" : ""}`;
        const x0 = tensor([0.1, 0.2], o);
        const upper = bounded ? tensor([0.5, Infinity], o) : null;
        const r = await minimize((x: Tensor) => x.sub(c).square().sum().mul(S), x0, {
          method: "ipm",
          constraints: { ineq: (x: Tensor) => x.square().sum().neg().add(1).reshape([1]) },
          ...(upper ? { bounds: { upper } } : {}),
        });
        assert.ok(r.converged, `${name}: ${r.message}`);
        // the closed form: x* = c/‖c‖, λ = S (‖c‖ − 1); with the bound x* = (0.5, √0.75),
        // λ = S (2 − x₂)/x₂ and z_U = 3S − λ from stationarity ∇f + 2λx + z_U e₁ = 0
        const x2 = Math.sqrt(0.75);
        const xs = bounded ? [0.5, x2] : [Math.SQRT1_2, Math.SQRT1_2];
        const lam = bounded ? S * (2 - x2) / x2 : S * (2 * Math.SQRT2 - 1);
        const fStar = S * ((xs[0] - 2) ** 2 + (xs[1] - 2) ** 2);
        const x = Array.from(await r.x.data());
        x.forEach((v, i) => assert.ok(Math.abs(v - xs[i]) <= xtol, `${name}: x = ${x}`));
        assert.ok(Math.abs(r.fun - fStar) <= rtol * fStar, `${name}: f = ${r.fun}, ${fStar}`);
        const [l] = await r.multipliers!.ineq.data();
        assert.ok(Math.abs(l - lam) <= rtol * lam, `${name}: λ = ${l}, expected ${lam}`);
        if (bounded) {
          const [zu] = await r.multipliers!.upper.data();
          const zStar = 3 * S - lam;
          assert.ok(Math.abs(zu - zStar) <= rtol * 3 * S, `${name}: z_U = ${zu}, ${zStar}`);
        }
        for (const t of [x0, upper]) t?.dispose();
        dispose(r);
      }
    }
    c.dispose();
    assertNoLeak(base, "steep disc");
  },
);

testAll(
  "ipm: an untested (tiny) step stays strictly inside its bounds in f32 rounding",
  async (b) => {
    // the step of the S = 500 disc solve (x₁ ≤ 0.5) one iteration before it stopped: the
    // fraction to the boundary allows it (gap 2.98e-7 > 2.86e-7), and x + dx rounds to 0.5 in f32
    const o = { dtype: b.dtype, device: b.dev } as const;
    const x = tensor([0.4999997019767761, -0.4999997019767761], o);
    const dx = tensor([2.861930852304795e-7, -2.861930852304795e-7], o);
    const bounds = { lower: tensor([-Infinity, -0.5], o), upper: tensor([0.5, Infinity], o) };
    const bs = await boundSet(bounds, x);
    const xt = trialX(x, dx, 1, bs, b.dtype === "f64" ? 2 ** -52 : 2 ** -23);
    const [u, l] = await xt.data();
    assert.ok(u < 0.5 && l > -0.5, `trial ${u}, ${l} on its bounds`);
    // a step that stays clear of the margin is taken as it is (x + dx, rounded)
    const far = trialX(x, dx, -1, bs, 2 ** -23);
    assertClose(await far.data(), [
      0.4999997019767761 - 2.861930852304795e-7,
      -0.4999997019767761 + 2.861930852304795e-7,
    ], { rtol: b.rtol });
    for (const t of [x, dx, bounds.lower, bounds.upper, xt, far]) t.dispose();
    disposeBounds(bs);
  },
);

testAll("ipm: the starting multipliers are IPOPT's least-squares estimates", async (b) => {
  // min ‖∇f − y ∇c_E − λ ∇c_I‖² + (λ − 1)² at x₀ = (0.3, 0.5) for f = x₀² + x₁²,
  // c_E = x₀ + x₁ − 1, c_I = x₀: ∇f = (0.6, 1.0), and the normal equations
  // 2y + λ = 1.6, y + 2λ = 1.6 give y = λ = 1.6/3 (by hand). f × 10⁴ is scaled by s_f =
  // 100/‖∇f(x₀)‖∞ = 10⁻² (IPOPT's gradient-based scaling): ∇f becomes (60, 100), and
  // 2y + λ = 160, y + 2λ = 61 give y = 259/3, λ = −38/3, within IPOPT's constr_mult_init_max
  // = 1000, so they are kept: the user's are those over s_f. Constraints × 10⁻⁴ (f unscaled)
  // need y ≈ 0.8 · 10⁴ to carry ∇f's (1, 1) part, beyond 1000: then both start at 0.
  const o = { dtype: b.dtype, device: b.dev } as const;
  const cases = [[1, 1, 1.6 / 3, 1.6 / 3], [1e4, 1, 25900 / 3, -3800 / 3], [1, 1e-4, 0, 0]];
  for (const [scale, cScale, wantY, wantL] of cases) {
    const x0 = tensor([0.3, 0.5], o);
    const r = await minimize((x: Tensor) => x.square().sum().mul(scale), x0, {
      method: "ipm",
      maxIter: 0,
      constraints: {
        eq: (x: Tensor) => x.sum().sub(1).reshape([1]).mul(cScale),
        ineq: (x: Tensor) => x.slice([0], [1]).mul(cScale),
      },
    });
    const tol = { rtol: b.dtype === "f64" ? 1e-12 : 1e-5, atol: 1e-6 };
    const msg = `f × ${scale}, c × ${cScale}`;
    assertClose(await r.multipliers!.eq.data(), [wantY], { ...tol, msg: `y, ${msg}` });
    assertClose(await r.multipliers!.ineq.data(), [wantL], { ...tol, msg: `λ, ${msg}` });
    x0.dispose();
    dispose(r);
  }
});

Deno.test("ipm: the obstacle path at N = 64 reaches IPOPT's local optimum", async () => {
  // IPOPT 3.11.9 (../shared/reference/ipopt/traj.c --form B --N 64) ends at f = 0.0720440297,
  // below the first obstacle; before IPOPT's start (least-squares multipliers) and with the
  // slack reset inside the line search's tests, ipm crossed above it to f = 0.0852312807
  const { trajectoryProblem, BANDWIDTH } = await import("../examples/trajectory_problem.ts");
  const prob = trajectoryProblem(64, { weighting: "ipopt", dtype: "f64", device: cpu });
  const x0 = tensor(prob.init, { dtype: "f64", device: cpu });
  const r = await minimize(prob.smoothness, x0, {
    method: "ipm",
    bandwidth: BANDWIDTH,
    constraints: { eq: prob.eq, ineq: prob.ineq },
  });
  assert.ok(r.converged, r.message);
  assert.ok(r.constraintViolation! <= 1e-8);
  assertClose([r.fun], [0.0720440297], { rtol: 1e-5 });
  x0.dispose();
  dispose(r);
  prob.dispose();
});

testAll("ipm: compiled passes (jit) give the uncompiled iterates", async (b) => {
  // minimize compiles ipm's passes; the same solve with every pass traced afresh must visit
  // the same iterates, to the rounding of kernels fused differently
  const hs071 = HS.find((p) => p.name === "hs071")!;
  const o = { dtype: b.dtype, device: b.dev } as const;
  const fns = tensorFunctions(hs071);
  const lower = tensor(hs071.lower!, o), upper = tensor(hs071.upper!, o);
  const run = async (compiled: boolean) => {
    const xs: number[][] = [];
    const x0 = tensor(hs071.x0, o);
    const r = await ipm(new Objective(fns.f, undefined, compiled), x0, {
      method: "ipm",
      constraints: { eq: fns.eq, ineq: fns.ineq },
      bounds: { lower, upper },
      onIteration: async (i) => void xs.push(Array.from(await i.x.data())),
    });
    x0.dispose();
    r.x.dispose();
    for (const t of Object.values(r.multipliers!)) t.dispose();
    return { xs, r };
  };
  const plain = await run(false), compiled = await run(true);
  assert.equal(compiled.r.iterations, plain.r.iterations, "iterations");
  assert.ok(plain.r.status === 0 && compiled.r.status === 0, compiled.r.message);
  const rtol = b.dtype === "f64" ? 1e-9 : 1e-4;
  plain.xs.forEach((x, k) =>
    assertClose(compiled.xs[k], x, { rtol, atol: rtol, msg: `iterate ${k}` })
  );
  lower.dispose();
  upper.dispose();
});
