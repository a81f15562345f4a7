// Triangular solves with the general banded LU of band_lu_factor.wgsl (LAPACK gbtrs):
// BACKWARD = 0: the interchanges and L's elimination, steps j0 .. j1-1 in order (only
// needed for several right-hand sides: one is done in the factorisation's pass);
// BACKWARD = 1: U x = y for columns j1-1 down to j0, column-oriented like LAPACK's dtbsv
// (x[j] /= U[j][j], then x[i] -= x[j] U[i][j] for the KV rows above). In place on x, the
// right-hand sides interleaved over the batch, [n, m, batch]: x[(j * m + c) * batch + t].
// One invocation per (rhs column c, system t). The launcher splits the columns over
// dispatches (loop passes per column, as lavapipe's limiter counts them: at most KV + 3).
// Systems whose factorisation failed (status[t] != 0) are skipped.
//!include common.wgsl

override LB: u32 = 1u;
override UB: u32 = 1u;
override BACKWARD: u32 = 0u;
override KV: u32 = LB + UB;

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
@group(0) @binding(3) var<storage, read> piv: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

fn el(i: u32, c: u32, t: u32) -> u32 {
  return ((KV + i - c) * p.n + c) * p.batch + t;
}

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
      let jp = piv[j * p.batch + t];
      if (jp != 0u) {
        let s = x[j * xs + x0];
        x[j * xs + x0] = x[(j + jp) * xs + x0];
        x[(j + jp) * xs + x0] = s;
      }
      let y = x[j * xs + x0];
      if (y != 0.0) {
        let km = min(LB, p.n - 1u - j);
        for (var q = 1u; q <= km; q++) { x[(j + q) * xs + x0] -= w[el(j + q, j, t)] * y; }
      }
    }
  } else {
    for (var jj = p.j1; jj > p.j0; jj--) {
      let j = jj - 1u;
      let s = x[j * xs + x0];
      if (s != 0.0) {
        let v = s / w[el(j, j, t)];
        x[j * xs + x0] = v;
        for (var e = 1u; e <= min(KV, j); e++) { x[(j - e) * xs + x0] -= v * w[el(j - e, j, t)]; }
      }
    }
  }
}
