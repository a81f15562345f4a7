/**
 * Hock–Schittkowski test problems (Hock & Schittkowski, "Test Examples for Nonlinear
 * Programming Codes", Lecture Notes in Economics and Mathematical Systems 187, 1981) with
 * their published optima, confirmed by SciPy's SLSQP in `tests/hs_reference.py`. Each
 * problem is written once over a small arithmetic interface, so the same expressions run as
 * library tensors (what `minimize` solves) and as plain f64 JavaScript numbers (what the
 * independent KKT check differentiates by central differences, outside the library's
 * autodiff and kernels).
 */
import { concat, type Tensor } from "../mod.ts";

/** The arithmetic the problems use: what Tensor's methods and `Num` both provide. */
export interface Arith<T> {
  add(b: T | number): T;
  sub(b: T | number): T;
  mul(b: T | number): T;
  square(): T;
  log(): T;
  neg(): T;
}

/** A plain f64 number with Tensor's method names. */
export class Num implements Arith<Num> {
  constructor(readonly v: number) {}
  #of(b: Num | number): number {
    return typeof b === "number" ? b : b.v;
  }
  add(b: Num | number): Num {
    return new Num(this.v + this.#of(b));
  }
  sub(b: Num | number): Num {
    return new Num(this.v - this.#of(b));
  }
  mul(b: Num | number): Num {
    return new Num(this.v * this.#of(b));
  }
  square(): Num {
    return new Num(this.v * this.v);
  }
  log(): Num {
    return new Num(Math.log(this.v));
  }
  neg(): Num {
    return new Num(-this.v);
  }
}

type Fn = <T extends Arith<T>>(x: T[]) => T;
type Cons = <T extends Arith<T>>(x: T[]) => T[];

/** A problem: f, c_E = 0, c_I ≥ 0 and bounds, the start and the published optimum. */
export interface HsProblem {
  name: string;
  x0: number[];
  f: Fn;
  eq?: Cons;
  ineq?: Cons;
  lower?: number[];
  upper?: number[];
  xStar: number[];
  fStar: number;
}

const cube = <T extends Arith<T>>(a: T) => a.square().mul(a);

export const HS: HsProblem[] = [
  {
    name: "hs006",
    x0: [-1.2, 1],
    f: (x) => x[0].neg().add(1).square(),
    eq: (x) => [x[1].sub(x[0].square()).mul(10)],
    xStar: [1, 1],
    fStar: 0,
  },
  {
    name: "hs007",
    x0: [2, 2],
    f: (x) => x[0].square().add(1).log().sub(x[1]),
    eq: (x) => [x[0].square().add(1).square().add(x[1].square()).sub(4)],
    xStar: [0, Math.sqrt(3)],
    fStar: -Math.sqrt(3),
  },
  {
    name: "hs021",
    x0: [-1, -1],
    f: (x) => x[0].square().mul(0.01).add(x[1].square()).sub(100),
    ineq: (x) => [x[0].mul(10).sub(x[1]).sub(10)],
    lower: [2, -50],
    upper: [50, 50],
    xStar: [2, 0],
    fStar: -99.96,
  },
  {
    name: "hs035",
    x0: [0.5, 0.5, 0.5],
    f: (x) =>
      x[0].mul(-8).sub(x[1].mul(6)).sub(x[2].mul(4)).add(9)
        .add(x[0].square().mul(2)).add(x[1].square().mul(2)).add(x[2].square())
        .add(x[0].mul(x[1]).mul(2)).add(x[0].mul(x[2]).mul(2)),
    ineq: (x) => [x[0].neg().sub(x[1]).sub(x[2].mul(2)).add(3)],
    lower: [0, 0, 0],
    xStar: [4 / 3, 7 / 9, 4 / 9],
    fStar: 1 / 9,
  },
  {
    name: "hs039",
    x0: [2, 2, 2, 2],
    f: (x) => x[0].neg(),
    eq: (x) => [
      x[1].sub(cube(x[0])).sub(x[2].square()),
      x[0].square().sub(x[1]).sub(x[3].square()),
    ],
    xStar: [1, 1, 0, 0],
    fStar: -1,
  },
  {
    name: "hs043",
    x0: [0, 0, 0, 0],
    f: (x) =>
      x[0].square().add(x[1].square()).add(x[2].square().mul(2)).add(x[3].square())
        .sub(x[0].mul(5)).sub(x[1].mul(5)).sub(x[2].mul(21)).add(x[3].mul(7)),
    ineq: (x) => [
      x[0].square().add(x[1].square()).add(x[2].square()).add(x[3].square()).add(x[0])
        .sub(x[1]).add(x[2]).sub(x[3]).neg().add(8),
      x[0].square().add(x[1].square().mul(2)).add(x[2].square()).add(x[3].square().mul(2))
        .sub(x[0]).sub(x[3]).neg().add(10),
      x[0].square().mul(2).add(x[1].square()).add(x[2].square()).add(x[0].mul(2)).sub(x[1])
        .sub(x[3]).neg().add(5),
    ],
    xStar: [0, 1, 2, -1],
    fStar: -44,
  },
  {
    name: "hs071",
    x0: [1, 5, 5, 1],
    f: (x) => x[0].mul(x[3]).mul(x[0].add(x[1]).add(x[2])).add(x[2]),
    eq: (x) => [x[0].square().add(x[1].square()).add(x[2].square()).add(x[3].square()).sub(40)],
    ineq: (x) => [x[0].mul(x[1]).mul(x[2]).mul(x[3]).sub(25)],
    lower: [1, 1, 1, 1],
    upper: [5, 5, 5, 5],
    xStar: [1, 4.742999643, 3.821149978, 1.379408293],
    fStar: 17.0140173,
  },
  {
    name: "hs076",
    x0: [0.5, 0.5, 0.5, 0.5],
    f: (x) =>
      x[0].square().add(x[1].square().mul(0.5)).add(x[2].square()).add(x[3].square().mul(0.5))
        .sub(x[0].mul(x[2])).add(x[2].mul(x[3])).sub(x[0]).sub(x[1].mul(3)).add(x[2]).sub(x[3]),
    ineq: (x) => [
      x[0].neg().sub(x[1].mul(2)).sub(x[2]).sub(x[3]).add(5),
      x[0].mul(-3).sub(x[1]).sub(x[2].mul(2)).add(x[3]).add(4),
      x[1].add(x[2].mul(4)).sub(1.5),
    ],
    lower: [0, 0, 0, 0],
    xStar: [0.2727273, 2.090909, 0, 0.5454545],
    fStar: -4.681818181,
  },
  {
    name: "hs100",
    x0: [1, 2, 0, 4, 0, 1, 1],
    f: (x) =>
      x[0].sub(10).square().add(x[1].sub(12).square().mul(5)).add(x[2].square().square())
        .add(x[3].sub(11).square().mul(3)).add(cube(x[4]).square().mul(10))
        .add(x[5].square().mul(7)).add(x[6].square().square()).sub(x[5].mul(x[6]).mul(4))
        .sub(x[5].mul(10)).sub(x[6].mul(8)),
    ineq: (x) => [
      x[0].square().mul(2).add(x[1].square().square().mul(3)).add(x[2])
        .add(x[3].square().mul(4)).add(x[4].mul(5)).neg().add(127),
      x[0].mul(7).add(x[1].mul(3)).add(x[2].square().mul(10)).add(x[3]).sub(x[4]).neg()
        .add(282),
      x[0].mul(23).add(x[1].square()).add(x[5].square().mul(6)).sub(x[6].mul(8)).neg()
        .add(196),
      x[0].square().mul(-4).sub(x[1].square()).add(x[0].mul(x[1]).mul(3))
        .sub(x[2].square().mul(2)).sub(x[5].mul(5)).add(x[6].mul(11)),
    ],
    xStar: [2.330499, 1.951372, -0.4775414, 4.365726, -0.624487, 1.038131, 1.594227],
    fStar: 680.6300573,
  },
  {
    // 15 variables in 5 blocks of 3: ranges 0 ≤ x_{k+3} − x_k + 7 ≤ 13 (14 for each block's
    // middle component) between consecutive blocks, each block's sum at least its demand
    name: "hs118",
    x0: [20, 55, 15, ...Array(4).fill([20, 60, 20]).flat()],
    f: (x) => {
      const w = [[2.3, 1e-4], [1.7, 1e-4], [2.2, 1.5e-4]];
      return x.map((v, i) => v.mul(w[i % 3][0]).add(v.square().mul(w[i % 3][1])))
        .reduce((a, b) => a.add(b));
    },
    ineq: (x) => [
      ...Array.from({ length: 12 }, (_, k) => {
        const d = x[k + 3].sub(x[k]).add(7);
        return [d, d.neg().add(k % 3 === 1 ? 14 : 13)];
      }).flat(),
      ...[60, 50, 70, 85, 100].map((demand, k) =>
        x[3 * k].add(x[3 * k + 1]).add(x[3 * k + 2]).sub(demand)
      ),
    ],
    lower: [8, 43, 3, ...Array(12).fill(0)],
    upper: [21, 57, 16, ...Array(4).fill([90, 120, 60]).flat()],
    xStar: [8, 49, 3, 1, 56, 0, 1, 63, 6, 3, 70, 12, 5, 77, 18],
    fStar: 664.82045,
  },
];

/** The components of x as 0-d tensors. */
function parts(x: Tensor): Tensor[] {
  return Array.from({ length: x.size }, (_, i) => x.slice([i], [i + 1]).reshape([]));
}

/** The problem's functions on tensors, as `minimize` takes them. */
export function tensorFunctions(p: HsProblem): {
  f: (x: Tensor) => Tensor;
  eq?: (x: Tensor) => Tensor;
  ineq?: (x: Tensor) => Tensor;
} {
  const vec = (c: Cons) => (x: Tensor) => concat(c(parts(x)).map((t) => t.reshape([1])), 0);
  return {
    f: (x) => p.f(parts(x)),
    eq: p.eq ? vec(p.eq) : undefined,
    ineq: p.ineq ? vec(p.ineq) : undefined,
  };
}

/** f, c_E, c_I at a point in plain f64. */
export function evalPlain(
  p: HsProblem,
  x: readonly number[],
): { f: number; eq: number[]; ineq: number[] } {
  const v = x.map((e) => new Num(e));
  return {
    f: p.f(v).v,
    eq: p.eq ? p.eq(v).map((c) => c.v) : [],
    ineq: p.ineq ? p.ineq(v).map((c) => c.v) : [],
  };
}

/** Central differences (h = 1e-6) of f and every constraint: [∇f, ∇c_E…, ∇c_I…]. */
export function gradientsPlain(p: HsProblem, x: readonly number[]): {
  f: number[];
  eq: number[][];
  ineq: number[][];
} {
  const h = 1e-6, n = x.length;
  const base = evalPlain(p, x);
  const g = {
    f: new Array(n).fill(0),
    eq: base.eq.map(() => new Array(n).fill(0)),
    ineq: base.ineq.map(() => new Array(n).fill(0)),
  };
  for (let j = 0; j < n; j++) {
    const xp = [...x], xm = [...x];
    xp[j] += h;
    xm[j] -= h;
    const a = evalPlain(p, xp), b = evalPlain(p, xm);
    g.f[j] = (a.f - b.f) / (2 * h);
    a.eq.forEach((_, k) => (g.eq[k][j] = (a.eq[k] - b.eq[k]) / (2 * h)));
    a.ineq.forEach((_, k) => (g.ineq[k][j] = (a.ineq[k] - b.ineq[k]) / (2 * h)));
  }
  return g;
}
