/**
 * The simulated machine: `createMachine()` and the simulated Linux kernel behind the `Kernel`
 * seam, with the contracts its parts implement (IOMMU model, PCI device model, simulated files).
 *
 * @example
 * ```ts
 * import { createMachine } from "@deno-vfio/deno-vfio/sim";
 * const machine = createMachine({ iommu: "vtd" });
 * machine.kernel.readlink("/sys/bus/pci/devices/0000:00:02.0/iommu_group");
 * // "../../../kernel/iommu_groups/2"
 * ```
 *
 * @module
 */

export * from "./machine.ts";
export type { DeviceModelName } from "./machine_models.ts";
export * from "./kernel/sim_kernel.ts";
export * from "./kernel/process.ts";
export * from "./kernel/vfs.ts";
export * from "./kernel/file.ts";
export * from "./kernel/pci_function.ts";
export * from "./kernel/eventfd.ts";
export * from "./kernel/mmio.ts";
export * from "./kernel/pasid_space.ts";
export * from "./iommu/model.ts";
export * from "./pci/device.ts";
export * from "./clock.ts";
export * from "./memory.ts";
export type { IoctlArch } from "../ffi/ioctl.ts";
export type { AnonymousMapOptions, Kernel, MappedMemory, Mmio, PollFd } from "../ffi/kernel.ts";
export * from "./net/segment.ts";
export * from "./net/peer.ts";
export * from "./net/pcap.ts";
export * from "./net/bridge.ts";
export * from "./net/traffic.ts";
export {
  type VirtioNetCounters,
  VirtioNetDevice,
  type VirtioNetDeviceOptions,
} from "./pci/virtio_net.ts";
export {
  type E1000Counters,
  E1000Device,
  type E1000DeviceOptions,
  type E1000Model,
} from "./pci/e1000_device.ts";
export { type MsixOutcome, MsixTable, type MsixTableLayout } from "./pci/msix_table.ts";
