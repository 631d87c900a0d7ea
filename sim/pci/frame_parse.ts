/**
 * What a NIC model needs to know about an Ethernet frame without allocating: where the IP and
 * TCP/UDP headers are (one 802.1Q tag, IPv4 with options, IPv6 without extension headers), and
 * the Internet checksums (RFC 791 header checksum, RFC 793/768 checksums over the pseudo-header)
 * the receive offloads check and the transmit offloads fill in.
 *
 * @example
 * ```ts
 * const info = new FrameInfo();
 * parseFrame(frame, frame.length, 0x8100, info);
 * if (info.ipVersion === 4 && !ipv4HeaderChecksumOk(frame, info)) countBadChecksum();
 * ```
 *
 * @module
 */

/** EtherType of IPv4. */
export const ETHERTYPE_IPV4 = 0x0800;
/** EtherType of IPv6. */
export const ETHERTYPE_IPV6 = 0x86dd;
/** IP protocol number of TCP. */
export const IPPROTO_TCP = 6;
/** IP protocol number of UDP. */
export const IPPROTO_UDP = 17;
/** Bytes of an Ethernet header (two addresses and the EtherType). */
export const ETH_HLEN = 14;
/** Bytes of an 802.1Q tag. */
export const VLAN_HLEN = 4;
/** Smallest frame on the wire without FCS (shorter ones are padded). */
export const ETH_ZLEN = 60;
/** Bytes of an IPv6 fixed header. */
const IPV6_HLEN = 40;
/** Bytes of a UDP header; minimum TCP header. */
const UDP_HLEN = 8;
const TCP_MIN_HLEN = 20;
/** Offsets of the checksum fields in the TCP and UDP headers. */
const TCP_CSUM_OFFSET = 16;
const UDP_CSUM_OFFSET = 6;
/** IPv4 header: checksum field offset, flags/fragment offset field and the MF bit. */
const IPV4_CSUM_OFFSET = 10;
const IPV4_FRAG_FIELD = 6;
const IPV4_MF_AND_OFFSET = 0x3fff;

/** The parsed layout of one frame (reused from frame to frame). */
export class FrameInfo {
  /** EtherType after at most one VLAN tag. */
  etherType = 0;
  /** The frame carries a VLAN tag (TPID = VET). */
  vlan = false;
  /** The tag control information of that tag. */
  vlanTci = 0;
  /** 4, 6, or 0 for neither. */
  ipVersion = 0;
  /** Offset of the IP header. */
  l3 = 0;
  /** Bytes of the IP header. */
  l3Length = 0;
  /** IP payload bytes the IP header announces (bounded by the frame). */
  l3PayloadLength = 0;
  /** A fragment (no transport header to look at, except in the first fragment). */
  fragment = false;
  /** IPv4 identification. */
  ipId = 0;
  /** IPPROTO_TCP, IPPROTO_UDP, or 0. */
  l4Proto = 0;
  /** Offset of the TCP/UDP header. */
  l4 = 0;
  /** TCP with the ACK flag. */
  tcpAck = false;
}

function be16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

/** Parse `frame[0..length)`; `vlanTpid` is the VLAN EtherType (the VET register). */
export function parseFrame(
  frame: Uint8Array,
  length: number,
  vlanTpid: number,
  out: FrameInfo,
): FrameInfo {
  out.etherType = 0;
  out.vlan = false;
  out.vlanTci = 0;
  out.ipVersion = 0;
  out.l3 = 0;
  out.l3Length = 0;
  out.l3PayloadLength = 0;
  out.fragment = false;
  out.ipId = 0;
  out.l4Proto = 0;
  out.l4 = 0;
  out.tcpAck = false;
  if (length < ETH_HLEN) return out;
  let at = ETH_HLEN;
  out.etherType = be16(frame, 12);
  if (out.etherType === vlanTpid && length >= ETH_HLEN + VLAN_HLEN) {
    out.vlan = true;
    out.vlanTci = be16(frame, 14);
    out.etherType = be16(frame, 16);
    at += VLAN_HLEN;
  }
  if (out.etherType === ETHERTYPE_IPV4) parseIpv4(frame, length, at, out);
  else if (out.etherType === ETHERTYPE_IPV6) parseIpv6(frame, length, at, out);
  if (out.l4Proto === IPPROTO_TCP) {
    if (out.l4 + TCP_MIN_HLEN > length) out.l4Proto = 0;
    else out.tcpAck = (frame[out.l4 + 13] & 0x10) !== 0;
  } else if (out.l4Proto === IPPROTO_UDP && out.l4 + UDP_HLEN > length) {
    out.l4Proto = 0;
  }
  return out;
}

function parseIpv4(frame: Uint8Array, length: number, at: number, out: FrameInfo): void {
  if (at + 20 > length || frame[at] >> 4 !== 4) return;
  const ihl = (frame[at] & 0xf) * 4;
  if (ihl < 20 || at + ihl > length) return;
  out.ipVersion = 4;
  out.l3 = at;
  out.l3Length = ihl;
  const total = be16(frame, at + 2);
  out.l3PayloadLength = Math.max(0, Math.min(total, length - at) - ihl);
  out.ipId = be16(frame, at + 4);
  out.fragment = (be16(frame, at + IPV4_FRAG_FIELD) & IPV4_MF_AND_OFFSET) !== 0;
  const proto = frame[at + 9];
  if (!out.fragment && (proto === IPPROTO_TCP || proto === IPPROTO_UDP)) {
    out.l4Proto = proto;
    out.l4 = at + ihl;
  }
}

function parseIpv6(frame: Uint8Array, length: number, at: number, out: FrameInfo): void {
  if (at + IPV6_HLEN > length || frame[at] >> 4 !== 6) return;
  out.ipVersion = 6;
  out.l3 = at;
  out.l3Length = IPV6_HLEN;
  out.l3PayloadLength = Math.min(be16(frame, at + 4), length - at - IPV6_HLEN);
  const next = frame[at + 6];
  if (next === IPPROTO_TCP || next === IPPROTO_UDP) {
    out.l4Proto = next;
    out.l4 = at + IPV6_HLEN;
  }
}

/** One's-complement sum of `b[from..to)` added to `sum` (16-bit words, big-endian). */
function sum16(b: Uint8Array, from: number, to: number, sum: number): number {
  let i = from;
  for (; i + 1 < to; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (i < to) sum += b[i] << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Whether the IPv4 header checksum is right (the frame must parse as IPv4). */
export function ipv4HeaderChecksumOk(frame: Uint8Array, info: FrameInfo): boolean {
  return fold(sum16(frame, info.l3, info.l3 + info.l3Length, 0)) === 0xffff;
}

/** Fill in the IPv4 header checksum. */
export function fillIpv4HeaderChecksum(frame: Uint8Array, info: FrameInfo): void {
  frame[info.l3 + IPV4_CSUM_OFFSET] = 0;
  frame[info.l3 + IPV4_CSUM_OFFSET + 1] = 0;
  const c = ~fold(sum16(frame, info.l3, info.l3 + info.l3Length, 0)) & 0xffff;
  frame[info.l3 + IPV4_CSUM_OFFSET] = c >> 8;
  frame[info.l3 + IPV4_CSUM_OFFSET + 1] = c & 0xff;
}

/** Sum of the pseudo-header plus the transport segment. */
function transportSum(frame: Uint8Array, info: FrameInfo): number {
  const segment = info.l3 + info.l3Length + info.l3PayloadLength - info.l4;
  let sum = 0;
  if (info.ipVersion === 4) sum = sum16(frame, info.l3 + 12, info.l3 + 20, 0);
  else sum = sum16(frame, info.l3 + 8, info.l3 + 40, 0);
  sum += info.l4Proto + segment;
  return sum16(frame, info.l4, info.l4 + segment, sum);
}

/**
 * Whether the TCP/UDP checksum is right; a UDP checksum of 0 (none sent) counts as right, as
 * for QEMU's models. The frame must have parsed with a transport header.
 */
export function transportChecksumOk(frame: Uint8Array, info: FrameInfo): boolean {
  if (info.l4Proto === IPPROTO_UDP && be16(frame, info.l4 + UDP_CSUM_OFFSET) === 0) return true;
  return fold(transportSum(frame, info)) === 0xffff;
}

/** Fill in the TCP/UDP checksum over the pseudo-header (UDP never sends 0: it sends 0xFFFF). */
export function fillTransportChecksum(frame: Uint8Array, info: FrameInfo): void {
  const at = info.l4 + (info.l4Proto === IPPROTO_TCP ? TCP_CSUM_OFFSET : UDP_CSUM_OFFSET);
  frame[at] = 0;
  frame[at + 1] = 0;
  let c = ~fold(transportSum(frame, info)) & 0xffff;
  if (c === 0 && info.l4Proto === IPPROTO_UDP) c = 0xffff;
  frame[at] = c >> 8;
  frame[at + 1] = c & 0xff;
}
