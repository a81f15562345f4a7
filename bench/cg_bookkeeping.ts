/**
 * What an inner CG iteration costs beside its Hessian-vector product on the CPU (issue 11,
 * item 7), and what the banded methods cost instead on a banded problem: the discrete
 * boundary value problem of Moré, Garbow & Hillstrom at n = 1000 (its Hessian JᵀJ is
 * pentadiagonal), from the standard start, gtol 1e-10.
 *
 *   deno run -A bench/cg_bookkeeping.ts
 *
 * Prints, in one run: one HVP; newton-cg for 2 iterations with the inner CG reading back
 * every iteration (the old CPU default) and with "auto" (the default now), as ms per CG
 * iteration; and newton-banded / trust-exact with bandwidth 2 to convergence.
 */
import { concat, hvp, minimize, type MinimizeOptions, slice, type Tensor, tensor } from "../mod.ts";

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

for (let i = 0; i < 20; i++) (await hvp(f, x0, v).data(), undefined);
const t0 = performance.now();
for (let i = 0; i < 200; i++) {
  const y = hvp(f, x0, v);
  await y.data();
  y.dispose();
}
const hvpMs = (performance.now() - t0) / 200;
console.log(
  `# ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")} load; one HVP: ${hvpMs.toFixed(3)} ms`,
);

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
    `newton-cg, cgCheckEvery ${every}: ${r.nit} iterations, ${r.nhev} HVPs, ${
      (ms / 1000).toFixed(1)
    } s: ${(ms / r.nhev).toFixed(3)} ms per CG iteration = ${
      (ms / r.nhev / hvpMs).toFixed(2)
    } HVPs`,
  );
}
for (const method of ["newton-banded", "trust-exact"]) {
  const { ms, r } = await time({ method, bandwidth: 2 });
  console.log(
    `${method}, bandwidth 2: ${r.nit} iterations, ${r.nhev} HVPs, ${
      ms.toFixed(0)
    } ms, ${r.message}`,
  );
}
