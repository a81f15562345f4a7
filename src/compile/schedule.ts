/**
 * Scheduling decisions shared by the backends: which loop structure a fused kernel gets,
 * and lowering with a retry when a kernel would not fit a device's limits.
 */
import { children, forChildren, type LazyStorage } from "./lazy.ts";
import { UNARY_OPS, type UnaryOp } from "../backend/backend.ts";
import { type Lowered, Lowering, type Target } from "./lower.ts";

/**
 * The inner size M of a split kernel (see lower.ts), or 0 for a plain one. Any M dividing
 * the size is correct (the index is q·M + r either way); a good one comes from a view
 * broadcasting along a leading axis (K probes against one primal), whose index then needs
 * no division. `ok(a)` says whether a leading axis of a entries may become the q loop.
 */
export function splitSize<B>(root: LazyStorage<B>, ok: (a: number) => boolean): number {
  let best = 0;
  const seen = new Set<LazyStorage<B>>();
  const stack = [root];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s) || s.buf || !s.expr || s.expr.kind === "reduce") continue;
    seen.add(s);
    const e = s.expr;
    if (e.kind === "view") {
      const a = e.shape[0];
      if (e.shape.length >= 2 && e.strides[0] === 0 && a > best && root.size % a === 0 && ok(a)) {
        best = a;
      }
    }
    stack.push(...children(e));
  }
  return best > 1 ? root.size / best : 0;
}

/**
 * Lowers `s` (its value, or for a reduction its input's) as a kernel of template `kind`.
 * `fits` is the device's limit on one kernel (uniform slots, bindings): while the lowered
 * kernel exceeds it, the biggest unrealized operand is run on its own and lowering retried.
 */
export function lowerFitting<B>(
  target: Target,
  s: LazyStorage<B>,
  kind: string,
  splitM: number | undefined,
  realize: (c: LazyStorage<B>) => void,
  fits: (l: Lowered<B>) => boolean = () => true,
): Lowered<B> {
  for (;;) {
    const l = new Lowering<B>(target, splitM, realize).lower(s, kind);
    if (fits(l)) return l;
    const kids = s.expr && s.expr.kind !== "reduce" ? children(s.expr).filter((c) => !c.buf) : [];
    if (kids.length === 0) {
      throw new Error(`internal: a single fused node does not fit the device (${kind})`);
    }
    let big = kids[0], most = -1;
    for (const c of kids) {
      const m = c.nodes;
      if (m > most) [big, most] = [c, m];
    }
    realize(big);
  }
}

/** Counts of scheduling decisions (for tests). */
export const scheduleStats: { broadcastWork: number } = { broadcastWork: 0 };

/** Unary ops that cost far more than a read (a library call per element): all but these. */
const CHEAP = new Set<UnaryOp>(["neg", "abs", "square", "reciprocal", "sign"]);
const COSTLY = new Set<UnaryOp>(UNARY_OPS.filter((op) => !CHEAP.has(op)));

/**
 * Runs first, on their own, the subexpressions of `root`'s kernel that it would otherwise
 * evaluate many times over: those read through a broadcasting view (a stride-0 axis of
 * two or more) that hold a costly op. A kernel evaluates its fused expression once per
 * output element (a reduction's, once per input element), so sqrt(d) under a K-fold
 * broadcast — the primal of a K-probe HVP reduced over an axis — is computed K times;
 * realized, it is computed once and read K times. Split kernels' q axis needs none of this
 * (their level-1 work runs once per r): with `split`, only the reductions `root` reads are
 * looked into. For CPU code: there an evaluation costs what a read does many times over.
 *
 * The reductions `root` reads are looked into too, since their kernels run while `root`'s
 * is lowered: call this before any lowering is under way, never from inside one (a node
 * realized then would drop the references to buffers a lowering in progress has taken as
 * its leaves).
 */
export function realizeBroadcastWork<B>(
  root: LazyStorage<B>,
  realize: (c: LazyStorage<B>) => void,
  split = false,
): void {
  const costly = new Map<LazyStorage<B>, boolean>();
  const hasCostly = (s: LazyStorage<B>): boolean => {
    if (s.buf || !s.expr || s.expr.kind === "reduce") return false;
    let c = costly.get(s);
    if (c === undefined) {
      const e = s.expr;
      c = e.kind === "unary" && COSTLY.has(e.op);
      if (!c) forChildren(e, (k) => (c ||= hasCostly(k)));
      costly.set(s, c);
    }
    return c;
  };
  const seen = new Set<LazyStorage<B>>();
  // `own`: s is evaluated by a plain or reducing kernel (not a split kernel's root part)
  const walk = (s: LazyStorage<B>, own: boolean): void => {
    if (seen.has(s) || s.buf || !s.expr) return;
    seen.add(s);
    const e = s.expr;
    if (own && e.kind === "view" && !e.x.buf && e.x.expr && e.x.expr.kind !== "reduce") {
      let copies = 1;
      e.strides.forEach((st, d) => (copies *= st === 0 ? e.shape[d] : 1));
      if (copies >= 2 && hasCostly(e.x)) {
        scheduleStats.broadcastWork++;
        realize(e.x);
        return;
      }
    }
    forChildren(e, (c) => walk(c, own || e.kind === "reduce"));
  };
  walk(root, !split);
}
