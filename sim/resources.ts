/**
 * What a simulated machine's process and kernel hold right now — open fds and files, memory
 * mappings, locked pages, machine memory in use, IOMMU translation contexts — as one snapshot,
 * and the difference between two snapshots. A test takes one before a driver opens and one after
 * it closed: any difference is something the driver (or the framework under it) left behind.
 *
 * @example
 * ```ts
 * const before = machineResources(machine);
 * runTheDriver();
 * const leaks = resourceChanges(before, machineResources(machine)); // [] when nothing leaked
 * ```
 *
 * @module
 */

import type { SimMachine } from "./machine.ts";

/** One snapshot (see the module doc). */
export interface MachineResources {
  /** File descriptors in the process's table. */
  readonly fds: number;
  /** Open files, including those only kernel objects still reference (a group held by a device). */
  readonly files: number;
  /** Anonymous memory mappings of the process (DMA buffers live in these). */
  readonly mappings: number;
  /** Bytes of those mappings. */
  readonly mappedBytes: number;
  /** Device regions (BARs) mapped into the process. */
  readonly deviceMappings: number;
  /** Pages charged to the process's locked memory (VmLck). */
  readonly lockedPages: number;
  /** Machine memory in use: process memory, pinned pages, IOMMU page tables and queues. */
  readonly physicalBytes: number;
  /** IOMMU translation contexts the kernel holds (domains; sPAPR: TCE windows). */
  readonly iommuDomains: number;
}

/** A snapshot of `machine` now. */
export function machineResources(machine: SimMachine): MachineResources {
  const process = machine.kernel.process;
  const mappings = process.memory.mappings;
  return {
    fds: process.openFds().length,
    files: process.liveFiles,
    mappings: mappings.length,
    mappedBytes: mappings.reduce((sum, m) => sum + m.length, 0),
    deviceMappings: machine.kernel.deviceMappings,
    lockedPages: process.lockedPages,
    physicalBytes: machine.memory.usedBytes,
    iommuDomains: machine.iommu.domainsInUse?.() ?? 0,
  };
}

/** What each figure means, for messages. */
const LABELS: Readonly<Record<keyof MachineResources, string>> = {
  fds: "open file descriptors",
  files: "open files",
  mappings: "memory mappings",
  mappedBytes: "mapped bytes",
  deviceMappings: "mapped device regions",
  lockedPages: "locked pages (VmLck)",
  physicalBytes: "machine memory bytes in use",
  iommuDomains: "IOMMU domains",
};

/**
 * One line per figure that differs: "open file descriptors: 3 before, 5 after"; figures named in
 * `ignore` are not compared.
 */
export function resourceChanges(
  before: MachineResources,
  after: MachineResources,
  ignore: readonly (keyof MachineResources)[] = [],
): string[] {
  const out: string[] = [];
  for (const key of Object.keys(LABELS) as (keyof MachineResources)[]) {
    if (!ignore.includes(key) && before[key] !== after[key]) {
      out.push(`${LABELS[key]}: ${before[key]} before, ${after[key]} after`);
    }
  }
  return out;
}
