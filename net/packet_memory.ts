/**
 * Word-wide access to the memory packet buffers live in: the Internet checksum (RFC 1071) and
 * copies, four bytes at a time through an Int32Array over the whole buffer, with no allocation.
 * Positions are byte offsets into that buffer (a frame's `data.byteOffset` plus the offset in
 * the frame).
 *
 * The checksum is summed in the host's byte order and byte-swapped once at the end on a
 * little-endian host: RFC 1071 §2(B) shows the ones' complement sum is independent of byte order
 * up to that swap. Word pairs start at even positions, so a range must start at an even position
 * of the datagram it belongs to (true of every header and payload in a frame whose buffer starts
 * at an even position, as pool buffers do); a range starting at an odd position is summed byte by
 * byte with the pairs starting there.
 *
 * @module
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Views over one ArrayBuffer (or SharedArrayBuffer) of packet memory. */
export class PacketMemory {
  /** The buffer the views cover. */
  readonly buffer: ArrayBufferLike;
  /** Bytes. */
  readonly bytes: Uint8Array;
  /** Aligned 32-bit words. */
  readonly words: Int32Array;
  /** Aligned 16-bit words. */
  readonly halves: Uint16Array;
  /** Big-endian field access at any position (header reads and writes). */
  readonly view: DataView;

  /** Views over all of `buffer`. */
  constructor(buffer: ArrayBufferLike) {
    this.buffer = buffer;
    this.bytes = new Uint8Array(buffer);
    this.halves = new Uint16Array(buffer, 0, buffer.byteLength >>> 1);
    this.words = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
    this.view = new DataView(buffer);
  }

  /**
   * The ones' complement sum of `[at, at+length)` as big-endian 16-bit words (an odd last byte
   * padded with zero), folded to 16 bits and not complemented: partial sums can be added and
   * folded again (finishChecksum in checksum.ts folds and complements).
   */
  sum(at: number, length: number): number {
    if ((at & 1) !== 0) return this.#sumBytes(at, at + length);
    const head = (at & 2) !== 0 && length >= 2 ? 2 : 0;
    const words = (length - head) >>> 2;
    const w32 = this.words;
    let lo = head !== 0 ? this.halves[at >>> 1] : 0;
    let hi = 0;
    for (let k = (at + head) >>> 2, stop = k + words; k < stop; k++) {
      const w = w32[k];
      lo += w & 0xffff;
      hi += w >>> 16;
    }
    return this.#finish(lo, hi, at + head + (words << 2), at + length);
  }

  /**
   * Copy `length` bytes from `src` in `from` to `dst` here and return their sum as {@link sum}
   * would: one pass instead of a copy and a sum (ranges must not overlap).
   */
  copySum(dst: number, from: PacketMemory, src: number, length: number): number {
    if (((dst ^ src) & 3) !== 0 || (dst & 1) !== 0 || length < 4) {
      copyBetween(this, dst, from, src, length);
      return this.sum(dst, length);
    }
    const d = this.bytes;
    const s = from.bytes;
    let lo = 0;
    const head = dst & 2;
    if (head !== 0) {
      d[dst] = s[src];
      d[dst + 1] = s[src + 1];
      lo = this.halves[dst >>> 1];
    }
    const words = (length - head) >>> 2;
    const dw = this.words;
    const sw = from.words;
    let hi = 0;
    for (let k = 0, a = (dst + head) >>> 2, b = (src + head) >>> 2; k < words; k++) {
      const w = sw[b + k];
      dw[a + k] = w;
      lo += w & 0xffff;
      hi += w >>> 16;
    }
    for (let j = head + (words << 2); j < length; j++) d[dst + j] = s[src + j];
    return this.#finish(lo, hi, dst + head + (words << 2), dst + length);
  }

  /** Fold two native-order partial sums, add the 0–3 bytes in [at, end), give the BE sum. */
  #finish(lo: number, hi: number, at: number, end: number): number {
    let s = (lo & 0xffff) + (lo >>> 16) + (hi & 0xffff) + (hi >>> 16);
    if (at + 2 <= end) {
      s += this.halves[at >>> 1];
      at += 2;
    }
    s = foldSum(s);
    if (LITTLE_ENDIAN) s = ((s & 0xff) << 8) | (s >>> 8);
    return at < end ? foldSum(s + (this.bytes[at] << 8)) : s;
  }

  #sumBytes(at: number, end: number): number {
    const b = this.bytes;
    let s = 0;
    let i = at;
    for (; i + 1 < end; i += 2) s += (b[i] << 8) | b[i + 1];
    if (i < end) s += b[i] << 8;
    return foldSum(s);
  }
}

/** Fold a sum of 16-bit words (below 2^32) to 16 bits with end-around carry. */
function foldSum(s: number): number {
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16);
}

let recent: PacketMemory | undefined;
let older: PacketMemory | undefined;

/**
 * The views over `buffer`, from a two-entry cache (the pool's memory and one other buffer, e.g.
 * an application's send buffer, stay cached together); views are built only on a miss.
 */
export function memoryOf(buffer: ArrayBufferLike): PacketMemory {
  if (recent !== undefined && recent.buffer === buffer) return recent;
  const hit = older !== undefined && older.buffer === buffer ? older : new PacketMemory(buffer);
  older = recent;
  recent = hit;
  return hit;
}

/**
 * Copy `src[srcOffset, srcOffset+length)` to `dst[dstOffset, ...)` without allocating (ranges
 * must not overlap and must lie inside both arrays; the caller checks).
 */
export function copyBytes(
  dst: Uint8Array,
  dstOffset: number,
  src: Uint8Array,
  srcOffset: number,
  length: number,
): void {
  copyBetween(
    memoryOf(dst.buffer),
    dst.byteOffset + dstOffset,
    memoryOf(src.buffer),
    src.byteOffset + srcOffset,
    length,
  );
}

/**
 * Copy `length` bytes from `src` in `from` to `dst` in `to` (the same memory or another one;
 * ranges must not overlap). When both positions share their alignment modulo 4 the middle is
 * copied a word at a time.
 */
export function copyBetween(
  to: PacketMemory,
  dst: number,
  from: PacketMemory,
  src: number,
  length: number,
): void {
  const d = to.bytes;
  const s = from.bytes;
  let i = 0;
  if (length >= 16 && ((dst ^ src) & 3) === 0) {
    for (; ((dst + i) & 3) !== 0; i++) d[dst + i] = s[src + i];
    const dw = to.words;
    const sw = from.words;
    const words = (length - i) >>> 2;
    for (let k = 0, a = (dst + i) >>> 2, b = (src + i) >>> 2; k < words; k++) dw[a + k] = sw[b + k];
    i += words << 2;
  }
  for (; i < length; i++) d[dst + i] = s[src + i];
}
