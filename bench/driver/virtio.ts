/**
 * The virtio-net rings of the driver bench: the driver's own VirtioRxRing/VirtioTxRing
 * (drivers/virtio/net_rings.ts) over its SplitQueue (drivers/virtio/virtqueue.ts), forwarding
 * between two ports through the calls VirtioNet.rxBatch/txBatch make — and the C twin of the same
 * loop on queues of the same layout. Queues 0-3 are Deno's (rx0, tx0, rx1, tx1), 4-7 the C loop's;
 * one device thread serves all eight, as a busy-polling device that never wants a kick.
 *
 * @module
 */

import {
  DEFAULT_BUFFER_SIZE,
  DEFAULT_HEADROOM,
  newNetDeviceStats,
  type PacketBuffer,
  PacketPool,
  SplitQueue,
  splitQueueLayout,
  VIRTIO_NET_HDR_SIZE,
  VirtioRxRing,
  VirtioTxRing,
} from "../../mod.ts";
import type { NativeBench } from "./native.ts";
import { alignUp, SharedMemory } from "./memory.ts";
import { check, type RingShape, zero } from "./igb.ts";
import {
  COUNTER_SLOTS,
  deviceCounts,
  finishRings,
  type ForwardSide,
  type LoopCounts,
  nativeSide,
  type RingBench,
} from "./side.ts";

/** A BAR page the bench does not use (virtio's registers stay out of the hot path). */
const BAR_SIZE = 4096;

/** Where one side's queues and pool lie in its half of the DMA region (the same for both). */
function layout(shape: RingShape): { queues: number[]; pool: number; total: number } {
  const bytes = alignUp(splitQueueLayout(shape.ringSize).total, 4096);
  const queues = [0, 1, 2, 3].map((i) => i * bytes);
  const pool = 4 * bytes;
  return { queues, pool, total: alignUp(pool + shape.poolSize * DEFAULT_BUFFER_SIZE, 4096) };
}

/** One port's rings. */
interface Port {
  rx: VirtioRxRing;
  tx: VirtioTxRing;
  stats: ReturnType<typeof newNetDeviceStats>;
}

/**
 * ixy's forward(): a batch from `from`, one byte touched per frame, out of `to` — through the
 * ring calls of VirtioNet.rxBatch (receive, refill) and txBatch (reclaim, send, count the rest).
 */
function forward(
  from: Port,
  to: Port,
  pool: PacketPool,
  bufs: PacketBuffer[],
  batch: number,
  counts: LoopCounts,
): number {
  const rx = from.rx;
  const n = rx.receive(bufs, batch);
  if (n > 0) rx.refill();
  counts.rxCalls++;
  counts.rxPackets += n;
  for (let i = 0; i < n; i++) bufs[i].data[1]++;
  const tx = to.tx;
  tx.reclaim();
  const sent = tx.send(bufs, n);
  to.stats.txDropped += n - sent;
  for (let i = sent; i < n; i++) pool.free(bufs[i]);
  counts.txDropped += n - sent;
  return sent;
}

/**
 * Forward a → b, then b → a, until `frames` were queued for transmit; returns how many. Each ring
 * bench has its own copy of this loop so that the timed calls see one ring type only (the igb and
 * virtio benches run in one process), as the C loop's do.
 */
function forwardFrames(
  a: Port,
  b: Port,
  pool: PacketPool,
  bufs: PacketBuffer[],
  batch: number,
  frames: number,
  counts: LoopCounts,
): number {
  let sent = 0;
  while (sent < frames) {
    sent += forward(a, b, pool, bufs, batch, counts);
    sent += forward(b, a, pool, bufs, batch, counts);
  }
  counts.forwarded += sent;
  return sent;
}

/** The Deno driver's queues. */
function denoSide(memory: SharedMemory, shape: RingShape, queues: SplitQueue[]): ForwardSide {
  const l = layout(shape);
  const pool = new PacketPool(memory.allocatorAt(l.pool), shape.poolSize);
  let ports: Port[] = [];
  let bufs: PacketBuffer[] = [];
  let counts: LoopCounts = zero();
  let kicks = 0;
  const kick = (): void => void kicks++;
  return {
    name: "Deno",
    setup(maxBatch: number): void {
      queues.length = 0;
      ports = [0, 1].map(() => {
        const stats = newNetDeviceStats();
        const [rxq, txq] = [0, 1].map(() => {
          const i = queues.length;
          const q = new SplitQueue(
            memory.buffer(l.queues[i], splitQueueLayout(shape.ringSize).total),
            shape.ringSize,
          );
          q.suppressInterrupts();
          queues.push(q);
          return q;
        });
        return {
          rx: new VirtioRxRing(rxq, pool, stats, kick),
          tx: new VirtioTxRing(txq, pool, stats, kick),
          stats,
        };
      });
      bufs = new Array(maxBatch).fill(pool.buffer(0));
      counts = zero();
      kicks = 0;
    },
    post(): void {
      for (const p of ports) p.rx.refill();
    },
    run(frames: number, batch: number): number {
      return forwardFrames(ports[0], ports[1], pool, bufs, batch, frames, counts);
    },
    counts: () => ({ ...counts }),
    finish(): LoopCounts {
      if (kicks !== 0) throw new Error(`driver bench: the driver kicked a device that said not to`);
      return finishRings(ports, pool, shape.poolSize, counts);
    },
  };
}

/** The C loop's queues, in the second half of the DMA region. */
function cSide(native: NativeBench, memory: SharedMemory, shape: RingShape): ForwardSide {
  const l = layout(shape);
  return nativeSide({
    setup: (maxBatch) =>
      native.virtio_fwd_setup(
        memory.dmaAt(l.total),
        new Uint32Array(l.queues),
        shape.ringSize,
        l.pool,
        shape.poolSize,
        DEFAULT_BUFFER_SIZE,
        DEFAULT_HEADROOM,
        maxBatch,
      ),
    start: native.virtio_fwd_start,
    run: native.virtio_fwd_run,
    counts: native.virtio_fwd_counts,
    finish: native.virtio_fwd_finish,
  });
}

/** The virtio bench: both sides' queues, the device. */
export function virtioBench(native: NativeBench, shape: RingShape): RingBench {
  const l = layout(shape);
  const memory = new SharedMemory(native, 1, BAR_SIZE, 2 * l.total);
  const denoQueues: SplitQueue[] = [];
  const q = splitQueueLayout(shape.ringSize);
  return {
    kind: "virtio",
    deno: denoSide(memory, shape, denoQueues),
    c: cSide(native, memory, shape),
    startDevice(): void {
      // Five u64 per queue: descriptor table, available ring, used ring, size, bytes written.
      const config = new BigUint64Array(8 * 5);
      const base = BigInt(Deno.UnsafePointer.value(memory.dmaPointer));
      for (let i = 0; i < 8; i++) {
        const start = base + BigInt((i < 4 ? 0 : l.total) + l.queues[i % 4]);
        const receive = i % 2 === 0;
        config.set([
          start + BigInt(q.desc),
          start + BigInt(q.avail),
          start + BigInt(q.used),
          BigInt(shape.ringSize),
          receive ? BigInt(VIRTIO_NET_HDR_SIZE + shape.frameLength) : 0n,
        ], i * 5);
      }
      check(native.virtio_device_start(config, 8));
    },
    stopDevice() {
      const stats = new BigUint64Array(COUNTER_SLOTS);
      check(native.device_stop(stats));
      return deviceCounts(stats);
    },
    close: () => memory.close(),
  };
}
