// Inclusive prefix sums (cumsum) of S sequences of length n, read from x at
// (o·n + j)·inner + c for sequence s = o·inner + c (so any axis scans in place).
// MODE 0, one workgroup per (sequence, chunk of WG·PER entries): each invocation sums its
// PER consecutive entries, the workgroup scans those totals by a tree in workgroup memory
// (log₂ WG steps), and each invocation writes its entries' prefix sums within the chunk to
// out (same layout as x) and the chunk's total to totals[s·chunks + chunk].
// MODE 1, one invocation per entry: adds the scanned total of the chunks before the entry's
// own (totals now holding inclusive prefix sums of the chunk totals).
// No invocation loops over more than PER entries plus the tree.
//!include common.wgsl

override MODE: u32 = 0u;
override PER: u32 = 8u;

struct Params {
  seqs: u32,
  n: u32,
  inner: u32,
  chunks: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> totals: array<f32>;

var<workgroup> sh: array<f32, WG>;

fn at(s: u32, j: u32) -> u32 {
  return ((s / p.inner) * p.n + j) * p.inner + s % p.inner;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  // no early return on a per-invocation value before the barriers below: Tint's uniformity
  // analysis rejects it (MODE is an override, so returning on it is uniform)
  if (MODE == 1u) {
    let t = flat_id(wg, nwg, lid);
    if (t < p.seqs * p.n) {
      let s = t / p.n;
      let j = t % p.n;
      let chunk = j / (WG * PER);
      if (chunk > 0u) { out[at(s, j)] += totals[s * p.chunks + chunk - 1u]; }
    }
    return;
  }
  let g = group_id(wg, nwg);
  let live = g < p.seqs * p.chunks;
  let s = g / p.chunks;
  let chunk = g % p.chunks;
  let j0 = chunk * WG * PER + lid * PER;
  var own = 0.0;
  if (live) {
    for (var k = 0u; k < PER; k++) {
      if (j0 + k < p.n) { own += x[at(s, j0 + k)]; }
    }
  }
  sh[lid] = own;
  workgroupBarrier();
  // inclusive scan of the invocations' totals (Hillis–Steele, read then write per step)
  for (var d = 1u; d < WG; d = d << 1u) {
    var v = sh[lid];
    if (lid >= d) { v += sh[lid - d]; }
    workgroupBarrier();
    sh[lid] = v;
    workgroupBarrier();
  }
  if (!live) { return; }
  // the sum of the earlier invocations' entries (exclusive, read directly: no cancellation)
  var acc = 0.0;
  if (lid > 0u) { acc = sh[lid - 1u]; }
  for (var k = 0u; k < PER; k++) {
    if (j0 + k < p.n) {
      acc += x[at(s, j0 + k)];
      out[at(s, j0 + k)] = acc;
    }
  }
  if (lid == WG - 1u) { totals[s * p.chunks + chunk] = sh[WG - 1u]; }
}
