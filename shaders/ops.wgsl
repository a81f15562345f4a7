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

// sin (cosine = false) or cos of v to 1-2 ulp for |v| <= 8192: WGSL promises only 2^-11
// absolute error for the built-ins, on [-pi, pi] alone, and SwiftShader (Chromium without a
// GPU) is that coarse (2e-4), which a derivative check or a Newton step cannot use. Cephes'
// sinf: reduce by multiples of pi/2 in three parts (y * 0.78515625 is exact for y < 2^16),
// then minimax polynomials on [-pi/4, pi/4]. Past 8192 the reduction loses bits: built-ins.
fn sin_cos_(v: f32, cosine: bool) -> f32 {
  let a = abs(v);
  if (a > 8192.0) { return select(sin(v), cos(v), cosine); }
  var j = u32(a * 1.2732395447351628); // 4 / pi
  j += j & 1u; // even: a multiple of pi/2
  let y = f32(j);
  let z = ((a - y * 0.78515625) - y * 2.4187564849853515625e-4) - y * 3.77489497744594108e-8;
  let z2 = z * z;
  let s = z + z * z2 * ((-1.9515295891e-4 * z2 + 8.3321608736e-3) * z2 - 1.6666654611e-1);
  let c = 1.0 - 0.5 * z2 +
    z2 * z2 * ((2.443315711809948e-5 * z2 - 1.388731625493765e-3) * z2 + 4.166664568298827e-2);
  // a = k pi/2 + z with k = j / 2: sin a is s, c, -s, -c by k mod 4, and cos a = sin(a + pi/2)
  let k = (j >> 1u) + select(0u, 1u, cosine);
  let r = select(s, c, (k & 1u) == 1u);
  let negative = ((k & 2u) != 0u) != (!cosine && v < 0.0); // sin is odd, cos even
  return select(r, -r, negative);
}

// Unary op `op` (UNARY_OPS order).
fn unary_op(op: u32, v: f32) -> f32 {
  switch op {
    case 0u: { return -v; }
    case 1u: {
      // WGSL lets exp assume no NaN (SwiftShader's exp(NaN) is +inf), so test the bits first
      if (is_nan(v)) { return v; }
      return exp(v);
    }
    case 2u: {
      if (is_nan(v)) { return v; }
      if (v < 0.0) { return nan_f32(); }
      if (v == 0.0) { return -inf_f32(); }
      // GPU log is only absolutely accurate near 1 (WGSL: 2^-21 on [0.5, 2]), which loses
      // every digit of log(1 + d) for small d; v - 1 is exact here (Sterbenz), so use log1p.
      if (v > 0.75 && v < 1.25) { return log1p_(v - 1.0); }
      return log(v);
    }
    case 3u: { return select(nan_f32(), sin_cos_(v, false), is_finite(v)); }
    case 4u: { return select(nan_f32(), sin_cos_(v, true), is_finite(v)); }
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
