// out[i] = load(i): a fused elementwise kernel. tools and the WebGPU backend fill in the
// leaf bindings and the body of load() (src/backend/webgpu/codegen.ts): a chain of
// unary_op / binary_op / select calls over leaf buffers read through views and pads,
// with sizes, strides and constants in the uniform slots p.v.
//!include common.wgsl
//!include ops.wgsl

struct Params {
  n: u32,
  pad1: u32,
  pad2: u32,
  pad3: u32,
  v: array<vec4u, 62>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
//@bindings

fn load(idx: u32) -> u32 {
  //@body
  return /*@result*/ 0u;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  out[i] = load(i);
}
