/**
 * How much work one invocation of the banded Cholesky kernels may do, and so the widest band
 * they take: plain numbers, apart from the launchers, so that a check of the limit (minimize's
 * newton-sparse) does not load the WebGPU backend.
 */

/** Most loop passes one invocation may make (lavapipe's hidden limit is 65,535). */
export const LOOP_BUDGET = 60_000;

/*
 * lavapipe's limiter counts, per invocation, every pass through a loop's end, including the
 * last one that finds the condition false (lanes leave a SIMD loop by masking), and one
 * more per entry into a loop that contains another loop: a loop entered once and run k
 * times costs k + 1, or k + 2 if it has a loop inside. Measured, not documented: with
 * `for j { for r < B { for q < r {} } }`, j stops after 65,535 / (3 + B + B(B+1)/2)
 * iterations (B = 0…4).
 */
/**
 * Limiter counts per column of band_factor.wgsl: the column loop (1), the corner loop
 * (r0 + 1), the row loop (B − r0 + 2: it holds the inner loop) and, per row r, the inner
 * loop (r − r0 + 1); largest when r0 = 0.
 */
const factorCost = (b: number) => 4 + b + (b * (b + 1)) / 2;
/** Limiter counts per column of band_solve.wgsl: the column loop and the inner loop (≤ b + 1). */
const solveCost = (b: number) => 2 + b;

/** Columns per dispatch of the factorisation and of the solves at bandwidth b. */
export function bandChunks(b: number): { factor: number; solve: number } {
  return {
    factor: Math.floor(LOOP_BUDGET / factorCost(b)),
    solve: Math.floor(LOOP_BUDGET / solveCost(b)),
  };
}

/** The largest bandwidth whose one column fits one invocation's loop budget. */
export const MAX_GPU_BANDWIDTH: number = (() => {
  let b = 0;
  while (factorCost(b + 1) <= LOOP_BUDGET) b++;
  return b;
})();
