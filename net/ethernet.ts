/**
 * Ethernet II framing (IEEE 802.3 with EtherType) and MAC address helpers.
 *
 * @module
 */

/** Length of an Ethernet II header: destination, source, EtherType. */
export const ETH_HEADER_LENGTH = 14;
/** Offset of the destination MAC. */
export const ETH_DST = 0;
/** Offset of the source MAC. */
export const ETH_SRC = 6;
/** Offset of the EtherType. */
export const ETH_TYPE = 12;
/** EtherType of IPv4 (RFC 894). */
export const ETHERTYPE_IPV4 = 0x0800;
/** EtherType of ARP (RFC 826). */
export const ETHERTYPE_ARP = 0x0806;
/** Smallest frame on the wire without FCS (60 bytes; shorter frames are padded). */
export const ETH_MIN_FRAME = 60;
/** Largest frame without FCS and VLAN tag for a 1500-byte MTU. */
export const ETH_MAX_FRAME = 1514;
/** Length of the frame check sequence (CRC-32) a NIC may leave at the end of a frame. */
export const ETH_FCS_LENGTH = 4;
/** The broadcast MAC address. */
export const BROADCAST_MAC: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** Parse "52:54:00:12:34:56" into 6 bytes; throws a RangeError naming the bad text. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new RangeError(
      `"${text}" is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)`,
    );
  }
  return new Uint8Array(parts.map((p) => parseInt(p, 16)));
}

/** Format 6 bytes at `offset` as "52:54:00:12:34:56". */
export function formatMac(bytes: Uint8Array, offset = 0): string {
  return Array.from(bytes.subarray(offset, offset + 6), (b) => b.toString(16).padStart(2, "0"))
    .join(":");
}

/** True when the 6 bytes at `offset` equal `mac`. */
export function macEquals(bytes: Uint8Array, offset: number, mac: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (bytes[offset + i] !== mac[i]) return false;
  return true;
}

/** True when the MAC at `offset` is a group (multicast or broadcast) address. */
export function isGroupMac(bytes: Uint8Array, offset: number): boolean {
  return (bytes[offset] & 1) === 1;
}

/** Copy the 6-byte MAC at `src[srcOffset]` to `dst[dstOffset]` (no allocation). */
export function copyMac(
  dst: Uint8Array,
  dstOffset: number,
  src: Uint8Array,
  srcOffset: number,
): void {
  for (let i = 0; i < 6; i++) dst[dstOffset + i] = src[srcOffset + i];
}

/** True when the 6 bytes at `offset` are all zero (no station has that address). */
export function isZeroMac(bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 6; i++) if (bytes[offset + i] !== 0) return false;
  return true;
}

/**
 * Write the multicast MAC of IPv4 group `ip` at `b[at]`: 01:00:5e and the group's low 23 bits
 * (RFC 1112 §6.4).
 */
export function writeMulticastMac(b: Uint8Array, at: number, ip: number): void {
  b[at] = 0x01;
  b[at + 1] = 0x00;
  b[at + 2] = 0x5e;
  b[at + 3] = (ip >>> 16) & 0x7f;
  b[at + 4] = (ip >>> 8) & 0xff;
  b[at + 5] = ip & 0xff;
}

/** Write an Ethernet header at the start of `frame`. */
export function writeEthernetHeader(
  frame: Uint8Array,
  dst: Uint8Array,
  src: Uint8Array,
  etherType: number,
): void {
  frame.set(dst, ETH_DST);
  frame.set(src, ETH_SRC);
  frame[ETH_TYPE] = etherType >>> 8;
  frame[ETH_TYPE + 1] = etherType & 0xff;
}

/** Read a big-endian u16. */
export function readU16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

/** Write a big-endian u16. */
export function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

/** Read a big-endian u32 as an unsigned number. */
export function readU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** Read a big-endian u32 as a signed 32-bit integer (an IPv4 address kept as a small integer). */
export function readI32(b: Uint8Array, at: number): number {
  return (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
}

/** Write a big-endian u32. */
export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/**
 * Pad a frame to the Ethernet minimum with zeros (IEEE 802.3 §4.2.3.3), so no stale bytes of a
 * reused buffer reach the wire; returns the length to send.
 */
export function padFrame(frame: Uint8Array, length: number): number {
  if (length >= ETH_MIN_FRAME) return length;
  frame.fill(0, length, ETH_MIN_FRAME);
  return ETH_MIN_FRAME;
}
