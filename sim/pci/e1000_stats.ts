/**
 * The statistics block of the e1000 family (82574 §10.2.7, 82576 §8.19; 0x4000–0x4100) as QEMU's
 * e1000e and igb implement it: which counters clear when read and which do not (QEMU keeps
 * CRCERRS…MPC, RNBC, the low halves of the octet counters and a few others readable without
 * clearing; the high half of a 64-bit counter clears both halves), and how a good frame is
 * counted — the size buckets, the octet counters (which always include the 4-byte FCS), and the
 * broadcast/multicast counters.
 *
 * @example
 * ```ts
 * const regs = new E1000RegisterFile([...E1000_STAT_REGISTERS]);
 * countRxFrame(regs, frame, 64, 64);
 * regs.readGeneric(reg(E1000_GPRC)); // 1
 * ```
 *
 * @module
 */

import {
  E1000_BPRC,
  E1000_BPTC,
  E1000_CRCERRS,
  E1000_GORCH,
  E1000_GORCL,
  E1000_GOTCH,
  E1000_GOTCL,
  E1000_GPRC,
  E1000_GPTC,
  E1000_IAC,
  E1000_MPRC,
  E1000_MPTC,
  E1000_PRC64,
  E1000_PTC64,
  E1000_ROC,
  E1000_RUC,
  E1000_TORH,
  E1000_TORL,
  E1000_TOTH,
  E1000_TOTL,
  E1000_TPR,
  E1000_TPT,
  E1000_TSCTC,
} from "./e1000_regs.ts";
import { type E1000RegisterFile, reg, type RegisterSpec } from "./e1000_regfile.ts";

/** Bytes of the Ethernet FCS the octet counters always include. */
export const ETH_FCS_LEN = 4;
/** Upper bounds of the size buckets PRC64…PRC1522 / PTC64…PTC1522 (the last is open). */
const SIZE_BUCKET_LIMITS = [64, 127, 255, 511, 1023] as const;

/** Counters readable without clearing, by offset (QEMU's plain readers). */
const PLAIN_COUNTERS = [
  E1000_CRCERRS, // CRCERRS, ALGNERRC, SYMERRS, RXERRC, MPC: 0x4000–0x4010
  0x4004,
  0x4008,
  0x400c,
  0x4010,
  0x4014, // SCC
  0x4018, // ECOL
  0x401c, // MCC
  0x4020, // LATECOL
  0x4028, // COLC
  0x4030, // DC
  0x4034, // TNCRS
  0x4040, // RLEC
  0x4048, // XONRXC
  0x404c, // XONTXC
  0x4050, // XOFFRXC
  0x4054, // XOFFTXC
  0x4058, // FCRUC
  E1000_GORCL,
  E1000_GOTCL,
  0x40a0, // RNBC
  0x40a8, // RFC
  0x40b0, // RJC
  0x40b4, // MGTPRC
  0x40b8, // MGTPDC
  0x40bc, // MGTPTC
  E1000_TORL,
  E1000_TOTL,
] as const;

/** Counters that clear when read. */
const CLEAR_COUNTERS = [
  E1000_PRC64,
  E1000_PRC64 + 4,
  E1000_PRC64 + 8,
  E1000_PRC64 + 12,
  E1000_PRC64 + 16,
  E1000_PRC64 + 20,
  E1000_GPRC,
  E1000_BPRC,
  E1000_MPRC,
  E1000_GPTC,
  E1000_RUC,
  E1000_ROC,
  E1000_TPR,
  E1000_TPT,
  E1000_PTC64,
  E1000_PTC64 + 4,
  E1000_PTC64 + 8,
  E1000_PTC64 + 12,
  E1000_PTC64 + 16,
  E1000_PTC64 + 20,
  E1000_MPTC,
  E1000_BPTC,
  E1000_TSCTC,
  E1000_IAC,
] as const;

/** High halves of 64-bit counters: reading one clears both halves. */
const CLEAR64_HIGH_HALVES = [E1000_GORCH, E1000_GOTCH, E1000_TORH, E1000_TOTH] as const;

/** The statistics registers both models implement, as register-file specs. */
export const E1000_STAT_REGISTERS: readonly RegisterSpec[] = [
  ...PLAIN_COUNTERS.map((at): RegisterSpec => ({ at, read: "plain", write: "none" })),
  ...CLEAR_COUNTERS.map((at): RegisterSpec => ({ at, read: "clear", write: "none" })),
  ...CLEAR64_HIGH_HALVES.map((at): RegisterSpec => ({ at, read: "clear64hi", write: "none" })),
];

/** Broadcast, multicast or unicast destination. */
export type FrameKind = "broadcast" | "multicast" | "unicast";

/** The kind of destination address of `frame` (at least 6 bytes). */
export function frameKind(frame: Uint8Array): FrameKind {
  if ((frame[0] & 1) === 0) return "unicast";
  for (let i = 0; i < 6; i++) if (frame[i] !== 0xff) return "multicast";
  return "broadcast";
}

/** Count `size` into the bucket counter starting at `first`. */
function countSize(regs: E1000RegisterFile, first: number, size: number): void {
  if (size < SIZE_BUCKET_LIMITS[0]) return;
  let bucket: number = SIZE_BUCKET_LIMITS.length;
  for (let b = 0; b < SIZE_BUCKET_LIMITS.length; b++) {
    if (size <= SIZE_BUCKET_LIMITS[b]) {
      bucket = b;
      break;
    }
  }
  regs.inc(reg(first) + bucket);
}

/**
 * Count a frame delivered to the host: `size` bytes without FCS, `bucketSize` what the size
 * buckets see (with the FCS unless RCTL.SECRC strips it).
 */
export function countRxFrame(
  regs: E1000RegisterFile,
  kind: FrameKind,
  size: number,
  bucketSize: number,
): void {
  countSize(regs, E1000_PRC64, bucketSize);
  regs.inc(reg(E1000_TPR));
  regs.inc(reg(E1000_GPRC));
  regs.add64(reg(E1000_TORL), size + ETH_FCS_LEN);
  regs.add64(reg(E1000_GORCL), size + ETH_FCS_LEN);
  if (kind === "broadcast") regs.inc(reg(E1000_BPRC));
  else if (kind === "multicast") regs.inc(reg(E1000_MPRC));
}

/** Count a frame put on the wire: `size` bytes without FCS. */
export function countTxFrame(regs: E1000RegisterFile, kind: FrameKind, size: number): void {
  const total = size + ETH_FCS_LEN;
  countSize(regs, E1000_PTC64, total);
  regs.inc(reg(E1000_TPT));
  regs.add64(reg(E1000_TOTL), total);
  if (kind === "broadcast") regs.inc(reg(E1000_BPTC));
  else if (kind === "multicast") regs.inc(reg(E1000_MPTC));
  regs.inc(reg(E1000_GPTC));
  regs.add64(reg(E1000_GOTCL), total);
}
