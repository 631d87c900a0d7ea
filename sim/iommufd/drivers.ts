/**
 * What each IOMMU driver of Linux 6.12 contributes to iommufd, as data: whether it has
 * `domain_alloc_user` and which flags/data it accepts, its `hw_info` report and its nested
 * (user stage-1) formats. Rows are keyed by {@link IommuFacts.kind}; unknown kinds behave like a
 * driver without any iommufd extensions (virtio-iommu).
 *
 * Sources: iommufd.md §5, §8 (HWPT_ALLOC table, GET_HW_INFO), iommu-models.md §0, §1.1.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import type { IommuFacts } from "../iommu/model.ts";
import { kernelAtLeast, type KernelVersion } from "../kernel_version.ts";
import { SMMUV3_VIOMMU_ROW } from "./viommu_smmuv3.ts";
import type { IommuDriverRow } from "./driver_ops.ts";
import { SMMUV3_IOPF, vtdIopf } from "./iopf.ts";
import { VIOMMU_MIN_KERNEL } from "../../ffi/uapi/post_6_12.ts";
import {
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_TYPE_NONE,
  iommu_hw_info_vtd,
  IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  iommu_hwpt_vtd_s1,
  iommu_hwpt_vtd_s1_invalidate,
  IOMMU_VTD_INV_FLAGS_LEAF,
} from "../../ffi/uapi/mod.ts";

const U64_MAX = (1n << 64n) - 1n;

/** VT-d CAP/ECAP registers as reported in `hwInfo.data` (iommu_hw_info_vtd layout). */
export function vtdRegisters(facts: IommuFacts): { cap: bigint; ecap: bigint } {
  const data = facts.hwInfo.data;
  if (facts.hwInfo.type !== IOMMU_HW_INFO_TYPE_INTEL_VTD || data.length < iommu_hw_info_vtd.size) {
    return { cap: 0n, ecap: 0n };
  }
  const v = decode(iommu_hw_info_vtd, data);
  return { cap: v.cap_reg, ecap: v.ecap_reg };
}

const bit = (x: bigint, n: number): boolean => ((x >> BigInt(n)) & 1n) === 1n;

/**
 * `nested_supported(iommu)`: scalable mode (ECAP.SMTS, bit 43) and nesting (ECAP.NEST, bit 26).
 */
export function vtdNestingSupported(facts: IommuFacts): boolean {
  const { ecap } = vtdRegisters(facts);
  return bit(ecap, 26) && bit(ecap, 43);
}

/** VT-d first-level 5-level paging support (CAP.FL5LP, bit 60). */
export function vtdFirstLevel5(facts: IommuFacts): boolean {
  return bit(vtdRegisters(facts).cap, 60);
}

const VTD: IommuDriverRow = {
  name: "intel-iommu",
  domainAllocUser: true,
  pagingAlloc(facts, flags, userData) {
    if (flags & ~(IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING)) {
      return -ERRNO.EOPNOTSUPP;
    }
    if ((flags & IOMMU_HWPT_ALLOC_NEST_PARENT) && !vtdNestingSupported(facts)) {
      return -ERRNO.EOPNOTSUPP;
    }
    if (userData || ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !facts.dirtyTracking)) {
      return -ERRNO.EOPNOTSUPP;
    }
    return 0;
  },
  nestedAlloc(facts, flags, dataType) {
    if (!vtdNestingSupported(facts) || flags) return -ERRNO.EOPNOTSUPP;
    if (dataType !== IOMMU_HWPT_DATA_VTD_S1) return -ERRNO.EOPNOTSUPP;
    return 0;
  },
  nestedFormat: { type: IOMMU_HWPT_DATA_VTD_S1, minLen: 24, size: iommu_hwpt_vtd_s1.size },
  hwInfo(facts) {
    const { cap, ecap } = vtdRegisters(facts);
    const data = encode(iommu_hw_info_vtd, {
      flags: IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
      cap_reg: cap,
      ecap_reg: ecap,
    });
    return { type: IOMMU_HW_INFO_TYPE_INTEL_VTD, data };
  },
  invalidateFormat: {
    type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
    minLen: 24,
    size: iommu_hwpt_vtd_s1_invalidate.size,
  },
  checkInvalidation(entry) {
    const e = decode(iommu_hwpt_vtd_s1_invalidate, entry);
    if ((e.flags & ~IOMMU_VTD_INV_FLAGS_LEAF) || e.__reserved) return -ERRNO.EOPNOTSUPP;
    if ((e.addr & 0xfffn) !== 0n || (e.npages === U64_MAX && e.addr !== 0n)) return -ERRNO.EINVAL;
    return 0;
  },
  iopf: vtdIopf((facts) => vtdRegisters(facts).ecap),
};

const SMMUV3: IommuDriverRow = {
  name: "arm-smmu-v3",
  domainAllocUser: true,
  pagingAlloc(facts, flags, userData) {
    if (flags & ~IOMMU_HWPT_ALLOC_DIRTY_TRACKING) return -ERRNO.EOPNOTSUPP;
    if (userData) return -ERRNO.EOPNOTSUPP;
    if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !facts.dirtyTracking) return -ERRNO.EOPNOTSUPP;
    return 0;
  },
  nestedAlloc: () => -ERRNO.EOPNOTSUPP,
  nestedFormat: undefined,
  hwInfo: () => undefined,
  invalidateFormat: undefined,
  checkInvalidation: () => -ERRNO.EOPNOTSUPP,
  iopf: SMMUV3_IOPF,
};

const PLAIN: IommuDriverRow = {
  name: "plain",
  domainAllocUser: false,
  pagingAlloc: () => 0,
  nestedAlloc: () => -ERRNO.EOPNOTSUPP,
  nestedFormat: undefined,
  hwInfo: () => undefined,
  invalidateFormat: undefined,
  checkInvalidation: () => -ERRNO.EOPNOTSUPP,
};

/** Driver rows by {@link IommuFacts.kind}. */
export const IOMMU_DRIVERS: Readonly<Record<string, IommuDriverRow>> = {
  "vtd": VTD,
  "smmuv3": SMMUV3,
  "virtio-iommu": { ...PLAIN, name: "virtio-iommu", geometryAtFirstAttach: true },
};

/**
 * **Proposal** rows, by kind: a driver whose IOMMU has PASIDs only through a proposal (the
 * virtio-iommu with the proposed ATTACH_PASID, machines with `pasidAllocatorProposal`) would
 * implement `domain_alloc_paging_flags` for IOMMU_HWPT_ALLOC_PASID and nothing else.
 */
const PROPOSAL_DRIVERS: Readonly<Record<string, IommuDriverRow>> = {
  "virtio-iommu": {
    ...PLAIN,
    name: "virtio-iommu (PASID proposal)",
    domainAllocUser: true,
    pagingAlloc: (_facts, flags, userData) => flags || userData ? -ERRNO.EOPNOTSUPP : 0,
  },
};

/** Driver rows of later kernels, by kind: the first Linux version each applies from. */
const LATER_DRIVERS: Readonly<Record<string, { since: string; row: IommuDriverRow }>> = {
  // Linux 6.13: SMMUv3 NEST_PARENT, hw_info and vIOMMUs (viommu_smmuv3.ts).
  "smmuv3": { since: VIOMMU_MIN_KERNEL, row: SMMUV3_VIOMMU_ROW },
};

/**
 * The driver row for an IOMMU (a plain driver for unknown kinds): the 6.12 row, or a later one
 * when `kernel` is at least the version that row appeared in, or a proposal row when the IOMMU has
 * PASIDs only through a proposal.
 */
export function driverFor(facts: IommuFacts, kernel?: KernelVersion): IommuDriverRow {
  const proposal = PROPOSAL_DRIVERS[facts.kind];
  if (proposal && facts.maxPasidLog2 > 0) return proposal;
  const later = LATER_DRIVERS[facts.kind];
  if (later && kernel && kernelAtLeast(kernel, later.since)) return later.row;
  return IOMMU_DRIVERS[facts.kind] ?? PLAIN;
}

/** `hw_info` as GET_HW_INFO reports it: type NONE and no data for drivers without the op. */
export function hwInfoOf(
  facts: IommuFacts,
  kernel?: KernelVersion,
): { type: number; data: Uint8Array } {
  return driverFor(facts, kernel).hwInfo(facts) ??
    { type: IOMMU_HW_INFO_TYPE_NONE, data: new Uint8Array(0) };
}
