/**
 * The VFIO device ioctls of Linux 6.12 (include/uapi/linux/vfio.h): device info, reset and PCI
 * hot reset (with the dependent-device list), ioeventfd, DEVICE_FEATURE, and the VFIO cdev's
 * iommufd bind, attach and detach. Re-exported by ./vfio.ts.
 *
 * @module
 */

import type { IoctlDecl } from "./common.ts";
import {
  defineStruct,
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
import { vfioIoctl } from "./vfio_ioctl.ts";

/** VFIO_DEVICE_GET_INFO. */
export const VFIO_DEVICE_GET_INFO: IoctlDecl = vfioIoctl("VFIO_DEVICE_GET_INFO", 7);

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

/** Device info flags. */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;

/** vfio-pci device. */
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;

/** Info has capabilities. */
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;

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

/** `VFIO_PCI_DEVID_NOT_OWNED`: -1 (reads back as 0xffffffff from the `__u32 devid` field). */
export const VFIO_PCI_DEVID_NOT_OWNED: number = -1;
