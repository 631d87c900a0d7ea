/**
 * The iommufd and VFIO-container uAPI names the simulated iommufd uses, in one place.
 *
 * TEMPORARY: until `ffi/uapi/mod.ts` lands, this module declares the layouts, ioctls and flags
 * sim/iommufd/ needs under their exact C names (iommufd.md §3–§5, vfio.md §3, §10). Once the shared
 * uAPI modules exist this file becomes a re-export of them, so the rest of sim/iommufd/ never
 * changes.
 *
 * @module
 */

import {
  defineIoctl,
  type IoctlDecl,
  IOMMUFD_TYPE,
  VFIO_BASE,
  VFIO_TYPE,
} from "../../ffi/uapi/common.ts";
import { defineStruct, nested, s32, u16, u32, u64, u8 } from "../../ffi/uapi/layout.ts";

function iommufdIoctl(name: string, nr: number): IoctlDecl {
  return defineIoctl(name, IOMMUFD_TYPE, nr);
}
function vfioIoctl(name: string, n: number): IoctlDecl {
  return defineIoctl(name, VFIO_TYPE, VFIO_BASE + n);
}

// ---- iommufd ioctls (6.12: nr 0x80–0x8e) ----

/** IOMMU_DESTROY. */
export const IOMMU_DESTROY: IoctlDecl = iommufdIoctl("IOMMU_DESTROY", 0x80);
/** IOMMU_IOAS_ALLOC. */
export const IOMMU_IOAS_ALLOC: IoctlDecl = iommufdIoctl("IOMMU_IOAS_ALLOC", 0x81);
/** IOMMU_IOAS_ALLOW_IOVAS. */
export const IOMMU_IOAS_ALLOW_IOVAS: IoctlDecl = iommufdIoctl("IOMMU_IOAS_ALLOW_IOVAS", 0x82);
/** IOMMU_IOAS_COPY. */
export const IOMMU_IOAS_COPY: IoctlDecl = iommufdIoctl("IOMMU_IOAS_COPY", 0x83);
/** IOMMU_IOAS_IOVA_RANGES. */
export const IOMMU_IOAS_IOVA_RANGES: IoctlDecl = iommufdIoctl("IOMMU_IOAS_IOVA_RANGES", 0x84);
/** IOMMU_IOAS_MAP. */
export const IOMMU_IOAS_MAP: IoctlDecl = iommufdIoctl("IOMMU_IOAS_MAP", 0x85);
/** IOMMU_IOAS_UNMAP. */
export const IOMMU_IOAS_UNMAP: IoctlDecl = iommufdIoctl("IOMMU_IOAS_UNMAP", 0x86);
/** IOMMU_OPTION. */
export const IOMMU_OPTION: IoctlDecl = iommufdIoctl("IOMMU_OPTION", 0x87);
/** IOMMU_VFIO_IOAS. */
export const IOMMU_VFIO_IOAS: IoctlDecl = iommufdIoctl("IOMMU_VFIO_IOAS", 0x88);
/** IOMMU_HWPT_ALLOC. */
export const IOMMU_HWPT_ALLOC: IoctlDecl = iommufdIoctl("IOMMU_HWPT_ALLOC", 0x89);
/** IOMMU_GET_HW_INFO. */
export const IOMMU_GET_HW_INFO: IoctlDecl = iommufdIoctl("IOMMU_GET_HW_INFO", 0x8a);
/** IOMMU_HWPT_SET_DIRTY_TRACKING. */
export const IOMMU_HWPT_SET_DIRTY_TRACKING: IoctlDecl = iommufdIoctl(
  "IOMMU_HWPT_SET_DIRTY_TRACKING",
  0x8b,
);
/** IOMMU_HWPT_GET_DIRTY_BITMAP. */
export const IOMMU_HWPT_GET_DIRTY_BITMAP: IoctlDecl = iommufdIoctl(
  "IOMMU_HWPT_GET_DIRTY_BITMAP",
  0x8c,
);
/** IOMMU_HWPT_INVALIDATE. */
export const IOMMU_HWPT_INVALIDATE: IoctlDecl = iommufdIoctl("IOMMU_HWPT_INVALIDATE", 0x8d);
/** IOMMU_FAULT_QUEUE_ALLOC. */
export const IOMMU_FAULT_QUEUE_ALLOC: IoctlDecl = iommufdIoctl("IOMMU_FAULT_QUEUE_ALLOC", 0x8e);

// ---- iommufd structs (6.12) ----

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
/** struct iommu_ioas_copy. */
export const iommu_ioas_copy = defineStruct("iommu_ioas_copy", 40, {
  size: u32(0),
  flags: u32(4),
  dst_ioas_id: u32(8),
  src_ioas_id: u32(12),
  length: u64(16),
  dst_iova: u64(24),
  src_iova: u64(32),
});
/** struct iommu_ioas_unmap. */
export const iommu_ioas_unmap = defineStruct("iommu_ioas_unmap", 24, {
  size: u32(0),
  ioas_id: u32(4),
  iova: u64(8),
  length: u64(16),
});
/** struct iommu_option. */
export const iommu_option = defineStruct("iommu_option", 24, {
  size: u32(0),
  option_id: u32(4),
  op: u16(8),
  __reserved: u16(10),
  object_id: u32(12),
  val64: u64(16),
});
/** struct iommu_vfio_ioas. */
export const iommu_vfio_ioas = defineStruct("iommu_vfio_ioas", 12, {
  size: u32(0),
  ioas_id: u32(4),
  op: u16(8),
  __reserved: u16(10),
});
/** struct iommu_hwpt_alloc. */
export const iommu_hwpt_alloc = defineStruct("iommu_hwpt_alloc", 48, {
  size: u32(0),
  flags: u32(4),
  dev_id: u32(8),
  pt_id: u32(12),
  out_hwpt_id: u32(16),
  __reserved: u32(20),
  data_type: u32(24),
  data_len: u32(28),
  data_uptr: u64(32),
  fault_id: u32(40),
  __reserved2: u32(44),
});
/** struct iommu_hwpt_vtd_s1. */
export const iommu_hwpt_vtd_s1 = defineStruct("iommu_hwpt_vtd_s1", 24, {
  flags: u64(0),
  pgtbl_addr: u64(8),
  addr_width: u32(16),
  __reserved: u32(20),
});
/** struct iommu_hw_info (6.12.32+: byte 28 is out_max_pasid_log2). */
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
/** struct iommu_hwpt_set_dirty_tracking. */
export const iommu_hwpt_set_dirty_tracking = defineStruct("iommu_hwpt_set_dirty_tracking", 16, {
  size: u32(0),
  flags: u32(4),
  hwpt_id: u32(8),
  __reserved: u32(12),
});
/** struct iommu_hwpt_get_dirty_bitmap. */
export const iommu_hwpt_get_dirty_bitmap = defineStruct("iommu_hwpt_get_dirty_bitmap", 48, {
  size: u32(0),
  hwpt_id: u32(4),
  flags: u32(8),
  __reserved: u32(12),
  iova: u64(16),
  length: u64(24),
  page_size: u64(32),
  data: u64(40),
});
/** struct iommu_hwpt_invalidate. */
export const iommu_hwpt_invalidate = defineStruct("iommu_hwpt_invalidate", 32, {
  size: u32(0),
  hwpt_id: u32(4),
  data_uptr: u64(8),
  data_type: u32(16),
  entry_len: u32(20),
  entry_num: u32(24),
  __reserved: u32(28),
});
/** struct iommu_hwpt_vtd_s1_invalidate. */
export const iommu_hwpt_vtd_s1_invalidate = defineStruct("iommu_hwpt_vtd_s1_invalidate", 24, {
  addr: u64(0),
  npages: u64(8),
  flags: u32(16),
  __reserved: u32(20),
});
/** struct iommu_hwpt_pgfault (read from a fault fd). */
export const iommu_hwpt_pgfault = defineStruct("iommu_hwpt_pgfault", 40, {
  flags: u32(0),
  dev_id: u32(4),
  pasid: u32(8),
  grpid: u32(12),
  perm: u32(16),
  __reserved: u32(20),
  addr: u64(24),
  length: u32(32),
  cookie: u32(36),
});
/** struct iommu_hwpt_page_response (written to a fault fd). */
export const iommu_hwpt_page_response = defineStruct("iommu_hwpt_page_response", 8, {
  cookie: u32(0),
  code: u32(4),
});
/** struct iommu_fault_alloc. */
export const iommu_fault_alloc = defineStruct("iommu_fault_alloc", 16, {
  size: u32(0),
  flags: u32(4),
  out_fault_id: u32(8),
  out_fault_fd: s32(12),
});

/** `min_size` of each 6.12 iommufd command (`offsetofend` of its last 6.2-era field), by ioctl name. */
export const IOMMUFD_MIN_SIZE: Readonly<Record<string, number>> = {
  IOMMU_DESTROY: 8,
  IOMMU_IOAS_ALLOC: 12,
  IOMMU_IOAS_ALLOW_IOVAS: 24,
  IOMMU_IOAS_COPY: 40,
  IOMMU_IOAS_IOVA_RANGES: 32,
  IOMMU_IOAS_MAP: 40,
  IOMMU_IOAS_UNMAP: 24,
  IOMMU_OPTION: 24,
  IOMMU_VFIO_IOAS: 12,
  IOMMU_HWPT_ALLOC: 24,
  IOMMU_GET_HW_INFO: 32,
  IOMMU_HWPT_SET_DIRTY_TRACKING: 16,
  IOMMU_HWPT_GET_DIRTY_BITMAP: 48,
  IOMMU_HWPT_INVALIDATE: 32,
  IOMMU_FAULT_QUEUE_ALLOC: 16,
};

// ---- iommufd flags and enums ----

/** iommufd_ioas_map_flags. */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
/** iommufd_ioas_map_flags. */
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
/** iommufd_ioas_map_flags. */
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;
/** iommufd_option. */
export const IOMMU_OPTION_RLIMIT_MODE = 0;
/** iommufd_option. */
export const IOMMU_OPTION_HUGE_PAGES = 1;
/** iommufd_option_ops. */
export const IOMMU_OPTION_OP_SET = 0;
/** iommufd_option_ops. */
export const IOMMU_OPTION_OP_GET = 1;
/** iommufd_vfio_ioas_op. */
export const IOMMU_VFIO_IOAS_GET = 0;
/** iommufd_vfio_ioas_op. */
export const IOMMU_VFIO_IOAS_SET = 1;
/** iommufd_vfio_ioas_op. */
export const IOMMU_VFIO_IOAS_CLEAR = 2;
/** iommufd_hwpt_alloc_flags. */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** iommufd_hwpt_alloc_flags. */
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
/** iommufd_hwpt_alloc_flags. */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
/** iommu_hwpt_data_type. */
export const IOMMU_HWPT_DATA_NONE = 0;
/** iommu_hwpt_data_type. */
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
/** iommu_hwpt_vtd_s1_flags. */
export const IOMMU_VTD_S1_SRE = 1 << 0;
/** iommu_hwpt_vtd_s1_flags. */
export const IOMMU_VTD_S1_EAFE = 1 << 1;
/** iommu_hwpt_vtd_s1_flags. */
export const IOMMU_VTD_S1_WPE = 1 << 2;
/** iommu_hw_info_type. */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
/** iommu_hw_info_type. */
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
/** iommu_hw_info_vtd_flags. */
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;
/** iommufd_hw_capabilities. */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1n << 0n;
/** iommufd_hw_capabilities (6.12.32+). */
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1n << 1n;
/** iommufd_hw_capabilities (6.12.32+). */
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1n << 2n;
/** iommufd_hwpt_set_dirty_tracking_flags. */
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
/** iommufd_hwpt_get_dirty_bitmap_flags. */
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;
/** iommu_hwpt_invalidate_data_type. */
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
/** iommu_hwpt_vtd_s1_invalidate_flags. */
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;
/** iommu_hwpt_pgfault_flags. */
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
/** iommu_hwpt_pgfault_flags. */
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
/** iommufd_page_response_code. */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
/** iommufd_page_response_code. */
export const IOMMUFD_PAGE_RESP_INVALID = 1;

// ---- VFIO container ioctls served by the compat layer ----

/** `VFIO_API_VERSION`. */
export const VFIO_API_VERSION = 0;
/** VFIO_GET_API_VERSION. */
export const VFIO_GET_API_VERSION: IoctlDecl = vfioIoctl("VFIO_GET_API_VERSION", 0);
/** VFIO_CHECK_EXTENSION. */
export const VFIO_CHECK_EXTENSION: IoctlDecl = vfioIoctl("VFIO_CHECK_EXTENSION", 1);
/** VFIO_SET_IOMMU. */
export const VFIO_SET_IOMMU: IoctlDecl = vfioIoctl("VFIO_SET_IOMMU", 2);
/** VFIO_IOMMU_GET_INFO. */
export const VFIO_IOMMU_GET_INFO: IoctlDecl = vfioIoctl("VFIO_IOMMU_GET_INFO", 12);
/** VFIO_IOMMU_MAP_DMA. */
export const VFIO_IOMMU_MAP_DMA: IoctlDecl = vfioIoctl("VFIO_IOMMU_MAP_DMA", 13);
/** VFIO_IOMMU_UNMAP_DMA. */
export const VFIO_IOMMU_UNMAP_DMA: IoctlDecl = vfioIoctl("VFIO_IOMMU_UNMAP_DMA", 14);
/** VFIO_IOMMU_DIRTY_PAGES. */
export const VFIO_IOMMU_DIRTY_PAGES: IoctlDecl = vfioIoctl("VFIO_IOMMU_DIRTY_PAGES", 17);

/** Extension / IOMMU type ids. */
export const VFIO_TYPE1_IOMMU = 1;
/** Extension id. */
export const VFIO_SPAPR_TCE_IOMMU = 2;
/** Extension id. */
export const VFIO_TYPE1v2_IOMMU = 3;
/** Extension id. */
export const VFIO_DMA_CC_IOMMU = 4;
/** Extension id. */
export const VFIO_EEH = 5;
/** Extension id. */
export const VFIO_TYPE1_NESTING_IOMMU = 6;
/** Extension id. */
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
/** Extension id. */
export const VFIO_NOIOMMU_IOMMU = 8;
/** Extension id. */
export const VFIO_UNMAP_ALL = 9;
/** Extension id. */
export const VFIO_UPDATE_VADDR = 10;

/** struct vfio_info_cap_header. */
export const vfio_info_cap_header = defineStruct("vfio_info_cap_header", 8, {
  id: u16(0),
  version: u16(2),
  next: u32(4),
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
/** struct vfio_iommu_type1_info_dma_avail. */
export const vfio_iommu_type1_info_dma_avail = defineStruct("vfio_iommu_type1_info_dma_avail", 12, {
  header: nested(0, vfio_info_cap_header),
  avail: u32(8),
});
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

/** vfio_iommu_type1_info flags. */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
/** vfio_iommu_type1_info flags. */
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
/** Type1 info capability id. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
/** Type1 info capability id. */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
/** MAP_DMA flag. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** MAP_DMA flag. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
/** MAP_DMA flag. */
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;
/** UNMAP_DMA flag. */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
/** UNMAP_DMA flag. */
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
/** UNMAP_DMA flag. */
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;
