/**
 * SMMUv3 configuration structures in simulated physical memory: the stream table (linear or
 * 2-level) of 64-byte Stream Table Entries, and per-stream tables of 64-byte Context Descriptors
 * (SMMUv3 §5.2 STE, §5.4 CD; Linux arm-smmu-v3.h `STRTAB_*`, `CTXDESC_*`; iommu-models.md §2.2).
 *
 * STE word 0: V 0, Config 3:1, S1Fmt 5:4, S1ContextPtr 51:6, S1CDMax 63:59. Word 1: S1DSS 1:0,
 * S1CIR 3:2, S1COR 5:4, S1CSH 7:6, S1STALLD 27, EATS 29:28, STRW 31:30, SHCFG 45:44. Word 2:
 * S2VMID 15:0, VTCR 50:32 (S2T0SZ 37:32, S2SL0 39:38, S2IR0, S2OR0, S2SH0, S2TG 47:46, S2PS
 * 50:48), S2AA64 51, S2ENDI 52, S2PTW 54, S2R 58. Word 3: S2TTB 51:4.
 *
 * CD word 0: T0SZ 5:0, TG0 7:6, IRGN0 9:8, ORGN0 11:10, SH0 13:12, EPD0 14, ENDI 15, EPD1 30,
 * V 31, IPS 34:32, TBI0 38, AA64 41, HD 42, HA 43, S 44, R 45, A 46, ASET 47, ASID 63:48. Word 1:
 * TTB0 51:4. Word 3: MAIR.
 *
 * The encoders write what Linux 6.12's `arm_smmu_make_*_ste` / `arm_smmu_make_s1_cd` write.
 *
 * @module
 */

import type { PhysicalChunk, PhysicalMemory } from "../../memory.ts";
import { getField, type RegField, setField } from "../reg_fields.ts";

function f(shift: number, width = 1): RegField {
  return { shift, width };
}

/** Bytes of an STE and of a CD. */
export const SMMU_STE_BYTES = 64;
/** See {@link SMMU_STE_BYTES}. */
export const SMMU_CD_BYTES = 64;
/** 64-bit words in an STE or CD. */
export const SMMU_ENTRY_WORDS = 8;
/** Bytes of one 64-bit word, and of one L1 stream or CD descriptor. */
const WORD_BYTES = 8;
/** TxSZ fields count from the 64-bit address: input bits = 64 − TxSZ. */
export const SMMU_TXSZ_BASE = 64;
/** Smallest alignment of a table allocation (a page). */
const MIN_ALIGN = 4096;
/** Address bits 51:6 (STE S1ContextPtr, L1 stream descriptor L2Ptr). */
const ADDR_51_6 = ((1n << 52n) - 1n) & ~0x3fn;
/** Address bits 51:4 (CD TTB0, STE S2TTB). */
const ADDR_51_4 = ((1n << 52n) - 1n) & ~0xfn;
/** Address bits 51:12 (L1 CD descriptor L2Ptr). */
const ADDR_51_12 = ((1n << 52n) - 1n) & ~0xfffn;

/** STE fields, by word (SMMUv3 §5.2). */
export const STE = {
  /** Word 0. */
  W0: {
    V: f(0),
    CONFIG: f(1, 3),
    S1FMT: f(4, 2),
    S1CDMAX: f(59, 5),
  },
  /** Word 1. */
  W1: {
    S1DSS: f(0, 2),
    S1CIR: f(2, 2),
    S1COR: f(4, 2),
    S1CSH: f(6, 2),
    S1STALLD: f(27),
    EATS: f(28, 2),
    STRW: f(30, 2),
    SHCFG: f(44, 2),
  },
  /** Word 2. */
  W2: {
    S2VMID: f(0, 16),
    S2T0SZ: f(32, 6),
    S2SL0: f(38, 2),
    S2IR0: f(40, 2),
    S2OR0: f(42, 2),
    S2SH0: f(44, 2),
    S2TG: f(46, 2),
    S2PS: f(48, 3),
    S2AA64: f(51),
    S2ENDI: f(52),
    S2PTW: f(54),
    S2R: f(58),
  },
} as const;

/** STE.Config values (SMMUv3 §5.2). */
export const STE_CONFIG = {
  /** 0b000: abort, no event recorded. */
  ABORT: 0b000,
  /** 0b100: bypass both stages. */
  BYPASS: 0b100,
  /** 0b101: stage 1 translates, stage 2 bypassed. */
  S1_TRANS: 0b101,
  /** 0b110: stage 1 bypassed, stage 2 translates. */
  S2_TRANS: 0b110,
  /** 0b111: nested. */
  NESTED: 0b111,
} as const;

/** STE.S1Fmt values. */
export const STE_S1FMT = { LINEAR: 0, L2_4K: 1 } as const;
/** STE.S1DSS values: what a transaction without SubstreamID gets. */
export const STE_S1DSS = { TERMINATE: 0, BYPASS: 1, SSID0: 2 } as const;
/** Cacheability write-back read-allocate (`STRTAB_STE_1_S1C_CACHE_WBRA`, CD IRGN/ORGN WBWA). */
export const SMMU_CACHE_WB = 1;
/** Inner shareable (`ARM_SMMU_SH_ISH`). */
export const SMMU_SH_ISH = 3;
/** STE.SHCFG "use incoming" (Linux's bypass STEs). */
export const STE_SHCFG_INCOMING = 1;
/** VTCR.S2SL0 for a 4 KiB-granule walk starting at level 0 / 1 / 2 (SL0 = 2 − start level). */
export const STE_S2SL0_LEVEL0 = 2;

/** CD word 0 fields (SMMUv3 §5.4). */
export const CD = {
  T0SZ: f(0, 6),
  TG0: f(6, 2),
  IRGN0: f(8, 2),
  ORGN0: f(10, 2),
  SH0: f(12, 2),
  EPD0: f(14),
  ENDI: f(15),
  EPD1: f(30),
  V: f(31),
  IPS: f(32, 3),
  TBI0: f(38),
  AA64: f(41),
  HD: f(42),
  HA: f(43),
  S: f(44),
  R: f(45),
  A: f(46),
  ASET: f(47),
  ASID: f(48, 16),
} as const;

/** CD.TG0 value of the 4 KiB granule. */
export const CD_TG0_4K = 0;
/** Smallest and largest T0SZ of a VMSAv8-64 CD without small translation tables (STT = 0). */
export const CD_T0SZ_RANGE = { min: 16, max: 39 } as const;
/** L1 CD descriptor: V bit 0, L2Ptr 51:12. */
export const CD_L1_V = 1n;
/** log2 of the CDs in one leaf of a 2-level CD table (`CTXDESC_SPLIT`). */
export const CD_SPLIT = 10;
/** L1 stream descriptor: SPAN 4:0 (L2 table holds 2^(SPAN−1) STEs), L2Ptr 51:6. */
export const STD_SPAN: RegField = f(0, 5);
/** StreamID bits resolved by a level-2 stream table (Linux `STRTAB_SPLIT`). */
export const STRTAB_SPLIT = 8;

/** A decoded STE (the fields the model acts on). */
export interface SteView {
  /** V: the STE is valid. */
  readonly valid: boolean;
  /** Config (see {@link STE_CONFIG}). */
  readonly config: number;
  /** S1Fmt: CD table format. */
  readonly s1fmt: number;
  /** S1ContextPtr: CD table address. */
  readonly s1ContextPtr: bigint;
  /** S1CDMax: log2 of the CDs. */
  readonly s1cdmax: number;
  /** S1DSS: what non-substream traffic gets. */
  readonly s1dss: number;
  /** S2VMID. */
  readonly s2vmid: number;
  /** VTCR.S2T0SZ. */
  readonly s2t0sz: number;
  /** VTCR.S2SL0 (start level). */
  readonly s2sl0: number;
  /** VTCR.S2PS (output size encoding). */
  readonly s2ps: number;
  /** S2AA64: AArch64 stage-2 tables. */
  readonly s2aa64: boolean;
  /** S2R: record stage-2 faults. */
  readonly s2r: boolean;
  /** S2TTB: stage-2 table address. */
  readonly s2ttb: bigint;
}

/** Decode the first four words of an STE. */
export function decodeSte(w: readonly bigint[]): SteView {
  return {
    valid: getField(w[0], STE.W0.V) === 1,
    config: getField(w[0], STE.W0.CONFIG),
    s1fmt: getField(w[0], STE.W0.S1FMT),
    s1ContextPtr: w[0] & ADDR_51_6,
    s1cdmax: getField(w[0], STE.W0.S1CDMAX),
    s1dss: getField(w[1], STE.W1.S1DSS),
    s2vmid: getField(w[2], STE.W2.S2VMID),
    s2t0sz: getField(w[2], STE.W2.S2T0SZ),
    s2sl0: getField(w[2], STE.W2.S2SL0),
    s2ps: getField(w[2], STE.W2.S2PS),
    s2aa64: getField(w[2], STE.W2.S2AA64) === 1,
    s2r: getField(w[2], STE.W2.S2R) === 1,
    s2ttb: w[3] & ADDR_51_4,
  };
}

/** Eight zero words. */
function words(): bigint[] {
  return new Array<bigint>(SMMU_ENTRY_WORDS).fill(0n);
}

/** An invalid STE (V = 0): every transaction gives C_BAD_STE. */
export function encodeInvalidSte(): bigint[] {
  return words();
}

/** Linux's abort STE (V = 1, Config = abort): transactions terminate, no event is recorded. */
export function encodeAbortSte(): bigint[] {
  const w = words();
  w[0] = setField(setField(0n, STE.W0.V, 1), STE.W0.CONFIG, STE_CONFIG.ABORT);
  return w;
}

/** Linux's bypass STE (`arm_smmu_make_bypass_ste`). */
export function encodeBypassSte(): bigint[] {
  const w = words();
  w[0] = setField(setField(0n, STE.W0.V, 1), STE.W0.CONFIG, STE_CONFIG.BYPASS);
  w[1] = setField(0n, STE.W1.SHCFG, STE_SHCFG_INCOMING);
  return w;
}

/** Inputs of {@link encodeS1Ste}. */
export interface S1SteOptions {
  /** CD table address. */
  readonly cdTable: bigint;
  /** log2 of the CDs (S1CDMax). */
  readonly s1cdmax: number;
  /** Linear or 2-level CD table. */
  readonly s1fmt: number;
  /** What non-substream traffic gets (Linux: use SSID 0). */
  readonly s1dss: number;
}

/** Linux's CD-table STE (`arm_smmu_make_cdtable_ste`, no ATS, no stall, EL1 stream world). */
export function encodeS1Ste(o: S1SteOptions): bigint[] {
  const w = words();
  let w0 = setField(0n, STE.W0.V, 1);
  w0 = setField(w0, STE.W0.CONFIG, STE_CONFIG.S1_TRANS);
  w0 = setField(w0, STE.W0.S1FMT, o.s1fmt);
  w0 = setField(w0, STE.W0.S1CDMAX, o.s1cdmax);
  w[0] = w0 | (o.cdTable & ADDR_51_6);
  let w1 = setField(0n, STE.W1.S1DSS, o.s1dss);
  w1 = setField(w1, STE.W1.S1CIR, SMMU_CACHE_WB);
  w1 = setField(w1, STE.W1.S1COR, SMMU_CACHE_WB);
  w[1] = setField(w1, STE.W1.S1CSH, SMMU_SH_ISH);
  return w;
}

/** Inputs of {@link encodeS2Ste}. */
export interface S2SteOptions {
  /** VMID. */
  readonly vmid: number;
  /** Stage-2 table address. */
  readonly ttb: bigint;
  /** Stage-2 input bits (64 − S2T0SZ). */
  readonly inputBits: number;
  /** S2PS encoding (IDR5.OAS style). */
  readonly ps: number;
}

/** Linux's stage-2 STE (`arm_smmu_make_s2_domain_ste`). */
export function encodeS2Ste(o: S2SteOptions): bigint[] {
  const w = words();
  w[0] = setField(setField(0n, STE.W0.V, 1), STE.W0.CONFIG, STE_CONFIG.S2_TRANS);
  w[1] = setField(0n, STE.W1.SHCFG, STE_SHCFG_INCOMING);
  let w2 = setField(0n, STE.W2.S2VMID, o.vmid);
  w2 = setField(w2, STE.W2.S2T0SZ, SMMU_TXSZ_BASE - o.inputBits);
  w2 = setField(w2, STE.W2.S2SL0, STE_S2SL0_LEVEL0);
  w2 = setField(w2, STE.W2.S2IR0, SMMU_CACHE_WB);
  w2 = setField(w2, STE.W2.S2OR0, SMMU_CACHE_WB);
  w2 = setField(w2, STE.W2.S2SH0, SMMU_SH_ISH);
  w2 = setField(w2, STE.W2.S2PS, o.ps);
  w2 = setField(w2, STE.W2.S2AA64, 1);
  w2 = setField(w2, STE.W2.S2PTW, 1);
  w[2] = setField(w2, STE.W2.S2R, 1);
  w[3] = o.ttb & ADDR_51_4;
  return w;
}

/** A decoded CD (the fields the model acts on). */
export interface CdView {
  /** V: the CD is valid. */
  readonly valid: boolean;
  /** T0SZ: input size is 64 − T0SZ bits. */
  readonly t0sz: number;
  /** TG0: granule (0 = 4 KiB). */
  readonly tg0: number;
  /** EPD0: TTB0 walks disabled. */
  readonly epd0: boolean;
  /** IPS: output size encoding. */
  readonly ips: number;
  /** AA64: VMSAv8-64 tables. */
  readonly aa64: boolean;
  /** R: record translation-related faults. */
  readonly recordFaults: boolean;
  /** ASID. */
  readonly asid: number;
  /** TTB0: stage-1 table address. */
  readonly ttb0: bigint;
}

/** Decode CD words 0 and 1. */
export function decodeCd(w: readonly bigint[]): CdView {
  return {
    valid: getField(w[0], CD.V) === 1,
    t0sz: getField(w[0], CD.T0SZ),
    tg0: getField(w[0], CD.TG0),
    epd0: getField(w[0], CD.EPD0) === 1,
    ips: getField(w[0], CD.IPS),
    aa64: getField(w[0], CD.AA64) === 1,
    recordFaults: getField(w[0], CD.R) === 1,
    asid: getField(w[0], CD.ASID),
    ttb0: w[1] & ADDR_51_4,
  };
}

/** Inputs of {@link encodeS1Cd}. */
export interface S1CdOptions {
  /** ASID. */
  readonly asid: number;
  /** Stage-1 table address. */
  readonly ttb0: bigint;
  /** Input bits (64 − T0SZ). */
  readonly inputBits: number;
  /** IPS encoding. */
  readonly ips: number;
  /** MAIR value for word 3. */
  readonly mair: bigint;
}

/** An invalid CD (V = 0, all words 0), as Linux's `arm_smmu_clear_cd` leaves a released SSID. */
export function encodeInvalidCd(): bigint[] {
  return words();
}

/** Linux's stage-1 CD (`arm_smmu_make_s1_cd`, little-endian, no stall, no HTTU). */
export function encodeS1Cd(o: S1CdOptions): bigint[] {
  const w = words();
  let w0 = setField(0n, CD.T0SZ, SMMU_TXSZ_BASE - o.inputBits);
  w0 = setField(w0, CD.TG0, CD_TG0_4K);
  w0 = setField(w0, CD.IRGN0, SMMU_CACHE_WB);
  w0 = setField(w0, CD.ORGN0, SMMU_CACHE_WB);
  w0 = setField(w0, CD.SH0, SMMU_SH_ISH);
  w0 = setField(w0, CD.EPD1, 1);
  w0 = setField(w0, CD.V, 1);
  w0 = setField(w0, CD.IPS, o.ips);
  w0 = setField(w0, CD.AA64, 1);
  w0 = setField(w0, CD.R, 1);
  w0 = setField(w0, CD.A, 1);
  w0 = setField(w0, CD.ASET, 1);
  w[0] = setField(w0, CD.ASID, o.asid);
  w[1] = o.ttb0 & ADDR_51_4;
  w[3] = o.mair;
  return w;
}

/**
 * A quiet CD for a SubstreamID being torn down while DMA may still run (Linux 6.12's
 * `arm_smmu_make_sva_cd` without an mm): still valid, so no C_BAD_CD, but EPD0 and EPD1 disable
 * every walk and R = 0 records no fault. Linux zeroes T0SZ and TTB0; here the domain's stay, which
 * changes nothing once EPD0 is set.
 */
export function encodeQuietCd(o: S1CdOptions): bigint[] {
  const w = encodeS1Cd(o);
  w[0] = setField(setField(w[0], CD.EPD0, 1), CD.R, 0);
  return w;
}

/** Read `n` little-endian words at `addr`; undefined if any is unbacked (an external abort). */
export function readWords(memory: PhysicalMemory, addr: bigint, n: number): bigint[] | undefined {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const v = memory.readU64(addr + BigInt(i * WORD_BYTES));
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}

/** Write little-endian words at `addr`. */
export function writeWords(memory: PhysicalMemory, addr: bigint, w: readonly bigint[]): void {
  w.forEach((v, i) => memory.writeU64(addr + BigInt(i * WORD_BYTES), v));
}

/** Where the SMMU finds an STE, or why it cannot (SMMUv3 §3.3.2, §6.3.24). */
export type SteLocation = { readonly addr: bigint } | { readonly badStreamId: true } | {
  readonly fetchAbort: bigint;
};

/**
 * The stream table: linear (2^sidBits STEs) or 2-level (L1 descriptors of 8 bytes, L2 tables of
 * 2^{@link STRTAB_SPLIT} STEs allocated when a stream first gets an STE, as Linux does at device
 * probe). Kernel side writes STEs; {@link locate} is the hardware's lookup from memory.
 */
export class StreamTable {
  readonly #memory: PhysicalMemory;
  readonly #chunks: PhysicalChunk[] = [];
  /** Base address (SMMU_STRTAB_BASE.ADDR). */
  readonly base: bigint;

  /**
   * A table for `sidBits`-bit StreamIDs; in a 2-level table the level-2 table of StreamIDs
   * 0–255 (PCI bus 0) is allocated up front, as Linux does when it probes the devices there at
   * boot. Throws when memory cannot hold it (a configuration error).
   */
  constructor(memory: PhysicalMemory, readonly sidBits: number, readonly twoLevel: boolean) {
    this.#memory = memory;
    const bytes = twoLevel
      ? WORD_BYTES * 2 ** Math.max(0, sidBits - STRTAB_SPLIT)
      : SMMU_STE_BYTES * 2 ** sidBits;
    this.base = BigInt(this.#alloc(bytes));
    if (twoLevel) this.steAddress(0);
  }

  /** SMMU_STRTAB_BASE_CFG fields: LOG2SIZE, SPLIT, FMT. */
  get cfg(): { log2size: number; split: number; fmt: number } {
    return {
      log2size: this.sidBits,
      split: this.twoLevel ? STRTAB_SPLIT : 0,
      fmt: this.twoLevel ? 1 : 0,
    };
  }

  /** Hardware lookup of the STE of `sid` from memory. */
  locate(sid: number): SteLocation {
    if (!Number.isInteger(sid) || sid < 0 || sid >= 2 ** this.sidBits) return { badStreamId: true };
    if (!this.twoLevel) return { addr: this.base + BigInt(sid * SMMU_STE_BYTES) };
    const l1 = this.base + BigInt(Math.floor(sid / 2 ** STRTAB_SPLIT) * WORD_BYTES);
    const desc = this.#memory.readU64(l1);
    if (desc === undefined) return { fetchAbort: l1 };
    const span = getField(desc, STD_SPAN);
    const index = sid % 2 ** STRTAB_SPLIT;
    if (span === 0 || index >= 2 ** (span - 1)) return { badStreamId: true };
    return { addr: (desc & ADDR_51_6) + BigInt(index * SMMU_STE_BYTES) };
  }

  /** Kernel side: the STE address of `sid`, allocating its L2 table first if needed. */
  steAddress(sid: number): bigint | undefined {
    const at = this.locate(sid);
    if ("addr" in at) return at.addr;
    if (!this.twoLevel || sid < 0 || sid >= 2 ** this.sidBits) return undefined;
    const l2 = this.#alloc(SMMU_STE_BYTES * 2 ** STRTAB_SPLIT);
    const l1 = this.base + BigInt(Math.floor(sid / 2 ** STRTAB_SPLIT) * WORD_BYTES);
    this.#memory.writeU64(l1, BigInt(l2) | BigInt(STRTAB_SPLIT + 1));
    return BigInt(l2) + BigInt((sid % 2 ** STRTAB_SPLIT) * SMMU_STE_BYTES);
  }

  /** Kernel side: write the STE of `sid`. */
  writeSte(sid: number, w: readonly bigint[]): void {
    const addr = this.steAddress(sid);
    if (addr !== undefined) writeWords(this.#memory, addr, w);
  }

  #alloc(bytes: number): number {
    // The table is aligned to its size (SMMU_STRTAB_BASE.ADDR, §6.3.23).
    const chunk = this.#memory.allocate(bytes, Math.max(MIN_ALIGN, bytes));
    if (chunk === undefined) {
      throw new RangeError("SMMUv3: no physical memory for the stream table");
    }
    this.#chunks.push(chunk);
    return chunk.base;
  }
}

/** Where the SMMU finds a CD, or why it cannot (SMMUv3 §3.4.3, §5.4). */
export type CdLocation = { readonly addr: bigint } | { readonly badSubstream: true } | {
  readonly fetchAbort: bigint;
};

/** Hardware lookup of CD `ssid` of a stream from memory, through a linear or 2-level table. */
export function locateCd(
  memory: PhysicalMemory,
  ste: Pick<SteView, "s1fmt" | "s1ContextPtr" | "s1cdmax">,
  ssid: number,
): CdLocation {
  if (ssid >= 2 ** ste.s1cdmax) return { badSubstream: true };
  if (ste.s1fmt === STE_S1FMT.LINEAR) {
    return { addr: ste.s1ContextPtr + BigInt(ssid * SMMU_CD_BYTES) };
  }
  const l1 = ste.s1ContextPtr + BigInt(Math.floor(ssid / 2 ** CD_SPLIT) * WORD_BYTES);
  const desc = memory.readU64(l1);
  if (desc === undefined) return { fetchAbort: l1 };
  if ((desc & CD_L1_V) === 0n) return { badSubstream: true };
  return { addr: (desc & ADDR_51_12) + BigInt((ssid % 2 ** CD_SPLIT) * SMMU_CD_BYTES) };
}

/**
 * One stream's CD table, as Linux allocates it (`arm_smmu_alloc_cd_tables`): linear when it holds
 * at most 2^{@link CD_SPLIT} CDs, else 2-level with 1024-CD leaves allocated on demand.
 */
export class CdTable {
  readonly #memory: PhysicalMemory;
  readonly #chunks: PhysicalChunk[] = [];
  /** S1ContextPtr. */
  readonly base: bigint;
  /** STE.S1Fmt for this table. */
  readonly s1fmt: number;

  /** A table of 2^`s1cdmax` CDs; throws when memory cannot hold it (configuration error). */
  constructor(memory: PhysicalMemory, readonly s1cdmax: number) {
    this.#memory = memory;
    this.s1fmt = s1cdmax <= CD_SPLIT ? STE_S1FMT.LINEAR : STE_S1FMT.L2_4K;
    const bytes = this.s1fmt === STE_S1FMT.LINEAR
      ? SMMU_CD_BYTES * 2 ** s1cdmax
      : WORD_BYTES * 2 ** (s1cdmax - CD_SPLIT);
    this.base = BigInt(this.#alloc(bytes));
  }

  /** Write CD `ssid` (allocating its leaf first in a 2-level table). */
  writeCd(ssid: number, w: readonly bigint[]): void {
    if (this.s1fmt === STE_S1FMT.L2_4K) {
      const l1 = this.base + BigInt(Math.floor(ssid / 2 ** CD_SPLIT) * WORD_BYTES);
      if (((this.#memory.readU64(l1) ?? 0n) & CD_L1_V) === 0n) {
        const leaf = this.#alloc(SMMU_CD_BYTES * 2 ** CD_SPLIT);
        this.#memory.writeU64(l1, BigInt(leaf) | CD_L1_V);
      }
    }
    const ste = { s1fmt: this.s1fmt, s1ContextPtr: this.base, s1cdmax: this.s1cdmax };
    const at = locateCd(this.#memory, ste, ssid);
    if ("addr" in at) writeWords(this.#memory, at.addr, w);
  }

  /** Free the table's memory. */
  destroy(): void {
    for (const c of this.#chunks) this.#memory.release(c);
    this.#chunks.length = 0;
  }

  #alloc(bytes: number): number {
    const chunk = this.#memory.allocate(bytes, Math.max(MIN_ALIGN, bytes));
    if (chunk === undefined) throw new RangeError("SMMUv3: no physical memory for a CD table");
    this.#chunks.push(chunk);
    return chunk.base;
  }
}
