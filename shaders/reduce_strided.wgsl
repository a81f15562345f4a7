// One pass of a reduction over the middle axis of x [outer, len, inner] (read through
// load(), filled in by src/backend/webgpu/codegen.ts): invocation
// (o, chunk, c) combines at most CHUNK rows of column c and writes out[o, chunk, c].
// Neighbouring invocations read neighbouring columns, so reads coalesce. The launcher
// repeats passes until chunks = 1. OP follows REDUCE_OPS: 0 sum, 1 max, 2 min.
//!include common.wgsl
//!include ops.wgsl

override OP: u32 = 0u;

struct Params {
  n: u32,
  len: u32,
  inner: u32,
  chunks: u32,
  chunk: u32,
  pad5: u32,
  pad6: u32,
  pad7: u32,
  v: array<vec4u, 62>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
//@bindings

fn load(idx: u32) -> u32 {
  //@body
  return /*@result*/ 0u;
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
  let t = flat_id(wg, nwg, lid);
  if (t >= p.n) { return; }
  let c = t % p.inner;
  let rest = t / p.inner;
  let chunk = rest % p.chunks;
  let o = rest / p.chunks;
  let r0 = chunk * p.chunk;
  let r1 = min(p.len, r0 + p.chunk);
  var acc = bitcast<f32>(load((o * p.len + r0) * p.inner + c));
  for (var r = r0 + 1u; r < r1; r++) {
    acc = combine(acc, bitcast<f32>(load((o * p.len + r) * p.inner + c)));
  }
  out[t] = acc;
}
