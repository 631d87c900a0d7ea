/**
 * The VFIO user API of Linux 6.12 (include/uapi/linux/vfio.h), declared once as data: every ioctl,
 * flag, capability id, index and struct layout the project uses, under its exact C name
 * (shared/reference/vfio.md). The client (core/), the simulator (sim/) and the conformance
 * scenarios all import it; tests/uapi/headers_test.ts compares every declaration with the real
 * headers through gcc.
 *
 * @module
 */

import { defineIoctl, type IoctlDecl, VFIO_BASE, VFIO_TYPE } from "./common.ts";
import {
  defineStruct,
  nested,
  type NestedField,
  type S32,
  s32,
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

function vfioIoctl(name: string, n: number): IoctlDecl {
  return defineIoctl(name, VFIO_TYPE, VFIO_BASE + n);
}

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

/** VFIO_DEVICE_GET_INFO. */
export const VFIO_DEVICE_GET_INFO: IoctlDecl = vfioIoctl("VFIO_DEVICE_GET_INFO", 7);

/** VFIO_DEVICE_GET_REGION_INFO. */
export const VFIO_DEVICE_GET_REGION_INFO: IoctlDecl = vfioIoctl("VFIO_DEVICE_GET_REGION_INFO", 8);

/** VFIO_DEVICE_GET_IRQ_INFO. */
export const VFIO_DEVICE_GET_IRQ_INFO: IoctlDecl = vfioIoctl("VFIO_DEVICE_GET_IRQ_INFO", 9);

/** VFIO_DEVICE_SET_IRQS. */
export const VFIO_DEVICE_SET_IRQS: IoctlDecl = vfioIoctl("VFIO_DEVICE_SET_IRQS", 10);

/** VFIO_DEVICE_RESET. */
export const VFIO_DEVICE_RESET: IoctlDecl = vfioIoctl("VFIO_DEVICE_RESET", 11);

/** VFIO_DEVICE_GET_PCI_HOT_RESET_INFO. */
export const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: IoctlDecl = vfioIoctl(
  "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO",
  12,
);

/** VFIO_DEVICE_PCI_HOT_RESET. */
export const VFIO_DEVICE_PCI_HOT_RESET: IoctlDecl = vfioIoctl("VFIO_DEVICE_PCI_HOT_RESET", 13);

/** VFIO_DEVICE_IOEVENTFD. */
export const VFIO_DEVICE_IOEVENTFD: IoctlDecl = vfioIoctl("VFIO_DEVICE_IOEVENTFD", 16);

/** VFIO_DEVICE_FEATURE. */
export const VFIO_DEVICE_FEATURE: IoctlDecl = vfioIoctl("VFIO_DEVICE_FEATURE", 17);

/** VFIO_DEVICE_BIND_IOMMUFD (cdev). */
export const VFIO_DEVICE_BIND_IOMMUFD: IoctlDecl = vfioIoctl("VFIO_DEVICE_BIND_IOMMUFD", 18);

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT (cdev). */
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT: IoctlDecl = vfioIoctl(
  "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
  19,
);

/** VFIO_DEVICE_DETACH_IOMMUFD_PT (cdev). */
export const VFIO_DEVICE_DETACH_IOMMUFD_PT: IoctlDecl = vfioIoctl(
  "VFIO_DEVICE_DETACH_IOMMUFD_PT",
  20,
);

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

/** Device info flags. */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;

/** vfio-pci device. */
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;

/** Info has capabilities. */
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;

/** Region flags. */
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;

/** Region writable. */
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;

/** Region mmap-able. */
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;

/** Region info has capabilities. */
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;

/** IRQ info flags. */
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;

/** IRQ maskable. */
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;

/** IRQ automasked. */
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;

/** IRQ count cannot be resized. */
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

/** SET_IRQS data type: none. */
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;

/** SET_IRQS data type: u8 per irq. */
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;

/** SET_IRQS data type: s32 eventfd per irq. */
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;

/** SET_IRQS action: mask. */
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;

/** SET_IRQS action: unmask. */
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;

/** SET_IRQS action: trigger. */
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;

/** SET_IRQS data-type bits. */
export const VFIO_IRQ_SET_DATA_TYPE_MASK = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL |
  VFIO_IRQ_SET_DATA_EVENTFD;

/** SET_IRQS action bits. */
export const VFIO_IRQ_SET_ACTION_TYPE_MASK = VFIO_IRQ_SET_ACTION_MASK |
  VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

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

/** vfio-pci irq indexes. */
export const VFIO_PCI_INTX_IRQ_INDEX = 0;

/** MSI. */
export const VFIO_PCI_MSI_IRQ_INDEX = 1;

/** MSI-X. */
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;

/** AER error. */
export const VFIO_PCI_ERR_IRQ_INDEX = 3;

/** Device request. */
export const VFIO_PCI_REQ_IRQ_INDEX = 4;

/** IRQ indexes. */
export const VFIO_PCI_NUM_IRQS = 5;

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

/** DEVICE_FEATURE flags. */
export const VFIO_DEVICE_FEATURE_MASK = 0xffff;

/** Get. */
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;

/** Set. */
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;

/** Probe. */
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;

/** Hot-reset info flags (cdev). */
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID = 1 << 0;

/** All affected devices owned. */
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1 << 1;

/** IOEVENTFD access sizes. */
export const VFIO_DEVICE_IOEVENTFD_8 = 1 << 0;

/** 2 bytes. */
export const VFIO_DEVICE_IOEVENTFD_16 = 1 << 1;

/** 4 bytes. */
export const VFIO_DEVICE_IOEVENTFD_32 = 1 << 2;

/** 8 bytes. */
export const VFIO_DEVICE_IOEVENTFD_64 = 1 << 3;

/** Size bits. */
export const VFIO_DEVICE_IOEVENTFD_SIZE_MASK = 0xf;

/** struct vfio_info_cap_header. */
export const vfio_info_cap_header: StructLayout<{ id: U16; version: U16; next: U32 }> =
  defineStruct("vfio_info_cap_header", 8, {
    id: u16(0),
    version: u16(2),
    next: u32(4),
  });

/** struct vfio_group_status. */
export const vfio_group_status: StructLayout<{ argsz: U32; flags: U32 }> = defineStruct(
  "vfio_group_status",
  8,
  {
    argsz: u32(0),
    flags: u32(4),
  },
);

/** struct vfio_device_info. */
export const vfio_device_info: StructLayout<
  { argsz: U32; flags: U32; num_regions: U32; num_irqs: U32; cap_offset: U32; pad: U32 }
> = defineStruct("vfio_device_info", 24, {
  argsz: u32(0),
  flags: u32(4),
  num_regions: u32(8),
  num_irqs: u32(12),
  cap_offset: u32(16),
  pad: u32(20),
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

/** struct vfio_irq_info. */
export const vfio_irq_info: StructLayout<{ argsz: U32; flags: U32; index: U32; count: U32 }> =
  defineStruct("vfio_irq_info", 16, {
    argsz: u32(0),
    flags: u32(4),
    index: u32(8),
    count: u32(12),
  });

/** struct vfio_irq_set (header; data follows). */
export const vfio_irq_set: StructLayout<
  { argsz: U32; flags: U32; index: U32; start: U32; count: U32 }
> = defineStruct("vfio_irq_set", 20, {
  argsz: u32(0),
  flags: u32(4),
  index: u32(8),
  start: u32(12),
  count: u32(16),
});

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

/** struct vfio_pci_dependent_device. */
export const vfio_pci_dependent_device: StructLayout<
  { group_id: U32; segment: U16; bus: U8; devfn: U8 }
> = defineStruct("vfio_pci_dependent_device", 8, {
  group_id: u32(0),
  segment: u16(4),
  bus: u8(6),
  devfn: u8(7),
});

/** struct vfio_pci_hot_reset_info (devices follow). */
export const vfio_pci_hot_reset_info: StructLayout<{ argsz: U32; flags: U32; count: U32 }> =
  defineStruct("vfio_pci_hot_reset_info", 12, {
    argsz: u32(0),
    flags: u32(4),
    count: u32(8),
  });

/** struct vfio_pci_hot_reset (group fds follow). */
export const vfio_pci_hot_reset: StructLayout<{ argsz: U32; flags: U32; count: U32 }> =
  defineStruct("vfio_pci_hot_reset", 12, {
    argsz: u32(0),
    flags: u32(4),
    count: u32(8),
  });

/** struct vfio_device_ioeventfd. */
export const vfio_device_ioeventfd: StructLayout<
  { argsz: U32; flags: U32; offset: U64; data: U64; fd: S32; reserved: U32 }
> = defineStruct("vfio_device_ioeventfd", 32, {
  argsz: u32(0),
  flags: u32(4),
  offset: u64(8),
  data: u64(16),
  fd: s32(24),
  reserved: u32(28),
});

/** struct vfio_device_feature (data follows). */
export const vfio_device_feature: StructLayout<{ argsz: U32; flags: U32 }> = defineStruct(
  "vfio_device_feature",
  8,
  {
    argsz: u32(0),
    flags: u32(4),
  },
);

/** struct vfio_device_bind_iommufd (6.12). */
export const vfio_device_bind_iommufd: StructLayout<
  { argsz: U32; flags: U32; iommufd: S32; out_devid: U32 }
> = defineStruct("vfio_device_bind_iommufd", 16, {
  argsz: u32(0),
  flags: u32(4),
  iommufd: s32(8),
  out_devid: u32(12),
});

/** struct vfio_device_attach_iommufd_pt (6.12). */
export const vfio_device_attach_iommufd_pt: StructLayout<{ argsz: U32; flags: U32; pt_id: U32 }> =
  defineStruct("vfio_device_attach_iommufd_pt", 12, {
    argsz: u32(0),
    flags: u32(4),
    pt_id: u32(8),
  });

/** struct vfio_device_detach_iommufd_pt (6.12). */
export const vfio_device_detach_iommufd_pt: StructLayout<{ argsz: U32; flags: U32 }> = defineStruct(
  "vfio_device_detach_iommufd_pt",
  8,
  {
    argsz: u32(0),
    flags: u32(4),
  },
);

/** `VFIO_IOMMU_ENABLE`. */
export const VFIO_IOMMU_ENABLE: IoctlDecl = vfioIoctl("VFIO_IOMMU_ENABLE", 15);

/** `VFIO_IOMMU_DISABLE`. */
export const VFIO_IOMMU_DISABLE: IoctlDecl = vfioIoctl("VFIO_IOMMU_DISABLE", 16);

/** `VFIO_IOMMU_SPAPR_TCE_GET_INFO`. */
export const VFIO_IOMMU_SPAPR_TCE_GET_INFO: IoctlDecl = vfioIoctl(
  "VFIO_IOMMU_SPAPR_TCE_GET_INFO",
  12,
);

/** `VFIO_IOMMU_SPAPR_REGISTER_MEMORY`. */
export const VFIO_IOMMU_SPAPR_REGISTER_MEMORY: IoctlDecl = vfioIoctl(
  "VFIO_IOMMU_SPAPR_REGISTER_MEMORY",
  17,
);

/** `VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY`. */
export const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: IoctlDecl = vfioIoctl(
  "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY",
  18,
);

/** `VFIO_IOMMU_SPAPR_TCE_CREATE`. */
export const VFIO_IOMMU_SPAPR_TCE_CREATE: IoctlDecl = vfioIoctl("VFIO_IOMMU_SPAPR_TCE_CREATE", 19);

/** `VFIO_IOMMU_SPAPR_TCE_REMOVE`. */
export const VFIO_IOMMU_SPAPR_TCE_REMOVE: IoctlDecl = vfioIoctl("VFIO_IOMMU_SPAPR_TCE_REMOVE", 20);

/** `VFIO_EEH_PE_OP`. */
export const VFIO_EEH_PE_OP: IoctlDecl = vfioIoctl("VFIO_EEH_PE_OP", 21);

/** VFIO_EEH_PE_OP `op`: `VFIO_EEH_PE_DISABLE`. */
export const VFIO_EEH_PE_DISABLE = 0;
/** `VFIO_EEH_PE_ENABLE`. */
export const VFIO_EEH_PE_ENABLE = 1;
/** `VFIO_EEH_PE_UNFREEZE_IO`: thaw MMIO of a frozen PE. */
export const VFIO_EEH_PE_UNFREEZE_IO = 2;
/** `VFIO_EEH_PE_UNFREEZE_DMA`: thaw DMA of a frozen PE. */
export const VFIO_EEH_PE_UNFREEZE_DMA = 3;
/** `VFIO_EEH_PE_GET_STATE`: the ioctl returns a `VFIO_EEH_PE_STATE_*` value. */
export const VFIO_EEH_PE_GET_STATE = 4;
/** `VFIO_EEH_PE_STATE_NORMAL`: MMIO and DMA enabled. */
export const VFIO_EEH_PE_STATE_NORMAL = 0;
/** `VFIO_EEH_PE_STATE_RESET`: the PE is held in reset. */
export const VFIO_EEH_PE_STATE_RESET = 1;
/** `VFIO_EEH_PE_STATE_STOPPED`: MMIO and DMA stopped. */
export const VFIO_EEH_PE_STATE_STOPPED = 2;
/** `VFIO_EEH_PE_STATE_STOPPED_DMA`: DMA stopped, MMIO enabled. */
export const VFIO_EEH_PE_STATE_STOPPED_DMA = 4;
/** `VFIO_EEH_PE_STATE_UNAVAIL`: state unavailable. */
export const VFIO_EEH_PE_STATE_UNAVAIL = 5;
/** `VFIO_EEH_PE_RESET_DEACTIVATE`. */
export const VFIO_EEH_PE_RESET_DEACTIVATE = 5;
/** `VFIO_EEH_PE_RESET_HOT`. */
export const VFIO_EEH_PE_RESET_HOT = 6;
/** `VFIO_EEH_PE_RESET_FUNDAMENTAL`. */
export const VFIO_EEH_PE_RESET_FUNDAMENTAL = 7;
/** `VFIO_EEH_PE_CONFIGURE`. */
export const VFIO_EEH_PE_CONFIGURE = 8;
/** `VFIO_EEH_PE_INJECT_ERR` (needs the `err` member). */
export const VFIO_EEH_PE_INJECT_ERR = 9;

/** `VFIO_IOMMU_SPAPR_INFO_DDW`. */
export const VFIO_IOMMU_SPAPR_INFO_DDW = 1;

/** `struct vfio_iommu_spapr_tce_ddw_info`. */
export const vfio_iommu_spapr_tce_ddw_info: StructLayout<
  { pgsizes: U64; max_dynamic_windows_supported: U32; levels: U32 }
> = defineStruct("vfio_iommu_spapr_tce_ddw_info", 16, {
  pgsizes: u64(0),
  max_dynamic_windows_supported: u32(8),
  levels: u32(12),
});

/** `struct vfio_iommu_spapr_tce_info`. */
export const vfio_iommu_spapr_tce_info: StructLayout<
  {
    argsz: U32;
    flags: U32;
    dma32_window_start: U32;
    dma32_window_size: U32;
    ddw: NestedField<typeof vfio_iommu_spapr_tce_ddw_info>;
  }
> = defineStruct("vfio_iommu_spapr_tce_info", 32, {
  argsz: u32(0),
  flags: u32(4),
  dma32_window_start: u32(8),
  dma32_window_size: u32(12),
  ddw: nested(16, vfio_iommu_spapr_tce_ddw_info),
});

/** `struct vfio_iommu_spapr_register_memory`. */
export const vfio_iommu_spapr_register_memory: StructLayout<
  { argsz: U32; flags: U32; vaddr: U64; size: U64 }
> = defineStruct(
  "vfio_iommu_spapr_register_memory",
  24,
  { argsz: u32(0), flags: u32(4), vaddr: u64(8), size: u64(16) },
);

/** `struct vfio_iommu_spapr_tce_create`. */
export const vfio_iommu_spapr_tce_create: StructLayout<
  {
    argsz: U32;
    flags: U32;
    page_shift: U32;
    __resv1: U32;
    window_size: U64;
    levels: U32;
    __resv2: U32;
    start_addr: U64;
  }
> = defineStruct("vfio_iommu_spapr_tce_create", 40, {
  argsz: u32(0),
  flags: u32(4),
  page_shift: u32(8),
  __resv1: u32(12),
  window_size: u64(16),
  levels: u32(24),
  __resv2: u32(28),
  start_addr: u64(32),
});

/** `struct vfio_iommu_spapr_tce_remove`. */
export const vfio_iommu_spapr_tce_remove: StructLayout<
  { argsz: U32; flags: U32; start_addr: U64 }
> = defineStruct("vfio_iommu_spapr_tce_remove", 16, {
  argsz: u32(0),
  flags: u32(4),
  start_addr: u64(8),
});

/** `struct vfio_eeh_pe_err`. */
export const vfio_eeh_pe_err: StructLayout<{ type: U32; func: U32; addr: U64; mask: U64 }> =
  defineStruct("vfio_eeh_pe_err", 24, {
    type: u32(0),
    func: u32(4),
    addr: u64(8),
    mask: u64(16),
  });

/** `struct vfio_eeh_pe_op`. */
export const vfio_eeh_pe_op: StructLayout<
  { argsz: U32; flags: U32; op: U32; err: NestedField<typeof vfio_eeh_pe_err> }
> = defineStruct("vfio_eeh_pe_op", 40, {
  argsz: u32(0),
  flags: u32(4),
  op: u32(8),
  err: nested(16, vfio_eeh_pe_err),
});

/** `VFIO_REGION_INFO_CAP_SPARSE_MMAP`. */
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;

/** `VFIO_REGION_INFO_CAP_TYPE`. */
export const VFIO_REGION_INFO_CAP_TYPE = 2;

/** `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`. */
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;

/** `VFIO_PCI_DEVID_NOT_OWNED`: -1 (reads back as 0xffffffff from the `__u32 devid` field). */
export const VFIO_PCI_DEVID_NOT_OWNED: number = -1;

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
