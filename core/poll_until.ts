/**
 * Polling a device register until a condition holds, with a deadline: what a driver does while
 * waiting for a reset to finish or a command to complete without an interrupt. On timeout the
 * error names the operation and the device.
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import { VfioError } from "./errors.ts";

/** How {@link pollUntil} waits and what it says when it gives up. */
export interface PollUntilOptions {
  /** Give up after this many milliseconds. */
  readonly timeoutMs: number;
  /** Sleep this many milliseconds between looks. */
  readonly pollMs: number;
  /** The operation named in the error ("edu DMA", "virtio reset", …). */
  readonly operation: string;
  /** The error's message (default: "the device did not finish within N ms"). */
  readonly timeoutMessage?: () => string;
}

/** Call `done` until it returns true, sleeping in between; a VfioError after the deadline. */
export async function pollUntil(
  dev: { readonly kernel: Kernel; readonly bdf: string },
  done: () => boolean,
  options: PollUntilOptions,
): Promise<void> {
  const kernel = dev.kernel;
  const deadline = kernel.now() + options.timeoutMs;
  while (!done()) {
    if (kernel.now() > deadline) {
      throw new VfioError({
        operation: options.operation,
        device: dev.bdf,
        message: options.timeoutMessage?.() ??
          `the device did not finish within ${options.timeoutMs} ms`,
      });
    }
    await kernel.sleep(options.pollMs);
  }
}
