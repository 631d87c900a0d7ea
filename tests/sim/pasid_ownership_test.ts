/**
 * Ownership at attach (issue 15, item 1; the allocator proposal, not Linux ABI): with
 * `pasidAllocatorProposal` on, VFIO_DEVICE_ATTACH_PASID takes only a PASID this process owns
 * through /dev/ioasid — never allocated, freed (being torn down or quarantined) or owned by a
 * simulated SVA process is EACCES — on VT-d scalable mode, SMMUv3 SubstreamIDs and virtio-iommu;
 * DMA tagged with a refused PASID never lands. Without the proposal Linux's rule stands: any PASID
 * within the width attaches. At the virtio-iommu request level, ATTACH_PASID takes only a PASID
 * handed to the guest by ALLOC_PASID (NOENT otherwise).
 */
import assert from "node:assert/strict";
import { attachIommufdPasid, detachIommufdPasid } from "../../core/cdev.ts";
import { VfioError } from "../../core/errors.ts";
import { PasidSpace } from "../../core/pasid.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import { encode } from "../../ffi/uapi/layout.ts";
import {
  IOMMU_HWPT_ALLOC_PASID,
  vfio_device_attach_iommufd_pt_pasid,
  VFIO_DEVICE_ATTACH_PASID,
} from "../../ffi/uapi/post_6_12.ts";
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT } from "../../ffi/uapi/vfio.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { SystemPasidSpace } from "../../sim/kernel/pasid_space.ts";
import {
  VIOMMU_QEMU_FEATURES,
  VirtioIommuDevice,
} from "../../sim/iommu/virtio_iommu/virtio_iommu_device.ts";
import {
  encodeAllocPasid,
  encodeBindPasid,
  encodeFreePasid,
  VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID,
} from "../../sim/iommu/virtio_iommu/virtio_iommu_pasid.ts";
import { encodeMap, VIRTIO_IOMMU_S } from "../../sim/iommu/virtio_iommu/virtio_iommu_wire.ts";
import {
  closeRig,
  PASID_BDF,
  PASID_IOMMUS,
  pasidMachine,
  type PasidRig,
  pasidRig,
} from "../helpers/pasid_rig.ts";
import { openPasidSession, PASID_SPACE_IOVA } from "../helpers/pasid_session.ts";

const IOVA = PASID_SPACE_IOVA;

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT with the PASID flag, raw: 0 or -errno. */
function rawAttach(r: PasidRig, pasid: number, ptId: number): number {
  const l = vfio_device_attach_iommufd_pt_pasid;
  const arg = encode(l, { argsz: l.size, flags: VFIO_DEVICE_ATTACH_PASID, pt_id: ptId, pasid });
  const k = r.machine.kernel;
  return k.ioctl(r.device.fd, ioctlNumber(k.ioctlArch, VFIO_DEVICE_ATTACH_IOMMUFD_PT), arg);
}

for (const kind of PASID_IOMMUS) {
  Deno.test(`pasid ownership (proposal) on ${kind}: only an owned PASID attaches (EACCES)`, async () => {
    const r = pasidRig(kind);
    const x = r.mem();
    const sx = r.space(x);
    assert.equal(rawAttach(r, 7, sx.hwpt), -ERRNO.EACCES, "PASID 7 was never allocated");
    assert.throws(
      () => attachIommufdPasid(r.machine.kernel, r.device.fd, 7, sx.hwpt, PASID_BDF),
      (e: unknown) =>
        e instanceof VfioError && e.errnoName === "EACCES" &&
        /PasidSpace\.allocate/.test(e.message),
    );
    const refused = await r.driver.fill(IOVA, 64, 0x11, 7);
    assert.equal(refused.status, "fault");
    assert.ok(x.bytes.every((b) => b === 0), "DMA tagged with a refused PASID never lands");

    const space = PasidSpace.open(r.machine.kernel);
    const p = space.allocate({ device: r.dev });
    assert.equal(p.value, 1);
    assert.equal(rawAttach(r, p.value, sx.hwpt), 0, "the owner's PASID attaches");
    assert.equal((await r.driver.fill(IOVA, 64, 0x22, p.value)).status, "ok");
    assert.ok(x.bytes.subarray(0, 64).every((b) => b === 0x22));

    // Freed: torn down, then quarantined; attaching it again is refused all along.
    p.free();
    assert.equal(r.machine.pasidSpace?.state(1), "quarantined");
    assert.equal(rawAttach(r, 1, sx.hwpt), -ERRNO.EACCES, "a quarantined PASID is nobody's");

    // A PASID an SVA process owns is not this process's to attach through iommufd.
    const proc = r.machine.pasids!.spawnProcess("other");
    const other = proc.bind(PASID_BDF);
    assert.equal(other, 2);
    assert.equal(rawAttach(r, other, sx.hwpt), -ERRNO.EACCES);
    proc.exit();

    space.close();
    closeRig(r, [sx]);
  });

  Deno.test(`pasid ownership on ${kind} without the proposal: Linux's rule, no owner`, async () => {
    if (kind === "virtio-iommu") {
      // Linux's virtio-iommu has no PASIDs: a PASID-compatible HWPT is refused outright.
      const machine = pasidMachine(kind, { proposal: false });
      const s = openPasidSession(machine.kernel, PASID_BDF);
      assert.equal(machine.iommu.facts.maxPasidLog2, 0);
      assert.throws(() => s.pasidReadyRid(), /IOMMU_HWPT_ALLOC failed with EOPNOTSUPP/);
      s.dev.close();
      return;
    }
    const r = pasidRig(kind, { proposal: false });
    const x = r.mem();
    const sx = r.space(x, IOMMU_HWPT_ALLOC_PASID);
    assert.equal(rawAttach(r, 7, sx.hwpt), 0, "any PASID within the width attaches");
    assert.equal((await r.driver.fill(IOVA, 64, 0x33, 7)).status, "ok");
    assert.ok(x.bytes.subarray(0, 64).every((b) => b === 0x33));
    assert.equal(r.machine.kernel.open("/dev/ioasid", 2), -ERRNO.ENOENT, "no /dev/ioasid");
    detachIommufdPasid(r.machine.kernel, r.device.fd, 7, PASID_BDF);
    closeRig(r, [sx]);
  });
}

Deno.test("virtio-iommu ATTACH_PASID (proposal): only PASIDs ALLOC_PASID handed to this guest", () => {
  const clock = new VirtualClock();
  const space = new SystemPasidSpace(clock, 1000);
  const features = VIOMMU_QEMU_FEATURES | (1n << BigInt(VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID));
  const guest = { name: "guest A" };
  const widths = new Map([[0x10, 20], [0x18, 3]]);
  const make = (tenant: unknown) =>
    new VirtioIommuDevice({
      features,
      pasidSpace: space,
      pasidTenant: tenant,
      endpoints: [0x10, 0x18],
      endpointPasidBits: (ep) => widths.get(ep) ?? 0,
    });
  const [a, b] = [make(guest), make(guest)];
  const c = make({ name: "guest B" });
  for (const d of [a, b, c]) d.negotiate(features);
  const send = (d: VirtioIommuDevice, req: Uint8Array) => {
    const readable = req.length - 4 - (req[0] === 0x80 ? 4 : 0);
    const used = d.process(req.subarray(0, readable), req.subarray(readable));
    return {
      used,
      status: req[req.length - 4],
      pasid: new DataView(req.buffer).getUint32(8, true),
    };
  };
  const bind = (d: VirtioIommuDevice, endpoint: number, pasid: number, domain = 1, attach = true) =>
    send(d, encodeBindPasid(attach, { domain, endpoint, pasid })).status;
  assert.equal(send(a, encodeAllocPasid(0)).pasid, 1);
  assert.equal(send(c, encodeAllocPasid(0)).pasid, 2, "another guest, the same host-wide space");
  assert.equal(bind(b, 0x10, 1), VIRTIO_IOMMU_S.OK, "either vIOMMU of the guest binds its PASID");
  assert.equal(bind(a, 0x10, 2), VIRTIO_IOMMU_S.NOENT, "PASID 2 was handed to guest B");
  assert.equal(bind(a, 0x10, 9), VIRTIO_IOMMU_S.NOENT, "PASID 9 was never handed out");
  assert.equal(bind(a, 0x10, 0), VIRTIO_IOMMU_S.INVAL, "PASID 0 is the endpoint's own traffic");
  assert.equal(bind(a, 0x18, 1), VIRTIO_IOMMU_S.OK, "PASID 1 fits a 3-bit endpoint");
  assert.equal(send(a, encodeAllocPasid(0)).pasid, 3);
  assert.equal(send(a, encodeAllocPasid(0)).pasid, 4);
  for (let i = 5; i <= 8; i++) assert.equal(send(a, encodeAllocPasid(0)).pasid, i);
  assert.equal(bind(a, 0x18, 8), VIRTIO_IOMMU_S.RANGE, "PASID 8 needs 4 bits, the endpoint has 3");
  assert.equal(bind(a, 0x20, 1), VIRTIO_IOMMU_S.NOENT, "not an endpoint of this vIOMMU");
  const reserved = encodeBindPasid(true, { domain: 1, endpoint: 0x10, pasid: 1 });
  reserved[16] = 1;
  assert.equal(send(a, reserved).status, VIRTIO_IOMMU_S.INVAL, "reserved must be zero");
  assert.equal(bind(a, 0x10, 1, 2, false), VIRTIO_IOMMU_S.INVAL, "PASID 1 is not on domain 2");
  // The bound PASID translates through the domain's mappings.
  const map = encodeMap({
    domain: 1,
    virtStart: 0x1000n,
    virtEnd: 0x1fffn,
    physStart: 0x9000n,
    flags: 3,
  });
  assert.equal(send(b, map).status, VIRTIO_IOMMU_S.OK);
  assert.deepEqual(b.translate(0x10, 1, 0x1010n, "write"), { ok: true, phys: 0x9010n });
  const unbound = b.translate(0x10, 3, 0x1010n, "write");
  assert.ok(!unbound.ok && !unbound.unreported, "a PASID without an entry faults visibly");
  assert.equal(bind(b, 0x10, 1, 1, false), VIRTIO_IOMMU_S.OK);
  assert.equal(send(b, encodeFreePasid(3)).status, VIRTIO_IOMMU_S.OK, "freed through the other");
  assert.equal(send(c, encodeFreePasid(4)).status, VIRTIO_IOMMU_S.NOENT, "not guest B's");
  const plain = new VirtioIommuDevice({ pasidSpace: space });
  assert.equal(send(plain, encodeBindPasid(true, { domain: 1, endpoint: 1, pasid: 1 })).used, 0);
});
