/**
 * A tensor a jitted function closes over may share its storage with an argument (the
 * optimisers' x0 = y + 0 folds to y itself): it stays a constant of the compiled program.
 * Reference: the same function run without jit.
 */
import assert from "node:assert/strict";
import { jit, type Tensor, tensor } from "../mod.ts";
import { assertClose, testAll } from "./helpers.ts";

testAll("jit: a closed-over tensor that is also the argument stays a constant", async (b) => {
  const o = { dtype: b.dtype, device: b.dev } as const;
  const y = tensor([1, 2, 3], o);
  const f = (x: Tensor) => x.sub(y).square().sum().add(x.mul(y).sum());
  const g = jit(f);
  // traced with x sharing y's storage, replayed with another x
  const first = g(y);
  const x2 = tensor([0.5, -1, 4], o);
  const second = g(x2);
  const want = f(x2);
  assertClose(await second.data(), await want.data(), { rtol: b.rtol });
  assert.equal(g.traces, 1);
  // and the first call's value is f(y) = Σ y²
  assert.ok(Math.abs((await first.item()) - 14) < 1e-4);
  // a function that returns its argument gives it back intact
  const id = jit((x: Tensor) => x);
  const r1 = id(y);
  assertClose(await r1.data(), [1, 2, 3], { rtol: b.rtol });
  for (const t of [y, first, x2, second, want, r1]) t.dispose();
});
