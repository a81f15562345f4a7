/**
 * Scheduling decisions shared by the backends: which loop structure a fused kernel gets,
 * and lowering with a retry when a kernel would not fit a device's limits.
 */
import { children, forChildren, isCostly, type LazyStorage } from "./lazy.ts";
import type { Lowered, Target } from "./lower.ts";
import { lowerCached } from "./lower_cache.ts";

/**
 * Turns off the schedule's work-saving decisions made for repeated work (comb-probe and
 * reduction splits, shared and repeated costly ops): tests compare programs scheduled with
 * and without them.
 */
export const scheduler: { enabled: boolean } = { enabled: true };

/**
 * The inner size M of a split kernel (see lower.ts), or 0 for a plain one. Any M dividing
 * the size is correct (the index is q·M + r either way); a good one comes from a view
 * broadcasting along a leading axis (K probes against one primal), whose index then needs
 * no division, or from comb probes (K of them, `comb` nodes), whose probe is then q and whose
 * residue is computed once per r: without the split, a kernel over K probes that reads no
 * primal (the HVP of a quadratic term) divides its index for every comb read, in every
 * entry of every probe. `ok(a, comb)` says whether a leading axis of a entries (a comb's
 * probes when `comb`) may become the q loop.
 *
 * Comb probes win over a broadcasting view when both qualify: their count is the problem's
 * structure (a band's 2b + 1), while a view's leading axis may be the problem's size (a
 * row of obstacles broadcast over N points), and a choice that follows the size gives a
 * kernel of another structure at every size, compiled and warmed up again (see `ok` in the
 * CPU backend, which keeps a size-like axis out for the same reason).
 */
export function splitSize<B>(
  root: LazyStorage<B>,
  ok: (a: number, comb: boolean) => boolean,
): number {
  if (!root.splittable) return 0;
  let best = 0, bestComb = 0;
  const seen = new Set<LazyStorage<B>>();
  const stack = [root];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s) || s.buf || !s.expr || s.expr.kind === "reduce") continue;
    // a band reads its products at an index of its own: their probes are not the root's
    if (s.expr.kind === "band") continue;
    seen.add(s);
    const e = s.expr;
    // a view broadcasting along its leading axis, or comb probes (their probe axis leads)
    const comb = e.kind === "comb" && scheduler.enabled;
    const a = e.kind === "view" && e.shape.length >= 2 && e.strides[0] === 0
      ? e.shape[0]
      : comb
      ? e.period
      : 0;
    if (a > 1 && root.size % a === 0 && ok(a, comb)) {
      if (comb && a > bestComb) bestComb = a;
      else if (!comb && a > best) best = a;
    }
    stack.push(...children(e));
  }
  if (bestComb > 0) best = bestComb;
  return best > 1 ? root.size / best : 0;
}

/**
 * A lowering (`lower`) whose kernel evaluates no costly op at two indices per entry: such an
 * op (σ(d) in the gradient of Σ softplus(x[i+1] − x[i])², read at i and at i − 1) is realized
 * first, once per element, and the kernel lowered again to read it. `size`: the entries the
 * kernel evaluates its expression at (an op bigger than the reads it saves stays fused).
 * Only for an outermost lowering (see realizeBroadcastWork); nested ones are returned as
 * they are.
 */
export function lowerOnce<B>(
  lower: () => Lowered<B>,
  realize: (c: LazyStorage<B>) => void,
  size: number,
  outermost: boolean,
): Lowered<B> {
  const l = lower();
  if (!outermost || !scheduler.enabled) return l;
  const again = l.repeated.filter((r) => r.node.size <= r.count * size);
  if (again.length === 0) return l;
  for (const { node } of again) {
    if (node.buf) continue;
    scheduleStats.sharedWork++;
    realize(node);
  }
  return lower();
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
    const l = lowerCached(target, s, kind, splitM, realize);
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

/**
 * Runs a band's products (see the "band" expression, lazy.ts) first when another
 * expression reads them too (the symmetry check's second recovery): fused, every band's
 * kernel would compute them again.
 */
export function realizeSharedProducts<B>(
  s: LazyStorage<B>,
  realize: (c: LazyStorage<B>) => void,
): void {
  const e = s.expr;
  if (e?.kind === "band" && !e.x.buf && e.x.users > 1) realize(e.x);
}

/** Counts of scheduling decisions (for tests). */
export const scheduleStats: { broadcastWork: number; sharedWork: number; bandSplit: number } = {
  broadcastWork: 0,
  sharedWork: 0,
  /** Bands written by their products' split kernel (CPU: no products array, no second pass). */
  bandSplit: 0,
};

/**
 * Runs first, on their own, the costly ops (a library call per element: exp, softplus,
 * sigmoid, sqrt, …) of `root`'s kernel that unrealized expressions outside the kernel read
 * too, directly or through cheap nodes. A kernel evaluates everything it fuses, so such an
 * op would be evaluated once more by every other kernel that fuses it: the primal's
 * softplus of a forward-over-reverse pass once in the value's reduction, once in the
 * gradient's kernel and once in each kernel of the tangent. Realized, it is evaluated once
 * and read where needed; the cheap work around it is still fused (and repeated). The
 * reductions `root` reads are looked into the same way, since their kernels run while
 * `root`'s is lowered (so, as for realizeBroadcastWork: call this before any lowering is
 * under way). A reader outside the kernel is an expression (`users`), not a tensor: a
 * tensor that holds a value may never read it again.
 */
export function realizeSharedWork<B>(
  root: LazyStorage<B>,
  realize: (c: LazyStorage<B>) => void,
): void {
  if (!scheduler.enabled || !root.costly) return;
  const done = new Set<LazyStorage<B>>();
  const kernel = (top: LazyStorage<B>) => {
    if (done.has(top)) return;
    done.add(top);
    // the kernel's fused nodes with the number of their readers inside it; reductions are
    // kernels of their own
    const inside = new Map<LazyStorage<B>, number>();
    const post: LazyStorage<B>[] = [];
    const reductions: LazyStorage<B>[] = [];
    const visit = (s: LazyStorage<B>) => {
      forChildren(s.expr!, (c) => {
        if (c.buf || !c.expr) return;
        if (c.expr.kind === "reduce") return void reductions.push(c);
        const n = inside.get(c);
        inside.set(c, (n ?? 0) + 1);
        if (n === undefined) visit(c);
      });
      post.push(s);
    };
    if (top.buf || !top.expr) return;
    if (top.expr.kind === "reduce") return kernel(top.expr.x);
    visit(top);
    // nodes evaluated elsewhere too: read from outside, and everything they read
    const shared = new Set<LazyStorage<B>>();
    const mark = (s: LazyStorage<B>) => {
      if (shared.has(s) || !inside.has(s)) return;
      shared.add(s);
      forChildren(s.expr!, mark);
    };
    for (const [s, n] of inside) if (s.users > n) mark(s);
    // operands first, so a costly op reads the costly ops below it realized
    for (const s of post) {
      if (s !== top && !s.buf && shared.has(s) && isCostly(s)) {
        scheduleStats.sharedWork++;
        realize(s);
      }
    }
    for (const r of reductions) if (!r.buf && r.expr?.kind === "reduce") kernel(r.expr.x);
  };
  kernel(root);
}

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
  if (!root.costly) return;
  const costly = new Map<LazyStorage<B>, boolean>();
  const hasCostly = (s: LazyStorage<B>): boolean => {
    if (s.buf || !s.expr || s.expr.kind === "reduce") return false;
    let c = costly.get(s);
    if (c === undefined) {
      const e = s.expr;
      c = isCostly(s);
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
