/**
 * Receive side of the simulated 82576 (§7.1), with QEMU 10's igb behaviour:
 * - frames wait in the receive FIFO while the link is down, RCTL.EN is clear, bus mastering is
 *   off, or no enabled queue has a free descriptor (RNBC counts a frame that waits for one);
 * - then, in order: pad to 60 bytes (RUC), drop oversized frames (RCTL.LPE/RLPML), VLAN filter,
 *   address filter, RSS (MRQC = RSS and RXCSUM.PCSD) picks the queue through RETA, else queue 0;
 *   a queue whose RXDCTL.ENABLE is clear drops the frame; one without descriptors for the whole
 *   frame raises ICR.RXO and drops it;
 * - the frame (plus 4 zero FCS bytes unless RCTL.SECRC) is written across as many descriptors as
 *   it needs (SRRCTL.BSIZEPACKET, else RCTL's buffer size), each written back in the advanced
 *   one-buffer format (§7.1.5.2): DD, length, and on the last one EOP, the RSS type and hash
 *   (or the IP id), packet type, VLAN tag (stripped with CTRL.VME) and checksum status;
 * - ICR.RXT0 (and RXDMT0 when the free descriptors reach SRRCTL.RDMTS × 16) and the queue's
 *   IVAR vector in EICR are raised.
 *
 * A descriptor or buffer the IOMMU refuses drops the frame (counted, traced) and leaves that
 * descriptor to software.
 *
 * @module
 */

import type { DmaAccess } from "./dma_access.ts";
import type { E1000RegisterFile } from "./e1000_regfile.ts";
import {
  CTRL_VME,
  E1000_CTRL,
  E1000_RA,
  E1000_RCTL,
  E1000_RXCSUM,
  E1000_VET,
  ICR_RXDMT0,
  ICR_RXO,
  ICR_RXT0,
  RCTL_SECRC,
  RXCSUM_PCSD,
  RXD_STAT_DD,
  RXD_STAT_EOP,
  RXD_STAT_IPIDV,
  RXD_STAT_VP,
  VET_TPID_MASK,
} from "./e1000_regs.ts";
import { DescriptorScratch, fetchHead, ringAdvance, ringAt, ringOwned } from "./e1000_ring.ts";
import type { RingRegisters } from "./e1000_ring.ts";
import { RxFifo, type RxFifoConsumer } from "./e1000_rx_fifo.ts";
import { oversized82576, RxAddressFilter, vlanAccepted } from "./e1000_rx_filter.ts";
import { rctlBufferSize, rxChecksumStatus, RXD_STAT_ACK, stripVlan } from "./e1000_rx_meta.ts";
import { countRxFrame, ETH_FCS_LEN, frameKind } from "./e1000_stats.ts";
import { FrameInfo, IPPROTO_TCP, IPPROTO_UDP, parseFrame } from "./frame_parse.ts";
import {
  ADVRXD_PKT_IP4,
  ADVRXD_PKT_IP6,
  ADVRXD_PKT_TCP,
  ADVRXD_PKT_UDP,
  DCTL_ENABLE,
  IGB_QUEUE_STRIDE,
  IGB_QUEUES,
  IGB_RA2,
  IGB_RLPML,
  IGB_RX_QUEUE,
  Q,
  SRRCTL_BSIZEPACKET_MASK,
  SRRCTL_BSIZEPACKET_SHIFT,
  SRRCTL_RDMTS_MASK,
  SRRCTL_RDMTS_SHIFT,
} from "./igb_regs.ts";
import type { IgbInterrupts } from "./igb_irq.ts";
import { IGB_RSS, RSS_TYPE, RssEngine } from "./rss.ts";

/** Receive descriptors per RDMTS unit. */
const RDMTS_UNIT = 16;
/** Descriptor dwords: packet buffer address (read format), write-back fields. */
const DW_ADDR_LO = 0;
const DW_ADDR_HI = 1;
const DW_INFO = 0;
const DW_RSS = 1;
const DW_STATUS = 2;
const DW_LENGTH = 3;
/** Length and VLAN share the last dword. */
const VLAN_FIELD_SHIFT = 16;

interface RxQueue {
  readonly ring: RingRegisters;
  readonly srrctl: number;
  readonly dctl: number;
}

/** What the receiver needs from the device. */
export interface IgbRxHost {
  /** DMA. */
  readonly dma: DmaAccess;
  /** Interrupts. */
  readonly irq: IgbInterrupts;
  /** Whether the function may master the bus. */
  busMaster(): boolean;
  /** A descriptor or buffer could not be read or written (the IOMMU refused it). */
  dmaFault(what: string): void;
  /** A frame reached host memory. */
  delivered(): void;
}

/** The receive FIFO and the 16 receive queues. */
export class IgbReceiver {
  /** Frames from the wire not yet taken. */
  readonly fifo: RxFifo = new RxFifo();
  readonly #regs: E1000RegisterFile;
  readonly #host: IgbRxHost;
  readonly #queues: RxQueue[];
  readonly #filter = new RxAddressFilter([{ at: E1000_RA, count: 16 }, { at: IGB_RA2, count: 8 }]);
  readonly #rss = new RssEngine(IGB_RSS);
  readonly #info = new FrameInfo();
  readonly #scratch = new DescriptorScratch();
  readonly #desc = this.#scratch.bytes;
  readonly #dw = this.#scratch.dw;
  /** ICR and EICR causes gathered during one drain. */
  #causes = 0;
  #extended = 0;
  /** What the FIFO hands frames to (made once). */
  readonly #consumer: RxFifoConsumer = {
    busMaster: () => this.#host.busMaster(),
    hasDescriptor: () => this.#anyBuffer(),
    deliver: () => this.#deliver(),
  };

  /** Receive queues over `regs`. */
  constructor(regs: E1000RegisterFile, host: IgbRxHost) {
    this.#regs = regs;
    this.#host = host;
    this.#queues = Array.from({ length: IGB_QUEUES }, (_, n) => {
      const base = IGB_RX_QUEUE + IGB_QUEUE_STRIDE * n;
      return {
        ring: ringAt(regs, base),
        srrctl: regs.index(base + Q.srrctl),
        dctl: regs.index(base + Q.dctl),
      };
    });
  }

  /** Take frames from the FIFO while they can go somewhere. */
  drain(): void {
    this.#causes = 0;
    this.#extended = 0;
    this.fifo.drain(this.#regs, this.#consumer);
    if (this.#extended !== 0) this.#host.irq.raiseEicr(this.#extended);
    if (this.#causes !== 0) this.#host.irq.raiseIcr(this.#causes);
  }

  /** Some enabled queue has at least one descriptor (QEMU's `igb_can_receive`). */
  #anyBuffer(): boolean {
    const mac = this.#regs.mac;
    for (let n = 0; n < this.#queues.length; n++) {
      const q = this.#queues[n];
      if ((mac[q.dctl] & DCTL_ENABLE) !== 0 && mac[q.ring.len] > 0 && ringOwned(mac, q.ring) > 0) {
        return true;
      }
    }
    return false;
  }

  /** Deliver the FIFO's front frame (or drop it), gathering the causes it raises. */
  #deliver(): void {
    const mac = this.#regs.mac;
    const frame = this.fifo.front;
    let length = this.fifo.padFront(this.#regs);
    const vet = mac[E1000_VET >>> 2] & VET_TPID_MASK;
    const info = parseFrame(frame, length, vet, this.#info);
    if (oversized82576(mac, length, info.vlan, mac[IGB_RLPML >>> 2])) return;
    if (info.vlan && !vlanAccepted(mac, info.vlanTci)) return;
    if (!this.#filter.accepts(mac, frame)) return;
    const rssOn = this.#rss.enabled(mac) && (mac[E1000_RXCSUM >>> 2] & RXCSUM_PCSD) !== 0;
    const rss = rssOn ? this.#rss.classify(frame, info, mac) : undefined;
    const n = rss?.queue ?? 0;
    const q = this.#queues[n];
    if ((mac[q.dctl] & DCTL_ENABLE) === 0) return;
    const kind = frameKind(frame);
    const strip = info.vlan && (mac[E1000_CTRL >>> 2] & CTRL_VME) !== 0;
    const vlanTag = strip ? info.vlanTci : 0;
    if (strip) {
      length = stripVlan(frame, length);
      parseFrame(frame, length, vet, info);
    }
    const fcs = (mac[E1000_RCTL >>> 2] & RCTL_SECRC) !== 0 ? 0 : ETH_FCS_LEN;
    frame.fill(0, length, length + fcs);
    const total = length + fcs;
    const bufSize = this.#bufferSize(q);
    if (total > ringOwned(mac, q.ring) * bufSize) {
      this.#causes |= ICR_RXO;
      return;
    }
    let status = RXD_STAT_DD | RXD_STAT_EOP | rxChecksumStatus(mac, frame, info);
    if (strip) status |= RXD_STAT_VP;
    let rssField = 0;
    if ((mac[E1000_RXCSUM >>> 2] & RXCSUM_PCSD) !== 0) rssField = rss?.hash ?? 0;
    else if (info.ipVersion === 4) {
      status |= RXD_STAT_IPIDV;
      rssField = info.ipId;
    }
    if (info.l4Proto === IPPROTO_TCP && info.tcpAck) status |= RXD_STAT_ACK;
    let pktInfo = rss?.type ?? RSS_TYPE.none;
    if (info.ipVersion === 4) pktInfo |= ADVRXD_PKT_IP4;
    if (info.ipVersion === 6) pktInfo |= ADVRXD_PKT_IP6;
    if (info.l4Proto === IPPROTO_TCP) pktInfo |= ADVRXD_PKT_TCP;
    if (info.l4Proto === IPPROTO_UDP) pktInfo |= ADVRXD_PKT_UDP;
    if (!this.#write(q, n, frame, length, fcs, bufSize, pktInfo, rssField, status, vlanTag)) {
      return;
    }
    countRxFrame(this.#regs, kind, length, total);
    this.#host.delivered();
    this.#extended |= this.#host.irq.queueCause(n, false);
    const rdmts = (mac[q.srrctl] >>> SRRCTL_RDMTS_SHIFT) & SRRCTL_RDMTS_MASK;
    this.#causes |= ICR_RXT0 | (ringOwned(mac, q.ring) === rdmts * RDMTS_UNIT ? ICR_RXDMT0 : 0);
  }

  /** Buffer bytes per descriptor: SRRCTL.BSIZEPACKET, or RCTL's when that is 0. */
  #bufferSize(q: RxQueue): number {
    const mac = this.#regs.mac;
    const kib = mac[q.srrctl] & SRRCTL_BSIZEPACKET_MASK;
    return kib !== 0 ? kib << SRRCTL_BSIZEPACKET_SHIFT : rctlBufferSize(mac[E1000_RCTL >>> 2]);
  }

  /**
   * Write the frame (`size` bytes, then `fcs` zero bytes) across descriptors with QEMU's
   * arithmetic: each descriptor accounts for up to `bufSize` bytes of the total; the FCS is
   * written only into the descriptor whose share reaches the end (so a frame that just fails to
   * fit one buffer leaves a last descriptor of length 0, as QEMU 10's igb does). False if the
   * IOMMU refused something.
   */
  #write(
    q: RxQueue,
    n: number,
    frame: Uint8Array,
    size: number,
    fcs: number,
    bufSize: number,
    pktInfo: number,
    rssField: number,
    status: number,
    vlanTag: number,
  ): boolean {
    const mac = this.#regs.mac;
    const dma = this.#host.dma;
    const dw = this.#dw;
    const total = size + fcs;
    let offset = 0;
    while (offset < total) {
      const at = fetchHead(mac, q.ring, dma, this.#desc);
      if (at < 0) {
        this.#host.dmaFault(`RX queue ${n} descriptor ${mac[q.ring.head]}`);
        return false;
      }
      const share = Math.min(total - offset, bufSize);
      const lo = dw[DW_ADDR_LO];
      const hi = dw[DW_ADDR_HI];
      let written = 0;
      if ((lo !== 0 || hi !== 0) && offset < size) { // a null buffer address is skipped
        written = Math.min(size - offset, bufSize);
        if (offset + share >= total) written += fcs; // the FCS follows the payload here
        if (!dma.write(lo, hi, 0, frame, offset, written)) {
          this.#host.dmaFault(`RX queue ${n} buffer`);
          return false;
        }
      }
      offset += share;
      const last = offset >= total;
      dw[DW_INFO] = last ? pktInfo : 0;
      dw[DW_RSS] = last ? rssField : 0;
      dw[DW_STATUS] = last ? status : RXD_STAT_DD;
      dw[DW_LENGTH] = (written | ((last ? vlanTag : 0) << VLAN_FIELD_SHIFT)) >>> 0;
      if (!dma.write(mac[q.ring.bal], mac[q.ring.bah], at, this.#desc)) {
        this.#host.dmaFault(`RX queue ${n} write-back`);
        return false;
      }
      ringAdvance(mac, q.ring, 1);
    }
    return true;
  }
}
