/**
 * The uAPI declarations the conformance scenarios use, gathered in one place.
 *
 * TEMPORARY: until ffi/uapi/mod.ts lands these are declared here with the same C names; then this
 * file becomes a plain re-export of ffi/uapi/mod.ts (the scenarios import only from here).
 *
 * @module
 */

import { defineIoctl, IOMMUFD_TYPE, VFIO_BASE, VFIO_TYPE } from "../../ffi/uapi/common.ts";
import { defineStruct, nested, s32, u16, u32, u64, u8 } from "../../ffi/uapi/layout.ts";

/** `VFIO_API_VERSION`. */
export const VFIO_API_VERSION = 0;

/** VFIO_GET_API_VERSION. */
export const VFIO_GET_API_VERSION = defineIoctl("VFIO_GET_API_VERSION", VFIO_TYPE, VFIO_BASE + 0);
/** VFIO_CHECK_EXTENSION. */
export const VFIO_CHECK_EXTENSION = defineIoctl("VFIO_CHECK_EXTENSION", VFIO_TYPE, VFIO_BASE + 1);
/** VFIO_SET_IOMMU. */
export const VFIO_SET_IOMMU = defineIoctl("VFIO_SET_IOMMU", VFIO_TYPE, VFIO_BASE + 2);
/** VFIO_GROUP_GET_STATUS. */
export const VFIO_GROUP_GET_STATUS = defineIoctl("VFIO_GROUP_GET_STATUS", VFIO_TYPE, VFIO_BASE + 3);
/** VFIO_GROUP_SET_CONTAINER. */
export const VFIO_GROUP_SET_CONTAINER = defineIoctl(
  "VFIO_GROUP_SET_CONTAINER",
  VFIO_TYPE,
  VFIO_BASE + 4,
);
/** VFIO_GROUP_UNSET_CONTAINER. */
export const VFIO_GROUP_UNSET_CONTAINER = defineIoctl(
  "VFIO_GROUP_UNSET_CONTAINER",
  VFIO_TYPE,
  VFIO_BASE + 5,
);
/** VFIO_GROUP_GET_DEVICE_FD. */
export const VFIO_GROUP_GET_DEVICE_FD = defineIoctl(
  "VFIO_GROUP_GET_DEVICE_FD",
  VFIO_TYPE,
  VFIO_BASE + 6,
);
/** VFIO_DEVICE_GET_INFO. */
export const VFIO_DEVICE_GET_INFO = defineIoctl("VFIO_DEVICE_GET_INFO", VFIO_TYPE, VFIO_BASE + 7);
/** VFIO_IOMMU_GET_INFO. */
export const VFIO_IOMMU_GET_INFO = defineIoctl("VFIO_IOMMU_GET_INFO", VFIO_TYPE, VFIO_BASE + 12);
/** VFIO_IOMMU_MAP_DMA. */
export const VFIO_IOMMU_MAP_DMA = defineIoctl("VFIO_IOMMU_MAP_DMA", VFIO_TYPE, VFIO_BASE + 13);
/** VFIO_IOMMU_UNMAP_DMA. */
export const VFIO_IOMMU_UNMAP_DMA = defineIoctl("VFIO_IOMMU_UNMAP_DMA", VFIO_TYPE, VFIO_BASE + 14);
/** VFIO_IOMMU_DIRTY_PAGES. */
export const VFIO_IOMMU_DIRTY_PAGES = defineIoctl(
  "VFIO_IOMMU_DIRTY_PAGES",
  VFIO_TYPE,
  VFIO_BASE + 17,
);
/** VFIO_DEVICE_BIND_IOMMUFD. */
export const VFIO_DEVICE_BIND_IOMMUFD = defineIoctl(
  "VFIO_DEVICE_BIND_IOMMUFD",
  VFIO_TYPE,
  VFIO_BASE + 18,
);
/** VFIO_DEVICE_ATTACH_IOMMUFD_PT. */
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = defineIoctl(
  "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
  VFIO_TYPE,
  VFIO_BASE + 19,
);
/** VFIO_DEVICE_DETACH_IOMMUFD_PT. */
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = defineIoctl(
  "VFIO_DEVICE_DETACH_IOMMUFD_PT",
  VFIO_TYPE,
  VFIO_BASE + 20,
);

/** IOMMU_DESTROY. */
export const IOMMU_DESTROY = defineIoctl("IOMMU_DESTROY", IOMMUFD_TYPE, 0x80);
/** IOMMU_IOAS_ALLOC. */
export const IOMMU_IOAS_ALLOC = defineIoctl("IOMMU_IOAS_ALLOC", IOMMUFD_TYPE, 0x81);
/** IOMMU_IOAS_ALLOW_IOVAS. */
export const IOMMU_IOAS_ALLOW_IOVAS = defineIoctl("IOMMU_IOAS_ALLOW_IOVAS", IOMMUFD_TYPE, 0x82);
/** IOMMU_IOAS_IOVA_RANGES. */
export const IOMMU_IOAS_IOVA_RANGES = defineIoctl("IOMMU_IOAS_IOVA_RANGES", IOMMUFD_TYPE, 0x84);
/** IOMMU_IOAS_MAP. */
export const IOMMU_IOAS_MAP = defineIoctl("IOMMU_IOAS_MAP", IOMMUFD_TYPE, 0x85);
/** IOMMU_IOAS_UNMAP. */
export const IOMMU_IOAS_UNMAP = defineIoctl("IOMMU_IOAS_UNMAP", IOMMUFD_TYPE, 0x86);
/** IOMMU_VFIO_IOAS. */
export const IOMMU_VFIO_IOAS = defineIoctl("IOMMU_VFIO_IOAS", IOMMUFD_TYPE, 0x88);
/** IOMMU_GET_HW_INFO. */
export const IOMMU_GET_HW_INFO = defineIoctl("IOMMU_GET_HW_INFO", IOMMUFD_TYPE, 0x8a);
/** IOMMU_FAULT_QUEUE_ALLOC. */
export const IOMMU_FAULT_QUEUE_ALLOC = defineIoctl("IOMMU_FAULT_QUEUE_ALLOC", IOMMUFD_TYPE, 0x8e);

/** Extension / IOMMU type ids. */
export const VFIO_TYPE1_IOMMU = 1;
/** VFIO_SPAPR_TCE_IOMMU. */
export const VFIO_SPAPR_TCE_IOMMU = 2;
/** VFIO_TYPE1v2_IOMMU. */
export const VFIO_TYPE1v2_IOMMU = 3;
/** VFIO_DMA_CC_IOMMU. */
export const VFIO_DMA_CC_IOMMU = 4;
/** VFIO_EEH. */
export const VFIO_EEH = 5;
/** VFIO_TYPE1_NESTING_IOMMU. */
export const VFIO_TYPE1_NESTING_IOMMU = 6;
/** VFIO_SPAPR_TCE_v2_IOMMU. */
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
/** VFIO_NOIOMMU_IOMMU. */
export const VFIO_NOIOMMU_IOMMU = 8;
/** VFIO_UNMAP_ALL. */
export const VFIO_UNMAP_ALL = 9;
/** VFIO_UPDATE_VADDR. */
export const VFIO_UPDATE_VADDR = 10;

/** vfio_group_status flags. */
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
/** VFIO_GROUP_FLAGS_CONTAINER_SET. */
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;
/** vfio_iommu_type1_info flags. */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
/** VFIO_IOMMU_INFO_CAPS. */
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
/** type1 info capability ids. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
/** VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
/** VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL. */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
/** MAP_DMA flags. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** VFIO_DMA_MAP_FLAG_WRITE. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
/** VFIO_DMA_MAP_FLAG_VADDR. */
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;
/** UNMAP_DMA flags. */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
/** VFIO_DMA_UNMAP_FLAG_ALL. */
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
/** VFIO_DMA_UNMAP_FLAG_VADDR. */
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;
/** DIRTY_PAGES flags. */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0;
/** VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP. */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1;
/** IOAS_MAP flags. */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
/** IOMMU_IOAS_MAP_WRITEABLE. */
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
/** IOMMU_IOAS_MAP_READABLE. */
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;
/** IOMMU_VFIO_IOAS ops. */
export const IOMMU_VFIO_IOAS_GET = 0;

/** struct vfio_info_cap_header. */
export const vfio_info_cap_header = defineStruct("vfio_info_cap_header", 8, {
  id: u16(0),
  version: u16(2),
  next: u32(4),
});
/** struct vfio_group_status. */
export const vfio_group_status = defineStruct("vfio_group_status", 8, {
  argsz: u32(0),
  flags: u32(4),
});
/** struct vfio_iommu_type1_info. */
export const vfio_iommu_type1_info = defineStruct("vfio_iommu_type1_info", 24, {
  argsz: u32(0),
  flags: u32(4),
  iova_pgsizes: u64(8),
  cap_offset: u32(16),
  pad: u32(20),
});
/** struct vfio_iova_range. */
export const vfio_iova_range = defineStruct("vfio_iova_range", 16, { start: u64(0), end: u64(8) });
/** struct vfio_iommu_type1_info_cap_iova_range (fixed part). */
export const vfio_iommu_type1_info_cap_iova_range = defineStruct(
  "vfio_iommu_type1_info_cap_iova_range",
  16,
  { header: nested(0, vfio_info_cap_header), nr_iovas: u32(8), reserved: u32(12) },
);
/** struct vfio_iommu_type1_info_cap_migration. */
export const vfio_iommu_type1_info_cap_migration = defineStruct(
  "vfio_iommu_type1_info_cap_migration",
  32,
  {
    header: nested(0, vfio_info_cap_header),
    flags: u32(8),
    pgsize_bitmap: u64(16),
    max_dirty_bitmap_size: u64(24),
  },
);
/** struct vfio_iommu_type1_info_dma_avail. */
export const vfio_iommu_type1_info_dma_avail = defineStruct(
  "vfio_iommu_type1_info_dma_avail",
  12,
  { header: nested(0, vfio_info_cap_header), avail: u32(8) },
);
/** struct vfio_iommu_type1_dma_map. */
export const vfio_iommu_type1_dma_map = defineStruct("vfio_iommu_type1_dma_map", 32, {
  argsz: u32(0),
  flags: u32(4),
  vaddr: u64(8),
  iova: u64(16),
  size: u64(24),
});
/** struct vfio_iommu_type1_dma_unmap. */
export const vfio_iommu_type1_dma_unmap = defineStruct("vfio_iommu_type1_dma_unmap", 24, {
  argsz: u32(0),
  flags: u32(4),
  iova: u64(8),
  size: u64(16),
});
/** struct vfio_iommu_type1_dirty_bitmap. */
export const vfio_iommu_type1_dirty_bitmap = defineStruct("vfio_iommu_type1_dirty_bitmap", 8, {
  argsz: u32(0),
  flags: u32(4),
});
/** struct vfio_device_info. */
export const vfio_device_info = defineStruct("vfio_device_info", 24, {
  argsz: u32(0),
  flags: u32(4),
  num_regions: u32(8),
  num_irqs: u32(12),
  cap_offset: u32(16),
  pad: u32(20),
});
/** struct vfio_device_bind_iommufd. */
export const vfio_device_bind_iommufd = defineStruct("vfio_device_bind_iommufd", 16, {
  argsz: u32(0),
  flags: u32(4),
  iommufd: s32(8),
  out_devid: u32(12),
});
/** struct vfio_device_attach_iommufd_pt. */
export const vfio_device_attach_iommufd_pt = defineStruct("vfio_device_attach_iommufd_pt", 12, {
  argsz: u32(0),
  flags: u32(4),
  pt_id: u32(8),
});
/** struct vfio_device_detach_iommufd_pt. */
export const vfio_device_detach_iommufd_pt = defineStruct("vfio_device_detach_iommufd_pt", 8, {
  argsz: u32(0),
  flags: u32(4),
});

/** struct iommu_destroy. */
export const iommu_destroy = defineStruct("iommu_destroy", 8, { size: u32(0), id: u32(4) });
/** struct iommu_ioas_alloc. */
export const iommu_ioas_alloc = defineStruct("iommu_ioas_alloc", 12, {
  size: u32(0),
  flags: u32(4),
  out_ioas_id: u32(8),
});
/** struct iommu_iova_range. */
export const iommu_iova_range = defineStruct("iommu_iova_range", 16, {
  start: u64(0),
  last: u64(8),
});
/** struct iommu_ioas_iova_ranges. */
export const iommu_ioas_iova_ranges = defineStruct("iommu_ioas_iova_ranges", 32, {
  size: u32(0),
  ioas_id: u32(4),
  num_iovas: u32(8),
  __reserved: u32(12),
  allowed_iovas: u64(16),
  out_iova_alignment: u64(24),
});
/** struct iommu_ioas_allow_iovas. */
export const iommu_ioas_allow_iovas = defineStruct("iommu_ioas_allow_iovas", 24, {
  size: u32(0),
  ioas_id: u32(4),
  num_iovas: u32(8),
  __reserved: u32(12),
  allowed_iovas: u64(16),
});
/** struct iommu_ioas_map. */
export const iommu_ioas_map = defineStruct("iommu_ioas_map", 40, {
  size: u32(0),
  flags: u32(4),
  ioas_id: u32(8),
  __reserved: u32(12),
  user_va: u64(16),
  length: u64(24),
  iova: u64(32),
});
/** struct iommu_ioas_unmap. */
export const iommu_ioas_unmap = defineStruct("iommu_ioas_unmap", 24, {
  size: u32(0),
  ioas_id: u32(4),
  iova: u64(8),
  length: u64(16),
});
/** struct iommu_vfio_ioas. */
export const iommu_vfio_ioas = defineStruct("iommu_vfio_ioas", 12, {
  size: u32(0),
  ioas_id: u32(4),
  op: u16(8),
  __reserved: u16(10),
});
/** struct iommu_hw_info (6.12.32+ layout). */
export const iommu_hw_info = defineStruct("iommu_hw_info", 40, {
  size: u32(0),
  flags: u32(4),
  dev_id: u32(8),
  data_len: u32(12),
  data_uptr: u64(16),
  out_data_type: u32(24),
  out_max_pasid_log2: u8(28),
  __reserved: u8(29, 3),
  out_capabilities: u64(32),
});
/** struct iommu_hw_info_vtd. */
export const iommu_hw_info_vtd = defineStruct("iommu_hw_info_vtd", 24, {
  flags: u32(0),
  __reserved: u32(4),
  cap_reg: u64(8),
  ecap_reg: u64(16),
});
/** struct iommu_fault_alloc. */
export const iommu_fault_alloc = defineStruct("iommu_fault_alloc", 16, {
  size: u32(0),
  flags: u32(4),
  out_fault_id: u32(8),
  out_fault_fd: u32(12),
});
