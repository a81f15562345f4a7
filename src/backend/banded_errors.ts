/** The message of a failed banded Cholesky factorisation, shared by both backends. */

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
