/**
 * The launcher of the general banded LU solve (shaders/band_lu_*.wgsl) on WebGPU: LAPACK
 * gbsv, `scipy.linalg.solve_banded`, f32.
 *
 * Each system is factored sequentially by one invocation (partial pivoting makes every
 * step depend on the last), with the systems of a batch interleaved so that neighbouring
 * invocations touch neighbouring addresses: band_lu_init.wgsl builds the working layout
 * straight from the user's band storage, the right-hand sides are interleaved by
 * band_transpose.wgsl. As in banded.ts the n steps are split over dispatches to respect
 * lavapipe's loop budget per invocation. A zero pivot leaves its step in a status buffer,
 * whose check the result owns: reading it (or anything computed from it) raises the error.
 */
import type { GpuStorage } from "./pool.ts";
import type { GpuRuntime, KernelSpec } from "./runtime.ts";
import { Params } from "./params.ts";
import type { Check } from "../fault.ts";
import { singularBand } from "../banded_errors.ts";
import { checkStatus, copyOf, groups, statusBuffer, transpose } from "./banded.ts";
import { LOOP_BUDGET } from "./band_limits.ts";

const SYSTEM_WG = 64;
const WG = 256;
const K = {
  init: { name: "band_lu_init", shader: "band_lu_init", workgroupSize: WG },
  factor: { name: "band_lu_factor", shader: "band_lu_factor", workgroupSize: SYSTEM_WG },
  solve: { name: "band_lu_solve", shader: "band_lu_solve", workgroupSize: SYSTEM_WG },
} satisfies Record<string, KernelSpec>;

/** Limiter counts per step of band_lu_factor.wgsl and per column of band_lu_solve.wgsl. */
const factorCost = (l: number, u: number) => 8 + 3 * l + 2 * (l + u) + (l + u) * (l + 1);
const solveCost = (l: number, u: number) => l + u + 3;

/** Whether one step of an (l, u) band fits one invocation's loop budget. */
export function luBandFits(l: number, u: number): boolean {
  return factorCost(l, u) <= LOOP_BUDGET;
}

/** Solves A X = R for each matrix of `ab` ([batch, l+u+1, n]) and `rhs` ([batch, n, m]), f32. */
export function solveBandedGeneralGpu(
  rt: GpuRuntime,
  op: string,
  ab: GpuStorage,
  rhs: GpuStorage,
  batch: number,
  n: number,
  l: number,
  u: number,
  m: number,
): { out: GpuStorage; check: Check } {
  if (!luBandFits(l, u)) {
    throw new RangeError(
      `${op}: a band of l = ${l} subdiagonals and u = ${u} superdiagonals is too wide for ` +
        `the WebGPU kernel (one elimination step, ${factorCost(l, u)} loop passes, must fit ` +
        `one shader invocation's budget of ${LOOP_BUDGET}); use the CPU device for wider bands`,
    );
  }
  const rows = 2 * l + u + 1, count = batch * rows * n;
  const w = rt.pool.acquire(count * 4, rt.batch, false);
  rt.dispatch(
    K.init,
    {},
    new Params().u32(count).u32(n).u32(batch).u32(l).u32(l + u + 1).buffer,
    [ab, w],
    groups(count, WG),
  );
  // right-hand sides, interleaved over the batch: [n, m, batch]
  const x = batch === 1 ? copyOf(rt, rhs, n * m * 4) : transpose(rt, rhs, batch, n * m);
  const status = statusBuffer(rt, batch);
  const fused = m === 1;
  const piv = rt.pool.acquire(fused ? 4 : n * batch * 4, rt.batch, false);
  const lu = { LB: l, UB: u };
  const fChunk = Math.floor(LOOP_BUDGET / factorCost(l, u));
  for (let j0 = 0; j0 < n; j0 += fChunk) {
    rt.dispatch(
      K.factor,
      { ...lu, FUSED: fused ? 1 : 0 },
      new Params().u32(batch).u32(n).u32(j0).u32(Math.min(n, j0 + fChunk)).buffer,
      [w, status, piv, x],
      groups(batch, SYSTEM_WG),
    );
  }
  const sChunk = Math.floor(LOOP_BUDGET / solveCost(l, u));
  const sweep = (backward: boolean, j0: number, j1: number) => {
    rt.dispatch(
      K.solve,
      { ...lu, BACKWARD: backward ? 1 : 0 },
      new Params().u32(batch).u32(n).u32(m).u32(j0).u32(j1).buffer,
      [w, status, piv, x],
      groups(batch * m, SYSTEM_WG),
    );
  };
  if (!fused) { for (let j0 = 0; j0 < n; j0 += sChunk) sweep(false, j0, Math.min(n, j0 + sChunk)); }
  for (let j1 = n; j1 > 0; j1 -= sChunk) sweep(true, Math.max(0, j1 - sChunk), j1);
  const check = checkStatus(rt, status, batch, (t, info) => singularBand(op, t, info));
  rt.pool.release(w, rt.batch);
  rt.pool.release(piv, rt.batch);
  if (batch === 1) return { out: x, check };
  const out = transpose(rt, x, n * m, batch); // [n, m, batch] -> [batch, n, m]
  rt.pool.release(x, rt.batch);
  return { out, check };
}
