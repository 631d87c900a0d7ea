/**
 * The VFIO container and group ioctls of Linux 6.12 (include/uapi/linux/vfio.h) and the type1
 * IOMMU behind a container: the API version, the extension / IOMMU type ids, group status, and
 * type1's GET_INFO (with its capability chain), MAP_DMA, UNMAP_DMA and dirty-page tracking.
 * Re-exported by ./vfio.ts.
 *
 * @module
 */

import type { IoctlDecl } from "./common.ts";
import {
  defineStruct,
  nested,
  type NestedField,
  type StructLayout,
  type U32,
  u32,
  type U64,
  u64,
} from "./layout.ts";
import { vfio_info_cap_header } from "./vfio_region.ts";
import { vfioIoctl } from "./vfio_ioctl.ts";

/** `VFIO_API_VERSION`. */
export const VFIO_API_VERSION = 0;

/** VFIO_GET_API_VERSION (container). */
export const VFIO_GET_API_VERSION: IoctlDecl = vfioIoctl("VFIO_GET_API_VERSION", 0);

/** VFIO_CHECK_EXTENSION (container). */
export const VFIO_CHECK_EXTENSION: IoctlDecl = vfioIoctl("VFIO_CHECK_EXTENSION", 1);

/** VFIO_SET_IOMMU (container). */
export const VFIO_SET_IOMMU: IoctlDecl = vfioIoctl("VFIO_SET_IOMMU", 2);

/** VFIO_GROUP_GET_STATUS. */
export const VFIO_GROUP_GET_STATUS: IoctlDecl = vfioIoctl("VFIO_GROUP_GET_STATUS", 3);

/** VFIO_GROUP_SET_CONTAINER. */
export const VFIO_GROUP_SET_CONTAINER: IoctlDecl = vfioIoctl("VFIO_GROUP_SET_CONTAINER", 4);

/** VFIO_GROUP_UNSET_CONTAINER. */
export const VFIO_GROUP_UNSET_CONTAINER: IoctlDecl = vfioIoctl("VFIO_GROUP_UNSET_CONTAINER", 5);

/** VFIO_GROUP_GET_DEVICE_FD. */
export const VFIO_GROUP_GET_DEVICE_FD: IoctlDecl = vfioIoctl("VFIO_GROUP_GET_DEVICE_FD", 6);

/** VFIO_IOMMU_GET_INFO (type1). */
export const VFIO_IOMMU_GET_INFO: IoctlDecl = vfioIoctl("VFIO_IOMMU_GET_INFO", 12);

/** VFIO_IOMMU_MAP_DMA (type1). */
export const VFIO_IOMMU_MAP_DMA: IoctlDecl = vfioIoctl("VFIO_IOMMU_MAP_DMA", 13);

/** VFIO_IOMMU_UNMAP_DMA (type1). */
export const VFIO_IOMMU_UNMAP_DMA: IoctlDecl = vfioIoctl("VFIO_IOMMU_UNMAP_DMA", 14);

/** VFIO_IOMMU_DIRTY_PAGES (type1 v2). */
export const VFIO_IOMMU_DIRTY_PAGES: IoctlDecl = vfioIoctl("VFIO_IOMMU_DIRTY_PAGES", 17);

/** Extension / IOMMU type ids. */
export const VFIO_TYPE1_IOMMU = 1;

/** sPAPR TCE v1. */
export const VFIO_SPAPR_TCE_IOMMU = 2;

/** type1 v2. */
export const VFIO_TYPE1v2_IOMMU = 3;

/** DMA cache coherency extension. */
export const VFIO_DMA_CC_IOMMU = 4;

/** EEH (sPAPR). */
export const VFIO_EEH = 5;

/** type1 nesting (6.12). */
export const VFIO_TYPE1_NESTING_IOMMU = 6;

/** sPAPR TCE v2. */
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;

/** No-IOMMU mode. */
export const VFIO_NOIOMMU_IOMMU = 8;

/** UNMAP_ALL support. */
export const VFIO_UNMAP_ALL = 9;

/** UPDATE_VADDR support. */
export const VFIO_UPDATE_VADDR = 10;

/** Group status flags. */
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;

/** Group has a container (or iommufd). */
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

/** type1 info flags. */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;

/** type1 info has capabilities. */
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;

/** type1 info capability ids. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;

/** Migration capability. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;

/** DMA-available capability. */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

/** MAP_DMA flags. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;

/** Device may write. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;

/** Update the vaddr of an invalidated mapping. */
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;

/** UNMAP_DMA flags. */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;

/** Unmap everything. */
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;

/** Invalidate the vaddr, keep the mapping. */
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

/** DIRTY_PAGES flags. */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0;

/** Stop dirty tracking. */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1;

/** Get the dirty bitmap. */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2;

/** struct vfio_group_status. */
export const vfio_group_status: StructLayout<{ argsz: U32; flags: U32 }> = defineStruct(
  "vfio_group_status",
  8,
  {
    argsz: u32(0),
    flags: u32(4),
  },
);

/** struct vfio_iommu_type1_info. */
export const vfio_iommu_type1_info: StructLayout<
  { argsz: U32; flags: U32; iova_pgsizes: U64; cap_offset: U32; pad: U32 }
> = defineStruct("vfio_iommu_type1_info", 24, {
  argsz: u32(0),
  flags: u32(4),
  iova_pgsizes: u64(8),
  cap_offset: u32(16),
  pad: u32(20),
});

/** struct vfio_iova_range. */
export const vfio_iova_range: StructLayout<{ start: U64; end: U64 }> = defineStruct(
  "vfio_iova_range",
  16,
  {
    start: u64(0),
    end: u64(8),
  },
);

/** struct vfio_iommu_type1_info_cap_iova_range (ranges follow). */
export const vfio_iommu_type1_info_cap_iova_range: StructLayout<
  { header: NestedField<typeof vfio_info_cap_header>; nr_iovas: U32; reserved: U32 }
> = defineStruct(
  "vfio_iommu_type1_info_cap_iova_range",
  16,
  { header: nested(0, vfio_info_cap_header), nr_iovas: u32(8), reserved: u32(12) },
);

/** struct vfio_iommu_type1_info_cap_migration. */
export const vfio_iommu_type1_info_cap_migration: StructLayout<
  {
    header: NestedField<typeof vfio_info_cap_header>;
    flags: U32;
    pgsize_bitmap: U64;
    max_dirty_bitmap_size: U64;
  }
> = defineStruct(
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
export const vfio_iommu_type1_info_dma_avail: StructLayout<
  { header: NestedField<typeof vfio_info_cap_header>; avail: U32 }
> = defineStruct(
  "vfio_iommu_type1_info_dma_avail",
  12,
  { header: nested(0, vfio_info_cap_header), avail: u32(8) },
);

/** struct vfio_iommu_type1_dma_map. */
export const vfio_iommu_type1_dma_map: StructLayout<
  { argsz: U32; flags: U32; vaddr: U64; iova: U64; size: U64 }
> = defineStruct("vfio_iommu_type1_dma_map", 32, {
  argsz: u32(0),
  flags: u32(4),
  vaddr: u64(8),
  iova: u64(16),
  size: u64(24),
});

/** struct vfio_iommu_type1_dma_unmap (data follows). */
export const vfio_iommu_type1_dma_unmap: StructLayout<
  { argsz: U32; flags: U32; iova: U64; size: U64 }
> = defineStruct("vfio_iommu_type1_dma_unmap", 24, {
  argsz: u32(0),
  flags: u32(4),
  iova: u64(8),
  size: u64(16),
});

/** struct vfio_bitmap. */
export const vfio_bitmap: StructLayout<{ pgsize: U64; size: U64; data: U64 }> = defineStruct(
  "vfio_bitmap",
  24,
  {
    pgsize: u64(0),
    size: u64(8),
    data: u64(16),
  },
);

/** struct vfio_iommu_type1_dirty_bitmap (data follows). */
export const vfio_iommu_type1_dirty_bitmap: StructLayout<{ argsz: U32; flags: U32 }> = defineStruct(
  "vfio_iommu_type1_dirty_bitmap",
  8,
  {
    argsz: u32(0),
    flags: u32(4),
  },
);

/** struct vfio_iommu_type1_dirty_bitmap_get. */
export const vfio_iommu_type1_dirty_bitmap_get: StructLayout<
  { iova: U64; size: U64; bitmap: NestedField<typeof vfio_bitmap> }
> = defineStruct(
  "vfio_iommu_type1_dirty_bitmap_get",
  40,
  { iova: u64(0), size: u64(8), bitmap: nested(16, vfio_bitmap) },
);
