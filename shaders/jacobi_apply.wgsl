// Parallel cyclic Jacobi for eigh, step 2 of a round: A ← JᵀAJ and V ← VJ for the rotations
// of step 1 (jacobi_params.wgsl), all pairs of the round at once. Column i of J has two
// entries, c at row i and ±s at row partner(i) (−s when i is the smaller of its pair), so
// each new entry is a sum of at most four old ones: one invocation per (matrix, i, j) reads
// A and V and writes A2 and V2 (the launcher swaps them each round).
//!include common.wgsl

struct Params {
  batch: u32,
  n: u32,
  m: u32,
  r: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<f32>;
@group(0) @binding(4) var<storage, read_write> a2: array<f32>;
@group(0) @binding(5) var<storage, read_write> v2: array<f32>;

//!include jacobi_pairs.wgsl

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = flat_id(wg, nwg, lid);
  let n = p.n;
  if (t >= p.batch * n * n) { return; }
  let b = t / (n * n);
  let i = (t / n) % n;
  let j = t % n;
  let base = b * n * n;
  let pi = partner(i, p.r, p.m);
  let pj = partner(j, p.r, p.m);
  let ci = cs[2u * (b * n + i)];
  let cj = cs[2u * (b * n + j)];
  // the off-diagonal entry of J's column: −s for the smaller index of a pair, +s for the larger
  var ei = 0.0;
  var ej = 0.0;
  if (pi < n) { ei = select(1.0, -1.0, i < pi) * cs[2u * (b * n + i) + 1u]; }
  if (pj < n) { ej = select(1.0, -1.0, j < pj) * cs[2u * (b * n + j) + 1u]; }
  var x = ci * cj * a[base + i * n + j];
  if (pj < n) { x += ci * ej * a[base + i * n + pj]; }
  if (pi < n) { x += ei * cj * a[base + pi * n + j]; }
  if (pi < n && pj < n) { x += ei * ej * a[base + pi * n + pj]; }
  // the entry the rotation zeroes is 0 (not rounding noise)
  if (pi == j) { x = 0.0; }
  a2[t] = x;
  var y = v[base + i * n + j] * cj;
  if (pj < n) { y += v[base + i * n + pj] * ej; }
  v2[t] = y;
}
