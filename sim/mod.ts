/**
 * The simulated machine: {@link createMachine} builds a Linux 6.12 kernel with VFIO and iommufd,
 * one IOMMU model (Intel VT-d, Arm SMMUv3, virtio-iommu or POWER sPAPR TCE) and simulated PCI
 * devices whose DMA goes through it. Its `kernel` is a `Kernel`, so the framework and every driver
 * run on it unchanged; IOMMU faults come back in the vendor's format, and the machine's trace ring
 * shows maps, unmaps, invalidations and faults as they happen. Around the NICs: an Ethernet
 * segment, simulated peers, pcap capture and a bridge to real host UDP sockets.
 *
 * @example
 * ```ts
 * import { createMachine } from "@deno-vfio/deno-vfio/sim";
 * import { EduDriver, openPciDevice } from "@deno-vfio/deno-vfio";
 *
 * const machine = createMachine({ iommu: "vtd" });
 * machine.tracer.subscribe((e) => console.log(e.line)); // "vtd map did=2 iova=0x1000 …"
 * using dev = openPciDevice("0000:00:02.0", { kernel: machine.kernel, iommu: "auto" });
 * const edu = EduDriver.open(dev, { interrupts: "msi" });
 * await edu.dmaFromDeviceToIova(0x0800_0000n, 64); // nothing mapped there: a DMAR fault
 * machine.faults().at(-1)?.message; // "DMAR: [DMA Write NO_PASID] Request device [00:02.0] …"
 * ```
 *
 * @module
 */

// ---- The machine ----
export {
  createMachine,
  type MachineDevice,
  type MachineOptions,
  type SimMachine,
} from "./machine.ts";
export type { DeviceModelName, IommuModelName } from "./machine_models.ts";
export {
  DEFAULT_TRACE_CAPACITY,
  type TraceEvent,
  TraceRing,
  type TraceSource,
  type TraceSubscriber,
} from "./trace.ts";
export { type ScheduledEvent, VirtualClock } from "./clock.ts";
export {
  type PhysicalChunk,
  PhysicalMemory,
  type ProcessMapping,
  ProcessMemory,
} from "./memory.ts";
export { SystemPasidSpace } from "./kernel/pasid_space.ts";

// ---- The simulated kernel behind the Kernel seam ----
export type { AnonymousMapOptions, Kernel, MappedMemory, Mmio, PollFd } from "../ffi/kernel.ts";
export type { IoctlArch } from "../ffi/ioctl.ts";
export { SimKernel, type SimKernelOptions } from "./kernel/sim_kernel.ts";
export type { EventFd, EventFdListener } from "./kernel/eventfd.ts";
export type { FileRefs, KernelProcess, ProcessLimits } from "./kernel/process.ts";
export type { SimFile, SimProcess } from "./kernel/file.ts";
export type { DmaOwner, SimIommuGroup, SimPciFunction } from "./kernel/pci_function.ts";
export { MmioFault, type MmioTarget, type MmioWidth } from "./kernel/mmio.ts";
export type { Resolved, Vfs, VfsCharDev, VfsDir, VfsFile, VfsLink, VfsNode } from "./kernel/vfs.ts";

// ---- The contracts of the hardware models ----
export type {
  DmaAccess,
  IommuDomain,
  IommuFacts,
  IommuFault,
  IommuModel,
  IommuNesting,
  MapProtection,
  NestedStage1,
  PageRequest,
  PageRequestHandler,
  PasidAllocator,
  ReservedRegion,
  ReservedRegionType,
  TranslateResult,
} from "./iommu/model.ts";
export type {
  BarDecl,
  DeviceHost,
  DmaPort,
  InterruptSink,
  PciConfig,
  PciDeviceModel,
} from "./pci/device.ts";
export {
  type VirtioNetCounters,
  VirtioNetDevice,
  type VirtioNetDeviceOptions,
} from "./pci/virtio_net.ts";

// ---- The network around the NICs ----
export {
  EthernetSegment,
  type FrameTap,
  type SegmentLink,
  type SegmentPort,
} from "./net/segment.ts";
export { type PeerDatagram, SimPeer, type SimPeerOptions } from "./net/peer.ts";
export { type PcapSink, PcapWriter } from "./net/pcap.ts";
export { UdpBridge, type UdpBridgeOptions } from "./net/bridge.ts";
