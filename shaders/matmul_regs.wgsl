// Batched matmul without workgroup memory: each invocation keeps a 4x4 block of the output
// in registers and streams its 4 rows of A and 4 columns of B from memory (caches serve
// the reuse). Chosen on CPU-like adapters (lavapipe), where a workgroup barrier costs far
// more than a cached load; GPUs get the tiled kernel (matmul.wgsl). Same parameters,
// grid and K-splitting as matmul.wgsl, with 4x4 blocks per invocation instead of 16x16
// tiles per workgroup: workgroup g, invocation l covers block (bm, bn) of tile g.
//!include common.wgsl

struct Params {
  m: u32,
  n: u32,
  k: u32,
  tilesM: u32,
  tilesN: u32,
  splits: u32,
  kChunk: u32,
  batch: u32,
  rank: u32,
  shape: array<vec4u, 2>,
  sa: array<vec4u, 2>,
  sb: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  // blocks of 4x4 outputs; tilesM/tilesN count blocks here
  let t = flat_id(wg, nwg, lid);
  let per = p.tilesM * p.tilesN;
  let bz = t / per;
  if (bz >= p.splits * p.batch) { return; }
  let blk = t % per;
  let bn = blk % p.tilesN;
  let bm = blk / p.tilesN;
  let split = bz % p.splits;
  let bi = bz / p.splits;

  var rem = bi;
  var aoff = 0u;
  var boff = 0u;
  for (var q = 0u; q < p.rank; q++) {
    let d = p.rank - 1u - q;
    let size = p.shape[d >> 2u][d & 3u];
    let c = rem % size;
    rem = rem / size;
    aoff += c * p.sa[d >> 2u][d & 3u];
    boff += c * p.sb[d >> 2u][d & 3u];
  }

  let r0 = bm * 4u;
  let c0 = bn * 4u;
  // clamp reads to the last row / column; the writes below skip what lies outside
  let ra = vec4u(min(r0, p.m - 1u), min(r0 + 1u, p.m - 1u), min(r0 + 2u, p.m - 1u), min(r0 + 3u, p.m - 1u));
  let cb = vec4u(min(c0, p.n - 1u), min(c0 + 1u, p.n - 1u), min(c0 + 2u, p.n - 1u), min(c0 + 3u, p.n - 1u));
  let k0 = split * p.kChunk;
  let k1 = min(p.k, k0 + p.kChunk);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var kk = k0; kk < k1; kk++) {
    let brow = boff + kk * p.n;
    let bv = vec4f(b[brow + cb.x], b[brow + cb.y], b[brow + cb.z], b[brow + cb.w]);
    acc0 = fma(vec4f(a[aoff + ra.x * p.k + kk]), bv, acc0);
    acc1 = fma(vec4f(a[aoff + ra.y * p.k + kk]), bv, acc1);
    acc2 = fma(vec4f(a[aoff + ra.z * p.k + kk]), bv, acc2);
    acc3 = fma(vec4f(a[aoff + ra.w * p.k + kk]), bv, acc3);
  }
  let obase = (split * p.batch + bi) * p.m * p.n;
  let rows = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + i;
    if (r < p.m) {
      for (var j = 0u; j < 4u; j++) {
        let c = c0 + j;
        if (c < p.n) { out[obase + r * p.n + c] = rows[i][j]; }
      }
    }
  }
}
