/**
 * What `minimize` keeps compiled between calls. A plain f's passes are keyed by a record of
 * what f does (src/ad/auto_jit.ts): a later solve whose f writes the same record replays
 * them (f runs once, for the key), reading the tensors f closes over as they are then; a
 * changed number or other operations key other programs. A jitted f's are kept with it
 * (jit's rule: its values are fixed at its trace). References are closed forms: the
 * minimiser of Σ (x_i − t_i − c)² + ¼ Σ (x_i − t_i − c)⁴ is x = t + c, and the constrained
 * problems' are projections. Every staleness case fails if programs were kept by the
 * function alone, or if the key ignored the tensors f closes over.
 */
import assert from "node:assert/strict";
import { jit, memory, minimize, releaseCaches, slice, type Tensor, tensor } from "../mod.ts";
import { autoJitStats } from "../src/ad/auto_jit.ts";
import { assertClose, assertNoLeak, testAll } from "./helpers.ts";
import { solveDense } from "./dense_ref.ts";

const METHODS = ["newton-banded", "trust-exact", "newton-cg", "trust-ncg"] as const;

/**
 * What a solve should do with kept programs: replay all its passes ("all": the same record
 * solved again), replay some ("some": the record is the same, and a longer solve may trace
 * work the earlier ones never did), or trace under a new record ("new"); null: either.
 */
type Replays = "all" | "some" | "new" | null;

function checkReplays(before: typeof autoJitStats, replays: Replays, what: string): void {
  const [hits, misses] = [autoJitStats.hits - before.hits, autoJitStats.misses - before.misses];
  if (replays === "all") assert.ok(hits > 0 && misses === 0, `${what}: ${hits}, ${misses}`);
  if (replays === "some") assert.ok(hits > 0, `${what}: no replay`);
  if (replays === "new") assert.ok(misses > 0, `${what}: not traced`);
}

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
  "minimize: a repeated solve of a plain f replays its passes (f runs once, for the key)",
  async (bk) => {
    const like = { dtype: bk.dtype, device: bk.dev };
    for (const method of METHODS) {
      const base = memory();
      let runs = 0;
      const target = tensor([0.5, -1, 2, 0.25], like);
      const f = (x: Tensor) => {
        runs++;
        const d = x.sub(target);
        return d.square().sum().add(d.square().square().sum().mul(0.25));
      };
      const x0 = tensor([0, 0, 0, 0], like);
      const opts = { method, gtol: bk.dtype === "f64" ? 1e-10 : 1e-3 };
      const r1 = await minimize(f, x0, opts);
      const [runs1, misses] = [runs, autoJitStats.misses];
      const [keyed, hits] = [autoJitStats.keyed, autoJitStats.hits];
      const r2 = await minimize(f, x0, opts);
      assert.equal(runs - runs1, 1, `${method}: f ran ${runs - runs1} times in the second solve`);
      assert.equal(autoJitStats.misses, misses, `${method}: the second solve traced`);
      assert.equal(autoJitStats.keyed - keyed, 1, `${method}: one key run per solve`);
      assert.ok(autoJitStats.hits - hits >= r2.nit, `${method}: replays`);
      assert.equal(r2.nit, r1.nit, method);
      assert.deepEqual(await r2.x.toArray(), await r1.x.toArray(), method);
      // kept in the bounded cache memory() reports; releaseCaches() empties it
      assert.ok(memory().caches["auto-jit programs"].entries > 0, method);
      releaseCaches();
      assert.equal(memory().caches["auto-jit programs"].entries, 0, method);
      const misses3 = autoJitStats.misses;
      const r3 = await minimize(f, x0, opts);
      assert.ok(autoJitStats.misses > misses3, `${method}: traced again after releaseCaches`);
      assert.deepEqual(await r3.x.toArray(), await r1.x.toArray(), method);
      for (const r of [r1, r2, r3]) {
        r.x.dispose();
        r.jac.dispose();
      }
      target.dispose();
      x0.dispose();
      assertNoLeak(base, method);
    }
  },
);

testAll(
  "minimize: replayed passes read the closure's tensors as they are now (never stale)",
  async (bk) => {
    const like = { dtype: bk.dtype, device: bk.dev };
    const tol = bk.dtype === "f64" ? 1e-8 : 2e-3;
    for (const [k, method] of METHODS.entries()) {
      const base = memory();
      // values of this method's own (not the first test's, nor another method's: methods
      // share passes of one record, so the "new" cases would find their programs)
      let c = 2 + k / 4;
      let halve = false;
      let t = [0.5, -1, 2];
      let target = tensor(t, like);
      const f = (x: Tensor) => {
        const d = (halve ? x.mul(2) : x).sub(target).sub(c);
        return d.square().sum().add(d.square().square().sum().mul(0.25));
      };
      const x0 = tensor([0, 0, 0], like);
      const opts = { method, gtol: bk.dtype === "f64" ? 1e-10 : 1e-3 };
      const solve = async (what: string, replays: Replays) => {
        const stats = { ...autoJitStats };
        const r = await minimize(f, x0, opts);
        const x = await r.x.toArray() as number[];
        // the minimiser: x = t + c, or (t + c) / 2 when halved
        const want = t.map((v) => (v + c) / (halve ? 2 : 1));
        x.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < tol, `${method}, ${what}: ${x}`));
        checkReplays(stats, replays, `${method}, ${what}`);
        r.x.dispose();
        r.jac.dispose();
      };
      /** A new target: uploaded, or (twice) an expression made each solve (not realized). */
      const reassign = (values: number[], twice = false) => {
        target.dispose();
        t = values.map((v) => (twice ? 2 * v : v));
        const up = tensor(values, like);
        target = twice ? up.mul(2) : up;
        if (twice) up.dispose();
      };
      await solve("first solve", null);
      await solve("again", "all");
      reassign([1, 1, 1]);
      await solve("target reassigned", "some");
      reassign([2, -2, 0.5], true);
      await solve("target an expression", "some");
      reassign([1, 0, -1], true);
      await solve("another expression", "some");
      c += 2;
      await solve("c changed", "new");
      halve = true;
      await solve("structure changed", "new");
      halve = false;
      reassign([0, 1, 2]);
      await solve("first structure, new target", "some");
      target.dispose();
      x0.dispose();
      assertNoLeak(base, method);
    }
  },
);

testAll(
  "minimize: an f the record cannot describe (host data made inside) is compiled per solve",
  async (bk) => {
    const like = { dtype: bk.dtype, device: bk.dev };
    const tol = bk.dtype === "f64" ? 1e-8 : 2e-3;
    let c = [1, -2, 0.5];
    const f = (x: Tensor) => { // a new tensor from host data at every run of f
      const d = x.sub(tensor(c, like));
      return d.square().sum().add(d.square().square().sum().mul(0.25));
    };
    const x0 = tensor([0, 0, 0], like);
    const before = { ...autoJitStats };
    for (const method of ["newton-banded", "trust-ncg"]) {
      for (const values of [[1, -2, 0.5], [3, 0, -1]]) {
        c = values;
        const r = await minimize(f, x0, { method, gtol: bk.dtype === "f64" ? 1e-10 : 1e-3 });
        const x = await r.x.toArray() as number[];
        x.forEach((v, i) => assert.ok(Math.abs(v - c[i]) < tol, `${method}: ${x} for ${c}`));
        r.x.dispose();
        r.jac.dispose();
      }
    }
    // the first solve found out; the next ones skipped the key run (for 8 solves)
    assert.equal(autoJitStats.unkeyed - before.unkeyed, 1);
    assert.equal(autoJitStats.keyed - before.keyed, 0);
    x0.dispose();
  },
);

testAll(
  "minimize: a captured expression realized during a solve does not go stale",
  async (bk) => {
    // The first solve's callback reads the captured expression, realizing it between the
    // traces of its passes; the second solve's new expression must be read by every pass:
    // its iterates are those of the same solve with every program traced afresh.
    const like = { dtype: bk.dtype, device: bk.dev };
    const expression = (v: number[]) => {
      const up = tensor(v, like);
      const t = up.mul(2);
      up.dispose();
      return t;
    };
    for (const method of ["newton-banded", "trust-ncg"]) { // a band, and products
      let target = expression([1, 2, 3.5]);
      const f = (x: Tensor) => {
        const d = x.sub(target);
        return d.square().sum().add(d.square().square().sum().mul(0.25));
      };
      const x0 = tensor([0, 0, 0], like);
      const r1 = await minimize(f, x0, {
        method,
        onIteration: async () => void await target.data(),
      });
      target.dispose();
      target = expression([-1, 0, 1.5]);
      const r2 = await minimize(f, x0, { method });
      releaseCaches();
      const ref = await minimize(f, x0, { method });
      assert.equal(r2.nit, ref.nit, method);
      assertClose(await r2.x.toArray() as number[], await ref.x.toArray() as number[], {
        rtol: bk.rtol,
        atol: bk.rtol,
        msg: method,
      });
      for (const r of [r1, r2, ref]) {
        r.x.dispose();
        r.jac.dispose();
      }
      target.dispose();
      x0.dispose();
    }
  },
);

testAll(
  "minimize (ipm): constraints closing over changed values give the new solution",
  async (bk) => {
    // min ‖x − c‖² s.t. Σx = s, x₀ ≤ u: x = c + (s − Σc)/3 while x₀ ≤ u; else x₀ = u and
    // x₁,₂ = c₁,₂ + (s − u − c₁ − c₂)/2
    const like = { dtype: bk.dtype, device: bk.dev };
    const tol = bk.dtype === "f64" ? 1e-7 : 2e-3;
    const base = memory();
    let c = tensor([1, 2, 3], like);
    let s = tensor([3], like);
    let u = 10;
    const f = (x: Tensor) => x.sub(c).square().sum();
    const eq = (x: Tensor) => x.sum().reshape([1]).sub(s);
    const ineq = (x: Tensor) => x.slice([0], [1]).neg().add(u);
    const x0 = tensor([0, 0, 0], like);
    const solve = async (want: number[], what: string, replays: Replays) => {
      const stats = { ...autoJitStats };
      const r = await minimize(f, x0, { method: "ipm", constraints: { eq, ineq } });
      assert.equal(r.status, 0, `${what}: ${r.message}`);
      const x = await r.x.toArray() as number[];
      x.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < tol, `${what}: ${x}`));
      checkReplays(stats, replays, what);
      r.x.dispose();
      r.jac.dispose();
      for (const t of Object.values(r.multipliers!)) t.dispose();
    };
    await solve([0, 1, 2], "first solve", null);
    await solve([0, 1, 2], "again", "all");
    s.dispose();
    s = tensor([9], like);
    await solve([2, 3, 4], "s reassigned", "some");
    u = 1;
    await solve([1, 3.5, 4.5], "u changed (x₀ ≤ u active)", "new");
    const expression = (v: number[]) => { // made each solve, not realized
      c.dispose();
      const up = tensor(v, like);
      c = up.mul(2);
      up.dispose();
    };
    expression([1, 1, 1]);
    await solve([1, 4, 4], "c an expression", "some");
    expression([2, 3, 0]);
    await solve([1, 7, 1], "another expression", "some");
    for (const t of [c, s, x0]) t.dispose();
    assertNoLeak(base, "ipm");
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

testAll(
  "minimize: the detected Hessian pattern follows a closure whose couplings changed",
  async (bk) => {
    // f = Σ (x − t)² + ½ Σ_i (x_{i+k} − x_i)², k a JS number f reads: H = 2I + L_k has
    // bandwidth k. A pattern kept by the function from the solve at k = 1 misses (newton-sparse)
    // or aliases (a comb of period 3 onto the diagonal: the banded methods) the couplings at
    // k = 3, and Newton's step on this quadratic is then not exact. Reference: (2I + L_k) x = 2t
    // solved densely (dense_ref.ts).
    const like = { dtype: bk.dtype, device: bk.dev };
    const n = 12;
    const t = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
    const exact = (k: number): number[] => {
      const a = Array.from({ length: n }, (_, i) => {
        const row = new Array(n).fill(0);
        row[i] = 2;
        return row;
      });
      for (let i = 0; i + k < n; i++) {
        const j = i + k;
        a[i][i] += 1, a[j][j] += 1, a[i][j] -= 1, a[j][i] -= 1;
      }
      return solveDense(a, t.map((v) => 2 * v));
    };
    const target = tensor(t, like);
    let k = 1;
    const f = (x: Tensor) => {
      const d = slice(x, [k], [n]).sub(slice(x, [0], [n - k]));
      return x.sub(target).square().sum().add(d.square().sum().mul(0.5));
    };
    const tol = bk.dtype === "f64" ? 1e-9 : 1e-4;
    for (const method of ["newton-banded", "trust-exact", "newton-sparse"] as const) {
      releaseCaches();
      for (const kk of [1, 3, 1]) {
        k = kk;
        const x0 = tensor(new Array(n).fill(0), like);
        const r = await minimize(f, x0, { method, gtol: bk.dtype === "f64" ? 1e-9 : 1e-3 });
        const x = await r.x.toArray() as number[];
        const want = exact(k);
        x.forEach((v, i) =>
          assert.ok(Math.abs(v - want[i]) < tol, `${method}, k = ${k}: x ${x} against ${want}`)
        );
        // the exact Hessian of a quadratic: one Newton step (trust-exact may need a second
        // while its radius grows)
        assert.ok(r.nit <= 3, `${method}, k = ${k}: ${r.nit} iterations (a stale pattern?)`);
        for (const u of [r.x, r.jac, x0]) u.dispose();
      }
    }
    target.dispose();
  },
);
