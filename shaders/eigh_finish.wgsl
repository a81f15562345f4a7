// Ends eigh: one invocation per (matrix, k) takes eigenvalue k = A[k][k] of the converged
// Jacobi iteration, ranks it (ascending, NaN last, ties by index), signs eigenvector k (the
// column V[:, k]) so its entry of largest magnitude is positive, and writes both packed:
// out[b] is [n+1, n], row 0 the eigenvalues, rows 1 … n the eigenvectors as columns.
// Loops are O(n) per invocation.
//!include common.wgsl

struct Params {
  batch: u32,
  n: u32,
  pad2: u32,
  pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn before(x: f32, ix: u32, y: f32, iy: u32) -> bool {
  if (is_nan(x)) { return is_nan(y) && ix < iy; }
  if (is_nan(y)) { return true; }
  return x < y || (x == y && ix < iy);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = flat_id(wg, nwg, lid);
  let n = p.n;
  if (t >= p.batch * n) { return; }
  let b = t / n;
  let k = t % n;
  let base = b * n * n;
  let lam = a[base + k * n + k];
  var rank = 0u;
  for (var j = 0u; j < n; j++) {
    if (before(a[base + j * n + j], j, lam, k)) { rank++; }
  }
  var big = 0.0;
  var sign = 1.0;
  for (var i = 0u; i < n; i++) {
    let x = v[base + i * n + k];
    if (abs(x) > big) {
      big = abs(x);
      sign = select(1.0, -1.0, x < 0.0);
    }
  }
  let o = b * (n + 1u) * n;
  out[o + rank] = lam;
  for (var i = 0u; i < n; i++) {
    out[o + n + i * n + rank] = sign * v[base + i * n + k];
  }
}
