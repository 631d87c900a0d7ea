/**
 * A small host network stack over any {@link NetDevice}: Ethernet, ARP (answer, resolve, cache),
 * IPv4 (checksum, TTL, fragments dropped), ICMP echo and UDP sockets. Single-threaded and
 * poll-driven: call {@link NetStack.poll} in the application's loop. Every malformed frame is
 * counted by reason and dropped; nothing a peer sends can make it throw.
 *
 * @example
 * ```ts
 * const stack = new NetStack(nic, { address: "10.0.2.15/24", now: () => kernel.now() });
 * stack.udpBind(7, (data, off, len, ip, port) => echo.sendTo(ip, port, data, off, len));
 * for (;;) { if (stack.poll() === 0) await kernel.sleep(1); }
 * ```
 *
 * @module
 */

import type { NetDevice } from "../drivers/net_device.ts";
import type { PacketBuffer } from "../drivers/packet_pool.ts";
import {
  ARP_HLEN,
  ARP_HTYPE,
  ARP_HTYPE_ETHERNET,
  ARP_LENGTH,
  ARP_OPER,
  ARP_PLEN,
  ARP_PTYPE,
  ARP_REPLY,
  ARP_REQUEST,
  ARP_SHA,
  ARP_SPA,
  ARP_THA,
  ARP_TPA,
  ArpCache,
} from "./arp.ts";
import { internetChecksum } from "./checksum.ts";
import {
  BROADCAST_MAC,
  ETH_HEADER_LENGTH,
  ETH_MIN_FRAME,
  ETH_SRC,
  ETH_TYPE,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  isGroupMac,
  macEquals,
  readU16,
  readU32,
  writeEthernetHeader,
  writeU16,
  writeU32,
} from "./ethernet.ts";
import {
  ICMP_CHECKSUM,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_HEADER_LENGTH,
  ICMP_TYPE,
} from "./icmp.ts";
import {
  checkIpv4,
  DEFAULT_TTL,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  IPV4_BROADCAST,
  IPV4_MIN_HEADER,
  IPV4_TOTAL_LENGTH,
  ipv4Dst,
  ipv4HeaderLength,
  ipv4Src,
  parseCidr,
  parseIpv4,
  prefixMask,
  writeIpv4Header,
} from "./ipv4.ts";
import {
  UDP_CHECKSUM,
  UDP_DST_PORT,
  UDP_HEADER_LENGTH,
  UDP_LENGTH,
  UDP_SRC_PORT,
  udpChecksum,
  type UdpHandler,
  type UdpSocket,
} from "./udp.ts";

/** Frames handled per poll (one receive batch). */
export const RX_BATCH = 32;

/** Options of a {@link NetStack}. */
export interface NetStackOptions {
  /** Our address with prefix, "10.0.2.15/24". */
  address: string;
  /** Default gateway for addresses outside the prefix. */
  gateway?: string;
  /** TTL of datagrams we send (default 64). */
  ttl?: number;
  /** Milliseconds clock for ARP ageing (the Kernel's `now`, virtual on the simulator). */
  now: () => number;
}

/** Counters of the stack; every drop has its reason. */
export interface NetStackStats {
  /** Frames received from the device. */
  rxFrames: number;
  /** Frames sent to the device. */
  txFrames: number;
  /** Frames addressed to another MAC. */
  notForUs: number;
  /** Frames too short for their headers, or with inconsistent lengths. */
  malformed: number;
  /** IPv4 headers or ICMP/UDP messages with a wrong checksum. */
  badChecksum: number;
  /** IPv4 fragments (not reassembled). */
  fragments: number;
  /** EtherTypes or IP protocols the stack does not handle. */
  unknownProtocol: number;
  /** ARP requests answered. */
  arpReplies: number;
  /** ARP requests sent to resolve a neighbour. */
  arpRequests: number;
  /** ICMP echo requests answered. */
  echoReplies: number;
  /** UDP datagrams delivered to a socket. */
  udpDelivered: number;
  /** UDP datagrams for a port nobody bound. */
  udpNoSocket: number;
  /** Frames dropped for lack of a buffer, a route, ARP resolution, or a full TX ring. */
  txDropped: number;
}

/** The stack. */
export class NetStack {
  /** Counters. */
  readonly stats: NetStackStats = {
    rxFrames: 0,
    txFrames: 0,
    notForUs: 0,
    malformed: 0,
    badChecksum: 0,
    fragments: 0,
    unknownProtocol: 0,
    arpReplies: 0,
    arpRequests: 0,
    echoReplies: 0,
    udpDelivered: 0,
    udpNoSocket: 0,
    txDropped: 0,
  };
  /** Our IPv4 address. */
  readonly address: number;
  /** Our prefix mask. */
  readonly mask: number;
  /** The ARP cache. */
  readonly arp: ArpCache = new ArpCache();
  readonly #dev: NetDevice;
  readonly #gateway: number | undefined;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #rx: PacketBuffer[] = new Array(RX_BATCH);
  readonly #tx: PacketBuffer[] = [];
  readonly #sockets = new Map<number, { handler: UdpHandler; socket: { received: number } }>();
  #ipId = 1;

  /** A stack on `dev` with the given address. Throws a RangeError for bad address text. */
  constructor(dev: NetDevice, options: NetStackOptions) {
    const { address, prefixLength } = parseCidr(options.address);
    this.#dev = dev;
    this.address = address;
    this.mask = prefixMask(prefixLength);
    this.#gateway = options.gateway === undefined ? undefined : parseIpv4(options.gateway);
    this.#ttl = options.ttl ?? DEFAULT_TTL;
    this.#now = options.now;
  }

  /** Bind a UDP port; throws a RangeError if the port is invalid or taken. */
  udpBind(port: number, handler: UdpHandler): UdpSocket {
    if (!Number.isInteger(port) || port <= 0 || port > 0xffff) {
      throw new RangeError(`UDP port ${port} is not in 1..65535`);
    }
    if (this.#sockets.has(port)) throw new RangeError(`UDP port ${port} is already bound`);
    const state = { received: 0 };
    this.#sockets.set(port, { handler, socket: state });
    return {
      port,
      get received(): number {
        return state.received;
      },
      sendTo: (
        dstIp: number,
        dstPort: number,
        data: Uint8Array,
        offset = 0,
        length = data.length,
      ) => this.sendUdp(port, dstIp, dstPort, data, offset, length),
      close: (): void => void this.#sockets.delete(port),
    };
  }

  /**
   * Receive one batch, answer what needs answering, deliver UDP, and transmit. Returns the number
   * of frames received (0 means idle).
   */
  poll(): number {
    const n = this.#dev.rxBatch(this.#rx, RX_BATCH);
    for (let i = 0; i < n; i++) {
      const buf = this.#rx[i];
      this.stats.rxFrames++;
      this.#receive(buf);
      this.#dev.pool.free(buf);
    }
    for (const f of this.arp.expire(this.#now())) this.#drop(f);
    this.#flush();
    return n;
  }

  /** Send a UDP datagram (copied into a packet buffer); false when it was dropped. */
  sendUdp(
    srcPort: number,
    dstIp: number,
    dstPort: number,
    data: Uint8Array,
    offset = 0,
    length = data.length,
  ): boolean {
    const maxPayload = this.#dev.pool.bufferSize - this.#dev.pool.headroom - ETH_HEADER_LENGTH -
      IPV4_MIN_HEADER -
      UDP_HEADER_LENGTH;
    if (length < 0 || offset < 0 || offset + length > data.length || length > maxPayload) {
      this.stats.txDropped++;
      return false;
    }
    const buf = this.#dev.pool.alloc();
    if (!buf) {
      this.stats.txDropped++;
      return false;
    }
    const b = buf.data;
    const udp = ETH_HEADER_LENGTH + IPV4_MIN_HEADER;
    const udpLength = UDP_HEADER_LENGTH + length;
    writeU16(b, udp + UDP_SRC_PORT, srcPort);
    writeU16(b, udp + UDP_DST_PORT, dstPort);
    writeU16(b, udp + UDP_LENGTH, udpLength);
    writeU16(b, udp + UDP_CHECKSUM, 0);
    b.set(data.subarray(offset, offset + length), udp + UDP_HEADER_LENGTH);
    writeU16(b, udp + UDP_CHECKSUM, udpChecksum(b, udp, udpLength, this.address, dstIp));
    return this.#sendIp(buf, dstIp, IPPROTO_UDP, udpLength);
  }

  #receive(buf: PacketBuffer): void {
    const b = buf.data;
    const len = buf.length;
    if (len < ETH_HEADER_LENGTH || len > b.length) {
      this.stats.malformed++;
      return;
    }
    if (!macEquals(b, 0, this.#dev.mac) && !isGroupMac(b, 0)) {
      this.stats.notForUs++;
      return;
    }
    const type = readU16(b, ETH_TYPE);
    if (type === ETHERTYPE_ARP) this.#arpIn(b, len);
    else if (type === ETHERTYPE_IPV4) this.#ipIn(b, len);
    else this.stats.unknownProtocol++;
  }

  #arpIn(b: Uint8Array, len: number): void {
    const a = ETH_HEADER_LENGTH;
    if (
      len - a < ARP_LENGTH || readU16(b, a + ARP_HTYPE) !== ARP_HTYPE_ETHERNET ||
      readU16(b, a + ARP_PTYPE) !== ETHERTYPE_IPV4 || b[a + ARP_HLEN] !== 6 || b[a + ARP_PLEN] !== 4
    ) {
      this.stats.malformed++;
      return;
    }
    const op = readU16(b, a + ARP_OPER);
    const spa = readU32(b, a + ARP_SPA);
    const tpa = readU32(b, a + ARP_TPA);
    const sha = b.subarray(a + ARP_SHA, a + ARP_SHA + 6);
    const now = this.#now();
    const forUs = tpa === this.address;
    // RFC 826: update a known sender; add it when the request is for us.
    if (this.arp.has(spa) || forUs) {
      this.arp.learn(spa, sha, now);
      for (const f of this.arp.release(spa)) this.#finishFrame(f, sha);
    }
    if (op === ARP_REQUEST && forUs) this.#arpSend(ARP_REPLY, sha, spa);
    else if (op !== ARP_REQUEST && op !== ARP_REPLY) this.stats.malformed++;
  }

  #arpSend(op: number, targetMac: Uint8Array, targetIp: number): void {
    const buf = this.#dev.pool.alloc();
    if (!buf) {
      this.stats.txDropped++;
      return;
    }
    const b = buf.data;
    const a = ETH_HEADER_LENGTH;
    writeEthernetHeader(
      b,
      op === ARP_REQUEST ? BROADCAST_MAC : targetMac,
      this.#dev.mac,
      ETHERTYPE_ARP,
    );
    writeU16(b, a + ARP_HTYPE, ARP_HTYPE_ETHERNET);
    writeU16(b, a + ARP_PTYPE, ETHERTYPE_IPV4);
    b[a + ARP_HLEN] = 6;
    b[a + ARP_PLEN] = 4;
    writeU16(b, a + ARP_OPER, op);
    b.set(this.#dev.mac, a + ARP_SHA);
    writeU32(b, a + ARP_SPA, this.address);
    if (op === ARP_REQUEST) b.fill(0, a + ARP_THA, a + ARP_THA + 6);
    else b.set(targetMac, a + ARP_THA);
    writeU32(b, a + ARP_TPA, targetIp);
    buf.length = padFrame(buf.data, ETH_HEADER_LENGTH + ARP_LENGTH);
    if (op === ARP_REQUEST) this.stats.arpRequests++;
    else this.stats.arpReplies++;
    this.#queue(buf);
  }

  #ipIn(b: Uint8Array, len: number): void {
    const ip = ETH_HEADER_LENGTH;
    const verdict = checkIpv4(b, ip, len - ip);
    if (verdict !== "ok") {
      if (verdict === "bad-checksum") this.stats.badChecksum++;
      else if (verdict === "fragment") this.stats.fragments++;
      else this.stats.malformed++;
      return;
    }
    const dst = ipv4Dst(b, ip);
    const broadcast = dst === IPV4_BROADCAST || dst === ((this.address | ~this.mask) >>> 0);
    if (dst !== this.address && !broadcast) {
      this.stats.notForUs++;
      return;
    }
    const hl = ipv4HeaderLength(b, ip);
    const payload = ip + hl;
    const payloadLength = readU16(b, ip + IPV4_TOTAL_LENGTH) - hl;
    const src = ipv4Src(b, ip);
    const proto = b[ip + 9];
    if (proto === IPPROTO_ICMP && !broadcast) this.#icmpIn(b, src, payload, payloadLength);
    else if (proto === IPPROTO_UDP) this.#udpIn(b, src, dst, payload, payloadLength);
    else this.stats.unknownProtocol++;
  }

  #icmpIn(b: Uint8Array, src: number, at: number, length: number): void {
    if (length < ICMP_HEADER_LENGTH) {
      this.stats.malformed++;
      return;
    }
    if (internetChecksum(b, at, length) !== 0) {
      this.stats.badChecksum++;
      return;
    }
    if (b[at + ICMP_TYPE] !== ICMP_ECHO_REQUEST || b[at + 1] !== 0) {
      this.stats.unknownProtocol++;
      return;
    }
    const buf = this.#dev.pool.alloc();
    if (!buf) {
      this.stats.txDropped++;
      return;
    }
    const o = ETH_HEADER_LENGTH + IPV4_MIN_HEADER;
    if (o + length > buf.data.length) {
      this.#dev.pool.free(buf);
      this.stats.txDropped++;
      return;
    }
    buf.data.set(b.subarray(at, at + length), o);
    buf.data[o + ICMP_TYPE] = ICMP_ECHO_REPLY;
    writeU16(buf.data, o + ICMP_CHECKSUM, 0);
    writeU16(buf.data, o + ICMP_CHECKSUM, internetChecksum(buf.data, o, length));
    this.stats.echoReplies++;
    this.#sendIp(buf, src, IPPROTO_ICMP, length);
  }

  #udpIn(b: Uint8Array, src: number, dst: number, at: number, length: number): void {
    if (length < UDP_HEADER_LENGTH) {
      this.stats.malformed++;
      return;
    }
    const udpLength = readU16(b, at + UDP_LENGTH);
    if (udpLength < UDP_HEADER_LENGTH || udpLength > length) {
      this.stats.malformed++;
      return;
    }
    if (
      readU16(b, at + UDP_CHECKSUM) !== 0 && internetChecksumUdp(b, at, udpLength, src, dst) !== 0
    ) {
      this.stats.badChecksum++;
      return;
    }
    const entry = this.#sockets.get(readU16(b, at + UDP_DST_PORT));
    if (!entry) {
      this.stats.udpNoSocket++;
      return;
    }
    this.stats.udpDelivered++;
    entry.socket.received++;
    entry.handler(
      b,
      at + UDP_HEADER_LENGTH,
      udpLength - UDP_HEADER_LENGTH,
      src,
      readU16(b, at + UDP_SRC_PORT),
    );
  }

  /** Fill the IPv4 header of a frame whose L4 payload is in place, resolve, queue. */
  #sendIp(buf: PacketBuffer, dstIp: number, protocol: number, payloadLength: number): boolean {
    writeIpv4Header(buf.data, ETH_HEADER_LENGTH, {
      id: this.#ipId++,
      ttl: this.#ttl,
      protocol,
      src: this.address,
      dst: dstIp,
      payload: payloadLength,
    });
    buf.length = padFrame(buf.data, ETH_HEADER_LENGTH + IPV4_MIN_HEADER + payloadLength);
    if (dstIp === IPV4_BROADCAST) {
      this.#finishFrame(buf, BROADCAST_MAC);
      return true;
    }
    const hop = ((dstIp & this.mask) >>> 0) === ((this.address & this.mask) >>> 0)
      ? dstIp
      : this.#gateway;
    if (hop === undefined) {
      this.#drop(buf);
      return false;
    }
    const now = this.#now();
    const mac = this.arp.lookup(hop, now);
    if (mac) {
      this.#finishFrame(buf, mac);
      return true;
    }
    const { first, dropped } = this.arp.hold(hop, buf, now);
    if (dropped) this.#drop(dropped);
    if (first) this.#arpSend(ARP_REQUEST, BROADCAST_MAC, hop);
    return true;
  }

  #finishFrame(buf: PacketBuffer, dstMac: Uint8Array): void {
    const b = buf.data;
    b.set(dstMac, 0);
    b.set(this.#dev.mac, ETH_SRC);
    writeU16(b, ETH_TYPE, ETHERTYPE_IPV4);
    this.#queue(buf);
  }

  #queue(buf: PacketBuffer): void {
    this.#tx.push(buf);
    if (this.#tx.length >= RX_BATCH) this.#flush();
  }

  #flush(): void {
    const n = this.#tx.length;
    if (n === 0) return;
    const sent = this.#dev.txBatch(this.#tx, n);
    this.stats.txFrames += sent;
    for (let i = sent; i < n; i++) this.#drop(this.#tx[i]);
    this.#tx.length = 0;
  }

  #drop(buf: PacketBuffer): void {
    this.stats.txDropped++;
    this.#dev.pool.free(buf);
  }
}

/**
 * Pad a frame to the Ethernet minimum with zeros (IEEE 802.3 §4.2.3.3), so no stale bytes of a
 * reused buffer reach the wire; returns the length to send.
 */
function padFrame(frame: Uint8Array, length: number): number {
  if (length >= ETH_MIN_FRAME) return length;
  frame.fill(0, length, ETH_MIN_FRAME);
  return ETH_MIN_FRAME;
}

function internetChecksumUdp(
  b: Uint8Array,
  at: number,
  length: number,
  src: number,
  dst: number,
): number {
  // Verifying: the sum over pseudo-header + datagram (including its checksum) must be 0xffff.
  const c = udpChecksum(b, at, length, src, dst);
  return c === 0xffff ? 0 : c;
}
