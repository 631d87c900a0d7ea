/**
 * The e1000-family driver's health check (nic.ts `check()`), run from an application's idle loop
 * and never from the rx/tx paths: a device whose STATUS register reads all-ones no longer answers
 * MMIO (pulled out, or EEH-frozen on POWER); a transmit queue that holds frames without completing
 * any for longer than the timeout, with the link up, is hung — Linux's igb and e1000e call this a
 * "Tx Unit Hang" and reset the adapter.
 *
 * @module
 */

import type { PciDevice } from "../../core/pci_device.ts";
import { VfioError } from "../../core/errors.ts";
import type { TxRing } from "./rings.ts";

/** What a register reads when the device no longer answers (a PCIe read that failed). */
export const REGISTER_ALL_ONES = 0xffff_ffff;

/** The error of a device that reads all-ones, as `check()` reports it. */
export function deviceGone(dev: PciDevice, model: string, status: number): VfioError {
  return new VfioError({
    operation: model,
    device: dev.bdf,
    message: `STATUS reads 0x${(status >>> 0).toString(16)}: the device stopped answering MMIO`,
    hint: "the device was removed, or on POWER EEH froze its PE (VFIO_EEH_PE_OP can reset it); " +
      "close the device",
  });
}

/**
 * Per transmit queue, when it was last seen making progress (no frames in flight, its oldest
 * descriptor moved, or the link down): a queue that has not for longer than the timeout is hung.
 */
export class TxWatchdog {
  readonly #timeoutMs: number;
  readonly #clean: Int32Array;
  readonly #since: Float64Array;

  /** A watchdog over `queues` transmit queues, all seen making progress at `now`. */
  constructor(queues: number, timeoutMs: number, now: number) {
    this.#timeoutMs = timeoutMs;
    this.#clean = new Int32Array(queues).fill(-1);
    this.#since = new Float64Array(queues).fill(now);
  }

  /**
   * Look at the rings (their completions already reclaimed): whether one of them has held
   * frames without progress for longer than the timeout while the link was up.
   */
  stalled(rings: readonly TxRing[], now: number, linkUp: boolean): boolean {
    let hung = false;
    for (let q = 0; q < rings.length; q++) {
      const ring = rings[q];
      if (!linkUp || ring.inFlight === 0 || ring.clean !== this.#clean[q]) {
        this.#clean[q] = ring.clean;
        this.#since[q] = now;
      } else if (now - this.#since[q] > this.#timeoutMs) {
        hung = true;
      }
    }
    return hung;
  }

  /** Every queue seen making progress at `now` (after a reset). */
  restart(now: number): void {
    this.#clean.fill(-1);
    this.#since.fill(now);
  }
}
