/**
 * ARP for Ethernet and IPv4 (RFC 826): the packet layout and a cache with expiry and a small
 * queue of frames waiting for resolution.
 *
 * @module
 */

import type { PacketBuffer } from "../drivers/packet_pool.ts";

/** Length of an Ethernet/IPv4 ARP packet. */
export const ARP_LENGTH = 28;
/** Hardware type (offset 0): Ethernet = 1. */
export const ARP_HTYPE = 0;
/** Protocol type (offset 2): IPv4 = 0x0800. */
export const ARP_PTYPE = 2;
/** Hardware address length (offset 4): 6. */
export const ARP_HLEN = 4;
/** Protocol address length (offset 5): 4. */
export const ARP_PLEN = 5;
/** Operation (offset 6). */
export const ARP_OPER = 6;
/** Sender hardware address. */
export const ARP_SHA = 8;
/** Sender protocol address. */
export const ARP_SPA = 14;
/** Target hardware address. */
export const ARP_THA = 18;
/** Target protocol address. */
export const ARP_TPA = 24;
/** Hardware type Ethernet. */
export const ARP_HTYPE_ETHERNET = 1;
/** Operation: request. */
export const ARP_REQUEST = 1;
/** Operation: reply. */
export const ARP_REPLY = 2;
/** How long a learned entry stays valid (ms). */
export const ARP_ENTRY_LIFETIME_MS = 60_000;
/** How long a frame may wait for resolution before it is dropped (ms). */
export const ARP_PENDING_TIMEOUT_MS = 1_000;
/** Frames held per unresolved address; older ones are dropped. */
export const ARP_PENDING_LIMIT = 8;

interface ArpEntry {
  mac: Uint8Array;
  expires: number;
}

interface Pending {
  frames: PacketBuffer[];
  since: number;
}

/** The neighbour cache. */
export class ArpCache {
  readonly #entries = new Map<number, ArpEntry>();
  readonly #pending = new Map<number, Pending>();

  /** The MAC of `ip`, if known and fresh at time `now`. */
  lookup(ip: number, now: number): Uint8Array | undefined {
    const e = this.#entries.get(ip);
    if (!e) return undefined;
    if (e.expires < now) {
      this.#entries.delete(ip);
      return undefined;
    }
    return e.mac;
  }

  /** Learn or refresh `ip` → `mac` (copied). */
  learn(ip: number, mac: Uint8Array, now: number): void {
    const entry = this.#entries.get(ip);
    if (entry) {
      entry.mac.set(mac);
      entry.expires = now + ARP_ENTRY_LIFETIME_MS;
    } else this.#entries.set(ip, { mac: mac.slice(), expires: now + ARP_ENTRY_LIFETIME_MS });
  }

  /** True when an entry exists (fresh or not) — RFC 826's "merge" rule updates only known ones. */
  has(ip: number): boolean {
    return this.#entries.has(ip);
  }

  /**
   * Hold a frame until `ip` resolves. Returns the frame dropped to make room, if any. The first
   * frame for an address means a request must be sent: `first` tells.
   */
  hold(ip: number, frame: PacketBuffer, now: number): { first: boolean; dropped?: PacketBuffer } {
    let p = this.#pending.get(ip);
    const first = p === undefined;
    if (!p) {
      p = { frames: [], since: now };
      this.#pending.set(ip, p);
    }
    p.frames.push(frame);
    const dropped = p.frames.length > ARP_PENDING_LIMIT ? p.frames.shift() : undefined;
    return { first, dropped };
  }

  /** Take the frames waiting for `ip` (now resolved). */
  release(ip: number): PacketBuffer[] {
    const p = this.#pending.get(ip);
    this.#pending.delete(ip);
    return p?.frames ?? [];
  }

  /** Take the frames that waited too long. */
  expire(now: number): PacketBuffer[] {
    const out: PacketBuffer[] = [];
    for (const [ip, p] of this.#pending) {
      if (now - p.since > ARP_PENDING_TIMEOUT_MS) {
        out.push(...p.frames);
        this.#pending.delete(ip);
      }
    }
    return out;
  }

  /** Number of learned entries. */
  get size(): number {
    return this.#entries.size;
  }
}
