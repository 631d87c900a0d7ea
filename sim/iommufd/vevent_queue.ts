/**
 * A vIOMMU event queue's records and its anonymous fd `[iommufd-viommu-event]` (Linux 6.15+,
 * drivers/iommu/iommufd/eventq.c): the bounded queue with its LOST_EVENTS header and sequence
 * numbers, read(2) of whole records, poll. The object and the IOMMU_VEVENTQ_ALLOC command are in
 * ./veventq.ts, whose module doc gives the rules.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { POLLIN, POLLRDNORM } from "../../ffi/kernel.ts";
import { encodeInto } from "../../ffi/uapi/layout.ts";
import { IOMMU_VEVENTQ_FLAG_LOST_EVENTS, iommufd_vevent_header } from "../../ffi/uapi/post_6_12.ts";
import type { SimFile, SimProcess } from "../kernel/file.ts";

/** `INT_MAX`: the largest sequence number; the next one is 0. */
export const VEVENT_SEQUENCE_MAX = 0x7fff_ffff;

/** One queued record: event data, or the queue's LOST_EVENTS header (no data). */
interface Vevent {
  /** The event bytes (empty for the LOST_EVENTS header). */
  readonly data: Uint8Array;
  /** Whether this is the LOST_EVENTS header. */
  readonly lost: boolean;
  /** Its sequence number, set when queued. */
  sequence: number;
}

/** The queue behind a vEVENTQ; it is also the file behind its fd. */
export class VeventQueue implements SimFile {
  /** fd type tag (the anon inode name). */
  readonly kind = "iommufd-viommu-event";
  /** Maximum stored events (`veventq_depth`). */
  readonly depth: number;
  readonly #deliver: Vevent[] = [];
  readonly #lostHeader: Vevent = { data: new Uint8Array(0), lost: true, sequence: 0 };
  #numEvents = 0;
  #sequence = 0;
  #onRelease: (() => void) | undefined;

  /** A queue of `depth` events; `onRelease` runs when the last fd reference goes. */
  constructor(depth: number, onRelease?: () => void) {
    this.depth = depth;
    this.#onRelease = onRelease;
  }

  /** Stored events (the LOST_EVENTS header not counted: `num_events`). */
  get events(): number {
    return this.#numEvents;
  }

  /** Queued records, a LOST_EVENTS header included. */
  get pending(): number {
    return this.#deliver.length;
  }

  /** The sequence number the next report takes. */
  get nextSequence(): number {
    return this.#sequence;
  }

  /** @internal start sequence numbering at `n` (tests of the INT_MAX wrap). */
  setNextSequence(n: number): void {
    this.#sequence = n & VEVENT_SEQUENCE_MAX;
  }

  /** Queue one event (`iommufd_viommu_report_event` + `iommufd_vevent_handler`). */
  report(data: Uint8Array): void {
    const vevent: Vevent = this.#numEvents === this.depth
      ? this.#lostHeader
      : { data: data.slice(), lost: false, sequence: 0 };
    if (!vevent.lost) this.#numEvents++;
    const last = this.#deliver.length - 1;
    if (last >= 0 && this.#deliver[last] === this.#lostHeader) this.#deliver.pop();
    this.#deliver.push(vevent);
    vevent.sequence = this.#sequence;
    this.#sequence = (this.#sequence + 1) & VEVENT_SEQUENCE_MAX;
  }

  /** read(2): whole records (header + data) while they fit; 0 when none does. */
  read(_process: SimProcess, buffer: Uint8Array): number {
    return this.#read(buffer, 0n);
  }

  /** pread(2): like read at offset 0; any other offset is ESPIPE. */
  pread(_process: SimProcess, buffer: Uint8Array, offset: bigint): number {
    return this.#read(buffer, offset);
  }

  #read(buffer: Uint8Array, offset: bigint): number {
    if (offset !== 0n) return -ERRNO.ESPIPE;
    const hdr = iommufd_vevent_header.size;
    const count = buffer.length;
    let done = 0;
    while (this.#deliver.length > 0) {
      const cur = this.#deliver[0];
      if (done >= count || hdr > count - done) break;
      if (!cur.lost && hdr + cur.data.length > count - done) break;
      encodeInto(iommufd_vevent_header, buffer, {
        flags: cur.lost ? IOMMU_VEVENTQ_FLAG_LOST_EVENTS : 0,
        sequence: cur.sequence,
      }, done);
      done += hdr;
      buffer.set(cur.data, done);
      done += cur.data.length;
      this.#deliver.shift();
      if (!cur.lost) this.#numEvents--;
    }
    return done;
  }

  /** POLLIN|POLLRDNORM while records wait; never writable. */
  pollEvents(): number {
    return this.#deliver.length > 0 ? POLLIN | POLLRDNORM : 0;
  }

  /** Last fd reference gone: drop the references the fd held. Queued events stay. */
  release(_process: SimProcess): void {
    const cb = this.#onRelease;
    this.#onRelease = undefined;
    cb?.();
  }

  /** The object is destroyed: drop everything queued. */
  shutdown(): void {
    this.#deliver.length = 0;
    this.#numEvents = 0;
  }
}
