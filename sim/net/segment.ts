/**
 * A simulated Ethernet segment: every frame a port sends reaches every other port after a fixed
 * latency on the virtual clock (a hub; with two ports, a wire). Frames can be captured to pcap.
 * Delivery order is the send order, so runs are deterministic.
 *
 * Frames in flight are copied into slots of one buffer the segment owns (grown when more frames
 * are in flight than ever before) and delivered by calls posted on the clock, so a busy wire
 * allocates nothing per frame. Ports that implement {@link SegmentPort.receiveFrom} are handed
 * the slot itself; taps and the other ports get a copy of their own (a view of a large block,
 * bytes.ts's ByteArena, rather than a buffer per frame).
 *
 * @module
 */

import type { ClockTarget, VirtualClock } from "../clock.ts";
import { ByteArena, type ByteViews, byteViews, copyBytes, ViewCache } from "../bytes.ts";

/** Something plugged into a segment: a NIC model's port or a simulated host. */
export interface SegmentPort {
  /** Name for traces ("virtio-net 0000:00:03.0", "peer 10.0.2.2"). */
  readonly name: string;
  /** A frame arrived (the port must copy it if it keeps it). */
  receive(frame: Uint8Array): void;
  /**
   * A frame arrived as `length` bytes of `buf` from `offset`, valid only during the call (the
   * port copies what it keeps). Optional: the segment calls it instead of {@link receive} when
   * present, which saves a view per frame.
   */
  receiveFrom?(buf: Uint8Array, offset: number, length: number): void;
}

/** A port's handle for sending. */
export interface SegmentLink {
  /** Put a frame on the segment. */
  send(frame: Uint8Array): void;
  /** Put `length` bytes of `buf` from `offset` on the segment (copied before it returns). */
  sendFrom(buf: Uint8Array, offset: number, length: number): void;
  /** Unplug the port. */
  detach(): void;
}

/** What a segment needs of a clock: the time and posted calls (a {@link VirtualClock}). */
export type SegmentClock = Pick<VirtualClock, "nowNs" | "post">;

/** Sees every frame on the segment (pcap writers, tests). */
export type FrameTap = (timeNs: number, frame: Uint8Array, from: string) => void;

/** Default one-way latency of a segment: 10 µs. */
export const DEFAULT_SEGMENT_LATENCY_NS = 10_000;
/** Largest frame a segment carries (jumbo frames are not modelled). */
export const MAX_SEGMENT_FRAME = 1518;

/** Bytes per in-flight slot (a frame, rounded up to 8). */
const SLOT_BYTES = (MAX_SEGMENT_FRAME + 7) & ~7;
/** Slots of a new segment; doubled whenever every one is in flight. */
const INITIAL_SLOTS = 32;

/** The segment. */
export class EthernetSegment {
  readonly #clock: SegmentClock;
  readonly #latencyNs: number;
  readonly #ports = new Set<SegmentPort>();
  readonly #taps: FrameTap[] = [];
  /** In-flight frames: slot i at bytes [i·SLOT_BYTES, i·SLOT_BYTES + length[i]). */
  #slots: ByteViews = byteViews(new Uint8Array(INITIAL_SLOTS * SLOT_BYTES));
  /** Views of the buffers ports send from. */
  readonly #senders = new ViewCache();
  /** The copies taps and ports without `receiveFrom` get (theirs to keep). */
  readonly #copies = new ByteArena();
  #length = new Int32Array(INITIAL_SLOTS);
  #from: (SegmentPort | undefined)[] = new Array(INITIAL_SLOTS).fill(undefined);
  /** Free slot numbers (a stack). */
  #free: number[] = Array.from({ length: INITIAL_SLOTS }, (_, i) => INITIAL_SLOTS - 1 - i);
  /** Delivers slot `arg` when its time comes. */
  readonly #deliver: ClockTarget = { onClock: (slot) => this.#arrive(slot) };
  /** Frames carried so far. */
  frames = 0;
  /** Frames dropped for being empty or longer than {@link MAX_SEGMENT_FRAME}. */
  dropped = 0;

  /** A segment on `clock` with a one-way latency. */
  constructor(clock: SegmentClock, latencyNs = DEFAULT_SEGMENT_LATENCY_NS) {
    this.#clock = clock;
    this.#latencyNs = latencyNs;
  }

  /** Watch every frame (called at send time with a copy the tap may keep). */
  tap(tap: FrameTap): void {
    this.#taps.push(tap);
  }

  /** Plug a port in. */
  attach(port: SegmentPort): SegmentLink {
    this.#ports.add(port);
    return {
      send: (frame) => this.#send(port, frame, 0, frame.length),
      sendFrom: (buf, offset, length) => this.#send(port, buf, offset, length),
      detach: () => void this.#ports.delete(port),
    };
  }

  #send(from: SegmentPort, buf: Uint8Array, offset: number, length: number): void {
    if (length <= 0 || length > MAX_SEGMENT_FRAME) {
      this.dropped++;
      return;
    }
    if (!(offset >= 0 && offset + length <= buf.length)) {
      throw new RangeError(`segment: bytes [${offset}, ${offset + length}) outside the buffer`);
    }
    if (this.#free.length === 0) this.#grow();
    const slot = this.#free.pop()!;
    copyBytes(this.#senders.of(buf), offset, this.#slots, slot * SLOT_BYTES, length);
    this.#length[slot] = length;
    this.#from[slot] = from;
    this.frames++;
    if (this.#taps.length > 0) {
      const copy = this.#copies.copy(this.#slots, slot * SLOT_BYTES, length);
      for (const tap of this.#taps) tap(this.#clock.nowNs, copy, from.name);
    }
    this.#clock.post(this.#latencyNs, this.#deliver, slot);
  }

  #arrive(slot: number): void {
    const from = this.#from[slot];
    const at = slot * SLOT_BYTES;
    const length = this.#length[slot];
    const slots = this.#slots.bytes;
    let copy: Uint8Array | undefined;
    for (const port of this.#ports) {
      if (port === from) continue;
      if (port.receiveFrom !== undefined) port.receiveFrom(slots, at, length);
      else port.receive(copy ??= this.#copies.copy(this.#slots, at, length));
    }
    this.#from[slot] = undefined;
    this.#free.push(slot);
  }

  /** Double the slots (frames in flight keep their slot numbers). */
  #grow(): void {
    const n = this.#length.length;
    const slots = new Uint8Array(2 * n * SLOT_BYTES);
    slots.set(this.#slots.bytes);
    this.#slots = byteViews(slots);
    const length = new Int32Array(2 * n);
    length.set(this.#length);
    this.#length = length;
    this.#from = [...this.#from, ...new Array(n).fill(undefined)];
    for (let i = 2 * n - 1; i >= n; i--) this.#free.push(i);
  }
}
