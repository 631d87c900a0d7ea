/**
 * PASID attach through the VFIO cdev (Linux 6.15's VFIO_DEVICE_ATTACH_PASID, only when the
 * simulated kernel answers as 6.15) on a VT-d in scalable mode, with the PASID DMA engine: two
 * PASIDs of one device, each on its own IOAS, see different memory at the same IOVA; the RID keeps
 * its own space; 6.12 refuses the flag; the PASID width and the HWPT's PASID flag are enforced.
 */
import assert from "node:assert/strict";
import { attachIommufdPasid, attachIommufdPt, detachIommufdPasid } from "../../core/cdev.ts";
import { openPasidSession, PASID_SPACE_IOVA } from "../helpers/pasid_session.ts";
import { PasidDmaDriver } from "../../drivers/pasid_dma/pasid_dma.ts";
import { IOMMU_HWPT_ALLOC_PASID } from "../../ffi/uapi/post_6_12.ts";
import { createMachine } from "../../sim/machine.ts";
import type { VtdIommu } from "../../sim/iommu/vtd/vtd.ts";

const BDF = "0000:00:04.0";
/** Requester id of 00:04.0. */
const REQUESTER = 0x20;
const IOVA = PASID_SPACE_IOVA;

function rig(kernelVersion?: string) {
  const machine = createMachine({
    iommu: "vtd",
    vtdScalableMode: true,
    kernelVersion,
    devices: [{ model: "pasid-dma", bdf: BDF }],
    strict: true,
  });
  const kernel = machine.kernel;
  return { machine, kernel, ...openPasidSession(kernel, BDF) };
}

Deno.test("pasid: two PASIDs of one device see different memory at the same IOVA", async () => {
  const r = rig("6.15.0");
  const ridHwpt = r.pasidReadyRid();
  const pdma = PasidDmaDriver.open(r.dev);
  const x = r.mem();
  const y = r.mem();
  const sx = r.space(x);
  const sy = r.space(y);
  assert.equal(attachIommufdPasid(r.kernel, r.device.fd, 1, sx.hwpt, BDF), sx.hwpt);
  assert.equal(attachIommufdPasid(r.kernel, r.device.fd, 2, sy.hwpt, BDF), sy.hwpt);
  assert.equal((await pdma.fill(IOVA, 4096, 0x11, 1)).status, "ok");
  assert.equal((await pdma.fill(IOVA, 4096, 0x22, 2)).status, "ok");
  assert.ok(x.bytes.subarray(0, 4096).every((b) => b === 0x11), "PASID 1 wrote its own memory");
  assert.ok(y.bytes.subarray(0, 4096).every((b) => b === 0x22), "PASID 2 wrote its own memory");
  // A copy within PASID 2's space, and the RID (no PASID) still has its IOAS, not these.
  assert.equal((await pdma.memcpy(IOVA, IOVA + 4096n, 4096, 2)).status, "ok");
  assert.ok(y.bytes.subarray(4096).every((b) => b === 0x22));
  assert.ok(x.bytes.subarray(4096).every((b) => b === 0));
  const rid = await pdma.fill(IOVA, 16, 0x33);
  assert.equal(rid.status, "fault", "IOVA 0x400000 is not mapped in the RID's IOAS");
  const f = r.machine.faults().at(-1)!;
  assert.equal(f.pasid, undefined);

  detachIommufdPasid(r.kernel, r.device.fd, 1, BDF);
  const gone = await pdma.fill(IOVA, 16, 0x44, 1);
  assert.equal(gone.status, "fault");
  assert.match(r.machine.faults().at(-1)!.message, /PASID 0x1\].*\[fault reason 0x59\]/);
  detachIommufdPasid(r.kernel, r.device.fd, 2, BDF);
  // Back to an automatic HWPT now that no PASID is attached, so the backend can close its IOAS.
  r.dropPasidSetup(ridHwpt, [sx, sy]);
  pdma.close();
  r.dev.close();
});

Deno.test("pasid: attach rules — 6.12 knows no flag, PASID width, HWPT without the PASID flag", () => {
  const old = rig();
  const m = old.mem();
  const ioas = old.fd.ioasAlloc();
  old.fd.ioasMap(ioas, m.address, BigInt(m.length), { read: true, write: true }, IOVA);
  assert.throws(
    () => old.fd.hwptAlloc({ devId: old.device.devId, ptId: ioas, flags: IOMMU_HWPT_ALLOC_PASID }),
    /EOPNOTSUPP/,
    "6.12 has no IOMMU_HWPT_ALLOC_PASID",
  );
  const plain = old.fd.hwptAlloc({ devId: old.device.devId, ptId: ioas });
  assert.throws(
    () => attachIommufdPasid(old.kernel, old.device.fd, 1, plain, BDF),
    /EINVAL: invalid argument\. the kernel has no PASID attach/,
  );
  old.fd.destroy(plain);
  old.dev.close();

  const r = rig("6.15.0");
  const s = r.space(r.mem());
  const noFlag = r.space(r.mem(), 0);
  assert.throws(
    () => attachIommufdPasid(r.kernel, r.device.fd, 3, s.hwpt, BDF),
    /EINVAL/,
    "the RID is on the automatic HWPT, which is not PASID-compatible",
  );
  // On an IOAS of its own: the backend's IOAS must be free of HWPTs when the device closes.
  const ridHwpt = r.pasidReadyRid(r.fd.ioasAlloc());
  assert.throws(() => attachIommufdPasid(r.kernel, r.device.fd, 1 << 20, s.hwpt, BDF), /EINVAL/);
  assert.throws(() => attachIommufdPasid(r.kernel, r.device.fd, 3, noFlag.hwpt, BDF), /EINVAL/);
  assert.throws(() => attachIommufdPasid(r.kernel, r.device.fd, 3, s.ioas, BDF), /EINVAL/);
  assert.equal(attachIommufdPasid(r.kernel, r.device.fd, (1 << 20) - 1, s.hwpt, BDF), s.hwpt);
  const vtd = r.machine.iommu as VtdIommu;
  assert.ok(vtd.attachedPasid(REQUESTER, (1 << 20) - 1) !== undefined);
  // While a PASID is attached the RID cannot go back to a HWPT without the PASID flag, nor to an
  // IOAS (its automatic HWPT has none); it stays where it was.
  assert.throws(() => attachIommufdPt(r.kernel, r.device.fd, noFlag.hwpt, BDF), /EINVAL/);
  assert.throws(() => attachIommufdPt(r.kernel, r.device.fd, noFlag.ioas, BDF), /EINVAL/);
  assert.equal(attachIommufdPt(r.kernel, r.device.fd, ridHwpt, BDF), ridHwpt);
  r.dev.close(); // closing the cdev unbinds the device: every PASID is detached
  assert.equal(vtd.attachedPasid(REQUESTER, (1 << 20) - 1), undefined);
});
