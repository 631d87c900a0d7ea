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
 * Both sides are the shared walker and table of ../pgtable.ts with the descriptor format as data
 * ({@link LPAE_FORMAT}, {@link LPAE_S1_FORMAT}, {@link LPAE_S2_FORMAT}); Arm's level `l` is the
 * shared module's height `4 − l`.
 *
 * @module
 */

import type { PhysicalMemory } from "../../memory.ts";
import type { MapProtection } from "../model.ts";
import {
  type RadixFormat,
  radixIndex,
  radixPageSize,
  RadixTable,
  type RadixWriteFormat,
  walkRadix,
} from "../pgtable.ts";

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

/** Arm level of a shared-walker height (3 ↔ 1: 4 KiB; 0 ↔ 4: 512 GiB). */
function heightOf(level: number): number {
  return LPAE_LAST_LEVEL + 1 - level;
}

/** The VMSAv8-64 4 KiB-granule descriptor format, for the shared walker (no stage semantics). */
export const LPAE_FORMAT: RadixFormat = {
  name: "SMMUv3",
  pageShift: LPAE_PAGE_SHIFT,
  levelStride: LPAE_LEVEL_STRIDE,
  entryBytes: DESC_BYTES,
  addrMask: LPAE_DESC.ADDR_MASK,
  present: (desc) => (desc & LPAE_DESC.VALID) !== 0n,
  // Levels 0–2: bit 1 set is a table; at level 3 the same bit marks a page.
  isTable: (desc, height) => height > 1 && (desc & LPAE_DESC.TABLE_OR_PAGE) !== 0n,
  // A level-3 descriptor must have bit 1 set; level 0 has no blocks (4 KiB granule).
  leafAllowed: (desc, height) =>
    height === 1
      ? (desc & LPAE_DESC.TABLE_OR_PAGE) !== 0n
      : height <= heightOf(LPAE_FIRST_BLOCK_LEVEL),
};

/** The format as io-pgtable-arm writes it at `stage`. */
function writeFormat(stage: LpaeStage): RadixWriteFormat {
  return {
    ...LPAE_FORMAT,
    tableEntry: (child) => child | LPAE_DESC.TABLE_OR_PAGE | LPAE_DESC.VALID,
    leafAttrs: (prot) => lpaeLeafBits(stage, prot),
    leafEntry: (phys, height, attrs) =>
      phys | attrs | (height === 1 ? LPAE_DESC.TABLE_OR_PAGE : 0n) | LPAE_DESC.VALID,
    attrsOf: (desc) => desc & ~LPAE_DESC.ADDR_MASK & ~LPAE_DESC.TABLE_OR_PAGE,
  };
}

/** Bytes mapped by one descriptor at `level` (3: 4 KiB, 2: 2 MiB, 1: 1 GiB, 0: 512 GiB). */
export function lpaeLevelSize(level: number): bigint {
  return radixPageSize(LPAE_FORMAT, heightOf(level));
}

/** The level a walk of an `inputBits`-bit space starts at (48 → 0, 39 → 1, 30 → 2). */
export function lpaeStartLevel(inputBits: number): number {
  const levels = Math.ceil((inputBits - LPAE_PAGE_SHIFT) / LPAE_LEVEL_STRIDE);
  return LPAE_MAX_LEVELS - Math.min(Math.max(levels, 1), LPAE_MAX_LEVELS);
}

/** Index of `iova` in a table of `level`. */
export function lpaeIndex(iova: bigint, level: number): number {
  return radixIndex(LPAE_FORMAT, iova, heightOf(level));
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
  const top = heightOf(lpaeStartLevel(cfg.inputBits));
  const w = walkRadix<"access" | "address-size">(memory, LPAE_FORMAT, cfg.root, top, iova, {
    check(desc, _height, leaf, next) {
      if (leaf && (desc & LPAE_DESC.AF) === 0n) return "access"; // no HTTU
      return next >= limit ? "address-size" : undefined;
    },
  });
  if (!w.ok) {
    const level = heightOf(w.height);
    return { ok: false, fault: WALK_FAULT[w.fault], level };
  }
  return {
    ok: true,
    phys: w.out,
    pageIova: w.pageIova,
    pageSize: w.pageSize,
    level: heightOf(w.height),
    prot: leafProt(cfg.stage, w.entry),
  };
}

/** The SMMU's name for each reason the shared walker stops. */
const WALK_FAULT: Readonly<Record<string, LpaeFaultKind>> = {
  "no-memory": "external-abort",
  "not-present": "translation",
  "reserved": "translation",
  "access": "access",
  "address-size": "address-size",
};

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

/** The stage-1 format as Linux writes it (ASID-tagged, AP bits). */
export const LPAE_S1_FORMAT: RadixWriteFormat = writeFormat(1);
/** The stage-2 format as Linux writes it (S2AP bits, MemAttr). */
export const LPAE_S2_FORMAT: RadixWriteFormat = writeFormat(2);

/**
 * One domain's table, written the way Linux's io-pgtable-arm writes it: the kernel side of the
 * model. Owns its table pages in physical memory.
 */
export class LpaeTable extends RadixTable {
  /** The level the walk starts at. */
  readonly startLevel: number;

  /**
   * A table for `inputBits` of input address at `stage`. Throws when physical memory cannot hold
   * the root table (a machine configuration error).
   */
  constructor(memory: PhysicalMemory, readonly stage: LpaeStage, readonly inputBits: number) {
    const startLevel = lpaeStartLevel(inputBits);
    super(
      memory,
      stage === 1 ? LPAE_S1_FORMAT : LPAE_S2_FORMAT,
      heightOf(startLevel),
      heightOf(LPAE_FIRST_BLOCK_LEVEL),
    );
    this.startLevel = startLevel;
  }
}
