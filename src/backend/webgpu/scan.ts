/**
 * cumsum on WebGPU (shaders/cumsum.wgsl): a workgroup scans a chunk of WG·PER entries of one
 * sequence (PER entries per invocation, then a tree over the invocations' totals) and
 * writes the chunk's total; the totals are scanned the same way (recursively, a chunk of
 * totals per workgroup), and a last pass adds each chunk's offset. No invocation loops over
 * a sequence, so long axes (n > 65,536) are safe on lavapipe; f32 error grows like the
 * pairwise sum's.
 */
import type { GpuStorage } from "./pool.ts";
import type { GpuRuntime, KernelSpec } from "./runtime.ts";
import { Params } from "./params.ts";

const WG = 256;
const PER = 8;
const K: KernelSpec = { name: "cumsum", shader: "cumsum", workgroupSize: WG };

/** Scans `seqs` sequences of length n (entry j of sequence s at (⌊s/inner⌋·n + j)·inner + s mod inner). */
function scanInto(
  rt: GpuRuntime,
  x: GpuStorage,
  out: GpuStorage,
  seqs: number,
  n: number,
  inner: number,
): void {
  const chunks = Math.ceil(n / (WG * PER));
  const totals = rt.pool.acquire(Math.max(4, seqs * chunks * 4), rt.batch, false);
  const p = new Params().u32(seqs).u32(n).u32(inner).u32(chunks).buffer;
  rt.dispatch(K, { MODE: 0, PER }, p, [x, out, totals], seqs * chunks);
  if (chunks > 1) {
    const scanned = rt.pool.acquire(seqs * chunks * 4, rt.batch, false);
    scanInto(rt, totals, scanned, seqs, chunks, 1);
    rt.dispatch(K, { MODE: 1, PER }, p, [x, out, scanned], Math.ceil((seqs * n) / WG));
    rt.pool.release(scanned, rt.batch);
  }
  rt.pool.release(totals, rt.batch);
}

/** Inclusive prefix sums along the middle axis of x viewed as [outer, n, inner] (f32). */
export function cumsumGpu(
  rt: GpuRuntime,
  x: GpuStorage,
  outer: number,
  n: number,
  inner: number,
): GpuStorage {
  const out = rt.pool.acquire(Math.max(4, outer * n * inner * 4), rt.batch, false);
  if (outer * n * inner > 0) scanInto(rt, x, out, outer * inner, n, inner);
  return out;
}
