/**
 * The VT-d IOTLB: cached translations tagged by domain id and PASID (VT-d §6.2.3; requests
 * without PASID use RID_PASID 0). Entries cover a whole leaf page (4 KiB, 2 MiB or 1 GiB).
 * Capacity is bounded; the oldest entry is evicted first. Only successful translations are cached
 * (no negative caching). Invalidations are domain-selective (every PASID of the DID).
 *
 * The kernel-managed domains flush on every unmap, attach and detach, so stale entries never show
 * there; a user-managed (nested) stage 1 keeps using an entry until its owner invalidates it
 * (IOMMU_HWPT_INVALIDATE), exactly as the hardware does.
 *
 * Every insertion (which may evict, or shadow a larger page), eviction and invalidation bumps
 * the owning model's {@link TranslationEpoch}, so translations kept outside the model (a device's
 * DMA port cache) end exactly when an entry they came from may have left or changed.
 *
 * @module
 */

/** One cached translation. */
export interface IotlbEntry {
  /** Domain id (tag). */
  readonly did: number;
  /** PASID (tag; 0 = RID_PASID, the requests without PASID). */
  readonly pasid?: number;
  /** First IOVA of the page. */
  readonly iovaBase: bigint;
  /** Page size in bytes. */
  readonly size: bigint;
  /** Physical address of the page. */
  readonly physBase: bigint;
  /** Read permitted. */
  readonly read: boolean;
  /** Write permitted. */
  readonly write: boolean;
}

import { TranslationEpoch } from "../model.ts";

/** Hit/miss counters. */
export interface IotlbStats {
  /** Lookups answered from the cache. */
  hits: number;
  /** Lookups that needed a page walk. */
  misses: number;
  /** Entries removed by invalidations. */
  invalidated: number;
}

/** Page sizes an entry may have, smallest first (4 KiB, 2 MiB, 1 GiB). */
const PAGE_SHIFTS = [12n, 21n, 30n] as const;

/** A bounded, DID-tagged translation cache. */
export class VtdIotlb {
  readonly #entries = new Map<string, IotlbEntry>();
  /** Counters since creation. */
  readonly stats: IotlbStats = { hits: 0, misses: 0, invalidated: 0 };

  /** The generation bumped by every change (shared with the owning model). */
  readonly epoch: TranslationEpoch;

  /** A cache of at most `capacity` entries, bumping `epoch` on every change. */
  constructor(readonly capacity: number, epoch: TranslationEpoch = new TranslationEpoch()) {
    this.epoch = epoch;
  }

  /** Entries currently cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry covering `iova` in domain `did` for `pasid`, counting a hit or a miss. */
  lookup(did: number, iova: bigint, pasid = 0): IotlbEntry | undefined {
    for (const shift of PAGE_SHIFTS) {
      const e = this.#entries.get(key(did, pasid, shift, iova >> shift));
      if (e !== undefined && e.size === 1n << shift) {
        this.stats.hits++;
        return e;
      }
    }
    this.stats.misses++;
    return undefined;
  }

  /** Cache a translation (evicting the oldest entry when full). */
  insert(e: IotlbEntry): void {
    const shift = BigInt(e.size.toString(2).length - 1);
    const k = key(e.did, e.pasid ?? 0, shift, e.iovaBase >> shift);
    this.epoch.bump();
    this.#entries.delete(k);
    if (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(k, e);
  }

  /** Domain-selective invalidation. */
  flushDomain(did: number): void {
    this.epoch.bump();
    for (const [k, e] of this.#entries) {
      if (e.did === did) this.#drop(k);
    }
  }

  /** Page-selective invalidation of `[start, end)` in domain `did`. */
  flushRange(did: number, start: bigint, end: bigint): void {
    this.epoch.bump();
    for (const [k, e] of this.#entries) {
      if (e.did === did && e.iovaBase < end && e.iovaBase + e.size > start) this.#drop(k);
    }
  }

  /** Global invalidation. */
  flushAll(): void {
    this.epoch.bump();
    this.stats.invalidated += this.#entries.size;
    this.#entries.clear();
  }

  #drop(k: string): void {
    this.#entries.delete(k);
    this.stats.invalidated++;
  }
}

function key(did: number, pasid: number, shift: bigint, pfn: bigint): string {
  return `${did}:${pasid}:${shift}:${pfn}`;
}
