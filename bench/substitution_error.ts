/**
 * The error of `bandedHessian(…, { method: "substitution" })`: max |band_subst − band_direct|
 * / max |band_direct| for
 *
 * - the trajectory benchmark of issue 4 (b = 2), and
 * - a random banded objective with b = 4 (tests/banded_objectives.ts: quartic, exponential,
 *   cosine and product terms with random f32 weights),
 *
 * at n = 10^3 … 10^6, in f64 on the CPU and in f32 on the CPU and on WebGPU, at a random
 * point x (uniform in [−1, 1), rounded to f32 so that every backend sees the same input).
 * Prints a markdown table. Substitution recovers the entries row by row from the last row
 * up, each from one product minus an entry found before it, so a product's rounding error
 * travels down a chain of about n / (b + 1) links.
 *
 * Run: `XDG_RUNTIME_DIR=/tmp deno run -A bench/substitution_error.ts [--sizes 1000,10000]`
 */
import { bandedHessian, type Device, device, memory, type Tensor, tensor } from "../mod.ts";
import {
  type BandedProblem,
  randomBandedProblem,
  relMaxError,
  trajectoryProblem,
} from "../tests/banded_objectives.ts";
import { randArray } from "../tests/helpers.ts";

const arg = Deno.args.indexOf("--sizes");
const SIZES = arg >= 0 ? Deno.args[arg + 1].split(",").map(Number) : [1e3, 1e4, 1e5, 1e6];

const cpuDev = await device({ backend: "cpu" });
const auto = await device();
const gpuDev: Device | null = auto.kind === "webgpu" ? auto : null;
if (!gpuDev) console.warn("*** No WebGPU adapter: the WebGPU column is skipped ***");

const columns: { name: string; dev: Device | null; dtype: "f32" | "f64" }[] = [
  { name: "CPU f64", dev: cpuDev, dtype: "f64" },
  { name: "CPU f32", dev: cpuDev, dtype: "f32" },
  { name: "WebGPU f32", dev: gpuDev, dtype: "f32" },
];

const objectives: {
  name: string;
  make: (n: number, o: { dtype: "f32" | "f64"; device: Device }) => BandedProblem;
}[] = [
  { name: "trajectory, b = 2", make: (n, o) => trajectoryProblem(n, o) },
  { name: "random, b = 4", make: (n, o) => randomBandedProblem(n, 4, 11, o) },
];

/** The relative error of substitution against direct recovery for one case. */
async function substitutionError(
  make: (n: number, o: { dtype: "f32" | "f64"; device: Device }) => BandedProblem,
  n: number,
  dev: Device,
  dtype: "f32" | "f64",
): Promise<number> {
  const prob = make(n, { dtype, device: dev });
  const x: Tensor = tensor(randArray(n, 5), { dtype, device: dev });
  const opts = { bandwidth: prob.b, layout: "lower" as const };
  const direct = bandedHessian(prob.f, x, opts);
  const subst = bandedHessian(prob.f, x, { ...opts, method: "substitution" });
  const err = relMaxError(await subst.data.data(), await direct.data.data());
  direct.dispose();
  subst.dispose();
  x.dispose();
  prob.dispose();
  return err;
}

const base = memory().tensors;
const rows: string[] = [];
for (const obj of objectives) {
  for (const n of SIZES) {
    const b = obj.name.includes("b = 2") ? 2 : 4;
    const cells: string[] = [];
    for (const c of columns) {
      if (!c.dev) {
        cells.push("—");
        continue;
      }
      const e = await substitutionError(obj.make, n, c.dev, c.dtype);
      cells.push(e === 0 ? "0" : e.toExponential(1));
    }
    rows.push(
      `| ${obj.name} | ${n.toExponential(0).replace("e+", "e")} | ${
        Math.round(n / (b + 1)).toLocaleString("en-US")
      } | ${cells.join(" | ")} |`,
    );
  }
}
if (memory().tensors !== base) throw new Error("substitution_error: tensors leaked");

console.log(
  "max |band_subst − band_direct| / max |band_direct| (one random x in [−1, 1)):\n",
);
console.log(
  `| objective | n | chain links ≈ n/(b+1) | ${columns.map((c) => c.name).join(" | ")} |`,
);
console.log(`|---|---:|---:|${columns.map(() => "---:").join("|")}|`);
for (const r of rows) console.log(r);
