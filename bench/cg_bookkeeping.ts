/**
 * What an inner CG iteration costs beside its Hessian-vector product on the CPU (issue 11,
 * item 7), and what the banded methods cost instead on a banded problem: the discrete
 * boundary value problem of Moré, Garbow & Hillstrom at n = 1000 (its Hessian JᵀJ is
 * pentadiagonal), from the standard start, gtol 1e-10. Everything in one run, so the ratios
 * are comparable (each figure the minimum over 5 batches):
 *
 *   deno run -A bench/cg_bookkeeping.ts
 *
 * 1. one HVP traced (`hvp` called afresh: graph building, transform tracing, kernel lookup)
 *    and replayed (`jit(hvp)`, what `minimize` uses: its `Objective` replays f's passes);
 * 2. one CG iteration (N&W Alg. 7.1's masked update, as newton-cg's) with its bookkeeping
 *    as plain ops (newton-cg before) and as one jitted update (newton-cg now), both after a
 *    replayed HVP, reading back every iteration and every tenth;
 * 3. newton-cg itself to convergence (after a warm-up run that traces), cgCheckEvery 1,
 *    "auto" (every k-th iteration on the CPU, k from the previous solve's length) and 10, per
 *    CG iteration in process CPU time, with its message (which names the detected band);
 * 4. newton-banded and trust-exact to convergence (bandwidth detected);
 * 5. SciPy 1.10 (`bench/cg_bookkeeping_scipy.py`, NumPy derivatives) on the same problem, in
 *    a child process of this run: Newton-CG with its defaults, trust-ncg to gtol 1e-10.
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

/** ms per call of `fn`: the minimum over 5 batches of k/5 calls (the machine is shared). */
async function ms(k: number, fn: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 10; i++) await fn();
  let best = Infinity;
  for (let b = 0; b < 5; b++) {
    const t0 = performance.now();
    for (let i = 0; i < k / 5; i++) await fn();
    best = Math.min(best, (performance.now() - t0) / (k / 5));
  }
  return best;
}

console.log(`# load ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
const hvpJit = jit((x: Tensor, d: Tensor) => hvp(f, x, d));
// products chained (each one's input is the previous one's output, scaled: ‖H‖ ≈ 16), so
// that reading only the last still computes all of them, as in CG
const chained = jit((x: Tensor, d: Tensor) => hvp(f, x, d).mul(1 / 16));
const hvpCost: Record<string, number> = {};
for (
  const [name, fn] of [["traced", (x: Tensor, d: Tensor) => hvp(f, x, d).mul(1 / 16)], [
    "replayed",
    chained,
  ]] as const
) {
  for (const every of [1, 10]) {
    let d = add(v, 0);
    hvpCost[`${name} ${every}`] = await ms(20, async () => {
      for (let i = 0; i < every; i++) {
        const next = fn(x0, d);
        d.dispose();
        d = next;
      }
      await d.data();
    }) / every;
    d.dispose();
  }
}
const replayed = hvpCost["replayed 10"];
console.log(
  `one HVP, read every 1 / every 10: traced ${hvpCost["traced 1"].toFixed(3)} / ${
    hvpCost["traced 10"].toFixed(3)
  } ms, replayed (jit) ${hvpCost["replayed 1"].toFixed(3)} / ${replayed.toFixed(3)} ms`,
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
    const product = hvpCost[`replayed ${every}`];
    console.log(
      `CG iteration, bookkeeping ${name}, read every ${every}: ${per.toFixed(3)} ms, of which ` +
        `bookkeeping ${(per - product).toFixed(3)} ms = ${
          ((per - product) / product).toFixed(2)
        } × its HVP`,
    );
  }
}

/** CPU seconds of this process (user + system), from /proc (Linux). */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** A run of `minimize`, timed in process CPU time (the wall time on a shared machine is not). */
async function time(o: MinimizeOptions) {
  const c0 = cpuSeconds();
  const r = await minimize(f, x0, { gtol: 1e-10, ...o });
  const ms = (cpuSeconds() - c0) * 1000;
  r.x.dispose();
  r.jac.dispose();
  return { ms, r };
}
await time({ method: "newton-cg", maxIter: 1 }); // warm-up: the first run traces
for (const every of [1, "auto", 10] as const) {
  const { ms, r } = await time({ method: "newton-cg", cgCheckEvery: every });
  console.log(
    `newton-cg to gtol 1e-10, cgCheckEvery ${every}: ${r.nit} iterations, ${r.nhev} HVPs, ‖g‖ = ${
      r.gradNorm.toExponential(2)
    }, ${(ms / 1000).toFixed(1)} CPU s: ${
      (ms / r.nhev).toFixed(3)
    } ms per CG iteration (HVP included) = ${(ms / r.nhev / replayed).toFixed(2)} replayed HVPs; ${
      r.message.slice(0, 60)
    }…`,
  );
}
for (const method of ["newton-banded", "trust-exact"]) {
  const { ms, r } = await time({ method });
  console.log(
    `${method} (bandwidth detected): ${r.nit} iterations, ${r.nhev} HVPs, ‖g‖ = ${
      r.gradNorm.toExponential(2)
    }, ${ms.toFixed(0)} CPU ms, ${r.message}`,
  );
}

const py = await new Deno.Command("/usr/bin/python3", {
  args: [new URL("./cg_bookkeeping_scipy.py", import.meta.url).pathname],
  stdout: "piped",
}).output();
for (const line of new TextDecoder().decode(py.stdout).trim().split("\n")) {
  const r = JSON.parse(line);
  console.log(
    `SciPy ${r.scipy} ${r.method} ${JSON.stringify(r.options)}: ${r.nit} iterations, ${r.nhev} ` +
      `HVPs, ‖g‖ = ${r.gnorm.toExponential(2)}, ${r.cpu_s.toFixed(2)} CPU s: ${
        (r.cpu_s * 1000 / r.nhev).toFixed(3)
      } ms per CG iteration`,
  );
}
console.log(`# load ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
