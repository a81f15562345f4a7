// out[c][r] = x[r][c]: a 2-D transpose of x [rows, cols]. The banded solvers use it to
// interleave a batch of systems, [batch, len] -> [len, batch], and back. A workgroup
// takes a 16 x 16 tile, found from the workgroup id, so no invocation divides by a
// runtime size (integer division is slow on software GPUs); lanes read along a row.
// (Staging the tile in workgroup memory would make the writes contiguous too, but on
// lavapipe the barrier doubles the time.) Workgroup size 256.
//!include common.wgsl

struct Params {
  rows: u32,
  cols: u32,
  tiles_c: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = group_id(wg, nwg);
  let tr = g / p.tiles_c; // the same for the whole workgroup
  let tc = g - tr * p.tiles_c;
  let r = tr * 16u + (lid >> 4u);
  let c = tc * 16u + (lid & 15u);
  if (r < p.rows && c < p.cols) { out[c * p.rows + r] = x[r * p.cols + c]; }
}
