/**
 * The VT-d second-stage (second-level) I/O page table, in the real format, in simulated physical
 * memory: 4 KiB table pages of 512 little-endian u64 entries, 9 bits of IOVA per level, 3/4/5
 * levels for 39/48/57-bit widths (VT-d §9.8 "Second-Stage Paging Entries"; Linux
 * drivers/iommu/intel/iommu.h `DMA_PTE_*`; iommu-models.md §1.2).
 *
 * Entry bits: R bit 0, W bit 1, PS bit 7 (a 2 MiB / 1 GiB leaf in a non-leaf level), address
 * bits 51:12. R = W = 0 means not present. Non-leaf entries carry R|W, as Linux writes them.
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import type { PhysicalChunk, PhysicalMemory } from "../../memory.ts";
import type { MapProtection } from "../model.ts";

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

/** Bytes mapped by one entry at `level` (1: 4 KiB, 2: 2 MiB, 3: 1 GiB, …). */
export function levelSize(level: number): bigint {
  return 1n << BigInt(VTD_PAGE_SHIFT + VTD_LEVEL_STRIDE * (level - 1));
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
export class SecondStageTable {
  readonly #memory: PhysicalMemory;
  readonly #tables = new Map<number, PhysicalChunk>();
  /** Physical address of the top-level table (what a context entry's SLPTPTR holds). */
  readonly root: number;

  /**
   * A table with `levels` levels; `largestLeafLevel` is 3 with 1 GiB pages, 2 with 2 MiB only, 1
   * without large pages. Throws when physical memory cannot hold the root table.
   */
  constructor(memory: PhysicalMemory, readonly levels: number, readonly largestLeafLevel: number) {
    this.#memory = memory;
    const root = this.#allocTable();
    if (root === undefined) throw new RangeError("VT-d: no physical memory for a root table");
    this.root = root;
  }

  /** Table pages in use (root included). */
  get tablePages(): number {
    return this.#tables.size;
  }

  /** Physical address of entry `index` of the table at `table`. */
  static entryAddress(table: number, index: number): number {
    return table + index * PTE_BYTES;
  }

  /** Index of `iova` in a table of `level`. */
  static indexOf(iova: bigint, level: number): number {
    const shift = BigInt(VTD_PAGE_SHIFT + VTD_LEVEL_STRIDE * (level - 1));
    return Number((iova >> shift) & BigInt(VTD_PTES_PER_TABLE - 1));
  }

  /** Walk to the leaf mapping `iova`, or undefined when not mapped. */
  walk(iova: bigint): VtdWalk | undefined {
    let table = this.root;
    for (let level = this.levels; level >= 1; level--) {
      const pte = this.#read(table, SecondStageTable.indexOf(iova, level));
      if (!present(pte)) return undefined;
      if (level === 1 || (pte & VTD_PTE_PS) !== 0n) {
        const size = levelSize(level);
        const offset = iova & (size - 1n);
        return {
          phys: (pte & VTD_PTE_ADDR_MASK) + offset,
          prot: { read: (pte & VTD_PTE_R) !== 0n, write: (pte & VTD_PTE_W) !== 0n },
          pageIova: iova - offset,
          pageSize: size,
          level,
        };
      }
      table = Number(pte & VTD_PTE_ADDR_MASK);
    }
    return undefined;
  }

  /** Whether any byte of `[start, end)` is mapped. */
  anyMapped(start: bigint, end: bigint): boolean {
    return this.#anyMapped(this.root, this.levels, 0n, start, end);
  }

  /**
   * Map `[iova, iova + size)` → `[phys, …)` with the largest pages alignment and size allow.
   * The caller has checked alignment and that nothing in the range is mapped. Returns 0, or
   * -ENOMEM (with nothing left mapped) when a table page cannot be allocated.
   */
  map(iova: bigint, phys: bigint, size: bigint, prot: MapProtection): number {
    const bits = (prot.read ? VTD_PTE_R : 0n) | (prot.write ? VTD_PTE_W : 0n);
    for (let done = 0n; done < size;) {
      const va = iova + done;
      const pa = phys + done;
      let level = this.largestLeafLevel;
      while (level > 1) {
        const s = levelSize(level);
        if (va % s === 0n && pa % s === 0n && size - done >= s) break;
        level--;
      }
      if (!this.#setLeaf(va, pa, level, bits)) {
        this.unmap(iova, done);
        return -ERRNO.ENOMEM;
      }
      done += levelSize(level);
    }
    return 0;
  }

  /**
   * Unmap `[iova, iova + size)`. A large page only partly inside the range is split into smaller
   * pages first, so exactly the range is removed; table pages left empty are freed. Returns the
   * bytes that were mapped. (If memory for a split runs out, the whole large page is removed.)
   */
  unmap(iova: bigint, size: bigint): bigint {
    return this.#unmap(this.root, this.levels, 0n, iova, iova + size);
  }

  /** Free every table page (the domain is being destroyed). */
  destroy(): void {
    for (const chunk of this.#tables.values()) this.#memory.release(chunk);
    this.#tables.clear();
  }

  #setLeaf(iova: bigint, phys: bigint, leafLevel: number, bits: bigint): boolean {
    let table = this.root;
    for (let level = this.levels; level > leafLevel; level--) {
      const index = SecondStageTable.indexOf(iova, level);
      const pte = this.#read(table, index);
      if (present(pte)) {
        table = Number(pte & VTD_PTE_ADDR_MASK);
        continue;
      }
      const child = this.#allocTable();
      if (child === undefined) return false;
      this.#write(table, index, BigInt(child) | VTD_PTE_R | VTD_PTE_W);
      table = child;
    }
    const index = SecondStageTable.indexOf(iova, leafLevel);
    const old = this.#read(table, index);
    // An empty lower table where a large page goes (left by earlier maps): free it, as Linux's
    // __domain_mapping frees page tables to make room for a superpage.
    if (present(old) && leafLevel > 1 && (old & VTD_PTE_PS) === 0n) {
      this.#freeSubtree(Number(old & VTD_PTE_ADDR_MASK), leafLevel - 1);
    }
    this.#write(table, index, phys | bits | (leafLevel > 1 ? VTD_PTE_PS : 0n));
    return true;
  }

  #unmap(table: number, level: number, base: bigint, start: bigint, end: bigint): bigint {
    const size = levelSize(level);
    let removed = 0n;
    const first = base > start ? 0 : Number((start - base) / size);
    for (let i = first; i < VTD_PTES_PER_TABLE; i++) {
      const entryBase = base + BigInt(i) * size;
      if (entryBase >= end) break;
      const pte = this.#read(table, i);
      if (!present(pte)) continue;
      const s = start > entryBase ? start : entryBase;
      const e = end < entryBase + size ? end : entryBase + size;
      const leaf = level === 1 || (pte & VTD_PTE_PS) !== 0n;
      if (leaf && s === entryBase && e === entryBase + size) {
        this.#write(table, i, 0n);
        removed += size;
        continue;
      }
      let child: number;
      if (leaf) {
        const split = this.#split(pte, level);
        if (split === undefined) {
          this.#write(table, i, 0n);
          removed += size;
          continue;
        }
        this.#write(table, i, BigInt(split) | VTD_PTE_R | VTD_PTE_W);
        child = split;
      } else {
        child = Number(pte & VTD_PTE_ADDR_MASK);
      }
      removed += this.#unmap(child, level - 1, entryBase, s, e);
      if (this.#isEmpty(child)) {
        this.#write(table, i, 0n);
        this.#release(child);
      }
    }
    return removed;
  }

  /** A new table of `level − 1` leaves equivalent to the large leaf `pte`. */
  #split(pte: bigint, level: number): number | undefined {
    const child = this.#allocTable();
    if (child === undefined) return undefined;
    const step = levelSize(level - 1);
    const bits = (pte & (VTD_PTE_R | VTD_PTE_W)) | (level - 1 > 1 ? VTD_PTE_PS : 0n);
    const phys = pte & VTD_PTE_ADDR_MASK;
    for (let i = 0; i < VTD_PTES_PER_TABLE; i++) {
      this.#write(child, i, (phys + BigInt(i) * step) | bits);
    }
    return child;
  }

  #anyMapped(table: number, level: number, base: bigint, start: bigint, end: bigint): boolean {
    const size = levelSize(level);
    const first = base > start ? 0 : Number((start - base) / size);
    for (let i = first; i < VTD_PTES_PER_TABLE; i++) {
      const entryBase = base + BigInt(i) * size;
      if (entryBase >= end) break;
      const pte = this.#read(table, i);
      if (!present(pte)) continue;
      if (level === 1 || (pte & VTD_PTE_PS) !== 0n) return true;
      const s = start > entryBase ? start : entryBase;
      const e = end < entryBase + size ? end : entryBase + size;
      if (this.#anyMapped(Number(pte & VTD_PTE_ADDR_MASK), level - 1, entryBase, s, e)) return true;
    }
    return false;
  }

  #freeSubtree(table: number, level: number): void {
    if (level > 1) {
      for (let i = 0; i < VTD_PTES_PER_TABLE; i++) {
        const pte = this.#read(table, i);
        if (present(pte) && (pte & VTD_PTE_PS) === 0n) {
          this.#freeSubtree(Number(pte & VTD_PTE_ADDR_MASK), level - 1);
        }
      }
    }
    this.#release(table);
  }

  #isEmpty(table: number): boolean {
    const chunk = this.#tables.get(table);
    return chunk !== undefined && chunk.bytes.every((b) => b === 0);
  }

  #allocTable(): number | undefined {
    const chunk = this.#memory.allocate(VTD_PAGE_SIZE, VTD_PAGE_SIZE);
    if (chunk === undefined) return undefined;
    this.#tables.set(chunk.base, chunk);
    return chunk.base;
  }

  #release(table: number): void {
    const chunk = this.#tables.get(table);
    if (chunk === undefined) return;
    this.#tables.delete(table);
    this.#memory.release(chunk);
  }

  #read(table: number, index: number): bigint {
    return this.#memory.readU64(SecondStageTable.entryAddress(table, index)) ?? 0n;
  }

  #write(table: number, index: number, value: bigint): void {
    this.#memory.writeU64(SecondStageTable.entryAddress(table, index), value);
  }
}

/** A second-stage entry is present when R or W is set. */
function present(pte: bigint): boolean {
  return (pte & (VTD_PTE_R | VTD_PTE_W)) !== 0n;
}
