/**
 * Bad input gives clear errors that name the op and what was wrong: the shapes, dtypes,
 * devices or limits involved. Each check matches the message against the fragments it must
 * contain (in any order), and the error's class.
 */
import assert from "node:assert/strict";
import {
  add,
  arange,
  astype,
  broadcastTo,
  concat,
  device,
  dot,
  exp,
  expandDims,
  full,
  gather,
  grad,
  matmul,
  ones,
  pad,
  reshape,
  scatterAdd,
  slice,
  squeeze,
  stack,
  sum,
  type Tensor,
  tensor,
  tidy,
  to,
  transpose,
  uniform,
  where,
  zeros,
} from "../mod.ts";
import { type Backend, cpu, gpuDev, testAll } from "./helpers.ts";

/** A regex matching text that contains every fragment, in any order. */
function has(...parts: string[]): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(parts.map((p) => `(?=[\\s\\S]*${esc(p)})`).join(""));
}

function mk(b: Backend, shape: number[]): Tensor {
  return zeros(shape, { dtype: b.dtype, device: b.dev });
}

testAll("shape mismatch in elementwise ops names the op and both shapes", (b) => {
  const x = mk(b, [3]), y = mk(b, [2]), z = mk(b, [4, 3]);
  assert.throws(() => add(x, y), { name: "RangeError", message: has("add", "[3]", "[2]") });
  assert.throws(() => x.mul(y), { name: "RangeError", message: has("mul", "[3]", "[2]") });
  assert.throws(() => z.sub(mk(b, [4])), {
    name: "RangeError",
    message: has("sub", "[4,3]", "[4]"),
  });
  assert.throws(() => where(x, z, y), { name: "RangeError", message: has("where", "[2]") });
  assert.throws(() => broadcastTo(z, [3, 3]), {
    name: "RangeError",
    message: has("broadcastTo", "[4,3]", "[3,3]"),
  });
});

testAll("matmul and dot mismatches name the op and the shapes", (b) => {
  assert.throws(() => matmul(mk(b, [2, 3]), mk(b, [4, 5])), {
    name: "RangeError",
    message: has("matmul", "[2,3]", "[4,5]"),
  });
  assert.throws(() => matmul(mk(b, [3]), mk(b, [4])), {
    name: "RangeError",
    message: has("matmul", "[1,3]", "[4,1]"),
  });
  assert.throws(() => matmul(mk(b, [2, 2, 3]), mk(b, [3, 3, 1])), {
    name: "RangeError",
    message: has("matmul", "[2]", "[3]"),
  });
  assert.throws(() => matmul(mk(b, []), mk(b, [2])), {
    name: "RangeError",
    message: has("matmul", "[]", "[2]"),
  });
  assert.throws(() => dot(mk(b, [3]), mk(b, [4])), {
    name: "RangeError",
    message: has("dot", "[3]", "[4]"),
  });
});

testAll("reshape to a wrong size names both shapes", (b) => {
  const x = mk(b, [2, 3]);
  assert.throws(() => reshape(x, [4, 2]), {
    name: "RangeError",
    message: has("reshape", "[2,3]", "[4,2]", "6"),
  });
  assert.throws(() => reshape(x, [-1, 4]), {
    name: "RangeError",
    message: has("reshape", "[2,3]"),
  });
  assert.throws(() => reshape(x, [-1, -1]), { name: "RangeError", message: has("reshape", "-1") });
  assert.throws(() => reshape(x, [2.5, 2]), { name: "RangeError", message: has("reshape", "2.5") });
});

testAll("bad axes and permutations name the op, the axis and the shape", (b) => {
  const x = mk(b, [2, 3]);
  assert.throws(() => sum(x, 2), { name: "RangeError", message: has("sum", "axis 2", "[2,3]") });
  assert.throws(() => x.max(-3), { name: "RangeError", message: has("max", "axis -3", "[2,3]") });
  assert.throws(() => sum(x, [0, 0]), { name: "RangeError", message: has("sum", "repeated") });
  assert.throws(() => sum(x, 0.5), { name: "RangeError", message: has("sum", "0.5") });
  assert.throws(() => concat([x, x], 2), { name: "RangeError", message: has("concat", "axis 2") });
  assert.throws(() => gather(x, [0], 5), { name: "RangeError", message: has("gather", "axis 5") });
  assert.throws(() => expandDims(x, 3), {
    name: "RangeError",
    message: has("expandDims", "axis 3"),
  });
  assert.throws(() => squeeze(x, 0), { name: "RangeError", message: has("squeeze", "[2,3]") });
  assert.throws(() => transpose(x, [0, 0]), {
    name: "RangeError",
    message: has("transpose", "[0,0]", "[2,3]"),
  });
  assert.throws(() => transpose(x, [1]), {
    name: "RangeError",
    message: has("transpose", "[1]", "[2,3]"),
  });
  assert.throws(() => transpose(x, [0, 1, 2]), {
    name: "RangeError",
    message: has("transpose", "[2,3]"),
  });
  assert.throws(() => transpose(x, [0, 5]), {
    name: "RangeError",
    message: has("transpose", "5", "[2,3]"),
  });
});

testAll("slice, pad and concat errors", (b) => {
  const x = mk(b, [5, 4]);
  assert.throws(() => slice(x, [0], [5], [0]), {
    name: "RangeError",
    message: has("slice", "step", "0", "[5,4]"),
  });
  assert.throws(() => slice(x, [0, 0, 0], [1, 1, 1]), {
    name: "RangeError",
    message: has("slice", "[5,4]"),
  });
  assert.throws(() => slice(x, [0.5], [3]), { name: "RangeError", message: has("slice", "0.5") });
  assert.throws(() => slice(x, [NaN], [3]), { name: "RangeError", message: has("slice", "NaN") });
  assert.throws(() => pad(x, [[1, 1]]), { name: "RangeError", message: has("pad", "[5,4]") });
  assert.throws(() => pad(x, [[1, 1], [-1, 0]]), { name: "RangeError", message: has("pad", "-1") });
  assert.throws(() => concat([x, mk(b, [5, 3]), mk(b, [4, 4])], 0), {
    name: "RangeError",
    message: has("concat", "[5,4]", "[5,3]", "[4,4]"),
  });
  assert.throws(() => concat([]), { name: "RangeError", message: has("concat", "empty") });
  assert.throws(() => stack([x, mk(b, [4, 5])]), {
    name: "RangeError",
    message: has("stack", "[5,4]", "[4,5]"),
  });
});

testAll("gather and scatterAdd: indices out of range, wrong dtype, wrong shapes", (b) => {
  const x = mk(b, [3, 4]);
  assert.throws(() => gather(x, [0, 3], 0), {
    name: "RangeError",
    message: has("gather", "index 3", "[3,4]"),
  });
  assert.throws(() => gather(x, [-5], 1), {
    name: "RangeError",
    message: has("gather", "index -5", "[3,4]"),
  });
  const idx = tensor([0, 7], { dtype: "i32", device: b.dev });
  assert.throws(() => gather(x, idx, 0), { name: "RangeError", message: has("gather", "index 7") });
  assert.throws(() => gather(x, [0.5], 0), {
    name: "RangeError",
    message: has("gather", "integer"),
  });
  const fidx = tensor([0, 1], { device: b.dev });
  assert.throws(() => gather(x, fidx, 0), { name: "TypeError", message: has("gather", "i32") });
  assert.throws(() => scatterAdd(mk(b, [2, 4]), [0, 9], 0, [3, 4]), {
    name: "RangeError",
    message: has("scatterAdd", "index 9", "[3,4]"),
  });
  assert.throws(() => scatterAdd(mk(b, [3, 4]), [0, 1], 0, [3, 4]), {
    name: "RangeError",
    message: has("scatterAdd", "[3,4]", "[2]"),
  });
  for (const t of [x, idx, fidx]) t.dispose();
});

testAll("use after dispose names the op and mentions dispose", async (b) => {
  const x = mk(b, [2, 3]);
  x.dispose();
  assert.throws(() => add(x, 1), { message: has("add", "[2,3]", "dispose") });
  assert.throws(() => matmul(x, mk(b, [3, 1])), { message: has("matmul", "dispose") });
  assert.throws(() => exp(x), { message: has("exp", "dispose") });
  assert.throws(() => reshape(x, [6]), { message: has("reshape", "dispose") });
  assert.throws(() => reshape(x, [2, 3]), { message: has("reshape", "dispose") });
  assert.throws(() => transpose(x), { message: has("transpose", "dispose") });
  assert.throws(() => slice(x, [0], [1]), { message: has("slice", "dispose") });
  assert.throws(() => sum(x), { message: has("sum", "dispose") });
  await assert.rejects(() => x.data(), { message: has("data", "dispose") });
  // disposal inside a tidy that already ended
  const kept = tidy(() => mk(b, [2]).add(1));
  kept.dispose();
  assert.throws(() => kept.mul(2), { message: has("mul", "dispose") });
});

testAll("dtypes: mixed dtypes, i32 in arithmetic", (b) => {
  const x = mk(b, [2]);
  const i = tensor([1, 2], { dtype: "i32", device: b.dev });
  assert.throws(() => add(i, i), { name: "TypeError", message: has("add", "i32", "[2]") });
  assert.throws(() => exp(i), { name: "TypeError", message: has("exp", "i32") });
  assert.throws(() => sum(i), { name: "TypeError", message: has("sum", "i32") });
  assert.throws(() => matmul(i, i), { name: "TypeError", message: has("matmul", "i32") });
  assert.throws(() => add(x, i), { name: "TypeError", message: has("add", b.dtype, "i32") });
  if (b.dev.kind === "cpu") {
    const other = zeros([2], { dtype: b.dtype === "f32" ? "f64" : "f32", device: b.dev });
    assert.throws(() => add(x, other), { name: "TypeError", message: has("add", "f32", "f64") });
    assert.throws(() => matmul(x, other), {
      name: "TypeError",
      message: has("matmul", "f32", "f64"),
    });
    assert.throws(() => concat([x, other]), { message: has("concat", "f32", "f64") });
    other.dispose();
  }
  assert.throws(() => zeros([2], { dtype: "f16" as "f32" }), {
    name: "TypeError",
    message: has("zeros", "f16"),
  });
  assert.throws(() => grad((v: Tensor) => v.sum())(i), {
    name: "TypeError",
    message: has("grad", "i32"),
  });
  x.dispose();
  i.dispose();
});

testAll("non-finite, negative and fractional sizes", (b) => {
  const opts = { dtype: b.dtype, device: b.dev };
  for (const [f, name] of [[zeros, "zeros"], [ones, "ones"]] as const) {
    assert.throws(() => f([NaN], opts), { name: "RangeError", message: has(name, "NaN") });
    assert.throws(() => f([-1], opts), { name: "RangeError", message: has(name, "-1") });
    assert.throws(() => f([1.5], opts), { name: "RangeError", message: has(name, "1.5") });
    assert.throws(() => f([2, Infinity], opts), {
      name: "RangeError",
      message: has(name, "Infinity"),
    });
  }
  assert.throws(() => full([3, -2], 1, opts), { name: "RangeError", message: has("full", "-2") });
  assert.throws(() => uniform([NaN], { seed: 1, ...opts }), {
    name: "RangeError",
    message: has("uniform", "NaN"),
  });
  assert.throws(() => tensor([1, 2, 3], { shape: [2, 2], ...opts }), {
    name: "RangeError",
    message: has("tensor", "[2,2]", "3"),
  });
  assert.throws(() => tensor([[1, 2], [3]], opts), {
    name: "TypeError",
    message: has("tensor", "ragged"),
  });
  assert.throws(() => arange(0, 10, 0, opts), {
    name: "RangeError",
    message: has("arange", "step"),
  });
});

Deno.test("device({ backend: 'bogus' }) names the backend and the choices", async () => {
  await assert.rejects(() => device({ backend: "bogus" as "cpu" }), {
    name: "TypeError",
    message: has("device", "bogus", "cpu", "webgpu"),
  });
});

Deno.test({
  name: "mixed devices name both devices [webgpu]",
  ignore: !gpuDev,
  fn: () => {
    const g = gpuDev!;
    const a = tensor([1, 2], { device: cpu }), b = tensor([1, 2], { device: g });
    assert.throws(() => add(a, b), { message: has("add", "cpu", "webgpu") });
    assert.throws(() => b.mul(a), { message: has("mul", "cpu", "webgpu") });
    const m = zeros([2, 2], { device: cpu });
    assert.throws(() => matmul(m, b), { message: has("matmul", "cpu", "webgpu") });
    assert.throws(() => concat([a, b]), { message: has("concat", "cpu", "webgpu") });
    assert.throws(() => where(a, b, b), { message: has("where", "cpu", "webgpu") });
    const idx = tensor([0], { dtype: "i32", device: cpu });
    assert.throws(() => gather(b, idx, 0), { message: has("gather", "cpu", "webgpu") });
    for (const t of [a, b, m, idx]) t.dispose();
  },
});

Deno.test({
  name: "f64 on WebGPU says WGSL has no f64 and suggests the CPU backend [webgpu]",
  ignore: !gpuDev,
  fn: () => {
    const g = gpuDev!;
    const msg = has("f64", "WGSL", 'backend: "cpu"');
    assert.throws(() => zeros([2], { dtype: "f64", device: g }), {
      name: "TypeError",
      message: msg,
    });
    assert.throws(() => tensor(new Float64Array([1, 2]), { device: g }), {
      name: "TypeError",
      message: msg,
    });
    assert.throws(() => tensor([1, 2], { dtype: "f64", device: g }), { message: msg });
    assert.throws(() => uniform([2], { seed: 1, dtype: "f64", device: g }), { message: msg });
    assert.throws(() => arange(3, undefined, 1, { dtype: "f64", device: g }), { message: msg });
    const c64 = tensor([1, 2], { dtype: "f64", device: cpu });
    assert.throws(() => to(c64, g), { name: "TypeError", message: msg });
    const x = tensor([1, 2], { device: g });
    assert.throws(() => astype(x, "f64"), { name: "TypeError", message: msg });
    c64.dispose();
    x.dispose();
  },
});

Deno.test({
  name: "tensors over maxStorageBufferBindingSize are a clear RangeError [webgpu]",
  ignore: !gpuDev,
  fn: async () => {
    const g = gpuDev!;
    const limit = String(g.backend.maxStorageBytes);
    // 40,000,000 f32 = 160,000,000 bytes > 128 MiB on lavapipe
    assert.ok(40_000_000 * 4 > g.backend.maxStorageBytes, "the test needs a size over the limit");
    assert.throws(() => zeros([40_000_000], { device: g }), {
      name: "RangeError",
      message: has("zeros", "[40000000]", "160000000", limit, "maxStorageBufferBindingSize"),
    });
    assert.throws(() => full([8000, 5000], 1, { device: g }), {
      name: "RangeError",
      message: has("full", "[8000,5000]", limit),
    });
    assert.throws(() => uniform([40_000_000], { seed: 3, device: g }), {
      name: "RangeError",
      message: has("uniform", limit),
    });
    // results of ops are checked too, naming the op
    const one = tensor([1], { device: g });
    assert.throws(() => broadcastTo(one, [40_000_000]), {
      name: "RangeError",
      message: has("broadcastTo", "[40000000]", limit),
    });
    const v = zeros([20_000_000], { device: g });
    assert.throws(() => concat([v, v, v]), {
      name: "RangeError",
      message: has("concat", "[60000000]", limit),
    });
    assert.throws(() => pad(v, [[0, 20_000_000]]), {
      name: "RangeError",
      message: has("pad", limit),
    });
    // and the device still works afterwards
    const y = one.add(1);
    assert.deepEqual([...await y.data()], [2]);
    for (const t of [one, v, y]) t.dispose();
  },
});

Deno.test("errors inside transforms still name the op and shapes", () => {
  const x = tensor([1, 2, 3], { device: cpu });
  assert.throws(() => grad((v: Tensor) => v.add(tensor([1, 2], { device: cpu })).sum())(x), {
    name: "RangeError",
    message: has("add", "[3]", "[2]"),
  });
  assert.throws(() => grad((v: Tensor) => v.mul(2))(x), {
    name: "RangeError",
    message: has("grad", "scalar", "[3]"),
  });
  x.dispose();
});
