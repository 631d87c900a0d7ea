/**
 * Devices in an iommufd context (drivers/iommu/iommufd/device.c): bind (ownership and the
 * coherency/MSI checks), attach to an IOAS (auto HWPT, reused by compatible devices) or a HWPT,
 * replace, detach, unbind. All devices of one IOMMU group share the group's HWPT; the first
 * attached device attaches the whole group to the domain, per-device reserved regions are
 * enforced on the IOAS for each attachment (iommufd.md §7, §8). A fault-capable HWPT needs the
 * IOMMU driver's IOPF feature on the device (./iopf.ts): attaching one enables it, counted per
 * device (`iommufd_fault_iopf_enable`), replacing between two keeps it, and detaching the last
 * one, or replacing it with a HWPT without a fault queue, disables it.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { decode } from "../../ffi/uapi/layout.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { SimPciFunction } from "../kernel/pci_function.ts";
import type { IommufdCore } from "./core.ts";
import { driverFor, vtdFirstLevel5 } from "./drivers.ts";
import type { DomainKind } from "./iopf.ts";
import { allocHwptPaging, enforceCacheCoherency, pagingOf } from "./hwpt.ts";
import { detachAllPasids } from "./pasid.ts";
import { unbindVdevices, viommuAttachCheck } from "./viommu.ts";
import type { DeviceObject, Hwpt, HwptPaging, IoasObject, IommufdGroup } from "./objects.ts";
import { IOMMU_HWPT_DATA_VTD_S1, iommu_hwpt_vtd_s1 } from "../../ffi/uapi/mod.ts";

/** `iommufd_device_bind`: the device ID or -errno (EINVAL, EPERM, EBUSY). */
export function bindDevice(core: IommufdCore, fn: SimPciFunction, process: SimProcess): number {
  const facts = fn.group.iommu.facts;
  if (!facts.cacheCoherency) return -ERRNO.EINVAL;
  if (!facts.msiIsolated && !core.settings.allowUnsafeInterrupts) return -ERRNO.EPERM;
  const group = fn.group;
  if (group.dmaOwner !== undefined && group.dmaOwnerCookie !== core.ownerCookie) {
    return -ERRNO.EBUSY;
  }
  const id = core.objects.reserve();
  if (id < 0) return id;
  let igroup = core.groups.get(group);
  if (!igroup) {
    igroup = { group, hwpt: undefined, attached: [], bound: 0 };
    core.groups.set(group, igroup);
  }
  igroup.bound++;
  if (group.dmaOwner === undefined) {
    // Claiming DMA ownership puts the group on the blocking domain.
    for (const f of group.functions) driverDomainChanged(f, "blocked");
  }
  group.dmaOwner = "iommufd";
  group.dmaOwnerCookie = core.ownerCookie;
  const dev: DeviceObject = {
    id,
    type: "device",
    users: 2, // the table, and the binding driver until unbind
    fn,
    process,
    igroup,
    enforceCacheCoherency: facts.enforceCacheCoherency,
    attached: false,
    pasids: new Map(),
    iopfEnabled: 0,
  };
  core.objects.finalize(dev);
  return id;
}

/** `iommufd_device_unbind` (after detaching, as VFIO does). */
export function unbindDevice(core: IommufdCore, devid: number): void {
  const dev = core.lookup(devid, "device");
  if (!dev) return;
  detachAllPasids(core, dev);
  if (dev.attached) detachDevice(core, devid);
  unbindVdevices(core, dev);
  dev.users = 0;
  core.destroy(dev);
}

/** The IOMMU driver's side effects of a domain change on one function (VT-d: ATS). */
function driverDomainChanged(fn: SimPciFunction, kind: DomainKind): void {
  const facts = fn.group.iommu.facts;
  driverFor(facts).iopf?.domainChanged?.(facts, fn, kind);
}

/** Point every function of the group at the HWPT's domain (or block it). */
function setGroupDomain(igroup: IommufdGroup, hwpt: Hwpt | undefined): void {
  const iommu = igroup.group.iommu;
  const domain = hwpt?.domain ?? null; // a nested HWPT's own stage-1 domain, or the paging one
  const kind: DomainKind = hwpt === undefined
    ? "blocked"
    : hwpt.type === "hwpt-nested"
    ? "nested"
    : "paging";
  for (const fn of igroup.group.functions) {
    iommu.attach(fn.requester, domain);
    driverDomainChanged(fn, kind);
  }
}

/**
 * `iommufd_fault_iopf_enable`: the first fault-capable attachment of a device asks the IOMMU
 * driver for the IOPF feature (`iommu_dev_enable_feature`: ENODEV without the op); later ones
 * only count. 0 or -errno.
 */
function iopfEnable(idev: DeviceObject): number {
  if (++idev.iopfEnabled > 1) return 0;
  const facts = idev.fn.group.iommu.facts;
  const ops = driverFor(facts).iopf;
  const rc = ops ? ops.enable(facts, idev.fn) : -ERRNO.ENODEV;
  if (rc < 0) idev.iopfEnabled--;
  return rc;
}

/** `iommufd_fault_iopf_disable`: the last one turns the feature off (a zero count: no-op). */
function iopfDisable(idev: DeviceObject): void {
  if (idev.iopfEnabled === 0) return; // Linux WARNs here
  if (--idev.iopfEnabled > 0) return;
  const facts = idev.fn.group.iommu.facts;
  driverFor(facts).iopf?.disable(facts, idev.fn);
}

/** The driver's attach_dev checks: the domain belongs to this IOMMU, nested config is valid. */
function driverAttachCheck(idev: DeviceObject, hwpt: Hwpt): number {
  const iommu = idev.fn.group.iommu;
  if (pagingOf(hwpt).iommu !== iommu) return -ERRNO.EINVAL;
  for (const fn of idev.fn.group.functions) {
    const rc = iommu.attachCheck?.(fn.requester, hwpt.domain) ?? 0;
    if (rc < 0) return rc;
  }
  if (hwpt.type === "hwpt-nested" && hwpt.viommu) return viommuAttachCheck(idev, hwpt);
  if (hwpt.type === "hwpt-nested" && hwpt.dataType === IOMMU_HWPT_DATA_VTD_S1) {
    const s1 = decode(iommu_hwpt_vtd_s1, hwpt.data);
    const ok = s1.addr_width === 48 || (s1.addr_width === 57 && vtdFirstLevel5(iommu.facts));
    if (!ok) return -ERRNO.EINVAL;
  }
  return 0;
}

/** `iopt_table_enforce_dev_resv_regions`: reserve the device's regions on the IOAS. */
function reserveDeviceRegions(idev: DeviceObject, ioas: IoasObject): number {
  const regions = idev.fn.group.iommu.reservedRegions(idev.fn.requester)
    .filter((r) => r.type !== "direct-relaxable");
  const hwMsi = regions.filter((r) => r.type === "msi").length;
  const swMsi = regions.filter((r) => r.type === "sw-msi").length;
  for (const r of regions) {
    const rc = ioas.iopt.reserve(r.start, r.end, idev);
    if (rc < 0) {
      ioas.iopt.removeReserved(idev);
      return rc;
    }
  }
  if ((swMsi && hwMsi) || swMsi > 1) {
    ioas.iopt.removeReserved(idev);
    return -ERRNO.EINVAL;
  }
  return 0;
}

/**
 * `iommufd_hwpt_pasid_compat` for the RID (Linux 6.15+, the PASID attach series): while a PASID
 * of the group is attached, the RID may only go to a HWPT allocated with IOMMU_HWPT_ALLOC_PASID
 * (VT-d's scalable-mode PASID table hangs off the RID's entry). PASIDs exist only from 6.15, so
 * older kernels never refuse here.
 */
function ridPasidCompat(idev: DeviceObject, hwpt: Hwpt): number {
  if (hwpt.pasidCompat) return 0;
  const devices = [idev, ...idev.igroup.attached];
  return devices.some((d) => d.pasids.size > 0) ? -ERRNO.EINVAL : 0;
}

/** `iommufd_hw_pagetable_attach`: 0 or -errno; takes a user on the HWPT. */
function hwptAttach(idev: DeviceObject, hwpt: Hwpt): number {
  const ig = idev.igroup;
  if (ig.hwpt !== undefined && ig.hwpt !== hwpt) return -ERRNO.EINVAL;
  const paging = pagingOf(hwpt);
  if (idev.enforceCacheCoherency) {
    const rc = enforceCacheCoherency(paging);
    if (rc < 0) return rc;
  }
  let rc = reserveDeviceRegions(idev, paging.ioas);
  if (rc < 0) return rc;
  if (ig.attached.length === 0) {
    rc = ridPasidCompat(idev, hwpt);
    if (rc < 0) {
      paging.ioas.iopt.removeReserved(idev);
      return rc;
    }
    if (hwpt.fault) {
      rc = iopfEnable(idev);
      if (rc < 0) {
        paging.ioas.iopt.removeReserved(idev);
        return rc;
      }
    }
    rc = driverAttachCheck(idev, hwpt);
    if (rc < 0) {
      if (hwpt.fault) iopfDisable(idev);
      paging.ioas.iopt.removeReserved(idev);
      return rc;
    }
    setGroupDomain(ig, hwpt);
    ig.hwpt = hwpt;
  }
  hwpt.users++;
  ig.attached.push(idev);
  return 0;
}

/** `iommufd_hw_pagetable_detach`: the HWPT the device was on (the caller puts it). */
function hwptDetach(idev: DeviceObject): Hwpt | undefined {
  const ig = idev.igroup;
  const hwpt = ig.hwpt;
  if (!hwpt) return undefined;
  const i = ig.attached.indexOf(idev);
  if (i >= 0) ig.attached.splice(i, 1);
  if (ig.attached.length === 0) {
    setGroupDomain(ig, undefined);
    if (hwpt.fault) iopfDisable(idev);
    ig.hwpt = undefined;
  }
  pagingOf(hwpt).ioas.iopt.removeReserved(idev);
  return hwpt;
}

/** `iommufd_hw_pagetable_put`: auto HWPTs die with their last user. */
function putHwpt(core: IommufdCore, hwpt: Hwpt): void {
  if (hwpt.type === "hwpt-paging" && hwpt.autoDomain) core.putAndTryDestroy(hwpt);
  else hwpt.users--;
}

/** `iommufd_device_do_replace`: 0 and the old HWPT to put, or -errno. */
function hwptReplace(idev: DeviceObject, hwpt: Hwpt): { rc: number; old?: Hwpt } {
  const ig = idev.igroup;
  const old = ig.hwpt;
  if (!old) return { rc: -ERRNO.EINVAL };
  if (hwpt === old) return { rc: 0 };
  const compat = ridPasidCompat(idev, hwpt);
  if (compat < 0) return { rc: compat };
  const paging = pagingOf(hwpt);
  const oldPaging = pagingOf(old);
  const ioasChanged = paging.ioas !== oldPaging.ioas;
  if (ioasChanged) {
    for (const dev of ig.attached) {
      const rc = reserveDeviceRegions(dev, paging.ioas);
      if (rc < 0) {
        for (const d of ig.attached) paging.ioas.iopt.removeReserved(d);
        return { rc };
      }
    }
  }
  const unreserve = (): void => {
    if (ioasChanged) { for (const d of ig.attached) paging.ioas.iopt.removeReserved(d); }
  };
  const iopfOn = hwpt.fault !== undefined && old.fault === undefined;
  if (iopfOn) {
    const rc = iopfEnable(idev);
    if (rc < 0) {
      unreserve();
      return { rc };
    }
  }
  const rc = driverAttachCheck(idev, hwpt);
  if (rc < 0) {
    if (iopfOn) iopfDisable(idev);
    unreserve();
    return { rc };
  }
  setGroupDomain(ig, hwpt);
  if (old.fault && !hwpt.fault) iopfDisable(idev);
  if (ioasChanged) { for (const d of ig.attached) oldPaging.ioas.iopt.removeReserved(d); }
  ig.hwpt = hwpt;
  const n = ig.attached.length;
  hwpt.users += n;
  old.users -= n - 1; // the last reference is put by the caller
  return { rc: 0, old };
}

type AttachFn = (idev: DeviceObject, hwpt: Hwpt) => { rc: number; old?: Hwpt };

const doAttach: AttachFn = (idev, hwpt) => ({ rc: hwptAttach(idev, hwpt) });

/** `iommufd_device_auto_get_domain`: reuse a compatible auto HWPT of the IOAS or make one. */
function autoGetDomain(
  core: IommufdCore,
  idev: DeviceObject,
  ioas: IoasObject,
  fn: AttachFn,
): { rc: number; id: number; old?: Hwpt } {
  for (const hwpt of [...ioas.hwpts]) {
    if (!hwpt.autoDomain) continue;
    const r = fn(idev, hwpt);
    if (r.rc === -ERRNO.EINVAL) continue;
    return { rc: r.rc, id: hwpt.id, old: r.old };
  }
  const immediate = fn === doAttach;
  const made = allocHwptPaging(
    core,
    ioas,
    idev,
    0,
    false,
    immediate ? (hwpt) => hwptAttach(idev, hwpt) : undefined,
    immediate ? () => hwptDetach(idev) : undefined,
  );
  if (typeof made === "number") return { rc: made, id: 0 };
  let old: Hwpt | undefined;
  if (!immediate) {
    const r = fn(idev, made);
    if (r.rc < 0) {
      abortHwpt(core, made);
      return { rc: r.rc, id: 0 };
    }
    old = r.old;
  }
  made.autoDomain = true;
  core.objects.finalize(made);
  return { rc: 0, id: made.id, old };
}

/** Undo an unfinalized paging HWPT (`iommufd_object_abort_and_destroy`). */
function abortHwpt(core: IommufdCore, hwpt: HwptPaging): void {
  hwpt.users = 0;
  core.destroy(hwpt);
}

/** `iommufd_device_change_pt`: the attached HWPT ID, or -errno. */
function changePt(core: IommufdCore, idev: DeviceObject, ptId: number, fn: AttachFn): number {
  const pt = core.any(ptId);
  if (!pt) return -ERRNO.ENOENT;
  let id: number;
  let old: Hwpt | undefined;
  if (pt.type === "hwpt-paging" || pt.type === "hwpt-nested") {
    const r = fn(idev, pt);
    if (r.rc < 0) return r.rc;
    id = pt.id;
    old = r.old;
  } else if (pt.type === "ioas") {
    const r = autoGetDomain(core, idev, pt, fn);
    if (r.rc < 0) return r.rc;
    id = r.id;
    old = r.old;
  } else return -ERRNO.EINVAL;
  if (old) putHwpt(core, old);
  return id;
}

/** Attach (or, when attached, replace) a device: the HWPT ID or -errno. */
export function attachDevice(core: IommufdCore, devid: number, ptId: number): number {
  const dev = core.lookup(devid, "device");
  if (!dev) return -ERRNO.ENOENT;
  const id = changePt(core, dev, ptId, dev.attached ? hwptReplace : doAttach);
  if (id < 0) return id;
  if (!dev.attached) {
    dev.attached = true;
    dev.users++;
  }
  return id;
}

/** Detach a device (no-op when not attached). */
export function detachDevice(core: IommufdCore, devid: number): void {
  const dev = core.lookup(devid, "device");
  if (!dev || !dev.attached) return;
  const hwpt = hwptDetach(dev);
  dev.attached = false;
  dev.users--;
  if (hwpt) putHwpt(core, hwpt);
}
