"""Reference values for tests/factor_test.ts, from NumPy/LAPACK in float64.

Run with /usr/bin/python3 (NumPy); paste the printed JSON into the test.
"""
import json
import numpy as np

A = np.array([
    [4.0, 1.0, -2.0, 0.5, 0.0],
    [1.0, 3.0, 0.0, 1.0, -1.0],
    [-2.0, 0.0, 5.0, 0.25, 1.0],
    [0.5, 1.0, 0.25, 2.0, 0.5],
    [0.0, -1.0, 1.0, 0.5, 6.0],
])
w, V = np.linalg.eigh(A)
# eigenvectors signed as the library signs them: largest-magnitude entry positive
for k in range(V.shape[1]):
    i = int(np.argmax(np.abs(V[:, k])))
    if V[i, k] < 0:
        V[:, k] = -V[:, k]
L = np.linalg.cholesky(A)
b = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
print(json.dumps({
    "A": A.tolist(),
    "w": w.tolist(),
    "V": V.tolist(),
    "L": L.tolist(),
    "solve": np.linalg.solve(A, b).tolist(),
}))
