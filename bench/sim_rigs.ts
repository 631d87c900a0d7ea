/**
 * Rigs for the per-packet split of the simulated echo (udp_echo_bench.ts): each isolates one
 * part of the path — the virtio-net device model without a driver, the DMA of one frame through
 * the IOMMU, the wire — and a stand-in for forwarding between two simulated NICs.
 *
 * @module
 */

import { NetStack, openPciDevice, type PacketBuffer, parseIpv4, VirtioNet } from "../mod.ts";
import {
  createMachine,
  EthernetSegment,
  type SegmentLink,
  type SimMachine,
  SimPeer,
  VIRTIO_NET_BAR,
  VIRTIO_REGION,
  VirtioNetDevice,
  VirtualClock,
} from "../sim/mod.ts";
import {
  type ByteViews,
  byteViews,
  copyBytes,
  createDmaPort,
  type DmaPort,
  type PciConfig,
} from "../sim/pci/mod.ts";
import { LoopNetDevice } from "../testing/mod.ts";

/** Frames per bench iteration. */
export const BATCH = 32;
/** A 64-byte Ethernet frame with a local experimental EtherType (peers ignore it). */
export function testFrame(dst: Uint8Array, length = 64): Uint8Array {
  const f = new Uint8Array(length);
  f.set(dst, 0);
  f.set([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02], 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  return f;
}

const RAM_IOVA = 0x100000;
const RAM_BYTES = 1 << 20;
const QUEUE = 256;
const BUFFER = 2048;
const NET_HDR = 12;
/** Ring layout in the rig's RAM (virtio 1.2 §2.7): rx desc/avail/used, tx desc/avail/used. */
const RX = { desc: 0x0000, avail: 0x1000, used: 0x2000 };
const TX = { desc: 0x3000, avail: 0x4000, used: 0x5000 };
const BUFFERS = 0x10000;

/** A config space with bus mastering on. */
const busMaster: PciConfig = { size: 256, read: (o) => (o === 4 ? 0x6 : 0), write() {} };

/**
 * A VT-d machine's IOMMU with 1 MiB of its RAM mapped at {@link RAM_IOVA} for requester 00:03.0
 * (no function there: the rigs are the device), and a DmaPort for that requester.
 */
function mappedRam(config: PciConfig = busMaster) {
  const { clock, memory, iommu } = createMachine({ iommu: "vtd" });
  const ram = memory.allocate(RAM_BYTES)!;
  const domain = iommu.allocDomain();
  const rw = { read: true, write: true };
  domain.map(BigInt(RAM_IOVA), BigInt(ram.base), BigInt(RAM_BYTES), rw);
  iommu.attach(0x18, domain);
  const dma = createDmaPort({ iommu, memory, requester: 0x18, config });
  return { clock, memory, iommu, ram, dma };
}

/**
 * The virtio-net device model with no driver: a minimal feeder keeps 256 receive buffers posted
 * and sends every received frame back out (the used receive buffer becomes a transmit
 * descriptor), by writing ring memory directly. One call of `round` moves {@link BATCH} frames
 * in over the wire and back out.
 */
export function deviceModelRig(): { round(): void; device: VirtioNetDevice } {
  const base = mappedRam();
  const segment = new EthernetSegment(base.clock);
  const device = new VirtioNetDevice({ segment });
  device.config.write(0x04, 2, 0x6);
  device.connect({
    clock: base.clock,
    dma: createDmaPort({
      iommu: base.iommu,
      memory: base.memory,
      requester: 0x18,
      config: device.config,
    }),
    irq: { msi() {}, msix() {}, intx() {} },
    random: () => 0.5,
    trace() {},
  });
  const w = (off: number, size: 1 | 2 | 4 | 8, v: number | bigint) =>
    device.mmioWrite(VIRTIO_NET_BAR, off, size, v);
  const C = VIRTIO_REGION.common;
  w(C + 0x14, 1, 1 | 2);
  w(C + 0x08, 4, 1);
  w(C + 0x0c, 4, 3); // VERSION_1 | ACCESS_PLATFORM
  w(C + 0x14, 1, 1 | 2 | 8);
  for (const [q, l] of [[0, RX], [1, TX]] as const) {
    w(C + 0x16, 2, q);
    w(C + 0x18, 2, QUEUE);
    w(C + 0x20, 8, BigInt(RAM_IOVA + l.desc));
    w(C + 0x28, 8, BigInt(RAM_IOVA + l.avail));
    w(C + 0x30, 8, BigInt(RAM_IOVA + l.used));
    w(C + 0x1c, 2, 1);
  }
  w(C + 0x14, 1, 1 | 2 | 8 | 4);
  const v = new DataView(base.ram.bytes.buffer, base.ram.bytes.byteOffset);
  for (let i = 0; i < QUEUE; i++) {
    v.setUint32(RX.desc + 16 * i, RAM_IOVA + BUFFERS + BUFFER * i, true);
    v.setUint32(RX.desc + 16 * i + 8, BUFFER, true);
    v.setUint16(RX.desc + 16 * i + 12, 2, true); // WRITE
    v.setUint16(RX.avail + 4 + 2 * i, i, true);
  }
  let rxAvail = QUEUE;
  v.setUint16(RX.avail + 2, rxAvail, true);
  let rxUsedSeen = 0;
  let txAvail = 0;
  const frame = testFrame(new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
  let back = 0;
  const injector: SegmentLink = segment.attach({
    name: "injector",
    receive() {},
    receiveFrom() {
      back++;
    },
  });
  return {
    device,
    round(): void {
      for (let i = 0; i < BATCH; i++) injector.sendFrom(frame, 0, frame.length);
      const target = back + BATCH;
      while (back < target) {
        base.clock.advance(1_000);
        const used = v.getUint16(RX.used + 2, true);
        if (used === rxUsedSeen) continue;
        for (; rxUsedSeen !== used; rxUsedSeen = (rxUsedSeen + 1) & 0xffff) {
          const e = RX.used + 4 + 8 * (rxUsedSeen % QUEUE);
          const id = v.getUint32(e, true);
          const len = v.getUint32(e + 4, true);
          const slot = txAvail % QUEUE;
          v.setUint32(TX.desc + 16 * slot, RAM_IOVA + BUFFERS + BUFFER * id, true);
          v.setUint32(TX.desc + 16 * slot + 8, len, true);
          v.setUint16(TX.desc + 16 * slot + 12, 0, true);
          v.setUint16(TX.avail + 4 + 2 * slot, slot, true);
          txAvail = (txAvail + 1) & 0xffff;
          // The buffer goes back to the receive ring once the frame has been copied out.
          v.setUint16(RX.avail + 4 + 2 * (rxAvail % QUEUE), id, true);
          rxAvail = (rxAvail + 1) & 0xffff;
        }
        v.setUint16(TX.avail + 2, txAvail, true);
        v.setUint16(RX.avail + 2, rxAvail, true);
        w(VIRTIO_REGION.notify + 4, 2, 1);
      }
    },
  };
}

/**
 * The DMA of one frame as the virtio-net model does it, received and sent back: per direction
 * the available index and entry (2 + 2 bytes), the descriptor (16), the buffer (12-byte header +
 * frame), the used element (8) and the used index (2) — twelve accesses through the port.
 */
export function frameDmaRig(frameBytes = 64): { frame(): boolean; dma: DmaPort } {
  const { dma } = mappedRam();
  const desc = new Uint8Array(16);
  const buf = new Uint8Array(NET_HDR + frameBytes);
  const used = new Uint8Array(8);
  let i = 0;
  const one = (l: typeof RX, write: boolean): boolean => {
    const slot = i % QUEUE;
    const ok = dma.read16(RAM_IOVA + l.avail + 2) >= 0 &&
      dma.read16(RAM_IOVA + l.avail + 4 + 2 * slot) >= 0 &&
      dma.readInto(RAM_IOVA + l.desc + 16 * slot, desc, 0, 16) &&
      (write
        ? dma.writeFrom(RAM_IOVA + BUFFERS + BUFFER * slot, buf, 0, buf.length)
        : dma.readInto(RAM_IOVA + BUFFERS + BUFFER * slot, buf, 0, buf.length)) &&
      dma.writeFrom(RAM_IOVA + l.used + 4 + 8 * slot, used, 0, 8) &&
      dma.write16(RAM_IOVA + l.used + 2, i & 0xffff);
    return ok;
  };
  return {
    dma,
    frame(): boolean {
      i++;
      return one(RX, true) && one(TX, false);
    },
  };
}

/** The IOMMU model's own translate (an IOTLB hit), as every DMA page cost before the port cache. */
export function modelTranslateRig(): { translate(): boolean } {
  const { iommu } = mappedRam();
  let i = 0;
  return {
    translate(): boolean {
      const iova = BigInt(RAM_IOVA + ((i++ * 64) & (RAM_BYTES - 1)));
      return iommu.translate(0x18, undefined, iova, "read", 4).ok;
    },
  };
}

/** A wire with a sender and a receiver: one call of `round` carries {@link BATCH} frames. */
export function wireRig(): { round(): void } {
  const clock = new VirtualClock();
  const segment = new EthernetSegment(clock);
  let got = 0;
  segment.attach({ name: "rx", receive() {}, receiveFrom: () => void got++ });
  const tx = segment.attach({ name: "tx", receive() {} });
  const frame = testFrame(new Uint8Array(6).fill(0xff));
  return {
    round(): void {
      for (let i = 0; i < BATCH; i++) tx.sendFrom(frame, 0, frame.length);
      clock.advance(20_000);
      if (got % BATCH !== 0) throw new Error("wire lost frames");
    },
  };
}

/**
 * Forwarding stand-in until examples/forward.ts exists: two virtio-net NICs on two wires of one
 * machine, a generator on wire A, a counting sink on wire B; the loop receives a batch on NIC A,
 * copies each frame into a buffer of NIC B's pool (the two drivers do not share a pool), touches
 * one byte and transmits on NIC B. One call of `round` forwards {@link BATCH} frames.
 */
export async function forwardRig(): Promise<{ round(): Promise<void>; machine: SimMachine }> {
  // The wires are made before the machine (the NICs plug into them at boot) and run on its clock.
  const late: { clock?: VirtualClock } = {};
  const clock = {
    get nowNs(): number {
      return late.clock!.nowNs;
    },
    post: (delay: number, target: { onClock(arg: number): void }, arg: number) =>
      late.clock!.post(delay, target, arg),
  };
  const wireA = new EthernetSegment(clock);
  const wireB = new EthernetSegment(clock);
  const macA = new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  const macB = new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x57]);
  const m = createMachine({
    iommu: "vtd",
    devices: [
      { model: new VirtioNetDevice({ segment: wireA, mac: macA }), bdf: "0000:00:03.0" },
      { model: new VirtioNetDevice({ segment: wireB, mac: macB }), bdf: "0000:00:04.0" },
    ],
  });
  late.clock = m.clock;
  const open = async (bdf: string) =>
    await VirtioNet.open(openPciDevice(bdf, { kernel: m.kernel, iommu: "iommufd" }));
  const a = await open("0000:00:03.0");
  const b = await open("0000:00:04.0");
  const generator = wireA.attach({ name: "generator", receive() {} });
  let sunk = 0;
  wireB.attach({ name: "sink", receive() {}, receiveFrom: () => void sunk++ });
  const frame = testFrame(macA);
  const rx: PacketBuffer[] = new Array(BATCH);
  const tx: PacketBuffer[] = new Array(BATCH);
  const views = new Map<Uint8Array, ByteViews>();
  const viewsOf = (d: Uint8Array) => {
    let v = views.get(d);
    if (v === undefined) views.set(d, v = byteViews(d));
    return v;
  };
  return {
    machine: m,
    async round(): Promise<void> {
      for (let i = 0; i < BATCH; i++) generator.sendFrom(frame, 0, frame.length);
      const target = sunk + BATCH;
      while (sunk < target) {
        const n = a.rxBatch(rx, BATCH);
        if (n === 0) {
          const next = m.clock.nextEventNs();
          await m.kernel.sleep(next === undefined ? 0.001 : (next - m.clock.nowNs) / 1e6);
          continue;
        }
        let k = 0;
        for (let i = 0; i < n; i++) {
          const out = b.pool.alloc();
          if (out !== undefined) {
            copyBytes(viewsOf(rx[i].data), 0, viewsOf(out.data), 0, rx[i].length);
            out.length = rx[i].length;
            out.data[14]++; // touch one byte, as ixy's forwarder does
            tx[k++] = out;
          }
          a.pool.free(rx[i]);
        }
        const sent = b.txBatch(tx, k);
        for (let i = sent; i < k; i++) b.pool.free(tx[i]);
      }
    },
  };
}

/**
 * The stack alone for the split: net/ over an in-memory device, fed the UDP frames a simulated
 * peer sends to it (captured once off a wire), each echoed by a socket. One call of `round`
 * echoes {@link BATCH} datagrams.
 */
export function stackRig(): { round(): void } {
  const nicMac = new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  const nicIp = parseIpv4("10.0.2.15");
  const captured: Uint8Array[] = [];
  const clock = new VirtualClock();
  const wire = new EthernetSegment(clock);
  wire.attach({ name: "capture", receive: (f) => void (f[12] === 0x08 && captured.push(f)) });
  const peer = new SimPeer(wire, {
    name: "peer",
    mac: new Uint8Array([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]),
    ip: parseIpv4("10.0.2.2"),
  });
  // The peer resolves the NIC first: answer its ARP request by hand with a frame from the NIC.
  const nic = new SimPeer(wire, { name: "nic", mac: nicMac, ip: nicIp });
  const payload = new TextEncoder().encode("deno_vfio echo bench payload ".repeat(2));
  for (let i = 0; i < BATCH; i++) peer.sendUdp(nicIp, 7, 5000, payload);
  clock.advance(1_000_000);
  void nic;
  const frames = captured.filter((f) => f[23] === 17 && f[0] === nicMac[0] && f[5] === 0x56);
  const dev = new LoopNetDevice(nicMac, 256);
  const stack = new NetStack(dev, { address: "10.0.2.15/24", now: () => 0 });
  const echo = stack.udpBind(7, (d, off, len, ip, port) => echo.sendTo(ip, port, d, off, len));
  dev.inbox.push(frames[0]);
  stack.poll();
  dev.sent.length = 0;
  return {
    round(): void {
      for (const f of frames) dev.inbox.push(f);
      stack.poll();
      dev.sent.length = 0;
    },
  };
}
