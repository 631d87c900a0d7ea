/**
 * Device-side fault injection (sim/faults/): DMA faults on chosen IOVAs and on the next N
 * transfers, recorded in each IOMMU's own format; a hang and its release by resume or reset;
 * lost and spurious interrupts; link down/up; surprise removal as vfio-pci answers it; EEH
 * freeze on sPAPR. Each through the edu device and the framework, as a driver would see it.
 */
import assert from "node:assert/strict";
import { DeviceRequest } from "../../core/device_request.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { EDU_REG_ID } from "../../drivers/edu/registers.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { O_RDWR } from "../../ffi/kernel.ts";
import { createMachine } from "../../sim/machine.ts";
import { VirtioNetDevice } from "../../sim/pci/virtio_net.ts";
import { simTest } from "../../testing/mod.ts";
import { openPciDevice } from "../../core/pci_device.ts";
import { DmaBuffer } from "../../core/dma_space.ts";

const BDF = "0000:00:02.0";
/** The fault formats each IOMMU records (the injected fault is that IOMMU's own). */
const FORMATS: Record<string, string> = {
  vtd: "vtd-frr",
  smmuv3: "smmuv3-evt",
  "virtio-iommu": "virtio-iommu-fault",
  spapr: "pnv-tce",
};

simTest(
  "an injected DMA fault at a chosen IOVA is the IOMMU's own fault; pages before it move",
  async (ctx) => {
    const dev = ctx.openDevice(BDF);
    const edu = EduDriver.open(dev);
    const buf: DmaBuffer = dev.dma.allocate(3 * 65536);
    const page = 4096n; // DMA requests never cross a 4 KiB boundary
    // The device writes 4000 bytes from offset 2048 below the second 4 KiB page: a fault injected
    // in that page stops the transfer there, after the first 2048 bytes.
    const start = Number(page) - 2048;
    buf.bytes.fill(0x11);
    await edu.dmaToDevice(buf, 0, 0, 4000); // device buffer = 0x11 …
    buf.bytes.fill(0);
    ctx.machine.inject(BDF).failDma({ iova: buf.iova + page + 100n, access: "write" });
    const copy = edu.dmaFromDevice(buf, start, 0, 4000);
    if (ctx.iommu === "spapr") await assert.rejects(copy, /all-ones/); // the PE froze
    else await copy;
    const faults = ctx.machine.faults();
    assert.equal(faults.length, 1);
    assert.equal(faults[0].format, FORMATS[ctx.iommu]);
    assert.equal(faults[0].access, "write");
    assert.equal(faults[0].address, buf.iova + page);
    assert.ok(buf.bytes.subarray(start, Number(page)).every((b) => b === 0x11), "before: moved");
    const rest = buf.bytes.subarray(Number(page), start + 4000);
    assert.ok(rest.every((b) => b === 0), "from the page on: not");
    assert.equal(ctx.machine.inject(BDF).counters.dmaFaults, 1);
    edu.close();
    dev.close();
  },
  { paths: ["iommufd", "spapr"] },
);

simTest("failDma({ next: 1 }) faults the next transfer only", async (ctx) => {
  const dev = ctx.openDevice(BDF);
  const edu = EduDriver.open(dev, { interrupts: "msi" });
  const buf = dev.dma.allocate(4096);
  ctx.machine.inject(BDF).failDma({ next: 1 });
  await edu.dmaToDevice(buf, 0, 0, 64);
  assert.equal(ctx.machine.faults().length, 1);
  assert.equal(ctx.machine.faults()[0].address, buf.iova);
  assert.equal(ctx.machine.faults()[0].access, "read");
  await edu.dmaToDevice(buf, 0, 0, 64);
  assert.equal(ctx.machine.faults().length, 1, "the rule retired");
  edu.close();
  dev.close();
}, { paths: ["iommufd"] });

simTest("a hung device completes nothing until reset; registers keep answering", async (ctx) => {
  const dev = ctx.openDevice(BDF);
  const edu = EduDriver.open(dev, { timeoutMs: 50 });
  const faults = ctx.machine.inject(BDF);
  faults.hang();
  await assert.rejects(edu.factorial(5), /edu factorial.*50 ms/);
  assert.equal(edu.liveness(0x1234), true, "MMIO still answers");
  assert.equal(faults.counters.heldWork, 1);
  faults.resume();
  await ctx.kernel.sleep(1);
  assert.equal(await edu.factorial(5), 120);
  edu.close();
  dev.close();
}, { paths: ["type1", "spapr"] });

Deno.test("a function reset lifts a hang (virtio-net: FLR through VFIO_DEVICE_RESET)", () => {
  const machine = createMachine({
    iommu: "vtd",
    strict: true,
    devices: [{ model: "virtio-net", bdf: BDF }],
  });
  using dev = openPciDevice(BDF, { kernel: machine.kernel });
  const faults = machine.inject(BDF);
  faults.hang();
  assert.equal(faults.hung, true);
  dev.device.reset();
  assert.equal(faults.hung, false);
});

simTest("lost and spurious interrupts", async (ctx) => {
  const dev = ctx.openDevice(BDF);
  const edu = EduDriver.open(dev, { interrupts: "msi", timeoutMs: 20 });
  const faults = ctx.machine.inject(BDF);
  faults.loseInterrupts(1);
  await assert.rejects(edu.raiseInterrupt(1), /no MSI within 20 ms/);
  assert.equal(faults.counters.lostInterrupts, 1);
  assert.equal(await edu.raiseInterrupt(2), 3, "the next one arrives (status still has bit 0)");
  faults.spuriousInterrupt("msi", 0);
  assert.equal(await dev.irqs.wait(0, { timeoutMs: 5 }), 1, "an MSI the device never sent");
  assert.equal(faults.counters.spuriousInterrupts, 1);
  edu.close();
  dev.close();
}, { paths: ["iommufd", "spapr"] });

simTest(
  "surprise removal: all-ones, the request eventfd, ENOTTY reset, ENODEV reopen, gone after close",
  async (ctx) => {
    const dev = ctx.openDevice(BDF);
    const request = DeviceRequest.watch(dev.device);
    const regs = dev.bar(0);
    assert.notEqual(regs.read32(EDU_REG_ID), 0xffff_ffff);
    ctx.machine.inject(BDF).surpriseRemove();
    assert.equal(regs.read32(EDU_REG_ID), 0xffff_ffff, "MMIO reads all-ones");
    assert.equal(dev.config.read16(0), 0xffff, "config reads all-ones");
    assert.equal(request.pending(), true, "the request eventfd fired");
    await ctx.kernel.sleep(20_000);
    assert.equal(request.pending(), true);
    assert.equal(request.requests, 3, "signalled again every 10 s while open");
    assert.ok(ctx.machine.trace.some((l) => l.includes("Relaying device request to user (#0)")));
    // The cdev is gone at once; a group-path GET_DEVICE_FD finds no device.
    if (ctx.path === "iommufd") {
      assert.equal(ctx.kernel.open("/dev/vfio/devices/vfio0", O_RDWR), -ERRNO.ENOENT);
    }
    assert.equal(ctx.kernel.readlink(`/sys/bus/pci/devices/${BDF}`) !== -ERRNO.ENOENT, true);
    request.close();
    dev.close();
    assert.equal(ctx.kernel.readlink(`/sys/bus/pci/devices/${BDF}`), -ERRNO.ENOENT, "off the bus");
    assert.throws(() => ctx.openDevice(BDF), /0000:00:02\.0/);
    await ctx.kernel.sleep(30_000);
    assert.equal(ctx.machine.trace.filter((l) => l.includes("Relaying")).length, 1, "no more asks");
  },
);

Deno.test("surprise removal: VFIO_DEVICE_RESET answers ENOTTY (pci_dev_wait on a disconnected device)", () => {
  const machine = createMachine({
    iommu: "vtd",
    strict: true,
    devices: [{ model: "virtio-net", bdf: BDF }],
  });
  using dev = openPciDevice(BDF, { kernel: machine.kernel, iommu: "type1" });
  machine.inject(BDF).surpriseRemove();
  assert.throws(() => dev.device.reset(), /ENOTTY/);
});

simTest(
  "EEH freeze on sPAPR: MMIO all-ones until the PE is reset; elsewhere a clear refusal",
  (ctx) => {
    const dev = ctx.openDevice(BDF);
    const regs = dev.bar(0);
    const faults = ctx.machine.inject(BDF);
    if (ctx.iommu !== "spapr") {
      assert.throws(() => faults.freezeEeh(), /EEH exists on POWER/);
    } else {
      faults.freezeEeh();
      assert.equal(regs.read32(EDU_REG_ID), 0xffff_ffff);
      assert.ok(ctx.machine.trace.some((l) => l.includes("EEH: Frozen PHB#0-PE#2 detected")));
    }
    dev.close();
  },
  { paths: ["iommufd", "spapr"] },
);

Deno.test("link down/up on virtio-net: status, config generation, frames lost while down", () => {
  const nic = new VirtioNetDevice();
  const machine = createMachine({
    iommu: "vtd",
    strict: true,
    devices: [{ model: nic, bdf: BDF }],
  });
  const faults = machine.inject(BDF);
  faults.setLink(false);
  assert.equal(nic.linkUp, false);
  nic.receive(new Uint8Array(64));
  assert.equal(nic.counters.linkDownDrops, 1);
  faults.setLink(true);
  assert.equal(nic.linkUp, true);
  const edu = createMachine({ iommu: "vtd" });
  assert.throws(() => edu.inject(BDF).setLink(false), /edu model has no link/);
  assert.throws(() => edu.inject("0000:00:09.0"), /no PCI function/);
});

Deno.test("surprise removal of an idle device: gone from sysfs and /dev at once; others stay", () => {
  const machine = createMachine({
    iommu: "vtd",
    strict: true,
    devices: [{ model: "edu", bdf: BDF }, { model: "edu", bdf: "0000:00:03.0" }],
  });
  const k = machine.kernel;
  machine.inject(BDF).surpriseRemove();
  assert.equal(k.readlink(`/sys/bus/pci/devices/${BDF}`), -ERRNO.ENOENT);
  assert.deepEqual(k.readdir("/sys/kernel/iommu_groups"), ["3"], "its group is released");
  assert.equal(k.open("/dev/vfio/2", O_RDWR), -ERRNO.ENOENT, "the group has no device left");
  assert.deepEqual(k.readdir("/dev/vfio/devices"), ["vfio1"]);
  assert.throws(() => openPciDevice(BDF, { kernel: k }), /0000:00:02\.0/);
  using other = openPciDevice("0000:00:03.0", { kernel: k });
  assert.equal(other.bar(0).read32(EDU_REG_ID) & 0xff, 0xed, "the other device works");
});
