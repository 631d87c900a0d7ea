/**
 * A simulated virtio-net device (virtio 1.2: §4.1 PCI transport, §2.7 split virtqueues, §5.1
 * network device), modern-only (like QEMU's `virtio-net-pci,disable-legacy=on,
 * iommu_platform=on`): 1af4:1041, one receive and one transmit queue, the MAC and link status in
 * its device configuration, VIRTIO_F_ACCESS_PLATFORM offered so every ring and buffer access goes
 * through the IOMMU model. Frames leave and arrive through an {@link EthernetSegment}.
 *
 * Written from the specification, independently of the driver in drivers/virtio/.
 *
 * @module
 */

import type { BarDecl, DeviceHost, PciConfig, PciDeviceModel } from "./device.ts";
import type { EthernetSegment, SegmentLink, SegmentPort } from "../net/segment.ts";
import { IntxPin } from "./config_irq.ts";
import { MsixTable } from "./msix_table.ts";
import { buildVirtioConfigSpace } from "./virtio_config.ts";

/** BAR holding the virtio structures (QEMU uses BAR 4, 64-bit prefetchable). */
export const VIRTIO_NET_BAR = 4;
/** Size of that BAR. */
export const VIRTIO_NET_BAR_SIZE = 0x4000;
/** Offsets of the structures in the BAR (one 4 KiB page each, as QEMU lays them out). */
export const VIRTIO_REGION = {
  common: 0x0000,
  isr: 0x1000,
  device: 0x2000,
  notify: 0x3000,
} as const;
/** BAR holding the MSI-X table and PBA (QEMU's virtio-pci: BAR 1, 4 KiB, 32-bit). */
export const VIRTIO_NET_MSIX_BAR = 1;
/** Size of that BAR. */
export const VIRTIO_NET_MSIX_BAR_SIZE = 0x1000;
/** MSI-X vectors (QEMU's virtio-net-pci default: 2 per queue pair + 2 = 4). */
export const VIRTIO_NET_MSIX_VECTORS = 4;
/** Offset of the PBA in the MSI-X BAR. */
export const VIRTIO_NET_MSIX_PBA = 0x800;
/** "No vector" in config_msix_vector / queue_msix_vector (§4.1.4.3). */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;
/** Bytes between the notify registers of consecutive queues (notify_off_multiplier). */
export const VIRTIO_NOTIFY_MULTIPLIER = 4;
/** Largest queue size the device offers. */
export const VIRTIO_NET_QUEUE_MAX = 256;
/** Frames kept while the driver has no receive buffer posted; more are dropped. */
export const VIRTIO_NET_RX_BACKLOG = 256;
/** Virtual time from a notification to the device processing the queue. */
export const VIRTIO_NET_PROCESS_DELAY_NS = 1_000;
/** Size of struct virtio_net_hdr for a VERSION_1 device (§5.1.6). */
const NET_HDR = 12;
const NUM_QUEUES = 2;
const RX_QUEUE = 0;
const TX_QUEUE = 1;

// §6 and §5.1.3 feature bits the device offers.
const F_MAC = 5n;
const F_STATUS = 16n;
const F_VERSION_1 = 32n;
const F_ACCESS_PLATFORM = 33n;
// §2.1 status bits.
const S_FEATURES_OK = 8;
const S_DRIVER_OK = 4;
const S_NEEDS_RESET = 64;
// §2.7.5 descriptor flags.
const DESC_NEXT = 1;
const DESC_WRITE = 2;
const DESC_INDIRECT = 4;
const AVAIL_NO_INTERRUPT = 1;
const LINK_UP = 1;

/** Options of a {@link VirtioNetDevice}. */
export interface VirtioNetDeviceOptions {
  /** MAC address (default 52:54:00:12:34:56, QEMU's first NIC). */
  mac?: Uint8Array;
  /** The segment the device's port is plugged into (frames go nowhere without one). */
  segment?: EthernetSegment;
}

interface Queue {
  size: number;
  enabled: boolean;
  msixVector: number;
  desc: bigint;
  driver: bigint;
  device: bigint;
  lastAvail: number;
  usedIdx: number;
}

function freshQueue(): Queue {
  return {
    size: VIRTIO_NET_QUEUE_MAX,
    enabled: false,
    msixVector: 0xffff,
    desc: 0n,
    driver: 0n,
    device: 0n,
    lastAvail: 0,
    usedIdx: 0,
  };
}

/** Counters of the device model. */
export interface VirtioNetCounters {
  /** Frames sent on the wire. */
  tx: number;
  /** Frames written to receive buffers. */
  rx: number;
  /** Frames dropped because no receive buffer was posted and the backlog was full. */
  rxDropped: number;
  /** Ring or buffer accesses that the IOMMU refused (the device then needs a reset). */
  dmaErrors: number;
}

/** The device model. */
export class VirtioNetDevice implements PciDeviceModel, SegmentPort {
  /** "virtio-net". */
  readonly model = "virtio-net";
  /** Config space with the virtio vendor capabilities. */
  readonly config: PciConfig;
  /** BAR 1 (MSI-X) and BAR 4 (virtio structures). */
  readonly bars: readonly BarDecl[];
  /** Virtio devices reset through the status register and FLR. */
  readonly resetWorks = true;
  /** Name on the segment. */
  readonly name: string;
  /** Counters. */
  readonly counters: VirtioNetCounters = { tx: 0, rx: 0, rxDropped: 0, dmaErrors: 0 };
  readonly #mac: Uint8Array;
  readonly #segment: EthernetSegment | undefined;
  #link: SegmentLink | undefined;
  #host: DeviceHost | undefined;
  #queues: Queue[] = [freshQueue(), freshQueue()];
  #status = 0;
  #deviceFeatureSelect = 0;
  #driverFeatureSelect = 0;
  #driverFeatures = 0n;
  #queueSelect = 0;
  #isr = 0;
  #backlog: Uint8Array[] = [];
  #pending = false;
  #configVector = VIRTIO_MSI_NO_VECTOR;
  readonly #msix: MsixTable;
  readonly #intx: IntxPin;

  /** A device with a MAC, plugged into a segment. */
  constructor(options: VirtioNetDeviceOptions = {}) {
    this.#mac = (options.mac ?? new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])).slice();
    this.#segment = options.segment;
    this.name = `virtio-net ${
      [...this.#mac].map((b) => b.toString(16).padStart(2, "0")).join(":")
    }`;
    const config = buildVirtioConfigSpace({
      deviceId: 0x1041,
      classCode: 0x020000,
      bar: VIRTIO_NET_BAR,
      barSize: VIRTIO_NET_BAR_SIZE,
      regions: VIRTIO_REGION,
      notifyMultiplier: VIRTIO_NOTIFY_MULTIPLIER,
      msix: {
        bar: VIRTIO_NET_MSIX_BAR,
        barSize: VIRTIO_NET_MSIX_BAR_SIZE,
        vectors: VIRTIO_NET_MSIX_VECTORS,
        tableOffset: 0,
        pbaOffset: VIRTIO_NET_MSIX_PBA,
      },
    });
    this.config = config;
    this.bars = config.bars;
    this.#msix = new MsixTable(config, {
      bar: VIRTIO_NET_MSIX_BAR,
      tableOffset: 0,
      pbaOffset: VIRTIO_NET_MSIX_PBA,
      vectors: VIRTIO_NET_MSIX_VECTORS,
    });
    this.#intx = new IntxPin(config);
  }

  /** The features the device offers. */
  get offeredFeatures(): bigint {
    return (1n << F_MAC) | (1n << F_STATUS) | (1n << F_VERSION_1) | (1n << F_ACCESS_PLATFORM);
  }

  /** Plug into the machine (and the segment). */
  connect(host: DeviceHost): void {
    this.#host = host;
    this.#msix.connect(host.irq);
    this.#intx.connect(host.irq);
    this.#link = this.#segment?.attach(this);
  }

  /** Register reads of BAR 4, and of the MSI-X table and PBA in BAR 1. */
  mmioRead(bar: number, offset: number, size: 1 | 2 | 4 | 8): number | bigint {
    if (bar === VIRTIO_NET_MSIX_BAR) {
      return this.#msix.owns(bar, offset) ? this.#msix.read(offset, size) : 0;
    }
    if (bar !== VIRTIO_NET_BAR) return allOnes(size);
    if (offset < VIRTIO_REGION.isr) return this.#commonRead(offset, size);
    if (offset < VIRTIO_REGION.device) {
      if (offset !== VIRTIO_REGION.isr || size !== 1) return 0;
      const v = this.#isr;
      this.#isr = 0; // §4.1.4.5: reading the ISR clears it (and deasserts INTx)
      this.#intx.set(false);
      return v;
    }
    if (offset < VIRTIO_REGION.notify) {
      return this.#deviceConfigRead(offset - VIRTIO_REGION.device, size);
    }
    return 0;
  }

  /** Register writes of BAR 4, and of the MSI-X table in BAR 1. */
  mmioWrite(bar: number, offset: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
    if (bar === VIRTIO_NET_MSIX_BAR) {
      if (this.#msix.owns(bar, offset)) this.#msix.write(offset, size, value);
      return;
    }
    if (bar !== VIRTIO_NET_BAR) return;
    if (offset < VIRTIO_REGION.isr) this.#commonWrite(offset, size, value);
    else if (offset >= VIRTIO_REGION.notify) {
      const q = (offset - VIRTIO_REGION.notify) / VIRTIO_NOTIFY_MULTIPLIER;
      if (Number.isInteger(q) && q < NUM_QUEUES) this.#schedule();
    }
  }

  /** Function-level reset. */
  reset(): void {
    this.#resetState();
    this.#msix.reset();
    this.#intx.reset();
  }

  /** A frame from the segment. */
  receive(frame: Uint8Array): void {
    if (this.#backlog.length >= VIRTIO_NET_RX_BACKLOG) {
      this.counters.rxDropped++;
      return;
    }
    this.#backlog.push(frame);
    this.#schedule();
  }

  #resetState(): void {
    this.#queues = [freshQueue(), freshQueue()];
    this.#status = 0;
    this.#deviceFeatureSelect = 0;
    this.#driverFeatureSelect = 0;
    this.#driverFeatures = 0n;
    this.#queueSelect = 0;
    this.#isr = 0;
    this.#configVector = VIRTIO_MSI_NO_VECTOR;
    this.#intx.set(false);
  }

  #commonRead(off: number, size: number): number | bigint {
    const q = this.#queues[this.#queueSelect];
    switch (off) {
      case 0x00:
        return this.#deviceFeatureSelect;
      case 0x04: {
        const word = this.#deviceFeatureSelect < 2
          ? (this.offeredFeatures >> BigInt(32 * this.#deviceFeatureSelect)) & 0xffffffffn
          : 0n;
        return Number(word);
      }
      case 0x08:
        return this.#driverFeatureSelect;
      case 0x0c:
        return this.#driverFeatureSelect < 2
          ? Number((this.#driverFeatures >> BigInt(32 * this.#driverFeatureSelect)) & 0xffffffffn)
          : 0;
      case 0x10:
        return this.#configVector;
      case 0x12:
        return NUM_QUEUES;
      case 0x14:
        return this.#status;
      case 0x15:
        return 0; // config_generation: the device config never changes mid-read
      case 0x16:
        return this.#queueSelect;
      case 0x18:
        return q ? q.size : 0;
      case 0x1a:
        return q ? q.msixVector : 0xffff;
      case 0x1c:
        return q?.enabled ? 1 : 0;
      case 0x1e:
        return q ? this.#queueSelect : 0;
      case 0x20:
      case 0x28:
      case 0x30: {
        const v = !q ? 0n : off === 0x20 ? q.desc : off === 0x28 ? q.driver : q.device;
        return size === 8 ? v : Number(v & 0xffffffffn);
      }
      case 0x24:
      case 0x2c:
      case 0x34: {
        const v = !q ? 0n : off === 0x24 ? q.desc : off === 0x2c ? q.driver : q.device;
        return Number(v >> 32n);
      }
      default:
        return 0;
    }
  }

  #commonWrite(off: number, size: number, value: number | bigint): void {
    const v = typeof value === "bigint" ? value : BigInt(value >>> 0);
    const n = Number(v & 0xffffffffn);
    const q = this.#queues[this.#queueSelect];
    switch (off) {
      case 0x00:
        this.#deviceFeatureSelect = n;
        return;
      case 0x08:
        this.#driverFeatureSelect = n;
        return;
      case 0x0c:
        if (this.#driverFeatureSelect < 2 && (this.#status & S_FEATURES_OK) === 0) {
          const shift = BigInt(32 * this.#driverFeatureSelect);
          this.#driverFeatures = (this.#driverFeatures & ~(0xffffffffn << shift)) |
            (BigInt(n) << shift);
        }
        return;
      case 0x14:
        this.#writeStatus(n & 0xff);
        return;
      case 0x10:
        this.#configVector = this.#vector(n);
        return;
      case 0x16:
        this.#queueSelect = n & 0xffff;
        return;
      case 0x18:
        if (q && !q.enabled && n > 0 && n <= VIRTIO_NET_QUEUE_MAX && (n & (n - 1)) === 0) {
          q.size = n;
        }
        return;
      case 0x1a:
        if (q) q.msixVector = this.#vector(n);
        return;
      case 0x1c:
        if (q && (n & 1) === 1) q.enabled = true; // §4.1.4.3.2: the driver cannot disable a queue
        return;
      case 0x20:
      case 0x28:
      case 0x30:
      case 0x24:
      case 0x2c:
      case 0x34: {
        if (!q || q.enabled) return;
        const base = off & ~0x7;
        const high = (off & 0x4) !== 0;
        const field = base === 0x20 ? "desc" : base === 0x28 ? "driver" : "device";
        const old = q[field];
        q[field] = size === 8
          ? v
          : high
          ? (old & 0xffffffffn) | (v << 32n)
          : (old & ~0xffffffffn) | v;
        return;
      }
      default:
        return;
    }
  }

  #writeStatus(status: number): void {
    if (status === 0) {
      this.#resetState();
      return;
    }
    if ((status & S_FEATURES_OK) !== 0 && (this.#status & S_FEATURES_OK) === 0) {
      // §2.2.2: refuse (leave FEATURES_OK clear) when the driver's choice is not acceptable.
      const mandatory = (1n << F_VERSION_1) | (1n << F_ACCESS_PLATFORM);
      const unknown = this.#driverFeatures & ~this.offeredFeatures;
      if ((this.#driverFeatures & mandatory) !== mandatory || unknown !== 0n) {
        status &= ~S_FEATURES_OK;
        this.#host?.trace(`virtio-net: refused features 0x${this.#driverFeatures.toString(16)}`);
      }
    }
    this.#status = status;
    if ((status & S_DRIVER_OK) !== 0) this.#schedule();
  }

  #deviceConfigRead(off: number, size: number): number {
    // §5.1.4: mac[6] at 0, le16 status at 6, le16 max_virtqueue_pairs at 8.
    const cfg = new Uint8Array(12);
    cfg.set(this.#mac, 0);
    cfg[6] = LINK_UP;
    cfg[8] = 1;
    if (off < 0 || off + size > cfg.length) return 0;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + cfg[off + i];
    return v;
  }

  #schedule(): void {
    if (this.#pending || !this.#host) return;
    this.#pending = true;
    this.#host.clock.schedule(VIRTIO_NET_PROCESS_DELAY_NS, () => {
      this.#pending = false;
      this.#process();
    });
  }

  #running(): boolean {
    return (this.#status & S_DRIVER_OK) !== 0 && (this.#status & S_NEEDS_RESET) === 0;
  }

  #process(): void {
    if (!this.#running()) return;
    this.#transmit();
    this.#deliver();
  }

  #transmit(): void {
    const q = this.#queues[TX_QUEUE];
    if (!q.enabled) return;
    let avail: number | undefined;
    while ((avail = this.#availIdx(q)) !== undefined && avail !== q.lastAvail) {
      const head = this.#availEntry(q, q.lastAvail);
      if (head === undefined) return;
      const chunks = this.#readChain(q, head, false);
      if (!chunks) return;
      const total = chunks.reduce((n, c) => n + c.length, 0);
      const packet = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        packet.set(c, at);
        at += c.length;
      }
      q.lastAvail = (q.lastAvail + 1) & 0xffff;
      if (!this.#pushUsed(q, head, 0)) return;
      if (packet.length > NET_HDR) {
        this.counters.tx++;
        this.#link?.send(packet.subarray(NET_HDR));
      }
    }
    this.#interrupt(q);
  }

  #deliver(): void {
    const q = this.#queues[RX_QUEUE];
    if (!q.enabled) return;
    let delivered = false;
    while (this.#backlog.length > 0) {
      const avail = this.#availIdx(q);
      if (avail === undefined || avail === q.lastAvail) break;
      const head = this.#availEntry(q, q.lastAvail);
      if (head === undefined) return;
      const frame = this.#backlog.shift()!;
      const written = this.#writeChain(q, head, frame);
      if (written === undefined) return;
      q.lastAvail = (q.lastAvail + 1) & 0xffff;
      if (!this.#pushUsed(q, head, written)) return;
      this.counters.rx++;
      delivered = true;
    }
    if (delivered) this.#interrupt(q);
  }

  #availIdx(q: Queue): number | undefined {
    return this.#read16(q.driver + 2n);
  }

  #availEntry(q: Queue, index: number): number | undefined {
    const id = this.#read16(q.driver + 4n + 2n * BigInt(index % q.size));
    if (id === undefined) return undefined;
    if (id >= q.size) return this.#fail(`avail entry ${id} ≥ queue size ${q.size}`);
    return id;
  }

  /** Read a descriptor chain's buffers (device-readable ones; `writable` selects the other kind). */
  #readChain(q: Queue, head: number, writable: boolean): Uint8Array[] | undefined {
    const out: Uint8Array[] = [];
    let i = head;
    for (let hops = 0; hops < q.size; hops++) {
      const d = this.#descriptor(q, i);
      if (!d) return undefined;
      if ((d.flags & DESC_INDIRECT) !== 0) {
        return this.#fail("indirect descriptors were not negotiated");
      }
      if (((d.flags & DESC_WRITE) !== 0) === writable && d.len > 0) {
        const buf = new Uint8Array(d.len);
        if (!this.#host!.dma.read(d.addr, buf)) return this.#dmaError();
        out.push(buf);
      }
      if ((d.flags & DESC_NEXT) === 0) return out;
      i = d.next;
      if (i >= q.size) return this.#fail(`descriptor next ${i} ≥ queue size`);
    }
    return this.#fail("descriptor chain loops");
  }

  /** Write header + frame into a device-writable chain; returns bytes written. */
  #writeChain(q: Queue, head: number, frame: Uint8Array): number | undefined {
    const data = new Uint8Array(NET_HDR + frame.length);
    data[10] = 1; // num_buffers = 1 (le16 at offset 10)
    data.set(frame, NET_HDR);
    let at = 0;
    let i = head;
    for (let hops = 0; hops < q.size && at < data.length; hops++) {
      const d = this.#descriptor(q, i);
      if (!d) return undefined;
      if ((d.flags & DESC_WRITE) === 0) {
        return this.#fail("receive descriptor is not device-writable");
      }
      const n = Math.min(d.len, data.length - at);
      if (n > 0 && !this.#host!.dma.write(d.addr, data.subarray(at, at + n))) {
        return this.#dmaError();
      }
      at += n;
      if ((d.flags & DESC_NEXT) === 0) break;
      i = d.next;
      if (i >= q.size) return this.#fail(`descriptor next ${i} ≥ queue size`);
    }
    if (at < data.length) {
      this.counters.rxDropped++; // the buffer was too small: the frame is truncated and dropped
      this.#host?.trace(`virtio-net: receive buffer of ${at} bytes too small for ${data.length}`);
      return 0;
    }
    return at;
  }

  #descriptor(
    q: Queue,
    i: number,
  ): { addr: bigint; len: number; flags: number; next: number } | undefined {
    const raw = new Uint8Array(16);
    if (!this.#host!.dma.read(q.desc + 16n * BigInt(i), raw)) return this.#dmaError();
    const v = new DataView(raw.buffer);
    return {
      addr: v.getBigUint64(0, true),
      len: v.getUint32(8, true),
      flags: v.getUint16(12, true),
      next: v.getUint16(14, true),
    };
  }

  #pushUsed(q: Queue, id: number, len: number): boolean {
    const elem = new Uint8Array(8);
    const v = new DataView(elem.buffer);
    v.setUint32(0, id, true);
    v.setUint32(4, len, true);
    const slot = q.device + 4n + 8n * BigInt(q.usedIdx % q.size);
    if (!this.#host!.dma.write(slot, elem)) return this.#dmaError() ?? false;
    q.usedIdx = (q.usedIdx + 1) & 0xffff;
    const idx = new Uint8Array([q.usedIdx & 0xff, q.usedIdx >>> 8]);
    if (!this.#host!.dma.write(q.device + 2n, idx)) return this.#dmaError() ?? false;
    return true;
  }

  /** A vector number as QEMU stores it: one the table does not have reads back as none. */
  #vector(n: number): number {
    const v = n & 0xffff;
    return v < VIRTIO_NET_MSIX_VECTORS ? v : VIRTIO_MSI_NO_VECTOR;
  }

  /**
   * Signal a used-buffer notification (§4.1.5.4): with MSI-X enabled, the queue's vector goes
   * through the table (masking, pending bits); without, the ISR bit drives INTx.
   */
  #interrupt(q: Queue): void {
    const flags = this.#read16(q.driver);
    if (flags === undefined || (flags & AVAIL_NO_INTERRUPT) !== 0) return;
    this.#isr |= 1;
    if (this.#msix.enabled) {
      if (q.msixVector !== VIRTIO_MSI_NO_VECTOR) this.#msix.notify(q.msixVector);
    } else {
      this.#intx.set(true);
    }
  }

  #read16(iova: bigint): number | undefined {
    const b = new Uint8Array(2);
    if (!this.#host!.dma.read(iova, b)) return this.#dmaError();
    return b[0] | (b[1] << 8);
  }

  #dmaError(): undefined {
    this.counters.dmaErrors++;
    return this.#fail("a ring or buffer access faulted in the IOMMU");
  }

  #fail(why: string): undefined {
    this.#status |= S_NEEDS_RESET;
    this.#host?.trace(`virtio-net: ${why}; device needs reset`);
    return undefined;
  }
}

function allOnes(size: number): number | bigint {
  return size === 8 ? 0xffff_ffff_ffff_ffffn : 2 ** (8 * size) - 1;
}
