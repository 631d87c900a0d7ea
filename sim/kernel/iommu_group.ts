/**
 * Group-level IOMMU facts the kernel derives from the hardware model: the group's reserved regions
 * (`iommu_get_group_resv_regions`: every device's regions, sorted by start, overlapping or adjacent
 * regions of one type merged) and their sysfs spelling.
 *
 * @module
 */

import type { ReservedRegion, ReservedRegionType } from "../iommu/model.ts";
import type { SimIommuGroup } from "./pci_function.ts";

/** `enum iommu_resv_type` order (include/linux/iommu.h), used to sort equal starts. */
const TYPE_ORDER: Record<ReservedRegionType, number> = {
  "direct": 0,
  "direct-relaxable": 1,
  "reserved": 2,
  "msi": 3,
  "sw-msi": 4,
};

/** How /sys/kernel/iommu_groups/N/reserved_regions names each type (MSI and SW_MSI both "msi"). */
export const RESV_TYPE_SYSFS_NAME: Record<ReservedRegionType, string> = {
  "direct": "direct",
  "direct-relaxable": "direct-relaxable",
  "reserved": "reserved",
  "msi": "msi",
  "sw-msi": "msi",
};

/** Insert `region` into a sorted list, merging it with same-type neighbours it overlaps or touches. */
function insertRegion(list: ReservedRegion[], region: ReservedRegion): ReservedRegion[] {
  const all = [...list, region].sort((a, b) =>
    a.start < b.start ? -1 : a.start > b.start ? 1 : TYPE_ORDER[a.type] - TYPE_ORDER[b.type]
  );
  const out: ReservedRegion[] = [];
  for (const r of all) {
    let merged = false;
    if (r.type === region.type) {
      for (let i = out.length - 1; i >= 0; i--) {
        const top = out[i];
        if (top.type !== r.type) continue;
        if (r.start <= top.end + 1n) {
          out[i] = { start: top.start, end: r.end > top.end ? r.end : top.end, type: top.type };
          merged = true;
        }
        break;
      }
    }
    if (!merged) out.push(r);
  }
  return out;
}

/** The reserved regions of a group, as `iommu_get_group_resv_regions` returns them. */
export function groupReservedRegions(group: SimIommuGroup): ReservedRegion[] {
  let list: ReservedRegion[] = [];
  for (const fn of group.functions) {
    for (const region of group.iommu.reservedRegions(fn.requester)) {
      list = insertRegion(list, region);
    }
  }
  return list;
}

/** The text of /sys/kernel/iommu_groups/N/reserved_regions. */
export function reservedRegionsText(group: SimIommuGroup): string {
  const hex = (v: bigint): string => "0x" + v.toString(16).padStart(16, "0");
  return groupReservedRegions(group)
    .map((r) => `${hex(r.start)} ${hex(r.end)} ${RESV_TYPE_SYSFS_NAME[r.type]}\n`)
    .join("");
}
