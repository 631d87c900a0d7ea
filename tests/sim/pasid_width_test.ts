/**
 * PASID widths (issue 15, item 4; the allocator proposal, not Linux ABI, except where said): each
 * request's bound and each device's PCIe PASID width are honoured, and each refusal has its errno
 * or status — /dev/ioasid ALLOC: an empty range EINVAL, nothing free in `[min, max]` ENOSPC;
 * `PasidSpace.allocate({ device })` never hands a 4-bit device a PASID of 16 or more; iommufd's
 * PASID attach beyond the device's width is EINVAL (Linux's rule, unchanged); virtio-iommu
 * ALLOC_PASID with `max_pasid` answers NOMEM when nothing is free below it, ATTACH_PASID beyond the
 * endpoint's width RANGE; through a vIOMMU allocator a lower bound above 1 is EINVAL.
 */
import assert from "node:assert/strict";
import { PasidSpace } from "../../core/pasid.ts";
import { VfioError } from "../../core/errors.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import { IOASID_PROPOSAL_ALLOC, ioasid_proposal_alloc } from "../../ffi/uapi/proposals.ts";
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT } from "../../ffi/uapi/vfio.ts";
import {
  vfio_device_attach_iommufd_pt_pasid,
  VFIO_DEVICE_ATTACH_PASID,
} from "../../ffi/uapi/post_6_12.ts";
import type { VirtioIommu } from "../../sim/iommu/virtio_iommu/virtio_iommu.ts";
import { PasidDmaDevice } from "../../sim/pci/pasid_dma.ts";
import type { SimKernel } from "../../sim/kernel/sim_kernel.ts";
import { PASID_BDF, pasidMachine, pasidRig } from "../helpers/pasid_rig.ts";

const reject = (errno: string) => (e: unknown) => e instanceof VfioError && e.errnoName === errno;

/** IOASID_PROPOSAL_ALLOC on `fd`: the PASID or -errno. */
function rawAlloc(k: SimKernel, fd: number, min: number, max: number): number {
  const l = ioasid_proposal_alloc;
  const arg = encode(l, { argsz: l.size, min, max });
  const rc = k.ioctl(fd, ioctlNumber(k.ioctlArch, IOASID_PROPOSAL_ALLOC), arg);
  return rc < 0 ? rc : decode(l, arg).out_pasid;
}

Deno.test("pasid widths (proposal): a 4-bit device never gets a PASID it cannot carry", () => {
  const r = pasidRig("vtd", {
    devices: [{ model: new PasidDmaDevice({ pasidWidth: 4 }), bdf: PASID_BDF }],
  });
  const k = r.machine.kernel;
  const space = PasidSpace.open(k);
  assert.equal(space.widthOf(r.dev), 4, "min(VT-d's 20 bits, the device's 4)");
  const got = Array.from({ length: 15 }, () => space.allocate({ device: r.dev }).value);
  assert.deepEqual([got[0], got[14]], [1, 15]);
  assert.throws(() => space.allocate({ device: r.dev }), reject("ENOSPC"), "16 needs 5 bits");
  assert.equal(space.allocate().value, 16, "a device-less request may go higher");
  assert.equal(rawAlloc(k, space.fd, 9, 8), -ERRNO.EINVAL, "an empty range");
  assert.equal(rawAlloc(k, space.fd, 0, 0), -ERRNO.EINVAL, "PASID 0 is never handed out");
  assert.equal(rawAlloc(k, space.fd, 1, 16), -ERRNO.ENOSPC, "1..16 all taken");
  assert.equal(rawAlloc(k, space.fd, 1 << 20, 1 << 21), -ERRNO.EINVAL, "beyond PCIe's 20 bits");
  // Linux's own rule at attach, with or without the proposal: the width, EINVAL.
  const m = r.mem();
  const s = r.space(m);
  const l = vfio_device_attach_iommufd_pt_pasid;
  const attach = (pasid: number) =>
    k.ioctl(
      r.device.fd,
      ioctlNumber(k.ioctlArch, VFIO_DEVICE_ATTACH_IOMMUFD_PT),
      encode(l, { argsz: l.size, flags: VFIO_DEVICE_ATTACH_PASID, pt_id: s.hwpt, pasid }),
    );
  assert.equal(attach(16), -ERRNO.EINVAL, "PASID 16 is beyond the device's 4 bits");
  assert.equal(attach(15), 0);
  r.driver.close();
  space.close();
  r.dropPasidSetup(r.ridHwpt, [s]);
  assert.equal(k.munmap(m), 0);
  r.dev.close();
});

Deno.test("pasid widths (proposal): virtio-iommu max_pasid and endpoint widths", () => {
  const machine = pasidMachine("virtio-iommu", {
    devices: [{ model: new PasidDmaDevice({ pasidWidth: 2 }), bdf: PASID_BDF }],
  });
  const viommu = machine.iommu as VirtioIommu;
  assert.equal(viommu.allocPasid(3), 1);
  assert.equal(viommu.allocPasid(3), 2);
  assert.equal(viommu.allocPasid(3), 3);
  assert.equal(viommu.allocPasid(3), -ERRNO.ENOMEM, "NOMEM: nothing free up to max_pasid 3");
  assert.equal(viommu.allocPasid(0), 4, "max_pasid 0: no limit");
  const d = viommu.allocDomain();
  assert.equal(viommu.attachPasid(0x20, 3, d), 0, "3 fits the endpoint's 2 bits");
  assert.equal(viommu.attachPasid(0x20, 4, d), -ERRNO.ERANGE, "RANGE: 4 needs 3 bits");
  assert.equal(viommu.attachPasid(0x20, 3, null), 0);
  viommu.freeDomain(d);
  // /dev/ioasid through the vIOMMU allocator: its request has only an upper bound.
  const k = machine.kernel;
  const fd = k.open("/dev/ioasid", 2);
  assert.equal(rawAlloc(k, fd, 2, 100), -ERRNO.EINVAL, "no lower bound through ALLOC_PASID");
  assert.equal(rawAlloc(k, fd, 1, 4), -ERRNO.ENOSPC, "NOMEM from the vIOMMU is ENOSPC here");
  assert.equal(rawAlloc(k, fd, 1, 100), 5);
  assert.equal(k.close(fd), 0);
});
