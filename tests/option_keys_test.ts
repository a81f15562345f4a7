/**
 * Every exported function that takes an options object rejects an unknown key with an error
 * that names the function and the key (and the right spelling when one is close). The list
 * of such functions comes from `deno doc --json mod.ts` (every parameter named opts /
 * options or typed `…Options` or as an object literal), so a new one without a row here
 * fails this test.
 */
import assert from "node:assert/strict";
import * as cv from "../mod.ts";
import { type Tensor, tensor } from "../mod.ts";

const f = (x: Tensor) => x.square().sum();
const x = () => tensor([1, 2, 3], { dtype: "f64" });
const mv = (v: Tensor) => v.mul(2);
const ab = () => tensor([[2, 2, 2]], { dtype: "f64" });
const bad = { zzz: 1 } as never;

/** Each function called with a misspelt (or foreign) key, and the key the error must name. */
const CALLS: Record<string, [() => unknown, string, string?]> = {
  arange: [() => cv.arange(0, 3, 1, { dtyp: "f32" } as never), "dtyp", "dtype"],
  bandedHessian: [
    () => cv.bandedHessian(f, x(), { band_width: 1 } as never),
    "band_width",
    "bandwidth",
  ],
  cg: [() => cv.cg(mv, x(), { tol: 1e-8 } as never), "tol"],
  choleskyBanded: [() => cv.choleskyBanded(ab(), { uplo: "L" } as never), "uplo"],
  colorPattern: [
    () =>
      cv.colorPattern(cv.SparsityPattern.fromEntries([2, 2], [[0, 0], [1, 1]]), {
        kind: "star",
        ordr: "natural",
      } as never),
    "ordr",
    "order",
  ],
  combProbes: [() => cv.combProbes(4, 2, { dtyp: "f64" } as never), "dtyp", "dtype"],
  device: [() => cv.device({ backnd: "cpu" } as never), "backnd", "backend"],
  eye: [() => cv.eye(2, { diag: 1 } as never), "diag"],
  full: [() => cv.full([2], 1, { devise: cv.cpu() } as never), "devise", "device"],
  fullLike: [() => cv.fullLike(x(), 1, { dtyp: "f32" } as never), "dtyp", "dtype"],
  grad: [() => cv.grad(f, { argnum: 0 } as never), "argnum", "argnums"],
  hessian: [() => cv.hessian(f, { chunk_size: 2 } as never), "chunk_size", "chunkSize"],
  hessianDiagonal: [
    () => cv.hessianDiagonal(f, x(), { method: "hutchinson", sample: 3 } as never),
    "sample",
    "samples",
  ],
  hessianEigenvalues: [
    () => cv.hessianEigenvalues(f, x(), { max_iter: 3 } as never),
    "max_iter",
    "maxIter",
  ],
  hessianTrace: [
    () => cv.hessianTrace(f, x(), { method: "hutchinson", n_samples: 3 } as never),
    "n_samples",
    "samples",
  ],
  inverseHvp: [
    () => cv.inverseHvp(f, x(), x(), { method: "cg", maxiter: 3 } as never),
    "maxiter",
    "maxIter",
  ],
  jacobian: [() => cv.jacobian(f, { mod: "fwd" } as never), "mod", "mode"],
  jit: [() => cv.jit(f, { statics: [0] } as never), "statics", "static"],
  linspace: [() => cv.linspace(0, 1, 3, { endpoint: false } as never), "endpoint"],
  minimize: [
    () => cv.minimize(f, x(), { method: "newton-cg", maxiter: 3 } as never),
    "maxiter",
    "maxIter",
  ],
  mlp: [() => cv.mlp([2, 1], "tanh", { random_state: 0 } as never), "random_state", "seed"],
  neumann: [() => cv.neumann(mv, x(), { terms: 2, scale: 0.1, maxiter: 3 } as never), "maxiter"],
  neumannSeries: [
    () => cv.neumannSeries(mv, x(), { terms: 2, scale: 0.1, maxiter: 3 } as never),
    "maxiter",
  ],
  normal: [() => cv.normal([2], { seed: 0, sed: 1 } as never), "sed"],
  ones: [() => cv.ones([2], bad), "zzz"],
  onesLike: [() => cv.onesLike(x(), bad), "zzz"],
  rademacher: [() => cv.rademacher([2], { seed: 0, shape: [3] } as never), "shape"],
  registerMethod: [
    () => cv.registerMethod("option-test", () => Promise.reject(), { option: [] } as never),
    "option",
    "options",
  ],
  solveBanded: [() => cv.solveBanded(ab(), x(), { lowr: true } as never), "lowr", "lower"],
  sparseHessian: [() => cv.sparseHessian(f, x(), { patern: null } as never), "patern", "pattern"],
  sparseJacobian: [() => cv.sparseJacobian(f, x(), { colouring: "x" } as never), "colouring"],
  std: [() => cv.std(x(), 0, { dof: 1 } as never), "dof", "ddof"],
  tensor: [() => cv.tensor([1], { dtyp: "f32" } as never), "dtyp", "dtype"],
  uniform: [() => cv.uniform([2], { seed: 0, ofset: 1 } as never), "ofset", "offset"],
  valueAndGrad: [() => cv.valueAndGrad(f, { has_aux: true } as never), "has_aux"],
  variance: [() => cv.variance(x(), 0, { keep_dims: true } as never), "keep_dims", "keepdims"],
  zeros: [() => cv.zeros([2], bad), "zzz"],
  zerosLike: [() => cv.zerosLike(x(), bad), "zzz"],
  "Tensor.std": [() => x().std(0, { dof: 1 } as never), "dof", "ddof"],
  "Tensor.var": [() => x().var(0, { dof: 1 } as never), "dof", "ddof"],
};

/** Exported functions (and Tensor methods) with an options parameter, from deno doc. */
async function optionTakers(): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", new URL("../mod.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  interface Param {
    name?: string;
    left?: { name?: string };
    tsType?: { repr?: string; kind?: string };
  }
  const takes = (ps: Param[]) =>
    ps.some((p) => {
      const name = p.name ?? p.left?.name ?? "";
      const t = p.tsType ?? {};
      return /^(opts|options|maybeOpts)$/.test(name) || /Options$/.test(t.repr ?? "") ||
        t.kind === "typeLiteral";
    });
  const doc = JSON.parse(new TextDecoder().decode(out.stdout));
  const names = new Set<string>();
  for (const s of Object.values(doc.nodes as Record<string, { symbols: unknown[] }>)[0].symbols) {
    const sym = s as {
      name: string;
      declarations: { kind: string; def: Record<string, unknown> }[];
    };
    for (const d of sym.declarations) {
      if (d.kind === "function" && takes(d.def.params as Param[])) names.add(sym.name);
      if (d.kind === "class") {
        for (
          const m of (d.def.methods ?? []) as { name: string; functionDef: { params: Param[] } }[]
        ) {
          if (takes(m.functionDef.params)) names.add(`${sym.name}.${m.name}`);
        }
      }
    }
  }
  return [...names].sort();
}

Deno.test("every options-taking export rejects unknown keys, naming itself and the key", async () => {
  const takers = await optionTakers();
  assert.deepEqual(Object.keys(CALLS).sort(), takers, "rows of CALLS = options-taking exports");
  for (const [name, [call, key, suggestion]] of Object.entries(CALLS)) {
    // variance reports under NumPy's name, as x.var() does
    const fn = name === "variance" ? "var" : name.replace(/^Tensor\./, "");
    let err: unknown = null;
    try {
      await call();
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof Error, `${name}: an unknown option "${key}" was accepted`);
    const m = err.message;
    assert.ok(m.includes(`${fn}`) && m.includes(`"${key}"`), `${name}: ${m}`);
    if (suggestion) {
      assert.ok(m.includes(`"${suggestion}"`), `${name} should suggest ${suggestion}: ${m}`);
    }
  }
});
