/**
 * The fault battery for the edu driver: each device-side fault the edu can meet (DMA faults, a
 * hang, lost and spurious interrupts, surprise removal, EEH freeze on sPAPR) ends in a clear
 * VfioError or a recovery, never a hang or another exception, and the fixture's leak check
 * passes after each (the driver and device closed normally afterwards).
 */
import assert from "node:assert/strict";
import { DeviceRequest } from "../../core/device_request.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { simTest, type SimTestContext } from "../../testing/mod.ts";
import { battery, clearError } from "./battery.ts";

const BDF = "0000:00:02.0";

function open(ctx: SimTestContext, interrupts: "msi" | "poll" = "msi") {
  const dev = ctx.openDevice(BDF);
  const edu = EduDriver.open(dev, { interrupts, timeoutMs: 300 });
  const buf = dev.dma.allocate(8192);
  const faults = ctx.machine.inject(BDF);
  const close = (): void => {
    edu.close();
    dev.close();
  };
  return { dev, edu, buf, faults, close };
}

simTest("edu × DMA fault on the next transfer: the IOMMU logs it; edu cannot tell", async (ctx) => {
  const { edu, buf, faults, close } = open(ctx);
  buf.bytes.fill(0x5a, 0, 100);
  faults.failDma({ next: 1 });
  const dma = edu.dmaToDevice(buf, 0, 0, 100);
  if (ctx.iommu === "spapr") {
    await clearError(dma, /all-ones.*EEH/s); // the fault froze the PE
  } else {
    await dma; // edu has no error status: the transfer "completes"
    await edu.dmaFromDevice(buf, 4096, 0, 100);
    assert.ok(buf.bytes.subarray(4096, 4196).every((b) => b === 0), "nothing was moved");
    await edu.dmaToDevice(buf, 0, 0, 100);
    await edu.dmaFromDevice(buf, 4096, 0, 100);
    assert.ok(buf.bytes.subarray(4096, 4196).every((b) => b === 0x5a), "the next transfers work");
  }
  assert.equal(ctx.machine.faults().length, 1);
  assert.equal(ctx.machine.faults()[0].address, buf.iova);
  close();
}, battery());

simTest("edu × DMA fault on a chosen IOVA: only transfers touching it fault", async (ctx) => {
  const { edu, buf, faults, close } = open(ctx);
  faults.failDma({ iova: buf.iova + 4096n, length: 4096 });
  await edu.dmaToDevice(buf, 0, 0, 100); // the first page is fine
  assert.equal(ctx.machine.faults().length, 0);
  const dma = edu.dmaFromDevice(buf, 4096, 0, 100);
  if (ctx.iommu === "spapr") await clearError(dma, /all-ones/);
  else await dma;
  assert.equal(ctx.machine.faults().length, 1);
  assert.equal(ctx.machine.faults()[0].address, buf.iova + 4096n);
  close();
}, battery());

simTest("edu × hang: a clear timeout, and work again once the device resumes", async (ctx) => {
  const { edu, buf, faults, close } = open(ctx, "poll");
  faults.hang();
  await clearError(edu.factorial(6), /edu factorial.*300 ms/);
  await clearError(edu.dmaToDevice(buf, 0, 0, 64), /edu DMA.*300 ms/);
  faults.resume(); // edu has no function reset: only the device itself can un-wedge
  await ctx.kernel.sleep(200);
  assert.equal(await edu.factorial(6), 720);
  close();
}, battery());

simTest(
  "edu × lost interrupt: a clear error naming the MSI; the next transfer works",
  async (ctx) => {
    const { edu, buf, faults, close } = open(ctx);
    faults.loseInterrupts(1);
    await clearError(edu.dmaToDevice(buf, 0, 0, 64), /no MSI within 300 ms/);
    await edu.dmaToDevice(buf, 0, 0, 64);
    assert.equal(faults.counters.lostInterrupts, 1);
    close();
  },
  battery(),
);

simTest("edu × spurious interrupt: ignored; each operation still sees its own", async (ctx) => {
  const { edu, buf, faults, close } = open(ctx);
  faults.spuriousInterrupt("msi");
  assert.equal(await edu.raiseInterrupt(0x40), 0x40);
  faults.spuriousInterrupt("msi");
  buf.bytes.fill(7, 0, 64);
  await edu.dmaToDevice(buf, 0, 0, 64);
  faults.spuriousInterrupt("msi");
  await edu.dmaFromDevice(buf, 4096, 0, 64);
  assert.ok(buf.bytes.subarray(4096, 4160).every((b) => b === 7));
  assert.equal(await edu.raiseInterrupt(0x80), 0x80);
  assert.equal(edu.counters.interrupts, 4, "only the device's own interrupts count");
  close();
}, battery());

simTest(
  "edu × surprise removal: clear errors, the request eventfd, a normal close",
  async (ctx) => {
    const { dev, edu, buf, faults, close } = open(ctx);
    const request = DeviceRequest.watch(dev.device);
    faults.surpriseRemove();
    assert.equal(await request.wait(100), true, "the kernel asks for the device back");
    await clearError(edu.dmaToDevice(buf, 0, 0, 64), /stopped answering MMIO/);
    await clearError(edu.factorial(3), /stopped answering MMIO/);
    assert.equal(edu.liveness(1), false);
    request.close();
    close();
  },
  battery(),
);

simTest("edu × EEH freeze (sPAPR): a clear error naming EEH", async (ctx) => {
  const { edu, buf, faults, close } = open(ctx);
  faults.freezeEeh();
  await clearError(edu.dmaToDevice(buf, 0, 0, 64), /EEH/);
  close();
}, battery({ iommus: ["spapr"] }));
