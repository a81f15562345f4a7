/**
 * Ownership of what running asynchronous calls make (issue 8, defects 5 and 7): a failing
 * call frees its own tensors and nobody else's while other work interleaves with it (a
 * second optimiser, the user's own loop, parallel read-backs), and `tidy(async …)` frees
 * what its body made and settles like any promise.
 */
import assert from "node:assert/strict";
import { memory, minimize, sum, type Tensor, tensor, tidy } from "../mod.ts";
import { assertClose, assertNoLeak, type Backend, testAll } from "./helpers.ts";

class Boom extends Error {}

const mk = (bk: Backend, data: number[]) => tensor(data, { dtype: bk.dtype, device: bk.dev });

/** Σ (x_{i+1} − x_i²)² + Σ (x_i − 1)²: minimum at 1. */
const objective = (x: Tensor): Tensor => {
  const n = x.size;
  const a = x.slice([0], [n - 1]), b = x.slice([1], [n]);
  return sum(b.sub(a.square()).square()).add(sum(x.sub(1).square()));
};

/** `f` that throws at its k-th call. */
function failingAt(k: number, f: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  let calls = 0;
  return (x) => {
    if (calls++ === k) throw new Boom(`boom at call ${k}`);
    return f(x);
  };
}

/**
 * A failure at a point of an optimiser's run: `f` throwing at its k-th call (minimize
 * compiles its evaluations and keeps them across solves: f runs once for the record that
 * keys them, then once per kind of evaluation not kept yet, all in the first iteration) or
 * the iteration callback throwing at iteration k (any later point).
 */
type Failure = { call: number } | { iteration: number };

/** `objective` shifted by a constant: a record of its own, so its first solve traces. */
const shifted = (x: Tensor): Tensor => objective(x).add(0.375);

function failing(at: Failure): { f: (x: Tensor) => Tensor; onIteration?: () => void } {
  // not objective itself: the good optimiser beside it may have traced those passes already,
  // and f would then run once (for the record) and never reach its k-th call
  if ("call" in at) return { f: failingAt(at.call, shifted) };
  return {
    f: objective,
    onIteration: () => {
      if (--(at as { iteration: number }).iteration < 0) throw new Boom("boom in the callback");
    },
  };
}

testAll("ownership: two optimisers at once, one failing, leave the other intact", async (bk) => {
  const base = memory();
  const pairs: [string, string, Failure[]][] = [
    ["newton-cg", "trust-ncg", [{ call: 1 }, { iteration: 4 }]],
    ["trust-ncg", "adahessian", [{ iteration: 3 }]],
  ];
  for (const [goodMethod, badMethod, failures] of pairs) {
    using x0 = mk(bk, [0.5, 0.8, 1.2, 0.9]);
    for (const failAt of failures) {
      const good = minimize(objective, x0, { method: goodMethod, gtol: 1e-4, maxIter: 50 });
      const { f, onIteration } = failing({ ...failAt });
      const bad = minimize(f, x0, { method: badMethod, maxIter: 50, onIteration });
      const [g, b] = await Promise.allSettled([good, bad]);
      assert.equal(b.status, "rejected");
      assert.ok((b as PromiseRejectedResult).reason instanceof Boom);
      assert.equal(g.status, "fulfilled", `${goodMethod} beside a failing ${badMethod}`);
      const r = (g as PromiseFulfilledResult<Awaited<typeof good>>).value;
      assert.ok(r.converged, r.message);
      assertClose(await r.x.data(), [1, 1, 1, 1], { atol: 1e-3 });
      r.x.dispose();
      r.jac.dispose();
    }
    x0.dispose();
    assertNoLeak(base, `${goodMethod} beside ${badMethod}`);
  }
  assertNoLeak(base, "two optimisers");
});

testAll("ownership: a failing call does not free the user's interleaved tensors", async (bk) => {
  const base = memory();
  using x0 = mk(bk, [0.5, 0.8, 1.2, 0.9]);
  const mine: [Tensor, number][] = [];
  const userLoop = (async () => {
    for (let i = 0; i < 30; i++) {
      // made while the optimiser is suspended between its read-backs
      const t = tidy(() => x0.add(i).sum());
      mine.push([t, 4 * i + 3.4]);
      const u = mk(bk, [i, i]);
      mine.push([u, 2 * i]);
      const s = u.sum();
      await s.data();
      s.dispose();
    }
  })();
  // fails at the 4th iteration's report, after several read-backs the user's loop runs between
  const { f, onIteration } = failing({ iteration: 3 });
  const bad = minimize(f, x0, { method: "newton-cg", maxIter: 50, onIteration });
  const [, b] = await Promise.allSettled([userLoop, bad]);
  assert.equal(b.status, "rejected");
  for (const [t, want] of mine) {
    assert.ok(!t.disposed, "a user tensor was freed by the failing call");
    using s = t.sum();
    assertClose([await s.item()], [want], { rtol: 1e-5 });
  }
  for (const [t] of mine) t.dispose();
  x0.dispose();
  assertNoLeak(base, "user loop beside a failing call");
});

testAll("ownership: tidy(async) frees what its body made and keeps the result", async (bk) => {
  const base = memory();
  const z = await tidy(async () => {
    const a = mk(bk, [1, 2]).add(1);
    const s = await a.sum().item(); // 5
    const b = a.mul(s); // after the await: owned through a
    return b.add(0);
  });
  assert.deepEqual(Array.from(await z.data()), [10, 15]);
  z.dispose();
  assertNoLeak(base, "tidy(async)");
  // a function that is not declared async but returns a promise behaves the same
  const w = await tidy(() => {
    const a = mk(bk, [3]).mul(2);
    return a.data().then((d) => a.add(d[0]));
  });
  assert.deepEqual(Array.from(await w.data()), [12]);
  w.dispose();
  assertNoLeak(base, "tidy(() => promise)");
});

testAll("ownership: tidy(async) that rejects frees everything and rejects once", async (bk) => {
  const base = memory();
  await assert.rejects(
    tidy(async () => {
      const a = mk(bk, [1, 2]).exp();
      await a.data();
      a.mul(2);
      throw new Boom("inside");
    }),
    Boom,
  );
  assertNoLeak(base, "rejected tidy(async)");
});

testAll("ownership: interleaved async tidies and 100 parallel read-backs", async (bk) => {
  const base = memory();
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    tidy(async () => {
      let acc = mk(bk, [i, 2 * i]);
      for (let step = 0; step < 5; step++) {
        const reads = Array.from({ length: 8 }, (_, j) => acc.add(j).sum().item());
        const vals = await Promise.all(reads);
        // Σ (acc + j) = 3i + 2·step + 2j
        assert.deepEqual(vals, vals.map((_, j) => 3 * i + 2 * step + 2 * j));
        acc = acc.add(1);
      }
      return acc;
    })));
  for (const [i, r] of results.entries()) {
    assert.deepEqual(Array.from(await r.data()), [i + 5, 2 * i + 5]);
    r.dispose();
  }
  assertNoLeak(base, "interleaved async tidies");
  // 100 parallel reads of unrelated tensors outside any tidy
  const ts = Array.from({ length: 100 }, (_, i) => mk(bk, [i, 1]));
  const sums = ts.map((t) => t.sum());
  assert.deepEqual(await Promise.all(sums.map((s) => s.item())), ts.map((_, i) => i + 1));
  for (const t of [...ts, ...sums]) t.dispose();
  assertNoLeak(base, "100 parallel read-backs");
});
