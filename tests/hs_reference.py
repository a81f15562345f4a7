"""Hock-Schittkowski reference optima for tests/ipm_test.ts, confirmed with SciPy.

The published optima (Hock & Schittkowski, "Test Examples for Nonlinear Programming
Codes", 1981) are the references the tests compare with; this script re-solves each
problem with SciPy's SLSQP from the same start and prints x*, f* and the largest
constraint violation, so the pasted values can be checked independently:

    /usr/bin/python3 tests/hs_reference.py
"""
import numpy as np
from scipy.optimize import minimize

PROBLEMS = {
    "hs006": dict(
        f=lambda x: (1 - x[0]) ** 2,
        eq=lambda x: [10 * (x[1] - x[0] ** 2)],
        x0=[-1.2, 1], published=([1, 1], 0.0)),
    "hs007": dict(
        f=lambda x: np.log(1 + x[0] ** 2) - x[1],
        eq=lambda x: [(1 + x[0] ** 2) ** 2 + x[1] ** 2 - 4],
        x0=[2, 2], published=([0, np.sqrt(3)], -np.sqrt(3))),
    "hs021": dict(
        f=lambda x: 0.01 * x[0] ** 2 + x[1] ** 2 - 100,
        ineq=lambda x: [10 * x[0] - x[1] - 10],
        bounds=[(2, 50), (-50, 50)],
        x0=[-1, -1], published=([2, 0], -99.96)),
    "hs035": dict(
        f=lambda x: 9 - 8 * x[0] - 6 * x[1] - 4 * x[2] + 2 * x[0] ** 2 + 2 * x[1] ** 2
        + x[2] ** 2 + 2 * x[0] * x[1] + 2 * x[0] * x[2],
        ineq=lambda x: [3 - x[0] - x[1] - 2 * x[2]],
        bounds=[(0, None)] * 3,
        x0=[0.5, 0.5, 0.5], published=([4 / 3, 7 / 9, 4 / 9], 1 / 9)),
    "hs039": dict(
        f=lambda x: -x[0],
        eq=lambda x: [x[1] - x[0] ** 3 - x[2] ** 2, x[0] ** 2 - x[1] - x[3] ** 2],
        x0=[2, 2, 2, 2], published=([1, 1, 0, 0], -1.0)),
    "hs043": dict(
        f=lambda x: x[0] ** 2 + x[1] ** 2 + 2 * x[2] ** 2 + x[3] ** 2 - 5 * x[0] - 5 * x[1]
        - 21 * x[2] + 7 * x[3],
        ineq=lambda x: [
            8 - x[0] ** 2 - x[1] ** 2 - x[2] ** 2 - x[3] ** 2 - x[0] + x[1] - x[2] + x[3],
            10 - x[0] ** 2 - 2 * x[1] ** 2 - x[2] ** 2 - 2 * x[3] ** 2 + x[0] + x[3],
            5 - 2 * x[0] ** 2 - x[1] ** 2 - x[2] ** 2 - 2 * x[0] + x[1] + x[3]],
        x0=[0, 0, 0, 0], published=([0, 1, 2, -1], -44.0)),
    "hs071": dict(
        f=lambda x: x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2],
        eq=lambda x: [x[0] ** 2 + x[1] ** 2 + x[2] ** 2 + x[3] ** 2 - 40],
        ineq=lambda x: [x[0] * x[1] * x[2] * x[3] - 25],
        bounds=[(1, 5)] * 4,
        x0=[1, 5, 5, 1], published=([1, 4.742999643, 3.821149978, 1.379408293], 17.0140173)),
    "hs076": dict(
        f=lambda x: x[0] ** 2 + 0.5 * x[1] ** 2 + x[2] ** 2 + 0.5 * x[3] ** 2 - x[0] * x[2]
        + x[2] * x[3] - x[0] - 3 * x[1] + x[2] - x[3],
        ineq=lambda x: [5 - x[0] - 2 * x[1] - x[2] - x[3], 4 - 3 * x[0] - x[1] - 2 * x[2] + x[3],
                        x[1] + 4 * x[2] - 1.5],
        bounds=[(0, None)] * 4,
        x0=[0.5, 0.5, 0.5, 0.5],
        published=([0.2727273, 2.090909, 0.0, 0.5454545], -4.681818181)),
    "hs100": dict(
        f=lambda x: (x[0] - 10) ** 2 + 5 * (x[1] - 12) ** 2 + x[2] ** 4 + 3 * (x[3] - 11) ** 2
        + 10 * x[4] ** 6 + 7 * x[5] ** 2 + x[6] ** 4 - 4 * x[5] * x[6] - 10 * x[5] - 8 * x[6],
        ineq=lambda x: [
            127 - 2 * x[0] ** 2 - 3 * x[1] ** 4 - x[2] - 4 * x[3] ** 2 - 5 * x[4],
            282 - 7 * x[0] - 3 * x[1] - 10 * x[2] ** 2 - x[3] + x[4],
            196 - 23 * x[0] - x[1] ** 2 - 6 * x[5] ** 2 + 8 * x[6],
            -4 * x[0] ** 2 - x[1] ** 2 + 3 * x[0] * x[1] - 2 * x[2] ** 2 - 5 * x[5] + 11 * x[6]],
        x0=[1, 2, 0, 4, 0, 1, 1],
        published=([2.330499, 1.951372, -0.4775414, 4.365726, -0.6244870, 1.038131, 1.594227],
                   680.6300573)),
    # 15 variables in 5 blocks of 3; ranges 0 ≤ x_{k+3} − x_k + 7 ≤ 13 (14 for the middle
    # component) between blocks, each block's sum at least its demand, and bounds
    "hs118": dict(
        f=lambda x: sum(2.3 * x[3 * k] + 1e-4 * x[3 * k] ** 2 + 1.7 * x[3 * k + 1]
                        + 1e-4 * x[3 * k + 1] ** 2 + 2.2 * x[3 * k + 2]
                        + 1.5e-4 * x[3 * k + 2] ** 2 for k in range(5)),
        ineq=lambda x: [g for k in range(12) for g in
                        (x[k + 3] - x[k] + 7, (14 if k % 3 == 1 else 13) - (x[k + 3] - x[k] + 7))]
        + [x[3 * k] + x[3 * k + 1] + x[3 * k + 2] - d for k, d in enumerate([60, 50, 70, 85, 100])],
        bounds=[(8, 21), (43, 57), (3, 16)] + [(0, 90), (0, 120), (0, 60)] * 4,
        x0=[20, 55, 15] + [20, 60, 20] * 4,
        published=([8, 49, 3, 1, 56, 0, 1, 63, 6, 3, 70, 12, 5, 77, 18], 664.8204500)),
}

for name, p in PROBLEMS.items():
    cons = []
    if "eq" in p:
        cons.append({"type": "eq", "fun": p["eq"]})
    if "ineq" in p:
        cons.append({"type": "ineq", "fun": p["ineq"]})
    r = minimize(p["f"], np.array(p["x0"], float), method="SLSQP", constraints=cons,
                 bounds=p.get("bounds"), options={"ftol": 1e-14, "maxiter": 500})
    viol = 0.0
    if "eq" in p:
        viol = max(viol, np.max(np.abs(p["eq"](r.x))))
    if "ineq" in p:
        viol = max(viol, max(0.0, -np.min(p["ineq"](r.x))))
    xs, fs = p["published"]
    print(f"{name}: scipy x* = {np.array2string(r.x, precision=9)} f* = {r.fun:.10f} "
          f"violation {viol:.1e} | published f* = {fs:.10f}, |x - x_pub| = "
          f"{np.max(np.abs(r.x - np.array(xs))):.1e}")
