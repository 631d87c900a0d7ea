/**
 * The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
 * big-endian words.
 *
 * @module
 */

import { memoryOf } from "./packet_memory.ts";

/**
 * Add the big-endian 16-bit words of `data[offset, offset+length)` (odd byte padded with zero) to
 * `sum`, partially folded (ones' complement arithmetic: the result is congruent to the plain sum).
 * Reads four bytes at a time through views over `data`'s buffer and allocates nothing once those
 * views are cached (see {@link memoryOf}). The range is clipped to `data`.
 */
export function sumWords(data: Uint8Array, offset: number, length: number, sum = 0): number {
  if (offset < 0) offset = 0;
  if (offset + length > data.length) length = data.length - offset;
  if (length <= 0) return sum;
  return sum + memoryOf(data.buffer).sum(data.byteOffset + offset, length);
}

/** Fold a non-negative sum (below 2^53) to 16 bits with end-around carry and complement it. */
export function finishChecksum(sum: number): number {
  if (sum > 0xffffffff) sum = (sum % 0x100000000) + Math.floor(sum / 0x100000000);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The Internet checksum of a byte range. A range that includes its own checksum verifies to 0. */
export function internetChecksum(data: Uint8Array, offset: number, length: number): number {
  return finishChecksum(sumWords(data, offset, length));
}

/**
 * The checksum after one 16-bit word of the data it covers changed from `oldWord` to `newWord`,
 * without summing the data again (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
 */
export function updateChecksum(checksum: number, oldWord: number, newWord: number): number {
  return finishChecksum((~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff));
}
