/**
 * PASID attach of a bound device (`iommufd_device_attach(idev, pasid, pt_id)`, the iommufd
 * PASID series of Linux 6.15; only reachable when the kernel answers as 6.15 or later): a HWPT
 * allocated with IOMMU_HWPT_ALLOC_PASID is installed on one PASID of the device, next to (and
 * independent of) the RID attachment.
 *
 * Rules modelled (from the merged series as summarized in vfio.md §7.6 / iommufd.md; details not
 * verified against a 6.15 source tree): the PASID must be below the device's PASID width — the
 * smaller of the IOMMU's and the device's PCIe PASID capability (Max PASID Width), 0 when either
 * lacks PASID support — else EINVAL; the HWPT must be PASID-compatible (allocated with
 * IOMMU_HWPT_ALLOC_PASID), and so must the HWPT the RID is attached to, if any
 * (`iommufd_hwpt_pasid_compat`; the RID side is checked in device.ts): else EINVAL. An IOAS as
 * the target is EINVAL too, as in Linux: `iommufd_device_auto_get_domain` allocates automatic
 * HWPTs without IOMMU_HWPT_ALLOC_PASID, so none is PASID-compatible (checked in the upstream
 * source of device.c/hw_pagetable.c after 6.15). Attaching an attached PASID replaces its HWPT;
 * detaching a PASID that is not attached does nothing.
 *
 * **Proposal, not Linux ABI** (machines with `pasidAllocatorProposal`): the PASID must also be one
 * the calling process owns through /dev/ioasid, else EACCES (sim/kernel/pasid_allocators.ts says
 * why that errno), checked after the width; and when a PASID is torn down its attachments are
 * dropped here ({@link revokePasid}) while the IOMMU silences the entries itself.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { devicePasidWidth } from "../pci/ext_cap.ts";
import type { IommufdCore } from "./core.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { DeviceObject, Hwpt } from "./objects.ts";

/** How many PASID bits the device can use behind its IOMMU. */
function pasidBits(idev: DeviceObject): number {
  return Math.min(idev.fn.group.iommu.facts.maxPasidLog2, devicePasidWidth(idev.fn.model.config));
}

/**
 * Attach `ptId` (a PASID-compatible HWPT) to `pasid` of a device for `process`: the HWPT ID or
 * -errno.
 */
export function attachDevicePasid(
  core: IommufdCore,
  devid: number,
  pasid: number,
  ptId: number,
  process: SimProcess,
): number {
  const dev = core.lookup(devid, "device");
  if (!dev) return -ERRNO.ENOENT;
  if (pasid >= 2 ** pasidBits(dev)) return -ERRNO.EINVAL;
  const owned = core.settings.pasidPolicy?.checkAttach(process, pasid) ?? 0;
  if (owned < 0) return owned;
  const pt = core.any(ptId);
  if (!pt) return -ERRNO.ENOENT;
  if (pt.type !== "hwpt-paging" && pt.type !== "hwpt-nested") return -ERRNO.EINVAL;
  const hwpt: Hwpt = pt;
  if (!hwpt.pasidCompat) return -ERRNO.EINVAL;
  const rid = dev.igroup.hwpt;
  if (rid !== undefined && !rid.pasidCompat) return -ERRNO.EINVAL;
  const iommu = dev.fn.group.iommu;
  const rc = iommu.attachPasid(dev.fn.requester, pasid, hwpt.domain);
  if (rc < 0) return rc;
  const old = dev.pasids.get(pasid);
  hwpt.users++;
  dev.pasids.set(pasid, hwpt);
  if (old) old.users--;
  return hwpt.id;
}

/** Detach a PASID of a device (nothing when it is not attached). */
export function detachDevicePasid(core: IommufdCore, devid: number, pasid: number): void {
  const dev = core.lookup(devid, "device");
  const hwpt = dev?.pasids.get(pasid);
  if (!dev || !hwpt) return;
  dev.fn.group.iommu.attachPasid(dev.fn.requester, pasid, null);
  dev.pasids.delete(pasid);
  hwpt.users--;
}

/**
 * A PASID is being torn down (proposal): forget its attachments on every device of the context
 * without touching the IOMMU, which silences the entries itself; the HWPTs may then be destroyed.
 */
export function revokePasid(core: IommufdCore, pasid: number): void {
  for (const obj of core.objects.objects()) {
    if (obj.type !== "device") continue;
    const hwpt = obj.pasids.get(pasid);
    if (hwpt === undefined) continue;
    obj.pasids.delete(pasid);
    hwpt.users--;
  }
}

/** Detach every PASID of a device (unbind). */
export function detachAllPasids(core: IommufdCore, dev: DeviceObject): void {
  for (const pasid of [...dev.pasids.keys()]) detachDevicePasid(core, dev.id, pasid);
}
