/**
 * JAX's `check_grads` for any function of tensors, in f64 on the CPU: the JVP against
 * central finite differences, the VJP against the JVP through ⟨J u, v⟩ = ⟨u, Jᵀ v⟩, and the
 * HVP of s = Σ w ⊙ sin(f) (so f's second derivative and its Jacobian both enter) against
 * finite differences of the gradient. Memory must return to where it was.
 */
import assert from "node:assert/strict";
import { grad, hvp, jvp, memory, type Tensor, tensor, tidy, vjp } from "../mod.ts";
import { assertNoLeak, cpu, randArray } from "./helpers.ts";

/** An argument: its shape and f64 values. */
export interface GradArg {
  shape: readonly number[];
  values: ArrayLike<number>;
}

const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f64 = (a: GradArg) =>
  tensor(Float64Array.from(a.values), { shape: a.shape, dtype: "f64", device: cpu });

async function take(t: Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.data());
  t.dispose();
  return d;
}

function near(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  let err = 0, scale = 0, worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= err)) [err, worst] = [d, i];
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  assert.ok(
    err <= tol * Math.max(scale, 1e-300),
    `${what}: entry ${worst} is ${actual[worst]}, expected ${expected[worst]} (max error ${
      err.toExponential(3)
    } > ${tol} × ${scale.toExponential(3)})`,
  );
}

/**
 * Checks f's derivatives at `args` (every argument differentiated). `h` is the
 * finite-difference step (default 1e-6), `tol` the relative tolerance of the finite-difference
 * comparisons (default 1e-6); `hessian: false` skips the second-order check (piecewise
 * linear functions, whose finite-difference Hessian is noise across kinks).
 */
export async function checkGrads(
  name: string,
  f: (...xs: Tensor[]) => Tensor,
  args: readonly GradArg[],
  opts: { h?: number; tol?: number; hessian?: boolean } = {},
): Promise<void> {
  const h = opts.h ?? 1e-6, tol = opts.tol ?? 1e-6;
  const base = memory();
  const xs = args.map(f64);
  const at = async (vals: Float64Array[]) => {
    const ts = vals.map((v, k) => f64({ shape: args[k].shape, values: v }));
    const y = await take(tidy(() => f(...ts)));
    ts.forEach((t) => t.dispose());
    return y;
  };
  // 1. JVP vs central differences
  const us = args.map((a, k) => randArray(sizeOf(a.shape), 900 + k));
  const uT = us.map((u, k) => f64({ shape: args[k].shape, values: u }));
  const [y0, jt] = jvp(f, xs, uT);
  const outShape = [...y0.shape];
  y0.dispose();
  const ju = await take(jt);
  const shift = (s: number) =>
    args.map((a, k) => Float64Array.from(a.values, (v, i) => v + s * us[k][i]));
  const plus = await at(shift(h)), minus = await at(shift(-h));
  near(ju, plus.map((v, i) => (v - minus[i]) / (2 * h)), tol, `${name}: JVP vs finite differences`);
  // 2. VJP vs JVP
  const v = randArray(sizeOf(outShape), 950);
  const vT = f64({ shape: outShape, values: v });
  const [y1, back] = vjp(f, ...xs);
  const cts = back(vT);
  let rhs = 0, mag = 0;
  for (const [k, ct] of cts.entries()) {
    assert.deepEqual(ct.shape, args[k].shape, `${name}: cotangent ${k} shape`);
    const d = await take(ct);
    for (let i = 0; i < d.length; i++) (rhs += d[i] * us[k][i]), (mag += Math.abs(d[i] * us[k][i]));
  }
  back.dispose();
  y1.dispose();
  let lhs = 0;
  for (let i = 0; i < v.length; i++) (lhs += ju[i] * v[i]), (mag += Math.abs(ju[i] * v[i]));
  assert.ok(Math.abs(lhs - rhs) <= 1e-12 * mag, `${name}: ⟨Ju, v⟩ = ${lhs} but ⟨u, Jᵀv⟩ = ${rhs}`);
  // 3. HVP vs finite differences of the gradient, argument by argument
  if (opts.hessian !== false) {
    const w = f64({ shape: outShape, values: randArray(sizeOf(outShape), 960, 0.5, 1.5) });
    for (const [k, a] of args.entries()) {
      const s = (x: Tensor) => f(...xs.map((t, j) => (j === k ? x : t))).sin().mul(w).sum();
      const dir = randArray(sizeOf(a.shape), 970 + k);
      const dT = f64({ shape: a.shape, values: dir });
      const hv = await take(hvp(s, xs[k], dT));
      const gAt = async (sign: number) => {
        const t = f64({
          shape: a.shape,
          values: Float64Array.from(a.values, (q, i) => q + sign * h * dir[i]),
        });
        const g = await take(grad(s)(t));
        t.dispose();
        return g;
      };
      const gp = await gAt(1), gm = await gAt(-1);
      near(
        hv,
        gp.map((q, i) => (q - gm[i]) / (2 * h)),
        tol,
        `${name}: HVP (argument ${k}) vs finite differences`,
      );
      dT.dispose();
    }
    w.dispose();
  }
  [...xs, ...uT, vT].forEach((t) => t.dispose());
  assertNoLeak(base, `${name}: memory`);
}
