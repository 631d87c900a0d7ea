/**
 * Interrupts against a scripted device: the exact VFIO_DEVICE_SET_IRQS bytes (vfio.md §7.3, §10:
 * 20-byte header, s32 eventfds), eventfd lifetimes on every path, and waits that time out, are
 * cancelled, or see the device closed — with no async poll left pending at the end of any test.
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { VfioDevice } from "../../core/device.ts";
import { Interrupts } from "../../core/irq.ts";
import { DEVICE_FD, DeviceKernel, GET_IRQ_INFO, SET_IRQS } from "./device_stub.ts";
import { expectVfioError, le } from "./vfio_test_helpers.ts";

const BDF = "0000:00:02.0";
const TRIGGER_EVENTFD = 0x24; // DATA_EVENTFD (1 << 2) | ACTION_TRIGGER (1 << 5)
const TRIGGER_NONE = 0x21; // DATA_NONE (1 << 0) | ACTION_TRIGGER
const UNMASK_NONE = 0x11; // DATA_NONE | ACTION_UNMASK (1 << 4)
const MASK_NONE = 0x09; // DATA_NONE | ACTION_MASK (1 << 3)

function setup(): { k: DeviceKernel; irqs: Interrupts } {
  const k = new DeviceKernel();
  return { k, irqs: new Interrupts(new VfioDevice(k, DEVICE_FD, BDF)) };
}

/** Let woken waits run until one poll is pending again (a few event-loop turns at most). */
async function settle(k: DeviceKernel): Promise<void> {
  for (let turn = 0; turn < 10 && k.pending.size === 0; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

function setIrqs(k: DeviceKernel): Uint8Array[] {
  return k.callsOf("ioctl").filter((c) => c.request === SET_IRQS).map((c) => c.argIn!);
}

Deno.test("irqInfo: GET_IRQ_INFO bytes and flags", () => {
  const { k, irqs } = setup();
  const info = irqs.irqInfo(0);
  const call = k.callsOf("ioctl").find((c) => c.request === GET_IRQ_INFO)!;
  assert.deepEqual(call.argIn, le(16, [[0, 4, 16]]));
  assert.deepEqual(info, {
    index: 0,
    flags: 7,
    count: 1,
    eventfd: true,
    maskable: true,
    automasked: true,
    noResize: false,
  });
});

Deno.test("enableMsi(2): SET_IRQS argsz 28, EVENTFD|TRIGGER, index 1, start 0, count 2, two fds", () => {
  const { k, irqs } = setup();
  irqs.enableMsi(2);
  const [a, b] = k.openEventfds();
  assert.deepEqual(setIrqs(k), [
    le(28, [[0, 4, 28], [4, 4, TRIGGER_EVENTFD], [8, 4, 1], [12, 4, 0], [16, 4, 2], [20, 4, a], [
      24,
      4,
      b,
    ]]),
  ]);
  assert.equal(irqs.mode, "msi");
  assert.equal(irqs.vectors, 2);
  assert.equal(irqs.eventfd(1), b);
  irqs.disableMsi();
  assert.deepEqual(setIrqs(k)[1], le(20, [[0, 4, 20], [4, 4, TRIGGER_NONE], [8, 4, 1]]));
  assert.deepEqual(k.openEventfds(), []);
  assert.equal(irqs.mode, "none");
});

Deno.test("enableIntx: SET_IRQS with one fd; unmask and mask are DATA_NONE, count 1", () => {
  const { k, irqs } = setup();
  irqs.enableIntx();
  const [fd] = k.openEventfds();
  irqs.unmask();
  irqs.mask();
  irqs.disable(0);
  assert.deepEqual(setIrqs(k), [
    le(24, [[0, 4, 24], [4, 4, TRIGGER_EVENTFD], [8, 4, 0], [12, 4, 0], [16, 4, 1], [20, 4, fd]]),
    le(20, [[0, 4, 20], [4, 4, UNMASK_NONE], [8, 4, 0], [12, 4, 0], [16, 4, 1]]),
    le(20, [[0, 4, 20], [4, 4, MASK_NONE], [8, 4, 0], [12, 4, 0], [16, 4, 1]]),
    le(20, [[0, 4, 20], [4, 4, TRIGGER_NONE], [8, 4, 0]]),
  ]);
  assert.deepEqual(k.openEventfds(), []);
  expectVfioError(() => irqs.unmask(), "INTx is not enabled");
});

Deno.test("enableMsix: more vectors than the device has is refused before any eventfd", () => {
  const { k, irqs } = setup();
  expectVfioError(() => irqs.enableMsix(17), "17 MSI-X vectors requested, the device has 16");
  assert.equal(k.callsOf("eventfd").length, 0);
  assert.equal(setIrqs(k).length, 0);
  k.irqCounts[1] = 0;
  expectVfioError(() => irqs.enableMsi(1), "the device has no MSI capability");
});

Deno.test("one mode at a time; enabling the same mode again replaces its vectors", () => {
  const { k, irqs } = setup();
  irqs.enableMsix(2);
  expectVfioError(() => irqs.enableMsi(1), "msix interrupts are enabled", "disable them first");
  irqs.enableMsix(3);
  assert.equal(k.openEventfds().length, 3);
  assert.deepEqual(setIrqs(k).map((b) => [b[4], b[16]]), [[TRIGGER_EVENTFD, 2], [TRIGGER_NONE, 0], [
    TRIGGER_EVENTFD,
    3,
  ]]);
  irqs.close();
  assert.deepEqual(k.openEventfds(), []);
});

Deno.test("SET_IRQS EPERM: hint about interrupt remapping; the eventfds are closed", () => {
  const { k, irqs } = setup();
  k.fail.set(SET_IRQS, -ERRNO.EPERM);
  const e = expectVfioError(
    () => irqs.enableMsi(2),
    "VFIO_DEVICE_SET_IRQS",
    "EPERM",
    "interrupt remapping",
    "allow_unsafe_interrupts",
  );
  assert.equal(e.device, BDF);
  assert.equal(k.callsOf("eventfd").length, 2);
  assert.deepEqual(k.openEventfds(), []);
  assert.equal(irqs.mode, "none");
});

Deno.test("wait: an interrupt resolves with the drained count; poll() reads without blocking", async () => {
  const { k, irqs } = setup();
  irqs.enableMsi(1);
  const fd = irqs.eventfd(0);
  assert.equal(irqs.poll(0), 0);
  k.signal(fd, 2n);
  assert.equal(irqs.poll(0), 2);
  const pending = irqs.wait(0, { timeoutMs: 1000 });
  k.signal(fd);
  assert.equal(await pending, 1);
  assert.equal(k.counters.get(fd), 0n);
  assert.equal(k.pending.size, 0);
  irqs.close();
  assert.deepEqual(k.openEventfds(), []);
});

Deno.test("wait: timeout resolves 'timeout' and leaves no poll pending", async () => {
  const { k, irqs } = setup();
  irqs.enableMsi(1);
  assert.equal(await irqs.wait(0, { timeoutMs: 0 }), "timeout");
  const pending = irqs.wait(0, { timeoutMs: 50 });
  await Promise.resolve();
  assert.equal(k.pending.size, 1);
  k.expirePolls();
  assert.equal(await pending, "timeout");
  assert.equal(k.pending.size, 0);
  irqs.close();
  assert.deepEqual(k.openEventfds(), []);
});

Deno.test("wait: cancel wakes the poll through the stop eventfd, which is then drained", async () => {
  const { k, irqs } = setup();
  irqs.enableMsi(2);
  const controller = new AbortController();
  const cancelled = irqs.wait(0, { timeoutMs: 60_000, signal: controller.signal });
  const other = irqs.wait(1, { timeoutMs: 60_000 });
  await Promise.resolve();
  assert.equal(k.pending.size, 2);
  controller.abort();
  assert.equal(await cancelled, "cancelled");
  const stopFd = k.openEventfds().find((fd) => fd !== irqs.eventfd(0) && fd !== irqs.eventfd(1))!;
  // The other wait is untouched and polls again once the stop eventfd is drained.
  await settle(k);
  assert.equal(k.counters.get(stopFd), 0n);
  assert.equal(k.pending.size, 1);
  k.signal(irqs.eventfd(1));
  assert.equal(await other, 1);
  assert.equal(k.pending.size, 0);
  assert.equal(await irqs.wait(0, { timeoutMs: 5, signal: controller.signal }), "cancelled");
  irqs.close();
  assert.deepEqual(k.openEventfds(), []);
});

Deno.test("close during a wait: the wait resolves 'cancelled', then every eventfd is closed", async () => {
  const { k, irqs } = setup();
  irqs.enableMsi(1);
  const vectorFd = irqs.eventfd(0);
  const pending = irqs.wait(0, { timeoutMs: 60_000 });
  await Promise.resolve();
  assert.equal(k.pending.size, 1);
  irqs.close();
  assert.deepEqual(setIrqs(k)[1], le(20, [[0, 4, 20], [4, 4, TRIGGER_NONE], [8, 4, 1]]));
  assert.ok(k.openEventfds().includes(vectorFd), "still polled: not closed under the poll");
  assert.equal(await pending, "cancelled");
  assert.equal(k.pending.size, 0);
  assert.deepEqual(k.openEventfds(), []);
  expectVfioError(() => irqs.enableMsi(1), "the interrupts are closed");
});

Deno.test("disable during a wait cancels it; the stop eventfd stays usable", async () => {
  const { k, irqs } = setup();
  irqs.enableMsi(1);
  const pending = irqs.wait(0, { timeoutMs: 60_000 });
  await Promise.resolve();
  irqs.disableMsi();
  assert.equal(await pending, "cancelled");
  assert.equal(k.pending.size, 0);
  assert.equal(k.openEventfds().length, 1, "only the stop eventfd");
  irqs.enableMsi(1);
  const next = irqs.wait(0, { timeoutMs: 60_000 });
  await Promise.resolve();
  assert.equal(k.pending.size, 1, "the stop eventfd was drained: the new wait blocks");
  k.signal(irqs.eventfd(0));
  assert.equal(await next, 1);
  irqs.close();
  assert.deepEqual(k.openEventfds(), []);
});

Deno.test("wait on a vector that is not enabled is an error", async () => {
  const { irqs } = setup();
  await assert.rejects(() => irqs.wait(0, { timeoutMs: 1 }), /vector 0 is not enabled/);
  irqs.enableMsi(1);
  await assert.rejects(() => irqs.wait(1, { timeoutMs: 1 }), /vector 1 is not enabled/);
  irqs.close();
});

Deno.test("wait: EINTR is retried within a deadline, reported for a wait without one", async () => {
  const { k, irqs } = setup();
  irqs.enableMsi(1);
  k.pollErrors.push(-ERRNO.EINTR);
  const bounded = irqs.wait(0, { timeoutMs: 1000 });
  await settle(k);
  k.signal(irqs.eventfd(0));
  assert.equal(await bounded, 1);
  k.pollErrors.push(-ERRNO.EINTR);
  await assert.rejects(() => irqs.wait(0, { timeoutMs: Infinity }), /poll failed with EINTR/);
  assert.equal(k.pending.size, 0);
  irqs.close();
  assert.deepEqual(k.openEventfds(), []);
});
