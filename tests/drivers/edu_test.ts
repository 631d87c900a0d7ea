/**
 * The edu driver on the simulator, under every IOMMU model and both VFIO paths: DMA round trips,
 * faults for unmapped and read-only IOVAs (memory untouched), MSI through the eventfd.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { createMachine, type MachineOptions } from "../../sim/machine.ts";

/**
 * IOMMU models, the machine options and VFIO paths each has, the fault line each one logs (in its
 * vendor's format) for a device write to an unmapped IOVA and to a read-only mapping, and whether
 * the fault stops the device (sPAPR: EEH freezes the PE, so the driver's next MMIO read sees
 * all-ones and it reports that).
 */
const MODELS: {
  iommu: MachineOptions["iommu"];
  options?: Partial<MachineOptions>;
  paths: readonly ("type1" | "iommufd" | "spapr")[];
  unmappedWrite: RegExp;
  readOnlyWrite: RegExp;
  faultFreezes?: boolean;
}[] = [
  {
    iommu: "vtd",
    paths: ["type1", "iommufd"],
    unmappedWrite:
      /^DMAR: \[DMA Write NO_PASID\] Request device \[00:02\.0\] fault addr 0x[0-9a-f]+ \[fault reason 0x05\]/,
    readOnlyWrite: /\[fault reason 0x05\] PTE Write access is not set/,
  },
  {
    iommu: "smmuv3",
    paths: ["type1", "iommufd"],
    unmappedWrite: /^arm-smmu-v3 [0-9a-f]+\.smmuv3: event 0x10 received/, // F_TRANSLATION
    readOnlyWrite: /^arm-smmu-v3 [0-9a-f]+\.smmuv3: event 0x13 received/, // F_PERMISSION
  },
  {
    // x86 with virtio-iommu has no interrupt remapping: VFIO needs allow_unsafe_interrupts.
    iommu: "virtio-iommu",
    options: { allowUnsafeInterrupts: { type1: true, iommufd: true } },
    paths: ["type1", "iommufd"],
    unmappedWrite: /^virtio_iommu virtio0: page fault from EP \d+ at 0x[0-9a-f]+/,
    readOnlyWrite: /^virtio_iommu virtio0: page fault from EP \d+ at 0x[0-9a-f]+ \[W\]/,
  },
  {
    // POWER9 PowerNV: the sPAPR TCE container is the only path; a bad DMA freezes the PE (EEH).
    iommu: "spapr",
    paths: ["spapr"],
    unmappedWrite: /^PHB#0-PE#2: DMA write at 0x[0-9a-f]+: invalid TCE; EEH: Frozen PHB#0-PE#2/,
    readOnlyWrite: /^PHB#0-PE#2: DMA write at 0x[0-9a-f]+: TCE does not allow device writes/,
    faultFreezes: true,
  },
];
const BDF = "0000:00:02.0";

/** A DMA that faults: the driver reports a frozen device where the platform freezes it. */
async function faultingDma(frozen: boolean | undefined, dma: Promise<void>): Promise<void> {
  if (frozen) await assert.rejects(dma, /reads all-ones/);
  else await dma;
}

for (const model of MODELS) {
  for (const path of model.paths) {
    const name = `edu on ${model.iommu}/${path}`;
    const setup = (irq: "msi" | "poll" = "msi") => {
      const machine = createMachine({ iommu: model.iommu, strict: true, ...model.options });
      // What the IOMMU itself keeps for good (SMMUv3 stream table, event queue): not the session's.
      const baseline = machine.memory.usedBytes;
      const dev = openPciDevice(BDF, { kernel: machine.kernel, iommu: path });
      const edu = EduDriver.open(dev, { interrupts: irq });
      return { machine, dev, edu, baseline };
    };

    Deno.test({
      name: `${name}: DMA round trips at several sizes and offsets`,
      permissions: "none",
      async fn() {
        const { dev, edu } = setup();
        const buf = dev.dma.allocate(8192);
        for (
          const [size, offset] of [[1, 0], [64, 7], [1000, 100], [2048, 4096 - 2048], [4095, 1]]
        ) {
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
      },
    });

    Deno.test({
      name:
        `${name}: DMA to an unmapped IOVA faults with the vendor record and leaves memory untouched`,
      permissions: "none",
      async fn() {
        const { machine, dev, edu } = setup();
        const buf = dev.dma.allocate(4096);
        buf.bytes.fill(0xaa);
        const unmapped = buf.iova + 0x10_0000n;
        await faultingDma(model.faultFreezes, edu.dmaFromDeviceToIova(unmapped, 256));
        const faults = machine.faults();
        assert.equal(faults.length, 1);
        assert.equal(faults[0].access, "write");
        assert.equal(faults[0].address, unmapped);
        assert.match(faults[0].message, model.unmappedWrite);
        assert.ok(buf.bytes.every((b) => b === 0xaa), "mapped memory untouched");
        edu.close();
        dev.close();
      },
    });

    Deno.test({
      name: `${name}: a device write to a read-only mapping faults`,
      permissions: "none",
      async fn() {
        const { machine, dev, edu } = setup();
        const ro = dev.dma.allocate(4096, { read: true, write: false });
        ro.bytes.fill(0x55);
        await edu.dmaToDevice(ro, 0, 0, 128); // reading is allowed
        assert.equal(machine.faults().length, 0);
        await faultingDma(model.faultFreezes, edu.dmaFromDevice(ro, 0, 0, 128));
        assert.equal(machine.faults().length, 1);
        assert.match(machine.faults()[0].message, model.readOnlyWrite);
        assert.ok(ro.bytes.every((b) => b === 0x55), "read-only memory untouched");
        edu.close();
        dev.close();
      },
    });

    Deno.test({
      name: `${name}: MSI arrives through the eventfd`,
      permissions: "none",
      async fn() {
        const { dev, edu } = setup("msi");
        const status = await edu.raiseInterrupt(0x1234);
        assert.equal(status, 0x1234);
        assert.equal(edu.counters.interrupts, 1);
        const none = await dev.irqs.wait(0, { timeoutMs: 5 });
        assert.equal(none, "timeout", "acknowledged: no second interrupt");
        edu.close();
        dev.close();
      },
    });

    Deno.test({
      name: `${name}: closing the device releases every mapping, fd and locked page`,
      permissions: "none",
      async fn() {
        const { machine, dev, edu, baseline } = setup();
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
      },
    });
  }
}
