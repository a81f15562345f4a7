/**
 * Error paths free what they allocated (issue 8, defect 5). Every public function that
 * allocates and calls user code is run with a user function that throws at its k-th call,
 * for k = 0, 1, 2, … until the run completes without reaching call k; after each failed
 * run `memory()` must be back at its baseline (device buffers included on WebGPU). Methods
 * of `minimize` are taken from `minimizeMethods()`, so a new method is covered at once.
 */
import assert from "node:assert/strict";
import {
  bandedHessian,
  cg,
  gaussNewtonVp,
  grad,
  hessian,
  hessianDiagonal,
  hessianEigenvalues,
  hessianSparsity,
  hessianTrace,
  hvp,
  inverseHvp,
  jacobian,
  jacobianSparsity,
  jit,
  jvp,
  kfacFactors,
  memory,
  minimize,
  minimizeMethods,
  mlp,
  mseLoss,
  neumann,
  neumannSeries,
  sparseHessian,
  sparseJacobian,
  sum,
  type Tensor,
  tensor,
  valueAndGrad,
  vjp,
  vmap,
} from "../mod.ts";
import { type Backend, sameMemory, testAll } from "./helpers.ts";

class Boom extends Error {
  constructor(k: number) {
    super(`boom at call ${k}`);
  }
}

/** Frees every tensor inside a result (arrays, objects, `tensors()` holders). */
function disposeDeep(v: unknown, seen = new Set<unknown>()): void {
  if (v === null || typeof v !== "object" || seen.has(v)) return;
  seen.add(v);
  if ((v as { _isTensor?: boolean })._isTensor) return (v as Tensor).dispose();
  const holder = v as { tensors?: () => Tensor[] };
  if (typeof holder.tensors === "function") return holder.tensors().forEach((t) => t.dispose());
  for (const x of Array.isArray(v) ? v : Object.values(v)) disposeDeep(x, seen);
}

type Wrap = <A extends unknown[], R>(fn: (...a: A) => R) => (...a: A) => R;

/**
 * Runs `call(wrap)` with every user function wrapped by `wrap` throwing at shared call k,
 * for k = 0, 1, …; checks memory after each failure. Returns how many failures were tested.
 */
async function throwAtEachCall(
  name: string,
  call: (wrap: Wrap) => unknown,
  maxK = 60,
): Promise<number> {
  for (let k = 0; k < maxK; k++) {
    const base = memory();
    let calls = 0;
    const wrap: Wrap = (fn) => (...a) => {
      if (calls++ === k) throw new Boom(k);
      return fn(...a);
    };
    let result: unknown = null;
    let failed = false;
    try {
      result = await call(wrap);
    } catch (e) {
      if (!(e instanceof Boom)) throw e;
      failed = true;
    }
    if (!failed) {
      disposeDeep(result);
      assert.ok(calls <= k, `${name}: finished although call ${k} threw`);
      assertBaseline(base, `${name} (completed, ${calls} calls)`);
      return k;
    }
    assertBaseline(base, `${name}, throwing at call ${k}`);
  }
  return maxK;
}

function assertBaseline(base: ReturnType<typeof memory>, what: string): void {
  const m = memory();
  assert.ok(
    sameMemory(base, m),
    `${what}: ${m.tensors - base.tensors} tensors / ${m.bytes - base.bytes} bytes leaked`,
  );
}

const mk = (bk: Backend, data: number[], shape?: number[]) =>
  tensor(data, { shape, dtype: bk.dtype, device: bk.dev });

/** A smooth objective with a tridiagonal Hessian, positive definite near [1, …, 1]. */
const objective = (x: Tensor): Tensor => {
  const n = x.size;
  const a = x.slice([0], [n - 1]), b = x.slice([1], [n]);
  return sum(b.sub(a.square()).square()).add(sum(x.sub(1).square()));
};

const METHOD_OPTIONS: Record<string, Record<string, unknown>> = {
  "newton-banded": { bandwidth: 1 },
};

testAll("error paths: minimize frees everything when f throws, for every method", async (bk) => {
  for (const method of minimizeMethods()) {
    using x0 = mk(bk, [0.5, 0.8, 1.2, 0.9]);
    // a few iterations reach every kind of call (values, gradients, products, the line search)
    const opts = { method, maxIter: 3, ...(METHOD_OPTIONS[method] ?? {}) };
    const tested = await throwAtEachCall(
      `minimize ${method}`,
      (wrap) => minimize(wrap(objective), x0, opts as Parameters<typeof minimize>[2]),
    );
    assert.ok(tested >= 1, `${method}: f was never called`);
  }
});

testAll("error paths: curvature estimators free everything when f throws", async (bk) => {
  using x = mk(bk, [0.5, 0.8, 1.2, 0.9]);
  using v = mk(bk, [1, -1, 0.5, 2]);
  const cases: [string, (wrap: Wrap) => unknown][] = [
    [
      "hessianDiagonal hutchinson",
      (w) =>
        hessianDiagonal(w(objective), x, { method: "hutchinson", samples: 6, seed: 1, batch: 2 }),
    ],
    [
      "hessianDiagonal comb",
      (w) => hessianDiagonal(w(objective), x, { method: "comb", bandwidth: 1 }),
    ],
    [
      "hessianTrace hutchinson",
      (w) => hessianTrace(w(objective), x, { method: "hutchinson", samples: 6, seed: 1, batch: 2 }),
    ],
    [
      "hessianTrace hutch++",
      (w) => hessianTrace(w(objective), x, { method: "hutch++", samples: 6, seed: 1, batch: 2 }),
    ],
    ["hessianTrace comb", (w) => hessianTrace(w(objective), x, { method: "comb", bandwidth: 1 })],
    [
      "hessianEigenvalues power",
      (w) =>
        hessianEigenvalues(w(objective), x, { k: 2, method: "power", maxIter: 30, checkEvery: 3 }),
    ],
    [
      "hessianEigenvalues lanczos",
      (w) => hessianEigenvalues(w(objective), x, { k: 2, method: "lanczos", checkEvery: 2 }),
    ],
    ["bandedHessian direct", (w) => bandedHessian(w(objective), x, { bandwidth: 1 })],
    [
      "bandedHessian substitution",
      (w) => bandedHessian(w(objective), x, { bandwidth: 1, method: "substitution" }),
    ],
    ["inverseHvp cg", (w) => inverseHvp(w(objective), x, v, { method: "cg", damping: 1 })],
    [
      "inverseHvp neumann",
      (w) =>
        inverseHvp(w(objective), x, v, { method: "neumann", damping: 1, terms: 8, scale: 0.05 }),
    ],
  ];
  for (const [name, call] of cases) await throwAtEachCall(name, call);
});

testAll("error paths: solvers free everything when the matvec throws", async (bk) => {
  using d = mk(bk, [2, 3, 4, 5]);
  using b = mk(bk, [1, 2, 3, 4]);
  using x0 = mk(bk, [0, 0, 1, 0]);
  const mv = (u: Tensor) => u.mul(d);
  const cases: [string, (wrap: Wrap) => unknown][] = [
    ["cg", (w) => cg(w(mv), b, { rtol: 1e-6 })],
    ["cg with x0", (w) => cg(w(mv), b, { rtol: 1e-6, x0 })],
    ["neumann", (w) => neumann(w(mv), b, { terms: 10, scale: 0.1 })],
    ["neumannSeries", (w) => neumannSeries(w(mv), b, { terms: 10, scale: 0.1 })],
  ];
  for (const [name, call] of cases) await throwAtEachCall(name, call);
});

testAll("error paths: transforms free everything when f throws", async (bk) => {
  using x = mk(bk, [0.5, 0.8, 1.2, 0.9]);
  using v = mk(bk, [1, -1, 0.5, 2]);
  using V = mk(bk, [1, 0, 0, 0, 0, 1, 0, 0], [2, 4]);
  const vec = (z: Tensor) => z.square().mul(z.slice([0], [1]));
  const cases: [string, (wrap: Wrap) => unknown][] = [
    ["grad", (w) => grad(w(objective))(x)],
    ["grad of grad", (w) => grad((z: Tensor) => sum(grad(w(objective))(z) as Tensor))(x)],
    ["valueAndGrad", (w) => valueAndGrad(w(objective))(x)],
    ["jvp", (w) => jvp(w(objective), [x], [v])],
    ["vjp and its pullback", (w) => {
      const [y, pull] = vjp(w(vec), x);
      try {
        return pull(v);
      } finally {
        y.dispose();
        pull.dispose();
      }
    }],
    ["hvp", (w) => hvp(w(objective), x, v)],
    ["hvp with K probes", (w) => hvp(w(objective), x, V)],
    ["hessian", (w) => hessian(w(objective), x)],
    ["jacobian rev", (w) => jacobian(w(vec), x, { mode: "rev" })],
    ["jacobian fwd", (w) => jacobian(w(vec), x, { mode: "fwd" })],
    ["vmap", (w) => vmap(w((z: Tensor) => z.square().sum()))(V)],
  ];
  for (const [name, call] of cases) await throwAtEachCall(name, call);
});

testAll(
  "error paths: Gauss-Newton and K-FAC free everything when the model or loss throws",
  async (bk) => {
    using X = mk(bk, [1, 2, 3, 4, 5, 6], [3, 2]);
    using y = mk(bk, [1, 0, 1], [3, 1]);
    using w = mk(bk, [0.1, -0.2]);
    using u = mk(bk, [1, 0]);
    const net = mlp([2, 3, 1], "tanh", { dtype: bk.dtype, device: bk.dev });
    using params = net.params;
    const cases: [string, (wrap: Wrap) => unknown][] = [
      ["gaussNewtonVp", (wr) =>
        gaussNewtonVp(
          wr((p: Tensor, inp: Tensor) => inp.matmul(p.reshape([2, 1]))),
          wr((out: Tensor) => mseLoss(out, y)),
          w,
          X,
          u,
        )],
      ["kfacFactors", (wr) => kfacFactors(net, params, X, wr((out: Tensor) => mseLoss(out, y)))],
    ];
    for (const [name, call] of cases) await throwAtEachCall(name, call);
  },
);

testAll(
  "error paths: sparse Hessians and Jacobians, sparsity detection, jit and constraints",
  async (bk) => {
    using x = mk(bk, [0.5, 0.8, 1.2, 0.9]);
    const vec = (z: Tensor) => z.square().mul(z.slice([0], [1]));
    const pattern = hessianSparsity(objective, x);
    const cases: [string, (wrap: Wrap) => unknown][] = [
      ["sparseHessian (detected pattern)", (w) => sparseHessian(w(objective), x)],
      ["sparseHessian (given pattern)", (w) => sparseHessian(w(objective), x, { pattern })],
      ["sparseJacobian", (w) => sparseJacobian(w(vec), x)],
      ["hessianSparsity", (w) => hessianSparsity(w(objective), x)],
      ["jacobianSparsity", (w) => jacobianSparsity(w(vec), x)],
      ["jit (first call traces)", (w) => jit(w(objective))(x)],
      ["jit (a later call replays)", (w) => {
        const g = jit(grad(w(objective)) as (z: Tensor) => Tensor);
        g(x).dispose();
        return g(x);
      }],
      [
        "minimize ipm, an inequality constraint throws",
        (w) =>
          minimize(w(objective), x, {
            method: "ipm",
            maxIter: 3,
            constraints: {
              ineq: w((z: Tensor) => z.sub(0.1)),
              eq: w((z: Tensor) => z.sum().sub(3.4).reshape([1])),
            },
          }),
      ],
    ];
    for (const [name, call] of cases) await throwAtEachCall(name, call);
  },
);
