/**
 * Copying bytes between typed arrays without a temporary view per copy, for the simulator's
 * per-packet paths (DMA, the wire, device buffers). Each long-lived buffer gets its views once
 * ({@link byteViews}); a copy between two of them moves aligned 32-bit words through Uint32Arrays
 * when both ends are equally misaligned (after the bytes up to a word boundary), else 32-bit
 * DataView loads and stores, then the odd bytes.
 * Measured in V8 (2-core host, SharedArrayBuffer on one side, 128 bytes): ≈ 30 ns by words,
 * ≈ 60 ns through DataViews, well over 100 ns for `set` of a `subarray` (a view per copy).
 * Buffers are assumed shorter than 4 GiB (the simulator's memory limit).
 *
 * @module
 */

/** Views over one byte array, made once and kept with it. */
export interface ByteViews {
  /** The bytes. */
  readonly bytes: Uint8Array;
  /** A DataView over exactly those bytes. */
  readonly data: DataView;
  /** The same bytes as 32-bit words when they start word-aligned in their buffer. */
  readonly words: Uint32Array | undefined;
}

/** The views of `bytes` (make once per buffer and keep). */
export function byteViews(bytes: Uint8Array): ByteViews {
  const aligned = bytes.byteOffset % 4 === 0;
  return {
    bytes,
    data: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    words: aligned
      ? new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4))
      : undefined,
  };
}

/**
 * Copy `length` bytes from `src.bytes[srcOffset…]` to `dst.bytes[dstOffset…]` (different buffers,
 * or non-overlapping ranges). The caller has checked the bounds.
 */
export function copyBytes(
  src: ByteViews,
  srcOffset: number,
  dst: ByteViews,
  dstOffset: number,
  length: number,
): void {
  let i = 0;
  const sw = src.words;
  const dw = dst.words;
  const s = src.bytes;
  const d = dst.bytes;
  if (sw !== undefined && dw !== undefined && ((srcOffset ^ dstOffset) & 3) === 0) {
    // Equally misaligned: bytes up to a word boundary, then words.
    for (; ((srcOffset + i) & 3) !== 0 && i < length; i++) d[dstOffset + i] = s[srcOffset + i];
    const a = (srcOffset + i) >>> 2;
    const b = (dstOffset + i) >>> 2;
    const n = (length - i) >>> 2;
    for (let w = 0; w < n; w++) dw[b + w] = sw[a + w];
    i += n << 2;
  } else {
    const sv = src.data;
    const dv = dst.data;
    for (; i + 4 <= length; i += 4) dv.setUint32(dstOffset + i, sv.getUint32(srcOffset + i));
  }
  for (; i < length; i++) d[dstOffset + i] = s[srcOffset + i];
}

/** Buffers a {@link ViewCache} remembers. */
const VIEW_CACHE_ENTRIES = 8;

/**
 * The views of the last few byte arrays seen at one call site, for buffers a caller hands in (a
 * device's scratch and frame buffers, a wire's slots): the same few come back every time.
 */
export class ViewCache {
  readonly #keys: (Uint8Array | undefined)[] = new Array(VIEW_CACHE_ENTRIES).fill(undefined);
  readonly #views: (ByteViews | undefined)[] = new Array(VIEW_CACHE_ENTRIES).fill(undefined);
  #next = 0;

  /** The views of `bytes`, made when it is not one of the last few. */
  of(bytes: Uint8Array): ByteViews {
    const keys = this.#keys;
    for (let i = 0; i < VIEW_CACHE_ENTRIES; i++) {
      if (keys[i] === bytes) return this.#views[i]!;
    }
    const v = byteViews(bytes);
    const i = this.#next;
    keys[i] = bytes;
    this.#views[i] = v;
    this.#next = (i + 1) % VIEW_CACHE_ENTRIES;
    return v;
  }
}

/** Bytes of one arena block. */
const ARENA_BLOCK_BYTES = 64 * 1024;

/**
 * Copies that must outlive the buffer they came from (a datagram handed to a handler that may
 * keep it, a frame a tap keeps), packed into large blocks that are never rewritten: each copy is
 * a range of a block, and a block lives as long as any view of it. Making a buffer costs
 * microseconds in Deno (a view of an existing one well under one), so this turns a buffer per
 * copy into a buffer per block.
 */
export class ByteArena {
  #block: ByteViews = byteViews(new Uint8Array(ARENA_BLOCK_BYTES));
  #used = 0;

  /** The block the last {@link put} copied into. */
  get block(): Uint8Array {
    return this.#block.bytes;
  }

  /** Copy `length` bytes of `src` from `offset`; returns where the copy starts in {@link block}. */
  put(src: ByteViews, offset: number, length: number): number {
    const size = (length + 3 + 7) & ~7; // room to match the source's alignment
    if (this.#used + size > this.#block.bytes.length) {
      this.#block = byteViews(new Uint8Array(Math.max(ARENA_BLOCK_BYTES, size)));
      this.#used = 0;
    }
    const at = this.#used + (offset & 3); // same offset within a word: copied by words
    copyBytes(src, offset, this.#block, at, length);
    this.#used += size;
    return at;
  }

  /** A copy of `length` bytes of `src` from `offset`, as a view of the arena. */
  copy(src: ByteViews, offset: number, length: number): Uint8Array {
    const at = this.put(src, offset, length);
    return this.#block.bytes.subarray(at, at + length);
  }
}
