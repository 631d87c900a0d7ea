/**
 * A VT-d nested domain (scalable-mode PASID-table entry with PGTT = nested, VT-d §9.6): the
 * user's first-stage tables (`iommu_hwpt_vtd_s1.pgtbl_addr`, a GPA) over a kernel-owned
 * second-stage parent domain. It has its own domain id; translations are cached in the unit's
 * IOTLB under that DID and the request's PASID, and stay in use until the user invalidates them
 * (IOMMU_HWPT_INVALIDATE with `iommu_hwpt_vtd_s1_invalidate` entries) or the kernel changes the
 * parent (an unmap in the parent flushes every nested child, as Linux's parent-domain flush does).
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import { decode } from "../../../ffi/uapi/layout.ts";
import { iommu_hwpt_vtd_s1_invalidate, IOMMU_VTD_INV_FLAGS_LEAF } from "../../../ffi/uapi/mod.ts";
import type { PhysicalMemory } from "../../memory.ts";
import type { DmaAccess, IommuDomain, MapProtection, PageRequestHandler } from "../model.ts";
import { type SecondStage, VTD_SM_FR, walkFirstStage } from "./vtd_first_stage.ts";
import type { VtdIotlb } from "./vtd_iotlb.ts";
import type { SecondStageTable } from "./vtd_pgtable.ts";

const U64_MAX = (1n << 64n) - 1n;
const PAGE = 4096n;

/** What a nested domain needs from its parent: the second-stage table. */
export interface NestParent {
  /** The parent's DID. */
  readonly id: number;
  /** Its second-stage table. */
  readonly table: SecondStageTable;
  /** Nested domains built on it (flushed with the parent). */
  readonly children: Set<VtdNestedDomain>;
}

/** The result of a nested translation. */
export type NestedResult =
  | { readonly ok: true; readonly phys: bigint }
  | { readonly ok: false; readonly reason: number };

/** A stage-1 domain on a nest parent. */
export class VtdNestedDomain implements IommuDomain {
  /** Set once freed. */
  freed = false;
  /** Where recoverable stage-1 faults go as page requests (a fault-capable HWPT), if anywhere. */
  pageRequest: PageRequestHandler | undefined;

  /** Use `VtdIommu.nesting.allocNested`. */
  constructor(
    readonly id: number,
    readonly parent: NestParent,
    /** GPA of the first-stage root table (PML4 or PML5). */
    readonly root: bigint,
    /** 4- or 5-level paging (addr_width 48 or 57). */
    readonly levels: 4 | 5,
    private readonly memory: PhysicalMemory,
    private readonly iotlb: VtdIotlb,
  ) {}

  /** The kernel does not map into a user-owned stage 1: -EOPNOTSUPP. */
  map(_iova: bigint, _phys: bigint, _size: bigint, _prot: MapProtection): number {
    return -ERRNO.EOPNOTSUPP;
  }

  /** Nothing to unmap in a user-owned stage 1. */
  unmap(_iova: bigint, _size: bigint): bigint {
    return 0n;
  }

  /** Both stages walked, without caching or A/D updates. */
  lookup(iova: bigint): { phys: bigint; prot: MapProtection } | undefined {
    const w = walkFirstStage(this.memory, this.root, this.levels, iova, "read", this.#s2, false);
    if (!w.ok) return undefined;
    const s2 = this.parent.table.walk(w.gpa);
    if (!s2) return undefined;
    return { phys: s2.phys, prot: { read: s2.prot.read, write: w.writable && s2.prot.write } };
  }

  /** Translate one access: IOTLB (DID, PASID) first, then the two-stage walk, then cache it. */
  translate(iova: bigint, access: DmaAccess, pasid: number): NestedResult {
    const cached = this.iotlb.lookup(this.id, iova, pasid);
    if (cached && (access === "write" ? cached.write : cached.read)) {
      return { ok: true, phys: cached.physBase + (iova - cached.iovaBase) };
    }
    const w = walkFirstStage(this.memory, this.root, this.levels, iova, access, this.#s2, true);
    if (!w.ok) return w;
    const s2 = this.parent.table.walk(w.gpa);
    if (!s2 || !(access === "write" ? s2.prot.write : s2.prot.read)) {
      return { ok: false, reason: VTD_SM_FR.SL_PERMISSION };
    }
    // Cache one 4 KiB page of the combined translation (smallest of both stages' pages).
    const pageIova = iova & ~(PAGE - 1n);
    this.iotlb.insert({
      did: this.id,
      pasid,
      iovaBase: pageIova,
      size: PAGE,
      physBase: s2.phys - (iova - pageIova),
      read: s2.prot.read,
      write: w.writable && s2.prot.write,
    });
    return { ok: true, phys: s2.phys };
  }

  /**
   * One `iommu_hwpt_vtd_s1_invalidate` entry: `npages` pages from `addr` (all with npages =
   * U64_MAX and addr 0). Every PASID the domain serves is flushed. 0.
   */
  invalidate(entry: Uint8Array): number {
    const e = decode(iommu_hwpt_vtd_s1_invalidate, entry);
    if (e.npages === U64_MAX) this.iotlb.flushDomain(this.id);
    else this.iotlb.flushRange(this.id, e.addr, e.addr + e.npages * PAGE);
    return 0;
  }

  /** Second-stage translation of a paging-entry GPA (needs read, or write for A/D updates). */
  readonly #s2: SecondStage = (gpa, write) => {
    const w = this.parent.table.walk(gpa);
    if (!w || !(write ? w.prot.write : w.prot.read)) return undefined;
    return w.phys;
  };
}

/** One `iommu_hwpt_vtd_s1_invalidate` entry for the trace: "all" or the page range. */
export function describeVtdInvalidation(entry: Uint8Array): string {
  const e = decode(iommu_hwpt_vtd_s1_invalidate, entry);
  if (e.npages === U64_MAX) return "all";
  return `addr=0x${e.addr.toString(16)} npages=${e.npages}${
    e.flags & IOMMU_VTD_INV_FLAGS_LEAF ? " leaf" : ""
  }`;
}
