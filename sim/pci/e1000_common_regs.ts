/**
 * The registers both simulated Intel parts (82574L, 82576) have at the same offsets with the same
 * behaviour, as register-file specs; each part passes the power-on values and the few behaviours
 * in which QEMU's two models differ. The part's own registers are in e1000e_regs.ts / igb_regs.ts.
 *
 * @module
 */

import {
  E1000_CTRL,
  E1000_CTRL_DUP,
  E1000_CTRL_EXT,
  E1000_EECD,
  E1000_EEMNGCTL,
  E1000_EERD,
  E1000_FCAH,
  E1000_FCAL,
  E1000_FCT,
  E1000_FCTTV,
  E1000_FLA,
  E1000_FWSM,
  E1000_GCR,
  E1000_IAM,
  E1000_ICR,
  E1000_ICS,
  E1000_IMC,
  E1000_IMS,
  E1000_LEDCTL,
  E1000_MDIC,
  E1000_MRQC,
  E1000_MTA,
  E1000_MTA_WORDS,
  E1000_PBACLR,
  E1000_RA,
  E1000_RCTL,
  E1000_RETA,
  E1000_RETA_WORDS,
  E1000_RFCTL,
  E1000_RSSRK,
  E1000_RSSRK_WORDS,
  E1000_RXCSUM,
  E1000_STATUS,
  E1000_SW_FW_SYNC,
  E1000_SWSM,
  E1000_TCTL,
  E1000_TIPG,
  E1000_VET,
  E1000_VFTA,
  E1000_VFTA_WORDS,
  RXCSUM_IPOFLD,
  RXCSUM_TUOFLD,
} from "./e1000_regs.ts";
import type { RegisterSpec } from "./e1000_regfile.ts";
import { E1000_STAT_REGISTERS } from "./e1000_stats.ts";

/** 16-bit registers. */
const U16 = 0xffff;
/** RAL/RAH pairs at 0x5400 both parts have (16 pairs, 32 dwords). */
const RA_WORDS = 32;
/** EEMNGCTL power-on value (configuration done). */
const EEMNGCTL_INIT = 1 << 31;

/** What differs between the two parts in the common registers. */
export interface CommonRegisterValues {
  /** Power-on values. */
  readonly ctrl: number;
  /** STATUS power-on value (before the bits a read adds). */
  readonly status: number;
  /** EECD power-on value. */
  readonly eecd: number;
  /** EERD power-on value. */
  readonly eerd: number;
  /** VET power-on value and the bits a write keeps. */
  readonly vet: number;
  /** Bits of VET a write keeps. */
  readonly vetMask: number;
  /** LEDCTL power-on value. */
  readonly ledctl: number;
  /** GCR power-on value. */
  readonly gcr: number;
  /** SWSM power-on value. */
  readonly swsm: number;
  /** TCTL power-on value. */
  readonly tctl: number;
  /** TIPG power-on value. */
  readonly tipg: number;
  /** FLA keeps its value across CTRL.RST (e1000e). */
  readonly flaKeepsOnSoftReset: boolean;
  /** IMC reads back IMS (igb) or 0 (e1000e). */
  readonly imcReadsIms: boolean;
  /** A TCTL write starts transmission (e1000e) or just stores (igb). */
  readonly tctlStartsTx: boolean;
}

/** The common registers with a part's values. */
export function commonRegisters(v: CommonRegisterValues): RegisterSpec[] {
  return [
    { at: E1000_CTRL, read: "plain", write: "special", init: v.ctrl },
    { at: E1000_CTRL_DUP, read: "none", write: "special" },
    { at: E1000_STATUS, read: "special", write: "special", init: v.status },
    { at: E1000_EECD, read: "plain", write: "special", init: v.eecd },
    { at: E1000_EERD, read: "plain", write: "special", init: v.eerd },
    { at: E1000_CTRL_EXT, read: "plain", write: "special" },
    { at: E1000_FLA, read: "plain", write: "plain", keepOnSoftReset: v.flaKeepsOnSoftReset },
    { at: E1000_MDIC, read: "plain", write: "special" },
    { at: E1000_FCAL, read: "plain", write: "plain" },
    { at: E1000_FCAH, read: "plain", write: "plain", mask: U16 },
    { at: E1000_FCT, read: "plain", write: "plain", mask: U16 },
    { at: E1000_VET, read: "plain", write: "plain", mask: v.vetMask, init: v.vet },
    { at: E1000_FCTTV, read: "plain", write: "plain", mask: U16 },
    { at: E1000_LEDCTL, read: "plain", write: "plain", init: v.ledctl },
    { at: E1000_EEMNGCTL, read: "plain", write: "plain", init: EEMNGCTL_INIT },
    { at: E1000_GCR, read: "plain", write: "special", init: v.gcr },
    { at: E1000_SWSM, read: "special", write: "plain", init: v.swsm },
    { at: E1000_FWSM, read: "plain", write: "plain" },
    { at: E1000_SW_FW_SYNC, read: "plain", write: "plain" },
    { at: E1000_PBACLR, read: "plain", write: "special" },
    // Interrupts.
    { at: E1000_ICR, read: "special", write: "special" },
    { at: E1000_ICS, read: "plain", write: "special" },
    { at: E1000_IMS, read: "plain", write: "special" },
    { at: E1000_IMC, read: v.imcReadsIms ? "special" : "none", write: "special" },
    { at: E1000_IAM, read: "plain", write: "plain" },
    // Receive.
    { at: E1000_RCTL, read: "plain", write: "special" },
    { at: E1000_RXCSUM, read: "plain", write: "plain", init: RXCSUM_IPOFLD | RXCSUM_TUOFLD },
    { at: E1000_RFCTL, read: "plain", write: "plain" },
    { at: E1000_MTA, count: E1000_MTA_WORDS, read: "plain", write: "plain" },
    { at: E1000_RA, count: RA_WORDS, read: "plain", write: "plain" },
    { at: E1000_VFTA, count: E1000_VFTA_WORDS, read: "plain", write: "plain" },
    { at: E1000_MRQC, read: "plain", write: "plain" },
    { at: E1000_RETA, count: E1000_RETA_WORDS, read: "plain", write: "plain" },
    { at: E1000_RSSRK, count: E1000_RSSRK_WORDS, read: "plain", write: "plain" },
    // Transmit.
    { at: E1000_TCTL, read: "plain", write: v.tctlStartsTx ? "special" : "plain", init: v.tctl },
    { at: E1000_TIPG, read: "plain", write: "plain", init: v.tipg },
    // Statistics.
    ...E1000_STAT_REGISTERS,
  ];
}
