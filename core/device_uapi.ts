/**
 * The uAPI names the device-fd clients use (VFIO device info, regions, IRQs, reset, hot reset,
 * features), in one place.
 *
 * TEMPORARY: until `ffi/uapi/mod.ts` lands, this module declares the layouts, ioctls and flags of
 * the VFIO device fd under their exact C names (shared/reference/vfio.md §2, §7 and §10). Once the
 * shared uAPI modules exist this file becomes a re-export of them, so the clients never change.
 *
 * @module
 */

import { defineIoctl, type IoctlDecl, VFIO_BASE, VFIO_TYPE } from "../ffi/uapi/common.ts";
import { defineStruct, nested, u16, u32, u64, u8 } from "../ffi/uapi/layout.ts";

export { type CapEntry, parseCapChain } from "./dma_uapi.ts";

function vfioIoctl(name: string, n: number): IoctlDecl {
  return defineIoctl(name, VFIO_TYPE, VFIO_BASE + n);
}

/** `VFIO_DEVICE_GET_INFO` (vfio.md §2, nr 107). */
export const VFIO_DEVICE_GET_INFO: IoctlDecl = vfioIoctl("VFIO_DEVICE_GET_INFO", 7);
/** `VFIO_DEVICE_GET_REGION_INFO` (nr 108). */
export const VFIO_DEVICE_GET_REGION_INFO: IoctlDecl = vfioIoctl("VFIO_DEVICE_GET_REGION_INFO", 8);
/** `VFIO_DEVICE_GET_IRQ_INFO` (nr 109). */
export const VFIO_DEVICE_GET_IRQ_INFO: IoctlDecl = vfioIoctl("VFIO_DEVICE_GET_IRQ_INFO", 9);
/** `VFIO_DEVICE_SET_IRQS` (nr 110). */
export const VFIO_DEVICE_SET_IRQS: IoctlDecl = vfioIoctl("VFIO_DEVICE_SET_IRQS", 10);
/** `VFIO_DEVICE_RESET` (nr 111). */
export const VFIO_DEVICE_RESET: IoctlDecl = vfioIoctl("VFIO_DEVICE_RESET", 11);
/** `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO` (nr 112). */
export const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: IoctlDecl = vfioIoctl(
  "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO",
  12,
);
/** `VFIO_DEVICE_PCI_HOT_RESET` (nr 113). */
export const VFIO_DEVICE_PCI_HOT_RESET: IoctlDecl = vfioIoctl("VFIO_DEVICE_PCI_HOT_RESET", 13);
/** `VFIO_DEVICE_FEATURE` (nr 117). */
export const VFIO_DEVICE_FEATURE: IoctlDecl = vfioIoctl("VFIO_DEVICE_FEATURE", 17);

/** `VFIO_DEVICE_FLAGS_RESET`: the device supports VFIO_DEVICE_RESET (§7.1). */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
/** `VFIO_DEVICE_FLAGS_PCI`. */
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
/** `VFIO_DEVICE_FLAGS_CAPS`: `cap_offset` is valid. */
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;

/** `VFIO_REGION_INFO_FLAG_READ` (§7.2). */
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
/** `VFIO_REGION_INFO_FLAG_WRITE`. */
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
/** `VFIO_REGION_INFO_FLAG_MMAP`. */
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
/** `VFIO_REGION_INFO_FLAG_CAPS`. */
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;
/** `VFIO_REGION_INFO_CAP_SPARSE_MMAP`. */
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
/** `VFIO_REGION_INFO_CAP_TYPE`. */
export const VFIO_REGION_INFO_CAP_TYPE = 2;
/** `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`. */
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;

/** `VFIO_PCI_BAR0_REGION_INDEX` (§7.2; BAR n is index n). */
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
/** `VFIO_PCI_BAR5_REGION_INDEX`. */
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
/** `VFIO_PCI_ROM_REGION_INDEX`. */
export const VFIO_PCI_ROM_REGION_INDEX = 6;
/** `VFIO_PCI_CONFIG_REGION_INDEX`. */
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
/** `VFIO_PCI_VGA_REGION_INDEX`. */
export const VFIO_PCI_VGA_REGION_INDEX = 8;

/** `VFIO_PCI_INTX_IRQ_INDEX` (§7.3). */
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
/** `VFIO_PCI_MSI_IRQ_INDEX`. */
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
/** `VFIO_PCI_MSIX_IRQ_INDEX`. */
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
/** `VFIO_PCI_ERR_IRQ_INDEX`. */
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
/** `VFIO_PCI_REQ_IRQ_INDEX`. */
export const VFIO_PCI_REQ_IRQ_INDEX = 4;

/** `VFIO_IRQ_INFO_EVENTFD` (§7.3). */
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
/** `VFIO_IRQ_INFO_MASKABLE`. */
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
/** `VFIO_IRQ_INFO_AUTOMASKED`. */
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
/** `VFIO_IRQ_INFO_NORESIZE`. */
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

/** `VFIO_IRQ_SET_DATA_NONE` (§7.3). */
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
/** `VFIO_IRQ_SET_DATA_BOOL`. */
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
/** `VFIO_IRQ_SET_DATA_EVENTFD`. */
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
/** `VFIO_IRQ_SET_ACTION_MASK`. */
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
/** `VFIO_IRQ_SET_ACTION_UNMASK`. */
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
/** `VFIO_IRQ_SET_ACTION_TRIGGER`. */
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;

/** `VFIO_PCI_HOT_RESET_FLAG_DEV_ID` (§7.4): entries carry iommufd device ids. */
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID = 1 << 0;
/** `VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED`: every affected device is owned by this iommufd. */
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1 << 1;
/** `VFIO_PCI_DEVID_NOT_OWNED`: -1 (reads back as 0xffffffff from the `__u32 devid` field). */
export const VFIO_PCI_DEVID_NOT_OWNED = -1;

/** `VFIO_DEVICE_FEATURE_MASK` (§7.5): the feature index bits. */
export const VFIO_DEVICE_FEATURE_MASK = 0xffff;
/** `VFIO_DEVICE_FEATURE_GET`. */
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;
/** `VFIO_DEVICE_FEATURE_SET`. */
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;
/** `VFIO_DEVICE_FEATURE_PROBE`. */
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;

/** `struct vfio_device_info` (§10). */
export const vfio_device_info = defineStruct("vfio_device_info", 24, {
  argsz: u32(0),
  flags: u32(4),
  num_regions: u32(8),
  num_irqs: u32(12),
  cap_offset: u32(16),
  pad: u32(20),
});
/** `struct vfio_region_info` (§10). */
export const vfio_region_info = defineStruct("vfio_region_info", 32, {
  argsz: u32(0),
  flags: u32(4),
  index: u32(8),
  cap_offset: u32(12),
  size: u64(16),
  offset: u64(24),
});
/** `struct vfio_region_sparse_mmap_area`. */
export const vfio_region_sparse_mmap_area = defineStruct("vfio_region_sparse_mmap_area", 16, {
  offset: u64(0),
  size: u64(8),
});
/** `struct vfio_info_cap_header` (§4): every capability starts with it. */
export const vfio_info_cap_header = defineStruct("vfio_info_cap_header", 8, {
  id: u16(0),
  version: u16(2),
  next: u32(4),
});
/** `struct vfio_region_info_cap_sparse_mmap` (fixed part; areas follow at 16). */
export const vfio_region_info_cap_sparse_mmap = defineStruct(
  "vfio_region_info_cap_sparse_mmap",
  16,
  { header: nested(0, vfio_info_cap_header), nr_areas: u32(8), reserved: u32(12) },
);
/** `struct vfio_region_info_cap_type`. */
export const vfio_region_info_cap_type = defineStruct("vfio_region_info_cap_type", 16, {
  header: nested(0, vfio_info_cap_header),
  type: u32(8),
  subtype: u32(12),
});
/** `struct vfio_irq_info` (§10). */
export const vfio_irq_info = defineStruct("vfio_irq_info", 16, {
  argsz: u32(0),
  flags: u32(4),
  index: u32(8),
  count: u32(12),
});
/** `struct vfio_irq_set` (fixed part; data follows at 20). */
export const vfio_irq_set = defineStruct("vfio_irq_set", 20, {
  argsz: u32(0),
  flags: u32(4),
  index: u32(8),
  start: u32(12),
  count: u32(16),
});
/** `struct vfio_pci_dependent_device` (`group_id` and `devid` share offset 0). */
export const vfio_pci_dependent_device = defineStruct("vfio_pci_dependent_device", 8, {
  group_id: u32(0),
  segment: u16(4),
  bus: u8(6),
  devfn: u8(7),
});
/** `struct vfio_pci_hot_reset_info` (fixed part; devices follow at 12). */
export const vfio_pci_hot_reset_info = defineStruct("vfio_pci_hot_reset_info", 12, {
  argsz: u32(0),
  flags: u32(4),
  count: u32(8),
});
/** `struct vfio_device_feature` (fixed part; data follows at 8). */
export const vfio_device_feature = defineStruct("vfio_device_feature", 8, {
  argsz: u32(0),
  flags: u32(4),
});
