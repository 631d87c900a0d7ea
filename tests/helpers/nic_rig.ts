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
import type { E1000Device, E1000Model } from "../../sim/pci/e1000_device.ts";
import type { SegmentLink } from "../../sim/net/segment.ts";

/** Where the NIC sits. */
export const NIC_BDF = "0000:00:02.0";
/** The NIC's MAC (QEMU's first NIC). */
export const NIC_MAC = new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
/** The test port's MAC. */
export const PEER_MAC = new Uint8Array([0x02, 0x00, 0x00, 0x00, 0x00, 0x09]);
/** Broadcast. */
export const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
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

/** Open `model` on a machine with `iommu` (default VT-d). */
export function openNic(model: E1000Model, iommu: IommuModelName = "vtd"): NicRig {
  const machine = createMachine({
    iommu,
    devices: [{ model, bdf: NIC_BDF }],
    strict: true,
    // x86 with virtio-iommu has no interrupt remapping (vm-lab.md step 3).
    allowUnsafeInterrupts: iommu === "virtio-iommu" ? { type1: true, iommufd: true } : undefined,
  });
  const nic = machine.fn(NIC_BDF).model as E1000Device;
  const dev = openPciDevice(NIC_BDF, { kernel: machine.kernel });
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
