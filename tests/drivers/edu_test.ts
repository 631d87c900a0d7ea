/**
 * The edu driver on the simulator, under every IOMMU model and both VFIO paths (the fixture's
 * steps): DMA round trips, faults for unmapped and read-only IOVAs (memory untouched), MSI through
 * the eventfd; every step ends with the fixture's leak check.
 */
import assert from "node:assert/strict";
import { EduDriver } from "../../drivers/edu/edu.ts";
import type { IommuModelName } from "../../sim/machine.ts";
import { simTest, type SimTestContext } from "../../testing/mod.ts";

/**
 * Per IOMMU model, the fault line it logs (in its vendor's format) for a device write to an
 * unmapped IOVA and to a read-only mapping, and whether the fault stops the device (sPAPR: EEH
 * freezes the PE, so the driver's next MMIO read sees all-ones and it reports that).
 */
const FAULTS: Record<IommuModelName, {
  unmappedWrite: RegExp;
  readOnlyWrite: RegExp;
  faultFreezes?: boolean;
}> = {
  vtd: {
    unmappedWrite:
      /^DMAR: \[DMA Write NO_PASID\] Request device \[00:02\.0\] fault addr 0x[0-9a-f]+ \[fault reason 0x05\]/,
    readOnlyWrite: /\[fault reason 0x05\] PTE Write access is not set/,
  },
  smmuv3: {
    unmappedWrite: /^arm-smmu-v3 [0-9a-f]+\.smmuv3: event 0x10 received/, // F_TRANSLATION
    readOnlyWrite: /^arm-smmu-v3 [0-9a-f]+\.smmuv3: event 0x13 received/, // F_PERMISSION
  },
  "virtio-iommu": {
    unmappedWrite: /^virtio_iommu virtio0: page fault from EP \d+ at 0x[0-9a-f]+/,
    readOnlyWrite: /^virtio_iommu virtio0: page fault from EP \d+ at 0x[0-9a-f]+ \[W\]/,
  },
  spapr: {
    unmappedWrite: /^PHB#0-PE#2: DMA write at 0x[0-9a-f]+: invalid TCE; EEH: Frozen PHB#0-PE#2/,
    readOnlyWrite: /^PHB#0-PE#2: DMA write at 0x[0-9a-f]+: TCE does not allow device writes/,
    faultFreezes: true,
  },
};
const BDF = "0000:00:02.0";

function setup(ctx: SimTestContext, irq: "msi" | "poll" = "msi") {
  const dev = ctx.openDevice(BDF);
  const edu = EduDriver.open(dev, { interrupts: irq });
  return { machine: ctx.machine, dev, edu };
}

/** A DMA that faults: the driver reports a frozen device where the platform freezes it. */
async function faultingDma(frozen: boolean | undefined, dma: Promise<void>): Promise<void> {
  if (frozen) await assert.rejects(dma, /reads all-ones/);
  else await dma;
}

simTest("edu: DMA round trips at several sizes and offsets", async (ctx) => {
  const { dev, edu } = setup(ctx);
  const buf = dev.dma.allocate(8192);
  for (const [size, offset] of [[1, 0], [64, 7], [1000, 100], [2048, 4096 - 2048], [4095, 1]]) {
    const src = buf.bytes.subarray(offset, offset + size);
    for (let i = 0; i < size; i++) src[i] = (i * 7 + size) & 0xff;
    const dst = buf.bytes.subarray(4096 + offset, 4096 + offset + size);
    dst.fill(0);
    await edu.dmaToDevice(buf, offset, 0, size);
    await edu.dmaFromDevice(buf, 4096 + offset, 0, size);
    assert.deepEqual(dst, src, `size ${size} offset ${offset}`);
  }
  assert.equal(edu.counters.dmaTransfers, 10);
  edu.close();
  dev.close();
});

simTest(
  "edu: DMA to an unmapped IOVA faults with the vendor record and leaves memory untouched",
  async (ctx) => {
    const { machine, dev, edu } = setup(ctx);
    const expected = FAULTS[ctx.iommu];
    const buf = dev.dma.allocate(4096);
    buf.bytes.fill(0xaa);
    const unmapped = buf.iova + 0x10_0000n;
    await faultingDma(expected.faultFreezes, edu.dmaFromDeviceToIova(unmapped, 256));
    const faults = machine.faults();
    assert.equal(faults.length, 1);
    assert.equal(faults[0].access, "write");
    assert.equal(faults[0].address, unmapped);
    assert.match(faults[0].message, expected.unmappedWrite);
    assert.ok(buf.bytes.every((b) => b === 0xaa), "mapped memory untouched");
    edu.close();
    dev.close();
  },
);

simTest("edu: a device write to a read-only mapping faults", async (ctx) => {
  const { machine, dev, edu } = setup(ctx);
  const expected = FAULTS[ctx.iommu];
  const ro = dev.dma.allocate(4096, { read: true, write: false });
  ro.bytes.fill(0x55);
  await edu.dmaToDevice(ro, 0, 0, 128); // reading is allowed
  assert.equal(machine.faults().length, 0);
  await faultingDma(expected.faultFreezes, edu.dmaFromDevice(ro, 0, 0, 128));
  assert.equal(machine.faults().length, 1);
  assert.match(machine.faults()[0].message, expected.readOnlyWrite);
  assert.ok(ro.bytes.every((b) => b === 0x55), "read-only memory untouched");
  edu.close();
  dev.close();
});

simTest("edu: MSI arrives through the eventfd", async (ctx) => {
  const { dev, edu } = setup(ctx, "msi");
  const status = await edu.raiseInterrupt(0x1234);
  assert.equal(status, 0x1234);
  assert.equal(edu.counters.interrupts, 1);
  const none = await dev.irqs.wait(0, { timeoutMs: 5 });
  assert.equal(none, "timeout", "acknowledged: no second interrupt");
  edu.close();
  dev.close();
});

simTest("edu: closing the device releases every mapping, fd and locked page", async (ctx) => {
  const { machine, dev, edu } = setup(ctx);
  const baseline = ctx.leaks.baseline.physicalBytes;
  const before = machine.kernel.readFile("/proc/self/status");
  dev.dma.allocate(16384);
  await edu.factorial(5);
  edu.close();
  dev.close();
  const after = machine.kernel.readFile("/proc/self/status");
  assert.equal(typeof after, "string");
  assert.match(after as string, /VmLck:\s+0 kB/);
  assert.equal(typeof before, "string");
  assert.equal(machine.memory.usedBytes, baseline, "every page the session took is released");
});
