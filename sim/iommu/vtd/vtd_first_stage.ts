/**
 * VT-d first-stage translation for nested domains (VT-d §3.6, §9.7): the user owns x86 4- or
 * 5-level page tables at guest-physical addresses (GPAs), and every access the walk makes — each
 * paging-entry read, each accessed/dirty update, the final data access — is a GPA that goes
 * through the kernel-owned second stage first.
 *
 * First-stage entry format (x86 paging): bit 0 P, bit 1 R/W, bit 2 U/S, bit 5 A, bit 6 D, bit 7
 * PS (1 GiB in a PDPE, 2 MiB in a PDE), bits 51:12 the address, bit 63 XD. Rules applied:
 * - DMA requests are user-level (no privileged PASID requests are modelled): U/S must be set at
 *   every level, else fault 0x81;
 * - a not-present entry at any level faults 0x71; a write through any entry with R/W clear
 *   faults 0x85 (write permission is the AND over the levels);
 * - the address must be canonical for the paging mode (48 or 57 bits), else fault 0x80;
 * - the walk sets A in every entry it uses and D in the leaf on a write, as hardware does; a
 *   paging-entry GPA without second-stage read permission faults 0x76, one that needs an A/D
 *   update without second-stage write permission faults 0x77;
 * - the output GPA without second-stage permission for the access faults 0x79.
 * Reason codes and texts are Linux's `dma_remap_sm_fault_reasons[]` (drivers/iommu/intel/dmar.c).
 * The walk is the shared one (../pgtable.ts) with the x86 entry format as data
 * ({@link FS_FORMAT}) and these rules in its hooks.
 *
 * @module
 */

import type { DmaAccess } from "../model.ts";
import type { PhysicalMemory } from "../../memory.ts";
import { type RadixFormat, walkRadix } from "../pgtable.ts";

/** First-stage entry bits. */
export const FS_PTE = {
  P: 1n << 0n,
  RW: 1n << 1n,
  US: 1n << 2n,
  A: 1n << 5n,
  D: 1n << 6n,
  PS: 1n << 7n,
  XD: 1n << 63n,
} as const;
/** Address bits 51:12 of a first-stage entry. */
export const FS_ADDR_MASK = ((1n << 52n) - 1n) & ~0xfffn;

/** Scalable-mode fault reasons of the nested walk (VT-d Appendix A). */
export const VTD_SM_FR = {
  /** Present bit in first-level paging entry is clear. */
  FL_NOT_PRESENT: 0x71,
  /** Read permission error in first-level paging entry in nested translation (S2 read). */
  FL_ENTRY_S2_READ: 0x76,
  /** Write permission error in first-level paging entry in nested translation (S2 write). */
  FL_ENTRY_S2_WRITE: 0x77,
  /** Read/write permission error in second-level paging entry (the output GPA). */
  SL_PERMISSION: 0x79,
  /** Address in first-level translation is not canonical. */
  NON_CANONICAL: 0x80,
  /** U/S set 0 for first-level translation with user privilege. */
  FL_US_CLEAR: 0x81,
  /** No write permission for Write/AtomicOp request. */
  NO_WRITE: 0x85,
} as const;

/** Which stage a nested fault belongs to, by reason. */
export function nestedFaultStage(reason: number): 1 | 2 {
  return reason === VTD_SM_FR.FL_ENTRY_S2_READ || reason === VTD_SM_FR.FL_ENTRY_S2_WRITE ||
      reason === VTD_SM_FR.SL_PERMISSION
    ? 2
    : 1;
}

/** Second-stage translation of a GPA: the host address, or undefined (no permission). */
export type SecondStage = (gpa: bigint, write: boolean) => bigint | undefined;

/** A successful first-stage walk. */
export interface FirstStageHit {
  readonly ok: true;
  /** The output GPA of the accessed byte. */
  readonly gpa: bigint;
  /** First IOVA of the leaf page and its size. */
  readonly pageIova: bigint;
  /** Leaf page size (4 KiB, 2 MiB or 1 GiB). */
  readonly pageSize: bigint;
  /** Write permission over all levels. */
  readonly writable: boolean;
}

/** The result of a first-stage walk. */
export type FirstStageWalk = FirstStageHit | { readonly ok: false; readonly reason: number };

/** The x86 paging entry format (4 KiB granule, 9 bits a level), for the shared walker. */
export const FS_FORMAT: RadixFormat = {
  name: "VT-d first stage",
  pageShift: 12,
  levelStride: 9,
  entryBytes: 8,
  addrMask: FS_ADDR_MASK,
  present: (pte) => (pte & FS_PTE.P) !== 0n,
  // PS makes a PDPE (level 3) a 1 GiB page and a PDE (level 2) a 2 MiB page; it is ignored above.
  isTable: (pte, level) => !((level === 2 || level === 3) && (pte & FS_PTE.PS) !== 0n),
};

/**
 * Walk the first-stage tables rooted at GPA `root` (`levels` 4 or 5) for `iova`. With
 * `sideEffects`, A/D bits are set as hardware sets them; without, the walk only reads.
 */
export function walkFirstStage(
  memory: PhysicalMemory,
  root: bigint,
  levels: 4 | 5,
  iova: bigint,
  access: DmaAccess,
  s2: SecondStage,
  sideEffects: boolean,
): FirstStageWalk {
  const width = BigInt(FS_FORMAT.pageShift + FS_FORMAT.levelStride * levels);
  const top = iova >> (width - 1n);
  if (top !== 0n && top !== (1n << (64n - width + 1n)) - 1n) {
    return { ok: false, reason: VTD_SM_FR.NON_CANONICAL };
  }
  let writable = true;
  const w = walkRadix<number>(memory, FS_FORMAT, root & FS_ADDR_MASK, levels, iova, {
    fetch: (gpa) => s2(gpa, false) ?? VTD_SM_FR.FL_ENTRY_S2_READ,
    check(pte, _level, leaf, _next, gpa) {
      if ((pte & FS_PTE.US) === 0n) return VTD_SM_FR.FL_US_CLEAR;
      writable &&= (pte & FS_PTE.RW) !== 0n;
      if (leaf && access === "write" && !writable) return VTD_SM_FR.NO_WRITE;
      if (!sideEffects) return undefined;
      const want = pte | FS_PTE.A | (leaf && access === "write" ? FS_PTE.D : 0n);
      if (want === pte) return undefined;
      const at = s2(gpa, true);
      if (at === undefined) return VTD_SM_FR.FL_ENTRY_S2_WRITE;
      memory.writeU64(at, want);
      return undefined;
    },
  });
  if (!w.ok) {
    // An entry with no memory behind it reads as not present.
    return { ok: false, reason: typeof w.fault === "number" ? w.fault : VTD_SM_FR.FL_NOT_PRESENT };
  }
  return { ok: true, gpa: w.out, pageIova: w.pageIova, pageSize: w.pageSize, writable };
}
