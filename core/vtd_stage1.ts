/**
 * A user-owned VT-d first-stage page table, built in TypeScript: the stage 1 of an iommufd nested
 * HWPT (`IOMMU_HWPT_DATA_VTD_S1`), i.e. the core of a small userspace vIOMMU. The tables live in
 * a {@link DmaBuffer} mapped into the nest parent's IOAS, so their guest-physical addresses
 * (GPAs) are the buffer's IOVAs; the IOMMU reads them through stage 2.
 *
 * Format: x86 4-level paging as VT-d first-stage translation uses it (VT-d §9.7; Intel SDM vol. 3
 * §4.5): 512 eight-byte little-endian entries per 4 KiB table; bit 0 Present, bit 1 R/W, bit 2
 * U/S (set: DMA requests are user-level), bit 5 Accessed and bit 6 Dirty (set by the IOMMU),
 * bits 51:12 the next table or the page. Only 4 KiB leaves are built.
 *
 * The IOMMU caches translations: after changing or removing a mapping, invalidate it
 * ({@link VtdFirstStageTables.invalidation} gives the entry for IOMMU_HWPT_INVALIDATE) or the
 * device keeps using the old one.
 *
 * @example
 * ```ts
 * const tables = new VtdFirstStageTables(dev.dma.allocate(64 * 1024));
 * tables.map(0x100_0000n, target.iova, 4096n, { write: true });
 * const data = tables.hwptData(); // iommu_hwpt_vtd_s1 for IOMMU_HWPT_ALLOC
 * ```
 *
 * @module
 */

import { encode } from "../ffi/uapi/layout.ts";
import { iommu_hwpt_vtd_s1, iommu_hwpt_vtd_s1_invalidate } from "../ffi/uapi/iommufd.ts";
import type { DmaBuffer } from "./dma_space.ts";
import { VfioError } from "./errors.ts";

/** First-stage entry bits (Intel SDM vol. 3 §4.5, VT-d §9.7). */
export const VTD_FS = {
  PRESENT: 1n << 0n,
  WRITABLE: 1n << 1n,
  USER: 1n << 2n,
  ACCESSED: 1n << 5n,
  DIRTY: 1n << 6n,
} as const;
const ADDR_MASK = ((1n << 52n) - 1n) & ~0xfffn;
const TABLE_BYTES = 4096;
const ENTRY_BYTES = 8;
const LEVELS = 4;
const PAGE = 4096n;
const INDEX_MASK = 511n;
/** addr_width of 4-level paging in `iommu_hwpt_vtd_s1`. */
const ADDR_WIDTH_4_LEVEL = 48;

/** A 4-level first-stage table set inside one DMA buffer. */
export class VtdFirstStageTables {
  readonly #buffer: DmaBuffer;
  readonly #view: DataView;
  #nextTable = 1; // table 0 is the PML4

  /** Tables carved out of `buffer` (a multiple of 4 KiB, mapped for DMA; the root is page 0). */
  constructor(buffer: DmaBuffer) {
    if (buffer.size < TABLE_BYTES || buffer.iova % PAGE !== 0n) {
      throw new VfioError({
        operation: "VtdFirstStageTables",
        message: "the table buffer must be page aligned and hold at least one 4 KiB table",
      });
    }
    this.#buffer = buffer;
    this.#view = new DataView(buffer.bytes.buffer, buffer.bytes.byteOffset, buffer.size);
    buffer.bytes.fill(0, 0, TABLE_BYTES);
  }

  /** GPA of the root (PML4) table: `pgtbl_addr` of the nested HWPT. */
  get root(): bigint {
    return this.#buffer.iova;
  }

  /** `iommu_hwpt_vtd_s1` for IOMMU_HWPT_ALLOC (4-level, no flags). */
  hwptData(): Uint8Array {
    return encode(iommu_hwpt_vtd_s1, {
      flags: 0n,
      pgtbl_addr: this.root,
      addr_width: ADDR_WIDTH_4_LEVEL,
    });
  }

  /**
   * Map `[va, va + size)` to GPAs `[gpa, gpa + size)` (4 KiB pages), replacing what was there.
   * Intermediate tables are taken from the buffer; running out throws.
   */
  map(va: bigint, gpa: bigint, size: bigint, prot: { write: boolean }): void {
    if ((va | gpa | size) % PAGE !== 0n || size <= 0n) {
      throw new VfioError({
        operation: "VtdFirstStageTables.map",
        message: "va, gpa and size must be multiples of 4 KiB (size > 0)",
      });
    }
    for (let off = 0n; off < size; off += PAGE) {
      const leaf = VTD_FS.PRESENT | VTD_FS.USER | (prot.write ? VTD_FS.WRITABLE : 0n);
      this.#setLeaf(va + off, ((gpa + off) & ADDR_MASK) | leaf);
    }
  }

  /** Clear the leaf entries of `[va, va + size)`. */
  unmap(va: bigint, size: bigint): void {
    for (let off = 0n; off < size; off += PAGE) this.#setLeaf(va + off, 0n, false);
  }

  /** The leaf entry of `va` as the IOMMU sees it (A and D show its accesses), 0 when absent. */
  leaf(va: bigint): bigint {
    const at = this.#leafOffset(va, false);
    return at === undefined ? 0n : this.#view.getBigUint64(at, true);
  }

  /** An `iommu_hwpt_vtd_s1_invalidate` entry for `[va, va + size)` (all with `size` undefined). */
  invalidation(va?: bigint, size?: bigint): Uint8Array {
    const all = va === undefined || size === undefined;
    return encode(iommu_hwpt_vtd_s1_invalidate, {
      addr: all ? 0n : va,
      npages: all ? (1n << 64n) - 1n : (size + PAGE - 1n) / PAGE,
      flags: 0,
    });
  }

  #setLeaf(va: bigint, entry: bigint, alloc = true): void {
    const at = this.#leafOffset(va, alloc);
    if (at !== undefined) this.#view.setBigUint64(at, entry, true);
  }

  /** Byte offset of the leaf entry of `va` in the buffer, creating tables with `alloc`. */
  #leafOffset(va: bigint, alloc: boolean): number | undefined {
    let table = 0;
    for (let level = LEVELS; level > 1; level--) {
      const index = Number((va >> (12n + 9n * BigInt(level - 1))) & INDEX_MASK);
      const at = table * TABLE_BYTES + index * ENTRY_BYTES;
      let entry = this.#view.getBigUint64(at, true);
      if ((entry & VTD_FS.PRESENT) === 0n) {
        if (!alloc) return undefined;
        const fresh = this.#takeTable();
        entry = ((this.root + BigInt(fresh * TABLE_BYTES)) & ADDR_MASK) | VTD_FS.PRESENT |
          VTD_FS.WRITABLE | VTD_FS.USER;
        this.#view.setBigUint64(at, entry, true);
      }
      table = Number(((entry & ADDR_MASK) - this.root) / BigInt(TABLE_BYTES));
    }
    return table * TABLE_BYTES + Number((va >> 12n) & INDEX_MASK) * ENTRY_BYTES;
  }

  #takeTable(): number {
    if ((this.#nextTable + 1) * TABLE_BYTES > this.#buffer.size) {
      throw new VfioError({
        operation: "VtdFirstStageTables.map",
        message: `the ${this.#buffer.size}-byte table buffer is full`,
        hint: "allocate a larger buffer for the tables",
      });
    }
    const t = this.#nextTable++;
    this.#buffer.bytes.fill(0, t * TABLE_BYTES, (t + 1) * TABLE_BYTES);
    return t;
  }
}
