/**
 * Transmit side of the simulated 82576 (§7.2): for each of the 16 queues, the descriptors from
 * head to tail are processed when software moves TDT (on the virtual clock, a moment after the
 * write), as long as TCTL.EN and TXDCTL.ENABLE are set:
 * - advanced context descriptors (DTYP 0010b) store VLAN tag and offload context in slot IDX;
 * - advanced data descriptors (DTYP 0011b) and legacy descriptors (DEXT = 0) add their buffer
 *   to the frame; the first data descriptor's POPTS/VLE/IDX choose the offloads (a legacy-only
 *   frame reuses the last advanced frame's, as QEMU); EOP sends;
 * - with RS the descriptor is written back: STA.DD in the status dword, or — when TDWBAL bit 0
 *   is set — the new head value at TDWBAH:TDWBAL (head write-back);
 * - if any written-back descriptor's queue has a valid IVAR entry, that EICR bit and ICR.TXDW
 *   are raised (QEMU raises nothing when the queue has no valid IVAR entry).
 *
 * A descriptor the IOMMU refuses stops the queue until the next TDT write; a buffer it refuses
 * drops that frame (its descriptors are still completed). TCP segmentation (TSE) is not
 * modelled: a TSE frame gets its checksums and goes out whole.
 *
 * @module
 */

import type { E1000RegisterFile } from "./e1000_regfile.ts";
import {
  E1000_TCTL,
  E1000_VET,
  ICR_TXDW,
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
  ADVTXD_DCMD_TSE,
  ADVTXD_DTYP_CTXT,
  ADVTXD_DTYP_DATA,
  ADVTXD_DTYP_MASK,
  ADVTXD_IDX_SHIFT,
  ADVTXD_POPTS_IXSM,
  ADVTXD_POPTS_TXSM,
  ADVTXD_VLAN_SHIFT,
  DCTL_ENABLE,
  IGB_QUEUE_STRIDE,
  IGB_QUEUES,
  IGB_TX_QUEUE,
  Q,
  TDWBAL_ADDR_MASK,
  TDWBAL_ENABLE,
} from "./igb_regs.ts";
import type { IgbInterrupts } from "./igb_irq.ts";

/** Dwords of an advanced context descriptor kept per slot. */
const CTX_DWORDS = 4;
/** Context slots per queue (IDX 0 and 1). */
const CTX_SLOTS = 2;
const { addrLo: DW_ADDR_LO, addrHi: DW_ADDR_HI, cmd: DW_CMD, status: DW_STATUS } = TXD_DW;
/** Context dword holding IDX (mss_l4len_idx). */
const CTX_IDX_DWORD = 3;

/** Per-queue transmit state. */
interface TxQueue {
  readonly ring: RingRegisters;
  readonly dctl: number;
  readonly tdwbal: number;
  readonly tdwbah: number;
  readonly ctx: Uint32Array;
  frame: TxFrame | undefined;
  first: boolean;
  firstCmd: number;
  firstOlinfo: number;
}

/** What the transmitter needs from the device. */
export interface IgbTxHost extends TxHost {
  /** Interrupts. */
  readonly irq: IgbInterrupts;
}

/** The 16 transmit queues. */
export class IgbTransmitter {
  readonly #regs: E1000RegisterFile;
  readonly #host: IgbTxHost;
  readonly #queues: TxQueue[];
  readonly #scratch = new DescriptorScratch();
  readonly #desc = this.#scratch.bytes;
  readonly #dw = this.#scratch.dw;

  /** Transmit queues over `regs`. */
  constructor(regs: E1000RegisterFile, host: IgbTxHost) {
    this.#regs = regs;
    this.#host = host;
    this.#queues = Array.from({ length: IGB_QUEUES }, (_, n) => {
      const base = IGB_TX_QUEUE + IGB_QUEUE_STRIDE * n;
      return {
        ring: ringAt(regs, base),
        dctl: regs.index(base + Q.dctl),
        tdwbal: regs.index(base + Q.tdwbal),
        tdwbah: regs.index(base + Q.tdwbah),
        ctx: new Uint32Array(CTX_DWORDS * CTX_SLOTS),
        frame: undefined,
        first: true,
        firstCmd: 0,
        firstOlinfo: 0,
      };
    });
  }

  /** The queue a tail register index belongs to, or -1. */
  queueOfTail(index: number): number {
    for (let n = 0; n < this.#queues.length; n++) if (this.#queues[n].ring.tail === index) return n;
    return -1;
  }

  /** Forget partial frames and contexts (reset; QEMU keeps the last first-descriptor fields). */
  reset(): void {
    for (const q of this.#queues) {
      q.ctx.fill(0);
      q.frame?.reset();
      q.first = true;
    }
  }

  /** Process queue `n` from head to tail. */
  process(n: number): void {
    const q = this.#queues[n];
    const mac = this.#regs.mac;
    if ((mac[E1000_TCTL >>> 2] & TCTL_EN) === 0 || (mac[q.dctl] & DCTL_ENABLE) === 0) return;
    const dma = this.#host.dma;
    let causes = 0;
    while (!ringEmpty(mac, q.ring)) {
      const at = fetchHead(mac, q.ring, dma, this.#desc);
      if (at < 0) {
        this.#host.dmaFault(`TX queue ${n} descriptor ${mac[q.ring.head]}`);
        break;
      }
      this.#descriptor(q, n);
      ringAdvance(mac, q.ring, 1);
      causes |= this.#writeBack(q, n, at);
    }
    if (causes !== 0) {
      this.#host.irq.raiseEicr(causes);
      this.#host.irq.raiseIcr(ICR_TXDW);
    }
  }

  #descriptor(q: TxQueue, n: number): void {
    const dw = this.#dw;
    const cmd = dw[DW_CMD];
    if ((cmd & TXD_CMD_DEXT) !== 0) {
      const dtyp = cmd & ADVTXD_DTYP_MASK;
      if (dtyp === ADVTXD_DTYP_CTXT) {
        const slot = ((dw[CTX_IDX_DWORD] >>> ADVTXD_IDX_SHIFT) & 1) * CTX_DWORDS;
        for (let i = 0; i < CTX_DWORDS; i++) q.ctx[slot + i] = dw[i];
        return;
      }
      if (dtyp !== ADVTXD_DTYP_DATA) return; // unknown descriptor type: ignored
      if (q.first) {
        q.firstCmd = cmd;
        q.firstOlinfo = dw[DW_STATUS];
        q.first = false;
      }
    }
    const frame = q.frame ??= new TxFrame();
    if (!frame.append(this.#host.dma, dw[DW_ADDR_LO], dw[DW_ADDR_HI], cmd & TXD_LENGTH_MASK)) {
      this.#host.dmaFault(`TX queue ${n} buffer`);
    }
    if ((cmd & TXD_CMD_EOP) === 0) return;
    // The first data descriptor's fields choose the offloads. A frame of legacy descriptors
    // has none of its own, and QEMU then uses the last advanced frame's (they are never
    // cleared) — so do we.
    const olinfo = q.firstOlinfo;
    const slot = ((olinfo >>> ADVTXD_IDX_SHIFT) & 1) * CTX_DWORDS;
    const tse = (q.firstCmd & ADVTXD_DCMD_TSE) !== 0;
    const length = frame.finish({
      ipChecksum: tse || (olinfo & ADVTXD_POPTS_IXSM) !== 0,
      l4Checksum: tse || (olinfo & ADVTXD_POPTS_TXSM) !== 0,
      vlanTci: (q.firstCmd & TXD_CMD_VLE) !== 0 ? q.ctx[slot] >>> ADVTXD_VLAN_SHIFT : undefined,
      vlanTpid: this.#regs.mac[E1000_VET >>> 2] & VET_TPID_MASK,
    });
    if (length > 0) this.#host.send(frame.bytes, length);
    else if (frame.dropReason !== "") this.#host.dropped(`TX queue ${n}: ${frame.dropReason}`);
    frame.reset();
    q.first = true;
  }

  /** With RS: DD into the descriptor, or the head to TDWBAH:TDWBAL. Returns the EICR cause. */
  #writeBack(q: TxQueue, n: number, at: number): number {
    const mac = this.#regs.mac;
    if ((this.#dw[DW_CMD] & TXD_CMD_RS) === 0) return 0;
    const dma = this.#host.dma;
    let ok: boolean;
    if ((mac[q.tdwbal] & TDWBAL_ENABLE) !== 0) {
      ok = this.#scratch.writeWord(
        dma,
        mac[q.tdwbal] & TDWBAL_ADDR_MASK,
        mac[q.tdwbah],
        0,
        mac[q.ring.head],
      );
    } else {
      const status = this.#dw[DW_STATUS] | TXD_STAT_DD;
      ok = this.#scratch.writeWord(
        dma,
        mac[q.ring.bal],
        mac[q.ring.bah],
        at + 4 * DW_STATUS,
        status,
      );
    }
    if (!ok) this.#host.dmaFault(`TX queue ${n} write-back`);
    return this.#host.irq.queueCause(n, true);
  }
}
