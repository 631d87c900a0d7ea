/**
 * The VT-d unit's fault path (vtd.ts): a refused request becomes a fault record in the
 * fault-recording registers ({@link VtdFaultUnit}) and in the unit's `faults`, with the DMAR line
 * Linux logs when its `dmar_fault` handler drains them; a request in the interrupt window gets
 * the interrupt-remapping fault; a recoverable stage-1 fault of a fault-capable nested domain goes
 * to its page-request handler; a PASID entry torn down with FPD set blocks without a record.
 *
 * @module
 */

import type { VirtualClock } from "../../clock.ts";
import type { DmaAccess, IommuFault, PageRequestHandler, TranslateResult } from "../model.ts";
import {
  decodeVtdFaultRecord,
  encodeVtdFaultRecord,
  formatSourceId,
  VTD_FR,
  VTD_FRR_IR_INDEX_SHIFT,
  vtdFaultMessage,
  vtdFaultReasonName,
  type VtdFaultRecord,
  type VtdFaultUnit,
} from "./vtd_fault.ts";
import { VTD_FSTS } from "./vtd_regs.ts";

/** Interrupt-request address bit 4: remappable format (VT-d §5.1.2.2). */
const MSI_ADDR_REMAPPABLE = 1n << 4n;
/** Interrupt-request address bit 2: handle bit 15; bits 19:5: handle 14:0 (VT-d §5.1.2.2). */
const MSI_ADDR_HANDLE_HI = 1n << 2n;
const MSI_ADDR_HANDLE_SHIFT = 5n;
const MSI_ADDR_HANDLE_MASK = 0x7fffn;
const MSI_HANDLE_HI_BIT = 15n;
/** An interrupt request is one aligned DWORD write. */
const MSI_REQUEST_BYTES = 4;

/** What the fault path needs of its unit. */
export interface VtdFaultLogOptions {
  /** The machine's clock (fault timestamps). */
  readonly clock: VirtualClock;
  /** The fault-recording registers. */
  readonly faultUnit: VtdFaultUnit;
  /** Drain the fault registers as soon as a fault is recorded, as Linux's handler does. */
  readonly hostDrains: boolean;
  /** Host kernel log sink: the DMAR lines Linux prints when it drains faults. */
  readonly kernelLog?: (line: string) => void;
  /** Interrupt remapping is on (ECAP.IR). */
  readonly intremap: boolean;
  /** Append a line to the machine trace. */
  readonly traceLine: (line: string) => void;
}

/** The unit's fault records; see the module doc. */
export class VtdFaultLog {
  readonly #o: VtdFaultLogOptions;
  readonly #faults: IommuFault[] = [];

  /** The fault path of the unit described by `o`. */
  constructor(o: VtdFaultLogOptions) {
    this.#o = o;
  }

  /** Every fault recorded so far, oldest first (beyond the hardware's NFR registers). */
  get faults(): readonly IommuFault[] {
    return this.#faults;
  }

  /** Record a fault: the fault-recording registers, then the log; the host drains if it does. */
  fault(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    reason: number,
    fi?: bigint,
    stage?: 1 | 2,
  ): TranslateResult {
    const made = this.#faultObject(requester, pasid, iova, access, reason, fi);
    const fault = stage === undefined ? made : { ...made, stage };
    this.#o.faultUnit.record(faultRecord(requester, pasid, iova, access, reason, fi));
    const result = this.#log(fault);
    if (this.#o.hostDrains) this.drain();
    return result;
  }

  /** A fault with FPD set in the entry: the request is blocked, nothing is recorded or logged. */
  unreported(
    requester: number,
    pasid: number,
    iova: bigint,
    access: DmaAccess,
    reason: number,
  ): TranslateResult {
    const made = this.#faultObject(requester, pasid, iova, access, reason, undefined);
    const fault = { ...made, message: `${made.message} (not reported: FPD set)` };
    this.#o.traceLine(`vtd blocked ${fault.message}`);
    return { ok: false, fault };
  }

  /**
   * A recoverable stage-1 fault on a fault-capable nested domain becomes a page request for its
   * owner instead of a fault record (the transfer still fails; the device retries after the
   * response). Logged in {@link faults} with format "vtd-page-request".
   */
  pageRequest(
    handler: PageRequestHandler,
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    reason: number,
  ): TranslateResult {
    handler({ requester, pasid, address: iova, access });
    const made = this.#faultObject(requester, pasid, iova, access, reason, undefined);
    const fault: IommuFault = {
      ...made,
      format: "vtd-page-request",
      stage: 1,
      message: `DMAR: page request from [${formatSourceId(requester)}] ` +
        `${pasid === undefined ? "NO_PASID" : `PASID 0x${pasid.toString(16)}`} ` +
        `${access} addr 0x${iova.toString(16)} (${vtdFaultReasonName(reason)}): to the fault queue`,
    };
    return this.#log(fault);
  }

  /**
   * A DMA into the interrupt window: refused, with the fault interrupt remapping records (see
   * `VtdIommu.translate`), or logged only without interrupt remapping.
   */
  interruptWindow(
    requester: number,
    iova: bigint,
    access: DmaAccess,
    length: number,
  ): TranslateResult {
    if (!this.#o.intremap) {
      const fault = this.#faultObject(requester, undefined, iova, access, 0, undefined);
      const message = `DMAR: DMA ${access} of ${length} bytes to the interrupt window at ` +
        `0x${iova.toString(16)} from [${formatSourceId(requester)}]: an interrupt request, not ` +
        `memory (no interrupt remapping); refused by the simulator`;
      return this.#log({ ...fault, message });
    }
    let reason: number = VTD_FR.IR_REQ_RSVD;
    let index = 0n;
    if (
      access === "write" && length === MSI_REQUEST_BYTES && iova % BigInt(MSI_REQUEST_BYTES) === 0n
    ) {
      if ((iova & MSI_ADDR_REMAPPABLE) === 0n) {
        reason = VTD_FR.IR_REQ_COMPAT;
      } else {
        reason = VTD_FR.IR_ENTRY_P;
        index = ((iova >> MSI_ADDR_HANDLE_SHIFT) & MSI_ADDR_HANDLE_MASK) |
          ((iova & MSI_ADDR_HANDLE_HI) !== 0n ? 1n << MSI_HANDLE_HI_BIT : 0n);
      }
    }
    return this.fault(requester, undefined, iova, access, reason, index << VTD_FRR_IR_INDEX_SHIFT);
  }

  /**
   * Drain the fault registers as Linux's `dmar_fault` handler does; each record is written to the
   * kernel log as Linux prints it. Returns the lines.
   */
  drain(): string[] {
    const fsts = this.#o.faultUnit.fsts;
    if ((fsts & (VTD_FSTS.PPF | VTD_FSTS.PFO)) === 0) return [];
    const lines = [`DMAR: DRHD: handling fault status reg ${fsts.toString(16)}`];
    for (const r of this.#o.faultUnit.drain()) lines.push(vtdFaultMessage(r));
    for (const line of lines) this.#o.kernelLog?.(line);
    return lines;
  }

  #faultObject(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    reason: number,
    fi: bigint | undefined,
  ): IommuFault {
    const raw = encodeVtdFaultRecord(faultRecord(requester, pasid, iova, access, reason, fi));
    return {
      format: "vtd-frr",
      requester,
      pasid,
      address: iova,
      access,
      reason,
      reasonName: vtdFaultReasonName(reason),
      raw,
      message: vtdFaultMessage(decodeVtdFaultRecord(raw)),
      timeNs: this.#o.clock.nowNs,
    };
  }

  #log(fault: IommuFault): TranslateResult {
    this.#faults.push(fault);
    this.#o.traceLine(`vtd fault ${fault.message}`);
    return { ok: false, fault };
  }
}

/** What the fault-recording register holds for one fault (VT-d §11.4.11). */
function faultRecord(
  requester: number,
  pasid: number | undefined,
  iova: bigint,
  access: DmaAccess,
  reason: number,
  fi: bigint | undefined,
): VtdFaultRecord {
  return {
    fi: fi ?? iova,
    sid: requester,
    pp: pasid !== undefined,
    pv: pasid ?? 0,
    fr: reason,
    read: access === "read",
    valid: true,
  };
}
