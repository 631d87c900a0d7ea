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

/** Whole-buffer views remembered (a model's FIFO, frame and scratch buffers). */
const WHOLE_VIEWS = 4;

/**
 * DMA reads and writes at (low, high) addresses plus a byte offset. A model's buffers are often
 * views of a larger one (FIFO slots); they reach the port as a range of one view over the whole
 * underlying buffer, so the port's view cache sees the same few arrays every time.
 */
export class DmaAccess {
  readonly #port: () => DmaPort | undefined;
  readonly #buffers: (ArrayBufferLike | undefined)[] = new Array(WHOLE_VIEWS).fill(undefined);
  readonly #wholes: (Uint8Array | undefined)[] = new Array(WHOLE_VIEWS).fill(undefined);
  #nextWhole = 0;

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
      const at = high * TWO_32 + lowOf(lo, offset);
      checkRange(dst, start, length);
      return port.readInto(at, this.#whole(dst), dst.byteOffset + start, length);
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
      const at = high * TWO_32 + lowOf(lo, offset);
      checkRange(src, start, length);
      return port.writeFrom(at, this.#whole(src), src.byteOffset + start, length);
    }
    return port.write(exactAddress(high, lo, offset), src.subarray(start, start + length));
  }

  /** A view over all of `bytes`' underlying buffer, made once per buffer (a few remembered). */
  #whole(bytes: Uint8Array): Uint8Array {
    const buffer = bytes.buffer;
    for (let k = 0; k < WHOLE_VIEWS; k++) {
      if (this.#buffers[k] === buffer) return this.#wholes[k]!;
    }
    const whole = new Uint8Array(buffer);
    const k = this.#nextWhole;
    this.#buffers[k] = buffer;
    this.#wholes[k] = whole;
    this.#nextWhole = (k + 1) % WHOLE_VIEWS;
    return whole;
  }
}

/** `[start, start + length)` lies inside `bytes` (the whole-buffer view would not catch it). */
function checkRange(bytes: Uint8Array, start: number, length: number): void {
  if (!(start >= 0 && length >= 0 && start + length <= bytes.length)) {
    throw new RangeError(
      `DMA range [${start}, ${start + length}) outside a ${bytes.length}-byte buffer`,
    );
  }
}

/** The high half of hi:lo + offset (offset ≥ 0, below 2^32). */
function highOf(lo: number, hi: number, offset: number): number {
  return ((hi >>> 0) + ((lo >>> 0) + offset >= TWO_32 ? 1 : 0)) >>> 0;
}

/** The low half of lo + offset. */
function lowOf(lo: number, offset: number): number {
  const low = (lo >>> 0) + offset;
  return low >= TWO_32 ? low - TWO_32 : low;
}

/** The exact address high:low(lo + offset) as a bigint (addresses from 2^53 up). */
function exactAddress(high: number, lo: number, offset: number): bigint {
  return (BigInt(high) << 32n) | BigInt(lowOf(lo, offset));
}
