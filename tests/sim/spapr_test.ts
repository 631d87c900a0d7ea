/**
 * The sPAPR TCE model and container on a simulated POWER9 PowerNV machine, through the framework
 * (openPciDevice, DmaSpace, SpaprBackend, the edu driver): TCE format in memory, lazily filled
 * multi-level tables, windows created and removed with DmaSpace following, EEH freeze on a bad
 * DMA with its fault record and recovery, a freeze that does not outlive its session (whichever
 * way it came), and nothing left behind.
 */
import assert from "node:assert/strict";
import { openPciDevice, type PciDevice } from "../../core/pci_device.ts";
import { SpaprBackend } from "../../core/spapr_backend.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { createMachine, type SimMachine } from "../../sim/machine.ts";
import { SpaprTceIommu } from "../../sim/iommu/spapr/spapr_tce.ts";
import type { TceTable } from "../../sim/iommu/spapr/spapr_tce_table.ts";
import {
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_INJECT_ERR,
  VFIO_EEH_PE_RESET_HOT,
  VFIO_EEH_PE_STATE_NORMAL,
  VFIO_EEH_PE_STATE_STOPPED,
  VFIO_EEH_PE_STATE_STOPPED_DMA,
  VFIO_EEH_PE_UNFREEZE_DMA,
  VFIO_EEH_PE_UNFREEZE_IO,
} from "../../ffi/uapi/vfio.ts";

const BDF = "0000:00:02.0";
/** The edu's IOMMU group number on the simulated machine, which is its PE number. */
const PE = 2;
/** edu identification register (BAR0 offset 0): 0x010000ed for QEMU's edu. */
const EDU_ID = 0x010000ed;

interface Session {
  machine: SimMachine;
  dev: PciDevice;
  backend: SpaprBackend;
  phb: SpaprTceIommu;
  baseline: number;
}

function open(window?: { pageShift: number; size: bigint; levels?: number }): Session {
  const machine = createMachine({ iommu: "spapr", strict: true });
  const baseline = machine.memory.usedBytes;
  const dev = openPciDevice(BDF, {
    kernel: machine.kernel,
    dmaOptions: { backend: { spapr: window === undefined ? {} : { window } } },
  });
  assert.ok(dev.dma.backend instanceof SpaprBackend);
  assert.ok(machine.iommu instanceof SpaprTceIommu);
  return { machine, dev, backend: dev.dma.backend, phb: machine.iommu, baseline };
}

/** The big-endian TCE of a bus address, read straight from the table in simulated memory. */
function tceInMemory(machine: SimMachine, table: TceTable, iova: bigint): bigint {
  assert.equal(table.geometry.levels, 1, "single-level tables only");
  const index = (iova - table.start) / table.pageSize;
  const bytes = new Uint8Array(8);
  assert.ok(machine.memory.read(table.rootAddress + index * 8n, bytes));
  return new DataView(bytes.buffer).getBigUint64(0, false);
}

Deno.test("spapr: a sPAPR machine has powerpc ioctls, 64 KiB pages and no VFIO cdev", () => {
  const { machine, dev } = open();
  assert.equal(machine.kernel.ioctlArch, "powerpc");
  assert.equal(machine.kernel.pageSize, 65536);
  assert.equal(dev.info.backend, "spapr");
  assert.equal(dev.info.cdev, undefined);
  assert.deepEqual(dev.dma.ranges(), [{ start: 0n, end: 0x7fff_ffffn }]);
  dev.close();
  assert.throws(
    () => createMachine({ iommu: "spapr", cdev: true }),
    /cdev: true with iommu "spapr".*VFIO_DEVICE_CDEV only without SPAPR_TCE_IOMMU/,
  );
});

Deno.test("spapr: TCEs are big-endian with READ/WRITE bits, and DMA goes through them", async () => {
  const { machine, dev, phb } = open();
  const edu = EduDriver.open(dev, { interrupts: "poll" });
  const rw = dev.dma.allocate(4096);
  const ro = dev.dma.allocate(4096, { read: true, write: false });
  const table = phb.tableGroup(PE).windows[0]!;
  assert.equal(table.pageSize, 4096n, "the default window has 4 KiB TCEs");
  const rwTce = tceInMemory(machine, table, rw.iova);
  const roTce = tceInMemory(machine, table, ro.iova);
  assert.equal(rwTce & 3n, 3n, "READ|WRITE");
  assert.equal(roTce & 3n, 1n, "READ only");
  const rwPhys = phb.translate(0x10, undefined, rw.iova + 0x10n, "read", 4);
  assert.ok(rwPhys.ok);
  assert.equal(rwPhys.phys, (rwTce & ~0xfffn) + 0x10n);
  // Every 4 KiB TCE page of a 64 KiB host page is mapped (the buffer is a whole host page).
  assert.notEqual(tceInMemory(machine, table, rw.iova + 0xf000n), 0n);
  rw.bytes.set([1, 2, 3, 4]);
  await edu.dmaToDevice(rw, 0, 0, 4);
  await edu.dmaFromDevice(rw, 100, 0, 4);
  assert.deepEqual([...rw.bytes.subarray(100, 104)], [1, 2, 3, 4]);
  dev.dma.free(rw);
  assert.equal(tceInMemory(machine, table, rw.iova), 0n, "unmapped: the TCE is invalid again");
  edu.close();
  dev.close();
});

Deno.test("spapr: a created window changes the ranges, DmaSpace allocates in it, removal undoes it", () => {
  const { machine, dev, backend, phb, baseline } = open({
    pageShift: 16,
    size: 1n << 32n,
    levels: 2, // 3 levels of 8192-entry blocks would decode 55 bits: PowerNV refuses that
  });
  const second = 1n << 59n;
  assert.deepEqual(dev.dma.ranges(), [
    { start: 0n, end: 0x7fff_ffffn },
    { start: second, end: second + (1n << 32n) - 1n },
  ]);
  assert.equal(backend.info?.ddw?.maxDynamicWindowsSupported, 2);
  const table = phb.tableGroup(PE).windows[1]!;
  assert.equal(table.geometry.levels, 2);
  const topOnly = table.allocatedBytes;
  const buf = dev.dma.allocate(65536, { iova: second + 0x1234_0000n });
  assert.equal(buf.iova, second + 0x1234_0000n);
  assert.ok(table.allocatedBytes > topOnly, "the lower levels were allocated on first use");
  // The edu's 28-bit DMA mask cannot reach 1 << 59: check the translation at the PHB instead.
  const hit = phb.translate(0x10, undefined, buf.iova + 0x4321n, "write", 4);
  assert.ok(hit.ok);
  assert.ok(machine.memory.write(hit.phys, new Uint8Array([9, 8, 7])));
  assert.deepEqual([...buf.bytes.subarray(0x4321, 0x4324)], [9, 8, 7]);
  assert.throws(() => backend.removeWindow(second), /still holds the mapping/);
  dev.dma.free(buf);
  backend.removeWindow(second);
  assert.deepEqual(dev.dma.ranges(), [{ start: 0n, end: 0x7fff_ffffn }]);
  assert.equal(phb.tableGroup(PE).windows[1], undefined);
  assert.throws(() => dev.dma.allocate(65536, { iova: second }), /outside|not inside|range/);
  dev.close();
  assert.equal(machine.memory.usedBytes, baseline, "tables and pages released");
});

Deno.test("spapr: a DMA through an invalid TCE freezes the PE (EEH); thawing it brings the device back", async () => {
  const { machine, dev, backend } = open();
  const edu = EduDriver.open(dev, { interrupts: "poll" });
  const buf = dev.dma.allocate(4096);
  buf.bytes.fill(0xaa);
  const hole = buf.iova + 0x10_0000n;
  await assert.rejects(edu.dmaFromDeviceToIova(hole, 256), /reads all-ones.*EEH froze its PE/s);
  const [fault] = machine.faults();
  assert.equal(fault.format, "pnv-tce");
  assert.equal(fault.address, hole);
  assert.equal(fault.reasonName, "invalid TCE");
  assert.match(
    fault.message,
    /PHB#0-PE#2: DMA write at 0x[0-9a-f]+: invalid TCE; EEH: Frozen PHB#0-PE#2 detected/,
  );
  const raw = new DataView(fault.raw.buffer);
  assert.equal(raw.getUint32(0, false), PE);
  assert.equal(raw.getUint16(4, false), 0x10, "requester 00:02.0");
  assert.equal(raw.getBigUint64(8, false), hole);
  assert.ok(machine.trace.includes("EEH: Frozen PHB#0-PE#2 detected"));
  assert.ok(buf.bytes.every((b) => b === 0xaa), "memory untouched");

  const mmio = dev.bar(0);
  assert.equal(mmio.read32(0), 0xffff_ffff, "a frozen PE reads all-ones");
  assert.equal(backend.tce.eehPeOp(VFIO_EEH_PE_GET_STATE), VFIO_EEH_PE_STATE_STOPPED);
  backend.tce.eehPeOp(VFIO_EEH_PE_UNFREEZE_IO);
  assert.equal(backend.tce.eehPeOp(VFIO_EEH_PE_GET_STATE), VFIO_EEH_PE_STATE_STOPPED_DMA);
  assert.equal(mmio.read32(0), EDU_ID, "MMIO answers again");
  backend.tce.eehPeOp(VFIO_EEH_PE_UNFREEZE_DMA);
  assert.equal(backend.tce.eehPeOp(VFIO_EEH_PE_GET_STATE), VFIO_EEH_PE_STATE_NORMAL);
  buf.bytes.set([5, 6], 0);
  await edu.dmaToDevice(buf, 0, 0, 2);
  await edu.dmaFromDevice(buf, 512, 0, 2);
  assert.deepEqual([...buf.bytes.subarray(512, 514)], [5, 6]);
  assert.equal(machine.faults().length, 1);
  edu.close();
  dev.close();
});

Deno.test("spapr: closing releases TCE tables, preregistered memory and locked pages", async () => {
  const { machine, dev, baseline } = open({ pageShift: 16, size: 1n << 30n });
  const edu = EduDriver.open(dev, { interrupts: "msi" });
  dev.dma.allocate(3 * 65536);
  dev.dma.allocate(4096, { read: true, write: false });
  await edu.factorial(6);
  const locked = machine.kernel.readFile("/proc/self/status");
  assert.doesNotMatch(String(locked), /VmLck:\s+0 kB/, "tables and registrations are charged");
  edu.close();
  dev.close();
  assert.match(String(machine.kernel.readFile("/proc/self/status")), /VmLck:\s+0 kB/);
  assert.equal(machine.memory.usedBytes, baseline);
});

/** The ways user space can leave its PE frozen, each as one step of a session. */
const FREEZES: readonly {
  readonly how: string;
  readonly freeze: (s: { dev: PciDevice; backend: SpaprBackend; edu: EduDriver }) => Promise<void>;
}[] = [
  {
    how: "a DMA through an invalid TCE",
    freeze: async ({ dev, edu }) => {
      const buf = dev.dma.allocate(4096);
      await assert.rejects(edu.dmaFromDeviceToIova(buf.iova + 0x10_0000n, 64), /EEH froze/);
      assert.equal(dev.bar(0).read32(0), 0xffff_ffff, "frozen: MMIO reads all-ones");
    },
  },
  {
    how: "VFIO_EEH_PE_INJECT_ERR",
    freeze: ({ dev, backend }) => {
      // EEH_ERR_TYPE_32, EEH_ERR_FUNC_LD_MEM_ADDR (asm/eeh.h).
      backend.tce.eehPeOp(VFIO_EEH_PE_INJECT_ERR, { type: 0, func: 0, addr: 0n, mask: 0n });
      assert.equal(dev.bar(0).read32(0), 0xffff_ffff, "frozen: MMIO reads all-ones");
      return Promise.resolve();
    },
  },
  {
    how: "RESET_HOT without RESET_DEACTIVATE",
    freeze: ({ backend }) => {
      backend.tce.eehPeOp(VFIO_EEH_PE_RESET_HOT);
      return Promise.resolve();
    },
  },
];

for (const { how, freeze } of FREEZES) {
  Deno.test(`spapr: a PE frozen by ${how} does not outlive its session`, async () => {
    const { machine, dev, backend, baseline } = open();
    const edu = EduDriver.open(dev, { interrupts: "poll" });
    await freeze({ dev, backend, edu });
    assert.equal(backend.tce.eehPeOp(VFIO_EEH_PE_GET_STATE), VFIO_EEH_PE_STATE_STOPPED);
    edu.close();
    dev.close();
    assert.equal(machine.memory.usedBytes, baseline);

    // Second session on the same machine: eeh_dev_release (last close) and eeh_dev_open (first
    // open) thaw a frozen PE, so the next driver finds the device working.
    const dev2 = openPciDevice(BDF, { kernel: machine.kernel });
    assert.ok(dev2.dma.backend instanceof SpaprBackend);
    assert.equal(dev2.dma.backend.tce.eehPeOp(VFIO_EEH_PE_GET_STATE), VFIO_EEH_PE_STATE_NORMAL);
    assert.equal(dev2.bar(0).read32(0), EDU_ID, "MMIO answers");
    const edu2 = EduDriver.open(dev2, { interrupts: "poll" });
    const buf = dev2.dma.allocate(4096);
    buf.bytes.set([7, 8, 9], 0);
    await edu2.dmaToDevice(buf, 0, 0, 3);
    await edu2.dmaFromDevice(buf, 1024, 0, 3);
    assert.deepEqual([...buf.bytes.subarray(1024, 1027)], [7, 8, 9], "DMA works again");
    assert.ok(machine.trace.some((l) => /PE#2 thawed/.test(l)), "the thaw is traced");
    edu2.close();
    dev2.close();
    assert.equal(machine.memory.usedBytes, baseline);
  });
}

Deno.test("spapr: opening a device thaws a PE that froze while no session held it", () => {
  const { machine, dev, phb } = open();
  dev.close();
  phb.injectError(phb.tableGroup(PE)); // a platform error between sessions
  assert.equal(phb.tableGroup(PE).eehState, VFIO_EEH_PE_STATE_STOPPED);
  const dev2 = openPciDevice(BDF, { kernel: machine.kernel });
  assert.equal(phb.tableGroup(PE).eehState, VFIO_EEH_PE_STATE_NORMAL, "eeh_dev_open thawed it");
  assert.equal(dev2.bar(0).read32(0), EDU_ID);
  dev2.close();
});
