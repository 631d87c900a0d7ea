/**
 * {@link PciFunctionModel}: a base class for device models that does the plumbing every model
 * repeats — the config space with its BARs, MMIO dispatch through a {@link BarMap}, the INTx pin,
 * interrupt raising in whichever mode the driver enabled (MSI-X, MSI, INTx), DMA through the
 * machine's IOMMU, timed work on the virtual clock that a reset cancels, and traces. A subclass
 * declares its registers and implements its behaviour; nothing in it is private to the project's
 * own models, which implement the same {@link PciDeviceModel} contract directly.
 *
 * MSI-X needs a table and a pending-bit array in a BAR: give {@link PciFunctionModelOptions.msix}
 * their layout and the base class adds the capability, routes both to the project's one table
 * model ({@link MsixTable} in sim/pci/msix_table.ts, the one the built-in NICs use) and raises
 * entries through it.
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
  type PciConfigOptions,
  PciConfigSpace,
  sendMsi,
} from "./config.ts";
import type { BarDecl, DeviceHost, PciDeviceModel } from "./device.ts";
import { type AccessSize, BarMap, type MmioHandler, type UnclaimedRead } from "./mmio_regs.ts";
import { type MsixOutcome, MsixTable, type MsixTableLayout } from "./msix_table.ts";

/** Options of a {@link PciFunctionModel}. */
export interface PciFunctionModelOptions {
  /** Identity and header of the config space. */
  readonly config: PciConfigOptions;
  /** BARs (each is declared in the config space too). */
  readonly bars: readonly BarDecl[];
  /** An MSI capability. */
  readonly msi?: MsiCapOptions;
  /** An MSI-X capability, its table and pending-bit array in one BAR. */
  readonly msix?: MsixTableLayout;
  /** A PCI Express capability (needs `config.express`); `flr` makes {@link resetWorks} true. */
  readonly express?: { readonly flr?: boolean };
  /** Whether VFIO may reset the function (default: true with FLR, false otherwise). */
  readonly resetWorks?: boolean;
  /** What BAR offsets no handler claims read (default "ones"). */
  readonly unclaimed?: UnclaimedRead;
}

/** Where {@link PciFunctionModel.interrupt} sent an interrupt, or why it did not. */
export type InterruptOutcome = MsiOutcome | MsixOutcome | "intx";

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
      const l = o.msix;
      this.config.addMsix({
        tableSize: l.vectors,
        tableBar: l.bar,
        tableOffset: l.tableOffset,
        pbaBar: l.bar,
        pbaOffset: l.pbaOffset,
      });
      const table = new MsixTable(this.config, l);
      // BarMap hands out offsets relative to each range; the table model takes BAR offsets.
      const at = (start: number): MmioHandler => ({
        read: (offset, size) => table.read(start + offset, size),
        write: (offset, size, value) => table.write(start + offset, size, value),
      });
      this.mmio.route(l.bar, l.tableOffset, l.vectors * MSIX_ENTRY_BYTES, at(l.tableOffset));
      this.mmio.route(l.bar, l.pbaOffset, pbaBytes(l.vectors), at(l.pbaOffset));
      this.#msix = table;
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
    this.#msix?.connect(host.irq);
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
    if (this.#msix?.enabled) return this.#msix.notify(vector);
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
