/**
 * Devices: the tuning switch (a testing aid that forces the real-GPU or CPU-like kernel
 * variants), explicit destruction, and destruction when the program unloads (issue 8,
 * defect 2: lavapipe torn down during process exit corrupted the heap).
 */
import assert from "node:assert/strict";
import { type Device, device, jit, minimize, tensor } from "../mod.ts";
import type { WebGpuBackend } from "../src/backend/webgpu/webgpu.ts";
import { cpu, gpuDev } from "./helpers.ts";

const rt = (d: Device) => (d.backend as WebGpuBackend).rt;

Deno.test("device(): bad tuning options are clear errors", async () => {
  await assert.rejects(() => device({ tuning: "fast" as "gpu" }), {
    name: "RangeError",
    message: /device: option tuning must be one of "auto", "gpu", "cpu-like", got "fast"/,
  });
  await assert.rejects(() => device({ backend: "cpu", tuning: "gpu" }), {
    message: /tuning "gpu" applies to WebGPU, not to backend "cpu"/,
  });
  await assert.rejects(() => device({ tunning: "gpu" } as never), {
    message: /device: unknown option "tunning"; did you mean "tuning"\?/,
  });
  assert.equal(await device({ backend: "cpu", tuning: "auto" }), cpu);
});

Deno.test({
  name: "device({ tuning }) [webgpu]: forced tunings are separate devices with the asked variants",
  ignore: !gpuDev,
  fn: async () => {
    const g = await device({ backend: "webgpu", tuning: "gpu" });
    const c = await device({ backend: "webgpu", tuning: "cpu-like" });
    assert.equal(rt(g).cpuLike, false);
    assert.equal(rt(c).cpuLike, true);
    assert.match(g.description, /gpu tuning/);
    assert.equal(await device({ backend: "webgpu", tuning: "gpu" }), g, "cached per tuning");
    assert.notEqual(g, c);
    // scalar constants are cached per device: the same constant on two WebGPU devices
    // (this failed with "operands are on different devices" when keyed by device kind)
    for (const d of [g, c, gpuDev!]) {
      assert.deepEqual(await tensor([1, 2], { device: d }).mul(2.75).add(0.5).toArray(), [3.25, 6]);
    }
    assert.throws(() => tensor([1], { device: g }).add(tensor([1], { device: c })), {
      message: /operands are on different devices/,
    });
  },
});

Deno.test({
  name: "jit [webgpu]: a program recorded on one WebGPU device never replays on another",
  ignore: !gpuDev,
  fn: async () => {
    // keyed by the device's kind, a program traced on g replayed with g's buffers on c
    // (a WebGPU validation error, found by the browser suite's two devices)
    const g = await device({ backend: "webgpu", tuning: "gpu" });
    const c = await device({ backend: "webgpu", tuning: "cpu-like" });
    const f = jit((x: ReturnType<typeof tensor>) => x.mul(2).add(1));
    for (const [d, xs] of [[g, [1, 2, 3]], [c, [4, 5, 6]], [g, [7, 8, 9]]] as const) {
      const y = f(tensor([...xs], { device: d }));
      assert.equal(y.device, d);
      assert.deepEqual(await y.toArray(), xs.map((v) => 2 * v + 1));
    }
    // minimize's own bookkeeping programs are shared by every call: on both devices
    for (const [d, t] of [[g, 3], [c, -2]] as const) {
      const target = tensor(Array.from({ length: 8 }, (_, i) => t + i), { device: d });
      const r = await minimize(
        (x) => x.sub(target).square().sum(),
        tensor(new Array(8).fill(0), { device: d }),
        { method: "newton-banded", bandwidth: 0 },
      );
      assert.equal(r.x.device, d);
      const got = await r.x.data();
      got.forEach((v, i) => assert.ok(Math.abs(v - (t + i)) < 1e-4, `x[${i}] = ${v}`));
    }
  },
});

Deno.test({
  name:
    "Device.destroy() [webgpu]: later use names the destroyed device; device() opens a fresh one",
  ignore: !gpuDev,
  fn: async () => {
    const d = await device({ backend: "webgpu", tuning: "cpu-like" });
    const x = tensor([1, 2, 3], { device: d });
    const y = x.mul(2); // queued, not yet run: destroy() waits for it
    await d.destroy();
    assert.equal(rt(d).destroyed, true);
    await assert.rejects(() => y.data(), { message: /WebGPU device .* was destroyed/ });
    await d.destroy(); // twice is harmless
    const fresh = await device({ backend: "webgpu", tuning: "cpu-like" });
    assert.notEqual(fresh, d);
    assert.deepEqual(await tensor([4], { device: fresh }).sqrt().toArray(), [2]);
    {
      await using scoped = fresh;
      assert.equal(rt(scoped).destroyed, false);
    }
    assert.equal(rt(fresh).destroyed, true, "await using destroys at the end of the block");
    await cpu.destroy(); // the CPU device has nothing to destroy
    assert.deepEqual(await tensor([1], { device: cpu }).toArray(), [1]);
  },
});

Deno.test({
  name: "a program's WebGPU device is destroyed when it unloads [webgpu]",
  ignore: !gpuDev,
  fn: async () => {
    const probe = new URL("./fixtures/unload_probe.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", probe],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
    assert.match(text, /sum 6\nbefore unload: destroyed false\nat unload: destroyed true/);
  },
});
