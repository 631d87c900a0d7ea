/**
 * The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
 * big-endian words.
 *
 * @module
 */

/** Add the 16-bit words of `data[offset, offset+length)` to `sum` (odd byte padded with zero). */
export function sumWords(data: Uint8Array, offset: number, length: number, sum = 0): number {
  let i = offset;
  const end = offset + length;
  for (; i + 1 < end; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (i < end) sum += data[i] << 8;
  return sum;
}

/** Fold a 32-bit-or-wider sum to 16 bits and complement it. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The Internet checksum of a byte range. A range that includes its own checksum verifies to 0. */
export function internetChecksum(data: Uint8Array, offset: number, length: number): number {
  return finishChecksum(sumWords(data, offset, length));
}
