/**
 * A frame being gathered from transmit descriptors (one per transmit queue): the data buffers
 * of the descriptors up to EOP are read by DMA into a preallocated buffer, then the offloads the
 * descriptors asked for are applied — VLAN tag insertion, the IPv4 header checksum (IXSM), the
 * TCP/UDP checksum over the pseudo-header (TXSM) — as QEMU's models do (they compute the whole
 * checksum, whatever the driver left in the field). A buffer the IOMMU refuses makes the frame
 * drop (the remaining descriptors of the frame are still consumed), like QEMU's `skip_cp`.
 *
 * @example
 * ```ts
 * const f = new TxFrame();
 * if (!f.append(dma, lo, hi, len)) faults++;
 * if (eop) { const n = f.finish(opts); if (n > 0) link.send(f.bytes, n); f.reset(); }
 * ```
 *
 * @module
 */

import type { DmaAccess } from "./dma_access.ts";
import {
  ETH_HLEN,
  fillIpv4HeaderChecksum,
  fillTransportChecksum,
  FrameInfo,
  parseFrame,
  VLAN_HLEN,
} from "./frame_parse.ts";

/** Longest frame gathered (TCP segmentation is not modelled, so no 64 KiB super-frames). */
export const TX_FRAME_MAX = 16 * 1024;
/** Offset of the EtherType/TPID after the two addresses. */
const ADDRESSES = 12;

/** What a transmitter needs from the device, whatever the part. */
export interface TxHost {
  /** DMA. */
  readonly dma: DmaAccess;
  /** Put a finished frame on the wire (or loop it back); true when it went out. */
  send(frame: Uint8Array, length: number): boolean;
  /** A descriptor or buffer could not be read or written (the IOMMU refused it). */
  dmaFault(what: string): void;
  /** A frame was dropped for another reason. */
  dropped(why: string): void;
}

/** Offloads for one frame. */
export interface TxOffloads {
  /** Insert the IPv4 header checksum. */
  ipChecksum: boolean;
  /** Insert the TCP/UDP checksum. */
  l4Checksum: boolean;
  /** Insert a VLAN tag with this TCI (undefined: none). */
  vlanTci: number | undefined;
  /** The VLAN TPID (VET). */
  vlanTpid: number;
}

/** Gathers one frame. */
export class TxFrame {
  /** The gathered bytes (valid up to {@link length}). */
  readonly bytes: Uint8Array = new Uint8Array(TX_FRAME_MAX + VLAN_HLEN);
  /** Bytes gathered so far. */
  length = 0;
  /** Why the frame will not be sent ("" while it will). */
  dropReason = "";
  readonly #info = new FrameInfo();

  /** Append `len` bytes from bus address hi:lo; false (and the frame drops) on a DMA fault. */
  append(dma: DmaAccess, lo: number, hi: number, len: number): boolean {
    if (this.dropReason !== "" || len === 0) return true;
    if (this.length + len > TX_FRAME_MAX) {
      this.dropReason = `frame longer than ${TX_FRAME_MAX} bytes`;
      return true;
    }
    if (!dma.read(lo, hi, 0, this.bytes, this.length, len)) {
      this.dropReason = "a transmit buffer faulted in the IOMMU";
      return false;
    }
    this.length += len;
    return true;
  }

  /** Apply the offloads; returns the frame length, or 0 when the frame is dropped. */
  finish(o: TxOffloads): number {
    if (this.dropReason !== "" || this.length < ETH_HLEN) return 0;
    if (o.vlanTci !== undefined) {
      this.bytes.copyWithin(ADDRESSES + VLAN_HLEN, ADDRESSES, this.length);
      this.bytes[ADDRESSES] = o.vlanTpid >>> 8;
      this.bytes[ADDRESSES + 1] = o.vlanTpid & 0xff;
      this.bytes[ADDRESSES + 2] = (o.vlanTci >>> 8) & 0xff;
      this.bytes[ADDRESSES + 3] = o.vlanTci & 0xff;
      this.length += VLAN_HLEN;
    }
    if (o.ipChecksum || o.l4Checksum) {
      const info = parseFrame(this.bytes, this.length, o.vlanTpid, this.#info);
      if (o.ipChecksum && info.ipVersion === 4) fillIpv4HeaderChecksum(this.bytes, info);
      if (o.l4Checksum && info.l4Proto !== 0) fillTransportChecksum(this.bytes, info);
    }
    return this.length;
  }

  /** Start the next frame. */
  reset(): void {
    this.length = 0;
    this.dropReason = "";
  }
}
