/**
 * The receive and transmit rings of the virtio-net driver (net.ts) over two split virtqueues
 * (virtqueue.ts): which pool buffer sits behind which descriptor, posting receive buffers,
 * taking used ones, queueing frames and reclaiming sent ones. Each frame is one descriptor whose
 * buffer starts with the 12-byte virtio-net header (virtio 1.2 §5.1.6) in the pool buffer's
 * headroom; receive descriptors are device-writable, transmit ones device-readable with a zeroed
 * header (no offloads).
 *
 * @module
 */

import type { NetDeviceStats } from "../net_device.ts";
import type { PacketBuffer, PacketPool } from "../packet_pool.ts";
import { VIRTIO_NET_HDR_SIZE, VIRTQ_DESC_F_WRITE } from "./registers.ts";
import type { SplitQueue } from "./virtqueue.ts";

/** The receive ring: every free descriptor holds a posted pool buffer. */
export class VirtioRxRing {
  /** The virtqueue. */
  readonly queue: SplitQueue;
  readonly #pool: PacketPool;
  readonly #stats: NetDeviceStats;
  readonly #notify: () => void;
  readonly #slot: (PacketBuffer | undefined)[];

  /** A ring over `queue`; `notify` kicks the device (called when it asks to be notified). */
  constructor(queue: SplitQueue, pool: PacketPool, stats: NetDeviceStats, notify: () => void) {
    this.queue = queue;
    this.#pool = pool;
    this.#stats = stats;
    this.#notify = notify;
    this.#slot = new Array(queue.size).fill(undefined);
  }

  /** Whether used buffers are waiting. */
  ready(): boolean {
    return this.queue.usedPending() > 0;
  }

  /**
   * Take up to `max` used buffers into `out[0..n)`; returns n. Frames without a payload or longer
   * than a buffer are dropped (the buffer goes back to the pool) and counted in rxDropped.
   */
  receive(out: PacketBuffer[], max: number): number {
    let n = 0;
    const rx = this.queue;
    while (n < max && rx.usedPending() > 0) {
      const id = rx.popUsed();
      const buf = this.#slot[id];
      this.#slot[id] = undefined;
      if (!buf) {
        this.#stats.rxDropped++;
        continue;
      }
      const frame = rx.lastLength - VIRTIO_NET_HDR_SIZE;
      if (frame <= 0 || frame > buf.data.length) {
        this.#stats.rxDropped++;
        this.#pool.free(buf);
        continue;
      }
      buf.length = frame;
      out[n++] = buf;
      this.#stats.rxPackets++;
      this.#stats.rxBytes += frame;
    }
    return n;
  }

  /** Post a pool buffer into every free descriptor; returns how many were posted. */
  refill(): number {
    const rx = this.queue;
    let offered = 0;
    for (let id = 0; id < rx.size; id++) {
      if (this.#slot[id]) continue;
      const buf = this.#pool.alloc();
      if (!buf) break;
      rx.setDescriptor(
        id,
        buf.iova - VIRTIO_NET_HDR_SIZE,
        buf.data.length + VIRTIO_NET_HDR_SIZE,
        VIRTQ_DESC_F_WRITE,
      );
      this.#slot[id] = buf;
      rx.offer(id);
      offered++;
    }
    if (offered > 0) {
      rx.publish();
      if (rx.needsNotify()) this.#notify();
    }
    return offered;
  }

  /** Return every posted buffer to the pool (the device must be reset). */
  drain(): void {
    for (let id = 0; id < this.#slot.length; id++) {
      const buf = this.#slot[id];
      if (buf !== undefined) this.#pool.free(buf);
      this.#slot[id] = undefined;
    }
  }
}

/** The transmit ring: a stack of free descriptors, the frame behind each busy one. */
export class VirtioTxRing {
  /** The virtqueue. */
  readonly queue: SplitQueue;
  readonly #pool: PacketPool;
  readonly #stats: NetDeviceStats;
  readonly #notify: () => void;
  readonly #slot: (PacketBuffer | undefined)[];
  readonly #free: number[];

  /** A ring over `queue`; `notify` kicks the device (called when it asks to be notified). */
  constructor(queue: SplitQueue, pool: PacketPool, stats: NetDeviceStats, notify: () => void) {
    this.queue = queue;
    this.#pool = pool;
    this.#stats = stats;
    this.#notify = notify;
    this.#slot = new Array(queue.size).fill(undefined);
    this.#free = Array.from({ length: queue.size }, (_, i) => queue.size - 1 - i);
  }

  /** Return the buffers of used descriptors to the pool; returns how many. */
  reclaim(): number {
    const tx = this.queue;
    let n = 0;
    while (tx.usedPending() > 0) {
      const id = tx.popUsed();
      const buf = this.#slot[id];
      if (!buf) continue;
      this.#slot[id] = undefined;
      this.#free.push(id);
      this.#stats.txPackets++;
      this.#pool.free(buf);
      n++;
    }
    return n;
  }

  /** Queue up to `count` frames; returns how many were taken. */
  send(buffers: PacketBuffer[], count: number): number {
    const tx = this.queue;
    let n = 0;
    for (; n < count && this.#free.length > 0; n++) {
      const buf = buffers[n];
      const slot = this.#free.pop()!;
      buf.head.fill(0, buf.head.length - VIRTIO_NET_HDR_SIZE);
      tx.setDescriptor(slot, buf.iova - VIRTIO_NET_HDR_SIZE, buf.length + VIRTIO_NET_HDR_SIZE, 0);
      this.#slot[slot] = buf;
      tx.offer(slot);
      this.#stats.txBytes += buf.length;
    }
    if (n > 0) {
      tx.publish();
      if (tx.needsNotify()) this.#notify();
    }
    return n;
  }

  /** Return every queued buffer to the pool (the device must be reset). */
  drain(): void {
    for (let id = 0; id < this.#slot.length; id++) {
      const buf = this.#slot[id];
      if (buf === undefined) continue;
      this.#pool.free(buf);
      this.#slot[id] = undefined;
      this.#free.push(id);
    }
  }
}
