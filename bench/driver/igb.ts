/**
 * The igb rings of the driver bench: the driver's own RxRing/TxRing (drivers/e1000/rings.ts) with
 * the 82576's advanced transmit format (drivers/igb/model.ts), programmed with the driver's
 * programRing into BARs that are plain shared memory, forwarding between two ports through the
 * ring calls IntelNic.rxBatch/txBatch make — and the C twin of the same loop on rings of the same
 * layout. Ports 0-1 are Deno's, 2-3 the C loop's; one device thread serves all four.
 *
 * @module
 */

import {
  DESC_SIZE,
  E1000_BUFFER_SIZE,
  IGB_MODEL,
  type NetDeviceStats,
  newNetDeviceStats,
  type PacketBuffer,
  PacketPool,
  programRing,
  QUEUE_DT,
  RxRing,
  TxRing,
} from "../../mod.ts";
import type { NativeBench } from "./native.ts";
import { alignUp, SharedMemory } from "./memory.ts";
import {
  COUNTER_SLOTS,
  deviceCounts,
  finishRings,
  type ForwardSide,
  type LoopCounts,
  nativeSide,
  type RingBench,
} from "./side.ts";

/** The 82576's register space (BAR 0): 128 KiB. */
const BAR_SIZE = 128 * 1024;
/** Ports per side. */
const PORTS = 2;

/** The shape of a bench: ring size, pool, frame length. */
export interface RingShape {
  /** Descriptors per ring. */
  ringSize: number;
  /** Buffers in each side's pool. */
  poolSize: number;
  /** Bytes of each received frame. */
  frameLength: number;
}

/** Where one side's rings and pool lie in its half of the DMA region (the same for both). */
function layout(shape: RingShape): { rings: number[]; pool: number; total: number } {
  const ringBytes = alignUp(shape.ringSize * DESC_SIZE, 4096);
  const rings = [0, 1, 2, 3].map((i) => i * ringBytes);
  const pool = 4 * ringBytes;
  return { rings, pool, total: alignUp(pool + shape.poolSize * E1000_BUFFER_SIZE, 4096) };
}

/** One port's rings. */
interface Port {
  rx: RxRing;
  tx: TxRing;
  stats: NetDeviceStats;
}

/**
 * ixy's forward(): a batch from `from`, one byte touched per frame, out of `to` — through the
 * ring calls of IntelNic.rxBatch (receive, refill) and txBatch (reclaim, send, count the rest).
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
  const n = rx.receive(bufs, 0, batch);
  if (n > 0 || rx.posted < rx.size - 1) rx.refill();
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

/** The Deno driver's rings on ports 0-1. */
function denoSide(memory: SharedMemory, shape: RingShape): ForwardSide {
  const l = layout(shape);
  const pool = new PacketPool(memory.allocatorAt(l.pool), shape.poolSize, E1000_BUFFER_SIZE, 0);
  let ports: Port[] = [];
  let bufs: PacketBuffer[] = [];
  let counts: LoopCounts = zero();
  return {
    name: "Deno",
    setup(maxBatch: number): void {
      ports = [0, 1].map((p) => {
        const bar = memory.bars[p];
        const stats = newNetDeviceStats();
        const rxMem = memory.buffer(l.rings[p * 2], shape.ringSize * DESC_SIZE);
        const txMem = memory.buffer(l.rings[p * 2 + 1], shape.ringSize * DESC_SIZE);
        const rx = new RxRing(
          rxMem,
          shape.ringSize,
          bar,
          IGB_MODEL.queues.rxBase + QUEUE_DT,
          pool,
          stats,
        );
        const tx = new TxRing(
          txMem,
          shape.ringSize,
          bar,
          IGB_MODEL.queues.txBase + QUEUE_DT,
          pool,
          stats,
          IGB_MODEL.txCmd,
          IGB_MODEL.txPaylenShift,
        );
        programRing(bar, IGB_MODEL.queues.rxBase, rxMem, shape.ringSize);
        programRing(bar, IGB_MODEL.queues.txBase, txMem, shape.ringSize);
        return { rx, tx, stats };
      });
      bufs = new Array(maxBatch).fill(pool.buffer(0));
      counts = zero();
    },
    post(): void {
      for (const p of ports) p.rx.refill();
    },
    run(frames: number, batch: number): number {
      return forwardFrames(ports[0], ports[1], pool, bufs, batch, frames, counts);
    },
    counts: () => ({ ...counts }),
    finish: () => finishRings(ports, pool, shape.poolSize, counts),
  };
}

/** The C loop's rings on ports 2-3, in the second half of the DMA region. */
function cSide(native: NativeBench, memory: SharedMemory, shape: RingShape): ForwardSide {
  const l = layout(shape);
  return nativeSide({
    setup: (maxBatch) =>
      native.igb_fwd_setup(
        memory.barAt(PORTS),
        BAR_SIZE,
        memory.dmaAt(l.total),
        new Uint32Array(l.rings),
        shape.ringSize,
        l.pool,
        shape.poolSize,
        E1000_BUFFER_SIZE,
        maxBatch,
      ),
    start: native.igb_fwd_start,
    run: native.igb_fwd_run,
    counts: native.igb_fwd_counts,
    finish: native.igb_fwd_finish,
  });
}

/** The igb bench: four ports' BARs, both sides' rings, the device. */
export function igbBench(native: NativeBench, shape: RingShape): RingBench {
  const memory = new SharedMemory(native, 2 * PORTS, BAR_SIZE, 2 * layout(shape).total);
  return {
    kind: "igb",
    deno: denoSide(memory, shape),
    c: cSide(native, memory, shape),
    startDevice(): void {
      check(native.igb_device_start(memory.barAt(0), BAR_SIZE, 2 * PORTS, shape.frameLength));
    },
    stopDevice() {
      const stats = new BigUint64Array(COUNTER_SLOTS);
      check(native.device_stop(stats));
      memory.resetBars();
      return deviceCounts(stats);
    },
    close: () => memory.close(),
  };
}

/** Counts at zero. */
export function zero(): LoopCounts {
  return { rxCalls: 0, rxPackets: 0, forwarded: 0, txDropped: 0, rxDropped: 0 };
}

/** A native call's status: 0, else throw. */
export function check(status: number): void {
  if (status !== 0) throw new Error(`driver bench: native call failed (${status})`);
}
