/**
 * What every optimiser of `minimize` works through: an objective that counts its
 * evaluations (nfev, ngev, nhvp), reports iterations to the user's callback, and packs the
 * few scalars an iteration needs into one read-back.
 */
import type { Tensor } from "../tensor.ts";
import { bandedHessian, type BandedHessianOptions, BandedMatrix } from "../curvature/banded.ts";
import { hvp, jvp, valueAndGrad } from "../ad/transforms.ts";
import { deviceTag, isJitted, jit } from "../ad/jit.ts";
import { type CompiledWork, type OpenRecord, openRecord } from "../ad/auto_jit.ts";
import {
  sparseHessian,
  type SparseHessianOptions,
  type SparseMatrix,
} from "../curvature/sparse.ts";
import { mul, sqrt } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { concat, reshape, slice } from "../ops/movement.ts";
import { tidy } from "../memory.ts";
import { tensor } from "../ops/creation.ts";
import type { FloatDtype } from "../dtype.ts";
import { cachedHessianSparsity, type SparsityPattern } from "../curvature/pattern.ts";
import { fmtShape } from "../shape.ts";
import { describeValue } from "../ops/common.ts";
import type {
  IterationCallback,
  IterationInfo,
  MinimizeOptions,
  MinimizeProblem,
} from "./types.ts";

/** @internal Machine epsilon of a dtype. */
export function epsOf(dtype: string): number {
  return dtype === "f64" ? 2 ** -52 : 2 ** -23;
}

/**
 * @internal A number as a 0-d tensor of `like`'s dtype and device, uploaded (no graph node):
 * a step length or shift handed to a `jit` program as an input.
 */
export function scalarLike(like: Tensor, v: number): Tensor {
  return tensor(v, { dtype: like.dtype as FloatDtype, device: like.device });
}

/** @internal `Σ a ⊙ b` as a 0-d tensor (any shapes that match). */
export function vdot(a: Tensor, b: Tensor): Tensor {
  return tidy(() => sum(mul(a, b)));
}

/** @internal The Euclidean norm as a 0-d tensor. */
export function norm(a: Tensor): Tensor {
  return tidy(() => sqrt(sum(mul(a, a))));
}

/** Several tensors flattened into one vector: a program per signature, shared by every call. */
const pack = jit((...ts: Tensor[]) => concat(ts.map((t) => reshape(t, [t.size])), 0));

/**
 * @internal Reads several small tensors (flattened, in order) with a single read-back; the
 * packing is a `jit` program (a tensor on its own is read as it is).
 */
export async function readScalars(...ts: Tensor[]): Promise<number[]> {
  if (ts.length === 1) return Array.from(await ts[0].data());
  const packed = pack(...ts);
  try {
    return Array.from(await packed.data());
  } finally {
    packed.dispose();
  }
}

/** @internal Disposes each of its arguments (tensors, bands, …) that is there. */
export function disposeAll(...ts: ({ dispose(): void } | null | undefined)[]): void {
  for (const t of ts) t?.dispose();
}

/**
 * The passes an iteration repeats, compiled with `jit`: traced at the first call of each
 * shape, replayed after that (no graph building, no transform tracing, no kernel lookup).
 * On the CPU at n = 1000 (the discrete boundary value problem) a replayed Hessian-vector
 * product costs about a sixth of a traced one; see bench/RESULTS.md, "CG bookkeeping".
 */
interface Compiled {
  value: (x: Tensor) => Tensor;
  valueAndGrad: (x: Tensor) => [Tensor, Tensor];
  hvp: (x: Tensor, v: Tensor) => Tensor;
  band: (x: Tensor, opts: BandedHessianOptions) => [Tensor, Tensor | null];
}

/**
 * The compiled passes of functions `jit` returned, kept while the function lives: a later
 * `minimize` of the same jitted f replays them without a key run, under jit's rule that
 * the values f closes over are fixed at its trace.
 */
const kept = new WeakMap<(x: Tensor) => Tensor, Compiled>();

/**
 * f's passes: plain; or compiled, with `close` to call when the solve ends. A jitted f's
 * are kept with it. A plain f's are keyed by what f computes (`openRecord`, opened at the
 * first pass of the solve, f being fixed for the solve): a later solve whose f writes the
 * same record replays them, on its own x and the tensors f closes over now, while a
 * closure over a reassigned number or other operations keys other programs. An f the
 * record cannot describe gets programs for this solve alone.
 */
function passesOf(
  f: (x: Tensor) => Tensor,
  compiled: boolean,
): { passes: Compiled; close: () => void; record: (x: Tensor) => string | null } {
  const checkedF = (y: Tensor) => checked(f(y), y);
  const none = () => {};
  if (compiled && isJitted(f)) {
    const hit = kept.get(f);
    if (hit) return { passes: hit, close: none, record: noRecord };
  }
  const plain: Compiled = {
    value: (x) => tidy(() => checkedF(x)),
    valueAndGrad: (x) => valueAndGrad(checkedF)(x) as [Tensor, Tensor],
    hvp: (x, v) => hvp(f, x, v),
    band: (x, opts) => {
      const h = bandedHessian(f, x, opts);
      return [h.data, h.symmetryError];
    },
  };
  if (!compiled) return { passes: plain, close: none, record: noRecord };
  if (isJitted(f)) {
    const passes: Compiled = {
      value: jit(checkedF),
      valueAndGrad: jit(plain.valueAndGrad),
      hvp: jit(plain.hvp),
      band: jit(plain.band, { static: [1] }),
    };
    kept.set(f, passes);
    return { passes, close: none, record: noRecord };
  }
  // one record per signature of x (a method's passes all take x0's): the record of f at one
  // shape says nothing of what f does at another
  const records = new Map<string, OpenRecord>();
  const open = (x: Tensor) => {
    const sig = `${x.dtype}${fmtShape(x.shape)}${deviceTag(x.device)}`;
    let record = records.get(sig);
    if (!record) records.set(sig, record = openRecord(f, x));
    return record;
  };
  const run: CompiledWork = (work, args, fn) => open(args[0]).run(`minimize ${work}`, args, fn);
  const passes: Compiled = {
    value: (x) => run("value", [x], checkedF),
    valueAndGrad: (x) => run("valueAndGrad", [x], plain.valueAndGrad),
    hvp: (x, v) => run("hvp", [x, v], plain.hvp),
    band: (x, opts) => {
      const { bandwidth, method, layout, symmetryCheck } = opts;
      const work = `band ${bandwidth} ${method} ${layout} ${symmetryCheck}`;
      return run(work, [x], (y) => plain.band(y, opts));
    },
  };
  return {
    passes,
    close: () => records.forEach((r) => r.close()),
    record: (x) => open(x).text,
  };
}

/** Where f's passes are not keyed by its record (a jitted f, uncompiled passes). */
const noRecord = () => null;

/** f's result, checked to be a scalar tensor. */
function checked(y: Tensor, x: Tensor): Tensor {
  if (!(y as { _isTensor?: boolean } | null)?._isTensor) {
    throw new TypeError(
      `minimize: the objective must return a scalar Tensor computed from x, got ` +
        `${describeValue(y)}`,
    );
  }
  if (y.size !== 1) {
    throw new RangeError(
      `minimize: the objective must return a scalar, got shape ${fmtShape(y.shape)} for x ${
        fmtShape(x.shape)
      }`,
    );
  }
  return y;
}

/** @internal The objective of one `minimize` call, with its counters and callback. */
export class Objective implements MinimizeProblem {
  /** Objective evaluations. */
  nfev = 0;
  /** Gradient evaluations. */
  ngev = 0;
  /** Hessian-vector products. */
  nhvp = 0;
  readonly #passes: Compiled;
  readonly #close: () => void;
  readonly #record: (x: Tensor) => string | null;

  /**
   * With `compiled`, the value, value-and-gradient, HVP and band passes are compiled
   * programs (f must then be a pure function of x: host side effects and host randomness in
   * f happen when a pass is traced only, see `jit`), kept for later solves (see
   * `passesOf`); `close` when the solve is done.
   */
  constructor(
    readonly f: (x: Tensor) => Tensor,
    readonly callback: IterationCallback | undefined,
    readonly compiled = false,
  ) {
    ({ passes: this.#passes, close: this.#close, record: this.#record } = passesOf(f, compiled));
  }

  /**
   * The Hessian's detected sparsity pattern at x's shape, kept by what f computes (its
   * record, as the passes are) so that a closure whose couplings changed since an earlier
   * solve gets its new pattern; by f and x's shape where f has no record (a jitted f, whose
   * captured values are fixed; an f the record cannot describe).
   */
  hessianSparsity(x: Tensor): SparsityPattern {
    return cachedHessianSparsity(this.f, x, this.#record(x));
  }

  /** Ends the solve: the passes' programs stay in their cache, the tensors they bound are let go. */
  close(): void {
    this.#close();
  }

  /** `f(x)` alone. */
  value(x: Tensor): Tensor {
    this.nfev++;
    return this.#passes.value(x);
  }

  /** `[f(x), ∇f(x)]` from one reverse pass. */
  valueAndGrad(x: Tensor): [Tensor, Tensor] {
    this.nfev++;
    this.ngev++;
    return this.#passes.valueAndGrad(x);
  }

  /** `H v`, or K products for v of shape `[K, ...x.shape]`. */
  hvp(x: Tensor, v: Tensor): Tensor {
    this.nhvp += v.rank > x.rank ? v.shape[0] : 1;
    return this.#passes.hvp(x, v);
  }

  /** `[f(x), ∇f(x), H V]` for probes `V` `[K, ...x.shape]`, all from one forward-over-reverse pass. */
  valueGradHvp(x: Tensor, v: Tensor): [Tensor, Tensor, Tensor] {
    this.nfev++;
    this.ngev++;
    const k = v.shape[0];
    this.nhvp += k;
    const n = x.size;
    return tidy(() => {
      const both = (y: Tensor) => {
        const [fy, gy] = valueAndGrad((z: Tensor) => checked(this.f(z), z))(y);
        return concat([reshape(fy, [1]), reshape(gy, [n])], 0);
      };
      const [out, tan] = jvp(both, [x], [v]);
      return [
        reshape(slice(out, [0], [1]), []),
        reshape(slice(out, [1], [n + 1]), x.shape),
        reshape(slice(tan, [0, 1], [k, n + 1]), [k, ...x.shape]),
      ];
    });
  }

  /** The Hessian's band from comb probes: 2b+1 products (b+1 by substitution) in one pass. */
  bandedHessian(x: Tensor, opts: BandedHessianOptions): BandedMatrix {
    const [data, symmetryError] = this.#passes.band(x, opts);
    const h = new BandedMatrix(data, opts.layout ?? "upper", symmetryError);
    const b = h.bandwidth;
    this.nhvp += Math.min(x.size, opts.method === "substitution" ? b + 1 : 2 * b + 1);
    return h;
  }

  /** The sparse Hessian from one batched pass over the colours of a star colouring. */
  sparseHessian(x: Tensor, opts: SparseHessianOptions): SparseMatrix {
    const h = sparseHessian(this.f, x, opts);
    this.nhvp += h.coloring!.count;
    return h;
  }

  /** Hands the iteration to the user's callback; false means stop. */
  async report(info: Omit<IterationInfo, "nfev" | "ngev" | "nhvp">): Promise<boolean> {
    if (!this.callback) return true;
    const r = await this.callback({ ...info, nfev: this.nfev, ngev: this.ngev, nhvp: this.nhvp });
    return r !== false;
  }
}

/** @internal Reads a numeric option, checking it lies in the range the method needs. */
export function numOpt(
  method: string,
  name: string,
  value: number | undefined,
  fallback: number,
  check: (v: number) => boolean,
  need: string,
): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || !check(v)) {
    throw new RangeError(`minimize (${method}): ${name} must be ${need}, got ${value}`);
  }
  return v;
}

/**
 * @internal When an inner CG loop reads its termination flag back. A number n: after every
 * n iterations. `"auto"` (the default): on the CPU, every k-th iteration with k = ⌊m/20⌋
 * clamped to [1, 10], m the previous solve's iterations — so at most 5 % of a solve like
 * the last is masked work, and a long solve reads a tenth as often (the discrete boundary
 * value problem at n = 1000, ~6,000 CG iterations per solve: a read every iteration was
 * 0.131 ms per CG iteration, every 10th 0.099, with 27 masked products in 56,196; the
 * doubling schedule below wasted 40,354 of 96,523); on WebGPU, where a read-back
 * waits for the queue, first after as many iterations as the previous solve needed (the
 * best guess of this one's), then after gaps of 1, 2, 4, … — typically one or two
 * read-backs per solve, at the price of a few masked iterations.
 */
export class CheckSchedule {
  #prev = 1;
  readonly every: number | "auto";

  constructor(method: string, every: number | "auto" | undefined, x: Tensor) {
    const v = every ?? "auto";
    if (v !== "auto" && !(Number.isSafeInteger(v) && v >= 1)) {
      throw new RangeError(
        `minimize (${method}): cgCheckEvery must be a positive integer or "auto", got ${every}`,
      );
    }
    this.every = v;
    this.#cpu = x.device.kind === "cpu";
  }

  readonly #cpu: boolean;

  /** True when the solve should read back after `done` iterations. */
  due(done: number): boolean {
    if (this.every !== "auto") return done % this.every === 0;
    if (this.#cpu) return done % Math.min(10, Math.max(1, Math.floor(this.#prev / 20))) === 0;
    let at = this.#prev;
    for (let gap = 1; at < done; gap *= 2) at += gap;
    return at === done;
  }

  /** Records how many iterations a solve took. */
  finished(iterations: number): void {
    this.#prev = Math.max(1, iterations);
  }
}

/**
 * @internal The decrease f(x) − f(x + p), measured robustly. Where both the decrease and
 * `expected` (the model's or the line search's prediction) lie within √ε |f| of f, the
 * difference of two values of f is mostly rounding — f is often computed with cancellation
 * (second differences of nearby points lose ~10 digits), so its noise can be far above
 * ε |f| — and the decrease is estimated from the slopes at both ends instead,
 * −½ (g + g_t)ᵀp (the trapezoid rule, exact for quadratics: Hager & Zhang's approximate
 * Wolfe conditions rest on the same estimate).
 */
export function decrease(
  f: number,
  ft: number,
  expected: number,
  gTp: number,
  gtTp: number,
  dtype: string,
): number {
  const tiny = Math.sqrt(epsOf(dtype)) * Math.abs(f);
  if (Math.abs(f - ft) <= tiny && Math.abs(expected) <= tiny) return -0.5 * (gTp + gtTp);
  return f - ft;
}

/** @internal gtol and maxIter, the options every method reads (with the method's default maxIter). */
export function loopOpts(
  method: string,
  o: MinimizeOptions,
  maxIterDefault = 1000,
): { gtol: number; maxIter: number } {
  return {
    gtol: numOpt(method, "gtol", o.gtol, 1e-5, (v) => v >= 0, "a number ≥ 0"),
    maxIter: numOpt(
      method,
      "maxIter",
      o.maxIter,
      maxIterDefault,
      (v) => Number.isSafeInteger(v) && v >= 0,
      "an integer ≥ 0",
    ),
  };
}

/**
 * Why a method stopped: SciPy-style `status` (see `MinimizeResult.status`) and a message
 * that starts with "converged" exactly when status is 0.
 */
export interface Stop {
  status: number;
  message: string;
}

/** @internal The stops every method shares. */
export const STOPS = {
  /** ‖g‖ < gtol, and (where the method checks it) no negative curvature. */
  converged: (checked: boolean): Stop => ({
    status: 0,
    message: checked
      ? "converged: gradient norm below gtol, Hessian positive semidefinite"
      : "converged: gradient norm below gtol",
  }),
  /**
   * ‖g‖ < gtol and H ⪰ 0 to tolerance, but λ_min(H) within the tolerance of 0: f did not
   * fall along its eigenvector when probed (see `probeNull`), yet strict minimality is not
   * verified (an ill-conditioned minimum, a weak one, or a valley whose floor falls too
   * slowly to see, as MGH's Biggs EXP6 for trust-exact).
   */
  convergedSingular: (lowest: number, tolerance: number): Stop => ({
    status: 0,
    message:
      `converged: gradient norm below gtol, Hessian positive semidefinite; λ_min(H) ≈ ${
        lowest.toExponential(2)
      } is within its tolerance ${tolerance.toExponential(2)} of 0 (ill-conditioned or ` +
      `singular), and f probed along its eigenvector does not fall — strict minimality not ` +
      `verified`,
  }),
  maxIter: { status: 1, message: "stopped: maximum iterations reached" } as Stop,
  /** f at its rounding floor: steps are taken without lowering it. */
  floor: {
    status: 2,
    message: "stopped: no further decrease (f is at its rounding floor; gtol may be below it)",
  } as Stop,
  /** Some other reason no step makes progress. */
  noProgress: (why: string): Stop => ({ status: 2, message: `stopped: ${why}` }),
  notFinite: (f: number, gnorm: number): Stop => ({
    status: 3,
    message: `stopped: the objective or its gradient is not finite (f = ${f}, ‖g‖ = ${gnorm})`,
  }),
  saddle: (lowest: number): Stop => ({
    status: 4,
    message: `stopped: stationary point with negative curvature (λ_min(H) ≈ ${
      lowest.toExponential(3)
    }; no step along it lowers f)`,
  }),
  callback: { status: 99, message: "stopped by onIteration" } as Stop,
};

/**
 * @internal A Hessian-free run whose inner CG needed many iterations per step (more than
 * max(50, n/10) on average) says so in its message: the Hessian is ill-conditioned, and
 * when its sparsity pattern (`hessianSparsity`, traced once per function and shape, only
 * now) is a narrow band or sparse, the message names the method that factors it directly
 * (the discrete boundary value problem at n = 1000: about 35,000 Hessian-vector products
 * with newton-cg, one band of 5 products per step with newton-banded).
 */
export function withCgHint(
  stop: Stop,
  cgIterations: number,
  steps: number,
  f: (x: Tensor) => Tensor,
  x: Tensor,
): Stop {
  const n = x.size;
  const perStep = cgIterations / Math.max(steps, 1);
  if (!(perStep > Math.max(50, n / 10))) return stop;
  let advice =
    `if it is banded, "newton-banded" or "trust-exact" factor it directly in O(n b²) per step`;
  try {
    const p = cachedHessianSparsity(f, x);
    const b = p.bandwidth;
    if (2 * b + 1 < n) {
      advice = `its detected sparsity pattern is a band of width ${b}: "newton-banded" or ` +
        `"trust-exact" factor it directly, ${2 * b + 1} Hessian-vector products and O(n b²) ` +
        `work per step`;
    } else if (p.nnz <= n * Math.sqrt(n)) {
      advice = `its detected sparsity pattern has ${p.nnz} of ${n}² entries: "newton-sparse" ` +
        `builds it from a colouring and factors it`;
    }
  } catch {
    // a pattern that cannot be traced (f's own error shows in the run, not here)
  }
  return {
    ...stop,
    message: `${stop.message} (CG needed ${
      Math.round(perStep)
    } iterations per step: the Hessian is ill-conditioned; ${advice})`,
  };
}

/** @internal Why an optimiser stops before its next iteration (k done so far), or null to go on. */
export function stopReason(
  f: number,
  gnorm: number,
  k: number,
  gtol: number,
  maxIter: number,
): Stop | null {
  if (gnorm < gtol) return STOPS.converged(false);
  if (!Number.isFinite(f) || !Number.isFinite(gnorm)) return STOPS.notFinite(f, gnorm);
  if (k >= maxIter) return STOPS.maxIter;
  return null;
}
