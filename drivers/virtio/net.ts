/**
 * A virtio-net driver (virtio 1.2 §5.1) over the modern PCI transport: one receive and one
 * transmit split virtqueue, frames in a preallocated {@link PacketPool} whose headroom holds the
 * 12-byte virtio-net header. It implements {@link NetDevice}: traffic is polled, and
 * {@link VirtioNet.waitForWork} sleeps on the receive queue's MSI-X vector, which the driver
 * turns on and off with VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.10) in NAPI fashion. The transmit queue
 * never interrupts (its buffers are reclaimed on the next transmit). A lost receive interrupt
 * costs at most LOST_IRQ_RESCAN_MS: the wait looks at the ring again on its own.
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
import { VFIO_PCI_MSIX_IRQ_INDEX } from "../../ffi/uapi/mod.ts";
import { runAll } from "../../core/syscall.ts";
import {
  DEFAULT_TX_TIMEOUT_MS,
  type InterruptMode,
  type NetDevice,
  type NetDeviceStats,
  newNetDeviceStats,
  type NicHealth,
  type NicOpenOptions,
  openOwningDevice,
  type WorkWaitResult,
} from "../net_device.ts";
import { type PacketBuffer, PacketPool } from "../packet_pool.ts";
import { pollForWork, waitForVectorsOrWork } from "../wait_for_work.ts";
import {
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_VERSION_1,
  VIRTIO_ID_NET,
  VIRTIO_MSI_NO_VECTOR,
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
} from "./registers.ts";
import { SplitQueue, splitQueueLayout } from "./virtqueue.ts";
import { VirtioRxRing, VirtioTxRing } from "./net_rings.ts";
import { VirtioPciTransport } from "./transport.ts";

/** Options of {@link VirtioNet.open} (the pool defaults to 4 × queue size buffers). */
export interface VirtioNetOptions extends NicOpenOptions {
  /** Entries per virtqueue (a power of two, capped by the device's maximum; default 256). */
  queueSize?: number;
}

const DEFAULT_QUEUE_SIZE = 256;
/** The status byte of a device that no longer answers MMIO. */
const STATUS_ALL_ONES = 0xff;
/** The MSI-X vector of the receive queue. */
const RX_VECTOR = 0;
const RX_VECTORS = [RX_VECTOR];

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
  /** MSI-X on the receive queue, or none (the device has no MSI-X, or interrupts were off). */
  readonly interruptMode: InterruptMode;
  readonly #dev: PciDevice;
  readonly #transport: VirtioPciTransport;
  #rx: VirtioRxRing;
  #tx: VirtioTxRing;
  readonly #rxKick: () => void;
  readonly #txKick: () => void;
  readonly #rings: DmaBuffer[];
  readonly #stats: NetDeviceStats = newNetDeviceStats();
  readonly #closeDevice: boolean;
  readonly #ownsPool: boolean;
  readonly #txTimeoutMs: number;
  #txProgressAt = 0;
  #recoveries = 0;
  #missedInterrupts = 0;
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
      msix: boolean;
      closeDevice: boolean;
      ownsPool: boolean;
      txTimeoutMs: number;
    },
  ) {
    this.#dev = dev;
    this.#transport = t;
    this.name = `virtio-net ${dev.bdf}`;
    this.features = s.features;
    this.mac = s.mac;
    this.#rings = s.rings;
    this.pool = s.pool;
    const rxNotify = t.notifyOffset(VIRTIO_NET_RX_QUEUE);
    const txNotify = t.notifyOffset(VIRTIO_NET_TX_QUEUE);
    this.#rxKick = () => t.notify(rxNotify, VIRTIO_NET_RX_QUEUE);
    this.#txKick = () => t.notify(txNotify, VIRTIO_NET_TX_QUEUE);
    this.#rx = new VirtioRxRing(s.rx, s.pool, this.#stats, this.#rxKick);
    this.#tx = new VirtioTxRing(s.tx, s.pool, this.#stats, this.#txKick);
    this.interruptMode = s.msix ? "msix" : "none";
    this.#closeDevice = s.closeDevice;
    this.#ownsPool = s.ownsPool;
    this.#txTimeoutMs = s.txTimeoutMs;
  }

  /**
   * Initialise the device (virtio 1.2 §3.1.1): reset, acknowledge, negotiate VERSION_1 (and
   * ACCESS_PLATFORM, which a device behind an IOMMU offers and requires), MAC and STATUS, set up
   * the queues (the receive queue on MSI-X vector 0 when the device has MSI-X and interrupts
   * are on), post receive buffers, DRIVER_OK. On failure everything allocated is freed (and the
   * PciDevice closed when `closeDevice`).
   */
  static open(dev: PciDevice, options: VirtioNetOptions = {}): Promise<VirtioNet> {
    return openOwningDevice(dev, options.closeDevice, () => VirtioNet.#open(dev, options));
  }

  static async #open(dev: PciDevice, options: VirtioNetOptions): Promise<VirtioNet> {
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
    const msixVectors = dev.irqs.irqInfo(VFIO_PCI_MSIX_IRQ_INDEX).count;
    const want = options.interrupts ?? true;
    if (want !== true && want !== false && !(want === "msix" && msixVectors > RX_VECTOR)) {
      throw new VfioError({
        operation: "VirtioNet.open",
        device: dev.bdf,
        message: want === "msix"
          ? `interrupts: "msix": the device offers ${msixVectors} MSI-X vector(s)`
          : `interrupts: ${JSON.stringify(want)}: a virtio PCI device signals its queues ` +
            `through MSI-X (or INTx), never MSI`,
        hint: "open it with interrupts: true (MSI-X when the device has it) or false (polling)",
      });
    }
    const msix = want !== false && msixVectors > RX_VECTOR;
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
      if (msix) dev.irqs.enableMsix(RX_VECTOR + 1);
      const layout = splitQueueLayout(size);
      for (let i = 0; i < 2; i++) {
        rings.push(dev.dma.allocate(layout.total, { read: true, write: true }));
      }
      const { rx, tx } = freshQueues(t, rings, size, msix, dev.bdf);
      if (options.pool && options.pool.headroom < VIRTIO_NET_HDR_SIZE) {
        throw new VfioError({
          operation: "VirtioNet.open",
          device: dev.bdf,
          message: `the pool's headroom of ${options.pool.headroom} bytes cannot hold the ` +
            `${VIRTIO_NET_HDR_SIZE}-byte virtio-net header`,
        });
      }
      pool = options.pool ?? new PacketPool(dev.dma, options.poolSize ?? size * 4);
      const mac = (features & bit(VIRTIO_NET_F_MAC)) !== 0n
        ? Uint8Array.from({ length: 6 }, (_, i) => t.deviceConfig8(VIRTIO_NET_CFG_MAC + i))
        : locallyAdministeredMac(dev.bdf);
      const nic = new VirtioNet(dev, t, {
        features,
        mac,
        rx,
        tx,
        rings,
        pool,
        msix,
        closeDevice: options.closeDevice ?? false,
        ownsPool: options.pool === undefined,
        txTimeoutMs: options.txTimeoutMs ?? DEFAULT_TX_TIMEOUT_MS,
      });
      nic.#rx.refill();
      t.setStatus(t.status() | VIRTIO_STATUS_DRIVER_OK);
      return nic;
    } catch (e) {
      runAll([
        () => t.setStatus(0),
        () => {
          if (msix) dev.irqs.disableMsix();
        },
        () => {
          if (options.pool === undefined) pool?.close();
        },
        ...rings.map((r) => () => dev.dma.free(r)),
      ]);
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
    const n = this.#rx.receive(out, max);
    if (n > 0) this.#rx.refill();
    return n;
  }

  /** Queue up to `count` frames for transmit. */
  txBatch(buffers: PacketBuffer[], count: number): number {
    this.#reclaimTx();
    if (this.#tx.inFlight === 0) this.#txProgressAt = this.#dev.kernel.now();
    const n = this.#tx.send(buffers, count);
    this.#stats.txDropped += count - n;
    return n;
  }

  /** Times {@link check} reset and resumed the device. */
  get recoveries(): number {
    return this.#recoveries;
  }

  /** Frames {@link waitForWork} found in the ring after its sleep ended without their interrupt. */
  get missedInterrupts(): number {
    return this.#missedInterrupts;
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
    const stalled = this.#tx.inFlight > 0 &&
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

  /** Whether the receive queue has used buffers waiting. */
  rxReady(): boolean {
    return this.#rx.ready();
  }

  /**
   * NAPI-style wait (see {@link NetDevice.waitForWork}): drain the vector's eventfd, clear
   * VIRTQ_AVAIL_F_NO_INTERRUPT, look at the used ring again, sleep on the MSI-X vector, then set
   * the flag again. Without MSI-X it looks at the ring every millisecond.
   */
  async waitForWork(timeoutMs: number, signal?: AbortSignal): Promise<WorkWaitResult> {
    if (this.#closed) return "cancelled";
    const rx = this.#rx.queue;
    if (rx.usedPending() > 0) return "ready";
    if (this.interruptMode === "none") {
      return await pollForWork(this.#dev.kernel, () => this.rxReady(), timeoutMs, signal);
    }
    this.#dev.irqs.poll(RX_VECTOR);
    rx.enableInterrupts();
    if (rx.usedPending() > 0) {
      rx.suppressInterrupts();
      return "ready";
    }
    const got = await waitForVectorsOrWork(
      this.#dev.kernel,
      this.#dev.irqs,
      RX_VECTORS,
      timeoutMs,
      () => this.rxReady(),
      signal,
    );
    if (this.#closed) return "cancelled";
    rx.suppressInterrupts();
    if (got !== "missed") return got;
    this.#missedInterrupts++;
    return "ready";
  }

  /**
   * Reset the device (stopping its DMA), disable its vector, free rings and pool; close the
   * PciDevice too when the driver was asked to.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const dev = this.#dev;
    const steps = [
      () => this.#transport.setStatus(0),
      () => {
        if (this.interruptMode === "msix") dev.irqs.disableMsix();
      },
      () => this.#rx.drain(),
      () => this.#tx.drain(),
      () => {
        if (this.#ownsPool) this.pool.close();
      },
      ...this.#rings.map((r) => () => dev.dma.free(r)),
    ];
    if (this.#closeDevice) steps.push(() => dev.close());
    runAll(steps);
  }

  /** Take back sent buffers; the device made progress when it used some. */
  #reclaimTx(): void {
    if (this.#tx.reclaim() > 0) this.#txProgressAt = this.#dev.kernel.now();
  }

  /**
   * Reset and resume: a function reset when VFIO offers one (it also ends a hang), a virtio
   * reset, every buffer the device held back to the pool (unsent frames counted as dropped),
   * fresh rings on the same queue vector, the negotiated features again, receive buffers,
   * DRIVER_OK.
   */
  async #restart(): Promise<void> {
    const t = this.#transport;
    const dev = this.#dev;
    if (dev.device.getInfo().resetWorks) dev.device.reset();
    await t.reset();
    this.#rx.drain();
    this.#stats.txDropped += this.#tx.inFlight;
    this.#tx.drain();
    t.setStatus(VIRTIO_STATUS_ACKNOWLEDGE);
    t.setStatus(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    t.acceptFeatures(this.features);
    const size = this.#rx.queue.size;
    const { rx, tx } = freshQueues(t, this.#rings, size, this.interruptMode === "msix", dev.bdf);
    this.#rx = new VirtioRxRing(rx, this.pool, this.#stats, this.#rxKick);
    this.#tx = new VirtioTxRing(tx, this.pool, this.#stats, this.#txKick);
    this.#rx.refill();
    t.setStatus(t.status() | VIRTIO_STATUS_DRIVER_OK);
    this.#txProgressAt = dev.kernel.now();
    this.#recoveries++;
  }
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/**
 * Zeroed split queues over the two ring buffers, without interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT),
 * enabled in the device: the receive queue on MSI-X vector {@link RX_VECTOR} when `msix`, no
 * configuration vector. A device that does not take the vector is a VfioError.
 */
function freshQueues(
  t: VirtioPciTransport,
  rings: readonly DmaBuffer[],
  size: number,
  msix: boolean,
  bdf: string,
): { rx: SplitQueue; tx: SplitQueue } {
  const rx = new SplitQueue(rings[0], size);
  const tx = new SplitQueue(rings[1], size);
  rx.suppressInterrupts();
  tx.suppressInterrupts();
  t.setConfigVector(VIRTIO_MSI_NO_VECTOR);
  const vector = t.enableQueue(VIRTIO_NET_RX_QUEUE, rx, msix ? RX_VECTOR : VIRTIO_MSI_NO_VECTOR);
  if (msix && vector !== RX_VECTOR) {
    throw new VfioError({
      operation: "VirtioNet.open",
      device: bdf,
      message: `the device did not take MSI-X vector ${RX_VECTOR} for the receive queue ` +
        `(it reads back 0x${vector.toString(16)})`,
      hint: "open it with interrupts: false to poll without interrupts",
    });
  }
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
