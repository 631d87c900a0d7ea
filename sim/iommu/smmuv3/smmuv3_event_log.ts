/**
 * The simulated SMMUv3's event path: a translation fault becomes a 32-byte event record in the
 * event queue and in the SMMU's `faults`, with the line Linux's `arm_smmu_evtq_thread` logs when
 * it drains the queue (or goes to the page-request handler of a nested domain, or to a vIOMMU's
 * event queue for the events Linux 6.15 forwards); a transaction terminated without an event
 * (abort STE, CD.R / STE.S2R clear) is only traced.
 *
 * Behaviour choice (a documented deviation): the event queue is 2^7 records (Linux would size it
 * from IDR1.EVTQS); the host drains it after every event, as Linux's event thread does, unless
 * `hostDrainsEvents: false`.
 *
 * @module
 */

import type { VirtualClock } from "../../clock.ts";
import type { DmaAccess, IommuFault, TranslateResult } from "../model.ts";
import type { SmmuV3Domain } from "./smmuv3_domain.ts";
import {
  decodeSmmuEvent,
  encodeSmmuEvent,
  SMMU_EVT,
  type SmmuEvent,
  smmuEvent,
  smmuEventLogLines,
  smmuEventMessage,
  smmuEventName,
  type SmmuEventQueue,
} from "./smmuv3_event.ts";
import { SMMU_VMASTER_EVENTS, SmmuV3NestedDomain } from "./smmuv3_nested.ts";
import type { LpaeFaultKind } from "./smmuv3_pgtable.ts";

/** A transaction as the fault paths need it. */
export interface Txn {
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID, if the transaction has one. */
  readonly pasid: number | undefined;
  /** Input address. */
  readonly iova: bigint;
  /** Read or write. */
  readonly access: DmaAccess;
}

/** What the event path needs of its SMMU. */
export interface SmmuV3EventLogOptions {
  /** Device name in log lines. */
  readonly name: string;
  /** The machine's clock (event timestamps). */
  readonly clock: VirtualClock;
  /** The event queue in memory. */
  readonly eventQueue: SmmuEventQueue;
  /** Drain the queue after each event, as Linux's event thread does. */
  readonly hostDrains: boolean;
  /** Host kernel log sink: the lines Linux prints for each drained event. */
  readonly kernelLog?: (line: string) => void;
  /** Append a line to the machine trace. */
  readonly traceLine: (line: string) => void;
  /** The domain each attached stream is on (nested ones may forward their events). */
  readonly streams: ReadonlyMap<number, SmmuV3Domain | SmmuV3NestedDomain>;
}

/** The SMMU's event records and their drain; see the module doc. */
export class SmmuV3EventLog {
  readonly #o: SmmuV3EventLogOptions;
  readonly #faults: IommuFault[] = [];

  /** The event path of the SMMU described by `o`. */
  constructor(o: SmmuV3EventLogOptions) {
    this.#o = o;
  }

  /** Every event recorded so far, oldest first. */
  get faults(): readonly IommuFault[] {
    return this.#faults;
  }

  /**
   * Record event `id` (with `stage` for a nested translation). With `pageRequest` it went to a
   * page-request handler instead: kept in {@link faults} only, not queued or logged.
   */
  record(
    t: Txn,
    id: number,
    fields: Partial<SmmuEvent> = {},
    stage?: 1 | 2,
    pageRequest = false,
  ): TranslateResult {
    const ssv = t.pasid !== undefined;
    const translation = id >= SMMU_EVT.F_WALK_EABT;
    const e = smmuEvent(id, t.sid, {
      ssv,
      ssid: t.pasid ?? 0,
      rnw: translation ? t.access === "read" : false,
      inputAddr: translation ? t.iova : 0n,
      ...fields,
    });
    const raw = encodeSmmuEvent(e);
    const fault: IommuFault = {
      format: pageRequest ? "smmuv3-page-request" : "smmuv3-evt",
      requester: t.sid,
      pasid: t.pasid,
      address: t.iova,
      access: t.access,
      reason: id,
      reasonName: smmuEventName(id),
      raw,
      message: pageRequest
        ? `arm-smmu-v3 ${this.#o.name}: page request (${smmuEventName(id)}) ${t.access} of ` +
          `0x${t.iova.toString(16)} from StreamID 0x${t.sid.toString(16)}` +
          `${t.pasid === undefined ? "" : ` SSID 0x${t.pasid.toString(16)}`}: to the fault queue`
        : smmuEventMessage(this.#o.name, raw),
      timeNs: this.#o.clock.nowNs,
      ...(stage === undefined ? {} : { stage }),
    };
    this.#faults.push(fault);
    if (pageRequest) {
      this.#o.traceLine(`smmuv3 ${fault.message}`);
      return { ok: false, fault };
    }
    this.#o.eventQueue.write(raw);
    this.#o.traceLine(`smmuv3 event ${fault.message}`);
    if (this.#o.hostDrains) this.drain();
    return { ok: false, fault };
  }

  /** A transaction terminated without an event (abort STE, CD.R = 0): not logged anywhere. */
  terminate(t: Txn, why: string): TranslateResult {
    const fault: IommuFault = {
      format: "smmuv3-evt",
      requester: t.sid,
      pasid: t.pasid,
      address: t.iova,
      access: t.access,
      reason: 0,
      reasonName: "terminated without an event",
      raw: new Uint8Array(0),
      message: `arm-smmu-v3 ${this.#o.name}: (no event) ${t.access} of 0x${t.iova.toString(16)} ` +
        `from StreamID 0x${t.sid.toString(16)} terminated: ${why}`,
      timeNs: this.#o.clock.nowNs,
    };
    this.#o.traceLine(`smmuv3 ${fault.message}`);
    return { ok: false, fault };
  }

  /** A walk outcome's fault: its event, or a termination when CD.R / STE.S2R is clear. */
  walkFault(
    t: Txn,
    kind: LpaeFaultKind | "permission",
    record: boolean,
    fields: Partial<SmmuEvent>,
  ): TranslateResult {
    const id = WALK_FAULT_EVENT[kind];
    if (kind === "external-abort") return this.record(t, id, fields);
    // CD.R / STE.S2R clear: these faults terminate the transaction without a record.
    if (!record) return this.terminate(t, `${smmuEventName(id)} not recorded (CD.R/S2R = 0)`);
    return this.record(t, id, fields);
  }

  /** Drain the event queue (`SmmuV3Iommu.drainEvents`); returns the lines logged. */
  drain(): string[] {
    const lines = this.#o.eventQueue.drain()
      .filter((raw) => !this.#forwardToVmaster(raw))
      .flatMap((raw) => smmuEventLogLines(this.#o.name, raw));
    for (const line of lines) this.#o.kernelLog?.(line);
    return lines;
  }

  /**
   * Linux 6.15's `arm_smmu_handle_event` for a record that did not stall: one of
   * {@link SMMU_VMASTER_EVENTS} with S2 = 0 from a stream attached to a nested domain with an event
   * path (a vIOMMU) goes to that path; true when it was taken there (not logged).
   */
  #forwardToVmaster(raw: Uint8Array): boolean {
    const e = decodeSmmuEvent(raw);
    if (e.stall || e.s2 || !SMMU_VMASTER_EVENTS.has(e.id)) return false;
    const d = this.#o.streams.get(e.sid);
    return d instanceof SmmuV3NestedDomain && d.eventReporter !== undefined && d.eventReporter(raw);
  }
}

/** Event of each walk outcome. */
const WALK_FAULT_EVENT: Readonly<Record<LpaeFaultKind | "permission", number>> = {
  translation: SMMU_EVT.F_TRANSLATION,
  access: SMMU_EVT.F_ACCESS,
  "address-size": SMMU_EVT.F_ADDR_SIZE,
  "external-abort": SMMU_EVT.F_WALK_EABT,
  permission: SMMU_EVT.F_PERMISSION,
};
