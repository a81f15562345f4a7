import { concat, hvp, jit, slice, type Tensor, tensor, add, mul, where, greater, sub, sum, neg, zeros } from "../mod.ts";
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
const vdot = (a: Tensor, b: Tensor) => sum(mul(a, b));
const body = (x: Tensor, z: Tensor, r: Tensor, d: Tensor, rs: Tensor, active: Tensor) => {
  const bd = hvp(f, x, d);
  const curv = vdot(d, bd);
  const pos = greater(curv, 0);
  const step = mul(active, pos);
  const alpha = mul(rs, where(pos, curv, 1).reciprocal());
  const zn = add(z, mul(alpha, d));
  const rn = add(r, mul(alpha, bd));
  const rsn = vdot(rn, rn);
  const beta = mul(rsn, where(step, rs, 1).reciprocal());
  return [where(step, zn, z), where(step, rn, r), where(step, sub(mul(beta, d), rn), d), where(step, rsn, rs), mul(step, greater(rsn, 1e-30))];
};
const jbody = jit(body);
const jh = jit((x: Tensor, d: Tensor) => hvp(f, x, d));
async function time(name: string, k: number, fn: () => Promise<void>) {
  for (let i = 0; i < 5; i++) await fn();
  const t0 = performance.now();
  for (let i = 0; i < k; i++) await fn();
  const ms = (performance.now() - t0) / k;
  console.log(`${name}: ${ms.toFixed(3)} ms`);
  return ms;
}
console.log(`load ${Deno.loadavg().join(" ")}`);
for (let rep = 0; rep < 2; rep++) {
await time("hvp", 100, async () => { const y = hvp(f, x0, v); await y.data(); y.dispose(); });
await time("jit hvp", 100, async () => { const y = jh(x0, v); await y.data(); y.dispose(); });
const st = () => [zeros([n], o), neg(v), add(v, 0), vdot(v, v), tensor(1, o)];
for (const [name, b] of [["cg body", body], ["jit cg body", jbody]] as const) {
  let s = st();
  await time(name + " (read each)", 100, async () => { const ns = b(x0, s[0], s[1], s[2], s[3], s[4]); s.forEach((q) => q.dispose()); s = ns; await s[4].data(); });
  await time(name + " (read every 10)", 100, async () => { for (let i = 0; i < 10; i++) { const ns = b(x0, s[0], s[1], s[2], s[3], s[4]); s.forEach((q) => q.dispose()); s = ns; } await s[4].data(); }).then((ms) => console.log(`  per iteration ${(ms / 10).toFixed(3)} ms`));
}
}
