/**
 * The iommufd user API of Linux 6.12 (include/uapi/linux/iommufd.h), declared once as data: every
 * ioctl, flag, enum value and struct layout the project uses, under its exact C name
 * (shared/reference/iommufd.md). Checked against the real headers by tests/uapi/headers_test.ts.
 *
 * @module
 */

import { defineIoctl, type IoctlDecl, IOMMUFD_TYPE } from "./common.ts";
import {
  type ArrayField,
  defineStruct,
  type StructLayout,
  type U16,
  u16,
  type U32,
  u32,
  type U64,
  u64,
  type U8,
  u8,
} from "./layout.ts";

function iommufdIoctl(name: string, nr: number): IoctlDecl {
  return defineIoctl(name, IOMMUFD_TYPE, nr);
}

// ---- iommufd ioctls (6.12: nr 0x80–0x8e) ----

/** `IOMMUFD_CMD_BASE`: the first iommufd command number (the command enum in iommufd.h). */
export const IOMMUFD_CMD_BASE = 0x80;

/** IOMMU_DESTROY. */
export const IOMMU_DESTROY: IoctlDecl = iommufdIoctl("IOMMU_DESTROY", IOMMUFD_CMD_BASE);

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
export const iommu_destroy: StructLayout<{ size: U32; id: U32 }> = defineStruct(
  "iommu_destroy",
  8,
  { size: u32(0), id: u32(4) },
);

/** struct iommu_ioas_alloc. */
export const iommu_ioas_alloc: StructLayout<{ size: U32; flags: U32; out_ioas_id: U32 }> =
  defineStruct("iommu_ioas_alloc", 12, {
    size: u32(0),
    flags: u32(4),
    out_ioas_id: u32(8),
  });

/** struct iommu_iova_range. */
export const iommu_iova_range: StructLayout<{ start: U64; last: U64 }> = defineStruct(
  "iommu_iova_range",
  16,
  {
    start: u64(0),
    last: u64(8),
  },
);

/** struct iommu_ioas_iova_ranges. */
export const iommu_ioas_iova_ranges: StructLayout<
  {
    size: U32;
    ioas_id: U32;
    num_iovas: U32;
    __reserved: U32;
    allowed_iovas: U64;
    out_iova_alignment: U64;
  }
> = defineStruct("iommu_ioas_iova_ranges", 32, {
  size: u32(0),
  ioas_id: u32(4),
  num_iovas: u32(8),
  __reserved: u32(12),
  allowed_iovas: u64(16),
  out_iova_alignment: u64(24),
});

/** struct iommu_ioas_allow_iovas. */
export const iommu_ioas_allow_iovas: StructLayout<
  { size: U32; ioas_id: U32; num_iovas: U32; __reserved: U32; allowed_iovas: U64 }
> = defineStruct("iommu_ioas_allow_iovas", 24, {
  size: u32(0),
  ioas_id: u32(4),
  num_iovas: u32(8),
  __reserved: u32(12),
  allowed_iovas: u64(16),
});

/** struct iommu_ioas_map. */
export const iommu_ioas_map: StructLayout<
  { size: U32; flags: U32; ioas_id: U32; __reserved: U32; user_va: U64; length: U64; iova: U64 }
> = defineStruct("iommu_ioas_map", 40, {
  size: u32(0),
  flags: u32(4),
  ioas_id: u32(8),
  __reserved: u32(12),
  user_va: u64(16),
  length: u64(24),
  iova: u64(32),
});

/** struct iommu_ioas_copy. */
export const iommu_ioas_copy: StructLayout<
  {
    size: U32;
    flags: U32;
    dst_ioas_id: U32;
    src_ioas_id: U32;
    length: U64;
    dst_iova: U64;
    src_iova: U64;
  }
> = defineStruct("iommu_ioas_copy", 40, {
  size: u32(0),
  flags: u32(4),
  dst_ioas_id: u32(8),
  src_ioas_id: u32(12),
  length: u64(16),
  dst_iova: u64(24),
  src_iova: u64(32),
});

/** struct iommu_ioas_unmap. */
export const iommu_ioas_unmap: StructLayout<{ size: U32; ioas_id: U32; iova: U64; length: U64 }> =
  defineStruct("iommu_ioas_unmap", 24, {
    size: u32(0),
    ioas_id: u32(4),
    iova: u64(8),
    length: u64(16),
  });

/** struct iommu_option. */
export const iommu_option: StructLayout<
  { size: U32; option_id: U32; op: U16; __reserved: U16; object_id: U32; val64: U64 }
> = defineStruct("iommu_option", 24, {
  size: u32(0),
  option_id: u32(4),
  op: u16(8),
  __reserved: u16(10),
  object_id: u32(12),
  val64: u64(16),
});

/** struct iommu_vfio_ioas. */
export const iommu_vfio_ioas: StructLayout<{ size: U32; ioas_id: U32; op: U16; __reserved: U16 }> =
  defineStruct("iommu_vfio_ioas", 12, {
    size: u32(0),
    ioas_id: u32(4),
    op: u16(8),
    __reserved: u16(10),
  });

/** struct iommu_hwpt_alloc. */
export const iommu_hwpt_alloc: StructLayout<
  {
    size: U32;
    flags: U32;
    dev_id: U32;
    pt_id: U32;
    out_hwpt_id: U32;
    __reserved: U32;
    data_type: U32;
    data_len: U32;
    data_uptr: U64;
    fault_id: U32;
    __reserved2: U32;
  }
> = defineStruct("iommu_hwpt_alloc", 48, {
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
export const iommu_hwpt_vtd_s1: StructLayout<
  { flags: U64; pgtbl_addr: U64; addr_width: U32; __reserved: U32 }
> = defineStruct("iommu_hwpt_vtd_s1", 24, {
  flags: u64(0),
  pgtbl_addr: u64(8),
  addr_width: u32(16),
  __reserved: u32(20),
});

/** struct iommu_hw_info (6.12.32+: byte 28 is out_max_pasid_log2). */
export const iommu_hw_info: StructLayout<
  {
    size: U32;
    flags: U32;
    dev_id: U32;
    data_len: U32;
    data_uptr: U64;
    out_data_type: U32;
    out_max_pasid_log2: U8;
    __reserved: ArrayField<"u8">;
    out_capabilities: U64;
  }
> = defineStruct("iommu_hw_info", 40, {
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
export const iommu_hw_info_vtd: StructLayout<
  { flags: U32; __reserved: U32; cap_reg: U64; ecap_reg: U64 }
> = defineStruct("iommu_hw_info_vtd", 24, {
  flags: u32(0),
  __reserved: u32(4),
  cap_reg: u64(8),
  ecap_reg: u64(16),
});

/** struct iommu_hwpt_set_dirty_tracking. */
export const iommu_hwpt_set_dirty_tracking: StructLayout<
  { size: U32; flags: U32; hwpt_id: U32; __reserved: U32 }
> = defineStruct("iommu_hwpt_set_dirty_tracking", 16, {
  size: u32(0),
  flags: u32(4),
  hwpt_id: u32(8),
  __reserved: u32(12),
});

/** struct iommu_hwpt_get_dirty_bitmap. */
export const iommu_hwpt_get_dirty_bitmap: StructLayout<
  {
    size: U32;
    hwpt_id: U32;
    flags: U32;
    __reserved: U32;
    iova: U64;
    length: U64;
    page_size: U64;
    data: U64;
  }
> = defineStruct("iommu_hwpt_get_dirty_bitmap", 48, {
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
export const iommu_hwpt_invalidate: StructLayout<
  {
    size: U32;
    hwpt_id: U32;
    data_uptr: U64;
    data_type: U32;
    entry_len: U32;
    entry_num: U32;
    __reserved: U32;
  }
> = defineStruct("iommu_hwpt_invalidate", 32, {
  size: u32(0),
  hwpt_id: u32(4),
  data_uptr: u64(8),
  data_type: u32(16),
  entry_len: u32(20),
  entry_num: u32(24),
  __reserved: u32(28),
});

/** struct iommu_hwpt_vtd_s1_invalidate. */
export const iommu_hwpt_vtd_s1_invalidate: StructLayout<
  { addr: U64; npages: U64; flags: U32; __reserved: U32 }
> = defineStruct("iommu_hwpt_vtd_s1_invalidate", 24, {
  addr: u64(0),
  npages: u64(8),
  flags: u32(16),
  __reserved: u32(20),
});

/** struct iommu_hwpt_pgfault (read from a fault fd). */
export const iommu_hwpt_pgfault: StructLayout<
  {
    flags: U32;
    dev_id: U32;
    pasid: U32;
    grpid: U32;
    perm: U32;
    __reserved: U32;
    addr: U64;
    length: U32;
    cookie: U32;
  }
> = defineStruct("iommu_hwpt_pgfault", 40, {
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
export const iommu_hwpt_page_response: StructLayout<{ cookie: U32; code: U32 }> = defineStruct(
  "iommu_hwpt_page_response",
  8,
  {
    cookie: u32(0),
    code: u32(4),
  },
);

/** struct iommu_fault_alloc. */
export const iommu_fault_alloc: StructLayout<
  { size: U32; flags: U32; out_fault_id: U32; out_fault_fd: U32 }
> = defineStruct("iommu_fault_alloc", 16, {
  size: u32(0),
  flags: u32(4),
  out_fault_id: u32(8),
  out_fault_fd: u32(12),
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

/** `IOMMU_PGFAULT_PERM_READ` (enum iommu_hwpt_pgfault_perm). */
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
/** `IOMMU_PGFAULT_PERM_WRITE`. */
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
/** `IOMMU_PGFAULT_PERM_EXEC`. */
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
/** `IOMMU_PGFAULT_PERM_PRIV`. */
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;

/** iommufd_page_response_code. */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;

/** iommufd_page_response_code. */
export const IOMMUFD_PAGE_RESP_INVALID = 1;
