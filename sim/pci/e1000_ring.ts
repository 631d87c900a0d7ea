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

import type { DmaAccess } from "./dma_access.ts";
import type { E1000RegisterFile } from "./e1000_regfile.ts";

/** Bytes of every descriptor of these parts. */
export const DESC_BYTES = 16;
/** Dwords of a transmit descriptor: buffer address low/high, command+length, status. */
export const TXD_DW = { addrLo: 0, addrHi: 1, cmd: 2, status: 3 } as const;
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

/**
 * Read the head descriptor into `desc` (16 bytes); returns its byte offset from the base, or -1
 * when the IOMMU refused the read.
 */
export function fetchHead(
  mac: Uint32Array,
  r: RingRegisters,
  dma: DmaAccess,
  desc: Uint8Array,
): number {
  const at = mac[r.head] * DESC_BYTES;
  return dma.read(mac[r.bal], mac[r.bah], at, desc) ? at : -1;
}

/** A descriptor's worth of scratch space, reused for every descriptor (no allocation). */
export class DescriptorScratch {
  /** The 16 descriptor bytes. */
  readonly bytes: Uint8Array = new Uint8Array(DESC_BYTES);
  /** The same bytes as little-endian dwords. */
  readonly dw: Uint32Array = new Uint32Array(this.bytes.buffer);
  readonly #word = new Uint8Array(4);
  readonly #wordView = new DataView(this.#word.buffer);

  /** Write the 32-bit `value` (little-endian) at hi:lo + `offset`; false if refused. */
  writeWord(dma: DmaAccess, lo: number, hi: number, offset: number, value: number): boolean {
    this.#wordView.setUint32(0, value >>> 0, true);
    return dma.write(lo, hi, offset, this.#word);
  }
}
