/**
 * An in-memory {@link NetDevice} for testing and benchmarking a network stack without a NIC:
 * frames the test injects are received, frames the stack sends are captured. Its pool lives in
 * plain memory with made-up IOVAs (nothing is mapped for DMA: no device ever reads it).
 *
 * Two ways in: `inbox` (tests push frames, each received once) and {@link LoopNetDevice.replay}
 * (a list of frames received round-robin `count` times). Replay and `capture = false` allocate
 * nothing per frame (each frame is one `Uint8Array.set` into a pool buffer, as a NIC's DMA write
 * would be one copy), so the stack bench and the allocation test measure the stack, not the rig.
 *
 * @module
 */

import {
  type InterruptMode,
  type NetDevice,
  type NetDeviceStats,
  newNetDeviceStats,
  type WorkWaitResult,
} from "../drivers/net_device.ts";
import { type DmaAllocator, type PacketBuffer, PacketPool } from "../drivers/packet_pool.ts";
import type { DmaBuffer } from "../core/dma_space.ts";
import { iova } from "../core/dma_backend.ts";

/** A DmaAllocator over ordinary memory. */
export function memoryAllocator(): DmaAllocator {
  let next = 0x10_0000;
  return {
    allocate(size: number): DmaBuffer {
      const base = next;
      next += Math.ceil(size / 4096) * 4096 + 4096;
      return {
        iova: iova(BigInt(base)),
        iovaLow: base >>> 0,
        iovaHigh: 0,
        vaddr: BigInt(base),
        bytes: new Uint8Array(size),
        size,
      } as unknown as DmaBuffer;
    },
    free(): void {},
  };
}

/**
 * The loopback test device.
 *
 * @example
 * ```ts
 * import { NetStack, parseMac } from "@deno-vfio/deno-vfio";
 * import { FrameBuilder, LoopNetDevice } from "@deno-vfio/deno-vfio/testing";
 *
 * const host = { mac: parseMac("52:54:00:12:34:56"), ip: 0x0a00020f };
 * const peer = { mac: parseMac("52:55:0a:00:02:02"), ip: 0x0a000202 };
 * const dev = new LoopNetDevice(host.mac);
 * const stack = new NetStack(dev, { address: "10.0.2.15/24", now: () => 0 });
 * dev.inbox.push(new FrameBuilder(host, peer).arp({ op: 1 })); // who has 10.0.2.15?
 * stack.poll();
 * dev.sent.length; // 1: the ARP reply
 * ```
 */
export class LoopNetDevice implements NetDevice {
  readonly name = "loop";
  /** No interrupts: {@link waitForWork} only looks at the inbox. */
  readonly interruptMode: InterruptMode = "none";
  readonly pool: PacketPool;
  /** Frames waiting to be received (each once, before any replayed frame). */
  readonly inbox: Uint8Array[] = [];
  /** Frames the stack transmitted (copies), while {@link capture} is true. */
  readonly sent: Uint8Array[] = [];
  /** Copy transmitted frames into {@link sent} (false: only count and free them). */
  capture = true;
  /** Accept at most this many frames per txBatch (to test a full ring). */
  txLimit: number = Infinity;
  #replay: Uint8Array[] = [];
  #replayNext = 0;
  #replayLeft = 0;
  #stats: NetDeviceStats = newNetDeviceStats();

  /** A device with `mac` and a pool of `buffers` buffers. */
  constructor(readonly mac: Uint8Array, buffers = 64) {
    this.pool = new PacketPool(memoryAllocator(), buffers);
  }

  /**
   * Receive `count` more frames after the inbox is empty, taking `frames` in turn (frames longer
   * than a buffer are truncated as by {@link rxBatch}). Replaces any replay still pending.
   */
  replay(frames: Uint8Array[], count: number): void {
    this.#replay = frames;
    this.#replayNext = 0;
    this.#replayLeft = frames.length === 0 ? 0 : count;
  }

  /** Frames still to be received (inbox plus replay). */
  get pending(): number {
    return this.inbox.length + this.#replayLeft;
  }

  /** Always up. */
  linkUp(): boolean {
    return true;
  }

  /**
   * Deliver waiting frames, truncated to the buffer size as a NIC would. A frame that finds the
   * pool empty is dropped and counted in `rxDropped`, as a NIC drops frames when its receive ring
   * has no buffer posted.
   */
  rxBatch(out: PacketBuffer[], max: number): number {
    let n = 0;
    while (n < max && (this.inbox.length > 0 || this.#replayLeft > 0)) {
      let frame: Uint8Array;
      if (this.inbox.length > 0) frame = this.inbox.shift()!;
      else {
        frame = this.#replay[this.#replayNext];
        if (++this.#replayNext === this.#replay.length) this.#replayNext = 0;
        this.#replayLeft--;
      }
      const buf = this.pool.alloc();
      if (!buf) {
        this.#stats.rxDropped++;
        continue;
      }
      const len = frame.length <= buf.data.length ? frame.length : buf.data.length;
      if (len === frame.length) buf.data.set(frame);
      else buf.data.set(frame.subarray(0, len));
      buf.length = len;
      out[n++] = buf;
      this.#stats.rxPackets++;
      this.#stats.rxBytes += len;
    }
    return n;
  }

  /** Capture (when {@link capture}) and free sent frames. */
  txBatch(buffers: PacketBuffer[], count: number): number {
    const n = Math.min(count, this.txLimit);
    for (let i = 0; i < n; i++) {
      const buf = buffers[i];
      if (this.capture) this.sent.push(buf.data.slice(0, buf.length));
      this.#stats.txPackets++;
      this.#stats.txBytes += buf.length;
      this.pool.free(buf);
    }
    this.#stats.txDropped += count - n;
    return n;
  }

  /** Counters. */
  stats(): NetDeviceStats {
    return { ...this.#stats };
  }
  /** "ready" when frames wait in the inbox, else "timeout" at once (tests drive time). */
  waitForWork(): Promise<WorkWaitResult> {
    return Promise.resolve(this.inbox.length > 0 ? "ready" : "timeout");
  }
  /** Nothing to release. */
  close(): void {}
}
