/**
 * Intel VT-d remapping-hardware registers: offsets, CAP/ECAP bit fields and the register values of
 * the simulated unit. Offsets and fields follow the VT-d specification §11.4 (register
 * descriptions) as Linux 6.12 decodes them in drivers/iommu/intel/iommu.h; see
 * shared/reference/iommu-models.md §1.1.
 *
 * The default values model QEMU's `intel-iommu` (legacy/second-level mode, `aw-bits=48`,
 * `intremap=on`), whose registers a Linux 6.12 guest reported through IOMMU_GET_HW_INFO as
 * `cap_reg=0xd2008c222f0606 ecap_reg=0xf00f4a` (vm-lab.md step 5). {@link vtdCapValue} and
 * {@link vtdEcapValue} build those values from named fields, so the claims the model makes
 * (widths, page sizes, fault registers) and the raw registers cannot drift apart.
 *
 * @module
 */

import { encode } from "../../../ffi/uapi/layout.ts";
import { iommu_hw_info_vtd, IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 } from "../../../ffi/uapi/mod.ts";
import { regField, setField } from "../reg_fields.ts";

/** Register offsets in the remapping unit's MMIO page (VT-d §11.4; Linux `DMAR_*_REG`). */
export const VTD_REG = {
  /** Version register (32-bit). */
  VER: 0x00,
  /** Capability register (64-bit). */
  CAP: 0x08,
  /** Extended capability register (64-bit). */
  ECAP: 0x10,
  /** Global command register (32-bit, write-only). */
  GCMD: 0x18,
  /** Global status register (32-bit). */
  GSTS: 0x1c,
  /** Root table address register (64-bit). */
  RTADDR: 0x20,
  /** Context command register (64-bit). */
  CCMD: 0x28,
  /** Fault status register (32-bit). */
  FSTS: 0x34,
  /** Fault event control register (32-bit). */
  FECTL: 0x38,
} as const;

const f = regField;

/** Capability register fields (VT-d §11.4.2). */
export const VTD_CAP = {
  /** Number of domains supported: 2^(4 + 2·ND). */
  ND: f(0, 3),
  /** Advanced fault logging. */
  AFL: f(3),
  /** Required write-buffer flushing. */
  RWBF: f(4),
  /** Protected low-memory region. */
  PLMR: f(5),
  /** Protected high-memory region. */
  PHMR: f(6),
  /** Caching mode (invalidations needed for not-present → present). */
  CM: f(7),
  /** Supported adjusted guest address widths: bit i = 30 + 9·i bits. */
  SAGAW: f(8, 5),
  /** Maximum guest address width − 1. */
  MGAW: f(16, 6),
  /** Zero-length read. */
  ZLR: f(22),
  /** Fault-recording register offset, in units of 16 bytes. */
  FRO: f(24, 10),
  /** Second-level large page support: bit 0 2 MiB, bit 1 1 GiB. */
  SLLPS: f(34, 4),
  /** Page-selective invalidation. */
  PSI: f(39),
  /** Number of fault-recording registers − 1. */
  NFR: f(40, 8),
  /** Maximum address mask value for page-selective invalidation. */
  MAMV: f(48, 6),
  /** Write draining. */
  DWD: f(54),
  /** Read draining. */
  DRD: f(55),
  /** First-level 1 GiB pages. */
  FL1GP: f(56),
  /** First-level 5-level paging. */
  FL5LP: f(60),
  /** Posted interrupts. */
  PI: f(59),
} as const;

/** Extended capability register fields (VT-d §11.4.3). */
export const VTD_ECAP = {
  /** Page-walk coherency. */
  C: f(0),
  /** Queued invalidation. */
  QI: f(1),
  /** Device TLB (ATS). */
  DT: f(2),
  /** Interrupt remapping. */
  IR: f(3),
  /** Extended interrupt mode (x2APIC). */
  EIM: f(4),
  /** Pass-through. */
  PT: f(6),
  /** Snoop control. */
  SC: f(7),
  /** IOTLB register offset, in units of 16 bytes. */
  IRO: f(8, 10),
  /** Maximum handle mask value. */
  MHMV: f(20, 4),
  /** Nested translation. */
  NEST: f(26),
  /** Page requests. */
  PRS: f(29),
  /** PASID size − 1 (bits). */
  PSS: f(35, 5),
  /** PASID support. */
  PASID: f(40),
  /** Page-request drain support. */
  PDS: f(42),
  /** Scalable-mode translation. */
  SMTS: f(43),
  /** Second-level accessed/dirty support. */
  SLADS: f(45),
  /** Second-level translation support (scalable mode). */
  SLTS: f(46),
  /** First-level translation support. */
  FLTS: f(47),
} as const;

/** Global status bits (VT-d §11.4.5). */
export const VTD_GSTS = {
  /** Translation enable status. */
  TES: 1 << 31,
  /** Root table pointer status. */
  RTPS: 1 << 30,
  /** Queued invalidation enable status. */
  QIES: 1 << 26,
  /** Interrupt remapping enable status. */
  IRES: 1 << 25,
  /** Interrupt remapping table pointer status. */
  IRTPS: 1 << 24,
} as const;

/** Fault status register bits (VT-d §11.4.9.1). */
export const VTD_FSTS = {
  /** Primary fault overflow (RW1C). */
  PFO: 1 << 0,
  /** Primary pending fault (RO: some FRR has F set). */
  PPF: 1 << 1,
  /** Fault record index field shift (bits 15:8, RO). */
  FRI_SHIFT: 8,
  /** Fault record index field mask after shifting. */
  FRI_MASK: 0xff,
} as const;

/** Version register value of QEMU's intel-iommu (major 1, minor 0). */
export const VTD_VERSION = 0x10;

/** CAP.ND value for 16-bit domain ids (65536 domains). */
export const VTD_ND_16BIT = 6;
/** Domain-id count for ND: 2^(ND_BASE + ND_STEP·ND). */
export const VTD_ND_BASE = 4;
/** See {@link VTD_ND_BASE}. */
export const VTD_ND_STEP = 2;
/** Second-level width of SAGAW bit i: AGAW_BASE + AGAW_STEP·i bits. */
export const VTD_AGAW_BASE = 30;
/** See {@link VTD_AGAW_BASE}; also the bits translated per page-table level. */
export const VTD_AGAW_STEP = 9;
/** FRO of QEMU's intel-iommu: fault-recording registers at 0x220. */
export const VTD_QEMU_FRO = 0x22;
/** IRO of QEMU's intel-iommu: IOTLB registers at 0xf0. */
export const VTD_QEMU_IRO = 0xf;
/** MAMV of QEMU's intel-iommu. */
export const VTD_QEMU_MAMV = 0x12;
/** MHMV of QEMU's intel-iommu. */
export const VTD_QEMU_MHMV = 0xf;
/** CAP.SLLPS bits: 2 MiB and 1 GiB second-level pages. */
export const VTD_SLLPS_2M_1G = 0b11;
/** Size of one fault-recording register (128 bits). */
export const VTD_FRR_BYTES = 16;
/** Fault-recording registers of QEMU's intel-iommu (CAP.NFR = 0 → one register). */
export const VTD_QEMU_NFR = 1;

/** Address widths the model supports: 3-, 4- and 5-level second-level tables. */
export type VtdAddressWidth = 39 | 48 | 57;

/** SAGAW bit index (AGAW) of a width: (width − 30) / 9. */
export function vtdAgawOf(width: VtdAddressWidth): number {
  return (width - VTD_AGAW_BASE) / VTD_AGAW_STEP;
}

/** Inputs of {@link vtdCapValue}. */
export interface VtdCapOptions {
  /** Guest address width (MGAW + 1); SAGAW holds every AGAW from 39 bits up to it, as QEMU does. */
  readonly width: VtdAddressWidth;
  /** Fault-recording registers (NFR + 1), 1..256. */
  readonly faultRegisters: number;
  /** Scalable mode: first-stage 1 GiB pages and 5-level paging (CAP.FL1GP, CAP.FL5LP). */
  readonly firstStage?: boolean;
}

/**
 * The CAP register: 16-bit domain ids, SAGAW up to `width`, MGAW `width − 1`, FRO 0x220, 2 MiB and
 * 1 GiB second-level pages, page-selective invalidation, read/write draining. For width 48 and one
 * fault register this is QEMU's 0xd2008c222f0606.
 */
export function vtdCapValue(o: VtdCapOptions): bigint {
  let sagaw = 0;
  for (let agaw = vtdAgawOf(39); agaw <= vtdAgawOf(o.width); agaw++) sagaw |= 1 << agaw;
  let cap = 0n;
  cap = setField(cap, VTD_CAP.ND, VTD_ND_16BIT);
  cap = setField(cap, VTD_CAP.SAGAW, sagaw);
  cap = setField(cap, VTD_CAP.MGAW, o.width - 1);
  cap = setField(cap, VTD_CAP.FRO, VTD_QEMU_FRO);
  cap = setField(cap, VTD_CAP.SLLPS, VTD_SLLPS_2M_1G);
  cap = setField(cap, VTD_CAP.PSI, 1);
  cap = setField(cap, VTD_CAP.NFR, o.faultRegisters - 1);
  cap = setField(cap, VTD_CAP.MAMV, VTD_QEMU_MAMV);
  cap = setField(cap, VTD_CAP.DWD, 1);
  cap = setField(cap, VTD_CAP.DRD, 1);
  if (o.firstStage) {
    cap = setField(cap, VTD_CAP.FL1GP, 1);
    cap = setField(cap, VTD_CAP.FL5LP, 1);
  }
  return cap;
}

/** Inputs of {@link vtdEcapValue}. */
export interface VtdEcapOptions {
  /** Interrupt remapping (ECAP.IR). */
  readonly intremap: boolean;
  /**
   * Scalable mode with first- and second-stage translation, PASIDs of `pasidBits` bits, device
   * TLBs and page requests and, with `nesting`, nested translation (ECAP.SMTS, FLTS, SLTS, PASID,
   * PSS, DT, PRS, PDS, NEST). Absent: legacy mode.
   */
  readonly scalable?: { readonly pasidBits: number; readonly nesting: boolean };
}

/**
 * The ECAP register: queued invalidation, interrupt remapping (optional), pass-through, IOTLB
 * registers at 0xf0, MHMV 15. No page-walk coherency, no snoop control (so no enforced cache
 * coherency), no second-level A/D bits (so no dirty tracking); no PASID, no scalable mode and no
 * device TLB or page requests unless `scalable` asks for them (as QEMU's `device-iotlb=on` and
 * `x-pri=on` add to scalable mode). With interrupt remapping and legacy mode this is QEMU's
 * 0xf00f4a.
 */
export function vtdEcapValue(o: VtdEcapOptions): bigint {
  let ecap = 0n;
  ecap = setField(ecap, VTD_ECAP.QI, 1);
  ecap = setField(ecap, VTD_ECAP.IR, o.intremap ? 1 : 0);
  ecap = setField(ecap, VTD_ECAP.PT, 1);
  ecap = setField(ecap, VTD_ECAP.IRO, VTD_QEMU_IRO);
  ecap = setField(ecap, VTD_ECAP.MHMV, VTD_QEMU_MHMV);
  if (o.scalable) {
    ecap = setField(ecap, VTD_ECAP.SMTS, 1);
    ecap = setField(ecap, VTD_ECAP.FLTS, 1);
    ecap = setField(ecap, VTD_ECAP.SLTS, 1);
    ecap = setField(ecap, VTD_ECAP.PASID, 1);
    ecap = setField(ecap, VTD_ECAP.PSS, o.scalable.pasidBits - 1);
    ecap = setField(ecap, VTD_ECAP.NEST, o.scalable.nesting ? 1 : 0);
    ecap = setField(ecap, VTD_ECAP.DT, 1);
    ecap = setField(ecap, VTD_ECAP.PRS, 1);
    ecap = setField(ecap, VTD_ECAP.PDS, 1);
  }
  return ecap;
}

/** `struct iommu_hw_info_vtd` as IOMMU_GET_HW_INFO returns it (little-endian). */
export function vtdHwInfoData(cap: bigint, ecap: bigint): Uint8Array {
  return encode(iommu_hw_info_vtd, {
    flags: IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
    cap_reg: cap,
    ecap_reg: ecap,
  });
}
