/**
 * A simulated Intel 82574L Gigabit Ethernet controller as QEMU 10's `-device e1000e` presents it
 * (82574 GbE Controller Family Datasheet; QEMU's behaviour where a driver can tell them apart):
 * 8086:10d3, two receive and two transmit rings with legacy or extended descriptors, RSS over
 * IPv4/IPv6 (TCP), interrupt causes routed through IVAR to 5 MSI-X vectors, MSI and INTx, the
 * NVM, the PHY, statistics. DMA goes through the machine's IOMMU model; frames through its
 * Ethernet segment. The link is up from power-on and across resets, as on QEMU.
 *
 * Written from the datasheet and measurements of QEMU, independently of drivers/e1000e.
 *
 * This file is the part's own behaviour ({@link E1000E_PART}); the PCI function around it is
 * {@link E1000Device}.
 *
 * @example
 * ```ts
 * const nic = new E1000Device("e1000e", { segment });
 * ```
 *
 * @module
 */

import { e1000eConfigSpace } from "./e1000_config.ts";
import type { E1000Core, E1000Part, E1000PartDescription } from "./e1000_core.ts";
import { E1000E_NVM } from "./e1000_nvm.ts";
import { E1000E_PHY } from "./e1000_phy.ts";
import type { RxFifo } from "./e1000_rx_fifo.ts";
import { E1000_EERD, E1000_ICR, E1000_ITR, E1000_TCTL } from "./e1000_regs.ts";
import { E1000eInterrupts } from "./e1000e_irq.ts";
import {
  E1000E_ALIASES,
  E1000E_EEWR,
  E1000E_EITR,
  E1000E_MSIX_VECTORS,
  E1000E_PBA,
  E1000E_QUEUE_STRIDE,
  E1000E_QUEUES,
  E1000E_REGISTERS,
  E1000E_RXDCTL,
  E1000E_TARC0,
  PBA_RXA_MASK,
  TARC_READ_MASK,
} from "./e1000e_regs.ts";
import { E1000eReceiver } from "./e1000e_rx.ts";
import { E1000eTransmitter } from "./e1000e_tx.ts";

const PBA = E1000E_PBA >>> 2;
const KIB = 1024;
const ICR = E1000_ICR >>> 2;
const ITR = E1000_ITR >>> 2;
const EITR0 = E1000E_EITR >>> 2;
const TCTL = E1000_TCTL >>> 2;
const EEWR = E1000E_EEWR >>> 2;
const EERD = E1000_EERD >>> 2;
const RXDCTL = E1000E_RXDCTL >>> 2;
const QUEUE_STRIDE_WORDS = E1000E_QUEUE_STRIDE >>> 2;
const TARC0 = E1000E_TARC0 >>> 2;

/** The 82574L's interrupts and queues over the common model. */
class E1000ePart implements E1000Part {
  readonly fifo: RxFifo;
  readonly #core: E1000Core;
  readonly #irq: E1000eInterrupts;
  readonly #tx: E1000eTransmitter;
  readonly #rx: E1000eReceiver;
  #txDirty = 0;

  constructor(core: E1000Core) {
    this.#core = core;
    this.#irq = new E1000eInterrupts(core.regs, {
      config: core.config,
      msix: core.msix,
      intx: core.intx,
      sink: core.irqSink,
    });
    const msixEnabled = (): boolean => this.#irq.msixEnabled;
    const raise = (causes: number): void => this.#irq.raise(causes);
    this.#tx = new E1000eTransmitter(core.regs, {
      dma: core.dma,
      msixEnabled,
      raise,
      send: core.sendFrame,
      dmaFault: core.dmaFault,
      dropped: (why) => {
        core.counters.txDropped++;
        core.trace(why);
      },
    });
    this.#rx = new E1000eReceiver(core.regs, {
      dma: core.dma,
      msixEnabled,
      raise,
      busMaster: core.busMaster,
      dmaFault: core.dmaFault,
      delivered: () => void core.counters.rxFrames++,
    });
    this.fifo = this.#rx.fifo;
  }

  read(index: number): number | undefined {
    if (index === ICR) return this.#irq.readIcr();
    if (index === ITR || (index >= EITR0 && index < EITR0 + E1000E_MSIX_VECTORS)) {
      return this.#irq.readThrottle(index);
    }
    if (index === TARC0 || index === TARC0 + QUEUE_STRIDE_WORDS) {
      return (this.#core.mac[index] & TARC_READ_MASK) >>> 0;
    }
    return undefined;
  }

  write(index: number, value: number): boolean {
    const core = this.#core;
    if (this.#irq.write(index, value)) return true;
    const tx = this.#tx.queueOfTail(index);
    if (tx >= 0) {
      core.regs.store(index, value);
      if (this.#tx.enabled(tx)) this.#kickTx(1 << tx);
      return true;
    }
    if (this.#rx.isTail(index)) {
      core.regs.store(index, value);
      core.schedule();
      return true;
    }
    switch (index) {
      case TCTL: {
        core.regs.store(index, value);
        let queues = 0;
        for (let n = 0; n < E1000E_QUEUES; n++) if (this.#tx.enabled(n)) queues |= 1 << n;
        this.#kickTx(queues);
        return true;
      }
      case RXDCTL: // QEMU writes both queues' RXDCTL
        core.mac[RXDCTL] = value >>> 0;
        core.mac[RXDCTL + QUEUE_STRIDE_WORDS] = value >>> 0;
        return true;
      case EEWR: // the word goes into the image; EERD reports, EEWR keeps DONE (QEMU)
        core.mac[EERD] = core.nvm.eewrWrite(value);
        return true;
    }
    return false;
  }

  raiseOther(causes: number): void {
    this.#irq.raise(causes);
  }

  process(): void {
    const dirty = this.#txDirty;
    this.#txDirty = 0;
    for (let n = 0; n < E1000E_QUEUES; n++) if ((dirty >>> n) & 1) this.#tx.process(n);
    this.#rx.drain();
  }

  reset(): void {
    this.#irq.reset();
    this.#tx.reset();
    this.#txDirty = 0;
  }

  #kickTx(queues: number): void {
    if (queues === 0) return;
    this.#txDirty |= queues;
    this.#core.schedule();
  }
}

/** The 82574L (QEMU's e1000e) as a part of {@link E1000Device}. */
export const E1000E_PART: E1000PartDescription = {
  model: "e1000e",
  config: e1000eConfigSpace,
  registers: E1000E_REGISTERS,
  aliases: E1000E_ALIASES,
  nvm: E1000E_NVM,
  phy: E1000E_PHY,
  msixVectors: E1000E_MSIX_VECTORS,
  rxFifoBytes: (mac) => (mac[PBA] & PBA_RXA_MASK) * KIB,
  create: (core) => new E1000ePart(core),
};
