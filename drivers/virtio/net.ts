/**
 * A virtio-net driver (virtio 1.2 §5.1) over the modern PCI transport: one receive and one
 * transmit split virtqueue, polling (no interrupts), frames in a preallocated {@link PacketPool}
 * whose headroom holds the 12-byte virtio-net header. It implements {@link NetDevice}.
 *
 * Recovery: {@link VirtioNet.check}, called from an idle loop, finds a device that stopped — it
 * set DEVICE_NEEDS_RESET (a ring or buffer access faulted in the IOMMU), or left transmit
 * buffers unsent longer than `txTimeoutMs` (a hung device) — and resets and resumes it: function
 * reset where VFIO offers one, virtio reset, every buffer back to the pool, fresh rings, the same
 * features. A device that reads all-ones (surprise-removed, or EEH-frozen on POWER) is a
 * VfioError.
 *
 * @example
 * ```ts
 * using dev = openPciDevice("0000:00:03.0", { kernel, iommu: "auto" });
 * const nic = await VirtioNet.open(dev);
 * const stack = new NetStack(nic, { address: "10.0.2.15/24", now: () => kernel.now() });
 * ```
 *
 * @module
 */

import type { PciDevice } from "../../core/pci_device.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { VfioError } from "../../core/errors.ts";
import type { NetDevice, NetDeviceStats } from "../net_device.ts";
import { type PacketBuffer, PacketPool } from "../packet_pool.ts";
import {
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_VERSION_1,
  VIRTIO_ID_NET,
  VIRTIO_NET_CFG_MAC,
  VIRTIO_NET_CFG_STATUS,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_RX_QUEUE,
  VIRTIO_NET_S_LINK_UP,
  VIRTIO_NET_TX_QUEUE,
  VIRTIO_PCI_MODERN_DEVICE_BASE,
  VIRTIO_PCI_TRANSITIONAL_NET,
  VIRTIO_PCI_VENDOR_ID,
  VIRTIO_STATUS_ACKNOWLEDGE,
  VIRTIO_STATUS_DEVICE_NEEDS_RESET,
  VIRTIO_STATUS_DRIVER,
  VIRTIO_STATUS_DRIVER_OK,
  VIRTQ_DESC_F_WRITE,
} from "./registers.ts";
import { SplitQueue, splitQueueLayout } from "./virtqueue.ts";
import { VirtioPciTransport } from "./transport.ts";

/** Options of {@link VirtioNet.open}. */
export interface VirtioNetOptions {
  /** Entries per virtqueue (a power of two, capped by the device's maximum; default 256). */
  queueSize?: number;
  /** Packet buffers in the pool (default 4 × queue size). */
  poolSize?: number;
  /**
   * Transmit buffers the device leaves unsent longer than this mean it hung; {@link
   * VirtioNet.check} then resets it (default 5000 ms, Linux's netdev watchdog).
   */
  txTimeoutMs?: number;
}

/** What {@link VirtioNet.check} found: a working device, or one it had to reset and resume. */
export type NicHealth = "ok" | "recovered";

const DEFAULT_QUEUE_SIZE = 256;
const DEFAULT_TX_TIMEOUT_MS = 5000;
/** The status byte of a device that no longer answers MMIO. */
const STATUS_ALL_ONES = 0xff;

function bit(n: number): bigint {
  return 1n << BigInt(n);
}

/** The virtio-net driver. */
export class VirtioNet implements NetDevice {
  /** "virtio-net <bdf>". */
  readonly name: string;
  /** The MAC address. */
  readonly mac: Uint8Array;
  /** The packet-buffer pool. */
  readonly pool: PacketPool;
  /** The negotiated feature bits. */
  readonly features: bigint;
  readonly #dev: PciDevice;
  readonly #transport: VirtioPciTransport;
  #rx: SplitQueue;
  #tx: SplitQueue;
  readonly #rings: DmaBuffer[];
  readonly #rxSlot: (PacketBuffer | undefined)[];
  readonly #txSlot: (PacketBuffer | undefined)[];
  #txFree: number[];
  readonly #txTimeoutMs: number;
  #txProgressAt = 0;
  #recoveries = 0;
  readonly #rxNotify: number;
  readonly #txNotify: number;
  readonly #stats: NetDeviceStats = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    rxDropped: 0,
    txDropped: 0,
  };
  #closed = false;

  private constructor(
    dev: PciDevice,
    t: VirtioPciTransport,
    s: {
      features: bigint;
      mac: Uint8Array;
      rx: SplitQueue;
      tx: SplitQueue;
      rings: DmaBuffer[];
      pool: PacketPool;
      txTimeoutMs: number;
    },
  ) {
    this.#dev = dev;
    this.#transport = t;
    this.name = `virtio-net ${dev.bdf}`;
    this.features = s.features;
    this.mac = s.mac;
    this.#rx = s.rx;
    this.#tx = s.tx;
    this.#rings = s.rings;
    this.pool = s.pool;
    this.#rxSlot = new Array(s.rx.size).fill(undefined);
    this.#txSlot = new Array(s.tx.size).fill(undefined);
    this.#txFree = Array.from({ length: s.tx.size }, (_, i) => s.tx.size - 1 - i);
    this.#rxNotify = t.notifyOffset(VIRTIO_NET_RX_QUEUE);
    this.#txNotify = t.notifyOffset(VIRTIO_NET_TX_QUEUE);
    this.#txTimeoutMs = s.txTimeoutMs;
  }

  /**
   * Initialise the device (virtio 1.2 §3.1.1): reset, acknowledge, negotiate VERSION_1 (and
   * ACCESS_PLATFORM, which a device behind an IOMMU offers and requires), MAC and STATUS, set up
   * the queues, post receive buffers, DRIVER_OK. On failure everything allocated is freed.
   */
  static async open(dev: PciDevice, options: VirtioNetOptions = {}): Promise<VirtioNet> {
    const vendor = dev.config.read16(0);
    const device = dev.config.read16(2);
    if (
      vendor !== VIRTIO_PCI_VENDOR_ID ||
      (device !== VIRTIO_PCI_MODERN_DEVICE_BASE + VIRTIO_ID_NET &&
        device !== VIRTIO_PCI_TRANSITIONAL_NET)
    ) {
      throw new VfioError({
        operation: "VirtioNet.open",
        device: dev.bdf,
        message: `device ${hex4(vendor)}:${hex4(device)} is not a virtio network device`,
        hint: "pass the address of a virtio-net device (1af4:1041, or transitional 1af4:1000)",
      });
    }
    dev.config.enableBusMaster();
    const t = VirtioPciTransport.open(dev);
    await t.reset();
    t.setStatus(VIRTIO_STATUS_ACKNOWLEDGE);
    t.setStatus(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    const offered = t.deviceFeatures();
    if ((offered & bit(VIRTIO_F_VERSION_1)) === 0n) {
      throw new VfioError({
        operation: "VirtioNet.open",
        device: dev.bdf,
        message: "the device does not offer VIRTIO_F_VERSION_1 (legacy-only device)",
        hint: "use a virtio 1.x device (QEMU: disable-legacy=on)",
      });
    }
    const wanted = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_ACCESS_PLATFORM) | bit(VIRTIO_NET_F_MAC) |
      bit(VIRTIO_NET_F_STATUS);
    const features = offered & wanted;
    if ((features & bit(VIRTIO_F_ACCESS_PLATFORM)) === 0n) {
      throw new VfioError({
        operation: "VirtioNet.open",
        device: dev.bdf,
        message:
          "the device does not offer VIRTIO_F_ACCESS_PLATFORM: its DMA would bypass the IOMMU",
        hint: "QEMU: -device virtio-net-pci,iommu_platform=on",
      });
    }
    t.acceptFeatures(features);
    const size = Math.min(
      options.queueSize ?? DEFAULT_QUEUE_SIZE,
      t.maxQueueSize(VIRTIO_NET_RX_QUEUE),
      t.maxQueueSize(VIRTIO_NET_TX_QUEUE),
    );
    if (size === 0 || (size & (size - 1)) !== 0) {
      throw new VfioError({
        operation: "VirtioNet.open",
        device: dev.bdf,
        message: `queue size ${size} is not a power of two`,
        hint: "pass queueSize as a power of two no larger than the device's maximum",
      });
    }
    const rings: DmaBuffer[] = [];
    let pool: PacketPool | undefined;
    try {
      const layout = splitQueueLayout(size);
      for (let i = 0; i < 2; i++) {
        rings.push(dev.dma.allocate(layout.total, { read: true, write: true }));
      }
      const { rx, tx } = freshQueues(t, rings, size);
      pool = new PacketPool(dev.dma, options.poolSize ?? size * 4);
      const mac = (features & bit(VIRTIO_NET_F_MAC)) !== 0n
        ? Uint8Array.from({ length: 6 }, (_, i) => t.deviceConfig8(VIRTIO_NET_CFG_MAC + i))
        : locallyAdministeredMac(dev.bdf);
      const txTimeoutMs = options.txTimeoutMs ?? DEFAULT_TX_TIMEOUT_MS;
      const nic = new VirtioNet(dev, t, { features, mac, rx, tx, rings, pool, txTimeoutMs });
      nic.#refillRx();
      t.setStatus(t.status() | VIRTIO_STATUS_DRIVER_OK);
      return nic;
    } catch (e) {
      t.setStatus(0);
      pool?.close();
      for (const r of rings) dev.dma.free(r);
      throw e;
    }
  }

  /** Link state from the device config (up when the device has no STATUS feature). */
  linkUp(): boolean {
    if ((this.features & bit(VIRTIO_NET_F_STATUS)) === 0n) return true;
    return (this.#transport.deviceConfig16(VIRTIO_NET_CFG_STATUS) & VIRTIO_NET_S_LINK_UP) !== 0;
  }

  /** Receive up to `max` frames. */
  rxBatch(out: PacketBuffer[], max: number): number {
    let n = 0;
    const rx = this.#rx;
    while (n < max && rx.usedPending() > 0) {
      const id = rx.popUsed();
      const buf = this.#rxSlot[id];
      this.#rxSlot[id] = undefined;
      if (!buf) {
        this.#stats.rxDropped++;
        continue;
      }
      const frame = rx.lastLength - VIRTIO_NET_HDR_SIZE;
      if (frame <= 0 || frame > buf.data.length) {
        this.#stats.rxDropped++;
        this.pool.free(buf);
        continue;
      }
      buf.length = frame;
      out[n++] = buf;
      this.#stats.rxPackets++;
      this.#stats.rxBytes += frame;
    }
    if (n > 0) this.#refillRx();
    return n;
  }

  /** Queue up to `count` frames for transmit. */
  txBatch(buffers: PacketBuffer[], count: number): number {
    this.#reclaimTx();
    const tx = this.#tx;
    let n = 0;
    if (this.#txFree.length === tx.size) this.#txProgressAt = this.#dev.kernel.now();
    for (; n < count && this.#txFree.length > 0; n++) {
      const buf = buffers[n];
      const slot = this.#txFree.pop()!;
      buf.head.fill(0, buf.head.length - VIRTIO_NET_HDR_SIZE);
      tx.setDescriptor(slot, buf.iova - VIRTIO_NET_HDR_SIZE, buf.length + VIRTIO_NET_HDR_SIZE, 0);
      this.#txSlot[slot] = buf;
      tx.offer(slot);
      this.#stats.txBytes += buf.length;
    }
    if (n > 0) {
      tx.publish();
      if (tx.needsNotify()) this.#transport.notify(this.#txNotify, VIRTIO_NET_TX_QUEUE);
    }
    this.#stats.txDropped += count - n;
    return n;
  }

  /** Times {@link check} reset and resumed the device. */
  get recoveries(): number {
    return this.#recoveries;
  }

  /**
   * Check the device from an idle loop (one MMIO read): reset and resume it when it stopped
   * (see the module doc) and say so; a VfioError when it no longer answers MMIO.
   */
  async check(): Promise<NicHealth> {
    const status = this.#transport.status();
    if (status === STATUS_ALL_ONES) {
      throw new VfioError({
        operation: "virtio-net",
        device: this.#dev.bdf,
        message: "the device status reads all-ones: the device stopped answering MMIO",
        hint: "the device was removed, or on POWER EEH froze its PE (VFIO_EEH_PE_OP can reset " +
          "it); close the device",
      });
    }
    this.#reclaimTx();
    const stalled = this.#txFree.length < this.#tx.size &&
      this.#dev.kernel.now() - this.#txProgressAt > this.#txTimeoutMs;
    if ((status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) === 0 && !stalled) return "ok";
    await this.#restart();
    return "recovered";
  }

  /** A snapshot of the counters. */
  stats(): NetDeviceStats {
    this.#reclaimTx();
    return { ...this.#stats };
  }

  /**
   * Reset the device (stopping its DMA), take back the buffers its rings held (the pool is whole
   * again), and free rings and pool. The PciDevice stays open.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#transport.setStatus(0);
    for (let i = 0; i < this.#rxSlot.length; i++) this.#giveBack(this.#rxSlot, i);
    for (let i = 0; i < this.#txSlot.length; i++) this.#giveBack(this.#txSlot, i);
    this.pool.close();
    for (const r of this.#rings) this.#dev.dma.free(r);
  }

  #reclaimTx(): void {
    const tx = this.#tx;
    if (tx.usedPending() > 0) this.#txProgressAt = this.#dev.kernel.now();
    while (tx.usedPending() > 0) {
      const id = tx.popUsed();
      const buf = this.#txSlot[id];
      if (!buf) continue;
      this.#txSlot[id] = undefined;
      this.#txFree.push(id);
      this.#stats.txPackets++;
      this.pool.free(buf);
    }
  }

  /**
   * Reset and resume: a function reset when VFIO offers one (it also ends a hang), a virtio
   * reset, every buffer the device held back to the pool (unsent frames counted as dropped),
   * fresh rings, the negotiated features again, receive buffers, DRIVER_OK.
   */
  async #restart(): Promise<void> {
    const t = this.#transport;
    if (this.#dev.device.getInfo().resetWorks) this.#dev.device.reset();
    await t.reset();
    for (let i = 0; i < this.#rxSlot.length; i++) this.#giveBack(this.#rxSlot, i);
    for (let i = 0; i < this.#txSlot.length; i++) {
      if (this.#giveBack(this.#txSlot, i)) this.#stats.txDropped++;
    }
    this.#txFree = Array.from({ length: this.#tx.size }, (_, i) => this.#tx.size - 1 - i);
    t.setStatus(VIRTIO_STATUS_ACKNOWLEDGE);
    t.setStatus(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    t.acceptFeatures(this.features);
    const { rx, tx } = freshQueues(t, this.#rings, this.#rx.size);
    this.#rx = rx;
    this.#tx = tx;
    this.#refillRx();
    t.setStatus(t.status() | VIRTIO_STATUS_DRIVER_OK);
    this.#txProgressAt = this.#dev.kernel.now();
    this.#recoveries++;
  }

  /** Return slot `i`'s buffer (if any) to the pool; true when there was one. */
  #giveBack(slots: (PacketBuffer | undefined)[], i: number): boolean {
    const buf = slots[i];
    if (buf === undefined) return false;
    slots[i] = undefined;
    this.pool.free(buf);
    return true;
  }

  #refillRx(): void {
    const rx = this.#rx;
    let offered = 0;
    for (let id = 0; id < rx.size; id++) {
      if (this.#rxSlot[id]) continue;
      const buf = this.pool.alloc();
      if (!buf) break;
      rx.setDescriptor(
        id,
        buf.iova - VIRTIO_NET_HDR_SIZE,
        buf.data.length + VIRTIO_NET_HDR_SIZE,
        VIRTQ_DESC_F_WRITE,
      );
      this.#rxSlot[id] = buf;
      rx.offer(id);
      offered++;
    }
    if (offered > 0) {
      rx.publish();
      if (rx.needsNotify()) this.#transport.notify(this.#rxNotify, VIRTIO_NET_RX_QUEUE);
    }
  }
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/** Zeroed split queues over the two ring buffers, without interrupts, enabled in the device. */
function freshQueues(
  t: VirtioPciTransport,
  rings: readonly DmaBuffer[],
  size: number,
): { rx: SplitQueue; tx: SplitQueue } {
  const rx = new SplitQueue(rings[0], size);
  const tx = new SplitQueue(rings[1], size);
  rx.suppressInterrupts();
  tx.suppressInterrupts();
  t.enableQueue(VIRTIO_NET_RX_QUEUE, rx);
  t.enableQueue(VIRTIO_NET_TX_QUEUE, tx);
  return { rx, tx };
}

/** A stable locally administered unicast MAC derived from the PCI address. */
function locallyAdministeredMac(bdf: string): Uint8Array {
  let h = 0x811c9dc5;
  for (const c of bdf) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return new Uint8Array([
    0x02,
    0x00,
    (h >>> 24) & 0xff,
    (h >>> 16) & 0xff,
    (h >>> 8) & 0xff,
    h & 0xff,
  ]);
}
