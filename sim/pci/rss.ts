/**
 * Receive-side scaling of the e1000 family (82576 §7.1.2.10 "RSS", 82574 §7.1.12): the hash
 * type MRQC selects for a frame, the Toeplitz hash over the 40-byte RSSRK key (Microsoft RSS:
 * source address, destination address, then source and destination port for TCP/UDP, all in
 * network order), and the queue the 128-entry redirection table (RETA, indexed by the hash's
 * low 7 bits) gives. Per-part differences — how MRQC enables RSS and where a RETA entry keeps
 * the queue — are data ({@link RssModel}).
 *
 * @example
 * ```ts
 * const rss = new RssEngine(IGB_RSS);
 * const r = rss.classify(frame, info, regs.mac); // { type, hash, queue } written into rss.result
 * ```
 *
 * @module
 */

import { E1000_MRQC, E1000_RETA, E1000_RSSRK, E1000_RSSRK_WORDS } from "./e1000_regs.ts";
import { type FrameInfo, IPPROTO_TCP, IPPROTO_UDP } from "./frame_parse.ts";

// MRQC hash field enables (82576 §8.10.x MRQC, 82574 §10.2.5.x MRQC).
/** Hash TCP over IPv4. */
export const MRQC_RSS_FIELD_IPV4_TCP = 1 << 16;
/** Hash IPv4 addresses. */
export const MRQC_RSS_FIELD_IPV4 = 1 << 17;
/** Hash TCP over IPv6. */
export const MRQC_RSS_FIELD_IPV6_TCP = 1 << 18;
/** Hash IPv6 addresses (extension-header variant). */
export const MRQC_RSS_FIELD_IPV6_EX = 1 << 19;
/** Hash IPv6 addresses. */
export const MRQC_RSS_FIELD_IPV6 = 1 << 20;
/** Hash UDP over IPv4 (82576). */
export const MRQC_RSS_FIELD_IPV4_UDP = 1 << 22;
/** Hash UDP over IPv6 (82576). */
export const MRQC_RSS_FIELD_IPV6_UDP = 1 << 23;

/** RSS types reported in receive descriptors. */
export const RSS_TYPE = {
  none: 0,
  ipv4Tcp: 1,
  ipv4: 2,
  ipv6Tcp: 3,
  ipv6Ex: 4,
  ipv6: 5,
  ipv4Udp: 7,
  ipv6Udp: 8,
} as const;

/** Entries of the redirection table; the hash's low bits that index it. */
const RETA_ENTRIES = 128;
/** Bytes of the RSS key. */
const KEY_BYTES = E1000_RSSRK_WORDS * 4;
/** Largest hash input: two IPv6 addresses and two ports. */
const MAX_INPUT = 36;

/** How a part turns MRQC and RETA into a queue. */
export interface RssModel {
  /** Whether MRQC enables RSS (the other conditions are the model's). */
  enabled(mrqc: number): boolean;
  /** Whether UDP has its own hash types (the 82576 does; the 82574 hashes UDP as plain IP). */
  readonly udp: boolean;
  /** The queue a RETA entry names. */
  queueOf(entry: number): number;
}

/** 82576: MRQC.Multiple Receive Queues Enable = 010b (RSS only, as QEMU tests bits 1:0). */
export const IGB_RSS: RssModel = {
  enabled: (mrqc) => (mrqc & 3) === 2,
  udp: true,
  queueOf: (entry) => entry & 0x0f,
};

/** 82574: MRQC bit 0 enables RSS; RETA entry bit 7 picks queue 0 or 1. */
export const E1000E_RSS: RssModel = {
  enabled: (mrqc) => (mrqc & 1) !== 0,
  udp: false,
  queueOf: (entry) => (entry >> 7) & 1,
};

/** Hash type, hash and queue of the last classified frame. */
export interface RssResult {
  /** One of {@link RSS_TYPE}. */
  type: number;
  /** The 32-bit Toeplitz hash (0 with type none). */
  hash: number;
  /** The queue from RETA (0 with type none). */
  queue: number;
}

/** Classifies frames; reuses its buffers. */
export class RssEngine {
  /** The result of the last {@link classify}. */
  readonly result: RssResult = { type: 0, hash: 0, queue: 0 };
  readonly #model: RssModel;
  readonly #key = new Uint8Array(KEY_BYTES);
  readonly #input = new Uint8Array(MAX_INPUT);

  /** An engine for `model`. */
  constructor(model: RssModel) {
    this.#model = model;
  }

  /** Whether MRQC enables RSS. */
  enabled(mac: Uint32Array): boolean {
    return this.#model.enabled(mac[E1000_MRQC >>> 2]);
  }

  /** Hash type, hash and queue of a parsed frame under the registers in `mac`. */
  classify(frame: Uint8Array, info: FrameInfo, mac: Uint32Array): RssResult {
    const r = this.result;
    const mrqc = mac[E1000_MRQC >>> 2];
    r.type = this.#type(info, mrqc);
    if (r.type === RSS_TYPE.none) {
      r.hash = 0;
      r.queue = 0;
      return r;
    }
    const ports = r.type === RSS_TYPE.ipv4Tcp || r.type === RSS_TYPE.ipv6Tcp ||
      r.type === RSS_TYPE.ipv4Udp || r.type === RSS_TYPE.ipv6Udp;
    const addrLen = info.ipVersion === 4 ? 4 : 16;
    const addrAt = info.l3 + (info.ipVersion === 4 ? 12 : 8);
    const n = 2 * addrLen;
    const input = this.#input;
    for (let i = 0; i < n; i++) input[i] = frame[addrAt + i];
    let len = n;
    if (ports) {
      for (let i = 0; i < 4; i++) input[n + i] = frame[info.l4 + i];
      len += 4;
    }
    for (let i = 0; i < KEY_BYTES; i++) {
      this.#key[i] = (mac[(E1000_RSSRK >>> 2) + (i >> 2)] >>> (8 * (i & 3))) & 0xff;
    }
    r.hash = toeplitz(this.#key, this.#input, len);
    const index = r.hash & (RETA_ENTRIES - 1);
    const entry = (mac[(E1000_RETA >>> 2) + (index >> 2)] >>> (8 * (index & 3))) & 0xff;
    r.queue = this.#model.queueOf(entry);
    return r;
  }

  #type(info: FrameInfo, mrqc: number): number {
    const tcp = info.l4Proto === IPPROTO_TCP;
    const udp = info.l4Proto === IPPROTO_UDP && this.#model.udp;
    if (info.ipVersion === 4) {
      if (tcp && (mrqc & MRQC_RSS_FIELD_IPV4_TCP) !== 0) return RSS_TYPE.ipv4Tcp;
      if (udp && (mrqc & MRQC_RSS_FIELD_IPV4_UDP) !== 0) return RSS_TYPE.ipv4Udp;
      if ((mrqc & MRQC_RSS_FIELD_IPV4) !== 0) return RSS_TYPE.ipv4;
    } else if (info.ipVersion === 6) {
      if (tcp && (mrqc & MRQC_RSS_FIELD_IPV6_TCP) !== 0) return RSS_TYPE.ipv6Tcp;
      if (udp && (mrqc & MRQC_RSS_FIELD_IPV6_UDP) !== 0) return RSS_TYPE.ipv6Udp;
      if ((mrqc & MRQC_RSS_FIELD_IPV6_EX) !== 0) return RSS_TYPE.ipv6Ex;
      if ((mrqc & MRQC_RSS_FIELD_IPV6) !== 0) return RSS_TYPE.ipv6;
    }
    return RSS_TYPE.none;
  }
}

/** The Toeplitz hash of `input[0..length)` under `key` (at least length + 4 bytes long). */
export function toeplitz(key: Uint8Array, input: Uint8Array, length: number): number {
  let result = 0;
  let window = ((key[0] << 24) | (key[1] << 16) | (key[2] << 8) | key[3]) >>> 0;
  for (let i = 0; i < length; i++) {
    const next = key[i + 4] ?? 0;
    for (let bit = 7; bit >= 0; bit--) {
      if ((input[i] >> bit) & 1) result = (result ^ window) >>> 0;
      window = ((window << 1) | ((next >> bit) & 1)) >>> 0;
    }
  }
  return result;
}
