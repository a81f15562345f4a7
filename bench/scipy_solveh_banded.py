"""Times scipy.linalg.solveh_banded for bench/banded_solve_scipy.ts, as a child process.

Started with n; builds, per bandwidth b, a random diagonally dominant SPD band in upper
storage (off-diagonals uniform in [-0.5, 0.5], diagonal 1 + b + uniform[0, 1]) and one
right-hand side. Reads lines "b reps check_finite" on stdin and answers each with a JSON
line: the time of every call in ms. The call is the plain one a user writes,
`x = solveh_banded(ab, rhs)` (SciPy copies ab; its result is a fresh array);
check_finite = 0 skips SciPy's scan of the inputs for NaN / Inf.
"""
import json
import sys
import time

import numpy as np
from scipy.linalg import solveh_banded

n = int(sys.argv[1])
rng = np.random.default_rng(1)
bands = {}


def band(b):
    if b not in bands:
        ab = rng.uniform(-0.5, 0.5, (b + 1, n))
        ab[b] = 1 + b + rng.uniform(0, 1, n)
        bands[b] = (ab, np.ones(n))
    return bands[b]


print("ready", flush=True)
for line in sys.stdin:
    b, reps, finite = line.split()
    ab, rhs = band(int(b))
    times = []
    for _ in range(int(reps)):
        t0 = time.perf_counter()
        x = solveh_banded(ab, rhs, check_finite=finite == "1")
        times.append((time.perf_counter() - t0) * 1e3)
        del x
    print(json.dumps(times), flush=True)
