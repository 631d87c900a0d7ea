/**
 * Descriptor rings of the e1000 family (82574 §7.1.6 / §7.2.6, 82576 §7.1.4 / §7.2.1): a ring of
 * 16-byte descriptors at base BAH:BAL, LEN bytes long; the hardware owns the descriptors from head
 * (H) up to but not including tail (T), advances H as it finishes them, and wraps H to 0 at the
 * end. As QEMU's models, a tail at or beyond the end of the ring means "nothing to do".
 *
 * @example
 * ```ts
 * const ring = ringAt(regs, 0x2800);     // RDBAL/RDBAH/RDLEN/RDH/RDT at +0/+4/+8/+0x10/+0x18
 * if (!ringEmpty(regs.mac, ring)) dma.read(mac[ring.bal], mac[ring.bah], headOffset(mac, ring), d);
 * ```
 *
 * @module
 */

import type { E1000RegisterFile } from "./e1000_regfile.ts";

/** Bytes of every descriptor of these parts. */
export const DESC_BYTES = 16;
/** Offsets of a ring's registers from its base-low register. */
const BAH_OFFSET = 0x04;
const LEN_OFFSET = 0x08;
const HEAD_OFFSET = 0x10;
const TAIL_OFFSET = 0x18;

/** Register indices of one ring. */
export interface RingRegisters {
  /** Base address low. */
  readonly bal: number;
  /** Base address high. */
  readonly bah: number;
  /** Length in bytes. */
  readonly len: number;
  /** Head. */
  readonly head: number;
  /** Tail. */
  readonly tail: number;
}

/** The ring whose base-low register is at byte offset `bal` (the usual +4/+8/+0x10/+0x18). */
export function ringAt(regs: E1000RegisterFile, bal: number): RingRegisters {
  return {
    bal: regs.index(bal),
    bah: regs.index(bal + BAH_OFFSET),
    len: regs.index(bal + LEN_OFFSET),
    head: regs.index(bal + HEAD_OFFSET),
    tail: regs.index(bal + TAIL_OFFSET),
  };
}

/** Descriptors in the ring. */
export function ringEntries(mac: Uint32Array, r: RingRegisters): number {
  return Math.floor(mac[r.len] / DESC_BYTES);
}

/** Nothing for the hardware: head = tail, or a tail outside the ring. */
export function ringEmpty(mac: Uint32Array, r: RingRegisters): boolean {
  return mac[r.head] === mac[r.tail] || mac[r.tail] >= ringEntries(mac, r);
}

/** Descriptors the hardware owns (tail − head, modulo the ring). */
export function ringOwned(mac: Uint32Array, r: RingRegisters): number {
  const h = mac[r.head];
  const t = mac[r.tail];
  return h <= t ? t - h : ringEntries(mac, r) + t - h;
}

/** Byte offset of the head descriptor from the base. */
export function headOffset(mac: Uint32Array, r: RingRegisters): number {
  return mac[r.head] * DESC_BYTES;
}

/** Move head on by `n` descriptors, wrapping to 0 at the end. */
export function ringAdvance(mac: Uint32Array, r: RingRegisters, n: number): void {
  const h = mac[r.head] + n;
  mac[r.head] = h * DESC_BYTES >= mac[r.len] ? 0 : h;
}
