/**
 * The 35 test problems of Moré, Garbow & Hillstrom, "Testing unconstrained optimization
 * software", ACM TOMS 7(1), 1981, written from the paper's formulas as residual vectors
 * r(x) ∈ ℝᵐ with f = Σ rᵢ², at the paper's standard starting points, with the minimum
 * values the paper lists (the global one first, then local minima it names).
 *
 * Sizes where the paper leaves a choice: Gulf m = 99, Box 3-D m = 10, Jennrich–Sampson
 * m = 10, Brown–Dennis m = 20, Biggs EXP6 m = 13, Watson n = 9, the variably dimensioned
 * family n = 10 (extended Powell n = 12, Chebyquad n = 8), the linear functions n = 10,
 * m = 20. `bench/mgh_scipy.py` defines the same problems in PyTorch (an independent
 * implementation: the tests compare f(x0) between the two).
 */
import {
  concat,
  cos,
  exp,
  log,
  matmul,
  reshape,
  sin,
  slice,
  sqrt,
  sum,
  type Tensor,
  tensor,
  where,
} from "../mod.ts";
import { cpu } from "./helpers.ts";

/** One MGH problem. */
export interface MghProblem {
  /** The paper's number (1–35). */
  id: number;
  name: string;
  n: number;
  m: number;
  /** The standard starting point. */
  x0: number[];
  /** Minimum values the paper lists: the global one first, then local minima. */
  fstar: number[];
  /** The residuals r(x) [m] for x [n] (f64 on the CPU). */
  residuals: (x: Tensor) => Tensor;
}

const o = { dtype: "f64" as const, device: cpu };
const vec = (a: ArrayLike<number>) => tensor(Float64Array.from(a), o);
const range = (k: number, from = 1) => Array.from({ length: k }, (_, i) => i + from);
/** x_i (1-based, as the paper writes it) as a [1] tensor. */
const at = (x: Tensor, i: number) => slice(x, [i - 1], [i]);
const cat = (...ts: Tensor[]) => concat(ts.map((t) => reshape(t, [t.size])), 0);

/** atan z for |z| < ∞, from ops the library has: three half-angle reductions and a series. */
function atan(z: Tensor): Tensor {
  let w = z;
  for (let k = 0; k < 3; k++) w = w.div(sqrt(w.square().add(1)).add(1)); // tan(θ/2)
  let s = w, p = w;
  const w2 = w.square();
  for (let k = 1; k <= 16; k++) {
    p = p.mul(w2).neg();
    s = s.add(p.div(2 * k + 1));
  }
  return s.mul(8);
}

const SQRT_A = Math.sqrt(1e-5);

/** The paper's data tables. */
const BARD_Y = [
  0.14,
  0.18,
  0.22,
  0.25,
  0.29,
  0.32,
  0.35,
  0.39,
  0.37,
  0.58,
  0.73,
  0.96,
  1.34,
  2.1,
  4.39,
];
const GAUSS_Y = [
  0.0009,
  0.0044,
  0.0175,
  0.054,
  0.1295,
  0.242,
  0.3521,
  0.3989,
  0.3521,
  0.242,
  0.1295,
  0.054,
  0.0175,
  0.0044,
  0.0009,
];
const MEYER_Y = [
  34780,
  28610,
  23650,
  19630,
  16370,
  13720,
  11540,
  9744,
  8261,
  7030,
  6005,
  5147,
  4427,
  3820,
  3307,
  2872,
];
const KOWALIK_Y = [
  0.1957,
  0.1947,
  0.1735,
  0.16,
  0.0844,
  0.0627,
  0.0456,
  0.0342,
  0.0323,
  0.0235,
  0.0246,
];
const KOWALIK_U = [4, 2, 1, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625];
const OSBORNE1_Y = [
  0.844,
  0.908,
  0.932,
  0.936,
  0.925,
  0.908,
  0.881,
  0.85,
  0.818,
  0.784,
  0.751,
  0.718,
  0.685,
  0.658,
  0.628,
  0.603,
  0.58,
  0.558,
  0.538,
  0.522,
  0.506,
  0.49,
  0.478,
  0.467,
  0.457,
  0.448,
  0.438,
  0.431,
  0.424,
  0.42,
  0.414,
  0.411,
  0.406,
];
const OSBORNE2_Y = [
  1.366,
  1.191,
  1.112,
  1.013,
  0.991,
  0.885,
  0.831,
  0.847,
  0.786,
  0.725,
  0.746,
  0.679,
  0.608,
  0.655,
  0.616,
  0.606,
  0.602,
  0.626,
  0.651,
  0.724,
  0.649,
  0.649,
  0.694,
  0.644,
  0.624,
  0.661,
  0.612,
  0.558,
  0.533,
  0.495,
  0.5,
  0.423,
  0.395,
  0.375,
  0.372,
  0.391,
  0.396,
  0.405,
  0.428,
  0.429,
  0.523,
  0.562,
  0.607,
  0.653,
  0.672,
  0.708,
  0.633,
  0.668,
  0.645,
  0.632,
  0.591,
  0.559,
  0.597,
  0.625,
  0.739,
  0.71,
  0.729,
  0.72,
  0.636,
  0.581,
  0.428,
  0.292,
  0.162,
  0.098,
  0.054,
];

let cached: MghProblem[] | null = null;

/** The problems, built on first use (their constant tensors live for the process). */
export function mghProblems(): MghProblem[] {
  cached ??= build();
  return cached;
}

function build(): MghProblem[] {
  const ps: MghProblem[] = [];
  const zero = vec([0]);
  const add = (p: MghProblem) => ps.push(p);

  add({
    id: 1,
    name: "Rosenbrock",
    n: 2,
    m: 2,
    x0: [-1.2, 1],
    fstar: [0],
    residuals: (x) => cat(at(x, 2).sub(at(x, 1).square()).mul(10), at(x, 1).neg().add(1)),
  });
  add({
    id: 2,
    name: "Freudenstein and Roth",
    n: 2,
    m: 2,
    x0: [0.5, -2],
    fstar: [0, 48.9842],
    residuals: (x) => {
      const [a, b] = [at(x, 1), at(x, 2)];
      return cat(
        a.add(b.neg().add(5).mul(b).sub(2).mul(b)).sub(13),
        a.add(b.add(1).mul(b).sub(14).mul(b)).sub(29),
      );
    },
  });
  add({
    id: 3,
    name: "Powell badly scaled",
    n: 2,
    m: 2,
    x0: [0, 1],
    fstar: [0],
    residuals: (x) => {
      const [a, b] = [at(x, 1), at(x, 2)];
      return cat(a.mul(b).mul(1e4).sub(1), exp(a.neg()).add(exp(b.neg())).sub(1.0001));
    },
  });
  add({
    id: 4,
    name: "Brown badly scaled",
    n: 2,
    m: 3,
    x0: [1, 1],
    fstar: [0],
    residuals: (x) => {
      const [a, b] = [at(x, 1), at(x, 2)];
      return cat(a.sub(1e6), b.sub(2e-6), a.mul(b).sub(2));
    },
  });
  {
    const y = vec([1.5, 2.25, 2.625]);
    add({
      id: 5,
      name: "Beale",
      n: 2,
      m: 3,
      x0: [1, 1],
      fstar: [0],
      // x₂ⁱ for i = 1, 2, 3 (x₂ may be negative: a product, not exp(i log x₂))
      residuals: (x) => {
        const b = at(x, 2);
        const pw = cat(b, b.square(), b.square().mul(b));
        return y.sub(at(x, 1).mul(pw.neg().add(1)));
      },
    });
  }
  {
    const i = vec(range(10));
    add({
      id: 6,
      name: "Jennrich and Sampson",
      n: 2,
      m: 10,
      x0: [0.3, 0.4],
      fstar: [124.362],
      residuals: (x) => i.mul(2).add(2).sub(exp(i.mul(at(x, 1))).add(exp(i.mul(at(x, 2))))),
    });
  }
  add({
    id: 7,
    name: "Helical valley",
    n: 3,
    m: 3,
    x0: [-1, 0, 0],
    fstar: [0],
    residuals: (x) => {
      const [a, b, c] = [at(x, 1), at(x, 2), at(x, 3)];
      // θ = atan(x₂/x₁)/2π, + ½ when x₁ < 0
      const theta = atan(b.div(a)).div(2 * Math.PI).add(where(a.less(0), 0.5, 0));
      return cat(c.sub(theta.mul(10)).mul(10), sqrt(a.square().add(b.square())).sub(1).mul(10), c);
    },
  });
  {
    const u = range(15), v = u.map((i) => 16 - i), w = u.map((i, k) => Math.min(i, v[k]));
    const [U, V, W, Y] = [vec(u), vec(v), vec(w), vec(BARD_Y)];
    add({
      id: 8,
      name: "Bard",
      n: 3,
      m: 15,
      x0: [1, 1, 1],
      fstar: [8.21487e-3, 17.4286],
      residuals: (x) => Y.sub(at(x, 1).add(U.div(V.mul(at(x, 2)).add(W.mul(at(x, 3)))))),
    });
  }
  {
    const t = vec(range(15).map((i) => (8 - i) / 2)), y = vec(GAUSS_Y);
    add({
      id: 9,
      name: "Gaussian",
      n: 3,
      m: 15,
      x0: [0.4, 1, 0],
      fstar: [1.12793e-8],
      residuals: (x) => at(x, 1).mul(exp(at(x, 2).mul(t.sub(at(x, 3)).square()).mul(-0.5))).sub(y),
    });
  }
  {
    const t = vec(range(16).map((i) => 45 + 5 * i)), y = vec(MEYER_Y);
    add({
      id: 10,
      name: "Meyer",
      n: 3,
      m: 16,
      x0: [0.02, 4000, 250],
      fstar: [87.9458],
      residuals: (x) => at(x, 1).mul(exp(at(x, 2).div(t.add(at(x, 3))))).sub(y),
    });
  }
  {
    const ti = range(99).map((i) => i / 100);
    const t = vec(ti), y = vec(ti.map((v) => 25 + Math.pow(-50 * Math.log(v), 2 / 3)));
    add({
      id: 11,
      name: "Gulf research and development",
      n: 3,
      m: 99,
      x0: [5, 2.5, 0.15],
      fstar: [0],
      // |yᵢ − x₂|^x₃ = exp(x₃ log |yᵢ − x₂|)
      residuals: (x) =>
        exp(exp(at(x, 3).mul(log(y.sub(at(x, 2)).abs()))).div(at(x, 1)).neg()).sub(t),
    });
  }
  {
    const ti = range(10).map((i) => 0.1 * i);
    const t = vec(ti), c = vec(ti.map((v) => Math.exp(-v) - Math.exp(-10 * v)));
    add({
      id: 12,
      name: "Box three-dimensional",
      n: 3,
      m: 10,
      x0: [0, 10, 20],
      fstar: [0],
      residuals: (x) =>
        exp(t.mul(at(x, 1)).neg()).sub(exp(t.mul(at(x, 2)).neg())).sub(c.mul(at(x, 3))),
    });
  }
  const powell = (x: Tensor, k: number) => {
    const [a, b, c, d] = [at(x, k + 1), at(x, k + 2), at(x, k + 3), at(x, k + 4)];
    return [
      a.add(b.mul(10)),
      c.sub(d).mul(Math.sqrt(5)),
      b.sub(c.mul(2)).square(),
      a.sub(d).square().mul(Math.sqrt(10)),
    ];
  };
  add({
    id: 13,
    name: "Powell singular",
    n: 4,
    m: 4,
    x0: [3, -1, 0, 1],
    fstar: [0],
    residuals: (x) => cat(...powell(x, 0)),
  });
  add({
    id: 14,
    name: "Wood",
    n: 4,
    m: 6,
    x0: [-3, -1, -3, -1],
    fstar: [0],
    residuals: (x) => {
      const [a, b, c, d] = [at(x, 1), at(x, 2), at(x, 3), at(x, 4)];
      return cat(
        b.sub(a.square()).mul(10),
        a.neg().add(1),
        d.sub(c.square()).mul(Math.sqrt(90)),
        c.neg().add(1),
        b.add(d).sub(2).mul(Math.sqrt(10)),
        b.sub(d).div(Math.sqrt(10)),
      );
    },
  });
  {
    const u = vec(KOWALIK_U), u2 = vec(KOWALIK_U.map((v) => v * v)), y = vec(KOWALIK_Y);
    add({
      id: 15,
      name: "Kowalik and Osborne",
      n: 4,
      m: 11,
      x0: [0.25, 0.39, 0.415, 0.39],
      fstar: [3.07505e-4, 1.02734e-3],
      residuals: (x) =>
        y.sub(
          at(x, 1).mul(u2.add(u.mul(at(x, 2)))).div(u2.add(u.mul(at(x, 3))).add(at(x, 4))),
        ),
    });
  }
  {
    const ti = range(20).map((i) => i / 5);
    const t = vec(ti), et = vec(ti.map(Math.exp)), st = vec(ti.map(Math.sin));
    const ct = vec(ti.map(Math.cos));
    add({
      id: 16,
      name: "Brown and Dennis",
      n: 4,
      m: 20,
      x0: [25, 5, -5, -1],
      fstar: [85822.2],
      residuals: (x) =>
        at(x, 1).add(t.mul(at(x, 2))).sub(et).square()
          .add(at(x, 3).add(st.mul(at(x, 4))).sub(ct).square()),
    });
  }
  {
    const t = vec(range(33, 0).map((i) => 10 * i)), y = vec(OSBORNE1_Y);
    add({
      id: 17,
      name: "Osborne 1",
      n: 5,
      m: 33,
      x0: [0.5, 1.5, -1, 0.01, 0.02],
      fstar: [5.46489e-5],
      residuals: (x) =>
        y.sub(
          at(x, 1).add(at(x, 2).mul(exp(t.mul(at(x, 4)).neg())))
            .add(at(x, 3).mul(exp(t.mul(at(x, 5)).neg()))),
        ),
    });
  }
  {
    const ti = range(13).map((i) => 0.1 * i);
    const t = vec(ti);
    const y = vec(ti.map((v) => Math.exp(-v) - 5 * Math.exp(-10 * v) + 3 * Math.exp(-4 * v)));
    add({
      id: 18,
      name: "Biggs EXP6",
      n: 6,
      m: 13,
      x0: [1, 2, 1, 1, 1, 1],
      fstar: [0, 5.65565e-3],
      residuals: (x) =>
        at(x, 3).mul(exp(t.mul(at(x, 1)).neg()))
          .sub(at(x, 4).mul(exp(t.mul(at(x, 2)).neg())))
          .add(at(x, 6).mul(exp(t.mul(at(x, 5)).neg())))
          .sub(y),
    });
  }
  {
    const t = vec(range(65, 0).map((i) => i / 10)), y = vec(OSBORNE2_Y);
    add({
      id: 19,
      name: "Osborne 2",
      n: 11,
      m: 65,
      x0: [1.3, 0.65, 0.65, 0.7, 0.6, 3, 5, 7, 2, 4.5, 5.5],
      fstar: [4.01377e-2],
      residuals: (x) => {
        const bump = (c: number, s: number, w: number) =>
          at(x, c).mul(exp(t.sub(at(x, s)).square().mul(at(x, w)).neg()));
        return y.sub(
          at(x, 1).mul(exp(t.mul(at(x, 5)).neg())).add(bump(2, 9, 6)).add(bump(3, 10, 7))
            .add(bump(4, 11, 8)),
        );
      },
    });
  }
  {
    const n = 9;
    const ti = range(29).map((i) => i / 29);
    // A[i][j] = (j − 1) t_i^{j−2} (j ≥ 2), B[i][j] = t_i^{j−1}
    const A = tensor(ti.map((t) => range(n).map((j) => (j >= 2 ? (j - 1) * t ** (j - 2) : 0))), o);
    const B = tensor(ti.map((t) => range(n).map((j) => t ** (j - 1))), o);
    add({
      id: 20,
      name: "Watson",
      n,
      m: 31,
      x0: new Array(n).fill(0),
      fstar: [1.39976e-6],
      residuals: (x) => {
        const s1 = reshape(matmul(A, reshape(x, [n, 1])), [29]);
        const s2 = reshape(matmul(B, reshape(x, [n, 1])), [29]);
        return cat(s1.sub(s2.square()).sub(1), at(x, 1), at(x, 2).sub(at(x, 1).square()).sub(1));
      },
    });
  }
  {
    const n = 10;
    add({
      id: 21,
      name: "Extended Rosenbrock",
      n,
      m: n,
      x0: range(n).map((i) => (i % 2 ? -1.2 : 1)),
      fstar: [0],
      residuals: (x) => {
        const p = reshape(x, [n / 2, 2]);
        const [odd, even] = [slice(p, [0, 0], [n / 2, 1]), slice(p, [0, 1], [n / 2, 2])];
        return cat(even.sub(odd.square()).mul(10), odd.neg().add(1));
      },
    });
  }
  {
    const n = 12;
    add({
      id: 22,
      name: "Extended Powell singular",
      n,
      m: n,
      x0: range(n).map((i) => [3, -1, 0, 1][(i - 1) % 4]),
      fstar: [0],
      residuals: (x) => cat(...range(n / 4, 0).flatMap((k) => powell(x, 4 * k))),
    });
  }
  {
    const n = 10;
    add({
      id: 23,
      name: "Penalty I",
      n,
      m: n + 1,
      x0: range(n),
      fstar: [7.08765e-5],
      residuals: (x) => cat(x.sub(1).mul(SQRT_A), sum(x.square()).sub(0.25)),
    });
  }
  {
    const n = 10;
    const yi = range(n - 1, 2).map((i) => Math.exp(i / 10) + Math.exp((i - 1) / 10));
    const y = vec(yi), w = vec(range(n).map((j) => n - j + 1));
    add({
      id: 24,
      name: "Penalty II",
      n,
      m: 2 * n,
      x0: new Array(n).fill(0.5),
      fstar: [2.9366e-4],
      residuals: (x) => {
        const e = exp(x.div(10));
        const [hi, lo] = [slice(e, [1], [n]), slice(e, [0], [n - 1])];
        return cat(
          at(x, 1).sub(0.2),
          hi.add(lo).sub(y).mul(SQRT_A),
          hi.sub(Math.exp(-0.1)).mul(SQRT_A),
          sum(w.mul(x.square())).sub(1),
        );
      },
    });
  }
  {
    const n = 10, j = vec(range(n));
    add({
      id: 25,
      name: "Variably dimensioned",
      n,
      m: n + 2,
      x0: range(n).map((i) => 1 - i / n),
      fstar: [0],
      residuals: (x) => {
        const s = sum(j.mul(x.sub(1)));
        return cat(x.sub(1), s, s.square());
      },
    });
  }
  {
    const n = 10, i = vec(range(n));
    add({
      id: 26,
      name: "Trigonometric",
      n,
      m: n,
      x0: new Array(n).fill(1 / n),
      fstar: [0, 2.79506e-5],
      residuals: (x) => sum(cos(x)).neg().add(n).add(i.mul(cos(x).neg().add(1))).sub(sin(x)),
    });
  }
  {
    const n = 10;
    add({
      id: 27,
      name: "Brown almost-linear",
      n,
      m: n,
      x0: new Array(n).fill(0.5),
      fstar: [0, 1],
      residuals: (x) => {
        let prod = at(x, 1);
        for (let k = 2; k <= n; k++) prod = prod.mul(at(x, k));
        return cat(slice(x, [0], [n - 1]).add(sum(x)).sub(n + 1), prod.sub(1));
      },
    });
  }
  {
    const n = 10, h = 1 / (n + 1), t = vec(range(n).map((i) => i * h));
    add({
      id: 28,
      name: "Discrete boundary value",
      n,
      m: n,
      x0: range(n).map((i) => i * h * (i * h - 1)),
      fstar: [0],
      residuals: (x) => {
        const prev = cat(zero, slice(x, [0], [n - 1])), next = cat(slice(x, [1], [n]), zero);
        return x.mul(2).sub(prev).sub(next).add(x.add(t).add(1).pow(3).mul(h * h / 2));
      },
    });
  }
  {
    const n = 10, h = 1 / (n + 1), ti = range(n).map((i) => i * h), t = vec(ti);
    // K[i][j] = (1 − t_i) t_j for j ≤ i, t_i (1 − t_j) for j > i
    const K = tensor(ti.map((a, i) => ti.map((b, j) => (j <= i ? (1 - a) * b : a * (1 - b)))), o);
    add({
      id: 29,
      name: "Discrete integral equation",
      n,
      m: n,
      x0: ti.map((v) => v * (v - 1)),
      fstar: [0],
      residuals: (x) =>
        x.add(reshape(matmul(K, reshape(x.add(t).add(1).pow(3), [n, 1])), [n]).mul(h / 2)),
    });
  }
  {
    const n = 10;
    add({
      id: 30,
      name: "Broyden tridiagonal",
      n,
      m: n,
      x0: new Array(n).fill(-1),
      fstar: [0],
      residuals: (x) => {
        const prev = cat(zero, slice(x, [0], [n - 1])), next = cat(slice(x, [1], [n]), zero);
        return x.mul(-2).add(3).mul(x).sub(prev).sub(next.mul(2)).add(1);
      },
    });
  }
  {
    const n = 10;
    // J_i = {j ≠ i : max(1, i − 5) ≤ j ≤ min(n, i + 1)}
    const B = tensor(
      range(n).map((i) => range(n).map((j) => (j !== i && j >= i - 5 && j <= i + 1 ? 1 : 0))),
      o,
    );
    add({
      id: 31,
      name: "Broyden banded",
      n,
      m: n,
      x0: new Array(n).fill(-1),
      fstar: [0],
      residuals: (x) =>
        x.mul(x.square().mul(5).add(2)).add(1)
          .sub(reshape(matmul(B, reshape(x.mul(x.add(1)), [n, 1])), [n])),
    });
  }
  {
    const n = 10, m = 20, ones = vec(new Array(m - n).fill(1));
    add({
      id: 32,
      name: "Linear function, full rank",
      n,
      m,
      x0: new Array(n).fill(1),
      fstar: [m - n],
      residuals: (x) => {
        const s = sum(x).mul(2 / m).add(1);
        return cat(x.sub(s), reshape(s, [1]).neg().mul(ones));
      },
    });
  }
  {
    const n = 10, m = 20, j = vec(range(n)), i = vec(range(m));
    add({
      id: 33,
      name: "Linear function, rank 1",
      n,
      m,
      x0: new Array(n).fill(1),
      fstar: [(m * (m - 1)) / (2 * (2 * m + 1))],
      residuals: (x) => i.mul(sum(j.mul(x))).sub(1),
    });
  }
  {
    const n = 10, m = 20;
    const j = vec(range(n).map((k) => (k >= 2 && k <= n - 1 ? k : 0)));
    const i = vec(range(m).map((k) => (k >= 2 && k <= m - 1 ? k - 1 : 0)));
    add({
      id: 34,
      name: "Linear function, rank 1 with zero columns and rows",
      n,
      m,
      x0: new Array(n).fill(1),
      fstar: [(m * m + 3 * m - 6) / (2 * (2 * m - 3))],
      residuals: (x) => i.mul(sum(j.mul(x))).sub(1),
    });
  }
  {
    const n = 8;
    const even = vec(range(n).map((i) => (i % 2 === 0 ? 1 / (i * i - 1) : 0)));
    add({
      id: 35,
      name: "Chebyquad",
      n,
      m: n,
      x0: range(n).map((j) => j / (n + 1)),
      fstar: [3.51687e-3],
      residuals: (x) => {
        // T_i(2x − 1) by the three-term recurrence, averaged over the x_j
        const z = x.mul(2).sub(1);
        const rows: Tensor[] = [];
        let [prev, cur] = [z.mul(0).add(1), z];
        for (let i = 1; i <= n; i++) {
          rows.push(reshape(sum(cur).div(n), [1]));
          [prev, cur] = [cur, z.mul(2).mul(cur).sub(prev)];
        }
        return cat(...rows).add(even);
      },
    });
  }
  return ps;
}

/** f = Σ rᵢ² of a problem. */
export function objective(p: MghProblem): (x: Tensor) => Tensor {
  return (x: Tensor) => sum(p.residuals(x).square());
}

/**
 * Whether f is a minimum the paper lists: within 10⁻⁴ relative (its values have 6 digits)
 * plus 10⁻⁷ absolute (a run stopped at ‖g‖ < 10⁻⁵ on a singular problem — Powell's —
 * sits above its f* = 0 by about that much).
 */
export function atPublishedMinimum(p: MghProblem, f: number): boolean {
  return p.fstar.some((s) => Math.abs(f - s) <= 1e-4 * Math.abs(s) + 1e-7);
}
