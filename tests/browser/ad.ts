/**
 * The derivative oracles of tests/primitive_cases.ts on a WebGPU device in the page: for every
 * primitive's case, the JVP, the VJP and the HVP in f32 on the GPU against the same in f64 on
 * the CPU (whose rules tests/ad_oracle_test.ts checks against finite differences), and the
 * ⟨Ju, v⟩ = ⟨u, Jᵀv⟩ identity on the GPU itself; then the composite functions' gradient and
 * batched HVP. The two cast cases go through f64, which WebGPU does not have; the ops suite
 * covers f32 ↔ i32 casts there.
 */
import { type Device, grad, hvp, jvp, type Tensor, tensor, tidy, vjp } from "../../mod.ts";
import { type Arg, CASES, COMPOSITES, sizeOf } from "../primitive_cases.ts";
import { randArray } from "../inputs.ts";
import { check, near, test } from "./harness.ts";

const TOL = 1e-4; // f32 against f64 through a few ops, as tests/ad_oracle_test.ts's part 6

async function take(t: Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.data());
  t.dispose();
  return d;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

interface Derivatives {
  jvp: Float64Array;
  vjp: Float64Array[];
  hvp: Float64Array[];
  /** ⟨Ju, v⟩, ⟨u, Jᵀv⟩ and the sum of |terms| (the rounding scale). */
  identity: [number, number, number];
}

/** JVP along u, VJP of v, and per argument the HVP of s = Σ w ⊙ sin(f) along h. */
async function derivatives(
  c: (typeof CASES)[number],
  device: Device,
  dtype: "f32" | "f64",
): Promise<Derivatives> {
  const mk = (a: { shape: number[]; values: Float64Array }) =>
    tensor(a.values, { shape: a.shape, dtype, device });
  const xs = c.args.map(mk);
  const di = c.args.flatMap((a, i) => (a.diff === false ? [] : [i]));
  const fd = (...ds: Tensor[]) =>
    c.f(...c.args.map((_, i) => (di.includes(i) ? ds[di.indexOf(i)] : xs[i])));
  const primals = di.map((i) => xs[i]);
  const shapes = di.map((i) => c.args[i].shape);
  const us = shapes.map((s, k) => randArray(sizeOf(s), 1000 + k));
  const uT = us.map((u, k) => mk({ shape: shapes[k], values: u }));
  const [y0, jt] = jvp(fd, primals, uT);
  const outShape = [...y0.shape];
  y0.dispose();
  const ju = await take(jt);
  const v = randArray(sizeOf(outShape), 2000);
  const vT = mk({ shape: outShape, values: v });
  const [y1, back] = vjp(fd, ...primals);
  const cts = await Promise.all(back(vT).map(take));
  back.dispose();
  y1.dispose();
  let scale = 0;
  cts.forEach((ct, k) => ct.forEach((g, i) => (scale += Math.abs(g * us[k][i]))));
  ju.forEach((j, i) => (scale += Math.abs(j * v[i])));
  const identity: [number, number, number] = [
    dot(ju, v),
    cts.reduce((s, ct, k) => s + dot(ct, us[k]), 0),
    scale,
  ];
  const w = mk({ shape: outShape, values: randArray(sizeOf(outShape), 4000, 0.5, 1.5) });
  const hvs: Float64Array[] = [];
  for (const [k, x] of primals.entries()) {
    const s = (y: Tensor) =>
      tidy(() => fd(...primals.map((p, j) => (j === k ? y : p))).sin().mul(w).sum());
    const h = mk({ shape: shapes[k], values: randArray(sizeOf(shapes[k]), 5000 + k) });
    hvs.push(await take(hvp(s, x, h)));
    h.dispose();
  }
  [...xs, ...uT, vT, w].forEach((t) => t.dispose());
  return { jvp: ju, vjp: cts, hvp: hvs, identity };
}

export async function adTests(gpus: [string, Device][], cpu: Device): Promise<void> {
  for (const c of CASES) {
    if (c.prims.includes("cast")) continue; // through f64: see the file comment
    const ref = await derivatives(c, cpu, "f64");
    for (const [label, dev] of gpus) {
      await test(`oracle ${c.name} [${label}]`, async () => {
        const got = await derivatives(c, dev, "f32");
        near(got.jvp, ref.jvp, TOL, "JVP");
        got.vjp.forEach((g, k) => near(g, ref.vjp[k], TOL, `VJP (argument ${k})`));
        got.hvp.forEach((g, k) => near(g, ref.hvp[k], TOL, `HVP (argument ${k})`));
        const [lhs, rhs, scale] = got.identity;
        check(
          Math.abs(lhs - rhs) <= 1e-5 * scale,
          `⟨Ju, v⟩ = ${lhs} but ⟨u, Jᵀv⟩ = ${rhs} on the GPU (scale ${scale})`,
        );
      });
    }
  }
  for (const c of COMPOSITES) {
    const run = async (device: Device, dtype: "f32" | "f64") => {
      const mk = (a: Arg) => tensor(a.values, { shape: a.shape, dtype, device });
      const x = mk(c.x), cs = c.consts.map(mk);
      const s = (y: Tensor) => c.f(y, ...cs);
      const n = sizeOf(c.x.shape);
      const v = tensor(randArray(2 * n, 308), { shape: [2, ...c.x.shape], dtype, device });
      const g = await take(grad(s)(x) as Tensor);
      const hv = await take(hvp(s, x, v));
      [x, v, ...cs].forEach((t) => t.dispose());
      return { g, hv };
    };
    const ref = await run(cpu, "f64");
    for (const [label, dev] of gpus) {
      await test(`composite ${c.name}: grad and batched HVP [${label}]`, async () => {
        const got = await run(dev, "f32");
        near(got.g, ref.g, TOL, "gradient");
        near(got.hv, ref.hv, TOL, "HVP");
      });
    }
  }
}
