/**
 * Several vIOMMUs on one machine (issue 15, item 3; seeds/000, the allocator proposal, not Linux
 * ABI): `createMachine` builds two virtio-iommu instances, each with its own endpoints, sharing the
 * system-wide PASID space; ALLOC_PASID/FREE_PASID through either is equivalent; /dev/ioasid takes
 * its PASIDs through the first instance still present (the kernel's list of allocators);
 * hot-unplugging that instance releases the PASIDs handed out through it — torn down on every
 * device, the one behind the other instance included, then quarantined — while the other
 * instance keeps serving. Mixing kinds is refused with seeds/000's reason.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { PasidSpace } from "../../core/pasid.ts";
import { VfioError } from "../../core/errors.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { createMachine } from "../../sim/machine.ts";
import { VirtioIommu } from "../../sim/iommu/virtio_iommu/virtio_iommu.ts";
import {
  encodeAttach,
  encodeProbe,
  VIRTIO_IOMMU_S,
} from "../../sim/iommu/virtio_iommu/virtio_iommu_wire.ts";
import { openPasidSession, PASID_SPACE_IOVA } from "../helpers/pasid_session.ts";
import { PasidDmaDriver } from "../../drivers/pasid_dma/pasid_dma.ts";

const EDU = "0000:00:02.0"; // behind virtio0
const ENGINE = "0000:00:04.0"; // behind virtio1
const QUARANTINE_NS = 1_000_000;

function machine() {
  const m = createMachine({
    iommu: "virtio-iommu",
    additionalIommus: ["virtio-iommu"],
    kernelVersion: "6.15",
    allowUnsafeInterrupts: { type1: true, iommufd: true },
    pasidAllocatorProposal: { quarantineNs: QUARANTINE_NS },
    devices: [{ model: "edu", bdf: EDU }, { model: "pasid-dma", bdf: ENGINE, iommu: 1 }],
    strict: true,
  });
  const [v0, v1] = m.iommus as VirtioIommu[];
  assert.ok(v0 instanceof VirtioIommu && v1 instanceof VirtioIommu);
  return { m, v0, v1 };
}

Deno.test("several vIOMMUs: two virtio-iommu instances, each with its own endpoints", async () => {
  const { m, v0, v1 } = machine();
  assert.equal(m.iommu, v0, "machine.iommu is instance 0");
  assert.deepEqual([v0.name, v1.name], ["virtio0", "virtio1"]);
  assert.equal(m.fn(EDU).group.iommu, v0);
  assert.equal(m.fn(ENGINE).group.iommu, v1);
  const status = (v: VirtioIommu, req: Uint8Array) => {
    v.device.process(req.subarray(0, req.length - 4), req.subarray(req.length - 4));
    return req[req.length - 4];
  };
  assert.equal(
    status(v0, encodeAttach({ domain: 9, endpoint: 0x20, flags: 0 })),
    VIRTIO_IOMMU_S.NOENT,
  );
  assert.equal(
    status(v1, encodeAttach({ domain: 9, endpoint: 0x10, flags: 0 })),
    VIRTIO_IOMMU_S.NOENT,
  );
  const probe = encodeProbe(0x20, v1.device.config.probeSize);
  assert.equal(v1.sendRequest(probe), 0, "virtio1 knows the engine");
  // Both serve DMA for their own devices, through VFIO as usual.
  using dev = openPciDevice(EDU, { kernel: m.kernel, iommu: "iommufd" });
  const edu = EduDriver.open(dev, { interrupts: "poll" });
  const buf = dev.dma.allocate(4096);
  buf.bytes.set([1, 2, 3, 4]);
  await edu.dmaToDevice(buf, 0, 0, 4);
  await edu.dmaFromDevice(buf, 100, 0, 4);
  assert.deepEqual([...buf.bytes.subarray(100, 104)], [1, 2, 3, 4]);
  assert.equal(v0.attached(0x10) !== undefined, true);
  assert.equal(v1.attached(0x10), undefined, "the edu is not virtio1's");
  edu.close();
  // A fault on virtio1 is the machine's too, named by its device.
  await m.kernel.sleep(1);
  assert.equal(v1.translate(0x20, undefined, 0x1000n, "read", 4).ok, false);
  assert.match(m.faults().at(-1)!.message, /^virtio_iommu virtio1: /);
});

Deno.test("several vIOMMUs (proposal): ALLOC/FREE through either instance are equivalent", () => {
  const { m, v0, v1 } = machine();
  assert.equal(v0.allocPasid(), 1);
  assert.equal(v1.allocPasid(), 2, "one system-wide space behind both");
  assert.equal(v1.freePasid(1), 0, "FREE_PASID through the other instance");
  assert.equal(v0.freePasid(2), 0);
  assert.equal(m.pasidSpace?.state(1), "quarantined");
  assert.equal(v0.freePasid(1), -ERRNO.ENOENT, "already freed");
  assert.equal(v1.allocPasid(2), -ERRNO.ENOMEM, "1 and 2 are quarantined for both");
});

Deno.test("several vIOMMUs (proposal): unplugging the allocating instance releases its PASIDs", async () => {
  const { m, v0, v1 } = machine();
  const k = m.kernel;
  const pasids = m.pasids!;
  const s = openPasidSession(k, ENGINE);
  s.pasidReadyRid();
  const driver = PasidDmaDriver.open(s.dev);
  const mem = s.mem();
  const space = s.space(mem);
  const owner = PasidSpace.open(k);
  const p = owner.allocate({ device: s.dev });
  assert.equal(pasids.space.holderOf(p.value)?.via, v0.device, "through virtio0's ALLOC_PASID");
  driver.usePasid(owner, p, space.hwpt); // bound on the engine behind virtio1
  assert.equal((await driver.fill(PASID_SPACE_IOVA, 64, 0x42, p.value)).status, "ok");
  assert.ok(mem.bytes.subarray(0, 64).every((b) => b === 0x42));
  const viaV1 = v1.allocPasid();
  assert.equal(viaV1, 2);

  m.unplugIommu(0);
  assert.equal(v0.device.removed, true);
  const ev = pasids.teardown.eventsOf(p.value);
  assert.deepEqual(ev.map((e) => e.step), ["silenced", "stop", "drained", "quarantined"]);
  assert.match(
    ev[0].detail,
    /^the vIOMMU that allocated it was removed: 1 entry .*virtio-iommu 00:04\.0/,
  );
  assert.equal(pasids.space.state(p.value), "quarantined");
  assert.equal(pasids.space.state(viaV1), "allocated", "virtio1's PASIDs stay");
  const r = await driver.fill(PASID_SPACE_IOVA, 64, 0x43, p.value).catch((e) => e as Error);
  assert.match(String(r), /PASID 1 was stopped/, "the driver was told to stop");
  assert.equal(
    m.iommus[1].translate(0x20, p.value, PASID_SPACE_IOVA, "write", 4).ok,
    false,
    "DMA tagged with it faults",
  );
  assert.throws(() => p.free(), (e: unknown) => e instanceof VfioError && e.errnoName === "ENOENT");
  // virtio1 keeps serving: /dev/ioasid allocates through it now.
  const q = owner.allocate({ device: s.dev });
  assert.equal(q.value, 3);
  assert.equal(pasids.space.holderOf(q.value)?.via, v1.device);
  driver.usePasid(owner, q, space.hwpt);
  assert.equal((await driver.fill(PASID_SPACE_IOVA, 64, 0x44, q.value)).status, "ok");
  assert.equal(v0.allocPasid(), -ERRNO.EIO, "the unplugged instance answers nothing");
  // With no vIOMMU left there is no allocator: ENODEV, not a private space.
  m.unplugIommu(1);
  assert.throws(
    () => owner.allocate(),
    (e: unknown) => e instanceof VfioError && e.errnoName === "ENODEV",
  );
  assert.throws(() => m.unplugIommu(2), /no such IOMMU instance/);
  driver.close();
  owner.close();
  assert.equal(k.munmap(mem), 0);
});

Deno.test("several IOMMUs: mixing kinds is refused with seeds/000's reason", () => {
  assert.throws(
    () => createMachine({ iommu: "vtd", additionalIommus: ["virtio-iommu"] }),
    /mixes "vtd" and "virtio-iommu": refused, as seeds\/000 argues — a virtio-iommu that offers the PASID allocator can be removed at runtime/,
  );
  assert.throws(
    () => createMachine({ iommu: "virtio-iommu", additionalIommus: ["vtd"] }),
    /mixes "virtio-iommu" and "vtd"/,
  );
  assert.throws(
    () => createMachine({ iommu: "vtd", additionalIommus: ["vtd"] }),
    /only virtio-iommu is modelled with more than one instance/,
  );
  assert.throws(
    () => createMachine({ iommu: "virtio-iommu", devices: [{ model: "edu", iommu: 1 }] }),
    /device iommu 1: want 0\.\.0/,
  );
  assert.throws(
    () =>
      createMachine({
        iommu: "virtio-iommu",
        additionalIommus: ["virtio-iommu"],
        devices: [{ model: "edu", group: 7 }, { model: "edu", group: 7, iommu: 1 }],
      }),
    /group 7 has devices behind IOMMUs 0 and 1/,
  );
  const plain = createMachine({ iommu: "vtd" });
  assert.deepEqual(plain.iommus, [plain.iommu], "one IOMMU by default");
  assert.throws(() => plain.unplugIommu(0), /a vtd; only a virtio-iommu can be hot-unplugged/);
});
