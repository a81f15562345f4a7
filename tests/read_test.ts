/**
 * Reading values: `data(out)` into a caller's array, synchronous `dataSync()` / `itemSync()`
 * (CPU only; on WebGPU an error naming the async call), `toArray()` as nested numbers, and
 * how tensors print (`toString`, `console.log` through Deno.customInspect and Node's
 * inspect symbol). References are the values written into the tests.
 */
import assert from "node:assert/strict";
import {
  choleskyBanded,
  grad,
  type NestedArray,
  solveBanded,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";
import { type Backend, testAll } from "./helpers.ts";

const mk = (bk: Backend, data: number[], shape?: number[]): Tensor =>
  tensor(data, { shape, dtype: bk.dtype, device: bk.dev });

const arrayType = (bk: Backend) => (bk.dtype === "f64" ? Float64Array : Float32Array);

testAll("data(out) writes into the caller's array and returns it", async (bk) => {
  const x = mk(bk, [1, 2, 3, 4], [2, 2]).mul(3);
  const out = new (arrayType(bk))(4).fill(-1);
  const v = await x.data(out);
  assert.equal(v, out, "the same array comes back");
  assert.deepEqual(Array.from(out), [3, 6, 9, 12]);
  // read again into it: overwritten, not accumulated
  await mk(bk, [5, 6, 7, 8], [2, 2]).data(out);
  assert.deepEqual(Array.from(out), [5, 6, 7, 8]);
  // wrong type or length: a clear error, nothing written
  const other = bk.dtype === "f64" ? new Float32Array(4) : new Float64Array(4);
  await assert.rejects(() => x.data(other), {
    name: "TypeError",
    message: new RegExp(
      `data: out must be a ${arrayType(bk).name} of length 4 for a ${bk.dtype} tensor of ` +
        `shape \\[2,2\\], got ${other.constructor.name} of length 4`,
    ),
  });
  await assert.rejects(() => x.data(new (arrayType(bk))(5)), {
    message: /of length 4 .* got .* of length 5/,
  });
  await assert.rejects(() => x.data([0, 0, 0, 0] as unknown as Float32Array), {
    message: /got object/,
  });
  // i32 tensors take Int32Array
  const idx = tensor([3, 1], { dtype: "i32", device: bk.dev });
  const io = new Int32Array(2);
  assert.deepEqual(Array.from(await idx.data(io)), [3, 1]);
  assert.deepEqual(Array.from(io), [3, 1]);
});

testAll(
  "dataSync / itemSync: at once on the CPU, an error naming the async call on WebGPU",
  async (bk) => {
    const x = mk(bk, [1, 2, 3]).add(1);
    const s = x.sum();
    if (bk.dev.kind === "cpu") {
      assert.deepEqual(Array.from(x.dataSync()), [2, 3, 4]);
      assert.equal(s.itemSync(), 9);
      const out = new (arrayType(bk))(3);
      assert.equal(x.dataSync(out), out);
      assert.deepEqual(Array.from(out), [2, 3, 4]);
    } else {
      assert.throws(() => x.dataSync(), {
        message:
          /^dataSync: the tensor \(\[3\], f32\) is on webgpu, whose values can only be read asynchronously; use `await x\.data\(\)`$/,
      });
      assert.throws(() => s.itemSync(), { message: /^itemSync: .* use `await x\.item\(\)`$/ });
      assert.equal(await s.item(), 9);
    }
    assert.throws(() => x.itemSync(), {
      name: "RangeError",
      message: /itemSync: expected a tensor with one element, got shape \[3\]/,
    });
    x.dispose();
    assert.throws(() => x.dataSync(), {
      message: /dataSync: a tensor of shape \[3\] .* after dispose/,
    });
  },
);

testAll("toArray gives nested numbers, a number for 0-d", async (bk) => {
  const m: NestedArray = await mk(bk, [1, 2, 3, 4, 5, 6], [2, 3]).toArray();
  assert.deepEqual(m, [[1, 2, 3], [4, 5, 6]]);
  const s: NestedArray = await mk(bk, [7], []).toArray();
  assert.equal(s, 7);
  assert.deepEqual(await mk(bk, [], [2, 0]).toArray(), [[], []]);
});

/**
 * CPU outputs come from a pool of reused arrays, which hold old values: every entry of a
 * result must still be written. choleskyBanded's corners (outside the matrix) are the
 * entries a kernel could forget: fill the pool with NaN arrays of the result's size first.
 */
testAll("results built in reused arrays: corners and every entry written", async (bk) => {
  const n = 600, b = 2; // (b + 1)·n = 1,800 ≥ the pool's smallest size
  const ab = new Float64Array((b + 1) * n);
  for (let j = 0; j < n; j++) {
    ab[b * n + j] = 4;
    ab[(b - 1) * n + j] = j >= 1 ? -1 : NaN;
    ab[j] = j >= 2 ? 0.5 : NaN;
  }
  // several NaN arrays of each size in the pool at once (alive together, then freed)
  const dirty = () => {
    const ts = [0, 1, 2].flatMap(() => [
      mk(bk, new Array((b + 1) * n).fill(NaN), [b + 1, n]),
      mk(bk, new Array(n).fill(NaN), [n]),
    ]);
    ts.forEach((t) => t.dispose());
  };
  dirty();
  const f = await choleskyBanded(mk(bk, Array.from(ab), [b + 1, n])).data();
  assert.equal(f[0], 0, "upper corner (0, 0)");
  assert.equal(f[1], 0, "upper corner (0, 1)");
  assert.equal(f[n], 0, "upper corner (1, 0)");
  assert.ok(f.every((v) => Number.isFinite(v)), "no entry left from the reused array");
  dirty();
  const x = await solveBanded(mk(bk, Array.from(ab), [b + 1, n]), mk(bk, new Array(n).fill(1)))
    .data();
  assert.ok(x.every((v) => Number.isFinite(v)));
  // interior rows: A x = 1 with A = pentadiagonal(0.5, −1, 4, −1, 0.5)
  const j = 300;
  const r = 0.5 * x[j - 2] - x[j - 1] + 4 * x[j] - x[j + 1] + 0.5 * x[j + 2];
  assert.ok(Math.abs(r - 1) < 1e-5, `row ${j}: ${r}`);
});

testAll("printing: shape, dtype, device and the values of small tensors", async (bk) => {
  const inspect = (t: Tensor) => Deno.inspect(t);
  const kind = bk.dev.kind;
  const m = mk(bk, [1, 2.5, 3, 4, 5, 0.1], [2, 3]);
  if (kind === "cpu") {
    assert.equal(String(m), `Tensor([2,3], ${bk.dtype}, cpu) [[1, 2.5, 3], [4, 5, 0.1]]`);
    assert.equal(
      inspect(m),
      `Tensor([2,3], ${bk.dtype}, cpu)\n[[  1, 2.5,   3],\n [  4,   5, 0.1]]`,
    );
  } else {
    // not read yet: a hint; once read: the values of the read-back
    assert.equal(
      String(m),
      "Tensor([2,3], f32, webgpu) (on the device: await x.toArray() reads it)",
    );
    await m.data();
    assert.equal(String(m), "Tensor([2,3], f32, webgpu) [[1, 2.5, 3], [4, 5, 0.1]]");
  }
  // Node's util.inspect symbol gives the same text as Deno's
  const node =
    (m as unknown as Record<symbol, () => string>)[Symbol.for("nodejs.util.inspect.custom")];
  assert.equal(node.call(m), inspect(m));
  // f32 shows the digits it holds, f64 all of them
  const tenth = mk(bk, [0.1, 1 / 3]);
  await tenth.data();
  assert.equal(
    String(tenth),
    bk.dtype === "f64"
      ? `Tensor([2], f64, cpu) [0.1, 0.3333333333333333]`
      : `Tensor([2], f32, ${kind}) [0.1, 0.3333333]`,
  );
  // a scalar; a big tensor (no values); a traced one; a disposed one
  const s = mk(bk, [2], []);
  await s.data();
  assert.equal(String(s), `Tensor([], ${bk.dtype}, ${kind}) 2`);
  assert.equal(
    String(zeros([1000], { dtype: bk.dtype, device: bk.dev })),
    `Tensor([1000], ${bk.dtype}, ${kind}) (1000 values; x.data() reads them)`,
  );
  let traced = "";
  grad((t: Tensor) => {
    traced = String(t);
    return t.sum();
  })(mk(bk, [1, 2]));
  assert.match(traced, new RegExp(`^Tensor\\(\\[2\\], ${bk.dtype}, ${kind}, traced by grad`));
  s.dispose();
  assert.equal(String(s), `Tensor([], ${bk.dtype}, ${kind}, disposed)`);
});
