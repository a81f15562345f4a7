/**
 * Misuse of the transforms fails at once with an error that names the transform and says
 * what was expected: non-scalar outputs for grad, tangents of the wrong shape, argnums out
 * of range, functions that return something other than a Tensor, pullbacks called with a
 * wrong cotangent or after dispose. Each case also checks that nothing leaked.
 */
import assert from "node:assert/strict";
import {
  grad,
  hessian,
  hvp,
  jacobian,
  jvp,
  memory,
  type Tensor,
  tensor,
  tidy,
  valueAndGrad,
  vjp,
} from "../mod.ts";
import { assertNoLeak, cpu } from "./helpers.ts";

const vec = (...v: number[]) => tensor(new Float64Array(v), { device: cpu });

/** Runs `fn` with fresh inputs and checks it throws `pattern` and leaves memory as it was. */
function throwsClean(
  pattern: RegExp,
  fn: (x: Tensor, y: Tensor) => unknown,
  errorType: new (...a: never[]) => Error = Error,
): void {
  const x = vec(1, 2, 3), y = vec(4, 5, 6);
  const before = memory();
  // tidy frees what fn itself makes (bad tangents etc.); what is left would be a library leak
  assert.throws(() => tidy(() => fn(x, y)), (e: unknown) => {
    assert.ok(e instanceof errorType, `expected a ${errorType.name}, got ${e}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
  assertNoLeak(before, "after the error");
  x.dispose();
  y.dispose();
}

Deno.test("grad / valueAndGrad of a non-scalar output say it must be a scalar and show the shape", () => {
  const re = /^grad: the function must return a scalar \(one element\), got shape \[3\]/;
  throwsClean(re, (x) => grad((a: Tensor) => a.mul(2))(x), RangeError);
  throwsClean(
    /^valueAndGrad: the function must return a scalar .*got shape \[3\].*vjp or jacobian/,
    (x) => valueAndGrad((a: Tensor) => a.exp())(x),
    RangeError,
  );
  // inside a nested transform too
  throwsClean(
    /^grad: .*must return a scalar.*\[3\]/,
    (x) => grad((a: Tensor) => grad((b: Tensor) => b.square())(a).sum())(x),
    RangeError,
  );
  throwsClean(
    /must return a scalar.*got shape \[3\]/,
    (x) => hessian((a: Tensor) => a.square())(x),
  );
});

Deno.test("jvp: a tangent of the wrong shape names the expected shapes", () => {
  throwsClean(
    /^jvp: tangent 0 has shape \[2\]; expected the primal's shape \[3\] or \[K, \.\.\.\[3\]\]/,
    (x) => jvp((a) => a.sin(), [x], [vec(1, 1)]),
    RangeError,
  );
  throwsClean(
    /^jvp: tangent 1 has shape \[3,2\]; expected the primal's shape \[3\]/,
    (x, y) =>
      jvp((a, b) => a.mul(b).sum(), [x, y], [
        vec(1, 0, 0),
        tensor(new Float64Array(6), { shape: [3, 2], device: cpu }),
      ]),
    RangeError,
  );
  throwsClean(
    /^jvp: tangents disagree on the probe count \(2 and 4\)/,
    (x, y) =>
      jvp((a, b) => a.mul(b).sum(), [x, y], [
        tensor(new Float64Array(6), { shape: [2, 3], device: cpu }),
        tensor(new Float64Array(12), { shape: [4, 3], device: cpu }),
      ]),
    RangeError,
  );
  throwsClean(
    /^jvp: tangents disagree on the probe count \(0 and 2\)/,
    (x, y) =>
      jvp((a, b) => a.mul(b).sum(), [x, y], [
        vec(1, 0, 0),
        tensor(new Float64Array(6), { shape: [2, 3], device: cpu }),
      ]),
    RangeError,
  );
  throwsClean(
    /^jvp: primals and tangents must be arrays of equal length/,
    (x, y) => jvp((a) => a.sin(), [x, y], [x]),
    RangeError,
  );
  throwsClean(
    /^jvp: tangent 0 is f32 but its primal is f64/,
    (x) => jvp((a) => a.sin(), [x], [tensor([1, 2, 3], { device: cpu })]),
    TypeError,
  );
});

Deno.test("hvp: v of the wrong shape names x's shape and the probe form", () => {
  throwsClean(
    /^hvp: v has shape \[2\]; expected x's shape \[3\] or \[K, \.\.\.\[3\]\] for K probes/,
    (x) => hvp((a) => a.square().sum(), x, vec(1, 2)),
    RangeError,
  );
  throwsClean(
    /^hvp: v has shape \[2,2\]; expected x's shape \[3\]/,
    (x) =>
      hvp((a) => a.square().sum(), x, tensor(new Float64Array(4), { shape: [2, 2], device: cpu })),
    RangeError,
  );
  throwsClean(
    /^hvp: v is f32 but x is f64/,
    (x) => hvp((a) => a.square().sum(), x, tensor([1, 2, 3], { device: cpu })),
    TypeError,
  );
});

Deno.test("argnums out of range says how many arguments there were", () => {
  throwsClean(
    /^grad: argnums 1 is out of range for a call with 1 argument\(s\)/,
    (x) => grad((a: Tensor) => a.sum(), { argnums: 1 })(x),
    RangeError,
  );
  throwsClean(
    /^grad: argnums \[0,2\] is out of range for a call with 2 argument\(s\)/,
    (x, y) => grad((a: Tensor, b: Tensor) => a.mul(b).sum(), { argnums: [0, 2] })(x, y),
    RangeError,
  );
  throwsClean(
    /^valueAndGrad: argnums -1 is out of range/,
    (x) => valueAndGrad((a: Tensor) => a.sum(), { argnums: -1 })(x),
    RangeError,
  );
  throwsClean(
    /^grad: argnums is empty/,
    (x) => grad((a: Tensor) => a.sum(), { argnums: [] })(x),
    RangeError,
  );
});

Deno.test("a function that returns something other than a Tensor is named as such", () => {
  const bad: [unknown, RegExp][] = [
    [3, /got number 3/],
    [[1, 2], /got an array \(wrap it with tensor\(\.\.\.\)\)/],
    [undefined, /got undefined$/],
  ];
  for (const [value, re] of bad) {
    const f = (() => value) as unknown as (x: Tensor) => Tensor;
    const must = (op: string) =>
      new RegExp(`^${op}: the function must return a Tensor, ` + re.source);
    throwsClean(must("grad"), (x) => grad(f)(x), TypeError);
    throwsClean(must("valueAndGrad"), (x) => valueAndGrad(f)(x), TypeError);
    throwsClean(must("jvp"), (x) => jvp(f, [x], [x]), TypeError);
    throwsClean(must("vjp"), (x) => vjp(f, x), TypeError);
    throwsClean(new RegExp(`must return a Tensor, ` + re.source), (x) => hvp(f, x, x), TypeError);
    throwsClean(
      new RegExp(`must return a Tensor, ` + re.source),
      (x) => jacobian(f, { mode: "fwd" })(x),
      TypeError,
    );
    throwsClean(
      new RegExp(`must return a Tensor, ` + re.source),
      (x) => jacobian(f, { mode: "rev" })(x),
      TypeError,
    );
  }
});

Deno.test("non-Tensor arguments and non-functions are named", () => {
  throwsClean(
    /^grad: argument 0 must be a Tensor, got an array/,
    () => grad((a: Tensor) => a.sum())([1, 2] as unknown as Tensor),
    TypeError,
  );
  throwsClean(/^grad: expected a function, got number 5/, () => grad(5 as never), TypeError);
  throwsClean(
    /^jvp: primal 0 must be a Tensor, got number 1/,
    (x) => jvp((a) => a, [1 as unknown as Tensor], [x]),
    TypeError,
  );
  throwsClean(
    /^grad: argument 0 must be a floating-point tensor, got i32/,
    () => grad((a: Tensor) => a.sum())(tensor([1, 2], { dtype: "i32", device: cpu })),
    TypeError,
  );
});

Deno.test("vjp pullback: a cotangent of the wrong shape or dtype names the output's", async () => {
  const x = vec(1, 2, 3);
  const [y, back] = vjp((a) => a.mul(2), x); // output [3] f64
  const before = memory();
  const bad: [Tensor | unknown, RegExp, new (...a: never[]) => Error][] = [
    [
      vec(1, 2),
      /^vjp pullback: the cotangent has shape \[2\] f64; expected the output's \[3\] f64/,
      RangeError,
    ],
    [
      tensor(new Float64Array(4), { shape: [2, 2], device: cpu }),
      /has shape \[2,2\] f64; expected the output's \[3\] f64/,
      RangeError,
    ],
    [
      tensor([1, 2, 3], { device: cpu }),
      /has shape \[3\] f32; expected the output's \[3\] f64/,
      RangeError,
    ],
    [[1, 2, 3], /^vjp pullback: the cotangent must be a Tensor, got an array/, TypeError],
  ];
  for (const [ct, re, type] of bad) {
    assert.throws(() => back(ct as Tensor), (e: unknown) => {
      assert.ok(e instanceof type, `expected a ${type.name}, got ${e}`);
      assert.match((e as Error).message, re);
      return true;
    });
  }
  for (const [ct] of bad) if (ct instanceof Object && "dispose" in ct) (ct as Tensor).dispose();
  assertNoLeak(before, "after the failed pullbacks");
  // the pullback still works afterwards: Jᵀv = 2v
  const v = vec(1, 0, -1);
  const [g] = back(v);
  assert.deepEqual(Array.from(await g.data()), [2, 0, -2]);
  [g, v, y, x].forEach((t) => t.dispose());
  back.dispose();
});

Deno.test("vjp pullback used after dispose says so", () => {
  const x = vec(1, 2, 3);
  const before = memory();
  const [y, back] = vjp((a) => a.exp().sum(), x);
  back.dispose();
  back.dispose(); // twice is fine
  y.dispose();
  assertNoLeak(before, "after dispose");
  const ct = tensor(new Float64Array([1]), { shape: [], device: cpu });
  assert.throws(() => back(ct), /^Error: vjp: the pullback was used after dispose\(\)/);
  ct.dispose();
  x.dispose();
});
