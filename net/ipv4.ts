/**
 * IPv4 (RFC 791): addresses as unsigned 32-bit numbers, header layout, validation and building.
 *
 * @module
 */

import { internetChecksum } from "./checksum.ts";
import { readU16, readU32, writeU16, writeU32 } from "./ethernet.ts";

/** Minimum header length (IHL 5). */
export const IPV4_MIN_HEADER = 20;
/** Offsets inside the header (RFC 791 §3.1). */
export const IPV4_VERSION_IHL = 0;
/** Total length field. */
export const IPV4_TOTAL_LENGTH = 2;
/** Identification field. */
export const IPV4_ID = 4;
/** Flags (3 bits) and fragment offset (13 bits). */
export const IPV4_FLAGS_FRAGMENT = 6;
/** Time to live. */
export const IPV4_TTL = 8;
/** Protocol. */
export const IPV4_PROTOCOL = 9;
/** Header checksum. */
export const IPV4_CHECKSUM = 10;
/** Source address. */
export const IPV4_SRC = 12;
/** Destination address. */
export const IPV4_DST = 16;
/** Flag: don't fragment. */
export const IPV4_FLAG_DF = 0x4000;
/** Flag: more fragments. */
export const IPV4_FLAG_MF = 0x2000;
/** Mask of the fragment offset. */
export const IPV4_FRAGMENT_OFFSET_MASK = 0x1fff;
/** Protocol number of ICMP. */
export const IPPROTO_ICMP = 1;
/** Protocol number of UDP. */
export const IPPROTO_UDP = 17;
/** Default TTL of datagrams we send (RFC 1700's recommended 64). */
export const DEFAULT_TTL = 64;
/** The limited broadcast address 255.255.255.255. */
export const IPV4_BROADCAST = 0xffffffff;

/** Parse dotted-quad text into an unsigned 32-bit number; RangeError on bad text. */
export function parseIpv4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new RangeError(
      `"${text}" is not an IPv4 address (expected four numbers 0-255 like 10.0.2.15)`,
    );
  }
  return parts.reduce((a, p) => a * 256 + Number(p), 0) >>> 0;
}

/** Format an address number as dotted quad. */
export function formatIpv4(addr: number): string {
  return [addr >>> 24, (addr >>> 16) & 0xff, (addr >>> 8) & 0xff, addr & 0xff].join(".");
}

/** Parse "10.0.2.15/24" into address and prefix length. */
export function parseCidr(text: string): { address: number; prefixLength: number } {
  const [addr, prefix = "32"] = text.split("/");
  const prefixLength = Number(prefix);
  if (!/^\d{1,2}$/.test(prefix) || prefixLength > 32) {
    throw new RangeError(`"${text}": prefix length must be 0-32 (like 10.0.2.15/24)`);
  }
  return { address: parseIpv4(addr), prefixLength };
}

/** The network mask of a prefix length. */
export function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** Why a received IPv4 header was rejected, or "ok". */
export type Ipv4Verdict =
  | "ok"
  | "truncated"
  | "bad-version"
  | "bad-header-length"
  | "bad-total-length"
  | "bad-checksum"
  | "fragment";

/**
 * Validate the header at `offset` with `available` bytes after it (the rest of the frame, which
 * may include Ethernet padding).
 */
export function checkIpv4(b: Uint8Array, offset: number, available: number): Ipv4Verdict {
  if (available < IPV4_MIN_HEADER) return "truncated";
  const vihl = b[offset + IPV4_VERSION_IHL];
  if (vihl >>> 4 !== 4) return "bad-version";
  const headerLength = (vihl & 0xf) * 4;
  if (headerLength < IPV4_MIN_HEADER || headerLength > available) return "bad-header-length";
  const total = readU16(b, offset + IPV4_TOTAL_LENGTH);
  if (total < headerLength || total > available) return "bad-total-length";
  if (internetChecksum(b, offset, headerLength) !== 0) return "bad-checksum";
  const frag = readU16(b, offset + IPV4_FLAGS_FRAGMENT);
  if ((frag & IPV4_FLAG_MF) !== 0 || (frag & IPV4_FRAGMENT_OFFSET_MASK) !== 0) return "fragment";
  return "ok";
}

/** Header length in bytes of a validated header. */
export function ipv4HeaderLength(b: Uint8Array, offset: number): number {
  return (b[offset + IPV4_VERSION_IHL] & 0xf) * 4;
}

/** Source address of a header. */
export function ipv4Src(b: Uint8Array, offset: number): number {
  return readU32(b, offset + IPV4_SRC);
}

/** Destination address of a header. */
export function ipv4Dst(b: Uint8Array, offset: number): number {
  return readU32(b, offset + IPV4_DST);
}

/** Write a 20-byte header (no options, DF set) with its checksum. */
export function writeIpv4Header(
  b: Uint8Array,
  offset: number,
  fields: { id: number; ttl: number; protocol: number; src: number; dst: number; payload: number },
): void {
  b[offset + IPV4_VERSION_IHL] = 0x45;
  b[offset + 1] = 0;
  writeU16(b, offset + IPV4_TOTAL_LENGTH, IPV4_MIN_HEADER + fields.payload);
  writeU16(b, offset + IPV4_ID, fields.id & 0xffff);
  writeU16(b, offset + IPV4_FLAGS_FRAGMENT, IPV4_FLAG_DF);
  b[offset + IPV4_TTL] = fields.ttl;
  b[offset + IPV4_PROTOCOL] = fields.protocol;
  writeU16(b, offset + IPV4_CHECKSUM, 0);
  writeU32(b, offset + IPV4_SRC, fields.src);
  writeU32(b, offset + IPV4_DST, fields.dst);
  writeU16(b, offset + IPV4_CHECKSUM, internetChecksum(b, offset, IPV4_MIN_HEADER));
}
