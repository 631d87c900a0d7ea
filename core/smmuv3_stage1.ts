/**
 * A user-owned Arm SMMUv3 stage 1, built in TypeScript: the guest side of an iommufd vSMMU
 * (Linux 6.13+). It holds a linear context-descriptor (CD) table and, per CD, a VMSAv8-64 page
 * table with a 4 KiB granule, all in one {@link DmaBuffer} mapped into the nest parent's IOAS, so
 * their intermediate physical addresses (IPAs) are the buffer's IOVAs; the SMMU reads them
 * through stage 2. {@link SmmuV3Stage1Tables.vste} gives the STE words for
 * IOMMU_HWPT_ALLOC(`IOMMU_HWPT_DATA_ARM_SMMUV3`) on a vIOMMU; {@link smmuCommand} encodes the
 * commands IOMMU_HWPT_INVALIDATE(`IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`) takes.
 *
 * Formats (Arm SMMUv3 §5.2 STE, §5.4 CD, §4.3–4.4 commands; Arm ARM D8 VMSAv8-64 descriptors):
 * - STE word 0: V bit 0, Config 3:1 (0b101 stage-1 translate), S1Fmt 5:4 (0 linear), S1ContextPtr
 *   51:6, S1CDMax 63:59 (log2 of the CD count); word 1: S1DSS 1:0 (what DMA without a PASID gets:
 *   0 terminate, 1 bypass stage 1, 2 use CD 0), S1CIR 3:2, S1COR 5:4 (1 write-back), S1CSH 7:6
 *   (3 inner shareable).
 * - CD (64 bytes) word 0: T0SZ 5:0, TG0 7:6 (0 = 4 KiB), IRGN0 9:8, ORGN0 11:10, SH0 13:12, EPD1
 *   30, V 31, IPS 34:32, AA64 41, R 45 (record faults), A 46, ASET 47, ASID 63:48; word 1: TTB0
 *   51:4; word 3: MAIR.
 * - descriptors: bit 0 valid, bit 1 table/page, AttrIndx 4:2, AP[1] bit 6 (unprivileged access:
 *   device DMA is unprivileged), AP[2] bit 7 (read-only), SH 9:8, AF 10, output address 47:12.
 *
 * The SMMU caches CDs and translations, tagged by the vIOMMU's VMID and the CD's ASID: after a
 * change, send CMD_TLBI_NH_VA / NH_ASID (a PTE) or CMD_CFGI_CD (a CD) through the vIOMMU.
 *
 * @example
 * ```ts
 * const s1 = new SmmuV3Stage1Tables(dev.dma.allocate(64 * 1024), { cds: 1 });
 * s1.setContext(0, { asid: 1 });
 * s1.map(0, 0x100_0000n, target.iova, 4096n, { write: true });
 * const data = s1.vste(); // iommu_hwpt_arm_smmuv3
 * const inv = smmuCommand("TLBI_NH_VA", { asid: 1, address: 0x100_0000n });
 * ```
 *
 * @module
 */

import type { DmaBuffer } from "./dma_space.ts";
import { VfioError } from "./errors.ts";

const TABLE_BYTES = 4096;
const CD_BYTES = 64;
const PAGE = 4096n;
const INDEX_MASK = 511n;
const ADDR_MASK = ((1n << 48n) - 1n) & ~0xfffn;
/** 48-bit input: T0SZ 16, walk from level 0. */
const T0SZ_48 = 16;
/** IPS encoding of a 48-bit output. */
const IPS_48 = 5;
/** MAIR of Linux's io-pgtable: index 0 normal write-back, 1 normal non-cacheable, 2 device. */
const MAIR = 0x0004_44ffn;
/** Most CDs a one-page linear CD table holds. */
const MAX_CDS = TABLE_BYTES / CD_BYTES;

/** Descriptor bits. */
const DESC = {
  VALID: 1n,
  TABLE_OR_PAGE: 2n,
  AP_UNPRIV: 1n << 6n,
  AP_RDONLY: 1n << 7n,
  SH_IS: 3n << 8n,
  AF: 1n << 10n,
} as const;

/** STE.S1DSS: what DMA without a PASID gets when the table has more than one CD. */
export type SmmuS1Dss = "terminate" | "bypass" | "ssid0";
const S1DSS: Record<SmmuS1Dss, bigint> = { terminate: 0n, bypass: 1n, ssid0: 2n };

/** Options of {@link SmmuV3Stage1Tables}. */
export interface SmmuV3Stage1Options {
  /** CDs in the (linear) CD table: a power of two, 1..64 (default 1: no PASIDs). */
  readonly cds?: number;
}

/** A CD table and per-CD stage-1 tables inside one DMA buffer. */
export class SmmuV3Stage1Tables {
  readonly #buffer: DmaBuffer;
  readonly #view: DataView;
  readonly #cds: number;
  readonly #roots = new Map<number, number>();
  #nextTable = 1; // page 0 is the CD table

  /** Tables carved out of `buffer` (page aligned; page 0 becomes the CD table). */
  constructor(buffer: DmaBuffer, options: SmmuV3Stage1Options = {}) {
    const cds = options.cds ?? 1;
    if (buffer.size < 2 * TABLE_BYTES || buffer.iova % PAGE !== 0n) {
      throw new VfioError({
        operation: "SmmuV3Stage1Tables",
        message: "the table buffer must be page aligned and hold at least two 4 KiB pages",
      });
    }
    if (!Number.isInteger(cds) || cds < 1 || cds > MAX_CDS || (cds & (cds - 1)) !== 0) {
      throw new VfioError({
        operation: "SmmuV3Stage1Tables",
        message: `cds ${cds}: want a power of two from 1 to ${MAX_CDS}`,
      });
    }
    this.#buffer = buffer;
    this.#cds = cds;
    this.#view = new DataView(buffer.bytes.buffer, buffer.bytes.byteOffset, buffer.size);
    buffer.bytes.fill(0, 0, TABLE_BYTES);
  }

  /** IPA of the CD table (STE.S1ContextPtr). */
  get cdTable(): bigint {
    return this.#buffer.iova;
  }

  /**
   * `iommu_hwpt_arm_smmuv3`: STE words 0–1 of a stage-1 translating STE over this CD table.
   * `s1dss` (default "bypass") only matters with more than one CD.
   */
  vste(options: { readonly s1dss?: SmmuS1Dss } = {}): Uint8Array {
    const cdMax = BigInt(Math.log2(this.#cds));
    const w0 = 1n | (0b101n << 1n) | (this.cdTable & (((1n << 52n) - 1n) & ~0x3fn)) |
      (cdMax << 59n);
    const w1 = S1DSS[options.s1dss ?? "bypass"] | (1n << 2n) | (1n << 4n) | (3n << 6n);
    return words(w0, w1);
  }

  /** Write CD `ssid` (valid, 48-bit input and output, 4 KiB granule) with its own table root. */
  setContext(ssid: number, o: { readonly asid: number }): void {
    this.#checkSsid(ssid);
    const root = this.#roots.get(ssid) ?? this.#takeTable();
    this.#roots.set(ssid, root);
    const w0 = BigInt(T0SZ_48) | (1n << 8n) | (1n << 10n) | (3n << 12n) | (1n << 30n) |
      (1n << 31n) | (BigInt(IPS_48) << 32n) | (1n << 41n) | (1n << 45n) | (1n << 46n) |
      (1n << 47n) | (BigInt(o.asid & 0xffff) << 48n);
    const at = ssid * CD_BYTES;
    this.#view.setBigUint64(at + 8, this.#ipa(root) & (((1n << 52n) - 1n) & ~0xfn), true);
    this.#view.setBigUint64(at + 24, MAIR, true);
    this.#view.setBigUint64(at, w0, true);
  }

  /** Clear CD `ssid` (V = 0): DMA with that PASID then gets C_BAD_CD once the CD is refetched. */
  clearContext(ssid: number): void {
    this.#checkSsid(ssid);
    this.#view.setBigUint64(ssid * CD_BYTES, 0n, true);
  }

  /** Map `[va, va + size)` of CD `ssid` to IPAs `[ipa, ipa + size)` in 4 KiB pages. */
  map(ssid: number, va: bigint, ipa: bigint, size: bigint, prot: { write: boolean }): void {
    if ((va | ipa | size) % PAGE !== 0n || size <= 0n) {
      throw new VfioError({
        operation: "SmmuV3Stage1Tables.map",
        message: "va, ipa and size must be multiples of 4 KiB (size > 0)",
      });
    }
    const leaf = DESC.VALID | DESC.TABLE_OR_PAGE | DESC.AP_UNPRIV | DESC.SH_IS | DESC.AF |
      (prot.write ? 0n : DESC.AP_RDONLY);
    for (let off = 0n; off < size; off += PAGE) {
      this.#setLeaf(ssid, va + off, ((ipa + off) & ADDR_MASK) | leaf, true);
    }
  }

  /** Clear the leaf entries of `[va, va + size)` of CD `ssid`. */
  unmap(ssid: number, va: bigint, size: bigint): void {
    for (let off = 0n; off < size; off += PAGE) this.#setLeaf(ssid, va + off, 0n, false);
  }

  #checkSsid(ssid: number): void {
    if (!Number.isInteger(ssid) || ssid < 0 || ssid >= this.#cds) {
      throw new VfioError({
        operation: "SmmuV3Stage1Tables",
        message: `SSID ${ssid} is outside the ${this.#cds}-entry CD table`,
      });
    }
  }

  #ipa(table: number): bigint {
    return this.#buffer.iova + BigInt(table * TABLE_BYTES);
  }

  #setLeaf(ssid: number, va: bigint, entry: bigint, alloc: boolean): void {
    const root = this.#roots.get(ssid);
    if (root === undefined) {
      if (!alloc) return;
      throw new VfioError({
        operation: "SmmuV3Stage1Tables.map",
        message: `CD ${ssid} has no context yet`,
        hint: "call setContext(ssid, { asid }) first",
      });
    }
    let table = root;
    for (let level = 0; level < 3; level++) {
      const index = Number((va >> BigInt(39 - 9 * level)) & INDEX_MASK);
      const at = table * TABLE_BYTES + index * 8;
      let desc = this.#view.getBigUint64(at, true);
      if ((desc & DESC.VALID) === 0n) {
        if (!alloc) return;
        desc = (this.#ipa(this.#takeTable()) & ADDR_MASK) | DESC.VALID | DESC.TABLE_OR_PAGE;
        this.#view.setBigUint64(at, desc, true);
      }
      table = Number(((desc & ADDR_MASK) - this.#buffer.iova) / BigInt(TABLE_BYTES));
    }
    this.#view.setBigUint64(
      table * TABLE_BYTES + Number((va >> 12n) & INDEX_MASK) * 8,
      entry,
      true,
    );
  }

  #takeTable(): number {
    if ((this.#nextTable + 1) * TABLE_BYTES > this.#buffer.size) {
      throw new VfioError({
        operation: "SmmuV3Stage1Tables.map",
        message: `the ${this.#buffer.size}-byte table buffer is full`,
        hint: "allocate a larger buffer for the tables",
      });
    }
    const t = this.#nextTable++;
    this.#buffer.bytes.fill(0, t * TABLE_BYTES, (t + 1) * TABLE_BYTES);
    return t;
  }
}

/** SMMUv3 command opcodes a vIOMMU forwards (SMMUv3 §4.3–4.5). */
export const SMMU_COMMANDS = {
  CFGI_CD: 0x05,
  CFGI_CD_ALL: 0x06,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NH_VAA: 0x13,
  TLBI_NSNH_ALL: 0x30,
  ATC_INV: 0x40,
} as const;

/** Fields of {@link smmuCommand}; absent ones are zero. The VMID is the kernel's to fill. */
export interface SmmuCommandFields {
  /** CFGI_*, ATC_INV: the virtual StreamID (the vDEVICE's `virt_id`). */
  readonly vsid?: number;
  /** CFGI_CD: the SubstreamID (PASID). */
  readonly ssid?: number;
  /** TLBI_NH_ASID, TLBI_NH_VA: the ASID. */
  readonly asid?: number;
  /** TLBI_NH_VA(A): the address (bits 63:12). */
  readonly address?: bigint;
  /** Leaf-only invalidation. */
  readonly leaf?: boolean;
}

/**
 * One `iommu_viommu_arm_smmuv3_invalidate` entry (two little-endian command words). Opcodes
 * outside {@link SMMU_COMMANDS} are encoded too (the kernel answers EIO for them).
 */
export function smmuCommand(
  op: keyof typeof SMMU_COMMANDS | number,
  f: SmmuCommandFields = {},
): Uint8Array {
  const code = typeof op === "number" ? op : SMMU_COMMANDS[op];
  let c0 = BigInt(code & 0xff);
  let c1 = f.leaf ? 1n : 0n;
  if (code === SMMU_COMMANDS.CFGI_CD || code === SMMU_COMMANDS.CFGI_CD_ALL) {
    c0 |= (BigInt((f.ssid ?? 0) & 0xfffff) << 12n) | (BigInt((f.vsid ?? 0) >>> 0) << 32n);
  } else if (code === SMMU_COMMANDS.ATC_INV) {
    c0 |= BigInt((f.vsid ?? 0) >>> 0) << 32n;
  } else {
    c0 |= BigInt((f.asid ?? 0) & 0xffff) << 48n;
    c1 |= (f.address ?? 0n) & (((1n << 64n) - 1n) & ~0xfffn);
  }
  return words(c0, c1);
}

function words(a: bigint, b: bigint): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, a, true);
  v.setBigUint64(8, b, true);
  return out;
}
