// Constant padding: out (shape outShape, rank <= 8) takes x where the index lies inside
// [before_d, before_d + inShape_d) on every axis and the value's bits elsewhere.
//!include common.wgsl

struct Params {
  n: u32,
  rank: u32,
  bits: u32,
  outShape: array<vec4u, 2>,
  inShape: array<vec4u, 2>,
  before: array<vec4u, 2>,
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
  var src = 0u;
  var stride = 1u;
  var inside = true;
  for (var q = 0u; q < p.rank; q++) {
    let d = p.rank - 1u - q;
    let size = p.outShape[d >> 2u][d & 3u];
    let k = rem % size;
    rem = rem / size;
    let lo = p.before[d >> 2u][d & 3u];
    let len = p.inShape[d >> 2u][d & 3u];
    if (k < lo || k >= lo + len) {
      inside = false;
    } else {
      src += (k - lo) * stride;
    }
    stride *= len;
  }
  out[i] = select(p.bits, x[src], inside);
}
