/**
 * The built-in device models and IOMMU models `createMachine` knows by name.
 *
 * @module
 */

import type { IoctlArch } from "../ffi/ioctl.ts";
import type { VirtualClock } from "./clock.ts";
import type { IommuModel } from "./iommu/model.ts";
import { PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PCI_COMMAND_SERR } from "./pci/pci_regs.ts";
import { SmmuV3Iommu } from "./iommu/smmuv3/smmuv3.ts";
import { SpaprTceIommu } from "./iommu/spapr/spapr_tce.ts";
import { VirtioIommu } from "./iommu/virtio_iommu/virtio_iommu.ts";
import { VIOMMU_QEMU_FEATURES } from "./iommu/virtio_iommu/virtio_iommu_device.ts";
import { VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID } from "./iommu/virtio_iommu/virtio_iommu_pasid.ts";
import type { SystemPasidSpace } from "./kernel/pasid_space.ts";
import { VtdIommu } from "./iommu/vtd/vtd.ts";
import type { PhysicalMemory } from "./memory.ts";
import { EduDevice } from "./pci/edu.ts";
import type { PciDeviceModel } from "./pci/device.ts";
import { PasidDmaDevice } from "./pci/pasid_dma.ts";
import { VirtioNetDevice } from "./pci/virtio_net.ts";
import { E1000Device } from "./pci/e1000_device.ts";
import type { EthernetSegment } from "./net/segment.ts";
import type { VfioIommuDriverSpec } from "./vfio/env.ts";
import { SPAPR_TCE_DRIVER } from "./vfio/spapr_ioctl.ts";
import { TYPE1_DRIVER } from "./vfio/type1_driver.ts";

/** Names of built-in models. */
export type DeviceModelName = "edu" | "virtio-net" | "pasid-dma" | "e1000e" | "igb";

/** What a model may be plugged into besides the PCI bus. */
export interface ModelContext {
  /** The Ethernet segment the model plugs into (the machine's, or the one its device entry named). */
  readonly segment: EthernetSegment;
  /** How many models of this name were created before. */
  readonly instance: number;
  /** How many NIC models (of any name) were created before on this machine. */
  readonly nic: number;
}

/** QEMU's first NIC MAC, 52:54:00:12:34:56; later NICs count up in the last byte. */
const QEMU_MAC_PREFIX = [0x52, 0x54, 0x00, 0x12, 0x34];
const QEMU_FIRST_MAC_BYTE = 0x56;

/** The MAC QEMU gives the machine's `nic`-th NIC (counting from 0, in creation order). */
function qemuMac(nic: number): Uint8Array {
  return new Uint8Array([...QEMU_MAC_PREFIX, (QEMU_FIRST_MAC_BYTE + nic) & 0xff]);
}

/** Models that are NICs (they take the next QEMU MAC). */
const NIC_MODELS: ReadonlySet<DeviceModelName> = new Set(["virtio-net", "e1000e", "igb"]);

/** Whether built-in model `name` is a NIC. */
export function isNicModel(name: DeviceModelName): boolean {
  return NIC_MODELS.has(name);
}

/** Factories of the built-in models (a user's factory has the same type). */
const MODELS: Record<DeviceModelName, (ctx: ModelContext) => PciDeviceModel> = {
  edu: () => new EduDevice(),
  "virtio-net": (ctx) => new VirtioNetDevice({ segment: ctx.segment, mac: qemuMac(ctx.nic) }),
  "pasid-dma": () => new PasidDmaDevice(),
  e1000e: (ctx) => new E1000Device("e1000e", { segment: ctx.segment, mac: qemuMac(ctx.nic) }),
  igb: (ctx) => new E1000Device("igb", { segment: ctx.segment, mac: qemuMac(ctx.nic) }),
};

/** A new instance of a built-in model. */
export function createDeviceModel(name: DeviceModelName, ctx: ModelContext): PciDeviceModel {
  const make = MODELS[name];
  if (make === undefined) throw new Error(`createMachine: unknown device model "${name}"`);
  return make(ctx);
}

/** Names of built-in IOMMU models. */
export type IommuModelName = "vtd" | "smmuv3" | "virtio-iommu" | "spapr";

/** What an IOMMU model is built with. */
export interface IommuContext {
  /** Physical memory (page tables, stream tables, queues). */
  readonly memory: PhysicalMemory;
  /** The machine's clock. */
  readonly clock: VirtualClock;
  /** VT-d interrupt remapping (QEMU `intremap=on`). */
  readonly intremap: boolean;
  /** Trace and kernel-log sink. */
  readonly log: (line: string) => void;
  /** The kernel's PAGE_SIZE. */
  readonly pageSize: number;
  /** **Proposal**: the system-wide PASID space virtio-iommu's ALLOC_PASID draws from, if any. */
  readonly pasidSpace?: SystemPasidSpace;
  /** VT-d scalable mode (PASID tables, nesting); undefined: legacy mode. */
  readonly vtdScalableMode?: { readonly pasidBits?: number; readonly nesting?: boolean };
  /** SMMUv3 nesting for iommufd vIOMMUs (`nesting: true`, IDR3.FWB), with SSIDSIZE bits. */
  readonly smmuNesting?: { readonly ssidBits?: number };
  /** SMMUv3 IDR1.SSIDSIZE without nesting (nesting's `ssidBits` wins when given). */
  readonly smmuSsidBits?: number;
  /** The IOMMU group (sPAPR: the PE) of a requester id, once the machine is built. */
  readonly groupOf: (requester: number) => number | undefined;
  /** Which instance of the machine's IOMMUs this is (0 first; virtio-iommu: "virtioN"). */
  readonly instance?: number;
  /** Requester ids behind this instance (default: every one), when the machine has several. */
  readonly endpoints?: readonly number[];
  /** **Proposal**: the guest every virtio-iommu of the machine serves (one PASID tenant). */
  readonly pasidTenant?: unknown;
  /** **Proposal**: the PCIe PASID width of the function at a requester id. */
  readonly endpointPasidBits?: (requester: number) => number;
}

/** What the platform around an IOMMU model fixes for the kernel. */
export interface IommuPlatform {
  /** ioctl number encoding of the architecture. */
  readonly ioctlArch: IoctlArch;
  /** PAGE_SIZE of the distribution kernels (Debian: 4 KiB on amd64/arm64, 64 KiB on ppc64el). */
  readonly pageSize: number;
  /** The VFIO container IOMMU drivers the kernel registers. */
  readonly iommuDrivers: readonly VfioIommuDriverSpec[];
  /** CONFIG_VFIO_DEVICE_CDEV is possible (6.12: `depends on IOMMUFD && !SPAPR_TCE_IOMMU`). */
  readonly vfioCdev: boolean;
  /** /sys/kernel/iommu_groups/N/type of a group with its default domain. */
  readonly defaultDomainType: string;
  /**
   * The COMMAND bits boot firmware leaves in every function (Linux's `pci_enable_device` only
   * adds bits): SeaBIOS on q35 sets I/O, memory and SERR# (`pci_bios_init_device`), measured by
   * the VM bench (0x103 before VFIO enables bus mastering); arm64 virt and PowerNV boot the
   * kernel directly and leave 0.
   */
  readonly firmwareCommand: number;
}

const X86: IommuPlatform = {
  ioctlArch: "generic",
  pageSize: 4096,
  iommuDrivers: [TYPE1_DRIVER],
  vfioCdev: true,
  defaultDomainType: "DMA-FQ", // Linux's default lazy DMA domain
  firmwareCommand: PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_SERR,
};

const ARM64: IommuPlatform = { ...X86, firmwareCommand: 0 };

/**
 * The platform of each IOMMU model: x86 q35 (VT-d, virtio-iommu), arm64 virt (SMMUv3), POWER9
 * PowerNV (sPAPR TCE: powerpc ioctl encoding, 64 KiB pages, the sPAPR container driver only, no
 * VFIO cdev, and a platform default domain that sysfs shows as "unknown").
 */
export const IOMMU_PLATFORMS: Readonly<Record<IommuModelName, IommuPlatform>> = {
  vtd: X86,
  "virtio-iommu": X86,
  smmuv3: ARM64,
  spapr: {
    ioctlArch: "powerpc",
    pageSize: 65536,
    iommuDrivers: [SPAPR_TCE_DRIVER],
    vfioCdev: false,
    defaultDomainType: "unknown",
    firmwareCommand: 0,
  },
};

/**
 * Factories of the built-in IOMMU models: QEMU's intel-iommu, QEMU virt's SMMUv3 (arm64, GICv3
 * ITS), virtio-iommu-pci on q35 (x86, no IRQ remapping), and a POWER9 PowerNV PHB's TCE windows.
 */
const IOMMUS: Record<IommuModelName, (ctx: IommuContext) => IommuModel> = {
  vtd: (c) =>
    new VtdIommu({
      memory: c.memory,
      clock: c.clock,
      intremap: c.intremap,
      scalableMode: c.vtdScalableMode,
      trace: c.log,
      kernelLog: c.log,
    }),
  smmuv3: (c) =>
    new SmmuV3Iommu({
      memory: c.memory,
      clock: c.clock,
      trace: c.log,
      kernelLog: c.log,
      ssidBits: c.smmuNesting?.ssidBits ?? c.smmuSsidBits ?? 0,
      ...(c.smmuNesting ? { nesting: true } : {}),
    }),
  "virtio-iommu": (c) =>
    new VirtioIommu({
      clock: c.clock,
      platform: "x86",
      trace: c.log,
      kernelLog: c.log,
      virtioIndex: c.instance ?? 0,
      deviceOptions: {
        ...(c.endpoints ? { endpoints: c.endpoints } : {}),
        ...(c.pasidSpace
          ? {
            features: VIOMMU_QEMU_FEATURES | (1n << BigInt(VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID)),
            pasidSpace: c.pasidSpace,
            pasidTenant: c.pasidTenant,
            endpointPasidBits: c.endpointPasidBits,
          }
          : {}),
      },
      ...(c.pasidSpace ? { pasidProposal: true } : {}),
    }),
  spapr: (c) =>
    new SpaprTceIommu({
      memory: c.memory,
      clock: c.clock,
      hostPageSize: c.pageSize,
      peOf: c.groupOf,
      trace: c.log,
      kernelLog: c.log,
    }),
};

/** A new instance of a built-in IOMMU model. */
export function createIommuModel(name: IommuModelName, ctx: IommuContext): IommuModel {
  const make = IOMMUS[name];
  if (make === undefined) throw new Error(`createMachine: unknown IOMMU model "${name}"`);
  return make(ctx);
}
