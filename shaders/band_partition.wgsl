// Partitioned banded Cholesky solve of SPD systems A x = r, one invocation per (system t,
// partition q); the launcher is src/backend/webgpu/band_partition.ts, which fills in the
// bandwidth B and the bodies marked //@… with straight-line code unrolled over the band
// (the previous B columns of the factor live in registers), so the only loops are over rows.
//
// System t has n rows in LAPACK band storage ab [batch, B+1, n] (upper: A[j-d][j] at row
// B - d; LOWER = 1: A[j][j-d] at row d, column j - d) and right-hand side rhs [batch, n].
// Partition q holds rows [q s, (q+1) s) (the last one also the rest, up to n). Its first
// rows are its interior; its last B rows, except in the last partition, are a separator.
// Interiors couple only to the separators on either side, so:
//  MODE 1: each interior is factored (A_I = U^T U, U to `u`, 1/U[j][j] on its diagonal)
//          and the block elimination of the interiors is summarised for the separators:
//          with Z = U^-T E (E: the coupling to the separator above) and V = U^-T F (F: to
//          the one below; only its last B rows are non-zero), the slots of partition q get
//          G = Z^T Z, g = Z^T y, VV = V^T V, Vy = V^T y, ZV = Z^T V, y = U^-T r. They are
//          computed in the sweep itself, in registers; only U is stored.
//  (band_partition_reduce.wgsl then assembles the separators' Schur complement, a band of
//   width 2B - 1, which the launcher solves by the same kernels: xs.)
//  MODE 2: each interior is solved with the separators' values known: U^T w = r - E xs_above
//          - F xs_below, then U x = w; the separators' rows are copied from xs.
//  MODE 0: one partition per system (no separators): factor with the forward substitution
//          in the same pass, then the backward substitution; LAPACK pbtrf / pbtrs order.
// The arithmetic of each sweep is LAPACK's (left-looking columns, subtractions in ascending
// row order, scaling by the reciprocal of the pivot). A symmetric reordering of an SPD
// matrix and the Schur complement of an SPD block are SPD, so the partitioned factorisation
// is as stable as the plain one and needs no pivoting.
// A pivot that is not positive (or NaN) at row j stores p.fail + j + 1 in status[t] (p.fail
// tells the levels of separators apart); kernels of later dispatches skip the system.
// Loop passes per invocation, as lavapipe's limiter counts them: about one per row of each
// sweep (the launcher keeps 2 s + the rest under 60,000).
//!include common.wgsl

override LOWER: u32 = 0u;
override MODE: u32 = 0u;
const B: u32 = 1u; //@B

struct Params {
  batch: u32,
  n: u32,
  parts: u32,
  s: u32,
  fail: u32,
  slot: u32, // numbers per partition in `slots`
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ab: array<f32>;
@group(0) @binding(2) var<storage, read> rhs: array<f32>;
@group(0) @binding(3) var<storage, read_write> u: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> slots: array<f32>;
@group(0) @binding(6) var<storage, read> xs: array<f32>;
@group(0) @binding(7) var<storage, read_write> status: array<u32>;

// A[j - d][j] of system t (d <= B, j - d >= 0)
fn a_at(t: u32, d: u32, j: u32) -> f32 {
  if (LOWER == 0u) { return ab[(t * (B + 1u) + B - d) * p.n + j]; }
  return ab[(t * (B + 1u) + d) * p.n + j - d];
}

// U[j - B + r][j] (r < B) and, at r = B, 1 / U[j][j], of system t
fn u_at(t: u32, r: u32, j: u32) -> u32 {
  return (t * (B + 1u) + r) * p.n + j;
}

fn fail(t: u32, j: u32) {
  status[t] = p.fail + j + 1u;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = flat_id(wg, nwg, lid);
  if (g >= p.batch * p.parts) { return; }
  let t = g / p.parts;
  let q = g - t * p.parts;
  if (status[t] != 0u) { return; }
  let last = q + 1u == p.parts;
  let j0 = q * p.s;
  let j1 = select((q + 1u) * p.s - B, p.n, last); // the interior is [j0, j1)
  let xt = t * p.n; // system t's first row in x and rhs
  let xsUp = (t * (p.parts - 1u) + q - 1u) * B; // the separator above in xs (q > 0)
  let xsDown = (t * (p.parts - 1u) + q) * B; // the one below (not last)
  let base = (t * p.parts + q) * p.slot;
  if (p.batch == 0xffffffffu) { slots[0] = xs[0]; } // keeps every binding in the layout
  if (MODE != 2u) {
    //@factor
  }
  if (MODE == 2u) {
    //@forward
  }
  if (MODE != 1u) {
    //@backward
  }
}
