/**
 * **Proposal, not merged Linux ABI.** One system-wide PASID space for PASIDs that belong to a
 * device context rather than a process (../shared/seeds/003: "PASIDs without a process; lifetime
 * tied to file descriptors; a grace period before a PASID is reused"; seeds/000: one PASID space
 * shared by every vIOMMU). Merged Linux has a global IDA for SVA PASIDs
 * (`iommu_alloc_global_pasid`, freed with the mm, reused at once) and lets iommufd users pick
 * PASIDs per device; it has no allocator with owners and quarantine. This models the debated one:
 *
 * - PASIDs come from `[1, 2^20)` (PASID 0 is IOMMU_NO_PASID, never handed out), lowest free first,
 *   and below `2^maxBits` of the asking device's PASID width;
 * - each belongs to an owner (an open file); when the owner goes (its last fd closes), all its
 *   PASIDs are freed;
 * - a freed PASID sits in quarantine for `quarantineNs` of virtual time — it may still be in
 *   hardware queues — and is not handed out again before that.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { VirtualClock } from "../clock.ts";
import type { PasidAllocator } from "../iommu/model.ts";

/** PCIe's PASID width. */
export const PASID_BITS = 20;
/** Default quarantine before a freed PASID is reused: 10 ms of virtual time. */
export const DEFAULT_PASID_QUARANTINE_NS = 10_000_000;

/** A system-wide PASID allocator with owners and a reuse quarantine. */
export class SystemPasidSpace implements PasidAllocator {
  readonly #owners = new Map<number, unknown>();
  readonly #quarantine = new Map<number, number>(); // pasid → virtual time it becomes free

  /** A space on `clock` with the given quarantine. */
  constructor(
    private readonly clock: VirtualClock,
    readonly quarantineNs: number = DEFAULT_PASID_QUARANTINE_NS,
  ) {}

  /** PASIDs currently allocated. */
  get allocated(): number {
    return this.#owners.size;
  }

  /**
   * The lowest PASID that is neither allocated nor in quarantine, in `[min, min(max, 2^maxBits -
   * 1)]`; -EINVAL for an empty or bad range, -ENOSPC when every PASID there is taken.
   */
  alloc(owner: unknown, min: number, max: number, maxBits = PASID_BITS): number {
    const top = Math.min(max, 2 ** Math.min(maxBits, PASID_BITS) - 1);
    const low = Math.max(min, 1);
    if (!Number.isInteger(min) || !Number.isInteger(max) || low > top) return -ERRNO.EINVAL;
    const now = this.clock.nowNs;
    for (let pasid = low; pasid <= top; pasid++) {
      if (this.#owners.has(pasid)) continue;
      const until = this.#quarantine.get(pasid);
      if (until !== undefined) {
        if (until > now) continue;
        this.#quarantine.delete(pasid);
      }
      this.#owners.set(pasid, owner);
      return pasid;
    }
    return -ERRNO.ENOSPC;
  }

  /** Free a PASID of `owner` into quarantine: 0, or -ENOENT when the owner does not hold it. */
  free(owner: unknown, pasid: number): number {
    if (this.#owners.get(pasid) !== owner) return -ERRNO.ENOENT;
    this.#owners.delete(pasid);
    this.#quarantine.set(pasid, this.clock.nowNs + this.quarantineNs);
    return 0;
  }

  /** Free every PASID of an owner (its last fd closed). Returns how many. */
  releaseOwner(owner: unknown): number {
    let n = 0;
    for (const [pasid, o] of [...this.#owners]) {
      if (o === owner && this.free(owner, pasid) === 0) n++;
    }
    return n;
  }

  /** Whether a PASID is in quarantine now. */
  inQuarantine(pasid: number): boolean {
    const until = this.#quarantine.get(pasid);
    return until !== undefined && until > this.clock.nowNs;
  }

  /** The owner of an allocated PASID, or undefined. */
  ownerOf(pasid: number): unknown {
    return this.#owners.get(pasid);
  }
}
