/**
 * The on-chip receive packet buffer of an e1000-family controller (82574 §3.x PBA.RXA: 20 KB by
 * default; 82576 RXPBS: 64 KB): frames from the wire wait here while the host has no receive
 * descriptor for them, the link is down or the receiver is off — as QEMU's models, which leave
 * such frames queued in QEMU's network layer and take them when the driver posts buffers. The
 * buffer holds as many bytes as the register says; a frame that does not fit is dropped, which
 * the model counts in MPC (Missed Packets Count).
 *
 * Storage is preallocated: a fixed number of slots, each big enough for the longest frame the
 * machine's Ethernet segment carries plus room for the FCS the device appends.
 *
 * @example
 * ```ts
 * const fifo = new RxFifo();
 * if (!fifo.push(frame, 64 * 1024)) regs.inc(reg(E1000_MPC));
 * while (!fifo.empty) { const slot = fifo.front; use(slot, fifo.frontLength); fifo.pop(); }
 * ```
 *
 * @module
 */

import { MAX_SEGMENT_FRAME } from "../net/segment.ts";

/** Bytes of one slot: the longest segment frame, rounded up, plus a 4-byte FCS. */
export const RX_FIFO_SLOT_BYTES = 1536;
/** Slots: enough for 64 KiB of minimum-size frames would be 1000+; 64 covers any burst test. */
const SLOTS = 64;

/** A bounded FIFO of received frames. */
export class RxFifo {
  readonly #slots: Uint8Array[];
  readonly #lengths = new Int32Array(SLOTS);
  #head = 0;
  #count = 0;
  #bytes = 0;
  /** Whether the front frame has already been counted as waiting for a descriptor. */
  frontCounted = false;

  /** An empty FIFO. */
  constructor() {
    const storage = new Uint8Array(SLOTS * RX_FIFO_SLOT_BYTES);
    this.#slots = Array.from(
      { length: SLOTS },
      (_, i) => storage.subarray(i * RX_FIFO_SLOT_BYTES, (i + 1) * RX_FIFO_SLOT_BYTES),
    );
  }

  /** No frame waiting. */
  get empty(): boolean {
    return this.#count === 0;
  }

  /** Frames waiting. */
  get count(): number {
    return this.#count;
  }

  /** The slot holding the oldest frame (valid while not empty). */
  get front(): Uint8Array {
    return this.#slots[this.#head];
  }

  /** Length of the oldest frame. */
  get frontLength(): number {
    return this.#lengths[this.#head];
  }

  /** Set the oldest frame's length (after the model padded or stripped it in place). */
  set frontLength(n: number) {
    this.#bytes += n - this.#lengths[this.#head];
    this.#lengths[this.#head] = n;
  }

  /** Copy `frame` in; false (nothing stored) when it does not fit in `capacity` bytes. */
  push(frame: Uint8Array, capacity: number): boolean {
    if (frame.length > MAX_SEGMENT_FRAME || frame.length === 0) return false;
    if (this.#count === SLOTS || this.#bytes + frame.length > capacity) return false;
    const i = (this.#head + this.#count) % SLOTS;
    this.#slots[i].set(frame);
    this.#lengths[i] = frame.length;
    this.#count++;
    this.#bytes += frame.length;
    return true;
  }

  /** Drop the oldest frame. */
  pop(): void {
    if (this.#count === 0) return;
    this.#bytes -= this.#lengths[this.#head];
    this.#head = (this.#head + 1) % SLOTS;
    this.#count--;
    this.frontCounted = false;
  }

  /** Drop everything (device reset). */
  clear(): void {
    this.#head = 0;
    this.#count = 0;
    this.#bytes = 0;
    this.frontCounted = false;
  }
}
