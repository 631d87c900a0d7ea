/**
 * deno_vfio: userspace PCI drivers in TypeScript over Linux VFIO and iommufd. The same driver
 * code runs on a real device (with `LinuxKernel` from `./linux`) and on a simulated machine
 * (`createMachine` from `./sim`): both are a {@link Kernel}, the one seam between the framework and
 * the operating system.
 *
 * This module is the framework a driver is written against: {@link openPciDevice} (the device,
 * its regions, config space and interrupts, and a {@link DmaSpace} for IOVA-mapped buffers), the
 * drivers that ship with it (QEMU's edu, the PASID DMA engine, virtio-net, e1000), a small
 * Ethernet/ARP/IPv4/ICMP/UDP stack over any {@link NetDevice}, and the sysfs helpers that find and
 * bind devices. User-owned stage-1 page tables for iommufd nesting are in `./viommu`.
 *
 * @example
 * ```ts
 * import { EDU_DMA_MASK, EduDriver, openPciDevice } from "@deno-vfio/deno-vfio";
 * import { LinuxKernel } from "@deno-vfio/deno-vfio/linux";
 *
 * using dev = openPciDevice("0000:00:02.0", { kernel: LinuxKernel.open(), iommu: "auto" });
 * const edu = EduDriver.open(dev, { interrupts: "msi" });
 * const buf = dev.dma.allocate(4096, { iovaLimit: EDU_DMA_MASK });
 * await edu.dmaToDevice(buf, 0, 0, 64);
 * ```
 *
 * @example The same driver on the simulator
 * ```ts
 * import { openPciDevice } from "@deno-vfio/deno-vfio";
 * import { createMachine } from "@deno-vfio/deno-vfio/sim";
 *
 * const machine = createMachine({ iommu: "smmuv3" });
 * using dev = openPciDevice("0000:00:02.0", { kernel: machine.kernel, iommu: "auto" });
 * console.log(dev.info.backend); // "iommufd"
 * ```
 *
 * @module
 */

// ---- The seam: what the framework needs from the operating system ----
export type { AnonymousMapOptions, Kernel, MappedMemory, Mmio, PollFd } from "./ffi/kernel.ts";
export { MMIO_ALL_ONES } from "./ffi/kernel.ts";
export type { IoctlArch } from "./ffi/ioctl.ts";
export { ERRNO, type ErrnoName, errnoName } from "./ffi/errno.ts";

// ---- Opening a device ----
export {
  type IommuChoice,
  openPciDevice,
  type OpenPciDeviceOptions,
  PciDevice,
  type PciDeviceInfo,
} from "./core/pci_device.ts";
export { VfioError, type VfioErrorInit } from "./core/errors.ts";
export type { HintTable } from "./core/syscall.ts";
export {
  type DependentDevice,
  type DeviceInfo,
  type FeatureSupport,
  type HotResetInfo,
  VfioDevice,
  type VfioDeviceOptions,
} from "./core/device.ts";
export type { OpenedRegion, RegionAccessMode, RegionInfo, SparseMmapArea } from "./core/region.ts";
export type { VfioCapHeader } from "./ffi/uapi/caps.ts";
export {
  ConfigSpace,
  type MsiCapability,
  type MsixCapability,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_VENDOR_ID,
  type PciCapability,
  type PciExtCapability,
} from "./core/config_space.ts";
export {
  Interrupts,
  type IrqInfo,
  type IrqMode,
  type WaitOptions,
  type WaitResult,
} from "./core/irq.ts";
export { pollUntil, type PollUntilOptions } from "./core/poll_until.ts";

// ---- DMA: IOVAs, buffers and the backends behind them ----
export {
  type DmaAllocateOptions,
  type DmaBuffer,
  type DmaMapOptions,
  DmaSpace,
  type DmaSpaceOptions,
} from "./core/dma_space.ts";
export {
  type DeviceTarget,
  type DmaBackend,
  type DmaBackendKind,
  type DmaProtection,
  type Iova,
  iova,
  type IovaRange,
} from "./core/dma_backend.ts";
export type { DmaBackendOptions } from "./core/backends.ts";
export { ContainerBackend, type ContainerMapping } from "./core/container_backend.ts";
export { Type1Backend, type Type1BackendOptions, type Type1Flavour } from "./core/type1_backend.ts";
export {
  SpaprBackend,
  type SpaprBackendOptions,
  type SpaprWindow,
  type SpaprWindowRequest,
} from "./core/spapr_backend.ts";
export { IommufdBackend, type IommufdDevice } from "./core/iommufd_backend.ts";

// ---- The VFIO and iommufd clients the backends are made of ----
export { type Type1Info, type Type1MigrationCap, VfioContainer, VfioGroup } from "./core/type1.ts";
export {
  type EehError,
  type SpaprDdwInfo,
  SpaprTceClient,
  type SpaprTceInfo,
} from "./core/spapr.ts";
export {
  type HwInfo,
  type HwptAllocArgs,
  type IoasIovaRanges,
  Iommufd,
  IommufdVeventq,
  type VeventRecord,
} from "./core/iommufd.ts";
export { IommufdFaultQueue, type PageFaultRecord } from "./core/iommufd_fault.ts";
export {
  attachIommufdPasid,
  attachIommufdPt,
  bindIommufd,
  detachIommufdPasid,
  detachIommufdPt,
} from "./core/cdev.ts";
export {
  Pasid,
  PASID_WIDTH_MAX,
  type PasidAllocateOptions,
  PasidBinding,
  PasidSpace,
  type PasidStopHandler,
} from "./core/pasid.ts";
export { DeviceRequest } from "./core/device_request.ts";
export type { VtdHwInfoValues, VtdRegisters } from "./core/vtd_info.ts";
export type { SmmuV3Registers } from "./core/smmuv3_info.ts";

// ---- Finding devices: sysfs, IOMMU groups, binding to vfio-pci ----
export {
  bindToVfioPci,
  describePciDevice,
  explainUnusable,
  findVfioNodes,
  type GroupMember,
  leavesGroupViable,
  listPciDevices,
  manualBindCommands,
  NO_VFIO_HINT,
  normalizeBdf,
  type PciDeviceDescription,
  type ReservedRegion,
  VFIO_PCI,
  type VfioNodes,
} from "./core/sysfs.ts";

// ---- Drivers ----
export {
  EDU_MAX_TRANSFER,
  type EduCompletion,
  type EduCounters,
  EduDriver,
  type EduOptions,
} from "./drivers/edu/edu.ts";
export { EDU_DEVICE_ID, EDU_DMA_MASK, EDU_VENDOR_ID } from "./drivers/edu/registers.ts";
export {
  type PasidCapabilityInfo,
  type PasidDmaCounters,
  PasidDmaDriver,
  type PasidDmaFault,
  type PasidDmaOptions,
  type PasidDmaResult,
  type PasidDmaStatus,
} from "./drivers/pasid_dma/pasid_dma.ts";
export type {
  InterruptMode,
  NetDevice,
  NetDeviceStats,
  NicHealth,
  NicOpenOptions,
  WorkWaitResult,
} from "./drivers/net_device.ts";
export {
  DEFAULT_BUFFER_SIZE,
  DEFAULT_HEADROOM,
  type DmaAllocator,
  type PacketBuffer,
  PacketPool,
} from "./drivers/packet_pool.ts";
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
export {
  type Nic,
  type NicDriver,
  nicDriverFor,
  openNic,
  type OpenNicOptions,
  SUPPORTED_NICS,
  type SupportedNic,
} from "./drivers/open_nic.ts";
export { pollForWork, waitForVectors } from "./drivers/wait_for_work.ts";

// ---- Ring building blocks: what the NIC drivers are made of, for a driver of another NIC of
// ---- these families (and the driver bench, which runs them against C over shared memory) ----
export { newNetDeviceStats } from "./drivers/net_device.ts";
export { DescriptorRing, RxRing, TxRing } from "./drivers/e1000/rings.ts";
export { programRing } from "./drivers/e1000/setup.ts";
export { DESC_SIZE, QUEUE_DT } from "./drivers/e1000/registers.ts";
export { SplitQueue, splitQueueLayout } from "./drivers/virtio/virtqueue.ts";
export { NetRing, VirtioRxRing, VirtioTxRing } from "./drivers/virtio/net_rings.ts";
export { VIRTIO_NET_HDR_SIZE } from "./drivers/virtio/registers.ts";

// ---- The network stack ----
export { NetStack, type NetStackOptions, type NetStackStats } from "./net/stack.ts";
export { RX_BATCH } from "./net/stack_config.ts";
export { NET_STACK_DROPS } from "./net/stats.ts";
export type { UdpHandler, UdpSocket } from "./net/udp.ts";
export { ArpCache } from "./net/arp.ts";
export { formatIpv4, parseCidr, parseIpv4 } from "./net/ipv4.ts";
export { formatMac, parseMac } from "./net/ethernet.ts";

// ---- Captures: pcap files, at the driver or (on the simulator) on the wire ----
export { type PcapSink, PcapWriter } from "./net/pcap.ts";
export { CaptureNetDevice, type CaptureTap, type FrameDirection } from "./net/capture.ts";
