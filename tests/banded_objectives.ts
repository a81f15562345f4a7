/**
 * Banded objectives with closed-form Hessians, shared by the banded-Hessian tests and the
 * benchmarks: the trajectory benchmark of issue 4 and a random banded objective. Each
 * comes with its Hessian's band computed here in f64 from second derivatives derived by
 * hand (never by the library), so a band from any backend can be checked at any n.
 *
 * Bands are returned as diagonals: `diag[d][j] = H[j + d][j]` (j < n − d), from which
 * {@linkcode bandStorage} builds LAPACK band storage in either layout.
 */
import { cos, exp, logcosh, slice, square, sum, type Tensor, tensor } from "../mod.ts";
import type { Device } from "../mod.ts";
import { randArray } from "./inputs.ts";

/** Where a problem's tensors live. */
export interface Placement {
  dtype: "f32" | "f64";
  device: Device;
}

/** An objective with a bandwidth-b Hessian and its closed-form band. */
export interface BandedProblem {
  n: number;
  b: number;
  f: (x: Tensor) => Tensor;
  /** The Hessian's diagonals at `x` (f64, from the closed form): diag[d][j] = H[j+d][j]. */
  hessianDiagonals(x: ArrayLike<number>): Float64Array[];
  /** Frees the problem's constant tensors. */
  dispose(): void;
}

/**
 * LAPACK band storage `[b+1, n]` (flat) from diagonals: lower `ab[d][j] = H[j+d][j]`, upper
 * `ab[b−d][j] = H[j−d][j]`; the corners outside the matrix are 0, as `bandedHessian` returns.
 */
export function bandStorage(diag: Float64Array[], n: number, layout: "lower" | "upper") {
  const b = diag.length - 1;
  const ab = new Float64Array((b + 1) * n);
  for (let d = 0; d <= b; d++) {
    for (let j = 0; j + d < n; j++) {
      if (layout === "lower") ab[d * n + j] = diag[d][j];
      else ab[(b - d) * n + j + d] = diag[d][j];
    }
  }
  return ab;
}

/** The band's diagonals from a dense symmetric n×n matrix (row-major). */
export function denseDiagonals(h: ArrayLike<number>, n: number, b: number): Float64Array[] {
  return Array.from({ length: b + 1 }, (_, d) => {
    const out = new Float64Array(n);
    for (let j = 0; j + d < n; j++) out[j] = h[(j + d) * n + j];
    return out;
  });
}

/** The targets of the trajectory benchmark: t[i] = sin(0.1 i) + 0.5 cos(0.37 i). */
export function trajectoryTargets(n: number): Float64Array {
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) t[i] = Math.sin(0.1 * i) + 0.5 * Math.cos(0.37 * i);
  return t;
}

/** f* of the trajectory benchmark at n = 10^5 (SciPy / PyTorch, f64), from issue 4. */
export const TRAJECTORY_FSTAR = 225.867972174;

/**
 * The trajectory benchmark of issue 4, exactly:
 * f(x) = Σ_{i=1}^{n−2} (x[i+1] − 2x[i] + x[i−1])² + Σ_{i=0}^{n−1} log cosh(x[i] − t[i]),
 * t[i] = sin(0.1 i) + 0.5 cos(0.37 i); bandwidth 2 (x0 = 0 is the benchmark's start).
 *
 * Hessian: 2 DᵀD + diag(sech²(x − t)), D the (n−2)×n second-difference matrix.
 */
export function trajectoryProblem(n: number, o: Placement): BandedProblem {
  if (n < 3) throw new RangeError(`trajectoryProblem: n must be at least 3, got ${n}`);
  const tHost = trajectoryTargets(n);
  const target = tensor(tHost, o);
  const f = (x: Tensor) => {
    const d2 = slice(x, [2], [n]).sub(slice(x, [1], [n - 1]).mul(2)).add(slice(x, [0], [n - 2]));
    return sum(square(d2)).add(sum(logcosh(x.sub(target))));
  };
  const hessianDiagonals = (x: ArrayLike<number>) => {
    const diag = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    // row i of D (1 ≤ i ≤ n−2) is [1, −2, 1] at columns i−1, i, i+1; 2 DᵀD sums 2 D[i][j] D[i][k]
    const c = [1, -2, 1];
    for (let i = 1; i <= n - 2; i++) {
      for (let a = 0; a < 3; a++) {
        for (let e = a; e < 3; e++) diag[e - a][i - 1 + a] += 2 * c[a] * c[e];
      }
    }
    for (let i = 0; i < n; i++) {
      const th = Math.tanh(x[i] - tHost[i]);
      diag[0][i] += 1 - th * th; // (log cosh)'' = sech² = 1 − tanh²
    }
    return diag;
  };
  return { n, b: 2, f, hessianDiagonals, dispose: () => target.dispose() };
}

/**
 * A random objective of bandwidth b (inputs rounded to f32, so every backend sees the same
 * numbers):
 *
 *   f(x) = Σ_i w_i (x_i⁴/12 + e^{x_i/2})
 *        + Σ_{d=1}^{b} Σ_{i<n−d} [p_{d,i} x_i x_{i+d} + q_{d,i} cos(x_i − x_{i+d}) + r_{d,i} (x_i x_{i+d})²]
 *
 * with second derivatives, for a pair term φ(u, v) with u = x_i, v = x_{i+d}:
 * φ_uv = p + q cos(u − v) + 4 r u v, φ_uu = −q cos(u − v) + 2 r v², φ_vv = −q cos(u − v) + 2 r u²;
 * and for the diagonal term, w (x² + e^{x/2}/4).
 */
export function randomBandedProblem(
  n: number,
  b: number,
  seed: number,
  o: Placement,
): BandedProblem {
  const w = randArray(n, seed, 0.5, 1.5);
  const p: Float64Array[] = [], q: Float64Array[] = [], r: Float64Array[] = [];
  for (let d = 1; d <= b; d++) {
    p[d] = randArray(n - d, seed + 101 * d, -1, 1);
    q[d] = randArray(n - d, seed + 101 * d + 1, -1, 1);
    r[d] = randArray(n - d, seed + 101 * d + 2, 0, 1);
  }
  const wT = tensor(w, o);
  const pT: Tensor[] = [], qT: Tensor[] = [], rT: Tensor[] = [];
  for (let d = 1; d <= b; d++) {
    pT[d] = tensor(p[d], o);
    qT[d] = tensor(q[d], o);
    rT[d] = tensor(r[d], o);
  }
  const f = (x: Tensor) => {
    let s = sum(wT.mul(x.pow(4).div(12).add(exp(x.mul(0.5)))));
    for (let d = 1; d <= b; d++) {
      const u = slice(x, [0], [n - d]), v = slice(x, [d], [n]);
      const uv = u.mul(v);
      s = s.add(sum(pT[d].mul(uv).add(qT[d].mul(cos(u.sub(v)))).add(rT[d].mul(square(uv)))));
    }
    return s;
  };
  const hessianDiagonals = (x: ArrayLike<number>) => {
    const diag = Array.from({ length: b + 1 }, () => new Float64Array(n));
    for (let i = 0; i < n; i++) diag[0][i] = w[i] * (x[i] * x[i] + Math.exp(x[i] / 2) / 4);
    for (let d = 1; d <= b; d++) {
      for (let i = 0; i + d < n; i++) {
        const u = x[i], v = x[i + d], c = Math.cos(u - v);
        diag[d][i] = p[d][i] + q[d][i] * c + 4 * r[d][i] * u * v;
        diag[0][i] += -q[d][i] * c + 2 * r[d][i] * v * v;
        diag[0][i + d] += -q[d][i] * c + 2 * r[d][i] * u * u;
      }
    }
    return diag;
  };
  const dispose = () => {
    wT.dispose();
    for (let d = 1; d <= b; d++) pT[d].dispose(), qT[d].dispose(), rT[d].dispose();
  };
  return { n, b, f, hessianDiagonals, dispose };
}

/** max |a − b| / max |b| over two flat arrays of one length. */
export function relMaxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}
