// out = c != 0 ? a : b with broadcasting, over the coalesced output shape (rank <= 8).
//!include common.wgsl

struct Params {
  n: u32,
  rank: u32,
  shape: array<vec4u, 2>,
  sc: array<vec4u, 2>,
  sa: array<vec4u, 2>,
  sb: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  var rem = i;
  var ic = 0u;
  var ia = 0u;
  var ib = 0u;
  for (var q = 0u; q < p.rank; q++) {
    let d = p.rank - 1u - q;
    let size = p.shape[d >> 2u][d & 3u];
    let k = rem % size;
    rem = rem / size;
    ic += k * p.sc[d >> 2u][d & 3u];
    ia += k * p.sa[d >> 2u][d & 3u];
    ib += k * p.sb[d >> 2u][d & 3u];
  }
  // NaN conditions pick a, as on the CPU (NaN != 0)
  let cv = c[ic];
  out[i] = select(b[ib], a[ia], cv != 0.0 || is_nan(cv));
}
