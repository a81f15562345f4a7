"""NumPy references for the NumPy-named functions of tests/array_names_test.ts.

Run with /usr/bin/python3 (NumPy), from the repository root:
    /usr/bin/python3 tests/reference/numpy_names.py > tests/reference/numpy_names.json
Inputs are multiples of 1/64 (exact in f32) and are written into the JSON, so the test
feeds exactly these values to the library; outputs are NumPy's, in float64.
"""
import json
import numpy as np

rng = np.random.default_rng(20261201)


def u(shape, lo=-2.0, hi=2.0):
    return np.round(rng.uniform(lo, hi, size=shape) * 64) / 64


def enc(a):
    a = np.asarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "values": [v if np.isfinite(v) else str(v) for v in a.ravel().tolist()]}


cases = []


def case(name, fn, args, out):
    cases.append({"name": name, "fn": fn, "args": [enc(a) for a in args], "out": [enc(o) for o in out]})


x = u([9], -1.4, 1.4)
case("tan", "tan", [x], [np.tan(x)])
a, b = u([3, 4], -3, 3), u([4], -3, 3)
case("logaddexp (broadcast)", "logaddexp", [a, b], [np.logaddexp(a, b)])
s = np.array([0.0, 1000.0, -np.inf, -np.inf, np.inf, -800.0])
t = np.array([0.0, 0.0, 0.0, -np.inf, 1.0, -800.0])
case("logaddexp (limits)", "logaddexp", [s, t], [np.logaddexp(s, t)])
A, B = u([2, 3, 4]), u([3, 4, 5])
case("tensordot axes=2", "tensordot2", [A, B], [np.tensordot(A, B, 2)])
C = u([4, 5, 2])
case("tensordot [[0, 2], [2, 0]]", "tensordotPairs", [A, C], [np.tensordot(A, C, ([0, 2], [2, 0]))])
v, w = u([3]), u([2, 2])
case("tensordot axes=0 (outer)", "tensordot0", [v, w], [np.tensordot(v, w, 0)])
K1, K2 = u([2, 2]), u([2, 3])
case("kron (matrices)", "kron", [K1, K2], [np.kron(K1, K2)])
case("kron (ranks 1 and 2)", "kron", [v, w], [np.kron(v, w)])
X = u([2, 3, 4])
case("moveaxis [0, 1] -> [2, 0]", "moveaxis", [X], [np.moveaxis(X, [0, 1], [2, 0])])
case("swapaxes 0 <-> -1", "swapaxes", [X], [np.swapaxes(X, 0, -1)])
S = u([6, 4])
case("split into 3 along 0", "split3", [S], np.split(S, 3, 0))
case("split at [1, -2, 10] along 1", "splitAt", [S], np.split(S, [1, -2, 10], 1))
T = u([2, 3])
case("tile [2, 1, 2]", "tile", [T], [np.tile(T, [2, 1, 2])])
case("tile 2 (vector)", "tile2", [x[:3]], [np.tile(x[:3], 2)])
case("repeat 2 along 1", "repeat", [T], [np.repeat(T, 2, 1)])
case("repeat 3 (flattened)", "repeatFlat", [T], [np.repeat(T, 3)])

R = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -2.7, -0.2, 0.3, 1.7, 3.0, -4.0])
case("floor (halves, integers)", "floor", [R], [np.floor(R)])
case("ceil (halves, integers)", "ceil", [R], [np.ceil(R)])
case("round (halves to even)", "round", [R], [np.round(R)])
Z = np.array([[1.0, np.nan, np.inf, -np.inf], [0.0, -0.0, 2.5, -1e30]])
case("isnan", "isnan", [Z], [np.isnan(Z)])
case("isfinite", "isfinite", [Z], [np.isfinite(Z)])
B = np.array([[1.0, 0.0, np.nan], [2.0, -3.0, 0.5], [0.0, 0.0, 0.0]])
case("all over axis 1", "all1", [B], [np.all(B, axis=1)])
case("any over axis 0, keepdims", "any0", [B], [np.any(B, axis=0, keepdims=True)])
case("all / any of everything", "allAny", [B], [np.all(B), np.any(B)])
E = np.zeros((2, 0))
case("all / any over an empty axis", "allAnyEmpty", [E], [np.all(E, axis=1), np.any(E, axis=1)])
for c in cases[-10:]:
    c["nograd"] = True  # piecewise constant or boolean: nothing to differentiate

print(json.dumps({"numpy": np.__version__, "cases": cases}))
