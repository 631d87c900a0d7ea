/**
 * The proposed system-wide PASID allocator (/dev/ioasid; a proposal, not Linux ABI): PASIDs
 * without a process, owned by the open file, freed when it closes, quarantined before reuse.
 */
import assert from "node:assert/strict";
import { O_RDWR } from "../../ffi/kernel.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import {
  IOASID_PROPOSAL_ALLOC,
  ioasid_proposal_alloc,
  IOASID_PROPOSAL_FREE,
  ioasid_proposal_free,
  IOASID_PROPOSAL_PATH,
} from "../../ffi/uapi/proposals.ts";
import { createMachine } from "../../sim/machine.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { SystemPasidSpace } from "../../sim/kernel/pasid_space.ts";
import {
  VIOMMU_QEMU_FEATURES,
  VirtioIommuDevice,
} from "../../sim/iommu/virtio_iommu/virtio_iommu_device.ts";
import {
  encodeAllocPasid,
  encodeFreePasid,
  VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID,
} from "../../sim/iommu/virtio_iommu/virtio_iommu_pasid.ts";
import { VIRTIO_IOMMU_S } from "../../sim/iommu/virtio_iommu/virtio_iommu_wire.ts";
import type { VirtioIommu } from "../../sim/iommu/virtio_iommu/virtio_iommu.ts";

const QUARANTINE_NS = 1_000_000;

function rig() {
  const machine = createMachine({
    iommu: "vtd",
    pasidAllocatorProposal: { quarantineNs: QUARANTINE_NS },
  });
  const k = machine.kernel;
  const open = (): number => {
    const fd = k.open(IOASID_PROPOSAL_PATH, O_RDWR);
    assert.ok(fd >= 0, `open ${IOASID_PROPOSAL_PATH}: ${fd}`);
    return fd;
  };
  const alloc = (fd: number, min = 1, max = (1 << 20) - 1): number => {
    const l = ioasid_proposal_alloc;
    const arg = encode(l, { argsz: l.size, min, max });
    const r = k.ioctl(fd, ioctlNumber(k.ioctlArch, IOASID_PROPOSAL_ALLOC), arg);
    return r < 0 ? r : decode(l, arg).out_pasid;
  };
  const free = (fd: number, pasid: number): number => {
    const l = ioasid_proposal_free;
    return k.ioctl(
      fd,
      ioctlNumber(k.ioctlArch, IOASID_PROPOSAL_FREE),
      encode(l, {
        argsz: l.size,
        pasid,
      }),
    );
  };
  return { machine, k, open, alloc, free };
}

Deno.test("pasid space (proposal): lowest free PASID from 1, one space for every open file", () => {
  const r = rig();
  const a = r.open();
  const b = r.open();
  assert.equal(r.alloc(a), 1, "PASID 0 (IOMMU_NO_PASID) is never handed out");
  assert.equal(r.alloc(b), 2, "a second file shares the system-wide space");
  assert.equal(r.alloc(a, 5, 6), 5);
  assert.equal(r.alloc(a, 5, 6), 6);
  assert.equal(r.alloc(a, 5, 6), -ERRNO.ENOSPC);
  assert.equal(r.alloc(a, 7, 6), -ERRNO.EINVAL);
  assert.equal(r.free(b, 1), -ERRNO.ENOENT, "only the owner may free a PASID");
  assert.equal(r.machine.pasidSpace?.allocated, 4);
});

Deno.test("pasid space (proposal): a freed PASID is not reused during its quarantine", async () => {
  const r = rig();
  const fd = r.open();
  assert.equal(r.alloc(fd, 1, 1), 1);
  assert.equal(r.free(fd, 1), 0);
  assert.equal(r.machine.pasidSpace?.inQuarantine(1), true);
  assert.equal(r.alloc(fd, 1, 1), -ERRNO.ENOSPC, "still quarantined");
  assert.equal(r.alloc(fd), 2, "others are handed out meanwhile");
  await r.k.sleep(QUARANTINE_NS / 1e6 + 1);
  assert.equal(r.machine.pasidSpace?.inQuarantine(1), false);
  assert.equal(r.alloc(fd, 1, 1), 1, "reused after the quarantine");
});

Deno.test("pasid space (proposal): closing the fd frees its PASIDs (into quarantine)", () => {
  const r = rig();
  const a = r.open();
  const b = r.open();
  assert.deepEqual([r.alloc(a), r.alloc(a), r.alloc(b)], [1, 2, 3]);
  assert.equal(r.k.close(a), 0);
  assert.equal(r.machine.pasidSpace?.allocated, 1);
  assert.equal(r.machine.pasidSpace?.ownerOf(3) !== undefined, true);
  assert.ok(r.machine.pasidSpace?.inQuarantine(1) && r.machine.pasidSpace.inQuarantine(2));
  assert.equal(r.alloc(b), 4, "1 and 2 wait out their quarantine");
  const plain = createMachine({ iommu: "vtd" });
  assert.equal(plain.kernel.open(IOASID_PROPOSAL_PATH, O_RDWR), -ERRNO.ENOENT, "off by default");
});

Deno.test("virtio-iommu ALLOC_PASID/FREE_PASID (proposal): one host-wide space, max_pasid, feature bit", () => {
  const clock = new VirtualClock();
  const space = new SystemPasidSpace(clock, QUARANTINE_NS);
  const features = VIOMMU_QEMU_FEATURES | (1n << BigInt(VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID));
  const [a, b] = [0, 1].map(() => new VirtioIommuDevice({ features, pasidSpace: space }));
  for (const d of [a, b]) d.negotiate(features);
  const send = (d: VirtioIommuDevice, req: Uint8Array, readable: number) => {
    const used = d.process(req.subarray(0, readable), req.subarray(readable));
    const v = new DataView(req.buffer);
    return { used, status: req[req.length - 4], pasid: v.getUint32(8, true) };
  };
  const alloc = (d: VirtioIommuDevice, max = 0) => send(d, encodeAllocPasid(max), 8);
  const free = (d: VirtioIommuDevice, pasid: number) => send(d, encodeFreePasid(pasid), 12);
  assert.deepEqual(alloc(a), { used: 8, status: VIRTIO_IOMMU_S.OK, pasid: 1 });
  assert.equal(alloc(b).pasid, 2, "both vIOMMUs draw from the same host-wide space");
  assert.equal(alloc(a, 2).status, VIRTIO_IOMMU_S.NOMEM, "max_pasid 2: nothing left below it");
  assert.equal(free(b, 1).status, VIRTIO_IOMMU_S.NOENT, "b did not hand out PASID 1");
  assert.equal(free(a, 1).status, VIRTIO_IOMMU_S.OK);
  assert.equal(alloc(a, 2).status, VIRTIO_IOMMU_S.NOMEM, "PASID 1 is quarantined");
  clock.advance(QUARANTINE_NS);
  assert.equal(alloc(a, 2).pasid, 1);
  const plain = new VirtioIommuDevice({ pasidSpace: space });
  assert.equal(alloc(plain).used, 0, "without the feature bit the request type is unknown");
});

Deno.test("pasid space (proposal): a virtio-iommu machine's vIOMMU and /dev/ioasid share it", () => {
  const machine = createMachine({
    iommu: "virtio-iommu",
    allowUnsafeInterrupts: { type1: true, iommufd: true },
    pasidAllocatorProposal: true,
  });
  const viommu = machine.iommu as VirtioIommu;
  assert.equal(viommu.allocPasid(), 1);
  const fd = machine.kernel.open(IOASID_PROPOSAL_PATH, O_RDWR);
  const l = ioasid_proposal_alloc;
  const arg = encode(l, { argsz: l.size, min: 1, max: 100 });
  assert.equal(
    machine.kernel.ioctl(fd, ioctlNumber(machine.kernel.ioctlArch, IOASID_PROPOSAL_ALLOC), arg),
    0,
  );
  assert.equal(decode(l, arg).out_pasid, 2, "the guest's /dev/ioasid allocates through its vIOMMU");
  const holder = machine.pasidSpace?.holderOf(2);
  assert.equal(holder?.via, viommu.device, "seeds/000: the host hands the guest's PASIDs out");
  assert.ok(holder?.owner !== holder?.tenant, "the kernel records the file as the owner");
  assert.equal(viommu.freePasid(3), -ERRNO.ENOENT, "never handed to this guest");
  assert.equal(viommu.freePasid(1), 0);
  assert.equal(viommu.allocPasid(1), -ERRNO.ENOMEM, "PASID 1 is quarantined");
  const plain = createMachine({
    iommu: "virtio-iommu",
    allowUnsafeInterrupts: { type1: true, iommufd: true },
  });
  assert.equal((plain.iommu as VirtioIommu).allocPasid(), -ERRNO.EIO, "no proposal: unknown type");
});
