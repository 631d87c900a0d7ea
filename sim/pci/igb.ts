/**
 * A simulated Intel 82576 Gigabit Ethernet controller as QEMU 10's `-device igb` presents it to
 * a physical-function driver (82576EB GbE Controller Datasheet; QEMU's behaviour where a driver
 * can tell the two apart): 8086:10c9, 16 receive and 16 transmit queues with advanced
 * descriptors, RSS over IPv4/IPv6 TCP/UDP, per-queue interrupt causes routed through IVAR to
 * 10 MSI-X vectors, MSI and INTx, the NVM, the PHY, statistics. DMA goes through the machine's
 * IOMMU model; frames through its Ethernet segment.
 *
 * The link comes up as on QEMU: not at power-on or after a reset (STATUS.LU = 0), but 500 ms of
 * virtual time after software restarts autonegotiation in the PHY (BMCR through MDIC).
 *
 * Written from the datasheet and measurements of QEMU, independently of drivers/igb.
 *
 * This file is the part's own behaviour ({@link IGB_PART}); the PCI function around it is
 * {@link E1000Device}.
 *
 * @example
 * ```ts
 * const nic = new E1000Device("igb", { segment });
 * ```
 *
 * @module
 */

import { igbConfigSpace } from "./e1000_config.ts";
import type { E1000Core, E1000Part, E1000PartDescription } from "./e1000_core.ts";
import { IGB_NVM } from "./e1000_nvm.ts";
import { IGB_PHY } from "./e1000_phy.ts";
import { E1000_ICR, E1000_IMC } from "./e1000_regs.ts";
import type { RxFifo } from "./e1000_rx_fifo.ts";
import { IgbInterrupts } from "./igb_irq.ts";
import {
  IGB_ALIASES,
  IGB_EICR_CAUSES,
  IGB_EITR,
  IGB_MSIX_VECTORS,
  IGB_QUEUE_STRIDE,
  IGB_QUEUES,
  IGB_REGISTERS,
  IGB_RX_QUEUE,
  IGB_RXPBS,
  Q,
} from "./igb_regs.ts";
import { IgbReceiver } from "./igb_rx.ts";
import { IgbTransmitter } from "./igb_tx.ts";

/** KiB units of RXPBS. */
const KIB = 1024;
/** RXPBS: receive packet buffer size field (bits 6:0, KB). */
const RXPBS_SIZE_MASK = 0x7f;
const ICR = E1000_ICR >>> 2;
const IMC = E1000_IMC >>> 2;
const EITR0 = IGB_EITR >>> 2;

/** The 82576's interrupts and queues over the common model. */
class IgbPart implements E1000Part {
  readonly fifo: RxFifo;
  readonly #core: E1000Core;
  readonly #irq: IgbInterrupts;
  readonly #tx: IgbTransmitter;
  readonly #rx: IgbReceiver;
  readonly #rxTails: Int32Array = new Int32Array(IGB_QUEUES);
  #txDirty = 0;

  constructor(core: E1000Core) {
    this.#core = core;
    this.#irq = new IgbInterrupts(core.regs, {
      config: core.config,
      msix: core.msix,
      intx: core.intx,
      sink: core.irqSink,
    });
    this.#tx = new IgbTransmitter(core.regs, {
      dma: core.dma,
      irq: this.#irq,
      send: core.sendFrame,
      dmaFault: core.dmaFault,
      dropped: (why) => {
        core.counters.txDropped++;
        core.trace(why);
      },
    });
    this.#rx = new IgbReceiver(core.regs, {
      dma: core.dma,
      irq: this.#irq,
      busMaster: core.busMaster,
      dmaFault: core.dmaFault,
      delivered: () => void core.counters.rxFrames++,
    });
    this.fifo = this.#rx.fifo;
    for (let n = 0; n < IGB_QUEUES; n++) {
      this.#rxTails[n] = core.regs.index(IGB_RX_QUEUE + IGB_QUEUE_STRIDE * n + Q.tail);
    }
  }

  read(index: number): number | undefined {
    if (index === ICR) return this.#irq.readIcr();
    if (index === IMC) return this.#irq.readImc();
    if (index >= EITR0 && index < EITR0 + IGB_EICR_CAUSES) return this.#irq.readEitr(index);
    return undefined;
  }

  write(index: number, value: number): boolean {
    if (this.#irq.write(index, value)) return true;
    const tx = this.#tx.queueOfTail(index);
    if (tx >= 0) {
      this.#core.regs.store(index, value);
      this.#txDirty |= 1 << tx;
      this.#core.schedule();
      return true;
    }
    if (this.#rxTails.includes(index)) {
      this.#core.regs.store(index, value);
      this.#core.schedule();
      return true;
    }
    return false;
  }

  raiseOther(causes: number): void {
    this.#irq.raiseIcr(causes);
  }

  process(): void {
    const dirty = this.#txDirty;
    this.#txDirty = 0;
    for (let n = 0; n < IGB_QUEUES; n++) if ((dirty >>> n) & 1) this.#tx.process(n);
    this.#rx.drain();
  }

  reset(soft: boolean): void {
    this.#irq.reset(soft);
    this.#tx.reset();
    this.#txDirty = 0;
  }
}

/** The 82576 (QEMU's igb) as a part of {@link E1000Device}. */
export const IGB_PART: E1000PartDescription = {
  model: "igb",
  config: igbConfigSpace,
  registers: IGB_REGISTERS,
  aliases: IGB_ALIASES,
  nvm: IGB_NVM,
  phy: IGB_PHY,
  msixVectors: IGB_MSIX_VECTORS,
  rxFifoBytes: (mac) => (mac[IGB_RXPBS >>> 2] & RXPBS_SIZE_MASK) * KIB,
  create: (core) => new IgbPart(core),
};
