// One pass of a row reduction: x is [rows, len] (row-major, read through load(), which
// the WebGPU backend fills with a fused elementwise prologue or a plain buffer read;
// src/backend/webgpu/codegen.ts); workgroup g reduces chunk
// g % chunks of row g / chunks (WG · PER elements) by a tree in workgroup memory and writes
// one partial to out[g]. The launcher repeats passes until one value per row is left, so
// no invocation loops over the row and f32 error grows like log n.
// OP follows REDUCE_OPS: 0 sum, 1 max, 2 min. WG must be a power of two.
//!include common.wgsl
//!include ops.wgsl

override OP: u32 = 0u;
// Values each invocation combines before the tree (a chunk is WG · PER values).
override PER: u32 = 4u;

struct Params {
  len: u32,
  chunks: u32,
  rows: u32,
  pad3: u32,
  v: array<vec4u, 62>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
//@bindings

fn load(idx: u32) -> u32 {
  //@body
  return /*@result*/ 0u;
}

var<workgroup> sh: array<f32, WG>;

fn identity() -> f32 {
  switch OP {
    case 1u: { return -inf_f32(); }
    case 2u: { return inf_f32(); }
    default: { return 0.0; }
  }
}

fn combine(a: f32, b: f32) -> f32 {
  switch OP {
    case 1u: { return select(max(a, b), nan_f32(), is_nan(a) || is_nan(b)); }
    case 2u: { return select(min(a, b), nan_f32(), is_nan(a) || is_nan(b)); }
    default: { return a + b; }
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = group_id(wg, nwg);
  let live = g < p.rows * p.chunks;
  let row = g / p.chunks;
  let chunk = g % p.chunks;
  var acc = identity();
  if (live) {
    let start = chunk * WG * PER;
    let base = row * p.len;
    for (var k = 0u; k < PER; k++) {
      let j = start + k * WG + lid;
      if (j < p.len) { acc = combine(acc, bitcast<f32>(load(base + j))); }
    }
  }
  sh[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = combine(sh[lid], sh[lid + s]); }
    workgroupBarrier();
  }
  if (live && lid == 0u) { out[g] = sh[0]; }
}
