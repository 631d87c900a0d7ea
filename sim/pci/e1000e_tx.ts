/**
 * Transmit side of the simulated 82574L (§7.2), with QEMU 10's e1000e behaviour: a TDT write
 * (or a TCTL write) makes the queue run — on the virtual clock, a moment later — when its
 * TARC.ENABLE and TCTL.EN are set:
 * - legacy descriptors (DEXT = 0) add their buffer (no offloads);
 * - extended context descriptors (DEXT, DTYP 0000b) are taken in (no frame data);
 * - extended data descriptors (DEXT, DTYP 0001b) add their buffer, and POPTS.IXSM/TXSM (TSE
 *   inserts both) choose the checksum offloads for the frame; EOP sends it, with a VLAN tag
 *   from the descriptor when CMD.VLE and CTRL.VME;
 * - with RS (or IVAR's "every write-back" bit) DD is written into the descriptor's status;
 * - afterwards ICR.TXQE, plus TXDW (TXQ0/TXQ1 with MSI-X) when something was written back.
 *
 * A descriptor the IOMMU refuses stops the queue until the next tail write; a buffer it refuses
 * drops that frame (its descriptors still complete).
 *
 * @module
 */

import type { E1000RegisterFile } from "./e1000_regfile.ts";
import {
  CTRL_VME,
  E1000_CTRL,
  E1000_TCTL,
  E1000_VET,
  ICR_TXDW,
  ICR_TXQE,
  TCTL_EN,
  TXD_CMD_DEXT,
  TXD_CMD_EOP,
  TXD_CMD_RS,
  TXD_CMD_VLE,
  TXD_LENGTH_MASK,
  TXD_STAT_DD,
  VET_TPID_MASK,
} from "./e1000_regs.ts";
import {
  DescriptorScratch,
  fetchHead,
  ringAdvance,
  ringAt,
  ringEmpty,
  TXD_DW,
} from "./e1000_ring.ts";
import type { RingRegisters } from "./e1000_ring.ts";
import { TxFrame, type TxHost } from "./e1000_tx_frame.ts";
import {
  E1000E_IVAR,
  E1000E_QUEUE_STRIDE,
  E1000E_QUEUES,
  E1000E_TARC0,
  E1000E_TX_QUEUE,
  ICR_TXQ0,
  ICR_TXQ1,
  IVAR_TX_INT_EVERY_WB,
  TARC_ENABLE,
  TXD_CMD_TSE,
  TXD_DTYP_D,
  TXD_POPTS_IXSM,
  TXD_POPTS_TXSM,
  TXD_SPECIAL_SHIFT,
} from "./e1000e_regs.ts";

const { addrLo: DW_ADDR_LO, addrHi: DW_ADDR_HI, cmd: DW_CMD, status: DW_STATUS } = TXD_DW;

interface TxQueue {
  readonly ring: RingRegisters;
  readonly tarc: number;
  readonly frame: TxFrame;
  /** POPTS of the frame's data descriptors (QEMU `sum_needed`). */
  popts: number;
  /** The frame asked for segmentation (QEMU `cptse`). */
  tse: boolean;
}

/** What the transmitter needs from the device. */
export interface E1000eTxHost extends TxHost {
  /** Whether MSI-X is enabled (TXQn causes then). */
  msixEnabled(): boolean;
  /** Raise ICR causes. */
  raise(causes: number): void;
}

/** The two transmit queues. */
export class E1000eTransmitter {
  readonly #regs: E1000RegisterFile;
  readonly #host: E1000eTxHost;
  readonly #queues: TxQueue[];
  readonly #scratch = new DescriptorScratch();
  readonly #desc = this.#scratch.bytes;
  readonly #dw = this.#scratch.dw;

  /** Transmit queues over `regs`. */
  constructor(regs: E1000RegisterFile, host: E1000eTxHost) {
    this.#regs = regs;
    this.#host = host;
    this.#queues = Array.from({ length: E1000E_QUEUES }, (_, n) => ({
      ring: ringAt(regs, E1000E_TX_QUEUE + E1000E_QUEUE_STRIDE * n),
      tarc: regs.index(E1000E_TARC0 + E1000E_QUEUE_STRIDE * n),
      frame: new TxFrame(),
      popts: 0,
      tse: false,
    }));
  }

  /** The queue a tail register index belongs to, or -1. */
  queueOfTail(index: number): number {
    for (let n = 0; n < this.#queues.length; n++) if (this.#queues[n].ring.tail === index) return n;
    return -1;
  }

  /** Whether queue `n`'s TARC.ENABLE is set. */
  enabled(n: number): boolean {
    return (this.#regs.mac[this.#queues[n].tarc] & TARC_ENABLE) !== 0;
  }

  /** Forget partial frames (reset). */
  reset(): void {
    for (const q of this.#queues) {
      q.frame.reset();
      q.popts = 0;
      q.tse = false;
    }
  }

  /** Process queue `n` from head to tail. */
  process(n: number): void {
    const q = this.#queues[n];
    const mac = this.#regs.mac;
    if ((mac[E1000_TCTL >>> 2] & TCTL_EN) === 0) return;
    const dma = this.#host.dma;
    let causes = ICR_TXQE;
    while (!ringEmpty(mac, q.ring)) {
      const at = fetchHead(mac, q.ring, dma, this.#desc);
      if (at < 0) {
        this.#host.dmaFault(`TX queue ${n} descriptor ${mac[q.ring.head]}`);
        break;
      }
      this.#descriptor(q, n);
      causes |= this.#writeBack(n, mac[q.ring.bal], mac[q.ring.bah], at);
      ringAdvance(mac, q.ring, 1);
    }
    this.#host.raise(causes);
  }

  #descriptor(q: TxQueue, n: number): void {
    const dw = this.#dw;
    const cmd = dw[DW_CMD];
    const dext = (cmd & TXD_CMD_DEXT) !== 0;
    if (dext && (cmd & TXD_DTYP_D) === 0) return; // context descriptor
    if (dext) {
      q.popts = dw[DW_STATUS];
      q.tse = (cmd & TXD_CMD_TSE) !== 0;
    } else {
      q.tse = false;
    }
    if (!q.frame.append(this.#host.dma, dw[DW_ADDR_LO], dw[DW_ADDR_HI], cmd & TXD_LENGTH_MASK)) {
      this.#host.dmaFault(`TX queue ${n} buffer`);
    }
    if ((cmd & TXD_CMD_EOP) === 0) return;
    const mac = this.#regs.mac;
    const vet = mac[E1000_VET >>> 2] & VET_TPID_MASK;
    const vlan = (mac[E1000_CTRL >>> 2] & CTRL_VME) !== 0 && (cmd & TXD_CMD_VLE) !== 0;
    const length = q.frame.finish({
      ipChecksum: q.tse || (q.popts & TXD_POPTS_IXSM) !== 0,
      l4Checksum: q.tse || (q.popts & TXD_POPTS_TXSM) !== 0,
      vlanTci: vlan ? dw[DW_STATUS] >>> TXD_SPECIAL_SHIFT : undefined,
      vlanTpid: vet,
    });
    if (length > 0) this.#host.send(q.frame.bytes, length);
    else if (q.frame.dropReason !== "") {
      this.#host.dropped(`TX queue ${n}: ${q.frame.dropReason}`);
    }
    q.frame.reset();
    q.popts = 0;
    q.tse = false;
  }

  /** With RS (or IVAR's every-write-back bit): DD into the status dword. */
  #writeBack(n: number, lo: number, hi: number, at: number): number {
    const mac = this.#regs.mac;
    if (
      (this.#dw[DW_CMD] & TXD_CMD_RS) === 0 && (mac[E1000E_IVAR >>> 2] & IVAR_TX_INT_EVERY_WB) === 0
    ) {
      return 0;
    }
    const status = this.#dw[DW_STATUS] | TXD_STAT_DD;
    if (!this.#scratch.writeWord(this.#host.dma, lo, hi, at + 4 * DW_STATUS, status)) {
      this.#host.dmaFault(`TX queue ${n} write-back`);
    }
    if (!this.#host.msixEnabled()) return ICR_TXDW;
    return n === 0 ? ICR_TXQ0 : ICR_TXQ1;
  }
}
