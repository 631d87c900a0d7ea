/**
 * IPv4 (RFC 791): addresses as unsigned 32-bit numbers, header layout, validation and building.
 *
 * @module
 */

import { finishChecksum, internetChecksum } from "./checksum.ts";
import { readU16, readU32 } from "./ethernet.ts";

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
/** The smallest MTU every IPv4 link must carry (RFC 791 §3.1: 68 octets). */
export const IPV4_MIN_MTU = 68;
/** The MTU of Ethernet (RFC 894). */
export const ETHERNET_MTU = 1500;

/**
 * True when `addr` may be the source of a datagram, i.e. names one host (RFC 1122 §3.2.1.3):
 * not in 0.0.0.0/8 ("this network", a source only while a host learns its address, which this
 * stack never answers), 127.0.0.0/8 (loopback: must not appear on a wire, §3.2.1.3(g)),
 * 224.0.0.0/4 (multicast) or 240.0.0.0/4 (class E, including 255.255.255.255). Whether it is
 * a directed broadcast depends on the prefix: the caller checks that. Accepts signed or unsigned
 * numbers.
 */
export function isUnicastHostAddress(addr: number): boolean {
  const top = addr >>> 24;
  return top !== 0 && top !== 127 && top < 224;
}

/** True for 224.0.0.0/4 (RFC 1112 §4). Accepts signed or unsigned numbers. */
export function isMulticastAddress(addr: number): boolean {
  return addr >>> 28 === 0xe;
}

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
  | "too-long"
  | "fragment";

/**
 * Validate the header at `offset` with `available` bytes after it (the rest of the frame, which
 * may include Ethernet padding): structure and lengths ({@link checkIpv4Layout}), checksum, and
 * no fragmentation. A datagram longer than `mtu` (default: any length) is "too-long".
 */
export function checkIpv4(
  b: Uint8Array,
  offset: number,
  available: number,
  mtu = 0xffff,
): Ipv4Verdict {
  const layout = checkIpv4Layout(b, offset, available, mtu);
  if (layout !== "ok") return layout;
  if (internetChecksum(b, offset, ipv4HeaderLength(b, offset)) !== 0) return "bad-checksum";
  return isIpv4Fragment(b, offset) ? "fragment" : "ok";
}

/**
 * The structural half of {@link checkIpv4}, for callers that sum the header themselves: version,
 * header length, total length against `available` bytes and against `mtu`.
 */
export function checkIpv4Layout(
  b: Uint8Array,
  offset: number,
  available: number,
  mtu: number,
): Ipv4Verdict {
  if (available < IPV4_MIN_HEADER) return "truncated";
  const vihl = b[offset + IPV4_VERSION_IHL];
  if (vihl >>> 4 !== 4) return "bad-version";
  const headerLength = (vihl & 0xf) * 4;
  if (headerLength < IPV4_MIN_HEADER || headerLength > available) return "bad-header-length";
  const total = readU16(b, offset + IPV4_TOTAL_LENGTH);
  if (total < headerLength || total > available) return "bad-total-length";
  return total > mtu ? "too-long" : "ok";
}

/** True when the header says the datagram is a fragment (MF set or a fragment offset). */
export function isIpv4Fragment(b: Uint8Array, offset: number): boolean {
  return (readU16(b, offset + IPV4_FLAGS_FRAGMENT) & (IPV4_FLAG_MF | IPV4_FRAGMENT_OFFSET_MASK)) !==
    0;
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

/**
 * Write a 20-byte header (no options, DF set) for `payload` bytes at `view[at]`, with its
 * checksum computed from the field values (no pass over the bytes): five 32-bit stores.
 * Addresses may be signed or unsigned.
 */
export function writeIpv4Header(
  view: DataView,
  at: number,
  id: number,
  ttl: number,
  protocol: number,
  src: number,
  dst: number,
  payload: number,
): void {
  const total = IPV4_MIN_HEADER + payload;
  id &= 0xffff;
  const ttlProtocol = (ttl << 8) | protocol;
  const sum = 0x4500 + total + id + IPV4_FLAG_DF + ttlProtocol + (src >>> 16) + (src & 0xffff) +
    (dst >>> 16) + (dst & 0xffff);
  view.setInt32(at + IPV4_VERSION_IHL, 0x4500_0000 | total);
  view.setInt32(at + IPV4_ID, (id << 16) | IPV4_FLAG_DF);
  view.setInt32(at + IPV4_TTL, (ttlProtocol << 16) | finishChecksum(sum));
  view.setInt32(at + IPV4_SRC, src);
  view.setInt32(at + IPV4_DST, dst);
}
