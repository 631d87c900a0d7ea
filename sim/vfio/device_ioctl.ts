/**
 * vfio-pci device ioctls other than regions and interrupts (vfio.md §7.1, §7.4, §7.5):
 * GET_INFO, RESET, GET_PCI_HOT_RESET_INFO, PCI_HOT_RESET, DEVICE_FEATURE (core checks and
 * vfio-pci's features) and IOEVENTFD.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { encode, offsetOfEnd } from "../../ffi/uapi/layout.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { SimPciFunction } from "../kernel/pci_function.ts";
import { copyIn, readStruct, writeStruct } from "../kernel/user.ts";
import type { VfioPciDevice } from "./device.ts";
import { eventfdFromFd } from "./irqs.ts";
import { MSIX, msixTable } from "./pci_caps.ts";
import { barOf, VFIO_PCI_OFFSET_MASK, VFIO_PCI_OFFSET_SHIFT } from "./regions.ts";
import {
  vfio_device_feature,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  vfio_device_info,
  vfio_device_ioeventfd,
  VFIO_DEVICE_IOEVENTFD_SIZE_MASK,
  vfio_iommu_type1_info,
  VFIO_PCI_BAR5_REGION_INDEX,
  vfio_pci_dependent_device,
  vfio_pci_hot_reset,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
  vfio_pci_hot_reset_info,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
} from "../../ffi/uapi/mod.ts";

/** `VFIO_PCI_IOEVENTFD_MAX`. */
export const VFIO_PCI_IOEVENTFD_MAX = 1000;
/** `VFIO_PCI_DEVID_NOT_OWNED`. */
const DEVID_NOT_OWNED = 0xffff_ffff;

/** Device features (vfio.md §7.5 table). */
export const FEATURE = {
  PCI_VF_TOKEN: 0,
  MIGRATION: 1,
  MIG_DEVICE_STATE: 2,
  LOW_POWER_ENTRY: 3,
  LOW_POWER_ENTRY_WITH_WAKEUP: 4,
  LOW_POWER_EXIT: 5,
  DMA_LOGGING_START: 6,
  DMA_LOGGING_STOP: 7,
  DMA_LOGGING_REPORT: 8,
  MIG_DATA_SIZE: 9,
} as const;
/** Bytes of one `__s32 group_fds[]` entry of VFIO_DEVICE_PCI_HOT_RESET. */
const GROUP_FD_SIZE = 4;
/** Bytes of `vfio_device_low_power_entry_with_wakeup`. */
const WAKEUP_DATA_SIZE = 8;

/** Who else takes part in a hot reset and how to find VFIO objects for a function. */
export interface HotResetPeers {
  /** The functions a slot/bus reset of `fn` resets, or undefined when none is possible. */
  resetScope(fn: SimPciFunction): SimPciFunction[] | undefined;
  /** The vfio-pci device of a function, if bound. */
  device(fn: SimPciFunction): VfioPciDevice | undefined;
  /** The group number behind a group fd, or undefined when the fd is not a VFIO group. */
  groupIdOfFile(process: SimProcess, fd: number): number | undefined | "ebadf";
}

/** VFIO_DEVICE_GET_INFO (copies 16 bytes, or 20 when argsz reaches `cap_offset`). */
export function deviceGetInfo(device: VfioPciDevice, user: Uint8Array): number {
  const layout = vfio_device_info;
  const minsz = offsetOfEnd(layout, "num_irqs");
  const info = readStruct(user, layout, minsz);
  if (info === undefined) return -ERRNO.EFAULT;
  if (info.argsz < minsz) return -ERRNO.EINVAL;
  const capsz = offsetOfEnd(vfio_iommu_type1_info, "cap_offset");
  const copyLen = info.argsz >= capsz ? capsz : minsz;
  info.cap_offset = 0;
  info.flags = VFIO_DEVICE_FLAGS_PCI | (device.fn.model.resetWorks ? VFIO_DEVICE_FLAGS_RESET : 0);
  info.num_regions = VFIO_PCI_NUM_REGIONS;
  info.num_irqs = VFIO_PCI_NUM_IRQS;
  return writeStruct(user, layout, info, copyLen) ? 0 : -ERRNO.EFAULT;
}

/**
 * VFIO_DEVICE_RESET. A removed function cannot be reset: `pci_dev_wait` gives up on a
 * disconnected device with -ENOTTY.
 */
export function deviceReset(device: VfioPciDevice): number {
  if (!device.fn.model.resetWorks) return -ERRNO.EINVAL;
  if (device.fn.removed) return -ERRNO.ENOTTY;
  device.resetFunction();
  return 0;
}

function devfn(fn: SimPciFunction): { segment: number; bus: number; devfn: number } {
  const [seg, bus, df] = fn.bdf.split(":");
  const [dev, func] = df.split(".");
  return {
    segment: parseInt(seg, 16),
    bus: parseInt(bus, 16),
    devfn: (parseInt(dev, 16) << 3) | parseInt(func, 16),
  };
}

/** VFIO_DEVICE_GET_PCI_HOT_RESET_INFO (ENOSPC copies the header with the needed count). */
export function hotResetInfo(
  device: VfioPciDevice,
  peers: HotResetPeers,
  user: Uint8Array,
): number {
  const layout = vfio_pci_hot_reset_info;
  const minsz = offsetOfEnd(layout, "count");
  const hdr = readStruct(user, layout, minsz);
  if (hdr === undefined) return -ERRNO.EFAULT;
  if (hdr.argsz < minsz) return -ERRNO.EINVAL;
  hdr.flags = 0;
  const scope = peers.resetScope(device.fn);
  if (scope === undefined) return -ERRNO.ENODEV;
  const entry = vfio_pci_dependent_device.size;
  if (scope.length > Math.floor((hdr.argsz - layout.size) / entry)) {
    hdr.count = scope.length;
    return writeStruct(user, layout, hdr, minsz) ? -ERRNO.ENOSPC : -ERRNO.EFAULT;
  }
  let flags = 0;
  if (device.cdevOpened) {
    flags = VFIO_PCI_HOT_RESET_FLAG_DEV_ID | VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
  }
  const entries = new Uint8Array(scope.length * entry);
  scope.forEach((fn, i) => {
    let id = fn.group.id;
    if (device.cdevOpened) {
      const peer = peers.device(fn);
      const bound = peer?.iommufd;
      if (bound !== undefined && bound.ctx === device.iommufd?.ctx) {
        id = bound.devid;
      } else {
        id = DEVID_NOT_OWNED;
        flags &= ~VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
      }
    }
    entries.set(encode(vfio_pci_dependent_device, { group_id: id, ...devfn(fn) }), i * entry);
  });
  const dst = copyIn(user, layout.size, entries.length);
  if (dst === undefined) return -ERRNO.EFAULT;
  dst.set(entries);
  hdr.count = scope.length;
  hdr.flags = flags;
  return writeStruct(user, layout, hdr, minsz) ? 0 : -ERRNO.EFAULT;
}

/** VFIO_DEVICE_PCI_HOT_RESET. */
export function hotReset(
  device: VfioPciDevice,
  peers: HotResetPeers,
  process: SimProcess,
  user: Uint8Array,
): number {
  const layout = vfio_pci_hot_reset;
  const minsz = offsetOfEnd(layout, "count");
  const hdr = readStruct(user, layout, minsz);
  if (hdr === undefined) return -ERRNO.EFAULT;
  if (hdr.argsz < minsz || hdr.flags !== 0) return -ERRNO.EINVAL;
  if ((hdr.count !== 0) === device.cdevOpened) return -ERRNO.EINVAL;
  const scope = peers.resetScope(device.fn);
  if (scope === undefined) return -ERRNO.ENODEV;
  if (hdr.count > 0) {
    if (hdr.count > scope.length) return -ERRNO.EINVAL;
    const fds = copyIn(user, layout.size, hdr.count * GROUP_FD_SIZE);
    if (fds === undefined) return -ERRNO.EFAULT;
    const view = new DataView(fds.buffer, fds.byteOffset, fds.byteLength);
    const groups = new Set<number>();
    for (let i = 0; i < hdr.count; i++) {
      const id = peers.groupIdOfFile(process, view.getInt32(i * GROUP_FD_SIZE, true));
      if (id === "ebadf") return -ERRNO.EBADF;
      if (id === undefined) return -ERRNO.EINVAL;
      groups.add(id);
    }
    if (!scope.every((fn) => groups.has(fn.group.id))) return -ERRNO.EINVAL;
  }
  for (const fn of scope) {
    const peer = peers.device(fn);
    if (peer !== undefined && peer.openCount > 0) peer.resetFunction();
    else fn.model.reset();
  }
  return 0;
}

/** `vfio_check_feature`: 1 to run the feature, 0 for a successful PROBE, or -EINVAL. */
function checkFeature(flags: number, argsz: number, supported: number, minsz: number): number {
  if ((flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET) & ~supported) !== 0) {
    return -ERRNO.EINVAL;
  }
  if ((flags & VFIO_DEVICE_FEATURE_PROBE) !== 0) return 0;
  if ((flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)) === 0) return -ERRNO.EINVAL;
  return argsz < minsz ? -ERRNO.EINVAL : 1;
}

/**
 * VFIO_DEVICE_FEATURE: core checks, then the feature. No migration or DMA-logging ops and no VF
 * token on a simulated function (ENOTTY); vfio-pci's runtime low-power features work.
 */
export function deviceFeature(
  device: VfioPciDevice,
  process: SimProcess,
  user: Uint8Array,
): number {
  const layout = vfio_device_feature;
  const minsz = offsetOfEnd(layout, "flags");
  const feature = readStruct(user, layout, minsz);
  if (feature === undefined) return -ERRNO.EFAULT;
  if (feature.argsz < minsz) return -ERRNO.EINVAL;
  const known = VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET |
    VFIO_DEVICE_FEATURE_PROBE;
  const flags = feature.flags;
  if ((flags & ~known) !== 0) return -ERRNO.EINVAL;
  if (
    (flags & VFIO_DEVICE_FEATURE_PROBE) === 0 && (flags & VFIO_DEVICE_FEATURE_SET) !== 0 &&
    (flags & VFIO_DEVICE_FEATURE_GET) !== 0
  ) return -ERRNO.EINVAL;
  const argsz = feature.argsz - minsz;
  switch (flags & VFIO_DEVICE_FEATURE_MASK) {
    case FEATURE.LOW_POWER_ENTRY: {
      const r = checkFeature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
      if (r !== 1) return r;
      if (device.lowPower) return -ERRNO.EINVAL;
      device.lowPower = true;
      return 0;
    }
    case FEATURE.LOW_POWER_ENTRY_WITH_WAKEUP: {
      const r = checkFeature(flags, argsz, VFIO_DEVICE_FEATURE_SET, WAKEUP_DATA_SIZE);
      if (r !== 1) return r;
      const data = copyIn(user, minsz, WAKEUP_DATA_SIZE);
      if (data === undefined) return -ERRNO.EFAULT;
      const efd = eventfdFromFd(
        process,
        new DataView(data.buffer, data.byteOffset).getInt32(0, true),
      );
      if (typeof efd === "number") return efd;
      if (device.lowPower) return -ERRNO.EINVAL;
      device.lowPower = true;
      return 0;
    }
    case FEATURE.LOW_POWER_EXIT: {
      const r = checkFeature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
      if (r !== 1) return r;
      device.lowPower = false;
      return 0;
    }
    default:
      return -ERRNO.ENOTTY;
  }
}

/** VFIO_DEVICE_IOEVENTFD: a write of `data` to a BAR each time the eventfd is signalled. */
export function deviceIoeventfd(
  device: VfioPciDevice,
  process: SimProcess,
  user: Uint8Array,
): number {
  const layout = vfio_device_ioeventfd;
  const minsz = offsetOfEnd(layout, "fd");
  const req = readStruct(user, layout, minsz);
  if (req === undefined) return -ERRNO.EFAULT;
  if (req.argsz < minsz) return -ERRNO.EINVAL;
  if ((req.flags & ~VFIO_DEVICE_IOEVENTFD_SIZE_MASK) !== 0) return -ERRNO.EINVAL;
  const sizeBits = req.flags & VFIO_DEVICE_IOEVENTFD_SIZE_MASK;
  if (sizeBits === 0 || (sizeBits & (sizeBits - 1)) !== 0 || req.fd < -1) return -ERRNO.EINVAL;
  const count = sizeBits as 1 | 2 | 4 | 8;
  const bar = Number(req.offset >> VFIO_PCI_OFFSET_SHIFT);
  const pos = Number(req.offset & VFIO_PCI_OFFSET_MASK);
  if (bar > VFIO_PCI_BAR5_REGION_INDEX) return -ERRNO.EINVAL;
  const decl = barOf(device.fn, bar);
  if (pos + count > (decl?.size ?? 0)) return -ERRNO.EINVAL;
  const table = msixTable(device.fn.model.config);
  if (table !== undefined && table.bar === bar) {
    const end = table.offset + table.entries * MSIX.ENTRY_SIZE;
    if (!(pos + count <= table.offset || pos >= end)) return -ERRNO.EINVAL;
  }
  const list = device.ioeventfds;
  const existing = list.findIndex((e) =>
    e.pos === pos && e.bar === bar && e.data === req.data && e.count === count
  );
  if (existing >= 0) {
    if (req.fd !== -1) return -ERRNO.EEXIST;
    list.splice(existing, 1)[0].stop();
    return 0;
  }
  if (req.fd < 0) return -ERRNO.ENODEV;
  if (list.length >= VFIO_PCI_IOEVENTFD_MAX) return -ERRNO.ENOSPC;
  const efd = eventfdFromFd(process, req.fd);
  if (typeof efd === "number") return efd;
  const value = count === 8 ? req.data : Number(BigInt.asUintN(count * 8, req.data));
  const fire = (): void => {
    efd.consume();
    device.fn.model.mmioWrite(bar, pos, count, value);
  };
  list.push({ bar, pos, data: req.data, count, efd, stop: efd.listen(fire) });
  if (efd.count > 0n) fire();
  return 0;
}
