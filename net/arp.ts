/**
 * ARP for Ethernet and IPv4 (RFC 826): the packet layout. The neighbour cache is in
 * arp_cache.ts and re-exported here.
 *
 * @module
 */

import { copyMac, ETHERTYPE_IPV4, readU16, writeU16, writeU32 } from "./ethernet.ts";

export {
  ARP_DEFAULT_ENTRIES,
  ARP_ENTRY_LIFETIME_MS,
  ARP_PENDING_LIMIT,
  ARP_PENDING_TIMEOUT_MS,
  ARP_STALE_GRACE_MS,
  ArpCache,
  type ArpCacheOptions,
  ArpHold,
} from "./arp_cache.ts";

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

/**
 * True when `b[at]` starts an Ethernet/IPv4 ARP packet that fits in `available` bytes: hardware
 * type 1, protocol type 0x0800, address lengths 6 and 4.
 */
export function isEthernetIpv4Arp(b: Uint8Array, at: number, available: number): boolean {
  return available >= ARP_LENGTH && readU16(b, at + ARP_HTYPE) === ARP_HTYPE_ETHERNET &&
    readU16(b, at + ARP_PTYPE) === ETHERTYPE_IPV4 && b[at + ARP_HLEN] === 6 &&
    b[at + ARP_PLEN] === 4;
}

/**
 * Write an Ethernet/IPv4 ARP packet at `b[at]`: operation `op`, the sender's MAC (from
 * `senderMac[senderAt..+6)`) and address, and the target's address; the target MAC is
 * `targetMac[targetAt..+6)`, or zeros when `targetMac` is undefined (a request). Addresses may be
 * signed or unsigned.
 */
export function writeArp(
  b: Uint8Array,
  at: number,
  op: number,
  senderMac: Uint8Array,
  senderIp: number,
  targetMac: Uint8Array | undefined,
  targetAt: number,
  targetIp: number,
): void {
  writeU16(b, at + ARP_HTYPE, ARP_HTYPE_ETHERNET);
  writeU16(b, at + ARP_PTYPE, ETHERTYPE_IPV4);
  b[at + ARP_HLEN] = 6;
  b[at + ARP_PLEN] = 4;
  writeU16(b, at + ARP_OPER, op);
  copyMac(b, at + ARP_SHA, senderMac, 0);
  writeU32(b, at + ARP_SPA, senderIp);
  if (targetMac === undefined) b.fill(0, at + ARP_THA, at + ARP_THA + 6);
  else copyMac(b, at + ARP_THA, targetMac, targetAt);
  writeU32(b, at + ARP_TPA, targetIp);
}
