/**
 * What an inner CG iteration costs beside its Hessian-vector product on the CPU (issue 11,
 * item 7), and what the banded methods cost instead on a banded problem: the discrete
 * boundary value problem of Moré, Garbow & Hillstrom at n = 1000 (its Hessian JᵀJ is
 * pentadiagonal), from the standard start, gtol 1e-10. Everything in one run, so the ratios
 * are comparable:
 *
 *   deno run -A bench/cg_bookkeeping.ts
 *
 * 1. one HVP traced (`hvp` called afresh: graph building, transform tracing, kernel lookup)
 *    and replayed (`jit(hvp)`, what `minimize` uses now);
 * 2. one CG iteration (N&W Alg. 7.1's masked update, as newton-cg's) with its bookkeeping
 *    as plain ops (newton-cg before) and as one jitted update (newton-cg now), both after a
 *    replayed HVP, reading back every iteration and every tenth;
 * 3. newton-cg itself for 2 iterations, cgCheckEvery 1 and "auto", per CG iteration;
 * 4. newton-banded and trust-exact to convergence (bandwidth detected), and newton-cg's
 *    message on this problem.
 */
import {
  add,
  concat,
  greater,
  hvp,
  jit,
  minimize,
  type MinimizeOptions,
  mul,
  neg,
  slice,
  sub,
  sum,
  type Tensor,
  tensor,
  where,
  zeros,
} from "../mod.ts";

const n = 1000, h = 1 / (n + 1);
const o = { dtype: "f64" as const };
const t = tensor(Float64Array.from({ length: n }, (_, i) => (i + 1) * h), o);
const zero = tensor([0], o);
const f = (x: Tensor) => {
  const prev = concat([zero, slice(x, [0], [n - 1])], 0);
  const next = concat([slice(x, [1], [n]), zero], 0);
  return x.mul(2).sub(prev).sub(next).add(x.add(t).add(1).pow(3).mul(h * h / 2)).square().sum();
};
const x0 = tensor(Float64Array.from({ length: n }, (_, i) => (i + 1) * h * ((i + 1) * h - 1)), o);
const v = tensor(Float64Array.from({ length: n }, (_, i) => Math.sin(i)), o);

async function ms(k: number, fn: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 10; i++) await fn();
  const t0 = performance.now();
  for (let i = 0; i < k; i++) await fn();
  return (performance.now() - t0) / k;
}

console.log(`# load ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
const hvpJit = jit((x: Tensor, d: Tensor) => hvp(f, x, d));
const traced = await ms(100, async () => {
  const y = hvp(f, x0, v);
  await y.data();
  y.dispose();
});
const replayed = await ms(200, async () => {
  const y = hvpJit(x0, v);
  await y.data();
  y.dispose();
});
console.log(
  `one HVP: traced ${traced.toFixed(3)} ms, replayed (jit) ${replayed.toFixed(3)} ms ` +
    `(${(traced / replayed).toFixed(1)}×)`,
);

// the masked CG update of newton-cg, written out
type S = [Tensor, Tensor, Tensor, Tensor, Tensor];
const vdot = (a: Tensor, b: Tensor) => sum(mul(a, b));
const update = (s: S, bd: Tensor): S => {
  const [z, r, d, rs, active] = s;
  const curv = vdot(d, bd);
  const pos = greater(curv, 0);
  const step = mul(active, pos);
  const alpha = mul(rs, where(pos, curv, 1).reciprocal());
  const zn = add(z, mul(alpha, d));
  const rn = add(r, mul(alpha, bd));
  const rsn = vdot(rn, rn);
  const beta = mul(rsn, where(step, rs, 1).reciprocal());
  return [
    where(step, zn, z),
    where(step, rn, r),
    where(step, sub(mul(beta, d), rn), d),
    where(step, rsn, rs),
    mul(step, greater(rsn, 1e-300)),
  ];
};
const updateJit = jit(update);
for (const [name, up] of [["plain ops", update], ["jitted", updateJit]] as const) {
  for (const every of [1, 10]) {
    let s: S = [zeros([n], o), neg(v), add(v, 0), vdot(v, v), tensor(1, o)];
    const per = await ms(20, async () => {
      for (let i = 0; i < every; i++) {
        const bd = hvpJit(x0, s[2]);
        const next = up(s, bd);
        bd.dispose();
        s.forEach((q) => q.dispose());
        s = next;
      }
      await s[4].data();
    }) / every;
    s.forEach((q) => q.dispose());
    console.log(
      `CG iteration, bookkeeping ${name}, read every ${every}: ${per.toFixed(3)} ms = ${
        (per / replayed).toFixed(2)
      } replayed HVPs`,
    );
  }
}

async function time(o: MinimizeOptions) {
  const t0 = performance.now();
  const r = await minimize(f, x0, { gtol: 1e-10, ...o });
  const ms = performance.now() - t0;
  r.x.dispose();
  r.jac.dispose();
  return { ms, r };
}
for (const every of [1, "auto"] as const) {
  const { ms, r } = await time({ method: "newton-cg", maxIter: 2, cgCheckEvery: every });
  console.log(
    `newton-cg (2 iterations), cgCheckEvery ${every}: ${r.nhev} HVPs, ${
      (ms / 1000).toFixed(2)
    } s: ${(ms / r.nhev).toFixed(3)} ms per CG iteration = ${
      (ms / r.nhev / replayed).toFixed(2)
    } replayed HVPs`,
  );
}
for (const method of ["newton-banded", "trust-exact"]) {
  const { ms, r } = await time({ method });
  console.log(
    `${method} (bandwidth detected): ${r.nit} iterations, ${r.nhev} HVPs, ${
      ms.toFixed(0)
    } ms, ${r.message}`,
  );
}
const { ms: cgMs, r } = await time({ method: "newton-cg", maxIter: 5 });
console.log(
  `newton-cg, 5 iterations: ${r.nhev} HVPs, ${(cgMs / 1000).toFixed(1)} s; message: ${r.message}`,
);
