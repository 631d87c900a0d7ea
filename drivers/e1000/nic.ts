/**
 * The packet driver of the e1000 family, shared by the 82574L (drivers/e1000e/) and the 82576
 * (drivers/igb/): the datasheets' initialization sequence (82576 §4.5, 82574 §4.6) over the
 * per-model table (model.ts), one or more receive/transmit queue pairs (rings.ts) with 2 KiB
 * buffers from a {@link PacketPool}, the receive filter in RCTL and the multicast table, the
 * hardware statistics (stats.ts), and a NAPI-style {@link IntelNic.waitForWork} on the receive
 * queues' MSI-X vectors (or MSI). It implements {@link NetDevice}.
 *
 * Recovery: {@link IntelNic.check}, called from an idle loop, finds a device that stopped — a
 * transmit queue holding frames it does not complete for longer than `txTimeoutMs` with the link
 * up (a hung device, a completion lost to an IOMMU fault) — and resets and resumes it: function
 * reset where VFIO offers one, global reset, every buffer back to the pool (unsent frames counted
 * as dropped), the rings rebuilt over their memory, the receive filter, multicast table, RSS and
 * interrupt routing programmed again. A device that reads all-ones (surprise-removed, or
 * EEH-frozen on POWER) is a VfioError. A lost receive interrupt costs at most
 * LOST_IRQ_RESCAN_MS (wait_for_work.ts): the wait looks at the rings again on its own.
 *
 * @example
 * ```ts
 * using dev = openPciDevice("0000:00:05.0", { kernel, iommu: "auto" });
 * const nic = await IntelNic.open(dev, { queues: 4 });
 * const stack = new NetStack(nic, { address: "10.0.2.15/24", now: () => kernel.now() });
 * for (;;) if (stack.poll() === 0) await nic.waitForWork(1000);
 * ```
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import type { PciDevice } from "../../core/pci_device.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { VfioError } from "../../core/errors.ts";
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
import { E1000Controller } from "./controller.ts";
import type { E1000IrqScheme, E1000Model } from "./model.ts";
import { describeE1000Models } from "./models.ts";
import {
  E1000_MTA,
  E1000_MTA_REGISTERS,
  E1000_RCTL,
  E1000_RCTL_BAM,
  E1000_RCTL_BSIZE_2048,
  E1000_RCTL_EN,
  E1000_RCTL_MO_47_36,
  E1000_RCTL_MPE,
  E1000_RCTL_RDMTS_HALF,
  E1000_RCTL_SECRC,
  E1000_RCTL_UPE,
  E1000_STATUS,
  E1000_STATUS_LU,
  MTA_HASH_MASK,
  MTA_HASH_SHIFT,
} from "./registers.ts";
import type { RxRing, TxRing } from "./rings.ts";
import {
  allocRing,
  pickIrqScheme,
  type QueueSetup,
  ringSize,
  startQueues,
  stopDevice,
  usage,
} from "./setup.ts";
import { E1000Counters, type E1000HardwareStats } from "./stats.ts";
import { deviceGone, REGISTER_ALL_ONES, TxWatchdog } from "./watchdog.ts";

/** Receive buffers: 2 KiB, the whole pool buffer (no headroom: these NICs need no header). */
export const E1000_BUFFER_SIZE = 2048;
/** Default wait for the link at open (ms): covers a PHY's auto-negotiation. */
export const E1000_DEFAULT_LINK_TIMEOUT_MS = 3000;
/**
 * The longest frame the NIC writes: 1518 bytes plus a VLAN tag, CRC stripped (RCTL.LPE = 0, so
 * longer frames are dropped as oversize). A caller's pool must hold this after its headroom.
 */
export const E1000_MAX_FRAME = 1522;
/** Buffers beyond the rings' for frames the stack holds (a receive and a transmit batch). */
const POOL_SLACK = 64;
const MTA_BITS_PER_REGISTER = 32;
const REGISTER_BYTES = 4;
const BITS_PER_BYTE = 8;
const MAC_BYTE_4 = 4;
const MAC_BYTE_5 = 5;

/** Options of {@link IntelNic.open}. */
export interface IntelNicOptions extends NicOpenOptions {
  /** Descriptors per receive ring: a power of two from 8 to 4096 (default 256). */
  rxRingSize?: number;
  /** Descriptors per transmit ring: a power of two from 8 to 4096 (default 256). */
  txRingSize?: number;
  /**
   * Queue pairs (default 1). More than one spreads received flows over the queues with RSS, each
   * queue on its own MSI-X vector (82576: up to 8; 82574: 1).
   */
  queues?: number;
  /** Wait this long for the link at open, in ms (default 3000); a down link is not an error. */
  linkTimeoutMs?: number;
  /** Receive every unicast frame (RCTL.UPE; default false). */
  promiscuous?: boolean;
  /** Receive every multicast frame (RCTL.MPE; default false). */
  allMulticast?: boolean;
  /** The model the caller expects (openIgb/openE1000e): another device id is refused. */
  expect?: E1000Model;
}

/** The receive filter in RCTL. */
export interface ReceiveFilter {
  /** Every unicast frame (UPE). */
  promiscuous: boolean;
  /** Every multicast frame (MPE). */
  allMulticast: boolean;
  /** Broadcast frames (BAM). */
  broadcast: boolean;
}

/** {@link NetDeviceStats} plus the hardware counters. */
export interface IntelNicStats extends NetDeviceStats {
  /** The statistics registers, accumulated since open. */
  hardware: E1000HardwareStats;
  /** Frames received per queue (how RSS spread them). */
  rxQueuePackets: number[];
}

/** An e1000-family NIC (82574L or 82576) driven through VFIO. */
export class IntelNic implements NetDevice {
  /** "<model> <bdf>", e.g. "igb 0000:00:05.0". */
  readonly name: string;
  /** The station address. */
  readonly mac: Uint8Array;
  /** The packet-buffer pool (2 KiB buffers, no headroom). */
  readonly pool: PacketPool;
  /** The controller model. */
  readonly model: E1000Model;
  /** Queue pairs. */
  readonly queues: number;
  /** How {@link waitForWork} learns about frames. */
  readonly interruptMode: InterruptMode;
  readonly #dev: PciDevice;
  readonly #ctl: E1000Controller;
  readonly #regs: Mmio;
  readonly #rx: RxRing[];
  readonly #tx: TxRing[];
  /** What the queues are built from (and rebuilt from after a reset). */
  readonly #queueSetup: QueueSetup;
  readonly #watchdog: TxWatchdog;
  readonly #stats: NetDeviceStats;
  readonly #counters: E1000Counters;
  readonly #irq: E1000IrqScheme | undefined;
  readonly #vectors: number[];
  readonly #armBits: number;
  readonly #closeDevice: boolean;
  readonly #ownsPool: boolean;
  readonly #mta = new Uint32Array(E1000_MTA_REGISTERS);
  #rctl = 0;
  #rxTurn = 0;
  #txQueue = 0;
  #recoveries = 0;
  #missedInterrupts = 0;
  #closed = false;

  private constructor(parts: {
    dev: PciDevice;
    ctl: E1000Controller;
    mac: Uint8Array;
    pool: PacketPool;
    rx: RxRing[];
    tx: TxRing[];
    queueSetup: QueueSetup;
    txTimeoutMs: number;
    stats: NetDeviceStats;
    counters: E1000Counters;
    irq: E1000IrqScheme | undefined;
    closeDevice: boolean;
    ownsPool: boolean;
  }) {
    this.#dev = parts.dev;
    this.#ctl = parts.ctl;
    this.#regs = parts.ctl.regs;
    this.model = parts.ctl.model;
    this.name = `${this.model.name} ${parts.dev.bdf}`;
    this.mac = parts.mac;
    this.pool = parts.pool;
    this.#rx = parts.rx;
    this.#tx = parts.tx;
    this.#queueSetup = parts.queueSetup;
    this.#watchdog = new TxWatchdog(parts.rx.length, parts.txTimeoutMs, parts.dev.kernel.now());
    this.queues = parts.rx.length;
    this.#stats = parts.stats;
    this.#counters = parts.counters;
    this.#irq = parts.irq;
    this.interruptMode = parts.irq?.kind ?? "none";
    const irq = parts.irq;
    this.#vectors = irq === undefined ? [] : [...new Set(parts.rx.map((_, q) => irq.vectorOf(q)))];
    this.#armBits = irq === undefined
      ? 0
      : parts.rx.reduce((bits, _, q) => bits | irq.queueBits(q), 0) >>> 0;
    this.#closeDevice = parts.closeDevice;
    this.#ownsPool = parts.ownsPool;
  }

  /**
   * Bring the NIC up: reset, link, statistics, receive and transmit queues, receive filter,
   * interrupts (masked until {@link waitForWork}). On failure the device is reset and everything
   * allocated is freed (the PciDevice too when `closeDevice`).
   */
  static open(dev: PciDevice, options: IntelNicOptions = {}): Promise<IntelNic> {
    return openOwningDevice(dev, options.closeDevice, () => IntelNic.#open(dev, options));
  }

  static async #open(dev: PciDevice, options: IntelNicOptions): Promise<IntelNic> {
    const ctl = E1000Controller.open(dev);
    const model = ctl.model;
    if (options.expect !== undefined && options.expect !== model) {
      throw new VfioError({
        operation: `${options.expect.name} open`,
        device: dev.bdf,
        message: `the device is an ${model.chip} (${model.name}), not an ${options.expect.chip}`,
        hint: `open it with openNic(), which picks the driver by PCI id (${describeE1000Models()})`,
      });
    }
    const queues = options.queues ?? 1;
    if (!Number.isInteger(queues) || queues < 1 || queues > model.queues.max) {
      throw usage(dev, `queues ${queues}: the ${model.chip} driver uses 1 to ${model.queues.max}`);
    }
    const txTimeoutMs = options.txTimeoutMs ?? DEFAULT_TX_TIMEOUT_MS;
    if (!(txTimeoutMs > 0)) {
      throw usage(dev, `txTimeoutMs ${txTimeoutMs}: a positive number of milliseconds`);
    }
    const rxSize = ringSize(dev, "rxRingSize", options.rxRingSize);
    const txSize = ringSize(dev, "txRingSize", options.txRingSize);
    const poolSize = options.poolSize ?? queues * (rxSize + txSize) + POOL_SLACK;
    if (options.pool && options.pool.bufferSize - options.pool.headroom < E1000_MAX_FRAME) {
      throw usage(
        dev,
        `the pool's buffers hold ${
          options.pool.bufferSize - options.pool.headroom
        } bytes after the headroom; a frame needs ${E1000_MAX_FRAME}`,
      );
    }
    // Before the device is touched: an interrupt mode it lacks is the caller's error.
    const irq = options.interrupts === false
      ? undefined
      : pickIrqScheme(dev, model, queues, options.interrupts ?? true);
    dev.config.enableBusMaster();
    await ctl.reset();
    const mac = ctl.macAddress() ?? await ctl.nvmMacAddress();
    await ctl.linkSetup(options.linkTimeoutMs ?? E1000_DEFAULT_LINK_TIMEOUT_MS);

    const regs = ctl.regs;
    const rings: DmaBuffer[] = [];
    const rx: RxRing[] = [];
    const tx: TxRing[] = [];
    let pool: PacketPool | undefined;
    let irqEnabled: E1000IrqScheme | undefined;
    try {
      pool = options.pool ?? new PacketPool(dev.dma, poolSize, E1000_BUFFER_SIZE, 0);
      const stats = newNetDeviceStats();
      const counters = new E1000Counters(regs);
      counters.discard();
      for (let i = 0; i < E1000_MTA_REGISTERS; i++) regs.write32(E1000_MTA + i * REGISTER_BYTES, 0);
      const rxMemory = Array.from({ length: queues }, () => allocRing(dev, rings, rxSize));
      const txMemory = Array.from({ length: queues }, () => allocRing(dev, rings, txSize));
      const queueSetup: QueueSetup = {
        dev,
        regs,
        model,
        rxMemory,
        txMemory,
        rxSize,
        txSize,
        bufferSize: E1000_BUFFER_SIZE,
        pool,
        stats,
      };
      await startQueues(queueSetup, rx, tx);
      if (irq !== undefined) {
        if (irq.kind === "msix") dev.irqs.enableMsix(irq.vectors(queues));
        else dev.irqs.enableMsi(irq.vectors(queues));
        irqEnabled = irq;
        irq.setup(regs, queues);
      }
      const nic = new IntelNic({
        dev,
        ctl,
        mac,
        pool,
        rx,
        tx,
        queueSetup,
        txTimeoutMs,
        stats,
        counters,
        irq,
        closeDevice: options.closeDevice ?? false,
        ownsPool: options.pool === undefined,
      });
      nic.setReceiveFilter({
        promiscuous: options.promiscuous ?? false,
        allMulticast: options.allMulticast ?? false,
        broadcast: true,
      });
      return nic;
    } catch (e) {
      runAll([
        () => stopDevice(regs, model, queues),
        () => {
          if (irqEnabled?.kind === "msix") dev.irqs.disableMsix();
          else if (irqEnabled?.kind === "msi") dev.irqs.disableMsi();
        },
        // The buffers the receive rings took go back: a caller's pool outlives this open.
        ...[...rx, ...tx].map((ring) => () => ring.drain()),
        () => {
          if (options.pool === undefined) pool?.close();
        },
        ...rings.map((r) => () => dev.dma.free(r)),
      ]);
      throw e;
    }
  }

  /** Link state from STATUS.LU. */
  linkUp(): boolean {
    return this.#ctl.linkUp();
  }

  /**
   * Receive up to `max` frames, from the queues in turn (RSS). Replies then go out on the queue
   * pair of the last queue that had frames (as Linux records the receive queue).
   */
  rxBatch(out: PacketBuffer[], max: number): number {
    this.#assertOpen("rxBatch");
    const rx = this.#rx;
    if (rx.length === 1) {
      const n = rx[0].receive(out, 0, max);
      if (n > 0 || rx[0].posted < rx[0].size - 1) rx[0].refill();
      return n;
    }
    let n = 0;
    const start = this.#rxTurn;
    this.#rxTurn = (start + 1) % rx.length;
    for (let k = 0; k < rx.length && n < max; k++) {
      const q = (start + k) % rx.length;
      const got = rx[q].receive(out, n, max - n);
      if (got > 0) this.#txQueue = q;
      if (got > 0 || rx[q].posted < rx[q].size - 1) rx[q].refill();
      n += got;
    }
    return n;
  }

  /** Queue up to `count` frames on the current queue pair's transmit ring. */
  txBatch(buffers: PacketBuffer[], count: number): number {
    this.#assertOpen("txBatch");
    const ring = this.#tx[this.#txQueue];
    ring.reclaim();
    const n = ring.send(buffers, count);
    this.#stats.txDropped += count - n;
    return n;
  }

  /**
   * The driver's counters and the hardware statistics registers (read and accumulated; not read
   * from a device that answers all-ones, whose registers hold no counts).
   */
  stats(): IntelNicStats {
    this.#assertOpen("stats");
    for (const ring of this.#tx) ring.reclaim();
    const answering = this.#regs.read32(E1000_STATUS) >>> 0 !== REGISTER_ALL_ONES;
    return {
      ...this.#stats,
      hardware: answering ? this.#counters.update() : this.#counters.totals(),
      rxQueuePackets: this.#rx.map((r) => r.packets),
    };
  }

  /** Frames waiting in any receive ring. */
  rxReady(): boolean {
    for (const ring of this.#rx) if (ring.ready()) return true;
    return false;
  }

  /**
   * NAPI-style wait (see {@link NetDevice.waitForWork}): clear the queues' latched causes, drain
   * their eventfds, unmask them, look at the rings again, sleep on the vectors, mask them again.
   * Without interrupts it looks at the rings every millisecond.
   */
  async waitForWork(timeoutMs: number, signal?: AbortSignal): Promise<WorkWaitResult> {
    this.#assertOpen("waitForWork");
    if (this.rxReady()) return "ready";
    const irq = this.#irq;
    if (irq === undefined) {
      return await pollForWork(this.#dev.kernel, () => this.rxReady(), timeoutMs, signal);
    }
    const regs = this.#regs;
    regs.write32(irq.causeClear, this.#armBits);
    for (const v of this.#vectors) this.#dev.irqs.poll(v);
    regs.write32(irq.maskSet, this.#armBits);
    if (this.rxReady()) {
      regs.write32(irq.maskClear, this.#armBits);
      return "ready";
    }
    const got = await waitForVectorsOrWork(
      this.#dev.kernel,
      this.#dev.irqs,
      this.#vectors,
      timeoutMs,
      () => this.rxReady(),
      signal,
    );
    if (this.#closed) return "cancelled";
    regs.write32(irq.maskClear, this.#armBits);
    if (got !== "missed") return got;
    this.#missedInterrupts++;
    return "ready";
  }

  /** Frames {@link waitForWork} found in a ring after its sleep ended without their interrupt. */
  get missedInterrupts(): number {
    return this.#missedInterrupts;
  }

  /** Times {@link check} reset and resumed the device. */
  get recoveries(): number {
    return this.#recoveries;
  }

  /**
   * Check the device from an idle loop (one register read, and the transmit rings): reset and
   * resume it when a transmit queue stopped (see the module doc) and say so; a VfioError when the
   * device no longer answers MMIO.
   */
  async check(): Promise<NicHealth> {
    this.#assertOpen("check");
    const status = this.#regs.read32(E1000_STATUS) >>> 0;
    if (status === REGISTER_ALL_ONES) throw deviceGone(this.#dev, this.model.name, status);
    for (const ring of this.#tx) ring.reclaim();
    const linkUp = (status & E1000_STATUS_LU) !== 0;
    if (!this.#watchdog.stalled(this.#tx, this.#dev.kernel.now(), linkUp)) return "ok";
    await this.#restart();
    return "recovered";
  }

  /** The receive filter (RCTL.UPE, MPE, BAM). */
  setReceiveFilter(filter: ReceiveFilter): void {
    this.#assertOpen("setReceiveFilter");
    this.#rctl = E1000_RCTL_EN | E1000_RCTL_SECRC | E1000_RCTL_BSIZE_2048 |
      E1000_RCTL_RDMTS_HALF | E1000_RCTL_MO_47_36 |
      (filter.promiscuous ? E1000_RCTL_UPE : 0) | (filter.allMulticast ? E1000_RCTL_MPE : 0) |
      (filter.broadcast ? E1000_RCTL_BAM : 0);
    this.#regs.write32(E1000_RCTL, this.#rctl);
  }

  /** The receive filter now in effect. */
  receiveFilter(): ReceiveFilter {
    return {
      promiscuous: (this.#rctl & E1000_RCTL_UPE) !== 0,
      allMulticast: (this.#rctl & E1000_RCTL_MPE) !== 0,
      broadcast: (this.#rctl & E1000_RCTL_BAM) !== 0,
    };
  }

  /** Accept frames to multicast address `mac` (its 12-bit hash bit in the multicast table). */
  addMulticast(mac: Uint8Array): void {
    this.#assertOpen("addMulticast");
    if (mac.length !== 6 || (mac[0] & 1) === 0) {
      throw usage(this.#dev, `${[...mac].join(",")} is not a multicast Ethernet address`);
    }
    // Address bits 47:36 (MO = 00b): bytes 4 and 5 of the address, low byte first.
    const bits = mac[MAC_BYTE_4] | (mac[MAC_BYTE_5] << BITS_PER_BYTE);
    const hash = (bits >>> MTA_HASH_SHIFT) & MTA_HASH_MASK;
    const reg = Math.floor(hash / MTA_BITS_PER_REGISTER);
    this.#mta[reg] |= 1 << (hash % MTA_BITS_PER_REGISTER);
    this.#regs.write32(E1000_MTA + reg * REGISTER_BYTES, this.#mta[reg]);
  }

  /** Clear the multicast table (frames then only pass through MPE). */
  clearMulticast(): void {
    this.#assertOpen("clearMulticast");
    this.#mta.fill(0);
    for (let i = 0; i < E1000_MTA_REGISTERS; i++) {
      this.#regs.write32(E1000_MTA + i * REGISTER_BYTES, 0);
    }
  }

  /**
   * Stop the device (receive and transmit off, queues disabled, a global reset so no DMA is in
   * flight), disable its vectors, free rings and pool; the PCI device too when asked to.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const dev = this.#dev;
    const steps = [
      () => this.#ctl.maskAll(),
      () => stopDevice(this.#regs, this.model, this.queues),
      () => {
        if (this.#irq === undefined) return;
        if (this.#irq.kind === "msix") dev.irqs.disableMsix();
        else dev.irqs.disableMsi();
      },
      ...this.#rx.map((r) => () => r.drain()),
      ...this.#tx.map((r) => () => r.drain()),
      () => {
        if (this.#ownsPool) this.pool.close();
      },
      ...this.#rx.map((r) => () => dev.dma.free(r.memory)),
      ...this.#tx.map((r) => () => dev.dma.free(r.memory)),
    ];
    if (this.#closeDevice) steps.push(() => dev.close());
    runAll(steps);
  }

  /**
   * Reset and resume: the statistics the reset clears read first; a function reset when VFIO
   * offers one (it also ends a hang; the kernel restores the MSI-X setup), a global reset, every
   * buffer back to the pool (unsent frames counted as dropped), the link, the multicast table,
   * the queues rebuilt over their ring memory (RSS too), the interrupt routing and the receive
   * filter again.
   */
  async #restart(): Promise<void> {
    const dev = this.#dev;
    const regs = this.#regs;
    this.#counters.update();
    if (dev.device.getInfo().resetWorks) dev.device.reset();
    dev.config.enableBusMaster();
    await this.#ctl.reset();
    for (const ring of this.#rx) ring.drain();
    for (const ring of this.#tx) {
      this.#stats.txDropped += ring.inFlight;
      ring.drain();
    }
    await this.#ctl.linkSetup(0);
    for (let i = 0; i < E1000_MTA_REGISTERS; i++) {
      regs.write32(E1000_MTA + i * REGISTER_BYTES, this.#mta[i]);
    }
    const packets = this.#rx.map((ring) => ring.packets);
    await startQueues(this.#queueSetup, this.#rx, this.#tx);
    for (let q = 0; q < packets.length; q++) this.#rx[q].packets = packets[q];
    this.#irq?.setup(regs, this.queues);
    regs.write32(E1000_RCTL, this.#rctl);
    this.#watchdog.restart(dev.kernel.now());
    this.#recoveries++;
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw usage(this.#dev, `${operation}: the NIC is closed`);
  }
}
