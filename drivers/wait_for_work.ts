/**
 * The sleeping half of a NIC's `waitForWork` (drivers/net_device.ts), shared by the NIC drivers: wait on one or
 * several interrupt vectors with a timeout, or, without interrupts, look at the rings every
 * millisecond. The re-arm and the re-check before the sleep are the driver's (they are device
 * specific); these helpers only sleep.
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import type { Interrupts, WaitResult } from "../core/irq.ts";
import type { WorkWaitResult } from "./net_device.ts";

/** How often the interrupt-less wait looks at the rings (milliseconds). */
export const POLL_FOR_WORK_MS = 1;

/**
 * How long an interrupt wait sleeps before it looks at the rings again on its own (milliseconds):
 * a frame whose interrupt was lost is found within this time whatever the caller's timeout, as
 * Linux's e1000e/igb watchdog (every 2 s) raises a software interrupt "to ensure the Rx ring is
 * cleaned". Each wake of an idle process costs CPU (an interrupt wait is a poll on a helper
 * thread): 1 s keeps an idle driver at about one wake per second (100 ms cost ten times the idle
 * CPU of the demo in the VM: 2.2 s over 10 s against 0.29 s).
 */
export const LOST_IRQ_RESCAN_MS = 1000;

/**
 * Without interrupts: call `ready` every {@link POLL_FOR_WORK_MS} until it is true ("ready"), the
 * timeout passes ("timeout") or the signal aborts ("cancelled").
 */
export async function pollForWork(
  kernel: Kernel,
  ready: () => boolean,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<WorkWaitResult> {
  const deadline = kernel.now() + Math.max(0, timeoutMs);
  for (;;) {
    if (signal?.aborted) return "cancelled";
    if (ready()) return "ready";
    const left = deadline - kernel.now();
    if (left <= 0) return "timeout";
    await kernel.sleep(Math.min(POLL_FOR_WORK_MS, left));
  }
}

function outcome(result: WaitResult): WorkWaitResult {
  return typeof result === "number" ? "ready" : result;
}

/**
 * Wait until any of `vectors` fires ("ready"), the timeout passes or the signal aborts. With
 * several vectors one wait runs per vector; the first to end cancels the others, and all have
 * ended (their polls woken) when this returns.
 */
export async function waitForVectors(
  irqs: Interrupts,
  vectors: readonly number[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<WorkWaitResult> {
  if (vectors.length === 1) return outcome(await irqs.wait(vectors[0], { timeoutMs, signal }));
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const waits = vectors.map((v) => irqs.wait(v, { timeoutMs, signal: stop.signal }));
  try {
    await Promise.race(waits);
  } catch {
    // Reported below, once every wait has ended.
  } finally {
    stop.abort();
    signal?.removeEventListener("abort", onAbort);
  }
  const settled = await Promise.allSettled(waits);
  const results: WaitResult[] = [];
  for (const s of settled) {
    if (s.status === "rejected") throw s.reason;
    results.push(s.value);
  }
  if (results.some((r) => typeof r === "number")) return "ready";
  if (signal?.aborted) return "cancelled";
  return results.includes("timeout") ? "timeout" : "cancelled";
}

/** What {@link waitForVectorsOrWork} saw: a vector's result, or work found without one. */
export type RescanWaitResult = WorkWaitResult | "missed";

/**
 * {@link waitForVectors} in slices of at most {@link LOST_IRQ_RESCAN_MS}, calling `ready` after
 * each slice that ended without an interrupt: "missed" when it then finds work (the interrupt was
 * lost), else the wait's own result once the timeout has passed.
 */
export async function waitForVectorsOrWork(
  kernel: Kernel,
  irqs: Interrupts,
  vectors: readonly number[],
  timeoutMs: number,
  ready: () => boolean,
  signal?: AbortSignal,
): Promise<RescanWaitResult> {
  const deadline = kernel.now() + Math.max(0, timeoutMs);
  for (;;) {
    const left = deadline - kernel.now();
    const got = await waitForVectors(irqs, vectors, Math.min(left, LOST_IRQ_RESCAN_MS), signal);
    if (got !== "timeout") return got;
    if (ready()) return "missed";
    if (left <= LOST_IRQ_RESCAN_MS) return "timeout";
  }
}
