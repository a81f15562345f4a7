// Band storage [b+1, n] from the products of 2b+1 comb probes, hv [period, n]
// (src/backend/cpu/band_recovery.ts has the same formula and the reasoning): entry
// (r, j) holds H[i][j] with i = j + r (LOWER) or i = j - b + r (upper), which is row i
// of the product of probe j mod period. MIRROR reads H[j][i] from row j of probe
// i mod period instead: the other recovery, for the symmetry check. Outside the matrix: 0.
//!include common.wgsl

override UPPER: u32 = 0u;
override MIRROR: u32 = 0u;

struct Params {
  n: u32,
  b: u32,
  period: u32,
  total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> hv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = flat_id(wg, nwg, lid);
  if (t >= p.total) { return; }
  let r = t / p.n;
  let j = t % p.n;
  // i = j + r (lower) or j - b + r (upper), as i32 so that "above the matrix" is negative
  let i = select(i32(j) + i32(r), i32(j) - i32(p.b) + i32(r), UPPER == 1u);
  if (i < 0 || i >= i32(p.n)) {
    out[t] = 0.0;
    return;
  }
  let ui = u32(i);
  if (MIRROR == 1u) {
    out[t] = hv[(ui % p.period) * p.n + j];
  } else {
    out[t] = hv[(j % p.period) * p.n + ui];
  }
}
