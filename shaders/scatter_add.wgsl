// The adjoint of gather, without atomics: out[a, q, c] = sum over j with idx[j] = q of
// g[a, j, c]. The host sorts the indices once into `order` (the j's grouped by target)
// and `starts` (CSR offsets per target q), so each invocation owns one output element and
// sums its own segment: deterministic, no float atomics (WGSL has none). One dispatch
// handles segment entries [k0, k0 + span); longer segments take further dispatches that
// add onto out (ACCUM 1), so no invocation loops more than `span` times.
//!include common.wgsl

override ACCUM: u32 = 0u;

struct Params {
  n: u32,
  len: u32,
  m: u32,
  inner: u32,
  k0: u32,
  span: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> starts: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  let c = i % p.inner;
  let rest = i / p.inner;
  let q = rest % p.len;
  let a = rest / p.len;
  let s0 = starts[q] + p.k0;
  let s1 = min(starts[q + 1u], s0 + p.span);
  var acc = 0.0;
  for (var k = s0; k < s1; k++) {
    acc += g[(a * p.m + order[k]) * p.inner + c];
  }
  if (ACCUM == 1u) {
    out[i] = out[i] + acc;
  } else {
    out[i] = acc;
  }
}
