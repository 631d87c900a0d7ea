/**
 * Receive and transmit descriptor rings of the e1000 family (82574 extended receive / legacy
 * transmit, 82576 advanced receive / advanced transmit: the words the driver touches sit at the
 * same places, see registers.ts). Each ring is one DMA allocation of 16-byte descriptors read and
 * written with plain Uint32Array accesses; ownership passes through the head/tail registers and
 * the DD bit written back by the device (82576 §7.1.4 and §7.2.3, 82574 §7.1.8 and §7.2):
 *
 * - receive: software writes a buffer address into each free descriptor and moves the tail past
 *   it; the device fills buffers from the head and writes status (DD, EOP, errors) and length
 *   back. Head == tail means the device owns nothing, so at most size − 1 descriptors are posted.
 * - transmit: software fills descriptors at the tail and moves it; the device sends from the
 *   head and writes DD back (RS is set on every descriptor). At most size − 1 are in flight.
 *
 * Ordering (the project's rule, shared/reference/deno-ffi.md): one Atomics operation per batch.
 * Receive scans DD with plain loads, then one Atomics.load of the last ready status word orders
 * the reads of lengths and frame data after it; refill and transmit make their last descriptor
 * store an Atomics.store before the tail register is written.
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import type { NetDeviceStats } from "../net_device.ts";
import type { PacketBuffer, PacketPool } from "../packet_pool.ts";
import {
  DESC_SIZE,
  DESC_WORDS,
  RX_WB_LENGTH_WORD,
  RX_WB_STATUS_WORD,
  RXD_FRAME_ERRORS,
  RXD_LENGTH_MASK,
  RXD_STAT_DD,
  RXD_STAT_EOP,
  TX_CMD_WORD,
  TX_STATUS_WORD,
  TXD_CMD_EOP,
  TXD_CMD_IFCS,
  TXD_CMD_RS,
  TXD_LENGTH_MASK,
  TXD_STAT_DD,
} from "./registers.ts";

const TWO_POW_32 = 0x1_0000_0000;

/**
 * What both rings hold: the descriptors in DMA memory (zeroed), the buffer of each slot, the tail
 * register, the pool buffers come from and go back to, and the counters they update.
 */
export abstract class DescriptorRing {
  /** Descriptors in the ring (a power of two). */
  readonly size: number;
  /** The ring's DMA memory. */
  readonly memory: DmaBuffer;
  /** The descriptors as 32-bit words ({@link DESC_WORDS} per descriptor). */
  protected readonly d: Uint32Array;
  /** `size - 1`: a descriptor index wraps with `& mask`. */
  protected readonly mask: number;
  /** The pool buffer behind each descriptor, while the ring holds it. */
  protected readonly bufs: (PacketBuffer | undefined)[];
  /** The device's registers. */
  protected readonly regs: Mmio;
  /** Offset of the ring's tail register in `regs`. */
  protected readonly tailReg: number;
  /** Where buffers come from and go back to. */
  protected readonly pool: PacketPool;
  /** Bytes of frame each pool buffer holds (the same for every buffer of a pool). */
  protected readonly capacity: number;
  /** The counters the ring updates. */
  protected readonly stats: NetDeviceStats;

  /** A ring of `size` descriptors over `memory` (zeroed), its tail register at `tailReg`. */
  constructor(
    memory: DmaBuffer,
    size: number,
    regs: Mmio,
    tailReg: number,
    pool: PacketPool,
    stats: NetDeviceStats,
  ) {
    this.size = size;
    this.memory = memory;
    this.mask = size - 1;
    memory.bytes.fill(0, 0, size * DESC_SIZE);
    this.d = new Uint32Array(memory.bytes.buffer, memory.bytes.byteOffset, size * DESC_WORDS);
    this.bufs = new Array(size).fill(undefined);
    this.regs = regs;
    this.tailReg = tailReg;
    this.pool = pool;
    this.capacity = pool.bufferSize - pool.headroom;
    this.stats = stats;
  }

  /** Return every buffer still in the ring to the pool (the device must be stopped). */
  drain(): void {
    for (let i = 0; i < this.size; i++) {
      const buf = this.bufs[i];
      if (buf !== undefined) this.pool.free(buf);
      this.bufs[i] = undefined;
    }
    this.emptied();
  }

  /** Reset the ring's own counts after {@link drain}. */
  protected abstract emptied(): void;
}

/** One receive ring. */
export class RxRing extends DescriptorRing {
  /** Next descriptor the device completes. */
  #next = 0;
  /** Next descriptor to post (the tail register's value). */
  #tail = 0;
  /** Descriptors the device owns. */
  #posted = 0;
  /** Dropping the rest of a frame that spans descriptors. */
  #discarding = false;

  /** Frames this ring delivered (per-queue count of RSS). */
  packets = 0;

  /** Descriptors currently owned by the device. */
  get posted(): number {
    return this.#posted;
  }

  /** Whether the next descriptor has been written back (an ordered look, for the idle path). */
  ready(): boolean {
    return this.#posted > 0 &&
      (Atomics.load(this.d, this.#next * DESC_WORDS + RX_WB_STATUS_WORD) & RXD_STAT_DD) !== 0;
  }

  /**
   * Post free pool buffers into every empty descriptor (up to size − 1 posted) and move the
   * tail; returns how many were posted.
   */
  refill(): number {
    const d = this.d;
    const bufs = this.bufs;
    const pool = this.pool;
    const iovas = pool.iovas;
    const mask = this.mask;
    const room = mask - this.#posted;
    let tail = this.#tail;
    let n = 0;
    let w = 0;
    while (n < room) {
      const buf = pool.alloc();
      if (buf === undefined) break;
      const iova = iovas[buf.index];
      w = tail * DESC_WORDS;
      d[w] = iova >>> 0;
      d[w + 1] = (iova / TWO_POW_32) >>> 0;
      d[w + 2] = 0;
      d[w + 3] = 0;
      bufs[tail] = buf;
      tail = (tail + 1) & mask;
      n++;
    }
    if (n === 0) return 0;
    Atomics.store(d, w + 3, 0);
    this.#tail = tail;
    this.#posted += n;
    this.regs.write32(this.tailReg, tail);
    return n;
  }

  /**
   * Take up to `max` completed frames into `out[at..)`; returns how many. Frames with errors,
   * without a length, longer than a buffer or spread over several descriptors are dropped (their
   * buffers go back to the pool) and counted in rxDropped.
   */
  receive(out: PacketBuffer[], at: number, max: number): number {
    const d = this.d;
    const mask = this.mask;
    const next = this.#next;
    const posted = this.#posted;
    const limit = max < posted ? max : posted;
    let k = 0;
    while (
      k < limit && (d[((next + k) & mask) * DESC_WORDS + RX_WB_STATUS_WORD] & RXD_STAT_DD) !== 0
    ) {
      k++;
    }
    if (k === 0) return 0;
    // The batch's fence: lengths and frame bytes are read after this load.
    Atomics.load(d, ((next + k - 1) & mask) * DESC_WORDS + RX_WB_STATUS_WORD);
    const bufs = this.bufs;
    const capacity = this.capacity;
    let discarding = this.#discarding;
    let n = 0;
    let bytes = 0;
    let dropped = 0;
    for (let j = 0; j < k; j++) {
      const i = (next + j) & mask;
      const w = i * DESC_WORDS;
      const status = d[w + RX_WB_STATUS_WORD];
      const length = d[w + RX_WB_LENGTH_WORD] & RXD_LENGTH_MASK;
      const buf = bufs[i]!;
      bufs[i] = undefined;
      if (
        (status & (RXD_STAT_EOP | RXD_FRAME_ERRORS)) !== RXD_STAT_EOP || discarding ||
        length === 0 || length > capacity
      ) {
        discarding = this.#drop(buf, status);
        dropped++;
        continue;
      }
      buf.length = length;
      out[at + n++] = buf;
      bytes += length;
    }
    this.#discarding = discarding;
    this.#next = (next + k) & mask;
    this.#posted = posted - k;
    this.packets += n;
    const stats = this.stats;
    stats.rxPackets += n;
    stats.rxBytes += bytes;
    stats.rxDropped += dropped;
    return n;
  }

  /**
   * A frame that is not taken: its buffer goes back to the pool. Returns whether the rest of a
   * frame spread over several descriptors is being dropped after this one.
   */
  #drop(buf: PacketBuffer, status: number): boolean {
    this.pool.free(buf);
    // A descriptor without EOP starts (or continues) a frame this driver does not take whole;
    // its EOP descriptor ends the discard.
    return (status & RXD_STAT_EOP) === 0;
  }

  /** Nothing is posted any more. */
  protected emptied(): void {
    this.#posted = 0;
  }
}

/** One transmit ring. */
export class TxRing extends DescriptorRing {
  readonly #cmd: number;
  readonly #paylenShift: number;
  readonly #paylen: boolean;
  /** Next descriptor to fill (the tail register's value). */
  #tail = 0;
  /** Oldest descriptor not yet reclaimed. */
  #clean = 0;
  /** Descriptors handed to the device and not yet reclaimed. */
  #inFlight = 0;

  /**
   * A ring of `size` descriptors over `memory` (zeroed), its tail register at `tailReg`. `cmd`
   * holds the model's word-2 bits (descriptor type); `paylenShift`, when defined, puts the frame
   * length into word 3 (82576).
   */
  constructor(
    memory: DmaBuffer,
    size: number,
    regs: Mmio,
    tailReg: number,
    pool: PacketPool,
    stats: NetDeviceStats,
    cmd: number,
    paylenShift: number | undefined,
  ) {
    super(memory, size, regs, tailReg, pool, stats);
    this.#cmd = (cmd | TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS) >>> 0;
    this.#paylen = paylenShift !== undefined;
    this.#paylenShift = paylenShift ?? 0;
  }

  /** Descriptors handed to the device and not yet reclaimed. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The oldest descriptor not yet reclaimed (it moves when the device completes work). */
  get clean(): number {
    return this.#clean;
  }

  /** Return the buffers of descriptors the device has written back; returns how many. */
  reclaim(): number {
    const d = this.d;
    const bufs = this.bufs;
    const pool = this.pool;
    const mask = this.mask;
    const inFlight = this.#inFlight;
    let clean = this.#clean;
    let n = 0;
    while (n < inFlight && (d[clean * DESC_WORDS + TX_STATUS_WORD] & TXD_STAT_DD) !== 0) {
      pool.free(bufs[clean]!);
      bufs[clean] = undefined;
      clean = (clean + 1) & mask;
      n++;
    }
    if (n === 0) return 0;
    this.#clean = clean;
    this.#inFlight = inFlight - n;
    this.stats.txPackets += n;
    return n;
  }

  /** Queue up to `count` frames (one descriptor each); returns how many were taken. */
  send(buffers: PacketBuffer[], count: number): number {
    const mask = this.mask;
    const room = mask - this.#inFlight;
    const n = count < room ? count : room;
    if (n <= 0) return 0;
    const d = this.d;
    const bufs = this.bufs;
    const capacity = this.capacity;
    const cmd = this.#cmd;
    const shift = this.#paylen ? this.#paylenShift : -1;
    let tail = this.#tail;
    let bytes = 0;
    let w = 0;
    let last = 0;
    for (let j = 0; j < n; j++) {
      const buf = buffers[j];
      const length = (buf.length < capacity ? buf.length : capacity) & TXD_LENGTH_MASK;
      // The caller's buffer's own IOVA: a buffer from another pool is caught when it is freed.
      const iova = buf.iova;
      w = tail * DESC_WORDS;
      d[w] = iova >>> 0;
      d[w + 1] = (iova / TWO_POW_32) >>> 0;
      d[w + TX_CMD_WORD] = cmd | length;
      last = shift < 0 ? 0 : (length << shift) >>> 0;
      d[w + TX_STATUS_WORD] = last;
      bufs[tail] = buf;
      tail = (tail + 1) & mask;
      bytes += length;
    }
    // The batch's fence: every descriptor store is visible before the tail moves.
    Atomics.store(d, w + TX_STATUS_WORD, last);
    this.#tail = tail;
    this.#inFlight += n;
    this.stats.txBytes += bytes;
    this.regs.write32(this.tailReg, tail);
    return n;
  }

  /** Nothing is in flight any more. */
  protected emptied(): void {
    this.#inFlight = 0;
  }
}
