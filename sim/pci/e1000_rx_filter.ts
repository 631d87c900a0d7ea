/**
 * Receive address filtering of the e1000 family (82574 §7.1.1 "Receive Address Filtering",
 * 82576 §7.1.1.x; the RAL/RAH exact filters, the 4096-bit multicast table, and the promiscuous
 * and broadcast modes of RCTL), the VLAN filter table, and the oversize rule — in the order
 * QEMU's e1000e and igb apply them:
 * - broadcast with RCTL.BAM, multicast with RCTL.MPE, unicast with RCTL.UPE: accepted;
 * - a destination equal to a valid (RAH.AV) receive address: accepted;
 * - otherwise the MTA bit the destination hashes to (RCTL.MO picks which 12 of the last 16
 *   address bits index the table) decides — for unicast as well as multicast.
 *
 * @example
 * ```ts
 * const filter = new RxAddressFilter([{ at: E1000_RA, count: 16 }]);
 * filter.accepts(regs.mac, frame); // true for our MAC once RAH0.AV is set
 * ```
 *
 * @module
 */

import {
  E1000_MTA,
  E1000_RCTL,
  E1000_VFTA,
  RAH_AV,
  RCTL_BAM,
  RCTL_LPE,
  RCTL_MO_SHIFT,
  RCTL_MPE,
  RCTL_SBP,
  RCTL_UPE,
  RCTL_VFE,
} from "./e1000_regs.ts";
import { ETH_FCS_LEN, frameKind } from "./e1000_stats.ts";
import { ETH_HLEN, VLAN_HLEN } from "./frame_parse.ts";

/** Which 12 address bits index the MTA, per RCTL.MO: a right shift of bytes 4–5. */
const MTA_SHIFT = [4, 3, 2, 0] as const;
/** MTA index bits. */
const MTA_INDEX_MASK = 0xfff;
/** VLAN id bits of a tag. */
const VLAN_VID_MASK = 0xfff;
/** Ethernet payload limit without jumbo frames, and header bytes around it (with one tag). */
const ETH_MTU = 1500;
const ETH_HEADER_AND_TAG = ETH_HLEN + VLAN_HLEN;
/** The longest frame a part takes with RCTL.LPE (16 KiB minus the FCS). */
const LPE_MAX = 16 * 1024 - ETH_FCS_LEN;

/** A run of RAL/RAH pairs. */
export interface ReceiveAddressBank {
  /** Offset of the first RAL. */
  readonly at: number;
  /** Pairs in the bank. */
  readonly count: number;
}

/** The exact, multicast-hash and mode filters. */
export class RxAddressFilter {
  readonly #banks: readonly ReceiveAddressBank[];

  /** A filter over these receive-address banks (checked in order). */
  constructor(banks: readonly ReceiveAddressBank[]) {
    this.#banks = banks;
  }

  /** Whether the destination of `frame` passes (RCTL modes, exact addresses, MTA). */
  accepts(mac: Uint32Array, frame: Uint8Array): boolean {
    const rctl = mac[E1000_RCTL >>> 2];
    const kind = frameKind(frame);
    if (kind === "broadcast" && (rctl & RCTL_BAM) !== 0) return true;
    if (kind === "multicast" && (rctl & RCTL_MPE) !== 0) return true;
    if (kind === "unicast" && (rctl & RCTL_UPE) !== 0) return true;
    if (this.#exact(mac, frame, 0)) return true;
    const shift = MTA_SHIFT[(rctl >>> RCTL_MO_SHIFT) & 3];
    const f = (((frame[5] << 8) | frame[4]) >>> shift) & MTA_INDEX_MASK;
    if ((mac[(E1000_MTA >>> 2) + (f >>> 5)] >>> (f & 31)) & 1) return true;
    return this.#exact(mac, frame, 1);
  }

  /** Whether a valid entry of bank `first` (and later ones, when first > 0) matches. */
  #exact(mac: Uint32Array, frame: Uint8Array, first: number): boolean {
    const last = first === 0 ? 1 : this.#banks.length;
    for (let b = first; b < last && b < this.#banks.length; b++) {
      const bank = this.#banks[b];
      for (let n = 0; n < bank.count; n++) {
        const lo = mac[(bank.at >>> 2) + 2 * n];
        const hi = mac[(bank.at >>> 2) + 2 * n + 1];
        if ((hi & RAH_AV) === 0) continue;
        if (
          frame[0] === (lo & 0xff) && frame[1] === ((lo >>> 8) & 0xff) &&
          frame[2] === ((lo >>> 16) & 0xff) && frame[3] === (lo >>> 24) &&
          frame[4] === (hi & 0xff) && frame[5] === ((hi >>> 8) & 0xff)
        ) return true;
      }
    }
    return false;
  }
}

/** With RCTL.VFE, whether the VFTA has the frame's VLAN id (`tci` of its tag). */
export function vlanAccepted(mac: Uint32Array, tci: number): boolean {
  if ((mac[E1000_RCTL >>> 2] & RCTL_VFE) === 0) return true;
  const vid = tci & VLAN_VID_MASK;
  return ((mac[(E1000_VFTA >>> 2) + (vid >>> 5)] >>> (vid & 31)) & 1) === 1;
}

/**
 * The 82574 rule (QEMU `e1000x_is_oversized`): without RCTL.SBP, a frame longer than 1522
 * bytes without LPE, or than 16 KiB − 4 with it, is dropped (and counted in ROC).
 */
export function oversized82574(mac: Uint32Array, size: number): boolean {
  const rctl = mac[E1000_RCTL >>> 2];
  if ((rctl & RCTL_SBP) !== 0) return false;
  return size > LPE_MAX || (size > ETH_HEADER_AND_TAG + ETH_MTU && (rctl & RCTL_LPE) === 0);
}

/**
 * The 82576 rule (QEMU `igb_rx_is_oversized`): without RCTL.SBP, with LPE a frame plus FCS
 * longer than RLPML, without it one longer than its headers plus 1500.
 */
export function oversized82576(
  mac: Uint32Array,
  size: number,
  tagged: boolean,
  rlpml: number,
): boolean {
  const rctl = mac[E1000_RCTL >>> 2];
  if ((rctl & RCTL_SBP) !== 0) return false;
  if ((rctl & RCTL_LPE) !== 0) return size + ETH_FCS_LEN > rlpml;
  return size > ETH_HLEN + (tagged ? VLAN_HLEN : 0) + ETH_MTU;
}
