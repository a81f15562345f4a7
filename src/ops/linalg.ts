/**
 * Small dense linear algebra with derivative rules: solve, inv, det, logdet, trace.
 * Gauss-Jordan with partial pivoting on both backends (O(n³), meant for small matrices).
 * A singular matrix is an error naming the op: thrown at once on the CPU; on WebGPU, where
 * kernels cannot throw, the result owns it: every read (`data()`, `item()`) of it, or of
 * anything computed from it, raises it, and no other read does.
 */
import { bind } from "../ad/core.ts";
import type { Tensor } from "../tensor.ts";
import { broadcastShapes, fmtShape, normAxes, normAxis } from "../shape.ts";
import { checkFloat, checkKeepdims, checkTensor, operands } from "./common.ts";
import { broadcastTo, gather, mT, reshape, same, slice, transpose } from "./movement.ts";
import { eye, full, tensor } from "./creation.ts";
import { abs, add, less, mul, square, stopGradient, where } from "./elementwise.ts";
import { max, min, safeSqrt, sum } from "./reduce.ts";
import { tidy } from "../memory.ts";

function checkSquare(op: string, a: Tensor): number {
  const r = a.rank;
  if (r < 2 || a.shape[r - 1] !== a.shape[r - 2]) {
    throw new RangeError(
      `${op}: expected square matrices [..., n, n], got shape ${fmtShape(a.shape)}`,
    );
  }
  return a.shape[r - 1];
}

/** @internal Output shape of the solve primitive: A [..., n, n], B [..., n, m]. */
export function solveShape(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = a[a.length - 1];
  if (a.length < 2 || a[a.length - 2] !== n || b.length < 2 || b[b.length - 2] !== n) {
    throw new RangeError(
      `${op}: A must be [..., n, n] and B [..., n, m] with the same n; got ${fmtShape(a)} and ${
        fmtShape(b)
      }`,
    );
  }
  const batch = broadcastShapes(op, a.slice(0, -2), b.slice(0, -2));
  return [...batch, n, b[b.length - 1]];
}

/**
 * Solves `A x = b`. A is `[..., n, n]`; b is `[n]` (a vector) or `[..., n, m]`; batch dims
 * broadcast (NumPy 2 semantics).
 *
 * @example
 * ```ts
 * import { solve, tensor } from "@curvature/curvature";
 * const A = tensor([[3, 1], [1, 2]]);
 * console.log(await solve(A, tensor([9, 8])).toArray()); // [2, 3]
 * ```
 */
export function solve(a: Tensor, b: Tensor): Tensor {
  checkTensor("solve", a, "A");
  checkTensor("solve", b, "b");
  [a, b] = operands("solve", [a, b]);
  checkFloat("solve", a);
  checkSquare("solve", a);
  return solveAs(undefined, a, b);
}

/** `solve` with its errors named for `op`, the public function that asked for it. */
function solveAs(op: "inv" | "choleskySolve" | undefined, a: Tensor, b: Tensor): Tensor {
  const p = op ? { op } : {};
  if (b.rank > 1) return bind("solve", [a, b], p);
  return tidy(() => {
    const x = bind("solve", [a, reshape(b, [b.shape[0], 1])], p);
    return reshape(x, x.shape.slice(0, -1));
  });
}

/** The inverse of each matrix in `[..., n, n]`: `solve(A, I)`. */
export function inv(a: Tensor): Tensor {
  checkTensor("inv", a);
  checkFloat("inv", a);
  const n = checkSquare("inv", a);
  return tidy(() =>
    solveAs("inv", a, broadcastTo(eye(n, n, { dtype: a.dtype, device: a.device }), a.shape))
  );
}

/** The determinant of each matrix in `[..., n, n]`. */
export function det(a: Tensor): Tensor {
  checkTensor("det", a);
  checkFloat("det", a);
  checkSquare("det", a);
  return bind("det", [a], {});
}

/**
 * `log det A` of each matrix in `[..., n, n]`; det must be positive (a singular matrix or a
 * negative determinant is an error, not NaN). Computed from the pivots, so it does not
 * overflow where `det` would.
 */
export function logdet(a: Tensor): Tensor {
  checkTensor("logdet", a);
  checkFloat("logdet", a);
  checkSquare("logdet", a);
  return bind("logdet", [a], {});
}

/** Largest order whose cofactors are taken from minors (n² determinants of order n − 1). */
const MINORS_MAX = 8;

/**
 * @internal The cofactor matrix of each matrix of `[..., n, n]`: C_ij = (−1)^(i+j) times the
 * determinant of A without row i and column j, which is ∂ det A / ∂A_ij. Up to order 8 it is
 * built from the minors themselves (n² batched determinants, exact at singular A, and
 * differentiable again through det's own rules); above that, as det(A) · A⁻ᵀ, which needs A
 * invertible.
 */
export function cofactor(a: Tensor): Tensor {
  const n = a.shape[a.rank - 1], r = a.rank;
  if (n > MINORS_MAX) return mul(reshape(det(a), [...a.shape.slice(0, -2), 1, 1]), mT(inv(a)));
  return tidy(() => {
    if (n === 1) return full(a.shape, 1, { dtype: a.dtype, device: a.device });
    const skip: number[] = [];
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) if (k !== i) skip.push(k);
    const batch = a.shape.slice(0, -2);
    // [..., i, r, col] (rows without i), then [..., i, r, j, c] (columns without j)
    const rows = reshape(gather(a, skip, r - 2), [...batch, n, n - 1, n]);
    const both = reshape(gather(rows, skip, r), [...batch, n, n - 1, n, n - 1]);
    const lead = batch.map((_, d) => d);
    const minors = transpose(both, [...lead, r - 2, r, r - 1, r + 1]);
    const sign = Array.from(
      { length: n * n },
      (_, q) => ((q % n) + Math.floor(q / n)) % 2 ? -1 : 1,
    );
    return mul(det(minors), tensor(sign, { shape: [n, n], dtype: a.dtype, device: a.device }));
  });
}

/** The trace of each matrix in `[..., n, n]`. */
export function trace(a: Tensor): Tensor {
  checkTensor("trace", a);
  checkFloat("trace", a);
  const n = checkSquare("trace", a);
  const r = a.rank;
  return tidy(() => sum(mul(a, eye(n, n, { dtype: a.dtype, device: a.device })), [r - 2, r - 1]));
}

/** The orders {@linkcode norm} computes: vector 1, 2, ±∞ (and matrix 1, ±∞), or Frobenius. */
export type NormOrder = 1 | 2 | typeof Infinity | "fro" | null;

/**
 * Vector and matrix norms, as NumPy's `linalg.norm(x, ord, axis, keepdims)`:
 *
 * - `axis` one axis (or x a vector, or `axis` omitted with `ord` omitted): the vector norm
 *   along it — `ord` 2 (default) `√Σx²`, 1 `Σ|x|`, `Infinity` `max|x|`, `-Infinity`
 *   `min|x|`. With both omitted, the 2-norm of all entries (Frobenius for a matrix).
 * - `axis` two axes (or x a matrix with `ord` given): the matrix norm over them —
 *   `"fro"` (default) `√Σx²`, 1 the largest column sum of |x|, `Infinity` the largest row
 *   sum (`-1`, `-Infinity` the smallest). The spectral norm (2) needs singular values:
 *   use `√(largest eigenvalue of AᵀA)` from {@linkcode eigh}.
 *
 * Where a 2-norm is 0 its derivative is taken as 0 (a subgradient), not NaN.
 *
 * @example
 * ```ts
 * import { norm, tensor } from "@curvature/curvature";
 * const x = tensor([[3, -4], [0, 12]]);
 * console.log(await norm(x).item(), await norm(x, 2, 1).toArray()); // 13 [5, 12]
 * console.log(await norm(x, 1, 0).toArray(), await norm(x, Infinity).item()); // [3, 16] 12
 * ```
 */
export function norm(
  x: Tensor,
  ord?: NormOrder | -1 | typeof Infinity,
  axis?: number | readonly number[],
  keepdims = false,
): Tensor {
  checkTensor("norm", x);
  checkFloat("norm", x);
  checkKeepdims("norm", keepdims);
  const o = ord ?? null;
  let axes: number[];
  if (axis === undefined) {
    if (o === null) {
      return tidy(() => {
        const all = safeSqrt(sum(square(x)));
        return keepdims ? reshape(all, x.shape.map(() => 1)) : all;
      });
    }
    if (x.rank !== 1 && x.rank !== 2) {
      throw new RangeError(
        `norm: with ord ${String(o)} and no axis, x must be a vector or a matrix, got ${
          fmtShape(x.shape)
        }; give the axis (or axes) to reduce`,
      );
    }
    axes = x.shape.map((_, i) => i);
  } else {
    normAxes("norm", axis, x.shape); // range and repetition checks
    // a matrix norm's axes keep their order: the first indexes rows, the second columns
    axes = (typeof axis === "number" ? [axis] : [...axis]).map((a) => normAxis("norm", a, x.shape));
  }
  if (axes.length === 1) {
    if (o === "fro") throw new RangeError(`norm: "fro" is a matrix norm; give two axes`);
    if (o === -1) {
      throw new RangeError(`norm: vector ord -1 is not supported (ords 1, 2, ±Infinity)`);
    }
    return tidy(() => vectorNorm(x, o ?? 2, axes[0], keepdims));
  }
  if (axes.length !== 2) {
    throw new RangeError(
      `norm: give one axis (a vector norm) or two (a matrix norm), got ${axes.length}`,
    );
  }
  const [r, c] = axes;
  return tidy(() => {
    const a = abs(x);
    const keepShape = (t: Tensor) =>
      keepdims ? reshape(t, x.shape.map((d, i) => (axes.includes(i) ? 1 : d))) : t;
    switch (o) {
      case null:
      case "fro":
        return safeSqrt(sum(square(x), axes, keepdims));
      case 1:
        return keepShape(max(sum(a, r), c > r ? c - 1 : c));
      case -1:
        return keepShape(min(sum(a, r), c > r ? c - 1 : c));
      case Infinity:
        return keepShape(max(sum(a, c), r > c ? r - 1 : r));
      case -Infinity:
        return keepShape(min(sum(a, c), r > c ? r - 1 : r));
      default:
        throw new RangeError(
          `norm: matrix ord ${String(o)} is not supported ("fro", 1, -1, ±Infinity; for the ` +
            `spectral norm take √ of the largest eigenvalue of AᵀA from eigh)`,
        );
    }
  });
}

function vectorNorm(x: Tensor, ord: number, axis: number, keepdims: boolean): Tensor {
  if (ord === 2) return safeSqrt(sum(square(x), axis, keepdims));
  if (ord === 1) return sum(abs(x), axis, keepdims);
  if (ord === Infinity) return max(abs(x), axis, keepdims);
  if (ord === -Infinity) return min(abs(x), axis, keepdims);
  throw new RangeError(`norm: vector ord ${String(ord)} is not supported (1, 2, ±Infinity)`);
}

/** (A + Aᵀ) / 2 over the last two axes: what the symmetric factorisations see. */
function symmetrize(a: Tensor): Tensor {
  return mul(add(a, mT(a)), 0.5);
}

/**
 * The lower Cholesky factor L of each symmetric positive definite matrix in `[..., n, n]`,
 * with A = LLᵀ (NumPy's `linalg.cholesky`). The input is symmetrized first, `(A + Aᵀ)/2`
 * (JAX's default), so the derivative is that of a function of symmetric matrices:
 * `dL = L Φ(L⁻¹ dA L⁻ᵀ)`, Φ the lower triangle with the diagonal halved. Runs the banded
 * Cholesky kernels with bandwidth n − 1 (on WebGPU one invocation per matrix, which limits n
 * to the banded kernel's bandwidth limit plus one, 345; larger n is an error saying so).
 * A matrix that is not positive definite is an error naming the order of the failing
 * leading minor (LAPACK's info): at once on the CPU, at the next read on WebGPU.
 *
 * @example
 * ```ts
 * import { cholesky, tensor } from "@curvature/curvature";
 * const L = cholesky(tensor([[4, 2], [2, 5]]));
 * console.log(await L.toArray()); // [[2, 0], [1, 2]]
 * ```
 */
export function cholesky(a: Tensor): Tensor {
  checkTensor("cholesky", a);
  checkFloat("cholesky", a);
  const n = checkSquare("cholesky", a);
  if (n === 0) return same("cholesky", a);
  return tidy(() => bind("cholesky", [symmetrize(a)], {}));
}

/**
 * Solves `A x = b` given A's lower Cholesky factor `L` (SciPy's `cho_solve((L, True), b)`):
 * `x = L⁻ᵀ (L⁻¹ b)`, two triangular solves (by the dense `solve`, O(n³)), differentiable in
 * both L and b. b is `[n]` or `[..., n, m]`, batch dims broadcast as in {@linkcode solve}.
 *
 * @example
 * ```ts
 * import { cholesky, choleskySolve, tensor } from "@curvature/curvature";
 * const A = tensor([[4, 2], [2, 5]]);
 * console.log(await choleskySolve(cholesky(A), tensor([6, 7])).toArray()); // [1, 1]
 * ```
 */
export function choleskySolve(l: Tensor, b: Tensor): Tensor {
  checkTensor("choleskySolve", l, "L");
  checkTensor("choleskySolve", b, "b");
  checkFloat("choleskySolve", l);
  checkSquare("choleskySolve", l);
  [l, b] = operands("choleskySolve", [l, b]);
  return tidy(() => solveAs("choleskySolve", mT(l), solveAs("choleskySolve", l, b)));
}

/**
 * Eigenvalues (ascending) and unit eigenvectors of each symmetric matrix in `[..., n, n]`
 * (NumPy's `linalg.eigh`): returns `[w, V]` with w `[..., n]` and the eigenvectors as the
 * columns of V `[..., n, n]`, so A = V diag(w) Vᵀ. The input is symmetrized first,
 * `(A + Aᵀ)/2`. Each eigenvector is signed so its entry of largest magnitude is positive
 * (NumPy's signs are LAPACK's and may differ). Computed by cyclic Jacobi rotations: in f64
 * on the CPU to convergence, and in f32 on WebGPU with ⌈log₂ n⌉ + 6 parallel sweeps;
 * meant for small matrices (the work is O(n³) per sweep).
 *
 * **Derivatives.** `dw = diag(Vᵀ dA V)` and `dV = V (F ∘ Vᵀ dA V)` with
 * `F_ij = 1/(w_j − w_i)`. Where eigenvalues are **repeated** (degenerate), the eigenvectors
 * of that eigenspace are not unique and not differentiable; the rule then takes
 * `F_ij = 0` for `w_i = w_j` exactly, i.e. it holds the computed eigenvectors of a repeated
 * eigenvalue fixed, and the eigenvalues' derivatives are the diagonal of `Vᵀ dA V` in that
 * basis — right for perturbations that keep the eigenvalues tied, but only one of the
 * directional derivatives otherwise. Functions of the eigenvalues that are symmetric within
 * a cluster (their sum, `trace`, `logdet`-like sums) get correct gradients everywhere;
 * nearly repeated eigenvalues give large, ill-conditioned eigenvector derivatives, as the
 * maths says.
 *
 * @example
 * ```ts
 * import { eigh, tensor } from "@curvature/curvature";
 * const [w, V] = eigh(tensor([[2, 1], [1, 2]]));
 * console.log(await w.toArray(), await V.toArray()); // [1, 3] [[0.707…, 0.707…], [-0.707…, 0.707…]]
 * ```
 */
export function eigh(a: Tensor): [Tensor, Tensor] {
  checkTensor("eigh", a);
  checkFloat("eigh", a);
  const n = checkSquare("eigh", a);
  const r = a.rank;
  return tidy(() => {
    // Jacobi rotations compare entries, and comparisons with NaN are false: a matrix holding
    // a NaN or ±∞ came back partly NaN and partly plausible ([4, 4, NaN] and a permutation
    // for V). Its eigenvalues and eigenvectors are all NaN instead.
    // (NaN < ∞ is false; m − m would be folded to 0 by the expression simplifier)
    const finite = less(stopGradient(max(abs(a), [r - 2, r - 1], true)), Infinity);
    const y = where(finite, bind("eigh", [symmetrize(a)], {}), NaN);
    const w = reshape(
      slice(y, y.shape.map(() => 0), y.shape.map((d, i) => (i === r - 2 ? 1 : d))),
      [...a.shape.slice(0, -2), n],
    );
    const v = slice(y, y.shape.map((_, i) => (i === r - 2 ? 1 : 0)), y.shape);
    return [w, v] as [Tensor, Tensor];
  });
}

/**
 * The eigenvalues of each symmetric matrix in `[..., n, n]`, ascending (NumPy's `eigvalsh`);
 * see {@linkcode eigh} for the method and the derivative at repeated eigenvalues.
 *
 * @example
 * ```ts
 * import { eigvalsh, tensor } from "@curvature/curvature";
 * console.log(await eigvalsh(tensor([[2, 1], [1, 2]])).toArray()); // [1, 3]
 * ```
 */
export function eigvalsh(a: Tensor): Tensor {
  return tidy(() => eigh(a)[0]);
}
