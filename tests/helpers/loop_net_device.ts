/**
 * An in-memory {@link NetDevice} for stack tests: frames the test injects are received, frames
 * the stack sends are captured. Its pool lives in plain memory with made-up IOVAs.
 *
 * @module
 */

import {
  type InterruptMode,
  type NetDevice,
  type NetDeviceStats,
  newNetDeviceStats,
  type WorkWaitResult,
} from "../../drivers/net_device.ts";
import { type DmaAllocator, type PacketBuffer, PacketPool } from "../../drivers/packet_pool.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { iova } from "../../core/dma_backend.ts";

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

/** The loopback test device. */
export class LoopNetDevice implements NetDevice {
  readonly name = "loop";
  /** No interrupts: {@link waitForWork} only looks at the inbox. */
  readonly interruptMode: InterruptMode = "none";
  readonly pool: PacketPool;
  /** Frames waiting to be received. */
  readonly inbox: Uint8Array[] = [];
  /** Frames the stack transmitted (copies). */
  readonly sent: Uint8Array[] = [];
  /** Accept at most this many frames per txBatch (to test a full ring). */
  txLimit = Infinity;
  #stats: NetDeviceStats = newNetDeviceStats();

  /** A device with `mac` and a pool of `buffers` buffers. */
  constructor(readonly mac: Uint8Array, buffers = 64) {
    this.pool = new PacketPool(memoryAllocator(), buffers);
  }
  /** Always up. */
  linkUp(): boolean {
    return true;
  }
  /** Deliver injected frames (truncated to the buffer size, as a NIC would). */
  rxBatch(out: PacketBuffer[], max: number): number {
    let n = 0;
    while (n < max && this.inbox.length > 0) {
      const buf = this.pool.alloc();
      if (!buf) break;
      const frame = this.inbox.shift()!;
      const len = Math.min(frame.length, buf.data.length);
      buf.data.set(frame.subarray(0, len));
      buf.length = len;
      out[n++] = buf;
      this.#stats.rxPackets++;
      this.#stats.rxBytes += len;
    }
    return n;
  }
  /** Capture and free sent frames. */
  txBatch(buffers: PacketBuffer[], count: number): number {
    const n = Math.min(count, this.txLimit);
    for (let i = 0; i < n; i++) {
      this.sent.push(buffers[i].data.slice(0, buffers[i].length));
      this.#stats.txPackets++;
      this.#stats.txBytes += buffers[i].length;
      this.pool.free(buffers[i]);
    }
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
