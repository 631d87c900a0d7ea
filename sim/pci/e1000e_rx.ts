/**
 * Receive side of the simulated 82574L (§7.1), with QEMU 10's e1000e behaviour:
 * - frames wait in the receive FIFO while the link is down, RCTL.EN is clear, bus mastering is
 *   off, or neither ring has a free descriptor (RNBC counts a frame that waits for one);
 * - then: pad to 60 bytes (RUC), drop oversized frames (ROC), VLAN filter, address filter; RSS
 *   (MRQC, RXCSUM.PCSD and extended descriptors) picks ring 0 or 1 through RETA; a ring without
 *   descriptors for the whole frame raises ICR.RXO and the frame is dropped;
 * - the frame, plus 4 zero FCS bytes unless RCTL.SECRC, is written across descriptors of the
 *   buffer size RCTL selects: legacy descriptors (§7.1.4) unless RFCTL.EXSTEN asks for extended
 *   ones (§7.1.5: RSS type/queue and hash or IP id, status/error with packet type, length, VLAN);
 * - causes: RXT0 (+ RXDMT0 when the free descriptors reach the RCTL.RDMTS fraction of the ring),
 *   or RXQ0/RXQ1 with MSI-X; SRPD for frames shorter than RSRPD; ACK for TCP ACKs unless
 *   RFCTL.ACK_DIS.
 *
 * Packet-split descriptors (RCTL.DTYP = 01b) are not modelled: they are written as extended
 * ones. A descriptor or buffer the IOMMU refuses drops the frame (counted, traced).
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
  E1000_ROC,
  E1000_RXCSUM,
  E1000_VET,
  ICR_RXDMT0,
  ICR_RXO,
  ICR_RXT0,
  RCTL_RDMTS_SHIFT,
  RCTL_SECRC,
  RXCSUM_PCSD,
  RXD_STAT_DD,
  RXD_STAT_EOP,
  RXD_STAT_IPIDV,
  RXD_STAT_VP,
  VET_TPID_MASK,
} from "./e1000_regs.ts";
import {
  DescriptorScratch,
  fetchHead,
  ringAdvance,
  ringAt,
  ringEmpty,
  ringOwned,
} from "./e1000_ring.ts";
import type { RingRegisters } from "./e1000_ring.ts";
import { RxFifo, type RxFifoConsumer } from "./e1000_rx_fifo.ts";
import { oversized82574, RxAddressFilter, vlanAccepted } from "./e1000_rx_filter.ts";
import { rctlBufferSize, rxChecksumStatus, RXD_STAT_ACK, stripVlan } from "./e1000_rx_meta.ts";
import { countRxFrame, ETH_FCS_LEN, frameKind } from "./e1000_stats.ts";
import { FrameInfo, IPPROTO_TCP, parseFrame } from "./frame_parse.ts";
import {
  E1000E_QUEUE_STRIDE,
  E1000E_QUEUES,
  E1000E_RSRPD,
  E1000E_RX_QUEUE,
  ICR_ACK,
  ICR_RXQ0,
  ICR_RXQ1,
  ICR_SRPD,
  RCTL_FLXBUF_MASK,
  RCTL_FLXBUF_SHIFT,
  RFCTL_ACK_DIS,
  RFCTL_EXSTEN,
  RXD_PKT_IP4,
  RXD_PKT_IP4_XDP,
  RXD_PKT_IP6,
  RXD_PKT_IP6_XDP,
  RXD_PKT_MAC,
  RXD_PKT_TYPE_SHIFT,
} from "./e1000e_regs.ts";
import { E1000_RFCTL } from "./e1000_regs.ts";
import { E1000E_RSS, RssEngine } from "./rss.ts";

/** log2 of the descriptor size: RDMTS fractions are of the ring in bytes (QEMU). */
const DESC_SHIFT = 4;
/** Legacy descriptor byte offsets (§7.1.4). */
const LEGACY_LENGTH = 8;
const LEGACY_CSUM = 10;
const LEGACY_STATUS = 12;
const LEGACY_ERRORS = 13;
const LEGACY_SPECIAL = 14;
/** Errors live in bits 31:24 of the extended status/error dword. */
const ERRORS_SHIFT = 24;
/** Extended write-back dwords. */
const DW_MRQ = 0;
const DW_RSS = 1;
const DW_STATUS = 2;
const DW_LENGTH = 3;
/** MRQ: queue number shift (above the RSS type). */
const MRQ_QUEUE_SHIFT = 8;
const VLAN_FIELD_SHIFT = 16;
const KIB = 1024;

/** What the receiver needs from the device. */
export interface E1000eRxHost {
  /** DMA. */
  readonly dma: DmaAccess;
  /** Whether MSI-X is enabled (RXQn causes then). */
  msixEnabled(): boolean;
  /** Raise ICR causes. */
  raise(causes: number): void;
  /** Whether the function may master the bus. */
  busMaster(): boolean;
  /** The IOMMU refused a DMA. */
  dmaFault(what: string): void;
  /** A frame reached host memory. */
  delivered(): void;
}

/** The receive FIFO and the two receive rings. */
export class E1000eReceiver {
  /** Frames from the wire not yet taken. */
  readonly fifo: RxFifo = new RxFifo();
  readonly #regs: E1000RegisterFile;
  readonly #host: E1000eRxHost;
  readonly #rings: RingRegisters[];
  readonly #filter = new RxAddressFilter([{ at: E1000_RA, count: 16 }]);
  readonly #rss = new RssEngine(E1000E_RSS);
  readonly #info = new FrameInfo();
  readonly #scratch = new DescriptorScratch();
  readonly #desc = this.#scratch.bytes;
  readonly #dw = this.#scratch.dw;
  readonly #view = new DataView(this.#desc.buffer);
  /** What the last descriptor of the current frame gets (reused frame to frame). */
  readonly #meta = { extended: false, status: 0, rssField: 0, mrq: 0, vlanTag: 0 };
  #causes = 0;
  /** What the FIFO hands frames to (made once). */
  readonly #consumer: RxFifoConsumer = {
    busMaster: () => this.#host.busMaster(),
    hasDescriptor: () => this.#anyBuffer(),
    deliver: () => this.#deliver(),
  };

  /** Rings over `regs`. */
  constructor(regs: E1000RegisterFile, host: E1000eRxHost) {
    this.#regs = regs;
    this.#host = host;
    this.#rings = Array.from(
      { length: E1000E_QUEUES },
      (_, n) => ringAt(regs, E1000E_RX_QUEUE + E1000E_QUEUE_STRIDE * n),
    );
  }

  /** Whether register index `i` is a receive tail. */
  isTail(i: number): boolean {
    for (let n = 0; n < this.#rings.length; n++) if (this.#rings[n].tail === i) return true;
    return false;
  }

  /** Take frames from the FIFO while they can go somewhere. */
  drain(): void {
    this.#causes = 0;
    this.fifo.drain(this.#regs, this.#consumer);
    if (this.#causes !== 0) this.#host.raise(this.#causes);
  }

  /** Some ring has at least one descriptor (QEMU's `e1000e_can_receive`). */
  #anyBuffer(): boolean {
    const mac = this.#regs.mac;
    for (let i = 0; i < this.#rings.length; i++) {
      const r = this.#rings[i];
      if (mac[r.len] > 0 && ringOwned(mac, r) > 0) return true;
    }
    return false;
  }

  #deliver(): void {
    const mac = this.#regs.mac;
    const frame = this.fifo.front;
    let length = this.fifo.padFront(this.#regs);
    if (oversized82574(mac, length)) {
      this.#regs.inc(E1000_ROC >>> 2);
      return;
    }
    const vet = mac[E1000_VET >>> 2] & VET_TPID_MASK;
    const info = parseFrame(frame, length, vet, this.#info);
    if (info.vlan && !vlanAccepted(mac, info.vlanTci)) return;
    if (!this.#filter.accepts(mac, frame)) return;
    const kind = frameKind(frame);
    const strip = info.vlan && (mac[E1000_CTRL >>> 2] & CTRL_VME) !== 0;
    const vlanTag = strip ? info.vlanTci : 0;
    if (strip) {
      length = stripVlan(frame, length);
      parseFrame(frame, length, vet, info);
    }
    const extended = (mac[E1000_RFCTL >>> 2] & RFCTL_EXSTEN) !== 0;
    const pcsd = (mac[E1000_RXCSUM >>> 2] & RXCSUM_PCSD) !== 0;
    const rss = extended && pcsd && this.#rss.enabled(mac)
      ? this.#rss.classify(frame, info, mac)
      : undefined;
    const n = rss?.queue ?? 0;
    const ring = this.#rings[n];
    const fcs = (mac[E1000_RCTL >>> 2] & RCTL_SECRC) !== 0 ? 0 : ETH_FCS_LEN;
    frame.fill(0, length, length + fcs);
    const total = length + fcs;
    const bufSize = this.#bufferSize();
    if (total > ringOwned(mac, ring) * bufSize) {
      this.#causes |= ICR_RXO;
      return;
    }
    let status = RXD_STAT_DD | RXD_STAT_EOP | rxChecksumStatus(mac, frame, info);
    if (strip) status |= RXD_STAT_VP;
    let rssField = 0;
    if (pcsd) rssField = rss?.hash ?? 0;
    else if (info.ipVersion === 4) {
      status |= RXD_STAT_IPIDV;
      rssField = info.ipId;
    }
    const ack = info.l4Proto === IPPROTO_TCP && info.tcpAck;
    if (ack) status |= RXD_STAT_ACK;
    status |= packetType(info) << RXD_PKT_TYPE_SHIFT;
    const meta = this.#meta;
    meta.extended = extended;
    meta.status = status;
    meta.rssField = rssField;
    meta.mrq = rss ? rss.type | (rss.queue << MRQ_QUEUE_SHIFT) : 0;
    meta.vlanTag = vlanTag;
    const written = this.#write(ring, n, frame, length, fcs, bufSize);
    if (written === "fault") return;
    if (written === "done") {
      countRxFrame(this.#regs, kind, length, total);
      this.#host.delivered();
    }
    if (total < mac[E1000E_RSRPD >>> 2]) this.#causes |= ICR_SRPD;
    if (ack && (mac[E1000_RFCTL >>> 2] & RFCTL_ACK_DIS) === 0) this.#causes |= ICR_ACK;
    if (this.#host.msixEnabled()) {
      this.#causes |= n === 0 ? ICR_RXQ0 : ICR_RXQ1;
      return;
    }
    const rdmts = (mac[E1000_RCTL >>> 2] >>> RCTL_RDMTS_SHIFT) & 3;
    const threshold = mac[ring.len] >>> (rdmts + 1 + DESC_SHIFT);
    this.#causes |= ICR_RXT0 | (ringOwned(mac, ring) === threshold ? ICR_RXDMT0 : 0);
  }

  /** Buffer bytes per descriptor: RCTL.FLXBUF in KiB, else RCTL.BSIZE/BSEX. */
  #bufferSize(): number {
    const rctl = this.#regs.mac[E1000_RCTL >>> 2];
    const flex = (rctl >>> RCTL_FLXBUF_SHIFT) & RCTL_FLXBUF_MASK;
    return flex !== 0 ? flex * KIB : rctlBufferSize(rctl);
  }

  /**
   * Write the frame as QEMU 10's e1000e does (measured): the `size` payload bytes across as many
   * descriptors as the buffer size needs, then — unless RCTL.SECRC — the 4 FCS bytes in a
   * descriptor of their own; the last descriptor carries EOP and the frame's status. Returns
   * "done", "partial" (the ring ran out mid-frame: the frame stays without EOP and uncounted, as
   * QEMU) or "fault" (the IOMMU refused a descriptor or buffer).
   */
  #write(
    ring: RingRegisters,
    n: number,
    frame: Uint8Array,
    size: number,
    fcs: number,
    bufSize: number,
  ): "done" | "partial" | "fault" {
    let offset = 0;
    while (offset < size) {
      const chunk = Math.min(size - offset, bufSize);
      const r = this.#one(ring, n, frame, offset, chunk, fcs === 0 && offset + chunk >= size);
      if (r !== "done") return r;
      offset += chunk;
    }
    if (fcs === 0) return "done";
    return this.#one(ring, n, frame, size, fcs, true);
  }

  /** Fill the head descriptor with `frame[offset..offset+length)`. */
  #one(
    ring: RingRegisters,
    n: number,
    frame: Uint8Array,
    offset: number,
    length: number,
    last: boolean,
  ): "done" | "partial" | "fault" {
    const meta = this.#meta;
    const mac = this.#regs.mac;
    const dma = this.#host.dma;
    const dw = this.#dw;
    const v = this.#view;
    if (ringEmpty(mac, ring)) return "partial";
    const at = fetchHead(mac, ring, dma, this.#desc);
    if (at < 0) {
      this.#host.dmaFault(`RX queue ${n} descriptor ${mac[ring.head]}`);
      return "fault";
    }
    const lo = dw[0];
    const hi = dw[1];
    const written = lo !== 0 || hi !== 0 ? length : 0; // a null buffer address is skipped
    if (written > 0 && !dma.write(lo, hi, 0, frame, offset, written)) {
      this.#host.dmaFault(`RX queue ${n} buffer`);
      return "fault";
    }
    const status = last ? meta.status : RXD_STAT_DD;
    if (meta.extended) {
      dw[DW_MRQ] = last ? meta.mrq : 0;
      dw[DW_RSS] = last ? meta.rssField : 0;
      dw[DW_STATUS] = status;
      dw[DW_LENGTH] = (written | ((last ? meta.vlanTag : 0) << VLAN_FIELD_SHIFT)) >>> 0;
    } else {
      v.setUint16(LEGACY_LENGTH, written, true);
      v.setUint16(LEGACY_CSUM, 0, true);
      v.setUint8(LEGACY_STATUS, status & 0xff);
      v.setUint8(LEGACY_ERRORS, status >>> ERRORS_SHIFT);
      v.setUint16(LEGACY_SPECIAL, last ? meta.vlanTag : 0, true);
    }
    if (!dma.write(mac[ring.bal], mac[ring.bah], at, this.#desc)) {
      this.#host.dmaFault(`RX queue ${n} write-back`);
      return "fault";
    }
    ringAdvance(mac, ring, 1);
    return "done";
  }
}

/** The extended descriptor's packet type. */
function packetType(info: FrameInfo): number {
  const l4 = info.l4Proto !== 0;
  if (info.ipVersion === 4) return l4 ? RXD_PKT_IP4_XDP : RXD_PKT_IP4;
  if (info.ipVersion === 6) return l4 ? RXD_PKT_IP6_XDP : RXD_PKT_IP6;
  return RXD_PKT_MAC;
}
