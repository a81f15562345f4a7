/**
 * Launchers of the banded Cholesky kernels (shaders/band_*.wgsl) on WebGPU.
 *
 * A solve with one right-hand side per system and b ≤ MAX_PARTITION_BANDWIDTH (a Newton
 * step: the common case) goes to the partitioned solver of band_partition.ts, parallel
 * along each system. The rest (the factor alone, several right-hand sides, wider bands)
 * runs the kernels below, which factor and solve every system sequentially, one invocation
 * per system, left-looking. The
 * kernels see the batch interleaved, band [b+1, n, batch] and right-hand sides
 * [n, m, batch], so that the invocations of neighbouring systems touch neighbouring
 * addresses (coalesced): a batch is transposed in and out (band_transpose.wgsl); one
 * system (batch = 1) is that layout already and is read in place. The factor goes to a
 * working buffer in upper storage; the forward substitution of a single right-hand side
 * runs in the factorisation's pass.
 *
 * lavapipe silently stops a shader invocation's loops after 65,535 passes in all, so the
 * n columns are split over dispatches, as many per dispatch as keep each invocation under
 * LOOP_BUDGET passes; the factor and the partial solution in the buffers carry the state
 * from one dispatch to the next. The same split serves a long single system and a batch
 * of long systems.
 *
 * A matrix that is not positive definite leaves the order of its failing leading minor in
 * a status buffer, which `rt.addCheck` turns into the error the result owns (../fault.ts).
 */
import type { GpuStorage } from "./pool.ts";
import type { GpuRuntime, KernelSpec } from "./runtime.ts";
import { Params } from "./params.ts";
import { notPositiveDefinite } from "../banded_errors.ts";
import { MAX_PARTITION_BANDWIDTH, partitionFailure, solvePartitioned } from "./band_partition.ts";
import type { Check } from "../fault.ts";
import { bandChunks, LOOP_BUDGET, MAX_GPU_BANDWIDTH } from "./band_limits.ts";

/** Workgroup size of the per-system kernels: small, so a modest batch still fills the cores. */
const SYSTEM_WG = 64;
const WG = 256;
const K = {
  transpose: { name: "band_transpose", shader: "band_transpose", workgroupSize: 256 },
  toLower: { name: "band_to_lower", shader: "band_to_lower", workgroupSize: WG },
  factor: { name: "band_factor", shader: "band_factor", workgroupSize: SYSTEM_WG },
  solve: { name: "band_solve", shader: "band_solve", workgroupSize: SYSTEM_WG },
} satisfies Record<string, KernelSpec>;

/** Workgroups of `wg` invocations covering `count` ones. */
export const groups = (count: number, wg: number): number => Math.ceil(count / wg);

function checkBandwidth(op: string, b: number): void {
  if (b > MAX_GPU_BANDWIDTH) {
    throw new RangeError(
      `${op}: bandwidth b = ${b} is more than the WebGPU kernels' limit of ${MAX_GPU_BANDWIDTH} ` +
        `(one column's work must fit one shader invocation's loop budget of ${LOOP_BUDGET} ` +
        `iterations); use the CPU device for wider bands`,
    );
  }
}

/** A fresh copy of the first `bytes` of `src` (a buffer-to-buffer copy, no kernel). */
export function copyOf(rt: GpuRuntime, src: GpuStorage, bytes: number): GpuStorage {
  const o = rt.pool.acquire(bytes, rt.batch, false);
  if (bytes > 0) rt.copy(src, o, bytes);
  return o;
}

/** x [rows, cols] -> [cols, rows], into fresh storage (interleaves or de-interleaves a batch). */
export function transpose(rt: GpuRuntime, x: GpuStorage, rows: number, cols: number): GpuStorage {
  const o = rt.pool.acquire(rows * cols * 4, rt.batch, false);
  const tilesC = Math.ceil(cols / 16);
  const p = new Params().u32(rows).u32(cols).u32(tilesC).buffer;
  rt.dispatch(K.transpose, {}, p, [x, o], Math.ceil(rows / 16) * tilesC);
  return o;
}

/**
 * Factors every system of `a` (band storage interleaved over the batch, [b+1, n, batch],
 * upper or lower; for one system, LAPACK's ab itself) into a fresh working-layout factor.
 * With `rhs` and `x` (one right-hand side per system, [n, batch]), the forward substitution
 * runs in the same pass, into x. Returns the factor and the status buffer (0, or the
 * order of the failing leading minor, per system).
 */
function factor(
  rt: GpuRuntime,
  a: GpuStorage,
  batch: number,
  n: number,
  b: number,
  lower: boolean,
  fused: { rhs: GpuStorage; x: GpuStorage } | null,
): { w: GpuStorage; status: GpuStorage } {
  const w = rt.pool.acquire(batch * (b + 1) * n * 4, rt.batch, false);
  const status = statusBuffer(rt, batch);
  // bound but unused when not fused (two buffers: a read-only and a writable binding may not alias)
  const rhs = fused?.rhs ?? rt.pool.acquire(4, rt.batch, false);
  const x = fused?.x ?? rt.pool.acquire(4, rt.batch, false);
  const chunk = bandChunks(b).factor;
  for (let j0 = 0; j0 < n; j0 += chunk) {
    const p = new Params().u32(batch).u32(n).u32(j0).u32(Math.min(n, j0 + chunk)).buffer;
    rt.dispatch(
      K.factor,
      { B: b, LOWER: lower ? 1 : 0, FUSED: fused ? 1 : 0 },
      p,
      [a, w, status, rhs, x],
      groups(batch, SYSTEM_WG),
    );
  }
  if (!fused) {
    rt.pool.release(rhs, rt.batch);
    rt.pool.release(x, rt.batch);
  }
  return { w, status };
}

/** A status buffer of `batch` zeros (0 = no failure), written by a queued write. */
export function statusBuffer(rt: GpuRuntime, batch: number): GpuStorage {
  // safe to write now: an upload buffer is never one the open batch uses
  const status = rt.pool.acquire(batch * 4, rt.batch, true);
  rt.write(status, new Uint32Array(batch));
  return status;
}

/**
 * Registers the read-back check that turns a failed factorisation into an error: `error`
 * makes it from the batch index (null when unbatched) and the LAPACK info the kernel
 * stored. Releases `status`; the check is for the result's storage to own (../fault.ts).
 */
export function checkStatus(
  rt: GpuRuntime,
  status: GpuStorage,
  batch: number,
  error: (batchIndex: number | null, info: number) => Error,
): Check {
  const check = rt.addCheck(status, batch * 4, (v) => {
    const info = new Uint32Array(v.buffer, v.byteOffset, batch);
    for (let t = 0; t < batch; t++) {
      if (info[t] !== 0) return error(batch > 1 ? t : null, info[t]).message;
    }
    return null;
  });
  rt.pool.release(status, rt.batch);
  return check;
}

const spdError = (op: string) => (t: number | null, info: number) =>
  notPositiveDefinite(op, t, info);

/** The banded Cholesky factor of each matrix of `ab` ([batch, b+1, n], f32), same storage. */
export function choleskyBandedGpu(
  rt: GpuRuntime,
  op: string,
  ab: GpuStorage,
  batch: number,
  n: number,
  b: number,
  lower: boolean,
): { out: GpuStorage; check: Check } {
  checkBandwidth(op, b);
  const len = (b + 1) * n;
  const a = batch === 1 ? ab : transpose(rt, ab, batch, len);
  const { w, status } = factor(rt, a, batch, n, b, lower, null);
  if (a !== ab) rt.pool.release(a, rt.batch);
  const check = checkStatus(rt, status, batch, spdError(op));
  if (!lower) {
    // upper: the working layout is upper storage, interleaved over the batch
    if (batch === 1) return { out: w, check };
    const out = transpose(rt, w, len, batch);
    rt.pool.release(w, rt.batch);
    return { out, check };
  }
  const count = batch * len;
  const out = rt.pool.acquire(count * 4, rt.batch, false);
  rt.dispatch(
    K.toLower,
    {},
    new Params().u32(count).u32(n).u32(b).u32(batch).buffer,
    [w, out],
    groups(count, WG),
  );
  rt.pool.release(w, rt.batch);
  return { out, check };
}

/** Solves A X = R for each matrix of `ab` ([batch, b+1, n]) and `rhs` ([batch, n, m]), f32. */
export function solveBandedGpu(
  rt: GpuRuntime,
  op: string,
  ab: GpuStorage,
  rhs: GpuStorage,
  batch: number,
  n: number,
  b: number,
  m: number,
  lower: boolean,
): { out: GpuStorage; check: Check } {
  checkBandwidth(op, b);
  if (m === 1 && b <= MAX_PARTITION_BANDWIDTH) {
    return solveOneRhs(rt, op, ab, rhs, batch, n, b, lower);
  }
  // interleave the batch: [batch, b+1, n] -> [b+1, n, batch], [batch, n, m] -> [n, m, batch]
  const a = batch === 1 ? ab : transpose(rt, ab, batch, (b + 1) * n);
  const r = batch === 1 ? rhs : transpose(rt, rhs, batch, n * m);
  let x: GpuStorage, w: GpuStorage, status: GpuStorage;
  if (m === 1) {
    x = rt.pool.acquire(n * batch * 4, rt.batch, false);
    ({ w, status } = factor(rt, a, batch, n, b, lower, { rhs: r, x }));
    if (r !== rhs) rt.pool.release(r, rt.batch);
  } else {
    x = r === rhs ? copyOf(rt, rhs, n * m * 4) : r;
    ({ w, status } = factor(rt, a, batch, n, b, lower, null));
  }
  if (a !== ab) rt.pool.release(a, rt.batch);
  const chunk = bandChunks(b).solve;
  const sweep = (backward: boolean, j0: number, j1: number) => {
    const p = new Params().u32(batch).u32(n).u32(m).u32(j0).u32(j1).buffer;
    rt.dispatch(
      K.solve,
      { B: b, BACKWARD: backward ? 1 : 0 },
      p,
      [w, status, x],
      groups(batch * m, SYSTEM_WG),
    );
  };
  if (m > 1) { for (let j0 = 0; j0 < n; j0 += chunk) sweep(false, j0, Math.min(n, j0 + chunk)); }
  for (let j1 = n; j1 > 0; j1 -= chunk) sweep(true, Math.max(0, j1 - chunk), j1);
  const check = checkStatus(rt, status, batch, spdError(op));
  rt.pool.release(w, rt.batch);
  if (batch === 1) return { out: x, check };
  const out = transpose(rt, x, n * m, batch); // [n, m, batch] -> [batch, n, m]
  rt.pool.release(x, rt.batch);
  return { out, check };
}

/**
 * One right-hand side per system, the common case (a Newton step): the partitioned solver
 * (band_partition.ts), parallel along each system and across the batch, in place.
 */
function solveOneRhs(
  rt: GpuRuntime,
  op: string,
  ab: GpuStorage,
  rhs: GpuStorage,
  batch: number,
  n: number,
  b: number,
  lower: boolean,
): { out: GpuStorage; check: Check } {
  const status = statusBuffer(rt, batch);
  const { x, plan } = solvePartitioned(rt, ab, rhs, batch, n, b, lower, status);
  const check = checkStatus(rt, status, batch, (t, code) => {
    const f = partitionFailure(plan, n, code);
    if ("info" in f) return notPositiveDefinite(op, t, f.info);
    const which = t === null ? "" : ` at batch index ${t}`;
    const where = "rows" in f
      ? `its principal submatrix of rows ${f.rows[0]} to ${f.rows[1]} is not (a block of the ` +
        `partitioned factorisation, which eliminates in another order than LAPACK, so the ` +
        `first failing leading minor is not known here)`
      : `eliminating the blocks between the partitions' boundary rows leaves a Schur ` +
        `complement on those rows that is not` +
        (f.separator === null ? "" : ` (its first failing pivot: row ${f.separator})`);
    return new RangeError(
      `${op}: the matrix${which} is not positive definite: ${where}; the matrix must be ` +
        `symmetric positive definite`,
    );
  });
  return { out: x, check };
}
