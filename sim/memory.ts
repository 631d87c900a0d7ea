/**
 * Simulated memory: the machine's physical memory (SharedArrayBuffer-backed chunks at physical
 * addresses) and the simulated process's virtual address space over it.
 *
 * Physical chunks are reference counted: a process mapping holds one reference and every IOMMU
 * pin holds another, so memory a device may still DMA to outlives munmap, as pinned pages do on
 * Linux.
 *
 * @module
 */

/** One contiguous allocation of physical memory. */
export interface PhysicalChunk {
  /** First physical address. */
  readonly base: number;
  /** Length in bytes. */
  readonly length: number;
  /** The bytes, over a SharedArrayBuffer. */
  readonly bytes: Uint8Array;
  /** References (process mappings, pins, page-table ownership). */
  refs: number;
}

import { type ByteViews, byteViews, copyBytes, ViewCache } from "./bytes.ts";

/** Physical address where simulated RAM starts (above the 32-bit MMIO hole, like a real PC). */
export const SIM_RAM_BASE = 0x1_0000_0000;

/** Granule of physical allocation: every chunk starts and ends on a 4 KiB frame. */
const FRAME = 4096;
/** Bytes of freed backing buffers kept for reuse (beyond it, freed buffers go to the GC). */
const POOL_LIMIT_BYTES = 64 * 1024 ** 2;

/** A free physical range `[base, end)`. */
interface FreeRange {
  base: number;
  end: number;
}

/**
 * The machine's physical memory: allocate, look up and access bytes by physical address.
 *
 * Physical ranges are reused: a released chunk's frames go back to a free list (coalesced with
 * their neighbours; the top of the used space shrinks back) and the next allocation takes the
 * lowest range that fits, aligned. The zero-filled backing buffers of released chunks are kept
 * (up to {@link POOL_LIMIT_BYTES}) and cleared for the next chunk of the same size, so a machine
 * that opens and closes sessions in a loop settles at a flat footprint instead of leaving every
 * table and buffer to the garbage collector.
 */
export class PhysicalMemory {
  #chunks: PhysicalChunk[] = [];
  #next = SIM_RAM_BASE;
  #used = 0;
  readonly #limit: number;
  /** The chunk {@link chunkAt} found last (tried first; ignored once released). */
  #last: PhysicalChunk | undefined;
  /** Views over chunks, made once each by {@link viewOf}. */
  readonly #views = new WeakMap<PhysicalChunk, ByteViews>();
  /** Views of the buffers callers copy from and to. */
  readonly #callerViews = new ViewCache();
  /** Free ranges below `#next`, sorted by base, never adjacent. */
  #free: FreeRange[] = [];
  readonly #pool = new Map<number, SharedArrayBuffer[]>();
  #pooledBytes = 0;

  /** Physical memory of at most `limitBytes` (allocation beyond it fails). */
  constructor(limitBytes = 4 * 1024 ** 3) {
    this.#limit = limitBytes;
  }

  /** Bytes currently allocated. */
  get usedBytes(): number {
    return this.#used;
  }

  /** The highest physical address handed out so far, plus one (shrinks as the top is freed). */
  get topAddress(): number {
    return this.#next;
  }

  /**
   * Allocate `length` zeroed bytes aligned to `align` (a power of two ≥ 4096). Returns the chunk,
   * holding one reference, or undefined when memory is exhausted.
   */
  allocate(length: number, align = FRAME): PhysicalChunk | undefined {
    if (length <= 0 || this.#used + length > this.#limit) return undefined;
    const span = Math.ceil(length / FRAME) * FRAME;
    const base = this.#takeRange(span, align);
    const chunk: PhysicalChunk = { base, length, bytes: this.#backing(length), refs: 1 };
    this.#insertChunk(chunk);
    this.#used += length;
    return chunk;
  }

  /** The lowest free range of `span` bytes at an `align` boundary (first fit, else the top). */
  #takeRange(span: number, align: number): number {
    for (let i = 0; i < this.#free.length; i++) {
      const r = this.#free[i];
      const base = Math.ceil(r.base / align) * align;
      if (base + span > r.end) continue;
      const pieces: FreeRange[] = [];
      if (base > r.base) pieces.push({ base: r.base, end: base });
      if (base + span < r.end) pieces.push({ base: base + span, end: r.end });
      this.#free.splice(i, 1, ...pieces);
      return base;
    }
    const base = Math.ceil(this.#next / align) * align;
    if (base > this.#next) this.#addFree(this.#next, base);
    this.#next = base + span;
    return base;
  }

  /** Zeroed backing bytes of `length`: a pooled buffer of that size, or a new one. */
  #backing(length: number): Uint8Array {
    const pooled = this.#pool.get(length)?.pop();
    if (pooled === undefined) return new Uint8Array(new SharedArrayBuffer(length));
    this.#pooledBytes -= length;
    return new Uint8Array(pooled).fill(0);
  }

  /** Keep a released chunk's buffer for reuse while the pool has room. */
  #recycle(bytes: Uint8Array): void {
    const sab = bytes.buffer;
    if (
      !(sab instanceof SharedArrayBuffer) || this.#pooledBytes + sab.byteLength > POOL_LIMIT_BYTES
    ) {
      return;
    }
    const list = this.#pool.get(sab.byteLength) ?? [];
    list.push(sab);
    this.#pool.set(sab.byteLength, list);
    this.#pooledBytes += sab.byteLength;
  }

  /** Index of the first chunk whose base is at least `base` (binary search). */
  #chunkIndex(base: number): number {
    let lo = 0;
    let hi = this.#chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#chunks[mid].base < base) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #insertChunk(chunk: PhysicalChunk): void {
    this.#chunks.splice(this.#chunkIndex(chunk.base), 0, chunk);
  }

  /** Return `[base, end)` to the free list, coalescing, and lower the top when it touches it. */
  #addFree(base: number, end: number): void {
    if (end === this.#next) {
      this.#next = base;
      const last = this.#free.at(-1);
      if (last !== undefined && last.end === this.#next) {
        this.#next = last.base;
        this.#free.pop();
      }
      return;
    }
    let i = 0;
    while (i < this.#free.length && this.#free[i].base < base) i++;
    const before = this.#free[i - 1];
    const after = this.#free[i];
    if (before !== undefined && before.end === base) {
      before.end = end;
      if (after !== undefined && after.base === end) {
        before.end = after.end;
        this.#free.splice(i, 1);
      }
    } else if (after !== undefined && after.base === end) {
      after.base = base;
    } else {
      this.#free.splice(i, 0, { base, end });
    }
  }

  /** Take another reference on a chunk. */
  retain(chunk: PhysicalChunk): void {
    chunk.refs++;
  }

  /**
   * Drop a reference; when none is left the chunk is freed: its frames return to the free list
   * and its buffer to the pool. Its `bytes` must not be used afterwards (the next chunk of the
   * same size may get them), as freed memory must not be touched on a real machine.
   */
  release(chunk: PhysicalChunk): void {
    if (--chunk.refs > 0) return;
    const i = this.#chunkIndex(chunk.base);
    if (this.#chunks[i] !== chunk) return;
    this.#chunks.splice(i, 1);
    this.#used -= chunk.length;
    this.#addFree(chunk.base, chunk.base + Math.ceil(chunk.length / FRAME) * FRAME);
    this.#recycle(chunk.bytes);
  }

  /**
   * The chunk holding a physical address, or undefined (unbacked address). The last chunk found
   * is tried first (accesses cluster), and only while it is still allocated.
   */
  chunkAt(phys: number | bigint): PhysicalChunk | undefined {
    const p = typeof phys === "number" ? phys : Number(phys);
    const last = this.#last;
    if (last !== undefined && last.refs > 0 && p >= last.base && p < last.base + last.length) {
      return last;
    }
    let lo = 0;
    let hi = this.#chunks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.#chunks[mid];
      if (p < c.base) hi = mid - 1;
      else if (p >= c.base + c.length) lo = mid + 1;
      else return this.#last = c;
    }
    return undefined;
  }

  /** Views over a chunk's bytes (a DataView, 32-bit words), created once per chunk. */
  viewOf(chunk: PhysicalChunk): ByteViews {
    let v = this.#views.get(chunk);
    if (v === undefined) {
      v = byteViews(chunk.bytes);
      this.#views.set(chunk, v);
    }
    return v;
  }

  /**
   * Copy `length` bytes at physical `phys` into `dst[dstOffset, dstOffset + length)`; false (and
   * `dst` untouched) unless the whole range lies in one chunk. No allocation for short copies
   * (bytes.ts).
   */
  copyOut(phys: number, dst: Uint8Array, dstOffset: number, length: number): boolean {
    const c = this.chunkAt(phys);
    if (c === undefined || phys + length > c.base + c.length) return false;
    copyBytes(this.viewOf(c), phys - c.base, this.#callerViews.of(dst), dstOffset, length);
    return true;
  }

  /**
   * Copy `src[srcOffset, srcOffset + length)` to physical `phys`; false (nothing written) unless
   * the whole range lies in one chunk. No allocation for short copies (bytes.ts).
   */
  copyIn(phys: number, src: Uint8Array, srcOffset: number, length: number): boolean {
    const c = this.chunkAt(phys);
    if (c === undefined || phys + length > c.base + c.length) return false;
    copyBytes(this.#callerViews.of(src), srcOffset, this.viewOf(c), phys - c.base, length);
    return true;
  }

  /** Copy `dst.length` bytes from physical memory; false (and `dst` untouched) if not all backed. */
  read(phys: number | bigint, dst: Uint8Array): boolean {
    return this.copyOut(Number(phys), dst, 0, dst.length);
  }

  /** Copy `src` into physical memory; false (nothing written) if the range is not all backed. */
  write(phys: number | bigint, src: Uint8Array): boolean {
    return this.copyIn(Number(phys), src, 0, src.length);
  }

  /** Read a little-endian u64 (page-table entries); undefined if unbacked. */
  readU64(phys: number | bigint): bigint | undefined {
    const p = Number(phys);
    const c = this.chunkAt(p);
    if (!c || p + 8 > c.base + c.length) return undefined;
    return this.viewOf(c).data.getBigUint64(p - c.base, true);
  }

  /** Write a little-endian u64; false if unbacked. */
  writeU64(phys: number | bigint, value: bigint): boolean {
    const p = Number(phys);
    const c = this.chunkAt(p);
    if (!c || p + 8 > c.base + c.length) return false;
    this.viewOf(c).data.setBigUint64(p - c.base, value, true);
    return true;
  }
}

/** One anonymous mapping of the simulated process. */
export interface ProcessMapping {
  /** Virtual address of the first byte. */
  readonly address: number;
  /** Length in bytes (page multiple). */
  readonly length: number;
  /** The physical memory behind it. */
  readonly chunk: PhysicalChunk;
}

/** First virtual address handed out by anonymous mmap in the simulated process. */
export const SIM_MMAP_BASE = 0x7f00_0000_0000;

/** The simulated process's address space: anonymous mappings over physical chunks. */
export class ProcessMemory {
  #maps: ProcessMapping[] = [];
  #next = SIM_MMAP_BASE;

  /** A process over `physical`, with pages of `pageSize` bytes. */
  constructor(readonly physical: PhysicalMemory, readonly pageSize = 4096) {}

  /** Current mappings, by address. */
  get mappings(): readonly ProcessMapping[] {
    return this.#maps;
  }

  /**
   * Map `length` bytes (rounded up to pages) of fresh zeroed memory; `align` aligns the virtual
   * and physical address (2 MiB for huge pages). Undefined when physical memory is exhausted.
   */
  mmap(length: number, align = this.pageSize): ProcessMapping | undefined {
    const size = Math.ceil(length / this.pageSize) * this.pageSize;
    const chunk = this.physical.allocate(size, Math.max(align, this.pageSize));
    if (!chunk) return undefined;
    const address = Math.ceil(this.#next / align) * align;
    this.#next = address + size + this.pageSize; // a guard page between mappings
    const mapping = { address, length: size, chunk };
    this.#maps.push(mapping);
    return mapping;
  }

  /** Remove the mapping that starts exactly at `address`; false if there is none. */
  munmap(address: number): boolean {
    const i = this.#maps.findIndex((m) => m.address === address);
    if (i < 0) return false;
    const [m] = this.#maps.splice(i, 1);
    this.physical.release(m.chunk);
    return true;
  }

  /** The mapping containing a virtual address. */
  mappingAt(vaddr: number | bigint): ProcessMapping | undefined {
    const v = Number(vaddr);
    return this.#maps.find((m) => v >= m.address && v < m.address + m.length);
  }

  /**
   * Resolve `[vaddr, vaddr + length)` to physical pieces, as pinning user pages does. Undefined
   * (the caller answers EFAULT) if any byte is unmapped.
   */
  resolve(
    vaddr: number | bigint,
    length: number | bigint,
  ): { phys: number; length: number; chunk: PhysicalChunk }[] | undefined {
    let v = Number(vaddr);
    let left = Number(length);
    const pieces: { phys: number; length: number; chunk: PhysicalChunk }[] = [];
    while (left > 0) {
      const m = this.mappingAt(v);
      if (!m) return undefined;
      const n = Math.min(left, m.address + m.length - v);
      pieces.push({ phys: m.chunk.base + (v - m.address), length: n, chunk: m.chunk });
      v += n;
      left -= n;
    }
    return pieces;
  }

  /** Read process memory (for `copy_from_user`); undefined if any byte is unmapped (EFAULT). */
  copyFromUser(vaddr: number | bigint, length: number): Uint8Array | undefined {
    const pieces = this.resolve(vaddr, length);
    if (!pieces) return undefined;
    const out = new Uint8Array(length);
    let at = 0;
    for (const p of pieces) {
      out.set(p.chunk.bytes.subarray(p.phys - p.chunk.base, p.phys - p.chunk.base + p.length), at);
      at += p.length;
    }
    return out;
  }

  /** Write process memory (for `copy_to_user`); false (nothing written) if any byte is unmapped. */
  copyToUser(vaddr: number | bigint, data: Uint8Array): boolean {
    const pieces = this.resolve(vaddr, data.length);
    if (!pieces) return false;
    let at = 0;
    for (const p of pieces) {
      p.chunk.bytes.set(data.subarray(at, at + p.length), p.phys - p.chunk.base);
      at += p.length;
    }
    return true;
  }
}
