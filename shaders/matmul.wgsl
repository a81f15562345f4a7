// Batched matmul, 16x16 output tiles staged through workgroup memory.
// Workgroup g covers tile (g % tilesN, (g / tilesN) % tilesM) of batch entry and K-split
// bz = g / (tilesM * tilesN): split = bz % splits, batch = bz / splits. Each split sums at
// most kChunk products (<= 4096, keeping every invocation far below lavapipe's 65,535 loop
// iterations); with splits > 1, out holds partials [splits, batch, m, n] that the launcher
// sums. Batch dims broadcast through per-operand batch strides (0 where broadcast).
//!include common.wgsl

const T: u32 = 16u;

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

var<workgroup> As: array<array<f32, 16>, 16>;
var<workgroup> Bs: array<array<f32, 16>, 16>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = group_id(wg, nwg);
  let per = p.tilesM * p.tilesN;
  let bz = g / per;
  if (bz >= p.splits * p.batch) { return; } // whole workgroup: uniform
  let tile = g % per;
  let tn = tile % p.tilesN;
  let tm = tile / p.tilesN;
  let split = bz % p.splits;
  let bi = bz / p.splits;

  var rem = bi;
  var aoff = 0u;
  var boff = 0u;
  for (var q = 0u; q < p.rank; q++) {
    let d = p.rank - 1u - q;
    let size = p.shape[d >> 2u][d & 3u];
    let q = rem % size;
    rem = rem / size;
    aoff += q * p.sa[d >> 2u][d & 3u];
    boff += q * p.sb[d >> 2u][d & 3u];
  }

  let tx = lid % T;
  let ty = lid / T;
  let row = tm * T + ty;
  let col = tn * T + tx;
  let k0 = split * p.kChunk;
  let k1 = min(p.k, k0 + p.kChunk);
  var acc = 0.0;
  for (var t = k0; t < k1; t += T) {
    let ka = t + tx;
    let kb = t + ty;
    As[ty][tx] = select(0.0, a[aoff + row * p.k + ka], row < p.m && ka < k1);
    Bs[ty][tx] = select(0.0, b[boff + kb * p.n + col], col < p.n && kb < k1);
    workgroupBarrier();
    for (var q = 0u; q < T; q++) {
      acc = fma(As[ty][q], Bs[q][tx], acc);
    }
    workgroupBarrier();
  }
  if (row < p.m && col < p.n) {
    out[(split * p.batch + bi) * p.m * p.n + row * p.n + col] = acc;
  }
}
