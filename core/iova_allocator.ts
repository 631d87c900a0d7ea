/**
 * A pure IOVA allocator: hands out aligned blocks of I/O virtual address space from the usable
 * ranges a backend reports (type1 IOVA ranges, iommufd IOVA ranges, sPAPR DMA windows — all are
 * just inclusive ranges here), minus reserved holes, lowest address first.
 *
 * It issues no system call: a {@link DmaSpace} asks it for an IOVA, then maps memory there.
 *
 * IOVA 0 is never handed out by {@link IovaAllocator.allocate} unless `allowZero` is set: a
 * device descriptor whose address field is 0 usually means "no buffer", so a real buffer at 0
 * turns a driver bug into silent memory corruption (the kernel's own iommufd allocator skips 0
 * for the same reason). A fixed {@link IovaAllocator.reserve} at 0 is always allowed.
 *
 * @example
 * ```ts
 * const a = new IovaAllocator([{ start: 0n, end: 0xfedfffffn }], { minPageSize: 4096n });
 * const iova = a.allocate(8192n);     // 0x1000 (page 0 is skipped)
 * a.free(iova);
 * ```
 *
 * @module
 */

import { type Iova, iova as brand, type IovaRange } from "./dma_backend.ts";
import { VfioError } from "./errors.ts";

/** The operation name errors of this module carry. */
const OPERATION = "IovaAllocator";
/** Default minimum page size when none is given: 4 KiB. */
const DEFAULT_PAGE_SIZE = 4096n;
/** The largest IOVA (2^64 − 1). */
export const IOVA_MAX: bigint = (1n << 64n) - 1n;

/** Options of an {@link IovaAllocator}. */
export interface IovaAllocatorOptions {
  /** Every IOVA and size is a multiple of this power of two (the IOMMU's minimum page). */
  minPageSize?: bigint;
  /** Holes that are never handed out (e.g. an MSI window), inclusive. */
  reserved?: readonly IovaRange[];
  /** Let {@link IovaAllocator.allocate} return IOVA 0 (off by default, see the module doc). */
  allowZero?: boolean;
}

interface Interval {
  start: bigint;
  end: bigint;
}

/** Hexadecimal with a 0x prefix. */
export function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

/** "[0x0, 0xfedfffff]" for an inclusive range. */
export function formatRange(range: IovaRange): string {
  return `[${hex(range.start)}, ${hex(range.end)}]`;
}

function isPowerOfTwo(value: bigint): boolean {
  return value > 0n && (value & (value - 1n)) === 0n;
}

function alignUp(value: bigint, align: bigint): bigint {
  return (value + align - 1n) & ~(align - 1n);
}

/** Sort, clip to [0, 2^64−1] and merge overlapping or adjacent inclusive ranges. */
export function normalizeRanges(ranges: readonly IovaRange[]): IovaRange[] {
  const sorted = ranges
    .filter((r) => r.start <= r.end && r.end >= 0n && r.start <= IOVA_MAX)
    .map((r) => ({ start: r.start < 0n ? 0n : r.start, end: r.end > IOVA_MAX ? IOVA_MAX : r.end }))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Interval[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.end + 1n) {
      if (r.end > last.end) last.end = r.end;
    } else out.push({ ...r });
  }
  return out;
}

/** `ranges` minus `holes`, both inclusive, the result sorted and merged. */
export function subtractRanges(
  ranges: readonly IovaRange[],
  holes: readonly IovaRange[],
): IovaRange[] {
  let current: Interval[] = normalizeRanges(ranges);
  for (const hole of normalizeRanges(holes)) {
    const next: Interval[] = [];
    for (const r of current) {
      if (hole.end < r.start || hole.start > r.end) {
        next.push(r);
        continue;
      }
      if (hole.start > r.start) next.push({ start: r.start, end: hole.start - 1n });
      if (hole.end < r.end) next.push({ start: hole.end + 1n, end: r.end });
    }
    current = next;
  }
  return current;
}

/**
 * Allocates IOVA blocks lowest-first from a set of inclusive ranges with reserved holes.
 * Allocation is first-fit over a sorted free list, so its cost grows with fragmentation, not
 * with the number of live blocks; freeing merges neighbours back.
 */
export class IovaAllocator {
  readonly #minPageSize: bigint;
  readonly #reserved: readonly IovaRange[];
  readonly #allowZero: boolean;
  #ranges: IovaRange[] = [];
  #free: Interval[] = [];
  readonly #blocks: Map<bigint, bigint> = new Map();
  #allocatedBytes = 0n;

  /**
   * An allocator over `ranges` (inclusive, any order, may overlap). Throws a VfioError when the
   * minimum page size is not a power of two.
   */
  constructor(ranges: readonly IovaRange[], options: IovaAllocatorOptions = {}) {
    const page = options.minPageSize ?? DEFAULT_PAGE_SIZE;
    if (!isPowerOfTwo(page)) {
      throw new VfioError({
        operation: OPERATION,
        message: `minimum page size ${hex(page)} is not a power of two`,
      });
    }
    this.#minPageSize = page;
    this.#reserved = [...(options.reserved ?? [])];
    this.#allowZero = options.allowZero ?? false;
    this.setRanges(ranges);
  }

  /** The minimum page size every IOVA and size is a multiple of. */
  get minPageSize(): bigint {
    return this.#minPageSize;
  }

  /** Bytes currently allocated or reserved by callers. */
  get allocatedBytes(): bigint {
    return this.#allocatedBytes;
  }

  /** Number of live blocks. */
  get blockCount(): number {
    return this.#blocks.size;
  }

  /** The usable ranges: the given ranges minus the reserved holes, trimmed to whole pages. */
  ranges(): IovaRange[] {
    return this.#ranges.map((r) => ({ ...r }));
  }

  /** The free intervals, lowest first (for diagnostics and tests). */
  freeIntervals(): IovaRange[] {
    return this.#free.map((r) => ({ ...r }));
  }

  /**
   * Replace the usable ranges (the kernel's ranges shrink as devices attach). Live blocks stay
   * allocated even if they now lie outside the ranges; the kernel refuses an attach that would
   * strand an existing mapping, so that does not happen in practice.
   */
  setRanges(ranges: readonly IovaRange[]): void {
    const page = this.#minPageSize;
    this.#ranges = subtractRanges(ranges, this.#reserved)
      .map((r) => ({ start: alignUp(r.start, page), end: ((r.end + 1n) & ~(page - 1n)) - 1n }))
      .filter((r) => r.start <= r.end);
    const used: IovaRange[] = [...this.#blocks].map(([start, size]) => ({
      start,
      end: start + size - 1n,
    }));
    this.#free = subtractRanges(this.#ranges, used);
  }

  /** Round a size up to the minimum page size; throws for a size ≤ 0. */
  roundSize(size: bigint | number): bigint {
    const bytes = BigInt(size);
    if (bytes <= 0n) {
      throw new VfioError({ operation: OPERATION, message: `size ${bytes} must be positive` });
    }
    return alignUp(bytes, this.#minPageSize);
  }

  /**
   * Allocate `size` bytes (rounded up to the minimum page size) at the lowest IOVA that is a
   * multiple of `align` (a power of two; raised to the minimum page size) and whose last byte is
   * at most `limit` (a device's DMA mask; default: no limit). Throws a VfioError "IOVA space
   * exhausted" naming the ranges and sizes when nothing fits.
   */
  allocate(size: bigint | number, align: bigint = this.#minPageSize, limit?: bigint): Iova {
    const bytes = this.roundSize(size);
    if (!isPowerOfTwo(align)) {
      throw new VfioError({
        operation: OPERATION,
        message: `alignment ${hex(align)} is not a power of two`,
      });
    }
    const alignment = align > this.#minPageSize ? align : this.#minPageSize;
    const floor = this.#allowZero ? 0n : 1n;
    for (let i = 0; i < this.#free.length; i++) {
      const gap = this.#free[i];
      const start = alignUp(gap.start < floor ? floor : gap.start, alignment);
      const last = start + bytes - 1n;
      if (limit !== undefined && last > limit) break; // gaps are in address order
      if (last <= gap.end && start >= gap.start) {
        this.#take(i, start, bytes);
        return brand(start);
      }
    }
    throw this.#exhausted(bytes, alignment, limit);
  }

  /**
   * Reserve a fixed block `[iova, iova + size)` (a caller-chosen IOVA). It must be page-aligned,
   * inside one usable range and free; otherwise a VfioError says which rule it broke. Release
   * it with {@link free}.
   */
  reserve(iova: bigint, size: bigint | number): Iova {
    const bytes = this.roundSize(size);
    const end = iova + bytes - 1n;
    if (iova < 0n || (iova & (this.#minPageSize - 1n)) !== 0n) {
      throw new VfioError({
        operation: OPERATION,
        message: `IOVA ${hex(iova)} is not aligned to the minimum page size ${
          hex(this.#minPageSize)
        }`,
      });
    }
    if (!this.#ranges.some((r) => iova >= r.start && end <= r.end)) {
      throw new VfioError({
        operation: OPERATION,
        message: `[${hex(iova)}, ${
          hex(end)
        }] is not inside one usable IOVA range (${this.#describeRanges()})`,
      });
    }
    const index = this.#free.findIndex((g) => iova >= g.start && end <= g.end);
    if (index < 0) {
      throw new VfioError({
        operation: OPERATION,
        message: `[${hex(iova)}, ${hex(end)}] overlaps an IOVA block already in use`,
      });
    }
    this.#take(index, iova, bytes);
    return brand(iova);
  }

  /**
   * Record an existing block `[iova, iova + size)` as in use without the alignment and range
   * checks of {@link reserve} (for blocks carried over from an earlier allocator, e.g. after the
   * IOMMU page size grew). Throws only if it overlaps a live block.
   */
  claim(iova: bigint, size: bigint): void {
    const end = iova + size - 1n;
    for (const [start, length] of this.#blocks) {
      if (start <= end && iova <= start + length - 1n) {
        throw new VfioError({
          operation: OPERATION,
          message: `[${hex(iova)}, ${hex(end)}] overlaps an IOVA block already in use`,
        });
      }
    }
    this.#free = subtractRanges(this.#free, [{ start: iova, end }]);
    this.#blocks.set(iova, size);
    this.#allocatedBytes += size;
  }

  /** The size of the live block starting at `iova`, or undefined. */
  sizeOf(iova: bigint): bigint | undefined {
    return this.#blocks.get(iova);
  }

  /** Release a block returned by {@link allocate} or {@link reserve}; throws for an unknown IOVA. */
  free(iova: bigint): void {
    const size = this.#blocks.get(iova);
    if (size === undefined) {
      throw new VfioError({
        operation: OPERATION,
        message: `IOVA ${hex(iova)} is not the start of an allocated block`,
      });
    }
    this.#blocks.delete(iova);
    this.#allocatedBytes -= size;
    this.#release({ start: iova, end: iova + size - 1n });
  }

  #take(index: number, start: bigint, size: bigint): void {
    const gap = this.#free[index];
    const end = start + size - 1n;
    const pieces: Interval[] = [];
    if (start > gap.start) pieces.push({ start: gap.start, end: start - 1n });
    if (end < gap.end) pieces.push({ start: end + 1n, end: gap.end });
    this.#free.splice(index, 1, ...pieces);
    this.#blocks.set(start, size);
    this.#allocatedBytes += size;
  }

  #release(block: Interval): void {
    // Blocks outside the current ranges (after a shrink) do not return to the free list.
    const usable = this.#ranges.filter((r) => r.end >= block.start && r.start <= block.end)
      .map((r) => ({
        start: r.start > block.start ? r.start : block.start,
        end: r.end < block.end ? r.end : block.end,
      }));
    for (const piece of usable) this.#insertFree(piece);
  }

  #insertFree(piece: Interval): void {
    let lo = 0;
    let hi = this.#free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#free[mid].start < piece.start) lo = mid + 1;
      else hi = mid;
    }
    const merged = { ...piece };
    let from = lo;
    let count = 0;
    const before = this.#free[lo - 1];
    if (before !== undefined && before.end + 1n === merged.start) {
      merged.start = before.start;
      from = lo - 1;
      count++;
    }
    const after = this.#free[lo];
    if (after !== undefined && merged.end + 1n === after.start) {
      merged.end = after.end;
      count++;
    }
    this.#free.splice(from, count, merged);
  }

  #describeRanges(): string {
    return this.#ranges.length === 0
      ? "no usable ranges"
      : this.#ranges.map(formatRange).join(", ");
  }

  #exhausted(size: bigint, alignment: bigint, limit: bigint | undefined): VfioError {
    let largest = 0n;
    for (const g of this.#free) {
      const length = g.end - g.start + 1n;
      if (length > largest) largest = length;
    }
    return new VfioError({
      operation: OPERATION,
      message: `IOVA space exhausted: no free block of ${hex(size)} bytes aligned to ${
        hex(alignment)
      }${
        limit === undefined ? "" : ` below the DMA limit ${hex(limit)}`
      } in ${this.#describeRanges()}; ${
        hex(this.#allocatedBytes)
      } bytes in use in ${this.#blocks.size} blocks, largest free block ${hex(largest)} bytes`,
      hint: "free buffers, use smaller or less aligned allocations, or map fewer, larger buffers",
    });
  }
}
