/**
 * A userspace vIOMMU's side of iommufd nesting: page tables the program owns and writes itself
 * (stage 1), translated by the IOMMU on top of the kernel's IOAS (stage 2). The table builders
 * for Intel VT-d first-stage paging and for an Arm SMMUv3 context descriptor with VMSAv8-64
 * tables, the SMMUv3 command encoder for invalidations through a vIOMMU, and the iommufd
 * constants that nesting takes: Linux 6.12's (NEST_PARENT, VTD_S1) and, for the vIOMMU objects,
 * vEVENTQs and PASID attach merged later, the values and the first Linux version that has them.
 * The iommufd calls themselves are methods of `Iommufd` (from the main entry).
 *
 * @example VT-d: a nested HWPT whose stage 1 this program writes
 * ```ts
 * import { attachIommufdPt, IommufdBackend, openPciDevice } from "@deno-vfio/deno-vfio";
 * import { createMachine } from "@deno-vfio/deno-vfio/sim";
 * import {
 *   IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_VTD_S1, VtdFirstStageTables,
 * } from "@deno-vfio/deno-vfio/viommu";
 *
 * const bdf = "0000:00:02.0";
 * const { kernel } = createMachine({ iommu: "vtd", vtdScalableMode: true });
 * using dev = openPciDevice(bdf, { kernel, iommu: "iommufd" });
 * const backend = dev.dma.backend as IommufdBackend;
 * const [device] = backend.devices();
 * const tables = new VtdFirstStageTables(dev.dma.allocate(16 * 4096));
 * const target = dev.dma.allocate(4096);
 * tables.map(0x100_0000n, target.iova, 4096n, { write: true });
 * const parent = backend.iommufd.hwptAlloc({
 *   devId: device.devId, ptId: backend.ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
 * });
 * const nested = backend.iommufd.hwptAlloc({
 *   devId: device.devId, ptId: parent, dataType: IOMMU_HWPT_DATA_VTD_S1, data: tables.hwptData(),
 * });
 * attachIommufdPt(kernel, device.fd, nested, bdf);
 * ```
 *
 * @module
 */

// ---- Stage-1 table builders ----
export { VTD_FS, VtdFirstStageTables } from "./core/vtd_stage1.ts";
export {
  SMMU_COMMANDS,
  smmuCommand,
  type SmmuCommandFields,
  type SmmuS1Dss,
  type SmmuV3Stage1Options,
  SmmuV3Stage1Tables,
} from "./core/smmuv3_stage1.ts";

// ---- Linux 6.12 nesting constants ----
export {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  IOMMU_VTD_INV_FLAGS_LEAF,
  IOMMU_VTD_S1_EAFE,
  IOMMU_VTD_S1_SRE,
  IOMMU_VTD_S1_WPE,
} from "./ffi/uapi/iommufd.ts";

// ---- Merged after 6.12: vIOMMU and vDEVICE (6.13), vEVENTQ (6.15), PASID attach (6.15) ----
export {
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_DEFAULT,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_DEFAULT,
  PASID_ATTACH_MIN_KERNEL,
  VDEVICE_PER_DEVICE_MIN_KERNEL,
  VEVENTQ_MIN_KERNEL,
  VIOMMU_MIN_KERNEL,
  VIOMMU_USER_DATA_MIN_KERNEL,
  VIOMMU_VMASTER_MIN_KERNEL,
} from "./ffi/uapi/post_6_12.ts";
