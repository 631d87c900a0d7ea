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
 * if (!fifo.push(frame, frame.length, 64 * 1024)) regs.inc(reg(E1000_MPC));
 * while (!fifo.empty) { const slot = fifo.front; use(slot, fifo.frontLength); fifo.pop(); }
 * ```
 *
 * @module
 */

import { MAX_SEGMENT_FRAME } from "../net/segment.ts";
import { type ByteViews, byteViews, copyBytes, ViewCache } from "../bytes.ts";
import type { E1000RegisterFile } from "./e1000_regfile.ts";
import {
  E1000_RCTL,
  E1000_RNBC,
  E1000_RUC,
  E1000_STATUS,
  RCTL_EN,
  STATUS_LU,
} from "./e1000_regs.ts";
import { ETH_ZLEN } from "./frame_parse.ts";

/** How a receiver takes frames out of the FIFO. */
export interface RxFifoConsumer {
  /** Whether the function may master the bus. */
  busMaster(): boolean;
  /** Whether some ring has a free descriptor (QEMU's `can_receive`). */
  hasDescriptor(): boolean;
  /** Deliver (or drop) the front frame. */
  deliver(): void;
}

/** Bytes of one slot: the longest segment frame, rounded up, plus a 4-byte FCS. */
export const RX_FIFO_SLOT_BYTES = 1536;
/** Frames the FIFO holds at most, whatever their size (its byte capacity is the register's). */
const SLOTS = 64;

/** A bounded FIFO of received frames. */
export class RxFifo {
  readonly #slots: Uint8Array[];
  readonly #lengths = new Int32Array(SLOTS);
  /** The slots' storage, one buffer (views made once). */
  readonly #storage: ByteViews;
  /** Views of the buffers frames are copied from (the wire's slots, a loopback frame). */
  readonly #sources = new ViewCache();
  #head = 0;
  #count = 0;
  #bytes = 0;
  /** Whether the front frame has already been counted as waiting for a descriptor. */
  frontCounted = false;

  /** An empty FIFO. */
  constructor() {
    const storage = new Uint8Array(SLOTS * RX_FIFO_SLOT_BYTES);
    this.#storage = byteViews(storage);
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

  /**
   * Copy `frame[offset..offset+length)` in (offset 0 by default); false (nothing stored) when it
   * is empty, longer than a slot holds, outside `frame`, or does not fit in `capacity` bytes.
   */
  push(frame: Uint8Array, length: number, capacity: number, offset = 0): boolean {
    if (length > MAX_SEGMENT_FRAME || length <= 0 || offset < 0 || offset + length > frame.length) {
      return false;
    }
    if (this.#count === SLOTS || this.#bytes + length > capacity) return false;
    const i = (this.#head + this.#count) % SLOTS;
    copyBytes(this.#sources.of(frame), offset, this.#storage, i * RX_FIFO_SLOT_BYTES, length);
    this.#lengths[i] = length;
    this.#count++;
    this.#bytes += length;
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

  /**
   * Hand frames to `consumer` while they can go somewhere: the link is up, RCTL.EN is set, bus
   * mastering is on and a descriptor is free; a frame that has to wait for a descriptor is
   * counted once in RNBC.
   */
  drain(regs: E1000RegisterFile, consumer: RxFifoConsumer): void {
    const mac = regs.mac;
    while (this.#count > 0) {
      if (
        (mac[E1000_STATUS >>> 2] & STATUS_LU) === 0 || (mac[E1000_RCTL >>> 2] & RCTL_EN) === 0 ||
        !consumer.busMaster()
      ) return;
      if (!consumer.hasDescriptor()) {
        if (!this.frontCounted) {
          regs.inc(E1000_RNBC >>> 2);
          this.frontCounted = true;
        }
        return;
      }
      consumer.deliver();
      this.pop();
    }
  }

  /** Pad the front frame with zeros to the 60-byte minimum (counted in RUC); its length. */
  padFront(regs: E1000RegisterFile): number {
    const length = this.frontLength;
    if (length >= ETH_ZLEN) return length;
    this.front.fill(0, length, ETH_ZLEN);
    this.frontLength = ETH_ZLEN;
    regs.inc(E1000_RUC >>> 2);
    return ETH_ZLEN;
  }

  /** Drop everything (device reset). */
  clear(): void {
    this.#head = 0;
    this.#count = 0;
    this.#bytes = 0;
    this.frontCounted = false;
  }
}
