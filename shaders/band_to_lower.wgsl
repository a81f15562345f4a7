// The banded Cholesky factor, from the kernels' working layout to LAPACK lower band storage.
// The working layout (band_factor.wgsl) is upper storage interleaved over the batch,
// [b+1, n, batch]: entry (r, j) = U[j - (b - r)][j] at src[(r * n + j) * batch + t].
// Out is ab [batch, b+1, n] with ab[i - j][j] = L[i][j] = U[j][i] (i >= j), and 0 in the
// corners outside the matrix. One element per invocation, no loops.
//!include common.wgsl

struct Params {
  count: u32,
  n: u32,
  b: u32,
  batch: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let o = flat_id(wg, nwg, lid);
  if (o >= p.count) { return; }
  // o = (t * (b+1) + d) * n + j: L[j + d][j] = U[j][j + d], working entry (b - d, j + d)
  let j = o % p.n;
  let d = (o / p.n) % (p.b + 1u);
  let t = o / (p.n * (p.b + 1u));
  var v = 0.0;
  if (j + d < p.n) { v = src[((p.b - d) * p.n + j + d) * p.batch + t]; }
  dst[o] = v;
}
