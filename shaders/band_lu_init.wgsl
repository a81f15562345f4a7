// The working layout of the general banded LU (band_lu_factor.wgsl) from LAPACK general
// band storage ab [batch, l+u+1, n] (ab[u + i - j][j] = A[i][j]): row r of column j holds
// A[j - KV + r][j] (KV = l + u) at w[(r * n + j) * batch + t], interleaved over the batch so
// neighbouring systems touch neighbouring addresses. Rows r < l are the room for the
// fill-in that row interchanges bring into U, and start as 0; rows r >= l are ab's row
// r - l. The corners outside the matrix are copied and never read. One element per
// invocation, no loops.
//!include common.wgsl

struct Params {
  count: u32,
  n: u32,
  batch: u32,
  l: u32,
  rows: u32, // l + u + 1, ab's rows
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ab: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let o = flat_id(wg, nwg, lid);
  if (o >= p.count) { return; }
  let t = o % p.batch;
  let rj = o / p.batch;
  let j = rj % p.n;
  let r = rj / p.n;
  var v = 0.0;
  if (r >= p.l) { v = ab[(t * p.rows + r - p.l) * p.n + j]; }
  w[o] = v;
}
