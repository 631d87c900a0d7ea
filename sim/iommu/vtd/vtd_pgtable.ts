/**
 * The VT-d second-stage (second-level) I/O page table, in the real format, in simulated physical
 * memory: 4 KiB table pages of 512 little-endian u64 entries, 9 bits of IOVA per level, 3/4/5
 * levels for 39/48/57-bit widths (VT-d §9.8 "Second-Stage Paging Entries"; Linux
 * drivers/iommu/intel/iommu.h `DMA_PTE_*`; iommu-models.md §1.2).
 *
 * Entry bits: R bit 0, W bit 1, PS bit 7 (a 2 MiB / 1 GiB leaf in a non-leaf level), address
 * bits 51:12. R = W = 0 means not present. Non-leaf entries carry R|W, as Linux writes them.
 * The format is data ({@link VTD_SL_FORMAT}) for the shared walker and table of ../pgtable.ts;
 * VT-d numbers levels as that module's heights (1 = 4 KiB).
 *
 * @module
 */

import type { PhysicalMemory } from "../../memory.ts";
import type { MapProtection } from "../model.ts";
import {
  radixIndex,
  radixPageSize,
  RadixTable,
  type RadixWriteFormat,
  walkRadix,
} from "../pgtable.ts";

/** Second-stage PTE: read permission. */
export const VTD_PTE_R = 1n << 0n;
/** Second-stage PTE: write permission. */
export const VTD_PTE_W = 1n << 1n;
/** Second-stage PTE: page size (large-page leaf at level 2 or 3). */
export const VTD_PTE_PS = 1n << 7n;
/** Second-stage PTE: address bits 51:12. */
export const VTD_PTE_ADDR_MASK = ((1n << 52n) - 1n) & ~0xfffn;

/** Size of a page-table page and of the smallest page. */
export const VTD_PAGE_SIZE = 4096;
/** log2 of {@link VTD_PAGE_SIZE}. */
export const VTD_PAGE_SHIFT = 12;
/** Entries per table page. */
export const VTD_PTES_PER_TABLE = 512;
/** IOVA bits per level. */
export const VTD_LEVEL_STRIDE = 9;
/** Bytes per entry. */
const PTE_BYTES = 8;

/** The second-stage entry format (VT-d §9.8), as the shared walker and table read and write it. */
export const VTD_SL_FORMAT: RadixWriteFormat = {
  name: "VT-d",
  pageShift: VTD_PAGE_SHIFT,
  levelStride: VTD_LEVEL_STRIDE,
  entryBytes: PTE_BYTES,
  addrMask: VTD_PTE_ADDR_MASK,
  present: (pte) => (pte & (VTD_PTE_R | VTD_PTE_W)) !== 0n,
  isTable: (pte, level) => level > 1 && (pte & VTD_PTE_PS) === 0n,
  tableEntry: (child) => child | VTD_PTE_R | VTD_PTE_W,
  leafAttrs: (prot) => (prot.read ? VTD_PTE_R : 0n) | (prot.write ? VTD_PTE_W : 0n),
  leafEntry: (phys, level, attrs) => phys | attrs | (level > 1 ? VTD_PTE_PS : 0n),
  attrsOf: (pte) => pte & (VTD_PTE_R | VTD_PTE_W),
};

/** Bytes mapped by one entry at `level` (1: 4 KiB, 2: 2 MiB, 3: 1 GiB, …). */
export function levelSize(level: number): bigint {
  return radixPageSize(VTD_SL_FORMAT, level);
}

/** A resolved translation. */
export interface VtdWalk {
  /** Physical address of the byte at the looked-up IOVA. */
  readonly phys: bigint;
  /** Permissions of the leaf. */
  readonly prot: MapProtection;
  /** First IOVA of the leaf page. */
  readonly pageIova: bigint;
  /** Bytes mapped by the leaf (4 KiB, 2 MiB, 1 GiB). */
  readonly pageSize: bigint;
  /** Level of the leaf (1 = 4 KiB). */
  readonly level: number;
}

/** One second-stage page table (a domain's), owning its table pages in physical memory. */
export class SecondStageTable extends RadixTable {
  readonly #memory: PhysicalMemory;

  /**
   * A table with `levels` levels; `largestLeafLevel` is 3 with 1 GiB pages, 2 with 2 MiB only, 1
   * without large pages. Throws when physical memory cannot hold the root table.
   */
  constructor(memory: PhysicalMemory, readonly levels: number, readonly largestLeafLevel: number) {
    super(memory, VTD_SL_FORMAT, levels, largestLeafLevel);
    this.#memory = memory;
  }

  /** Physical address of entry `index` of the table at `table`. */
  static entryAddress(table: number, index: number): number {
    return table + index * PTE_BYTES;
  }

  /** Index of `iova` in a table of `level`. */
  static indexOf(iova: bigint, level: number): number {
    return radixIndex(VTD_SL_FORMAT, iova, level);
  }

  /** Walk to the leaf mapping `iova`, or undefined when not mapped. */
  walk(iova: bigint): VtdWalk | undefined {
    const w = walkRadix(this.#memory, VTD_SL_FORMAT, BigInt(this.root), this.levels, iova);
    if (!w.ok) return undefined;
    return {
      phys: w.out,
      prot: { read: (w.entry & VTD_PTE_R) !== 0n, write: (w.entry & VTD_PTE_W) !== 0n },
      pageIova: w.pageIova,
      pageSize: w.pageSize,
      level: w.height,
    };
  }
}
