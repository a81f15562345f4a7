/**
 * A small test harness for the page (no Deno, no Node): named tests, closeness checks, and
 * a report the runner (run.ts) reads. Each result is also logged as `ok: name` or
 * `FAILED: name` so a run shows progress as it goes.
 */

export interface Result {
  name: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export const results: Result[] = [];

/** Runs one named test; a throw is a failure, anything else a pass. */
export async function test(name: string, fn: () => Promise<void> | void): Promise<void> {
  const t0 = performance.now();
  try {
    await fn();
    const ms = performance.now() - t0;
    results.push({ name, ok: true, ms });
    console.log(`ok: ${name} (${ms.toFixed(0)} ms)`);
  } catch (e) {
    const ms = performance.now() - t0;
    const error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    results.push({ name, ok: false, ms, error });
    console.log(`FAILED: ${name} (${ms.toFixed(0)} ms)\n  ${error.replace(/\n/g, "\n  ")}`);
  }
}

export function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

/**
 * |a − e| ≤ atol + rtol·|e| entrywise (NaN must meet NaN, ±∞ must match exactly), with the
 * worst entry in the message.
 */
export function close(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  atol: number,
  what: string,
): void {
  check(actual.length === expected.length, `${what}: length ${actual.length} ≠ ${expected.length}`);
  let worst = -1, worstErr = 1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      check(
        Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)),
        `${what}: [${i}] = ${a}, expected ${e}`,
      );
      continue;
    }
    const err = Math.abs(a - e) / (atol + rtol * Math.abs(e));
    if (!(err <= worstErr)) [worst, worstErr] = [i, err];
  }
  check(
    worst < 0,
    `${what}: [${worst}] = ${actual[worst]}, expected ${expected[worst]} ` +
      `(|diff| ${
        Math.abs(actual[worst] - expected[worst]).toExponential(3)
      }, rtol ${rtol}, atol ${atol})`,
  );
}

/** max |a − e| ≤ tol · max |e|: for results whose small entries are cancellations. */
export function near(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  check(actual.length === expected.length, `${what}: length ${actual.length} ≠ ${expected.length}`);
  let err = 0, scale = 0, worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= err)) [err, worst] = [d, i];
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  check(
    err <= tol * scale,
    `${what}: [${worst}] = ${actual[worst]}, expected ${expected[worst]} ` +
      `(max error ${err.toExponential(3)} > ${tol} × ${scale.toExponential(3)})`,
  );
}
