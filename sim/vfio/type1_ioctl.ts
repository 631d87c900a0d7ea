/**
 * The type1 container ioctls, decoded as the kernel decodes them (vfio.md §8.2–§8.5): GET_INFO
 * with its capability chain, MAP_DMA and UNMAP_DMA with their errno in check order, and
 * DIRTY_PAGES. Every handler takes the caller's bytes and answers a result or -errno.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { encode, offsetOfEnd } from "../../ffi/uapi/layout.ts";
import type { SimProcess } from "../kernel/file.ts";
import { copyIn, readStruct, writeStruct } from "../kernel/user.ts";
import { buildCapChain, type InfoCap } from "./caps.ts";
import type { DmaMapping } from "./dma.ts";
import type { Type1Iommu } from "./type1.ts";
import {
  vfio_bitmap,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  vfio_iommu_type1_dirty_bitmap,
  vfio_iommu_type1_dirty_bitmap_get,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  vfio_iommu_type1_info_cap_iova_range,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  vfio_iommu_type1_info_cap_migration,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  vfio_iommu_type1_info_dma_avail,
  vfio_iova_range,
} from "../../ffi/uapi/mod.ts";

const U64_MAX = (1n << 64n) - 1n;
/** Largest dirty bitmap in bytes (`DIRTY_BITMAP_SIZE_MAX`: INT_MAX pages → 256 MiB). */
export const DIRTY_BITMAP_SIZE_MAX = 0x1000_0000n;
/** `TASK_SIZE_MAX` on x86-64: `access_ok` rejects user ranges reaching above it. */
export const USER_ADDRESS_LIMIT = 0x7fff_ffff_f000n;
/** Capability versions of the type1 info caps. */
const CAP_VERSION = 1;
const BITS_PER_WORD = 64n;

/** Lowest set bit (`1 << __ffs(x)`); 0 for 0. */
function lowestBit(x: bigint): bigint {
  return x & -x;
}

/** `DIRTY_BITMAP_BYTES(n)`: bytes of whole u64 words holding n bits. */
function bitmapBytes(bits: bigint): bigint {
  return ((bits + BITS_PER_WORD - 1n) / BITS_PER_WORD) * 8n;
}

/** `verify_bitmap_size`. */
function verifyBitmapSize(npages: bigint, bitmapSize: bigint): number {
  if (npages === 0n || bitmapSize === 0n || bitmapSize > DIRTY_BITMAP_SIZE_MAX) {
    return -ERRNO.EINVAL;
  }
  return bitmapSize < bitmapBytes(npages) ? -ERRNO.EINVAL : 0;
}

function accessOk(addr: bigint, size: bigint): boolean {
  return addr + size <= USER_ADDRESS_LIMIT;
}

/** Pages of a request at `pgsize` (`size >> __ffs(pgsize)`); 0 for a zero page size. */
function pagesOf(size: bigint, pgsize: bigint): bigint {
  const low = lowestBit(pgsize);
  return low === 0n ? 0n : size / low;
}

/** VFIO_IOMMU_GET_INFO. */
export function type1GetInfo(t1: Type1Iommu, user: Uint8Array): number {
  const layout = vfio_iommu_type1_info;
  const minsz = offsetOfEnd(layout, "iova_pgsizes");
  const info = readStruct(user, layout, minsz);
  if (info === undefined) return -ERRNO.EFAULT;
  if (info.argsz < minsz) return -ERRNO.EINVAL;
  const copyLen = Math.min(info.argsz, layout.size);
  info.flags = VFIO_IOMMU_INFO_PGSIZES;
  info.iova_pgsizes = t1.pgsizeBitmap;
  const chain = buildCapChain(type1InfoCaps(t1), layout.size);
  if (chain.length > 0) {
    info.flags |= VFIO_IOMMU_INFO_CAPS;
    if (info.argsz < layout.size + chain.length) {
      info.argsz = layout.size + chain.length;
    } else {
      const dst = copyIn(user, layout.size, chain.length);
      if (dst === undefined) return -ERRNO.EFAULT;
      dst.set(chain);
      info.cap_offset = layout.size;
    }
  }
  return writeStruct(user, layout, info, copyLen) ? 0 : -ERRNO.EFAULT;
}

/** The type1 info capabilities, in the kernel's order: MIGRATION, DMA_AVAIL, IOVA_RANGE. */
export function type1InfoCaps(t1: Type1Iommu): InfoCap[] {
  const caps: InfoCap[] = [
    {
      id: VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
      version: CAP_VERSION,
      bytes: encode(vfio_iommu_type1_info_cap_migration, {
        flags: 0,
        pgsize_bitmap: t1.minPageSize,
        max_dirty_bitmap_size: DIRTY_BITMAP_SIZE_MAX,
      }),
    },
    {
      id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
      version: CAP_VERSION,
      bytes: encode(vfio_iommu_type1_info_dma_avail, { avail: t1.dmaAvail }),
    },
  ];
  const ranges = t1.iovaList;
  if (ranges.length > 0) {
    const head = vfio_iommu_type1_info_cap_iova_range;
    const bytes = encode(head, { nr_iovas: ranges.length }, ranges.length * vfio_iova_range.size);
    ranges.forEach((r, i) => {
      bytes.set(
        encode(vfio_iova_range, { start: r.start, end: r.end }),
        head.size + i * vfio_iova_range.size,
      );
    });
    caps.push({ id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: CAP_VERSION, bytes });
  }
  return caps;
}

/** VFIO_IOMMU_MAP_DMA (vfio.md §8.3, in check order). */
export function type1MapDma(t1: Type1Iommu, process: SimProcess, user: Uint8Array): number {
  const layout = vfio_iommu_type1_dma_map;
  const minsz = offsetOfEnd(layout, "size");
  const map = readStruct(user, layout, minsz);
  if (map === undefined) return -ERRNO.EFAULT;
  const known = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
  if (map.argsz < minsz || (map.flags & ~known) !== 0) return -ERRNO.EINVAL;
  const setVaddr = (map.flags & VFIO_DMA_MAP_FLAG_VADDR) !== 0;
  const read = (map.flags & VFIO_DMA_MAP_FLAG_READ) !== 0;
  const write = (map.flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0;
  const prot = read || write;
  if ((prot && setVaddr) || (!prot && !setVaddr)) return -ERRNO.EINVAL;
  const { iova, vaddr, size } = map;
  const pgmask = t1.minPageSize - 1n;
  if (size === 0n || ((size | iova | vaddr) & pgmask) !== 0n) return -ERRNO.EINVAL;
  if (iova + size - 1n > U64_MAX || vaddr + size - 1n > U64_MAX) return -ERRNO.EINVAL;
  const dma = t1.dma.find(iova, size);
  if (setVaddr) {
    if (dma === undefined) return -ERRNO.ENOENT;
    if (!dma.vaddrInvalid || dma.iova !== iova || dma.size !== size) return -ERRNO.EINVAL;
    dma.vaddr = vaddr;
    dma.owner = process;
    t1.setVaddrInvalid(dma, false);
    return 0;
  }
  if (dma !== undefined) return -ERRNO.EEXIST;
  if (t1.dmaAvail === 0) return -ERRNO.ENOSPC;
  if (!t1.iovaValid(iova, iova + size - 1n)) return -ERRNO.EINVAL;
  return t1.mapPinned(process, iova, vaddr, size, { read, write });
}

/** `update_user_bitmap`: mark every page of `dma` dirty in the user bitmap at `data`. */
function updateUserBitmap(
  process: SimProcess,
  data: bigint,
  dma: DmaMapping,
  base: bigint,
  pgsize: bigint,
): number {
  const nbits = dma.size / pgsize;
  const bitOffset = (dma.iova - base) / pgsize;
  const wordOffset = bitOffset / BITS_PER_WORD;
  const shift = bitOffset % BITS_PER_WORD;
  const bytes = Number(bitmapBytes(nbits + shift));
  const at = data + wordOffset * 8n;
  const out = new Uint8Array(bytes);
  const setBit = (bit: bigint): void => void (out[Number(bit >> 3n)] |= 1 << Number(bit & 7n));
  if (shift > 0n) {
    // The bits below `shift` of the first word belong to earlier mappings: keep the user's.
    const first = process.memory.copyFromUser(at, 8);
    if (first === undefined) return -ERRNO.EFAULT;
    for (let bit = 0n; bit < shift; bit++) {
      if ((first[Number(bit >> 3n)] >> Number(bit & 7n)) & 1) setBit(bit);
    }
  }
  for (let bit = shift; bit < shift + nbits; bit++) setBit(bit);
  return process.memory.copyToUser(at, out) ? 0 : -ERRNO.EFAULT;
}

interface UnmapRequest {
  flags: number;
  iova: bigint;
  size: bigint;
  bitmap?: { pgsize: bigint; size: bigint; data: bigint };
}

/** `vfio_dma_do_unmap`: errno and bytes unmapped. */
function doUnmap(
  t1: Type1Iommu,
  process: SimProcess,
  req: UnmapRequest,
): { ret: number; unmapped: bigint } {
  const all = (req.flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
  const invalidate = (req.flags & VFIO_DMA_UNMAP_FLAG_VADDR) !== 0;
  const fail = { ret: -ERRNO.EINVAL, unmapped: 0n };
  const pgsize = t1.minPageSize;
  const { iova } = req;
  let size = req.size;
  if ((iova & (pgsize - 1n)) !== 0n) return fail;
  if (all) {
    if (iova !== 0n || size !== 0n) return fail;
    size = U64_MAX;
  } else if (size === 0n || (size & (pgsize - 1n)) !== 0n || iova + size - 1n > U64_MAX) {
    return fail;
  }
  if (req.bitmap !== undefined && (!t1.dirtyTracking || req.bitmap.pgsize !== pgsize)) return fail;
  if (t1.flavour.v2 && !all) {
    const first = t1.dma.find(iova, 1n);
    if (first !== undefined && first.iova !== iova) return fail;
    const last = t1.dma.find(iova + size - 1n, 0n);
    if (last !== undefined && last.iova + last.size !== iova + size) return fail;
  }
  let unmapped = 0n;
  const marked: DmaMapping[] = [];
  for (const dma of t1.dma.overlapping(iova, size)) {
    if (!t1.flavour.v2 && iova > dma.iova) break;
    if (invalidate) {
      if (dma.vaddrInvalid) {
        for (const m of marked) t1.setVaddrInvalid(m, false);
        return { ret: -ERRNO.EINVAL, unmapped: 0n };
      }
      t1.setVaddrInvalid(dma, true);
      marked.push(dma);
      unmapped += dma.size;
      continue;
    }
    if (req.bitmap !== undefined) {
      const r = updateUserBitmap(process, req.bitmap.data, dma, iova, pgsize);
      if (r < 0) return { ret: r, unmapped };
    }
    unmapped += dma.size;
    t1.removeDma(dma);
  }
  return { ret: 0, unmapped };
}

/** VFIO_IOMMU_UNMAP_DMA (vfio.md §8.4): `size` is written back only on success. */
export function type1UnmapDma(t1: Type1Iommu, process: SimProcess, user: Uint8Array): number {
  const layout = vfio_iommu_type1_dma_unmap;
  const minsz = offsetOfEnd(layout, "size");
  const unmap = readStruct(user, layout, minsz);
  if (unmap === undefined) return -ERRNO.EFAULT;
  const known = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_VADDR |
    VFIO_DMA_UNMAP_FLAG_ALL;
  if (unmap.argsz < minsz || (unmap.flags & ~known) !== 0) return -ERRNO.EINVAL;
  const dirty = (unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
  if (dirty && (unmap.flags & (VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)) !== 0) {
    return -ERRNO.EINVAL;
  }
  const req: UnmapRequest = { flags: unmap.flags, iova: unmap.iova, size: unmap.size };
  if (dirty) {
    if (unmap.argsz < minsz + vfio_bitmap.size) return -ERRNO.EINVAL;
    const bitmap = readStruct(user, vfio_bitmap, vfio_bitmap.size, minsz);
    if (bitmap === undefined) return -ERRNO.EFAULT;
    if (!accessOk(bitmap.data, bitmap.size)) return -ERRNO.EINVAL;
    const r = verifyBitmapSize(pagesOf(unmap.size, bitmap.pgsize), bitmap.size);
    if (r < 0) return r;
    req.bitmap = bitmap;
  }
  const { ret, unmapped } = doUnmap(t1, process, req);
  if (ret < 0) return ret;
  unmap.size = unmapped;
  return writeStruct(user, layout, unmap, minsz) ? 0 : -ERRNO.EFAULT;
}

/**
 * VFIO_IOMMU_DIRTY_PAGES (vfio.md §8.5). Every device behind a type1 container is an IOMMU-backed
 * device that cannot report its own writes, so — as Linux does — every page of every mapping in
 * the requested range is reported dirty.
 */
export function type1DirtyPages(t1: Type1Iommu, process: SimProcess, user: Uint8Array): number {
  if (!t1.flavour.v2) return -ERRNO.EACCES;
  const layout = vfio_iommu_type1_dirty_bitmap;
  const minsz = offsetOfEnd(layout, "flags");
  const dirty = readStruct(user, layout, minsz);
  if (dirty === undefined) return -ERRNO.EFAULT;
  const known = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
    VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
  if (dirty.argsz < minsz || (dirty.flags & ~known) !== 0) return -ERRNO.EINVAL;
  if (dirty.flags === 0 || (dirty.flags & (dirty.flags - 1)) !== 0) return -ERRNO.EINVAL;
  if (dirty.flags === VFIO_IOMMU_DIRTY_PAGES_FLAG_START) {
    t1.dirtyTracking = true;
    return 0;
  }
  if (dirty.flags === VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) {
    t1.dirtyTracking = false;
    return 0;
  }
  const getLayout = vfio_iommu_type1_dirty_bitmap_get;
  const dataSize = dirty.argsz - minsz;
  if (dataSize === 0 || dataSize < getLayout.size) return -ERRNO.EINVAL;
  const range = readStruct(user, getLayout, getLayout.size, minsz);
  if (range === undefined) return -ERRNO.EFAULT;
  if (range.iova + range.size > U64_MAX) return -ERRNO.EINVAL;
  const bitmap = range.bitmap;
  if (!accessOk(bitmap.data, bitmap.size)) return -ERRNO.EINVAL;
  const r = verifyBitmapSize(pagesOf(range.size, bitmap.pgsize), bitmap.size);
  if (r < 0) return r;
  const pgsize = t1.minPageSize;
  if (bitmap.pgsize !== pgsize) return -ERRNO.EINVAL;
  if ((range.iova & (pgsize - 1n)) !== 0n) return -ERRNO.EINVAL;
  if (range.size === 0n || (range.size & (pgsize - 1n)) !== 0n) return -ERRNO.EINVAL;
  if (!t1.dirtyTracking) return -ERRNO.EINVAL;
  const first = t1.dma.find(range.iova, 1n);
  if (first !== undefined && first.iova !== range.iova) return -ERRNO.EINVAL;
  const last = t1.dma.find(range.iova + range.size - 1n, 0n);
  if (last !== undefined && last.iova + last.size !== range.iova + range.size) {
    return -ERRNO.EINVAL;
  }
  for (const dma of t1.dma.overlapping(range.iova, range.size)) {
    if (dma.iova < range.iova) continue;
    const res = updateUserBitmap(process, bitmap.data, dma, range.iova, pgsize);
    if (res < 0) return res;
  }
  return 0;
}
