/**
 * The device side of a virtio split virtqueue's memory accesses (virtio 1.2 §2.7): the available
 * ring's index and entries, descriptors, the buffers they point at and used-ring elements, all
 * through a {@link DmaPort} (so through the IOMMU). Addresses are Numbers on the per-packet path:
 * a ring is reached by Numbers when it lies below 2^53 (taken once the queue is enabled, when its
 * addresses can no longer change), a buffer when its descriptor's high address word says so;
 * anything above goes through the port's bigint methods. Nothing here allocates per access.
 *
 * What a chain means (which buffers to read or write, the errors a device reports) stays with the
 * device model; this file only moves the bytes.
 *
 * @module
 */

import { DMA_FAULT, type DmaPort } from "./device.ts";

/** Bytes of a split-ring descriptor (§2.7.5): le64 addr, le32 len, le16 flags, le16 next. */
export const DESC_BYTES = 16;
/** Bytes of a used-ring element (§2.7.8): le32 id, le32 len. */
export const USED_ELEM_BYTES = 8;
/** Offset of `idx` in the driver (available) and device (used) areas (§2.7.6, §2.7.8). */
export const RING_IDX = 2;
/** Offset of the first ring entry in both areas. */
export const RING_ENTRIES = 4;
/** A ring address that does not fit a Number exactly: the ring is reached with bigints. */
export const NOT_SAFE = -1;
/** A buffer's address is a Number when its high word is below this (address + length < 2^53). */
const SAFE_HIGH_WORD = 2 ** 21 - 1;

/** The ring state of one queue that its memory accesses need. */
export interface SplitRing {
  /** Queue size (entries). */
  size: number;
  /** Descriptor area. */
  desc: bigint;
  /** Driver (available) area. */
  driver: bigint;
  /** Device (used) area. */
  device: bigint;
  /** The next used-ring index the device writes. */
  usedIdx: number;
  /** `desc`, `driver`, `device` as Numbers ({@link NOT_SAFE} when above 2^53), once taken. */
  descN: number;
  driverN: number;
  deviceN: number;
  /** Whether the Number copies were taken. */
  numeric: boolean;
}

/** `address` as a Number when `address + span` stays below 2^53, else {@link NOT_SAFE}. */
function safeAddress(address: bigint, span: number): number {
  return address >= 0n && address + BigInt(span) <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(address)
    : NOT_SAFE;
}

/** Take the Number copies of a queue's ring addresses (call once it is enabled). */
export function takeRingAddresses(q: SplitRing): void {
  q.descN = safeAddress(q.desc, DESC_BYTES * q.size);
  q.driverN = safeAddress(q.driver, RING_ENTRIES + 2 * q.size + 2);
  q.deviceN = safeAddress(q.device, RING_ENTRIES + USED_ELEM_BYTES * q.size + 2);
  q.numeric = true;
}

/** A device's split-ring accesses over its DMA port. */
export class SplitRingDma {
  readonly #dma: DmaPort;
  /** The descriptor last read by {@link descriptor}. */
  readonly #desc = new Uint8Array(DESC_BYTES);
  readonly #descView = new DataView(this.#desc.buffer);
  /** The used-ring element being written. */
  readonly #used = new Uint8Array(USED_ELEM_BYTES);
  readonly #usedView = new DataView(this.#used.buffer);
  /** A le16 read or written at a bigint IOVA. */
  readonly #small = new Uint8Array(2);

  /** Accesses through `dma`. */
  constructor(dma: DmaPort) {
    this.#dma = dma;
  }

  /** The driver area's `idx`, or {@link DMA_FAULT}. */
  availIdx(q: SplitRing): number {
    return this.#read16(q.driverN, q.driver, RING_IDX);
  }

  /** Entry `index` (modulo the queue size) of the available ring, or {@link DMA_FAULT}. */
  availEntry(q: SplitRing, index: number): number {
    return this.#read16(q.driverN, q.driver, RING_ENTRIES + 2 * (index % q.size));
  }

  /** The driver area's `flags`, or {@link DMA_FAULT}. */
  availFlags(q: SplitRing): number {
    return this.#read16(q.driverN, q.driver, 0);
  }

  /** Read descriptor `i`; false when the read failed. Its fields are then the getters below. */
  descriptor(q: SplitRing, i: number): boolean {
    return q.descN !== NOT_SAFE
      ? this.#dma.readInto(q.descN + DESC_BYTES * i, this.#desc, 0, DESC_BYTES)
      : this.#dma.read(q.desc + BigInt(DESC_BYTES * i), this.#desc);
  }

  /** `len` of the last descriptor read. */
  get len(): number {
    return this.#descView.getUint32(8, true);
  }

  /** `flags` of the last descriptor read. */
  get flags(): number {
    return this.#descView.getUint16(12, true);
  }

  /** `next` of the last descriptor read. */
  get next(): number {
    return this.#descView.getUint16(14, true);
  }

  /**
   * DMA between the buffer of the last descriptor read and `data[offset, offset + length)`: a
   * device write to memory (`toMemory`) or a read from it. False when it failed.
   */
  buffer(toMemory: boolean, data: Uint8Array, offset: number, length: number): boolean {
    const v = this.#descView;
    const lo = v.getUint32(0, true);
    const hi = v.getUint32(4, true);
    const dma = this.#dma;
    if (hi < SAFE_HIGH_WORD) {
      const addr = hi * 2 ** 32 + lo;
      return toMemory
        ? dma.writeFrom(addr, data, offset, length)
        : dma.readInto(addr, data, offset, length);
    }
    const addr = v.getBigUint64(0, true);
    const piece = data.subarray(offset, offset + length);
    return toMemory ? dma.write(addr, piece) : dma.read(addr, piece);
  }

  /**
   * Write used element (`id`, `len`) at `usedIdx`, then advance `usedIdx` and publish it in the
   * device area's `idx`. False when a write failed (`usedIdx` has advanced if the element made it).
   */
  pushUsed(q: SplitRing, id: number, len: number): boolean {
    this.#usedView.setUint32(0, id, true);
    this.#usedView.setUint32(4, len, true);
    const at = RING_ENTRIES + USED_ELEM_BYTES * (q.usedIdx % q.size);
    const dma = this.#dma;
    const ok = q.deviceN !== NOT_SAFE
      ? dma.writeFrom(q.deviceN + at, this.#used, 0, USED_ELEM_BYTES)
      : dma.write(q.device + BigInt(at), this.#used);
    if (!ok) return false;
    q.usedIdx = (q.usedIdx + 1) & 0xffff;
    if (q.deviceN !== NOT_SAFE) return dma.write16(q.deviceN + RING_IDX, q.usedIdx);
    this.#small[0] = q.usedIdx & 0xff;
    this.#small[1] = q.usedIdx >>> 8;
    return dma.write(q.device + BigInt(RING_IDX), this.#small);
  }

  /** A le16 at `offset` in a ring at `base` (`baseN` its Number, or NOT_SAFE). */
  #read16(baseN: number, base: bigint, offset: number): number {
    if (baseN !== NOT_SAFE) return this.#dma.read16(baseN + offset);
    const b = this.#small;
    return this.#dma.read(base + BigInt(offset), b) ? b[0] | (b[1] << 8) : DMA_FAULT;
  }
}
