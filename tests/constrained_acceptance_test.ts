/**
 * Issue 13's deliverables called as a user calls them (everything from mod.ts), on every
 * backend: `minimize(…, { method: "ipm" })` with bounds alone (as numbers and as tensors,
 * x of rank 2), a start outside the bounds, equalities alone (a 0-d constraint), inequalities
 * alone, dependent equalities, infeasible problems with bounds, the result's and
 * `onIteration`'s fields, and the errors a user meets; `trust-exact` leaving a saddle on a
 * banded and on a dense Hessian; `newton-banded`'s trust-region steps where its line search
 * stalls. (The Hock–Schittkowski problems and the banded-vs-dense KKT solve are in
 * ipm_test.ts and ipm_kkt_test.ts, the demo in ipm_demo_test.ts, `solveBandedGeneral`
 * against SciPy in banded_general_test.ts.)
 *
 * References are closed forms — projections onto boxes, hyperplanes and balls with their
 * multipliers — and f64 arithmetic written here (gradients, Hessians, their LDLᵀ pivots),
 * sharing no code with the library.
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
import { HS, tensorFunctions } from "./hs_problems.ts";

/** Tolerances: f64 solves to gtol 1e-8, f32 to 1e-4 (x off an active bound by ~gtol / z). */
const tol = (b: Backend) =>
  b.dtype === "f64"
    ? { x: 1e-6, mult: 1e-6, viol: 1e-8, compl: 1e-7 }
    : { x: 2e-3, mult: 5e-3, viol: 1e-3, compl: 1e-3 };

const place = (b: Backend) => ({ dtype: b.dtype, device: b.dev }) as const;

/** Frees a result's tensors and returns its values on the host. */
async function take(r: MinimizeResult) {
  const m = r.multipliers!;
  const out = {
    x: Array.from(await r.x.data()),
    eq: Array.from(await m.eq.data()),
    ineq: Array.from(await m.ineq.data()),
    lower: Array.from(await m.lower.data()),
    upper: Array.from(await m.upper.data()),
    shapes: [r.x, r.jac, m.eq, m.ineq, m.lower, m.upper].map((t) => [...t.shape]),
  };
  for (const t of [r.x, r.jac, m.eq, m.ineq, m.lower, m.upper]) t.dispose();
  return out;
}

/** The reported measures agree with each other and with a solved problem. */
function assertSolved(r: MinimizeResult, b: Backend, what: string): void {
  assert.equal(r.status, 0, `${what}: ${r.message}`);
  assert.ok(r.converged && r.success, what);
  assert.match(r.message, /^converged/);
  assert.ok(r.constraintViolation! >= 0 && r.constraintViolation! <= tol(b).viol, what);
  assert.ok(r.complementarity! >= 0 && r.complementarity! <= tol(b).compl, what);
  assert.ok(r.kktResidual! >= Math.max(r.constraintViolation!, r.complementarity!), what);
}

// ---------------------------------------------------------------- bounds alone

/** f = Σ (x − c)² over x of shape [2, 3]: x* = clip(c, lower, upper). */
const C = [-1, 0.25, 2, 0.5, 3, -2];

/** x* and the bound multipliers from 2(x − c) = z_L − z_U, by hand. */
function boxSolution(lower: number[], upper: number[]) {
  const x = C.map((c, i) => Math.min(Math.max(c, lower[i]), upper[i]));
  return {
    x,
    zL: x.map((v, i) => Math.max(0, 2 * (v - C[i]))),
    zU: x.map((v, i) => Math.max(0, -2 * (v - C[i]))),
  };
}

testAll(
  "ipm with bounds alone: numbers and tensors (±Infinity for none), x of rank 2, x* = clip(c), multipliers by hand",
  async (b) => {
    const o = place(b);
    const base = memory();
    const c = tensor(C, { ...o, shape: [2, 3] });
    const f = (x: Tensor) => x.sub(c).square().sum();
    const inf = Infinity;
    const cases: [string, MinimizeOptions["bounds"], number[], number[]][] = [
      ["numbers", { lower: 0, upper: 1 }, Array(6).fill(0), Array(6).fill(1)],
      ["only a lower number", { lower: 0.4 }, Array(6).fill(0.4), Array(6).fill(inf)],
      [
        "tensors",
        {
          lower: tensor([[-inf, 0.5, 0], [-inf, 0, -3]], o),
          upper: tensor([[-0.5, inf, 1.5], [0.25, inf, -2.5]], o),
        },
        [-inf, 0.5, 0, -inf, 0, -3],
        [-0.5, inf, 1.5, 0.25, inf, -2.5],
      ],
    ];
    for (const [name, bounds, lo, up] of cases) {
      const x0 = tensor([[0.1, 0.6, 0.2], [0.1, 0.3, -2.7]], o);
      const r = await minimize(f, x0, { method: "ipm", bounds });
      assertSolved(r, b, name);
      const got = await take(r);
      assert.deepEqual(got.shapes, [[2, 3], [2, 3], [0], [0], [2, 3], [2, 3]], name);
      const want = boxSolution(lo, up);
      const t = tol(b);
      assertClose(got.x, want.x, { atol: t.x, rtol: 0, msg: `${name}: x` });
      assertClose(got.lower, want.zL, { atol: t.mult, rtol: 0, msg: `${name}: z_L` });
      assertClose(got.upper, want.zU, { atol: t.mult, rtol: 0, msg: `${name}: z_U` });
      // no bound, no multiplier: exactly zero
      lo.forEach((l, i) => l === -inf && assert.equal(got.lower[i], 0, `${name}: z_L[${i}]`));
      up.forEach((u, i) => u === inf && assert.equal(got.upper[i], 0, `${name}: z_U[${i}]`));
      x0.dispose();
      for (const v of Object.values(bounds!)) if (typeof v !== "number") v.dispose();
    }
    c.dispose();
    assertNoLeak(base, "bounds alone");
  },
);

testAll(
  "ipm: a start outside the bounds is moved inside them (as IPOPT does) and solved",
  async (b) => {
    const o = place(b);
    const c = tensor(C, { ...o, shape: [2, 3] });
    const x0 = tensor([[10, -10, 5], [-4, 8, 0]], o);
    const starts: number[][] = [];
    const r = await minimize((x: Tensor) => x.sub(c).square().sum(), x0, {
      method: "ipm",
      bounds: { lower: 0, upper: 1 },
      onIteration: async (i) => void (i.iteration === 0 && starts.push([...await i.x.data()])),
    });
    assertSolved(r, b, "outside");
    // IPOPT's bound_push: strictly inside, and the start itself untouched
    assert.ok(starts[0].every((v) => v > 0 && v < 1), `the first iterate ${starts[0]}`);
    assert.deepEqual(Array.from(await x0.data()), [10, -10, 5, -4, 8, 0]);
    const got = await take(r);
    assertClose(got.x, boxSolution(Array(6).fill(0), Array(6).fill(1)).x, {
      atol: tol(b).x,
      rtol: 0,
    });
    for (const t of [c, x0]) t.dispose();
  },
);

// ---------------------------------------------------------------- equalities, inequalities

testAll(
  "ipm with one equality alone, returned as a 0-d tensor: the projection onto a hyperplane",
  async (b) => {
    const o = place(b);
    // min ‖x − c‖² s.t. aᵀx = β: x* = c + a (β − aᵀc)/‖a‖², and ∇f = a y gives
    // y = 2 (β − aᵀc)/‖a‖² (aᵀc = −1.5, ‖a‖² = 5.25)
    const [a, c, beta] = [[1, -2, 0.5], [1, 2, 3], 1];
    const k = (beta + 1.5) / 5.25;
    const [at, ct] = [tensor(a, o), tensor(c, o)];
    const x0 = tensor([0, 0, 0], o);
    const r = await minimize((x: Tensor) => x.sub(ct).square().sum(), x0, {
      method: "ipm",
      constraints: { eq: (x: Tensor) => x.mul(at).sum().sub(beta) },
    });
    assertSolved(r, b, "hyperplane");
    const got = await take(r);
    assert.deepEqual(got.shapes.slice(2), [[1], [0], [3], [3]]);
    const t = tol(b);
    assertClose(got.x, c.map((ci, i) => ci + a[i] * k), { atol: t.x, rtol: 0, msg: "x" });
    assertClose(got.eq, [2 * k], { atol: t.mult, rtol: 0, msg: "y" });
    assert.deepEqual([...got.lower, ...got.upper], Array(6).fill(0));
    for (const u of [at, ct, x0]) u.dispose();
  },
);

testAll(
  "ipm with inequalities alone: the ball's nearest point (active, λ = ‖c‖ − 1) and an inactive one (λ = 0)",
  async (b) => {
    const o = place(b);
    // min ‖x − c‖² s.t. 1 − ‖x‖² ≥ 0, x₀ + 10 ≥ 0, c = (2, −1, 2), ‖c‖ = 3: x* = c/3 and
    // 2(x − c) = −2λx gives λ = ‖c‖ − 1 = 2; the second constraint is slack by 10.67
    const c = tensor([2, -1, 2], o);
    const x0 = tensor([0.1, 0.1, 0.1], o);
    const iterations: number[][] = [];
    const r = await minimize((x: Tensor) => x.sub(c).square().sum(), x0, {
      method: "ipm",
      constraints: {
        ineq: (x: Tensor) =>
          concat([x.square().sum().neg().add(1).reshape([1]), x.slice([0], [1]).add(10)]),
      },
      onIteration: (i) =>
        void iterations.push([i.iteration, i.constraintViolation!, i.complementarity!]),
    });
    assertSolved(r, b, "ball");
    // onIteration saw every iteration, the last with the result's measures
    assert.deepEqual(iterations.map((v) => v[0]), [...Array(r.iterations + 1).keys()]);
    const last = iterations.at(-1)!;
    assert.equal(last[1], r.constraintViolation);
    assert.equal(last[2], r.complementarity);
    assert.ok(iterations.every((v) => v[1] >= 0 && v[2] >= 0));
    const got = await take(r);
    const t = tol(b);
    assertClose(got.x, [2 / 3, -1 / 3, 2 / 3], { atol: t.x, rtol: 0, msg: "x" });
    assertClose(got.ineq, [2, 0], { atol: t.mult, rtol: 0, msg: "λ" });
    for (const u of [c, x0]) u.dispose();
  },
);

testAll(
  "ipm: dependent equalities (rank-deficient J_E) converge; stationarity with the returned multipliers",
  async (b) => {
    const o = place(b);
    const base = memory();
    // x₀ + x₁ = 1 twice (the second times 2): x* = (0.5, 0.5) for c = (3, 3), and the
    // multipliers are not unique but satisfy 2(x − c) = (y₀ + 2y₁)(1, 1): y₀ + 2y₁ = −5
    const x0 = tensor([0, 0], o);
    const r = await minimize((x: Tensor) => x.sub(3).square().sum(), x0, {
      method: "ipm",
      constraints: {
        eq: (x: Tensor) =>
          concat([x.sum().sub(1).reshape([1]), x.sum().mul(2).sub(2).reshape([1])]),
      },
    });
    assertSolved(r, b, "dependent");
    const got = await take(r);
    const t = tol(b);
    assertClose(got.x, [0.5, 0.5], { atol: t.x, rtol: 0 });
    assertClose([got.eq[0] + 2 * got.eq[1]], [-5], { atol: t.mult * 10, rtol: 0, msg: "y" });
    x0.dispose();
    assertNoLeak(base, "dependent equalities");
  },
);

testAll(
  "ipm: infeasible with bounds (a box and a half plane, a box and an equality outside it) is reported as such",
  async (b) => {
    const o = place(b);
    const base = memory();
    // in [0, 1]², x₀ + x₁ ≥ 3 and x₀ = 2 both miss by 1 at best (x₀ = 1 resp. x₀ = x₁ = 1)
    const cases: [string, MinimizeOptions["constraints"]][] = [
      ["x₀ + x₁ ≥ 3", { ineq: (x: Tensor) => x.sum().sub(3) }],
      ["x₀ = 2", { eq: (x: Tensor) => x.slice([0], [1]).sub(2) }],
    ];
    for (const [name, constraints] of cases) {
      const x0 = tensor([0.5, 0.5], o);
      const r = await minimize((x: Tensor) => x.square().sum(), x0, {
        method: "ipm",
        constraints,
        bounds: { lower: 0, upper: 1 },
        maxIter: 300,
      });
      assert.equal(r.converged, false, `${name}: ${r.message}`);
      assert.equal(r.success, false);
      assert.notEqual(r.status, 0);
      assert.match(r.message, /infeasible/, name);
      // the message's violation is the returned point's, and the best possible is 1
      const v = Number(r.message.match(/largest violation (\S+) at the returned x/)?.[1]);
      assertClose([v], [r.constraintViolation!], { rtol: 1e-3, msg: `${name}: ${r.message}` });
      assert.ok(r.constraintViolation! >= 1 - tol(b).viol, `${name}: ${r.constraintViolation}`);
      const got = await take(r);
      assert.ok(got.x.every((v) => v >= 0 && v <= 1), `${name}: x = ${got.x} leaves the box`);
      x0.dispose();
    }
    assertNoLeak(base, "infeasible with bounds");
  },
);

testAll(
  "ipm: HS071 (equality, inequality and bounds): onIteration reports every measure",
  async (b) => {
    const hs071 = HS.find((p) => p.name === "hs071")!;
    const o = place(b);
    const fns = tensorFunctions(hs071);
    const x0 = tensor(hs071.x0, o);
    const seen: number[][] = [];
    const r = await minimize(fns.f, x0, {
      method: "ipm",
      constraints: { eq: fns.eq, ineq: fns.ineq },
      bounds: { lower: 1, upper: 5 },
      onIteration: (i) =>
        void seen.push([i.constraintViolation!, i.complementarity!, i.kktResidual!, i.mu!, i.fun]),
    });
    assertSolved(r, b, "hs071");
    assert.equal(seen.length, r.iterations + 1);
    assert.ok(seen.every((v) => v.every(Number.isFinite) && v[3] > 0), JSON.stringify(seen));
    // the start (1, 5, 5, 1) pushed into 1 ≤ x ≤ 5 by IPOPT's rule, min(κ₁ max(1, |bound|),
    // κ₂ (x_U − x_L)) with κ₁ = κ₂ = 0.01: to (1.01, 4.96, 4.96, 1.01), where Σx² − 40 = 11.2434
    assertClose([seen[0][0]], [2 * 1.01 ** 2 + 2 * 4.96 ** 2 - 40], {
      rtol: b.dtype === "f64" ? 1e-12 : 1e-6,
      msg: "violation at the start",
    });
    assert.equal(seen.at(-1)![0], r.constraintViolation);
    assertClose([r.fun], [17.0140173], { rtol: b.dtype === "f64" ? 1e-8 : 1e-4 });
    await take(r);
    x0.dispose();
  },
);

testAll(
  "ipm: kktResidual (unscaled) and kktError (scaled, what gtol tests) mean the same in onIteration and in the result",
  async (b) => {
    const o = place(b);
    const base = memory();
    // the disc's point nearest (2, 2) below x₁ = ½: (√¾, ½), with λ and z_U of about 1.3·S and
    // 1.7·S by hand, so for S = 300 the multipliers exceed 100 and the two measures differ
    // (S = 500 and more: f32 runs into a non-finite ∇L near the solution)
    const S = 300;
    const c = tensor([2, 2], o);
    const upper = tensor([Infinity, 0.5], o);
    const x0 = tensor([0.1, 0.1], o);
    const seen: [number, number][] = [];
    const r = await minimize((x: Tensor) => x.sub(c).square().sum().mul(S), x0, {
      method: "ipm",
      constraints: { ineq: (x: Tensor) => x.square().sum().neg().add(1).reshape([1]) },
      bounds: { upper },
      onIteration: (i) => void seen.push([i.kktResidual!, i.kktError!]),
    });
    assertSolved(r, b, "disc");
    assert.equal(seen.length, r.iterations + 1);
    assert.deepEqual(seen.at(-1), [r.kktResidual, r.kktError]);
    // gtol is tested against the scaled error; the unscaled one is larger here
    assert.match(r.message, /^converged: KKT error below gtol/);
    assert.ok(r.kktError! <= (b.dtype === "f64" ? 1e-8 : 1e-4), `${r.kktError}`);
    assert.ok(seen.some(([res, err]) => res > 2 * err), JSON.stringify(seen));
    const got = await take(r);
    assertClose(got.x, [Math.sqrt(0.75), 0.5], { atol: tol(b).x, rtol: 0 });
    for (const t of [c, upper, x0]) t.dispose();
    assertNoLeak(base, "disc");
  },
);

testAll(
  "ipm: kktResidual and kktError of a stopped solve, from its x and multipliers by hand (bounds alone)",
  async (b) => {
    const o = place(b);
    const base = memory();
    // f = S Σ (x − c)² in a box: ∇L = 2S(x − c) − z_L + z_U, products (x − l) z_L, (u − x) z_U;
    // E₀ divides ∇L and the products by s = max(100, mean z over the finite bounds) / 100
    const S = 1000, inf = Infinity;
    const lo = [-inf, 0.5, 0, -inf, 0, -3], up = [-0.5, inf, 1.5, 0.25, inf, -2.5];
    const c = tensor(C, { ...o, shape: [2, 3] });
    const bounds = {
      lower: tensor(lo, { ...o, shape: [2, 3] }),
      upper: tensor(up, { ...o, shape: [2, 3] }),
    };
    // x0 = c (outside the box, moved inside): ∇f(x0) = 0 leaves the objective unscaled
    // (s_f = 1, IPOPT's gradient-based scaling), so these are the user's multipliers and E₀'s
    // own division by their size is what is exercised
    const x0 = tensor(C, { ...o, shape: [2, 3] });
    const f = (x: Tensor) => x.sub(c).square().sum().mul(S);
    let sMax = 0;
    for (const maxIter of [1, 2, 3, 5]) {
      const seen: [number, number][] = [];
      const r = await minimize(f, x0, {
        method: "ipm",
        bounds,
        maxIter,
        onIteration: (i) => void seen.push([i.kktResidual!, i.kktError!]),
      });
      assert.equal(r.status, 1, r.message);
      assert.deepEqual(seen.at(-1), [r.kktResidual, r.kktError]);
      const { x, lower: zL, upper: zU } = await take(r);
      const dual = Math.max(...x.map((v, i) => Math.abs(2 * S * (v - C[i]) - zL[i] + zU[i])));
      const prods = [
        ...x.flatMap((v, i) => lo[i] === -inf ? [] : [(v - lo[i]) * zL[i]]),
        ...x.flatMap((v, i) => up[i] === inf ? [] : [(up[i] - v) * zU[i]]),
      ];
      const zs = [...zL.filter((_, i) => lo[i] !== -inf), ...zU.filter((_, i) => up[i] !== inf)];
      const s = Math.max(100, zs.reduce((a, v) => a + v, 0) / zs.length) / 100;
      sMax = Math.max(sMax, s);
      assert.ok(x.every((v, i) => v > lo[i] && v < up[i]), `x = ${x} inside the box`);
      const compl = Math.max(...prods);
      // f32: ∇L is a difference of terms of size S·|x − c|, rounded on the device
      const atol = b.dtype === "f64" ? 1e-9 : 2e-3;
      assertClose([r.kktResidual!, r.kktError!], [
        Math.max(dual, compl),
        Math.max(dual / s, compl / s),
      ], {
        atol,
        rtol: b.dtype === "f64" ? 1e-10 : 1e-4,
        msg: `maxIter ${maxIter} (s = ${s})`,
      });
    }
    assert.ok(sMax > 1.2, `the scaling is exercised: s = ${sMax}`);
    for (const t of [c, bounds.lower, bounds.upper, x0]) t.dispose();
    assertNoLeak(base, "stopped");
  },
);

// ---------------------------------------------------------------- what a user gets wrong

testAll(
  "ipm: a bounds tensor must have x's shape, not only its size (a number bounds every component)",
  async (b) => {
    const o = place(b);
    const base = memory();
    const c = tensor([[-1, 0.25], [2, 0.5], [3, -2]], o);
    const f = (x: Tensor) => x.sub(c).square().sum();
    const x0 = tensor([[0.1, 0.6], [0.2, 0.1], [0.3, -0.7]], o);
    // the same six numbers in shapes that are not x's [3, 2]: each would pair bounds with the
    // wrong components (or broadcast), so each is refused, naming both shapes
    for (const shape of [[2, 3], [6], [3, 2, 1]]) {
      for (const side of ["lower", "upper"] as const) {
        const t = tensor(side === "lower" ? Array(6).fill(0) : Array(6).fill(1), { ...o, shape });
        await assert.rejects(
          () => minimize(f, x0, { method: "ipm", bounds: { [side]: t } }),
          new RegExp(
            `^RangeError: minimize \\(ipm\\): bounds\\.${side} has shape \\[${shape}\\], but x0 ` +
              `has shape \\[3,2\\]; expected a number or a tensor of shape \\[3,2\\]$`,
          ),
          `${side} of shape [${shape}]`,
        );
        t.dispose();
      }
    }
    const zero = tensor(0, o);
    await assert.rejects(
      () => minimize(f, x0, { method: "ipm", bounds: { lower: zero } }),
      /bounds\.lower has shape \[\], but x0 has shape \[3,2\]/,
    );
    zero.dispose();
    // x's own shape and a number are accepted: x* = clip(c, lower, 1) by hand
    const lower = tensor([[0, -Infinity], [0, 0], [-Infinity, -1]], o);
    const r = await minimize(f, x0, { method: "ipm", bounds: { lower, upper: 1 } });
    assertSolved(r, b, "[3, 2] bounds");
    const got = await take(r);
    assertClose(got.x, [0, 0.25, 1, 0.5, 1, -1], { atol: tol(b).x, rtol: 0 });
    for (const t of [c, x0, lower]) t.dispose();
    assertNoLeak(base, "bound shapes");
  },
);

Deno.test("ipm: clear errors for constraints and bounds a user gets wrong, naming the call, the shapes and what was expected", async () => {
  const o = { dtype: "f64" as const, device: cpu };
  const base = memory();
  const x0 = tensor([0.5, 0.5], o);
  const q = (x: Tensor) => x.square().sum();
  let calls = 0;
  const bad: [string, Record<string, unknown>, RegExp][] = [
    [
      "a 2-D constraint",
      { constraints: { ineq: (x: Tensor) => x.reshape([1, 2]) } },
      /minimize \(ipm\): constraints.ineq must return a 1-D tensor \(or a scalar\), got shape \[1,2\]$/,
    ],
    [
      "a number for a constraint",
      { constraints: { eq: () => 3 } },
      /minimize \(ipm\): constraints.eq must return a 1-D tensor \(or a scalar\), got number 3/,
    ],
    [
      "a constraint count that changes",
      { constraints: { ineq: (x: Tensor) => (++calls > 1 ? x : x.sum().reshape([1])) } },
      /constraints.ineq returned 2 values, but 1 before; the number of constraints must not change/,
    ],
    [
      "more equalities than variables",
      { constraints: { eq: (x: Tensor) => concat([x, x.sum().reshape([1])]) } },
      /minimize \(ipm\): constraints.eq returned 3 values for 2 variables \(x \[2\]\); more equalities than variables/,
    ],
    [
      "a constraint of another dtype",
      { constraints: { ineq: () => tensor([1, 2], { dtype: "f32", device: cpu }) } },
      /minimize \(ipm\): constraints.ineq returned f32 on cpu, but x0 is f64 on cpu/,
    ],
    [
      "lower > upper",
      { bounds: { lower: tensor([0, 2], o), upper: tensor([1, 1], o) } },
      /minimize \(ipm\): bounds.lower\[1\] = 2 exceeds bounds.upper\[1\] = 1/,
    ],
    ["a lower bound of +∞", { bounds: { lower: Infinity } }, /bounds.lower is Infinity/],
    [
      "an upper bound of −∞",
      { bounds: { upper: tensor([1, -Infinity], o) } },
      /bounds.upper\[1\] is -Infinity/,
    ],
    ["a NaN bound", { bounds: { upper: tensor([NaN, 1], o) } }, /bounds.upper\[0\] is NaN/],
    [
      "a bound of the wrong size",
      { bounds: { upper: tensor([1, 2, 3], o) } },
      /minimize \(ipm\): bounds.upper has shape \[3\], but x0 has shape \[2\]; expected a number or a tensor of shape \[2\]$/,
    ],
    [
      "a bound that is neither number nor tensor",
      { bounds: { lower: [0, 0] } },
      /minimize \(ipm\): bounds.lower must be a number or a Tensor of x's shape, got/,
    ],
  ];
  for (const [name, opts, msg] of bad) {
    await assert.rejects(
      () => minimize(q, x0, { method: "ipm", ...opts } as MinimizeOptions),
      msg,
      name,
    );
    for (const v of Object.values((opts.bounds ?? {}) as Record<string, unknown>)) {
      if (v && typeof v === "object" && "dispose" in v) (v as Tensor).dispose();
    }
  }
  // failures at the start, with bounds (whose tensors the method makes): nothing left behind
  await assert.rejects(
    () => minimize((x: Tensor) => x.square(), x0, { method: "ipm", bounds: { lower: 0 } }),
    /minimize \(ipm\): the objective must return a scalar tensor, got shape \[2\] for x \[2\]/,
  );
  for (const bandwidth of [undefined, 1]) {
    await assert.rejects(
      () =>
        minimize(q, x0, {
          method: "ipm",
          bounds: { lower: 0 },
          bandwidth,
          constraints: {
            ineq: () => {
              throw new Error("the user's own error");
            },
          },
        }),
      /^Error: the user's own error$/,
    );
  }
  // a start where f or a constraint is not finite: status 3, never "converged"
  for (const [start, ineq] of [[[NaN, 0], undefined], [[-1, 0], (x: Tensor) => x.log()]] as const) {
    const x = tensor([...start], o);
    const r = await minimize(q, x, { method: "ipm", constraints: ineq ? { ineq } : undefined });
    assert.equal(r.status, 3, r.message);
    assert.match(r.message, /not finite/);
    await take(r);
    x.dispose();
  }
  x0.dispose();
  assertNoLeak(base, "ipm errors");
});

// ---------------------------------------------------------------- trust-exact at a saddle

/**
 * f = Σ (x_i⁴/4 − s_i x_i²/2) + coupling, s_i = +1 at even i and −1 at odd i, so at x = 0
 * ∇f = 0 with H = −diag(s) + coupling indefinite: a saddle. Banded coupling (c/2) Σ
 * (x_{i+1} − x_i)², or dense (d/2)(Σ x)². Gradient and Hessian here in f64 by hand.
 */
const SADDLE_N = 12;
const sign = (i: number) => (i % 2 ? -1 : 1);
const saddles = {
  banded: {
    c: 0.1,
    grad(x: number[]) {
      return x.map((v, i) =>
        v ** 3 - sign(i) * v +
        0.1 * ((i > 0 ? v - x[i - 1] : 0) + (i < x.length - 1 ? v - x[i + 1] : 0))
      );
    },
    hess(x: number[]) {
      const n = x.length;
      return x.map((v, i) =>
        Array.from({ length: n }, (_, j) => {
          if (i === j) return 3 * v * v - sign(i) + 0.1 * ((i > 0 ? 1 : 0) + (i < n - 1 ? 1 : 0));
          return Math.abs(i - j) === 1 ? -0.1 : 0;
        })
      );
    },
  },
  dense: {
    grad(x: number[]) {
      const s = x.reduce((a, v) => a + v, 0);
      return x.map((v, i) => v ** 3 - sign(i) * v + 0.1 * s);
    },
    hess(x: number[]) {
      return x.map((v, i) => x.map((_, j) => (i === j ? 3 * v * v - sign(i) : 0) + 0.1));
    },
  },
};

/** The pivots of H's LDLᵀ (Gaussian elimination without pivoting), in f64. */
function ldlPivots(h: number[][]): number[] {
  const a = h.map((r) => [...r]), n = a.length, d: number[] = [];
  for (let k = 0; k < n; k++) {
    d.push(a[k][k]);
    for (let i = k + 1; i < n; i++) {
      const l = a[i][k] / a[k][k];
      for (let j = k; j < n; j++) a[i][j] -= l * a[k][j];
    }
  }
  return d;
}

testAll(
  "trust-exact started at a saddle (∇f = 0, H indefinite) leaves it, banded and dense, to a minimum checked by hand",
  async (b) => {
    const o = place(b);
    const base = memory();
    const s = tensor(Array.from({ length: SADDLE_N }, (_, i) => sign(i)), o);
    const core = (x: Tensor) => x.square().square().mul(0.25).sub(x.square().mul(s).mul(0.5)).sum();
    const n = SADDLE_N;
    const fs = {
      banded: (x: Tensor) =>
        core(x).add(x.slice([1], [n]).sub(x.slice([0], [n - 1])).square().sum().mul(0.05)),
      dense: (x: Tensor) => core(x).add(x.sum().square().mul(0.05)),
    };
    // the saddle is one by hand: the pivots of H(0) have both signs
    for (const form of ["banded", "dense"] as const) {
      const p0 = ldlPivots(saddles[form].hess(Array(n).fill(0)));
      assert.ok(p0.some((p) => p < 0) && p0.some((p) => p > 0), `${form}: H(0) pivots ${p0}`);
      const x0 = tensor(Array(n).fill(0), o);
      const shifts: number[] = [];
      const gtol = b.dtype === "f64" ? 1e-8 : 1e-4;
      const r = await minimize(fs[form], x0, {
        method: "trust-exact",
        // the banded form says so; the dense one has a dense pattern (detected)
        ...(form === "banded" ? { bandwidth: 1 } : {}),
        gtol,
        onIteration: (i) => void (i.iteration > 0 && shifts.push(i.shift!)),
      });
      assert.equal(r.status, 0, `${form}: ${r.message}`);
      // the first step's λ is positive: H(0) + λI had to be made positive semidefinite
      assert.ok(shifts[0] > 0, `${form}: first λ ${shifts[0]}`);
      assert.ok(r.fun < -0.5, `${form}: f = ${r.fun} (the saddle has f = 0)`);
      const x = Array.from(await r.x.data());
      const g = saddles[form].grad(x);
      const gnorm = Math.hypot(...g);
      assert.ok(gnorm <= (b.dtype === "f64" ? 1e-8 : 1e-3), `${form}: ‖∇f‖ by hand ${gnorm}`);
      const piv = ldlPivots(saddles[form].hess(x));
      assert.ok(piv.every((p) => p > 0.01), `${form}: H(x*) pivots ${piv}: not a minimum`);
      for (const t of [x0, r.x, r.jac]) t.dispose();
    }
    s.dispose();
    assertNoLeak(base, "trust-exact saddle");
  },
);

// ---------------------------------------------------------------- newton-banded's fallback

testAll(
  "newton-banded takes trust-region steps where its line search stalls (Σ √(1 + x²) from far out)",
  async (b) => {
    const o = place(b);
    const base = memory();
    // f = Σ √(1 + x_i²): g = x/√(1 + x²), H = (1 + x²)^(−3/2) > 0, so the Newton step is
    // p = −x (1 + x²), a descent direction 100 to 1,000 times too long from |x| ≥ 8: all six
    // trials of the documented 5 halvings (t = 1 … 1/32) raise f, by hand here
    const start = [10, -8, 12, 9];
    const f = (x: number[]) => x.reduce((a, v) => a + Math.sqrt(1 + v * v), 0);
    for (let k = 0; k <= 5; k++) {
      const t = 2 ** -k;
      const trial = start.map((v) => v - t * v * (1 + v * v));
      assert.ok(f(trial) > f(start), `t = ${t}: the line search could accept ${trial}`);
    }
    const x0 = tensor(start, o);
    const steps: { t: number; radius?: number }[] = [];
    const r = await minimize((x: Tensor) => x.square().add(1).sqrt().sum(), x0, {
      method: "newton-banded",
      bandwidth: 1,
      gtol: b.dtype === "f64" ? 1e-8 : 1e-4,
      onIteration: (i) =>
        void (i.iteration > 0 && steps.push({ t: i.stepSize!, radius: i.trustRadius })),
    });
    assert.equal(r.status, 0, r.message);
    // the first iteration is a trust-region step (stepSize 0, a radius reported)
    assert.equal(steps[0].t, 0, JSON.stringify(steps));
    assert.ok(steps[0].radius! > 0);
    // and line-search steps take over again: the last ones are full Newton steps
    assert.equal(steps.at(-1)!.t, 1, JSON.stringify(steps));
    assertClose([r.fun], [4], { rtol: b.dtype === "f64" ? 1e-14 : 1e-6 });
    assertClose(await r.x.data(), [0, 0, 0, 0], { atol: b.dtype === "f64" ? 1e-8 : 1e-4, rtol: 0 });
    for (const t of [x0, r.x, r.jac]) t.dispose();
    assertNoLeak(base, "newton-banded fallback");
  },
);

// ---------------------------------------------------------------- banded vs dense KKT

/**
 * A chain with boundary conditions, as a trajectory has: f = Σ (x_{i+1} − x_i)² +
 * Σ (x_i − sin i)², x₀ = 0.2 and x_{n−1} = −0.1, x_i² + x_{i+1}² ≤ 0.2, x ≥ −0.6: the
 * condensed matrix has bandwidth 1. Its derivatives by hand, for the KKT check.
 */
const CHAIN_N = 16;
const chainPlain = {
  gradF: (x: number[]) =>
    x.map((v, j) =>
      (j > 0 ? 2 * (v - x[j - 1]) : 0) - (j < x.length - 1 ? 2 * (x[j + 1] - v) : 0) +
      2 * (v - Math.sin(j))
    ),
  ineq: (x: number[]) => x.slice(0, -1).map((v, i) => 0.2 - v * v - x[i + 1] ** 2),
};

testAll(
  "ipm: the banded KKT solve (bandwidth 1, and detected) gives the dense path's answer; KKT conditions by hand",
  async (b) => {
    const o = place(b);
    const base = memory();
    const n = CHAIN_N;
    const t = tensor(Array.from({ length: n }, (_, i) => Math.sin(i)), o);
    const f = (x: Tensor) =>
      x.slice([1], [n]).sub(x.slice([0], [n - 1])).square().sum()
        .add(x.sub(t).square().sum());
    const constraints = {
      eq: (x: Tensor) => concat([x.slice([0], [1]).sub(0.2), x.slice([n - 1], [n]).add(0.1)]),
      ineq: (x: Tensor) =>
        x.slice([0], [n - 1]).square().add(x.slice([1], [n]).square()).neg().add(0.2),
    };
    const solve = async (bandwidth?: number) => {
      const x0 = tensor(Array(n).fill(0), o);
      const r = await minimize(f, x0, {
        method: "ipm",
        constraints,
        bounds: { lower: -0.6 },
        ...(bandwidth === undefined ? {} : { bandwidth }),
      });
      x0.dispose();
      assertSolved(r, b, `bandwidth ${bandwidth}`);
      return { nhvp: r.nhvp, iterations: r.iterations, ...await take(r) };
    };
    const [banded, detected, dense] = [await solve(1), await solve(), await solve(n - 1)];
    // 2b + 1 = 3 comb probes per Hessian against n for the dense path
    assert.ok(banded.nhvp * 3 < dense.nhvp, `banded ${banded.nhvp}, dense ${dense.nhvp} HVPs`);
    assert.equal(detected.nhvp, banded.nhvp, "the detected band is 1");
    const tl = tol(b);
    assertClose(banded.x, dense.x, { atol: tl.x, rtol: 0, msg: "banded vs dense x" });
    assertClose(detected.x, banded.x, { atol: tl.x, rtol: 0, msg: "detected vs banded x" });
    // KKT by hand: ∇f − y₀ e₀ − y₁ e_{n−1} − Σ λ_i ∇c_i − z_L = 0, c_I ≥ 0, λ ≥ 0, λ c_I ≈ 0
    const { x, eq: y, ineq: lam, lower: zl } = banded;
    const r = chainPlain.gradF(x);
    r[0] -= y[0];
    r[n - 1] -= y[1];
    lam.forEach((l, i) => {
      r[i] += 2 * l * x[i];
      r[i + 1] += 2 * l * x[i + 1];
    });
    zl.forEach((z, j) => (r[j] -= z));
    const stat = Math.max(...r.map(Math.abs));
    assert.ok(stat <= (b.dtype === "f64" ? 1e-7 : 2e-2), `‖∇L‖∞ by hand ${stat}`);
    assertClose([x[0], x[n - 1]], [0.2, -0.1], { atol: tl.viol * 10, rtol: 0, msg: "c_E" });
    const c = chainPlain.ineq(x);
    assert.ok(c.every((v) => v >= -tl.viol), `c_I ${c}`);
    assert.ok(lam.every((l) => l >= 0) && zl.every((z) => z >= 0), "multiplier signs");
    // some obstacles are active (the sin target overshoots the disc) and complementary
    assert.ok(lam.some((l) => l > 0.01), `λ = ${lam}`);
    lam.forEach((l, i) => assert.ok(Math.abs(l * c[i]) <= tl.compl * 10, `λ c_I at ${i}`));
    x.forEach((v, j) => assert.ok(Math.abs(zl[j] * (v + 0.6)) <= tl.compl * 10, `z_L at ${j}`));
    t.dispose();
    assertNoLeak(base, "banded vs dense");
  },
);
