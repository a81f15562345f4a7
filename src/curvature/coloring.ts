/**
 * Graph colourings of sparsity patterns, for compressed Hessians and Jacobians. As in
 * SparseMatrixColorings.jl, the *problem* (what is coloured: the columns of a Jacobian,
 * or a symmetric Hessian), the *algorithm* (a vertex order, then greedy colouring) and the
 * *result* (colours, and the recovery plan: where each entry sits alone in the compressed
 * products) are kept apart, so one result serves every matrix with that pattern.
 *
 * - Column colouring (Jacobians, distance-2 in the bipartite graph): columns that share a
 *   row get different colours, so J·V, with V's column c the indicator of colour c, holds
 *   each J[i][j] alone at (i, colour j). Needs at least `maxRowNonzeros` colours.
 * - Star colouring (Hessians; Gebremedhin, Manne & Pothen, "What color is your Jacobian?
 *   Graph coloring for computing derivatives", SIAM Review 47(4), 2005, §4.2): a
 *   distance-1 colouring in which every path on four vertices uses at least three
 *   colours, found greedily by the two-coloured-star algorithm of GTMP 2007 (below). Then each H[i][j] appears alone in row i of the product of colour(j) or in row
 *   j of the product of colour(i), so it is read directly (no substitution). A dense row
 *   need not cost many colours: an arrowhead takes two.
 */
import type { SparsityPattern } from "./pattern.ts";
import { checkOptions, oneOf } from "../options.ts";

/** What is coloured: a Jacobian's columns (`"column"`) or a symmetric Hessian (`"star"`). */
export type ColoringKind = "column" | "star";

/**
 * Vertex orders for the greedy colouring: `"natural"` (0, 1, …), `"largest-first"` (by
 * decreasing degree), `"smallest-last"` (Matula & Beck: repeatedly set aside a vertex of
 * smallest remaining degree; colour in the reverse order).
 */
export type ColoringOrder = "natural" | "largest-first" | "smallest-last";

/** The orders a colouring accepts. */
export const COLORING_ORDERS: readonly ColoringOrder[] = [
  "natural",
  "largest-first",
  "smallest-last",
];

/** A colouring of a pattern and its recovery plan, reusable for every matrix with that pattern. */
export interface Coloring {
  /** The pattern coloured. */
  readonly pattern: SparsityPattern;
  /** What was coloured. */
  readonly kind: ColoringKind;
  /** The vertex order used. */
  readonly order: ColoringOrder;
  /** The colour (0 … count − 1) of each column. */
  readonly colors: Int32Array;
  /** The number of colours: compressed products needed. */
  readonly count: number;
  /**
   * For each entry of the pattern (CSR order), its position in the compressed products,
   * stored row-major as [count, rows]: `colour · rows + row`, where it appears alone.
   */
  readonly source: Int32Array;
}

/** Adjacency of a square pattern without its diagonal (both directions), as CSR. */
function adjacency(p: SparsityPattern): { ptr: Int32Array; adj: Int32Array } {
  const n = p.shape[0];
  const ptr = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    let d = 0;
    for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) if (p.colIdx[k] !== i) d++;
    ptr[i + 1] = ptr[i] + d;
  }
  const adj = new Int32Array(ptr[n]);
  for (let i = 0, at = 0; i < n; i++) {
    for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) {
      if (p.colIdx[k] !== i) adj[at++] = p.colIdx[k];
    }
  }
  return { ptr, adj };
}

/** The columns of a pattern as CSR over columns (which rows each column has). */
function columns(p: SparsityPattern): { ptr: Int32Array; rows: Int32Array } {
  const [m, n] = p.shape;
  const ptr = new Int32Array(n + 1);
  for (const j of p.colIdx) ptr[j + 1]++;
  for (let j = 0; j < n; j++) ptr[j + 1] += ptr[j];
  const rows = new Int32Array(p.nnz);
  const fill = ptr.slice(0, n);
  for (let i = 0; i < m; i++) {
    for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) rows[fill[p.colIdx[k]]++] = i;
  }
  return { ptr, rows };
}

/** Vertices by decreasing degree (ties by index), by counting sort. */
function largestFirst(degree: Int32Array): Int32Array {
  const n = degree.length;
  let maxD = 0;
  for (const d of degree) maxD = Math.max(maxD, d);
  const start = new Int32Array(maxD + 2);
  for (const d of degree) start[maxD - d + 1]++;
  for (let b = 0; b <= maxD; b++) start[b + 1] += start[b];
  const order = new Int32Array(n);
  for (let v = 0; v < n; v++) order[start[maxD - degree[v]]++] = v;
  return order;
}

/**
 * Smallest-last order (Matula & Beck 1983) of a graph given as CSR: bucket queue over
 * current degrees, O(n + edges).
 */
function smallestLast(ptr: Int32Array, adj: Int32Array): Int32Array {
  const n = ptr.length - 1;
  const deg = new Int32Array(n);
  let maxD = 0;
  for (let v = 0; v < n; v++) maxD = Math.max(maxD, deg[v] = ptr[v + 1] - ptr[v]);
  // doubly linked buckets by degree
  const head = new Int32Array(maxD + 1).fill(-1);
  const next = new Int32Array(n), prev = new Int32Array(n);
  const link = (v: number) => {
    const d = deg[v];
    prev[v] = -1;
    next[v] = head[d];
    if (head[d] >= 0) prev[head[d]] = v;
    head[d] = v;
  };
  const unlink = (v: number) => {
    if (prev[v] >= 0) next[prev[v]] = next[v];
    else head[deg[v]] = next[v];
    if (next[v] >= 0) prev[next[v]] = prev[v];
  };
  for (let v = n - 1; v >= 0; v--) link(v);
  const removed = new Uint8Array(n);
  const order = new Int32Array(n);
  let low = 0;
  for (let k = n - 1; k >= 0; k--) {
    while (head[low] < 0) low++;
    const v = head[low];
    unlink(v);
    removed[v] = 1;
    order[k] = v;
    for (let t = ptr[v]; t < ptr[v + 1]; t++) {
      const w = adj[t];
      if (removed[w]) continue;
      unlink(w);
      deg[w]--;
      link(w);
    }
    if (low > 0) low--;
  }
  return order;
}

function vertexOrder(order: ColoringOrder, ptr: Int32Array, adj: Int32Array): Int32Array {
  const n = ptr.length - 1;
  if (order === "natural") return Int32Array.from({ length: n }, (_, i) => i);
  if (order === "smallest-last") return smallestLast(ptr, adj);
  const degree = new Int32Array(n);
  for (let v = 0; v < n; v++) degree[v] = ptr[v + 1] - ptr[v];
  return largestFirst(degree);
}

/** The smallest colour not marked with `stamp` in `forbidden` (grown as needed). */
function firstFree(forbidden: Int32Array, stamp: number): number {
  let c = 0;
  while (c < forbidden.length && forbidden[c] === stamp) c++;
  return c;
}

/**
 * Star colouring by two-coloured stars (Gebremedhin, Tarafdar, Manne & Pothen, "New acyclic
 * and star coloring algorithms with application to computing Hessians", SISC 29(3), 2007,
 * Alg. 4.1), a refinement of GMP 2005 Alg. 4.1 that keeps track of the two-coloured stars
 * already formed and so forbids only the colours that would close a two-coloured path on
 * four vertices: for v and a coloured neighbour w,
 * - Case 1: a second neighbour of v has colour(w): the colours around both are forbidden;
 * - Case 2: a neighbour x of w is the hub of the two-coloured star holding the edge w–x:
 *   colour(x) is forbidden (v–w–x–w' would be two-coloured).
 * Each edge belongs to one star; a star of a single edge has no hub yet (−1).
 */
function starColor(ptr: Int32Array, adj: Int32Array, order: Int32Array): Int32Array {
  const n = ptr.length - 1;
  // one id per undirected edge, shared by its two adjacency entries (rows are sorted)
  const edge = new Int32Array(adj.length).fill(-1);
  let ne = 0;
  for (let v = 0; v < n; v++) {
    for (let t = ptr[v]; t < ptr[v + 1]; t++) {
      const w = adj[t];
      if (w < v) continue;
      let lo = ptr[w], hi = ptr[w + 1] - 1;
      while (adj[lo] !== v) {
        const mid = (lo + hi) >> 1;
        if (adj[mid] < v) lo = mid + 1;
        else hi = mid;
      }
      edge[t] = edge[lo] = ne++;
    }
  }
  const color = new Int32Array(n).fill(-1);
  const forbidden = new Int32Array(n + 1).fill(-1);
  // per colour c: the first neighbour of the current vertex with colour c, and that edge
  const firstV = new Int32Array(n + 1).fill(-1), firstW = new Int32Array(n + 1);
  const firstE = new Int32Array(n + 1);
  const treated = new Int32Array(n).fill(-1);
  const star = new Int32Array(ne);
  const hub: number[] = [];
  /** Forbids the colours of w's neighbours for v. */
  const treat = (v: number, w: number) => {
    for (let s = ptr[w]; s < ptr[w + 1]; s++) if (color[adj[s]] >= 0) forbidden[color[adj[s]]] = v;
    treated[w] = v;
  };
  for (const v of order) {
    for (let t = ptr[v]; t < ptr[v + 1]; t++) {
      const w = adj[t], cw = color[w];
      if (cw < 0) continue;
      forbidden[cw] = v;
      if (firstV[cw] === v) {
        // Case 1: v already has a neighbour q of colour cw
        const q = firstW[cw];
        if (treated[q] !== v) treat(v, q);
        treat(v, w);
      } else {
        firstV[cw] = v;
        firstW[cw] = w;
        firstE[cw] = edge[t];
        for (let s = ptr[w]; s < ptr[w + 1]; s++) {
          const x = adj[s];
          // Case 2: x is the hub of the star holding w–x
          if (x !== v && color[x] >= 0 && hub[star[edge[s]]] === x) forbidden[color[x]] = v;
        }
      }
    }
    let c = 0;
    while (forbidden[c] === v) c++;
    color[v] = c;
    // the edges v–w join the stars they extend, or start new ones
    for (let t = ptr[v]; t < ptr[v + 1]; t++) {
      const w = adj[t], cw = color[w];
      if (cw < 0) continue;
      let joined = false;
      for (let s = ptr[w]; s < ptr[w + 1]; s++) {
        const x = adj[s];
        if (x !== v && color[x] === c) {
          // v–w–x two-coloured: w is the hub of the star holding w–x
          const id = star[edge[s]];
          hub[id] = w;
          star[edge[t]] = id;
          joined = true;
          break;
        }
      }
      if (joined) continue;
      if (firstV[cw] === v && firstW[cw] !== w) {
        // v has two neighbours of colour cw: v is the hub of their star
        const id = star[firstE[cw]];
        hub[id] = v;
        star[edge[t]] = id;
      } else {
        star[edge[t]] = hub.length;
        hub.push(-1);
      }
    }
  }
  return color;
}

/** Column (distance-2) colouring: columns sharing a row differ. */
function columnColor(
  p: SparsityPattern,
  cols: { ptr: Int32Array; rows: Int32Array },
  order: Int32Array,
): Int32Array {
  const n = p.shape[1];
  const color = new Int32Array(n).fill(-1);
  let forbidden = new Int32Array(16).fill(-1);
  for (const j of order) {
    for (let t = cols.ptr[j]; t < cols.ptr[j + 1]; t++) {
      const i = cols.rows[t];
      for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) {
        const c = color[p.colIdx[k]];
        if (c < 0) continue;
        if (c >= forbidden.length) {
          const f = new Int32Array(2 * c + 2).fill(-1);
          f.set(forbidden);
          forbidden = f;
        }
        forbidden[c] = j;
      }
    }
    color[j] = firstFree(forbidden, j);
  }
  return color;
}

/**
 * Where each entry of the pattern sits alone in the products (row-major [count, rows]):
 * entry (i, j) at row i of colour(j)'s product when no other column of row i has that
 * colour, else (symmetric only) at row j of colour(i)'s product. Throws if neither holds:
 * the colouring would not recover the matrix.
 */
function recoveryPlan(
  p: SparsityPattern,
  colors: Int32Array,
  count: number,
  symmetric: boolean,
): Int32Array {
  const [m] = p.shape;
  const seen = new Int32Array(count); // entries of the current row per colour
  const source = new Int32Array(p.nnz);
  const uniqueIn = (i: number, c: number) => {
    let k = 0;
    for (let t = p.rowPtr[i]; t < p.rowPtr[i + 1]; t++) if (colors[p.colIdx[t]] === c) k++;
    return k === 1;
  };
  for (let i = 0; i < m; i++) {
    const a = p.rowPtr[i], b = p.rowPtr[i + 1];
    for (let t = a; t < b; t++) seen[colors[p.colIdx[t]]]++;
    for (let t = a; t < b; t++) {
      const j = p.colIdx[t], cj = colors[j];
      if (seen[cj] === 1) source[t] = cj * m + i;
      else if (symmetric && uniqueIn(j, colors[i])) source[t] = colors[i] * m + j;
      else {
        throw new Error(
          `internal: the ${
            symmetric ? "star" : "column"
          } colouring cannot recover entry (${i}, ${j})`,
        );
      }
    }
    for (let t = a; t < b; t++) seen[colors[p.colIdx[t]]] = 0;
  }
  return source;
}

/**
 * Colours a pattern: `"star"` for a symmetric Hessian (the pattern must be square and
 * symmetric), `"column"` for a Jacobian. The default order is largest-first (on 5-point
 * grids of 30 × 30 and more it gives 5 star colours where smallest-last gives 6; on bands
 * and arrowheads the two agree). The result (colours and recovery plan) is host data,
 * reusable for every matrix with this pattern.
 *
 * @example
 * ```ts
 * import { colorPattern, SparsityPattern } from "@curvature/curvature";
 * // an arrowhead: x₀ coupled with everything; two colours whatever n is
 * const n = 6;
 * const entries: [number, number][] = [];
 * for (let i = 0; i < n; i++) entries.push([i, i], [0, i], [i, 0]);
 * const c = colorPattern(SparsityPattern.fromEntries([n, n], entries), { kind: "star" });
 * console.log(c.count); // 2
 * ```
 */
export function colorPattern(
  pattern: SparsityPattern,
  opts: { kind: ColoringKind; order?: ColoringOrder },
): Coloring {
  checkOptions("colorPattern", opts, ["kind", "order"]);
  const kind = oneOf("colorPattern", "kind", opts?.kind, ["column", "star"] as const, "star");
  const order = oneOf(
    "colorPattern",
    "order",
    opts?.order,
    COLORING_ORDERS,
    "largest-first",
  );
  const [m, n] = pattern.shape;
  if (kind === "star" && !(m === n && pattern.symmetric)) {
    throw new RangeError(
      `colorPattern: star colouring needs a square symmetric pattern (a Hessian's), got a ${
        m === n ? "non-symmetric" : "non-square"
      } ${m} × ${n} pattern`,
    );
  }
  let colors: Int32Array;
  if (kind === "star") {
    const { ptr, adj } = adjacency(pattern);
    colors = starColor(ptr, adj, vertexOrder(order, ptr, adj));
  } else {
    const cols = columns(pattern);
    // the column-intersection degrees bound the distance-2 degrees; cheap to get
    const ptr = new Int32Array(n + 1);
    for (let j = 0; j < n; j++) {
      let d = 0;
      for (let t = cols.ptr[j]; t < cols.ptr[j + 1]; t++) {
        const i = cols.rows[t];
        d += pattern.rowPtr[i + 1] - pattern.rowPtr[i];
      }
      ptr[j + 1] = ptr[j] + d;
    }
    const ord = order === "natural"
      ? Int32Array.from({ length: n }, (_, i) => i)
      : order === "largest-first"
      ? largestFirst(Int32Array.from({ length: n }, (_, j) => ptr[j + 1] - ptr[j]))
      : smallestLast(...intersectionGraph(pattern, cols));
    colors = columnColor(pattern, cols, ord);
  }
  let count = 0;
  for (const c of colors) count = Math.max(count, c + 1);
  const source = recoveryPlan(pattern, colors, count, kind === "star");
  return { pattern, kind, order, colors, count, source };
}

const colorings = new WeakMap<SparsityPattern, Map<string, Coloring>>();

/** @internal The colouring of a pattern, computed once per (pattern, kind, order) and cached. */
export function cachedColoring(
  pattern: SparsityPattern,
  kind: ColoringKind,
  order: ColoringOrder | undefined,
): Coloring {
  let byKey = colorings.get(pattern);
  if (!byKey) colorings.set(pattern, byKey = new Map());
  const key = `${kind}|${order ?? ""}`;
  let c = byKey.get(key);
  if (!c) byKey.set(key, c = colorPattern(pattern, { kind, order }));
  return c;
}

/** The column-intersection graph (columns adjacent when they share a row), as CSR. */
function intersectionGraph(
  p: SparsityPattern,
  cols: { ptr: Int32Array; rows: Int32Array },
): [Int32Array, Int32Array] {
  const n = p.shape[1];
  const mark = new Int32Array(n).fill(-1);
  const ptr = new Int32Array(n + 1);
  // two passes: count each column's distinct neighbours, then list them
  for (let pass = 0; pass < 2; pass++) {
    const adj = pass === 1 ? new Int32Array(ptr[n]) : null;
    mark.fill(-1);
    for (let j = 0; j < n; j++) {
      mark[j] = j;
      let at = pass === 1 ? ptr[j] : 0;
      for (let t = cols.ptr[j]; t < cols.ptr[j + 1]; t++) {
        const i = cols.rows[t];
        for (let k = p.rowPtr[i]; k < p.rowPtr[i + 1]; k++) {
          const q = p.colIdx[k];
          if (mark[q] === j) continue;
          mark[q] = j;
          if (adj) adj[at] = q;
          at++;
        }
      }
      if (!adj) ptr[j + 1] = ptr[j] + at;
    }
    if (adj) return [ptr, adj];
  }
  throw new Error("unreachable");
}
