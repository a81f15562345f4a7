"""SciPy's counts on the 35 Moré–Garbow–Hillstrom problems (ACM TOMS 1981), for bench/mgh.ts.

The problems are written again here, from the paper's formulas, in PyTorch (f64), which
also gives SciPy exact derivatives: jac by reverse mode, hess and hessp by double
backward. Sizes and starting points as tests/mgh_problems.ts (see its header). Every
method runs twice: with SciPy's default options, and "tight" (gtol 1e-8, Newton-CG xtol
1e-12, L-BFGS-B ftol 1e-15; see TIGHT). A run is "solved" when SciPy reports success AND
f is within 1e-4 relative + 1e-7 absolute of a minimum value the paper lists (SciPy's
default tolerances report success far from the minimum on several problems, e.g. Newton-CG
on Meyer at f = 3.2e5).

Run with the system Python (SciPy 1.10, PyTorch 1.13):

    /usr/bin/python3 bench/mgh_scipy.py > bench/mgh_scipy.json
"""
import json
import math
import sys
import warnings

import numpy as np
import scipy
import torch
from scipy.optimize import minimize

torch.set_default_dtype(torch.float64)
T = torch.tensor


def rng(k, start=1):
    return list(range(start, start + k))


def problems():
    ps = []

    def add(pid, name, n, m, x0, fstar, r):
        ps.append(dict(id=pid, name=name, n=n, m=m, x0=[float(v) for v in x0], fstar=fstar, r=r))

    add(1, "Rosenbrock", 2, 2, [-1.2, 1], [0],
        lambda x: torch.stack([10 * (x[1] - x[0] ** 2), 1 - x[0]]))
    add(2, "Freudenstein and Roth", 2, 2, [0.5, -2], [0, 48.9842],
        lambda x: torch.stack([-13 + x[0] + ((5 - x[1]) * x[1] - 2) * x[1],
                               -29 + x[0] + ((x[1] + 1) * x[1] - 14) * x[1]]))
    add(3, "Powell badly scaled", 2, 2, [0, 1], [0],
        lambda x: torch.stack([1e4 * x[0] * x[1] - 1,
                               torch.exp(-x[0]) + torch.exp(-x[1]) - 1.0001]))
    add(4, "Brown badly scaled", 2, 3, [1, 1], [0],
        lambda x: torch.stack([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2]))
    by = T([1.5, 2.25, 2.625])
    add(5, "Beale", 2, 3, [1, 1], [0],
        lambda x: by - x[0] * (1 - torch.stack([x[1], x[1] ** 2, x[1] ** 3])))
    ji = T(rng(10), dtype=torch.float64)
    add(6, "Jennrich and Sampson", 2, 10, [0.3, 0.4], [124.362],
        lambda x: 2 + 2 * ji - (torch.exp(ji * x[0]) + torch.exp(ji * x[1])))

    def helical(x):
        th = torch.atan(x[1] / x[0]) / (2 * math.pi) + (0.5 if x[0] < 0 else 0.0)
        return torch.stack([10 * (x[2] - 10 * th), 10 * (torch.sqrt(x[0] ** 2 + x[1] ** 2) - 1),
                            x[2]])
    add(7, "Helical valley", 3, 3, [-1, 0, 0], [0], helical)

    u = T(rng(15), dtype=torch.float64)
    v = 16 - u
    w = torch.minimum(u, v)
    bard_y = T([.14, .18, .22, .25, .29, .32, .35, .39, .37, .58, .73, .96, 1.34, 2.10, 4.39])
    add(8, "Bard", 3, 15, [1, 1, 1], [8.21487e-3, 17.4286],
        lambda x: bard_y - (x[0] + u / (v * x[1] + w * x[2])))
    gt = (8 - T(rng(15), dtype=torch.float64)) / 2
    gy = T([.0009, .0044, .0175, .0540, .1295, .2420, .3521, .3989, .3521, .2420, .1295, .0540,
            .0175, .0044, .0009])
    add(9, "Gaussian", 3, 15, [0.4, 1, 0], [1.12793e-8],
        lambda x: x[0] * torch.exp(-x[1] * (gt - x[2]) ** 2 / 2) - gy)
    mt = 45 + 5 * T(rng(16), dtype=torch.float64)
    my = T([34780, 28610, 23650, 19630, 16370, 13720, 11540, 9744, 8261, 7030, 6005, 5147, 4427,
            3820, 3307, 2872], dtype=torch.float64)
    add(10, "Meyer", 3, 16, [0.02, 4000, 250], [87.9458],
        lambda x: x[0] * torch.exp(x[1] / (mt + x[2])) - my)
    qt = T(rng(99), dtype=torch.float64) / 100
    qy = 25 + (-50 * torch.log(qt)) ** (2 / 3)
    add(11, "Gulf research and development", 3, 99, [5, 2.5, 0.15], [0],
        lambda x: torch.exp(-torch.exp(x[2] * torch.log(torch.abs(qy - x[1]))) / x[0]) - qt)
    bt = 0.1 * T(rng(10), dtype=torch.float64)
    add(12, "Box three-dimensional", 3, 10, [0, 10, 20], [0],
        lambda x: torch.exp(-bt * x[0]) - torch.exp(-bt * x[1])
        - x[2] * (torch.exp(-bt) - torch.exp(-10 * bt)))

    def powell(x, k):
        a, b, c, d = x[k], x[k + 1], x[k + 2], x[k + 3]
        return [a + 10 * b, math.sqrt(5) * (c - d), (b - 2 * c) ** 2, math.sqrt(10) * (a - d) ** 2]
    add(13, "Powell singular", 4, 4, [3, -1, 0, 1], [0], lambda x: torch.stack(powell(x, 0)))
    add(14, "Wood", 4, 6, [-3, -1, -3, -1], [0],
        lambda x: torch.stack([10 * (x[1] - x[0] ** 2), 1 - x[0], math.sqrt(90) * (x[3] - x[2] ** 2),
                               1 - x[2], math.sqrt(10) * (x[1] + x[3] - 2),
                               (x[1] - x[3]) / math.sqrt(10)]))
    ku = T([4, 2, 1, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625])
    ky = T([.1957, .1947, .1735, .1600, .0844, .0627, .0456, .0342, .0323, .0235, .0246])
    add(15, "Kowalik and Osborne", 4, 11, [0.25, 0.39, 0.415, 0.39], [3.07505e-4, 1.02734e-3],
        lambda x: ky - x[0] * (ku ** 2 + ku * x[1]) / (ku ** 2 + ku * x[2] + x[3]))
    dt = T(rng(20), dtype=torch.float64) / 5
    add(16, "Brown and Dennis", 4, 20, [25, 5, -5, -1], [85822.2],
        lambda x: (x[0] + dt * x[1] - torch.exp(dt)) ** 2
        + (x[2] + x[3] * torch.sin(dt) - torch.cos(dt)) ** 2)
    o1t = 10 * T(rng(33, 0), dtype=torch.float64)
    o1y = T([0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751, 0.718,
             0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490, 0.478, 0.467,
             0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411, 0.406])
    add(17, "Osborne 1", 5, 33, [0.5, 1.5, -1, 0.01, 0.02], [5.46489e-5],
        lambda x: o1y - (x[0] + x[1] * torch.exp(-o1t * x[3]) + x[2] * torch.exp(-o1t * x[4])))
    et = 0.1 * T(rng(13), dtype=torch.float64)
    ey = torch.exp(-et) - 5 * torch.exp(-10 * et) + 3 * torch.exp(-4 * et)
    add(18, "Biggs EXP6", 6, 13, [1, 2, 1, 1, 1, 1], [0, 5.65565e-3],
        lambda x: x[2] * torch.exp(-et * x[0]) - x[3] * torch.exp(-et * x[1])
        + x[5] * torch.exp(-et * x[4]) - ey)
    o2t = T(rng(65, 0), dtype=torch.float64) / 10
    o2y = T([1.366, 1.191, 1.112, 1.013, .991, .885, .831, .847, .786, .725, .746, .679, .608, .655,
             .616, .606, .602, .626, .651, .724, .649, .649, .694, .644, .624, .661, .612, .558,
             .533, .495, .500, .423, .395, .375, .372, .391, .396, .405, .428, .429, .523, .562,
             .607, .653, .672, .708, .633, .668, .645, .632, .591, .559, .597, .625, .739, .710,
             .729, .720, .636, .581, .428, .292, .162, .098, .054])
    add(19, "Osborne 2", 11, 65, [1.3, 0.65, 0.65, 0.7, 0.6, 3, 5, 7, 2, 4.5, 5.5], [4.01377e-2],
        lambda x: o2y - (x[0] * torch.exp(-o2t * x[4])
                         + x[1] * torch.exp(-(o2t - x[8]) ** 2 * x[5])
                         + x[2] * torch.exp(-(o2t - x[9]) ** 2 * x[6])
                         + x[3] * torch.exp(-(o2t - x[10]) ** 2 * x[7])))

    def watson(x, n=9):
        t = T(rng(29), dtype=torch.float64) / 29
        s1 = sum((j - 1) * x[j - 1] * t ** (j - 2) for j in range(2, n + 1))
        s2 = sum(x[j - 1] * t ** (j - 1) for j in range(1, n + 1))
        return torch.cat([s1 - s2 ** 2 - 1, torch.stack([x[0], x[1] - x[0] ** 2 - 1])])
    add(20, "Watson", 9, 31, [0] * 9, [1.39976e-6], watson)
    add(21, "Extended Rosenbrock", 10, 10, [-1.2 if i % 2 else 1 for i in rng(10)], [0],
        lambda x: torch.cat([10 * (x[1::2] - x[0::2] ** 2), 1 - x[0::2]]))
    add(22, "Extended Powell singular", 12, 12, [[3, -1, 0, 1][(i - 1) % 4] for i in rng(12)], [0],
        lambda x: torch.stack([r for k in range(3) for r in powell(x, 4 * k)]))
    sa = math.sqrt(1e-5)
    add(23, "Penalty I", 10, 11, rng(10), [7.08765e-5],
        lambda x: torch.cat([sa * (x - 1), (torch.sum(x ** 2) - 0.25).reshape(1)]))
    p2i = T(rng(9, 2), dtype=torch.float64)
    p2y = torch.exp(p2i / 10) + torch.exp((p2i - 1) / 10)
    p2w = 10 - T(rng(10), dtype=torch.float64) + 1

    def penalty2(x):
        e = torch.exp(x / 10)
        return torch.cat([(x[0] - 0.2).reshape(1), sa * (e[1:] + e[:-1] - p2y),
                          sa * (e[1:] - math.exp(-0.1)), (torch.sum(p2w * x ** 2) - 1).reshape(1)])
    add(24, "Penalty II", 10, 20, [0.5] * 10, [2.93660e-4], penalty2)
    vj = T(rng(10), dtype=torch.float64)

    def vardim(x):
        s = torch.sum(vj * (x - 1))
        return torch.cat([x - 1, s.reshape(1), (s ** 2).reshape(1)])
    add(25, "Variably dimensioned", 10, 12, [1 - i / 10 for i in rng(10)], [0], vardim)
    ti = T(rng(10), dtype=torch.float64)
    add(26, "Trigonometric", 10, 10, [0.1] * 10, [0, 2.79506e-5],
        lambda x: 10 - torch.sum(torch.cos(x)) + ti * (1 - torch.cos(x)) - torch.sin(x))
    add(27, "Brown almost-linear", 10, 10, [0.5] * 10, [0, 1],
        lambda x: torch.cat([x[:-1] + torch.sum(x) - 11, (torch.prod(x) - 1).reshape(1)]))
    h = 1 / 11
    bvt = T(rng(10), dtype=torch.float64) * h

    def dbv(x):
        z = torch.zeros(1)
        prev, nxt = torch.cat([z, x[:-1]]), torch.cat([x[1:], z])
        return 2 * x - prev - nxt + h * h * (x + bvt + 1) ** 3 / 2
    add(28, "Discrete boundary value", 10, 10, [i * h * (i * h - 1) for i in rng(10)], [0], dbv)
    K = T([[(1 - a) * b if j <= i else a * (1 - b) for j, b in enumerate(bvt.tolist())]
           for i, a in enumerate(bvt.tolist())])
    add(29, "Discrete integral equation", 10, 10, [i * h * (i * h - 1) for i in rng(10)], [0],
        lambda x: x + h / 2 * (K @ (x + bvt + 1) ** 3))

    def btri(x):
        z = torch.zeros(1)
        prev, nxt = torch.cat([z, x[:-1]]), torch.cat([x[1:], z])
        return (3 - 2 * x) * x - prev - 2 * nxt + 1
    add(30, "Broyden tridiagonal", 10, 10, [-1] * 10, [0], btri)
    B = T([[1.0 if (j != i and i - 5 <= j <= i + 1) else 0.0 for j in rng(10)] for i in rng(10)])
    add(31, "Broyden banded", 10, 10, [-1] * 10, [0],
        lambda x: x * (2 + 5 * x ** 2) + 1 - B @ (x * (1 + x)))
    n, m = 10, 20
    add(32, "Linear function, full rank", n, m, [1] * n, [m - n],
        lambda x: torch.cat([x - 2 / m * torch.sum(x) - 1,
                             (-2 / m * torch.sum(x) - 1).repeat(m - n)]))
    lj, li = T(rng(n), dtype=torch.float64), T(rng(m), dtype=torch.float64)
    add(33, "Linear function, rank 1", n, m, [1] * n, [m * (m - 1) / (2 * (2 * m + 1))],
        lambda x: li * torch.sum(lj * x) - 1)
    zj = T([j if 2 <= j <= n - 1 else 0 for j in rng(n)], dtype=torch.float64)
    zi = T([i - 1 if 2 <= i <= m - 1 else 0 for i in rng(m)], dtype=torch.float64)
    add(34, "Linear function, rank 1 with zero columns and rows", n, m, [1] * n,
        [(m * m + 3 * m - 6) / (2 * (2 * m - 3))], lambda x: zi * torch.sum(zj * x) - 1)

    def chebyquad(x, n=8):
        z = 2 * x - 1
        rows, prev, cur = [], torch.ones_like(z), z
        for i in range(1, n + 1):
            rows.append(torch.mean(cur) + (1 / (i * i - 1) if i % 2 == 0 else 0))
            prev, cur = cur, 2 * z * cur - prev
        return torch.stack(rows)
    add(35, "Chebyquad", 8, 8, [j / 9 for j in rng(8)], [3.51687e-3], chebyquad)
    return ps


def derivatives(r):
    def f(x):
        return float(torch.sum(r(T(x)) ** 2))

    def jac(x):
        xt = T(x).requires_grad_(True)
        (g,) = torch.autograd.grad(torch.sum(r(xt) ** 2), xt)
        return g.numpy()

    def hess(x):
        return torch.autograd.functional.hessian(lambda y: torch.sum(r(y) ** 2), T(x)).numpy()

    def hessp(x, p):
        xt = T(x).requires_grad_(True)
        (g,) = torch.autograd.grad(torch.sum(r(xt) ** 2), xt, create_graph=True)
        (hv,) = torch.autograd.grad(g, xt, T(p))
        return hv.numpy()
    return f, jac, hess, hessp


METHODS = ("Newton-CG", "trust-ncg", "trust-krylov", "trust-exact", "BFGS", "L-BFGS-B")
# "tight": the tolerances of a careful user (gradient norm 1e-8 where the method has gtol)
TIGHT = {
    "Newton-CG": {"xtol": 1e-12},
    "trust-ncg": {"gtol": 1e-8},
    "trust-krylov": {"gtol": 1e-8},
    "trust-exact": {"gtol": 1e-8},
    "BFGS": {"gtol": 1e-8},
    "L-BFGS-B": {"gtol": 1e-8, "ftol": 1e-15},
}


def at_published_minimum(p, f):
    return any(abs(f - s) <= 1e-4 * abs(s) + 1e-7 for s in p["fstar"])


def main():
    warnings.simplefilter("ignore")
    out = {"scipy": scipy.__version__, "torch": torch.__version__, "problems": []}
    for p in problems():
        f, jac, hess, hessp = derivatives(p["r"])
        x0 = np.array(p["x0"])
        entry = {k: p[k] for k in ("id", "name", "n", "m", "x0", "fstar")}
        entry["f0"] = f(x0)
        entry["g0"] = jac(x0).tolist()
        runs = {}
        for method, tight in [(m, t) for t in (False, True) for m in METHODS]:
            kw = {"jac": jac}
            if method == "trust-exact":
                kw["hess"] = hess
            elif method in ("Newton-CG", "trust-ncg", "trust-krylov"):
                kw["hessp"] = hessp
            if tight:
                kw["options"] = TIGHT[method]
            try:
                res = minimize(f, x0, method=method, **kw)
                fun = float(res.fun)
                gn = float(np.linalg.norm(jac(res.x)))
                runs[method + (" tight" if tight else "")] = dict(
                    success=bool(res.success), fun=fun, gnorm=gn, nit=int(res.get("nit", -1)),
                    nfev=int(res.get("nfev", -1)), njev=int(res.get("njev", -1)),
                    nhev=int(res.get("nhev", -1)), message=str(res.message),
                    solved=bool(res.success) and at_published_minimum(p, fun),
                )
            except Exception as e:  # a method that raises counts as not solved
                runs[method + (" tight" if tight else "")] = dict(
                    success=False, solved=False, message=f"raised {e!r}")
        entry["runs"] = runs
        out["problems"].append(entry)
        print(f"{p['id']:2d} {p['name']}: " + ", ".join(
            f"{k} {'ok' if v['solved'] else '--'}" for k, v in runs.items()), file=sys.stderr)
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
