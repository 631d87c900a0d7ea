/**
 * The type1 IOVA list (`iommu->iova_list`): the usable IOVA ranges of a container, inclusive,
 * sorted. Attaching a group clips it to the domain aperture and cuts out the group's reserved
 * regions except direct-relaxable ones (`vfio_iommu_aper_resize`, `vfio_iommu_resv_exclude`).
 *
 * @module
 */

import type { ReservedRegion } from "../iommu/model.ts";

/** One usable IOVA range, both ends inclusive. */
export interface IovaRange {
  /** First usable IOVA. */
  readonly start: bigint;
  /** Last usable IOVA. */
  readonly end: bigint;
}

/** Reserved regions that are holes in the IOVA space (every type but direct-relaxable). */
export function isIovaHole(region: ReservedRegion): boolean {
  return region.type !== "direct-relaxable";
}

/**
 * `vfio_iommu_aper_resize`: an empty list becomes the aperture; otherwise ranges are clipped to it
 * and ranges outside it dropped.
 */
export function resizeToAperture(
  list: readonly IovaRange[],
  start: bigint,
  end: bigint,
): IovaRange[] {
  if (list.length === 0) return [{ start, end }];
  const out: IovaRange[] = [];
  for (const r of list) {
    if (r.end < start || r.start > end) continue;
    out.push({ start: r.start < start ? start : r.start, end: r.end > end ? end : r.end });
  }
  return out;
}

/** `vfio_iommu_resv_exclude`: cut every hole out of the list (the result may be empty). */
export function excludeReserved(
  list: readonly IovaRange[],
  regions: readonly ReservedRegion[],
): IovaRange[] {
  let out = [...list];
  for (const region of regions) {
    if (!isIovaHole(region)) continue;
    const next: IovaRange[] = [];
    for (const r of out) {
      if (region.start > r.end || region.end < r.start) {
        next.push(r);
        continue;
      }
      if (region.start > r.start) next.push({ start: r.start, end: region.start - 1n });
      if (region.end < r.end) next.push({ start: region.end + 1n, end: r.end });
    }
    out = next;
  }
  return out;
}

/** `vfio_iommu_iova_dma_valid`: `[first, last]` inside one range (an empty list allows all). */
export function iovaRangeValid(list: readonly IovaRange[], first: bigint, last: bigint): boolean {
  if (list.length === 0) return true;
  return list.some((r) => first >= r.start && last <= r.end);
}
