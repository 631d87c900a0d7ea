/**
 * What the driver bench runs: two ports forwarding to each other (ixy's forwarder), on one side
 * the Deno driver's rings, on the other the C loop. Both sides' rings are live at once and served
 * by one C device thread, so their timing windows can alternate every millisecond.
 *
 * @module
 */

/** What a forwarding loop has counted since it was set up. */
export interface LoopCounts {
  /** Receive-batch calls. */
  rxCalls: number;
  /** Frames received. */
  rxPackets: number;
  /** Frames queued for transmit. */
  forwarded: number;
  /** Frames freed because a transmit ring was full. */
  txDropped: number;
  /** Frames the receive path dropped (errors, bad length). */
  rxDropped: number;
}

/** One implementation of the forwarding loop with its rings. */
export interface ForwardSide {
  /** "Deno" or "C". */
  readonly name: string;
  /** Fresh rings, programmed into the side's BAR registers (before the device starts). */
  setup(maxBatch: number): void;
  /** Post the receive rings (once the device runs). */
  post(): void;
  /**
   * Forward in both directions, one batch each way in turn, until at least `frames` were queued
   * for transmit; returns how many were.
   */
  run(frames: number, batch: number): number;
  /** The counts so far. */
  counts(): LoopCounts;
  /** Take the rings down (the device must be stopped); returns the final counts. */
  finish(): LoopCounts;
}

/** What the device thread counted (bench.h enum device_stat). */
export interface DeviceCounts {
  /** Receive descriptors completed. */
  rx: number;
  /** Transmit descriptors completed. */
  tx: number;
  /** Passes over every queue. */
  passes: number;
  /** Passes that found nothing to do. */
  idle: number;
}

/** Slots of the native counter arrays. */
export const COUNTER_SLOTS = 8;

/** The device's counters in device_stop's order. */
export function deviceCounts(stats: BigUint64Array): DeviceCounts {
  return {
    rx: Number(stats[0]),
    tx: Number(stats[1]),
    passes: Number(stats[3]),
    idle: Number(stats[4]),
  };
}

/** A C loop's counters in bench.h's enum fwd_stat order. */
export function loopCounts(counts: BigUint64Array): LoopCounts {
  return {
    rxCalls: Number(counts[0]),
    rxPackets: Number(counts[1]),
    forwarded: Number(counts[2]),
    txDropped: Number(counts[3]),
    rxDropped: Number(counts[4]),
  };
}

/** The device and the two sides of one ring kind. */
export interface RingBench {
  /** "igb" or "virtio". */
  readonly kind: string;
  /** The Deno driver's rings. */
  readonly deno: ForwardSide;
  /** The C loop's rings. */
  readonly c: ForwardSide;
  /** Start the device thread on both sides' rings. */
  startDevice(): void;
  /** Stop it; returns its counts. */
  stopDevice(): DeviceCounts;
  /** Unmap the shared memory. */
  close(): void;
}

/** The C loop's native functions of one ring kind (bench/driver/native/loop.h). */
export interface NativeLoop {
  /** `<kind>_fwd_setup` with its arguments bound: lay the rings out, 0 or negative. */
  setup(maxBatch: number): number;
  /** `<kind>_fwd_start`. */
  start(): void;
  /** `<kind>_fwd_run`. */
  run(frames: bigint, batch: number): bigint;
  /** `<kind>_fwd_counts`. */
  counts(out: BigUint64Array): void;
  /** `<kind>_fwd_finish`. */
  finish(out: BigUint64Array): void;
}

/** The C side over its native loop. */
export function nativeSide(loop: NativeLoop): ForwardSide {
  const out = new BigUint64Array(COUNTER_SLOTS);
  return {
    name: "C",
    setup(maxBatch: number): void {
      const status = loop.setup(maxBatch);
      if (status !== 0) throw new Error(`driver bench: the C loop's setup failed (${status})`);
    },
    post: () => loop.start(),
    run: (frames: number, batch: number): number => Number(loop.run(BigInt(frames), batch)),
    counts(): LoopCounts {
      loop.counts(out);
      return loopCounts(out);
    },
    finish(): LoopCounts {
      loop.finish(out);
      return loopCounts(out);
    },
  };
}

/**
 * Take a Deno side's rings down: every buffer back in the pool (or the bench throws: the driver
 * leaked), and the counts with the rings' receive drops.
 */
export function finishRings(
  ports: { rx: { drain(): void }; tx: { drain(): void }; stats: { rxDropped: number } }[],
  pool: { available: number },
  poolSize: number,
  counts: LoopCounts,
): LoopCounts {
  for (const p of ports) {
    p.rx.drain();
    p.tx.drain();
  }
  if (pool.available !== poolSize) {
    throw new Error(`driver bench: ${poolSize - pool.available} buffers leaked`);
  }
  return { ...counts, rxDropped: ports.reduce((s, p) => s + p.stats.rxDropped, 0) };
}
