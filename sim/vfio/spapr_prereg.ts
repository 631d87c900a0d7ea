/**
 * Preregistered memory of a process (`mm_iommu`, arch/powerpc/mm/book3s64/iommu_api.c): the
 * regions VFIO_IOMMU_SPAPR_REGISTER_MEMORY pinned, shared by every sPAPR v2 container of the
 * process. A region is pinned and charged to locked_vm once, counts its container users and the
 * TCEs that point into it, and translates a user address to a host physical address from the
 * pages pinned at registration (later munmap of the user range does not change it).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { PhysicalMemory } from "../memory.ts";
import { chargeLockedPages } from "../kernel/process.ts";
import { type UserRun, userRuns } from "../kernel/user.ts";

/** One preregistered region (`struct mm_iommu_table_group_mem_t`). */
export class PreregRegion {
  /** Containers using the region (`used`). */
  used = 1;
  /** TCEs pointing into the region (`mapped` minus its initial 1). */
  mappedTces = 0;

  constructor(
    /** First user address. */
    readonly ua: bigint,
    /** Size in bytes. */
    readonly size: bigint,
    /** log2 of the largest TCE page the region can back (`pageshift`). */
    readonly pageShift: number,
    /** Pages charged to locked_vm. */
    readonly lockedPages: number,
    /** The pinned runs, by offset from `ua`. */
    private readonly pieces: readonly UserRun[],
  ) {}

  /** Whether `[ua, ua + size)` lies inside the region (`mm_iommu_lookup`). */
  covers(ua: bigint, size: bigint): boolean {
    return ua >= this.ua && ua + size <= this.ua + this.size;
  }

  /** Whether the region overlaps `[ua, ua + size)`. */
  overlaps(ua: bigint, size: bigint): boolean {
    return this.ua < ua + size && ua < this.ua + this.size;
  }

  /** `mm_iommu_ua_to_hpa`: the host address of `ua` (EFAULT when a TCE page exceeds pageShift). */
  hpa(ua: bigint, tcePageShift: number): bigint | number {
    if (tcePageShift > this.pageShift) return -ERRNO.EFAULT;
    const offset = ua - this.ua;
    for (const p of this.pieces) {
      if (offset >= p.offset && offset < p.offset + p.length) return p.phys + (offset - p.offset);
    }
    return -ERRNO.EFAULT;
  }

  /** Unpin every page. */
  unpin(memory: PhysicalMemory): void {
    for (const p of this.pieces) memory.release(p.chunk);
  }
}

/** Every process's preregistered regions. */
const REGIONS = new WeakMap<SimProcess, PreregRegion[]>();

function regionsOf(process: SimProcess): PreregRegion[] {
  let list = REGIONS.get(process);
  if (list === undefined) {
    list = [];
    REGIONS.set(process, list);
  }
  return list;
}

/** `mm_iommu_get`: the region registered with exactly this address and size. */
export function preregGet(process: SimProcess, ua: bigint, size: bigint): PreregRegion | undefined {
  return regionsOf(process).find((r) => r.ua === ua && r.size === size);
}

/** `mm_iommu_lookup`: a region holding all of `[ua, ua + size)`. */
export function preregLookup(
  process: SimProcess,
  ua: bigint,
  size: bigint,
): PreregRegion | undefined {
  return regionsOf(process).find((r) => r.covers(ua, size));
}

/**
 * `mm_iommu_new`: charge locked_vm (ENOMEM), pin every page (EFAULT when one is not mapped),
 * refuse an overlap with another region (EINVAL). Nothing is left pinned or charged on failure.
 */
export function preregNew(
  process: SimProcess,
  memory: PhysicalMemory,
  pageSize: number,
  ua: bigint,
  size: bigint,
): PreregRegion | number {
  const pages = Number(size / BigInt(pageSize));
  const charged = chargeLockedPages(process, pages, pageSize);
  if (charged < 0) return charged;
  const pieces = userRuns(process, ua, size);
  if (!Array.isArray(pieces)) {
    process.lockedPages -= pages;
    return -ERRNO.EFAULT;
  }
  const list = regionsOf(process);
  if (list.some((r) => r.overlaps(ua, size))) {
    process.lockedPages -= pages;
    return -ERRNO.EINVAL;
  }
  for (const p of pieces) memory.retain(p.chunk);
  // Normal (not hugetlbfs) pages: the largest TCE page a region backs is one host page, further
  // limited by the alignment of its address and size (`__ffs(ua | size)`).
  const lowest = (ua | size) & -(ua | size);
  const pageShift = Math.min(Math.log2(pageSize), lowest.toString(2).length - 1);
  const region = new PreregRegion(ua, size, pageShift, pages, pieces);
  list.push(region);
  return region;
}

/**
 * `mm_iommu_put`: drop one container's use; the last user frees the region unless TCEs still
 * point into it (EBUSY, the use is kept).
 */
export function preregPut(
  process: SimProcess,
  memory: PhysicalMemory,
  region: PreregRegion,
): number {
  if (region.used > 1) {
    region.used--;
    return 0;
  }
  if (region.mappedTces > 0) return -ERRNO.EBUSY;
  region.used = 0;
  const list = regionsOf(process);
  list.splice(list.indexOf(region), 1);
  region.unpin(memory);
  process.lockedPages -= region.lockedPages;
  return 0;
}
