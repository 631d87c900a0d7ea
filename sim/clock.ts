/**
 * The simulated machine's virtual clock. Device models schedule work on it; the work runs when the
 * driver touches MMIO (each access advances time a little) or awaits (a sleep or a poll jumps to
 * the next event). Nothing here reads the host's clock, so a run is deterministic.
 *
 * Pending events sit in a binary heap ordered by (time, order of scheduling), so scheduling and
 * running an event cost O(log n) whatever the queue holds. {@link VirtualClock.post} schedules a
 * call on a long-lived {@link ClockTarget} from a pool of event records: a device or a wire that
 * posts one event per frame allocates nothing in steady state.
 *
 * @module
 */

/** A scheduled event. */
interface ClockEvent {
  at: number;
  seq: number;
  /** The closure of {@link VirtualClock.schedule}, or undefined for a posted call. */
  run: (() => void) | undefined;
  /** The target of {@link VirtualClock.post}. */
  target: ClockTarget | undefined;
  arg: number;
  cancelled: boolean;
}

/** Handle to cancel a scheduled event. */
export interface ScheduledEvent {
  /** Cancel the event if it has not run yet. */
  cancel(): void;
}

/** Something that receives posted calls ({@link VirtualClock.post}). */
export interface ClockTarget {
  /** The posted time has come; `arg` is what was posted with it. */
  onClock(arg: number): void;
}

/** Virtual time in nanoseconds, with an ordered event queue. */
export class VirtualClock {
  #now = 0;
  #seq = 0;
  /** Binary min-heap on (at, seq). */
  readonly #heap: ClockEvent[] = [];
  /** Records of posted calls that have run, for reuse. */
  readonly #free: ClockEvent[] = [];

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
      target: undefined,
      arg: 0,
      cancelled: false,
    };
    this.#push(event);
    return { cancel: () => void (event.cancelled = true) };
  }

  /**
   * Call `target.onClock(arg)` when virtual time reaches `now + delayNs`, in the same order as
   * {@link schedule} (a posted call cannot be cancelled; its record is reused once it has run).
   */
  post(delayNs: number, target: ClockTarget, arg: number): void {
    const event = this.#free.pop() ?? {
      at: 0,
      seq: 0,
      run: undefined,
      target: undefined,
      arg: 0,
      cancelled: false,
    };
    event.at = this.#now + Math.max(0, delayNs);
    event.seq = this.#seq++;
    event.target = target;
    event.arg = arg;
    this.#push(event);
  }

  /** Time of the next pending event, or undefined when none is pending. */
  nextEventNs(): number | undefined {
    const heap = this.#heap;
    while (heap.length > 0 && heap[0].cancelled) this.#pop();
    return heap.length > 0 ? heap[0].at : undefined;
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
      const event = this.#pop();
      this.#now = Math.max(this.#now, event.at);
      const target = event.target;
      if (target === undefined) {
        event.run!();
        continue;
      }
      const arg = event.arg;
      event.target = undefined;
      this.#free.push(event);
      target.onClock(arg);
    }
    this.#now = Math.max(this.#now, t);
  }

  #push(event: ClockEvent): void {
    const heap = this.#heap;
    let i = heap.length;
    heap.push(event);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent];
      if (p.at < event.at || (p.at === event.at && p.seq < event.seq)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = event;
  }

  #pop(): ClockEvent {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop()!;
    const n = heap.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      let child = heap[l];
      if (r < n) {
        const right = heap[r];
        if (right.at < child.at || (right.at === child.at && right.seq < child.seq)) {
          c = r;
          child = right;
        }
      }
      if (last.at < child.at || (last.at === child.at && last.seq < child.seq)) break;
      heap[i] = child;
      i = c;
    }
    heap[i] = last;
    return top;
  }
}
