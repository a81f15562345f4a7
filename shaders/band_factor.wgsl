// Banded Cholesky A = U^T U (LAPACK pbtrf), left-looking, one system per invocation.
// A is read from `a`: band storage interleaved over the batch, [B+1, n, batch], upper
// (LOWER = 0: A[j - d][j] at row B - d, column j) or lower (LOWER = 1: A[j][j - d] at row
// d, column j - d); for one system that is LAPACK's ab itself. The corners outside the
// matrix are never read. U is written to `w` in the working layout, upper storage
// interleaved over the batch: entry (r, j) = U[j - B + r][j] at w[(r * n + j) * batch + t],
// corners 0; neighbouring systems touch neighbouring addresses.
// One invocation factors columns [j0, j1) of system t; the launcher splits the n columns
// over dispatches so that no invocation loops more than ~60,000 times (lavapipe silently
// stops loops past 65,535), and each dispatch takes up where the last stopped: the state
// is the factor itself. FUSED = 1 also runs the forward substitution U^T y = r for one
// right-hand side per system (rhs and x are [n, batch]) in the same pass.
// A pivot that is not positive (or NaN) stores its order j + 1 in status[t] (LAPACK's
// info) and stops the system; later dispatches skip it.
// Loop passes per column, as lavapipe's limiter counts them (a loop run k times costs
// k + 1, or k + 2 when it holds another loop): at most 4 + B + B(B+1)/2.
//!include common.wgsl

override B: u32 = 1u;
override LOWER: u32 = 0u;
override FUSED: u32 = 0u;

struct Params {
  batch: u32,
  n: u32,
  j0: u32,
  j1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> status: array<u32>;
@group(0) @binding(4) var<storage, read> rhs: array<f32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;

fn at(r: u32, j: u32, t: u32) -> u32 {
  return (r * p.n + j) * p.batch + t;
}

// A[j - B + r][j], for rows inside the matrix (j + r >= B)
fn a_at(r: u32, j: u32, t: u32) -> f32 {
  if (LOWER == 0u) { return a[at(r, j, t)]; }
  let d = B - r;
  return a[at(d, j - d, t)];
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = flat_id(wg, nwg, lid);
  if (t >= p.batch) { return; }
  if (status[t] != 0u) { return; }
  for (var j = p.j0; j < p.j1; j++) {
    // rows i = j - B + r of column j; rows above the matrix (r < r0) are corners
    let r0 = select(0u, B - j, j < B);
    for (var r = 0u; r < r0; r++) { w[at(r, j, t)] = 0.0; }
    var d = a_at(B, j, t);
    var y = 0.0;
    if (FUSED == 1u) { y = rhs[j * p.batch + t]; }
    for (var r = r0; r < B; r++) {
      let i = j + r - B;
      var s = a_at(r, j, t);
      // s -= U[k][i] U[k][j] for k = j - B + q (U[k][i] is entry (B + q - r, i))
      for (var q = r0; q < r; q++) {
        s -= w[at(B + q - r, i, t)] * w[at(q, j, t)];
      }
      let u = s / w[at(B, i, t)];
      w[at(r, j, t)] = u;
      d -= u * u;
      if (FUSED == 1u) { y -= u * x[i * p.batch + t]; }
    }
    if (is_nan(d) || d <= 0.0) {
      status[t] = j + 1u;
      return;
    }
    let ujj = sqrt(d);
    w[at(B, j, t)] = ujj;
    if (FUSED == 1u) { x[j * p.batch + t] = y / ujj; }
  }
}
