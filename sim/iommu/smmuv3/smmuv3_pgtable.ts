/**
 * VMSAv8-64 translation tables with the 4 KiB granule, in simulated physical memory, as the SMMUv3
 * walks them (Arm ARM D8 "The AArch64 Virtual Memory System Architecture"; SMMUv3 §3.3) and as
 * Linux's io-pgtable-arm writes them (iommu-models.md §2.3).
 *
 * - 4 KiB table pages of 512 little-endian u64 descriptors, 9 input bits per level; levels are
 *   numbered as Arm numbers them: the walk starts at level `4 − ceil((bits − 12) / 9)` (level 0
 *   for 48 bits) and ends at level 3.
 * - Descriptor bit 0 valid; bit 1 at levels 0–2: 1 table, 0 block (1 GiB at level 1, 2 MiB at
 *   level 2; no blocks at level 0); at level 3 bit 1 must be 1 (page).
 * - Output address bits 47:12 (bits 51:48 would be a 52-bit address: beyond a 48-bit OAS they
 *   give an Address Size fault). AF bit 10 (0 gives an Access fault: no HTTU).
 * - Stage 1: AP[1] bit 6 = EL0 (unprivileged) access, AP[2] bit 7 = read-only, AttrIndx 4:2,
 *   SH 9:8, nG bit 11. Device transactions are unprivileged, so a page needs AP[1] to be usable.
 *   Stage 1 cannot express write-only: Linux maps write-only as read/write.
 * - Stage 2: S2AP bit 6 read, bit 7 write; MemAttr 5:2.
 *
 * The hardware side ({@link lpaeWalk}) reads only physical memory, so tables written by anyone
 * (the kernel side here, or a test writing descriptors itself) are honoured as hardware would.
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import type { PhysicalChunk, PhysicalMemory } from "../../memory.ts";
import type { MapProtection } from "../model.ts";

/** log2 of the 4 KiB granule. */
export const LPAE_PAGE_SHIFT = 12;
/** Granule and table-page size. */
export const LPAE_PAGE_SIZE = 4096;
/** Input bits resolved per level. */
export const LPAE_LEVEL_STRIDE = 9;
/** Descriptors per table page. */
export const LPAE_ENTRIES = 512;
/** The last level (4 KiB pages). */
export const LPAE_LAST_LEVEL = 3;
/** The first level that may hold blocks with the 4 KiB granule (1 GiB blocks). */
export const LPAE_FIRST_BLOCK_LEVEL = 1;
/** Bytes per descriptor. */
const DESC_BYTES = 8;
/** Levels of the 4 KiB granule walk (0..3). */
const LPAE_MAX_LEVELS = 4;

/** Descriptor bits (Arm ARM D8.3; Linux io-pgtable-arm `ARM_LPAE_PTE_*`). */
export const LPAE_DESC = {
  /** Valid. */
  VALID: 1n << 0n,
  /** Levels 0–2: table (1) or block (0); level 3: must be 1 (page). */
  TABLE_OR_PAGE: 1n << 1n,
  /** Stage 1 AttrIndx (bits 4:2) shift. */
  ATTR_INDX_SHIFT: 2n,
  /** Stage 1 AP[1]: unprivileged (EL0) access allowed. */
  AP_UNPRIV: 1n << 6n,
  /** Stage 1 AP[2]: read-only. */
  AP_RDONLY: 1n << 7n,
  /** Stage 2 S2AP[0]: read allowed. */
  S2AP_READ: 1n << 6n,
  /** Stage 2 S2AP[1]: write allowed. */
  S2AP_WRITE: 1n << 7n,
  /** Shareability: inner shareable (bits 9:8 = 3). */
  SH_IS: 3n << 8n,
  /** Access flag. */
  AF: 1n << 10n,
  /** Stage 1 not-global (ASID-tagged). */
  NG: 1n << 11n,
  /** Output / next-table address bits 51:12 (47:12 are valid with a 48-bit OAS). */
  ADDR_MASK: ((1n << 52n) - 1n) & ~0xfffn,
} as const;

/** MAIR index of Linux's cacheable attribute (`ARM_LPAE_MAIR_ATTR_IDX_CACHE`). */
export const LPAE_MAIR_IDX_CACHE = 1n;
/** Stage 2 MemAttr "outer/inner write-back" (`ARM_LPAE_PTE_MEMATTR_OIWB`, bits 5:2). */
export const LPAE_S2_MEMATTR_OIWB = 0xfn << 2n;
/**
 * The MAIR value Linux puts in CD word 3: attr 0 non-cacheable (0x44), 1 write-back RWA (0xff),
 * 2 device nGnRE (0x04), 3 inner non-cacheable / outer WB (0xf4).
 */
export const LPAE_LINUX_MAIR = 0xf404ff44n;

/** Bytes mapped by one descriptor at `level` (3: 4 KiB, 2: 2 MiB, 1: 1 GiB, 0: 512 GiB). */
export function lpaeLevelSize(level: number): bigint {
  return 1n << BigInt(LPAE_PAGE_SHIFT + LPAE_LEVEL_STRIDE * (LPAE_LAST_LEVEL - level));
}

/** The level a walk of an `inputBits`-bit space starts at (48 → 0, 39 → 1, 30 → 2). */
export function lpaeStartLevel(inputBits: number): number {
  const levels = Math.ceil((inputBits - LPAE_PAGE_SHIFT) / LPAE_LEVEL_STRIDE);
  return LPAE_MAX_LEVELS - Math.min(Math.max(levels, 1), LPAE_MAX_LEVELS);
}

/** Index of `iova` in a table of `level`. */
export function lpaeIndex(iova: bigint, level: number): number {
  const shift = BigInt(LPAE_PAGE_SHIFT + LPAE_LEVEL_STRIDE * (LPAE_LAST_LEVEL - level));
  return Number((iova >> shift) & BigInt(LPAE_ENTRIES - 1));
}

/** Physical address of descriptor `index` of the table at `table`. */
export function lpaeDescAddress(table: number | bigint, index: number): number {
  return Number(table) + index * DESC_BYTES;
}

/** Translation stage of a table: 1 (ASID, AP bits) or 2 (VMID, S2AP bits). */
export type LpaeStage = 1 | 2;

/** What a walk needs: where the table starts and how wide the spaces are. */
export interface LpaeWalkConfig {
  /** Stage (selects the permission encoding). */
  readonly stage: LpaeStage;
  /** Physical address of the start-level table (CD.TTB0 or STE.S2TTB). */
  readonly root: bigint;
  /** Input address bits (64 − T0SZ); the caller has range-checked the address. */
  readonly inputBits: number;
  /** Output address bits (CD.IPS / STE.S2PS, capped to the OAS). */
  readonly outputBits: number;
}

/** Why a walk failed, as the SMMU classifies it (SMMUv3 §7.3.12–7.3.15). */
export type LpaeFaultKind = "translation" | "access" | "address-size" | "external-abort";

/** The result of a walk. */
export type LpaeWalkResult =
  | {
    readonly ok: true;
    /** Physical address of the looked-up byte. */
    readonly phys: bigint;
    /** First input address of the leaf. */
    readonly pageIova: bigint;
    /** Bytes mapped by the leaf. */
    readonly pageSize: bigint;
    /** Level of the leaf (3 = 4 KiB). */
    readonly level: number;
    /** Permissions of the leaf for an unprivileged data access. */
    readonly prot: MapProtection;
  }
  | { readonly ok: false; readonly fault: LpaeFaultKind; readonly level: number };

/** Walk the tables in memory for `iova`, exactly as the SMMU's table walker does. */
export function lpaeWalk(
  memory: PhysicalMemory,
  cfg: LpaeWalkConfig,
  iova: bigint,
): LpaeWalkResult {
  const limit = 1n << BigInt(cfg.outputBits);
  let table = cfg.root;
  for (let level = lpaeStartLevel(cfg.inputBits); level <= LPAE_LAST_LEVEL; level++) {
    const desc = memory.readU64(lpaeDescAddress(table, lpaeIndex(iova, level)));
    if (desc === undefined) return { ok: false, fault: "external-abort", level };
    if ((desc & LPAE_DESC.VALID) === 0n) return { ok: false, fault: "translation", level };
    const typeBit = (desc & LPAE_DESC.TABLE_OR_PAGE) !== 0n;
    if (level < LPAE_LAST_LEVEL && typeBit) {
      table = desc & LPAE_DESC.ADDR_MASK;
      if (table >= limit) return { ok: false, fault: "address-size", level };
      continue;
    }
    if (level === LPAE_LAST_LEVEL ? !typeBit : level < LPAE_FIRST_BLOCK_LEVEL) {
      return { ok: false, fault: "translation", level }; // reserved encoding
    }
    if ((desc & LPAE_DESC.AF) === 0n) return { ok: false, fault: "access", level };
    const size = lpaeLevelSize(level);
    const out = desc & LPAE_DESC.ADDR_MASK & ~(size - 1n);
    if (out >= limit) return { ok: false, fault: "address-size", level };
    const offset = iova & (size - 1n);
    return {
      ok: true,
      phys: out + offset,
      pageIova: iova - offset,
      pageSize: size,
      level,
      prot: leafProt(cfg.stage, desc),
    };
  }
  return { ok: false, fault: "translation", level: LPAE_LAST_LEVEL };
}

/** Permissions of a leaf descriptor for an unprivileged data access. */
function leafProt(stage: LpaeStage, desc: bigint): MapProtection {
  if (stage === 2) {
    return {
      read: (desc & LPAE_DESC.S2AP_READ) !== 0n,
      write: (desc & LPAE_DESC.S2AP_WRITE) !== 0n,
    };
  }
  const el0 = (desc & LPAE_DESC.AP_UNPRIV) !== 0n;
  return { read: el0, write: el0 && (desc & LPAE_DESC.AP_RDONLY) === 0n };
}

/** The leaf attribute bits Linux's io-pgtable-arm writes for `prot` (IOMMU_CACHE, not PRIV). */
export function lpaeLeafBits(stage: LpaeStage, prot: MapProtection): bigint {
  if (stage === 2) {
    return (prot.read ? LPAE_DESC.S2AP_READ : 0n) | (prot.write ? LPAE_DESC.S2AP_WRITE : 0n) |
      LPAE_S2_MEMATTR_OIWB | LPAE_DESC.SH_IS | LPAE_DESC.AF;
  }
  return LPAE_DESC.NG | LPAE_DESC.AP_UNPRIV | (prot.write ? 0n : LPAE_DESC.AP_RDONLY) |
    (LPAE_MAIR_IDX_CACHE << LPAE_DESC.ATTR_INDX_SHIFT) | LPAE_DESC.SH_IS | LPAE_DESC.AF;
}

/**
 * One domain's table, written the way Linux's io-pgtable-arm writes it: the kernel side of the
 * model. Owns its table pages in physical memory.
 */
export class LpaeTable {
  readonly #memory: PhysicalMemory;
  readonly #tables = new Map<number, PhysicalChunk>();
  /** Valid descriptors per table page (the kernel's bookkeeping, so emptiness is O(1)). */
  readonly #valid = new Map<number, number>();
  /** Physical address of the start-level table (CD.TTB0 / STE.S2TTB). */
  readonly root: number;
  /** The level the walk starts at. */
  readonly startLevel: number;

  /**
   * A table for `inputBits` of input address at `stage`. Throws when physical memory cannot hold
   * the root table (a machine configuration error).
   */
  constructor(memory: PhysicalMemory, readonly stage: LpaeStage, readonly inputBits: number) {
    this.#memory = memory;
    this.startLevel = lpaeStartLevel(inputBits);
    const root = this.#allocTable();
    if (root === undefined) throw new RangeError("SMMUv3: no physical memory for a root table");
    this.root = root;
  }

  /** Table pages in use (root included). */
  get tablePages(): number {
    return this.#tables.size;
  }

  /** Whether any byte of `[start, end)` is mapped. */
  anyMapped(start: bigint, end: bigint): boolean {
    return this.#anyMapped(this.root, this.startLevel, 0n, start, end);
  }

  /**
   * Map `[iova, iova + size)` → `[phys, …)` with the largest blocks alignment and size allow. The
   * caller has checked alignment and that nothing in the range is mapped. 0, or -ENOMEM with
   * nothing left mapped.
   */
  map(iova: bigint, phys: bigint, size: bigint, prot: MapProtection): number {
    const bits = lpaeLeafBits(this.stage, prot);
    for (let done = 0n; done < size;) {
      const va = iova + done;
      const pa = phys + done;
      let level = Math.max(LPAE_FIRST_BLOCK_LEVEL, this.startLevel);
      while (level < LPAE_LAST_LEVEL) {
        const s = lpaeLevelSize(level);
        if (va % s === 0n && pa % s === 0n && size - done >= s) break;
        level++;
      }
      if (!this.#setLeaf(va, pa, level, bits)) {
        this.unmap(iova, done);
        return -ERRNO.ENOMEM;
      }
      done += lpaeLevelSize(level);
    }
    return 0;
  }

  /**
   * Unmap `[iova, iova + size)`: a block only partly inside is split first (6.12's
   * `arm_lpae_split_blk_unmap`), tables left empty are freed. Returns the bytes that were mapped.
   */
  unmap(iova: bigint, size: bigint): bigint {
    return this.#unmap(this.root, this.startLevel, 0n, iova, iova + size);
  }

  /** Free every table page. */
  destroy(): void {
    for (const chunk of this.#tables.values()) this.#memory.release(chunk);
    this.#tables.clear();
    this.#valid.clear();
  }

  #setLeaf(iova: bigint, phys: bigint, leafLevel: number, bits: bigint): boolean {
    let table = this.root;
    for (let level = this.startLevel; level < leafLevel; level++) {
      const index = lpaeIndex(iova, level);
      const desc = this.#read(table, index);
      if (isTable(desc, level)) {
        table = Number(desc & LPAE_DESC.ADDR_MASK);
        continue;
      }
      const child = this.#allocTable();
      if (child === undefined) return false;
      this.#write(table, index, BigInt(child) | LPAE_DESC.TABLE_OR_PAGE | LPAE_DESC.VALID);
      table = child;
    }
    const index = lpaeIndex(iova, leafLevel);
    const old = this.#read(table, index);
    // An empty lower table where a block goes (left by earlier unmaps): free it first.
    if (isTable(old, leafLevel)) {
      this.#freeSubtree(Number(old & LPAE_DESC.ADDR_MASK), leafLevel + 1);
    }
    const type = leafLevel === LPAE_LAST_LEVEL ? LPAE_DESC.TABLE_OR_PAGE : 0n;
    this.#write(table, index, phys | bits | type | LPAE_DESC.VALID);
    return true;
  }

  #unmap(table: number, level: number, base: bigint, start: bigint, end: bigint): bigint {
    const size = lpaeLevelSize(level);
    let removed = 0n;
    const first = base > start ? 0 : Number((start - base) / size);
    for (let i = first; i < LPAE_ENTRIES; i++) {
      const entryBase = base + BigInt(i) * size;
      if (entryBase >= end) break;
      const desc = this.#read(table, i);
      if ((desc & LPAE_DESC.VALID) === 0n) continue;
      const s = start > entryBase ? start : entryBase;
      const e = end < entryBase + size ? end : entryBase + size;
      const leaf = !isTable(desc, level);
      if (leaf && s === entryBase && e === entryBase + size) {
        this.#write(table, i, 0n);
        removed += size;
        continue;
      }
      let child: number;
      if (leaf) {
        const split = this.#split(desc, level);
        if (split === undefined) {
          this.#write(table, i, 0n);
          removed += size;
          continue;
        }
        this.#write(table, i, BigInt(split) | LPAE_DESC.TABLE_OR_PAGE | LPAE_DESC.VALID);
        child = split;
      } else {
        child = Number(desc & LPAE_DESC.ADDR_MASK);
      }
      removed += this.#unmap(child, level + 1, entryBase, s, e);
      if (this.#isEmpty(child)) {
        this.#write(table, i, 0n);
        this.#release(child);
      }
    }
    return removed;
  }

  /** A table of next-level leaves equivalent to the block `desc`. */
  #split(desc: bigint, level: number): number | undefined {
    const child = this.#allocTable();
    if (child === undefined) return undefined;
    const step = lpaeLevelSize(level + 1);
    const attrs = desc & ~LPAE_DESC.ADDR_MASK & ~LPAE_DESC.TABLE_OR_PAGE;
    const type = level + 1 === LPAE_LAST_LEVEL ? LPAE_DESC.TABLE_OR_PAGE : 0n;
    const out = desc & LPAE_DESC.ADDR_MASK;
    for (let i = 0; i < LPAE_ENTRIES; i++) {
      this.#write(child, i, (out + BigInt(i) * step) | attrs | type);
    }
    return child;
  }

  #anyMapped(table: number, level: number, base: bigint, start: bigint, end: bigint): boolean {
    const size = lpaeLevelSize(level);
    const first = base > start ? 0 : Number((start - base) / size);
    for (let i = first; i < LPAE_ENTRIES; i++) {
      const entryBase = base + BigInt(i) * size;
      if (entryBase >= end) break;
      const desc = this.#read(table, i);
      if ((desc & LPAE_DESC.VALID) === 0n) continue;
      if (!isTable(desc, level)) return true;
      const s = start > entryBase ? start : entryBase;
      const e = end < entryBase + size ? end : entryBase + size;
      if (this.#anyMapped(Number(desc & LPAE_DESC.ADDR_MASK), level + 1, entryBase, s, e)) {
        return true;
      }
    }
    return false;
  }

  #freeSubtree(table: number, level: number): void {
    if (level < LPAE_LAST_LEVEL) {
      for (let i = 0; i < LPAE_ENTRIES; i++) {
        const desc = this.#read(table, i);
        if (isTable(desc, level)) this.#freeSubtree(Number(desc & LPAE_DESC.ADDR_MASK), level + 1);
      }
    }
    this.#release(table);
  }

  #isEmpty(table: number): boolean {
    return this.#tables.has(table) && (this.#valid.get(table) ?? 0) === 0;
  }

  #allocTable(): number | undefined {
    const chunk = this.#memory.allocate(LPAE_PAGE_SIZE, LPAE_PAGE_SIZE);
    if (chunk === undefined) return undefined;
    this.#tables.set(chunk.base, chunk);
    this.#valid.set(chunk.base, 0);
    return chunk.base;
  }

  #release(table: number): void {
    const chunk = this.#tables.get(table);
    if (chunk === undefined) return;
    this.#tables.delete(table);
    this.#valid.delete(table);
    this.#memory.release(chunk);
  }

  #read(table: number, index: number): bigint {
    return this.#memory.readU64(lpaeDescAddress(table, index)) ?? 0n;
  }

  #write(table: number, index: number, value: bigint): void {
    const was = (this.#read(table, index) & LPAE_DESC.VALID) !== 0n;
    const now = (value & LPAE_DESC.VALID) !== 0n;
    if (was !== now) this.#valid.set(table, (this.#valid.get(table) ?? 0) + (now ? 1 : -1));
    this.#memory.writeU64(lpaeDescAddress(table, index), value);
  }
}

/** A valid table descriptor (levels 0–2 with bit 1 set). */
function isTable(desc: bigint, level: number): boolean {
  return level < LPAE_LAST_LEVEL && (desc & LPAE_DESC.VALID) !== 0n &&
    (desc & LPAE_DESC.TABLE_OR_PAGE) !== 0n;
}
