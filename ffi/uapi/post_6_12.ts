/**
 * uAPI merged after Linux 6.12, used only when a kernel reports a later version: the PASID
 * variants of the VFIO cdev attach/detach and the iommufd PASID-capable HWPT flag (the iommufd
 * PASID series, Linux 6.15 — version inferred from patch dates, vfio.md §7.6 and iommufd.md §1).
 * These are not in the 6.12 headers tests/uapi/headers_test.ts checks; the layouts follow the
 * merged series: a `__u32 pasid` appended to the 6.12 structs.
 *
 * @module
 */

import { defineStruct, u32 } from "./layout.ts";

/** The first Linux version with these declarations. */
export const PASID_ATTACH_MIN_KERNEL = "6.15";

/** `VFIO_DEVICE_ATTACH_PASID`: `vfio_device_attach_iommufd_pt.flags` bit; `pasid` is valid. */
export const VFIO_DEVICE_ATTACH_PASID = 1 << 0;
/** `VFIO_DEVICE_DETACH_PASID`: `vfio_device_detach_iommufd_pt.flags` bit; `pasid` is valid. */
export const VFIO_DEVICE_DETACH_PASID = 1 << 0;
/** `IOMMU_HWPT_ALLOC_PASID`: the HWPT may be attached to PASIDs (and to the RID alongside). */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/** `struct vfio_device_attach_iommufd_pt` as of 6.15: 6.12's struct plus `pasid`. */
export const vfio_device_attach_iommufd_pt_pasid = defineStruct(
  "vfio_device_attach_iommufd_pt",
  16,
  { argsz: u32(0), flags: u32(4), pt_id: u32(8), pasid: u32(12) },
);

/** `struct vfio_device_detach_iommufd_pt` as of 6.15: 6.12's struct plus `pasid`. */
export const vfio_device_detach_iommufd_pt_pasid = defineStruct(
  "vfio_device_detach_iommufd_pt",
  12,
  { argsz: u32(0), flags: u32(4), pasid: u32(8) },
);
