/**
 * A sorted list of disjoint inclusive intervals, kept in blocks of at most
 * {@link INTERVAL_BLOCK_MAX} so lookups, inserts and removals stay fast with the 65535 mappings
 * VFIO allows (a flat array's splice would move the whole list each time). Used by the
 * virtio-iommu device for its mapping table and by the driver side for its own tree; it holds
 * no virtio-iommu semantics.
 *
 * @module
 */

/** An inclusive interval. */
export interface Interval {
  /** First address. */
  readonly start: bigint;
  /** Last address (inclusive). */
  readonly end: bigint;
}

/** Largest block before it is split in two. */
export const INTERVAL_BLOCK_MAX = 256;

/** Sorted, disjoint intervals. The caller keeps them disjoint (check {@link overlapping}). */
export class IntervalList<T extends Interval> {
  #blocks: T[][] = [];
  #size = 0;

  /** Number of intervals. */
  get size(): number {
    return this.#size;
  }

  /** Every interval, in order (a copy). */
  values(): T[] {
    return this.#blocks.flat();
  }

  /** The interval containing `point`, or undefined. */
  find(point: bigint): T | undefined {
    const at = this.#locate(point);
    const item = at && this.#blocks[at.block][at.index];
    return item !== undefined && item.start <= point ? item : undefined;
  }

  /** The intervals intersecting `[start, end]`, in order. */
  overlapping(start: bigint, end: bigint): T[] {
    const out: T[] = [];
    const at = this.#locate(start);
    if (at === undefined) return out;
    for (let b = at.block, i = at.index; b < this.#blocks.length; b++, i = 0) {
      const block = this.#blocks[b];
      for (; i < block.length; i++) {
        if (block[i].start > end) return out;
        out.push(block[i]);
      }
    }
    return out;
  }

  /** Insert an interval that overlaps none. */
  insert(item: T): void {
    this.#size++;
    if (this.#blocks.length === 0) {
      this.#blocks.push([item]);
      return;
    }
    const at = this.#locate(item.start) ??
      { block: this.#blocks.length - 1, index: this.#blocks.at(-1)!.length };
    const block = this.#blocks[at.block];
    block.splice(at.index, 0, item);
    if (block.length > INTERVAL_BLOCK_MAX) {
      this.#blocks.splice(at.block + 1, 0, block.splice(block.length >> 1));
    }
  }

  /** Remove an interval (by identity); false when it is not in the list. */
  remove(item: T): boolean {
    const at = this.#locate(item.start);
    if (at === undefined || this.#blocks[at.block][at.index] !== item) return false;
    const block = this.#blocks[at.block];
    block.splice(at.index, 1);
    if (block.length === 0) this.#blocks.splice(at.block, 1);
    this.#size--;
    return true;
  }

  /** Remove every interval. */
  clear(): void {
    this.#blocks = [];
    this.#size = 0;
  }

  /** Position of the first interval ending at or after `point`, or undefined when none does. */
  #locate(point: bigint): { block: number; index: number } | undefined {
    let lo = 0;
    let hi = this.#blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const block = this.#blocks[mid];
      if (block[block.length - 1].end < point) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.#blocks.length) return undefined;
    const block = this.#blocks[lo];
    let i = 0;
    let j = block.length;
    while (i < j) {
      const mid = (i + j) >>> 1;
      if (block[mid].end < point) i = mid + 1;
      else j = mid;
    }
    return { block: lo, index: i };
  }
}
