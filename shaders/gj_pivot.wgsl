// Gauss-Jordan with partial pivoting, step k, one invocation per matrix of the batch.
// W is [batch, n, cols] (the matrix, then any right-hand sides). The invocation picks the
// largest |W[i][k]| for i >= k, swaps that row into place, folds the pivot into the
// determinant accumulator and divides row k by it. acc holds per matrix
// (log|det| so far, sign so far, first zero-pivot step + 1 or 0) and starts as (0, 1, 0).
// Loops are O(cols) per invocation; the launcher dispatches once per step.
//!include common.wgsl

struct Params {
  batch: u32,
  n: u32,
  cols: u32,
  k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let b = flat_id(wg, nwg, lid);
  if (b >= p.batch) { return; }
  let k = p.k;
  let base = b * p.n * p.cols;
  if (acc[b * 3u + 2u] != 0.0) { return; } // already singular: result is flagged, skip work
  var piv = k;
  var best = abs(w[base + k * p.cols + k]);
  for (var i = k + 1u; i < p.n; i++) {
    let v = abs(w[base + i * p.cols + k]);
    if (v > best) {
      best = v;
      piv = i;
    }
  }
  if (best == 0.0) {
    acc[b * 3u + 1u] = 0.0;
    acc[b * 3u + 2u] = f32(k + 1u);
    return;
  }
  var sign = acc[b * 3u + 1u];
  if (piv != k) {
    for (var j = k; j < p.cols; j++) {
      let t = w[base + k * p.cols + j];
      w[base + k * p.cols + j] = w[base + piv * p.cols + j];
      w[base + piv * p.cols + j] = t;
    }
    sign = -sign;
  }
  let pv = w[base + k * p.cols + k];
  if (pv < 0.0) { sign = -sign; }
  acc[b * 3u] = acc[b * 3u] + log(abs(pv));
  acc[b * 3u + 1u] = sign;
  let inv = 1.0 / pv;
  for (var j = k + 1u; j < p.cols; j++) {
    w[base + k * p.cols + j] = w[base + k * p.cols + j] * inv;
  }
}
