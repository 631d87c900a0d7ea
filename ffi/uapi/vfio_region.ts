/**
 * VFIO device regions of Linux 6.12 (include/uapi/linux/vfio.h): GET_REGION_INFO, the region
 * flags and vfio-pci's region indexes, the capability-chain header every VFIO info struct uses, and
 * the region capabilities (sparse mmap, type, MSI-X mappable). Re-exported by ./vfio.ts.
 *
 * @module
 */

import type { IoctlDecl } from "./common.ts";
import {
  defineStruct,
  nested,
  type NestedField,
  type StructLayout,
  type U16,
  u16,
  type U32,
  u32,
  type U64,
  u64,
} from "./layout.ts";
import { vfioIoctl } from "./vfio_ioctl.ts";

/** VFIO_DEVICE_GET_REGION_INFO. */
export const VFIO_DEVICE_GET_REGION_INFO: IoctlDecl = vfioIoctl("VFIO_DEVICE_GET_REGION_INFO", 8);

/** Region flags. */
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;

/** Region writable. */
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;

/** Region mmap-able. */
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;

/** Region info has capabilities. */
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;

/** vfio-pci region indexes. */
export const VFIO_PCI_BAR0_REGION_INDEX = 0;

/** Last BAR. */
export const VFIO_PCI_BAR5_REGION_INDEX = 5;

/** Expansion ROM. */
export const VFIO_PCI_ROM_REGION_INDEX = 6;

/** Config space. */
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;

/** Legacy VGA. */
export const VFIO_PCI_VGA_REGION_INDEX = 8;

/** Fixed regions. */
export const VFIO_PCI_NUM_REGIONS = 9;

/** struct vfio_info_cap_header. */
export const vfio_info_cap_header: StructLayout<{ id: U16; version: U16; next: U32 }> =
  defineStruct("vfio_info_cap_header", 8, {
    id: u16(0),
    version: u16(2),
    next: u32(4),
  });

/** struct vfio_region_info. */
export const vfio_region_info: StructLayout<
  { argsz: U32; flags: U32; index: U32; cap_offset: U32; size: U64; offset: U64 }
> = defineStruct("vfio_region_info", 32, {
  argsz: u32(0),
  flags: u32(4),
  index: u32(8),
  cap_offset: u32(12),
  size: u64(16),
  offset: u64(24),
});

/** `VFIO_REGION_INFO_CAP_SPARSE_MMAP`. */
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;

/** `VFIO_REGION_INFO_CAP_TYPE`. */
export const VFIO_REGION_INFO_CAP_TYPE = 2;

/** `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`. */
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;

/** `struct vfio_region_sparse_mmap_area`. */
export const vfio_region_sparse_mmap_area: StructLayout<{ offset: U64; size: U64 }> = defineStruct(
  "vfio_region_sparse_mmap_area",
  16,
  {
    offset: u64(0),
    size: u64(8),
  },
);

/** `struct vfio_region_info_cap_sparse_mmap` (fixed part; areas follow at 16). */
export const vfio_region_info_cap_sparse_mmap: StructLayout<
  { header: NestedField<typeof vfio_info_cap_header>; nr_areas: U32; reserved: U32 }
> = defineStruct(
  "vfio_region_info_cap_sparse_mmap",
  16,
  { header: nested(0, vfio_info_cap_header), nr_areas: u32(8), reserved: u32(12) },
);

/** `struct vfio_region_info_cap_type`. */
export const vfio_region_info_cap_type: StructLayout<
  { header: NestedField<typeof vfio_info_cap_header>; type: U32; subtype: U32 }
> = defineStruct("vfio_region_info_cap_type", 16, {
  header: nested(0, vfio_info_cap_header),
  type: u32(8),
  subtype: u32(12),
});
