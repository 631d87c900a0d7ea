/**
 * Decoding of the Intel VT-d CAP and ECAP registers that iommufd's IOMMU_GET_HW_INFO returns
 * raw (`struct iommu_hw_info_vtd`). Bit positions are from the VT-d specification §11.4.2
 * (Capability Register) and §11.4.3 (Extended Capability Register), as Linux's
 * drivers/iommu/intel/iommu.h decodes them.
 *
 * @module
 */

/** The raw `iommu_hw_info_vtd` fields. */
export interface VtdHwInfoValues {
  /** IOMMU_HW_INFO_VTD_* flags. */
  readonly flags: number;
  /** The CAP register. */
  readonly cap_reg: bigint;
  /** The ECAP register. */
  readonly ecap_reg: bigint;
}

/** CAP and ECAP, decoded. */
export interface VtdRegisters {
  /** IOMMU_HW_INFO_VTD_* flags (ERRATA_772415_SPR17 …). */
  readonly flags: number;
  /** Raw CAP register. */
  readonly capReg: bigint;
  /** Raw ECAP register. */
  readonly ecapReg: bigint;
  /** Number of domain ids (CAP.ND: 2^(4 + 2·ND)). */
  readonly domains: number;
  /** Caching mode (CAP.CM): set by emulated IOMMUs that need invalidations for every map. */
  readonly cachingMode: boolean;
  /** Supported second-stage address widths in bits (CAP.SAGAW: bit i → 30 + 9·i). */
  readonly secondStageWidths: number[];
  /** Maximum guest address width in bits (CAP.MGAW + 1). */
  readonly maxGuestAddressWidth: number;
  /** Second-stage large page sizes in bytes (CAP.SLLPS: 2 MiB, 1 GiB). */
  readonly secondStageLargePages: bigint[];
  /** Page-selective invalidation (CAP.PSI). */
  readonly pageSelectiveInvalidation: boolean;
  /** Number of fault recording registers (CAP.NFR + 1). */
  readonly faultRecordingRegisters: number;
  /** Coherent page walks (ECAP.C). */
  readonly coherent: boolean;
  /** Queued invalidation (ECAP.QI). */
  readonly queuedInvalidation: boolean;
  /** Device TLB / ATS (ECAP.DT). */
  readonly deviceTlb: boolean;
  /** Interrupt remapping (ECAP.IR). */
  readonly interruptRemapping: boolean;
  /** Pass-through (ECAP.PT). */
  readonly passThrough: boolean;
  /** Snoop control (ECAP.SC): enforced cache coherency. */
  readonly snoopControl: boolean;
  /** Nested translation (ECAP.NEST). */
  readonly nesting: boolean;
  /** Page requests (ECAP.PRS). */
  readonly pageRequests: boolean;
  /** PASID width in bits (ECAP.PSS + 1), or 0 without PASID support (ECAP.PASID). */
  readonly pasidBits: number;
  /** Scalable mode (ECAP.SMTS). */
  readonly scalableMode: boolean;
  /** Second-stage accessed/dirty bits, i.e. dirty tracking (ECAP.SLADS). */
  readonly dirtyTracking: boolean;
  /** Second-stage translation (ECAP.SLTS). */
  readonly secondStage: boolean;
  /** First-stage translation (ECAP.FLTS). */
  readonly firstStage: boolean;
}

/** A bit field `[low, low + width)` of a 64-bit register. */
function field(reg: bigint, low: number, width: number): number {
  return Number((reg >> BigInt(low)) & ((1n << BigInt(width)) - 1n));
}

function bit(reg: bigint, position: number): boolean {
  return field(reg, position, 1) === 1;
}

/** CAP register fields (VT-d §11.4.2). */
const CAP = {
  ND: [0, 3],
  CM: 7,
  SAGAW: [8, 5],
  MGAW: [16, 6],
  SLLPS: [34, 4],
  PSI: 39,
  NFR: [40, 8],
} as const;

/** ECAP register fields (VT-d §11.4.3). */
const ECAP = {
  C: 0,
  QI: 1,
  DT: 2,
  IR: 3,
  PT: 6,
  SC: 7,
  NEST: 26,
  PRS: 29,
  PSS: [35, 5],
  PASID: 40,
  SMTS: 43,
  SLADS: 45,
  SLTS: 46,
  FLTS: 47,
} as const;

/** Domain-id bits per ND step and the base: domains = 2^(ND_BASE + ND_STEP·ND). */
const ND_BASE = 4;
const ND_STEP = 2;
/** Second-stage width of SAGAW bit i: AGAW_BASE + AGAW_STEP·i bits. */
const AGAW_BASE = 30;
const AGAW_STEP = 9;
/** SLLPS bit i is a page of 2^(SLLPS_BASE_SHIFT + 9·i) bytes (bit 0: 2 MiB). */
const SLLPS_BASE_SHIFT = 21;

/** Decode the CAP/ECAP registers of an `iommu_hw_info_vtd`. */
export function decodeVtdRegisters(info: VtdHwInfoValues): VtdRegisters {
  const cap = info.cap_reg;
  const ecap = info.ecap_reg;
  const sagaw = field(cap, ...CAP.SAGAW);
  const sllps = field(cap, ...CAP.SLLPS);
  const secondStageWidths: number[] = [];
  for (let i = 0; i < CAP.SAGAW[1]; i++) {
    if ((sagaw >> i) & 1) secondStageWidths.push(AGAW_BASE + AGAW_STEP * i);
  }
  const secondStageLargePages: bigint[] = [];
  for (let i = 0; i < CAP.SLLPS[1]; i++) {
    if ((sllps >> i) & 1) {
      secondStageLargePages.push(1n << BigInt(SLLPS_BASE_SHIFT + AGAW_STEP * i));
    }
  }
  return {
    flags: info.flags,
    capReg: cap,
    ecapReg: ecap,
    domains: 2 ** (ND_BASE + ND_STEP * field(cap, ...CAP.ND)),
    cachingMode: bit(cap, CAP.CM),
    secondStageWidths,
    maxGuestAddressWidth: field(cap, ...CAP.MGAW) + 1,
    secondStageLargePages,
    pageSelectiveInvalidation: bit(cap, CAP.PSI),
    faultRecordingRegisters: field(cap, ...CAP.NFR) + 1,
    coherent: bit(ecap, ECAP.C),
    queuedInvalidation: bit(ecap, ECAP.QI),
    deviceTlb: bit(ecap, ECAP.DT),
    interruptRemapping: bit(ecap, ECAP.IR),
    passThrough: bit(ecap, ECAP.PT),
    snoopControl: bit(ecap, ECAP.SC),
    nesting: bit(ecap, ECAP.NEST),
    pageRequests: bit(ecap, ECAP.PRS),
    pasidBits: bit(ecap, ECAP.PASID) ? field(ecap, ...ECAP.PSS) + 1 : 0,
    scalableMode: bit(ecap, ECAP.SMTS),
    dirtyTracking: bit(ecap, ECAP.SLADS),
    secondStage: bit(ecap, ECAP.SLTS),
    firstStage: bit(ecap, ECAP.FLTS),
  };
}
