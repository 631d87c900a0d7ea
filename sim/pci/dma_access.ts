/**
 * The device models' one door to {@link DmaPort}: bus addresses as two 32-bit halves (what
 * descriptor rings and base-address registers hold), turned into the port's address once per
 * transfer, so the per-packet paths of the NIC models carry no BigInt and the day the port takes
 * Numbers only this file changes. A failed transfer answers false; the port has already recorded
 * the IOMMU fault.
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
    return port !== undefined && port.read(address(lo, hi, offset), range(dst, start, length));
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
    return port !== undefined && port.write(address(lo, hi, offset), range(src, start, length));
  }
}

/**
 * `bytes[start..start+length)`: the whole array as is, else a view (the one allocation left on
 * this path, until DmaPort takes a range).
 */
function range(bytes: Uint8Array, start: number, length: number): Uint8Array {
  return start === 0 && length === bytes.length ? bytes : bytes.subarray(start, start + length);
}

/** The port's address of hi:lo + offset (offset ≥ 0, below 2^32). */
function address(lo: number, hi: number, offset: number): bigint {
  const low = (lo >>> 0) + offset;
  const high = ((hi >>> 0) + Math.floor(low / TWO_32)) >>> 0;
  const l = low % TWO_32;
  if (high < EXACT_HI_LIMIT) return BigInt(high * TWO_32 + l);
  return (BigInt(high) << 32n) | BigInt(l);
}
