// out[i] = start + i * step. INT 1 writes i32, else f32.
//!include common.wgsl

override INT: u32 = 0u;

struct Params {
  n: u32,
  start: f32,
  step: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  if (INT == 1u) {
    out[i] = bitcast<u32>(i32(p.start) + i32(i) * i32(p.step));
  } else {
    out[i] = bitcast<u32>(fma(f32(i), p.step, p.start));
  }
}
