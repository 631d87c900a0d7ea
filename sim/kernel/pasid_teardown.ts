/**
 * **Proposal, not Linux ABI.** The teardown of a released PASID, in the order
 * ../shared/seeds/003 argues for, before the {@link SystemPasidSpace} quarantines it:
 *
 * 1. **silence**: on every IOMMU of the machine, every device entry of the PASID goes not present
 *    with fault reporting suppressed ({@link IommuModel.silencePasid}: VT-d P = 0/FPD = 1, SMMUv3
 *    quiet CD, virtio-iommu proposal), so DMA still in flight is dropped without flooding the
 *    fault log; kernel bookkeeping that points at the PASID (iommufd's PASID attachments) is
 *    dropped through {@link PasidTeardown.onRevoke} listeners;
 * 2. **stop**: every driver that asked to be told ({@link PasidTeardown.watch}: a userspace
 *    eventfd, a kernel callback) is told to stop using the PASID. The notice never waits for the
 *    driver: an eventfd is signalled, a callback is called and whatever it returns (a promise that
 *    never settles, an exception) is ignored — a slow or dead driver cannot hold the teardown, nor
 *    the exit of a killed process (seed 003's OOM-killer point);
 * 3. **drain**: the devices that had an entry are asked which requests tagged with the PASID they
 *    have outstanding ({@link PasidDrainSource}); the teardown waits on the virtual clock, polling
 *    every {@link PASID_DRAIN_POLL_NS}, until those have completed — or until
 *    {@link PASID_DRAIN_TIMEOUT_NS}, the longest default PCIe Completion Timeout, after which a
 *    request would have timed out anyway. Work a device starts after the stop notice is not
 *    waited for: a dead driver's device may go on issuing requests, and they meet step 4;
 * 4. **quarantine**: the silenced entries become plain not-present ones (DMA tagged with the PASID
 *    now faults and is reported, and still never lands) and the space starts the PASID's
 *    quarantine, after which the number is handed out again.
 *
 * Every step is logged in {@link PasidTeardown.events} with its virtual time.
 *
 * @module
 */

import type { VirtualClock } from "../clock.ts";
import type { IommuModel } from "../iommu/model.ts";
import type { SystemPasidSpace } from "./pasid_space.ts";

/** Polling interval of the drain: 1 µs of virtual time. */
export const PASID_DRAIN_POLL_NS = 1_000;
/** Longest drain: 50 ms, the upper end of PCIe's default Completion Timeout range (50 µs–50 ms). */
export const PASID_DRAIN_TIMEOUT_NS = 50_000_000;

/** A device model that can say which of its requests tagged with a PASID are outstanding. */
export interface PasidDrainSource {
  /** The requests (any identity: a descriptor, a transaction) tagged with `pasid` in flight now. */
  pasidRequestsInFlight(pasid: number): readonly unknown[];
}

/** Told that a PASID is being torn down; must not block (its result is ignored). */
export type PasidStopCallback = (pasid: number, reason: string) => unknown;

/** One step of a teardown. */
export interface PasidTeardownEvent {
  /** The PASID. */
  readonly pasid: number;
  /** Virtual time, ns. */
  readonly timeNs: number;
  /** Which step. */
  readonly step: "silenced" | "stop" | "drained" | "quarantined";
  /** What happened, one line. */
  readonly detail: string;
}

/** Options of a {@link PasidTeardown}. */
export interface PasidTeardownOptions {
  /** The machine's clock. */
  readonly clock: VirtualClock;
  /** The space whose released PASIDs this tears down (it installs itself as its handler). */
  readonly space: SystemPasidSpace;
  /** The IOMMUs of the machine (those still present). */
  readonly iommus: () => readonly IommuModel[];
  /** The device model behind a requester id, if it can report outstanding DMA. */
  readonly drainSource: (requester: number) => PasidDrainSource | undefined;
  /** Longest drain (default {@link PASID_DRAIN_TIMEOUT_NS}). */
  readonly drainTimeoutNs?: number;
  /** Trace sink. */
  readonly trace?: (line: string) => void;
}

/** The teardown machinery of a machine's PASID space (see the module doc). */
export class PasidTeardown {
  /** Every step so far, oldest first. */
  readonly events: PasidTeardownEvent[] = [];
  readonly #o: PasidTeardownOptions;
  readonly #watchers = new Map<number, Set<PasidStopCallback>>();
  readonly #revoke = new Set<(pasid: number) => void>();
  readonly #draining = new Set<number>();

  /** Tear down what `o.space` releases. */
  constructor(o: PasidTeardownOptions) {
    this.#o = o;
    o.space.setReleaseHandler((pasid, reason) => this.#release(pasid, reason));
  }

  /**
   * Tell `callback` when `pasid` is torn down (once; the registration goes with the teardown).
   * Returns a function that cancels it.
   */
  watch(pasid: number, callback: PasidStopCallback): () => void {
    let set = this.#watchers.get(pasid);
    if (!set) this.#watchers.set(pasid, set = new Set());
    set.add(callback);
    return () => void this.#watchers.get(pasid)?.delete(callback);
  }

  /** Kernel bookkeeping to drop at step 1 (without touching the IOMMU). Returns an unsubscribe. */
  onRevoke(listener: (pasid: number) => void): () => void {
    this.#revoke.add(listener);
    return () => void this.#revoke.delete(listener);
  }

  /** Whether `pasid` is between its release and its quarantine. */
  draining(pasid: number): boolean {
    return this.#draining.has(pasid);
  }

  /** The steps of `pasid`'s teardowns, oldest first. */
  eventsOf(pasid: number): PasidTeardownEvent[] {
    return this.events.filter((e) => e.pasid === pasid);
  }

  #release(pasid: number, reason: string): void {
    this.#draining.add(pasid);
    const silenced: { iommu: IommuModel; requesters: number[] }[] = [];
    for (const iommu of this.#o.iommus()) {
      const requesters = iommu.silencePasid?.(pasid) ?? [];
      if (requesters.length > 0) silenced.push({ iommu, requesters });
    }
    const entries = silenced.flatMap((s) =>
      s.requesters.map((r) => `${s.iommu.facts.kind} ${rid(r)}`)
    );
    this.#log(
      pasid,
      "silenced",
      `${reason}: ${entries.length} entr${
        entries.length === 1 ? "y" : "ies"
      } not present, faults ` +
        `not reported${entries.length > 0 ? ` (${entries.join(", ")})` : ""}`,
    );
    for (const listener of [...this.#revoke]) listener(pasid);
    const watchers = [...(this.#watchers.get(pasid) ?? [])];
    this.#watchers.delete(pasid);
    for (const w of watchers) notify(w, pasid, reason);
    this.#log(
      pasid,
      "stop",
      `stop sent to ${watchers.length} driver${watchers.length === 1 ? "" : "s"}`,
    );
    const sources = silenced.flatMap((s) => s.requesters)
      .map((r) => this.#o.drainSource(r))
      .filter((s) => s !== undefined);
    const outstanding = new Set(sources.flatMap((s) => s.pasidRequestsInFlight(pasid)));
    const start = this.#o.clock.nowNs;
    const deadline = start + (this.#o.drainTimeoutNs ?? PASID_DRAIN_TIMEOUT_NS);
    const check = (): void => {
      const now = this.#o.clock.nowNs;
      const still = new Set(sources.flatMap((s) => s.pasidRequestsInFlight(pasid)));
      const busy = [...outstanding].filter((r) => still.has(r)).length;
      if (busy > 0 && now < deadline) {
        this.#o.clock.schedule(PASID_DRAIN_POLL_NS, check);
        return;
      }
      this.#log(
        pasid,
        "drained",
        busy > 0
          ? `drain timed out after ${now - start} ns with ${busy} request(s) outstanding`
          : `${outstanding.size} outstanding request(s) completed after ${now - start} ns`,
      );
      this.#finish(pasid, silenced.map((s) => s.iommu));
    };
    check();
  }

  #finish(pasid: number, iommus: IommuModel[]): void {
    for (const iommu of iommus) iommu.clearSilencedPasid?.(pasid);
    this.#draining.delete(pasid);
    this.#o.space.quarantine(pasid);
    const until = this.#o.space.quarantineEndsNs(pasid) ?? this.#o.clock.nowNs;
    this.#log(pasid, "quarantined", `entries cleared (faults reported); reusable at ${until} ns`);
  }

  #log(pasid: number, step: PasidTeardownEvent["step"], detail: string): void {
    const timeNs = this.#o.clock.nowNs;
    this.events.push({ pasid, timeNs, step, detail });
    this.#o.trace?.(`pasid ${pasid} teardown ${step}: ${detail}`);
  }
}

/** Call a stop callback without waiting for it and without letting it fail the teardown. */
function notify(callback: PasidStopCallback, pasid: number, reason: string): void {
  try {
    const r = callback(pasid, reason);
    if (r instanceof Promise) r.catch(() => {});
  } catch {
    // A driver's failure is its own; the teardown goes on.
  }
}

/** "bb:dd.f" of a requester id. */
function rid(requester: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, "0");
  return `${hex((requester >> 8) & 0xff)}:${hex((requester >> 3) & 0x1f)}.${requester & 7}`;
}
