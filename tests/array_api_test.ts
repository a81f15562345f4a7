/**
 * The NumPy / JAX array functions: values on every backend against f64 references computed
 * here on the host (closed forms and plain loops, a brute-force einsum), and derivatives by
 * the oracle (JVP vs finite differences, VJP vs JVP, HVP vs finite differences of the
 * gradient) in f64. Edge cases: signed zeros and infinities of atan2, ties and NaN for
 * argmax, zeros in prod (exact derivative), the 2-norm's derivative at 0, ellipsis and
 * repeated labels in einsum, and the errors each function gives.
 */
import assert from "node:assert/strict";
import * as cv from "../mod.ts";
import { type Tensor, tensor } from "../mod.ts";
import { assertClose, assertNoLeak, type Backend, cpu, randArray, testAll } from "./helpers.ts";
import { checkGrads, type GradArg } from "./grad_check.ts";

const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const stridesOf = (s: readonly number[]) => {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) (st[i] = acc), (acc *= s[i]);
  return st;
};
/** Multi-index of flat position f in `shape`. */
const unravel = (f: number, shape: readonly number[]) => {
  const st = stridesOf(shape);
  return shape.map((d, i) => Math.floor(f / st[i]) % d);
};
const ravel = (ix: readonly number[], shape: readonly number[]) => {
  const st = stridesOf(shape);
  return ix.reduce((a, v, i) => a + v * st[i], 0);
};

interface Ref {
  shape: number[];
  values: number[];
}

/** Reduces `shape` over `axes` on the host: fold(acc, v) per output element. */
function hostReduce(
  a: GradArg,
  axes: number[],
  init: (vals: number[]) => number,
  keepdims = false,
): Ref {
  const kept = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups: number[][] = Array.from({ length: sizeOf(kept) }, () => []);
  for (let f = 0; f < sizeOf(a.shape); f++) {
    const ix = unravel(f, a.shape).map((v, i) => (axes.includes(i) ? 0 : v));
    groups[ravel(ix, kept)].push(a.values[f]);
  }
  return {
    shape: keepdims ? kept : a.shape.filter((_, i) => !axes.includes(i)),
    values: groups.map(init),
  };
}

/** Applies `fn(line)` to every line along `axis` (cumsum, softmax, flip, roll). */
function alongAxis(a: GradArg, axis: number, fn: (line: number[]) => number[]): Ref {
  const out = new Array<number>(sizeOf(a.shape));
  const n = a.shape[axis], st = stridesOf(a.shape)[axis];
  for (let f = 0; f < out.length; f++) {
    if (unravel(f, a.shape)[axis] !== 0) continue;
    const line = Array.from({ length: n }, (_, i) => a.values[f + i * st]);
    fn(line).forEach((v, i) => (out[f + i * st] = v));
  }
  return { shape: [...a.shape], values: out };
}

const U = (shape: number[], seed: number, lo = -1, hi = 1): GradArg => ({
  shape,
  values: randArray(sizeOf(shape), seed, lo, hi),
});
const elementwise = (a: GradArg, fn: (v: number) => number): Ref => ({
  shape: [...a.shape],
  values: Array.from(a.values, fn),
});
const sum = (v: number[]) => v.reduce((s, x) => s + x, 0);
const variance = (v: number[], ddof: number) => {
  const m = sum(v) / v.length;
  return sum(v.map((x) => (x - m) ** 2)) / (v.length - ddof);
};

/** Brute-force einsum over explicit letter labels: every assignment of every label. */
function einsumRef(spec: string, ops: GradArg[]): Ref {
  const [lhs, out] = spec.split("->");
  const terms = lhs.split(",");
  const size = new Map<string, number>();
  terms.forEach((t, k) => [...t].forEach((c, a) => size.set(c, ops[k].shape[a])));
  const labels = [...size.keys()];
  const outShape = [...out].map((c) => size.get(c)!);
  const res = new Array<number>(sizeOf(outShape)).fill(0);
  const total = sizeOf(labels.map((c) => size.get(c)!));
  for (let f = 0; f < total; f++) {
    const ix = unravel(f, labels.map((c) => size.get(c)!));
    const at = (c: string) => ix[labels.indexOf(c)];
    let p = 1;
    terms.forEach((t, k) => (p *= ops[k].values[ravel([...t].map(at), ops[k].shape)]));
    res[ravel([...out].map(at), outShape)] += p;
  }
  return { shape: outShape, values: res };
}

/** Host broadcast of an argument to `shape` (NumPy rules). */
function broadcastHost(a: GradArg, shape: number[]): GradArg {
  const lead = shape.length - a.shape.length;
  const values = Array.from({ length: sizeOf(shape) }, (_, f) => {
    const ix = unravel(f, shape).slice(lead).map((v, i) => (a.shape[i] === 1 ? 0 : v));
    return a.values[ravel(ix, a.shape)];
  });
  return { shape, values };
}

interface Case {
  name: string;
  args: GradArg[];
  f: (...xs: Tensor[]) => Tensor;
  ref: Ref;
  /** derivative checks: false (not differentiable), or checkGrads options */
  grads?: false | { hessian?: boolean; h?: number; tol?: number };
}

const X34 = U([3, 4], 1, -2, 2);
const X345 = U([3, 4, 5], 2, -1.5, 1.5);
const POS = U([2, 5], 3, 0.2, 3);
const Y34 = U([3, 4], 4, -2, 2), X4 = U([4], 5, -2, 2);
// prod: entries away from 0 but one exact zero, where the derivative is Π of the others
const PROD = {
  shape: [3, 4, 5],
  values: randArray(60, 6, 0.6, 1.4).map((v, i) => (i % 7 === 3 ? -v : i === 17 ? 0 : v)),
};
const M33 = U([3, 3], 7), M345 = U([3, 4, 5], 8);
const VEC5 = U([5], 9), VEC3 = U([3], 10);

const CASES: Case[] = [
  {
    name: "sinh",
    args: [U([9], 11, -3, 3)],
    f: cv.sinh,
    ref: elementwise(U([9], 11, -3, 3), Math.sinh),
  },
  {
    name: "cosh",
    args: [U([9], 12, -3, 3)],
    f: cv.cosh,
    ref: elementwise(U([9], 12, -3, 3), Math.cosh),
  },
  {
    name: "atan",
    args: [U([9], 13, -5, 5)],
    f: cv.atan,
    ref: elementwise(U([9], 13, -5, 5), Math.atan),
  },
  {
    name: "atan2 (broadcast, all quadrants)",
    args: [Y34, X4],
    f: (y, x) => cv.atan2(y, x),
    ref: {
      shape: [3, 4],
      values: Array.from(Y34.values, (y, i) => Math.atan2(y, X4.values[i % 4])),
    },
  },
  { name: "log2", args: [POS], f: cv.log2, ref: elementwise(POS, Math.log2) },
  { name: "exp2", args: [X34], f: cv.exp2, ref: elementwise(X34, (v) => 2 ** v) },
  {
    name: "clip with a number and a broadcast tensor bound",
    args: [X34, U([4], 14, 0.2, 1)],
    f: (x, hi) => cv.clip(x, -0.5, hi),
    ref: {
      shape: [3, 4],
      values: Array.from(
        X34.values,
        (v, i) => Math.min(Math.max(v, -0.5), U([4], 14, 0.2, 1).values[i % 4]),
      ),
    },
    grads: { hessian: false },
  },
  {
    name: "variance over axis 1, ddof 1",
    args: [X34],
    f: (x) => cv.variance(x, 1, { ddof: 1 }),
    ref: hostReduce(X34, [1], (v) => variance(v, 1)),
  },
  {
    name: "variance of all entries",
    args: [X345],
    f: (x) => cv.variance(x),
    ref: hostReduce(X345, [0, 1, 2], (v) => variance(v, 0)),
  },
  {
    name: "std over axes [0, 2], keepdims",
    args: [X345],
    f: (x) => cv.std(x, [0, 2], { keepdims: true }),
    ref: hostReduce(X345, [0, 2], (v) => Math.sqrt(variance(v, 0)), true),
  },
  {
    name: "prod over axes [0, 2] with a zero entry",
    args: [PROD],
    f: (x) => cv.prod(x, [0, 2]),
    ref: hostReduce(PROD, [0, 2], (v) => v.reduce((p, x) => p * x, 1)),
  },
  {
    name: "prod of all entries, keepdims",
    args: [U([7], 15, 0.5, 1.5)],
    f: (x) => cv.prod(x, undefined, true),
    ref: {
      shape: [1],
      values: [Array.from(U([7], 15, 0.5, 1.5).values).reduce((p, x) => p * x, 1)],
    },
  },
  {
    name: "cumsum along axis 1",
    args: [X345],
    f: (x) => cv.cumsum(x, 1),
    ref: alongAxis(X345, 1, (l) => l.map((_, i) => sum(l.slice(0, i + 1)))),
  },
  {
    name: "cumsum of the flattened tensor",
    args: [X34],
    f: (x) => cv.cumsum(x),
    ref: {
      shape: [12],
      values: Array.from(X34.values, (_, i) => sum(Array.from(X34.values).slice(0, i + 1))),
    },
  },
  {
    name: "norm: 2-norm of everything (Frobenius)",
    args: [X34],
    f: (x) => cv.norm(x),
    ref: { shape: [], values: [Math.sqrt(sum(Array.from(X34.values, (v) => v * v)))] },
  },
  {
    name: "norm: vector 2-norm along the last axis, keepdims",
    args: [X345],
    f: (x) => cv.norm(x, 2, -1, true),
    ref: hostReduce(X345, [2], (v) => Math.sqrt(sum(v.map((x) => x * x))), true),
  },
  {
    name: "norm: vector 1-norm",
    args: [X34],
    f: (x) => cv.norm(x, 1, 0),
    ref: hostReduce(X34, [0], (v) => sum(v.map(Math.abs))),
    grads: { hessian: false },
  },
  {
    name: "norm: vector ∞-norm",
    args: [X34],
    f: (x) => cv.norm(x, Infinity, 1),
    ref: hostReduce(X34, [1], (v) => Math.max(...v.map(Math.abs))),
    grads: { hessian: false },
  },
  {
    name: "norm: vector −∞-norm",
    args: [X34],
    f: (x) => cv.norm(x, -Infinity, 1),
    ref: hostReduce(X34, [1], (v) => Math.min(...v.map(Math.abs))),
    grads: { hessian: false },
  },
  {
    name: "norm: Frobenius over axes [0, 2]",
    args: [X345],
    f: (x) => cv.norm(x, "fro", [0, 2]),
    ref: hostReduce(X345, [0, 2], (v) => Math.sqrt(sum(v.map((x) => x * x)))),
  },
  {
    name: "norm: matrix 1-norm (largest column sum)",
    args: [X34],
    f: (x) => cv.norm(x, 1),
    ref: {
      shape: [],
      values: [
        Math.max(
          ...[0, 1, 2, 3].map((j) => sum([0, 1, 2].map((i) => Math.abs(X34.values[i * 4 + j])))),
        ),
      ],
    },
    grads: { hessian: false },
  },
  {
    name: "norm: matrix ∞-norm (largest row sum) over axes [2, 1]",
    args: [X345],
    f: (x) => cv.norm(x, Infinity, [2, 1]),
    ref: {
      shape: [3],
      values: [0, 1, 2].map((a) =>
        Math.max(
          ...[0, 1, 2, 3, 4].map((k) =>
            sum([0, 1, 2, 3].map((j) => Math.abs(X345.values[a * 20 + j * 5 + k])))
          ),
        )
      ),
    },
    grads: { hessian: false },
  },
  {
    name: "softmax along axis 0",
    args: [X34],
    f: (x) => cv.softmax(x, 0),
    ref: alongAxis(X34, 0, (l) => l.map((v) => Math.exp(v) / sum(l.map(Math.exp)))),
  },
  {
    name: "logSoftmax along the last axis",
    args: [X345],
    f: (x) => cv.logSoftmax(x),
    ref: alongAxis(X345, 2, (l) => l.map((v) => v - Math.log(sum(l.map(Math.exp))))),
  },
  {
    name: "outer (inputs flattened)",
    args: [VEC3, U([2, 2], 16)],
    f: (a, b) => cv.outer(a, b),
    ref: {
      shape: [3, 4],
      values: Array.from(
        { length: 12 },
        (_, f) => VEC3.values[Math.floor(f / 4)] * U([2, 2], 16).values[f % 4],
      ),
    },
  },
  ...([
    ["ij,jk->ik", [[3, 4], [4, 2]]],
    ["bij,bjk->bik", [[2, 3, 4], [2, 4, 2]]],
    ["ii->", [[3, 3]]],
    ["ii->i", [[3, 3]]],
    ["ij->ji", [[3, 4]]],
    ["i,i->", [[5], [5]]],
    ["i,j->ij", [[3], [4]]],
    ["ijk,jkl->il", [[2, 3, 4], [3, 4, 2]]],
    ["ij,jk,kl->il", [[2, 3], [3, 4], [4, 2]]],
    ["ab,bc,cd,de->ae", [[2, 3], [3, 2], [2, 4], [4, 3]]],
    ["iij,jk->ik", [[3, 3, 2], [2, 4]]],
    ["ij,ij->j", [[3, 4], [3, 4]]],
  ] as [string, number[][]][]).map(([spec, shapes], k): Case => {
    const args = shapes.map((s, i) => U(s, 100 + 10 * k + i));
    return {
      name: `einsum "${spec}"`,
      args,
      f: (...xs) => cv.einsum(spec, ...xs),
      ref: einsumRef(spec, args),
    };
  }),
  {
    name: 'einsum implicit output "ji,kj" (= "ji,kj->ik")',
    args: [U([4, 3], 200), U([2, 4], 201)],
    f: (a, b) => cv.einsum("ji,kj", a, b),
    ref: einsumRef("ji,kj->ik", [U([4, 3], 200), U([2, 4], 201)]),
  },
  {
    name: 'einsum "...ij,...jk->...ik" with broadcast leading axes',
    args: [U([2, 1, 3, 4], 202), U([5, 4, 2], 203)],
    f: (a, b) => cv.einsum("...ij,...jk->...ik", a, b),
    ref: einsumRef("zyij,zyjk->zyik", [
      broadcastHost(U([2, 1, 3, 4], 202), [2, 5, 3, 4]),
      broadcastHost(U([5, 4, 2], 203), [2, 5, 4, 2]),
    ]),
  },
  {
    name: "triu with k = 1 (batched)",
    args: [M345],
    f: (x) => cv.triu(x, 1),
    ref: {
      shape: [3, 4, 5],
      values: Array.from(
        M345.values,
        (v, f) => (unravel(f, [3, 4, 5])[2] - unravel(f, [3, 4, 5])[1] >= 1 ? v : 0),
      ),
    },
  },
  {
    name: "tril with k = −1",
    args: [M33],
    f: (x) => cv.tril(x, -1),
    ref: {
      shape: [3, 3],
      values: Array.from(M33.values, (v, f) => (f % 3 - Math.floor(f / 3) <= -1 ? v : 0)),
    },
  },
  {
    name: "diag of a vector, k = 2",
    args: [VEC3],
    f: (v) => cv.diag(v, 2),
    ref: {
      shape: [5, 5],
      values: Array.from(
        { length: 25 },
        (_, f) => (f % 5 - Math.floor(f / 5) === 2 ? VEC3.values[Math.floor(f / 5)] : 0),
      ),
    },
  },
  {
    name: "diag of a vector, k = −1",
    args: [VEC3],
    f: (v) => cv.diag(v, -1),
    ref: {
      shape: [4, 4],
      values: Array.from(
        { length: 16 },
        (_, f) => (Math.floor(f / 4) - f % 4 === 1 ? VEC3.values[f % 4] : 0),
      ),
    },
  },
  {
    name: "diag of a matrix",
    args: [M33],
    f: (x) => cv.diag(x),
    ref: { shape: [3], values: [0, 4, 8].map((f) => M33.values[f]) },
  },
  {
    name: "diagonal over axes (2, 0), offset −1",
    args: [M345],
    f: (x) => cv.diagonal(x, -1, 2, 0),
    // NumPy: out[b, i] = x[i, b, i + 1] (axis1 = 2 is the row axis, so offset −1 moves down it)
    ref: {
      shape: [4, 3],
      values: Array.from(
        { length: 12 },
        (_, f) => M345.values[ravel([f % 3, Math.floor(f / 3), f % 3 + 1], [3, 4, 5])],
      ),
    },
  },
  {
    name: "flip axes [0, 2]",
    args: [X345],
    f: (x) => cv.flip(x, [0, 2]),
    ref: {
      shape: [3, 4, 5],
      values: Array.from({ length: 60 }, (_, f) => {
        const [a, b, c] = unravel(f, [3, 4, 5]);
        return X345.values[ravel([2 - a, b, 4 - c], [3, 4, 5])];
      }),
    },
  },
  {
    name: "roll by [2, −1] along axes [2, 0]",
    args: [X345],
    f: (x) => cv.roll(x, [2, -1], [2, 0]),
    ref: {
      shape: [3, 4, 5],
      values: Array.from({ length: 60 }, (_, f) => {
        const [a, b, c] = unravel(f, [3, 4, 5]);
        return X345.values[ravel([(a + 1) % 3, b, (c + 3) % 5], [3, 4, 5])];
      }),
    },
  },
  {
    name: "roll of the flattened tensor by −5",
    args: [X34],
    f: (x) => cv.roll(x, -5),
    ref: { shape: [3, 4], values: Array.from({ length: 12 }, (_, f) => X34.values[(f + 5) % 12]) },
  },
  {
    name: "roll (vector) by 7",
    args: [VEC5],
    f: (x) => cv.roll(x, 7),
    ref: { shape: [5], values: Array.from({ length: 5 }, (_, f) => VEC5.values[(f + 3) % 5]) },
  },
];

for (const c of CASES) {
  testAll(`${c.name}: values against the host reference`, async (b: Backend) => {
    const xs = c.args.map((a) =>
      tensor(Float64Array.from(a.values), { shape: a.shape, dtype: b.dtype, device: b.dev })
    );
    const base = cv.memory();
    const y = c.f(...xs);
    assert.deepEqual(y.shape, c.ref.shape, "shape");
    // f32: the inputs are f32-exact; errors are a few ulps of the inputs' magnitudes
    const tol = b.dtype === "f64" ? { rtol: 1e-12, atol: 1e-14 } : { rtol: 2e-5, atol: 2e-6 };
    assertClose(await y.data(), c.ref.values, tol);
    y.dispose();
    assertNoLeak(base, "memory");
    xs.forEach((x) => x.dispose());
  });
  if (c.grads !== false) {
    Deno.test(`${c.name}: derivatives (JVP, VJP, HVP) against finite differences`, async () => {
      await checkGrads(c.name, c.f, c.args, c.grads || {});
    });
  }
}

// ---------- edge cases and index results ----------

testAll("atan2: signed zeros, infinities and NaN as C defines them", async (b: Backend) => {
  const I = Infinity;
  const ys = [0, 0, -0, -0, 1, -1, I, I, -I, 1, NaN, 0];
  const xs = [0, -0, 0, -0, 0, -0, I, -I, -I, I, 1, NaN];
  const o = { dtype: b.dtype, device: b.dev };
  const got = await cv.atan2(tensor(ys, o), tensor(xs, o)).data();
  const want = ys.map((y, i) => Math.atan2(y, xs[i]));
  assertClose(got, want, { rtol: b.dtype === "f64" ? 0 : 1e-7 });
  // the sign of a zero result, which assertClose does not see
  want.forEach((w, i) => {
    if (w === 0) {
      assert.equal(Object.is(got[i], -0), Object.is(w, -0), `sign of atan2(${ys[i]}, ${xs[i]})`);
    }
  });
});

testAll(
  "atan at n > 65,536 against Math.atan (one kernel invocation per entry)",
  async (b: Backend) => {
    const n = 70_001;
    const v = Float64Array.from(
      { length: n },
      (_, i) => Math.fround(Math.tan((i / n - 0.5) * 3.1) * (1 + (i % 3))),
    );
    const got = await cv.atan(tensor(v, { dtype: b.dtype, device: b.dev })).data();
    assertClose(got, Array.from(v, Math.atan), {
      rtol: b.dtype === "f64" ? 1e-15 : 3e-7,
      atol: 1e-30,
    });
  },
);

testAll("sinh stays accurate near 0, cosh and sinh agree with exp far out", async (b: Backend) => {
  const o = { dtype: b.dtype, device: b.dev };
  const v = [1e-10, -3e-8, 1e-4, 20, -20];
  assertClose(await cv.sinh(tensor(v, o)).data(), v.map(Math.sinh), {
    rtol: b.dtype === "f64" ? 1e-15 : 1e-6,
  });
  assertClose(await cv.cosh(tensor(v, o)).data(), v.map(Math.cosh), {
    rtol: b.dtype === "f64" ? 1e-15 : 1e-6,
  });
});

testAll("argmax / argmin: first index on ties, first NaN, i32, any axis", async (b: Backend) => {
  const o = { dtype: b.dtype, device: b.dev };
  const x = tensor([[1, 5, 5, -2], [7, 0, 7, -9], [3, NaN, 4, NaN]], o);
  const i32 = async (t: Tensor) => {
    assert.equal(t.dtype, "i32");
    return Array.from(await t.data());
  };
  assert.deepEqual(await i32(cv.argmax(x, 1)), [1, 0, 1]);
  assert.deepEqual(await i32(cv.argmin(x, 1)), [3, 3, 1]);
  assert.deepEqual(await i32(cv.argmax(x, 0)), [1, 2, 1, 2]); // NumPy's answers
  assert.deepEqual(await i32(cv.argmin(x, 0, true)), [0, 2, 2, 2]);
  assert.deepEqual(cv.argmin(x, 0, true).shape, [1, 4]);
  const clean = tensor([[1, 5, 5], [7, 0, 2]], o);
  assert.deepEqual(await i32(cv.argmax(clean)), [3]);
  assert.deepEqual(cv.argmax(clean).shape, []);
  assert.deepEqual(await i32(cv.argmin(clean, undefined, true)), [4]);
  assert.deepEqual(cv.argmin(clean, undefined, true).shape, [1, 1]);
  // no derivative: the gradient of anything through argmax is zero
  const g = cv.grad((y: Tensor) => cv.argmax(y).astype(y.dtype).add(y.sum()))(clean);
  assert.deepEqual(Array.from(await g.data()), [1, 1, 1, 1, 1, 1]);
});

Deno.test("norm and std: derivative 0 (not NaN) where the 2-norm or the deviation is 0", async () => {
  const z = tensor([0, 0, 0], { dtype: "f64" });
  assert.deepEqual(Array.from(await cv.grad((x: Tensor) => cv.norm(x))(z).data()), [0, 0, 0]);
  assert.deepEqual(
    Array.from(await cv.grad((x: Tensor) => cv.std(x))(tensor([2, 2], { dtype: "f64" })).data()),
    [0, 0],
  );
  // away from 0: x / ‖x‖
  const g = await cv.grad((x: Tensor) => cv.norm(x))(tensor([3, 4], { dtype: "f64" })).data();
  assertClose(g, [0.6, 0.8], { rtol: 1e-15 });
});

Deno.test("prod: derivatives at zeros are the products of the other entries", async () => {
  // d/dx_i Π x = Π_{j≠i} x_j: with one zero, only the zero's partial is non-zero
  const g = await cv.grad((x: Tensor) => cv.prod(x))(tensor([2, 0, 3, -1], { dtype: "f64" }))
    .data();
  assert.deepEqual(Array.from(g), [-0, -6, 0, -0].map((v) => v + 0));
  const g2 = await cv.grad((x: Tensor) => cv.prod(x))(tensor([0, 0, 3], { dtype: "f64" })).data();
  assert.deepEqual(Array.from(g2), [0, 0, 0]);
});

testAll("cumsum at n > 65,536 against a host running sum", async (b: Backend) => {
  const n = 70_003;
  const v = randArray(n, 21, 0, 1);
  const got = await cv.cumsum(tensor(v, { dtype: b.dtype, device: b.dev })).data();
  let s = 0;
  const want = Array.from(v, (x) => (s += x));
  // f32: pairwise partial sums, error ~ log₂ n ulps of the running total
  assertClose(got, want, { rtol: b.dtype === "f64" ? 1e-12 : 2e-6 });
});

testAll(
  "cumsum along a middle axis of [3, 70003, 2] and over 2^22 + 5 entries (three scan levels)",
  async (b: Backend) => {
    const shape = [3, 70_003, 2];
    const v = randArray(3 * 70_003 * 2, 22, 0, 1);
    const got = await cv.cumsum(tensor(v, { shape, dtype: b.dtype, device: b.dev }), 1).data();
    const want = new Float64Array(v.length);
    for (let a = 0; a < 3; a++) {
      for (let c = 0; c < 2; c++) {
        let s = 0;
        for (let j = 0; j < 70_003; j++) {
          const at = (a * 70_003 + j) * 2 + c;
          want[at] = s += v[at];
        }
      }
    }
    assertClose(got, want, { rtol: b.dtype === "f64" ? 1e-12 : 2e-6 });
    const n = 2 ** 22 + 5;
    const ones = await cv.cumsum(cv.ones([n], { dtype: b.dtype, device: b.dev })).data();
    // sums of ones are exact in f32 up to 2^24
    for (const i of [0, 2047, 2048, 4_194_303, 4_194_304, n - 1]) assert.equal(ones[i], i + 1);
  },
);

Deno.test("errors name the function and what was wrong", () => {
  const x = tensor([[1, 2], [3, 4]]);
  assert.throws(
    () => cv.variance(x, 0, { dof: 1 } as never),
    /var: unknown option "dof"; did you mean "ddof"\?/,
  );
  assert.throws(
    () => cv.std(x, 0, { keep_dims: true } as never),
    /std: unknown option "keep_dims"; did you mean "keepdims"\?/,
  );
  assert.throws(
    () => cv.variance(x, 0, { ddof: 2 }),
    /2 values with ddof 2 leave no degrees of freedom/,
  );
  assert.throws(() => cv.norm(x, 3 as never, 0), /vector ord 3 is not supported/);
  assert.throws(() => cv.norm(x, 2 as never), /matrix ord 2 is not supported .*eigh/);
  assert.throws(
    () => cv.norm(tensor([[[1]]]), 1),
    /with ord 1 and no axis, x must be a vector or a matrix/,
  );
  assert.throws(() => cv.norm(x, "fro", 0), /"fro" is a matrix norm/);
  assert.throws(() => cv.clip(x), /give at least one of min and max/);
  assert.throws(() => cv.einsum("ij,jk", x), /names 2 operand\(s\) but 1 were given/);
  assert.throws(
    () => cv.einsum("ij,jk->ik", x, tensor([[1, 2, 3]])),
    /label j has size 2 elsewhere but 1 in operand 1/,
  );
  assert.throws(() => cv.einsum("i1->i", x), /labels are letters/);
  assert.throws(() => cv.einsum("ijk->i", x), /labels 3 axes but the operand has 2/);
  assert.throws(() => cv.einsum("ij->q", x), /output label q is in no operand/);
  assert.throws(() => cv.einsum("ij->ii", x), /a label repeats in the output/);
  assert.throws(() => cv.roll(x, [1, 2], [0]), /2 shift\(s\) for 1 axis/);
  assert.throws(() => cv.roll(x, 1.5), /shifts must be integers/);
  assert.throws(() => cv.diag(tensor([[[1]]])), /expected a vector or a matrix/);
  assert.throws(() => cv.triu(tensor([1, 2])), /triu: expected at least 2 dimensions/);
  assert.throws(() => cv.diagonal(x, 0, 1, -1), /axis1 and axis2 are both 1/);
  assert.throws(() => cv.argmax(tensor([[], []]), 1), /argmax: axis 1 of \[2,0\] is empty/);
  assert.throws(
    () => cv.atan(tensor([1], { dtype: "i32" })),
    /atan: expected a floating-point tensor/,
  );
});

Deno.test("vmap over the new functions equals a loop (composites batch through their primitives)", async () => {
  const x = tensor(randArray(3 * 4 * 5, 30), { shape: [3, 4, 5], dtype: "f64", device: cpu });
  const fs: [string, (t: Tensor) => Tensor][] = [
    ["norm", (t) => cv.norm(t, 2, 1)],
    ["cumsum", (t) => cv.cumsum(t, 0)],
    ["prod", (t) => cv.prod(t, 1)],
    ["einsum", (t) => cv.einsum("ij,kj->ik", t, t)],
    ["diag", (t) => cv.diag(t, 1)],
    ["roll", (t) => cv.roll(t, 2, 1)],
    ["softmax", (t) => cv.softmax(t)],
    ["argmax", (t) => cv.argmax(t, 1).astype("f64")],
  ];
  const d = await x.data();
  for (const [name, f] of fs) {
    const batched = await cv.vmap(f)(x).data();
    const loop: number[] = [];
    for (let i = 0; i < 3; i++) {
      const xi = tensor(d.slice(i * 20, (i + 1) * 20), {
        shape: [4, 5],
        dtype: "f64",
        device: cpu,
      });
      loop.push(...await f(xi).data());
    }
    assertClose(batched, loop, { rtol: 1e-14, msg: name });
  }
});

Deno.test("sparsity detection through the composites is exact where the maths is", () => {
  const n = 6;
  const x = tensor(randArray(n, 40, 0.5, 1.5), { dtype: "f64" });
  const rows = (p: cv.SparsityPattern) =>
    Array.from(
      { length: p.shape[0] },
      (_, i) => Array.from(p.colIdx.slice(p.rowPtr[i], p.rowPtr[i + 1])).sort(),
    );
  const upTo = (i: number) => Array.from({ length: i + 1 }, (_, j) => j);
  // cumsum: row i depends on x_0 … x_i (shifted sums, not a block-dense matmul)
  assert.deepEqual(rows(cv.jacobianSparsity((t) => cv.cumsum(t), x)), upTo(n - 1).map(upTo));
  // roll and flip move entries; diag spreads a vector on a diagonal
  assert.deepEqual(
    rows(cv.jacobianSparsity((t) => cv.roll(t, 2), x)),
    [4, 5, 0, 1, 2, 3].map((j) => [j]),
  );
  assert.deepEqual(
    rows(cv.jacobianSparsity((t) => cv.flip(t), x)),
    [5, 4, 3, 2, 1, 0].map((j) => [j]),
  );
  const d = rows(cv.jacobianSparsity((t) => cv.diag(t, 1).reshape([-1]), x));
  assert.deepEqual(d.filter((r) => r.length > 0).length, n);
  // prod is multilinear: ∂²/∂xᵢ∂xⱼ ≠ 0 for i ≠ j only, so the pattern has no diagonal
  const h = cv.hessianSparsity((t) => cv.prod(t), x);
  assert.deepEqual(rows(h), upTo(n - 1).map((i) => upTo(n - 1).filter((j) => j !== i)));
  x.dispose();
});
