/**
 * What the VFIO object model needs from the rest of the simulated machine, passed once to every
 * VFIO object: ioctl encoding, page size, physical memory, file references, module parameters,
 * the PCI bus and a trace sink; and the contract of the container's IOMMU drivers
 * (`struct vfio_iommu_driver_ops`, drivers/vfio/container.c): the registered backends a container
 * polls with CHECK_EXTENSION and opens with SET_IOMMU — type1 on x86 and arm64, sPAPR TCE on
 * POWER. Which drivers a machine registers is data chosen with its IOMMU model
 * (sim/machine_models.ts).
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
import type { SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";

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

/** An open IOMMU driver instance of a container (`iommu_data` with its ops). */
export interface VfioIommuDriver {
  /** `VFIO_CHECK_EXTENSION` answered by this instance. */
  checkExtension(ext: bigint): number;
  /**
   * A container ioctl other than the container's own: the result or -errno, or undefined when
   * the driver does not know the request (the container answers ENOTTY). `arg` is the raw
   * argument; drivers copy user memory themselves.
   */
  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number | undefined;
  /** `attach_group`: 0 or -errno. */
  attachGroup(group: SimIommuGroup): number;
  /** `detach_group`. */
  detachGroup(group: SimIommuGroup): void;
  /** `release`: the last group left (or the container closed); free everything. */
  release(): void;
}

/** A registered IOMMU driver (`vfio_register_iommu_driver`). */
export interface VfioIommuDriverSpec {
  /** Module name, e.g. "vfio_iommu_type1". */
  readonly name: string;
  /** `VFIO_CHECK_EXTENSION` without an instance (the container polls before SET_IOMMU). */
  checkExtension(ext: bigint): number;
  /** `open(arg)`: an instance for the IOMMU type, or -errno. */
  open(type: bigint, env: VfioEnv): VfioIommuDriver | number;
}
