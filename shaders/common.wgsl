// Shared by every kernel (inlined by tools/gen_shaders.ts where a shader says `//!include`).

// Workgroup size; every pipeline sets it, so one source serves all sizes.
override WG: u32 = 256u;

// NaN and infinity made at run time: WGSL forbids them in constant expressions, and lets
// compilers assume `x != x` is false, so NaN tests look at the bits instead.
var<private> NAN_BITS: u32 = 0x7fc00000u;
var<private> INF_BITS: u32 = 0x7f800000u;

fn nan_f32() -> f32 {
  return bitcast<f32>(NAN_BITS);
}

fn inf_f32() -> f32 {
  return bitcast<f32>(INF_BITS);
}

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// Linear id of an invocation in a grid folded into 2-D (x holds at most 65,535 groups).
fn flat_id(wg: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * WG + lid;
}

// Linear id of a workgroup in a grid folded into 2-D.
fn group_id(wg: vec3u, nwg: vec3u) -> u32 {
  return wg.x + wg.y * nwg.x;
}

// Entry d of a rank-8 list stored as array<vec4, 2> in a uniform block.
fn at8u(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d >> 2u][d & 3u];
}

fn at8i(v: array<vec4i, 2>, d: u32) -> i32 {
  return v[d >> 2u][d & 3u];
}

// High word of a 32x32-bit product, from 16-bit halves (WGSL has no 64-bit integers).
fn mulhi_u32(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu;
  let ah = a >> 16u;
  let bl = b & 0xffffu;
  let bh = b >> 16u;
  let t = ah * bl + ((al * bl) >> 16u);
  let w1 = (t & 0xffffu) + al * bh;
  return ah * bh + (t >> 16u) + (w1 >> 16u);
}

// floor(x / d) for x < 2^31 from a multiplier m and shift s made on the host (Granlund &
// Montgomery 1994; src/backend/webgpu/codegen.ts): GPUs, and lavapipe most of all, divide
// integers slowly, and fused kernels split indices by runtime sizes everywhere.
fn udiv_magic(x: u32, m: u32, s: u32) -> u32 {
  return mulhi_u32(x, m) >> s;
}
