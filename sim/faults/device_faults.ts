/**
 * Fault injection for one simulated PCI function, scriptable from a test — what real hardware
 * cannot be told to do on demand:
 *
 * | call | what happens |
 * |---|---|
 * | `failDma({ iova, length })` / `failDma({ next })` | those transfers fault, recorded as the IOMMU's fault (sPAPR: the PE freezes) |
 * | `hang()` / `resume()` | the device stops completing work (its timed work is held); a function reset or `resume()` lifts it |
 * | `loseInterrupts(n)` | the next n interrupts the device sends never arrive |
 * | `spuriousInterrupt(kind, vector)` | an interrupt the device did not send arrives |
 * | `setLink(up)` | link down/up, for NIC models (a model with `setLink`) |
 * | `surpriseRemove()` | the card is pulled: MMIO and config read all-ones, DMA and interrupts stop, the VFIO request eventfd fires (every 10 s while open), VFIO_DEVICE_RESET answers ENOTTY, new opens fail, and after the last close the function leaves the bus |
 * | `freezeEeh()` | sPAPR only: EEH freezes the function's PE (MMIO all-ones, DMA stopped), as `VFIO_EEH_PE_INJECT_ERR` |
 *
 * The device model takes no part except for what only it knows (its link); DMA, interrupts and
 * timed work are intercepted between the model and the machine.
 *
 * @example
 * ```ts
 * const faults = machine.inject("0000:00:02.0");
 * faults.failDma({ next: 1 });      // the device's next DMA faults
 * faults.loseInterrupts(1);         // and its next interrupt is lost
 * ```
 *
 * @module
 */

import type { LinkControl, PciDeviceModel } from "../pci/device.ts";
import type { DmaFaultRule, DmaFaults } from "./dma_faults.ts";
import type { GatedClock } from "./gated_clock.ts";
import type { InterruptFaults, InterruptKind } from "./irq_faults.ts";

/** Whether a model has a link to control. */
export function hasLink(model: PciDeviceModel): model is PciDeviceModel & LinkControl {
  return typeof (model as Partial<LinkControl>).setLink === "function";
}

/** What was injected into a function so far. */
export interface DeviceFaultCounters {
  /** DMA transfers made to fault. */
  readonly dmaFaults: number;
  /** Device interrupts lost. */
  readonly lostInterrupts: number;
  /** Spurious interrupts delivered. */
  readonly spuriousInterrupts: number;
  /** Timed work items held by a hang right now. */
  readonly heldWork: number;
}

/** The parts of a function's fault injection, wired by the machine. */
export interface DeviceFaultParts {
  /** PCI address, for messages. */
  readonly bdf: string;
  /** The device model. */
  readonly model: PciDeviceModel;
  /** DMA in front of the model. */
  readonly dma: DmaFaults;
  /** Interrupts out of the model. */
  readonly irq: InterruptFaults;
  /** The model's clock. */
  readonly clock: GatedClock;
  /** The kernel side of a surprise removal. */
  readonly remove: () => void;
  /** Freeze the function's EEH PE; undefined off sPAPR. */
  readonly freezeEeh?: () => void;
}

/** Fault injection for one function (see the module doc). */
export class DeviceFaults {
  readonly #p: DeviceFaultParts;
  #removed = false;

  /** The controller over the machine's wiring of one function. */
  constructor(parts: DeviceFaultParts) {
    this.#p = parts;
  }

  /** What was injected so far. */
  get counters(): DeviceFaultCounters {
    return {
      dmaFaults: this.#p.dma.injected,
      lostInterrupts: this.#p.irq.counters.lost,
      spuriousInterrupts: this.#p.irq.counters.spurious,
      heldWork: this.#p.clock.held,
    };
  }

  /** Whether the device is hung (its timed work held). */
  get hung(): boolean {
    return this.#p.clock.hung;
  }

  /** Make DMA transfers fault (see {@link DmaFaultRule}). */
  failDma(rule: DmaFaultRule): void {
    if (rule.iova === undefined && rule.next === undefined) {
      throw new RangeError(
        `${this.#p.bdf}: failDma needs { iova, length } (a range) or { next } (a count)`,
      );
    }
    this.#p.dma.add(rule);
  }

  /** Stop injecting DMA faults. */
  clearDmaFaults(): void {
    this.#p.dma.clear();
  }

  /** Stop completing work until {@link resume} or a function reset. */
  hang(): void {
    this.#p.clock.hang();
  }

  /** Complete work again (held work runs now). */
  resume(): void {
    if (!this.#removed) this.#p.clock.resume();
  }

  /** Lose the next `n` interrupts the device sends (default: all until {@link restoreInterrupts}). */
  loseInterrupts(n = Infinity): void {
    this.#p.irq.lose(n);
  }

  /** Stop losing interrupts. */
  restoreInterrupts(): void {
    this.#p.irq.restore();
  }

  /** Deliver an interrupt the device did not send. */
  spuriousInterrupt(kind: InterruptKind, vector = 0): void {
    this.#p.irq.spurious(kind, vector);
  }

  /** Link down (false) or up (true); throws for a model without a link. */
  setLink(up: boolean): void {
    const model = this.#p.model;
    if (!hasLink(model)) {
      throw new Error(`${this.#p.bdf}: the ${model.model} model has no link to take down`);
    }
    model.setLink(up);
  }

  /** Pull the card out (see the module doc). */
  surpriseRemove(): void {
    if (this.#removed) return;
    this.#removed = true;
    this.#p.dma.cut();
    this.#p.irq.cut();
    this.#p.clock.hang();
    this.#p.remove();
  }

  /** sPAPR: freeze the function's PE as an EEH error does; throws on other platforms. */
  freezeEeh(): void {
    if (this.#p.freezeEeh === undefined) {
      throw new Error(`${this.#p.bdf}: EEH exists on POWER (iommu "spapr") only`);
    }
    this.#p.freezeEeh();
  }

  /** The function was reset (FLR): a hung device works again. Called by the machine. */
  functionReset(): void {
    this.resume();
  }
}
