/**
 * A preallocated pool of fixed-size packet buffers in DMA memory (ixy's mempool): one DMA
 * allocation carved into equal buffers, each with its IOVA as a Number and a prebuilt byte view,
 * so receiving and sending allocate nothing per packet.
 *
 * @module
 */

import type { DmaBuffer, DmaSpace } from "../core/dma_space.ts";
import { VfioError } from "../core/errors.ts";

/**
 * One packet buffer. Its fields are fixed for the pool's lifetime except `length`. Each buffer
 * starts with `headroom` bytes for a device header (virtio-net's), then the frame in `data`.
 */
export interface PacketBuffer {
  /** Index in the pool. */
  readonly index: number;
  /** The frame area (`bufferSize - headroom` bytes) in DMA memory; the frame starts at 0. */
  readonly data: Uint8Array;
  /** IOVA of `data[0]`, exact as a Number (IOVAs stay below 2^53). */
  readonly iova: number;
  /** The headroom just before `data` (drivers put device headers here). */
  readonly head: Uint8Array;
  /** Bytes of the frame in `data` (from offset 0). */
  length: number;
}

/** Default size of a packet buffer: a full Ethernet frame plus headroom, power of two. */
export const DEFAULT_BUFFER_SIZE = 2048;
/** Default headroom in front of each frame (room for any NIC's descriptor header). */
export const DEFAULT_HEADROOM = 64;

/** What a pool needs from a DMA space: allocate and free mapped memory. */
export type DmaAllocator = Pick<DmaSpace, "allocate" | "free">;

/** A fixed pool of packet buffers with a free stack. */
export class PacketPool {
  /** Size of each buffer in bytes, headroom included. */
  readonly bufferSize: number;
  /** Bytes before each frame. */
  readonly headroom: number;
  /** Number of buffers. */
  readonly capacity: number;
  /**
   * The IOVA of each buffer's frame (`PacketBuffer.iova`) by buffer index. Drivers read it here
   * on their hot paths: V8 keeps a `PacketBuffer.iova` above 2^30 as a boxed heap number, one
   * more cache line per packet.
   */
  readonly iovas: Float64Array;
  readonly #space: DmaAllocator;
  readonly #dma: DmaBuffer;
  readonly #buffers: PacketBuffer[];
  readonly #free: Int32Array;
  readonly #isFree: Uint8Array;
  #top: number;

  /**
   * Allocate `capacity` buffers of `bufferSize` bytes (a power of two, headroom included) in
   * `space`, mapped for device reads and writes.
   */
  constructor(
    space: DmaAllocator,
    capacity: number,
    bufferSize = DEFAULT_BUFFER_SIZE,
    headroom = DEFAULT_HEADROOM,
  ) {
    if (!Number.isInteger(capacity) || capacity <= 0) {
      throw new VfioError({
        operation: "PacketPool",
        message: `capacity ${capacity} must be a positive integer`,
      });
    }
    if (bufferSize < 64 || (bufferSize & (bufferSize - 1)) !== 0) {
      throw new VfioError({
        operation: "PacketPool",
        message: `buffer size ${bufferSize} must be a power of two of at least 64 bytes`,
      });
    }
    if (!Number.isInteger(headroom) || headroom < 0 || headroom >= bufferSize / 2) {
      throw new VfioError({
        operation: "PacketPool",
        message: `headroom ${headroom} must be an integer from 0 to half the buffer size`,
      });
    }
    this.#space = space;
    this.bufferSize = bufferSize;
    this.headroom = headroom;
    this.capacity = capacity;
    this.#dma = space.allocate(capacity * bufferSize, { read: true, write: true });
    const base = Number(this.#dma.iova);
    this.#buffers = Array.from({ length: capacity }, (_, i) => ({
      index: i,
      data: this.#dma.bytes.subarray(i * bufferSize + headroom, (i + 1) * bufferSize),
      iova: base + i * bufferSize + headroom,
      head: this.#dma.bytes.subarray(i * bufferSize, i * bufferSize + headroom),
      length: 0,
    }));
    this.iovas = Float64Array.from(this.#buffers, (b) => b.iova);
    this.#free = new Int32Array(capacity);
    this.#isFree = new Uint8Array(capacity).fill(1);
    for (let i = 0; i < capacity; i++) this.#free[i] = capacity - 1 - i;
    this.#top = capacity;
  }

  /** Buffers currently free. */
  get available(): number {
    return this.#top;
  }

  /** The buffer with a given index (drivers map ring slots back to buffers with it). */
  buffer(index: number): PacketBuffer {
    return this.#buffers[index];
  }

  /** Take a free buffer (length reset to 0), or undefined when the pool is empty. */
  alloc(): PacketBuffer | undefined {
    if (this.#top === 0) return undefined;
    const b = this.#buffers[this.#free[--this.#top]];
    this.#isFree[b.index] = 0;
    b.length = 0;
    return b;
  }

  /** Take up to `n` buffers into `out[0..k)`; returns k. */
  allocBatch(out: PacketBuffer[], n: number): number {
    let k = 0;
    while (k < n && this.#top > 0) out[k++] = this.alloc()!;
    return k;
  }

  /** Return a buffer. Returning one twice is a driver bug and throws. */
  free(buffer: PacketBuffer): void {
    const i = buffer.index;
    if (this.#buffers[i] !== buffer || this.#isFree[i] !== 0) throw notOurs(i);
    this.#isFree[i] = 1;
    this.#free[this.#top++] = i;
  }

  /** Unmap and release the pool's DMA memory. */
  close(): void {
    this.#space.free(this.#dma);
  }
}

/** The error of a second free or a foreign buffer (apart, so free stays small enough to inline). */
function notOurs(index: number): VfioError {
  return new VfioError({
    operation: "PacketPool.free",
    message: `buffer ${index} is already free or not from this pool`,
  });
}
