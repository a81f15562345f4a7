// out[a, j, c] = x[a, idx[j], c] with x viewed as [outer, len, inner] and out as
// [outer, m, inner]. Indices were range-checked on the host when the index tensor was made.
//!include common.wgsl

struct Params {
  n: u32,
  len: u32,
  m: u32,
  inner: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  let c = i % p.inner;
  let rest = i / p.inner;
  let j = rest % p.m;
  let a = rest / p.m;
  out[i] = x[(a * p.len + u32(idx[j])) * p.inner + c];
}
