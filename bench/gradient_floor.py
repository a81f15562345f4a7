"""The gradient's rounding floor of the penalty trajectory (issue 13, IPOPT weights).

At the point a solver returns (x saved as raw little-endian f64, 2N numbers, interleaved
x_0, y_0, x_1, …) this evaluates the objective's gradient of
`examples/trajectory_problem.ts` (`penalty`, weighting "ipopt": W_acc = 40N, W_vel = 1,
W_obs = 400, W_end = 1000, κ = 60) three ways, independently of the library:

- exactly, to 50 digits (mpmath), on the f64 numbers of x and of the constants (the
  function the f64 program evaluates, without its rounding);
- in f64 (numpy, the same formulas: the size of f64's evaluation error, whatever the order
  of the sums);
- the library's own f64 gradient, when its file is given (`--g`).

Then it refines x to the exact minimiser x* nearby (Newton steps with the exact gradient
and the f64 banded Hessian, assembled here from closed forms; x* kept to 50 digits) and
evaluates the gradient at x* rounded to f64, the representable point nearest the minimiser:
the f64-computed ‖∇f‖ there is what an f64 method can expect at best (the rounding floor),
and the exact ‖∇f‖ there is what the rounding of x alone leaves; a few other f64 points
next to x* (each entry rounded up or down at random) show the spread.

    /usr/bin/python3 bench/gradient_floor.py --N 16384 --x /tmp/x.bin [--g /tmp/g.bin]
        [--neighbours 3]
"""
import argparse

import mpmath
import numpy as np
from scipy.linalg import solveh_banded

mpmath.mp.dps = 50

START = (0.05, 0.5)
GOAL = (0.95, 0.5)
OBSTACLES = [((0.32, 0.55), 0.13), ((0.58, 0.38), 0.11), ((0.8, 0.6), 0.09)]
MARGIN = 0.02
KAPPA = 60.0
EPS_DIST = 1e-9


def weights(n):
    return 40.0 * n, 1.0, 400.0, 1000.0


def grad_exact(x, n):
    """∇f at x (a list of 2n mpf), exactly to mp.dps digits."""
    w_acc, w_vel, w_obs, w_end = (mpmath.mpf(v) for v in weights(n))
    px, py = x[0::2], x[1::2]
    g = [mpmath.mpf(0)] * (2 * n)
    for c, p in ((0, px), (1, py)):
        for i in range(n - 2):
            d2 = p[i + 2] + p[i] - 2 * p[i + 1]
            g[2 * (i + 2) + c] += 2 * w_acc * d2
            g[2 * i + c] += 2 * w_acc * d2
            g[2 * (i + 1) + c] -= 4 * w_acc * d2
        for i in range(n - 1):
            d1 = p[i + 1] - p[i]
            g[2 * (i + 1) + c] += 2 * w_vel * d1
            g[2 * i + c] -= 2 * w_vel * d1
    kappa = mpmath.mpf(KAPPA)
    for (cx, cy), r in OBSTACLES:
        cx, cy, rr = mpmath.mpf(cx), mpmath.mpf(cy), mpmath.mpf(r + MARGIN)  # rr: f64 sum, as JS
        for i in range(n):
            qx, qy = px[i] - cx, py[i] - cy
            dist = mpmath.sqrt(qx * qx + qy * qy + mpmath.mpf(EPS_DIST))
            u = kappa * (rr - dist)
            s = mpmath.log1p(mpmath.exp(u)) / kappa
            sig = 1 / (1 + mpmath.exp(-u))
            f = -2 * w_obs * s * sig / dist
            g[2 * i] += f * qx
            g[2 * i + 1] += f * qy
    for j, (e0, e1) in ((0, START), (n - 1, GOAL)):
        g[2 * j] += 2 * w_end * (px[j] - mpmath.mpf(e0))
        g[2 * j + 1] += 2 * w_end * (py[j] - mpmath.mpf(e1))
    return g


def obstacle_terms(p):
    """Per obstacle, for the points p [n, 2] in f64: q = p − c, dist = √(‖q‖² + 10⁻⁹),
    s = softplus(κ (r + margin − dist)) / κ and σ = sigmoid of the same argument."""
    for c, r in OBSTACLES:
        q = p - np.array(c)
        dist = np.sqrt((q * q).sum(1) + EPS_DIST)
        u = KAPPA * ((r + MARGIN) - dist)
        yield q, dist, np.logaddexp(0, u) / KAPPA, 1 / (1 + np.exp(-u))


def grad_f64(x, n):
    """The same gradient in f64 (numpy)."""
    w_acc, w_vel, w_obs, w_end = weights(n)
    p = x.reshape(n, 2)
    g = np.zeros((n, 2))
    d2 = p[2:] + p[:-2] - 2 * p[1:-1]
    g[2:] += 2 * w_acc * d2
    g[:-2] += 2 * w_acc * d2
    g[1:-1] -= 4 * w_acc * d2
    d1 = p[1:] - p[:-1]
    g[1:] += 2 * w_vel * d1
    g[:-1] -= 2 * w_vel * d1
    for q, dist, s, sig in obstacle_terms(p):
        g += (-2 * w_obs * s * sig / dist)[:, None] * q
    g[0] += 2 * w_end * (p[0] - np.array(START))
    g[-1] += 2 * w_end * (p[-1] - np.array(GOAL))
    return g.reshape(-1)


def hessian_band(x, n):
    """The Hessian in lower band storage [5, 2n] (bandwidth 4, interleaved order), f64."""
    w_acc, w_vel, w_obs, w_end = weights(n)
    m = 2 * n
    ab = np.zeros((5, m))

    def add(i, j, v):  # A[i][j] += v (i ≥ j), vectorised over index arrays
        np.add.at(ab, (i - j, j), v)

    pts = np.arange(n)
    for c in (0, 1):
        idx = 2 * pts + c
        for i in range(3):  # D2 rows [1, -2, 1] on points j, j+1, j+2
            for k in range(i + 1):
                ci, ck = (1, -2, 1)[i], (1, -2, 1)[k]
                add(idx[i:n - 2 + i], idx[k:n - 2 + k], 2 * w_acc * ci * ck)
        for i in range(2):  # D1 rows [-1, 1]
            for k in range(i + 1):
                ci, ck = (-1, 1)[i], (-1, 1)[k]
                add(idx[i:n - 1 + i], idx[k:n - 1 + k], 2 * w_vel * ci * ck)
        add(np.array([c, 2 * (n - 1) + c]), np.array([c, 2 * (n - 1) + c]), 2 * w_end)
    for q, dist, s, sig in obstacle_terms(x.reshape(n, 2)):
        ds = -sig[:, None] * q / dist[:, None]  # ∇s
        qq = q[:, :, None] * q[:, None, :]
        d2s = (KAPPA * sig * (1 - sig) / dist**2)[:, None, None] * qq - sig[:, None, None] * (
            np.eye(2)[None] / dist[:, None, None] - qq / dist[:, None, None] ** 3)
        h = 2 * w_obs * (ds[:, :, None] * ds[:, None, :] + s[:, None, None] * d2s)
        add(2 * pts, 2 * pts, h[:, 0, 0])
        add(2 * pts + 1, 2 * pts + 1, h[:, 1, 1])
        add(2 * pts + 1, 2 * pts, h[:, 1, 0])
    return ab


def norm_mp(v):
    return mpmath.sqrt(mpmath.fsum(t * t for t in v))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--N", type=int, required=True)
    ap.add_argument("--x", required=True)
    ap.add_argument("--g")
    ap.add_argument("--neighbours", default=3, help="random f64 neighbours of x* evaluated")
    a = ap.parse_args()
    n = a.N
    x = np.fromfile(a.x, dtype="<f8")
    assert x.size == 2 * n, (x.size, n)
    eps = np.finfo(float).eps
    print(f"N = {n}, 2N = {2 * n} variables")
    if a.g:
        gl = np.fromfile(a.g, dtype="<f8")
        print(f"‖∇f(x)‖, the library's f64 gradient:         {np.linalg.norm(gl):.3e}")
    xm = [mpmath.mpf(float(v)) for v in x]
    ge = grad_exact(xm, n)
    gef = np.array([float(v) for v in ge])
    g64 = grad_f64(x, n)
    print(f"‖∇f(x)‖, f64 (numpy, same formulas):          {np.linalg.norm(g64):.3e}")
    print(f"‖∇f(x)‖, exact (mpmath, {mpmath.mp.dps} digits):             {float(norm_mp(ge)):.3e}")
    print(f"‖f64 − exact‖ at x (numpy's evaluation error): {np.linalg.norm(g64 - gef):.3e}")
    if a.g:
        print(f"‖library − exact‖ at x:                       {np.linalg.norm(gl - gef):.3e}")
    ab = hessian_band(x, n)
    # |H| |x| row by row, from the lower band: row i sums its column below (ab[d][i]) and, by
    # symmetry, its row left of the diagonal (ab[d][i − d])
    m = 2 * n
    habs = np.abs(ab)
    hx = habs[0] * np.abs(x)
    rows = habs[0].copy()
    for d in range(1, 5):
        hx[:m - d] += habs[d, :m - d] * np.abs(x[d:])
        hx[d:] += habs[d, :m - d] * np.abs(x[:m - d])
        rows[:m - d] += habs[d, :m - d]
        rows[d:] += habs[d, :m - d]
    hinf = rows.max()
    print(f"‖H‖∞ = {hinf:.3e}, max |x_i| = {np.abs(x).max():.3f}: "
          f"ε ‖H‖∞ max(1, ‖x‖∞) = {eps * hinf * max(1, np.abs(x).max()):.3e} (the ipm's floor), "
          f"√(2N) times it = {np.sqrt(m) * eps * hinf * max(1, np.abs(x).max()):.3e}; "
          f"ε ‖ |H| |x| ‖₂ = {eps * np.linalg.norm(hx):.3e}")
    # Newton steps to the exact minimiser: δ from the f64 band, x* kept to 50 digits
    xs = list(xm)
    gs = ge
    for it in range(3):
        d = solveh_banded(ab, -np.array([float(v) for v in gs]), lower=True)
        xs = [xi + mpmath.mpf(float(di)) for xi, di in zip(xs, d)]
        gs = grad_exact(xs, n)
        print(f"Newton step {it + 1}: ‖δ‖ = {np.linalg.norm(d):.3e}, "
              f"‖∇f(x*)‖ exact = {float(norm_mp(gs)):.3e}")
    xr = np.array([float(v) for v in xs])  # x* rounded to f64
    # other f64 points next to x*: each entry rounded up or down at random
    rng = np.random.default_rng(1)
    for k in range(int(a.neighbours)):
        lo = np.array([float(v) for v in xs])
        below = np.array([mpmath.mpf(float(v)) > v for v in xs])  # fl rounded up: the other is below
        other = np.where(below, np.nextafter(lo, -np.inf), np.nextafter(lo, np.inf))
        xk = np.where(rng.random(m) < 0.5, lo, other)
        gk = grad_exact([mpmath.mpf(float(v)) for v in xk], n)
        print(f"a random f64 neighbour of x* ({k + 1}): ‖∇f‖ exact = {float(norm_mp(gk)):.3e}, "
              f"f64 (numpy) = {np.linalg.norm(grad_f64(xk, n)):.3e}")
    gr = grad_exact([mpmath.mpf(float(v)) for v in xr], n)
    print(f"‖x* − x‖ = {float(norm_mp([a - b for a, b in zip(xs, xm)])):.3e}")
    print(f"at fl(x*), the f64 point nearest the minimiser: ‖∇f‖ exact = "
          f"{float(norm_mp(gr)):.3e}, f64 (numpy) = {np.linalg.norm(grad_f64(xr, n)):.3e}")
    xr.astype("<f8").tofile(a.x + ".star")
    print(f"fl(x*) written to {a.x}.star")


if __name__ == "__main__":
    main()
