/** The messages of failed banded factorisations, shared by both backends. */

/**
 * A matrix that is not positive definite: `order` is LAPACK's info, the order of the first
 * leading minor that is not positive; `batchIndex` is null for an unbatched call.
 */
export function notPositiveDefinite(
  op: string,
  batchIndex: number | null,
  order: number,
): RangeError {
  const which = batchIndex === null ? "" : ` of the matrix at batch index ${batchIndex}`;
  return new RangeError(
    `${op}: the leading minor of order ${order}${which} is not positive definite ` +
      `(LAPACK info = ${order}); the matrix must be symmetric positive definite`,
  );
}

/**
 * A singular matrix in a general banded solve: `step` is LAPACK's info, the 1-based step
 * of the LU factorisation (with partial pivoting) whose pivot is exactly zero.
 */
export function singularBand(op: string, batchIndex: number | null, step: number): RangeError {
  const which = batchIndex === null ? "" : ` at batch index ${batchIndex}`;
  return new RangeError(
    `${op}: the matrix${which} is singular: the pivot U[${step - 1}][${step - 1}] of its LU ` +
      `factorisation with partial pivoting is exactly zero (LAPACK info = ${step})`,
  );
}
