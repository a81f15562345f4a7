// Recovery by substitution from b+1 comb products hv [b+1, n] into lower band storage
// l [b+1, n] (see src/backend/cpu/band_recovery.ts for the recurrence):
//   L(i, 0) = hv[i mod (b+1)][i],
//   L(i, d) = hv[(i-d) mod (b+1)][i] - L(i + b + 1 - d, b + 1 - d)   (0 past the end),
// with L(i, d) stored at l[d][i - d]. Rows depend on later rows, so one invocation walks
// rows [lo, hi) downwards; the launcher dispatches blocks from the last row up, each small
// enough to keep the invocation under lavapipe's loop limit: a row costs b + 2 loop passes
// there (one outer, b inner, and the inner loop's exit pass, which lavapipe's masked SIMD
// loops also count).
//!include common.wgsl

struct Params {
  n: u32,
  b: u32,
  lo: u32,
  hi: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> hv: array<f32>;
@group(0) @binding(2) var<storage, read_write> l: array<f32>;

@compute @workgroup_size(1)
fn main() {
  let c = p.b + 1u;
  let n = p.n;
  for (var i = p.hi; i > p.lo; i--) {
    let row = i - 1u;
    l[row] = hv[(row % c) * n + row];
    let top = min(p.b, row);
    for (var d = 1u; d <= top; d++) {
      let i2 = row + c - d;
      var later = 0.0;
      if (i2 < n) { later = l[(c - d) * n + row]; }
      l[d * n + (row - d)] = hv[((row - d) % c) * n + row] - later;
    }
  }
}
