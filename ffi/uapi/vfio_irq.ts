/**
 * VFIO device interrupts of Linux 6.12 (include/uapi/linux/vfio.h): GET_IRQ_INFO and SET_IRQS
 * with their flags, and vfio-pci's IRQ indexes. Re-exported by ./vfio.ts.
 *
 * @module
 */

import type { IoctlDecl } from "./common.ts";
import { defineStruct, type StructLayout, type U32, u32 } from "./layout.ts";
import { vfioIoctl } from "./vfio_ioctl.ts";

/** VFIO_DEVICE_GET_IRQ_INFO. */
export const VFIO_DEVICE_GET_IRQ_INFO: IoctlDecl = vfioIoctl("VFIO_DEVICE_GET_IRQ_INFO", 9);

/** VFIO_DEVICE_SET_IRQS. */
export const VFIO_DEVICE_SET_IRQS: IoctlDecl = vfioIoctl("VFIO_DEVICE_SET_IRQS", 10);

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
