/** The ipm's bookkeeping as pure functions of tensors, run compiled or eagerly. */
import { jit, type JitOptions } from "../../ad/jit.ts";
import { tidy } from "../../memory.ts";

/**
 * `fn` as a `jit` program when `compiled` (minimize's compiled passes), else eagerly under
 * `tidy`: the same arithmetic either way, so the two give the same iterates (ipm_test).
 */
export function compilable<A extends unknown[], R>(
  fn: (...args: A) => R,
  opts?: JitOptions,
): (compiled: boolean, ...args: A) => R {
  const program = jit(fn, opts);
  return (compiled, ...args) => (compiled ? program(...args) : tidy(() => fn(...args)));
}
