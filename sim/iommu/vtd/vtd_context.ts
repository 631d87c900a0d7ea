/**
 * The VT-d unit's context entries and, in scalable mode, its per-device PASID tables (vtd.ts
 * translates from both): attach and detach of a device (RID) or of one of its PASIDs, each
 * flushing the IOTLB of the domains involved, and the teardown of a PASID with fault processing
 * disabled (P = 0, FPD = 1, Linux's `pasid_clear_entry_with_fpd`).
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import { checkPasidAttach, type IommuDomain, type IommuFacts } from "../model.ts";
import type { VtdDomain } from "./vtd_domain.ts";
import type { VtdIotlb } from "./vtd_iotlb.ts";
import type { VtdNestedDomain } from "./vtd_nested.ts";

/** What the tables use of their unit (`VtdIommu`, ./vtd.ts). */
export interface VtdContextUnit {
  /** The facts Linux derives from the unit (PASID width). */
  readonly facts: IommuFacts;
  /** The IOTLB. */
  readonly iotlb: VtdIotlb;
  /** Append a line to the machine trace. */
  traceLine(line: string): void;
}

/** The context entries and PASID tables of one unit; see the module doc. */
export class VtdContextTables {
  /** Per requester, the domain of its context entry (the unit's translation reads it). */
  readonly context: Map<number, VtdDomain | VtdNestedDomain> = new Map();
  /** Scalable mode: per requester, the PASID-table entries other than RID_PASID. */
  readonly pasidTables: Map<number, Map<number, VtdDomain | VtdNestedDomain>> = new Map();
  /** Scalable mode: per requester, the PASIDs whose entry is torn down with P = 0 and FPD = 1. */
  readonly fpd: Map<number, Set<number>> = new Map();
  readonly #u: VtdContextUnit;
  readonly #scalable: boolean;
  readonly #own: (domain: IommuDomain) => VtdDomain | VtdNestedDomain;

  /**
   * Empty tables of `unit`, with PASID tables when `scalable`; `own` checks that a domain is the
   * unit's.
   */
  constructor(
    unit: VtdContextUnit,
    scalable: boolean,
    own: (domain: IommuDomain) => VtdDomain | VtdNestedDomain,
  ) {
    this.#u = unit;
    this.#scalable = scalable;
    this.#own = own;
  }

  /** `VtdIommu.attach`: set the device's context entry to `domain` (or clear it). */
  attach(requester: number, domain: IommuDomain | null): void {
    const old = this.context.get(requester);
    if (old) this.#u.iotlb.flushDomain(old.id);
    if (domain === null) {
      this.context.delete(requester);
    } else {
      const d = this.#own(domain);
      if (d.freed) throw new Error(`VT-d: attach of freed domain ${d.id}`);
      this.context.set(requester, d);
      this.#u.iotlb.flushDomain(d.id);
    }
    this.#u.traceLine(`vtd attach rid=0x${requester.toString(16)} did=${domain?.id ?? "none"}`);
  }

  /** `VtdIommu.attachPasid`: set or clear the PASID-table entry of `pasid` for a device. */
  attachPasid(requester: number, pasid: number, domain: IommuDomain | null): number {
    const rc = checkPasidAttach(this.#u.facts, pasid);
    if (rc < 0) return rc;
    if (!this.#scalable) return -ERRNO.EOPNOTSUPP;
    let table = this.pasidTables.get(requester);
    const old = table?.get(pasid);
    if (old) this.#u.iotlb.flushDomain(old.id);
    this.fpd.get(requester)?.delete(pasid);
    if (domain === null) {
      table?.delete(pasid);
    } else {
      const d = this.#own(domain);
      if (d.freed) throw new Error(`VT-d: PASID attach of freed domain ${d.id}`);
      if (!table) this.pasidTables.set(requester, table = new Map());
      table.set(pasid, d);
      this.#u.iotlb.flushDomain(d.id);
    }
    this.#u.traceLine(
      `vtd attach rid=0x${requester.toString(16)} pasid=${pasid} did=${domain?.id ?? "none"}`,
    );
    return 0;
  }

  /** `VtdIommu.silencePasid`: every device's entry of `pasid` torn down with FPD set. */
  silencePasid(pasid: number): number[] {
    const out: number[] = [];
    for (const [requester, table] of this.pasidTables) {
      const d = table.get(pasid);
      if (d === undefined) continue;
      table.delete(pasid);
      this.#u.iotlb.flushDomain(d.id);
      let fpd = this.fpd.get(requester);
      if (!fpd) this.fpd.set(requester, fpd = new Set());
      fpd.add(pasid);
      out.push(requester);
      this.#u.traceLine(
        `vtd teardown rid=0x${requester.toString(16)} pasid=${pasid}: P=0 FPD=1 (was did=${d.id})`,
      );
    }
    return out;
  }

  /** `VtdIommu.clearSilencedPasid`: torn-down entries of `pasid` fault visibly again. */
  clearSilencedPasid(pasid: number): void {
    for (const [requester, fpd] of this.fpd) {
      if (fpd.delete(pasid)) {
        this.#u.traceLine(`vtd teardown rid=0x${requester.toString(16)} pasid=${pasid}: FPD=0`);
      }
    }
  }

  /** Every domain on a context or PASID-table entry. */
  *attachedDomains(): Iterable<VtdDomain | VtdNestedDomain> {
    yield* this.context.values();
    for (const t of this.pasidTables.values()) yield* t.values();
  }

  /** The context and PASID-table entries in use, one line each (for `liveDomains`). */
  liveEntries(): string[] {
    const out: string[] = [];
    for (const [rid, d] of this.context) out.push(`rid=0x${rid.toString(16)} → did=${d.id}`);
    for (const [rid, table] of this.pasidTables) {
      for (const [pasid, d] of table) {
        out.push(`rid=0x${rid.toString(16)} pasid=${pasid} → did=${d.id}`);
      }
    }
    return out;
  }
}
