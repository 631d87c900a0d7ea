/**
 * SMMUv3 nested translation (STE.Config = 0b111, stage 1 over stage 2; SMMUv3 §3.3.3, §5.2): the
 * model side of Linux 6.13's `IOMMU_HWPT_DATA_ARM_SMMUV3` nested HWPTs. The user (a guest's SMMU
 * driver) owns STE words 0–1 (`iommu_hwpt_arm_smmuv3.ste[2]`: V, Config, S1Fmt, S1ContextPtr,
 * S1CDMax, S1DSS, …), the CD table and the VMSAv8-64 stage-1 tables, all at guest-physical
 * addresses (IPAs); the kernel owns the stage-2 parent (a stage-2 domain of the same SMMU,
 * `allocDomain(2)`, whose VMID and tables fill STE words 2–3).
 *
 * Allocation and the commands a vIOMMU passes on are smmuv3_nesting.ts's; the command format
 * is smmuv3_cmd.ts's.
 *
 * At attach the stream gets Linux's `arm_smmu_make_nested_domain_ste`: a guest abort STE stays
 * abort, a guest bypass STE becomes the parent's stage-2 STE, a guest S1 STE becomes Config =
 * nested with the guest's words 0–1 (plus STE.MEV) over the parent's words 2–3.
 *
 * Translation of one transaction on a nested STE, in the SMMU's order:
 * 1. STE legality: an illegal stage-2 half (the kernel's) C_BAD_STE stage 2; S1Fmt unknown or
 *    S1CDMax > SSIDSIZE C_BAD_STE stage 1.
 * 2. SubstreamID as for stage 1 (C_BAD_SUBSTREAMID; F_STREAM_DISABLED; S1DSS = bypass translates
 *    the input as an IPA through stage 2 only).
 * 3. The CD (index SSID, or 0) from the CD table — linear, or 2-level with 1024-CD leaves — every
 *    fetch (L1 descriptor, CD) an IPA translated through stage 2. A stage-2 fault there is the
 *    stage-2 event (F_TRANSLATION/F_ACCESS/F_PERMISSION/F_ADDR_SIZE) with S2 = 1, CLASS = CD and
 *    the IPA in dword 3 (§7.3.12–15); a stage-2 output with no memory behind it is F_CD_FETCH with
 *    the physical fetch address (the model's choice for "external abort"); an invalid L1
 *    descriptor C_BAD_SUBSTREAMID; CD.V = 0 or an illegal CD (not AArch64, TG0 ≠ 4 KiB, IPS > 6,
 *    T0SZ outside 16..39) C_BAD_CD. CDs are cached per (StreamID, SSID) until CMD_CFGI_CD(_ALL)
 *    or an attach (CMD_CFGI_STE).
 * 4. IOTLB lookup, tagged like the hardware by the VMID (the stage-2 parent's) and the CD's ASID,
 *    and also by the SSID (so two CDs sharing an ASID by mistake do not alias). Entries are
 *    combined 4 KiB translations, shared by every nested domain on the same parent, and stay
 *    until a command names them or the parent's stage 2 changes (an unmap in the parent drops
 *    every combined entry of its VMID, as Linux's CMD_TLBI_S12_VMALL for a nest parent does).
 * 5. Stage-1 walk (VMSAv8-64, 4 KiB granule; the start level from T0SZ): each descriptor fetch is
 *    an IPA through stage 2 (S2 read permission needed) — a stage-2 fault there has S2 = 1, CLASS =
 *    TT; a fetch whose stage-2 output has no memory behind it is F_WALK_EABT (CLASS = TT, the
 *    physical address in dword 3). Then, stage 1 (S2 = 0, CLASS = IN, dword 3 zero): EPD0, an
 *    input beyond 64 − T0SZ bits, an invalid descriptor, a level-0 block or a level-3 descriptor
 *    with bits[1:0] ≠ 0b11 F_TRANSLATION; AF = 0 F_ACCESS (no HTTU); a next-level table or output
 *    beyond CD.IPS F_ADDR_SIZE; AP[1] clear (device accesses are unprivileged), or a write with
 *    AP[2] set, F_PERMISSION. Hierarchical APTable bits of table descriptors are honoured (bit 62
 *    read-only below, bit 61 no unprivileged access below).
 * 6. The output IPA through stage 2 with the access's permission: S2 = 1, CLASS = IN, the IPA
 *    in dword 3.
 *
 * {@link IommuFault.stage} is 1 for the user's part (C_BAD_STE from the guest half, C_BAD_SUBSTREAMID,
 * F_STREAM_DISABLED, C_BAD_CD, stage-1 walk faults) and 2 for the kernel's (S2 = 1 events, the
 * external aborts F_CD_FETCH / F_WALK_EABT — memory missing behind a stage-2 mapping — and an
 * illegal stage-2 half). Stage-1 faults are not recorded when CD.R = 0, stage-2 faults when
 * STE.S2R = 0 (Linux sets S2R). With a page-request handler set
 * ({@link SmmuV3Nesting.setPageRequestHandler}) the stage-1 F_TRANSLATION, F_ACCESS and
 * F_PERMISSION faults go to it instead of the event queue (a stalled transaction under Linux's
 * IOPF; the record is kept in `faults` with format "smmuv3-page-request" and Stall = 1).
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import type {
  DmaAccess,
  IommuDomain,
  MapProtection,
  PageRequestHandler,
  TranslationEpoch,
} from "../model.ts";
import { SMMU_EVT, SMMU_EVT_CLASS, type SmmuEvent } from "./smmuv3_event.ts";
import {
  LPAE_DESC,
  LPAE_FORMAT,
  LPAE_LAST_LEVEL,
  type LpaeStage,
  lpaeStartLevel,
  type LpaeTable,
  lpaeWalk,
} from "./smmuv3_pgtable.ts";
import { walkRadix } from "../pgtable.ts";
import { SMMU_OAS_BITS } from "./smmuv3_regs.ts";
import {
  CD_L1_V,
  CD_SPLIT,
  CD_T0SZ_RANGE,
  CD_TG0_4K,
  type CdView,
  decodeCd,
  decodeSte,
  encodeAbortSte,
  encodeS2Ste,
  readWords,
  SMMU_CD_BYTES,
  SMMU_TXSZ_BASE,
  STE,
  STE_CONFIG,
  STE_S1DSS,
  STE_S1FMT,
  STE_S2SL0_LEVEL0,
  type SteView,
} from "./smmuv3_ste.ts";
import { fieldMask, getField } from "../reg_fields.ts";
import type { VtdIotlb } from "../vtd/vtd_iotlb.ts";
import type { PhysicalMemory } from "../../memory.ts";

/**
 * What nesting uses of the SMMU it belongs to (`SmmuV3Iommu`, ./smmuv3.ts, which implements it):
 * declared here so that this module does not import the one that owns it.
 */
export interface NestingUnit {
  /** Output address size in bits (IDR5.OAS). */
  readonly oasBits: number;
  /** SubstreamID bits (IDR1.SSIDSIZE). */
  readonly ssidBits: number;
  /** The SMMU's TLB, shared by its stage-1, stage-2 and nested entries. */
  readonly iotlb: VtdIotlb;
  /** The memory the tables and CDs are fetched from. */
  readonly memory: PhysicalMemory;
  /** Bumped whenever a cached translation may change (devices' DMA caches follow it). */
  readonly translationEpoch: TranslationEpoch;
  /** Append a line to the machine trace. */
  traceLine(line: string): void;
}

/** What nesting uses of a stage-2 parent domain (`NestParent`, ./smmuv3.ts). */
export interface NestParent extends IommuDomain {
  /** The SMMU the domain belongs to. */
  readonly unit: NestingUnit;
  /** Translation stage of the domain (a parent must be stage 2). */
  readonly stage: LpaeStage;
  /** Set once freed. */
  readonly freed: boolean;
  /** The stage-2 translation table. */
  readonly table: LpaeTable;
}

/** Address bits 51:12 (L1 CD descriptor L2Ptr). */
const ADDR_51_12 = ((1n << 52n) - 1n) & ~0xfffn;

/** STE.MEV, bit 19 of word 1: merge events (Linux sets it in nested STEs). */
export const STE_1_MEV = 1n << 19n;
/** Descriptor APTable bits (Arm ARM D8.3.1): bit 61 no EL0 below, bit 62 read-only below. */
const APTABLE_NO_EL0 = 1n << 61n;
const APTABLE_RDONLY = 1n << 62n;

/** IOTLB tag space of nested entries (above stage-1 and stage-2 tags of the SMMU). */
const NESTED_TAG_BASE = 2 ** 33;
/** ASIDs per VMID in the tag (16-bit ASIDs). */
const ASID_SPAN = 2 ** 16;
/** IOTLB tag of nested entries of (VMID, ASID). */
export function nestedTag(vmid: number, asid: number): number {
  return NESTED_TAG_BASE + vmid * ASID_SPAN + asid;
}

/** Drop every nested entry of `vmid`. */
export function flushVmid(unit: NestingUnit, asids: Map<number, Set<number>>, vmid: number): void {
  for (const asid of asids.get(vmid) ?? []) unit.iotlb.flushDomain(nestedTag(vmid, asid));
  asids.delete(vmid);
}

/** Size of the combined entries the IOTLB holds. */
const PAGE = 4096n;

/** The outcome of a nested translation; a fault names its event and the stage. */
export type NestedOutcome =
  | {
    readonly ok: true;
    readonly phys: bigint;
    readonly prot: MapProtection;
    /** The answer is in the IOTLB (a stage-1 bypass walks stage 2 uncached: false). */
    readonly cached: boolean;
  }
  | {
    readonly ok: false;
    /** Event id ({@link SMMU_EVT}). */
    readonly event: number;
    /** Record fields (S2, CLASS, dword 3). */
    readonly fields: Partial<SmmuEvent>;
    /** 1: the user's configuration or tables; 2: the kernel's. */
    readonly stage: 1 | 2;
    /** false: terminate without a record (CD.R / STE.S2R clear). */
    readonly record: boolean;
  };

type Fault = Extract<NestedOutcome, { ok: false }>;

function fault(event: number, stage: 1 | 2, fields: Partial<SmmuEvent> = {}, record = true): Fault {
  return { ok: false, event, fields, stage, record };
}

/**
 * The event ids Linux 6.15's `arm_smmu_handle_event` handles, hence forwards to a vIOMMU's vEVENTQ
 * when S2 = 0 and the transaction did not stall (arm-smmu-v3.c, read for this model): C_BAD_STE,
 * F_STREAM_DISABLED, C_BAD_SUBSTREAMID, C_BAD_CD, F_TRANSLATION, F_ADDR_SIZE, F_ACCESS,
 * F_PERMISSION. Fetch aborts, walk aborts and C_BAD_STREAMID stay in the host log.
 */
export const SMMU_VMASTER_EVENTS: ReadonlySet<number> = new Set([
  SMMU_EVT.C_BAD_STE,
  SMMU_EVT.F_STREAM_DISABLED,
  SMMU_EVT.C_BAD_SUBSTREAMID,
  SMMU_EVT.C_BAD_CD,
  SMMU_EVT.F_TRANSLATION,
  SMMU_EVT.F_ADDR_SIZE,
  SMMU_EVT.F_ACCESS,
  SMMU_EVT.F_PERMISSION,
]);

/** Stage-1 faults a page-request handler receives instead of the event queue. */
export const SMMU_RECOVERABLE_EVENTS: ReadonlySet<number> = new Set([
  SMMU_EVT.F_TRANSLATION,
  SMMU_EVT.F_ACCESS,
  SMMU_EVT.F_PERMISSION,
]);

/** The event of a walk outcome. */
const WALK_EVENT = {
  translation: SMMU_EVT.F_TRANSLATION,
  access: SMMU_EVT.F_ACCESS,
  "address-size": SMMU_EVT.F_ADDR_SIZE,
  "external-abort": SMMU_EVT.F_WALK_EABT,
} as const;

/** The stage-2 half of a nested STE. */
interface S2Config {
  readonly root: bigint;
  readonly inputBits: number;
  readonly outputBits: number;
  readonly record: boolean;
}

/** A stage-2 translation of one IPA. */
type S2Result = { readonly ok: true; readonly pa: bigint; readonly prot: MapProtection } | Fault;

/** A user-owned stage 1 (guest STE words 0–1) over a stage-2 parent of the same SMMU. */
export class SmmuV3NestedDomain implements IommuDomain {
  /** Set once freed. */
  freed = false;
  /** Where recoverable stage-1 faults go as page requests, if anywhere. */
  pageRequest: PageRequestHandler | undefined;
  /**
   * The vIOMMU's event path for the host's event thread (Linux 6.15+ `master->vmaster`): given a
   * drained 32-byte record of a stream attached here (a forwardable id, S2 = 0, not stalled), true
   * when it was delivered to user space instead of the kernel log.
   */
  eventReporter: ((raw: Uint8Array) => boolean) | undefined;
  /** The STE a stream attached to this domain gets (8 words). */
  readonly ste: readonly bigint[];
  /** ASIDs with entries in the IOTLB, per VMID (shared by the domains of one SMMU). */
  readonly #asids: Map<number, Set<number>>;

  /** Use `SmmuV3Iommu.nesting.allocNested`. */
  constructor(
    /** The model's nested-domain number (its IOTLB tag space; not a hardware id). */
    readonly id: number,
    /** The stage-2 parent. */
    readonly parent: NestParent,
    /** The user's STE words 0 and 1 (zero when V was clear). */
    readonly guestSte: readonly [bigint, bigint],
    /** The SMMU's record of which ASIDs of each VMID have IOTLB entries. */
    asids: Map<number, Set<number>> = new Map(),
  ) {
    this.#asids = asids;
    const cfg = getField(guestSte[0], STE.W0.V) === 0
      ? STE_CONFIG.ABORT
      : getField(guestSte[0], STE.W0.CONFIG);
    if (cfg === STE_CONFIG.ABORT) {
      this.ste = encodeAbortSte();
    } else {
      const s2 = encodeS2Ste({
        vmid: parent.id,
        ttb: BigInt(parent.table.root),
        inputBits: parent.table.inputBits,
        ps: SMMU_OAS_BITS.indexOf(parent.unit.oasBits),
      });
      if (cfg === STE_CONFIG.S1_TRANS) {
        const cfgMask = fieldMask(STE.W0.CONFIG);
        s2[0] = (guestSte[0] & ~cfgMask) |
          (BigInt(STE_CONFIG.NESTED) << BigInt(STE.W0.CONFIG.shift));
        s2[1] |= guestSte[1] | STE_1_MEV;
      }
      this.ste = s2;
    }
  }

  /** The kernel does not map into a user-owned stage 1: -EOPNOTSUPP. */
  map(_iova: bigint, _phys: bigint, _size: bigint, _prot: MapProtection): number {
    return -ERRNO.EOPNOTSUPP;
  }

  /** Nothing to unmap in a user-owned stage 1. */
  unmap(_iova: bigint, _size: bigint): bigint {
    return 0n;
  }

  /** Both stages walked for SSID 0 (non-PASID traffic), without caching. */
  lookup(iova: bigint): { phys: bigint; prot: MapProtection } | undefined {
    if (this.freed) return undefined;
    const ste = decodeSte(this.ste.slice(0, 4));
    if (!ste.valid || ste.config === STE_CONFIG.ABORT) return undefined;
    if (ste.config === STE_CONFIG.S2_TRANS) return this.parent.lookup(iova);
    const r = this.translate(ste, -1, undefined, iova, "read", undefined);
    return r.ok ? { phys: r.phys, prot: r.prot } : undefined;
  }

  /** IOTLB tag of the entries under `asid` (of the parent's VMID). */
  tag(asid: number): number {
    return nestedTag(this.parent.id, asid);
  }

  /** Drop every combined translation of the domain's VMID (all its nested domains share it). */
  flushTlb(): void {
    flushVmid(this.parent.unit, this.#asids, this.parent.id);
  }

  /**
   * Translate one access of stream `sid` on the nested STE `ste`. With `cds` (the SMMU's CD
   * cache) CDs and translations are cached; without, nothing is cached (lookup).
   */
  translate(
    ste: SteView,
    sid: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    cds: Map<string, CdView> | undefined,
  ): NestedOutcome {
    const unit = this.parent.unit;
    const s2 = stage2Config(ste, unit.oasBits);
    if (s2 === undefined) return fault(SMMU_EVT.C_BAD_STE, 2);
    if (ste.s1fmt > STE_S1FMT.L2_4K || ste.s1cdmax > unit.ssidBits) {
      return fault(SMMU_EVT.C_BAD_STE, 1);
    }
    let ssid = pasid ?? 0;
    if (pasid !== undefined) {
      if (
        ste.s1cdmax === 0 || pasid >= 2 ** ste.s1cdmax ||
        (ste.s1dss === STE_S1DSS.SSID0 && pasid === 0)
      ) {
        return fault(SMMU_EVT.C_BAD_SUBSTREAMID, 1);
      }
    } else if (ste.s1cdmax !== 0) {
      if (ste.s1dss === STE_S1DSS.TERMINATE) return fault(SMMU_EVT.F_STREAM_DISABLED, 1);
      if (ste.s1dss === STE_S1DSS.BYPASS) {
        // Stage 1 bypassed: the input is an IPA for stage 2.
        const r = this.#s2(s2, iova, access, SMMU_EVT_CLASS.IN);
        return r.ok ? { ok: true, phys: r.pa, prot: r.prot, cached: false } : r;
      }
      ssid = 0;
    }
    const cd = this.#cd(ste, s2, sid, ssid, cds);
    if ("ok" in cd) return cd;
    const write = access === "write";
    const tag = this.tag(cd.asid);
    if (cds !== undefined) {
      const hit = unit.iotlb.lookup(tag, iova, ssid);
      if (hit && (write ? hit.write : hit.read)) {
        return {
          ok: true,
          phys: hit.physBase + (iova - hit.iovaBase),
          prot: { read: hit.read, write: hit.write },
          cached: true,
        };
      }
    }
    const s1 = this.#walkStage1(cd, s2, iova, access);
    if (!s1.ok) return s1;
    const out = this.#s2(s2, s1.ipa, access, SMMU_EVT_CLASS.IN);
    if (!out.ok) return out;
    const prot = { read: s1.read && out.prot.read, write: s1.write && out.prot.write };
    if (cds !== undefined) {
      const pageIova = iova & ~(PAGE - 1n);
      unit.iotlb.insert({
        did: tag,
        pasid: ssid,
        iovaBase: pageIova,
        size: PAGE,
        physBase: out.pa - (iova - pageIova),
        ...prot,
      });
      const vmid = this.parent.id;
      let set = this.#asids.get(vmid);
      if (set === undefined) this.#asids.set(vmid, set = new Set());
      set.add(cd.asid);
    }
    return { ok: true, phys: out.pa, prot, cached: cds !== undefined };
  }

  /** The CD of `ssid` (cached in `cds` under `sid:ssid`), or the fault fetching it. */
  #cd(
    ste: SteView,
    s2: S2Config,
    sid: number,
    ssid: number,
    cds: Map<string, CdView> | undefined,
  ): CdView | Fault {
    const key = `${sid}:${ssid}`;
    const cached = cds?.get(key);
    if (cached !== undefined) return cached;
    const memory = this.parent.unit.memory;
    let cdIpa: bigint;
    if (ste.s1fmt === STE_S1FMT.LINEAR) {
      cdIpa = ste.s1ContextPtr + BigInt(ssid * SMMU_CD_BYTES);
    } else {
      const l1Ipa = ste.s1ContextPtr + BigInt(Math.floor(ssid / 2 ** CD_SPLIT) * 8);
      const l1 = this.#s2(s2, l1Ipa, "read", SMMU_EVT_CLASS.CD);
      if (!l1.ok) return l1;
      const desc = memory.readU64(l1.pa);
      if (desc === undefined) return fault(SMMU_EVT.F_CD_FETCH, 2, { addr2: l1.pa });
      if ((desc & CD_L1_V) === 0n) return fault(SMMU_EVT.C_BAD_SUBSTREAMID, 1);
      cdIpa = (desc & ADDR_51_12) + BigInt((ssid % 2 ** CD_SPLIT) * SMMU_CD_BYTES);
    }
    const at = this.#s2(s2, cdIpa, "read", SMMU_EVT_CLASS.CD);
    if (!at.ok) return at;
    const w = readWords(memory, at.pa, 2);
    if (w === undefined) return fault(SMMU_EVT.F_CD_FETCH, 2, { addr2: at.pa });
    const cd = decodeCd(w);
    const legal = cd.valid && cd.aa64 && cd.tg0 === CD_TG0_4K && cd.ips < SMMU_OAS_BITS.length &&
      cd.t0sz >= CD_T0SZ_RANGE.min && cd.t0sz <= CD_T0SZ_RANGE.max;
    if (!legal) return fault(SMMU_EVT.C_BAD_CD, 1);
    cds?.set(key, cd);
    return cd;
  }

  /** The stage-1 walk; every descriptor fetch goes through stage 2. */
  #walkStage1(
    cd: CdView,
    s2: S2Config,
    iova: bigint,
    access: DmaAccess,
  ):
    | { readonly ok: true; readonly ipa: bigint; readonly read: boolean; readonly write: boolean }
    | Fault {
    const inputBits = SMMU_TXSZ_BASE - cd.t0sz;
    const s1 = (event: number) => fault(event, 1, { class: SMMU_EVT_CLASS.IN }, cd.recordFaults);
    if (cd.epd0 || iova < 0n || iova >= 1n << BigInt(inputBits)) {
      return s1(SMMU_EVT.F_TRANSLATION);
    }
    const limit = 1n << BigInt(Math.min(SMMU_OAS_BITS[cd.ips], this.parent.unit.oasBits));
    let readOnly = false;
    let noEl0 = false;
    let read = false;
    let write = false;
    const top = LPAE_LAST_LEVEL + 1 - lpaeStartLevel(inputBits);
    const w = walkRadix<Fault | number>(
      this.parent.unit.memory,
      LPAE_FORMAT,
      cd.ttb0 & LPAE_DESC.ADDR_MASK,
      top,
      iova,
      {
        fetch: (descIpa) => {
          const at = this.#s2(s2, descIpa, "read", SMMU_EVT_CLASS.TT);
          return at.ok ? at.pa : at;
        },
        check(desc, _height, leaf, next) {
          if (!leaf) {
            if (next >= limit) return SMMU_EVT.F_ADDR_SIZE;
            readOnly ||= (desc & APTABLE_RDONLY) !== 0n;
            noEl0 ||= (desc & APTABLE_NO_EL0) !== 0n;
            return undefined;
          }
          if ((desc & LPAE_DESC.AF) === 0n) return SMMU_EVT.F_ACCESS;
          if (next >= limit) return SMMU_EVT.F_ADDR_SIZE;
          read = !noEl0 && (desc & LPAE_DESC.AP_UNPRIV) !== 0n;
          write = read && !readOnly && (desc & LPAE_DESC.AP_RDONLY) === 0n;
          return (access === "write" ? write : read) ? undefined : SMMU_EVT.F_PERMISSION;
        },
      },
    );
    if (w.ok) return { ok: true, ipa: w.out, read, write };
    if (w.fault === "no-memory") {
      return fault(SMMU_EVT.F_WALK_EABT, 2, { class: SMMU_EVT_CLASS.TT, addr2: w.phys });
    }
    if (typeof w.fault === "object") return w.fault; // a stage-2 fault fetching a descriptor
    return s1(typeof w.fault === "number" ? w.fault : SMMU_EVT.F_TRANSLATION);
  }

  /** Stage-2 translation of one IPA needing `access`; faults carry S2 = 1, `cls` and the IPA. */
  #s2(s2: S2Config, ipa: bigint, access: DmaAccess, cls: number): S2Result {
    const fields = { s2: true, class: cls, addr2: ipa };
    if (ipa < 0n || ipa >= 1n << BigInt(s2.inputBits)) {
      return fault(SMMU_EVT.F_TRANSLATION, 2, fields, s2.record);
    }
    const w = lpaeWalk(this.parent.unit.memory, { stage: 2, ...s2 }, ipa);
    if (!w.ok) {
      return fault(WALK_EVENT[w.fault], 2, fields, s2.record || w.fault === "external-abort");
    }
    if (!(access === "write" ? w.prot.write : w.prot.read)) {
      return fault(SMMU_EVT.F_PERMISSION, 2, fields, s2.record);
    }
    return { ok: true, pa: w.phys, prot: w.prot };
  }
}

/** The stage-2 half of `ste`, or undefined when it is illegal (the checks of a stage-2 STE). */
function stage2Config(ste: SteView, oasBits: number): S2Config | undefined {
  const inputBits = SMMU_TXSZ_BASE - ste.s2t0sz;
  const legal = ste.s2aa64 && ste.s2ps < SMMU_OAS_BITS.length && inputBits <= oasBits &&
    ste.s2t0sz <= CD_T0SZ_RANGE.max && ste.s2sl0 === STE_S2SL0_LEVEL0 - lpaeStartLevel(inputBits);
  if (!legal) return undefined;
  return {
    root: ste.s2ttb,
    inputBits,
    outputBits: Math.min(SMMU_OAS_BITS[ste.s2ps], oasBits),
    record: ste.s2r,
  };
}
