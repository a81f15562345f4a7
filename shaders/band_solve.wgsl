// Triangular solves with the banded Cholesky factor of band_factor.wgsl (LAPACK pbtrs):
// BACKWARD = 0: U^T y = r for columns j0 .. j1-1 in order; BACKWARD = 1: U x = y for
// columns j1-1 down to j0. In place on x, the right-hand sides interleaved over the batch,
// [n, m, batch]: x[(j * m + c) * batch + t]. One invocation per (rhs column c, system t),
// neighbouring systems at neighbouring addresses. The launcher splits the columns over
// dispatches (at most ~60,000 loop passes per invocation, as lavapipe's limiter counts
// them: 2 + B per column).
// Systems whose factorisation failed (status[t] != 0) are skipped.
//!include common.wgsl

override B: u32 = 1u;
override BACKWARD: u32 = 0u;

struct Params {
  batch: u32,
  n: u32,
  m: u32,
  j0: u32,
  j1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> status: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = flat_id(wg, nwg, lid);
  if (g >= p.batch * p.m) { return; }
  let t = g % p.batch;
  let c = g / p.batch;
  if (status[t] != 0u) { return; }
  let xs = p.m * p.batch; // stride of one row of x
  let x0 = c * p.batch + t;
  if (BACKWARD == 0u) {
    for (var j = p.j0; j < p.j1; j++) {
      var s = x[j * xs + x0];
      // s -= U[k][j] y[k] for k = j - B + q >= 0
      for (var q = select(0u, B - j, j < B); q < B; q++) {
        s -= w[(q * p.n + j) * p.batch + t] * x[(j + q - B) * xs + x0];
      }
      x[j * xs + x0] = s / w[(B * p.n + j) * p.batch + t];
    }
  } else {
    for (var jj = p.j1; jj > p.j0; jj--) {
      let j = jj - 1u;
      var s = x[j * xs + x0];
      // s -= U[j][j + e] x[j + e], from the far end like LAPACK (U[j][j+e] is entry (B - e, j + e))
      for (var e = min(B, p.n - 1u - j); e > 0u; e--) {
        s -= w[((B - e) * p.n + j + e) * p.batch + t] * x[(j + e) * xs + x0];
      }
      x[j * xs + x0] = s / w[(B * p.n + j) * p.batch + t];
    }
  }
}
