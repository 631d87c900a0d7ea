/**
 * deno_vfio: userspace PCI drivers in TypeScript over Linux VFIO and iommufd, and a simulated
 * machine (`./sim`) on which the same driver code runs unchanged.
 *
 * @example
 * ```ts
 * import { openPciDevice, EduDriver } from "@deno-vfio/deno-vfio";
 * import { LinuxKernel } from "@deno-vfio/deno-vfio/linux";
 * using dev = openPciDevice("0000:00:02.0", { kernel: LinuxKernel.open(), iommu: "auto" });
 * const edu = EduDriver.open(dev, { interrupts: "msi" });
 * ```
 *
 * @module
 */

// The seam.
export * from "./ffi/kernel.ts";
export * from "./ffi/errno.ts";
export * from "./ffi/ioctl.ts";
export * from "./ffi/uapi/layout.ts";
export * from "./ffi/uapi/common.ts";
// The driver-facing framework.
export * from "./core/errors.ts";
export * from "./core/dma_backend.ts";
export * from "./core/dma_space.ts";
export * from "./core/backends.ts";
export * from "./core/container_backend.ts";
export * from "./core/type1.ts";
export * from "./core/spapr.ts";
export * from "./core/iommufd.ts";
export * from "./core/cdev.ts";
export * from "./core/syscall.ts";
export * from "./core/vtd_info.ts";
export * from "./core/smmuv3_info.ts";
export type { IommufdDevice } from "./core/iommufd_backend.ts";
export type { Type1Flavour } from "./core/type1_backend.ts";
export type { SpaprWindowRequest } from "./core/spapr_backend.ts";
export type {
  OpenedRegion,
  RegionAccessMode,
  RegionInfo,
  SparseMmapArea,
  VfioCapHeader,
} from "./core/region.ts";
export * from "./core/iova_allocator.ts";
export * from "./core/pci_device.ts";
export * from "./core/device.ts";
export * from "./core/config_space.ts";
export * from "./core/irq.ts";
export * from "./core/poll_until.ts";
export * from "./core/sysfs.ts";
// Drivers.
export * from "./drivers/net_device.ts";
export * from "./drivers/packet_pool.ts";
export {
  EDU_MAX_TRANSFER,
  type EduCompletion,
  type EduCounters,
  EduDriver,
  type EduOptions,
} from "./drivers/edu/edu.ts";
export { VirtioNet, type VirtioNetOptions } from "./drivers/virtio/net.ts";
export { E1000Controller, type E1000Options } from "./drivers/e1000/controller.ts";
export { E1000_MODELS, findE1000Model } from "./drivers/e1000/models.ts";
export type {
  E1000InterruptRegs,
  E1000IrqScheme,
  E1000Model,
  E1000QueueLayout,
} from "./drivers/e1000/model.ts";
export {
  E1000_BUFFER_SIZE,
  IntelNic,
  type IntelNicOptions,
  type IntelNicStats,
  type ReceiveFilter,
} from "./drivers/e1000/nic.ts";
export type { E1000HardwareStats } from "./drivers/e1000/stats.ts";
export { type IgbOptions, openIgb } from "./drivers/igb/igb.ts";
export { IGB_MODEL } from "./drivers/igb/model.ts";
export { type E1000eOptions, openE1000e } from "./drivers/e1000e/e1000e.ts";
export { E1000E_MODEL } from "./drivers/e1000e/model.ts";
export * from "./drivers/open_nic.ts";
export { pollForWork, waitForVectors } from "./drivers/wait_for_work.ts";
// The network stack.
export * from "./net/stack.ts";
export { ArpCache } from "./net/arp.ts";
export { formatIpv4, parseCidr, parseIpv4 } from "./net/ipv4.ts";
export { formatMac, parseMac } from "./net/ethernet.ts";
export type { UdpHandler, UdpSocket } from "./net/udp.ts";
