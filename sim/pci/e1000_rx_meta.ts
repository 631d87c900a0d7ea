/**
 * Receive-descriptor details both simulated parts share (82574 §7.1.4–7.1.5, 82576 §7.1.5): the
 * buffer size RCTL.BSIZE/BSEX selects, VLAN tag stripping (CTRL.VME), and the checksum status
 * bits — with RXCSUM.IPOFLD the IPv4 header checksum is checked (IPCS, IPE on error), with
 * RXCSUM.TUOFLD the TCP/UDP checksum (TCPCS, plus UDPCS for UDP, TCPE on error), as QEMU checks
 * them in software.
 *
 * @module
 */

import {
  RCTL_BSEX,
  RCTL_BSIZE_SHIFT,
  RXCSUM_IPOFLD,
  RXCSUM_TUOFLD,
  RXD_ERR_IPE,
  RXD_ERR_TCPE,
  RXD_STAT_IPCS,
  RXD_STAT_TCPCS,
  RXD_STAT_UDPCS,
} from "./e1000_regs.ts";
import { E1000_RXCSUM } from "./e1000_regs.ts";
import {
  type FrameInfo,
  IPPROTO_UDP,
  ipv4HeaderChecksumOk,
  transportChecksumOk,
  VLAN_HLEN,
} from "./frame_parse.ts";

/** TCP frame with ACK set (status bit 15). */
export const RXD_STAT_ACK = 1 << 15;
/** Buffer sizes of RCTL.BSIZE 00/01/10/11 without and with BSEX. */
const BSIZE = [2048, 1024, 512, 256] as const;
const BSIZE_BSEX = [2048, 16384, 8192, 4096] as const;
/** Offset of the VLAN tag (after the two addresses). */
const TAG_AT = 12;

/** Receive buffer bytes RCTL selects. */
export function rctlBufferSize(rctl: number): number {
  const field = (rctl >>> RCTL_BSIZE_SHIFT) & 3;
  return (rctl & RCTL_BSEX) !== 0 ? BSIZE_BSEX[field] : BSIZE[field];
}

/** Remove the 4-byte 802.1Q tag in place; returns the new length. */
export function stripVlan(frame: Uint8Array, length: number): number {
  frame.copyWithin(TAG_AT, TAG_AT + VLAN_HLEN, length);
  return length - VLAN_HLEN;
}

/** Checksum status and error bits for a parsed frame under RXCSUM. */
export function rxChecksumStatus(mac: Uint32Array, frame: Uint8Array, info: FrameInfo): number {
  const rxcsum = mac[E1000_RXCSUM >>> 2];
  let status = 0;
  if ((rxcsum & RXCSUM_IPOFLD) !== 0 && info.ipVersion === 4) {
    status |= RXD_STAT_IPCS | (ipv4HeaderChecksumOk(frame, info) ? 0 : RXD_ERR_IPE);
  }
  if ((rxcsum & RXCSUM_TUOFLD) !== 0 && info.l4Proto !== 0) {
    status |= RXD_STAT_TCPCS | (transportChecksumOk(frame, info) ? 0 : RXD_ERR_TCPE);
    if (info.l4Proto === IPPROTO_UDP) status |= RXD_STAT_UDPCS;
  }
  return status >>> 0;
}
