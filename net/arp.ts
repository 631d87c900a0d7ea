/**
 * ARP for Ethernet and IPv4 (RFC 826): the packet layout. The neighbour cache is in
 * arp_cache.ts and re-exported here.
 *
 * @module
 */

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
