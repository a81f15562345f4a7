// The separators' system of the partitioned banded solve (band_partition.wgsl): eliminating
// every interior leaves, on the separators S_0 … S_{P-2} (b rows each), the Schur complement
// T, block tridiagonal with b × b blocks, from partition q's slots (G, g, VV, Vy, ZV):
//   T[S_q, S_q] = A[S_q, S_q] - VV_q - G_{q+1},   T[S_q, S_{q+1}] = -ZV_{q+1},
//   rs[S_q] = r[S_q] - Vy_q - g_{q+1}.
// Written as upper band storage of width b2 = 2b - 1, tab [batch, b2+1, ns] (tab[b2 + i - j][j]
// = T[i][j], corners 0), ns = (P - 1) b, with the right-hand side rs [batch, ns]. T is SPD
// when A is. One invocation per (system, column J of T); its loop runs 2b times.
//!include common.wgsl

override LOWER: u32 = 0u;

struct Params {
  batch: u32,
  n: u32,
  s: u32,
  b: u32,
  slot: u32,
  ns: u32,
  parts: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ab: array<f32>;
@group(0) @binding(2) var<storage, read> rhs: array<f32>;
@group(0) @binding(3) var<storage, read> slots: array<f32>;
@group(0) @binding(4) var<storage, read_write> tab: array<f32>;
@group(0) @binding(5) var<storage, read_write> rs: array<f32>;

// A[j - d][j] of system t
fn a_at(t: u32, d: u32, j: u32) -> f32 {
  if (LOWER == 0u) { return ab[(t * (p.b + 1u) + p.b - d) * p.n + j]; }
  return ab[(t * (p.b + 1u) + d) * p.n + j - d];
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = flat_id(wg, nwg, lid);
  if (g >= p.batch * p.ns) { return; }
  let t = g / p.ns;
  let J = g - t * p.ns;
  let b = p.b;
  let b2 = 2u * b - 1u;
  let qj = J / b;
  let cj = J - qj * b;
  let sep = (qj + 1u) * p.s - b; // the first row of S_qj in A
  let bb = b * b;
  let own = (t * p.parts + qj) * p.slot; // partition qj: VV at bb + b, Vy at 2bb + b, ZV at 2bb + 2b
  let next = own + p.slot; // partition qj + 1: G at 0, g at bb
  for (var r = 0u; r <= b2; r++) {
    var v = 0.0;
    if (J + r >= b2) {
      let I = J + r - b2;
      let qi = I / b;
      let ci = I - qi * b;
      if (qi == qj) {
        v = a_at(t, cj - ci, sep + cj) - slots[own + bb + b + ci * b + cj] -
          slots[next + ci * b + cj];
      } else if (qi + 1u == qj) {
        v = -slots[own + 2u * bb + 2u * b + ci * b + cj];
      }
    }
    tab[(t * (b2 + 1u) + r) * p.ns + J] = v;
  }
  rs[t * p.ns + J] = rhs[t * p.n + sep + cj] - slots[own + 2u * bb + b + cj] - slots[next + bb + cj];
}
