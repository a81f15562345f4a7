// A fused elementwise kernel over an output of Q·M entries whose operands are mostly
// broadcast along its leading axis (K probes against one primal): invocation r < M loops
// over q < Q (Q is small, at most 64) and writes out[q·M + r]. The WebGPU backend puts the
// code that does not depend on q before the loop (//@outer) and the rest inside it
// (//@body); see src/backend/webgpu/codegen.ts.
//!include common.wgsl
//!include ops.wgsl

struct Params {
  m: u32,
  q: u32,
  pad2: u32,
  pad3: u32,
  v: array<vec4u, 62>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
//@bindings

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = flat_id(wg, nwg, lid);
  if (r >= p.m) { return; }
  //@outer
  for (var q = 0u; q < p.q; q++) {
    let idx = q * p.m + r;
    //@body
    out[idx] = /*@result*/ 0u;
  }
}
