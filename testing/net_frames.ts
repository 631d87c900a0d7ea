/**
 * Builds the frames a neighbour on the wire would send to the stack under test: Ethernet II,
 * ARP, IPv4 with UDP or ICMP echo. Written from the RFCs (826, 791, 792, 768, 1071) with its own
 * checksum, independently of net/, so a shared misunderstanding cannot pass unnoticed. Any field
 * can be overridden, which is how the hostile-neighbour tests forge their frames.
 *
 * @module
 */

/** A station on the wire. */
export interface Station {
  /** MAC address (6 bytes). */
  mac: Uint8Array;
  /** IPv4 address (u32). */
  ip: number;
}

/** Per-frame overrides of the builder's defaults (the peer sends to the host). */
export interface FrameOverrides {
  /** Ethernet destination (default: the host's MAC). */
  dstMac?: Uint8Array;
  /** Ethernet source (default: the peer's MAC). */
  srcMac?: Uint8Array;
  /** IPv4 source (default: the peer's address). */
  src?: number;
  /** IPv4 destination (default: the host's address). */
  dst?: number;
  /** IPv4 identification (default 0x1234). */
  id?: number;
}

/** ARP fields (RFC 826); defaults make a request from the peer for the host's address. */
export interface ArpFields {
  /** 1 request, 2 reply. */
  op?: number;
  /** Sender hardware address (default: the peer's MAC). */
  sha?: Uint8Array;
  /** Sender protocol address (default: the peer's address). */
  spa?: number;
  /** Target hardware address (default: zeros). */
  tha?: Uint8Array;
  /** Target protocol address (default: the host's address). */
  tpa?: number;
  /** Ethernet destination (default: broadcast). */
  dstMac?: Uint8Array;
  /** Ethernet source (default: `sha`). */
  srcMac?: Uint8Array;
}

/** ff:ff:ff:ff:ff:ff. */
export const BROADCAST: Uint8Array = new Uint8Array(6).fill(0xff);

/** Big-endian u16 store. */
export function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

/** Big-endian u32 store. */
export function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, v >>> 16);
  put16(b, at + 2, v & 0xffff);
}

/** RFC 1071 checksum of `b[at, at+len)` with an initial 32-bit sum. */
export function checksum(b: Uint8Array, at: number, len: number, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < len; i += 2) sum += (b[at + i] << 8) | (i + 1 < len ? b[at + i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** Frames from `peer` to `host`. */
export class FrameBuilder {
  /** The builder for frames `peer` sends to `host`. */
  constructor(readonly host: Station, readonly peer: Station) {}

  /** An Ethernet II frame with room for `payload` bytes after the header. */
  ethernet(type: number, payload: number, dstMac: Uint8Array, srcMac: Uint8Array): Uint8Array {
    const f = new Uint8Array(14 + payload);
    f.set(dstMac, 0);
    f.set(srcMac, 6);
    put16(f, 12, type);
    return f;
  }

  /** An IPv4 datagram (20-byte header, DF clear, TTL 64) carrying `payload`. */
  ipv4(proto: number, payload: Uint8Array, o: FrameOverrides = {}): Uint8Array {
    const f = this.ethernet(
      0x0800,
      20 + payload.length,
      o.dstMac ?? this.host.mac,
      o.srcMac ?? this.peer.mac,
    );
    f[14] = 0x45;
    put16(f, 16, 20 + payload.length);
    put16(f, 18, o.id ?? 0x1234);
    f[22] = 64;
    f[23] = proto;
    put32(f, 26, o.src ?? this.peer.ip);
    put32(f, 30, o.dst ?? this.host.ip);
    put16(f, 24, checksum(f, 14, 20));
    f.set(payload, 34);
    return f;
  }

  /** A UDP datagram with a valid checksum. */
  udp(srcPort: number, dstPort: number, data: Uint8Array, o: FrameOverrides = {}): Uint8Array {
    const u = new Uint8Array(8 + data.length);
    put16(u, 0, srcPort);
    put16(u, 2, dstPort);
    put16(u, 4, u.length);
    u.set(data, 8);
    const src = o.src ?? this.peer.ip;
    const dst = o.dst ?? this.host.ip;
    const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + 17 + u.length;
    put16(u, 6, checksum(u, 0, u.length, pseudo) || 0xffff);
    return this.ipv4(17, u, o);
  }

  /** An ICMP echo request. */
  echoRequest(id: number, seq: number, data: Uint8Array, o: FrameOverrides = {}): Uint8Array {
    const m = new Uint8Array(8 + data.length);
    m[0] = 8;
    put16(m, 4, id);
    put16(m, 6, seq);
    m.set(data, 8);
    put16(m, 2, checksum(m, 0, m.length));
    return this.ipv4(1, m, o);
  }

  /** An ARP packet (60-byte frame, padded). */
  arp(a: ArpFields = {}): Uint8Array {
    const sha = a.sha ?? this.peer.mac;
    const f = this.ethernet(0x0806, 46, a.dstMac ?? BROADCAST, a.srcMac ?? sha);
    put16(f, 14, 1);
    put16(f, 16, 0x0800);
    f[18] = 6;
    f[19] = 4;
    put16(f, 20, a.op ?? 1);
    f.set(sha, 22);
    put32(f, 28, a.spa ?? this.peer.ip);
    f.set(a.tha ?? new Uint8Array(6), 32);
    put32(f, 38, a.tpa ?? this.host.ip);
    return f;
  }
}

/** A locally administered unicast MAC 02:00:00:xx:xx:xx from a number (distinct per `n`). */
export function macOf(n: number): Uint8Array {
  return new Uint8Array([0x02, 0, 0, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}
