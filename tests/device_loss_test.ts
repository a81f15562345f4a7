/**
 * Device loss (issue 8, defect 3): after the GPU device is lost (here destroyed with
 * `GPUDevice.destroy()`, in a child process so no other test is affected), every use of it
 * or of its tensors names the loss and its reason, a read in flight is rejected the same
 * way, and `device()` acquires a fresh device that works.
 */
import assert from "node:assert/strict";
import { gpuDev } from "./helpers.ts";

Deno.test({
  name: "device loss: later uses name the loss; device() acquires a fresh device",
  ignore: !gpuDev,
  fn: async () => {
    const script = new URL("./fixtures/device_loss.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, err);
    const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
    assert.equal(r.lost.reason, "destroyed");
    const lost = (op: string) =>
      new RegExp(
        `^DeviceLostError: ${op}: the WebGPU device \\(.+\\) was lost \\(reason: destroyed`,
      );
    assert.match(r.read, lost("data"));
    assert.match(r.readDeferred, lost("data"));
    // e² + e⁴ + e⁶ = 465.416
    assert.match(
      r.inFlight,
      /^resolved 465\.4[12]$|DeviceLostError: .*was lost \(reason: destroyed/,
    );
    assert.match(r.op, lost("add"));
    assert.match(r.solve, lost("tensor"));
    assert.match(r.create, lost("tensor"));
    assert.match(r.sync, lost("sync"));
    for (const k of ["read", "op", "create"]) assert.match(r[k], /Call device\(\) again/);
    assert.equal(r.sameDevice, false, "device() must not hand out the lost device again");
    assert.equal(r.fresh, "14");
    assert.equal(r.memoryAfterDispose, 0, "tensors of the lost device can still be disposed");
  },
});
