/**
 * The VFIO container API served by iommufd (drivers/iommu/iommufd/vfio_compat.c) on the single
 * "compat IOAS". Where it differs from native type1 (iommufd.md §9; vfio.md §5–§8): SET_IOMMU's
 * EINVAL/ENODEV are swapped and it may be repeated; DMA_CC is -ENODEV before a compat IOAS exists;
 * GET_INFO always overwrites argsz, has no MIGRATION capability and reports DMA_AVAIL = U32_MAX
 * then IOVA_RANGE, each rounded up to 8 bytes (since 6.6, "vfio: align capability structures");
 * MAP_DMA has no entry limit and no READ/WRITE requirement; UNMAP_DMA answers ENOENT for a
 * partial area, writes `size` back even on error, and cuts areas first in TYPE1 (v1) mode;
 * DIRTY_PAGES and everything else is ENOTTY.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IoctlArch } from "../../ffi/ioctl.ts";
import { decode, encode, offsetOfEnd } from "../../ffi/uapi/layout.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { IommufdCore } from "./core.ts";
import { ULONG_MAX } from "./io_pagetable.ts";
import { mapUserPages } from "./ioas_cmds.ts";
import type { IoasObject } from "./objects.ts";
import { userArg, type UserBuffer } from "./ucmd.ts";
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  vfio_iommu_type1_info_cap_iova_range,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  vfio_iommu_type1_info_dma_avail,
  VFIO_IOMMU_UNMAP_DMA,
  vfio_iova_range,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
} from "../../ffi/uapi/mod.ts";

/** CHECK_EXTENSION answers that do not depend on state (others: 0; DMA_CC is computed). */
const EXTENSION_ANSWERS: Readonly<Record<number, number>> = {
  [VFIO_TYPE1_IOMMU]: 1,
  [VFIO_TYPE1v2_IOMMU]: 1,
  [VFIO_UNMAP_ALL]: 1,
};

/** An integer ioctl argument (a buffer passed where a value is expected is a pointer, never a type id). */
function valueOf(arg: Uint8Array | bigint): bigint {
  return typeof arg === "bigint" ? BigInt.asUintN(64, arg) : 1n << 63n;
}

function compatIoas(core: IommufdCore): IoasObject | number {
  return core.compatIoas ?? -ERRNO.ENODEV;
}

/** `iommufd_vfio_cc_iommu`. */
function dmaCc(core: IommufdCore): number {
  const ioas = compatIoas(core);
  if (typeof ioas === "number") return ioas;
  return ioas.hwpts.every((h) => h.enforceCacheCoherency) ? 1 : 0;
}

function checkExtension(core: IommufdCore, type: bigint): number {
  if (type === BigInt(VFIO_DMA_CC_IOMMU)) return dmaCc(core);
  return type < 64n ? EXTENSION_ANSWERS[Number(type)] ?? 0 : 0;
}

function setIommu(core: IommufdCore, type: bigint): number {
  if (type !== BigInt(VFIO_TYPE1_IOMMU) && type !== BigInt(VFIO_TYPE1v2_IOMMU)) {
    return -ERRNO.EINVAL;
  }
  const ioas = compatIoas(core);
  if (typeof ioas === "number") return ioas;
  return type === BigInt(VFIO_TYPE1_IOMMU) ? ioas.iopt.disableLarge() : 0;
}

/** `iommufd_get_pagesizes`. */
function pageSizes(ioas: IoasObject, pageSize: bigint): bigint {
  let bitmap = ULONG_MAX;
  for (const d of ioas.iopt.domains) bitmap &= d.facts.pgsizeBitmap;
  const pageMask = ULONG_MAX & ~(pageSize - 1n);
  if (bitmap & ~pageMask) bitmap = (bitmap & pageMask) | pageSize;
  return bitmap > ioas.iopt.iovaAlignment ? bitmap : ioas.iopt.iovaAlignment;
}

/** A capability filler: writes at `at` if `avail` allows, returns its size or -EFAULT. */
type FillCap = (ioas: IoasObject, user: UserBuffer, at: number, avail: number) => number;

const fillDmaAvail: FillCap = (_ioas, user, at, avail) => {
  const cap = encode(vfio_iommu_type1_info_dma_avail, {
    header: { id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, next: 0 },
    avail: 0xffff_ffff,
  });
  if (avail >= cap.length && !user.write(at, cap)) return -ERRNO.EFAULT;
  return cap.length;
};

const fillIovaRange: FillCap = (ioas, user, at, avail) => {
  const fixed = vfio_iommu_type1_info_cap_iova_range.size;
  const holes = ioas.iopt.holes();
  for (let i = 0; i < holes.length; i++) {
    const range = encode(vfio_iova_range, { start: holes[i].start, end: holes[i].last });
    if (
      avail >= fixed + (i + 1) * range.length && !user.write(at + fixed + i * range.length, range)
    ) {
      return -ERRNO.EFAULT;
    }
  }
  const size = fixed + holes.length * vfio_iova_range.size;
  const header = encode(vfio_iommu_type1_info_cap_iova_range, {
    header: { id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, next: 0 },
    nr_iovas: holes.length,
    reserved: 0,
  });
  if (avail >= size && !user.write(at, header)) return -ERRNO.EFAULT;
  return size;
};

/** Capabilities in chain order. */
const FILL_CAPS: readonly FillCap[] = [fillDmaAvail, fillIovaRange];

function getInfo(core: IommufdCore, user: UserBuffer): number {
  let minsz = offsetOfEnd(vfio_iommu_type1_info, "iova_pgsizes");
  const head = user.read(0, minsz);
  if (!head) return -ERRNO.EFAULT;
  const info = decode(vfio_iommu_type1_info, head);
  if (info.argsz < minsz) return -ERRNO.EINVAL;
  minsz = Math.min(info.argsz, vfio_iommu_type1_info.size);
  const ioas = compatIoas(core);
  if (typeof ioas === "number") return ioas;
  info.flags = VFIO_IOMMU_INFO_PGSIZES;
  info.iova_pgsizes = pageSizes(ioas, BigInt(core.settings.pageSize));
  info.cap_offset = 0;
  let total = vfio_iommu_type1_info.size;
  let lastCap: number | undefined;
  for (const fill of FILL_CAPS) {
    const size = info.argsz > total
      ? fill(ioas, user, total, info.argsz - total)
      : fill(ioas, user, total, 0);
    if (size < 0) return size;
    const capSize = Math.ceil(size / 8) * 8;
    if (lastCap !== undefined && info.argsz >= total) {
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, total, true);
      if (!user.write(lastCap + 4, next)) return -ERRNO.EFAULT;
    }
    lastCap = total;
    total += capSize;
  }
  if (info.argsz >= total) info.cap_offset = vfio_iommu_type1_info.size;
  info.argsz = total;
  info.flags |= VFIO_IOMMU_INFO_CAPS;
  const out = encode(vfio_iommu_type1_info, info).subarray(0, minsz);
  return user.write(0, out) ? 0 : -ERRNO.EFAULT;
}

function mapDma(core: IommufdCore, process: SimProcess, user: UserBuffer): number {
  const minsz = offsetOfEnd(vfio_iommu_type1_dma_map, "size");
  const bytes = user.read(0, minsz);
  if (!bytes) return -ERRNO.EFAULT;
  const map = decode(vfio_iommu_type1_dma_map, bytes);
  if (map.argsz < minsz || (map.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE))) {
    return -ERRNO.EINVAL;
  }
  const ioas = compatIoas(core);
  if (typeof ioas === "number") return ioas;
  const prot = {
    read: (map.flags & VFIO_DMA_MAP_FLAG_READ) !== 0,
    write: (map.flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0,
  };
  const got = mapUserPages(core, process, ioas.iopt, map.iova, map.vaddr, map.size, prot, false);
  return typeof got === "number" ? got : 0;
}

function unmapDma(core: IommufdCore, user: UserBuffer): number {
  const minsz = offsetOfEnd(vfio_iommu_type1_dma_unmap, "size");
  const bytes = user.read(0, minsz);
  if (!bytes) return -ERRNO.EFAULT;
  const unmap = decode(vfio_iommu_type1_dma_unmap, bytes);
  if (unmap.argsz < minsz || (unmap.flags & ~VFIO_DMA_UNMAP_FLAG_ALL)) return -ERRNO.EINVAL;
  const ioas = compatIoas(core);
  if (typeof ioas === "number") return ioas;
  let r: { rc: number; unmapped: bigint };
  if (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
    if (unmap.iova !== 0n || unmap.size !== 0n) return -ERRNO.EINVAL;
    r = ioas.iopt.unmapAll();
  } else {
    if (ioas.iopt.disableLargePages) {
      const cuts = [BigInt.asUintN(64, unmap.iova + unmap.size - 1n)];
      if (unmap.iova !== 0n) cuts.push(unmap.iova - 1n);
      const rc = ioas.iopt.cutIova(cuts);
      if (rc < 0) return rc;
    }
    r = ioas.iopt.unmapIova(unmap.iova, unmap.size);
  }
  unmap.size = r.unmapped;
  const out = encode(vfio_iommu_type1_dma_unmap, unmap).subarray(0, minsz);
  return user.write(0, out) ? r.rc : -ERRNO.EFAULT;
}

/**
 * `iommufd_vfio_ioctl`: a VFIO container ioctl on an iommufd; -ENOTTY for anything it does not
 * serve (DIRTY_PAGES included).
 */
export function compatIoctl(
  core: IommufdCore,
  arch: IoctlArch,
  process: SimProcess,
  request: number,
  arg: Uint8Array | bigint,
): number {
  const is = (decl: Parameters<typeof ioctlNumber>[1]): boolean =>
    request >>> 0 === ioctlNumber(arch, decl);
  if (is(VFIO_GET_API_VERSION)) return VFIO_API_VERSION;
  if (is(VFIO_SET_IOMMU)) return setIommu(core, valueOf(arg));
  if (is(VFIO_CHECK_EXTENSION)) return checkExtension(core, valueOf(arg));
  if (is(VFIO_IOMMU_GET_INFO)) return getInfo(core, userArg(process, arg));
  if (is(VFIO_IOMMU_MAP_DMA)) return mapDma(core, process, userArg(process, arg));
  if (is(VFIO_IOMMU_UNMAP_DMA)) return unmapDma(core, userArg(process, arg));
  return -ERRNO.ENOTTY;
}
