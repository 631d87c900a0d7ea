/**
 * A simulated Ethernet segment: every frame a port sends reaches every other port after a fixed
 * latency on the virtual clock (a hub; with two ports, a wire). Frames can be captured to pcap.
 * Delivery order is the send order, so runs are deterministic.
 *
 * @module
 */

import type { VirtualClock } from "../clock.ts";

/** Something plugged into a segment: a NIC model's port or a simulated host. */
export interface SegmentPort {
  /** Name for traces ("virtio-net 0000:00:03.0", "peer 10.0.2.2"). */
  readonly name: string;
  /** A frame arrived (the port must copy it if it keeps it). */
  receive(frame: Uint8Array): void;
}

/** A port's handle for sending. */
export interface SegmentLink {
  /** Put `frame` — its first `length` bytes when given — on the segment (it is copied). */
  send(frame: Uint8Array, length?: number): void;
  /** Unplug the port. */
  detach(): void;
}

/** Sees every frame on the segment (pcap writers, tests). */
export type FrameTap = (timeNs: number, frame: Uint8Array, from: string) => void;

/** Default one-way latency of a segment: 10 µs. */
export const DEFAULT_SEGMENT_LATENCY_NS = 10_000;
/** Largest frame a segment carries (jumbo frames are not modelled). */
export const MAX_SEGMENT_FRAME = 1518;

/** The segment. */
export class EthernetSegment {
  readonly #clock: VirtualClock;
  readonly #latencyNs: number;
  readonly #ports = new Set<SegmentPort>();
  readonly #taps: FrameTap[] = [];
  /** Frames carried so far. */
  frames = 0;
  /** Frames dropped for being empty or longer than {@link MAX_SEGMENT_FRAME}. */
  dropped = 0;

  /** A segment on `clock` with a one-way latency. */
  constructor(clock: VirtualClock, latencyNs = DEFAULT_SEGMENT_LATENCY_NS) {
    this.#clock = clock;
    this.#latencyNs = latencyNs;
  }

  /** Watch every frame (called at send time). */
  tap(tap: FrameTap): void {
    this.#taps.push(tap);
  }

  /** Plug a port in. */
  attach(port: SegmentPort): SegmentLink {
    this.#ports.add(port);
    return {
      send: (frame, length) => this.#send(port, frame, length ?? frame.length),
      detach: () => void this.#ports.delete(port),
    };
  }

  #send(from: SegmentPort, frame: Uint8Array, length: number): void {
    if (length <= 0 || length > MAX_SEGMENT_FRAME || length > frame.length) {
      this.dropped++;
      return;
    }
    const copy = frame.slice(0, length);
    this.frames++;
    for (const tap of this.#taps) tap(this.#clock.nowNs, copy, from.name);
    this.#clock.schedule(this.#latencyNs, () => {
      for (const port of this.#ports) if (port !== from) port.receive(copy);
    });
  }
}
