/**
 * The simulated machine's virtual clock. Device models schedule work on it; the work runs when the
 * driver touches MMIO (each access advances time a little) or awaits (a sleep or a poll jumps to
 * the next event). Nothing here reads the host's clock, so a run is deterministic.
 *
 * @module
 */

/** A scheduled event. */
interface ClockEvent {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
  cancelled: boolean;
}

/** Handle to cancel a scheduled event. */
export interface ScheduledEvent {
  /** Cancel the event if it has not run yet. */
  cancel(): void;
}

/** Virtual time in nanoseconds, with an ordered event queue. */
export class VirtualClock {
  #now = 0;
  #seq = 0;
  #events: ClockEvent[] = [];

  /** Current virtual time in ns. */
  get nowNs(): number {
    return this.#now;
  }

  /** Run `fn` when virtual time reaches `now + delayNs` (events at equal times run in order). */
  schedule(delayNs: number, fn: () => void): ScheduledEvent {
    const event: ClockEvent = {
      at: this.#now + Math.max(0, delayNs),
      seq: this.#seq++,
      run: fn,
      cancelled: false,
    };
    const i = this.#events.findIndex((e) => e.at > event.at);
    if (i < 0) this.#events.push(event);
    else this.#events.splice(i, 0, event);
    return { cancel: () => void (event.cancelled = true) };
  }

  /** Time of the next pending event, or undefined when none is pending. */
  nextEventNs(): number | undefined {
    while (this.#events.length > 0 && this.#events[0].cancelled) this.#events.shift();
    return this.#events[0]?.at;
  }

  /** Advance time by `ns`, running every event that falls due, in order. */
  advance(ns: number): void {
    this.runUntil(this.#now + Math.max(0, ns));
  }

  /** Advance time to `t` (never backwards), running every event due at or before it. */
  runUntil(t: number): void {
    for (;;) {
      const next = this.nextEventNs();
      if (next === undefined || next > t) break;
      const event = this.#events.shift()!;
      this.#now = Math.max(this.#now, event.at);
      event.run();
    }
    this.#now = Math.max(this.#now, t);
  }
}
