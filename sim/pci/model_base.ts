/**
 * {@link PciFunctionModel}: a base class for device models that does the plumbing every model
 * repeats — the config space with its BARs, MMIO dispatch through a {@link BarMap}, the INTx pin,
 * interrupt raising in whichever mode the driver enabled (MSI-X, MSI, INTx), DMA through the
 * machine's IOMMU, timed work on the virtual clock that a reset cancels, and traces. A subclass
 * declares its registers and implements its behaviour; nothing in it is private to the project's
 * own models, which implement the same {@link PciDeviceModel} contract directly.
 *
 * MSI-X needs a table and a pending-bit array in a BAR. {@link MsixTable} is the interface the
 * base class routes and raises through; a model passes an implementation in
 * {@link PciFunctionModelOptions.msix} (the project's table model lives in sim/pci/msix_table.ts).
 *
 * @example
 * ```ts
 * class Doorbell extends PciFunctionModel {
 *   readonly model = "doorbell";
 *   constructor() {
 *     super({
 *       config: { vendorId: 0x1234, deviceId: 0xbeef, classCode: 0xff0000, interruptPin: 1 },
 *       bars: [{ index: 0, size: 0x1000, kind: "mem32", prefetchable: false }],
 *       msi: { vectors: 1, address64: true, perVectorMask: false },
 *     });
 *     const regs = new RegisterBlock({ name: "doorbell" });
 *     regs.define(0x0, { name: "RING", write: () => this.after(1000, () => this.interrupt(0)) });
 *     this.mmio.route(0, 0, 0x1000, regs);
 *   }
 *   protected onReset(): void {}
 * }
 * ```
 *
 * @module
 */

import type { ScheduledEvent } from "../clock.ts";
import {
  IntxPin,
  type MsiCapOptions,
  type MsiOutcome,
  msiState,
  msixState,
  type PciConfigOptions,
  PciConfigSpace,
  sendMsi,
} from "./config.ts";
import type { BarDecl, DeviceHost, PciDeviceModel } from "./device.ts";
import { type AccessSize, BarMap, type MmioHandler, type UnclaimedRead } from "./mmio_regs.ts";

/**
 * An MSI-X table and pending-bit array (PCI 3.0 §6.8.2) living in a device's BAR: the MMIO
 * handlers of the two structures, and sending an entry the way the function must (nothing while
 * MSI-X is disabled or bus mastering is off; a masked entry, or the function mask, sets the
 * entry's pending bit instead, and unmasking sends it).
 */
export interface MsixTable {
  /** Entries in the table. */
  readonly size: number;
  /** Handler of the table (16 bytes per entry), offsets relative to the table's start. */
  readonly table: MmioHandler;
  /** Handler of the pending-bit array, offsets relative to its start. */
  readonly pba: MmioHandler;
  /** Send entry `vector` (see the interface doc). */
  send(vector: number): MsiOutcome;
  /** Power-on state: every entry masked, no pending bit. */
  reset(): void;
}

/** How a model with MSI-X places its table (the capability is added from this). */
export interface MsixPlacement {
  /** The table implementation. */
  readonly table: MsixTable;
  /** BAR holding the table. */
  readonly tableBar: number;
  /** Offset of the table in that BAR (8-byte aligned). */
  readonly tableOffset: number;
  /** BAR holding the pending-bit array. */
  readonly pbaBar: number;
  /** Offset of the pending-bit array (8-byte aligned). */
  readonly pbaOffset: number;
}

/** Options of a {@link PciFunctionModel}. */
export interface PciFunctionModelOptions {
  /** Identity and header of the config space. */
  readonly config: PciConfigOptions;
  /** BARs (each is declared in the config space too). */
  readonly bars: readonly BarDecl[];
  /** An MSI capability. */
  readonly msi?: MsiCapOptions;
  /** An MSI-X capability with its table. */
  readonly msix?: MsixPlacement;
  /** A PCI Express capability (needs `config.express`); `flr` makes {@link resetWorks} true. */
  readonly express?: { readonly flr?: boolean };
  /** Whether VFIO may reset the function (default: true with FLR, false otherwise). */
  readonly resetWorks?: boolean;
  /** What BAR offsets no handler claims read (default "ones"). */
  readonly unclaimed?: UnclaimedRead;
}

/** Where {@link PciFunctionModel.interrupt} sent an interrupt, or why it did not. */
export type InterruptOutcome = MsiOutcome | "intx";

/** A base class for simulated PCI functions (see the module doc). */
export abstract class PciFunctionModel implements PciDeviceModel {
  /** Short model name, e.g. "crc32". */
  abstract readonly model: string;
  /** The config space. */
  readonly config: PciConfigSpace;
  /** The BARs. */
  readonly bars: readonly BarDecl[];
  /** Whether VFIO may reset the function. */
  readonly resetWorks: boolean;
  /** MMIO dispatch: subclasses route their BAR ranges here. */
  protected readonly mmio: BarMap;
  /** The INTx pin (drive it with {@link setIntx}). */
  protected readonly intx: IntxPin;
  readonly #msix: MsixTable | undefined;
  readonly #timers = new Set<ScheduledEvent>();
  #host: DeviceHost | undefined;

  /** Build the config space (BARs, capabilities) and the dispatch. */
  constructor(o: PciFunctionModelOptions) {
    this.config = new PciConfigSpace(o.config);
    this.bars = o.bars;
    for (const bar of o.bars) this.config.addBar(bar);
    if (o.express) this.config.addPciExpress({ flr: o.express.flr });
    if (o.msi) this.config.addMsi(o.msi);
    this.mmio = new BarMap({ unclaimed: o.unclaimed });
    if (o.msix) {
      const m = o.msix;
      this.config.addMsix({
        tableSize: m.table.size,
        tableBar: m.tableBar,
        tableOffset: m.tableOffset,
        pbaBar: m.pbaBar,
        pbaOffset: m.pbaOffset,
      });
      this.mmio.route(m.tableBar, m.tableOffset, m.table.size * MSIX_ENTRY_BYTES, m.table.table);
      this.mmio.route(m.pbaBar, m.pbaOffset, pbaBytes(m.table.size), m.table.pba);
      this.#msix = m.table;
    }
    this.resetWorks = o.resetWorks ?? (o.express?.flr ?? false);
    this.intx = new IntxPin(this.config);
  }

  /** What the machine gave this model; throws before {@link connect}. */
  protected get host(): DeviceHost {
    if (this.#host === undefined) throw new Error(`${this.model}: used before connect()`);
    return this.#host;
  }

  /** Plugged into a machine: keep the host, wire the INTx pin, then {@link onConnect}. */
  connect(host: DeviceHost): void {
    this.#host = host;
    this.intx.connect(host.irq);
    this.onConnect();
  }

  /** A BAR read, dispatched through {@link mmio}. */
  mmioRead(bar: number, offset: number, size: AccessSize): number | bigint {
    return this.mmio.read(bar, offset, size);
  }

  /** A BAR write, dispatched through {@link mmio}. */
  mmioWrite(bar: number, offset: number, size: AccessSize, value: number | bigint): void {
    this.mmio.write(bar, offset, size, value);
  }

  /**
   * Function reset: cancel the timed work, config space, INTx and MSI-X table back to power-on,
   * then {@link onReset} for the subclass's own state.
   */
  reset(): void {
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    this.config.reset();
    this.intx.reset();
    this.#msix?.reset();
    this.onReset();
  }

  /** Called after {@link connect} (default: nothing). */
  protected onConnect(): void {}

  /** Put the subclass's registers and state back to power-on values. */
  protected abstract onReset(): void;

  /** Run `fn` after `delayNs` of virtual time, unless a reset comes first. */
  protected after(delayNs: number, fn: () => void): ScheduledEvent {
    let event: ScheduledEvent | undefined = undefined;
    event = this.host.clock.schedule(delayNs, () => {
      this.#timers.delete(event!);
      fn();
    });
    this.#timers.add(event);
    return {
      cancel: () => {
        this.#timers.delete(event!);
        event!.cancel();
      },
    };
  }

  /**
   * Raise interrupt `vector` in the mode the driver enabled: MSI-X entry `vector`, else MSI
   * vector `vector`, else the INTx level (lower it with {@link setIntx} when the cause is
   * acknowledged). Returns where it went, or why it was not sent.
   */
  protected interrupt(vector = 0): InterruptOutcome {
    if (this.#msix && msixState(this.config)?.enabled) return this.#msix.send(vector);
    if (msiState(this.config)?.enabled) return sendMsi(this.config, this.host.irq, vector);
    this.intx.set(true);
    return "intx";
  }

  /** Drive the INTx level. */
  protected setIntx(level: boolean): void {
    this.intx.set(level);
  }

  /** DMA read through the IOMMU: false when it faulted (the IOMMU recorded the fault). */
  protected dmaRead(iova: bigint, dst: Uint8Array, pasid?: number): boolean {
    return this.host.dma.read(iova, dst, pasid);
  }

  /** DMA write through the IOMMU: false when it faulted. */
  protected dmaWrite(iova: bigint, src: Uint8Array, pasid?: number): boolean {
    return this.host.dma.write(iova, src, pasid);
  }

  /** A line in the machine's trace. */
  protected trace(line: string): void {
    this.#host?.trace(line);
  }
}

/** Bytes per MSI-X table entry (PCI 3.0 §6.8.2.6). */
const MSIX_ENTRY_BYTES = 16;
/** Pending bits are packed in 64-bit qwords (PCI 3.0 §6.8.2.7). */
const PBA_QWORD_BITS = 64;
const QWORD_BYTES = 8;

function pbaBytes(entries: number): number {
  return Math.ceil(entries / PBA_QWORD_BITS) * QWORD_BYTES;
}
