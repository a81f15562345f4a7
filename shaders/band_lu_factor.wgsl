// General banded LU with partial pivoting (LAPACK dgbtf2, the factorisation behind
// scipy.linalg.solve_banded), one system per invocation, in the working layout of
// band_lu_init.wgsl: A[i][c] at row KV + i - c of column c, w[(r * n + c) * batch + t].
// One invocation runs steps [j0, j1) of system t; the launcher splits the n steps over
// dispatches so that no invocation loops more than ~60,000 times (lavapipe silently stops
// loops past 65,535), and each dispatch takes up where the last stopped: the state is the
// factor itself. Each step's row interchange and rank-1 update reach columns j .. j + KV
// (LAPACK stops at the last column earlier interchanges can reach; past it both rows hold
// structural zeros, so the numbers are the same).
// FUSED = 1 (one right-hand side, x [n, batch]) applies the step's interchange and
// elimination to x at once: gbtrs' forward pass, in its order. Otherwise the pivot offset
// of each step goes to piv [n, batch] for band_lu_solve.wgsl.
// A zero pivot stores its step j + 1 in status[t] (LAPACK's info) and stops the system;
// later dispatches skip it.
// Loop passes per step, as lavapipe's limiter counts them (a loop run k times costs k + 1,
// or k + 2 when it holds another loop): at most 8 + 3 LB + 2 KV + KV (LB + 1).
//!include common.wgsl

override LB: u32 = 1u; // subdiagonals l
override UB: u32 = 1u; // superdiagonals u
override FUSED: u32 = 0u;
override KV: u32 = LB + UB;

struct Params {
  batch: u32,
  n: u32,
  j0: u32,
  j1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> status: array<u32>;
@group(0) @binding(3) var<storage, read_write> piv: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

// A[i][c] of system t
fn el(i: u32, c: u32, t: u32) -> u32 {
  return ((KV + i - c) * p.n + c) * p.batch + t;
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
  let bt = p.batch;
  for (var j = p.j0; j < p.j1; j++) {
    let km = min(LB, p.n - 1u - j);
    // the first entry of largest magnitude in column j, rows j .. j + km
    var jp = 0u;
    var best = abs(w[el(j, j, t)]);
    for (var q = 1u; q <= km; q++) {
      let v = abs(w[el(j + q, j, t)]);
      if (v > best) {
        best = v;
        jp = q;
      }
    }
    let pv = w[el(j + jp, j, t)];
    if (pv == 0.0) {
      status[t] = j + 1u;
      return;
    }
    let ju = min(j + KV, p.n - 1u);
    if (jp != 0u) {
      for (var c = j; c <= ju; c++) {
        let a = el(j, c, t);
        let b = el(j + jp, c, t);
        let s = w[a];
        w[a] = w[b];
        w[b] = s;
      }
      if (FUSED == 1u) {
        let s = x[j * bt + t];
        x[j * bt + t] = x[(j + jp) * bt + t];
        x[(j + jp) * bt + t] = s;
      }
    }
    if (FUSED == 0u) { piv[j * bt + t] = jp; }
    let r = 1.0 / pv;
    for (var q = 1u; q <= km; q++) { w[el(j + q, j, t)] *= r; }
    // rank-1 update of the trailing block, column by column, skipping zero pivot-row entries
    for (var c = j + 1u; c <= ju; c++) {
      let y = w[el(j, c, t)];
      if (y != 0.0) {
        for (var q = 1u; q <= km; q++) { w[el(j + q, c, t)] -= w[el(j + q, j, t)] * y; }
      }
    }
    if (FUSED == 1u) {
      let y = x[j * bt + t];
      if (y != 0.0) {
        for (var q = 1u; q <= km; q++) { x[(j + q) * bt + t] -= w[el(j + q, j, t)] * y; }
      }
    }
  }
}
