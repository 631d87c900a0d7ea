/**
 * A device's view of the virtual clock that fault injection can stop: while the device is hung,
 * the work it scheduled comes due but does not run — it is held, as a wedged engine holds its
 * queue — and registers keep answering (they are not timed work). `resume()` (fault injection
 * lifted, or the function reset) runs the held work, in order, at the current time; work the
 * device cancelled meanwhile (its reset does that) stays cancelled.
 *
 * @module
 */

import type { ClockTarget, ScheduledEvent } from "../clock.ts";
import type { DeviceClock } from "../pci/device.ts";

interface Work {
  readonly fn: () => void;
  cancelled: boolean;
}

/** A {@link DeviceClock} over another one that can be stopped (see the module doc). */
export class GatedClock implements DeviceClock {
  readonly #inner: DeviceClock;
  #hung = false;
  #held: Work[] = [];
  /** One gate per posting target, made on its first post (nothing allocated per post). */
  readonly #gates = new Map<ClockTarget, ClockTarget>();

  /** A gate over `inner`, open. */
  constructor(inner: DeviceClock) {
    this.#inner = inner;
  }

  /** Virtual time (not stopped by a hang). */
  get nowNs(): number {
    return this.#inner.nowNs;
  }

  /** Whether the device's timed work is held. */
  get hung(): boolean {
    return this.#hung;
  }

  /** Work items that came due while hung and wait for {@link resume}. */
  get held(): number {
    return this.#held.filter((w) => !w.cancelled).length;
  }

  /** Schedule work; held instead of run while hung. */
  schedule(delayNs: number, fn: () => void): ScheduledEvent {
    const work: Work = { fn, cancelled: false };
    const event = this.#inner.schedule(delayNs, () => this.#run(work));
    return {
      cancel: () => {
        work.cancelled = true;
        event.cancel();
      },
    };
  }

  /** Post a call; held instead of run while hung, as scheduled work is. */
  post(delayNs: number, target: ClockTarget, arg: number): void {
    let gate = this.#gates.get(target);
    if (gate === undefined) {
      gate = {
        onClock: (a) => {
          if (this.#hung) this.#held.push({ fn: () => target.onClock(a), cancelled: false });
          else target.onClock(a);
        },
      };
      this.#gates.set(target, gate);
    }
    this.#inner.post(delayNs, gate, arg);
  }

  /** Stop running the device's timed work. */
  hang(): void {
    this.#hung = true;
  }

  /** Run again: held work runs now (in order), later work when it comes due. */
  resume(): void {
    this.#hung = false;
    for (const work of this.#held.splice(0)) this.#inner.schedule(0, () => this.#run(work));
  }

  #run(work: Work): void {
    if (work.cancelled) return;
    if (this.#hung) {
      this.#held.push(work);
      return;
    }
    work.fn();
  }
}
