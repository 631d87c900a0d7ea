/**
 * A small host network stack over any {@link NetDevice}: Ethernet, ARP (answer, resolve, cache),
 * IPv4 (checksum, TTL, fragments dropped), ICMP echo and UDP sockets. Single-threaded and
 * poll-driven: call {@link NetStack.poll} in the application's loop. Every frame it does not
 * deliver or answer is counted by reason ({@link NetStackStats}) and dropped; nothing a peer
 * sends can make it throw.
 *
 * A hostile neighbour cannot starve it: frames waiting for ARP are bounded per neighbour and
 * over all neighbours (see {@link NetStackOptions.arpPendingFrames}), unresolved entries expire,
 * and unresolved addresses never evict resolved neighbours. It answers only sources that name one
 * host (RFC 1122 §3.2.1.3), never answers a broadcast echo request (§3.2.2.6) and never sends an
 * ICMP error, so nothing it sends is reflected to a broadcast address. Frames and datagrams
 * larger than the MTU are dropped on receive and refused on send (it sets DF and does not
 * fragment).
 *
 * Nothing is allocated per packet: buffers come from the device's pool, checksums and copies go
 * four bytes at a time through views made once, and the ARP cache lives in typed arrays. Addresses
 * are kept as signed 32-bit integers inside, so V8 never boxes them; the UDP handler receives
 * the unsigned form, which V8 boxes (one small allocation) for sources of 128.0.0.0 and above.
 *
 * @example
 * ```ts
 * const stack = new NetStack(nic, { address: "10.0.2.15/24", now: () => kernel.now() });
 * const echo = stack.udpBind(7, (data, off, len, ip, port) => echo.sendTo(ip, port, data, off, len));
 * for (;;) { if (stack.poll() === 0) await kernel.sleep(1); }
 * ```
 *
 * @module
 */

import type { NetDevice } from "../drivers/net_device.ts";
import type { PacketBuffer, PacketPool } from "../drivers/packet_pool.ts";
import {
  ARP_LENGTH,
  ARP_OPER,
  ARP_REPLY,
  ARP_REQUEST,
  ARP_SHA,
  ARP_SPA,
  ARP_TPA,
  ArpCache,
  ArpHold,
  isEthernetIpv4Arp,
  writeArp,
} from "./arp.ts";
import { finishChecksum, updateChecksum } from "./checksum.ts";
import {
  BROADCAST_MAC,
  copyMac,
  ETH_HEADER_LENGTH,
  ETH_SRC,
  ETH_TYPE,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  isGroupMac,
  isZeroMac,
  macEquals,
  padFrame,
  readI32,
  readU16,
  writeMulticastMac,
  writeU16,
} from "./ethernet.ts";
import {
  ICMP_CHECKSUM,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_HEADER_LENGTH,
  ICMP_TYPE,
} from "./icmp.ts";
import {
  checkIpv4Layout,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  IPV4_DST,
  IPV4_MIN_HEADER,
  IPV4_PROTOCOL,
  IPV4_SRC,
  IPV4_TOTAL_LENGTH,
  IPV4_VERSION_IHL,
  isIpv4Fragment,
  isMulticastAddress,
  isUnicastHostAddress,
  writeIpv4Header,
} from "./ipv4.ts";
import { copyBetween, memoryOf, PacketMemory } from "./packet_memory.ts";
import { type NetStackStats, newNetStackStats, type TxDropReason } from "./stats.ts";
import { type NetStackOptions, poolMemory, RX_BATCH, stackConfig } from "./stack_config.ts";
import {
  UDP_CHECKSUM,
  UDP_HEADER_LENGTH,
  UDP_LENGTH,
  UDP_SRC_PORT,
  udpDestinationError,
  type UdpHandler,
  UdpPort,
  udpPortError,
  udpPseudoHeaderSum,
  udpRangeError,
  type UdpSocket,
  udpTooBigError,
} from "./udp.ts";

export type { NetStackStats } from "./stats.ts";

export { ARP_PENDING_DEFAULT_MAX, type NetStackOptions, RX_BATCH } from "./stack_config.ts";

/** The stack. */
export class NetStack {
  /** Counters (see {@link NetStackStats} for each). */
  readonly stats: NetStackStats = newNetStackStats();
  /** Our IPv4 address (unsigned). */
  readonly address: number;
  /** Our prefix mask (unsigned). */
  readonly mask: number;
  /** The MTU in force. */
  readonly mtu: number;
  /** The ARP cache. */
  readonly arp: ArpCache;
  readonly #dev: NetDevice;
  readonly #pool: PacketPool;
  /** Views over the pool's memory: checksums, copies and header fields go through these. */
  readonly #mem: PacketMemory;
  readonly #view: DataView;
  /** The frame being received (its bytes are pool memory, as are a handler's `data`). */
  #current: Uint8Array | undefined;
  readonly #mac: Uint8Array;
  /** Our MAC as a big-endian 32-bit head and 16-bit tail. */
  readonly #macHead: number;
  readonly #macTail: number;
  /** Our address, mask and subnet broadcast as signed 32-bit integers. */
  readonly #addr: number;
  readonly #mask: number;
  /** The directed broadcast of our subnet; our own address when the prefix has none (/31, /32). */
  readonly #directed: number;
  readonly #gateway: number;
  readonly #hasGateway: boolean;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #maxFrame: number;
  readonly #maxUdpPayload: number;
  readonly #holdReserve: number;
  readonly #rx: PacketBuffer[] = new Array(RX_BATCH).fill(undefined);
  readonly #tx: PacketBuffer[] = new Array(RX_BATCH).fill(undefined);
  #txCount = 0;
  readonly #sockets = new Map<number, UdpPort>();
  /** The last port a datagram was delivered to (a stream usually hits one port): no Map look-up. */
  #lastPort = -1;
  #lastSocket: UdpPort | undefined;
  #ipId = 1;
  #time = 0;
  #inPoll = false;

  /** A stack on `dev` with the given address. Throws a RangeError for a bad option. */
  constructor(dev: NetDevice, options: NetStackOptions) {
    const c = stackConfig(dev.pool, options);
    this.#dev = dev;
    this.#pool = dev.pool;
    this.#mem = poolMemory(dev.pool);
    this.#view = this.#mem.view;
    this.#mac = dev.mac.slice();
    const m = this.#mac;
    this.#macHead = (m[0] << 24) | (m[1] << 16) | (m[2] << 8) | m[3];
    this.#macTail = (m[4] << 8) | m[5];
    this.address = c.address >>> 0;
    this.mask = c.mask >>> 0;
    this.mtu = c.mtu;
    this.#addr = c.address;
    this.#mask = c.mask;
    this.#directed = c.directed;
    this.#gateway = c.gateway;
    this.#hasGateway = c.hasGateway;
    this.#ttl = c.ttl;
    this.#now = options.now;
    this.#maxFrame = c.maxFrame;
    this.#maxUdpPayload = c.maxUdpPayload;
    this.#holdReserve = c.holdReserve;
    const pool = this.#pool;
    this.arp = new ArpCache({
      free: (frame) => pool.free(frame),
      entries: options.arpEntries,
      pendingFrames: c.pendingFrames,
    });
  }

  /** Bind a UDP port; throws a RangeError if the port is invalid or taken. */
  udpBind(port: number, handler: UdpHandler): UdpSocket {
    if (!Number.isInteger(port) || port <= 0 || port > 0xffff) {
      throw new RangeError(`UDP port ${port} is not in 1..65535`);
    }
    if (this.#sockets.has(port)) throw new RangeError(`UDP port ${port} is already bound`);
    const socket = new UdpPort(port, handler, this, (p) => {
      this.#sockets.delete(p);
      this.#lastPort = -1;
    });
    this.#sockets.set(port, socket);
    return socket;
  }

  /**
   * Give every frame still waiting for ARP resolution back to the pool (counted as `txDropped`):
   * call it before closing the NIC when the pool outlives it (a pool shared between NICs).
   * Returns how many frames were freed.
   */
  releaseHeldFrames(): number {
    const freed = this.arp.expire(Number.POSITIVE_INFINITY);
    this.stats.txDropped += freed;
    return freed;
  }

  /**
   * Receive one batch, answer what needs answering, deliver UDP, expire ARP waits, and transmit.
   * Returns the number of frames received (0 means idle). An exception thrown by a UDP handler
   * propagates after the batch's buffers are returned to the pool.
   */
  poll(): number {
    const rx = this.#rx;
    const pool = this.#pool;
    const n = this.#dev.rxBatch(rx, RX_BATCH);
    if (n > 0 || this.arp.unresolved > 0) this.#time = this.#now();
    this.stats.rxFrames += n;
    this.#inPoll = true;
    let i = 0;
    try {
      for (; i < n; i++) {
        const buf = rx[i];
        this.#receive(buf.data, buf.length);
        pool.free(buf);
      }
    } finally {
      for (; i < n; i++) pool.free(rx[i]); // only after a handler threw
      this.#inPoll = false;
    }
    if (this.arp.unresolved > 0) {
      const expired = this.arp.expire(this.#time);
      this.stats.arpTimeout += expired;
      this.stats.txDropped += expired;
    }
    this.#flush();
    return n;
  }

  /**
   * Send a UDP datagram from `srcPort`, copying `data[offset, offset+length)` into a packet
   * buffer. Returns true when it was queued (or is waiting for ARP), false when it was dropped
   * for want of a buffer, a route or room in the ARP queue (see {@link NetStackStats}). Throws a
   * RangeError, counted in `txTooBig` or `txBadDestination`, for a datagram that can never be sent:
   * a payload larger than MTU − 28 bytes (the stack sets DF and does not fragment: over Ethernet
   * each datagram fits one frame, as every datagram it receives does), a destination in
   * 0.0.0.0/8, 127.0.0.0/8, 240.0.0.0/4 (but 255.255.255.255) or our own address, a byte range
   * outside `data`, or a port outside 0..65535 (1..65535 for the destination).
   */
  sendUdp(
    srcPort: number,
    dstIp: number,
    dstPort: number,
    data: Uint8Array,
    offset = 0,
    length: number = data.length,
  ): boolean {
    if (
      (offset | 0) !== offset || (length | 0) !== length || offset < 0 || length < 0 ||
      offset + length > data.length
    ) {
      throw udpRangeError(offset, length, data.length);
    }
    if ((srcPort & 0xffff) !== srcPort || (dstPort & 0xffff) !== dstPort || dstPort === 0) {
      throw udpPortError(srcPort, dstPort);
    }
    if (length > this.#maxUdpPayload) {
      this.#txDrop("txTooBig");
      throw udpTooBigError(length, this.#maxUdpPayload, this.mtu);
    }
    const dst = dstIp | 0;
    if (
      dst === this.#addr || !(isUnicastHostAddress(dst) || dst === -1 || isMulticastAddress(dst))
    ) {
      this.#txDrop("txBadDestination");
      throw udpDestinationError(dst);
    }
    const buf = this.#pool.alloc();
    if (buf === undefined) {
      this.#txDrop("txNoBuffer");
      return false;
    }
    const u = buf.data.byteOffset + ETH_HEADER_LENGTH + IPV4_MIN_HEADER;
    const udpLength = UDP_HEADER_LENGTH + length;
    // The checksum: the header's words from their values, the payload's summed while copied.
    const from = data === this.#current ? this.#mem : memoryOf(data.buffer);
    const payloadSum = this.#mem.copySum(
      u + UDP_HEADER_LENGTH,
      from,
      data.byteOffset + offset,
      length,
    );
    const sum = payloadSum + srcPort + dstPort + udpLength +
      udpPseudoHeaderSum(this.#addr, dst, udpLength);
    const view = this.#view;
    view.setInt32(u + UDP_SRC_PORT, (srcPort << 16) | dstPort);
    view.setInt32(u + UDP_LENGTH, (udpLength << 16) | (finishChecksum(sum) || 0xffff));
    if (!this.#inPoll) this.#time = this.#now();
    return this.#sendIp(buf, dst, IPPROTO_UDP, udpLength);
  }

  #receive(b: Uint8Array, len: number): void {
    this.#current = b;
    if (len < ETH_HEADER_LENGTH || len > b.length) {
      this.stats.malformed++;
      return;
    }
    if (len > this.#maxFrame) {
      this.stats.rxOversize++;
      return;
    }
    const view = this.#view;
    const p = b.byteOffset;
    const group = isGroupMac(b, 0);
    if (!group && (view.getInt32(p) !== this.#macHead || view.getUint16(p + 4) !== this.#macTail)) {
      this.stats.notForUs++;
      return;
    }
    const type = view.getUint16(p + ETH_TYPE);
    if (type === ETHERTYPE_IPV4) this.#ipIn(b, p + ETH_HEADER_LENGTH, len, group);
    else if (type === ETHERTYPE_ARP) this.#arpIn(b, len);
    else this.stats.unknownProtocol++;
  }

  /** True when `src` (int32) names one host other than us (RFC 1122 §3.2.1.3). */
  #isHostSource(src: number): boolean {
    return isUnicastHostAddress(src) && src !== this.#addr && src !== this.#directed;
  }

  /** An IPv4 datagram at position `ip` of pool memory (offset 14 of frame `b`). */
  #ipIn(b: Uint8Array, ip: number, len: number, groupMac: boolean): void {
    const verdict = checkIpv4Layout(b, ETH_HEADER_LENGTH, len - ETH_HEADER_LENGTH, this.mtu);
    if (verdict !== "ok") {
      if (verdict === "too-long") this.stats.rxOversize++;
      else this.stats.malformed++;
      return;
    }
    const view = this.#view;
    const hl = (b[ETH_HEADER_LENGTH + IPV4_VERSION_IHL] & 0xf) << 2;
    if (this.#mem.sum(ip, hl) !== 0xffff) {
      this.stats.badChecksum++;
      return;
    }
    if (isIpv4Fragment(b, ETH_HEADER_LENGTH)) {
      this.stats.fragments++;
      return;
    }
    const dst = view.getInt32(ip + IPV4_DST);
    let broadcast = false;
    if (dst !== this.#addr) {
      if (dst !== -1 && dst !== this.#directed) {
        this.stats.notForUs++;
        return;
      }
      broadcast = true;
    } else if (groupMac) {
      this.stats.unicastToGroupMac++;
      return;
    }
    const src = view.getInt32(ip + IPV4_SRC);
    if (!this.#isHostSource(src)) {
      this.stats.badSource++;
      return;
    }
    const at = ip + hl;
    const length = view.getUint16(ip + IPV4_TOTAL_LENGTH) - hl;
    const proto = view.getUint8(ip + IPV4_PROTOCOL);
    if (proto === IPPROTO_UDP) this.#udpIn(b, src, dst, at, length);
    else if (proto !== IPPROTO_ICMP) this.stats.unknownProtocol++;
    else if (broadcast) this.stats.icmpBroadcast++;
    else this.#icmpIn(src, at, length);
  }

  /** An ICMP message at position `at` of pool memory. */
  #icmpIn(src: number, at: number, length: number): void {
    if (length < ICMP_HEADER_LENGTH) {
      this.stats.malformed++;
      return;
    }
    if (this.#mem.sum(at, length) !== 0xffff) {
      this.stats.badChecksum++;
      return;
    }
    const view = this.#view;
    if (view.getUint16(at + ICMP_TYPE) !== ICMP_ECHO_REQUEST << 8) {
      this.stats.unknownProtocol++;
      return;
    }
    const buf = this.#pool.alloc();
    if (buf === undefined) {
      this.#txDrop("txNoBuffer");
      return;
    }
    // The request fits the MTU, so the reply fits the buffer.
    const o = buf.data.byteOffset + ETH_HEADER_LENGTH + IPV4_MIN_HEADER;
    copyBetween(this.#mem, o, this.#mem, at, length);
    const sum = view.getUint16(o + ICMP_CHECKSUM);
    view.setInt32(
      o + ICMP_TYPE,
      (ICMP_ECHO_REPLY << 24) | updateChecksum(sum, ICMP_ECHO_REQUEST << 8, ICMP_ECHO_REPLY << 8),
    );
    this.stats.echoReplies++;
    this.#sendIp(buf, src, IPPROTO_ICMP, length);
  }

  /** A UDP datagram at position `at` of pool memory, in frame `b`. */
  #udpIn(b: Uint8Array, src: number, dst: number, at: number, length: number): void {
    if (length < UDP_HEADER_LENGTH) {
      this.stats.malformed++;
      return;
    }
    const view = this.#view;
    const ports = view.getInt32(at + UDP_SRC_PORT);
    const udpLength = view.getUint16(at + UDP_LENGTH);
    if (udpLength < UDP_HEADER_LENGTH || udpLength > length) {
      this.stats.malformed++;
      return;
    }
    // Over the pseudo-header and a datagram with its checksum in place, the sum folds to 0xffff.
    if (
      view.getUint16(at + UDP_CHECKSUM) !== 0 &&
      finishChecksum(this.#mem.sum(at, udpLength) + udpPseudoHeaderSum(src, dst, udpLength)) !== 0
    ) {
      this.stats.badChecksum++;
      return;
    }
    const port = ports & 0xffff;
    let socket = this.#lastSocket!;
    if (port !== this.#lastPort) {
      const bound = this.#sockets.get(port);
      if (bound === undefined) {
        this.stats.udpNoSocket++;
        return;
      }
      socket = this.#lastSocket = bound;
      this.#lastPort = port;
    }
    this.stats.udpDelivered++;
    socket.received++;
    socket.handler(
      b,
      at - b.byteOffset + UDP_HEADER_LENGTH,
      udpLength - UDP_HEADER_LENGTH,
      src >>> 0,
      ports >>> 16,
    );
  }

  #arpIn(b: Uint8Array, len: number): void {
    const a = ETH_HEADER_LENGTH;
    if (!isEthernetIpv4Arp(b, a, len - a)) {
      this.stats.malformed++;
      return;
    }
    const op = readU16(b, a + ARP_OPER);
    if (op !== ARP_REQUEST && op !== ARP_REPLY) {
      this.stats.malformed++;
      return;
    }
    const sha = a + ARP_SHA;
    if (isGroupMac(b, sha) || isZeroMac(b, sha) || macEquals(b, sha, this.#mac)) {
      this.stats.arpBadSender++;
      return;
    }
    const spa = readI32(b, a + ARP_SPA);
    const forUs = readI32(b, a + ARP_TPA) === this.#addr;
    if (spa === 0) {
      // RFC 5227 §2.1.1 probe: someone checks whether our address is in use. Say it is (as Linux
      // does); a sender without an address is never learned.
      if (op !== ARP_REQUEST) this.stats.arpBadSender++;
      else if (forUs) this.#arpSend(ARP_REPLY, b, sha, 0);
      else this.stats.notForUs++;
      return;
    }
    if (!this.#isHostSource(spa)) {
      this.stats.arpBadSender++;
      return;
    }
    // RFC 826: update a known sender; add it when the packet is for us. Only on-link neighbours
    // are kept: an off-link one is never a next hop.
    const known = this.arp.has(spa);
    if ((known || forUs) && ((spa ^ this.#addr) & this.#mask) === 0) {
      const slot = this.arp.learn(spa, b, sha, this.#time);
      const macs = this.arp.macs;
      for (let f = this.arp.takeHeld(slot); f !== undefined; f = this.arp.takeHeld(slot)) {
        copyMac(f.data, 0, macs, slot * 6);
        this.#queue(f);
      }
    }
    if (op === ARP_REQUEST && forUs) this.#arpSend(ARP_REPLY, b, sha, spa);
    else if (!forUs && !known) this.stats.notForUs++;
  }

  /**
   * Send an ARP packet to the station whose MAC is `mac[macAt..+6)`: a reply (its MAC is also
   * the target hardware address) or a request for `targetIp` (broadcast or a unicast poll).
   */
  #arpSend(op: number, mac: Uint8Array, macAt: number, targetIp: number): void {
    const buf = this.#pool.alloc();
    if (buf === undefined) {
      this.#txDrop("txNoBuffer");
      return;
    }
    const b = buf.data;
    copyMac(b, 0, mac, macAt);
    copyMac(b, ETH_SRC, this.#mac, 0);
    writeU16(b, ETH_TYPE, ETHERTYPE_ARP);
    const target = op === ARP_REQUEST ? undefined : mac;
    writeArp(b, ETH_HEADER_LENGTH, op, this.#mac, this.#addr, target, macAt, targetIp);
    buf.length = padFrame(b, ETH_HEADER_LENGTH + ARP_LENGTH);
    if (op === ARP_REQUEST) this.stats.arpRequests++;
    else this.stats.arpReplies++;
    this.#queue(buf);
  }

  /**
   * Fill the IPv4 and Ethernet headers of a frame whose L4 payload is in place, resolve the next
   * hop, and queue it (or hold it for ARP). False when it was dropped.
   */
  #sendIp(buf: PacketBuffer, dst: number, protocol: number, payloadLength: number): boolean {
    const b = buf.data;
    const view = this.#view;
    const p = b.byteOffset;
    const id = this.#ipId;
    this.#ipId = (id + 1) & 0xffff;
    writeIpv4Header(
      view,
      p + ETH_HEADER_LENGTH,
      id,
      this.#ttl,
      protocol,
      this.#addr,
      dst,
      payloadLength,
    );
    buf.length = padFrame(b, ETH_HEADER_LENGTH + IPV4_MIN_HEADER + payloadLength);
    view.setInt32(p + ETH_SRC, this.#macHead);
    view.setInt32(p + ETH_SRC + 4, (this.#macTail << 16) | ETHERTYPE_IPV4);
    if (dst === -1 || dst === this.#directed) {
      copyMac(b, 0, BROADCAST_MAC, 0);
      this.#queue(buf);
      return true;
    }
    if (isMulticastAddress(dst)) {
      writeMulticastMac(b, 0, dst);
      this.#queue(buf);
      return true;
    }
    let hop = dst;
    if (((dst ^ this.#addr) & this.#mask) !== 0) {
      if (!this.#hasGateway) {
        this.#drop(buf, "noRoute");
        return false;
      }
      hop = this.#gateway;
    }
    const arp = this.arp;
    const now = this.#time;
    const slot = arp.resolve(hop, now);
    if (slot >= 0) {
      if (arp.pollDue(slot, now)) this.#arpSend(ARP_REQUEST, arp.macs, slot * 6, hop);
      view.setInt32(p, arp.macHead(slot));
      view.setUint16(p + 4, arp.macTail(slot));
      this.#queue(buf);
      return true;
    }
    if (this.#pool.available < this.#holdReserve) {
      this.#drop(buf, "arpQueueFull");
      return false;
    }
    const held = arp.hold(hop, buf, now);
    if (held === ArpHold.NEW) this.#arpSend(ARP_REQUEST, BROADCAST_MAC, 0, hop);
    else if (held === ArpHold.REPLACED) this.#txDrop("arpQueueFull");
    else if (held === ArpHold.REFUSED) {
      this.#drop(buf, "arpQueueFull");
      return false;
    }
    return true;
  }

  #queue(buf: PacketBuffer): void {
    this.#tx[this.#txCount++] = buf;
    if (this.#txCount === RX_BATCH) this.#flush();
  }

  #flush(): void {
    const n = this.#txCount;
    if (n === 0) return;
    this.#txCount = 0;
    const sent = this.#dev.txBatch(this.#tx, n);
    this.stats.txFrames += sent;
    for (let i = sent; i < n; i++) this.#drop(this.#tx[i], "txRingFull");
  }

  #drop(buf: PacketBuffer, reason: TxDropReason): void {
    this.#txDrop(reason);
    this.#pool.free(buf);
  }

  #txDrop(reason: TxDropReason): void {
    this.stats[reason]++;
    this.stats.txDropped++;
  }
}
