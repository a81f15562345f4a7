// out[base + sum_d idx_d * ostride_d] = x[i]: writes x (contiguous, coalesced shape of
// rank <= 8) into a region of a larger tensor. Concat is one dispatch per input.
//!include common.wgsl

struct Params {
  n: u32,
  rank: u32,
  base: u32,
  shape: array<vec4u, 2>,
  ostrides: array<vec4u, 2>,
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
  var rem = i;
  var dst = p.base;
  for (var q = 0u; q < p.rank; q++) {
    let d = p.rank - 1u - q;
    let size = p.shape[d >> 2u][d & 3u];
    dst += (rem % size) * p.ostrides[d >> 2u][d & 3u];
    rem = rem / size;
  }
  out[dst] = x[i];
}
