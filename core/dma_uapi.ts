/**
 * The uAPI names the DMA backends use (VFIO container/group/type1/sPAPR, cdev binding, iommufd),
 * in one place.
 *
 * TEMPORARY: until `ffi/uapi/mod.ts` lands, this module declares the layouts, ioctls, flags and
 * capability decoders core/'s DMA clients need, under their exact C names (vfio.md §2, §3, §10;
 * iommufd.md §3–§5). Once the shared uAPI modules exist this file becomes a re-export of them,
 * so the clients never change.
 *
 * @module
 */

import { defineIoctl, type IoctlDecl, VFIO_BASE, VFIO_TYPE } from "../ffi/uapi/common.ts";
import { defineStruct, nested, s32, u16, u32, u64, u8 } from "../ffi/uapi/layout.ts";

function vfioIoctl(name: string, n: number): IoctlDecl {
  return defineIoctl(name, VFIO_TYPE, VFIO_BASE + n);
}

function iommufdIoctl(name: string, nr: number): IoctlDecl {
  return defineIoctl(name, VFIO_TYPE, nr);
}

/** `VFIO_API_VERSION`. */
export const VFIO_API_VERSION = 0;
/** `VFIO_TYPE1_IOMMU`. */
/** `VFIO_TYPE1_IOMMU`. */
export const VFIO_TYPE1_IOMMU = 1;
/** `VFIO_SPAPR_TCE_IOMMU`. */
/** `VFIO_SPAPR_TCE_IOMMU`. */
export const VFIO_SPAPR_TCE_IOMMU = 2;
/** `VFIO_TYPE1v2_IOMMU`. */
/** `VFIO_TYPE1v2_IOMMU`. */
export const VFIO_TYPE1v2_IOMMU = 3;
/** `VFIO_SPAPR_TCE_v2_IOMMU`. */
/** `VFIO_SPAPR_TCE_v2_IOMMU`. */
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
/** `VFIO_UNMAP_ALL`. */
/** `VFIO_UNMAP_ALL`. */
export const VFIO_UNMAP_ALL = 9;
/** `VFIO_GET_API_VERSION`. */
export const VFIO_GET_API_VERSION: IoctlDecl = vfioIoctl("VFIO_GET_API_VERSION", 0);
/** `VFIO_CHECK_EXTENSION`. */
export const VFIO_CHECK_EXTENSION: IoctlDecl = vfioIoctl("VFIO_CHECK_EXTENSION", 1);
/** `VFIO_SET_IOMMU`. */
export const VFIO_SET_IOMMU: IoctlDecl = vfioIoctl("VFIO_SET_IOMMU", 2);
/** `VFIO_GROUP_GET_STATUS`. */
export const VFIO_GROUP_GET_STATUS: IoctlDecl = vfioIoctl("VFIO_GROUP_GET_STATUS", 3);
/** `VFIO_GROUP_SET_CONTAINER`. */
export const VFIO_GROUP_SET_CONTAINER: IoctlDecl = vfioIoctl("VFIO_GROUP_SET_CONTAINER", 4);
/** `VFIO_GROUP_UNSET_CONTAINER`. */
export const VFIO_GROUP_UNSET_CONTAINER: IoctlDecl = vfioIoctl("VFIO_GROUP_UNSET_CONTAINER", 5);
/** `VFIO_GROUP_GET_DEVICE_FD`. */
export const VFIO_GROUP_GET_DEVICE_FD: IoctlDecl = vfioIoctl("VFIO_GROUP_GET_DEVICE_FD", 6);
/** `VFIO_DEVICE_BIND_IOMMUFD`. */
export const VFIO_DEVICE_BIND_IOMMUFD: IoctlDecl = vfioIoctl("VFIO_DEVICE_BIND_IOMMUFD", 18);
/** `VFIO_DEVICE_ATTACH_IOMMUFD_PT`. */
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT: IoctlDecl = vfioIoctl(
  "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
  19,
);
/** `VFIO_DEVICE_DETACH_IOMMUFD_PT`. */
export const VFIO_DEVICE_DETACH_IOMMUFD_PT: IoctlDecl = vfioIoctl(
  "VFIO_DEVICE_DETACH_IOMMUFD_PT",
  20,
);
/** `VFIO_IOMMU_GET_INFO`. */
export const VFIO_IOMMU_GET_INFO: IoctlDecl = vfioIoctl("VFIO_IOMMU_GET_INFO", 12);
/** `VFIO_IOMMU_MAP_DMA`. */
export const VFIO_IOMMU_MAP_DMA: IoctlDecl = vfioIoctl("VFIO_IOMMU_MAP_DMA", 13);
/** `VFIO_IOMMU_UNMAP_DMA`. */
export const VFIO_IOMMU_UNMAP_DMA: IoctlDecl = vfioIoctl("VFIO_IOMMU_UNMAP_DMA", 14);
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
/** `VFIO_GROUP_FLAGS_VIABLE`. */
/** `VFIO_GROUP_FLAGS_VIABLE`. */
export const VFIO_GROUP_FLAGS_VIABLE = 1;
/** `VFIO_GROUP_FLAGS_CONTAINER_SET`. */
/** `VFIO_GROUP_FLAGS_CONTAINER_SET`. */
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 2;
/** `VFIO_IOMMU_INFO_PGSIZES`. */
/** `VFIO_IOMMU_INFO_PGSIZES`. */
export const VFIO_IOMMU_INFO_PGSIZES = 1;
/** `VFIO_IOMMU_INFO_CAPS`. */
/** `VFIO_IOMMU_INFO_CAPS`. */
export const VFIO_IOMMU_INFO_CAPS = 2;
/** `VFIO_DMA_MAP_FLAG_READ`. */
/** `VFIO_DMA_MAP_FLAG_READ`. */
export const VFIO_DMA_MAP_FLAG_READ = 1;
/** `VFIO_DMA_MAP_FLAG_WRITE`. */
/** `VFIO_DMA_MAP_FLAG_WRITE`. */
export const VFIO_DMA_MAP_FLAG_WRITE = 2;
/** `VFIO_DMA_UNMAP_FLAG_ALL`. */
export const VFIO_DMA_UNMAP_FLAG_ALL = 2;
/** `VFIO_IOMMU_SPAPR_INFO_DDW`. */
export const VFIO_IOMMU_SPAPR_INFO_DDW = 1;
/** `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`. */
/** `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
/** `VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`. */
/** `VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
/** `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`. */
/** `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`. */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
/** `struct vfio_group_status`. */
export const vfio_group_status = defineStruct("vfio_group_status", 8, {
  argsz: u32(0),
  flags: u32(4),
});
/** `struct vfio_iommu_type1_info`. */
export const vfio_iommu_type1_info = defineStruct("vfio_iommu_type1_info", 24, {
  argsz: u32(0),
  flags: u32(4),
  iova_pgsizes: u64(8),
  cap_offset: u32(16),
  pad: u32(20),
});
/** `struct vfio_iommu_type1_dma_map`. */
export const vfio_iommu_type1_dma_map = defineStruct("vfio_iommu_type1_dma_map", 32, {
  argsz: u32(0),
  flags: u32(4),
  vaddr: u64(8),
  iova: u64(16),
  size: u64(24),
});
/** `struct vfio_iommu_type1_dma_unmap`. */
export const vfio_iommu_type1_dma_unmap = defineStruct("vfio_iommu_type1_dma_unmap", 24, {
  argsz: u32(0),
  flags: u32(4),
  iova: u64(8),
  size: u64(16),
});
/** `struct vfio_iommu_spapr_tce_ddw_info`. */
export const vfio_iommu_spapr_tce_ddw_info = defineStruct("vfio_iommu_spapr_tce_ddw_info", 16, {
  pgsizes: u64(0),
  max_dynamic_windows_supported: u32(8),
  levels: u32(12),
});
/** `struct vfio_iommu_spapr_tce_info`. */
export const vfio_iommu_spapr_tce_info = defineStruct("vfio_iommu_spapr_tce_info", 32, {
  argsz: u32(0),
  flags: u32(4),
  dma32_window_start: u32(8),
  dma32_window_size: u32(12),
  ddw: nested(16, vfio_iommu_spapr_tce_ddw_info),
});
/** `struct vfio_iommu_spapr_register_memory`. */
export const vfio_iommu_spapr_register_memory = defineStruct(
  "vfio_iommu_spapr_register_memory",
  24,
  { argsz: u32(0), flags: u32(4), vaddr: u64(8), size: u64(16) },
);
/** `struct vfio_iommu_spapr_tce_create`. */
export const vfio_iommu_spapr_tce_create = defineStruct("vfio_iommu_spapr_tce_create", 40, {
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
export const vfio_iommu_spapr_tce_remove = defineStruct("vfio_iommu_spapr_tce_remove", 16, {
  argsz: u32(0),
  flags: u32(4),
  start_addr: u64(8),
});
/** `struct vfio_eeh_pe_err`. */
export const vfio_eeh_pe_err = defineStruct("vfio_eeh_pe_err", 24, {
  type: u32(0),
  func: u32(4),
  addr: u64(8),
  mask: u64(16),
});
/** `struct vfio_eeh_pe_op`. */
export const vfio_eeh_pe_op = defineStruct("vfio_eeh_pe_op", 40, {
  argsz: u32(0),
  flags: u32(4),
  op: u32(8),
  err: nested(16, vfio_eeh_pe_err),
});
/** `struct vfio_device_bind_iommufd`. */
export const vfio_device_bind_iommufd = defineStruct("vfio_device_bind_iommufd", 16, {
  argsz: u32(0),
  flags: u32(4),
  iommufd: s32(8),
  out_devid: u32(12),
});
/** `struct vfio_device_attach_iommufd_pt`. */
export const vfio_device_attach_iommufd_pt = defineStruct("vfio_device_attach_iommufd_pt", 12, {
  argsz: u32(0),
  flags: u32(4),
  pt_id: u32(8),
});
/** `struct vfio_device_detach_iommufd_pt`. */
export const vfio_device_detach_iommufd_pt = defineStruct("vfio_device_detach_iommufd_pt", 8, {
  argsz: u32(0),
  flags: u32(4),
});
/** One capability header in a chain. */
export interface CapEntry {
  id: number;
  version: number;
  offset: number;
  next: number;
}
/** Walk a VFIO capability chain from `first` (offsets from the start of `bytes`). */
export function parseCapChain(bytes: Uint8Array, first: number): CapEntry[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: CapEntry[] = [];
  let at = first;
  while (at !== 0 && at + 8 <= bytes.length && out.length < 64) {
    const id = dv.getUint16(at, true),
      version = dv.getUint16(at + 2, true),
      next = dv.getUint32(at + 4, true);
    out.push({ id, version, offset: at, next });
    at = next;
  }
  return out;
}
/** Decode `vfio_iommu_type1_info_cap_iova_range` at `at`. */
export function decodeIovaRangeCap(
  bytes: Uint8Array,
  at: number,
): { start: bigint; end: bigint }[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(at + 8, true);
  return Array.from(
    { length: n },
    (_, k) => ({
      start: dv.getBigUint64(at + 16 + 16 * k, true),
      end: dv.getBigUint64(at + 24 + 16 * k, true),
    }),
  );
}
/** Decode `vfio_iommu_type1_info_dma_avail` at `at`. */
export function decodeDmaAvailCap(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at + 8, true);
}
/** Decode `vfio_iommu_type1_info_cap_migration` at `at`. */
export function decodeMigrationCap(
  bytes: Uint8Array,
  at: number,
): { flags: number; pgsize_bitmap: bigint; max_dirty_bitmap_size: bigint } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  return {
    flags: dv.getUint32(at + 8, true),
    pgsize_bitmap: dv.getBigUint64(at + 16, true),
    max_dirty_bitmap_size: dv.getBigUint64(at + 24, true),
  };
}
/** `IOMMU_DESTROY`. */
export const IOMMU_DESTROY: IoctlDecl = iommufdIoctl("IOMMU_DESTROY", 0x80);
/** `IOMMU_IOAS_ALLOC`. */
export const IOMMU_IOAS_ALLOC: IoctlDecl = iommufdIoctl("IOMMU_IOAS_ALLOC", 0x81);
/** `IOMMU_IOAS_ALLOW_IOVAS`. */
export const IOMMU_IOAS_ALLOW_IOVAS: IoctlDecl = iommufdIoctl("IOMMU_IOAS_ALLOW_IOVAS", 0x82);
/** `IOMMU_IOAS_COPY`. */
export const IOMMU_IOAS_COPY: IoctlDecl = iommufdIoctl("IOMMU_IOAS_COPY", 0x83);
/** `IOMMU_IOAS_IOVA_RANGES`. */
export const IOMMU_IOAS_IOVA_RANGES: IoctlDecl = iommufdIoctl("IOMMU_IOAS_IOVA_RANGES", 0x84);
/** `IOMMU_IOAS_MAP`. */
export const IOMMU_IOAS_MAP: IoctlDecl = iommufdIoctl("IOMMU_IOAS_MAP", 0x85);
/** `IOMMU_IOAS_UNMAP`. */
export const IOMMU_IOAS_UNMAP: IoctlDecl = iommufdIoctl("IOMMU_IOAS_UNMAP", 0x86);
/** `IOMMU_OPTION`. */
export const IOMMU_OPTION: IoctlDecl = iommufdIoctl("IOMMU_OPTION", 0x87);
/** `IOMMU_HWPT_ALLOC`. */
export const IOMMU_HWPT_ALLOC: IoctlDecl = iommufdIoctl("IOMMU_HWPT_ALLOC", 0x89);
/** `IOMMU_GET_HW_INFO`. */
export const IOMMU_GET_HW_INFO: IoctlDecl = iommufdIoctl("IOMMU_GET_HW_INFO", 0x8a);
/** `IOMMU_IOAS_MAP_FIXED_IOVA`. */
/** `IOMMU_IOAS_MAP_FIXED_IOVA`. */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1;
/** `IOMMU_IOAS_MAP_WRITEABLE`. */
/** `IOMMU_IOAS_MAP_WRITEABLE`. */
export const IOMMU_IOAS_MAP_WRITEABLE = 2;
/** `IOMMU_IOAS_MAP_READABLE`. */
/** `IOMMU_IOAS_MAP_READABLE`. */
export const IOMMU_IOAS_MAP_READABLE = 4;
/** `IOMMU_HW_INFO_TYPE_NONE`. */
/** `IOMMU_HW_INFO_TYPE_NONE`. */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
/** `IOMMU_HW_INFO_TYPE_INTEL_VTD`. */
/** `IOMMU_HW_INFO_TYPE_INTEL_VTD`. */
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
/** `struct iommu_destroy`. */
export const iommu_destroy = defineStruct("iommu_destroy", 8, { size: u32(0), id: u32(4) });
/** `struct iommu_ioas_alloc`. */
export const iommu_ioas_alloc = defineStruct("iommu_ioas_alloc", 12, {
  size: u32(0),
  flags: u32(4),
  out_ioas_id: u32(8),
});
/** `struct iommu_iova_range`. */
export const iommu_iova_range = defineStruct("iommu_iova_range", 16, {
  start: u64(0),
  last: u64(8),
});
/** `struct iommu_ioas_iova_ranges`. */
export const iommu_ioas_iova_ranges = defineStruct("iommu_ioas_iova_ranges", 32, {
  size: u32(0),
  ioas_id: u32(4),
  num_iovas: u32(8),
  __reserved: u32(12),
  allowed_iovas: u64(16),
  out_iova_alignment: u64(24),
});
/** `struct iommu_ioas_allow_iovas`. */
export const iommu_ioas_allow_iovas = defineStruct("iommu_ioas_allow_iovas", 24, {
  size: u32(0),
  ioas_id: u32(4),
  num_iovas: u32(8),
  __reserved: u32(12),
  allowed_iovas: u64(16),
});
/** `struct iommu_ioas_map`. */
export const iommu_ioas_map = defineStruct("iommu_ioas_map", 40, {
  size: u32(0),
  flags: u32(4),
  ioas_id: u32(8),
  __reserved: u32(12),
  user_va: u64(16),
  length: u64(24),
  iova: u64(32),
});
/** `struct iommu_ioas_copy`. */
export const iommu_ioas_copy = defineStruct("iommu_ioas_copy", 40, {
  size: u32(0),
  flags: u32(4),
  dst_ioas_id: u32(8),
  src_ioas_id: u32(12),
  length: u64(16),
  dst_iova: u64(24),
  src_iova: u64(32),
});
/** `struct iommu_ioas_unmap`. */
export const iommu_ioas_unmap = defineStruct("iommu_ioas_unmap", 24, {
  size: u32(0),
  ioas_id: u32(4),
  iova: u64(8),
  length: u64(16),
});
/** `struct iommu_option`. */
export const iommu_option = defineStruct("iommu_option", 24, {
  size: u32(0),
  option_id: u32(4),
  op: u16(8),
  __reserved: u16(10),
  object_id: u32(12),
  val64: u64(16),
});
/** `struct iommu_hwpt_alloc`. */
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
/** `struct iommu_hw_info`. */
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
/** `struct iommu_hw_info_vtd`. */
export const iommu_hw_info_vtd = defineStruct("iommu_hw_info_vtd", 24, {
  flags: u32(0),
  __reserved: u32(4),
  cap_reg: u64(8),
  ecap_reg: u64(16),
});
