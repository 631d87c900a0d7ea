/**
 * What the VFIO object model needs from the rest of the simulated machine, passed once to every
 * VFIO object: ioctl encoding, page size, physical memory, file references, module parameters,
 * the PCI bus and a trace sink.
 *
 * @module
 */

import type { IoctlArch } from "../../ffi/ioctl.ts";
import { type IoctlDecl, ioctlNumber } from "../../ffi/uapi/common.ts";
import type { VirtualClock } from "../clock.ts";
import type { PhysicalMemory } from "../memory.ts";
import type { PciBus } from "../kernel/pci_bus.ts";
import type { FileRefs } from "../kernel/process.ts";
import type { KernelVersion } from "../kernel_version.ts";
import type { VfioIommuDriverSpec } from "./iommu_driver.ts";

/** vfio_iommu_type1 module parameters. */
export interface Type1Params {
  /** `allow_unsafe_interrupts`. */
  readonly allowUnsafeInterrupts: boolean;
  /** `dma_entry_limit`. */
  readonly dmaEntryLimit: number;
}

/** The environment of the VFIO object model. */
export interface VfioEnv {
  /** ioctl number encoding. */
  readonly arch: IoctlArch;
  /** PAGE_SIZE. */
  readonly pageSize: number;
  /** The machine's physical memory. */
  readonly physical: PhysicalMemory;
  /** The machine's clock. */
  readonly clock: VirtualClock;
  /** Kernel-internal file references. */
  readonly refs: FileRefs;
  /** The PCI bus (driver binding, group viability). */
  readonly bus: PciBus;
  /** The container IOMMU drivers registered, in registration order (type1; sPAPR TCE on POWER). */
  readonly iommuDrivers: readonly VfioIommuDriverSpec[];
  /** type1 module parameters. */
  readonly type1: Type1Params;
  /** Whether the platform can add MSI-X vectors while MSI-X is enabled (no NORESIZE). */
  readonly dynamicMsix: boolean;
  /** The Linux version answered as (post-6.12 uAPI only when later). */
  readonly kernelVersion: KernelVersion;
  /** Append a line to the machine trace. */
  trace(line: string): void;
}

/** A request-number → handler table for one fd type, built for an architecture. */
export function ioctlTable<H>(arch: IoctlArch, entries: [IoctlDecl, H][]): Map<number, H> {
  return new Map(entries.map(([decl, handler]) => [ioctlNumber(arch, decl), handler]));
}
