/**
 * What a simulated SMMUv3 (smmuv3.ts) is built with: its options, and the defaults it takes from
 * QEMU 10's `virt` machine and Linux 6.12's arm-smmu-v3 driver (the software-MSI window, the
 * device name in log lines, ASID/VMID numbering, the stage-1 input size, queue and IOTLB sizes).
 *
 * @module
 */

import type { VirtualClock } from "../../clock.ts";
import type { PhysicalMemory } from "../../memory.ts";

/** Linux's software-MSI window (`MSI_IOVA_BASE`, `MSI_IOVA_LENGTH`), inclusive. */
export const SMMU_SW_MSI_WINDOW = { start: 0x0800_0000n, end: 0x080f_ffffn } as const;
/** Device name of the SMMU on QEMU's virt machine (MMIO base 0x9050000), as Linux logs it. */
export const SMMU_QEMU_VIRT_NAME = "9050000.smmuv3";
/** Linux allocates ASIDs and VMIDs from 1. */
export const SMMU_FIRST_ID = 1;
/** Stage-1 input size of Linux's domains: 48 bits (VA_BITS of the Debian arm64 kernel). */
export const SMMU_S1_INPUT_BITS = 48;
/** Default IOTLB capacity in entries. */
export const SMMU_IOTLB_ENTRIES = 512;
/** Default log2 of the event-queue size. */
export const SMMU_EVTQ_SHIFT = 7;

/** Options of `SmmuV3Iommu`. */
export interface SmmuV3Options {
  /** Physical memory that holds the tables and queues. */
  readonly memory: PhysicalMemory;
  /** The machine's clock (event timestamps). */
  readonly clock: VirtualClock;
  /** SubstreamID (PASID) bits, 0..20 (default 0, QEMU 10's default). */
  readonly ssidBits?: number;
  /** Output address size, one of 32/36/40/42/44/48/52 (default 48). */
  readonly oasBits?: number;
  /** A linear stream table instead of Linux's 2-level one (default false). */
  readonly linearStreamTable?: boolean;
  /** MSI isolation as the kernel sees it (default true: GICv3 ITS). */
  readonly msiIsolated?: boolean;
  /** Device name in log lines (default {@link SMMU_QEMU_VIRT_NAME}). */
  readonly name?: string;
  /** IOTLB capacity in entries (default {@link SMMU_IOTLB_ENTRIES}). */
  readonly iotlbEntries?: number;
  /** log2 of the event-queue size (default {@link SMMU_EVTQ_SHIFT}). */
  readonly eventQueueShift?: number;
  /** Drain the event queue after each event, as Linux's event thread does (default true). */
  readonly hostDrainsEvents?: boolean;
  /** Trace sink for maps, unmaps, attaches and events. */
  readonly trace?: (line: string) => void;
  /** Host kernel log sink: the lines Linux prints for each drained event. */
  readonly kernelLog?: (line: string) => void;
  /** Nested translation (`SmmuV3Iommu.nesting`; default false). */
  readonly nesting?: boolean;
}
