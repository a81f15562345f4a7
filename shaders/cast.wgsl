// Converts between f32 and i32. TO_INT 1: f32 -> i32 (truncation), else i32 -> f32.
//!include common.wgsl

override TO_INT: u32 = 0u;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  if (TO_INT == 1u) {
    out[i] = bitcast<u32>(i32(bitcast<f32>(x[i])));
  } else {
    out[i] = bitcast<u32>(f32(bitcast<i32>(x[i])));
  }
}
