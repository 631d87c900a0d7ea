/**
 * What each IOMMU model should answer, as data: the scenarios read a row of
 * {@link IOMMU_EXPECTATIONS} and never branch on a model's name. Adding a model is one row.
 *
 * Sources: shared/reference/vm-lab.md (answers of Linux 6.12 on QEMU 10's emulated IOMMUs, the
 * machines of the VM bench) and shared/reference/vfio.md / iommufd.md for the rules.
 *
 * @module
 */

import type { ErrnoName } from "../../ffi/errno.ts";
import { encode } from "../../ffi/uapi/layout.ts";
import { iommu_hw_info_vtd } from "./uapi.ts";
import type { VfioPath } from "./scenario.ts";

/** One usable IOVA range, inclusive. */
export interface IovaRange {
  /** First IOVA. */
  readonly start: bigint;
  /** Last IOVA (inclusive). */
  readonly end: bigint;
}

/** What a sPAPR TCE container reports (VFIO_IOMMU_SPAPR_TCE_GET_INFO) and accepts. */
export interface SpaprExpectations {
  /** `dma32_window_start`. */
  readonly dma32Start: bigint;
  /** `dma32_window_size`. */
  readonly dma32Size: bigint;
  /** `ddw.pgsizes`: TCE page sizes a created window may use. */
  readonly pgsizes: bigint;
  /** `ddw.max_dynamic_windows_supported`. */
  readonly maxWindows: number;
  /** `ddw.levels`. */
  readonly levels: number;
  /** Bus address the platform gives the second window. */
  readonly secondWindowStart: bigint;
}

/** The answers that depend on the IOMMU model. */
export interface IommuExpectations {
  /** Model name, as the simulator spells it ("vtd", "smmuv3", "virtio-iommu", "spapr"). */
  readonly model: string;
  /** The VFIO paths Linux offers behind this IOMMU (POWER: the sPAPR container only). */
  readonly paths: readonly VfioPath[];
  /** sPAPR TCE answers, for models with the spapr path. */
  readonly spapr?: SpaprExpectations;
  /**
   * Usable IOVA ranges of a device behind this IOMMU: the type1 IOVA_RANGE capability, and
   * IOMMU_IOAS_IOVA_RANGES of an IOAS the device is attached to (aperture clipped, non-relaxable
   * reserved regions cut out).
   */
  readonly iovaRanges: readonly IovaRange[];
  /** type1 `iova_pgsizes` (sub-page sizes folded to PAGE_SIZE). */
  readonly pgsizes: bigint;
  /** iommufd `out_iova_alignment` once a domain is attached. */
  readonly iovaAlignment: bigint;
  /** An IOVA inside a non-relaxable reserved region (the MSI window): mapping it is EINVAL. */
  readonly reservedIova: bigint;
  /** CHECK_EXTENSION(VFIO_DMA_CC_IOMMU) once the device's domain exists (0 or 1). */
  readonly dmaCc: number;
  /** SET_IOMMU(VFIO_TYPE1_NESTING_IOMMU) on a container with the group: errno or null (works). */
  readonly nestingSetIommu: ErrnoName | null;
  /** IOMMU_GET_HW_INFO: `out_data_type`, and the vendor data bytes as lowercase hex. */
  readonly hwInfo: { readonly type: number; readonly dataHex: string };
  /** IOMMU_GET_HW_INFO `out_capabilities`. */
  readonly hwCapabilities: bigint;
  /**
   * HWPT_ALLOC of a nested HWPT over a paging HWPT allocated without NEST_PARENT: EINVAL from
   * iommufd when the driver has `domain_alloc_user`, EOPNOTSUPP when it has none.
   */
  readonly nestedOverPlainParent: ErrnoName;
  /**
   * When a paging domain gets its aperture: "alloc" (VT-d, SMMUv3), or "first-attach"
   * (virtio-iommu's `viommu_domain_finalise`): a HWPT allocated explicitly with IOMMU_HWPT_ALLOC
   * joins its IOAS with an empty aperture, so that IOAS offers only [0, 0].
   */
  readonly domainAperture: "alloc" | "first-attach";
}

/** Lowercase hex of bytes, no separators (how vendor hw_info data is compared). */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The paths of x86 and arm64 hosts: type1, iommufd with cdevs, and the iommufd container. */
const X86_ARM64_PATHS: readonly VfioPath[] = ["type1", "iommufd", "compat"];

/** Every model with known answers. */
export const IOMMU_EXPECTATIONS: Readonly<Record<string, IommuExpectations>> = {
  // QEMU 10 intel-iommu (intremap=on, legacy/second-level mode, aw-bits 48), Linux 6.12: vm-lab.md
  // steps 2, 4, 5. ECAP 0xf00f4a has no SC (snoop control) → no enforced coherency → DMA_CC 0;
  // no SSADS (second-stage dirty) → no DIRTY_TRACKING capability.
  vtd: {
    model: "vtd",
    paths: X86_ARM64_PATHS,
    iovaRanges: [
      { start: 0n, end: 0xfedfffffn },
      { start: 0xfef00000n, end: (1n << 48n) - 1n },
    ],
    pgsizes: 0x40201000n,
    iovaAlignment: 0x1000n,
    reservedIova: 0xfee00000n,
    dmaCc: 0,
    nestingSetIommu: "EINVAL",
    hwInfo: {
      type: 1, // IOMMU_HW_INFO_TYPE_INTEL_VTD
      dataHex: hex(encode(iommu_hw_info_vtd, {
        flags: 1, // IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, always set in 6.12.107
        cap_reg: 0xd2008c222f0606n,
        ecap_reg: 0xf00f4an,
      })),
    },
    hwCapabilities: 0n,
    nestedOverPlainParent: "EINVAL",
    domainAperture: "alloc",
  },
  // QEMU 10.0 virtio-iommu-pci on q35 (no IRQ remapping: the bench passes
  // allow_unsafe_interrupts). Measured by the VM bench (tests/goldens/x86-virtio-iommu): QEMU 10's
  // input_range ends at 2^39−1 (QEMU 7.2 in vm-lab.md step 3 reported a 64-bit range). No hw_info
  // op in 6.12 → type NONE, no data.
  "virtio-iommu": {
    model: "virtio-iommu",
    paths: X86_ARM64_PATHS,
    iovaRanges: [
      { start: 0n, end: 0xfedfffffn },
      { start: 0xfef00000n, end: (1n << 39n) - 1n },
    ],
    pgsizes: 0xfffffffffffff000n,
    iovaAlignment: 0x1000n,
    reservedIova: 0xfee00000n,
    dmaCc: 0,
    nestingSetIommu: "EINVAL",
    hwInfo: { type: 0, dataHex: "" },
    hwCapabilities: 0n,
    nestedOverPlainParent: "EOPNOTSUPP", // no domain_alloc_user in 6.12's virtio-iommu
    domainAperture: "first-attach",
  },
  // QEMU 10.0 virt,iommu=smmuv3 with GICv3 ITS (MSI isolated), Linux 6.12 arm64. Measured by the
  // VM bench (tests/goldens/arm64-smmuv3): the software-MSI window 0x8000000-0x80fffff is cut out
  // of a 48-bit stage-1 input range; SET_IOMMU(TYPE1_NESTING) answers EPERM there (the reference
  // expected EINVAL); no hw_info op in 6.12 → type NONE.
  smmuv3: {
    model: "smmuv3",
    paths: X86_ARM64_PATHS,
    iovaRanges: [
      { start: 0n, end: 0x7ffffffn },
      { start: 0x8100000n, end: (1n << 48n) - 1n },
    ],
    pgsizes: 0x40201000n,
    iovaAlignment: 0x1000n,
    reservedIova: 0x8000000n,
    dmaCc: 0,
    nestingSetIommu: "EPERM",
    hwInfo: { type: 0, dataHex: "" },
    hwCapabilities: 0n,
    nestedOverPlainParent: "EINVAL", // 6.12's arm_smmu_domain_alloc_user exists (dirty tracking)
    domainAperture: "alloc",
  },
  // POWER9 PowerNV (simulated; no POWER machine in the VM bench: Deno has no ppc64le build).
  // Facts of vfio.md §9 and iommu-models.md §3: the 32-bit window [0, 2 GiB) with 4 KiB TCEs,
  // DDW with POWER9's TCE sizes, two windows (the second at 1 << 59), five levels. The type1 and
  // iommufd fields describe the default window; those paths do not exist on this platform.
  spapr: {
    model: "spapr",
    paths: ["spapr"],
    spapr: {
      dma32Start: 0n,
      dma32Size: 0x8000_0000n,
      pgsizes: (1n << 12n) | (1n << 16n) | (1n << 21n) | (1n << 30n),
      maxWindows: 2,
      levels: 5,
      secondWindowStart: 1n << 59n,
    },
    iovaRanges: [{ start: 0n, end: 0x7fff_ffffn }],
    pgsizes: 0x1000n,
    iovaAlignment: 0x1000n,
    reservedIova: 0x8000_0000n, // the first bus address past the 32-bit window
    dmaCc: 0,
    nestingSetIommu: "ENODEV",
    hwInfo: { type: 0, dataHex: "" },
    hwCapabilities: 0n,
    nestedOverPlainParent: "EOPNOTSUPP",
    domainAperture: "alloc",
  },
};

/** The expectation row of a model, or undefined when none is known. */
export function expectationsFor(model: string): IommuExpectations | undefined {
  return IOMMU_EXPECTATIONS[model];
}
