/**
 * CPU code generation as issue 12 (item 4) states it: f32 rounds once per stored value
 * (each fused f32 result equals the f64-computed value rounded, the README's statement),
 * and results, `solveBanded`'s included, are written into arrays from the pool rather
 * than fresh ones. References: the same arithmetic in JavaScript f64 with `Math.fround`
 * applied once (and, to show the test can tell, after every operation), and the banded
 * system solved by hand. read_test.ts holds `data(out)`, `dataSync()` and the WebGPU
 * error naming `await x.data()`.
 */
import { equal, ok } from "node:assert/strict";
import { matmul, memory, solveBanded, sum, type Tensor, tensor } from "../mod.ts";
import { assertClose, cpu, randArray } from "./helpers.ts";

const fr = Math.fround;

Deno.test("CPU f32: a fused result is the f64-computed value rounded once", async () => {
  const n = 4099;
  const xs = Float32Array.from(randArray(n, 21), (v) => 3 * v);
  const x = tensor(xs, { dtype: "f32", device: cpu });
  // one fused kernel: ((x·1.1 + 0.3)·sin x) / (1 + x²) − exp(−x)·0.7
  const y = await x.mul(1.1).add(0.3).mul(x.sin()).div(x.square().add(1))
    .sub(x.neg().exp().mul(0.7)).data();
  const [c1, c3, c7] = [fr(1.1), fr(0.3), fr(0.7)]; // f32 constants, as the tensor holds them
  const once = Array.from(
    xs,
    (v) => fr(((v * c1 + c3) * Math.sin(v)) / (1 + v * v) - Math.exp(-v) * c7),
  );
  const each = Array.from(xs, (v) =>
    fr(
      fr(fr(fr(fr(v * c1) + c3) * fr(Math.sin(v))) / fr(1 + fr(v * v))) -
        fr(fr(Math.exp(-v)) * c7),
    ));
  assertClose(y, once, { rtol: 0, atol: 0, msg: "rounded once, when stored" });
  const differ = each.filter((v, i) => v !== once[i]).length;
  ok(differ > n / 100, `rounding after every operation differs at ${differ} of ${n} entries`);
  // and the f64 result of the same program, rounded, is the f32 result
  const y64 = await tensor(xs, { dtype: "f64", device: cpu }).mul(c1).add(c3)
    .mul(tensor(xs, { dtype: "f64", device: cpu }).sin())
    .div(tensor(xs, { dtype: "f64", device: cpu }).square().add(1))
    .sub(tensor(xs, { dtype: "f64", device: cpu }).neg().exp().mul(c7)).data();
  assertClose(y, Float32Array.from(y64), { rtol: 0, atol: 0, msg: "f64 result rounded" });
  x.dispose();
});

Deno.test("CPU f32: a reduction and a matmul store their f64-accumulated value rounded once", async () => {
  const xs = Float32Array.from(randArray(100 * 300, 22), (v) => 3 * v);
  const [a, b] = (["f32", "f64"] as const).map((dtype) => tensor(xs, { dtype, device: cpu }));
  const rows = (t: Tensor) => sum(t.reshape([100, 300]).exp(), 1);
  const mm = (t: Tensor) => matmul(t.reshape([100, 300]), t.reshape([300, 100]));
  for (const [name, f] of [["sum of exp over rows", rows], ["matmul", mm]] as const) {
    const got = await f(a).data(), f64 = await f(b).data();
    // the f64 program on the same (f32-exact) inputs, rounded once: equal to the last bit
    assertClose(got, Float32Array.from(f64), { rtol: 0, atol: 0, msg: name });
  }
  a.dispose();
  b.dispose();
});

/** The CPU pool's free arrays. */
const pooled = () => memory().caches["cpu array pool"].entries;

Deno.test("CPU: solveBanded's result and fused results come from the pool", async () => {
  const n = 5000, o = { dtype: "f64" as const, device: cpu };
  // A = tridiag(−1, 4, −1) in upper storage; x known, r = A x
  const want = Float64Array.from(randArray(n, 5));
  const r = want.map((v, i) => 4 * v - (i > 0 ? want[i - 1] : 0) - (i + 1 < n ? want[i + 1] : 0));
  const ab = tensor([[0, ...new Array(n - 1).fill(-1)], new Array(n).fill(4)], o);
  const rhs = tensor(r, o);
  const solve = () => solveBanded(ab, rhs);
  // two arrays of the result's size alive at once, then freed: the pool holds both
  const warm = solve();
  await warm.data();
  const fused = rhs.mul(2);
  await fused.data();
  const empty = pooled();
  warm.dispose();
  fused.dispose();
  const before = pooled();
  equal(before, empty + 2, "the freed arrays went to the pool");
  const x = solve();
  equal(pooled(), before - 1, "solveBanded took its output from the pool");
  assertClose(await x.data(), want, { rtol: 1e-12, atol: 1e-12 });
  const z: Tensor = rhs.mul(3);
  await z.data();
  equal(pooled(), before - 2, "a fused kernel took its output from the pool");
  x.dispose();
  z.dispose();
  equal(pooled(), before, "both arrays returned");
  ab.dispose();
  rhs.dispose();
});
