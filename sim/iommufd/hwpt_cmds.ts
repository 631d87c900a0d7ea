/**
 * The HWPT and device commands (drivers/iommu/iommufd/hw_pagetable.c, device.c, fault.c,
 * io_pagetable.c): HWPT_ALLOC, GET_HW_INFO, HWPT_SET_DIRTY_TRACKING, HWPT_GET_DIRTY_BITMAP,
 * HWPT_INVALIDATE and FAULT_QUEUE_ALLOC, each errno in Linux's check order (iommufd.md §8).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IommufdCore } from "./core.ts";
import { driverFor, hwInfoOf } from "./drivers.ts";
import { type FaultFdHooks, FaultQueue } from "./fault.ts";
import { allocHwptNested, allocHwptPaging, dirtyOpsOf } from "./hwpt.ts";
import { allocHwptOnViommu, viommuInvalidate } from "./viommu.ts";
import { kernelAtLeast } from "../kernel_version.ts";
import { VIOMMU_MIN_KERNEL } from "../../ffi/uapi/post_6_12.ts";
import { ULONG_MAX } from "./io_pagetable.ts";
import type { FaultObject, Hwpt } from "./objects.ts";
import { clearUser, type CmdOf as Cmd, userPointer } from "./ucmd.ts";
import {
  type iommu_fault_alloc,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  type iommu_hw_info,
  type iommu_hwpt_alloc,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
  type iommu_hwpt_get_dirty_bitmap,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  type iommu_hwpt_invalidate,
  type iommu_hwpt_set_dirty_tracking,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
} from "../../ffi/uapi/mod.ts";
import type { IommuDomain, IommuModel } from "../iommu/model.ts";

/** Largest `entry_num` of HWPT_INVALIDATE (6.12.96+). */
const MAX_INVALIDATE_ENTRIES = 1 << 19;

/** Undo an unfinalized HWPT. */
function abortHwpt(core: IommufdCore, hwpt: Hwpt): void {
  hwpt.users = 0;
  core.destroy(hwpt);
}

/**
 * A fault-capable nested HWPT: the IOMMU's page requests for its domain go to the fault queue as
 * one-request groups (`iommufd_fault_iopf_handler`), naming the bound device of the requester.
 */
function routePageRequests(
  core: IommufdCore,
  iommu: IommuModel,
  domain: IommuDomain,
  fault: FaultObject,
): void {
  let grpid = 0;
  iommu.nesting?.setPageRequestHandler(domain, (req) => {
    const dev = [...core.groups.values()].flatMap((g) => g.attached)
      .find((d) => d.fn.requester === req.requester);
    fault.queue.deliver({
      faults: [{
        flags: IOMMU_PGFAULT_FLAGS_LAST_PAGE |
          (req.pasid === undefined ? 0 : IOMMU_PGFAULT_FLAGS_PASID_VALID),
        devId: dev?.id ?? 0,
        pasid: req.pasid ?? 0,
        grpid: grpid++ & PRG_INDEX_MASK,
        perm: req.access === "write" ? IOMMU_PGFAULT_PERM_WRITE : IOMMU_PGFAULT_PERM_READ,
        addr: req.address & ~(BigInt(core.settings.pageSize) - 1n),
        length: core.settings.pageSize,
      }],
      respond: () => {}, // the device retries its request after any response
    });
  });
}

/** Page request group indexes are 9 bits (PCIe PRG index). */
const PRG_INDEX_MASK = 0x1ff;

/** IOMMU_HWPT_ALLOC. */
export function cmdHwptAlloc(core: IommufdCore, u: Cmd<typeof iommu_hwpt_alloc>): number {
  const c = u.cmd;
  if (c.__reserved) return -ERRNO.EOPNOTSUPP;
  if (
    (c.data_type === IOMMU_HWPT_DATA_NONE && c.data_len) ||
    (c.data_type !== IOMMU_HWPT_DATA_NONE && !c.data_len)
  ) return -ERRNO.EINVAL;
  const idev = core.lookup(c.dev_id, "device");
  if (!idev) return -ERRNO.ENOENT;
  const pt = core.any(c.pt_id);
  if (!pt) return -ERRNO.EINVAL;
  let hwpt: Hwpt | number;
  if (pt.type === "ioas") {
    hwpt = allocHwptPaging(core, pt, idev, c.flags, c.data_len !== 0);
  } else if (pt.type === "hwpt-paging") {
    const data = userPointer(u.process, c.data_uptr);
    hwpt = allocHwptNested(
      core,
      pt,
      idev,
      c.flags,
      c.data_type,
      c.data_len,
      (n) => data.read(0, n),
    );
  } else if (pt.type === "viommu") {
    const data = userPointer(u.process, c.data_uptr);
    hwpt = allocHwptOnViommu(core, pt, c.flags, c.data_type, c.data_len, (n) => data.read(0, n));
  } else return -ERRNO.EINVAL;
  if (typeof hwpt === "number") return hwpt;
  if (c.flags & IOMMU_HWPT_FAULT_ID_VALID) {
    const fault = core.lookup(c.fault_id, "fault");
    if (!fault) {
      abortHwpt(core, hwpt);
      return -ERRNO.ENOENT;
    }
    hwpt.fault = fault;
    fault.users++;
    if (hwpt.type === "hwpt-nested") routePageRequests(core, hwpt.parent.iommu, hwpt.domain, fault);
  }
  c.out_hwpt_id = hwpt.id;
  const rc = u.respond();
  if (rc < 0) {
    abortHwpt(core, hwpt);
    return rc;
  }
  core.objects.finalize(hwpt);
  return 0;
}

/** IOMMU_GET_HW_INFO: copy min(user, kernel) bytes, zero the rest of the user buffer. */
export function cmdGetHwInfo(core: IommufdCore, u: Cmd<typeof iommu_hw_info>): number {
  const c = u.cmd;
  if (c.flags || c.__reserved.some((b) => b !== 0)) return -ERRNO.EOPNOTSUPP;
  const idev = core.lookup(c.dev_id, "device");
  if (!idev) return -ERRNO.ENOENT;
  const facts = idev.fn.group.iommu.facts;
  const info = hwInfoOf(facts, core.settings.kernel);
  c.out_data_type = info.type;
  const out = userPointer(u.process, c.data_uptr);
  const copyLen = Math.min(c.data_len, info.data.length);
  if (!out.write(0, info.data.subarray(0, copyLen))) return -ERRNO.EFAULT;
  if (copyLen < c.data_len && !clearUser(out, copyLen, c.data_len - copyLen)) return -ERRNO.EFAULT;
  c.data_len = info.data.length;
  c.out_capabilities = facts.dirtyTracking ? IOMMU_HW_CAP_DIRTY_TRACKING : 0n;
  c.out_max_pasid_log2 = facts.maxPasidLog2 > 0 ? facts.maxPasidLog2 : 0;
  return u.respond();
}

/** IOMMU_HWPT_SET_DIRTY_TRACKING. */
export function cmdSetDirtyTracking(
  core: IommufdCore,
  u: Cmd<typeof iommu_hwpt_set_dirty_tracking>,
): number {
  const c = u.cmd;
  if (c.flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) return -ERRNO.EOPNOTSUPP;
  const hwpt = core.lookup(c.hwpt_id, "hwpt-paging");
  if (!hwpt) return -ERRNO.ENOENT;
  if (!hwpt.dirtyOps) return -ERRNO.EOPNOTSUPP;
  const enable = (c.flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0;
  const ops = dirtyOpsOf(hwpt.domain);
  if (ops) {
    if (enable) {
      const page = hwpt.ioas.iopt.pageSize;
      for (const a of hwpt.ioas.iopt.areas) ops.readAndClearDirty(a.start, a.length, page, false);
    }
    const rc = ops.setDirtyTracking(enable);
    if (rc < 0) return rc;
  }
  hwpt.dirtyEnabled = enable;
  return 0;
}

/** IOMMU_HWPT_GET_DIRTY_BITMAP: bit k of `data` covers `[iova + k·page_size, +page_size)`. */
export function cmdGetDirtyBitmap(
  core: IommufdCore,
  u: Cmd<typeof iommu_hwpt_get_dirty_bitmap>,
): number {
  const c = u.cmd;
  if ((c.flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) || c.__reserved) return -ERRNO.EOPNOTSUPP;
  const hwpt = core.lookup(c.hwpt_id, "hwpt-paging");
  if (!hwpt) return -ERRNO.ENOENT;
  const last = c.iova + BigInt.asUintN(64, c.length - 1n);
  if (last > ULONG_MAX) return -ERRNO.EOVERFLOW;
  const mask = hwpt.ioas.iopt.iovaAlignment - 1n;
  const end = BigInt.asUintN(64, last + 1n);
  if ((c.iova & mask) || (end & mask)) return -ERRNO.EINVAL;
  if (c.page_size === 0n) return -ERRNO.EINVAL;
  const pmask = c.page_size - 1n;
  if ((c.iova & pmask) || (end & pmask)) return -ERRNO.EINVAL;
  if (!hwpt.dirtyOps) return -ERRNO.EOPNOTSUPP;
  const nbits = c.length / c.page_size;
  const bytes = ((nbits + 63n) / 64n) * 8n;
  if (bytes > 0n && !u.process.memory.resolve(c.data, bytes)) return -ERRNO.EFAULT;
  const ops = dirtyOpsOf(hwpt.domain);
  if (!ops) return 0;
  const noClear = (c.flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
  const bitmap = userPointer(u.process, c.data);
  for (const iova of ops.readAndClearDirty(c.iova, c.length, c.page_size, noClear)) {
    if (iova < c.iova || iova > last) continue;
    const k = (iova - c.iova) / c.page_size;
    const at = Number(k / 8n);
    const cur = bitmap.read(at, 1);
    if (!cur) return -ERRNO.EFAULT;
    cur[0] |= 1 << Number(k % 8n);
    if (!bitmap.write(at, cur)) return -ERRNO.EFAULT;
  }
  return 0;
}

/** The kernel has vIOMMUs (6.13+). */
function viommuKernel(core: IommufdCore): boolean {
  const k = core.settings.kernel;
  return k !== undefined && kernelAtLeast(k, VIOMMU_MIN_KERNEL);
}

/**
 * IOMMU_HWPT_INVALIDATE: `entry_num` is written back with the count handled, even on error. From
 * 6.13 the id may name a vIOMMU (its driver's commands, viommu.ts), and an id of another type is
 * EINVAL rather than ENOENT.
 */
export function cmdInvalidate(core: IommufdCore, u: Cmd<typeof iommu_hwpt_invalidate>): number {
  const c = u.cmd;
  let done = 0;
  let rc = 0;
  if (c.__reserved) rc = -ERRNO.EOPNOTSUPP;
  else if (
    c.entry_num &&
    (!c.data_uptr || !c.entry_len || c.entry_len > core.settings.pageSize ||
      c.entry_num > MAX_INVALIDATE_ENTRIES)
  ) rc = -ERRNO.EINVAL;
  else {
    const pt = core.any(c.hwpt_id);
    const viommus = viommuKernel(core);
    const data = userPointer(u.process, c.data_uptr);
    if (viommus && pt?.type === "viommu") {
      ({ rc, done } = viommuInvalidate(core, pt, c.data_type, c.entry_len, c.entry_num, data));
    } else if (pt?.type !== "hwpt-nested") {
      // 6.12 looks the id up as a nested HWPT only; 6.13+ takes any object, EINVAL for others.
      rc = viommus && pt !== undefined ? -ERRNO.EINVAL : -ERRNO.ENOENT;
    } else {
      const hwpt = pt;
      const driver = driverFor(hwpt.parent.iommu.facts, core.settings.kernel);
      const format = hwpt.viommu ? undefined : driver.invalidateFormat;
      if (!format) rc = -ERRNO.EOPNOTSUPP;
      else if (c.data_type !== format.type) rc = -ERRNO.EINVAL;
      else {
        for (let i = 0; i < c.entry_num; i++) {
          if (c.entry_len < format.minLen || c.entry_len > format.size) {
            rc = -ERRNO.EINVAL;
            break;
          }
          const raw = data.read(i * c.entry_len, c.entry_len);
          if (!raw) {
            rc = -ERRNO.EFAULT;
            break;
          }
          const entry = new Uint8Array(format.size);
          entry.set(raw);
          rc = driver.checkInvalidation(entry);
          if (rc < 0) break;
          rc = hwpt.parent.iommu.nesting?.invalidateNested(hwpt.domain, entry) ?? 0;
          if (rc < 0) break;
          done++;
        }
      }
    }
  }
  c.entry_num = done;
  if (u.respond() < 0) return -ERRNO.EFAULT;
  return rc;
}

/** IOMMU_FAULT_QUEUE_ALLOC: a fault object and its fd (O_RDWR, O_CLOEXEC). */
export function cmdFaultAlloc(
  core: IommufdCore,
  u: Cmd<typeof iommu_fault_alloc>,
  hooks: FaultFdHooks,
): number {
  const c = u.cmd;
  if (c.flags) return -ERRNO.EOPNOTSUPP;
  const id = core.objects.reserve();
  if (id < 0) return id;
  const holder: { fault?: FaultObject } = {};
  const queue = new FaultQueue(() => {
    if (holder.fault) holder.fault.users--;
    hooks.putContext();
  });
  const fault: FaultObject = { id, type: "fault", users: 2, queue };
  holder.fault = fault;
  const fd = u.process.installFd(queue);
  if (fd < 0) {
    core.objects.release(id);
    return fd;
  }
  hooks.getContext();
  c.out_fault_id = id;
  c.out_fault_fd = fd;
  core.objects.finalize(fault);
  const rc = u.respond();
  if (rc < 0) {
    // The kernel installs the fd only after the copy-out; undo ours.
    (u.process as { closeFd?(fd: number): number }).closeFd?.(fd);
    core.remove(id);
  }
  return rc;
}
