/**
 * The object and IOAS commands (drivers/iommu/iommufd/ioas.c, main.c, vfio_compat.c):
 * IOMMU_DESTROY, IOAS_ALLOC, ALLOW_IOVAS, COPY, IOVA_RANGES, MAP, UNMAP, OPTION, VFIO_IOAS —
 * each errno in Linux's check order (iommufd.md §6, §7, §9).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import type { MapProtection } from "../iommu/model.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { IommufdCore } from "./core.ts";
import { type IoPagetable, type IovaSpan, ULONG_MAX } from "./io_pagetable.ts";
import { type CmdOf as Cmd, userPointer } from "./ucmd.ts";
import {
  type iommu_destroy,
  type iommu_ioas_alloc,
  type iommu_ioas_allow_iovas,
  type iommu_ioas_copy,
  iommu_ioas_iova_ranges,
  type iommu_ioas_map,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  type iommu_ioas_unmap,
  iommu_iova_range,
  iommu_option,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  type iommu_vfio_ioas,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
} from "../../ffi/uapi/mod.ts";

const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
/** `SIZE_MAX`. */
const SIZE_MAX = ULONG_MAX;

/** `conv_iommu_prot`. */
function protOf(flags: number): MapProtection {
  return {
    read: (flags & IOMMU_IOAS_MAP_READABLE) !== 0,
    write: (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0,
  };
}

/**
 * `iopt_map_user_pages`: map `length` bytes of `uptr` at `iova` (or an allocated IOVA). Returns
 * the IOVA or -errno.
 */
export function mapUserPages(
  core: IommufdCore,
  process: SimProcess,
  iopt: IoPagetable,
  iova: bigint,
  uptr: bigint,
  length: bigint,
  prot: MapProtection,
  allocate: boolean,
): bigint | number {
  if (length > SIZE_MAX - iopt.pageSize || length === 0n) return -ERRNO.EINVAL;
  if (uptr + length > ULONG_MAX) return -ERRNO.EOVERFLOW;
  const pages = core.newPages(process, uptr, prot.write);
  const elm = { pages, startByte: uptr - pages.base, length };
  const got = iopt.mapPages([elm], length, iova, prot, allocate);
  if (typeof got === "number" && pages.users.size === 0) pages.releaseAll();
  return got;
}

/** IOMMU_DESTROY. */
export function cmdDestroy(core: IommufdCore, u: Cmd<typeof iommu_destroy>): number {
  return core.remove(u.cmd.id);
}

/** IOMMU_IOAS_ALLOC. */
export function cmdIoasAlloc(core: IommufdCore, u: Cmd<typeof iommu_ioas_alloc>): number {
  if (u.cmd.flags) return -ERRNO.EOPNOTSUPP;
  const ioas = core.allocIoas();
  if (typeof ioas === "number") return ioas;
  u.cmd.out_ioas_id = ioas.id;
  const rc = u.respond();
  if (rc < 0) core.remove(ioas.id);
  return rc;
}

/** IOMMU_IOAS_IOVA_RANGES: EMSGSIZE after copying the struct back when the array is too small. */
export function cmdIovaRanges(core: IommufdCore, u: Cmd<typeof iommu_ioas_iova_ranges>): number {
  const c = u.cmd;
  if (c.__reserved) return -ERRNO.EOPNOTSUPP;
  const ioas = core.lookup(c.ioas_id, "ioas");
  if (!ioas) return -ERRNO.ENOENT;
  const max = c.num_iovas;
  const out = userPointer(u.process, c.allowed_iovas);
  c.num_iovas = 0;
  c.out_iova_alignment = ioas.iopt.iovaAlignment;
  for (const hole of ioas.iopt.holes()) {
    if (c.num_iovas < max) {
      const elm = encode(iommu_iova_range, { start: hole.start, last: hole.last });
      if (!out.write(c.num_iovas * iommu_iova_range.size, elm)) return -ERRNO.EFAULT;
    }
    c.num_iovas++;
  }
  const rc = u.respond();
  if (rc < 0) return rc;
  return c.num_iovas > max ? -ERRNO.EMSGSIZE : 0;
}

/** IOMMU_IOAS_ALLOW_IOVAS. */
export function cmdAllowIovas(core: IommufdCore, u: Cmd<typeof iommu_ioas_allow_iovas>): number {
  const c = u.cmd;
  if (c.__reserved) return -ERRNO.EOPNOTSUPP;
  const ioas = core.lookup(c.ioas_id, "ioas");
  if (!ioas) return -ERRNO.ENOENT;
  const src = userPointer(u.process, c.allowed_iovas);
  const list: IovaSpan[] = [];
  for (let i = 0; i < c.num_iovas; i++) {
    const bytes = src.read(i * iommu_iova_range.size, iommu_iova_range.size);
    if (!bytes) return -ERRNO.EFAULT;
    const r = decode(iommu_iova_range, bytes);
    if (r.start >= r.last) return -ERRNO.EINVAL;
    if (list.some((o) => o.start <= r.last && o.last >= r.start)) return -ERRNO.EINVAL;
    list.push({ start: r.start, last: r.last });
  }
  return ioas.iopt.setAllowed(list);
}

/** IOMMU_IOAS_MAP. */
export function cmdMap(core: IommufdCore, u: Cmd<typeof iommu_ioas_map>): number {
  const c = u.cmd;
  if ((c.flags & ~MAP_FLAGS) || c.__reserved) return -ERRNO.EOPNOTSUPP;
  if (c.iova >= ULONG_MAX || c.length >= ULONG_MAX) return -ERRNO.EOVERFLOW;
  if (!(c.flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return -ERRNO.EINVAL;
  const ioas = core.lookup(c.ioas_id, "ioas");
  if (!ioas) return -ERRNO.ENOENT;
  const allocate = (c.flags & IOMMU_IOAS_MAP_FIXED_IOVA) === 0;
  const got = mapUserPages(
    core,
    u.process,
    ioas.iopt,
    c.iova,
    c.user_va,
    c.length,
    protOf(c.flags),
    allocate,
  );
  if (typeof got === "number") return got;
  c.iova = got;
  return u.respond();
}

/** IOMMU_IOAS_COPY. */
export function cmdCopy(core: IommufdCore, u: Cmd<typeof iommu_ioas_copy>): number {
  const c = u.cmd;
  if (c.flags & ~MAP_FLAGS) return -ERRNO.EOPNOTSUPP;
  if (c.length >= ULONG_MAX || c.src_iova >= ULONG_MAX || c.dst_iova >= ULONG_MAX) {
    return -ERRNO.EOVERFLOW;
  }
  if (!(c.flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return -ERRNO.EINVAL;
  const src = core.lookup(c.src_ioas_id, "ioas");
  if (!src) return -ERRNO.ENOENT;
  const elms = src.iopt.getPages(c.src_iova, c.length);
  if (typeof elms === "number") return elms;
  const dst = core.lookup(c.dst_ioas_id, "ioas");
  if (!dst) return -ERRNO.ENOENT;
  const allocate = (c.flags & IOMMU_IOAS_MAP_FIXED_IOVA) === 0;
  const got = dst.iopt.mapPages(elms, c.length, c.dst_iova, protOf(c.flags), allocate);
  if (typeof got === "number") return got;
  c.dst_iova = got;
  return u.respond();
}

/** IOMMU_IOAS_UNMAP. */
export function cmdUnmap(core: IommufdCore, u: Cmd<typeof iommu_ioas_unmap>): number {
  const c = u.cmd;
  const ioas = core.lookup(c.ioas_id, "ioas");
  if (!ioas) return -ERRNO.ENOENT;
  let r: { rc: number; unmapped: bigint };
  if (c.iova === 0n && c.length === ULONG_MAX) {
    r = ioas.iopt.unmapAll();
  } else {
    if (c.iova >= ULONG_MAX || c.length >= ULONG_MAX) return -ERRNO.EOVERFLOW;
    r = ioas.iopt.unmapIova(c.iova, c.length);
    // Only the native command calls an empty range an error (the compat UNMAP_DMA answers 0).
    if (r.rc === 0 && r.unmapped === 0n) return -ERRNO.ENOENT;
  }
  if (r.rc < 0) return r.rc;
  c.length = r.unmapped;
  return u.respond();
}

function optionRlimit(
  core: IommufdCore,
  c: { op: number; object_id: number; val64: bigint },
): number {
  if (c.object_id) return -ERRNO.EOPNOTSUPP;
  if (c.op === IOMMU_OPTION_OP_GET) {
    c.val64 = core.accountMode === "mm" ? 1n : 0n;
    return 0;
  }
  if (c.op !== IOMMU_OPTION_OP_SET) return -ERRNO.EOPNOTSUPP;
  if (!core.settings.capSysResource) return -ERRNO.EPERM;
  if (core.objects.size !== 0) return -ERRNO.EBUSY;
  if (c.val64 === 0n) core.accountMode = "user";
  else if (c.val64 === 1n) core.accountMode = "mm";
  else return -ERRNO.EINVAL;
  return 0;
}

function optionHugePages(
  core: IommufdCore,
  c: { op: number; object_id: number; val64: bigint },
): number {
  const ioas = core.lookup(c.object_id, "ioas");
  if (!ioas) return -ERRNO.ENOENT;
  if (c.op === IOMMU_OPTION_OP_GET) {
    c.val64 = ioas.iopt.disableLargePages ? 0n : 1n;
    return 0;
  }
  if (c.op !== IOMMU_OPTION_OP_SET) return -ERRNO.EOPNOTSUPP;
  if (c.val64 === 0n) return ioas.iopt.disableLarge();
  if (c.val64 === 1n) {
    ioas.iopt.enableLarge();
    return 0;
  }
  return -ERRNO.EINVAL;
}

/** IOMMU_OPTION: only `val64` is copied back. */
export function cmdOption(core: IommufdCore, u: Cmd<typeof iommu_option>): number {
  const c = u.cmd;
  if (c.__reserved) return -ERRNO.EOPNOTSUPP;
  let rc: number;
  if (c.option_id === IOMMU_OPTION_RLIMIT_MODE) rc = optionRlimit(core, c);
  else if (c.option_id === IOMMU_OPTION_HUGE_PAGES) rc = optionHugePages(core, c);
  else return -ERRNO.EOPNOTSUPP;
  if (rc < 0) return rc;
  const val = encode(iommu_option, { val64: c.val64 }).subarray(16, 24);
  return u.user.write(16, val) ? 0 : -ERRNO.EFAULT;
}

/** IOMMU_VFIO_IOAS. */
export function cmdVfioIoas(core: IommufdCore, u: Cmd<typeof iommu_vfio_ioas>): number {
  const c = u.cmd;
  if (c.__reserved) return -ERRNO.EOPNOTSUPP;
  switch (c.op) {
    case IOMMU_VFIO_IOAS_GET: {
      if (!core.compatIoas) return -ERRNO.ENODEV;
      c.ioas_id = core.compatIoas.id;
      return u.respond();
    }
    case IOMMU_VFIO_IOAS_SET: {
      const ioas = core.lookup(c.ioas_id, "ioas");
      if (!ioas) return -ERRNO.ENOENT;
      core.compatIoas = ioas;
      return 0;
    }
    case IOMMU_VFIO_IOAS_CLEAR:
      core.compatIoas = undefined;
      return 0;
    default:
      return -ERRNO.EOPNOTSUPP;
  }
}
