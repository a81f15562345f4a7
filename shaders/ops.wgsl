// The elementwise maths of every kernel: unary_op and binary_op, selected by op id
// (UNARY_OPS / BINARY_OPS order in src/backend/backend.ts). Fused kernels call them with
// literal ids, so the compiler folds each switch to one case. Include after common.wgsl.

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

// Unary op `op` (UNARY_OPS order).
fn unary_op(op: u32, v: f32) -> f32 {
  switch op {
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
    case 14u: {
      // softplus log(1 + e^v), without overflow
      if (is_nan(v)) { return v; }
      if (v > 0.0) { return v + log1p_(exp(-v)); }
      return log1p_(exp(v));
    }
    default: { return nan_f32(); }
  }
}

// C's pow: negative bases with integer exponents keep their sign, 0^0 = 1, NaN spreads.
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (is_nan(x) || is_nan(y)) { return nan_f32(); }
  if (x == 1.0) { return 1.0; }
  if (y == 1.0) { return x; }
  if (y == 2.0) { return x * x; }
  if (x == 0.0) { return select(inf_f32(), 0.0, y > 0.0); }
  if (x < 0.0) {
    if (floor(y) != y) { return nan_f32(); }
    let r = pow(-x, y);
    let odd = abs(y) < 16777216.0 && fract(y * 0.5) != 0.0;
    return select(r, -r, odd);
  }
  return pow(x, y);
}

// atan on [0, ∞): Cephes' atanf (reduction to |t| ≤ tan(π/8), then an odd polynomial of
// degree 9; about 1 ulp), rather than WGSL's atan, whose accuracy the spec leaves at 4096 ulp.
fn atan_pos(x: f32) -> f32 {
  var y = 0.0;
  var t = x;
  if (x > 2.414213562373095) {
    y = 1.5707963267948966;
    t = -1.0 / x;
  } else if (x > 0.4142135623730950) {
    y = 0.7853981633974483;
    t = (x - 1.0) / (x + 1.0);
  }
  let z = t * t;
  let q = ((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1;
  return y + (q * z * t + t);
}

fn sign_bit(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x80000000u) != 0u;
}

// C's atan2(y, x): the angle of (x, y) in [−π, π], signed zeros and infinities as C has them.
fn atan2_(y: f32, x: f32) -> f32 {
  if (is_nan(x) || is_nan(y)) { return nan_f32(); }
  let ax = abs(x);
  let ay = abs(y);
  var a = 0.0;
  if (!is_finite(ax) && !is_finite(ay)) {
    a = 0.7853981633974483;
  } else if (ay <= ax) {
    if (ax > 0.0) { a = atan_pos(ay / ax); }
  } else {
    a = 1.5707963267948966 - atan_pos(ax / ay);
  }
  if (sign_bit(x)) { a = 3.141592653589793 - a; }
  return select(a, -a, sign_bit(y));
}

// Binary op `op` (BINARY_OPS order).
fn binary_op(op: u32, x: f32, y: f32) -> f32 {
  let anynan = is_nan(x) || is_nan(y);
  switch op {
    case 0u: { return x + y; }
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return x / y; }
    case 4u: { return pow_(x, y); }
    case 5u: { return select(max(x, y), nan_f32(), anynan); }
    case 6u: { return select(min(x, y), nan_f32(), anynan); }
    case 7u: { return select(0.0, 1.0, !anynan && x > y); }
    case 8u: { return select(0.0, 1.0, !anynan && x < y); }
    case 9u: { return select(0.0, 1.0, !anynan && x == y); }
    case 10u: { return select(0.0, 1.0, !anynan && x >= y); }
    case 11u: { return select(0.0, 1.0, !anynan && x <= y); }
    case 12u: { return select(0.0, 1.0, anynan || x != y); }
    case 13u: { return atan2_(x, y); }
    default: { return nan_f32(); }
  }
}
