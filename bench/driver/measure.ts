/**
 * Timing for the driver bench. Both sides' rings are live at once and served by one device
 * thread; timing windows of about a millisecond alternate Deno, C, Deno, C, … so both see the same
 * machine. A window's cost is the driver thread's CPU time / frames forwarded, read with
 * clock_gettime(CLOCK_THREAD_CPUTIME_ID) through FFI around the call for both sides.
 *
 * On a shared machine the device thread and the driver thread are not always running at the same
 * time. CPU time leaves out the time the driver thread itself waited for a CPU; a window in which
 * the device thread waited shows up as receive calls that came back short (the driver spun on a
 * ring the device had not refilled). Each side's figure is therefore the median over its "clean"
 * windows: those in which every receive call got a full batch, so the loop never waited for the
 * device. The median over all windows is kept beside it.
 *
 * @module
 */

import type { DeviceCounts, ForwardSide, LoopCounts, RingBench } from "./side.ts";

/** What one side measured at one batch size. */
export interface SideResult {
  /** ns per forwarded frame of each window. */
  windows: number[];
  /** Fraction of each window's receive calls' capacity that was filled. */
  fill: number[];
  /** Median ns per frame of the clean windows (every receive call full); NaN if none was. */
  clean: number;
  /** How many windows were clean. */
  cleanWindows: number;
  /** Median ns per frame of all windows. */
  median: number;
  /** The loop's counts over the whole measurement. */
  counts: LoopCounts;
}

/** One batch size's result. */
export interface BatchResult {
  /** The batch size. */
  batch: number;
  /** The Deno driver. */
  deno: SideResult;
  /** The C loop. */
  c: SideResult;
  /** The device's counts. */
  device: DeviceCounts;
}

/** Options of {@link measureBatch}. */
export interface MeasureOptions {
  /** Timed windows per side. */
  windows: number;
  /** Length of a timed window in ms. */
  windowMs: number;
}

/** A window is clean when its receive calls were this full on average (every call full). */
const CLEAN_FILL = 1;

/** Median of a list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Frames one side forwards in about `ms` milliseconds of CPU time (fastest of a few runs). */
function calibrate(side: ForwardSide, batch: number, ms: number, clock: () => number): number {
  let frames = 4096;
  for (;;) {
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const t0 = clock();
      side.run(frames, batch);
      best = Math.min(best, (clock() - t0) / 1e6);
    }
    if (best >= ms / 4 || frames >= 2 ** 30) return Math.max(1024, Math.round(frames * ms / best));
    frames *= 2;
  }
}

/**
 * The loop must account for every frame it received, and the device must have completed at
 * least what the loops received and at most what they forwarded; otherwise the figures would not
 * mean what the table says.
 */
function checkCounts(sides: ForwardSide[], loops: LoopCounts[], device: DeviceCounts): void {
  loops.forEach((c, i) => {
    if (c.rxPackets !== c.forwarded + c.txDropped || c.rxDropped !== 0 || c.forwarded === 0) {
      throw new Error(
        `driver bench: ${sides[i].name} received ${c.rxPackets}, forwarded ${c.forwarded}, ` +
          `dropped ${c.txDropped} on transmit and ${c.rxDropped} on receive`,
      );
    }
  });
  const rx = loops[0].rxPackets + loops[1].rxPackets;
  const tx = loops[0].forwarded + loops[1].forwarded;
  if (device.rx < rx || device.tx > tx) {
    throw new Error(
      `driver bench: the device completed ${device.rx} receive and ${device.tx} transmit ` +
        `descriptors for ${rx} frames received and ${tx} forwarded`,
    );
  }
}

/**
 * Measure Deno and C at one batch size, windows interleaved; `clock` is the driver thread's CPU
 * time in ns.
 */
export function measureBatch(
  bench: RingBench,
  batch: number,
  o: MeasureOptions,
  clock: () => number,
): BatchResult {
  const sides = [bench.deno, bench.c];
  for (const s of sides) s.setup(batch);
  bench.startDevice();
  let device: DeviceCounts | undefined;
  const ns: number[][] = [[], []];
  const fill: number[][] = [[], []];
  try {
    for (const s of sides) s.post();
    const frames = sides.map((s) => calibrate(s, batch, o.windowMs, clock));
    for (let w = 0; w < o.windows; w++) {
      for (let i = 0; i < 2; i++) {
        const s = sides[i];
        const before = s.counts();
        const t0 = clock();
        const sent = s.run(frames[i], batch);
        const spent = clock() - t0;
        const after = s.counts();
        ns[i].push(spent / sent);
        fill[i].push(
          (after.rxPackets - before.rxPackets) / ((after.rxCalls - before.rxCalls) * batch),
        );
      }
    }
  } finally {
    device = bench.stopDevice();
  }
  const loops = sides.map((s) => s.finish());
  checkCounts(sides, loops, device);
  const result = (i: number): SideResult => {
    const clean = ns[i].filter((_, w) => fill[i][w] >= CLEAN_FILL);
    return {
      windows: ns[i],
      fill: fill[i],
      clean: clean.length > 0 ? median(clean) : NaN,
      cleanWindows: clean.length,
      median: median(ns[i]),
      counts: loops[i],
    };
  };
  return { batch, deno: result(0), c: result(1), device };
}
