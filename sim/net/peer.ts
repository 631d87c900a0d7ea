/**
 * A simulated host on an {@link EthernetSegment}: the other end of the wire for a NIC under test.
 * It answers ARP and ICMP echo, sends and receives UDP, and can ping. Written from the RFCs
 * (826, 791, 792, 768) independently of the project's own stack in net/, so the two check each
 * other.
 *
 * @module
 */

import type { EthernetSegment, SegmentLink, SegmentPort } from "./segment.ts";

const ETH_HLEN = 14;
const TYPE_IPV4 = 0x0800;
const TYPE_ARP = 0x0806;
const IP_HLEN = 20;
const PROTO_ICMP = 1;
const PROTO_UDP = 17;
const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;
const MIN_FRAME = 60;

/** A received UDP datagram. */
export interface PeerDatagram {
  /** Sender address (u32). */
  srcIp: number;
  /** Sender port. */
  srcPort: number;
  /** Our port. */
  dstPort: number;
  /** Payload (a copy). */
  data: Uint8Array;
}

/** Options of a {@link SimPeer}. */
export interface SimPeerOptions {
  /** Host name for traces. */
  name: string;
  /** MAC address (6 bytes). */
  mac: Uint8Array;
  /** IPv4 address (u32). */
  ip: number;
}

/** The simulated host. */
export class SimPeer implements SegmentPort {
  /** Name for traces. */
  readonly name: string;
  /** Our MAC. */
  readonly mac: Uint8Array;
  /** Our IPv4 address. */
  readonly ip: number;
  /** Datagrams for ports without a handler. */
  readonly unclaimed: PeerDatagram[] = [];
  /** Echo replies received: `${ip}:${id}:${seq}`. */
  readonly echoReplies: string[] = [];
  /** Counters. */
  readonly counters = { rx: 0, tx: 0, arpAnswered: 0, echoAnswered: 0, malformed: 0 };
  readonly #link: SegmentLink;
  readonly #arp = new Map<number, Uint8Array>();
  readonly #waiting = new Map<number, Uint8Array[]>();
  readonly #handlers = new Map<number, (d: PeerDatagram) => void>();
  #ipId = 1;

  /** Plug a new host into `segment`. */
  constructor(segment: EthernetSegment, options: SimPeerOptions) {
    this.name = options.name;
    this.mac = options.mac.slice();
    this.ip = options.ip >>> 0;
    this.#link = segment.attach(this);
  }

  /** Handle datagrams to `port` (otherwise they are kept in {@link unclaimed}). */
  onUdp(port: number, handler: (d: PeerDatagram) => void): void {
    this.#handlers.set(port, handler);
  }

  /** Send a UDP datagram (resolving the destination with ARP first if needed). */
  sendUdp(dstIp: number, dstPort: number, srcPort: number, data: Uint8Array): void {
    const udp = new Uint8Array(8 + data.length);
    put16(udp, 0, srcPort);
    put16(udp, 2, dstPort);
    put16(udp, 4, udp.length);
    udp.set(data, 8);
    let sum = pseudoSum(this.ip, dstIp >>> 0, PROTO_UDP, udp.length);
    sum = addWords(udp, 0, udp.length, sum);
    const c = fold(sum);
    put16(udp, 6, c === 0 ? 0xffff : c);
    this.#sendIp(dstIp >>> 0, PROTO_UDP, udp);
  }

  /** Send an ICMP echo request; replies land in {@link echoReplies}. */
  ping(dstIp: number, id: number, seq: number, data: Uint8Array = new Uint8Array(32)): void {
    const m = new Uint8Array(8 + data.length);
    m[0] = ICMP_ECHO_REQUEST;
    put16(m, 4, id);
    put16(m, 6, seq);
    m.set(data, 8);
    put16(m, 2, fold(addWords(m, 0, m.length, 0)));
    this.#sendIp(dstIp >>> 0, PROTO_ICMP, m);
  }

  /** A frame from the segment. */
  receive(frame: Uint8Array): void {
    this.counters.rx++;
    if (frame.length < ETH_HLEN) return void this.counters.malformed++;
    const toUs = eq(frame, 0, this.mac) || (frame[0] & 1) === 1;
    if (!toUs) return;
    const type = get16(frame, 12);
    if (type === TYPE_ARP) this.#arpIn(frame);
    else if (type === TYPE_IPV4) this.#ipIn(frame);
  }

  #arpIn(f: Uint8Array): void {
    if (f.length < ETH_HLEN + 28 || get16(f, 14) !== 1 || get16(f, 16) !== TYPE_IPV4) {
      return void this.counters.malformed++;
    }
    const op = get16(f, 20);
    const sha = f.slice(22, 28);
    const spa = get32(f, 28);
    const tpa = get32(f, 38);
    this.#arp.set(spa, sha);
    const queued = this.#waiting.get(spa);
    if (queued) {
      this.#waiting.delete(spa);
      for (const frame of queued) this.#emit(sha, frame);
    }
    if (op === 1 && tpa === this.ip) {
      this.counters.arpAnswered++;
      this.#emit(sha, this.#arpFrame(2, sha, spa));
    }
  }

  #ipIn(f: Uint8Array): void {
    if (f.length < ETH_HLEN + IP_HLEN || f[14] >>> 4 !== 4) return void this.counters.malformed++;
    const hl = (f[14] & 0xf) * 4;
    const total = get16(f, 16);
    if (hl < IP_HLEN || total < hl || ETH_HLEN + total > f.length) {
      return void this.counters.malformed++;
    }
    if (fold(addWords(f, 14, hl, 0)) !== 0) return void this.counters.malformed++;
    if (get32(f, 30) !== this.ip) return;
    const src = get32(f, 26);
    const p = ETH_HLEN + hl;
    const len = total - hl;
    if (f[23] === PROTO_ICMP && len >= 8) {
      if (f[p] === ICMP_ECHO_REQUEST) {
        const m = f.slice(p, p + len);
        m[0] = ICMP_ECHO_REPLY;
        put16(m, 2, 0);
        put16(m, 2, fold(addWords(m, 0, m.length, 0)));
        this.counters.echoAnswered++;
        this.#sendIp(src, PROTO_ICMP, m);
      } else if (f[p] === ICMP_ECHO_REPLY) {
        this.echoReplies.push(`${src}:${get16(f, p + 4)}:${get16(f, p + 6)}`);
      }
    } else if (f[23] === PROTO_UDP && len >= 8) {
      const ulen = get16(f, p + 4);
      if (ulen < 8 || ulen > len) return void this.counters.malformed++;
      const d: PeerDatagram = {
        srcIp: src,
        srcPort: get16(f, p),
        dstPort: get16(f, p + 2),
        data: f.slice(p + 8, p + ulen),
      };
      const h = this.#handlers.get(d.dstPort);
      if (h) h(d);
      else this.unclaimed.push(d);
    }
  }

  #sendIp(dst: number, proto: number, payload: Uint8Array): void {
    const f = new Uint8Array(Math.max(MIN_FRAME, ETH_HLEN + IP_HLEN + payload.length));
    put16(f, 12, TYPE_IPV4);
    f[14] = 0x45;
    put16(f, 16, IP_HLEN + payload.length);
    put16(f, 18, this.#ipId++ & 0xffff);
    f[22] = 64;
    f[23] = proto;
    put32(f, 26, this.ip);
    put32(f, 30, dst);
    put16(f, 24, fold(addWords(f, 14, IP_HLEN, 0)));
    f.set(payload, ETH_HLEN + IP_HLEN);
    const mac = this.#arp.get(dst);
    if (mac) return this.#emit(mac, f);
    const q = this.#waiting.get(dst);
    if (q) q.push(f);
    else {
      this.#waiting.set(dst, [f]);
      this.#emit(new Uint8Array(6).fill(0xff), this.#arpFrame(1, new Uint8Array(6), dst));
    }
  }

  #arpFrame(op: number, tha: Uint8Array, tpa: number): Uint8Array {
    const f = new Uint8Array(MIN_FRAME);
    put16(f, 12, TYPE_ARP);
    put16(f, 14, 1);
    put16(f, 16, TYPE_IPV4);
    f[18] = 6;
    f[19] = 4;
    put16(f, 20, op);
    f.set(this.mac, 22);
    put32(f, 28, this.ip);
    f.set(tha, 32);
    put32(f, 38, tpa);
    return f;
  }

  #emit(dstMac: Uint8Array, frame: Uint8Array): void {
    frame.set(dstMac, 0);
    frame.set(this.mac, 6);
    this.counters.tx++;
    this.#link.send(frame);
  }
}

function get16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}
function get32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}
function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, v >>> 16);
  put16(b, at + 2, v & 0xffff);
}
function eq(b: Uint8Array, at: number, mac: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (b[at + i] !== mac[i]) return false;
  return true;
}
function addWords(b: Uint8Array, at: number, len: number, sum: number): number {
  let i = 0;
  for (; i + 1 < len; i += 2) sum += get16(b, at + i);
  if (i < len) sum += b[at + i] << 8;
  return sum;
}
function pseudoSum(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}
