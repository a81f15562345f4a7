/** Messages for failed factorisations, shared by both backends. */

/** A singular matrix in a solve: `step` is the 1-based elimination step with a zero pivot. */
export function singularError(op: string, batchIndex: number, step: number): RangeError {
  return new RangeError(
    `${op}: the matrix${batchIndex > 0 ? ` at batch index ${batchIndex}` : ""} is singular ` +
      `(zero pivot at elimination step ${step}, like LAPACK's info = ${step})`,
  );
}

/** Why log det is undefined for a matrix, or null when it is defined. */
export function logdetError(
  op: string,
  batchIndex: number,
  singular: number,
  sign: number,
): string | null {
  const where = batchIndex > 0 ? ` at batch index ${batchIndex}` : "";
  if (singular) {
    return `${op}: the matrix${where} is singular (zero pivot at step ${singular}), so log det is -Infinity`;
  }
  if (sign < 0) {
    return `${op}: the matrix${where} has a negative determinant; log det needs det > 0 (e.g. a positive definite matrix)`;
  }
  return null;
}
