// out[i] = x[offset + sum_d idx_d * stride_d] over the coalesced output shape (rank <= 8).
// Transpose (permuted strides), broadcast (stride 0) and slice (offset, scaled and negative
// strides) are all this one kernel. Moves 32-bit words, so it serves f32 and i32 alike.
//!include common.wgsl

struct Params {
  n: u32,
  rank: u32,
  offset: i32,
  shape: array<vec4u, 2>,
  strides: array<vec4i, 2>,
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
  var src = p.offset;
  for (var q = 0u; q < p.rank; q++) {
    let d = p.rank - 1u - q;
    let size = p.shape[d >> 2u][d & 3u];
    src += i32(rem % size) * p.strides[d >> 2u][d & 3u];
    rem = rem / size;
  }
  out[i] = x[u32(src)];
}
