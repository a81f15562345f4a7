/**
 * Sparsity detection: the traced pattern must contain every entry that is non-zero in the
 * dense Hessian (or Jacobian) at random points, for functions that exercise every family of
 * rules; where the exact pattern is known in closed form, it must be that pattern (the
 * tracer is not allowed to be lazily dense).
 */
import assert from "node:assert/strict";
import {
  abs,
  concat,
  cpu,
  det,
  exp,
  gather,
  grad,
  hessian,
  hessianSparsity,
  jacobian,
  jacobianSparsity,
  log,
  logdet,
  logsumexp,
  matmul,
  max,
  maximum,
  mean,
  pad,
  pow,
  reshape,
  scatterAdd,
  sigmoid,
  sin,
  slice,
  softplus,
  solve,
  sqrt,
  sum,
  tanh,
  type Tensor,
  tensor,
  transpose,
  vmap,
  where,
} from "../mod.ts";
import { SparsityPattern } from "../mod.ts";
import { type Backend, BACKENDS, gpuDev, randArray, testAll } from "./helpers.ts";
import { CASES } from "./primitive_cases.ts";

const dev = cpu();
/** The backends detection runs on: the tracer computes the primal on x's device alongside. */
const ON: Backend[] = BACKENDS.filter((b) => b.name !== "cpu-f32");
const CPU64 = ON[0];
const point = (n: number, seed: number, lo = -1, hi = 1, be = CPU64) =>
  tensor(randArray(n, seed, lo, hi), { dtype: be.dtype, device: be.dev });
/** A constant of x's dtype on x's device. */
const like = (x: Tensor, v: number[] | number[][]) =>
  tensor(v, { dtype: x.dtype, device: x.device });

/**
 * Every |H[i][j]| > tol of the dense matrix must be an entry of the pattern. The tolerance
 * only forgives rounding where a true zero is computed as a difference: 1e-12 of the
 * largest entry in f64, 1e-5 in f32 (a few ulps of it).
 */
function assertCovers(
  p: SparsityPattern,
  dense: ArrayLike<number>,
  rows: number,
  cols: number,
  what: string,
  rel = 1e-12,
) {
  assert.deepEqual([...p.shape], [rows, cols], `${what}: pattern shape`);
  let scale = 0;
  for (let k = 0; k < dense.length; k++) scale = Math.max(scale, Math.abs(dense[k]));
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = dense[i * cols + j];
      if (Math.abs(v) > rel * Math.max(scale, 1) && !p.has(i, j)) {
        throw new Error(`${what}: entry (${i}, ${j}) = ${v} is missing from the pattern`);
      }
    }
  }
}

const relTol = (be: Backend) => (be.dtype === "f64" ? 1e-12 : 1e-5);

/** The pattern detected on `be`, checked against dense Hessians on `be` at three random points. */
async function checkHessian(
  f: (x: Tensor) => Tensor,
  n: number,
  what: string,
  lo = -1,
  hi = 1,
  be = CPU64,
) {
  const x = point(n, 1, lo, hi, be);
  const p = hessianSparsity(f, x);
  x.dispose();
  assert.ok(p.symmetric, `${what}: the Hessian pattern must be symmetric`);
  for (const seed of [2, 3, 4]) {
    const xs = point(n, seed, lo, hi, be);
    const H = hessian(f)(xs);
    assertCovers(p, await H.data(), n, n, `${what} (point ${seed}, ${be.name})`, relTol(be));
    H.dispose();
    xs.dispose();
  }
  return p;
}

const tri = (x: Tensor) => {
  const n = x.size;
  return sum(slice(x, [1], [n]).sub(slice(x, [0], [n - 1])).square());
};

/** Entries of a pattern as "i,j" strings, for exact comparisons. */
function entries(p: SparsityPattern): string[] {
  const out: string[] = [];
  for (let i = 0; i < p.shape[0]; i++) {
    for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) out.push(`${i},${p.colIdx[k]}`);
  }
  return out;
}

Deno.test("hessianSparsity: exact patterns in closed form", async (t) => {
  await t.step("tridiagonal from squared differences", async () => {
    const p = await checkHessian(tri, 6, "tri");
    assert.deepEqual(p.nnz, 6 + 2 * 5);
    assert.deepEqual(p.bandwidth, 1);
    assert.deepEqual(p.maxRowNonzeros, 3);
  });
  await t.step("arrowhead: x₀ · Σ x[1:] couples x₀ with all, nothing else", async () => {
    const f = (x: Tensor) => slice(x, [0], [1]).mul(sum(slice(x, [1], [5]))).sum();
    const p = await checkHessian(f, 5, "arrowhead");
    assert.deepEqual(entries(p), ["0,1", "0,2", "0,3", "0,4", "1,0", "2,0", "3,0", "4,0"]);
  });
  await t.step("5-point stencil on a grid", async () => {
    const [h, w] = [4, 5];
    const f = (x: Tensor) => {
      const g = reshape(x, [h, w]);
      const dx = slice(g, [1, 0], [h, w]).sub(slice(g, [0, 0], [h - 1, w]));
      const dy = slice(g, [0, 1], [h, w]).sub(slice(g, [0, 0], [h, w - 1]));
      return sum(sqrt(dx.square().add(0.1))).add(sum(sqrt(dy.square().add(0.1))));
    };
    const p = await checkHessian(f, h * w, "grid");
    for (let i = 0; i < h * w; i++) {
      for (let j = 0; j < h * w; j++) {
        const [ri, ci, rj, cj] = [Math.floor(i / w), i % w, Math.floor(j / w), j % w];
        const near = Math.abs(ri - rj) + Math.abs(ci - cj) <= 1;
        assert.deepEqual(p.has(i, j), near, `grid entry (${i}, ${j})`);
      }
    }
  });
  await t.step("piecewise-linear and linear functions have an empty Hessian pattern", () => {
    const f = (x: Tensor) =>
      sum(abs(x)).add(max(x)).add(sum(maximum(x, 0.5))).add(sum(x.mul(3).sub(1)));
    assert.deepEqual(hessianSparsity(f, point(4, 1)).nnz, 0);
  });
  await t.step("dead code adds nothing; a constant function has no pattern", () => {
    const f = (x: Tensor) => {
      exp(x).sum(); // computed, never used
      return sum(x);
    };
    assert.deepEqual(hessianSparsity(f, point(4, 1)).nnz, 0);
    assert.deepEqual(hessianSparsity(() => tensor(1, { dtype: "f64" }), point(3, 1)).nnz, 0);
  });
  await t.step("under vmap: (Σ row)² per row of a [3, 2] view is block diagonal", () => {
    const f = (x: Tensor) => sum(vmap((r: Tensor) => sum(r).square())(reshape(x, [3, 2])));
    const blocks = [
      "0,0",
      "0,1",
      "1,0",
      "1,1",
      "2,2",
      "2,3",
      "3,2",
      "3,3",
      "4,4",
      "4,5",
      "5,4",
      "5,5",
    ];
    assert.deepEqual(entries(hessianSparsity(f, point(6, 1))), blocks);
  });
  await t.step("products couple across, not within: x₀x₁ has no diagonal", () => {
    const f = (x: Tensor) => slice(x, [0], [1]).mul(slice(x, [1], [2])).sum();
    assert.deepEqual(entries(hessianSparsity(f, point(2, 1))), ["0,1", "1,0"]);
  });
  await t.step("a / b is linear in a: no (a, a) entry", () => {
    const f = (x: Tensor) => slice(x, [0], [1]).div(slice(x, [1], [2])).sum();
    assert.deepEqual(entries(hessianSparsity(f, point(2, 1, 1, 2))), ["0,1", "1,0", "1,1"]);
  });
});

testAll("hessianSparsity covers the dense Hessian at random points", async (be) => {
  const cases: [string, (x: Tensor) => Tensor, number, number?, number?][] = [
    ["unary chain", (x) => sum(tanh(sin(x).mul(2)).add(sigmoid(x)).mul(exp(x.mul(0.1)))), 5],
    [
      "log, sqrt, reciprocal, log1p, expm1, softplus",
      (x) =>
        sum(log(x).add(sqrt(x)).add(x.reciprocal()).add(x.log1p()).add(x.expm1()).add(softplus(x))),
      4,
      0.5,
      2,
    ],
    ["x[i] · x[i+2]", (x) => sum(slice(x, [0], [4]).mul(slice(x, [2], [6]))), 6],
    ["x[i] / x[i+1]", (x) => sum(slice(x, [0], [4]).div(slice(x, [1], [5]))), 5, 1, 2],
    ["pow(x[i], x[i+1])", (x) => sum(pow(slice(x, [0], [3]), slice(x, [1], [4]))), 4, 0.5, 2],
    ["where(x > 0, x², x³)", (x) => sum(where(x.greater(0), x.square(), x.pow(3))), 4],
    ["(Σx)²: dense", (x) => sum(x).square(), 4],
    ["max over rows, squared", (x) => sum(max(reshape(x, [2, 3]), 1).square()), 6],
    ["mean and logsumexp", (x) => mean(x.square()).add(logsumexp(reshape(x, [2, 2]), 1).sum()), 4],
    ["xᵀAx with a constant A", (x) => {
      const A = like(x, [[2, 1, 0], [1, 3, 0], [0, 0, 1]]);
      return sum(x.mul(matmul(A, x)));
    }, 3],
    ["trace(X X) for X = reshape(x)", (x) => {
      const X = reshape(x, [2, 2]);
      return sum(matmul(X, X).mul(like(x, [[1, 0], [0, 1]])));
    }, 4],
    ["batched matmul of two blocks", (x) => {
      const A = reshape(slice(x, [0], [8]), [2, 2, 2]);
      return sum(matmul(A, transpose(A, [0, 2, 1])).square());
    }, 8],
    ["transpose, broadcast, concat, pad", (x) => {
      const X = reshape(x, [2, 3]);
      const y = concat([transpose(X), pad(slice(X, [0, 1], [1, 3]), [[1, 0], [0, 0]])], 0);
      return sum(y.square().mul(y.add(reshape(x, [1, 6]).sum())));
    }, 6],
    ["gather with repeats, scatter-add", (x) => {
      const g = gather(x, [3, 0, 3, 1]);
      const s = scatterAdd(x.square(), [1, 1, 0, 2, 2], 0, [3]);
      return sum(g.mul(slice(g, [0], [4]).exp())).add(sum(s.square()));
    }, 5],
    ["logdet and det of a shifted matrix", (x) => {
      const X = reshape(x, [2, 2]).add(like(x, [[3, 0], [0, 3]]));
      return logdet(X.matmul(transpose(X))).add(det(X));
    }, 4],
    ["solve(A(x), b(x))", (x) => {
      const A = reshape(slice(x, [0], [4]), [2, 2]).add(like(x, [[3, 0], [0, 3]]));
      const b = reshape(slice(x, [4], [6]), [2, 1]);
      return sum(solve(A, b));
    }, 6],
    ["a gradient inside the function (gradient penalty)", (x) => {
      const g = grad((y: Tensor) => sum(y.square().mul(slice(y, [0], [1]))))(x);
      return sum(g.square());
    }, 4],
    [
      "an integer cast cuts the dependence",
      (x) => sum(x.square().astype("i32").astype(x.dtype).mul(x)),
      3,
    ],
  ];
  for (const [name, f, n, lo, hi] of cases) await checkHessian(f, n, name, lo, hi, be);
}, ["cpu-f64", "webgpu-f32"]);

testAll("jacobianSparsity covers the dense Jacobian", async (be) => {
  const cases: [string, (x: Tensor) => Tensor, number][] = [
    ["differences", (x) => slice(x, [1], [5]).sub(slice(x, [0], [4])), 5],
    ["elementwise nonlinear", (x) => exp(x).mul(sin(x)), 4],
    ["matmul with a constant", (x) => matmul(like(x, [[1, 0, 2], [0, 0, 1]]), x), 3],
    ["outer product (2-D output)", (x) => reshape(x, [3, 1]).mul(reshape(x, [1, 3])), 3],
    ["sum over one axis", (x) => sum(reshape(x, [2, 3]).square(), 0), 6],
  ];
  for (const [name, c, n] of cases) {
    const x = point(n, 1, -1, 1, be);
    const p = jacobianSparsity(c, x);
    const y = c(x);
    for (const seed of [2, 3]) {
      const xs = point(n, seed, -1, 1, be);
      const J = jacobian(c, { mode: "fwd" })(xs);
      assertCovers(p, await J.data(), y.size, n, `${name} (${be.name})`, relTol(be));
      J.dispose();
      xs.dispose();
    }
    x.dispose();
    y.dispose();
  }
}, ["cpu-f64", "webgpu-f32"]);

Deno.test("jacobianSparsity of differences: exactly two entries per row", () => {
  const p = jacobianSparsity((x) => slice(x, [1], [5]).sub(slice(x, [0], [4])), point(5, 1));
  assert.deepEqual(entries(p), ["0,0", "0,1", "1,1", "1,2", "2,2", "2,3", "3,3", "3,4"]);
});

Deno.test("sparsity detection: clear errors and checked patterns", async (t) => {
  await t.step("bad arguments", () => {
    assert.throws(() => hessianSparsity(tri, [1, 2] as unknown as Tensor), {
      name: "TypeError",
      message: /x\ must\ be\ a\ Tensor/,
    });
    assert.throws(() => hessianSparsity(1 as unknown as () => Tensor, point(3, 1)), {
      name: "TypeError",
      message: /expected\ a\ function/,
    });
    assert.throws(() => hessianSparsity((x) => x.square(), point(3, 1)), {
      name: "RangeError",
      message: /must\ return\ a\ scalar/,
    });
    assert.throws(() => jacobianSparsity(() => 1 as unknown as Tensor, point(3, 1)), {
      name: "TypeError",
      message: /must\ return\ a\ Tensor/,
    });
  });
  await t.step("SparsityPattern checks its CSR arrays", () => {
    const ok = SparsityPattern.fromEntries([2, 3], [[0, 2], [1, 0], [0, 2]]);
    assert.deepEqual(entries(ok), ["0,2", "1,0"]);
    assert.deepEqual(entries(ok.withDiagonal()), ["0,0", "0,2", "1,0", "1,1"]);
    const p = SparsityPattern.fromEntries([4, 4], [[0, 3], [1, 1], [2, 0], [3, 3], [3, 0]]);
    assert.deepEqual(entries(p.withDiagonal()), ["0,0", "0,3", "1,1", "2,0", "2,2", "3,0", "3,3"]);
    const full = p.withDiagonal();
    assert.equal(full.withDiagonal(), full, "a pattern with its diagonal is returned as is");
    assert.throws(() => new SparsityPattern([2, 2], Int32Array.of(0, 1), Int32Array.of(0)), {
      name: "RangeError",
      message: /rowPtr\ must\ have\ 3\ entries/,
    });
    assert.throws(() => new SparsityPattern([1, 2], Int32Array.of(0, 2), Int32Array.of(1, 0)), {
      name: "RangeError",
      message: /ascending\ and\ distinct/,
    });
    assert.throws(() => new SparsityPattern([1, 2], Int32Array.of(0, 1), Int32Array.of(2)), {
      name: "RangeError",
      message: /out\ of\ range/,
    });
    assert.throws(() => SparsityPattern.fromEntries([2, 2], [[2, 0]]), {
      name: "RangeError",
      message: /outside\ a\ 2\ ×\ 2\ matrix/,
    });
  });
});

Deno.test("hessianSparsity is global: the pattern does not depend on the point", () => {
  const f = (x: Tensor) => sum(where(x.greater(0), x.square(), x));
  const a = entries(hessianSparsity(f, tensor([1, 2, 3], { dtype: "f64" })));
  const b = entries(hessianSparsity(f, tensor([-1, -2, -3], { dtype: "f64" })));
  assert.deepEqual(a, b);
  assert.deepEqual(a, ["0,0", "1,1", "2,2"]);
});

Deno.test({
  name: "hessianSparsity of a function of a WebGPU tensor equals the CPU pattern",
  ignore: !gpuDev,
  fn: () => {
    const f = (x: Tensor) => sum(slice(x, [0], [5]).mul(slice(x, [1], [6])).exp()).add(tri(x));
    const on = (d: typeof dev) => tensor(randArray(6, 1), { dtype: "f32", device: d });
    assert.deepEqual(
      entries(hessianSparsity(f, on(gpuDev!))),
      entries(hessianSparsity(f, on(dev))),
    );
  },
});

// Every primitive (the shared cases of tests/primitive_cases.ts, which cover the whole
// registry): with z the differentiable arguments flattened into one vector, the Jacobian
// pattern of z ↦ f(args) must cover the dense Jacobian, and the Hessian pattern of
// z ↦ Σ w ⊙ f(args) (random weights: the Hessian is Σ w_e ∇²f_e, so every rule's second-order
// classification is exercised on its own) must cover the dense Hessian. The patterns are
// detected on each backend (the tracer runs the primal on z's device); the dense
// derivatives, the reference, in f64 on the CPU.
for (const c of CASES) {
  Deno.test(`sparsity rules cover the dense derivatives: ${c.name}`, async (t) => {
    const di = c.args.flatMap((a, i) => (a.diff === false ? [] : [i]));
    const sizes = di.map((i) => c.args[i].values.length);
    const total = sizes.reduce((a, b) => a + b, 0);
    const problem = (be: Backend) => {
      const opt = { dtype: be.dtype, device: be.dev };
      const consts = c.args.map((a) => tensor(a.values, { ...opt, shape: a.shape }));
      const split = (z: Tensor) => {
        let at = 0;
        const xs = [...consts];
        di.forEach((i, k) => {
          xs[i] = reshape(slice(z, [at], [at + sizes[k]]), c.args[i].shape);
          at += sizes[k];
        });
        return xs;
      };
      const out = (z: Tensor) => reshape(c.f(...split(z)), [-1]);
      const z0 = tensor(Float64Array.from(di.flatMap((i) => [...c.args[i].values])), opt);
      const m = out(z0).size;
      const w = tensor(randArray(m, 77, 0.5, 1.5), opt);
      const scalar = (z: Tensor) => sum(out(z).mul(w));
      return { out, scalar, z0, m };
    };
    const ref = problem(CPU64);
    const J = await jacobian(ref.out, ref.z0, { mode: "fwd" }).data();
    const H = await hessian(ref.scalar, ref.z0).data();
    // the two cast cases go through f64, which WebGPU does not have: CPU only
    const on = c.prims.includes("cast") ? [CPU64] : ON;
    for (const be of on) {
      await t.step(be.name, () => {
        const { out, scalar, z0, m } = problem(be);
        assert.equal(m, ref.m);
        assertCovers(jacobianSparsity(out, z0), J, m, total, `${c.name} (Jacobian)`);
        assertCovers(hessianSparsity(scalar, z0), H, total, total, `${c.name} (Hessian)`);
      });
    }
  });
}
