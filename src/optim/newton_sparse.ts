/**
 * Newton's method on any sparse Hessian: the pattern is detected once (or given), coloured
 * once, and each iteration builds H from one batched HVP pass over the colours
 * (`sparseHessian`). The linear system is solved either by reordering with reverse
 * Cuthill–McKee to a narrow band and factoring with the banded Cholesky solver, or, when
 * the band stays wide (grids), by conjugate gradients on the sparse matrix, preconditioned
 * by an incomplete Cholesky factor (CPU) or the diagonal (Jacobi). Only the solve sees the
 * permutation: iterates stay in the caller's order.
 */
import type { Tensor } from "../tensor.ts";
import { abs, add, div, mul, neg } from "../ops/elementwise.ts";
import { reshape } from "../ops/movement.ts";
import { max } from "../ops/reduce.ts";
import { fromHost, tensor } from "../ops/creation.ts";
import type { TypedArray } from "../dtype.ts";
import { tidy } from "../memory.ts";
import { cg } from "../linalg/cg.ts";
import { incompleteCholesky, incompleteCholeskySize } from "../linalg/incomplete_cholesky.ts";
import { type Ordering, reverseCuthillMcKee } from "../linalg/ordering.ts";
import { MAX_GPU_BANDWIDTH } from "../backend/webgpu/band_limits.ts";
import { SparsityPattern } from "../curvature/pattern.ts";
import { cachedColoring } from "../curvature/coloring.ts";
import { bandedFrom, type SparseMatrix, takeRows } from "../curvature/sparse.ts";
import { describeValue } from "../ops/common.ts";
import { oneOf } from "../options.ts";
import { fmtShape } from "../shape.ts";
import type { MethodResult, MinimizeOptions, MinimizeProblem } from "./types.ts";
import { newtonLoop, type NewtonSystem } from "./newton_loop.ts";
import { bandedSystem } from "./newton_banded.ts";
import { numOpt } from "./objective.ts";

/**
 * A banded Cholesky of the reordered matrix costs about n·(b+1)² flops, a CG iteration
 * about 2·nnz: `"auto"` factors while that is within this many CG iterations.
 */
const BAND_WORK_IN_CG_ITERATIONS = 50;

const withDiagonal = new WeakMap<SparsityPattern, SparsityPattern>();
const orderings = new WeakMap<SparsityPattern, Ordering>();

/** The reverse Cuthill–McKee ordering of a pattern, computed once per pattern. */
function cachedOrdering(p: SparsityPattern): Ordering {
  let o = orderings.get(p);
  if (!o) orderings.set(p, o = reverseCuthillMcKee(p));
  return o;
}

/**
 * The pattern newton-sparse works on: the Hessian's (given or detected), checked, with the
 * diagonal added (for the shift τI and the preconditioners; it costs no colour).
 */
function workingPattern(m: string, prob: MinimizeProblem, x0: Tensor, given: unknown) {
  const n = x0.size;
  if (given !== undefined && !(given instanceof SparsityPattern)) {
    throw new TypeError(`${m}: pattern must be a SparsityPattern, got ${describeValue(given)}`);
  }
  const p = given ?? prob.hessianSparsity(x0);
  if (p.shape[0] !== n || p.shape[1] !== n) {
    throw new RangeError(
      `${m}: the pattern is ${p.shape[0]} × ${p.shape[1]}; expected ${n} × ${n} for x0 of shape ${
        fmtShape(x0.shape)
      }`,
    );
  }
  if (!p.symmetric) {
    throw new RangeError(`${m}: a Hessian's pattern must be symmetric, and this one is not`);
  }
  let d = withDiagonal.get(p);
  if (!d) withDiagonal.set(p, d = p.withDiagonal());
  return d;
}

/**
 * `minimize(f, x0, { method: "newton-sparse" })`: Newton steps on the sparse Hessian (see
 * `sparseHessian`), with the shift τI and the Armijo line search of `"newton-banded"`.
 * Options: `pattern` (default: detected, kept by f's record: `MinimizeProblem.hessianSparsity`), `sparseSolver`
 * (`"auto"` (default): the banded Cholesky of the reverse Cuthill–McKee reordering while
 * its band is narrow, else `"cg"`: conjugate gradients on the sparse matrix to a relative
 * residual of min(0.1, √‖g‖)), `sparsePreconditioner` (CG's: `"auto"` (default): an
 * incomplete Cholesky factor IC(0) of H + τI on the CPU, about a third of Jacobi's CG
 * iterations on 5-point stencils; the diagonal (`"jacobi"`) on WebGPU, where the
 * sequential triangular solves have no place), `maxCgIter` (default 20·n), `gtol`, `maxIter`,
 * `c1`, `onIteration` (reports `stepSize`, `shift` and, with CG, `cgIterations`). How it
 * stops is `newtonLoop`'s: `converged: true` when ‖∇f‖ < `gtol` and H is positive
 * semidefinite there (with the banded solver, H + δI of the reordered band factors, δ = √ε
 * ‖H‖∞ in f64; with CG, 16 Lanczos steps on Hessian-vector products find no clearly
 * negative curvature); a saddle is stepped off or reported (status 4); `maxIter` (default
 * 1000), f or ∇f not finite, a stalled line search (no trust-region fallback: the reordered
 * band is not in the caller's order) or f at its rounding floor stop it otherwise.
 */
export async function newtonSparse(
  prob: MinimizeProblem,
  x0: Tensor,
  o: MinimizeOptions,
): Promise<MethodResult> {
  const m = "minimize (newton-sparse)";
  const n = x0.size;
  const pattern = workingPattern(m, prob, x0, o.pattern);
  const coloring = cachedColoring(pattern, "star", undefined);
  const ordering = cachedOrdering(pattern);
  const b = ordering.bandwidth;
  const gpu = x0.device.kind === "webgpu";
  const bandFits = !gpu || b <= MAX_GPU_BANDWIDTH;
  let solver = oneOf(m, "sparseSolver", o.sparseSolver, ["auto", "banded", "cg"] as const, "auto");
  if (solver === "auto") {
    const cheap = n * (b + 1) ** 2 <= BAND_WORK_IN_CG_ITERATIONS * 2 * pattern.nnz;
    solver = cheap && bandFits ? "banded" : "cg";
  }
  if (solver === "banded" && !bandFits) {
    throw new RangeError(
      `${m}: the reordered bandwidth ${b} is more than the WebGPU banded solver's limit of ` +
        `${MAX_GPU_BANDWIDTH}; use sparseSolver: "cg" or the CPU device`,
    );
  }
  const pre = oneOf(
    m,
    "sparsePreconditioner",
    o.sparsePreconditioner,
    ["auto", "jacobi", "incomplete-cholesky"] as const,
    "auto",
  );
  if (pre === "incomplete-cholesky" && gpu) {
    throw new RangeError(
      `${m}: the incomplete Cholesky preconditioner runs on the host (its triangular solves ` +
        `are sequential), and x0 is on WebGPU; use sparsePreconditioner: "jacobi" there`,
    );
  }
  const useIc = pre === "incomplete-cholesky" || (pre === "auto" && !gpu);
  const maxCg = numOpt(
    "newton-sparse",
    "maxCgIter",
    o.maxCgIter,
    20 * n,
    (v) => Number.isSafeInteger(v) && v > 0,
    "a positive integer",
  );
  const diagPos = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let k = pattern.rowPtr[i]; k < pattern.rowPtr[i + 1]; k++) {
      if (pattern.colIdx[k] === i) diagPos[i] = k;
    }
  }
  const index = (a: Int32Array) => tensor(a, { dtype: "i32", device: x0.device });
  const diagAt = index(diagPos);
  const perm = solver === "banded"
    ? { perm: index(ordering.perm), inverse: index(ordering.inverse) }
    : null;
  const diagonal = (h: SparseMatrix) => takeRows(h.values, diagAt);

  // IC(0) of H + τI on the host (CPU: the values are in host memory already), into buffers
  // kept for the whole run: on a busy machine fresh memory's first touch costs more than
  // the factorisation (20 against 5 ms at n = 10⁵)
  let icWork: { L: Float64Array; h: Float64Array; r: TypedArray; z: Float64Array } | null = null;
  const icPreconditioner = (h: SparseMatrix, tau: number) => {
    icWork ??= {
      L: new Float64Array(incompleteCholeskySize(pattern)),
      h: new Float64Array(pattern.nnz),
      r: x0.dtype === "f64" ? new Float64Array(n) : new Float32Array(n),
      z: new Float64Array(n),
    };
    const w = icWork;
    const values = x0.dtype === "f64" ? h.values.dataSync(w.h) : h.values.dataSync();
    const ic = incompleteCholesky(pattern, values, tau, w.L);
    return (v: Tensor): Tensor => {
      ic.solve(v.dataSync(w.r), w.z);
      return fromHost(m, v.dtype === "f64" ? w.z : Float32Array.from(w.z), [n], v.device);
    };
  };

  let cgIterations = 0;
  const iterative = (h: SparseMatrix): NewtonSystem => ({
    solve: async (g, tau, gradNorm) => {
      const [d, rhs] = tidy(() => [add(diagonal(h), tau), neg(reshape(g, [n]))]);
      try {
        const precondition = useIc ? icPreconditioner(h, tau) : (v: Tensor) => div(v, d);
        // forcing min(0.1, √‖g‖): superlinear, like SciPy's min(0.5, √‖g‖), but a Newton
        // iteration (a colour-batched HVP) costs far more than a CG one (a sparse matvec):
        // on the 64 × 64 grid example 0.1 halves the Newton iterations (36 → 17)
        const r = await cg(
          (v) => tidy(() => (tau === 0 ? h.matvec(v) : add(h.matvec(v), mul(v, tau)))),
          rhs,
          {
            rtol: Math.min(0.1, Math.sqrt(gradNorm)),
            maxIter: maxCg,
            preconditioner: precondition,
            checkEvery: gpu ? 8 : 1,
          },
        );
        cgIterations += r.iterations;
        if (r.negativeCurvature) {
          r.x.dispose();
          throw new RangeError(
            `${m}: H + ${tau}·I is not positive definite (CG met negative curvature)`,
          );
        }
        const p = reshape(r.x, x0.shape); // a view: r.x can go
        r.x.dispose();
        return p;
      } finally {
        d.dispose();
        rhs.dispose();
      }
    },
    diagMax: () => tidy(() => max(abs(diagonal(h)))),
    dispose: () => h.dispose(),
  });

  try {
    return await newtonLoop(
      "newton-sparse",
      prob,
      x0,
      o,
      (x) => {
        cgIterations = 0;
        const h = prob.sparseHessian(x, { coloring });
        if (solver === "cg") return iterative(h);
        try {
          return bandedSystem(bandedFrom(h.values, pattern, "lower", ordering), x.shape, perm);
        } finally {
          h.dispose();
        }
      },
      () => (solver === "cg" ? { cgIterations } : {}),
    );
  } finally {
    diagAt.dispose();
    perm?.perm.dispose();
    perm?.inverse.dispose();
  }
}
