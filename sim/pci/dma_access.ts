/**
 * The device models' one door to {@link DmaPort}: bus addresses as two 32-bit halves (what
 * descriptor rings and base-address registers hold), combined into a Number for the port's
 * number-address methods (`readInto`/`writeFrom`: a range of the model's buffer, nothing
 * allocated), so the per-packet paths of the NIC models carry no BigInt and make no view; an
 * address from 2^53 up takes the port's exact BigInt methods. A failed transfer answers false;
 * the port has already recorded the IOMMU fault.
 *
 * @example
 * ```ts
 * const dma = new DmaAccess(() => host.dma);
 * const desc = new Uint8Array(16);
 * if (!dma.read(baseLo, baseHi, 16 * head, desc)) countFault();
 * ```
 *
 * @module
 */

import type { DmaPort } from "./device.ts";

/** 2^32, to combine address halves. */
const TWO_32 = 0x1_0000_0000;
/** Addresses from 2^53 up do not fit a Number exactly; they take the exact BigInt route. */
const EXACT_HI_LIMIT = 0x20_0000;

/** DMA reads and writes at (low, high) addresses plus a byte offset. */
export class DmaAccess {
  readonly #port: () => DmaPort | undefined;

  /** Access through the port `port()` returns (undefined before the device is connected). */
  constructor(port: () => DmaPort | undefined) {
    this.#port = port;
  }

  /**
   * Read into `dst[start..start+length)` (default: all of `dst`) from address hi:lo + `offset`;
   * false when refused or faulted.
   */
  read(
    lo: number,
    hi: number,
    offset: number,
    dst: Uint8Array,
    start = 0,
    length: number = dst.length - start,
  ): boolean {
    const port = this.#port();
    if (port === undefined) return false;
    const high = highOf(lo, hi, offset);
    if (high < EXACT_HI_LIMIT) {
      return port.readInto(high * TWO_32 + lowOf(lo, offset), dst, start, length);
    }
    return port.read(exactAddress(high, lo, offset), dst.subarray(start, start + length));
  }

  /**
   * Write `src[start..start+length)` (default: all of `src`) at address hi:lo + `offset`; false
   * when refused or faulted.
   */
  write(
    lo: number,
    hi: number,
    offset: number,
    src: Uint8Array,
    start = 0,
    length: number = src.length - start,
  ): boolean {
    const port = this.#port();
    if (port === undefined) return false;
    const high = highOf(lo, hi, offset);
    if (high < EXACT_HI_LIMIT) {
      return port.writeFrom(high * TWO_32 + lowOf(lo, offset), src, start, length);
    }
    return port.write(exactAddress(high, lo, offset), src.subarray(start, start + length));
  }
}

/** The high half of hi:lo + offset (offset ≥ 0, below 2^32). */
function highOf(lo: number, hi: number, offset: number): number {
  return ((hi >>> 0) + Math.floor(((lo >>> 0) + offset) / TWO_32)) >>> 0;
}

/** The low half of lo + offset. */
function lowOf(lo: number, offset: number): number {
  return ((lo >>> 0) + offset) % TWO_32;
}

/** The exact address high:low(lo + offset) as a bigint (addresses from 2^53 up). */
function exactAddress(high: number, lo: number, offset: number): bigint {
  return (BigInt(high) << 32n) | BigInt(lowOf(lo, offset));
}
