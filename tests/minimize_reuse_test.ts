/**
 * What `minimize` keeps compiled between calls: f's passes only when f is a function `jit`
 * returned (its values are fixed at its trace, jit's rule), never for a plain closure, whose
 * captured values may change between calls. References are closed forms: the minimiser of
 * Σ w_i (x_i − c_i)² + ¼ Σ (x_i − c_i)⁴ is x = c, whatever the weights.
 */
import assert from "node:assert/strict";
import { jit, memory, minimize, type Tensor, tensor } from "../mod.ts";
import { assertNoLeak, testAll } from "./helpers.ts";

const METHODS = ["newton-banded", "trust-exact", "newton-cg", "trust-ncg"] as const;

testAll(
  "minimize: a plain f closing over a changed value is solved with the new value",
  async (bk) => {
    const like = { dtype: bk.dtype, device: bk.dev };
    const tol = bk.dtype === "f64" ? 1e-8 : 2e-3; // f32: the gradient's rounding floor near x = c
    for (const method of METHODS) {
      const base = memory();
      let c = 1; // a number baked into f's kernels as a literal
      let target = tensor([0.5, -1, 2], like); // a tensor f closes over
      const f = (x: Tensor) => {
        const d = x.sub(target).sub(c);
        return d.square().sum().add(d.square().square().sum().mul(0.25));
      };
      const x0 = tensor([0, 0, 0], like);
      const opts = { method, gtol: bk.dtype === "f64" ? 1e-10 : 1e-3 };
      const expect = async (r: { x: Tensor; jac: Tensor }, want: number[], what: string) => {
        const x = await r.x.toArray() as number[];
        x.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < tol, `${method}, ${what}: ${x}`));
        r.x.dispose();
        r.jac.dispose();
      };
      await expect(await minimize(f, x0, opts), [1.5, 0, 3], "first call");
      c = 3;
      await expect(await minimize(f, x0, opts), [3.5, 2, 5], "c changed");
      target.dispose();
      target = tensor([1, 1, 1], like);
      await expect(await minimize(f, x0, opts), [4, 4, 4], "target replaced");
      target.dispose();
      x0.dispose();
      assertNoLeak(base, method);
    }
  },
);

testAll(
  "minimize: a jitted f's passes are kept across calls (f is not traced again)",
  async (bk) => {
    const like = { dtype: bk.dtype, device: bk.dev };
    for (const method of METHODS) {
      let calls = 0;
      let c = 2;
      const jf = jit((x: Tensor) => {
        calls++; // runs at traces only
        const d = x.sub(c);
        return d.square().sum().add(d.square().square().sum().mul(0.25));
      });
      const x0 = tensor([0, 0, 0, 0], like);
      const opts = { method, bandwidth: 0, gtol: bk.dtype === "f64" ? 1e-10 : 1e-3 };
      const { bandwidth: _, ...common } = opts;
      const o = method === "newton-banded" || method === "trust-exact" ? opts : common;
      const r1 = await minimize(jf, x0, o);
      const traced = calls;
      assert.ok(traced > 0);
      const r2 = await minimize(jf, x0, o);
      assert.equal(calls, traced, `${method}: the second call traced f again`);
      assert.equal(r2.nit, r1.nit, method);
      assert.deepEqual(await r2.x.toArray(), await r1.x.toArray(), method);
      // jit's rule, as documented: the kept programs computed with the value c had at the trace
      c = 5;
      const r3 = await minimize(jf, x0, o);
      assert.deepEqual(await r3.x.toArray(), await r1.x.toArray(), method);
      // a new shape is a new signature: traced, and solved with the value c has now
      const x1 = tensor([0, 0], like);
      const r4 = await minimize(jf, x1, o);
      assert.ok(calls > traced, method);
      for (const v of await r4.x.toArray() as number[]) {
        assert.ok(Math.abs(v - 5) < (bk.dtype === "f64" ? 1e-8 : 2e-3), `${method}: ${v}`);
      }
      for (const r of [r1, r2, r3, r4]) {
        r.x.dispose();
        r.jac.dispose();
      }
      x0.dispose();
      x1.dispose();
    }
  },
);
