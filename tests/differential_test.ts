/**
 * Differential testing: seeded random programs (elementwise nesting, broadcasting, strided
 * and reversed slices, pads, gathers, concatenation, reductions over axes, matmul, dense
 * solve and det) checked against independent references:
 *   - the gradient against f64 central differences of the value,
 *   - the HVP against f64 central differences of the gradient,
 *   - the K-probe HVP against K single HVPs, jvp(grad) against grad(⟨∇f, v⟩),
 *   - CPU f32 and WebGPU f32 against CPU f64 (value, gradient, HVP).
 * A program is a recipe of random choices drawn once, so the same program is rebuilt on
 * every backend. Smooth ops only, on inputs kept away from their domain edges, so finite
 * differences are a valid oracle.
 */
import assert from "node:assert/strict";
import {
  concat,
  cos,
  det,
  exp,
  expm1,
  eye,
  gather,
  grad,
  hvp,
  jvp,
  log1p,
  matmul,
  max,
  mean,
  pad,
  pow,
  reshape,
  sigmoid,
  sin,
  slice,
  softplus,
  solve,
  sqrt,
  square,
  sum,
  tanh,
  type Tensor,
  tensor,
  tidy,
  transpose,
  where,
} from "../mod.ts";
import { assertClose, cpu, gpuDev, rng } from "./helpers.ts";

type Dt = "f32" | "f64";
interface Ctx {
  dtype: Dt;
  dev: typeof cpu;
}
/** A program fragment: builds a tensor of `shape` from the input on a device. */
interface Frag {
  shape: number[];
  build: (x: Tensor, c: Ctx) => Tensor;
  desc: string;
}

const R = 3, C = 4; // the input is [R, C]

/** Builds one random program from `seed`; the result is a scalar. */
function program(seed: number): { desc: string; f: (x: Tensor, c: Ctx) => Tensor } {
  // xorshift's first outputs from a small seed are tiny: scramble the seed and skip ahead
  const r = rng(Math.imul(seed, 2654435761) ^ 0x9e3779b9);
  for (let i = 0; i < 8; i++) r();
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const consts = (n: number) =>
    Array.from({ length: n }, () => Math.round((r() * 2 - 1) * 64) / 64);
  const leaf: Frag = { shape: [R, C], build: (x) => x, desc: "x" };

  const unary: [string, (t: Tensor) => Tensor][] = [
    ["sin", sin],
    ["cos", cos],
    ["tanh", tanh],
    ["sigmoid", sigmoid],
    ["softplus", softplus],
    ["square", square],
    ["exp∘tanh", (t) => exp(tanh(t))],
    ["log1p(u²)", (t) => log1p(square(t))],
    ["√(1+u²)", (t) => sqrt(square(t).add(1))],
    ["1/(1+u²)", (t) => square(t).add(1).reciprocal()],
    ["expm1∘tanh", (t) => expm1(tanh(t))],
    ["u³", (t) => pow(t, 3)],
    ["(1+u²)^1.5", (t) => pow(square(t).add(1), 1.5)],
    ["−u", (t) => t.neg()],
  ];

  function gen(depth: number): Frag {
    if (depth === 0 || r() < 0.15) return leaf;
    const kind = pick([
      "unary",
      "unary",
      "binary",
      "binary",
      "bcast",
      "slice",
      "pad",
      "gather",
      "concat",
      "transpose",
      "matmul",
      "where",
      "reduce",
      "linalg",
      "scale",
    ]);
    const a = gen(depth - 1);
    const [m, n] = a.shape;
    switch (kind) {
      case "unary": {
        const [name, fn] = pick(unary);
        return { shape: a.shape, build: (x, c) => fn(a.build(x, c)), desc: `${name}(${a.desc})` };
      }
      case "binary": {
        const b = fitTo(gen(depth - 1), a.shape);
        const op = pick(["add", "sub", "mul", "div", "pow"] as const);
        return {
          shape: a.shape,
          desc: `${op}(${a.desc}, ${b.desc})`,
          build: (x, c) => {
            const u = a.build(x, c), v = b.build(x, c);
            if (op === "div") return u.div(tanh(v).add(1.5));
            if (op === "pow") return pow(sigmoid(u).add(0.5), tanh(v).add(1));
            return u[op](v);
          },
        };
      }
      case "bcast": {
        // broadcast a row or column summary back over the matrix
        const axis = pick([0, 1]);
        return {
          shape: a.shape,
          desc: `bcast${axis}(${a.desc})`,
          build: (x, c) => {
            const u = a.build(x, c);
            return u.mul(tanh(mean(u, axis, true)));
          },
        };
      }
      case "slice": {
        if (m < 2 || n < 2) return a;
        const rev = r() < 0.5;
        const shape = rev ? [m, n] : [Math.ceil(m / 2), n - 1];
        return {
          shape,
          desc: `slice${rev ? "rev" : "step"}(${a.desc})`,
          build: (x, c) => {
            const u = a.build(x, c);
            return rev
              ? slice(u, [m - 1, n - 1], [-m - 1, -n - 1], [-1, -1])
              : slice(u, [0, 1], [m, n], [2, 1]);
          },
        };
      }
      case "pad": {
        const p = [[pick([0, 1]), 1], [1, pick([0, 2])]] as [number, number][];
        const v = pick([0, 0.5]);
        return {
          shape: [m + p[0][0] + p[0][1], n + p[1][0] + p[1][1]],
          desc: `pad(${a.desc})`,
          build: (x, c) => pad(a.build(x, c), p, v),
        };
      }
      case "gather": {
        const idx = Array.from({ length: n + 1 }, () => Math.floor(r() * n));
        return {
          shape: [m, n + 1],
          desc: `gather(${a.desc})`,
          build: (x, c) => gather(a.build(x, c), idx, 1),
        };
      }
      case "concat": {
        const b = fitTo(gen(depth - 1), a.shape);
        return {
          shape: [2 * m, n],
          desc: `concat(${a.desc}, ${b.desc})`,
          build: (x, c) => concat([a.build(x, c), sin(b.build(x, c))], 0),
        };
      }
      case "transpose":
        return {
          shape: [n, m],
          desc: `T(${a.desc})`,
          build: (x, c) => transpose(a.build(x, c)),
        };
      case "matmul": {
        const k = pick([2, 3]);
        const w = consts(n * k);
        return {
          shape: [m, k],
          desc: `matmul(${a.desc})`,
          build: (x, c) =>
            matmul(a.build(x, c), tensor(w, { shape: [n, k], dtype: c.dtype, device: c.dev })),
        };
      }
      case "where": {
        const b = fitTo(gen(depth - 1), a.shape);
        const mask = Array.from({ length: m * n }, () => (r() < 0.5 ? 1 : 0));
        return {
          shape: a.shape,
          desc: `where(${a.desc}, ${b.desc})`,
          build: (x, c) =>
            where(
              tensor(mask, { shape: [m, n], dtype: c.dtype, device: c.dev }),
              a.build(x, c),
              b.build(x, c),
            ),
        };
      }
      case "reduce": {
        const axis = pick([0, 1]);
        const op = pick(["sum", "mean", "max"] as const);
        const shape = axis === 0 ? [1, n] : [m, 1];
        return {
          shape,
          desc: `${op}${axis}(${a.desc})`,
          build: (x, c) => {
            const u = a.build(x, c);
            return op === "sum"
              ? sum(u, axis, true)
              : op === "mean"
              ? mean(u, axis, true)
              : max(u, axis, true);
          },
        };
      }
      case "linalg": {
        // a 3×3 well-conditioned matrix from the fragment: 3I + 0.3·tanh(block)
        const sq = fitTo(a, [3, 3]);
        const useDet = r() < 0.5;
        const rhs = consts(3);
        return {
          shape: useDet ? [1, 1] : [3, 1],
          desc: `${useDet ? "det" : "solve"}(${sq.desc})`,
          build: (x, c) => {
            const M = eye(3, 3, { dtype: c.dtype, device: c.dev }).mul(3).add(
              tanh(sq.build(x, c)).mul(0.3),
            );
            return useDet
              ? reshape(det(M), [1, 1])
              : solve(M, tensor(rhs, { shape: [3, 1], dtype: c.dtype, device: c.dev }));
          },
        };
      }
      default: {
        const s = consts(1)[0] + 1.25;
        return { shape: a.shape, desc: `${s}·${a.desc}`, build: (x, c) => a.build(x, c).mul(s) };
      }
    }
  }

  /** Makes a fragment `shape`-shaped: slices, pads or tiles it as needed (all linear maps). */
  function fitTo(a: Frag, shape: number[]): Frag {
    const [m, n] = a.shape, [p, q] = shape;
    if (m === p && n === q) return a;
    return {
      shape,
      desc: `fit(${a.desc})`,
      build: (x, c) => {
        let u = a.build(x, c);
        if (m === 1 || n === 1) u = u.broadcastTo([m === 1 ? p : m, n === 1 ? q : n]);
        const [mm, nn] = u.shape;
        u = slice(u, [0, 0], [Math.min(mm, p), Math.min(nn, q)]);
        return pad(u, [[0, p - u.shape[0]], [0, q - u.shape[1]]], 0.25);
      },
    };
  }

  const body = gen(4);
  const w = consts(body.shape[0] * body.shape[1]);
  return {
    desc: body.desc,
    f: (x, c) =>
      sum(body.build(x, c).mul(tensor(w, { shape: body.shape, dtype: c.dtype, device: c.dev }))),
  };
}

const PROGRAMS = 240;
const F32_PROGRAMS = 60;
// lavapipe compiles each distinct fused kernel on the CPU (about 0.1–0.5 s each): fewer
// programs there keep the suite's time reasonable; they are the first ones of the CPU set
const GPU_PROGRAMS = 20;
const N = R * C;

function inputs(seed: number): number[] {
  const r = rng(Math.imul(seed, 7919) ^ 0x85ebca6b);
  for (let i = 0; i < 8; i++) r();
  return Array.from({ length: N }, () => Math.fround(r() * 1.6 - 0.8));
}

async function evalAll(prog: ReturnType<typeof program>, xs: number[], v: number[], c: Ctx) {
  const x = tensor(xs, { shape: [R, C], dtype: c.dtype, device: c.dev });
  const vt = tensor(v, { shape: [R, C], dtype: c.dtype, device: c.dev });
  const [f, g, h] = tidy(() => [
    prog.f(x, c),
    grad((z: Tensor) => prog.f(z, c))(x),
    hvp((z) => prog.f(z, c), x, vt),
  ]);
  const out = { f: (await f.data())[0], g: [...await g.data()], h: [...await h.data()] };
  for (const t of [x, vt, f, g, h]) t.dispose();
  return out;
}

Deno.test(`differential: ${PROGRAMS} random programs, derivatives against f64 finite differences`, async (t) => {
  const c: Ctx = { dtype: "f64", dev: cpu };
  let checked = 0;
  for (let s = 1; s <= PROGRAMS; s++) {
    const prog = program(s);
    const xs = inputs(s), v = inputs(s + 10_000);
    const ref = await evalAll(prog, xs, v, c);
    if (!Number.isFinite(ref.f) || Math.abs(ref.f) > 1e6) continue;
    const at = (ys: number[]) =>
      tidy(() => prog.f(tensor(ys, { shape: [R, C], dtype: "f64", device: cpu }), c));
    const gradAt = (ys: number[]) =>
      tidy(() =>
        grad((z: Tensor) => prog.f(z, c))(tensor(ys, { shape: [R, C], dtype: "f64", device: cpu }))
      );
    const eps = 1e-5;
    const fd: number[] = [];
    for (let i = 0; i < N; i++) {
      const p = [...xs], m = [...xs];
      p[i] += eps;
      m[i] -= eps;
      const [fp, fm] = [at(p), at(m)];
      fd.push(((await fp.data())[0] - (await fm.data())[0]) / (2 * eps));
      fp.dispose();
      fm.dispose();
    }
    const scale = Math.max(1, ...fd.map(Math.abs));
    assertClose(ref.g, fd, { rtol: 1e-5, atol: 1e-6 * scale, msg: `grad of #${s} ${prog.desc}` });
    // HVP against the directional difference of the gradient
    const gp = gradAt(xs.map((x, i) => x + eps * v[i])),
      gm = gradAt(xs.map((x, i) => x - eps * v[i]));
    const [dp, dm] = [await gp.data(), await gm.data()];
    gp.dispose();
    gm.dispose();
    const hfd = [...dp].map((a, i) => (a - dm[i]) / (2 * eps));
    const hs = Math.max(1, ...hfd.map(Math.abs));
    assertClose(ref.h, hfd, { rtol: 1e-4, atol: 1e-5 * hs, msg: `hvp of #${s} ${prog.desc}` });
    checked++;
  }
  await t.step(`checked ${checked} of ${PROGRAMS}`, () => assert.ok(checked >= PROGRAMS * 0.9));
});

Deno.test("differential: K-probe HVP = K single HVPs, jvp(grad) = grad(⟨∇f, v⟩)", async () => {
  const c: Ctx = { dtype: "f64", dev: cpu };
  for (let s = 1; s <= 60; s++) {
    const prog = program(s);
    const f = (z: Tensor) => prog.f(z, c);
    const x = tensor(inputs(s), { shape: [R, C], dtype: "f64", device: cpu });
    const vs = [inputs(s + 1), inputs(s + 2), inputs(s + 3)];
    const V = tensor(vs.flat(), { shape: [3, R, C], dtype: "f64", device: cpu });
    const batched = [...await hvp(f, x, V).data()];
    const singles: number[] = [];
    for (const v of vs) {
      const h = hvp(f, x, tensor(v, { shape: [R, C], dtype: "f64", device: cpu }));
      singles.push(...await h.data());
    }
    assertClose(batched, singles, { rtol: 1e-10, atol: 1e-12, msg: `K-probe #${s} ${prog.desc}` });
    const v0 = tensor(vs[0], { shape: [R, C], dtype: "f64", device: cpu });
    const [, fwd] = jvp((z) => grad(f)(z), [x], [v0]);
    const rev = grad((z: Tensor) => sum(grad(f)(z).mul(v0)))(x);
    assertClose(await fwd.data(), await rev.data(), { rtol: 1e-9, atol: 1e-11, msg: `#${s}` });
  }
});

for (const dev of [cpu, ...(gpuDev ? [gpuDev] : [])]) {
  const count = dev.kind === "cpu" ? F32_PROGRAMS : GPU_PROGRAMS;
  Deno.test(`differential: ${dev.kind} f32 against CPU f64 on ${count} programs`, async () => {
    for (let s = 1; s <= count; s++) {
      const prog = program(s);
      const xs = inputs(s), v = inputs(s + 10_000);
      const ref = await evalAll(prog, xs, v, { dtype: "f64", dev: cpu });
      if (!Number.isFinite(ref.f) || Math.abs(ref.f) > 1e4) continue;
      const got = await evalAll(prog, xs, v, { dtype: "f32", dev });
      // f32 programs of depth 4 lose a few digits to cancellation: the tolerance is relative
      // to the largest entry of each result (its scale), 2e-4 of it
      const close = (a: number[], e: number[], what: string) => {
        const sc = Math.max(1, ...e.map(Math.abs));
        assertClose(a, e, { rtol: 2e-4, atol: 2e-4 * sc, msg: `${what} of #${s} ${prog.desc}` });
      };
      close([got.f], [ref.f], "value");
      close(got.g, ref.g, "grad");
      close(got.h, ref.h, "hvp");
    }
  });
}
