/**
 * `einsum`: Einstein summation over labelled axes, as NumPy's (explicit `->` output or the
 * implicit one, `...` for broadcast leading axes, repeated labels in one operand for
 * diagonals). Planned as pairwise contractions: each operand first loses the labels no one
 * else needs (summed away), then the pair whose result is smallest is contracted by one
 * batched `matmul` ([batch, kept A, summed] × [batch, summed, kept B]), until one tensor is
 * left; it is then summed and transposed into the output's order. Made of primitives, so
 * it differentiates, batches and traces sparsity like any composite.
 */
import type { Tensor } from "../tensor.ts";
import { fmtShape, sizeOf } from "../shape.ts";
import { checkFloat, checkTensor, describeValue } from "./common.ts";
import { broadcastTo, reshape, transpose } from "./movement.ts";
import { matmul } from "./matmul.ts";
import { sum } from "./reduce.ts";
import { diagonal } from "./diagonal.ts";
import { tidy } from "../memory.ts";

/** A term being contracted: the tensor and one label per axis. */
interface Term {
  t: Tensor;
  ids: string[];
}

const LETTER = /^[a-zA-Z]$/;

function parseTerm(spec: string, term: string, rank: number | null, where: string): string[] {
  const dots = term.indexOf("...");
  if (dots >= 0 && term.indexOf("...", dots + 1) >= 0) {
    throw new SyntaxError(`einsum: "${spec}": ${where} has "..." twice`);
  }
  const letters = term.replace("...", "");
  for (const c of letters) {
    if (!LETTER.test(c)) {
      throw new SyntaxError(`einsum: "${spec}": ${where} has "${c}"; labels are letters a-z, A-Z`);
    }
  }
  if (rank === null) {
    // the output: "..." stays a placeholder, expanded once every operand's axes are known
    return dots < 0 ? [...term] : [...term.slice(0, dots), "...", ...term.slice(dots + 3)];
  }
  const ell = rank - letters.length;
  if (ell < 0 || (dots < 0 && ell !== 0)) {
    throw new RangeError(
      `einsum: "${spec}": ${where} labels ${letters.length} axes${
        dots >= 0 ? " plus ..." : ""
      } but the operand has ${rank}`,
    );
  }
  if (dots < 0) return [...letters];
  // ellipsis axes are numbered from the right, so they broadcast like NumPy's
  const e = Array.from({ length: ell }, (_, i) => `…${ell - 1 - i}`);
  return [...term.slice(0, dots)].concat(e, [...term.slice(dots + 3)]);
}

/**
 * Einstein summation, as NumPy's `einsum(subscripts, *operands)`: `"ij,jk->ik"` is a matrix
 * product, `"ii->"` a trace, `"bij,bjk->bik"` a batched product, `"...i,...i->..."` a dot
 * product over any leading axes; without `->` the output is the labels that appear once,
 * in alphabetical order (after the `...` axes). Contracted pairwise by batched matmul,
 * smallest intermediate first.
 *
 * @example
 * ```ts
 * import { einsum, tensor } from "@curvature/curvature";
 * const A = tensor([[1, 2], [3, 4]]), x = tensor([1, 1]);
 * console.log(await einsum("ij,j->i", A, x).toArray()); // [3, 7]
 * console.log(await einsum("ii", A).item(), await einsum("ij->ji", A).toArray()); // 5 [[1, 3], [2, 4]]
 * ```
 */
export function einsum(subscripts: string, ...operands: Tensor[]): Tensor {
  if (typeof subscripts !== "string") {
    throw new TypeError(`einsum: subscripts must be a string, got ${describeValue(subscripts)}`);
  }
  operands.forEach((t, i) => {
    checkTensor("einsum", t, `operand ${i}`);
    checkFloat("einsum", t);
  });
  const spec = subscripts.replace(/\s+/g, "");
  const arrow = spec.indexOf("->");
  const lhs = arrow >= 0 ? spec.slice(0, arrow) : spec;
  const inTerms = lhs.split(",");
  if (inTerms.length !== operands.length) {
    throw new RangeError(
      `einsum: "${subscripts}" names ${inTerms.length} operand(s) but ${operands.length} were given`,
    );
  }
  const terms: Term[] = operands.map((t, i) => ({
    t,
    ids: parseTerm(subscripts, inTerms[i], t.rank, `operand ${i}`),
  }));
  // sizes per label; "..." axes broadcast (size 1 against any), letters must agree
  const size = new Map<string, number>();
  for (const [k, { t, ids }] of terms.entries()) {
    ids.forEach((id, a) => {
      const d = t.shape[a], prev = size.get(id);
      if (prev === undefined || prev === 1) size.set(id, d);
      else if (d !== prev && !(id.startsWith("…") && d === 1)) {
        throw new RangeError(
          `einsum: "${subscripts}": label ${id.startsWith("…") ? "..." : id} has size ${prev} ` +
            `elsewhere but ${d} in operand ${k} (shape ${fmtShape(t.shape)})`,
        );
      }
    });
  }
  // "..." axes, leftmost first (they are numbered from the right)
  const ellipsis = [...size.keys()].filter((id) => id.startsWith("…"))
    .sort((p, q) => Number(q.slice(1)) - Number(p.slice(1)));
  let out: string[];
  if (arrow >= 0) {
    const outTerm = spec.slice(arrow + 2);
    const raw = parseTerm(subscripts, outTerm, null, "the output");
    // "..." axes the output leaves out are summed over, as in NumPy
    out = raw.flatMap((id) => (id === "..." ? ellipsis : [id]));
    if (new Set(out).size !== out.length) {
      throw new SyntaxError(`einsum: "${subscripts}": a label repeats in the output`);
    }
    for (const id of out) {
      if (!size.has(id)) {
        throw new RangeError(`einsum: "${subscripts}": output label ${id} is in no operand`);
      }
    }
  } else {
    const count = new Map<string, number>();
    for (const { ids } of terms) for (const id of ids) count.set(id, (count.get(id) ?? 0) + 1);
    const singles = [...count.keys()].filter((id) => !id.startsWith("…") && count.get(id) === 1);
    out = [...ellipsis, ...singles.sort()];
  }
  return tidy(() => contract(terms, out, size));
}

function contract(terms: Term[], out: readonly string[], size: Map<string, number>): Tensor {
  const needed = (id: string, except: Term[]) =>
    out.includes(id) || terms.some((u) => !except.includes(u) && u.ids.includes(id));
  // 1. each operand alone: broadcast "..." axes, take diagonals, sum labels no one else needs
  terms = terms.map((term) => {
    let { t, ids } = term;
    const full = ids.map((id) => size.get(id)!);
    if (full.some((d, a) => d !== t.shape[a])) t = broadcastTo(t, full);
    for (let a = 0; a < ids.length; a++) {
      const b = ids.indexOf(ids[a], a + 1);
      if (b < 0) continue;
      t = diagonal(t, 0, a, b); // the diagonal becomes the last axis
      ids = [...ids.filter((_, i) => i !== a && i !== b), ids[a]];
      a = -1;
    }
    const self = { t, ids };
    const drop = ids.flatMap((id, a) => (needed(id, [term]) ? [] : [a]));
    if (drop.length) {
      self.t = sum(t, drop);
      self.ids = ids.filter((_, a) => !drop.includes(a));
    }
    return self;
  });
  // 2. pairwise, the pair with the smallest result first
  while (terms.length > 1) {
    let best: [number, number] = [0, 1], bestSize = Infinity;
    for (let i = 0; i < terms.length; i++) {
      for (let j = i + 1; j < terms.length; j++) {
        const rest = terms.filter((_, k) => k !== i && k !== j);
        const keep = new Set(
          [...terms[i].ids, ...terms[j].ids].filter((id) =>
            out.includes(id) || rest.some((u) => u.ids.includes(id))
          ),
        );
        const s = sizeOf([...keep].map((id) => size.get(id)!));
        if (s < bestSize) [best, bestSize] = [[i, j], s];
      }
    }
    const [i, j] = best;
    const rest = terms.filter((_, k) => k !== i && k !== j);
    terms = [
      ...rest,
      pair(
        terms[i],
        terms[j],
        (id) => out.includes(id) || rest.some((u) => u.ids.includes(id)),
        size,
      ),
    ];
  }
  // 3. sum what the output does not keep, then put the axes in the output's order
  let { t, ids } = terms[0];
  const drop = ids.flatMap((id, a) => (out.includes(id) ? [] : [a]));
  if (drop.length) {
    t = sum(t, drop);
    ids = ids.filter((_, a) => !drop.includes(a));
  }
  return transpose(t, out.map((id) => ids.indexOf(id)));
}

/** Contracts two terms by one batched matmul; `later(id)`: the label is still needed. */
function pair(a: Term, b: Term, later: (id: string) => boolean, size: Map<string, number>): Term {
  const shared = a.ids.filter((id) => b.ids.includes(id));
  const batch = shared.filter(later);
  const summed = shared.filter((id) => !later(id));
  const keepA = a.ids.filter((id) => !shared.includes(id));
  const keepB = b.ids.filter((id) => !shared.includes(id));
  const n = (ids: string[]) => sizeOf(ids.map((id) => size.get(id)!));
  const ta = reshape(
    transpose(a.t, [...batch, ...keepA, ...summed].map((id) => a.ids.indexOf(id))),
    [n(batch), n(keepA), n(summed)],
  );
  const tb = reshape(
    transpose(b.t, [...batch, ...summed, ...keepB].map((id) => b.ids.indexOf(id))),
    [n(batch), n(summed), n(keepB)],
  );
  const ids = [...batch, ...keepA, ...keepB];
  return { t: reshape(matmul(ta, tb), ids.map((id) => size.get(id)!)), ids };
}
