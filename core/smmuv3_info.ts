/**
 * Decoding of the Arm SMMUv3 ID registers that iommufd's IOMMU_GET_HW_INFO returns raw from Linux
 * 6.13 on (`struct iommu_hw_info_arm_smmuv3`: IDR0..IDR5, IIDR, AIDR). Field positions are from
 * the SMMUv3 architecture specification §6.3 (SMMU_IDR0 §6.3.1, SMMU_IDR1 §6.3.2, SMMU_IDR3
 * §6.3.4, SMMU_IDR5 §6.3.6). A VMM reads these to build the guest's virtual SMMU: what stages,
 * table formats, granules, StreamID/SubstreamID widths and output size the hardware offers.
 *
 * @module
 */

import { decode } from "../ffi/uapi/layout.ts";
import { iommu_hw_info_arm_smmuv3 } from "../ffi/uapi/post_6_12.ts";

/** The ID registers, decoded. */
export interface SmmuV3Registers {
  /** Raw IDR0..IDR5. */
  readonly idr: readonly number[];
  /** Implementation identification (SMMU_IIDR). */
  readonly iidr: number;
  /** Architecture version (SMMU_AIDR: 0 = v3.0, 1 = v3.1, …). */
  readonly aidr: number;
  /** Stage-1 translation (IDR0.S1P). */
  readonly stage1: boolean;
  /** Stage-2 translation (IDR0.S2P). */
  readonly stage2: boolean;
  /** Translation table formats (IDR0.TTF): AArch32 and/or AArch64. */
  readonly tableFormats: readonly ("aarch32" | "aarch64")[];
  /** Coherent table walks and queue accesses (IDR0.COHACC). */
  readonly coherent: boolean;
  /** ATS (IDR0.ATS). */
  readonly ats: boolean;
  /** PRI queue (IDR0.PRI). */
  readonly pri: boolean;
  /** 16-bit ASIDs (IDR0.ASID16). */
  readonly asid16: boolean;
  /** 16-bit VMIDs (IDR0.VMID16). */
  readonly vmid16: boolean;
  /** Two-level CD tables (IDR0.CD2L). */
  readonly cd2l: boolean;
  /** Stall model (IDR0.STALL_MODEL): 0 both, 1 terminate only, 2 stall forced. */
  readonly stallModel: number;
  /** Two-level stream tables (IDR0.ST_LEVEL = 1). */
  readonly twoLevelStreamTable: boolean;
  /** StreamID bits (IDR1.SIDSIZE). */
  readonly sidBits: number;
  /** SubstreamID bits (IDR1.SSIDSIZE): 0 means no substreams (no PASIDs). */
  readonly ssidBits: number;
  /** Stage-2 forced write-back (IDR3.FWB), needed for nesting under Linux 6.13. */
  readonly fwb: boolean;
  /** Range invalidation (IDR3.RIL). */
  readonly rangeInvalidation: boolean;
  /** Output address size in bits (IDR5.OAS). */
  readonly oasBits: number;
  /** Supported translation granules in bytes (IDR5.GRAN4K/16K/64K). */
  readonly granules: readonly number[];
}

const field = (reg: number, shift: number, width = 1): number =>
  (reg >>> shift) & ((1 << width) - 1);

/** IDR0 fields: [shift, width]. */
const IDR0 = {
  S2P: [0, 1],
  S1P: [1, 1],
  TTF: [2, 2],
  COHACC: [4, 1],
  ATS: [10, 1],
  ASID16: [12, 1],
  PRI: [16, 1],
  VMID16: [18, 1],
  CD2L: [19, 1],
  STALL_MODEL: [24, 2],
  ST_LEVEL: [27, 2],
} as const;
/** IDR0.TTF bit values. */
const TTF_AARCH32 = 1;
const TTF_AARCH64 = 2;
/** IDR1 fields. */
const IDR1 = { SIDSIZE: [0, 6], SSIDSIZE: [6, 5] } as const;
/** IDR3 fields. */
const IDR3 = { FWB: [8, 1], RIL: [10, 1] } as const;
/** IDR5 fields. */
const IDR5 = { OAS: [0, 3], GRAN4K: [4, 1], GRAN16K: [5, 1], GRAN64K: [6, 1] } as const;
/** IDR5.OAS encodings → bits (§6.3.6: 0b000 32 … 0b110 52). */
const OAS_BITS = [32, 36, 40, 42, 44, 48, 52];
/** Granule sizes in bytes. */
const GRANULE_4K = 0x1000;
const GRANULE_16K = 0x4000;
const GRANULE_64K = 0x10000;

const get = (reg: number, f: readonly [number, number]): number => field(reg, f[0], f[1]);

/** Decode `struct iommu_hw_info_arm_smmuv3` bytes (40) as IOMMU_GET_HW_INFO wrote them. */
export function decodeSmmuV3Registers(data: Uint8Array): SmmuV3Registers {
  const v = decode(iommu_hw_info_arm_smmuv3, data);
  const idr = Array.from({ length: 6 }, (_, i) => v.idr[i] >>> 0);
  const [idr0, idr1, , idr3, , idr5] = idr;
  const ttf = get(idr0, IDR0.TTF);
  const tableFormats: ("aarch32" | "aarch64")[] = [];
  if (ttf & TTF_AARCH32) tableFormats.push("aarch32");
  if (ttf & TTF_AARCH64) tableFormats.push("aarch64");
  const granules: number[] = [];
  if (get(idr5, IDR5.GRAN4K)) granules.push(GRANULE_4K);
  if (get(idr5, IDR5.GRAN16K)) granules.push(GRANULE_16K);
  if (get(idr5, IDR5.GRAN64K)) granules.push(GRANULE_64K);
  return {
    idr,
    iidr: v.iidr >>> 0,
    aidr: v.aidr >>> 0,
    stage1: get(idr0, IDR0.S1P) === 1,
    stage2: get(idr0, IDR0.S2P) === 1,
    tableFormats,
    coherent: get(idr0, IDR0.COHACC) === 1,
    ats: get(idr0, IDR0.ATS) === 1,
    pri: get(idr0, IDR0.PRI) === 1,
    asid16: get(idr0, IDR0.ASID16) === 1,
    vmid16: get(idr0, IDR0.VMID16) === 1,
    cd2l: get(idr0, IDR0.CD2L) === 1,
    stallModel: get(idr0, IDR0.STALL_MODEL),
    twoLevelStreamTable: get(idr0, IDR0.ST_LEVEL) === 1,
    sidBits: get(idr1, IDR1.SIDSIZE),
    ssidBits: get(idr1, IDR1.SSIDSIZE),
    fwb: get(idr3, IDR3.FWB) === 1,
    rangeInvalidation: get(idr3, IDR3.RIL) === 1,
    oasBits: OAS_BITS[get(idr5, IDR5.OAS)] ?? 0,
    granules,
  };
}
