/**
 * The hardware-model interface every simulated IOMMU implements (VT-d now; SMMUv3, sPAPR TCE and
 * virtio-iommu later). The simulated kernel (VFIO type1, iommufd) talks only to this interface;
 * per-IOMMU differences are data in {@link IommuFacts}, not branches in the kernel model.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";

/** Linux `enum iommu_resv_type` (include/linux/iommu.h). */
export type ReservedRegionType = "direct" | "direct-relaxable" | "reserved" | "msi" | "sw-msi";

/** One reserved IOVA region of a device, as `iommu_get_resv_regions` reports it. */
export interface ReservedRegion {
  /** First IOVA. */
  readonly start: bigint;
  /** Last IOVA (inclusive). */
  readonly end: bigint;
  /** Region type; all but "direct-relaxable" are holes in the usable IOVA space. */
  readonly type: ReservedRegionType;
}

/** What Linux learns from an IOMMU driver, per device; VFIO and iommufd derive their answers from it. */
export interface IommuFacts {
  /** Model name: "vtd", "smmuv3", "spapr", "virtio-iommu". */
  readonly kind: string;
  /** `pgsize_bitmap` of a paging domain. */
  readonly pgsizeBitmap: bigint;
  /** Domain aperture, inclusive. */
  readonly aperture: { readonly start: bigint; readonly end: bigint };
  /** IOMMU_CAP_CACHE_COHERENCY. */
  readonly cacheCoherency: boolean;
  /** IOMMU_CAP_ENFORCE_CACHE_COHERENCY (VFIO_DMA_CC_IOMMU). */
  readonly enforceCacheCoherency: boolean;
  /** IOMMU_CAP_DIRTY_TRACKING. */
  readonly dirtyTracking: boolean;
  /** MSI isolated by interrupt remapping / ITS (else VFIO needs allow_unsafe_interrupts). */
  readonly msiIsolated: boolean;
  /** IOMMU_GET_HW_INFO: `out_data_type` and the vendor data (empty for none). */
  readonly hwInfo: { readonly type: number; readonly data: Uint8Array };
  /** log2 of the PASIDs the IOMMU supports for a device (0: none). */
  readonly maxPasidLog2: number;
  /**
   * The `hw_info` report of a later kernel whose 6.12 driver has none (SMMUv3 from Linux 6.13:
   * IOMMU_HW_INFO_TYPE_ARM_SMMUV3 and `iommu_hw_info_arm_smmuv3`); iommufd reports it only when
   * the kernel answers as that version.
   */
  readonly laterHwInfo?: { readonly type: number; readonly data: Uint8Array };
}

/**
 * A system-wide PASID allocator with owners, as a device model asks it for PASIDs (the
 * virtio-iommu PASID proposal). sim/kernel's `SystemPasidSpace` implements it; the models see only
 * this contract, so the IOMMU layer does not depend on the kernel layer above it.
 */
export interface SharedPasidSpace {
  /** The lowest free PASID in `[min, max]` (below `2^options.maxBits`) for `owner`; or -errno. */
  alloc(owner: unknown, min: number, max: number, options?: PasidAllocOptions): number;
  /** Free a PASID of `owner`: 0, or -ENOENT when the owner does not hold it. */
  free(owner: unknown, pasid: number): number;
  /** Free a PASID handed to `tenant` (a guest's FREE_PASID): 0, or -ENOENT. */
  freeByTenant(tenant: unknown, pasid: number): number;
  /** Who holds `pasid`, or undefined when it is not allocated. */
  holderOf(pasid: number): PasidHolder | undefined;
  /**
   * Release every PASID allocated through `via` (an allocator being removed) through the
   * teardown and quarantine; returns how many.
   */
  releaseVia(via: unknown, reason?: string): number;
}

/** PCIe's PASID width (PCIe 6.0 §6.20): 20 bits. */
export const PASID_BITS = 20;

/** Who holds an allocated PASID. */
export interface PasidHolder {
  /** May free and bind it. */
  readonly owner: unknown;
  /** The guest or host it was handed to (the owner itself unless given). */
  readonly tenant: unknown;
  /** The allocator it came from (undefined: the space itself). */
  readonly via: unknown;
}

/** Options of one {@link SharedPasidSpace.alloc}. */
export interface PasidAllocOptions {
  /** PASID bits of the device it is for (default 20): the result is below `2^maxBits`. */
  readonly maxBits?: number;
  /** The tenant (default: the owner). */
  readonly tenant?: unknown;
  /** The allocator it goes through. */
  readonly via?: unknown;
}

/** The direction of a DMA as the IOMMU sees it. */
export type DmaAccess = "read" | "write";

/** Permission of an IOMMU mapping. */
export interface MapProtection {
  /** Device may read memory. */
  readonly read: boolean;
  /** Device may write memory. */
  readonly write: boolean;
}

/**
 * A fault the IOMMU recorded, in the vendor's own format (`raw`), with the fields common to all
 * vendors and one readable line, e.g. the one Linux prints for it.
 */
export interface IommuFault {
  /** The vendor format of `raw`, e.g. "vtd-frr" (VT-d fault recording register). */
  readonly format: string;
  /** Requester id (bus << 8 | devfn) or stream id. */
  readonly requester: number;
  /** PASID, or undefined when the request carried none. */
  readonly pasid: number | undefined;
  /** Faulting IOVA. */
  readonly address: bigint;
  /** The access that faulted. */
  readonly access: DmaAccess;
  /** Vendor reason code (VT-d fault reason, SMMUv3 event id, …). */
  readonly reason: number;
  /** Vendor reason name, e.g. "PTE Write access is not set". */
  readonly reasonName: string;
  /** The raw record bytes in the vendor's layout (VT-d: 16-byte FRR). */
  readonly raw: Uint8Array;
  /** One readable line, e.g. Linux's DMAR log line. */
  readonly message: string;
  /** Virtual time of the fault, ns. */
  readonly timeNs: number;
  /** For a nested translation: the stage that faulted (1 user-owned, 2 kernel-owned). */
  readonly stage?: 1 | 2;
}

/** A user-owned stage-1 configuration as iommufd passes it (`data_type` and the vendor data). */
export interface NestedStage1 {
  /** `enum iommu_hwpt_data_type`, e.g. IOMMU_HWPT_DATA_VTD_S1. */
  readonly dataType: number;
  /** The vendor struct (e.g. `iommu_hwpt_vtd_s1`), zero-extended to its full size. */
  readonly data: Uint8Array;
}

/** Nested translation: user-owned stage-1 domains on a kernel-owned stage-2 (nest parent). */
export interface IommuNesting {
  /** A stage-1 domain over `parent` (a domain of this IOMMU), or -errno. */
  allocNested(parent: IommuDomain, stage1: NestedStage1): IommuDomain | number;
  /**
   * One user invalidation entry for a nested domain (the vendor's `*_invalidate` struct, already
   * validated by iommufd): drop the cached translations it names. 0 or -errno.
   */
  invalidateNested(domain: IommuDomain, entry: Uint8Array): number;
  /**
   * Route recoverable stage-1 faults of a nested domain to `handler` as page requests (what a
   * fault-capable HWPT gets from PRI/IOPF), or stop with `undefined`.
   */
  setPageRequestHandler(domain: IommuDomain, handler: PageRequestHandler | undefined): void;
  /**
   * One command exactly as the kernel writes it into the IOMMU's command queue (an SMMUv3
   * 16-byte command whose VMID and StreamID are physical: what a vIOMMU passes on after fixing
   * the user's). 0, or -EIO for a command the model does not execute. Optional: IOMMUs without a
   * command queue the kernel can forward to (VT-d here) lack it.
   */
  executeCommand?(command: Uint8Array): number;
}

/** One page request raised for a nested domain (a stage-1 miss or write-permission fault). */
export interface PageRequest {
  /** Requester id of the device. */
  readonly requester: number;
  /** PASID of the request, or undefined. */
  readonly pasid: number | undefined;
  /** The faulting (stage-1 input) address. */
  readonly address: bigint;
  /** The access that faulted. */
  readonly access: DmaAccess;
}

/** Receives page requests. */
export type PageRequestHandler = (request: PageRequest) => void;

/**
 * The generation of an IOMMU model's translation state: a counter the model increases whenever a
 * translation it answered might be answered differently from then on — every IOTLB insertion,
 * eviction and invalidation, every configuration-cache invalidation (context, PASID, STE, CD),
 * every attach, detach and domain switch, every change of a table the model reads without caching
 * (virtio-iommu's mapping table, sPAPR TCEs and windows) and every EEH state change.
 *
 * Callers that keep translations (a device's {@link TranslationHint}-driven cache in
 * sim/pci/dma_port.ts) compare it with the value they saw when they stored one.
 */
export class TranslationEpoch {
  /** Current generation. */
  value = 0;

  /** Something a translation may depend on changed. */
  bump(): void {
    this.value++;
  }
}

/**
 * Filled by {@link IommuModel.translate} for a caller that keeps translations. The model sets
 * `cacheable` to true only for an answer it would give again — the same physical page, for the
 * same requester, PASID and access anywhere in the same 4 KiB IOVA page, with no effect other
 * than its own cache-hit counters — for as long as its {@link TranslationEpoch} keeps its value:
 * an answer that now sits in the model's own IOTLB or configuration caches (so a stale entry stays
 * stale for the caller exactly as long as it does for the model), or one computed only from
 * state whose every change bumps the epoch. Faults are never cacheable.
 */
export interface TranslationHint {
  /** Cleared by the caller before the call; set by the model when the answer may be kept. */
  cacheable: boolean;
}

/** Result of a translation: a physical address, or the fault the hardware recorded. */
export type TranslateResult =
  | { readonly ok: true; readonly phys: bigint }
  | { readonly ok: false; readonly fault: IommuFault };

/** A paging domain: an I/O page table the kernel fills with map/unmap. */
export interface IommuDomain {
  /** Hardware domain id (VT-d DID, SMMU ASID/VMID, …). */
  readonly id: number;
  /**
   * Map `[iova, iova + size)` to `[phys, phys + size)`. All values aligned to the smallest page
   * size; the model picks the largest pages that fit. Returns 0 or -errno (-ENOMEM, -EEXIST,
   * -EINVAL for out-of-aperture or misaligned).
   */
  map(iova: bigint, phys: bigint, size: bigint, prot: MapProtection): number;
  /** Unmap `[iova, iova + size)`; returns the number of bytes that were mapped and are now not. */
  unmap(iova: bigint, size: bigint): bigint;
  /** Look up without faulting or caching: the phys address and protection, or undefined. */
  lookup(iova: bigint): { phys: bigint; prot: MapProtection } | undefined;
}

/** A simulated IOMMU: the hardware the kernel programs and devices DMA through. */
export interface IommuModel {
  /** Per-model facts (see {@link IommuFacts}). */
  readonly facts: IommuFacts;
  /** Reserved regions for a device (requester id). */
  reservedRegions(requester: number): ReservedRegion[];
  /**
   * A new, empty paging domain; its tables live in simulated physical memory. `stage` 2 asks for
   * a second-stage domain where the IOMMU distinguishes them (SMMUv3: a VMID instead of an ASID,
   * what Linux allocates for a nest parent); models with one kind ignore it.
   */
  allocDomain(stage?: 1 | 2): IommuDomain;
  /** Free a domain and its tables. It must not be attached. */
  freeDomain(domain: IommuDomain): void;
  /**
   * Translation contexts the kernel holds on this IOMMU now: domains allocated and not freed
   * (paging and nested), not counting ones the IOMMU driver keeps for itself (virtio-iommu's
   * cached blocking domains); on sPAPR, the TCE windows programmed into PEs. Leak checks compare
   * it with a baseline.
   */
  domainsInUse?(): number;
  /** Point a device (requester id) at a domain; `null` blocks all its DMA. Flushes its IOTLB. */
  attach(requester: number, domain: IommuDomain | null): void;
  /**
   * The driver's `attach_dev` refusals that depend on the stream's current state, asked before
   * {@link attach}: 0 or -errno (SMMUv3: EBUSY for a stage-2 or nested domain while substreams
   * are in use). Models without such rules leave it out.
   */
  attachCheck?(requester: number, domain: IommuDomain): number;
  /**
   * Point one PASID (substream) of a device at a domain; `null` blocks that PASID. Flushes the
   * PASID's IOTLB entries. Returns 0, or -EOPNOTSUPP when the IOMMU has no PASID support
   * (`facts.maxPasidLog2 === 0`), or -EINVAL for a PASID of `1 << maxPasidLog2` or more.
   */
  attachPasid(requester: number, pasid: number, domain: IommuDomain | null): number;
  /**
   * The first step of a PASID teardown (seed 003), the way Linux tears down an SVA PASID while DMA
   * may still run: every device entry of `pasid` on this IOMMU goes not present with fault
   * reporting suppressed (VT-d: P = 0, FPD = 1, `intel_pasid_tear_down_entry(…, fault_ignore)`;
   * SMMUv3: a valid CD with EPD0/EPD1 set and R clear, arm-smmu-v3's quiet CD), its cached
   * translations are flushed and the domain it held is let go. DMA tagged with it then fails
   * without a fault record. Returns the requesters that had an entry. Absent on IOMMUs without
   * PASIDs.
   */
  silencePasid?(pasid: number): number[];
  /**
   * The last step of a PASID teardown, once the drain is done: the silenced entries of `pasid`
   * become plain not-present ones, so DMA tagged with it faults and is reported again.
   */
  clearSilencedPasid?(pasid: number): void;
  /**
   * Translate one DMA access of `length` bytes (not crossing a 4 KiB page). On a fault the record
   * is appended to {@link faults} and returned. A model with a {@link translationEpoch} says in
   * `hint` whether the answer may be kept (see {@link TranslationHint}); others leave it alone.
   */
  translate(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    length: number,
    hint?: TranslationHint,
  ): TranslateResult;
  /**
   * The generation of the model's translation state (see {@link TranslationEpoch}); absent when
   * the model never marks an answer cacheable, and then every access is translated.
   */
  readonly translationEpoch?: TranslationEpoch;
  /** Every fault recorded so far, oldest first. */
  readonly faults: readonly IommuFault[];
  /**
   * Fault injection: record the fault this IOMMU records when a DMA `access` at `iova` finds no
   * valid translation (VT-d: PTE read/write not set; SMMUv3: F_TRANSLATION; virtio-iommu: a
   * MAPPING fault; sPAPR: an invalid TCE, which freezes the PE), with every side effect of that
   * fault, and return it. Models without it cannot have DMA faults injected.
   */
  injectFault?(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
  ): IommuFault;
  /**
   * Whether the platform blocks MMIO to a function (sPAPR EEH: a frozen PE reads all-ones and
   * drops writes). Absent: never blocked.
   */
  mmioBlocked?(requester: number): boolean;
  /**
   * VFIO took or gave back a function (its first open, its last close). sPAPR EEH thaws the
   * function's frozen PE (`eeh_dev_open` / `eeh_dev_release` → `eeh_pe_change_owner`). Absent:
   * nothing happens.
   */
  changeOwner?(requester: number): void;
  /**
   * What the model holds now, one name each (domains by id, device and PASID attachments, sPAPR
   * windows), sorted: the leak check of long-running tests, which compare it with a baseline.
   */
  liveDomains?(): string[];
  /** Nested translation, when the IOMMU (and its mode) supports it. */
  readonly nesting?: IommuNesting;
}

/** The fault of a failed translation (a model's own fault path always fails). */
export function faultOf(result: TranslateResult): IommuFault {
  if (result.ok) throw new Error("IOMMU model: a recorded fault came back as a translation");
  return result.fault;
}

/**
 * The checks every model's {@link IommuModel.attachPasid} starts with: 0 when `pasid` is within
 * the IOMMU's PASID width, -EOPNOTSUPP without PASID support, -EINVAL beyond the width.
 */
export function checkPasidAttach(facts: IommuFacts, pasid: number): number {
  if (facts.maxPasidLog2 === 0) return -ERRNO.EOPNOTSUPP;
  if (!Number.isInteger(pasid) || pasid < 0 || pasid >= 2 ** facts.maxPasidLog2) {
    return -ERRNO.EINVAL;
  }
  return 0;
}
