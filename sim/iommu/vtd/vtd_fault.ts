/**
 * VT-d primary fault logging: the 128-bit Fault Recording Register (FRR) format, Linux's fault
 * reason strings and DMAR log line, and the fault unit (NFR recording registers + FSTS) that the
 * hardware fills and the host driver drains.
 *
 * FRR layout (VT-d §11.4.11, as decoded by Linux `dmar.c:dmar_fault`; iommu-models.md §1.4):
 * FI 63:12 (faulting page; for interrupt-remapping faults the interrupt index is in 63:48),
 * SID 79:64, PP 95, FR 103:96, PV 123:104, T 126 (1 = read), F 127 (valid, write 1 to clear).
 *
 * @module
 */

import { VTD_FRR_BYTES, VTD_FSTS } from "./vtd_regs.ts";

/** Fault reasons the model emits (VT-d Appendix A), named as Linux names them. */
export const VTD_FR = {
  /** Present bit in context entry is clear: the device is not attached (legacy mode). */
  CONTEXT_ENTRY_P: 0x02,
  /** Access beyond MGAW: the IOVA is above the aperture. */
  ADDR_BEYOND_MGAW: 0x04,
  /** PTE write access is not set: write to an unmapped or read-only IOVA. */
  PTE_WRITE: 0x05,
  /** PTE read access is not set: read from an unmapped or write-only IOVA. */
  PTE_READ: 0x06,
  /** Malformed interrupt request (reserved fields set). */
  IR_REQ_RSVD: 0x20,
  /** Interrupt-remapping table entry not present. */
  IR_ENTRY_P: 0x22,
  /** Compatibility-format interrupt request blocked. */
  IR_REQ_COMPAT: 0x25,
  /** A request with PASID while the root table is in legacy mode (RTADDR.TTM = 0). */
  SM_TTM0_PASID: 0x31,
  /** Scalable mode: the PASID is wider than the context entry allows. */
  SM_PASID_TOO_LARGE: 0x46,
  /** Scalable mode: no PASID-table entry for the request's PASID (or RID_PASID). */
  SM_PASID_ENTRY_P: 0x59,
} as const;

/** Linux `dma_remap_fault_reasons[]` (drivers/iommu/intel/dmar.c), indexed by reason 0x00–0x0d. */
const DMA_REMAP_FAULT_REASONS: readonly string[] = [
  "Software",
  "Present bit in root entry is clear",
  "Present bit in context entry is clear",
  "Invalid context entry",
  "Access beyond MGAW",
  "PTE Write access is not set",
  "PTE Read access is not set",
  "Next page table ptr is invalid",
  "Root table address invalid",
  "Context table ptr is invalid",
  "non-zero reserved fields in RTP",
  "non-zero reserved fields in CTP",
  "non-zero reserved fields in PTE",
  "PCE for translation request specifies blocking",
];

/** Linux `irq_remap_fault_reasons[]`, indexed by reason − 0x20. */
const IRQ_REMAP_FAULT_REASONS: readonly string[] = [
  "Detected reserved fields in the decoded interrupt-remapped request",
  "Interrupt index exceeded the interrupt-remapping table size",
  "Present field in the IRTE entry is clear",
  "Error accessing interrupt-remapping table pointed by IRTA_REG",
  "Detected reserved fields in the IRTE entry",
  "Blocked a compatibility format interrupt request",
  "Blocked an interrupt request due to source-id verification failure",
];

/** First interrupt-remapping fault reason. */
const IRQ_REMAP_FIRST = 0x20;
/** First scalable-mode fault reason. */
const SM_FIRST = 0x30;
/** The scalable-mode reasons the model emits (Linux `dma_remap_sm_fault_reasons[]`). */
const SM_FAULT_REASONS: ReadonlyMap<number, string> = new Map([
  [0x30, "SM: Invalid Root Table Address"],
  [0x31, "SM: TTM 0 for request with PASID"],
  [0x32, "SM: TTM 0 for page group request"],
  [0x46, "SM: PASID is larger than the max in Context Entry"],
  [0x59, "SM: Present bit in PASID Table Entry is clear"],
  [0x71, "SM: Present bit in first-level paging entry is clear"],
  [0x76, "SM: Read permission error in first-level paging entry in Nested translation"],
  [0x77, "SM: Write permission error in first-level paging entry in Nested translation"],
  [0x79, "SM: Read/Write permission error in second-level paging entry"],
  [0x80, "SM: Address in first-level translation is not canonical"],
  [0x81, "SM: U/S set 0 for first-level translation with user privilege"],
  [0x85, "SM: No write permission for Write/AtomicOp request"],
]);

/** Whether a reason code is an interrupt-remapping fault (Linux prints it as `[INTR-REMAP]`). */
export function isInterruptRemapReason(reason: number): boolean {
  return reason >= IRQ_REMAP_FIRST && reason < IRQ_REMAP_FIRST + IRQ_REMAP_FAULT_REASONS.length;
}

/** Linux's text for a fault reason (`dmar_get_fault_reason`), "Unknown" for others. */
export function vtdFaultReasonName(reason: number): string {
  if (isInterruptRemapReason(reason)) return IRQ_REMAP_FAULT_REASONS[reason - IRQ_REMAP_FIRST];
  if (reason >= SM_FIRST) return SM_FAULT_REASONS.get(reason) ?? "Unknown";
  return DMA_REMAP_FAULT_REASONS[reason] ?? "Unknown";
}

/** One decoded fault-recording register. */
export interface VtdFaultRecord {
  /** FI: faulting page address (bits 63:12), or the interrupt index << 48 for IR faults. */
  readonly fi: bigint;
  /** SID: source id, bus << 8 | devfn. */
  readonly sid: number;
  /** PP: the request carried a PASID. */
  readonly pp: boolean;
  /** FR: fault reason. */
  readonly fr: number;
  /** PV: PASID value (meaningful when PP). */
  readonly pv: number;
  /** T: true for a read request, false for a write. */
  readonly read: boolean;
  /** F: the record is valid (pending). */
  readonly valid: boolean;
}

/** Bit positions in the 128-bit FRR (VT-d §11.4.11). */
const FRR = {
  FI_MASK: ~0xfffn & 0xffff_ffff_ffff_ffffn,
  SID_BYTE: 8,
  PP_BIT: 31, // of the dword at byte 8
  FR_BYTE: 12,
  PV_SHIFT: 8, // in the dword at byte 12
  PV_MASK: 0xfffff,
  T_BIT: 30, // of the dword at byte 12
  F_BIT: 31, // of the dword at byte 12
} as const;

/** Encode a fault record as the 16 little-endian bytes of a fault-recording register. */
export function encodeVtdFaultRecord(r: VtdFaultRecord): Uint8Array {
  const raw = new Uint8Array(VTD_FRR_BYTES);
  const v = new DataView(raw.buffer);
  v.setBigUint64(0, r.fi & FRR.FI_MASK, true);
  v.setUint32(FRR.SID_BYTE, ((r.sid & 0xffff) | ((r.pp ? 1 : 0) << FRR.PP_BIT)) >>> 0, true);
  const hi = (r.fr & 0xff) | ((r.pv & FRR.PV_MASK) << FRR.PV_SHIFT) |
    ((r.read ? 1 : 0) << FRR.T_BIT) | ((r.valid ? 1 : 0) << FRR.F_BIT);
  v.setUint32(FRR.FR_BYTE, hi >>> 0, true);
  return raw;
}

/** Decode the 16 bytes of a fault-recording register (as `dmar_fault` does). */
export function decodeVtdFaultRecord(raw: Uint8Array): VtdFaultRecord {
  const v = new DataView(raw.buffer, raw.byteOffset, VTD_FRR_BYTES);
  const lo = v.getBigUint64(0, true);
  const sidWord = v.getUint32(FRR.SID_BYTE, true);
  const hi = v.getUint32(FRR.FR_BYTE, true);
  return {
    fi: lo & FRR.FI_MASK,
    sid: sidWord & 0xffff,
    pp: ((sidWord >>> FRR.PP_BIT) & 1) === 1,
    fr: hi & 0xff,
    pv: (hi >>> FRR.PV_SHIFT) & FRR.PV_MASK,
    read: ((hi >>> FRR.T_BIT) & 1) === 1,
    valid: ((hi >>> FRR.F_BIT) & 1) === 1,
  };
}

/** Shift of the interrupt index inside FI for interrupt-remapping faults. */
export const VTD_FRR_IR_INDEX_SHIFT = 48n;

/** "bb:dd.f" of a source id, as Linux prints it (`%02x:%02x.%d`). */
export function formatSourceId(sid: number): string {
  const bus = (sid >> 8) & 0xff;
  const slot = (sid >> 3) & 0x1f;
  const fn = sid & 0x7;
  return `${hex2(bus)}:${hex2(slot)}.${fn}`;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

/**
 * Linux's log line for a fault record (`dmar_fault_do_one`, with the `DMAR: ` prefix), e.g.
 * `DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0x800000 [fault reason 0x05]
 * PTE Write access is not set`.
 */
export function vtdFaultMessage(r: VtdFaultRecord): string {
  const reason = `[fault reason 0x${hex2(r.fr)}] ${vtdFaultReasonName(r.fr)}`;
  const dev = `Request device [${formatSourceId(r.sid)}]`;
  if (isInterruptRemapReason(r.fr)) {
    const index = r.fi >> VTD_FRR_IR_INDEX_SHIFT;
    return `DMAR: [INTR-REMAP] ${dev} fault index 0x${index.toString(16)} ${reason}`;
  }
  const kind = r.read ? "DMA Read" : "DMA Write";
  const pasid = r.pp ? `PASID 0x${r.pv.toString(16)}` : "NO_PASID";
  return `DMAR: [${kind} ${pasid}] ${dev} fault addr 0x${r.fi.toString(16)} ${reason}`;
}

/**
 * The primary fault log of one remapping unit: `count` fault-recording registers used round-robin
 * from the fault record index, and FSTS. A fault arriving while the register at the index still
 * holds a valid record is dropped and sets PFO (primary fault overflow), as the hardware does.
 */
export class VtdFaultUnit {
  readonly #frr: Uint8Array[];
  #index = 0;
  #overflow = false;

  /** A unit with `count` (CAP.NFR + 1) fault-recording registers. */
  constructor(readonly count: number) {
    this.#frr = Array.from({ length: count }, () => new Uint8Array(VTD_FRR_BYTES));
  }

  /** Record a fault; false when it was dropped (overflow). */
  record(r: VtdFaultRecord): boolean {
    const slot = this.#frr[this.#index];
    if (decodeVtdFaultRecord(slot).valid) {
      this.#overflow = true;
      return false;
    }
    slot.set(encodeVtdFaultRecord({ ...r, valid: true }));
    this.#index = (this.#index + 1) % this.count;
    return true;
  }

  /** FSTS: PFO, PPF (any valid record) and FRI. */
  get fsts(): number {
    const ppf = this.#frr.some((b) => decodeVtdFaultRecord(b).valid);
    return (this.#overflow ? VTD_FSTS.PFO : 0) | (ppf ? VTD_FSTS.PPF : 0) |
      ((this.#index & VTD_FSTS.FRI_MASK) << VTD_FSTS.FRI_SHIFT);
  }

  /** Write FSTS: PFO is RW1C, everything else read-only. */
  writeFsts(value: number): void {
    if (value & VTD_FSTS.PFO) this.#overflow = false;
  }

  /** A copy of fault-recording register `i` (16 bytes). */
  register(i: number): Uint8Array {
    return this.#frr[i].slice();
  }

  /** Write the upper dword of register `i`: F (bit 31) is RW1C, everything else read-only. */
  writeRegisterHigh(i: number, value: number): void {
    if ((value >>> FRR.F_BIT) & 1) this.#frr[i].fill(0);
  }

  /**
   * What Linux's `dmar_fault` handler does: walk the registers from the fault record index while
   * records are valid, clear each (write 1 to F), then clear PFO. Returns the records drained.
   */
  drain(): VtdFaultRecord[] {
    const out: VtdFaultRecord[] = [];
    // The oldest pending record sits at the index when the log wrapped, else at index 0 … index-1.
    for (let n = 0, i = this.#firstPending(); n < this.count; n++, i = (i + 1) % this.count) {
      const r = decodeVtdFaultRecord(this.#frr[i]);
      if (!r.valid) break;
      out.push(r);
      this.#frr[i].fill(0);
    }
    this.#overflow = false;
    return out;
  }

  #firstPending(): number {
    for (let n = 0; n < this.count; n++) {
      const i = (this.#index + n) % this.count;
      if (decodeVtdFaultRecord(this.#frr[i]).valid) return i;
    }
    return this.#index;
  }
}
