/**
 * The neighbour cache (RFC 826, with RFC 1122 §2.3.2: entries validated by unicast polls, at
 * most one request per second per destination, and the latest packet for an unresolved
 * destination kept): resolved entries and entries waiting for an ARP reply, each holding the
 * frames that wait for it. Every table is allocated when the cache is built and nothing is
 * allocated per packet: entries live in typed arrays indexed by slot, found through an
 * open-addressing hash index keyed by the address as a signed 32-bit integer, and held frames
 * sit in a fixed array of linked slots.
 *
 * Bounds, so that no neighbour — real or spoofed — can take what others need:
 * - at most `pendingFrames` frames are held over all unresolved neighbours, and at most
 *   `pendingPerNeighbour` for one (its oldest frame makes room for a newer one). An address
 *   needing resolution while the global budget is spent is refused: the caller drops the frame
 *   and no ARP request is sent, so a flood towards many unresolvable addresses costs at most
 *   `pendingFrames` buffers and `pendingFrames` broadcast requests per {@link ARP_PENDING_TIMEOUT_MS}.
 * - an unresolved entry is reclaimed, with its frames, {@link ARP_PENDING_TIMEOUT_MS} after it
 *   was created; unresolved entries have their own slots (one per held frame at most), so they
 *   never evict a resolved entry.
 * - at most `entries` resolved entries. When a new neighbour is learned into a full table, the
 *   victim is the oldest entry never used to send a frame (learned passively from someone's
 *   request); only when every entry has been used is the least recently used one evicted.
 * - a resolved entry is trusted for {@link ARP_ENTRY_LIFETIME_MS}; after that it stays usable for
 *   {@link ARP_STALE_GRACE_MS} while the owner polls it with unicast requests (RFC 1122
 *   §2.3.2.1's "unicast poll", one per {@link ARP_PENDING_TIMEOUT_MS}); unanswered, it is deleted.
 *
 * @module
 */

import type { PacketBuffer } from "../drivers/packet_pool.ts";

/** How long a learned entry is trusted before it must be confirmed again (ms). */
export const ARP_ENTRY_LIFETIME_MS = 60_000;
/** How long an expired entry stays usable while it is polled (ms): three polls. */
export const ARP_STALE_GRACE_MS = 3_000;
/** How long a frame may wait for resolution, and the interval between polls (ms). */
export const ARP_PENDING_TIMEOUT_MS = 1_000;
/** Default number of resolved entries (a whole /24 fits). */
export const ARP_DEFAULT_ENTRIES = 256;
/** Default frames held per unresolved neighbour (capped by the global budget). */
export const ARP_PENDING_LIMIT = 8;

/** What {@link ArpCache.hold} did with a frame. */
export const ArpHold = {
  /** Held for an address nobody asked for yet: send an ARP request. */
  NEW: 0,
  /** Held behind earlier frames for the same address (a request is already out). */
  QUEUED: 1,
  /** Held; that neighbour's oldest frame was dropped (freed) to make room. */
  REPLACED: 2,
  /** Not held (the global budget is spent): the caller still owns the frame and drops it. */
  REFUSED: 3,
} as const;

/** Limits of an {@link ArpCache} and where its dropped frames go. */
export interface ArpCacheOptions {
  /** Returns a dropped or expired held frame to its pool. */
  free(frame: PacketBuffer): void;
  /** Resolved entries kept (default {@link ARP_DEFAULT_ENTRIES}). */
  entries?: number;
  /** Frames held over all unresolved neighbours: the global bound (default 32). */
  pendingFrames?: number;
  /** Frames held per unresolved neighbour (default min({@link ARP_PENDING_LIMIT}, pendingFrames)). */
  pendingPerNeighbour?: number;
}

const FREE = 0;
const RESOLVED = 1;
const INCOMPLETE = 2;
const NEVER = -Infinity;

/** The neighbour cache. Addresses are IPv4 numbers, signed or unsigned (compared as int32). */
export class ArpCache {
  /** Resolved entries kept at most. */
  readonly maxEntries: number;
  /** Frames held at most over all unresolved neighbours. */
  readonly maxPendingFrames: number;
  /** Frames held at most per unresolved neighbour. */
  readonly maxPendingPerNeighbour: number;
  readonly #free: (frame: PacketBuffer) => void;
  // Per slot.
  readonly #ip: Int32Array;
  readonly #state: Uint8Array;
  /** RESOLVED: trusted until; INCOMPLETE: reclaimed at. */
  readonly #deadline: Float64Array;
  /** RESOLVED: last time a frame was sent through it (NEVER if none); INCOMPLETE: unused. */
  readonly #used: Float64Array;
  /** RESOLVED: last unicast poll sent. */
  readonly #polled: Float64Array;
  readonly #macs: Uint8Array;
  readonly #macViews: Uint8Array[];
  /** The MAC as a big-endian 32-bit head and 16-bit tail, for two-store Ethernet headers. */
  readonly #macHead: Int32Array;
  readonly #macTail: Int32Array;
  readonly #head: Int32Array;
  readonly #tail: Int32Array;
  readonly #count: Int32Array;
  readonly #freeSlots: Int32Array;
  #freeTop: number;
  // The hash index: slot + 1, 0 = empty; linear probing with backward-shift deletion.
  readonly #index: Int32Array;
  readonly #indexShift: number;
  readonly #indexMask: number;
  // Held frames: a fixed array of linked cells.
  readonly #held: (PacketBuffer | undefined)[];
  readonly #heldNext: Int32Array;
  readonly #heldFree: Int32Array;
  #heldFreeTop: number;
  // Unresolved slots, in creation order (a ring: oldest first, so expiry stops at the first young one).
  readonly #pendingRing: Int32Array;
  #pendingHead = 0;
  #pendingLength = 0;
  #resolved = 0;

  /** A cache with the given bounds; throws a RangeError for a bound that is not a positive integer. */
  constructor(options: ArpCacheOptions) {
    const entries = options.entries ?? ARP_DEFAULT_ENTRIES;
    const pending = options.pendingFrames ?? 32;
    const perNeighbour = options.pendingPerNeighbour ?? Math.min(ARP_PENDING_LIMIT, pending);
    for (const [name, v] of [["entries", entries], ["pendingFrames", pending]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 65536) {
        throw new RangeError(`ARP cache ${name} ${v} must be an integer from 1 to 65536`);
      }
    }
    if (!Number.isInteger(perNeighbour) || perNeighbour < 1 || perNeighbour > pending) {
      throw new RangeError(
        `ARP cache pendingPerNeighbour ${perNeighbour} must be an integer from 1 to pendingFrames (${pending})`,
      );
    }
    this.maxEntries = entries;
    this.maxPendingFrames = pending;
    this.maxPendingPerNeighbour = perNeighbour;
    this.#free = options.free;
    // Unresolved entries hold at least one frame each, so `pending` slots always suffice for them.
    const slots = entries + pending;
    this.#ip = new Int32Array(slots);
    this.#state = new Uint8Array(slots);
    this.#deadline = new Float64Array(slots);
    this.#used = new Float64Array(slots);
    this.#polled = new Float64Array(slots);
    this.#macs = new Uint8Array(slots * 6);
    this.#macHead = new Int32Array(slots);
    this.#macTail = new Int32Array(slots);
    this.#macViews = Array.from({ length: slots }, (_, i) => this.#macs.subarray(i * 6, i * 6 + 6));
    this.#head = new Int32Array(slots).fill(-1);
    this.#tail = new Int32Array(slots).fill(-1);
    this.#count = new Int32Array(slots);
    this.#freeSlots = new Int32Array(slots);
    for (let i = 0; i < slots; i++) this.#freeSlots[i] = slots - 1 - i;
    this.#freeTop = slots;
    let bits = 1;
    while (1 << bits < slots * 2) bits++;
    this.#index = new Int32Array(1 << bits);
    this.#indexShift = 32 - bits;
    this.#indexMask = (1 << bits) - 1;
    this.#held = new Array(pending).fill(undefined);
    this.#heldNext = new Int32Array(pending).fill(-1);
    this.#heldFree = new Int32Array(pending);
    for (let i = 0; i < pending; i++) this.#heldFree[i] = pending - 1 - i;
    this.#heldFreeTop = pending;
    this.#pendingRing = new Int32Array(pending);
  }

  /** Number of resolved entries. */
  get size(): number {
    return this.#resolved;
  }

  /** Number of addresses waiting for resolution. */
  get unresolved(): number {
    return this.#pendingLength;
  }

  /** Number of frames held for unresolved addresses. */
  get heldFrames(): number {
    return this.maxPendingFrames - this.#heldFreeTop;
  }

  /** True when `ip` has an entry, resolved or waiting (RFC 826's "merge" updates only these). */
  has(ip: number): boolean {
    return this.#find(ip | 0) >= 0;
  }

  /** The MAC of `ip` if it is resolved and trusted at time `now` (a view; do not keep it). */
  lookup(ip: number, now: number): Uint8Array | undefined {
    const slot = this.resolve(ip, now);
    return slot < 0 ? undefined : this.#macViews[slot];
  }

  /**
   * The slot of a usable resolved entry for `ip` at `now`, marking it used; -1 when there is none
   * (an entry past its grace period is deleted here). Its MAC is `macs[slot*6 .. slot*6+6)`.
   */
  resolve(ip: number, now: number): number {
    const slot = this.#find(ip | 0);
    if (slot < 0 || this.#state[slot] !== RESOLVED) return -1;
    if (now > this.#deadline[slot] + ARP_STALE_GRACE_MS) {
      this.#remove(slot);
      return -1;
    }
    this.#used[slot] = now;
    return slot;
  }

  /** The MAC bytes of every slot: entry `slot` is at `slot * 6`. */
  get macs(): Uint8Array {
    return this.#macs;
  }

  /** The first four bytes of the MAC in `slot` as a big-endian signed 32-bit integer. */
  macHead(slot: number): number {
    return this.#macHead[slot];
  }

  /** The last two bytes of the MAC in `slot` as a big-endian 16-bit integer. */
  macTail(slot: number): number {
    return this.#macTail[slot];
  }

  /**
   * True when the entry in `slot` is past its lifetime and due a unicast poll at `now` (the caller
   * sends an ARP request to its MAC); records the poll.
   */
  pollDue(slot: number, now: number): boolean {
    if (now <= this.#deadline[slot] || now - this.#polled[slot] < ARP_PENDING_TIMEOUT_MS) {
      return false;
    }
    this.#polled[slot] = now;
    return true;
  }

  /**
   * Learn or refresh `ip` → the MAC at `mac[offset, offset+6)` at time `now`; returns the slot.
   * If `ip` was waiting, its held frames are now ready: take them with {@link takeHeld}. A new
   * entry in a full table evicts a victim as the module documentation describes.
   */
  learn(ip: number, mac: Uint8Array, offset: number, now: number): number {
    const key = ip | 0;
    let slot = this.#find(key);
    if (slot < 0 || this.#state[slot] === INCOMPLETE) {
      if (this.#resolved === this.maxEntries) this.#remove(this.#victim());
      if (slot < 0) {
        slot = this.#allocSlot(key);
        this.#head[slot] = -1;
        this.#tail[slot] = -1;
        this.#count[slot] = 0;
      } else this.#unlistPending(slot);
      this.#state[slot] = RESOLVED;
      this.#used[slot] = NEVER;
      this.#resolved++;
    }
    const m = slot * 6;
    for (let i = 0; i < 6; i++) this.#macs[m + i] = mac[offset + i];
    this.#macHead[slot] = (mac[offset] << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) |
      mac[offset + 3];
    this.#macTail[slot] = (mac[offset + 4] << 8) | mac[offset + 5];
    this.#deadline[slot] = now + ARP_ENTRY_LIFETIME_MS;
    this.#polled[slot] = NEVER;
    return slot;
  }

  /** The next frame that waited for the entry in `slot` (oldest first), or undefined. */
  takeHeld(slot: number): PacketBuffer | undefined {
    const cell = this.#head[slot];
    if (cell < 0) return undefined;
    const frame = this.#held[cell];
    this.#head[slot] = this.#heldNext[cell];
    if (this.#head[slot] < 0) this.#tail[slot] = -1;
    this.#count[slot]--;
    this.#releaseCell(cell);
    return frame;
  }

  /** Hold `frame` until `ip` resolves; see {@link ArpHold} for what happened. */
  hold(ip: number, frame: PacketBuffer, now: number): number {
    const key = ip | 0;
    let slot = this.#find(key);
    let result: number = ArpHold.QUEUED;
    if (slot >= 0 && this.#state[slot] === RESOLVED) {
      throw new RangeError(`ARP cache: ${ip >>> 0} is resolved; send instead of holding`);
    }
    if (slot < 0) {
      if (this.#heldFreeTop === 0) return ArpHold.REFUSED;
      slot = this.#allocSlot(key);
      this.#state[slot] = INCOMPLETE;
      this.#deadline[slot] = now + ARP_PENDING_TIMEOUT_MS;
      this.#head[slot] = -1;
      this.#tail[slot] = -1;
      this.#count[slot] = 0;
      this.#pendingRing[(this.#pendingHead + this.#pendingLength) % this.maxPendingFrames] = slot;
      this.#pendingLength++;
      result = ArpHold.NEW;
    } else if (this.#count[slot] >= this.maxPendingPerNeighbour || this.#heldFreeTop === 0) {
      this.#free(this.takeHeld(slot)!);
      result = ArpHold.REPLACED;
    }
    const cell = this.#heldFree[--this.#heldFreeTop];
    this.#held[cell] = frame;
    this.#heldNext[cell] = -1;
    if (this.#tail[slot] < 0) this.#head[slot] = cell;
    else this.#heldNext[this.#tail[slot]] = cell;
    this.#tail[slot] = cell;
    this.#count[slot]++;
    return result;
  }

  /**
   * Reclaim unresolved entries created more than {@link ARP_PENDING_TIMEOUT_MS} before `now`,
   * freeing their frames; returns the number of frames dropped.
   */
  expire(now: number): number {
    let dropped = 0;
    while (this.#pendingLength > 0) {
      const slot = this.#pendingRing[this.#pendingHead];
      if (this.#deadline[slot] >= now) break;
      for (let f = this.takeHeld(slot); f !== undefined; f = this.takeHeld(slot)) {
        this.#free(f);
        dropped++;
      }
      this.#remove(slot);
    }
    return dropped;
  }

  #find(key: number): number {
    const mask = this.#indexMask;
    for (let i = Math.imul(key, 0x9e3779b1) >>> this.#indexShift;; i = (i + 1) & mask) {
      const s = this.#index[i] - 1;
      if (s < 0) return -1;
      if (this.#ip[s] === key) return s;
    }
  }

  #allocSlot(key: number): number {
    const slot = this.#freeSlots[--this.#freeTop];
    this.#ip[slot] = key;
    const mask = this.#indexMask;
    let i = Math.imul(key, 0x9e3779b1) >>> this.#indexShift;
    while (this.#index[i] !== 0) i = (i + 1) & mask;
    this.#index[i] = slot + 1;
    return slot;
  }

  /** Delete the entry in `slot` (its held frames must already be taken). */
  #remove(slot: number): void {
    if (this.#state[slot] === RESOLVED) this.#resolved--;
    else this.#unlistPending(slot);
    this.#state[slot] = FREE;
    this.#freeSlots[this.#freeTop++] = slot;
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    const mask = this.#indexMask;
    let hole = Math.imul(this.#ip[slot], 0x9e3779b1) >>> this.#indexShift;
    while (this.#index[hole] !== slot + 1) hole = (hole + 1) & mask;
    for (let j = (hole + 1) & mask; this.#index[j] !== 0; j = (j + 1) & mask) {
      const home = Math.imul(this.#ip[this.#index[j] - 1], 0x9e3779b1) >>> this.#indexShift;
      // Move the entry at j into the hole unless its home lies cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        this.#index[hole] = this.#index[j];
        hole = j;
      }
    }
    this.#index[hole] = 0;
  }

  /** Take `slot` off the unresolved ring (it resolved or is being removed). */
  #unlistPending(slot: number): void {
    const cap = this.maxPendingFrames;
    const n = this.#pendingLength;
    let k = 0;
    while (k < n && this.#pendingRing[(this.#pendingHead + k) % cap] !== slot) k++;
    if (k === n) return;
    for (; k > 0; k--) {
      this.#pendingRing[(this.#pendingHead + k) % cap] =
        this.#pendingRing[(this.#pendingHead + k - 1) % cap];
    }
    this.#pendingHead = (this.#pendingHead + 1) % cap;
    this.#pendingLength--;
  }

  /** The resolved entry to evict: the oldest never used, else the least recently used. */
  #victim(): number {
    let idle = -1;
    let lru = -1;
    for (let s = 0; s < this.#state.length; s++) {
      if (this.#state[s] !== RESOLVED) continue;
      if (this.#used[s] === NEVER) {
        if (idle < 0 || this.#deadline[s] < this.#deadline[idle]) idle = s;
      } else if (lru < 0 || this.#used[s] < this.#used[lru]) lru = s;
    }
    return idle >= 0 ? idle : lru;
  }

  #releaseCell(cell: number): void {
    this.#held[cell] = undefined;
    this.#heldFree[this.#heldFreeTop++] = cell;
  }
}
