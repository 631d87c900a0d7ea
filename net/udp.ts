/**
 * UDP (RFC 768): header layout, the checksum over the IPv4 pseudo-header, sockets, and the errors
 * of a datagram that can never be sent.
 *
 * @module
 */

import { finishChecksum, sumWords } from "./checksum.ts";
import { formatIpv4, IPPROTO_UDP } from "./ipv4.ts";

/** UDP header length. */
export const UDP_HEADER_LENGTH = 8;
/** Source port offset. */
export const UDP_SRC_PORT = 0;
/** Destination port offset. */
export const UDP_DST_PORT = 2;
/** Length offset (header + data). */
export const UDP_LENGTH = 4;
/** Checksum offset (0 = not computed, allowed over IPv4). */
export const UDP_CHECKSUM = 6;

/**
 * The UDP checksum of a datagram at `offset` of `length` bytes, over the pseudo-header
 * (src, dst, protocol, UDP length). A computed 0 is sent as 0xffff (RFC 768).
 */
export function udpChecksum(
  b: Uint8Array,
  offset: number,
  length: number,
  src: number,
  dst: number,
): number {
  const c = finishChecksum(sumWords(b, offset, length, udpPseudoHeaderSum(src, dst, length)));
  return c === 0 ? 0xffff : c;
}

/** The sum of the pseudo-header's words (RFC 768): addresses, protocol, UDP length. */
export function udpPseudoHeaderSum(src: number, dst: number, udpLength: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + IPPROTO_UDP + udpLength;
}

/**
 * Receives datagrams for a bound port. `data[offset, offset + length)` is the payload, valid only
 * during the call (the buffer goes back to the pool afterwards).
 */
export type UdpHandler = (
  data: Uint8Array,
  offset: number,
  length: number,
  srcIp: number,
  srcPort: number,
) => void;

/** A bound UDP port. */
export interface UdpSocket {
  /** The local port. */
  readonly port: number;
  /** Datagrams delivered to the handler. */
  readonly received: number;
  /**
   * Send a datagram from this port (the bytes are copied). True when it was queued or waits for
   * ARP; false when it was dropped (no buffer, no route, ARP queue full — each counted). Throws a
   * RangeError for a datagram that can never be sent: larger than the MTU allows (no
   * fragmentation), to an address that never goes on the wire, or a range outside `data`.
   */
  sendTo(
    dstIp: number,
    dstPort: number,
    data: Uint8Array,
    offset?: number,
    length?: number,
  ): boolean;
  /** Unbind the port. */
  close(): void;
}

/** What a {@link UdpPort} sends through (the stack). */
export interface UdpSender {
  /** Send a datagram; see UdpSocket.sendTo. */
  sendUdp(
    srcPort: number,
    dstIp: number,
    dstPort: number,
    data: Uint8Array,
    offset: number,
    length: number,
  ): boolean;
}

/** A bound port: the stack's record of it and the application's {@link UdpSocket}. */
export class UdpPort implements UdpSocket {
  /** Datagrams delivered to the handler. */
  received = 0;

  /** A port bound to `handler`, sending through `sender`; `unbind` runs on close. */
  constructor(
    readonly port: number,
    readonly handler: UdpHandler,
    readonly sender: UdpSender,
    readonly unbind: (port: number) => void,
  ) {}

  /** See {@link UdpSocket.sendTo}. */
  sendTo(
    dstIp: number,
    dstPort: number,
    data: Uint8Array,
    offset = 0,
    length = data.length,
  ): boolean {
    return this.sender.sendUdp(this.port, dstIp, dstPort, data, offset, length);
  }

  /** Unbind the port. */
  close(): void {
    this.unbind(this.port);
  }
}

/** A send's byte range `[offset, offset + length)` is not inside the `size`-byte array. */
export function udpRangeError(offset: number, length: number, size: number): RangeError {
  return new RangeError(
    `UDP send: bytes [${offset}, ${offset + length}) are not a range inside the ` +
      `${size}-byte array`,
  );
}

/** A send's ports are not in 0..65535 (source) and 1..65535 (destination). */
export function udpPortError(srcPort: number, dstPort: number): RangeError {
  return new RangeError(
    `UDP send: ports ${srcPort} → ${dstPort} must be integers in 0..65535 → 1..65535`,
  );
}

/** A payload of `length` bytes exceeds `maxPayload`, what fits the `mtu` (no fragmentation). */
export function udpTooBigError(length: number, maxPayload: number, mtu: number): RangeError {
  return new RangeError(
    `UDP payload of ${length} bytes exceeds the ${maxPayload} bytes that fit the ` +
      `${mtu}-byte MTU (20-byte IPv4 and 8-byte UDP headers); the stack does not fragment: ` +
      `send smaller datagrams`,
  );
}

/** A destination (int32) that never goes on the wire. */
export function udpDestinationError(dst: number): RangeError {
  return new RangeError(
    `UDP send: cannot send to ${formatIpv4(dst)} (our own, "this network", loopback or ` +
      `reserved addresses never go on the wire)`,
  );
}
