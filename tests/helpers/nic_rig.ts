/**
 * A simulated machine with one Intel NIC model (igb or e1000e) opened through the simulated
 * kernel the way a driver opens it (core's openPciDevice: VFIO, the DMA space, BAR 0 as Mmio),
 * bus mastering on, plus a test port on the machine's Ethernet segment that records what the NIC
 * sends and can put frames on the wire. Frame builders compute their checksums here, not with
 * the model's code, so a wrong checksum in the model cannot pass unnoticed.
 */

import { openPciDevice, type PciDevice } from "../../core/pci_device.ts";
import type { Mmio } from "../../ffi/kernel.ts";
import { createMachine, type IommuModelName, type SimMachine } from "../../sim/machine.ts";
import type { SimTestContext } from "../../testing/mod.ts";
import type { E1000Device, E1000Model } from "../../sim/pci/e1000_device.ts";
import type { SegmentLink } from "../../sim/net/segment.ts";
import { Rng } from "./rng.ts";

/** Where the NIC sits. */
export const NIC_BDF = "0000:00:02.0";
/** The NIC's MAC (QEMU's first NIC). */
export const NIC_MAC = new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
/** The test port's MAC. */
export const PEER_MAC = new Uint8Array([0x02, 0x00, 0x00, 0x00, 0x00, 0x09]);
/** Broadcast. */
export const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/** Registers both parts have at the same offsets (82574 §10.2, 82576 §8), for the tests. */
export const E1000_TEST_REGS = {
  CTRL: 0x0000,
  STATUS: 0x0008,
  EERD: 0x0014,
  CTRL_EXT: 0x0018,
  MDIC: 0x0020,
  ICR: 0x00c0,
  ICS: 0x00c8,
  IMS: 0x00d0,
  IMC: 0x00d8,
  RCTL: 0x0100,
  TCTL: 0x0400,
  MPC: 0x4010,
  GPRC: 0x4074,
  GPTC: 0x4080,
  GORCL: 0x4088,
  GORCH: 0x408c,
  GOTCL: 0x4090,
  RNBC: 0x40a0,
  RUC: 0x40a4,
  TPR: 0x40d0,
  TPT: 0x40d4,
  RXCSUM: 0x5000,
  RFCTL: 0x5008,
  RAL0: 0x5400,
  RAH0: 0x5404,
  MRQC: 0x5818,
  RETA: 0x5c00,
  RSSRK: 0x5c80,
} as const;

/** The RSS key of Microsoft's verification suite ("Verifying the RSS Hash Calculation"). */
export const MS_RSS_KEY = new Uint8Array(
  "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
    .match(/../g)!.map((h) => parseInt(h, 16)),
);
const PCI_COMMAND = 0x04;
const PCI_COMMAND_MASTER = 0x4;

/** The rig. */
export interface NicRig {
  /** The machine. */
  readonly machine: SimMachine;
  /** The device opened through VFIO. */
  readonly dev: PciDevice;
  /** The model behind it (for setLink and counters). */
  readonly nic: E1000Device;
  /** BAR 0. */
  readonly regs: Mmio;
  /** Frames the NIC put on the wire. */
  readonly wire: Uint8Array[];
  /** The test port's link: `send` puts a frame on the wire towards the NIC. */
  readonly peer: SegmentLink;
  /** Let virtual time pass (default 100 µs): device work and the wire run. */
  settle(ns?: number): void;
  /** Read a register. */
  r(offset: number): number;
  /** Write a register. */
  w(offset: number, value: number): void;
}

/** Write `key` (40 bytes) into RSSRK, least significant byte first (82574/82576 RSSRK layout). */
export function writeRssKey(rig: NicRig, key: Uint8Array = MS_RSS_KEY): void {
  const RSSRK = 0x5c80;
  for (let i = 0; i < 10; i++) {
    const k = key.subarray(4 * i, 4 * i + 4);
    rig.w(RSSRK + 4 * i, k[0] | (k[1] << 8) | (k[2] << 16) | (k[3] << 24));
  }
}

/**
 * The frames of the QEMU recordings the model tests compare with: a UDP frame, the same with a
 * broken UDP checksum, then — with RSS on (Microsoft's key, `reta` in every RETA dword, RXCSUM.PCSD,
 * MRQC = `mrqcEnable` | IPv4/TCP | IPv4 | IPv4/UDP hashing) — Microsoft's vector 66.9.149.187:2794 →
 * 161.142.100.80:1766 as UDP. `beforeVector` runs just before the last frame.
 */
export function sendRecordedFrames(
  rig: NicRig,
  reta: number,
  mrqcEnable: number,
  beforeVector: () => void = () => {},
): void {
  const RXCSUM = 0x5000;
  const MRQC = 0x5818;
  const RETA = 0x5c00;
  const f = udpFrame({ payload: 18 });
  rig.peer.send(f);
  rig.settle();
  const bad = f.slice();
  bad[40] ^= 0xff;
  rig.peer.send(bad);
  rig.settle();
  writeRssKey(rig);
  for (let i = 0; i < 32; i++) rig.w(RETA + 4 * i, reta);
  rig.w(RXCSUM, (1 << 13) | 0x300);
  rig.w(MRQC, mrqcEnable | (1 << 16) | (1 << 17) | (1 << 22));
  beforeVector();
  rig.peer.send(udpFrame({
    srcIp: 0x4209_95bb,
    dstIp: 0xa18e_6450,
    srcPort: 2794,
    dstPort: 1766,
    payload: 20,
    fill: () => 0,
  }));
  rig.settle();
}

/** Open `model` on a machine with `iommu` (default VT-d). */
export function openNic(model: E1000Model, on: IommuModelName | SimTestContext = "vtd"): NicRig {
  const machine = typeof on === "string"
    ? createMachine({
      iommu: on,
      devices: [{ model, bdf: NIC_BDF }],
      strict: true,
      // x86 with virtio-iommu has no interrupt remapping (vm-lab.md step 3).
      allowUnsafeInterrupts: on === "virtio-iommu" ? { type1: true, iommufd: true } : undefined,
    })
    : on.machine;
  const nic = machine.fn(NIC_BDF).model as E1000Device;
  if (nic.model !== model) throw new Error(`the machine has an ${nic.model} at ${NIC_BDF}`);
  const dev = typeof on === "string"
    ? openPciDevice(NIC_BDF, { kernel: machine.kernel })
    : on.openDevice(NIC_BDF);
  dev.config.write16(PCI_COMMAND, dev.config.read16(PCI_COMMAND) | PCI_COMMAND_MASTER);
  const regs = dev.bar(0);
  const wire: Uint8Array[] = [];
  machine.segment.tap((_t, frame, from) => {
    if (from === nic.name) wire.push(frame);
  });
  const peer = machine.segment.attach({ name: "test peer", receive() {} });
  return {
    machine,
    dev,
    nic,
    regs,
    wire,
    peer,
    settle: (ns = 100_000) => machine.clock.advance(ns),
    r: (offset) => regs.read32(offset),
    w: (offset, value) => regs.write32(offset, value >>> 0),
  };
}

/** Options of {@link udpFrame}. */
export interface UdpFrameOptions {
  /** Destination MAC (default the NIC's). */
  dst?: Uint8Array;
  /** Source MAC (default the peer's). */
  src?: Uint8Array;
  /** Source IPv4 address as a number (default 10.0.2.2). */
  srcIp?: number;
  /** Destination IPv4 address (default 10.0.2.15). */
  dstIp?: number;
  /** UDP source port (default 1234). */
  srcPort?: number;
  /** UDP destination port (default 7). */
  dstPort?: number;
  /** Payload bytes (default 18: a 64-byte frame with FCS). */
  payload?: number;
  /** Fill the IPv4 and UDP checksums (default true). */
  checksums?: boolean;
  /** Payload byte value (default i & 0xff). */
  fill?: (i: number) => number;
}

function sum16(b: Uint8Array, from: number, to: number, start = 0): number {
  let s = start;
  for (let i = from; i < to; i += 2) s += (b[i] << 8) | (i + 1 < to ? b[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** An Ethernet + IPv4 + UDP frame (no FCS). */
export function udpFrame(o: UdpFrameOptions = {}): Uint8Array {
  const payload = o.payload ?? 18;
  const f = new Uint8Array(14 + 20 + 8 + payload);
  const v = new DataView(f.buffer);
  f.set(o.dst ?? NIC_MAC, 0);
  f.set(o.src ?? PEER_MAC, 6);
  v.setUint16(12, 0x0800);
  f[14] = 0x45;
  v.setUint16(16, 20 + 8 + payload);
  v.setUint16(18, 0x1234);
  f[22] = 64;
  f[23] = 17;
  v.setUint32(26, o.srcIp ?? 0x0a00_0202);
  v.setUint32(30, o.dstIp ?? 0x0a00_020f);
  v.setUint16(34, o.srcPort ?? 1234);
  v.setUint16(36, o.dstPort ?? 7);
  v.setUint16(38, 8 + payload);
  for (let i = 0; i < payload; i++) f[42 + i] = o.fill ? o.fill(i) : i & 0xff;
  if (o.checksums ?? true) {
    v.setUint16(24, ~sum16(f, 14, 34) & 0xffff);
    const pseudo = sum16(f, 26, 34, 17 + 8 + payload);
    const c = ~sum16(f, 34, 42 + payload, pseudo) & 0xffff;
    v.setUint16(40, c === 0 ? 0xffff : c);
  }
  return f;
}

/** Whether the IPv4 header and UDP checksums of a frame built like {@link udpFrame} are right. */
export function udpChecksumsOk(f: Uint8Array): { ip: boolean; udp: boolean } {
  const len = (f[38] << 8) | f[39];
  return {
    ip: sum16(f, 14, 34) === 0xffff,
    udp: sum16(f, 34, 34 + len, sum16(f, 26, 34, 17 + len)) === 0xffff,
  };
}

/** A raw frame: destination, source, EtherType and `length` bytes in all (no FCS). */
export function rawFrame(dst: Uint8Array, length: number, etherType = 0x88b5): Uint8Array {
  const f = new Uint8Array(length);
  f.set(dst, 0);
  f.set(PEER_MAC, 6);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  for (let i = 14; i < length; i++) f[i] = (i * 7) & 0xff;
  return f;
}

/**
 * `writes` random 4- and 8-byte writes to random offsets of BARs 0–3 (a third of them pointing
 * into a DMA buffer of random bytes), reads in between, frames from the wire, virtual time
 * passing; then a function reset. Throws only if the model throws.
 */
export function fuzzNic(rig: NicRig, seed: number, writes = 20_000): void {
  const rng = new Rng(seed);
  const mem = rig.dev.dma.allocate(65536);
  mem.bytes.set(rng.bytes(mem.bytes.length));
  const model = rig.nic;
  for (let k = 0; k < writes; k++) {
    const bar = rng.int(0, 4);
    const offset = rng.int(0, 0x2_0000) & ~3;
    const v = rng.chance(1 / 3) ? (mem.iovaLow + rng.int(0, 65536)) >>> 0 : rng.u32();
    model.mmioWrite(bar, offset, rng.chance(0.5) ? 4 : 8, v);
    if (k % 7 === 0) model.mmioRead(bar, offset, 4);
    if (k % 97 === 0) {
      rig.peer.send(rawFrame(rng.chance(0.5) ? BROADCAST : NIC_MAC, rng.int(60, 1461)));
    }
    if (k % 101 === 0) rig.settle(10_000);
  }
  rig.settle(1_000_000);
  model.reset();
}
