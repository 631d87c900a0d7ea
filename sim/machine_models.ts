/**
 * The built-in device models and IOMMU models `createMachine` knows by name.
 *
 * @module
 */

import type { VirtualClock } from "./clock.ts";
import type { IommuModel } from "./iommu/model.ts";
import { SmmuV3Iommu } from "./iommu/smmuv3.ts";
import { VirtioIommu } from "./iommu/virtio_iommu.ts";
import { VtdIommu } from "./iommu/vtd.ts";
import type { PhysicalMemory } from "./memory.ts";
import { EduDevice } from "./pci/edu.ts";
import type { PciDeviceModel } from "./pci/device.ts";
import { VirtioNetDevice } from "./pci/virtio_net.ts";
import type { EthernetSegment } from "./net/segment.ts";

/** Names of built-in models. */
export type DeviceModelName = "edu" | "virtio-net";

/** What a model may be plugged into besides the PCI bus. */
export interface ModelContext {
  /** The machine's Ethernet segment (NIC models attach their port to it). */
  readonly segment: EthernetSegment;
  /** How many models of this name were created before (distinct MACs for several NICs). */
  readonly instance: number;
}

/** QEMU's first NIC MAC, 52:54:00:12:34:56; later NICs count up in the last byte. */
const QEMU_MAC_PREFIX = [0x52, 0x54, 0x00, 0x12, 0x34];
const QEMU_FIRST_MAC_BYTE = 0x56;

/** Factories of the built-in models. */
const MODELS: Record<DeviceModelName, (ctx: ModelContext) => PciDeviceModel> = {
  edu: () => new EduDevice(),
  "virtio-net": (ctx) =>
    new VirtioNetDevice({
      segment: ctx.segment,
      mac: new Uint8Array([...QEMU_MAC_PREFIX, (QEMU_FIRST_MAC_BYTE + ctx.instance) & 0xff]),
    }),
};

/** A new instance of a built-in model. */
export function createDeviceModel(name: DeviceModelName, ctx: ModelContext): PciDeviceModel {
  const make = MODELS[name];
  if (make === undefined) throw new Error(`createMachine: unknown device model "${name}"`);
  return make(ctx);
}

/** Names of built-in IOMMU models. */
export type IommuModelName = "vtd" | "smmuv3" | "virtio-iommu";

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
}

/**
 * Factories of the built-in IOMMU models: QEMU's intel-iommu, QEMU virt's SMMUv3 (arm64, GICv3
 * ITS), and virtio-iommu-pci on q35 (x86, no IRQ remapping).
 */
const IOMMUS: Record<IommuModelName, (ctx: IommuContext) => IommuModel> = {
  vtd: (c) =>
    new VtdIommu({
      memory: c.memory,
      clock: c.clock,
      intremap: c.intremap,
      trace: c.log,
      kernelLog: c.log,
    }),
  smmuv3: (c) =>
    new SmmuV3Iommu({ memory: c.memory, clock: c.clock, trace: c.log, kernelLog: c.log }),
  "virtio-iommu": (c) =>
    new VirtioIommu({ clock: c.clock, platform: "x86", trace: c.log, kernelLog: c.log }),
};

/** A new instance of a built-in IOMMU model. */
export function createIommuModel(name: IommuModelName, ctx: IommuContext): IommuModel {
  const make = IOMMUS[name];
  if (make === undefined) throw new Error(`createMachine: unknown IOMMU model "${name}"`);
  return make(ctx);
}
