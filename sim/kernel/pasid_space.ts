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
 * - each has an **owner** (who may free it and bind it: an open /dev/ioasid file, a simulated
 *   process, or a vIOMMU's guest), a **tenant** (the guest or host it was handed to: every
 *   virtio-iommu of one machine shares one, so FREE_PASID through either instance is equivalent,
 *   seeds/000) and the allocator it came **via** (so removing that allocator releases it);
 * - a freed PASID is first torn down (its {@link SystemPasidSpace.setReleaseHandler} handler:
 *   sim/kernel/pasid_teardown.ts silences every device entry, tells the drivers, drains), during
 *   which it is neither owned nor free, and then sits in quarantine for `quarantineNs` of virtual
 *   time — it may still be in hardware queues — before it is handed out again.
 *
 * Errors: an empty or bad range → EINVAL; nothing free in it → ENOSPC; freeing a PASID the caller
 * does not hold → ENOENT.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { VirtualClock } from "../clock.ts";
import {
  PASID_BITS,
  type PasidAllocOptions,
  type PasidHolder,
  type SharedPasidSpace,
} from "../iommu/model.ts";

/** Default quarantine before a freed PASID is reused: 10 ms of virtual time. */
export const DEFAULT_PASID_QUARANTINE_NS = 10_000_000;

/** Where a PASID is in its life. */
export type PasidState = "free" | "allocated" | "draining" | "quarantined";

/** A system-wide PASID allocator with owners, a teardown hook and a reuse quarantine. */
export class SystemPasidSpace implements SharedPasidSpace {
  readonly #holders = new Map<number, PasidHolder>();
  readonly #draining = new Set<number>();
  readonly #quarantine = new Map<number, number>(); // pasid → virtual time it becomes free
  #onRelease: ((pasid: number, reason: string) => void) | undefined;

  /** A space on `clock` with the given quarantine. */
  constructor(
    private readonly clock: VirtualClock,
    readonly quarantineNs: number = DEFAULT_PASID_QUARANTINE_NS,
  ) {}

  /** PASIDs currently allocated. */
  get allocated(): number {
    return this.#holders.size;
  }

  /**
   * Who tears a released PASID down: called with the PASID once it is neither owned nor free; it
   * calls {@link quarantine} when the hardware has stopped using the PASID. Without a handler a
   * released PASID goes into quarantine at once.
   */
  setReleaseHandler(handler: (pasid: number, reason: string) => void): void {
    this.#onRelease = handler;
  }

  /**
   * The lowest PASID that is neither allocated, draining nor in quarantine, in `[min, min(max,
   * 2^maxBits - 1)]`; -EINVAL for an empty or bad range, -ENOSPC when every PASID there is taken.
   */
  alloc(owner: unknown, min: number, max: number, o: PasidAllocOptions = {}): number {
    const maxBits = o.maxBits ?? PASID_BITS;
    const top = Math.min(max, 2 ** Math.min(maxBits, PASID_BITS) - 1);
    const low = Math.max(min, 1);
    if (!Number.isInteger(min) || !Number.isInteger(max) || low > top) return -ERRNO.EINVAL;
    const now = this.clock.nowNs;
    for (let pasid = low; pasid <= top; pasid++) {
      if (this.#holders.has(pasid) || this.#draining.has(pasid)) continue;
      const until = this.#quarantine.get(pasid);
      if (until !== undefined) {
        if (until > now) continue;
        this.#quarantine.delete(pasid);
      }
      this.#holders.set(pasid, { owner, tenant: o.tenant ?? owner, via: o.via });
      return pasid;
    }
    return -ERRNO.ENOSPC;
  }

  /**
   * The kernel records which of its owners got a PASID its tenant allocated (the guest's
   * /dev/ioasid file, after a vIOMMU's ALLOC_PASID). False when `pasid` is not allocated.
   */
  assign(pasid: number, owner: unknown): boolean {
    const h = this.#holders.get(pasid);
    if (h === undefined) return false;
    this.#holders.set(pasid, { ...h, owner });
    return true;
  }

  /** Free a PASID of `owner` (teardown, then quarantine): 0, or -ENOENT when not its. */
  free(owner: unknown, pasid: number, reason = "freed by its owner"): number {
    if (this.#holders.get(pasid)?.owner !== owner) return -ERRNO.ENOENT;
    this.release(pasid, reason);
    return 0;
  }

  /** Free a PASID handed to `tenant` (any of its vIOMMUs may): 0, or -ENOENT. */
  freeByTenant(tenant: unknown, pasid: number, reason = "FREE_PASID from the guest"): number {
    if (this.#holders.get(pasid)?.tenant !== tenant) return -ERRNO.ENOENT;
    this.release(pasid, reason);
    return 0;
  }

  /** Free every PASID of an owner (its last fd closed, its process exited). Returns how many. */
  releaseOwner(owner: unknown, reason = "owner gone"): number {
    return this.#releaseWhere((h) => h.owner === owner, reason);
  }

  /** Free every PASID that came through allocator `via` (it was removed). Returns how many. */
  releaseVia(via: unknown, reason = "allocator removed"): number {
    return this.#releaseWhere((h) => h.via === via, reason);
  }

  /** Start the teardown of an allocated PASID: not owned any more, not free either. */
  release(pasid: number, reason: string): void {
    if (!this.#holders.delete(pasid)) return;
    this.#draining.add(pasid);
    if (this.#onRelease) this.#onRelease(pasid, reason);
    else this.quarantine(pasid);
  }

  /** The teardown is done: the PASID is quarantined for {@link quarantineNs} from now. */
  quarantine(pasid: number): void {
    if (!this.#draining.delete(pasid)) return;
    this.#quarantine.set(pasid, this.clock.nowNs + this.quarantineNs);
  }

  /** Where `pasid` is in its life now. */
  state(pasid: number): PasidState {
    if (this.#holders.has(pasid)) return "allocated";
    if (this.#draining.has(pasid)) return "draining";
    return this.inQuarantine(pasid) ? "quarantined" : "free";
  }

  /** Whether a PASID is in quarantine now. */
  inQuarantine(pasid: number): boolean {
    const until = this.#quarantine.get(pasid);
    return until !== undefined && until > this.clock.nowNs;
  }

  /** Virtual time the quarantine of `pasid` ends, or undefined when it is not quarantined. */
  quarantineEndsNs(pasid: number): number | undefined {
    return this.inQuarantine(pasid) ? this.#quarantine.get(pasid) : undefined;
  }

  /** The owner of an allocated PASID, or undefined. */
  ownerOf(pasid: number): unknown {
    return this.#holders.get(pasid)?.owner;
  }

  /** The PASIDs `owner` holds, ascending. */
  ownedBy(owner: unknown): number[] {
    return [...this.#holders].filter(([, h]) => h.owner === owner).map(([p]) => p).sort((a, b) =>
      a - b
    );
  }

  /** Owner, tenant and allocator of an allocated PASID, or undefined. */
  holderOf(pasid: number): PasidHolder | undefined {
    return this.#holders.get(pasid);
  }

  #releaseWhere(match: (h: PasidHolder) => boolean, reason: string): number {
    let n = 0;
    for (const [pasid, h] of [...this.#holders]) {
      if (!match(h)) continue;
      this.release(pasid, reason);
      n++;
    }
    return n;
  }
}
