/**
 * The curvature calls keep their programs across calls without `jit` (src/ad/auto_jit.ts),
 * keyed by a record of what f does on an abstract x: a second call with the same record
 * replays (f runs once, for the key, and is not traced again), and the values equal closed forms and the uncached
 * path. A closure whose captured tensor, captured number or structure changes between calls
 * gets the new answer: every case here fails if programs were kept by the function alone.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { assertClose, sameMemory, testAll } from "./helpers.ts";
import {
  bandedHessian,
  grad,
  hessian,
  hessianDiagonal,
  hessianTrace,
  inverseHvp,
  matmul,
  memory,
  mul,
  releaseCaches,
  reshape,
  slice,
  sparseHessian,
  square,
  stopGradient,
  sum,
  type Tensor,
  tensor,
} from "../mod.ts";
import { autoJitConfig, autoJitStats } from "../src/ad/auto_jit.ts";
import { limitCache } from "../src/lru.ts";

const n = 9;
const xs = Array.from({ length: n }, (_, i) => Math.sin(i + 1));

/** Counts f's runs (each call: one for the key, one more per program it traces). */
function counted(f: (x: Tensor) => Tensor): { f: (x: Tensor) => Tensor; runs: () => number } {
  let runs = 0;
  return {
    f: (x) => {
      runs++;
      return f(x);
    },
    runs: () => runs,
  };
}

/** The band of `f` at x, lower storage, read back; with `fresh`, through the uncached path. */
async function band(f: (x: Tensor) => Tensor, x: Tensor, b: number, fresh = false) {
  autoJitConfig.enabled = !fresh;
  try {
    const H = bandedHessian(f, x, { bandwidth: b, layout: "lower" });
    const v = Array.from(await H.data.data());
    H.dispose();
    return v;
  } finally {
    autoJitConfig.enabled = true;
  }
}

/** Lower band storage [b + 1, n] of a tridiagonal (b = 1) matrix from its diagonals, flat. */
function lowerBand(diag: number[], off: number[]): number[] {
  return [...diag, ...off, 0];
}

testAll(
  "auto-jit: a repeated call replays, values as closed forms and as a fresh trace",
  async (b) => {
    const opts = { dtype: b.dtype, device: b.dev };
    const base = memory();
    const x = tensor(xs, opts);
    // f = Σ x⁴/12 + Σ (x[i+1] − x[i])²: H = diag(x²) + 2·(second-difference Laplacian)
    const { f, runs } = counted((z) =>
      sum(mul(square(square(z)), 1 / 12)).add(
        sum(square(slice(z, [1], [n]).sub(slice(z, [0], [n - 1])))),
      )
    );
    const diag = xs.map((v, i) => v * v + (i === 0 || i === n - 1 ? 2 : 4));
    const want = lowerBand(diag, new Array(n - 1).fill(-2));
    const first = await band(f, x, 1);
    assertClose(first, want, { rtol: b.rtol, atol: 10 * b.rtol, msg: "first call" });
    const traced = autoJitStats.misses, hits = autoJitStats.hits, before = runs();
    const second = await band(f, x, 1);
    equal(runs() - before, 1, "the second call runs f once (the key run) and traces nothing");
    equal(autoJitStats.misses, traced, "no new program recorded");
    equal(autoJitStats.hits, hits + 1, "the second call replays");
    deepEqual(second, first, "a replay gives the traced call's values");
    assertClose(await band(f, x, 1, true), second, { rtol: b.rtol, atol: b.rtol, msg: "fresh" });
    // a new x of the same shape replays on its own values
    const x2 = tensor(xs.map((v) => 2 * v), opts);
    const want2 = lowerBand(xs.map((v, i) => 4 * v * v + (i === 0 || i === n - 1 ? 2 : 4)), [
      ...new Array(n - 1).fill(-2),
    ]);
    const h = autoJitStats.hits;
    assertClose(await band(f, x2, 1), want2, { rtol: b.rtol, atol: 10 * b.rtol, msg: "new x" });
    equal(autoJitStats.hits, h + 1, "a new x of the same shape replays");

    // the other calls: a second call replays every program the first recorded
    const again = async <T>(
      what: string,
      call: () => Promise<T>,
      check: (v: T) => Promise<void>,
    ) => {
      await check(await call());
      const m = autoJitStats.misses, r = runs();
      await check(await call());
      equal(autoJitStats.misses, m, `${what}: the second call traces nothing`);
      equal(runs() - r, 1, `${what}: the second call runs f only for its key`);
    };
    await again(
      "hessianDiagonal",
      () => hessianDiagonal(f, x, { method: "comb", bandwidth: 1, batch: 1 }),
      async (d) => {
        assertClose(await d.value.data(), diag, { rtol: b.rtol, atol: 10 * b.rtol });
        d.value.dispose();
      },
    );
    await again(
      "hessianTrace",
      () => hessianTrace(f, x, { method: "comb", bandwidth: 1 }),
      (t) => {
        assertClose([t.value], [diag.reduce((a, v) => a + v, 0)], { rtol: 10 * b.rtol });
        return Promise.resolve();
      },
    );
    await again("hessian", () => Promise.resolve(hessian(f, { chunkSize: 4 })(x)), async (H) => {
      const dense = new Array(n * n).fill(0);
      diag.forEach((v, i) => (dense[i * n + i] = v));
      for (let i = 0; i + 1 < n; i++) dense[i * n + i + 1] = dense[(i + 1) * n + i] = -2;
      assertClose(await H.data(), dense, { rtol: b.rtol, atol: 10 * b.rtol });
      H.dispose();
    });
    const us = xs.map((v) => 1 - v);
    const hu = us.map((u, i) =>
      diag[i] * u - 2 * ((i > 0 ? us[i - 1] : 0) + (i + 1 < n ? us[i + 1] : 0))
    );
    const v = tensor(hu, opts);
    await again(
      "inverseHvp",
      () => inverseHvp(f, x, v, { method: "cg", rtol: b.dtype === "f64" ? 1e-12 : 1e-6 }),
      async (u) => {
        assertClose(await u.data(), us, { rtol: 100 * b.rtol, atol: 100 * b.rtol });
        u.dispose();
      },
    );
    ok(memory().caches["auto-jit programs"].entries > 0, "memory() lists the programs");
    v.dispose();
    x.dispose();
    x2.dispose();
    releaseCaches();
    equal(memory().caches["auto-jit programs"].entries, 0, "releaseCaches() empties them");
    ok(sameMemory(base, memory()), "memory back to its baseline");
  },
);

testAll("auto-jit: a changed closure gives the new answer (never the old program)", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const x = tensor(xs, opts);
  const xv = Array.from(await x.data());
  // a tensor the closure reads, reassigned between calls: H = diag(6 w x)
  let w = tensor(xs.map((_, i) => i + 1), opts);
  const cubic = (z: Tensor) => sum(mul(w, mul(z, square(z))));
  const diagOf = (ws: number[]) => [...ws.map((wi, i) => 6 * wi * xv[i])];
  assertClose(await band(cubic, x, 0), diagOf(xs.map((_, i) => i + 1)), { rtol: b.rtol });
  const old = w;
  w = tensor(xs.map((_, i) => 10 - i), opts);
  const hits = autoJitStats.hits;
  assertClose(await band(cubic, x, 0), diagOf(xs.map((_, i) => 10 - i)), { rtol: b.rtol });
  equal(autoJitStats.hits, hits + 1, "same record, new captured tensor: replayed on it");
  old.dispose();
  w.dispose();

  // a new tensor each call (made outside f, read by it)
  for (const s of [1, -3]) {
    const ws = xs.map((_, i) => s * (i + 2));
    const wt = tensor(ws, opts);
    const f = (z: Tensor) => sum(mul(wt, mul(z, square(z))));
    assertClose(await band(f, x, 0), diagOf(ws), { rtol: b.rtol, msg: `new tensor ${s}` });
    wt.dispose();
  }

  // a JavaScript number the closure reads: a constant f's record writes, so part of the key
  let a = 2;
  const scaled = (z: Tensor) => sum(mul(square(z), a));
  assertClose(await band(scaled, x, 0), new Array(n).fill(4), { rtol: b.rtol });
  a = 3;
  assertClose(await band(scaled, x, 0), new Array(n).fill(6), { rtol: b.rtol });

  // a closure whose structure changes between calls
  let quartic = false;
  const switching = (z: Tensor) => (quartic ? sum(square(square(z))) : sum(square(z)));
  assertClose(await band(switching, x, 0), new Array(n).fill(2), { rtol: b.rtol });
  quartic = true;
  assertClose(await band(switching, x, 0), xv.map((v) => 12 * v * v), { rtol: b.rtol });

  // f closes over x itself: the captured read is a constant of the derivative, x is not.
  // Σ z·x is linear in z (H = 0) and Σ z·z is not (H = 2I), though on x their kernels read
  // the same buffer twice
  const linear = (z: Tensor) => sum(mul(z, x));
  const square2 = (z: Tensor) => sum(mul(z, z));
  assertClose(await band(square2, x, 0), new Array(n).fill(2), { rtol: b.rtol });
  assertClose(await band(linear, x, 0), new Array(n).fill(0), { atol: b.rtol });
  assertClose(await band(square2, x, 0), new Array(n).fill(2), { rtol: b.rtol });

  // stopGradient changes the derivative, not the value: z·stop(z) has H = 0 (its gradient
  // is stop(z), a constant), z·z has H = 2I; the record writes the stop down
  const stopped = (z: Tensor) => sum(mul(z, stopGradient(z)));
  assertClose(await band(stopped, x, 0), new Array(n).fill(0), { atol: b.rtol });
  assertClose(await band(square2, x, 0), new Array(n).fill(2), { rtol: b.rtol });
  assertClose(await band(stopped, x, 0), new Array(n).fill(0), { atol: b.rtol });
  x.dispose();
  releaseCaches();
});

testAll(
  "auto-jit: opaque ops and nested transforms are keyed; what is not runs uncached",
  async (b) => {
    const opts = { dtype: b.dtype, device: b.dev };
    const x = tensor(xs, opts);
    const xv = Array.from(await x.data());
    // matmul on x is a primitive of the record like any other: H = A + Aᵀ, A diagonal here
    const A = tensor(Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? 1 + k / n : 0)), {
      ...opts,
    });
    const quad = (z: Tensor) => sum(mul(z, reshape(matmul(reshape(A, [n, n]), z), [n])));
    const dA = Array.from({ length: n }, (_, i) => 2 * (1 + i * (n + 1) / n));
    assertClose(await band(quad, x, 0), dA, { rtol: b.rtol });
    const hits = autoJitStats.hits;
    assertClose(await band(quad, x, 0), dA, { rtol: b.rtol });
    equal(autoJitStats.hits, hits + 1, "matmul in f: the second call replays");
    A.dispose();

    // a transform inside f: f = Σ (∂g/∂z)² for g = Σ z³/3, so f = Σ z⁴ and H = diag(12 z²)
    const inner = (z: Tensor) => sum(square(grad((y: Tensor) => sum(mul(square(y), y)).div(3))(z)));
    const want = xv.map((v) => 12 * v * v);
    assertClose(await band(inner, x, 0), want, { rtol: 10 * b.rtol });
    assertClose(await band(inner, x, 0), want, { rtol: 10 * b.rtol });

    // a tensor made from host data inside f: a buffer the record cannot describe
    const made = (z: Tensor) => sum(mul(square(z), tensor(xs.map((_, i) => i + 1), opts)));
    const unkeyed = autoJitStats.unkeyed;
    const dm = xs.map((_, i) => 2 * (i + 1));
    assertClose(await band(made, x, 0), dm, { rtol: b.rtol });
    equal(autoJitStats.unkeyed, unkeyed + 1, "a buffer made inside f keys nothing");
    // the same f is not run for a key again for a while (it would cost a run for nothing)
    assertClose(await band(made, x, 0), dm, { rtol: b.rtol });
    equal(autoJitStats.unkeyed, unkeyed + 1, "skipped, not retried at once");

    // a value read back inside f (CPU: dataSync): f's control flow may depend on it
    if (b.dev.kind === "cpu") {
      const reading = (z: Tensor) => {
        const s = z.dataSync()[0] > 0 ? 1 : -1;
        return sum(mul(square(z), s));
      };
      const u = autoJitStats.unkeyed;
      const s = xv[0] > 0 ? 2 : -2;
      assertClose(await band(reading, x, 0), new Array(n).fill(s), { rtol: b.rtol });
      equal(autoJitStats.unkeyed, u + 1, "a read-back keys nothing");
    }
    x.dispose();
    releaseCaches();
  },
);

Deno.test("auto-jit: the cache is bounded (least recently used dropped)", async () => {
  const x = tensor(xs, { dtype: "f64" });
  limitCache("auto-jit programs", { maxEntries: 2 });
  try {
    for (let k = 1; k <= 5; k++) {
      const f = (z: Tensor) => sum(mul(square(z), k));
      assertClose(await band(f, x, 0), new Array(n).fill(2 * k), { rtol: 1e-12 });
      ok(memory().caches["auto-jit programs"].entries <= 2, "at most 2 programs kept");
    }
  } finally {
    limitCache("auto-jit programs", { maxEntries: 64 });
    x.dispose();
    releaseCaches();
  }
});

/** The dense n × n Hessian (flat, row-major) from `sparseHessian`, read back; `fresh`: uncached. */
async function sparseDense(f: (x: Tensor) => Tensor, x: Tensor, fresh = false) {
  autoJitConfig.enabled = !fresh;
  try {
    const H = sparseHessian(f, x);
    const D = H.toDense();
    const v = Array.from(await D.data());
    D.dispose();
    H.dispose();
    return v;
  } finally {
    autoJitConfig.enabled = true;
  }
}

/** A dense n × n matrix (flat) from its entries (i, j, v), mirrored. */
function symmetric(entries: [number, number, number][]): number[] {
  const m = new Array(n * n).fill(0);
  for (const [i, j, v] of entries) m[i * n + j] = m[j * n + i] = v;
  return m;
}

testAll(
  "auto-jit: sparseHessian replays its program and keeps its pattern by f's record, not by f",
  async (b) => {
    const opts = { dtype: b.dtype, device: b.dev };
    const base = memory();
    const x = tensor(xs, opts);
    const xv = Array.from(await x.data());
    const close = { rtol: 10 * b.rtol, atol: 10 * b.rtol };
    // f = Σ w x³ + Σ (x[i+1] − x[i])²: H = diag(6 w x) + 2·(second-difference Laplacian)
    let w = tensor(xs.map((_, i) => i + 1), opts);
    const { f, runs } = counted((z) =>
      sum(mul(w, mul(z, square(z)))).add(
        sum(square(slice(z, [1], [n]).sub(slice(z, [0], [n - 1])))),
      )
    );
    const want = (ws: number[]) =>
      symmetric([
        ...ws.map((wi, i) => [i, i, 6 * wi * xv[i] + (i === 0 || i === n - 1 ? 2 : 4)]),
        ...xs.slice(1).map((_, i) => [i, i + 1, -2]),
      ] as [number, number, number][]);
    assertClose(await sparseDense(f, x), want(xs.map((_, i) => i + 1)), close);
    const traced = autoJitStats.misses, hits = autoJitStats.hits, before = runs();
    assertClose(await sparseDense(f, x), want(xs.map((_, i) => i + 1)), close);
    equal(runs() - before, 1, "the second call runs f once (the key run): no trace, no detection");
    equal(autoJitStats.misses, traced, "no new program recorded");
    equal(autoJitStats.hits, hits + 1, "the second call replays");
    // the captured tensor reassigned: same record, replayed on the new tensor
    const old = w;
    w = tensor(xs.map((_, i) => 10 - i), opts);
    const h = autoJitStats.hits;
    assertClose(await sparseDense(f, x), want(xs.map((_, i) => 10 - i)), close);
    equal(autoJitStats.hits, h + 1, "new captured tensor: replayed on it");
    assertClose(await sparseDense(f, x, true), want(xs.map((_, i) => 10 - i)), close);
    old.dispose();
    w.dispose();

    // a closure whose pattern changes between calls: Σ x[i] x[i+k] + Σ x⁴/12 couples each
    // variable with its k-th neighbour, k a JS number it reads (H = diag(x²) + [|i − j| = k])
    let k = 1;
    const coupled = (z: Tensor) =>
      sum(mul(slice(z, [0], [n - k]), slice(z, [k], [n]))).add(sum(mul(square(square(z)), 1 / 12)));
    const wantK = (k: number) =>
      symmetric([
        ...xv.map((v, i) => [i, i, v * v]),
        ...Array.from({ length: n - k }, (_, i) => [i, i + k, 1]),
      ] as [number, number, number][]);
    for (const kk of [1, 3, 1, 0]) {
      k = kk;
      // k = 0: Σ x² + Σ x⁴/12, diagonal (the couplings land on it: 2 + x²)
      const w0 = kk === 0 ? symmetric(xv.map((v, i) => [i, i, 2 + v * v])) : wantK(kk);
      assertClose(await sparseDense(coupled, x), w0, { ...close, msg: `k = ${kk}` });
    }
    // and a structure switched on and off by a captured boolean: diagonal, then tridiagonal
    let on = false;
    const switching = (z: Tensor) => {
      const q = sum(mul(square(square(z)), 1 / 12));
      return on ? q.add(sum(square(slice(z, [1], [n]).sub(slice(z, [0], [n - 1]))))) : q;
    };
    assertClose(await sparseDense(switching, x), symmetric(xv.map((v, i) => [i, i, v * v])), close);
    on = true;
    assertClose(
      await sparseDense(switching, x),
      symmetric([
        ...xv.map((v, i) => [i, i, v * v + (i === 0 || i === n - 1 ? 2 : 4)]),
        ...xs.slice(1).map((_, i) => [i, i + 1, -2]),
      ] as [number, number, number][]),
      { ...close, msg: "coupling switched on" },
    );
    ok(memory().caches["hessian sparsity patterns"].entries > 0, "memory() lists the patterns");
    x.dispose();
    releaseCaches();
    equal(memory().caches["hessian sparsity patterns"].entries, 0, "releaseCaches() empties them");
    ok(sameMemory(base, memory()), "memory back to its baseline");
  },
);

testAll(
  "auto-jit: bandedHessian without bandwidth detects the band of a closure whose couplings change",
  async (b) => {
    const opts = { dtype: b.dtype, device: b.dev };
    const x = tensor(xs, opts);
    const xv = Array.from(await x.data());
    // Σ x[i] x[i+k] + Σ x⁴/12 with k a JS number the closure reads: bandwidth k, lower
    // storage row 0 = x², row k = 1 (for i < n − k), every other row 0
    let k = 1;
    const f = (z: Tensor) =>
      sum(mul(slice(z, [0], [n - k]), slice(z, [k], [n]))).add(sum(mul(square(square(z)), 1 / 12)));
    for (const kk of [1, 3, 1]) {
      k = kk;
      const H = bandedHessian(f, x, { layout: "lower" });
      equal(H.bandwidth, kk, `k = ${kk}: the detected bandwidth`);
      const want = Array.from(
        { length: kk + 1 },
        (_, d) => xv.map((v, i) => d === 0 ? v * v : d === kk && i < n - kk ? 1 : 0),
      ).flat();
      assertClose(Array.from(await H.data.data()), want, {
        rtol: 10 * b.rtol,
        atol: 10 * b.rtol,
        msg: `k = ${kk}`,
      });
      H.dispose();
    }
    x.dispose();
    releaseCaches();
  },
);

testAll("auto-jit: tensors f makes from captured ones during the key run are freed", async (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  const x = tensor(xs, opts);
  const w = tensor(xs.map((_, i) => i + 1), opts);
  // reshape(w) and mul(w, 2) are real tensors even in the abstract run: f = Σ 2 w x², H = diag(4 w)
  const f = (z: Tensor) => sum(mul(reshape(mul(w, 2), [n]), square(z)));
  const want = xs.map((_, i) => 4 * (i + 1));
  assertClose(await band(f, x, 0), want, { rtol: b.rtol });
  await sparseDense(f, x); // the first call keeps the programs and the pattern
  const base = memory();
  for (let k = 0; k < 3; k++) {
    assertClose(await band(f, x, 0), want, { rtol: b.rtol });
    const H = await sparseDense(f, x);
    assertClose(H.filter((_, i) => i % (n + 1) === 0), want, { rtol: b.rtol });
  }
  ok(sameMemory(base, memory()), `${memory().tensors - base.tensors} tensors left behind`);
  x.dispose();
  w.dispose();
  releaseCaches();
});
