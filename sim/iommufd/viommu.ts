/**
 * vIOMMU and vDEVICE objects (drivers/iommu/iommufd/viommu.c of Linux 6.13+; reachable only when
 * the simulated kernel answers as 6.13 or later): IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC, nested
 * HWPTs allocated with a vIOMMU as `pt_id`, and IOMMU_HWPT_INVALIDATE on a vIOMMU. The driver's
 * part (which types, which commands) is data in the driver rows (viommu_smmuv3.ts).
 *
 * Errno order (6.13, read from the kernel and written anew):
 * - VIOMMU_ALLOC: `flags` ≠ 0 or type DEFAULT → EOPNOTSUPP; `dev_id` not a device → ENOENT;
 *   `hwpt_id` not a paging HWPT → ENOENT; not NEST_PARENT → EINVAL; the driver has no vIOMMU →
 *   EOPNOTSUPP; the driver's checks (viommu_smmuv3.ts). Holds a user on the HWPT.
 * - VDEVICE_ALLOC: `viommu_id` → ENOENT; `dev_id` → ENOENT; the device behind another IOMMU →
 *   EINVAL; (6.17+: the device already has a vDEVICE → EEXIST); `virt_id` taken on the vIOMMU →
 *   EEXIST (the reserved object ID is given back). Holds a user on the vIOMMU.
 * - nested HWPT on a vIOMMU: flags other than FAULT_ID_VALID or `data_len` 0 → EOPNOTSUPP; data
 *   type not the driver's → EINVAL; `data_len` below or above the struct → EINVAL; then the model's
 *   checks (SMMUv3: bad vSTE bits → EIO). `dev_id` is not matched against the vIOMMU here (attach
 *   is). Holds a user on the vIOMMU, not on the parent HWPT.
 * - invalidation: data type not the driver's → EINVAL (even with `entry_num` 0); entries longer
 *   than the kernel's with non-zero tails → E2BIG, shorter ones are zero-extended; all entries are
 *   copied first (errors there report 0 handled); then each is converted (EIO stops it) and issued
 *   in batches of 63 as Linux's `arm_vsmmu_cache_invalidate` does, so a conversion error drops the
 *   commands of the unissued batch although `entry_num` counts them — Linux's own behaviour.
 *
 * IOMMU_DESTROY: a vIOMMU with nested HWPTs, vDEVICEs or vEVENTQs (6.15+, veventq.ts) → EBUSY; a
 * vDEVICE is always free to go.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { kernelAtLeast } from "../kernel_version.ts";
import {
  type iommu_vdevice_alloc,
  type iommu_viommu_alloc,
  IOMMU_VIOMMU_TYPE_DEFAULT,
  VDEVICE_PER_DEVICE_MIN_KERNEL,
  VEVENTQ_MIN_KERNEL,
  VIOMMU_VMASTER_MIN_KERNEL,
} from "../../ffi/uapi/post_6_12.ts";
import { IOMMU_HWPT_FAULT_ID_VALID } from "../../ffi/uapi/iommufd.ts";
import type { IommufdCore } from "./core.ts";
import { driverFor } from "./drivers.ts";
import type { DeviceObject, HwptNested, VdeviceObject, ViommuObject } from "./objects.ts";
import { checkZeroed, type CmdOf as Cmd, type UserBuffer } from "./ucmd.ts";

/** Linux's `CMDQ_BATCH_ENTRIES` (BITS_PER_LONG): a batch is issued every 63 commands. */
const CMDQ_BATCH = 64 - 1;

/** IOMMU_VIOMMU_ALLOC (either struct size: the 6.17 tail is read by no driver here). */
export function cmdViommuAlloc(core: IommufdCore, u: Cmd<typeof iommu_viommu_alloc>): number {
  const c = u.cmd;
  if (c.flags || c.type === IOMMU_VIOMMU_TYPE_DEFAULT) return -ERRNO.EOPNOTSUPP;
  const idev = core.lookup(c.dev_id, "device");
  if (!idev) return -ERRNO.ENOENT;
  const hwpt = core.lookup(c.hwpt_id, "hwpt-paging");
  if (!hwpt) return -ERRNO.ENOENT;
  if (!hwpt.nestParent) return -ERRNO.EINVAL;
  const iommu = idev.fn.group.iommu;
  const driver = driverFor(iommu.facts, core.settings.kernel).viommu;
  if (!driver) return -ERRNO.EOPNOTSUPP;
  const rc = driver.alloc(iommu, c.type, hwpt);
  if (rc < 0) return rc;
  const id = core.objects.reserve();
  if (id < 0) return id;
  const viommu: ViommuObject = {
    id,
    type: "viommu",
    users: 1,
    viommuType: c.type,
    hwpt,
    iommu,
    vdevs: new Map(),
    vdeviceForTranslate: core.settings.kernel !== undefined &&
      kernelAtLeast(core.settings.kernel, VIOMMU_VMASTER_MIN_KERNEL),
    translates: (data) => driver.needsVdevice(data),
    veventqs: new Map(),
  };
  hwpt.users++;
  c.out_viommu_id = id;
  const out = u.respond();
  if (out < 0) {
    hwpt.users--;
    core.objects.release(id);
    return out;
  }
  core.objects.finalize(viommu);
  return 0;
}

/** IOMMU_VDEVICE_ALLOC. */
export function cmdVdeviceAlloc(core: IommufdCore, u: Cmd<typeof iommu_vdevice_alloc>): number {
  const c = u.cmd;
  const viommu = core.lookup(c.viommu_id, "viommu");
  if (!viommu) return -ERRNO.ENOENT;
  const idev = core.lookup(c.dev_id, "device");
  if (!idev) return -ERRNO.ENOENT;
  if (idev.fn.group.iommu !== viommu.iommu) return -ERRNO.EINVAL;
  if (onePerDevice(core) && vdevicesOf(core, idev).length > 0) return -ERRNO.EEXIST;
  const id = core.objects.reserve();
  if (id < 0) return id;
  if (viommu.vdevs.has(c.virt_id)) {
    core.objects.release(id);
    return -ERRNO.EEXIST;
  }
  const vdev: VdeviceObject = {
    id,
    type: "vdevice",
    users: 1,
    viommu,
    dev: idev,
    virtId: c.virt_id,
  };
  viommu.vdevs.set(c.virt_id, vdev);
  viommu.users++;
  c.out_vdevice_id = id;
  const out = u.respond();
  if (out < 0) {
    destroyVdevice(vdev);
    core.objects.release(id);
    return out;
  }
  core.objects.finalize(vdev);
  return 0;
}

/** One vDEVICE per device, destroyed on unbind (6.17+). */
function onePerDevice(core: IommufdCore): boolean {
  const k = core.settings.kernel;
  return k !== undefined && kernelAtLeast(k, VDEVICE_PER_DEVICE_MIN_KERNEL);
}

/** Every vDEVICE made for `dev`. */
export function vdevicesOf(core: IommufdCore, dev: DeviceObject): VdeviceObject[] {
  return core.objects.objects().filter((o): o is VdeviceObject =>
    o.type === "vdevice" && o.dev === dev
  );
}

/** Unbind of a device (6.17+): its vDEVICEs go first. Earlier kernels leave them. */
export function unbindVdevices(core: IommufdCore, dev: DeviceObject): void {
  if (!onePerDevice(core)) return;
  for (const v of vdevicesOf(core, dev)) core.remove(v.id);
}

/** Drop a vDEVICE's hold on its vIOMMU. */
export function destroyVdevice(vdev: VdeviceObject): void {
  if (vdev.viommu.vdevs.get(vdev.virtId) === vdev) vdev.viommu.vdevs.delete(vdev.virtId);
  vdev.viommu.users--;
}

/** Drop a vIOMMU's hold on its nest parent. */
export function destroyViommu(viommu: ViommuObject): void {
  viommu.hwpt.users--;
}

/**
 * `iommufd_viommu_alloc_hwpt_nested`: a nested HWPT on `viommu` (not yet finalized) or -errno;
 * `readData` copies `len` bytes of user data (undefined: EFAULT).
 */
export function allocHwptOnViommu(
  core: IommufdCore,
  viommu: ViommuObject,
  flags: number,
  dataType: number,
  dataLen: number,
  readData: (len: number) => Uint8Array | undefined,
): HwptNested | number {
  if ((flags & ~IOMMU_HWPT_FAULT_ID_VALID) || dataLen === 0) return -ERRNO.EOPNOTSUPP;
  const driver = driverFor(viommu.iommu.facts, core.settings.kernel).viommu;
  const nesting = viommu.iommu.nesting;
  if (!driver || !nesting) return -ERRNO.EOPNOTSUPP;
  const id = core.objects.reserve();
  if (id < 0) return id;
  const fail = (err: number): number => {
    core.objects.release(id);
    return err;
  };
  const format = driver.nestedFormat;
  if (dataType !== format.type || dataLen < format.minLen || dataLen > format.size) {
    return fail(-ERRNO.EINVAL);
  }
  const bytes = readData(dataLen);
  if (!bytes) return fail(-ERRNO.EFAULT);
  const data = new Uint8Array(format.size);
  data.set(bytes);
  const domain = nesting.allocNested(viommu.hwpt.domain, { dataType, data });
  if (typeof domain === "number") return fail(domain);
  const k = core.settings.kernel;
  if (k !== undefined && kernelAtLeast(k, VEVENTQ_MIN_KERNEL)) {
    driver.forwardEvents?.(domain, viommu);
  }
  viommu.users++;
  return {
    id,
    type: "hwpt-nested",
    users: 1,
    parent: viommu.hwpt,
    dataType,
    data,
    domain,
    fault: undefined,
    pasidCompat: false,
    viommu,
  };
}

/**
 * The driver's attach check of a nested HWPT made on a vIOMMU (6.15+: a translating vSTE needs a
 * vDEVICE of the device on that vIOMMU): 0 or -ENOENT.
 */
export function viommuAttachCheck(idev: DeviceObject, hwpt: HwptNested): number {
  const viommu = hwpt.viommu;
  if (!viommu?.vdeviceForTranslate || !viommu.translates(hwpt.data)) return 0;
  for (const v of viommu.vdevs.values()) if (v.dev.fn === idev.fn) return 0;
  return -ERRNO.ENOENT;
}

/**
 * IOMMU_HWPT_INVALIDATE on a vIOMMU (`viommu->ops->cache_invalidate`): the return code and how
 * many entries count as handled.
 */
export function viommuInvalidate(
  core: IommufdCore,
  viommu: ViommuObject,
  dataType: number,
  entryLen: number,
  entryNum: number,
  data: UserBuffer,
): { rc: number; done: number } {
  const driver = driverFor(viommu.iommu.facts, core.settings.kernel).viommu;
  const execute = viommu.iommu.nesting?.executeCommand?.bind(viommu.iommu.nesting);
  if (!driver || !execute) return { rc: -ERRNO.EOPNOTSUPP, done: 0 };
  if (dataType !== driver.invalidateType) return { rc: -ERRNO.EINVAL, done: 0 };
  const size = driver.entrySize;
  const entries: Uint8Array[] = [];
  for (let i = 0; i < entryNum; i++) {
    if (entryLen > size) {
      const z = checkZeroed(data, i * entryLen + size, entryLen - size);
      if (z <= 0) return { rc: z === 0 ? -ERRNO.E2BIG : z, done: 0 };
    }
    const raw = data.read(i * entryLen, Math.min(entryLen, size));
    if (!raw) return { rc: -ERRNO.EFAULT, done: 0 };
    const entry = new Uint8Array(size);
    entry.set(raw);
    entries.push(entry);
  }
  let pending: Uint8Array[] = [];
  for (let i = 0; i < entries.length; i++) {
    const cmd = driver.convert(viommu, entries[i]);
    // The unissued batch is dropped, yet counted (Linux reports the index of the bad command).
    if (typeof cmd === "number") return { rc: cmd, done: i };
    pending.push(cmd);
    if (i + 1 === entries.length || pending.length === CMDQ_BATCH) {
      for (const c of pending) execute(c);
      pending = [];
    }
  }
  return { rc: 0, done: entries.length };
}
