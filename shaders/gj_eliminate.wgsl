// Gauss-Jordan step k, elimination: W[i][j] -= W[i][k] * W[k][j] for every row i != k (or
// i > k when ROWS_BELOW = 1, enough for determinants) and column j > k, with row k already
// divided by its pivot. One invocation per entry; column k and row k are only read, so
// the entries are independent.
//!include common.wgsl

override ROWS_BELOW: u32 = 0u;

struct Params {
  count: u32,
  n: u32,
  cols: u32,
  k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> acc: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = flat_id(wg, nwg, lid);
  if (t >= p.count) { return; }
  let k = p.k;
  let width = p.cols - k - 1u;
  let j = t % width + k + 1u;
  let rest = t / width;
  let i = rest % p.n;
  let b = rest / p.n;
  if (i == k || (ROWS_BELOW == 1u && i < k)) { return; }
  if (acc[b * 3u + 2u] != 0.0) { return; }
  let base = b * p.n * p.cols;
  w[base + i * p.cols + j] = w[base + i * p.cols + j] - w[base + i * p.cols + k] * w[base + k * p.cols + j];
}
