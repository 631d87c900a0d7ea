/**
 * SMMUv3 event records and the event queue (SMMUv3 §7.2 queue, §7.3 event records; Linux
 * arm-smmu-v3.h `EVTQ_*`; iommu-models.md §2.5).
 *
 * A record is 32 bytes, four little-endian dwords: dword 0 event id 7:0, SSV 11, SSID 31:12,
 * StreamID 63:32; dword 1 STAG 15:0, Stall 31, PnU 33, InD 34, RnW 35 (1 = read), S2 39,
 * CLASS 41:40; dword 2 the input address; dword 3 the IPA (bits 51:12) of a stage-2 fault, or the
 * fetch address of an F_STE_FETCH / F_CD_FETCH / F_WALK_EABT.
 *
 * Linux 6.12 logs every event it does not handle (all of them, without stall) as
 * `event 0x%02x received:` followed by the four dwords as `\t0x%016llx`, each a line of the
 * device's log, e.g. `arm-smmu-v3 9050000.smmuv3: event 0x10 received:` — the line the VM bench
 * saw for a DMA to an unmapped IOVA.
 *
 * @module
 */

import type { PhysicalChunk, PhysicalMemory } from "../../memory.ts";
import { SMMU_Q_OVF as OVERFLOW_FLAG } from "./smmuv3_regs.ts";
import { getField, type RegField, setField } from "../reg_fields.ts";

/** Event ids the model records, named as the specification names them (§7.3). */
export const SMMU_EVT = {
  /** StreamID out of range, or its level-2 table is missing. */
  C_BAD_STREAMID: 0x02,
  /** External abort fetching an STE. */
  F_STE_FETCH: 0x03,
  /** STE.V = 0, or an STE configuration the SMMU does not support. */
  C_BAD_STE: 0x04,
  /** Transaction without SubstreamID while STE.S1DSS = terminate. */
  F_STREAM_DISABLED: 0x06,
  /** SubstreamID beyond STE.S1CDMax (or any SubstreamID when S1CDMax = 0). */
  C_BAD_SUBSTREAMID: 0x08,
  /** External abort fetching a CD. */
  F_CD_FETCH: 0x09,
  /** CD.V = 0 or an illegal CD. */
  C_BAD_CD: 0x0a,
  /** External abort during a table walk. */
  F_WALK_EABT: 0x0b,
  /** No valid descriptor, or input address outside the table's range. */
  F_TRANSLATION: 0x10,
  /** Output (or bypassed input) address beyond the address size. */
  F_ADDR_SIZE: 0x11,
  /** Access flag clear (no HTTU). */
  F_ACCESS: 0x12,
  /** Permission fault: a write to read-only, an access without permission. */
  F_PERMISSION: 0x13,
} as const;

/** Names of {@link SMMU_EVT} ids. */
const EVT_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(SMMU_EVT).map(([name, id]) => [id, name]),
);

/** The specification's name of an event id ("F_TRANSLATION"), or "UNKNOWN". */
export function smmuEventName(id: number): string {
  return EVT_NAMES.get(id) ?? "UNKNOWN";
}

/** CLASS of a translation-related fault (§7.3.12): CD fetch, table-descriptor fetch, input. */
export const SMMU_EVT_CLASS = { CD: 0, TT: 1, IN: 2 } as const;

/** Bytes of one event record. */
export const SMMU_EVT_BYTES = 32;
/** Dwords of one event record. */
const EVT_DWORDS = 4;
/** Bytes of one (64-bit) dword. */
const DWORD_BYTES = 8;

function f(shift: number, width = 1): RegField {
  return { shift, width };
}

/** Record fields (Linux `EVTQ_0_*`, `EVTQ_1_*`). */
const EVTQ = {
  ID: f(0, 8),
  SSV: f(11),
  SSID: f(12, 20),
  SID: f(32, 32),
  STAG: f(0, 16),
  STALL: f(31),
  PNU: f(33),
  IND: f(34),
  RNW: f(35),
  S2: f(39),
  CLASS: f(40, 2),
} as const;

/** Address bits 51:12 of dword 3 (IPA). */
const IPA_MASK = ((1n << 52n) - 1n) & ~0xfffn;

/** One event, decoded. */
export interface SmmuEvent {
  /** Event id ({@link SMMU_EVT}). */
  readonly id: number;
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID valid. */
  readonly ssv: boolean;
  /** SubstreamID (PASID). */
  readonly ssid: number;
  /** Stall tag (0: stalls are not supported). */
  readonly stag: number;
  /** Stalled (never: STALL_MODEL = no stall). */
  readonly stall: boolean;
  /** Privileged (0: device accesses are unprivileged). */
  readonly pnu: boolean;
  /** Instruction (0: data). */
  readonly ind: boolean;
  /** Read (true) or write (false). */
  readonly rnw: boolean;
  /** Stage-2 fault. */
  readonly s2: boolean;
  /** Fault class ({@link SMMU_EVT_CLASS}). */
  readonly class: number;
  /** The transaction's input address. */
  readonly inputAddr: bigint;
  /** Dword 3: IPA of a stage-2 fault, or a fetch address. */
  readonly addr2: bigint;
}

/** An event with every optional field zero. */
export function smmuEvent(
  id: number,
  sid: number,
  fields: Partial<Omit<SmmuEvent, "id" | "sid">> = {},
): SmmuEvent {
  return {
    id,
    sid,
    ssv: false,
    ssid: 0,
    stag: 0,
    stall: false,
    pnu: false,
    ind: false,
    rnw: false,
    s2: false,
    class: 0,
    inputAddr: 0n,
    addr2: 0n,
    ...fields,
  };
}

/** Encode an event as its 32-byte record. */
export function encodeSmmuEvent(e: SmmuEvent): Uint8Array {
  let d0 = setField(0n, EVTQ.ID, e.id);
  d0 = setField(d0, EVTQ.SSV, e.ssv ? 1 : 0);
  d0 = setField(d0, EVTQ.SSID, e.ssid);
  d0 = setField(d0, EVTQ.SID, e.sid);
  let d1 = setField(0n, EVTQ.STAG, e.stag);
  d1 = setField(d1, EVTQ.STALL, e.stall ? 1 : 0);
  d1 = setField(d1, EVTQ.PNU, e.pnu ? 1 : 0);
  d1 = setField(d1, EVTQ.IND, e.ind ? 1 : 0);
  d1 = setField(d1, EVTQ.RNW, e.rnw ? 1 : 0);
  d1 = setField(d1, EVTQ.S2, e.s2 ? 1 : 0);
  d1 = setField(d1, EVTQ.CLASS, e.class);
  const raw = new Uint8Array(SMMU_EVT_BYTES);
  const v = new DataView(raw.buffer);
  const d3 = e.id === SMMU_EVT.F_STE_FETCH || e.id === SMMU_EVT.F_CD_FETCH ||
      e.id === SMMU_EVT.F_WALK_EABT
    ? e.addr2
    : e.addr2 & IPA_MASK;
  [d0, d1, e.inputAddr, d3].forEach((d, i) =>
    v.setBigUint64(i * DWORD_BYTES, BigInt.asUintN(64, d), true)
  );
  return raw;
}

/** The four dwords of a record. */
export function smmuEventDwords(raw: Uint8Array): bigint[] {
  const v = new DataView(raw.buffer, raw.byteOffset, SMMU_EVT_BYTES);
  return Array.from({ length: EVT_DWORDS }, (_, i) => v.getBigUint64(i * DWORD_BYTES, true));
}

/** Decode a 32-byte record. */
export function decodeSmmuEvent(raw: Uint8Array): SmmuEvent {
  const [d0, d1, d2, d3] = smmuEventDwords(raw);
  return {
    id: getField(d0, EVTQ.ID),
    sid: getField(d0, EVTQ.SID),
    ssv: getField(d0, EVTQ.SSV) === 1,
    ssid: getField(d0, EVTQ.SSID),
    stag: getField(d1, EVTQ.STAG),
    stall: getField(d1, EVTQ.STALL) === 1,
    pnu: getField(d1, EVTQ.PNU) === 1,
    ind: getField(d1, EVTQ.IND) === 1,
    rnw: getField(d1, EVTQ.RNW) === 1,
    s2: getField(d1, EVTQ.S2) === 1,
    class: getField(d1, EVTQ.CLASS),
    inputAddr: d2,
    addr2: d3,
  };
}

/** `0x%016llx`. */
function hex16(v: bigint): string {
  return `0x${v.toString(16).padStart(16, "0")}`;
}

/**
 * The lines Linux 6.12's `arm_smmu_evtq_thread` prints for a record, each with the device prefix
 * (`dev_info(smmu->dev, …)`), e.g. `arm-smmu-v3 9050000.smmuv3: event 0x10 received:`.
 */
export function smmuEventLogLines(device: string, raw: Uint8Array): string[] {
  const dw = smmuEventDwords(raw);
  const id = Number(dw[0] & 0xffn);
  return [
    `arm-smmu-v3 ${device}: event 0x${id.toString(16).padStart(2, "0")} received:`,
    ...dw.map((d) => `arm-smmu-v3 ${device}: \t${hex16(d)}`),
  ];
}

/** The same as one line: the first line followed by the four dwords. */
export function smmuEventMessage(device: string, raw: Uint8Array): string {
  const dw = smmuEventDwords(raw);
  const id = Number(dw[0] & 0xffn);
  return `arm-smmu-v3 ${device}: event 0x${id.toString(16).padStart(2, "0")} received: ` +
    dw.map(hex16).join(" ");
}

/**
 * The event queue in physical memory (§7.2, §3.5): 2^log2size records; PROD and CONS hold an
 * index, a wrap bit at bit `log2size` and an overflow flag at bit 31. The SMMU writes at PROD; a
 * record that finds the queue full is lost and PROD.OVFLG toggles. The host (Linux's event
 * thread) reads from CONS and moves CONS up to PROD.
 */
export class SmmuEventQueue {
  readonly #memory: PhysicalMemory;
  readonly #chunk: PhysicalChunk;
  #prod = 0;
  #cons = 0;

  /** A queue of 2^`log2size` records; throws when physical memory cannot hold it. */
  constructor(memory: PhysicalMemory, readonly log2size: number) {
    this.#memory = memory;
    const bytes = SMMU_EVT_BYTES * 2 ** log2size;
    const chunk = memory.allocate(bytes, Math.max(bytes, 4096));
    if (chunk === undefined) throw new RangeError("SMMUv3: no physical memory for the event queue");
    this.#chunk = chunk;
  }

  /** Base address of the queue (SMMU_EVENTQ_BASE.ADDR). */
  get base(): bigint {
    return BigInt(this.#chunk.base);
  }

  /** SMMU_EVENTQ_PROD. */
  get prod(): number {
    return this.#prod >>> 0;
  }

  /** SMMU_EVENTQ_CONS. */
  get cons(): number {
    return this.#cons >>> 0;
  }

  /** Records waiting for the host. */
  get pending(): number {
    const n = 2 ** this.log2size;
    const wrapMask = 2 * n - 1;
    return ((this.#prod & wrapMask) - (this.#cons & wrapMask) + 2 * n) % (2 * n);
  }

  /** SMMU side: append a record; false (and PROD.OVFLG toggled) when the queue is full. */
  write(raw: Uint8Array): boolean {
    const n = 2 ** this.log2size;
    if (this.pending === n) {
      this.#prod ^= OVERFLOW_FLAG;
      return false;
    }
    const index = this.#prod & (n - 1);
    this.#memory.write(this.#chunk.base + index * SMMU_EVT_BYTES, raw);
    this.#prod = (this.#prod & OVERFLOW_FLAG) | ((this.#prod + 1) & (2 * n - 1));
    return true;
  }

  /** Host side: read every pending record and consume it (acknowledging an overflow). */
  drain(): Uint8Array[] {
    const n = 2 ** this.log2size;
    const out: Uint8Array[] = [];
    while (this.pending > 0) {
      const index = this.#cons & (n - 1);
      const raw = new Uint8Array(SMMU_EVT_BYTES);
      this.#memory.read(this.#chunk.base + index * SMMU_EVT_BYTES, raw);
      out.push(raw);
      this.#cons = (this.#cons & OVERFLOW_FLAG) | ((this.#cons + 1) & (2 * n - 1));
    }
    this.#cons = (this.#cons & ~OVERFLOW_FLAG) | (this.#prod & OVERFLOW_FLAG);
    return out;
  }
}
