"""SciPy on the discrete boundary value problem (MGH #28) at n = 1000, for bench/cg_bookkeeping.ts.

The residuals r_i = 2x_i - x_{i-1} - x_{i+1} + h^2 (x_i + t_i + 1)^3 / 2 (x_0 = x_{n+1} = 0),
f = sum r_i^2, with exact derivatives in NumPy: g = 2 J^T r, and the Hessian-vector product
H p = 2 (J^T J p + r * 3 h^2 (x + t + 1) * p) (J tridiagonal). Prints one JSON line per run:
method, options, nit, nfev, nhev, final |g|, process CPU seconds. Run with the system Python:

    /usr/bin/python3 bench/cg_bookkeeping_scipy.py
"""
import json
import time

import numpy as np
import scipy
from scipy.optimize import minimize

n = 1000
h = 1.0 / (n + 1)
t = np.arange(1, n + 1) * h
x0 = t * (t - 1)


def resid(x):
    r = 2 * x + h * h / 2 * (x + t + 1) ** 3
    r[1:] -= x[:-1]
    r[:-1] -= x[1:]
    return r


def jmul(x, p):  # J p
    out = (2 + 1.5 * h * h * (x + t + 1) ** 2) * p
    out[1:] -= p[:-1]
    out[:-1] -= p[1:]
    return out


def jtmul(x, q):  # J^T q (J's off-diagonals are symmetric)
    return jmul(x, q)


def f(x):
    r = resid(x)
    return float(r @ r)


def jac(x):
    return 2 * jtmul(x, resid(x))


def hessp(x, p):
    return 2 * (jtmul(x, jmul(x, p)) + resid(x) * 3 * h * h * (x + t + 1) * p)


RUNS = [
    ("Newton-CG", {}),
    ("Newton-CG", {"xtol": 1e-12}),
    ("trust-ncg", {"gtol": 1e-10}),
]
for method, opts in RUNS:
    c0 = time.process_time()
    r = minimize(f, x0, jac=jac, hessp=hessp, method=method, options={"maxiter": 1000, **opts})
    cpu = time.process_time() - c0
    print(json.dumps({"scipy": scipy.__version__, "method": method, "options": opts,
                      "nit": int(r.nit), "nfev": int(r.nfev), "nhev": int(getattr(r, "nhev", 0)),
                      "gnorm": float(np.linalg.norm(jac(r.x))), "fun": float(r.fun),
                      "success": bool(r.success), "cpu_s": cpu}))
