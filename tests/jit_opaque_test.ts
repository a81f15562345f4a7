/**
 * jit replays the library's opaque kernels (banded and dense solvers, eigh, scans) with new
 * inputs: several calls queued before any read, each compared with the same function run
 * without jit (the uncompiled path is the reference). On WebGPU these kernels copy their
 * right-hand side into a working buffer first; a replay that dropped that copy solved the
 * traced call's right-hand side again (found by the ipm, 2 December 2026).
 */
import assert from "node:assert/strict";
import {
  choleskyBanded,
  cumsum,
  eigh,
  jit,
  memory,
  solve,
  solveBanded,
  solveBandedGeneral,
  stack,
  type Tensor,
  tensor,
} from "../mod.ts";
import { assertClose, rng, sameMemory, testAll } from "./helpers.ts";

const n = 7;

/** An SPD band (lower storage, b = 1) and a general tridiagonal band, changing with k. */
function bands(k: number, o: { dtype: "f32" | "f64"; device: Tensor["device"] }) {
  const spd = tensor([Array(n).fill(4 + k), [...Array(n - 1).fill(-1 - 0.1 * k), 0]], o);
  const gen = tensor([
    [0, ...Array(n - 1).fill(1 + 0.2 * k)],
    Array(n).fill(3 + k),
    [...Array(n - 1).fill(-0.5 - 0.1 * k), 0],
  ], o);
  return { spd, gen };
}

const cases: [string, (a: Tensor, g: Tensor, r: Tensor, r2: Tensor) => Tensor][] = [
  ["solveBanded, one right-hand side", (a, _g, r) => solveBanded(a, r, { lower: true })],
  ["solveBanded, two right-hand sides", (a, _g, _r, r2) => solveBanded(a, r2, { lower: true })],
  [
    "solveBanded, a batch of two",
    (a, _g, r) => solveBanded(stack([a, a.mul(2)]), stack([r, r.neg()]), { lower: true }),
  ],
  ["choleskyBanded", (a) => choleskyBanded(a, { lower: true })],
  ["solveBandedGeneral", (_a, g, r) => solveBandedGeneral([1, 1], g, r)],
  [
    "solveBandedGeneral, two right-hand sides",
    (_a, g, _r, r2) => solveBandedGeneral([1, 1], g, r2),
  ],
  [
    "solve (dense)",
    (_a, _g, r, r2) =>
      solve(r2.matmul(r2.transpose()).add(tensor(eye(n), { dtype: r.dtype, device: r.device })), r),
  ],
  [
    "eigh",
    (_a, _g, _r, r2) => {
      const m = r2.matmul(r2.transpose());
      return eigh(m)[0];
    },
  ],
  ["cumsum", (_a, _g, r) => cumsum(r.mul(r))],
];

function eye(k: number): number[][] {
  return Array.from(
    { length: k },
    (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 1 : 0)),
  );
}

for (const [name, f] of cases) {
  testAll(`jit replays ${name} with new inputs`, async (b) => {
    const o = { dtype: b.dtype, device: b.dev } as const;
    const g = jit(f);
    const rand = rng(7);
    const made: Tensor[] = [];
    const pairs: [Tensor, Tensor][] = [];
    // queue four calls (the first traces) before reading any result
    for (let k = 0; k < 4; k++) {
      const { spd, gen } = bands(k, o);
      const r = tensor(Array.from({ length: n }, () => rand() - 0.5), o);
      const r2 = tensor(Array.from({ length: n * 2 }, () => rand() - 0.5), o).reshape([n, 2]);
      made.push(spd, gen, r, r2);
      pairs.push([g(spd, gen, r, r2), f(spd, gen, r, r2)]);
    }
    assert.equal(g.traces, 1);
    for (const [got, want] of pairs) {
      assertClose(await got.data(), await want.data(), {
        rtol: b.rtol,
        atol: b.dtype === "f32" ? 1e-5 : 1e-12,
      });
      got.dispose();
      want.dispose();
    }
    for (const t of made) t.dispose();
  });
}

/** The values of g's result, or the error the call or the read raised. */
async function outcome(g: () => Tensor): Promise<number[] | Error> {
  try {
    const y = g();
    try {
      return Array.from(await y.data());
    } finally {
      y.dispose();
    }
  } catch (e) {
    return e as Error;
  }
}

const notSpd = (r: number[] | Error) =>
  r instanceof RangeError && /not positive definite/.test(r.message);

// A Newton loop raising its shift calls one solve many times with a matrix that is not
// positive definite before one succeeds: each failing call used to trace again on the CPU,
// where the kernel throws at the call (WebGPU defers the error to the read).
testAll("jit: a signature whose trace fails in a kernel keeps its program", async (b) => {
  const o = { dtype: b.dtype, device: b.dev } as const;
  const base = memory();
  // ops before and after the solve: the program must hold all of them
  const g = jit((a: Tensor, r: Tensor) => solveBanded(a.mul(1), r, { lower: true }).mul(2));
  // diagonal bands (lower storage, b = 1): x = 2 r / d, where every d_i > 0
  const band = (d: number[]) => tensor([d, Array(d.length).fill(0)], o);
  const r = tensor([1, 2, 3, 4], o);
  const bad = band([1, 2, -1, 4]);
  const good = band([2, 4, 6, 8]);
  const first = await outcome(() => g(bad, r));
  assert.ok(notSpd(first), `the failing trace: ${first}`);
  const ok = await outcome(() => g(good, r));
  assert.ok(!(ok instanceof Error), `a replay on a positive definite band: ${ok}`);
  assertClose(ok, [1, 1, 1, 1], { rtol: b.rtol, atol: 0 });
  const again = await outcome(() => g(bad, r));
  assert.ok(notSpd(again), `a failing replay: ${again}`);
  assert.equal(g.traces, 1);
  for (const t of [r, bad, good]) t.dispose();
  g.clear();
  assert.ok(sameMemory(base, memory()), "a failed trace or replay leaked");
});

testAll(
  "jit: a read after a failed kernel raises the failure, not the values standing in",
  async (b) => {
    const o = { dtype: b.dtype, device: b.dev } as const;
    const read: number[][] = [];
    const g = jit((a: Tensor, r: Tensor) => {
      const x = solveBanded(a, r, { lower: true });
      read.push(Array.from(x.dataSync()));
      return x;
    });
    const r = tensor([1, 2], o);
    const bad = tensor([[1, -1], [0, 0]], o);
    const good = tensor([[2, 4], [0, 0]], o);
    assert.ok(notSpd(await outcome(() => g(bad, r))));
    assert.deepEqual(read, [], "the function read the failed solve's values");
    assertClose(await outcome(() => g(good, r)) as number[], [0.5, 0.5], { rtol: b.rtol });
    for (const t of [r, bad, good]) t.dispose();
  },
  ["cpu-f64", "cpu-f32"],
);
