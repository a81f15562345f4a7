import assert from "node:assert/strict";
import { boolOption, checkOptions, oneOf, suggestKey } from "../src/options.ts";

Deno.test("checkOptions: unknown keys are errors naming the function and the right spelling", () => {
  const known = ["maxIter", "gtol", "onIteration"];
  checkOptions("minimize", undefined, known);
  checkOptions("minimize", { maxIter: 3, gtol: undefined }, known);
  assert.throws(
    () => checkOptions("minimize", { maxiter: 3 }, known),
    /minimize: unknown option "maxiter"; did you mean "maxIter"\?/,
  );
  assert.throws(
    () => checkOptions("minimize", { gtool: 1 }, known),
    /did you mean "gtol"/,
  );
  assert.throws(
    () => checkOptions("cg", { tol: 1e-8 }, ["rtol", "atol"], { tol: "use rtol or atol" }),
    /cg: unknown option "tol"; use rtol or atol/,
  );
  assert.throws(() => checkOptions("f", { zzz: 1 }, known), /unknown option "zzz" \(known options/);
  assert.throws(() => checkOptions("f", 3, known), /f: options must be an object, got number 3/);
  assert.throws(() => checkOptions("f", [1], known), /options must be an object/);
});

Deno.test("suggestKey: SciPy/JAX spellings, case and small typos", () => {
  assert.equal(suggestKey("max_iter", ["maxIter"]), "maxIter");
  assert.equal(suggestKey("BANDWIDTH", ["bandwidth"]), "bandwidth");
  assert.equal(suggestKey("in_axes", ["inAxes", "outAxes"]), "inAxes");
  assert.equal(suggestKey("colour", ["bandwidth"]), null);
});

Deno.test("boolOption and oneOf reject values of the wrong kind", () => {
  assert.equal(boolOption("f", "lower", undefined, false), false);
  assert.equal(boolOption("f", "lower", true, false), true);
  assert.throws(
    () => boolOption("choleskyBanded", "lower", "no", false),
    /choleskyBanded: option lower must be true or false, got string no/,
  );
  assert.equal(oneOf("f", "layout", undefined, ["upper", "lower"], "upper"), "upper");
  assert.throws(
    () => oneOf("f", "layout", "up", ["upper", "lower"], "upper"),
    /option layout must be one of "upper", "lower", got "up"/,
  );
});
