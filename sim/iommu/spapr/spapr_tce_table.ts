/**
 * One POWER TCE table (an `iommu_table` of a PowerNV IODA2 PHB): the translation of one DMA
 * window, kept in simulated physical memory in the format the PHB walks (iommu-models.md §3).
 *
 * - A window covers bus addresses `[start, start + size)`; the window is a filter, not an
 *   offset: the TCE for bus address `a` is entry `(a - start) >> pageShift`.
 * - A TCE is a 64-bit **big-endian** word: the real address of a TCE page with bit 0 `READ`
 *   (the device may read memory) and bit 1 `WRITE`; 0 is invalid.
 * - A table has 1 to 5 levels. Every level block holds `levelEntries` 8-byte entries and is at
 *   least a host page; an indirect entry holds the next block's address with READ|WRITE set.
 *   Only the top block exists at first: lower blocks are allocated when a TCE under them is
 *   first written, and never freed before the table (PowerNV's `pnv_tce(..., alloc)`).
 *
 * The split of an entry index into level indexes follows Linux's sizing
 * (`pnv_pci_ioda2_table_alloc_pages`): with `e = log2(entries)`, each level decodes
 * `ceil(e / levels)` bits, widened so that a block is at least one host page.
 *
 * @module
 */

import type { PhysicalChunk, PhysicalMemory } from "../../memory.ts";
import { TranslationEpoch } from "../model.ts";

/** TCE bit: the device may read the page (`TCE_PCI_READ`, asm/tce.h). */
export const TCE_PCI_READ = 0x1n;
/** TCE bit: the device may write the page (`TCE_PCI_WRITE`). */
export const TCE_PCI_WRITE = 0x2n;
/** Most table levels PowerNV builds (`POWERNV_IOMMU_MAX_LEVELS`). */
export const POWERNV_IOMMU_MAX_LEVELS = 5;
/**
 * A table may not decode 55 bits or more of bus address (`(level_shift - 3) * levels +
 * page_shift >= 55` is refused by `pnv_pci_ioda2_table_alloc_pages`).
 */
export const TCE_MAX_DECODED_BITS = 55;
const TCE_BYTES = 8;
const TCE_BYTES_SHIFT = 3;

/** Shape of a TCE table, derived from the window it translates. */
export interface TceTableGeometry {
  /** Bus address of the window's first byte. */
  readonly start: bigint;
  /** log2 of the TCE page size. */
  readonly pageShift: number;
  /** Number of TCEs (`it_size`). */
  readonly entries: bigint;
  /** Table levels (1..5). */
  readonly levels: number;
  /** log2 of the entries one level block holds (`it_level_size`). */
  readonly levelShift: number;
  /** Bytes of one level block. */
  readonly blockBytes: number;
  /** Bytes a fully populated table takes (for locked-memory accounting). */
  readonly fullBytes: number;
}

/**
 * The geometry of a table for a window of `windowSize` bytes at `start` with TCE pages of
 * `2^pageShift` bytes and `levels` levels, on a host with `hostPageSize` pages; undefined when
 * PowerNV refuses the shape (levels 0 or above 5, a size that is not a power of two or smaller
 * than one TCE page, or 55 bits or more decoded).
 */
export function tceTableGeometry(
  start: bigint,
  pageShift: number,
  windowSize: bigint,
  levels: number,
  hostPageSize: number,
): TceTableGeometry | undefined {
  if (!Number.isInteger(levels) || levels < 1 || levels > POWERNV_IOMMU_MAX_LEVELS) {
    return undefined;
  }
  if (windowSize <= 0n || (windowSize & (windowSize - 1n)) !== 0n) return undefined;
  const windowShift = windowSize.toString(2).length - 1;
  if (windowShift < pageShift) return undefined;
  const entriesShift = windowShift - pageShift;
  const hostPageShift = Math.log2(hostPageSize);
  const perLevel = Math.ceil(entriesShift / levels);
  const blockShift = Math.max(perLevel + TCE_BYTES_SHIFT, hostPageShift);
  const levelShift = blockShift - TCE_BYTES_SHIFT;
  if (levelShift * levels + pageShift >= TCE_MAX_DECODED_BITS) return undefined;
  const blockBytes = 2 ** blockShift;
  // Blocks needed to populate every entry: the leaves, then each indirect level above them.
  let fullBytes = 0;
  let entriesBelow = 2 ** entriesShift;
  for (let level = 0; level < levels; level++) {
    const blocks = Math.max(1, Math.ceil(entriesBelow / 2 ** levelShift));
    fullBytes += blocks * blockBytes;
    entriesBelow = blocks;
  }
  return {
    start,
    pageShift,
    entries: 1n << BigInt(entriesShift),
    levels,
    levelShift,
    blockBytes,
    fullBytes,
  };
}

/** A TCE table in simulated physical memory. */
export class TceTable {
  readonly #memory: PhysicalMemory;
  readonly #blocks: PhysicalChunk[] = [];
  readonly #top: PhysicalChunk;
  readonly #epoch: TranslationEpoch;
  #freed = false;

  /**
   * Allocate the top block of a table of `geometry`; undefined when memory is exhausted. Every
   * write and the free bump `epoch` (the PHB's TCE cache kill that follows each update).
   */
  static create(
    memory: PhysicalMemory,
    geometry: TceTableGeometry,
    epoch: TranslationEpoch = new TranslationEpoch(),
  ): TceTable | undefined {
    const top = memory.allocate(geometry.blockBytes, geometry.blockBytes);
    return top === undefined ? undefined : new TceTable(memory, geometry, top, epoch);
  }

  private constructor(
    memory: PhysicalMemory,
    readonly geometry: TceTableGeometry,
    top: PhysicalChunk,
    epoch: TranslationEpoch,
  ) {
    this.#epoch = epoch;
    this.#memory = memory;
    this.#top = top;
    this.#blocks.push(top);
  }

  /** Bus address of the window's first byte. */
  get start(): bigint {
    return this.geometry.start;
  }

  /** Bus address of the window's last byte (inclusive). */
  get end(): bigint {
    return this.geometry.start + (this.geometry.entries << BigInt(this.geometry.pageShift)) - 1n;
  }

  /** TCE page size in bytes. */
  get pageSize(): bigint {
    return 1n << BigInt(this.geometry.pageShift);
  }

  /** Physical address of the top block (what the PHB's TVE points at). */
  get rootAddress(): bigint {
    return BigInt(this.#top.base);
  }

  /** Bytes of table memory allocated so far. */
  get allocatedBytes(): number {
    return this.#blocks.length * this.geometry.blockBytes;
  }

  /** Whether a bus address falls inside the window. */
  contains(busAddress: bigint): boolean {
    return busAddress >= this.start && busAddress <= this.end;
  }

  /** The TCE at entry `index` (0 when invalid or its level block was never allocated). */
  read(index: bigint): bigint {
    const at = this.#entryAddress(index, false);
    return at === undefined ? 0n : this.#readBe(at);
  }

  /**
   * Write the TCE at entry `index`, allocating missing level blocks; returns the previous TCE,
   * or undefined when a level block could not be allocated (nothing changed).
   */
  write(index: bigint, tce: bigint): bigint | undefined {
    const at = this.#entryAddress(index, tce !== 0n);
    if (at === undefined) return tce === 0n ? 0n : undefined;
    const old = this.#readBe(at);
    this.#writeBe(at, tce);
    this.#epoch.bump();
    return old;
  }

  /** Release every level block. The table must not be used afterwards. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#epoch.bump();
    for (const block of this.#blocks) this.#memory.release(block);
    this.#blocks.length = 0;
  }

  /** Physical address of entry `index`, walking (and with `alloc`, filling) indirect levels. */
  #entryAddress(index: bigint, alloc: boolean): bigint | undefined {
    const { entries, levels, levelShift, blockBytes } = this.geometry;
    if (index < 0n || index >= entries) return undefined;
    const shift = BigInt(levelShift);
    const mask = (1n << shift) - 1n;
    let block = BigInt(this.#top.base);
    for (let level = levels - 1; level > 0; level--) {
      const slot = block + ((index >> (shift * BigInt(level))) & mask) * BigInt(TCE_BYTES);
      let next = this.#readBe(slot);
      if (next === 0n) {
        if (!alloc) return undefined;
        const fresh = this.#memory.allocate(blockBytes, blockBytes);
        if (fresh === undefined) return undefined;
        this.#blocks.push(fresh);
        next = BigInt(fresh.base) | TCE_PCI_READ | TCE_PCI_WRITE;
        this.#writeBe(slot, next);
      }
      block = next & ~(TCE_PCI_READ | TCE_PCI_WRITE);
    }
    return block + (index & mask) * BigInt(TCE_BYTES);
  }

  #readBe(phys: bigint): bigint {
    const bytes = new Uint8Array(TCE_BYTES);
    if (!this.#memory.read(phys, bytes)) {
      throw new Error(`TCE table: unbacked 0x${phys.toString(16)}`);
    }
    return new DataView(bytes.buffer).getBigUint64(0, false);
  }

  #writeBe(phys: bigint, value: bigint): void {
    const bytes = new Uint8Array(TCE_BYTES);
    new DataView(bytes.buffer).setBigUint64(0, value, false);
    if (!this.#memory.write(phys, bytes)) {
      throw new Error(`TCE table: unbacked 0x${phys.toString(16)}`);
    }
  }
}
