// Parallel cyclic Jacobi for eigh, step 1 of a round: the rotation of every pair.
// Round r pairs the indices 0 … m−1 (m = n, or n + 1 with a dummy index when n is odd) by
// the round-robin schedule: m − 1 goes with r, and i with (2r − i) mod (m − 1); the m − 1
// rounds of a sweep meet every pair once. One invocation per (matrix, index i < n) writes
// cs[b, i] = (c, s), Golub & Van Loan's symmetric Schur rotation of i's pair (p, q), p < q,
// which zeroes (JᵀAJ)[p][q] with J[p][p] = J[q][q] = c, J[p][q] = s, J[q][p] = −s; (1, 0)
// when i has no partner. Both members of a pair compute the same (c, s).
//!include common.wgsl

struct Params {
  batch: u32,
  n: u32,
  m: u32,
  r: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> cs: array<f32>;

//!include jacobi_pairs.wgsl

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = flat_id(wg, nwg, lid);
  if (t >= p.batch * p.n) { return; }
  let n = p.n;
  let b = t / n;
  let i = t % n;
  let j = partner(i, p.r, p.m);
  var c = 1.0;
  var s = 0.0;
  if (j < n) {
    let lo = min(i, j);
    let hi = max(i, j);
    let base = b * n * n;
    let apq = a[base + lo * n + hi];
    if (apq != 0.0) {
      let theta = (a[base + hi * n + hi] - a[base + lo * n + lo]) / (2.0 * apq);
      // |θ| past 1e18 (θ² overflows): t = 1 / (2θ) underflows to the rotation's t ≈ 0
      let tt = select(-1.0, 1.0, theta >= 0.0) / (abs(theta) + sqrt(theta * theta + 1.0));
      c = 1.0 / sqrt(tt * tt + 1.0);
      s = tt * c;
    }
  }
  cs[2u * t] = c;
  cs[2u * t + 1u] = s;
}
