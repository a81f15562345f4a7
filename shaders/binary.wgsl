// out = op(a, b) with NumPy broadcasting. OP follows BINARY_OPS in src/backend/backend.ts.
// MODE 0: same shapes; 1: b is one element; 2: a is one element; 3: general strides over
// the coalesced output shape (rank <= 8).
//!include common.wgsl

override OP: u32 = 0u;
override MODE: u32 = 0u;

struct Params {
  n: u32,
  rank: u32,
  shape: array<vec4u, 2>,
  sa: array<vec4u, 2>,
  sb: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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

fn apply(x: f32, y: f32) -> f32 {
  let anynan = is_nan(x) || is_nan(y);
  switch OP {
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
  switch MODE {
    case 0u: { out[i] = apply(a[i], b[i]); }
    case 1u: { out[i] = apply(a[i], b[0]); }
    case 2u: { out[i] = apply(a[0], b[i]); }
    default: {
      var rem = i;
      var ia = 0u;
      var ib = 0u;
      for (var q = 0u; q < p.rank; q++) {
    let d = p.rank - 1u - q;
        let size = p.shape[d >> 2u][d & 3u];
        let k = rem % size;
        rem = rem / size;
        ia += k * p.sa[d >> 2u][d & 3u];
        ib += k * p.sb[d >> 2u][d & 3u];
      }
      out[i] = apply(a[ia], b[ib]);
    }
  }
}
