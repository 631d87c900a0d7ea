/**
 * A simulated host on an {@link EthernetSegment}: the other end of the wire for a NIC under test.
 * It answers ARP and ICMP echo, sends and receives UDP, and can ping. Written from the RFCs
 * (826, 791, 792, 768) independently of the project's own stack in net/, so the two check each
 * other.
 *
 * @module
 */

import type { EthernetSegment, SegmentLink, SegmentPort } from "./segment.ts";
import { ByteArena, type ByteViews, byteViews, copyBytes, ViewCache } from "../bytes.ts";

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

/**
 * A received datagram whose payload was copied into an arena block; the view of it is made when
 * `data` is first read (so a handler that ignores the payload costs no typed array).
 */
class ReceivedDatagram implements PeerDatagram {
  #data: Uint8Array | undefined;

  constructor(
    readonly srcIp: number,
    readonly srcPort: number,
    readonly dstPort: number,
    private readonly block: Uint8Array,
    private readonly at: number,
    private readonly length: number,
  ) {}

  get data(): Uint8Array {
    return this.#data ??= this.block.subarray(this.at, this.at + this.length);
  }

  set data(value: Uint8Array) {
    this.#data = value;
  }
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

/** Initial room for the frame being built (grown for a longer one, which the segment drops). */
const OUT_BYTES = 2048;

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
  /** The frame being built (the segment copies it when it is sent). */
  #out = new Uint8Array(OUT_BYTES);
  #outViews: ByteViews = byteViews(this.#out);
  /** Views of the buffers frames arrive in. */
  readonly #frames = new ViewCache();
  /** Where received payloads are copied. */
  readonly #copies = new ByteArena();
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
    const at = ETH_HLEN + IP_HLEN;
    const len = 8 + data.length;
    const u = this.#room(at + len);
    put16(u, at, srcPort);
    put16(u, at + 2, dstPort);
    put16(u, at + 4, len);
    put16(u, at + 6, 0);
    u.set(data, at + 8);
    let sum = pseudoSum(this.ip, dstIp >>> 0, PROTO_UDP, len);
    sum = addWords(this.#outViews, at, len, sum);
    const c = fold(sum);
    put16(u, at + 6, c === 0 ? 0xffff : c);
    this.#sendIp(dstIp >>> 0, PROTO_UDP, len);
  }

  /** Send an ICMP echo request; replies land in {@link echoReplies}. */
  ping(dstIp: number, id: number, seq: number, data: Uint8Array = new Uint8Array(32)): void {
    const at = ETH_HLEN + IP_HLEN;
    const len = 8 + data.length;
    const m = this.#room(at + len);
    m.fill(0, at, at + 8);
    m[at] = ICMP_ECHO_REQUEST;
    put16(m, at + 4, id);
    put16(m, at + 6, seq);
    m.set(data, at + 8);
    put16(m, at + 2, fold(addWords(this.#outViews, at, len, 0)));
    this.#sendIp(dstIp >>> 0, PROTO_ICMP, len);
  }

  /** A frame from the segment. */
  receive(frame: Uint8Array): void {
    this.receiveFrom(frame, 0, frame.length);
  }

  /** A frame from the segment: `length` bytes of `buf` from `offset`. */
  receiveFrom(buf: Uint8Array, offset: number, length: number): void {
    this.counters.rx++;
    if (length < ETH_HLEN) return void this.counters.malformed++;
    const toUs = eq(buf, offset, this.mac) || (buf[offset] & 1) === 1;
    if (!toUs) return;
    const type = get16(buf, offset + 12);
    if (type === TYPE_ARP) this.#arpIn(buf, offset, length);
    else if (type === TYPE_IPV4) this.#ipIn(buf, offset, length);
  }

  #arpIn(f: Uint8Array, o: number, length: number): void {
    if (length < ETH_HLEN + 28 || get16(f, o + 14) !== 1 || get16(f, o + 16) !== TYPE_IPV4) {
      return void this.counters.malformed++;
    }
    const op = get16(f, o + 20);
    const spa = get32(f, o + 28);
    const tpa = get32(f, o + 38);
    let sha = this.#arp.get(spa);
    if (sha === undefined || !eq(f, o + 22, sha)) {
      sha = f.slice(o + 22, o + 28);
      this.#arp.set(spa, sha);
    }
    const queued = this.#waiting.get(spa);
    if (queued) {
      this.#waiting.delete(spa);
      for (const frame of queued) this.#emit(sha, frame, frame.length);
    }
    if (op === 1 && tpa === this.ip) {
      this.counters.arpAnswered++;
      this.#emit(sha, this.#out, this.#arpFrame(2, sha, spa));
    }
  }

  #ipIn(f: Uint8Array, o: number, length: number): void {
    if (length < ETH_HLEN + IP_HLEN || f[o + 14] >>> 4 !== 4) {
      return void this.counters.malformed++;
    }
    const hl = (f[o + 14] & 0xf) * 4;
    const total = get16(f, o + 16);
    if (hl < IP_HLEN || total < hl || ETH_HLEN + total > length) {
      return void this.counters.malformed++;
    }
    const frame = this.#frames.of(f);
    if (fold(addWords(frame, o + 14, hl, 0)) !== 0) return void this.counters.malformed++;
    if (get32(f, o + 30) !== this.ip) return;
    const src = get32(f, o + 26);
    const p = o + ETH_HLEN + hl;
    const len = total - hl;
    if (f[o + 23] === PROTO_ICMP && len >= 8) {
      if (f[p] === ICMP_ECHO_REQUEST) {
        const at = ETH_HLEN + IP_HLEN;
        const m = this.#room(at + len);
        copyBytes(frame, p, this.#outViews, at, len);
        m[at] = ICMP_ECHO_REPLY;
        put16(m, at + 2, 0);
        put16(m, at + 2, fold(addWords(this.#outViews, at, len, 0)));
        this.counters.echoAnswered++;
        this.#sendIp(src, PROTO_ICMP, len);
      } else if (f[p] === ICMP_ECHO_REPLY) {
        this.echoReplies.push(`${src}:${get16(f, p + 4)}:${get16(f, p + 6)}`);
      }
    } else if (f[o + 23] === PROTO_UDP && len >= 8) {
      const ulen = get16(f, p + 4);
      if (ulen < 8 || ulen > len) return void this.counters.malformed++;
      const at = this.#copies.put(frame, p + 8, ulen - 8);
      const d = new ReceivedDatagram(
        src,
        get16(f, p),
        get16(f, p + 2),
        this.#copies.block,
        at,
        ulen - 8,
      );
      const h = this.#handlers.get(d.dstPort);
      if (h) h(d);
      else this.unclaimed.push(d);
    }
  }

  /**
   * Put the Ethernet and IPv4 headers around the `payloadLength` bytes already in the frame
   * being built (after both headers) and send it, or queue a copy until ARP answers.
   */
  #sendIp(dst: number, proto: number, payloadLength: number): void {
    const end = ETH_HLEN + IP_HLEN + payloadLength;
    const length = Math.max(MIN_FRAME, end);
    const f = this.#room(length);
    for (let i = 12; i < ETH_HLEN + IP_HLEN; i++) f[i] = 0;
    for (let i = end; i < length; i++) f[i] = 0;
    put16(f, 12, TYPE_IPV4);
    f[14] = 0x45;
    put16(f, 16, IP_HLEN + payloadLength);
    put16(f, 18, this.#ipId++ & 0xffff);
    f[22] = 64;
    f[23] = proto;
    put32(f, 26, this.ip);
    put32(f, 30, dst);
    put16(f, 24, fold(addWords(this.#outViews, 14, IP_HLEN, 0)));
    const mac = this.#arp.get(dst);
    if (mac) return this.#emit(mac, f, length);
    const frame = f.slice(0, length);
    const q = this.#waiting.get(dst);
    if (q) q.push(frame);
    else {
      this.#waiting.set(dst, [frame]);
      this.#emit(BROADCAST, f, this.#arpFrame(1, NO_MAC, dst));
    }
  }

  /** The frame being built, grown to hold `bytes` (keeping its contents). */
  #room(bytes: number): Uint8Array {
    if (bytes > this.#out.length) {
      const bigger = new Uint8Array(bytes);
      bigger.set(this.#out);
      this.#out = bigger;
      this.#outViews = byteViews(bigger);
    }
    return this.#out;
  }

  /** Build an ARP frame in the frame being built; returns its length. */
  #arpFrame(op: number, tha: Uint8Array, tpa: number): number {
    const f = this.#out;
    f.fill(0, 0, MIN_FRAME);
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
    return MIN_FRAME;
  }

  #emit(dstMac: Uint8Array, frame: Uint8Array, length: number): void {
    for (let i = 0; i < 6; i++) {
      frame[i] = dstMac[i];
      frame[6 + i] = this.mac[i];
    }
    this.counters.tx++;
    this.#link.sendFrom(frame, 0, length);
  }
}

const BROADCAST = new Uint8Array(6).fill(0xff);
const NO_MAC = new Uint8Array(6);

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
/** Add the big-endian 16-bit words of `len` bytes at `at` to a one's-complement sum. */
function addWords(v: ByteViews, at: number, len: number, sum: number): number {
  const d = v.data;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const w = d.getUint32(at + i);
    sum += (w >>> 16) + (w & 0xffff);
  }
  for (; i + 1 < len; i += 2) sum += d.getUint16(at + i);
  if (i < len) sum += v.bytes[at + i] << 8;
  return sum;
}
function pseudoSum(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}
