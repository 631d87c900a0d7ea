/**
 * The machine's event trace: a bounded ring of the lines the IOMMU model, the DMA ports, the
 * device models and VFIO write (maps, unmaps, invalidations, faults with the vendor's kernel-log
 * line, device events), each tagged with where it came from, plus subscribers that see every line
 * as it happens. The ring keeps the newest {@link DEFAULT_TRACE_CAPACITY} lines, so a long run
 * (10,000 device open/close cycles write over 100,000 lines) uses bounded memory; a subscriber
 * (a `--trace` flag writing to a terminal or a file) sees them all.
 *
 * @example
 * ```ts
 * const machine = createMachine({ iommu: "vtd" });
 * const stop = machine.tracer.subscribe((e) => {
 *   if (e.source === "iommu") console.log(e.line); // "vtd map did=2 iova=0x1000 …"
 * });
 * // … run a driver …
 * stop();
 * machine.trace.at(-1); // the newest line still in the ring
 * ```
 *
 * @module
 */

/** Where a trace line comes from. */
export type TraceSource = "iommu" | "dma" | "device" | "vfio";

/** One trace line. */
export interface TraceEvent {
  /** Its number since the machine started (0, 1, …; numbers of dropped lines are not reused). */
  readonly seq: number;
  /** The virtual time it was written, in nanoseconds. */
  readonly nowNs: number;
  /** Who wrote it: the IOMMU model (and its kernel log), a DMA port, a device model, VFIO. */
  readonly source: TraceSource;
  /** The line, as the source wrote it. */
  readonly line: string;
}

/** A function that sees every trace line as it is written. */
export type TraceSubscriber = (event: TraceEvent) => void;

/** Lines the ring keeps by default. */
export const DEFAULT_TRACE_CAPACITY = 4096;

/** A bounded trace ring with subscribers. */
export class TraceRing {
  readonly #events: (TraceEvent | undefined)[];
  readonly #subscribers = new Set<TraceSubscriber>();
  readonly #now: () => number;
  #next = 0;

  /** A ring of `capacity` lines (at least 1) stamped with `now()` (virtual nanoseconds). */
  constructor(now: () => number, readonly capacity: number = DEFAULT_TRACE_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`trace capacity ${capacity}: want a positive integer`);
    }
    this.#now = now;
    this.#events = new Array(capacity);
  }

  /** Lines written since the start (kept and dropped). */
  get written(): number {
    return this.#next;
  }

  /** Lines dropped from the ring because newer ones took their place. */
  get dropped(): number {
    return Math.max(0, this.#next - this.capacity);
  }

  /** Write a line: it replaces the oldest when the ring is full, and every subscriber sees it. */
  write(source: TraceSource, line: string): void {
    const event: TraceEvent = { seq: this.#next, nowNs: this.#now(), source, line };
    this.#events[this.#next % this.capacity] = event;
    this.#next++;
    for (const fn of this.#subscribers) fn(event);
  }

  /** The lines in the ring, oldest first. */
  events(): TraceEvent[] {
    const first = Math.max(0, this.#next - this.capacity);
    const out: TraceEvent[] = [];
    for (let seq = first; seq < this.#next; seq++) out.push(this.#events[seq % this.capacity]!);
    return out;
  }

  /** The text of the lines in the ring, oldest first. */
  lines(): string[] {
    return this.events().map((e) => e.line);
  }

  /** Call `fn` with every line written from now on; returns the function that stops it. */
  subscribe(fn: TraceSubscriber): () => void {
    this.#subscribers.add(fn);
    return () => void this.#subscribers.delete(fn);
  }
}
