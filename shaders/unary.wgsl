// y = op(x), elementwise. OP follows UNARY_OPS in src/backend/backend.ts.
//!include common.wgsl

override OP: u32 = 0u;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// e^v - 1 without cancellation near 0: Taylor series on |v| < 0.5 (error below f32 ulp).
fn expm1_(v: f32) -> f32 {
  if (abs(v) < 0.5) {
    var s = 1.0 / 362880.0;
    s = s * v + 1.0 / 40320.0;
    s = s * v + 1.0 / 5040.0;
    s = s * v + 1.0 / 720.0;
    s = s * v + 1.0 / 120.0;
    s = s * v + 1.0 / 24.0;
    s = s * v + 1.0 / 6.0;
    s = s * v + 0.5;
    s = s * v + 1.0;
    return s * v;
  }
  return exp(v) - 1.0;
}

// log(1 + v) without cancellation near 0: Taylor of 2·atanh(v / (2 + v)) on |v| < 0.25.
fn log1p_(v: f32) -> f32 {
  if (is_nan(v)) { return v; }
  if (v < -1.0) { return nan_f32(); }
  if (v == -1.0) { return -inf_f32(); }
  if (abs(v) < 0.25) {
    let z = v / (2.0 + v);
    let z2 = z * z;
    var s = 1.0 / 13.0;
    s = s * z2 + 1.0 / 11.0;
    s = s * z2 + 1.0 / 9.0;
    s = s * z2 + 1.0 / 7.0;
    s = s * z2 + 1.0 / 5.0;
    s = s * z2 + 1.0 / 3.0;
    s = s * z2 + 1.0;
    return 2.0 * z * s;
  }
  return log(1.0 + v);
}

fn apply(v: f32) -> f32 {
  switch OP {
    case 0u: { return -v; }
    case 1u: { return exp(v); }
    case 2u: {
      if (is_nan(v)) { return v; }
      if (v < 0.0) { return nan_f32(); }
      if (v == 0.0) { return -inf_f32(); }
      // GPU log is only absolutely accurate near 1 (WGSL: 2^-21 on [0.5, 2]), which loses
      // every digit of log(1 + d) for small d; v - 1 is exact here (Sterbenz), so use log1p.
      if (v > 0.75 && v < 1.25) { return log1p_(v - 1.0); }
      return log(v);
    }
    case 3u: { return select(nan_f32(), sin(v), is_finite(v)); }
    case 4u: { return select(nan_f32(), cos(v), is_finite(v)); }
    case 5u: {
      // tanh through expm1: accurate near 0 and never inf/inf for large |v|
      if (is_nan(v)) { return v; }
      let a = abs(v);
      var t = 1.0;
      if (a < 15.0) {
        let e = expm1_(2.0 * a);
        t = e / (e + 2.0);
      }
      return select(t, -t, v < 0.0);
    }
    case 6u: {
      if (is_nan(v)) { return v; }
      if (v < 0.0) { return nan_f32(); }
      return sqrt(v);
    }
    case 7u: { return abs(v); }
    case 8u: {
      if (is_nan(v)) { return v; }
      if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
      let e = exp(v);
      return e / (1.0 + e);
    }
    case 9u: { return log1p_(v); }
    case 10u: {
      if (is_nan(v)) { return v; }
      return expm1_(v);
    }
    case 11u: { return v * v; }
    case 12u: { return 1.0 / v; }
    case 13u: {
      if (is_nan(v)) { return v; }
      if (v > 0.0) { return 1.0; }
      if (v < 0.0) { return -1.0; }
      return v;
    }
    default: { return nan_f32(); }
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_id(wg, nwg, lid);
  if (i >= p.n) { return; }
  y[i] = apply(x[i]);
}
