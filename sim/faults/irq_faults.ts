/**
 * Interrupt fault injection between a device model and the kernel: interrupts the device sends
 * can be lost (the next N, or all until lifted), and interrupts it never sent can be made to
 * arrive (spurious), each counted. A removed device's interrupts go nowhere.
 *
 * @module
 */

import type { InterruptSink } from "../pci/device.ts";

/** Which kind of interrupt a spurious one is. */
export type InterruptKind = "msi" | "msix" | "intx";

/** What was injected so far. */
export interface InterruptFaultCounters {
  /** Device interrupts dropped. */
  lost: number;
  /** Interrupts delivered that the device did not send. */
  spurious: number;
}

/** An {@link InterruptSink} in front of the kernel's, with faults (see the module doc). */
export class InterruptFaults implements InterruptSink {
  /** Counters. */
  readonly counters: InterruptFaultCounters = { lost: 0, spurious: 0 };
  readonly #inner: InterruptSink;
  #lose = 0;
  #cut = false;

  /** Faults in front of `inner`. */
  constructor(inner: InterruptSink) {
    this.#inner = inner;
  }

  /** Lose the next `n` interrupts the device sends (Infinity: all until {@link restore}). */
  lose(n = Infinity): void {
    this.#lose = n;
  }

  /** Stop losing interrupts. */
  restore(): void {
    this.#lose = 0;
  }

  /** The device is gone: nothing it sends arrives any more. */
  cut(): void {
    this.#cut = true;
  }

  /** Deliver an interrupt the device did not send (INTx: a pulse, asserted then released). */
  spurious(kind: InterruptKind, vector = 0): void {
    this.counters.spurious++;
    if (kind === "msi") this.#inner.msi(vector);
    else if (kind === "msix") this.#inner.msix(vector);
    else {
      this.#inner.intx(true);
      this.#inner.intx(false);
    }
  }

  /** MSI from the device. */
  msi(vector: number): void {
    if (this.#pass()) this.#inner.msi(vector);
  }

  /** MSI-X from the device. */
  msix(vector: number): void {
    if (this.#pass()) this.#inner.msix(vector);
  }

  /** INTx level from the device: a lost assertion never reaches the kernel; releases always do. */
  intx(asserted: boolean): void {
    if (this.#cut) return;
    if (asserted && !this.#pass()) return;
    this.#inner.intx(asserted);
  }

  #pass(): boolean {
    if (this.#cut) return false;
    if (this.#lose <= 0) return true;
    this.#lose--;
    this.counters.lost++;
    return false;
  }
}
