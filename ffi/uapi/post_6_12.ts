/**
 * uAPI merged after Linux 6.12, used only when a kernel reports a later version: the PASID
 * variants of the VFIO cdev attach/detach and the iommufd PASID-capable HWPT flag (the iommufd
 * PASID series, Linux 6.15 — version inferred from patch dates, vfio.md §7.6 and iommufd.md §1).
 * These are not in the 6.12 headers tests/uapi/headers_test.ts checks; the layouts follow the
 * merged series: a `__u32 pasid` appended to the 6.12 structs.
 *
 * @module
 */

import { defineIoctl, type IoctlDecl, IOMMUFD_TYPE } from "./common.ts";
import {
  type ArrayField,
  defineStruct,
  type StructLayout,
  type U32,
  u32,
  type U64,
  u64,
} from "./layout.ts";

/** The first Linux version with these declarations. */
export const PASID_ATTACH_MIN_KERNEL = "6.15";

/** `VFIO_DEVICE_ATTACH_PASID`: `vfio_device_attach_iommufd_pt.flags` bit; `pasid` is valid. */
export const VFIO_DEVICE_ATTACH_PASID = 1 << 0;
/** `VFIO_DEVICE_DETACH_PASID`: `vfio_device_detach_iommufd_pt.flags` bit; `pasid` is valid. */
export const VFIO_DEVICE_DETACH_PASID = 1 << 0;
/** `IOMMU_HWPT_ALLOC_PASID`: the HWPT may be attached to PASIDs (and to the RID alongside). */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/** `struct vfio_device_attach_iommufd_pt` as of 6.15: 6.12's struct plus `pasid`. */
export const vfio_device_attach_iommufd_pt_pasid: StructLayout<
  { argsz: U32; flags: U32; pt_id: U32; pasid: U32 }
> = defineStruct(
  "vfio_device_attach_iommufd_pt",
  16,
  { argsz: u32(0), flags: u32(4), pt_id: u32(8), pasid: u32(12) },
);

/** `struct vfio_device_detach_iommufd_pt` as of 6.15: 6.12's struct plus `pasid`. */
export const vfio_device_detach_iommufd_pt_pasid: StructLayout<
  { argsz: U32; flags: U32; pasid: U32 }
> = defineStruct(
  "vfio_device_detach_iommufd_pt",
  12,
  { argsz: u32(0), flags: u32(4), pasid: u32(8) },
);

// ---- iommufd vIOMMU objects and SMMUv3 nesting (Linux 6.13) ----
//
// Merged for 6.13: the vIOMMU/vDEVICE series and the SMMUv3 nesting series went to Linus in the
// iommufd pull of 2024-11-21 (the 6.13 merge window; 6.12 was released 2024-11-17), e.g.
// "iommufd/viommu: Add IOMMUFD_OBJ_VDEVICE and IOMMU_VDEVICE_ALLOC ioctl" and "iommu/arm-smmu-v3:
// Support IOMMU_HWPT_INVALIDATE using a VIOMMU object", both committed 2024-11-12.
// `iommu_viommu_alloc` gained `data_len`/`data_uptr` and a vDEVICE became one per device (destroyed
// with its device) in patches of July 2025, i.e. Linux 6.17.

/** The first Linux version with vIOMMU/vDEVICE objects and SMMUv3 nesting. */
export const VIOMMU_MIN_KERNEL = "6.13";
/** The first Linux version whose `iommu_viommu_alloc` has the `data_len`/`data_uptr` tail. */
export const VIOMMU_USER_DATA_MIN_KERNEL = "6.17";
/** The first Linux version that attaches an SMMUv3 translating nested domain only with a vDEVICE. */
export const VIOMMU_VMASTER_MIN_KERNEL = "6.15";
/** The first Linux version with one vDEVICE per device, destroyed when the device is unbound. */
export const VDEVICE_PER_DEVICE_MIN_KERNEL = "6.17";

/** `IOMMU_VIOMMU_ALLOC` (nr 0x90): a vIOMMU over a nest-parent HWPT. */
export const IOMMU_VIOMMU_ALLOC: IoctlDecl = defineIoctl("IOMMU_VIOMMU_ALLOC", IOMMUFD_TYPE, 0x90);
/** `IOMMU_VDEVICE_ALLOC` (nr 0x91): a device's virtual id (vSID, vRID) on a vIOMMU. */
export const IOMMU_VDEVICE_ALLOC: IoctlDecl = defineIoctl(
  "IOMMU_VDEVICE_ALLOC",
  IOMMUFD_TYPE,
  0x91,
);

/** `enum iommu_viommu_type`: DEFAULT (refused by IOMMU_VIOMMU_ALLOC). */
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
/** `enum iommu_viommu_type`: ARM_SMMUV3. */
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
/** `enum iommu_hwpt_data_type`: ARM_SMMUV3 (`iommu_hwpt_arm_smmuv3`, nested on a vIOMMU). */
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
/** `enum iommu_hw_info_type`: ARM_SMMUV3 (`iommu_hw_info_arm_smmuv3`). */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** `enum iommu_hwpt_invalidate_data_type`: ARM_SMMUV3 commands through a vIOMMU. */
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;

/** `struct iommu_viommu_alloc` as of 6.13 (24 bytes; min size = the whole struct). */
export const iommu_viommu_alloc: StructLayout<
  { size: U32; flags: U32; type: U32; dev_id: U32; hwpt_id: U32; out_viommu_id: U32 }
> = defineStruct("iommu_viommu_alloc", 24, {
  size: u32(0),
  flags: u32(4),
  type: u32(8),
  dev_id: u32(12),
  hwpt_id: u32(16),
  out_viommu_id: u32(20),
});

/** `struct iommu_viommu_alloc` as of 6.17: the 6.13 struct plus driver data (40 bytes). */
export const iommu_viommu_alloc_data: StructLayout<
  {
    size: U32;
    flags: U32;
    type: U32;
    dev_id: U32;
    hwpt_id: U32;
    out_viommu_id: U32;
    data_len: U32;
    __reserved: U32;
    data_uptr: U64;
  }
> = defineStruct("iommu_viommu_alloc", 40, {
  size: u32(0),
  flags: u32(4),
  type: u32(8),
  dev_id: u32(12),
  hwpt_id: u32(16),
  out_viommu_id: u32(20),
  data_len: u32(24),
  __reserved: u32(28),
  data_uptr: u64(32),
});

/** `struct iommu_vdevice_alloc` (24 bytes; min size = the whole struct). */
export const iommu_vdevice_alloc: StructLayout<
  { size: U32; viommu_id: U32; dev_id: U32; out_vdevice_id: U32; virt_id: U64 }
> = defineStruct("iommu_vdevice_alloc", 24, {
  size: u32(0),
  viommu_id: u32(4),
  dev_id: u32(8),
  out_vdevice_id: u32(12),
  virt_id: u64(16),
});

/** `struct iommu_hwpt_arm_smmuv3`: the guest's STE words 0 and 1 (little-endian). */
export const iommu_hwpt_arm_smmuv3: StructLayout<{ ste: ArrayField<"u64"> }> = defineStruct(
  "iommu_hwpt_arm_smmuv3",
  16,
  {
    ste: u64(0, 2),
  },
);

/** `struct iommu_hw_info_arm_smmuv3`: the SMMU's raw IDR0–5, IIDR and AIDR. */
export const iommu_hw_info_arm_smmuv3: StructLayout<
  { flags: U32; __reserved: U32; idr: ArrayField<"u32">; iidr: U32; aidr: U32 }
> = defineStruct("iommu_hw_info_arm_smmuv3", 40, {
  flags: u32(0),
  __reserved: u32(4),
  idr: u32(8, 6),
  iidr: u32(32),
  aidr: u32(36),
});

/** `struct iommu_viommu_arm_smmuv3_invalidate`: one 128-bit CMDQ command (little-endian). */
export const iommu_viommu_arm_smmuv3_invalidate: StructLayout<{ cmd: ArrayField<"u64"> }> =
  defineStruct(
    "iommu_viommu_arm_smmuv3_invalidate",
    16,
    { cmd: u64(0, 2) },
  );

// ---- vIOMMU event queues (Linux 6.15) ----
//
// "iommufd: Add IOMMUFD_OBJ_VEVENTQ and IOMMUFD_CMD_VEVENTQ_ALLOC" and "iommu/arm-smmu-v3: Report
// events that belong to devices attached to vIOMMU" were posted in Feb/Mar 2025 (v8 of the series)
// and are taken here as Linux 6.15 — inferred from patch dates, not checked against a tag.

/** The first Linux version with IOMMU_VEVENTQ_ALLOC and SMMUv3 event forwarding. */
export const VEVENTQ_MIN_KERNEL = "6.15";

/** `IOMMU_VEVENTQ_ALLOC` (nr 0x93): an event queue (and its fd) on a vIOMMU. */
export const IOMMU_VEVENTQ_ALLOC: IoctlDecl = defineIoctl(
  "IOMMU_VEVENTQ_ALLOC",
  IOMMUFD_TYPE,
  0x93,
);

/** `enum iommu_veventq_type`: DEFAULT (refused by IOMMU_VEVENTQ_ALLOC). */
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
/** `enum iommu_veventq_type`: ARM_SMMUV3 (records carry `iommu_vevent_arm_smmuv3`). */
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;

/** `enum iommu_veventq_flag`: LOST_EVENTS — events were dropped before this header (no data). */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;

/** `struct iommu_veventq_alloc` (32 bytes; min size = the whole struct). */
export const iommu_veventq_alloc: StructLayout<
  {
    size: U32;
    flags: U32;
    viommu_id: U32;
    type: U32;
    veventq_depth: U32;
    out_veventq_id: U32;
    out_veventq_fd: U32;
    __reserved: U32;
  }
> = defineStruct("iommu_veventq_alloc", 32, {
  size: u32(0),
  flags: u32(4),
  viommu_id: u32(8),
  type: u32(12),
  veventq_depth: u32(16),
  out_veventq_id: u32(20),
  out_veventq_fd: u32(24),
  __reserved: u32(28),
});

/**
 * `struct iommufd_vevent_header`: precedes every record read from a vEVENTQ fd. `sequence` runs
 * 0..INT_MAX and wraps to 0; a header with LOST_EVENTS stands alone (no event data follows).
 */
export const iommufd_vevent_header: StructLayout<{ flags: U32; sequence: U32 }> = defineStruct(
  "iommufd_vevent_header",
  8,
  {
    flags: u32(0),
    sequence: u32(4),
  },
);

/** `struct iommu_vevent_arm_smmuv3`: one raw 32-byte SMMUv3 event, StreamID replaced by the vSID. */
export const iommu_vevent_arm_smmuv3: StructLayout<{ evt: ArrayField<"u64"> }> = defineStruct(
  "iommu_vevent_arm_smmuv3",
  32,
  {
    evt: u64(0, 4),
  },
);
