/**
 * The contract of an IOMMU driver's iommufd side, as data rows (Linux: the iommufd parts of
 * `struct iommu_ops` and `struct iommufd_viommu_ops`): what it accepts at HWPT allocation, its
 * `hw_info` report, its nested and invalidation formats, its vIOMMU and IOPF support. The rows
 * themselves are in ./drivers.ts and ./viommu_smmuv3.ts.
 *
 * @module
 */

import type { IommuDomain, IommuFacts, IommuModel } from "../iommu/model.ts";
import type { IopfOps } from "./iopf.ts";
import type { HwptPaging, ViommuObject } from "./objects.ts";

/** One user-format descriptor the driver reads with `iommu_copy_struct_from_user`. */
export interface UserFormat {
  /** The data/entry type value it must carry. */
  readonly type: number;
  /** offsetofend of the last mandatory field (shorter → EINVAL). */
  readonly minLen: number;
  /** sizeof the kernel struct (longer → EINVAL: no E2BIG path here). */
  readonly size: number;
}

/** One IOMMU driver's iommufd behaviour. */
export interface IommuDriverRow {
  /** Driver name for diagnostics. */
  readonly name: string;
  /** The driver has `domain_alloc_user` (flags or user data are possible at all). */
  readonly domainAllocUser: boolean;
  /** `domain_alloc_user(flags, parent = NULL, data)`: 0 or the driver's -errno. */
  pagingAlloc(facts: IommuFacts, flags: number, userData: boolean): number;
  /** Nested allocation support checks before the data is read: 0 or -errno. */
  nestedAlloc(facts: IommuFacts, flags: number, dataType: number): number;
  /** The stage-1 format a nested allocation reads (undefined: no nesting). */
  readonly nestedFormat: UserFormat | undefined;
  /** `hw_info`: the report type and bytes, or undefined (driver without the op). */
  hwInfo(facts: IommuFacts): { type: number; data: Uint8Array } | undefined;
  /** The invalidation entry format of nested domains. */
  readonly invalidateFormat: UserFormat | undefined;
  /** Validate one decoded invalidation entry: 0 or -errno. */
  checkInvalidation(entry: Uint8Array): number;
  /** vIOMMU support (Linux 6.13+ `viommu_alloc`); undefined: IOMMU_VIOMMU_ALLOC → EOPNOTSUPP. */
  readonly viommu?: ViommuDriver;
  /**
   * The IOPF device feature (`dev_enable_feat`, ./iopf.ts); undefined: the driver has no such op
   * and enabling I/O page faults fails with ENODEV.
   */
  readonly iopf?: IopfOps;
  /**
   * The driver sets a domain's geometry only at its first attach (virtio-iommu's
   * `viommu_domain_finalise`): a domain that joins an IOAS before any attach (IOMMU_HWPT_ALLOC)
   * has the aperture [0, 0], so `iopt_table_add_domain` reserves every other IOVA. Absent: the
   * geometry is set when the domain is allocated.
   */
  readonly geometryAtFirstAttach?: boolean;
}

/** What a driver contributes to vIOMMUs. */
export interface ViommuDriver {
  /** `viommu_alloc` for a device behind `iommu` over `parent`: 0 or -errno. */
  alloc(iommu: IommuModel, type: number, parent: HwptPaging): number;
  /** The user data `alloc_domain_nested` reads. */
  readonly nestedFormat: UserFormat;
  /** Whether attaching a nested HWPT with this (validated) data needs a vDEVICE (6.15+). */
  needsVdevice(data: Uint8Array): boolean;
  /** `data_type` of the vIOMMU's invalidation entries. */
  readonly invalidateType: number;
  /** Bytes of one kernel entry (user entries are zero-extended or must be zero beyond it). */
  readonly entrySize: number;
  /** One user entry as the hardware command to issue, or -errno (EIO). */
  convert(viommu: ViommuObject, entry: Uint8Array): Uint8Array | number;
  /**
   * Route the host-drained events of streams attached to `domain` (a nested domain made on
   * `viommu`) to the vIOMMU's vEVENTQ (6.15+), as the driver's `vmaster` does.
   */
  forwardEvents?(domain: IommuDomain, viommu: ViommuObject): void;
}
