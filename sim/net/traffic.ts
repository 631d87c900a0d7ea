/**
 * A simulated traffic host for forwarding tests (MoonGen's role in ixy's benchmarks): a packet
 * generator that puts identical UDP/IPv4 frames (a sequence number in the payload) addressed to
 * one MAC on its segment, and a counting sink for every frame another port puts there. One frame
 * template is built at construction and reused, so generating and counting allocate nothing per
 * frame beyond the segment's own copy.
 *
 * @example
 * ```ts
 * const gen = new TrafficPort(machine.segments.get(1)!, {
 *   name: "gen1", mac: parseMac("02:00:00:00:00:01"), to: nic.mac,
 * });
 * gen.send(32);
 * ```
 *
 * @module
 */

import type { EthernetSegment, SegmentLink, SegmentPort } from "./segment.ts";

const ETH_HLEN = 14;
const ETHERTYPE_IPV4 = 0x0800;
const IPV4_HLEN = 20;
const IPPROTO_UDP = 17;
const UDP_HLEN = 8;
const DEFAULT_TTL = 64;
/** Smallest Ethernet frame without its FCS (RFC 894 pads to it). */
export const MIN_TRAFFIC_FRAME = 60;
/** Largest untagged Ethernet frame without its FCS. */
export const MAX_TRAFFIC_FRAME = 1514;
/** Where the sequence number sits: the first payload bytes after the UDP header. */
const SEQ_OFFSET = ETH_HLEN + IPV4_HLEN + UDP_HLEN;

/** Options of a {@link TrafficPort}. */
export interface TrafficPortOptions {
  /** Name for traces. */
  name: string;
  /** The port's own MAC (frames' source). */
  mac: Uint8Array;
  /** Destination MAC of the generated frames (the forwarder's port). */
  to: Uint8Array;
  /** Source and destination IPv4 addresses (u32; defaults 198.18.0.1 → 198.18.0.2, RFC 2544). */
  srcIp?: number;
  /** Destination IPv4 address (u32). */
  dstIp?: number;
  /** UDP source and destination port (default 1234 → 5678). */
  srcPort?: number;
  /** UDP destination port. */
  dstPort?: number;
  /** Frame length without FCS, 60..1514 (default 60: a 64-byte frame on the wire). */
  frameLength?: number;
}

/** A generator and counting sink plugged into one segment. */
export class TrafficPort implements SegmentPort {
  /** Name for traces. */
  readonly name: string;
  /** Length of every generated frame. */
  readonly frameLength: number;
  /** Frames generated. */
  sent = 0;
  /** Frames received from other ports. */
  received = 0;
  /** Bytes of those frames. */
  receivedBytes = 0;
  readonly #link: SegmentLink;
  readonly #frame: Uint8Array;
  readonly #view: DataView;

  /** Plug a generator/sink into `segment`. Throws a RangeError for a bad frame length. */
  constructor(segment: EthernetSegment, o: TrafficPortOptions) {
    const length = o.frameLength ?? MIN_TRAFFIC_FRAME;
    if (!Number.isInteger(length) || length < MIN_TRAFFIC_FRAME || length > MAX_TRAFFIC_FRAME) {
      throw new RangeError(
        `frame length ${length}: want an integer from ${MIN_TRAFFIC_FRAME} to ${MAX_TRAFFIC_FRAME}`,
      );
    }
    this.name = o.name;
    this.frameLength = length;
    this.#frame = udpFrame(o, length);
    this.#view = new DataView(this.#frame.buffer);
    this.#link = segment.attach(this);
  }

  /** Put `count` frames on the segment. */
  send(count: number): void {
    for (let i = 0; i < count; i++) {
      this.#view.setUint32(SEQ_OFFSET, this.sent++);
      this.#link.send(this.#frame);
    }
  }

  /** A frame from another port: counted. */
  receive(frame: Uint8Array): void {
    this.receiveFrom(frame, 0, frame.length);
  }

  /** A frame from another port as a range of the segment's buffer: counted, nothing copied. */
  receiveFrom(_buf: Uint8Array, _offset: number, length: number): void {
    this.received++;
    this.receivedBytes += length;
  }

  /** Unplug. */
  detach(): void {
    this.#link.detach();
  }
}

/** The frame template: Ethernet, IPv4 (checksummed), UDP (checksum 0: none, RFC 768), zeros. */
function udpFrame(o: TrafficPortOptions, length: number): Uint8Array {
  const f = new Uint8Array(length);
  const v = new DataView(f.buffer);
  f.set(o.to, 0);
  f.set(o.mac, 6);
  v.setUint16(12, ETHERTYPE_IPV4);
  const ip = ETH_HLEN;
  const ipLength = length - ETH_HLEN;
  v.setUint8(ip, 0x45); // version 4, 5-word header
  v.setUint16(ip + 2, ipLength);
  v.setUint8(ip + 8, DEFAULT_TTL);
  v.setUint8(ip + 9, IPPROTO_UDP);
  v.setUint32(ip + 12, o.srcIp ?? 0xc6120001);
  v.setUint32(ip + 16, o.dstIp ?? 0xc6120002);
  let sum = 0;
  for (let i = 0; i < IPV4_HLEN; i += 2) sum += v.getUint16(ip + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(ip + 10, ~sum & 0xffff);
  const udp = ip + IPV4_HLEN;
  v.setUint16(udp, o.srcPort ?? 1234);
  v.setUint16(udp + 2, o.dstPort ?? 5678);
  v.setUint16(udp + 4, ipLength - IPV4_HLEN);
  return f;
}
