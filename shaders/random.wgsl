// Philox4x32-10 draws; must match src/random/philox.ts word for word.
// DIST 0: uniform [0,1), 1: standard normal (Box-Muller), 2: Rademacher +-1.
//!include common.wgsl
//!include ops.wgsl

override DIST: u32 = 0u;

struct Params {
  n: u32,
  offset: u32,
  k0: u32,
  k1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

fn philox(ctr: vec4u, key: vec2u) -> vec4u {
  var c = ctr;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    let hi0 = mulhi_u32(0xd2511f53u, c.x);
    let lo0 = 0xd2511f53u * c.x;
    let hi1 = mulhi_u32(0xcd9e8d57u, c.z);
    let lo1 = 0xcd9e8d57u * c.z;
    c = vec4u(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2u(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}

// log(u) for u in (0, 1]. GPU log is only absolutely accurate near 1 (WGSL allows 2^-21 on
// [0.5, 2]), which would get small Box-Muller radii wrong in most digits; above 0.75 use
// log1p_ (ops.wgsl) on u - 1, which is exact there.
fn log_unit(u: f32) -> f32 {
  if (u <= 0.75) { return log(u); }
  return log1p_(u - 1.0);
}

// cos(2 pi u) for u = k / 2^24 in [0, 1): reduced by symmetry to an angle of at most pi/4
// (every step exact on multiples of 2^-24), so the rounding of the f32 product 2 pi t
// stays below 5e-8 instead of growing to 4e-7 near 2 pi.
fn cos_2pi(u: f32) -> f32 {
  var t = select(u, 1.0 - u, u > 0.5);
  var sgn = 1.0;
  if (t > 0.25) {
    t = 0.5 - t;
    sgn = -1.0;
  }
  // sin_cos_ (ops.wgsl), not the built-ins: those may be off by 2^-11 (SwiftShader is)
  if (t > 0.125) { return sgn * sin_cos_(6.283185307179586 * (0.25 - t), false); }
  return sgn * sin_cos_(6.283185307179586 * t, true);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  let w = philox(vec4u(i, p.offset, 0u, 0u), vec2u(p.k0, p.k1));
  let scale = 1.0 / 16777216.0;
  switch DIST {
    case 0u: { out[i] = f32(w.x >> 8u) * scale; }
    case 1u: {
      let u1 = f32((w.x >> 8u) + 1u) * scale;
      let u2 = f32(w.y >> 8u) * scale;
      out[i] = sqrt(-2.0 * log_unit(u1)) * cos_2pi(u2);
    }
    default: { out[i] = select(-1.0, 1.0, (w.x >> 31u) == 1u); }
  }
}
