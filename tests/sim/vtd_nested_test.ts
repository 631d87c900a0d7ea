/**
 * VT-d nested translation on the simulator, driven through iommufd as a userspace vIOMMU would:
 * a NEST_PARENT HWPT over the IOAS (stage 2), a VTD_S1 nested HWPT whose first-stage tables are
 * built in TypeScript in DMA memory (stage 1), the edu device attached to it. Shows the two-stage
 * walk with A/D updates, a stale IOTLB entry until IOMMU_HWPT_INVALIDATE, faults that name their
 * stage in VT-d's format, and the kernel flushing nested entries when stage 2 changes.
 */
import assert from "node:assert/strict";
import { attachIommufdPt, detachIommufdPt } from "../../core/cdev.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { IommufdBackend } from "../../core/iommufd_backend.ts";
import { IommufdFaultQueue } from "../../core/iommufd_fault.ts";
import { openPciDevice, type PciDevice } from "../../core/pci_device.ts";
import { VTD_FS, VtdFirstStageTables } from "../../core/vtd_stage1.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from "../../ffi/uapi/iommufd.ts";
import { createMachine, type SimMachine } from "../../sim/machine.ts";
import { PasidDmaDevice, type PasidDmaOptions } from "../../sim/pci/pasid_dma.ts";
import { PasidDmaDriver } from "../../drivers/pasid_dma/pasid_dma.ts";
import { vtdDeviceState } from "../../sim/iommufd/iopf.ts";
import { findExtCapability } from "../../sim/pci/ext_cap.ts";

const BDF = "0000:00:02.0";
/** A stage-1 address inside the edu's 28-bit DMA mask. */
const VA = 0x100_0000n;
const PAGE = 4096n;

interface Nested {
  machine: SimMachine;
  dev: PciDevice;
  edu: EduDriver;
  backend: IommufdBackend;
  tables: VtdFirstStageTables;
  a: DmaBuffer;
  b: DmaBuffer;
  nestedId: number;
  queue: IommufdFaultQueue | undefined;
  devId: number;
  deviceFd: number;
  invalidate(entry: Uint8Array, dataType?: number): number;
  close(): void;
}

/** edu on a scalable-mode VT-d, its buffer preloaded with "nest", attached to a nested HWPT. */
async function nested(
  options: { faultQueue?: boolean; attach?: boolean } = {},
): Promise<Nested> {
  const machine = createMachine({ iommu: "vtd", vtdScalableMode: true, strict: true });
  const dev = openPciDevice(BDF, { kernel: machine.kernel, iommu: "iommufd" });
  const edu = EduDriver.open(dev, { interrupts: "poll" });
  const backend = dev.dma.backend;
  assert.ok(backend instanceof IommufdBackend);
  const [device] = backend.devices();
  // Preload the edu's internal buffer while it still translates through the IOAS directly.
  const src = dev.dma.allocate(4096);
  src.bytes.set(new TextEncoder().encode("nest"));
  await edu.dmaToDevice(src, 0, 0, 4);
  dev.dma.free(src);
  const tables = new VtdFirstStageTables(dev.dma.allocate(16 * 4096));
  const a = dev.dma.allocate(4096);
  const b = dev.dma.allocate(4096);
  const fd = backend.iommufd;
  const parentId = fd.hwptAlloc({
    devId: device.devId,
    ptId: backend.ioasId,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  const queue = options.faultQueue ? IommufdFaultQueue.open(machine.kernel, fd) : undefined;
  const nestedId = fd.hwptAlloc({
    devId: device.devId,
    ptId: parentId,
    dataType: IOMMU_HWPT_DATA_VTD_S1,
    data: tables.hwptData(),
    ...(queue ? { flags: IOMMU_HWPT_FAULT_ID_VALID, faultId: queue.id } : {}),
  });
  if (options.attach !== false) attachIommufdPt(machine.kernel, device.fd, nestedId, BDF);
  return {
    deviceFd: device.fd,
    machine,
    dev,
    edu,
    backend,
    tables,
    a,
    b,
    nestedId,
    queue,
    devId: device.devId,
    invalidate: (entry, dataType = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) =>
      fd.hwptInvalidate(nestedId, dataType, [entry]),
    close() {
      attachIommufdPt(machine.kernel, device.fd, backend.ioasId, BDF);
      fd.destroy(nestedId);
      fd.destroy(parentId);
      queue?.close();
      edu.close();
      dev.close();
    },
  };
}

const text = (b: DmaBuffer): string => new TextDecoder().decode(b.bytes.subarray(0, 4));

Deno.test("vtd nested: DMA goes through the user's stage 1, then stage 2; A and D are set", async () => {
  const n = await nested();
  n.tables.map(VA, n.a.iova, PAGE, { write: true });
  await n.edu.dmaFromDeviceToIova(VA, 4);
  assert.equal(text(n.a), "nest");
  const pte = n.tables.leaf(VA);
  assert.equal(pte & (VTD_FS.ACCESSED | VTD_FS.DIRTY), VTD_FS.ACCESSED | VTD_FS.DIRTY);
  assert.equal(n.machine.faults().length, 0);
  n.close();
});

Deno.test("vtd nested: a changed PTE is not seen until IOMMU_HWPT_INVALIDATE", async () => {
  const n = await nested();
  n.tables.map(VA, n.a.iova, PAGE, { write: true });
  await n.edu.dmaFromDeviceToIova(VA, 4);
  n.a.bytes.fill(0, 0, 4);
  n.tables.map(VA, n.b.iova, PAGE, { write: true }); // repoint, no invalidation
  await n.edu.dmaFromDeviceToIova(VA, 4);
  assert.equal(text(n.a), "nest", "the stale IOTLB entry still points at A");
  assert.equal(text(n.b), "\0\0\0\0");
  assert.equal(n.invalidate(n.tables.invalidation(VA, PAGE)), 1);
  n.a.bytes.fill(0, 0, 4);
  await n.edu.dmaFromDeviceToIova(VA, 4);
  assert.equal(text(n.b), "nest", "after the invalidation the new PTE is used");
  assert.equal(text(n.a), "\0\0\0\0");
  n.close();
});

Deno.test("vtd nested: invalidation data with the wrong type tag is refused (EINVAL)", async () => {
  const n = await nested();
  assert.throws(
    () => n.invalidate(n.tables.invalidation(), IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 + 1),
    /IOMMU_HWPT_INVALIDATE failed with EINVAL/,
  );
  n.close();
});

Deno.test("vtd nested: faults name their stage in VT-d's scalable-mode reasons", async () => {
  const n = await nested();
  const cases: { setup(): void; va: bigint; reason: number; stage: 1 | 2; text: RegExp }[] = [
    {
      setup: () => {},
      va: VA + 16n * PAGE,
      reason: 0x71,
      stage: 1,
      text: /\[fault reason 0x71\] SM: Present bit in first-level paging entry is clear/,
    },
    {
      setup: () => n.tables.map(VA + PAGE, n.a.iova, PAGE, { write: false }),
      va: VA + PAGE,
      reason: 0x85,
      stage: 1,
      text: /\[fault reason 0x85\] SM: No write permission/,
    },
    {
      // A GPA the IOAS never mapped: stage 1 is fine, stage 2 refuses the output address.
      setup: () => n.tables.map(VA + 2n * PAGE, 0x7000_0000n, PAGE, { write: true }),
      va: VA + 2n * PAGE,
      reason: 0x79,
      stage: 2,
      text: /\[fault reason 0x79\] SM: Read\/Write permission error in second-level/,
    },
  ];
  for (const c of cases) {
    c.setup();
    const before = n.machine.faults().length;
    await n.edu.dmaFromDeviceToIova(c.va, 4);
    const f = n.machine.faults()[before];
    assert.equal(f.reason, c.reason);
    assert.equal(f.stage, c.stage);
    assert.equal(f.format, "vtd-frr");
    assert.equal(f.raw[12], c.reason, "FR field of the fault-recording register");
    assert.match(f.message, /^DMAR: \[DMA Write NO_PASID\] Request device \[00:02\.0\]/);
    assert.match(f.message, c.text);
  }
  n.close();
});

Deno.test("vtd nested: a stage-2 unmap flushes the nested IOTLB (no stale stage-2 data)", async () => {
  const n = await nested();
  n.tables.map(VA, n.a.iova, PAGE, { write: true });
  await n.edu.dmaFromDeviceToIova(VA, 4);
  const gpa = n.a.iova;
  n.dev.dma.free(n.a); // the kernel unmaps the GPA from stage 2 and flushes
  const before = n.machine.faults().length;
  await n.edu.dmaFromDeviceToIova(VA, 4);
  const f = n.machine.faults()[before];
  assert.equal(f?.reason, 0x79, `GPA 0x${gpa.toString(16)} is gone from stage 2`);
  n.close();
});

Deno.test("vtd nested: the edu (no ATS, no PRI) cannot attach a fault-capable HWPT: ENODEV", async () => {
  const n = await nested({ faultQueue: true, attach: false });
  assert.throws(() => attachIommufdPt(n.machine.kernel, n.deviceFd, n.nestedId, BDF), /ENODEV/);
  // Still on its previous (auto) HWPT: DMA through the IOAS works.
  await n.edu.dmaFromDeviceToIova(n.a.iova, 4);
  assert.equal(text(n.a), "nest");
  n.close();
});

/** A PRI-capable pasid-dma (ATS, PRI) on a scalable-mode VT-d, bound through iommufd. */
function priMachine(pri: PasidDmaOptions["pri"] = true) {
  const model = new PasidDmaDevice({ pri });
  const machine = createMachine({
    iommu: "vtd",
    vtdScalableMode: true,
    strict: true,
    devices: [{ model, bdf: PDMA_BDF }],
  });
  const dev = openPciDevice(PDMA_BDF, { kernel: machine.kernel, iommu: "iommufd" });
  const backend = dev.dma.backend;
  assert.ok(backend instanceof IommufdBackend);
  const [device] = backend.devices();
  const fd = backend.iommufd;
  const parentId = fd.hwptAlloc({
    devId: device.devId,
    ptId: backend.ioasId,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  const queue = IommufdFaultQueue.open(machine.kernel, fd);
  const tables = new VtdFirstStageTables(dev.dma.allocate(16 * 4096));
  const made: number[] = [];
  const alloc = (fault: boolean) =>
    made[
      made.push(fd.hwptAlloc({
        devId: device.devId,
        ptId: parentId,
        dataType: IOMMU_HWPT_DATA_VTD_S1,
        data: tables.hwptData(),
        ...(fault ? { flags: IOMMU_HWPT_FAULT_ID_VALID, faultId: queue.id } : {}),
      })) - 1
    ];
  const attach = (id: number) => attachIommufdPt(machine.kernel, device.fd, id, PDMA_BDF);
  const fn = machine.fn(PDMA_BDF);
  const close = () => {
    attach(backend.ioasId);
    for (const id of made) fd.destroy(id);
    fd.destroy(parentId);
    queue.close();
    dev.close();
  };
  return { model, machine, dev, fd, parentId, queue, tables, alloc, attach, fn, device, close };
}

const PDMA_BDF = "0000:00:04.0";

Deno.test("vtd nested: a fault-capable HWPT delivers stage-1 misses of a PRI device to its queue", async () => {
  const m = priMachine();
  const a = m.dev.dma.allocate(4096);
  const dma = PasidDmaDriver.open(m.dev);
  const nestedId = m.alloc(true);
  // From the paging HWPT (ATS enabled there) to the fault-capable nested one: PRI gets enabled.
  m.attach(nestedId);
  assert.deepEqual(vtdDeviceState(m.fn), { ats: false, pri: true });
  // Stage 1 maps the engine's ring (identity) but not VA.
  const ring = BigInt(m.model.mmioRead(0, 0x10, 4)) | (BigInt(m.model.mmioRead(0, 0x14, 4)) << 32n);
  m.tables.map(ring & ~(PAGE - 1n), ring & ~(PAGE - 1n), PAGE, { write: true });
  assert.deepEqual(m.queue.read(), [], "nothing yet");
  const failed = await dma.fill(VA + 0x120n, 4, 0x6e); // no stage-1 PTE: a page request
  assert.notEqual(failed.status, "ok");
  const [req, ...more] = m.queue.read();
  assert.equal(more.length, 0);
  assert.deepEqual(
    { flags: req.flags, devId: req.devId, pasid: req.pasid, perm: req.perm, addr: req.addr },
    {
      flags: IOMMU_PGFAULT_FLAGS_LAST_PAGE,
      devId: m.device.devId,
      pasid: undefined,
      perm: IOMMU_PGFAULT_PERM_WRITE,
      addr: VA,
    },
  );
  assert.equal(m.machine.faults().at(-1)?.format, "vtd-page-request");
  // The "vIOMMU" resolves it: map the page, answer, and the retried DMA succeeds.
  m.tables.map(VA, a.iova, PAGE, { write: true });
  m.queue.respond(req.cookie, IOMMUFD_PAGE_RESP_SUCCESS);
  assert.throws(() => m.queue.respond(req.cookie, IOMMUFD_PAGE_RESP_SUCCESS), /EINVAL/);
  const ok = await dma.fill(VA + 0x120n, 4, 0x6e);
  assert.equal(ok.status, "ok");
  assert.equal(new TextDecoder().decode(a.bytes.subarray(0x120, 0x124)), "nnnn");
  dma.close();
  m.close();
});

Deno.test("vtd nested: IOPF enable rules on a PRI device (blocked ENODEV, PASID-required EINVAL, counts)", () => {
  const m = priMachine();
  const f1 = m.alloc(true);
  const f2 = m.alloc(true);
  const plain = m.alloc(false);
  // Replace fault → fault keeps the one enable; → plain disables; → fault again enables.
  m.attach(f1);
  assert.equal(vtdDeviceState(m.fn).pri, true);
  m.attach(f2);
  assert.equal(vtdDeviceState(m.fn).pri, true);
  m.attach(plain);
  assert.equal(vtdDeviceState(m.fn).pri, false);
  // ATS went off with the nested attach (device_block_translation): no IOPF from here.
  assert.throws(() => m.attach(f1), /ENODEV/);
  m.attach(m.parentId); // a paging domain enables ATS again
  m.attach(f1);
  const pri = findExtCapability(m.model.config, 0x13);
  assert.equal(m.model.config.read(pri + 4, 2) & 1, 1, "PRI Enable written to the device");
  // Detach disables; a blocked device has ATS off, so a direct attach is ENODEV.
  detachIommufdPt(m.machine.kernel, m.device.fd, PDMA_BDF);
  assert.deepEqual(vtdDeviceState(m.fn), { ats: false, pri: false });
  assert.equal(m.model.config.read(pri + 4, 2) & 1, 0);
  assert.throws(() => m.attach(f1), /ENODEV/);
  m.attach(m.parentId);
  m.attach(f1); // works again after the detach
  assert.equal(vtdDeviceState(m.fn).pri, true);
  m.close();

  // PASID enabled (scalable mode, PASID capability) but PRG Response PASID Required clear.
  const n = priMachine({ pasidRequired: false });
  const g = n.alloc(true);
  assert.throws(() => n.attach(g), /EINVAL/);
  assert.equal(vtdDeviceState(n.fn).pri, false);
  n.close();
});
