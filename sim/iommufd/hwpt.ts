/**
 * HW page tables (drivers/iommu/iommufd/hw_pagetable.c): kernel-managed paging HWPTs (an
 * {@link IommuDomain} from the device's IOMMU mirroring one IOAS) and user-managed nested HWPTs
 * (a stage-1 configuration on top of a NEST_PARENT paging HWPT), their allocation checks in
 * Linux's order and their destruction.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IommuDomain } from "../iommu/model.ts";
import type { IommufdCore } from "./core.ts";
import { driverFor } from "./drivers.ts";
import type { IoptDomain } from "./io_pagetable.ts";
import type { DeviceObject, Hwpt, HwptNested, HwptPaging, IoasObject } from "./objects.ts";
import { IOMMU_HWPT_ALLOC_PASID } from "../../ffi/uapi/post_6_12.ts";
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
} from "../../ffi/uapi/mod.ts";

/**
 * Optional dirty-tracking operations a simulated domain may offer (`iommu_dirty_ops`). Domains
 * without them report no dirty pages.
 */
export interface DirtyTrackingDomain {
  /** Enable or disable hardware dirty tracking: 0 or -errno. */
  setDirtyTracking(enable: boolean): number;
  /** IOVAs of dirty pages (of `pageSize`) in `[iova, iova + length)`, clearing them unless `noClear`. */
  readAndClearDirty(iova: bigint, length: bigint, pageSize: bigint, noClear: boolean): bigint[];
}

/** The domain's dirty operations, if it implements them. */
export function dirtyOpsOf(domain: IommuDomain): DirtyTrackingDomain | undefined {
  const d = domain as Partial<DirtyTrackingDomain>;
  return typeof d.setDirtyTracking === "function" && typeof d.readAndClearDirty === "function"
    ? d as DirtyTrackingDomain
    : undefined;
}

/** The paging HWPT behind a HWPT (itself, or a nested HWPT's parent): `find_hwpt_paging`. */
export function pagingOf(hwpt: Hwpt): HwptPaging {
  return hwpt.type === "hwpt-paging" ? hwpt : hwpt.parent;
}

/** The table entry of a paging HWPT in its IOAS's page table. */
const ioptDomains = new WeakMap<HwptPaging, IoptDomain>();

/** `iommufd_hwpt_paging_enforce_cc`: 0, or -EINVAL if the domain cannot enforce coherency. */
export function enforceCacheCoherency(hwpt: HwptPaging): number {
  if (hwpt.enforceCacheCoherency) return 0;
  if (!hwpt.iommu.facts.enforceCacheCoherency) return -ERRNO.EINVAL;
  hwpt.enforceCacheCoherency = true;
  return 0;
}

/**
 * `iommufd_hwpt_paging_alloc`: a paging HWPT for `idev` on `ioas`. With `attachFirst` (the
 * immediate-attach path of an auto domain) the device is attached before the domain joins the
 * IOAS, as Linux does. Returns the (not yet finalized) HWPT or -errno; the ID is given back on
 * failure.
 */
export function allocHwptPaging(
  core: IommufdCore,
  ioas: IoasObject,
  idev: DeviceObject,
  flags: number,
  userData: boolean,
  attachFirst?: (hwpt: HwptPaging) => number,
  detachAgain?: () => void,
): HwptPaging | number {
  const iommu = idev.fn.group.iommu;
  const facts = iommu.facts;
  const driver = driverFor(facts, core.settings.kernel);
  if ((flags || userData) && !driver.domainAllocUser) return -ERRNO.EOPNOTSUPP;
  const pasidFlag = core.settings.pasidAttach ? IOMMU_HWPT_ALLOC_PASID : 0;
  if (flags & ~(IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | pasidFlag)) {
    return -ERRNO.EOPNOTSUPP;
  }
  const pasidCompat = (flags & pasidFlag) !== 0;
  if (pasidCompat && facts.maxPasidLog2 === 0) return -ERRNO.EOPNOTSUPP;
  flags &= ~pasidFlag;
  if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !facts.dirtyTracking) return -ERRNO.EOPNOTSUPP;
  const id = core.objects.reserve();
  if (id < 0) return id;
  const rc = driver.domainAllocUser ? driver.pagingAlloc(facts, flags, userData) : 0;
  if (rc < 0) {
    core.objects.release(id);
    return rc;
  }
  let domain: IommuDomain;
  try {
    // A nest parent is a second-stage domain where the IOMMU has stages (SMMUv3: a VMID).
    domain = iommu.allocDomain(flags & IOMMU_HWPT_ALLOC_NEST_PARENT ? 2 : undefined);
  } catch {
    // Out of hardware domain ids: Linux fails the attach with ENOSPC; here it is the allocation.
    core.objects.release(id);
    return -ERRNO.ENOSPC;
  }
  const hwpt: HwptPaging = {
    id,
    type: "hwpt-paging",
    users: 1,
    ioas,
    domain,
    iommu,
    autoDomain: false,
    nestParent: (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0,
    dirtyOps: (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0,
    dirtyEnabled: false,
    enforceCacheCoherency: false,
    fault: undefined,
    pasidCompat,
  };
  ioas.users++;
  const abort = (err: number): number => {
    ioas.users--;
    iommu.freeDomain(domain);
    core.objects.release(id);
    return err;
  };
  if (idev.enforceCacheCoherency) {
    const cc = enforceCacheCoherency(hwpt);
    if (cc < 0) return abort(cc);
  }
  if (attachFirst) {
    const a = attachFirst(hwpt);
    if (a < 0) return abort(a);
  }
  // Joining the IOAS before any attach: a driver that sets the geometry at the first attach
  // leaves the zeroed one, the aperture [0, 0] (the IOAS keeps it after the attach).
  const aperture = driver.geometryAtFirstAttach && !attachFirst
    ? { start: 0n, end: 0n }
    : facts.aperture;
  const entry: IoptDomain = { domain, facts: { ...facts, aperture } };
  const added = ioas.iopt.addDomain(entry, hwpt);
  if (added < 0) {
    detachAgain?.();
    return abort(added);
  }
  ioptDomains.set(hwpt, entry);
  ioas.hwpts.push(hwpt);
  return hwpt;
}

/**
 * `iommufd_hwpt_nested_alloc` up to the driver's data check; `readData` copies the user data
 * (`data_len` bytes) and may fail with EFAULT. Returns the (not yet finalized) HWPT or -errno.
 */
export function allocHwptNested(
  core: IommufdCore,
  parent: HwptPaging,
  idev: DeviceObject,
  flags: number,
  dataType: number,
  dataLen: number,
  readData: (len: number) => Uint8Array | undefined,
): HwptNested | number {
  const facts = idev.fn.group.iommu.facts;
  const driver = driverFor(facts, core.settings.kernel);
  const pasidFlag = core.settings.pasidAttach ? IOMMU_HWPT_ALLOC_PASID : 0;
  const pasidCompat = (flags & pasidFlag) !== 0;
  flags &= ~pasidFlag;
  if ((flags & ~IOMMU_HWPT_FAULT_ID_VALID) || dataLen === 0 || !driver.domainAllocUser) {
    return -ERRNO.EOPNOTSUPP;
  }
  if (
    parent.autoDomain || !parent.nestParent ||
    driverFor(parent.iommu.facts, core.settings.kernel) !== driver
  ) {
    return -ERRNO.EINVAL;
  }
  const id = core.objects.reserve();
  if (id < 0) return id;
  const fail = (err: number): number => {
    core.objects.release(id);
    return err;
  };
  const rc = driver.nestedAlloc(facts, flags & ~IOMMU_HWPT_FAULT_ID_VALID, dataType);
  if (rc < 0) return fail(rc);
  const format = driver.nestedFormat;
  if (!format) return fail(-ERRNO.EOPNOTSUPP);
  if (dataType !== format.type || dataLen < format.minLen || dataLen > format.size) {
    return fail(-ERRNO.EINVAL);
  }
  const bytes = readData(dataLen);
  if (!bytes) return fail(-ERRNO.EFAULT);
  const data = new Uint8Array(format.size);
  data.set(bytes);
  const nesting = parent.iommu.nesting;
  if (!nesting) return fail(-ERRNO.EOPNOTSUPP);
  const domain = nesting.allocNested(parent.domain, { dataType, data });
  if (typeof domain === "number") return fail(domain);
  parent.users++;
  return {
    id,
    type: "hwpt-nested",
    users: 1,
    parent,
    dataType,
    data,
    domain,
    fault: undefined,
    pasidCompat,
  };
}

/** Destroy a HWPT (its users are down to the table's): remove the domain, drop references. */
export function destroyHwpt(_core: IommufdCore, hwpt: Hwpt): void {
  if (hwpt.fault) hwpt.fault.users--;
  if (hwpt.type === "hwpt-nested") {
    hwpt.parent.iommu.freeDomain(hwpt.domain);
    if (hwpt.viommu) hwpt.viommu.users--;
    else hwpt.parent.users--;
    return;
  }
  const ioas = hwpt.ioas;
  const i = ioas.hwpts.indexOf(hwpt);
  if (i >= 0) ioas.hwpts.splice(i, 1);
  const entry = ioptDomains.get(hwpt);
  if (entry) ioas.iopt.removeDomain(entry, hwpt);
  ioptDomains.delete(hwpt);
  hwpt.iommu.freeDomain(hwpt.domain);
  ioas.users--;
}
