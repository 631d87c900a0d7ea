/**
 * The simulated machine: {@link createMachine} builds a Linux 6.12 kernel with VFIO and iommufd,
 * one IOMMU model (Intel VT-d, Arm SMMUv3, virtio-iommu or POWER sPAPR TCE) and simulated PCI
 * devices whose DMA goes through it. Its `kernel` is a `Kernel`, so the framework and every driver
 * run on it unchanged; IOMMU faults come back in the vendor's format, and the machine's trace ring
 * shows maps, unmaps, invalidations and faults as they happen. Around the NICs: an Ethernet
 * segment (a tap sees every frame: feed the main entry's `PcapWriter` for a capture), simulated
 * peers and a bridge to real host UDP sockets.
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
  type DeviceModelFactory,
  type MachineDevice,
  type MachineOptions,
  type ModelContext,
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
export { type ClockTarget, type ScheduledEvent, VirtualClock } from "./clock.ts";
export type { ByteViews } from "./bytes.ts";
export {
  type PhysicalChunk,
  PhysicalMemory,
  type ProcessMapping,
  ProcessMemory,
} from "./memory.ts";
export { type MachineResources, machineResources, resourceChanges } from "./resources.ts";

// ---- Fault injection (machine.inject(bdf)) ----
export {
  type DeviceFaultCounters,
  type DeviceFaultParts,
  DeviceFaults,
  hasLink,
} from "./faults/device_faults.ts";
export { type DmaFaultRule, DmaFaults, type FaultRecorder } from "./faults/dma_faults.ts";
export {
  type InterruptFaultCounters,
  InterruptFaults,
  type InterruptKind,
} from "./faults/irq_faults.ts";
export { GatedClock } from "./faults/gated_clock.ts";

// ---- Proposals, not Linux ABI: the system-wide PASID space and its lifecycle ----
export {
  DEFAULT_PASID_QUARANTINE_NS,
  type PasidState,
  SystemPasidSpace,
} from "./kernel/pasid_space.ts";
export {
  PASID_DRAIN_POLL_NS,
  PASID_DRAIN_TIMEOUT_NS,
  type PasidDrainSource,
  type PasidStopCallback,
  PasidTeardown,
  type PasidTeardownEvent,
  type PasidTeardownOptions,
} from "./kernel/pasid_teardown.ts";
export { SvaProcess, type SvaProcessOptions } from "./kernel/sva.ts";
export {
  nativeAllocator,
  type PasidAllocator,
  PasidAllocators,
  type PasidAttachPolicy,
  viommuAllocator,
  type ViommuPasidRequests,
} from "./kernel/pasid_allocators.ts";
export type { MachinePasids } from "./machine_pasids.ts";

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
  PasidAllocOptions,
  PasidHolder,
  ReservedRegion,
  ReservedRegionType,
  SharedPasidSpace,
  TranslateResult,
  TranslationHint,
} from "./iommu/model.ts";
export { PASID_BITS, TranslationEpoch } from "./iommu/model.ts";
export type {
  BarDecl,
  DeviceHost,
  DmaPort,
  InterruptSink,
  LinkControl,
  PciConfig,
  PciDeviceModel,
} from "./pci/device.ts";
export {
  VIRTIO_NET_BAR,
  VIRTIO_REGION,
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

// ---- The network around the NICs ----
export {
  EthernetSegment,
  type FrameTap,
  type SegmentLink,
  type SegmentPort,
} from "./net/segment.ts";
export { type PeerDatagram, SimPeer, type SimPeerOptions } from "./net/peer.ts";
export { UdpBridge, type UdpBridgeOptions } from "./net/bridge.ts";
export {
  MAX_TRAFFIC_FRAME,
  MIN_TRAFFIC_FRAME,
  TrafficPort,
  type TrafficPortOptions,
} from "./net/traffic.ts";
