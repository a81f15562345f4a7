/**
 * Option-object validation shared by every public function that takes options: an unknown
 * key is an error naming the function and suggesting the right spelling (SciPy's and JAX's
 * names included), so `{ maxiter: 10 }` never silently means the default.
 */
import { describeValue } from "./ops/common.ts";

/** Spellings from SciPy, JAX and NumPy that users bring with them, mapped to ours. */
const FOREIGN: Readonly<Record<string, string>> = {
  maxiter: "maxIter",
  max_iter: "maxIter",
  maxIters: "maxIter",
  maxiters: "maxIter",
  max_iterations: "maxIter",
  argnum: "argnums",
  in_axes: "inAxes",
  out_axes: "outAxes",
  static_argnums: "static",
  keepDims: "keepdims",
  keep_dims: "keepdims",
  callback: "onIteration",
  x_0: "x0",
  initial_trust_radius: "initialTrustRadius",
  max_trust_radius: "maxTrustRadius",
  n_samples: "samples",
  num_samples: "samples",
  random_state: "seed",
  rng: "seed",
  band_width: "bandwidth",
  lower_bound: "lower",
  upper_bound: "upper",
};

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

/** The known key a user most likely meant by `key`, if any is close. */
export function suggestKey(key: string, known: readonly string[]): string | null {
  const foreign = FOREIGN[key];
  if (foreign && known.includes(foreign)) return foreign;
  const lower = key.toLowerCase().replace(/_/g, "");
  const exact = known.find((k) => k.toLowerCase() === lower);
  if (exact) return exact;
  let best: string | null = null, bestD = Infinity;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== null && bestD <= Math.max(1, Math.floor(best.length / 4)) ? best : null;
}

/**
 * Throws unless `opts` is undefined or a plain object whose keys are all in `known`.
 * `hints` maps a rejected key to a sentence of advice (e.g. `tol` → "use rtol or atol").
 * Keys whose value is `undefined` are still checked: a misspelling is an error either way.
 */
export function checkOptions(
  fn: string,
  opts: unknown,
  known: readonly string[],
  hints: Readonly<Record<string, string>> = {},
): void {
  if (opts === undefined) return;
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) {
    throw new TypeError(`${fn}: options must be an object, got ${describeValue(opts)}`);
  }
  for (const key of Object.keys(opts)) {
    if (known.includes(key)) continue;
    const hint = hints[key];
    const guess = suggestKey(key, known);
    const advice = hint ? `; ${hint}` : guess ? `; did you mean "${guess}"?` : "";
    throw new TypeError(
      `${fn}: unknown option "${key}"${advice} (known options: ${known.join(", ")})`,
    );
  }
}

/** An optional boolean option: `undefined` gives `fallback`, anything but a boolean throws. */
export function boolOption(fn: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw new TypeError(`${fn}: option ${name} must be true or false, got ${describeValue(value)}`);
  }
  return value;
}

/** An optional option that must be one of `allowed`: `undefined` gives `fallback`. */
export function oneOf<T extends string>(
  fn: string,
  name: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !allowed.includes(value as T)) {
    throw new RangeError(
      `${fn}: option ${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, ` +
        `got ${typeof value === "string" ? JSON.stringify(value) : describeValue(value)}`,
    );
  }
  return value as T;
}
