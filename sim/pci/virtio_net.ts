/**
 * A simulated virtio-net device (virtio 1.2: §4.1 PCI transport, §2.7 split virtqueues, §5.1
 * network device), modern-only (like QEMU's `virtio-net-pci,disable-legacy=on,
 * iommu_platform=on`): 1af4:1041, one receive and one transmit queue, the MAC and link status in
 * its device configuration, VIRTIO_F_ACCESS_PLATFORM offered so every ring and buffer access goes
 * through the IOMMU model. Frames leave and arrive through an {@link EthernetSegment}.
 *
 * The link can be taken down and up ({@link VirtioNetDevice.setLink}, as QEMU's `set_link`): the
 * status field's LINK_UP bit follows, config_generation changes and the device signals a
 * configuration change (ISR bit 1, §4.1.4.5); while the link is down frames from the wire are
 * lost and transmit buffers are returned unsent (used length 0), as QEMU's virtio-net drops its
 * transmit queue when its link is down.
 *
 * Written from the specification, independently of the driver in drivers/virtio/. The common
 * configuration structure's registers are decoded in virtio_common_cfg.ts.
 *
 * The per-packet path allocates nothing and uses no BigInt: ring entries, descriptors and buffers
 * move through the DmaPort's number-address methods (virtio_split_ring.ts) into buffers the
 * device owns, received frames wait in a backlog of preallocated slots that already hold the
 * virtio-net header, and a transmitted frame leaves from the device's transmit buffer.
 *
 * @module
 */

import type { BarDecl, DeviceHost, PciConfig, PciDeviceModel } from "./device.ts";
import {
  type EthernetSegment,
  MAX_SEGMENT_FRAME,
  type SegmentLink,
  type SegmentPort,
} from "../net/segment.ts";
import type { ClockTarget } from "../clock.ts";
import { type ByteViews, byteViews, copyBytes, ViewCache } from "../bytes.ts";
import { SplitRingDma, takeRingAddresses } from "./virtio_split_ring.ts";
import { IntxPin } from "./config_irq.ts";
import { MsixTable } from "./msix_table.ts";
import { buildVirtioConfigSpace } from "./virtio_config.ts";
import {
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_S_FEATURES_OK,
  VirtioCommonCfg,
  type VirtioQueue,
} from "./virtio_common_cfg.ts";

export { VIRTIO_MSI_NO_VECTOR } from "./virtio_common_cfg.ts";

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
const S_DRIVER_OK = 4;
const S_NEEDS_RESET = 64;
// §2.7.5 descriptor flags.
const DESC_NEXT = 1;
const DESC_WRITE = 2;
const DESC_INDIRECT = 4;
const AVAIL_NO_INTERRUPT = 1;
const LINK_UP = 1;
// §4.1.4.5 ISR status bits.
const ISR_QUEUE = 1;
const ISR_CONFIG = 2;
const GENERATION_MASK = 0xff;

/** Options of a {@link VirtioNetDevice}. */
export interface VirtioNetDeviceOptions {
  /** MAC address (default 52:54:00:12:34:56, QEMU's first NIC). */
  mac?: Uint8Array;
  /** The segment the device's port is plugged into (frames go nowhere without one). */
  segment?: EthernetSegment;
}

/** A backlog slot: the virtio-net header, then the frame (rounded up to 8 bytes). */
const RX_SLOT_BYTES = (NET_HDR + MAX_SEGMENT_FRAME + 7) & ~7;
/** num_buffers (le16) in struct virtio_net_hdr (§5.1.6). */
const HDR_NUM_BUFFERS = 10;
/** Initial size of the transmit buffer (grown for a longer chain). */
const TX_BUFFER_BYTES = NET_HDR + MAX_SEGMENT_FRAME;

/** IOVAs below this are Numbers for the DMA port's number-address methods. */
const SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);

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
  /** Frames lost because the link was down (transmitted or arriving). */
  linkDownDrops: number;
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
  readonly counters: VirtioNetCounters = {
    tx: 0,
    rx: 0,
    rxDropped: 0,
    dmaErrors: 0,
    linkDownDrops: 0,
  };
  readonly #mac: Uint8Array;
  readonly #segment: EthernetSegment | undefined;
  #link: SegmentLink | undefined;
  #host: DeviceHost | undefined;
  /** The common configuration structure (feature words, status, queues). */
  readonly #common: VirtioCommonCfg = new VirtioCommonCfg({
    offered: this.offeredFeatures,
    numQueues: NUM_QUEUES,
    queueMax: VIRTIO_NET_QUEUE_MAX,
    vectors: VIRTIO_NET_MSIX_VECTORS,
    writeStatus: (status) => this.#writeStatus(status),
  });
  #isr = 0;
  #pending = false;
  #linkUp = true;
  readonly #msix: MsixTable;
  readonly #intx: IntxPin;
  #ring: SplitRingDma | undefined;
  /**
   * Received frames waiting for a buffer: slot i holds header + frame, `#rxLength[i]` bytes, at
   * i·RX_SLOT_BYTES of `#rx` (made at the first frame), or in `#rxLong[i]` when longer.
   */
  #rx: ByteViews | undefined;
  readonly #rxLong: (ByteViews | undefined)[] = [];
  readonly #rxLength = new Int32Array(VIRTIO_NET_RX_BACKLOG);
  #rxHead = 0;
  #rxCount = 0;
  /** The device-readable buffers of the chain being transmitted, gathered. */
  #tx = new Uint8Array(TX_BUFFER_BYTES);
  /** Views of the buffers frames arrive in. */
  readonly #arriving = new ViewCache();
  /** The available ring's flags, read when deciding to interrupt. */
  readonly #flags = new Uint8Array(2);
  /** Runs the queues when the scheduled processing time comes. */
  readonly #tick: ClockTarget = {
    onClock: () => {
      this.#pending = false;
      this.#process();
    },
  };

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
    this.#ring = new SplitRingDma(host.dma);
    this.#link = this.#segment?.attach(this);
  }

  /** Register reads of BAR 4, and of the MSI-X table and PBA in BAR 1. */
  mmioRead(bar: number, offset: number, size: 1 | 2 | 4 | 8): number | bigint {
    if (bar === VIRTIO_NET_MSIX_BAR) {
      return this.#msix.owns(bar, offset) ? this.#msix.read(offset, size) : 0;
    }
    if (bar !== VIRTIO_NET_BAR) return allOnes(size);
    if (offset < VIRTIO_REGION.isr) return this.#common.read(offset, size);
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
    if (offset < VIRTIO_REGION.isr) this.#common.write(offset, size, value);
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

  /** Whether the link is up. */
  get linkUp(): boolean {
    return this.#linkUp;
  }

  /** Take the link down or bring it up (see the module doc). */
  setLink(up: boolean): void {
    if (up === this.#linkUp) return;
    this.#linkUp = up;
    this.#common.generation = (this.#common.generation + 1) & GENERATION_MASK;
    this.#host?.trace(`virtio-net: link ${up ? "up" : "down"}`);
    if (!this.#running()) return;
    this.#isr |= ISR_CONFIG;
    // §4.1.5.3: the configuration change notification goes to config_msix_vector, or INTx.
    if (this.#msix.enabled) {
      if (this.#common.configVector !== VIRTIO_MSI_NO_VECTOR) {
        this.#msix.notify(this.#common.configVector);
      }
    } else {
      this.#intx.set(true);
    }
    if (!up) this.#schedule(); // queued transmit buffers are returned unsent
  }

  /** A frame from the segment. */
  receive(frame: Uint8Array): void {
    this.receiveFrom(frame, 0, frame.length);
  }

  /** A frame from the segment (`length` bytes of `buf` from `offset`), copied to the backlog. */
  receiveFrom(buf: Uint8Array, offset: number, length: number): void {
    if (!this.#linkUp) {
      this.counters.linkDownDrops++;
      return;
    }
    if (this.#rxCount >= VIRTIO_NET_RX_BACKLOG) {
      this.counters.rxDropped++;
      return;
    }
    const i = (this.#rxHead + this.#rxCount) % VIRTIO_NET_RX_BACKLOG;
    let to: ByteViews;
    let at = i * RX_SLOT_BYTES;
    if (NET_HDR + length <= RX_SLOT_BYTES) {
      to = this.#rx ??= rxBacklog();
      this.#rxLong[i] = undefined;
    } else {
      to = this.#rxLong[i] = byteViews(rxHeader(new Uint8Array(NET_HDR + length)));
      at = 0;
    }
    copyBytes(this.#arriving.of(buf), offset, to, at + NET_HDR, length);
    this.#rxLength[i] = NET_HDR + length;
    this.#rxCount++;
    this.#schedule();
  }

  #resetState(): void {
    this.#common.reset();
    this.#isr = 0;
    this.#intx.set(false);
  }

  #writeStatus(status: number): void {
    if (status === 0) {
      this.#resetState();
      return;
    }
    if (
      (status & VIRTIO_S_FEATURES_OK) !== 0 && (this.#common.status & VIRTIO_S_FEATURES_OK) === 0
    ) {
      // §2.2.2: refuse (leave FEATURES_OK clear) when the driver's choice is not acceptable.
      const mandatory = (1n << F_VERSION_1) | (1n << F_ACCESS_PLATFORM);
      const unknown = this.#common.driverFeatures & ~this.offeredFeatures;
      if ((this.#common.driverFeatures & mandatory) !== mandatory || unknown !== 0n) {
        status &= ~VIRTIO_S_FEATURES_OK;
        this.#host?.trace(
          `virtio-net: refused features 0x${this.#common.driverFeatures.toString(16)}`,
        );
      }
    }
    this.#common.status = status;
    if ((status & S_DRIVER_OK) !== 0) this.#schedule();
  }

  #deviceConfigRead(off: number, size: number): number {
    // §5.1.4: mac[6] at 0, le16 status at 6, le16 max_virtqueue_pairs at 8.
    const cfg = new Uint8Array(12);
    cfg.set(this.#mac, 0);
    cfg[6] = this.#linkUp ? LINK_UP : 0;
    cfg[8] = 1;
    if (off < 0 || off + size > cfg.length) return 0;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + cfg[off + i];
    return v;
  }

  #schedule(): void {
    if (this.#pending || !this.#host) return;
    this.#pending = true;
    this.#host.clock.post(VIRTIO_NET_PROCESS_DELAY_NS, this.#tick, 0);
  }

  #running(): boolean {
    return (this.#common.status & S_DRIVER_OK) !== 0 && (this.#common.status & S_NEEDS_RESET) === 0;
  }

  #process(): void {
    if (!this.#running()) return;
    this.#transmit();
    this.#deliver();
  }

  #transmit(): void {
    const q = this.#common.queues[TX_QUEUE];
    if (!q.enabled) return;
    if (!q.numeric) takeRingAddresses(q);
    if (!this.#linkUp) {
      this.#dropTransmit(q);
      return;
    }
    let avail: number | undefined;
    while ((avail = this.#availIdx(q)) !== undefined && avail !== q.lastAvail) {
      const head = this.#availEntry(q, q.lastAvail);
      if (head === undefined) return;
      const total = this.#readChain(q, head);
      if (total === undefined) return;
      q.lastAvail = (q.lastAvail + 1) & 0xffff;
      if (!this.#pushUsed(q, head, 0)) return;
      if (total > NET_HDR) {
        this.counters.tx++;
        this.#link?.sendFrom(this.#tx, NET_HDR, total - NET_HDR);
      }
    }
    this.#interrupt(q);
  }

  /** Link down: every queued transmit buffer comes back used, length 0, unsent. */
  #dropTransmit(q: VirtioQueue): void {
    let avail: number | undefined;
    let dropped = 0;
    while ((avail = this.#availIdx(q)) !== undefined && avail !== q.lastAvail) {
      const head = this.#availEntry(q, q.lastAvail);
      if (head === undefined) return;
      q.lastAvail = (q.lastAvail + 1) & 0xffff;
      if (!this.#pushUsed(q, head, 0)) return;
      dropped++;
    }
    this.counters.linkDownDrops += dropped;
    if (dropped > 0) this.#interrupt(q);
  }

  #deliver(): void {
    const q = this.#common.queues[RX_QUEUE];
    if (!q.enabled) return;
    if (!q.numeric) takeRingAddresses(q);
    let delivered = false;
    while (this.#rxCount > 0) {
      const avail = this.#availIdx(q);
      if (avail === undefined || avail === q.lastAvail) break;
      const head = this.#availEntry(q, q.lastAvail);
      if (head === undefined) return;
      const slot = this.#rxHead;
      this.#rxHead = (slot + 1) % VIRTIO_NET_RX_BACKLOG;
      this.#rxCount--;
      const long = this.#rxLong[slot];
      const written = long !== undefined
        ? this.#writeChain(q, head, long.bytes, 0, this.#rxLength[slot])
        : this.#writeChain(q, head, this.#rx!.bytes, slot * RX_SLOT_BYTES, this.#rxLength[slot]);
      if (written === undefined) return;
      q.lastAvail = (q.lastAvail + 1) & 0xffff;
      if (!this.#pushUsed(q, head, written)) return;
      this.counters.rx++;
      delivered = true;
    }
    if (delivered) this.#interrupt(q);
  }

  #availIdx(q: VirtioQueue): number | undefined {
    const idx = this.#ring!.availIdx(q);
    return idx < 0 ? this.#dmaError() : idx;
  }

  #availEntry(q: VirtioQueue, index: number): number | undefined {
    const id = this.#ring!.availEntry(q, index);
    if (id < 0) return this.#dmaError();
    if (id >= q.size) return this.#fail(`avail entry ${id} ≥ queue size ${q.size}`);
    return id;
  }

  /**
   * Gather a descriptor chain's device-readable buffers into the transmit buffer (device-writable
   * ones are skipped); returns the bytes gathered.
   */
  #readChain(q: VirtioQueue, head: number): number | undefined {
    let at = 0;
    let i = head;
    for (let hops = 0; hops < q.size; hops++) {
      const ring = this.#ring!;
      if (!ring.descriptor(q, i)) return this.#dmaError();
      const len = ring.len;
      const flags = ring.flags;
      if ((flags & DESC_INDIRECT) !== 0) {
        return this.#fail("indirect descriptors were not negotiated");
      }
      if ((flags & DESC_WRITE) === 0 && len > 0) {
        if (at + len > this.#tx.length) this.#growTx(at + len);
        if (!ring.buffer(false, this.#tx, at, len)) return this.#dmaError();
        at += len;
      }
      if ((flags & DESC_NEXT) === 0) return at;
      i = ring.next;
      if (i >= q.size) return this.#fail(`descriptor next ${i} ≥ queue size`);
    }
    return this.#fail("descriptor chain loops");
  }

  /** A transmit buffer of at least `bytes`, keeping what was gathered. */
  #growTx(bytes: number): void {
    const bigger = new Uint8Array(Math.max(bytes, 2 * this.#tx.length));
    bigger.set(this.#tx);
    this.#tx = bigger;
  }

  /**
   * Write `length` bytes of `data` from `base` (virtio-net header + frame) into a device-writable
   * chain; returns bytes written.
   */
  #writeChain(
    q: VirtioQueue,
    head: number,
    data: Uint8Array,
    base: number,
    length: number,
  ): number | undefined {
    let at = 0;
    let i = head;
    for (let hops = 0; hops < q.size && at < length; hops++) {
      const ring = this.#ring!;
      if (!ring.descriptor(q, i)) return this.#dmaError();
      const flags = ring.flags;
      if ((flags & DESC_WRITE) === 0) {
        return this.#fail("receive descriptor is not device-writable");
      }
      const n = Math.min(ring.len, length - at);
      if (n > 0 && !ring.buffer(true, data, base + at, n)) return this.#dmaError();
      at += n;
      if ((flags & DESC_NEXT) === 0) break;
      i = ring.next;
      if (i >= q.size) return this.#fail(`descriptor next ${i} ≥ queue size`);
    }
    if (at < length) {
      this.counters.rxDropped++; // the buffer was too small: the frame is truncated and dropped
      this.#host?.trace(`virtio-net: receive buffer of ${at} bytes too small for ${length}`);
      return 0;
    }
    return at;
  }

  #pushUsed(q: VirtioQueue, id: number, len: number): boolean {
    return this.#ring!.pushUsed(q, id, len) || (this.#dmaError() ?? false);
  }

  /**
   * Signal a used-buffer notification (§4.1.5.4): with MSI-X enabled, the queue's vector goes
   * through the table (masking, pending bits); without, the ISR bit drives INTx.
   */
  #interrupt(q: VirtioQueue): void {
    const flags = this.#read16(q.driver);
    if (flags === undefined || (flags & AVAIL_NO_INTERRUPT) !== 0) return;
    this.#isr |= ISR_QUEUE;
    if (this.#msix.enabled) {
      if (q.msixVector !== VIRTIO_MSI_NO_VECTOR) this.#msix.notify(q.msixVector);
    } else {
      this.#intx.set(true);
    }
  }

  #read16(iova: bigint): number | undefined {
    const dma = this.#host!.dma;
    if (iova >= 0n && iova < SAFE_BIGINT) {
      const v = dma.read16(Number(iova));
      return v < 0 ? this.#dmaError() : v;
    }
    const b = this.#flags;
    if (!dma.read(iova, b)) return this.#dmaError();
    return b[0] | (b[1] << 8);
  }

  #dmaError(): undefined {
    this.counters.dmaErrors++;
    return this.#fail("a ring or buffer access faulted in the IOMMU");
  }

  #fail(why: string): undefined {
    this.#common.status |= S_NEEDS_RESET;
    this.#host?.trace(`virtio-net: ${why}; device needs reset`);
    return undefined;
  }
}

/** The receive backlog: every slot starts with a virtio-net header. */
function rxBacklog(): ByteViews {
  const bytes = new Uint8Array(VIRTIO_NET_RX_BACKLOG * RX_SLOT_BYTES);
  for (let i = 0; i < VIRTIO_NET_RX_BACKLOG; i++) rxHeader(bytes.subarray(i * RX_SLOT_BYTES));
  return byteViews(bytes);
}

/** Fill in the virtio-net header at the start of `slot` (§5.1.6: num_buffers 1, all else 0). */
function rxHeader(slot: Uint8Array): Uint8Array {
  slot.fill(0, 0, NET_HDR);
  slot[HDR_NUM_BUFFERS] = 1;
  return slot;
}

function allOnes(size: number): number | bigint {
  return size === 8 ? 0xffff_ffff_ffff_ffffn : 2 ** (8 * size) - 1;
}
