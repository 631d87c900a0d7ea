/**
 * POWER's VFIO user API in Linux 6.12 (include/uapi/linux/vfio.h): the sPAPR TCE IOMMU's
 * container ioctls (enable, window info, memory preregistration, DMA window create/remove) and the
 * EEH PE operations with their states. Re-exported by ./vfio.ts.
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
import { vfioIoctl } from "./vfio_ioctl.ts";

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
