/**
 * The receive and transmit rings of the virtio-net driver (net.ts) over two split virtqueues
 * (virtqueue.ts): which pool buffer sits behind which descriptor, posting receive buffers,
 * taking used ones, queueing frames and reclaiming sent ones. Each frame is one descriptor whose
 * buffer starts with the 12-byte virtio-net header (virtio 1.2 §5.1.6) in the pool buffer's
 * headroom; receive descriptors are device-writable, transmit ones device-readable with a zeroed
 * header (no offloads). Free descriptor ids wait on a stack, so posting costs per buffer posted,
 * not per ring entry.
 *
 * Ordering per batch: taking used elements reads the used index once (an Atomics.load, after
 * which the elements and frame bytes are read); posting publishes the available index with one
 * Atomics.store and reads the device's notify flag with one Atomics.load after it, as Linux's
 * virtqueue_kick_prepare does after its full barrier.
 *
 * @module
 */

import type { NetDeviceStats } from "../net_device.ts";
import type { PacketBuffer, PacketPool } from "../packet_pool.ts";
import { VIRTIO_NET_HDR_SIZE, VIRTQ_DESC_F_WRITE } from "./registers.ts";
import type { SplitQueue } from "./virtqueue.ts";

/** What both rings keep: the queue, the buffer behind each descriptor, the free descriptors. */
export abstract class NetRing {
  /** The virtqueue. */
  readonly queue: SplitQueue;
  /** Where buffers come from and go back to. */
  protected readonly pool: PacketPool;
  /** The counters the ring updates. */
  protected readonly stats: NetDeviceStats;
  /** Kicks the device. */
  protected readonly notify: () => void;
  /** The pool buffer behind each descriptor id, while the device owns it. */
  protected readonly slot: (PacketBuffer | undefined)[];
  /** Free descriptor ids, a stack in `free[0..top)`. */
  protected readonly free: Int32Array;
  /** Free descriptor ids on the stack. */
  protected top: number;

  /** A ring over `queue` whose buffers come from `pool`; `notify` kicks the device. */
  constructor(queue: SplitQueue, pool: PacketPool, stats: NetDeviceStats, notify: () => void) {
    this.queue = queue;
    this.pool = pool;
    this.stats = stats;
    this.notify = notify;
    this.slot = new Array(queue.size).fill(undefined);
    this.free = new Int32Array(queue.size);
    for (let i = 0; i < queue.size; i++) this.free[i] = queue.size - 1 - i;
    this.top = queue.size;
  }

  /** Buffers behind descriptors the device owns (posted for receive, or not yet sent). */
  get inFlight(): number {
    return this.queue.size - this.top;
  }

  /** Publish what was offered; kick the device unless it asked not to be. */
  protected publish(): void {
    this.queue.publish();
    if (this.queue.needsNotify()) this.notify();
  }

  /** Return every buffer still behind a descriptor to the pool (the device must be reset). */
  drain(): void {
    for (let id = 0; id < this.slot.length; id++) {
      const buf = this.slot[id];
      if (buf === undefined) continue;
      this.pool.free(buf);
      this.slot[id] = undefined;
      this.free[this.top++] = id;
    }
  }
}

/** The receive ring: every free descriptor gets a posted pool buffer. */
export class VirtioRxRing extends NetRing {
  /** A ring over `queue`; `notify` kicks the device (called when it asks to be notified). */
  constructor(queue: SplitQueue, pool: PacketPool, stats: NetDeviceStats, notify: () => void) {
    super(queue, pool, stats, notify);
  }

  /** Whether used buffers are waiting. */
  ready(): boolean {
    return this.queue.usedPending() > 0;
  }

  /**
   * Take up to `max` used buffers into `out[0..n)`; returns n. Frames without a payload or longer
   * than a buffer are dropped (the buffer goes back to the pool) and counted in rxDropped, as are
   * used ids the driver never posted.
   */
  receive(out: PacketBuffer[], max: number): number {
    const rx = this.queue;
    const pending = rx.usedPending();
    const k = pending < max ? pending : max;
    if (k === 0) return 0;
    const slot = this.slot;
    const free = this.free;
    const mask = rx.size - 1;
    const capacity = this.pool.bufferSize - this.pool.headroom;
    let top = this.top;
    let n = 0;
    let bytes = 0;
    let dropped = 0;
    for (let j = 0; j < k; j++) {
      const id = rx.usedId(j) & mask;
      const buf = slot[id];
      if (buf === undefined) {
        dropped++;
        continue;
      }
      slot[id] = undefined;
      free[top++] = id;
      const frame = rx.usedLength(j) - VIRTIO_NET_HDR_SIZE;
      if (frame <= 0 || frame > capacity) {
        dropped++;
        this.pool.free(buf);
        continue;
      }
      buf.length = frame;
      out[n++] = buf;
      bytes += frame;
    }
    rx.takeUsed(k);
    this.top = top;
    const stats = this.stats;
    stats.rxPackets += n;
    stats.rxBytes += bytes;
    stats.rxDropped += dropped;
    return n;
  }

  /** Post a pool buffer into every free descriptor; returns how many were posted. */
  refill(): number {
    const rx = this.queue;
    const pool = this.pool;
    const iovas = pool.iovas;
    const slot = this.slot;
    const free = this.free;
    const length = pool.bufferSize - pool.headroom + VIRTIO_NET_HDR_SIZE;
    let top = this.top;
    let offered = 0;
    while (top > 0) {
      const buf = pool.alloc();
      if (buf === undefined) break;
      const id = free[--top];
      rx.setDescriptor(id, iovas[buf.index] - VIRTIO_NET_HDR_SIZE, length, VIRTQ_DESC_F_WRITE);
      slot[id] = buf;
      rx.offer(id);
      offered++;
    }
    this.top = top;
    if (offered > 0) this.publish();
    return offered;
  }
}

/** The transmit ring: a frame behind each busy descriptor until the device has used it. */
export class VirtioTxRing extends NetRing {
  /** A ring over `queue`; `notify` kicks the device (called when it asks to be notified). */
  constructor(queue: SplitQueue, pool: PacketPool, stats: NetDeviceStats, notify: () => void) {
    super(queue, pool, stats, notify);
  }

  /** Return the buffers of used descriptors to the pool; returns how many. */
  reclaim(): number {
    const tx = this.queue;
    const pending = tx.usedPending();
    if (pending === 0) return 0;
    const slot = this.slot;
    const free = this.free;
    const pool = this.pool;
    const mask = tx.size - 1;
    let top = this.top;
    let n = 0;
    for (let j = 0; j < pending; j++) {
      const id = tx.usedId(j) & mask;
      const buf = slot[id];
      if (buf === undefined) continue;
      slot[id] = undefined;
      free[top++] = id;
      pool.free(buf);
      n++;
    }
    tx.takeUsed(pending);
    this.top = top;
    this.stats.txPackets += n;
    return n;
  }

  /** Queue up to `count` frames; returns how many were taken. */
  send(buffers: PacketBuffer[], count: number): number {
    const tx = this.queue;
    const top0 = this.top;
    const n = count < top0 ? count : top0;
    if (n <= 0) return 0;
    const slot = this.slot;
    const free = this.free;
    let top = top0;
    let bytes = 0;
    for (let j = 0; j < n; j++) {
      const buf = buffers[j];
      const id = free[--top];
      // No offloads: every header field zero (flags, gso_type NONE, …).
      const head = buf.head;
      for (let h = head.length - VIRTIO_NET_HDR_SIZE; h < head.length; h++) head[h] = 0;
      tx.setDescriptor(
        id,
        buf.iova - VIRTIO_NET_HDR_SIZE,
        buf.length + VIRTIO_NET_HDR_SIZE,
        0,
      );
      slot[id] = buf;
      tx.offer(id);
      bytes += buf.length;
    }
    this.top = top;
    this.stats.txBytes += bytes;
    this.publish();
    return n;
  }
}
