/**
 * A VT-d paging domain (vtd.ts): a domain id and a second-stage table in physical memory, with
 * map and unmap as Linux's intel-iommu answers them and the IOTLB flushes of an unmap (of the
 * range, and of every nested child, whose stage-1 addresses any stage-2 change can back).
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import type { IommuDomain, IommuFacts, MapProtection } from "../model.ts";
import type { VtdIotlb } from "./vtd_iotlb.ts";
import type { VtdNestedDomain } from "./vtd_nested.ts";
import { type SecondStageTable, VTD_PAGE_SIZE } from "./vtd_pgtable.ts";

/**
 * What a domain uses of its unit (`VtdIommu`, ./vtd.ts, which implements it): declared here so
 * that this module does not import the one that owns it.
 */
export interface VtdDomainUnit {
  /** The facts Linux derives from the unit (the aperture). */
  readonly facts: IommuFacts;
  /** The IOTLB. */
  readonly iotlb: VtdIotlb;
  /** Append a line to the machine trace. */
  traceLine(line: string): void;
}

/** A VT-d paging domain: a DID and a second-stage table. */
export class VtdDomain implements IommuDomain {
  /** @internal the owning unit, for flushes. */
  readonly unit: VtdDomainUnit;
  /** The second-stage table (root at `table.root`). */
  readonly table: SecondStageTable;
  /** Set once freed; further use is a kernel bug. */
  freed = false;
  /** Nested stage-1 domains built on this one (it is their nest parent). */
  readonly children: Set<VtdNestedDomain> = new Set();

  /** Use {@link VtdIommu.allocDomain}. */
  constructor(unit: VtdDomainUnit, readonly id: number, table: SecondStageTable) {
    this.unit = unit;
    this.table = table;
  }

  /** Map; 0, -EINVAL (misaligned, empty, no permission, beyond the aperture), -EEXIST, -ENOMEM. */
  map(iova: bigint, phys: bigint, size: bigint, prot: MapProtection): number {
    const page = BigInt(VTD_PAGE_SIZE);
    if (this.freed || size <= 0n || iova < 0n || phys < 0n) return -ERRNO.EINVAL;
    if (iova % page !== 0n || phys % page !== 0n || size % page !== 0n) return -ERRNO.EINVAL;
    if (!prot.read && !prot.write) return -ERRNO.EINVAL;
    if (iova + size - 1n > this.unit.facts.aperture.end) return -ERRNO.EINVAL;
    if (this.table.anyMapped(iova, iova + size)) return -ERRNO.EEXIST;
    const r = this.table.map(iova, phys, size, prot);
    this.unit.traceLine(
      `vtd map did=${this.id} iova=0x${iova.toString(16)} size=0x${size.toString(16)} ` +
        `phys=0x${phys.toString(16)} ${prot.read ? "r" : "-"}${prot.write ? "w" : "-"}` +
        (r < 0 ? ` -> ${r}` : ""),
    );
    return r;
  }

  /** Unmap exactly the range (large pages are split); flushes the IOTLB for it. */
  unmap(iova: bigint, size: bigint): bigint {
    const page = BigInt(VTD_PAGE_SIZE);
    if (this.freed || size <= 0n || iova < 0n || iova % page !== 0n || size % page !== 0n) {
      return 0n;
    }
    const removed = this.table.unmap(iova, size);
    this.unit.iotlb.flushRange(this.id, iova, iova + size);
    // A stage-2 change can back any stage-1 address: flush every nested child entirely.
    for (const child of this.children) this.unit.iotlb.flushDomain(child.id);
    this.unit.traceLine(
      `vtd unmap did=${this.id} iova=0x${iova.toString(16)} size=0x${size.toString(16)} ` +
        `-> 0x${removed.toString(16)}`,
    );
    return removed;
  }

  /** Page walk without caching or faulting. */
  lookup(iova: bigint): { phys: bigint; prot: MapProtection } | undefined {
    const w = this.freed ? undefined : this.table.walk(iova);
    return w && { phys: w.phys, prot: w.prot };
  }
}
