/**
 * A split virtqueue (virtio 1.2 §2.7) in DMA memory: descriptor table, available ring, used ring,
 * laid out in one allocation. Typed-array element accesses only; the available index is
 * published with a sequentially consistent store after the ring entries, so the device never
 * sees an index before the entries it covers (a barrier on weakly ordered CPUs).
 *
 * @module
 */

import type { DmaBuffer } from "../../core/dma_space.ts";
import {
  VIRTQ_AVAIL_ALIGN,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_ALIGN,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_ALIGN,
  VIRTQ_USED_F_NO_NOTIFY,
} from "./registers.ts";

/** Byte sizes of the three parts of a split virtqueue of `size` entries (§2.7). */
export function splitQueueLayout(size: number): {
  desc: number;
  avail: number;
  used: number;
  total: number;
} {
  const desc = 0;
  const avail = align(desc + VIRTQ_DESC_SIZE * size, VIRTQ_AVAIL_ALIGN);
  const used = align(avail + 6 + 2 * size, VIRTQ_USED_ALIGN);
  const total = align(used + 6 + 8 * size, VIRTQ_DESC_ALIGN);
  return { desc, avail, used, total };
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** One split virtqueue. */
export class SplitQueue {
  /** Number of entries (a power of two). */
  readonly size: number;
  /** IOVA of the descriptor table. */
  readonly descIova: bigint;
  /** IOVA of the available ring. */
  readonly availIova: bigint;
  /** IOVA of the used ring. */
  readonly usedIova: bigint;
  /** Length of the last element {@link popUsed} returned. */
  lastLength = 0;
  readonly #desc32: Uint32Array;
  readonly #desc16: Uint16Array;
  readonly #avail: Uint16Array;
  readonly #used16: Uint16Array;
  readonly #used32: Uint32Array;
  readonly #mask: number;
  #availIdx = 0;
  #lastUsed = 0;

  /** Lay a queue of `size` entries over `memory` (at least `splitQueueLayout(size).total` bytes). */
  constructor(memory: DmaBuffer, size: number) {
    const l = splitQueueLayout(size);
    if ((size & (size - 1)) !== 0 || size === 0 || memory.size < l.total) {
      throw new RangeError(
        `virtqueue of ${size} entries needs a power of two and ${l.total} bytes`,
      );
    }
    this.size = size;
    this.#mask = size - 1;
    const b = memory.bytes;
    b.fill(0, 0, l.total);
    this.#desc32 = new Uint32Array(b.buffer, b.byteOffset + l.desc, (VIRTQ_DESC_SIZE / 4) * size);
    this.#desc16 = new Uint16Array(b.buffer, b.byteOffset + l.desc, (VIRTQ_DESC_SIZE / 2) * size);
    this.#avail = new Uint16Array(b.buffer, b.byteOffset + l.avail, 3 + size);
    this.#used16 = new Uint16Array(b.buffer, b.byteOffset + l.used, 2);
    this.#used32 = new Uint32Array(b.buffer, b.byteOffset + l.used + 4, 2 * size);
    this.descIova = memory.iova + BigInt(l.desc);
    this.availIova = memory.iova + BigInt(l.avail);
    this.usedIova = memory.iova + BigInt(l.used);
  }

  /** Ask the device not to interrupt for this queue (polling drivers, NAPI while polling). */
  suppressInterrupts(): void {
    this.#avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
  }

  /**
   * Ask the device to interrupt again (§2.7.10: clear VIRTQ_AVAIL_F_NO_INTERRUPT). The store is
   * sequentially consistent, so a {@link usedPending} after it sees every used entry the device
   * wrote before it read the flag: a driver that re-checks the ring afterwards misses nothing.
   */
  enableInterrupts(): void {
    Atomics.store(this.#avail, 0, 0);
  }

  /** Fill descriptor `i`: buffer at `iova` (a Number), `length` bytes, `flags`, `next`. */
  setDescriptor(i: number, iova: number, length: number, flags: number, next = 0): void {
    const w = i * 4;
    this.#desc32[w] = iova >>> 0;
    this.#desc32[w + 1] = (iova / 0x1_0000_0000) >>> 0;
    this.#desc32[w + 2] = length;
    this.#desc16[i * 8 + 6] = flags;
    this.#desc16[i * 8 + 7] = next;
  }

  /** Offer descriptor chain head `i` (not visible to the device until {@link publish}). */
  offer(i: number): void {
    this.#avail[2 + (this.#availIdx & this.#mask)] = i;
    this.#availIdx = (this.#availIdx + 1) & 0xffff;
  }

  /** Make every offered entry visible to the device. */
  publish(): void {
    Atomics.store(this.#avail, 1, this.#availIdx);
  }

  /** True unless the device asked not to be notified. */
  needsNotify(): boolean {
    return (Atomics.load(this.#used16, 0) & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** Used elements not yet taken. */
  usedPending(): number {
    return (Atomics.load(this.#used16, 1) - this.#lastUsed) & 0xffff;
  }

  /** Take the next used element: returns its descriptor id; its length is in {@link lastLength}. */
  popUsed(): number {
    const slot = (this.#lastUsed & this.#mask) * 2;
    this.#lastUsed = (this.#lastUsed + 1) & 0xffff;
    this.lastLength = this.#used32[slot + 1];
    return this.#used32[slot];
  }

  /**
   * The descriptor id of the `n`-th used element not yet taken (0: the oldest). For batches:
   * read {@link usedPending} once (the batch's ordered load), look at up to that many elements,
   * then {@link takeUsed} them.
   */
  usedId(n: number): number {
    return this.#used32[((this.#lastUsed + n) & this.#mask) * 2];
  }

  /** The length the device wrote into the `n`-th used element not yet taken. */
  usedLength(n: number): number {
    return this.#used32[((this.#lastUsed + n) & this.#mask) * 2 + 1];
  }

  /** Mark the `n` oldest used elements as taken. */
  takeUsed(n: number): void {
    this.#lastUsed = (this.#lastUsed + n) & 0xffff;
  }
}
