/**
 * A simulated Arm SMMUv3 as QEMU 10's `virt,iommu=smmuv3` presents it to a Linux 6.12 arm64 guest
 * (see {@link smmuIdrValues} for the ID registers), with the kernel side programming it the way
 * Linux's arm-smmu-v3 driver does: a 2-level stream table of STEs, a CD table per stream, and one
 * stage-1 domain per VFIO/iommufd paging domain (ASIDs from 1) with VMSAv8-64 tables — all in
 * {@link PhysicalMemory}. Stage-2 domains (VMIDs from 1) are nest parents when the SMMU is built
 * with `nesting: true`: then {@link SmmuV3Iommu.nesting} allocates nested domains (user STE words
 * 0–1 over a stage-2 parent) and translates them (smmuv3_nested.ts).
 *
 * With SubstreamIDs (`ssidBits` > 0) {@link SmmuV3Iommu.attachPasid} installs further stage-1
 * domains at CD index SSID of a stream's CD table (Linux 6.12's `arm_smmu_set_pasid`), next to the
 * RID's CD 0; a blocked RID then keeps a CD-table STE with S1DSS = terminate.
 *
 * Translation of one transaction, in the order the SMMU checks (SMMUv3 §3.3, §3.4, §7.3):
 * 1. StreamID beyond the stream table or its missing level-2 table: C_BAD_STREAMID.
 * 2. STE.V = 0: C_BAD_STE. Config abort: terminated, no event. Bypass: identity (an input address
 *    beyond the OAS gives F_ADDR_SIZE). Nested: the stream's nested domain translates (with
 *    `nesting`; else, or with no nested domain attached, C_BAD_STE).
 * 3. A SubstreamID beyond S1CDMax, with S1CDMax = 0, SSID 0 under S1DSS = SSID0, or without
 *    stage 1: C_BAD_SUBSTREAMID. No SubstreamID under S1DSS = terminate: F_STREAM_DISABLED.
 * 4. CD.V = 0 or an illegal CD: C_BAD_CD.
 * 5. IOTLB (tagged by VMID/ASID), then the table walk: input beyond T0SZ or no valid descriptor
 *    F_TRANSLATION, AF = 0 F_ACCESS, output beyond IPS F_ADDR_SIZE, a write to a read-only page
 *    F_PERMISSION.
 *
 * Behaviour choices (documented deviations):
 * - A blocked stream (`attach(sid, null)`) gets an invalid STE (V = 0), so a DMA while blocked
 *   leaves a C_BAD_STE record. Linux 6.12 writes an abort STE there, after which the hardware
 *   terminates silently; an abort STE written by hand behaves that way here too. A stream never
 *   attached has a zero (invalid) STE on bus 0, whose level-2 table exists from the start, and
 *   no level-2 table elsewhere (C_BAD_STREAMID); Linux would have written abort STEs at probe.
 * - A stream's CD table is freed when it leaves stage 1 (Linux keeps it until device release),
 *   so memory use returns to the probe-time baseline (stream table, event queue).
 * - STEs and CDs are cached per stream like the SMMU's configuration cache; the kernel side
 *   invalidates on every attach, anything else must call {@link SmmuV3Iommu.invalidateConfig}
 *   (CMD_CFGI_STE / CMD_CFGI_ALL).
 * - S1CDMax of a stream is its master's SSID bits ({@link SmmuV3Iommu.probeMaster}, which the
 *   machine calls with the PCIe PASID width); a stream never probed uses SSIDSIZE.
 * - A stage-2 or nested RID attach while SSIDs are in use is EBUSY (`arm_smmu_attach_dev`),
 *   answered by {@link SmmuV3Iommu.attachCheck}, which the kernel asks before `attach`.
 * - The event queue is 2^7 records (Linux would size it from IDR1.EVTQS); the host drains it
 *   after every event, as Linux's event thread does, unless `hostDrainsEvents: false`.
 *
 * @example
 * ```ts
 * const memory = new PhysicalMemory();
 * const smmu = new SmmuV3Iommu({ memory, clock: new VirtualClock() });
 * const domain = smmu.allocDomain(); // ASID 1
 * domain.map(0x100000n, 0x1_0000_0000n, 0x2000n, { read: true, write: true });
 * smmu.attach(0x0010, domain); // 00:02.0, StreamID 0x10
 * smmu.translate(0x0010, undefined, 0x100010n, "read", 4); // { ok: true, phys: 0x1_0000_0010n }
 * ```
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import type { VirtualClock } from "../../clock.ts";
import type { PhysicalMemory } from "../../memory.ts";
import { checkPasidAttach, faultOf, TranslationEpoch } from "../model.ts";
import type {
  DmaAccess,
  IommuDomain,
  IommuFacts,
  IommuFault,
  IommuModel,
  IommuNesting,
  MapProtection,
  ReservedRegion,
  TranslateResult,
  TranslationHint,
} from "../model.ts";
import {
  SMMU_RECOVERABLE_EVENTS,
  SMMU_VMASTER_EVENTS,
  SmmuV3NestedDomain,
} from "./smmuv3_nested.ts";
import { SmmuV3Nesting } from "./smmuv3_nesting.ts";
import {
  decodeSmmuEvent,
  encodeSmmuEvent,
  SMMU_EVT,
  SMMU_EVT_CLASS,
  type SmmuEvent,
  smmuEvent,
  smmuEventLogLines,
  smmuEventMessage,
  smmuEventName,
  SmmuEventQueue,
} from "./smmuv3_event.ts";
import {
  LPAE_LINUX_MAIR,
  LPAE_PAGE_SIZE,
  type LpaeFaultKind,
  type LpaeStage,
  lpaeStartLevel,
  LpaeTable,
  lpaeWalk,
} from "./smmuv3_pgtable.ts";
import {
  idrField,
  SMMU_CR0,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_MAX_SSID_BITS,
  SMMU_OAS_BITS,
  SMMU_REG,
  SMMU_STRTAB_BASE_CFG,
  SMMU_STRTAB_BASE_RA,
  smmuDomainPgsizes,
  type SmmuIdrValues,
  smmuIdrValues,
} from "./smmuv3_regs.ts";
import {
  CD_T0SZ_RANGE,
  CD_TG0_4K,
  CdTable,
  type CdView,
  decodeCd,
  decodeSte,
  encodeInvalidCd,
  encodeInvalidSte,
  encodeQuietCd,
  encodeS1Cd,
  encodeS1Ste,
  encodeS2Ste,
  locateCd,
  readWords,
  type S1CdOptions,
  SMMU_TXSZ_BASE,
  STE_CONFIG,
  STE_S1DSS,
  STE_S1FMT,
  STE_S2SL0_LEVEL0,
  type SteView,
  StreamTable,
} from "./smmuv3_ste.ts";
import { VtdIotlb } from "../vtd/vtd_iotlb.ts";
import { encode } from "../../../ffi/uapi/layout.ts";
import { IOMMU_HW_INFO_TYPE_NONE } from "../../../ffi/uapi/mod.ts";
import {
  iommu_hw_info_arm_smmuv3,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
} from "../../../ffi/uapi/post_6_12.ts";
import { setField } from "../reg_fields.ts";

/** Linux's software-MSI window (`MSI_IOVA_BASE`, `MSI_IOVA_LENGTH`), inclusive. */
export const SMMU_SW_MSI_WINDOW = { start: 0x0800_0000n, end: 0x080f_ffffn } as const;
/** Device name of the SMMU on QEMU's virt machine (MMIO base 0x9050000), as Linux logs it. */
export const SMMU_QEMU_VIRT_NAME = "9050000.smmuv3";
/** Linux allocates ASIDs and VMIDs from 1. */
export const SMMU_FIRST_ID = 1;
/** Stage-1 input size of Linux's domains: 48 bits (VA_BITS of the Debian arm64 kernel). */
export const SMMU_S1_INPUT_BITS = 48;
/** Default IOTLB capacity in entries. */
export const SMMU_IOTLB_ENTRIES = 512;
/** Default log2 of the event-queue size. */
export const SMMU_EVTQ_SHIFT = 7;
/** IOTLB tag space of stage-2 entries (above every VMID·2^16 + ASID of stage 1). */
const S2_TAG_BASE = 2 ** 32;
/** STE words the SMMU decodes (0–3). */
const STE_WORDS_USED = 4;
/** CD words the SMMU decodes (0–1). */
const CD_WORDS_USED = 2;
/** ASIDs per VMID in the stage-1 tag (16-bit ASIDs). */
const ASID_SPAN = 2 ** 16;

/** Options of {@link SmmuV3Iommu}. */
export interface SmmuV3Options {
  /** Physical memory that holds the tables and queues. */
  readonly memory: PhysicalMemory;
  /** The machine's clock (event timestamps). */
  readonly clock: VirtualClock;
  /** SubstreamID (PASID) bits, 0..20 (default 0, QEMU 10's default). */
  readonly ssidBits?: number;
  /** Output address size, one of 32/36/40/42/44/48/52 (default 48). */
  readonly oasBits?: number;
  /** A linear stream table instead of Linux's 2-level one (default false). */
  readonly linearStreamTable?: boolean;
  /** MSI isolation as the kernel sees it (default true: GICv3 ITS). */
  readonly msiIsolated?: boolean;
  /** Device name in log lines (default {@link SMMU_QEMU_VIRT_NAME}). */
  readonly name?: string;
  /** IOTLB capacity in entries (default {@link SMMU_IOTLB_ENTRIES}). */
  readonly iotlbEntries?: number;
  /** log2 of the event-queue size (default {@link SMMU_EVTQ_SHIFT}). */
  readonly eventQueueShift?: number;
  /** Drain the event queue after each event, as Linux's event thread does (default true). */
  readonly hostDrainsEvents?: boolean;
  /** Trace sink for maps, unmaps, attaches and events. */
  readonly trace?: (line: string) => void;
  /** Host kernel log sink: the lines Linux prints for each drained event. */
  readonly kernelLog?: (line: string) => void;
  /** Nested translation ({@link SmmuV3Iommu.nesting}; default false). */
  readonly nesting?: boolean;
}

/** A paging domain: stage 1 (an ASID and a CD) or stage 2 (a VMID), with its table. */
export class SmmuV3Domain implements IommuDomain {
  /** @internal the owning SMMU. */
  readonly unit: SmmuV3Iommu;
  /** The translation table (root at `table.root`). */
  readonly table: LpaeTable;
  /** Set once freed. */
  freed = false;

  /** Use {@link SmmuV3Iommu.allocDomain}. */
  constructor(unit: SmmuV3Iommu, readonly stage: LpaeStage, readonly id: number, table: LpaeTable) {
    this.unit = unit;
    this.table = table;
  }

  /** The ASID (stage 1) or VMID (stage 2). */
  get asid(): number | undefined {
    return this.stage === 1 ? this.id : undefined;
  }

  /** IOTLB tag of the domain's entries. */
  get tag(): number {
    return this.stage === 1 ? this.id : S2_TAG_BASE + this.id;
  }

  /**
   * Map; 0, -EINVAL (misaligned, empty, no permission, beyond the input size), -ERANGE (output
   * beyond the OAS, as io-pgtable-arm), -EEXIST (overlap), -ENOMEM.
   */
  map(iova: bigint, phys: bigint, size: bigint, prot: MapProtection): number {
    const page = BigInt(LPAE_PAGE_SIZE);
    if (this.freed || size <= 0n || iova < 0n || phys < 0n) return -ERRNO.EINVAL;
    if (iova % page !== 0n || phys % page !== 0n || size % page !== 0n) return -ERRNO.EINVAL;
    if (!prot.read && !prot.write) return -ERRNO.EINVAL;
    if (iova + size - 1n >= 1n << BigInt(this.table.inputBits)) return -ERRNO.EINVAL;
    if (phys + size > 1n << BigInt(this.unit.oasBits)) return -ERRNO.ERANGE;
    if (this.table.anyMapped(iova, iova + size)) return -ERRNO.EEXIST;
    const r = this.table.map(iova, phys, size, prot);
    this.unit.traceLine(
      `smmuv3 map ${this.#name()} iova=0x${iova.toString(16)} size=0x${size.toString(16)} ` +
        `phys=0x${phys.toString(16)} ${prot.read ? "r" : "-"}${prot.write ? "w" : "-"}` +
        (r < 0 ? ` -> ${r}` : ""),
    );
    return r;
  }

  /** Unmap exactly the range (blocks are split); invalidates the IOTLB for it (TLBI by VA). */
  unmap(iova: bigint, size: bigint): bigint {
    const page = BigInt(LPAE_PAGE_SIZE);
    if (this.freed || size <= 0n || iova < 0n || iova % page !== 0n || size % page !== 0n) {
      return 0n;
    }
    const removed = this.table.unmap(iova, size);
    this.unit.iotlb.flushRange(this.tag, iova, iova + size);
    if (this.stage === 2) this.unit.nestedParentChanged(this);
    this.unit.traceLine(
      `smmuv3 unmap ${this.#name()} iova=0x${iova.toString(16)} size=0x${size.toString(16)} ` +
        `-> 0x${removed.toString(16)}`,
    );
    return removed;
  }

  /** Table walk without caching or faulting. */
  lookup(iova: bigint): { phys: bigint; prot: MapProtection } | undefined {
    if (this.freed || iova < 0n || iova >= 1n << BigInt(this.table.inputBits)) return undefined;
    const w = lpaeWalk(this.unit.memory, this.walkConfig(), iova);
    return w.ok ? { phys: w.phys, prot: w.prot } : undefined;
  }

  /** @internal how the hardware walks this domain's table. */
  walkConfig(): { stage: LpaeStage; root: bigint; inputBits: number; outputBits: number } {
    return {
      stage: this.stage,
      root: BigInt(this.table.root),
      inputBits: this.table.inputBits,
      outputBits: this.unit.oasBits,
    };
  }

  #name(): string {
    return this.stage === 1 ? `asid=${this.id}` : `vmid=${this.id}`;
  }
}

/** A transaction as the fault paths need it. */
interface Txn {
  readonly sid: number;
  readonly pasid: number | undefined;
  readonly iova: bigint;
  readonly access: DmaAccess;
}

/** The simulated SMMUv3. */
export class SmmuV3Iommu implements IommuModel {
  /** The facts Linux derives from this SMMU (see {@link IommuFacts}). */
  readonly facts: IommuFacts;
  /** ID registers. */
  readonly idr: SmmuIdrValues;
  /** Output address size in bits. */
  readonly oasBits: number;
  /** SubstreamID bits. */
  readonly ssidBits: number;
  /** The stream table in memory. */
  readonly streamTable: StreamTable;
  /** The event queue in memory. */
  readonly eventQueue: SmmuEventQueue;
  /** The IOTLB (tags: VMID·2^16 + ASID for stage 1, 2^32 + VMID for stage 2). */
  readonly iotlb: VtdIotlb;
  /**
   * Generation of the SMMU's translation state: bumped by every IOTLB change (the IOTLB owns
   * those bumps) and every STE/CD cache invalidation ({@link invalidateConfig}, CMD_CFGI_CD*).
   * Attach, PASID attach and detach flush the IOTLB and the configuration cache.
   */
  readonly translationEpoch: TranslationEpoch = new TranslationEpoch();
  /** Device name in log lines. */
  readonly name: string;
  /** @internal physical memory (walks). */
  readonly memory: PhysicalMemory;
  readonly #clock: VirtualClock;
  readonly #hostDrains: boolean;
  readonly #trace?: (line: string) => void;
  readonly #kernelLog?: (line: string) => void;
  readonly #asids = new Set<number>();
  readonly #vmids = new Set<number>();
  readonly #streams = new Map<number, SmmuV3Domain | SmmuV3NestedDomain>();
  readonly #cdTables = new Map<number, CdTable>();
  /** SSID bits of each probed master. */
  readonly #masterSsidBits = new Map<number, number>();
  /** Stage-1 domains on SubstreamIDs other than 0, per stream. */
  readonly #pasids = new Map<number, Map<number, SmmuV3Domain>>();
  /** SubstreamIDs torn down with a quiet CD, per stream. */
  readonly #quiet = new Map<number, Set<number>>();
  readonly #steCache = new Map<number, SteView>();
  readonly #cdCache = new Map<string, CdView>();
  readonly #faults: IommuFault[] = [];
  /** Set by a translation answered from tables the SMMU walked without caching the result. */
  #uncachedAnswer = false;
  readonly #nesting?: SmmuV3Nesting;
  /** Nested translation, present when built with `nesting: true`. */
  readonly nesting?: IommuNesting;

  /** An SMMU over `memory`; see {@link SmmuV3Options}. */
  constructor(o: SmmuV3Options) {
    this.memory = o.memory;
    this.#clock = o.clock;
    this.#hostDrains = o.hostDrainsEvents ?? true;
    this.#trace = o.trace;
    this.#kernelLog = o.kernelLog;
    this.name = o.name ?? SMMU_QEMU_VIRT_NAME;
    this.ssidBits = o.ssidBits ?? 0;
    this.oasBits = o.oasBits ?? SMMU_OAS_BITS[5];
    if (!SMMU_OAS_BITS.includes(this.oasBits)) throw new RangeError("SMMUv3: unknown OAS");
    if (
      !Number.isInteger(this.ssidBits) || this.ssidBits < 0 || this.ssidBits > SMMU_MAX_SSID_BITS
    ) {
      throw new RangeError(`SMMUv3: SSIDSIZE ${this.ssidBits} outside 0..${SMMU_MAX_SSID_BITS}`);
    }
    this.idr = smmuIdrValues({
      ssidBits: this.ssidBits,
      oasBits: this.oasBits,
      nesting: o.nesting ?? false,
    });
    const sidBits = idrField(this.idr.idr1, SMMU_IDR1.SIDSIZE);
    this.streamTable = new StreamTable(o.memory, sidBits, !(o.linearStreamTable ?? false));
    this.eventQueue = new SmmuEventQueue(o.memory, o.eventQueueShift ?? SMMU_EVTQ_SHIFT);
    this.iotlb = new VtdIotlb(o.iotlbEntries ?? SMMU_IOTLB_ENTRIES, this.translationEpoch);
    this.facts = {
      kind: "smmuv3",
      pgsizeBitmap: smmuDomainPgsizes(this.idr.idr5),
      aperture: { start: 0n, end: (1n << BigInt(SMMU_S1_INPUT_BITS)) - 1n },
      cacheCoherency: idrField(this.idr.idr0, SMMU_IDR0.COHACC) === 1,
      enforceCacheCoherency: false,
      dirtyTracking: false, // IDR0.HTTU = 0
      msiIsolated: o.msiIsolated ?? true,
      hwInfo: { type: IOMMU_HW_INFO_TYPE_NONE, data: new Uint8Array(0) },
      maxPasidLog2: this.ssidBits,
      laterHwInfo: { type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3, data: smmuHwInfoData(this.idr) },
    };
    if (o.nesting) this.nesting = this.#nesting = new SmmuV3Nesting(this, this.#cdCache);
  }

  /** Every event recorded so far, oldest first. */
  get faults(): readonly IommuFault[] {
    return this.#faults;
  }

  /** The software-MSI window (Linux's `arm_smmu_get_resv_regions`; no firmware RMRs here). */
  reservedRegions(_requester: number): ReservedRegion[] {
    return [{ ...SMMU_SW_MSI_WINDOW, type: "sw-msi" }];
  }

  /**
   * A new paging domain: stage 1 (default; the lowest free ASID ≥ 1, 48-bit input) or stage 2
   * (the lowest free VMID ≥ 1, IAS = OAS input). Throws when the 16-bit ids run out.
   */
  allocDomain(stage: LpaeStage = 1): SmmuV3Domain {
    const ids = stage === 1 ? this.#asids : this.#vmids;
    let id = SMMU_FIRST_ID;
    while (ids.has(id)) id++;
    if (id >= ASID_SPAN) throw new RangeError(`SMMUv3: out of ${stage === 1 ? "ASIDs" : "VMIDs"}`);
    const inputBits = stage === 1 ? SMMU_S1_INPUT_BITS : this.oasBits;
    const table = new LpaeTable(this.memory, stage, inputBits);
    ids.add(id);
    this.traceLine(`smmuv3 domain alloc ${stage === 1 ? "asid" : "vmid"}=${id}`);
    return new SmmuV3Domain(this, stage, id, table);
  }

  /** Fault injection: a stage-1 F_TRANSLATION event for the access. */
  injectFault(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
  ): IommuFault {
    const t: Txn = { sid: requester, pasid, iova, access };
    return faultOf(this.#event(t, SMMU_EVT.F_TRANSLATION, { class: SMMU_EVT_CLASS.IN }));
  }

  /** Stage-1, stage-2 and nested domains allocated and not freed. */
  domainsInUse(): number {
    return this.#asids.size + this.#vmids.size + (this.#nesting?.domainCount ?? 0);
  }

  /** Free a domain's tables and id. Throws if it is attached or not this SMMU's. */
  freeDomain(domain: IommuDomain): void {
    const d = this.#own(domain);
    if (d.freed) return;
    for (const attached of this.#streams.values()) {
      if (attached === d) throw new Error(`SMMUv3: domain ${d.id} freed while attached`);
    }
    for (const ssids of this.#pasids.values()) {
      for (const attached of ssids.values()) {
        if (attached === d) throw new Error(`SMMUv3: domain ${d.id} freed while on a PASID`);
      }
    }
    if (d instanceof SmmuV3NestedDomain) return this.#nesting?.free(d);
    if (this.#nesting?.hasChildren(d)) {
      throw new Error(`SMMUv3: nest parent vmid=${d.id} freed with nested children`);
    }
    this.iotlb.flushDomain(d.tag);
    d.table.destroy();
    d.freed = true;
    (d.stage === 1 ? this.#asids : this.#vmids).delete(d.id);
    this.traceLine(`smmuv3 domain free ${d.stage === 1 ? "asid" : "vmid"}=${d.id}`);
  }

  /**
   * Install a stage-1 domain on SubstreamID `pasid` of a stream (`null` removes it), as Linux's
   * `set_dev_pasid` / `remove_dev_pasid` of arm-smmu-v3 do: the domain's CD is written at index
   * `pasid` of the stream's CD table. Answers 0; -EOPNOTSUPP without SubstreamIDs (IDR1.SSIDSIZE
   * = 0) or for a nested domain (it has no `set_dev_pasid`); -EINVAL for PASID 0 (the RID's,
   * `IOMMU_NO_PASID`), a PASID beyond SSIDSIZE, a stage-2 domain, or when the RID's STE is not a
   * CD-table one (the RID on a stage-2 or nested domain; a blocked RID gets a CD-table STE with
   * S1DSS = terminate). Removal writes an invalid CD, invalidates it (CMD_CFGI_CD) and the
   * domain's ASID (CMD_TLBI_NH_ASID); the last one on a blocked RID returns it to its invalid STE.
   */
  attachPasid(requester: number, pasid: number, domain: IommuDomain | null): number {
    const rc = checkPasidAttach(this.facts, pasid);
    if (rc < 0) return rc;
    if (pasid === 0 || pasid >= 2 ** this.masterSsidBits(requester)) return -ERRNO.EINVAL;
    const ssids = this.#pasids.get(requester);
    const old = ssids?.get(pasid);
    if (domain === null) {
      if (!old) return 0;
      ssids!.delete(pasid);
      this.#cdTables.get(requester)?.writeCd(pasid, encodeInvalidCd());
      this.#dropCd(requester, pasid);
      this.iotlb.flushDomain(old.tag);
      if (ssids!.size === 0) {
        this.#pasids.delete(requester);
        // Linux downgrades a blocked RID's CD-table STE once no SubstreamID is in use.
        if (!this.#ssidsInUse(requester) && !this.#streams.has(requester)) {
          this.attach(requester, null);
        }
      }
      this.traceLine(`smmuv3 detach sid=0x${requester.toString(16)} ssid=0x${pasid.toString(16)}`);
      return 0;
    }
    const d = this.#own(domain);
    if (d instanceof SmmuV3NestedDomain) return -ERRNO.EOPNOTSUPP;
    if (d.freed) throw new Error(`SMMUv3: PASID attach of freed domain ${d.id}`);
    if (d.stage !== 1) return -ERRNO.EINVAL;
    const rid = this.#streams.get(requester);
    if (rid !== undefined && (rid instanceof SmmuV3NestedDomain || rid.stage !== 1)) {
      return -ERRNO.EINVAL;
    }
    const table = this.#cdTableOf(requester);
    table.writeCd(pasid, this.#s1Cd(d));
    this.#dropCd(requester, pasid);
    this.#quiet.get(requester)?.delete(pasid);
    if (old) this.iotlb.flushDomain(old.tag);
    this.iotlb.flushDomain(d.tag);
    if (ssids) ssids.set(pasid, d);
    else this.#pasids.set(requester, new Map([[pasid, d]]));
    if (rid === undefined) {
      // A blocked RID: its STE becomes a CD-table one whose SSID-less traffic is terminated.
      this.streamTable.writeSte(requester, this.#cdTableSte(table, STE_S1DSS.TERMINATE));
      this.invalidateConfig(requester);
    }
    this.traceLine(
      `smmuv3 attach sid=0x${requester.toString(16)} ssid=0x${pasid.toString(16)} asid=${d.id}`,
    );
    return 0;
  }

  /**
   * Tear down SubstreamID `pasid` of every stream with a quiet CD ({@link encodeQuietCd}: valid,
   * walks disabled, faults not recorded), as Linux's `arm_smmu_mm_release` does while DMA may
   * still run; the ASID is flushed and the domain let go. The STE keeps its CD table. Returns the
   * streams.
   */
  silencePasid(pasid: number): number[] {
    const out: number[] = [];
    for (const [sid, ssids] of this.#pasids) {
      const d = ssids.get(pasid);
      if (d === undefined) continue;
      ssids.delete(pasid);
      if (ssids.size === 0) this.#pasids.delete(sid);
      this.#cdTables.get(sid)?.writeCd(pasid, encodeQuietCd(this.#s1CdOptions(d)));
      this.#dropCd(sid, pasid);
      this.iotlb.flushDomain(d.tag);
      let quiet = this.#quiet.get(sid);
      if (!quiet) this.#quiet.set(sid, quiet = new Set());
      quiet.add(pasid);
      out.push(sid);
      this.traceLine(
        `smmuv3 teardown sid=0x${sid.toString(16)} ssid=0x${pasid.toString(16)}: quiet CD`,
      );
    }
    return out;
  }

  /**
   * Replace the quiet CDs of `pasid` with invalid ones (faults are reported again: C_BAD_CD); a
   * blocked stream with no SubstreamID left returns to its invalid STE.
   */
  clearSilencedPasid(pasid: number): void {
    for (const [sid, quiet] of [...this.#quiet]) {
      if (!quiet.delete(pasid)) continue;
      if (quiet.size === 0) this.#quiet.delete(sid);
      this.#cdTables.get(sid)?.writeCd(pasid, encodeInvalidCd());
      this.#dropCd(sid, pasid);
      if (!this.#ssidsInUse(sid) && !this.#streams.has(sid)) this.attach(sid, null);
      this.traceLine(
        `smmuv3 teardown sid=0x${sid.toString(16)} ssid=0x${pasid.toString(16)}: CD cleared`,
      );
    }
  }

  /** Whether a stream has SubstreamIDs in use (attached or quiet): its STE needs the CD table. */
  #ssidsInUse(sid: number): boolean {
    return this.#pasids.has(sid) || this.#quiet.has(sid);
  }

  /**
   * Probe a master as Linux's `arm_smmu_probe_device` / `arm_smmu_enable_pasid` do: its SSID bits
   * are the smaller of SSIDSIZE and its PCIe PASID capability's width (`pciPasidWidth`, 0 without
   * one); its CD table gets S1CDMax = those bits. A stream never probed uses SSIDSIZE.
   */
  probeMaster(requester: number, pciPasidWidth: number): void {
    this.#masterSsidBits.set(requester, Math.max(0, Math.min(this.ssidBits, pciPasidWidth)));
  }

  /** SSID bits of a master (S1CDMax of its CD table). */
  masterSsidBits(requester: number): number {
    return this.#masterSsidBits.get(requester) ?? this.ssidBits;
  }

  /** The domain on SubstreamID `pasid` of a stream, if one is attached there. */
  attachedPasid(requester: number, pasid: number): SmmuV3Domain | undefined {
    return this.#pasids.get(requester)?.get(pasid);
  }

  /**
   * Program the stream's STE (and CD 0 for a stage-1 domain) as Linux does; `null` blocks it with
   * an invalid STE. Invalidates the configuration cache and the IOTLB of both domains.
   */
  /** `arm_smmu_attach_dev`: EBUSY for a stage-2 or nested domain while SubstreamIDs are in use. */
  attachCheck(requester: number, domain: IommuDomain): number {
    const d = this.#own(domain);
    const needsCdTable = d instanceof SmmuV3NestedDomain || d.stage !== 1;
    return this.#ssidsInUse(requester) && needsCdTable ? -ERRNO.EBUSY : 0;
  }

  attach(requester: number, domain: IommuDomain | null): void {
    const d = domain === null ? undefined : this.#own(domain);
    if (d?.freed) throw new Error(`SMMUv3: attach of freed domain ${d.id}`);
    const ssidsInUse = this.#ssidsInUse(requester);
    if (d !== undefined && this.attachCheck(requester, d) < 0) {
      // The kernel asks attachCheck first (iommufd's attach and replace); reaching this is a bug.
      throw new Error(
        `SMMUv3: EBUSY: sid=0x${requester.toString(16)} has SubstreamIDs in use; ` +
          "a stage-2 or nested RID domain needs them detached first",
      );
    }
    const old = this.#streams.get(requester);
    if (old) this.#flush(old);
    if (d === undefined && ssidsInUse) {
      // Blocked RID with PASIDs in use: a CD-table STE, S1DSS = terminate, CD 0 cleared.
      this.#streams.delete(requester);
      const table = this.#cdTableOf(requester);
      table.writeCd(0, encodeInvalidCd());
      this.streamTable.writeSte(requester, this.#cdTableSte(table, STE_S1DSS.TERMINATE));
    } else if (d === undefined) {
      this.#streams.delete(requester);
      this.streamTable.writeSte(requester, encodeInvalidSte());
    } else {
      this.#streams.set(requester, d);
      const ste = d instanceof SmmuV3NestedDomain
        ? d.ste
        : d.stage === 1
        ? this.#s1Ste(requester, d)
        : this.#s2Ste(d);
      this.streamTable.writeSte(requester, ste);
      this.#flush(d);
    }
    if (!ssidsInUse && (d instanceof SmmuV3NestedDomain || d?.stage !== 1)) {
      // The stream no longer uses stage 1: its CD table goes (Linux keeps it until release).
      this.#cdTables.get(requester)?.destroy();
      this.#cdTables.delete(requester);
    }
    this.invalidateConfig(requester);
    const now = this.#streams.get(requester);
    this.traceLine(
      `smmuv3 attach sid=0x${requester.toString(16)} ` +
        (now === undefined
          ? "blocked"
          : now instanceof SmmuV3NestedDomain
          ? `nested=${now.id}`
          : `${now.stage === 1 ? "asid" : "vmid"}=${now.id}`),
    );
  }

  /** The domain a stream is attached to. */
  attached(requester: number): SmmuV3Domain | SmmuV3NestedDomain | undefined {
    return this.#streams.get(requester);
  }

  /** ASIDs, VMIDs, nested domains, STEs and substreams in use ({@link IommuModel.liveDomains}). */
  liveDomains(): string[] {
    const name = (d: SmmuV3Domain | SmmuV3NestedDomain): string =>
      d instanceof SmmuV3NestedDomain
        ? `nested=${d.id}`
        : `${d.stage === 1 ? "asid" : "vmid"}=${d.id}`;
    const out = [
      ...[...this.#asids].map((id) => `asid=${id}`),
      ...[...this.#vmids].map((id) => `vmid=${id}`),
      ...(this.#nesting?.liveIds() ?? []).map((id) => `nested=${id}`),
    ];
    for (const [sid, d] of this.#streams) out.push(`sid=0x${sid.toString(16)} → ${name(d)}`);
    for (const [sid, ssids] of this.#pasids) {
      for (const [ssid, d] of ssids) {
        out.push(`sid=0x${sid.toString(16)} ssid=${ssid} → ${name(d)}`);
      }
    }
    return out.sort();
  }

  /** The CD table of a stream (allocated at its first stage-1 attach). */
  cdTable(requester: number): CdTable | undefined {
    return this.#cdTables.get(requester);
  }

  /** Drop cached STEs and CDs: of one stream (CMD_CFGI_STE + CFGI_CD_ALL) or all (CMD_CFGI_ALL). */
  invalidateConfig(requester?: number): void {
    this.translationEpoch.bump();
    if (requester === undefined) {
      this.#steCache.clear();
      this.#cdCache.clear();
      return;
    }
    this.#steCache.delete(requester);
    for (const k of [...this.#cdCache.keys()]) {
      if (k.startsWith(`${requester}:`)) this.#cdCache.delete(k);
    }
  }

  /**
   * Translate one access within one 4 KiB page (only the first page is checked). Successes are
   * `cacheable` (see {@link TranslationHint}) when they depend only on the STE/CD caches (bypass)
   * or come from or enter the IOTLB; a nested stream's stage-1 bypass walks stage 2 uncached and
   * is not.
   */
  translate(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    _length: number,
    hint?: TranslationHint,
  ): TranslateResult {
    this.#uncachedAnswer = false;
    const r = this.#translate(requester, pasid, iova, access);
    if (hint && r.ok && !this.#uncachedAnswer) hint.cacheable = true;
    return r;
  }

  #translate(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
  ): TranslateResult {
    const t: Txn = { sid: requester, pasid, iova, access };
    let ste = this.#steCache.get(requester);
    if (ste === undefined) {
      const loc = this.streamTable.locate(requester);
      if ("badStreamId" in loc) return this.#event(t, SMMU_EVT.C_BAD_STREAMID);
      const addr = "addr" in loc ? loc.addr : loc.fetchAbort;
      const w = "addr" in loc ? readWords(this.memory, addr, STE_WORDS_USED) : undefined;
      if (w === undefined) return this.#event(t, SMMU_EVT.F_STE_FETCH, { addr2: addr });
      ste = decodeSte(w);
      this.#steCache.set(requester, ste);
    }
    if (ste.valid && ste.config === STE_CONFIG.NESTED) {
      const d = this.#streams.get(requester);
      if (d instanceof SmmuV3NestedDomain && this.#nesting) return this.#nested(t, d, ste);
    }
    if (!ste.valid || ste.config === STE_CONFIG.NESTED) return this.#event(t, SMMU_EVT.C_BAD_STE);
    if (ste.config < STE_CONFIG.BYPASS) return this.#terminate(t, "STE.Config = abort");
    const s1 = ste.config === STE_CONFIG.S1_TRANS;
    if (pasid !== undefined && (!s1 || ste.s1cdmax === 0)) {
      return this.#event(t, SMMU_EVT.C_BAD_SUBSTREAMID);
    }
    if (ste.config === STE_CONFIG.BYPASS) return this.#bypass(t);
    if (!s1) return this.#stage2(t, ste);
    return this.#stage1(t, ste);
  }

  /**
   * Read a register: IDR0–5, IIDR, AIDR, CR0/CR0ACK (enabled as Linux leaves them), the stream
   * table and event queue bases, EVTQ PROD/CONS. Others read 0.
   */
  readRegister(offset: number, size: 4 | 8): bigint {
    const cfg = this.streamTable.cfg;
    const enabled = SMMU_CR0.SMMUEN | SMMU_CR0.EVTQEN | SMMU_CR0.CMDQEN;
    const values: Record<number, bigint> = {
      [SMMU_REG.IDR0]: BigInt(this.idr.idr0),
      [SMMU_REG.IDR1]: BigInt(this.idr.idr1),
      [SMMU_REG.IDR3]: BigInt(this.idr.idr3),
      [SMMU_REG.IDR5]: BigInt(this.idr.idr5),
      [SMMU_REG.IIDR]: BigInt(this.idr.iidr),
      [SMMU_REG.AIDR]: BigInt(this.idr.aidr),
      [SMMU_REG.CR0]: BigInt(enabled),
      [SMMU_REG.CR0ACK]: BigInt(enabled),
      [SMMU_REG.STRTAB_BASE]: this.streamTable.base | SMMU_STRTAB_BASE_RA,
      [SMMU_REG.STRTAB_BASE_CFG]: setField(
        setField(
          setField(0n, SMMU_STRTAB_BASE_CFG.LOG2SIZE, cfg.log2size),
          SMMU_STRTAB_BASE_CFG.SPLIT,
          cfg.split,
        ),
        SMMU_STRTAB_BASE_CFG.FMT,
        cfg.fmt,
      ),
      [SMMU_REG.EVTQ_BASE]: this.eventQueue.base | BigInt(this.eventQueue.log2size),
      [SMMU_REG.EVTQ_PROD]: BigInt(this.eventQueue.prod),
      [SMMU_REG.EVTQ_CONS]: BigInt(this.eventQueue.cons),
    };
    const v = values[offset] ?? 0n;
    return size === 8 ? v : v & 0xffff_ffffn;
  }

  /**
   * Drain the event queue as Linux's `arm_smmu_evtq_thread` does; each record's lines go to the
   * kernel log. Returns the lines.
   */
  drainEvents(): string[] {
    const lines = this.eventQueue.drain()
      .filter((raw) => !this.#forwardToVmaster(raw))
      .flatMap((raw) => smmuEventLogLines(this.name, raw));
    for (const line of lines) this.#kernelLog?.(line);
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
    const d = this.#streams.get(e.sid);
    return d instanceof SmmuV3NestedDomain && d.eventReporter !== undefined && d.eventReporter(raw);
  }

  /** @internal trace a line. */
  traceLine(line: string): void {
    this.#trace?.(line);
  }

  /** Drop the cached CD of (`sid`, `ssid`) (CMD_CFGI_CD). */
  #dropCd(sid: number, ssid: number): void {
    this.translationEpoch.bump();
    this.#cdCache.delete(`${sid}:${ssid}`);
  }

  /** @internal a stage-2 domain changed: flush the nested translations built on it. */
  nestedParentChanged(parent: SmmuV3Domain): void {
    this.#nesting?.parentChanged(parent);
  }

  #flush(d: SmmuV3Domain | SmmuV3NestedDomain): void {
    if (d instanceof SmmuV3NestedDomain) d.flushTlb();
    else this.iotlb.flushDomain(d.tag);
  }

  /** A transaction on a nested STE: the domain walks; faults become events or page requests. */
  #nested(t: Txn, d: SmmuV3NestedDomain, ste: SteView): TranslateResult {
    const r = d.translate(ste, t.sid, t.pasid, t.iova, t.access, this.#cdCache);
    if (r.ok) {
      if (!r.cached) this.#uncachedAnswer = true;
      return { ok: true, phys: r.phys };
    }
    if (r.stage === 1 && d.pageRequest && SMMU_RECOVERABLE_EVENTS.has(r.event)) {
      d.pageRequest({ requester: t.sid, pasid: t.pasid, address: t.iova, access: t.access });
      return this.#event(t, r.event, { ...r.fields, stall: true }, 1, true);
    }
    if (!r.record) {
      return this.#terminate(t, `${smmuEventName(r.event)} not recorded (CD.R/S2R = 0)`);
    }
    return this.#event(t, r.event, r.fields, r.stage);
  }

  #s1Ste(sid: number, d: SmmuV3Domain): bigint[] {
    const table = this.#cdTableOf(sid);
    table.writeCd(0, this.#s1Cd(d));
    return this.#cdTableSte(table, STE_S1DSS.SSID0);
  }

  /** The stream's CD table, allocated on first use with S1CDMax = the master's SSID bits. */
  #cdTableOf(sid: number): CdTable {
    let table = this.#cdTables.get(sid);
    if (table === undefined) {
      table = new CdTable(this.memory, this.masterSsidBits(sid));
      this.#cdTables.set(sid, table);
    }
    return table;
  }

  /** The CD of a stage-1 domain (Linux's `arm_smmu_make_s1_cd`). */
  #s1Cd(d: SmmuV3Domain): bigint[] {
    return encodeS1Cd(this.#s1CdOptions(d));
  }

  #s1CdOptions(d: SmmuV3Domain): S1CdOptions {
    return {
      asid: d.id,
      ttb0: BigInt(d.table.root),
      inputBits: d.table.inputBits,
      ips: SMMU_OAS_BITS.indexOf(this.oasBits),
      mair: LPAE_LINUX_MAIR,
    };
  }

  /** A stage-1 STE over `table` (Linux's `arm_smmu_make_cdtable_ste`). */
  #cdTableSte(table: CdTable, s1dss: number): bigint[] {
    return encodeS1Ste({
      cdTable: table.base,
      s1cdmax: table.s1cdmax,
      s1fmt: table.s1fmt,
      s1dss,
    });
  }

  #s2Ste(d: SmmuV3Domain): bigint[] {
    return encodeS2Ste({
      vmid: d.id,
      ttb: BigInt(d.table.root),
      inputBits: d.table.inputBits,
      ps: SMMU_OAS_BITS.indexOf(this.oasBits),
    });
  }

  /** Stage-1 bypass (STE bypass or S1DSS = bypass): identity, the input checked against the OAS. */
  #bypass(t: Txn): TranslateResult {
    if (t.iova >= 1n << BigInt(this.oasBits)) {
      return this.#event(t, SMMU_EVT.F_ADDR_SIZE, { class: SMMU_EVT_CLASS.IN });
    }
    return { ok: true, phys: t.iova };
  }

  #stage1(t: Txn, ste: SteView): TranslateResult {
    // ILLEGAL STE: a CD table format the SMMU lacks, or more CDs than SubstreamIDs (§5.2).
    if (ste.s1fmt > STE_S1FMT.L2_4K || ste.s1cdmax > this.ssidBits) {
      return this.#event(t, SMMU_EVT.C_BAD_STE);
    }
    let ssid = t.pasid ?? 0;
    if (t.pasid !== undefined) {
      if (t.pasid >= 2 ** ste.s1cdmax || (ste.s1dss === STE_S1DSS.SSID0 && t.pasid === 0)) {
        return this.#event(t, SMMU_EVT.C_BAD_SUBSTREAMID);
      }
    } else if (ste.s1cdmax !== 0) {
      if (ste.s1dss === STE_S1DSS.TERMINATE) return this.#event(t, SMMU_EVT.F_STREAM_DISABLED);
      if (ste.s1dss === STE_S1DSS.BYPASS) return this.#bypass(t);
      ssid = 0;
    }
    const key = `${t.sid}:${ssid}`;
    let cd = this.#cdCache.get(key);
    if (cd === undefined) {
      const at = locateCd(this.memory, ste, ssid);
      if ("badSubstream" in at) return this.#event(t, SMMU_EVT.C_BAD_SUBSTREAMID);
      const addr = "addr" in at ? at.addr : at.fetchAbort;
      const w = "addr" in at ? readWords(this.memory, addr, CD_WORDS_USED) : undefined;
      if (w === undefined) return this.#event(t, SMMU_EVT.F_CD_FETCH, { addr2: addr });
      cd = decodeCd(w);
      const legal = cd.valid && cd.aa64 && cd.tg0 === CD_TG0_4K && cd.ips < SMMU_OAS_BITS.length &&
        cd.t0sz >= CD_T0SZ_RANGE.min && cd.t0sz <= CD_T0SZ_RANGE.max;
      if (!legal) return this.#event(t, SMMU_EVT.C_BAD_CD);
      this.#cdCache.set(key, cd);
    }
    const inputBits = SMMU_TXSZ_BASE - cd.t0sz;
    const fields = { class: SMMU_EVT_CLASS.IN };
    if (cd.epd0 || t.iova < 0n || t.iova >= 1n << BigInt(inputBits)) {
      return this.#walkFault(t, "translation", cd.recordFaults, fields);
    }
    const outputBits = Math.min(SMMU_OAS_BITS[cd.ips], this.oasBits);
    const walk = { stage: 1 as const, root: cd.ttb0, inputBits, outputBits };
    return this.#walk(t, ste.s2vmid * ASID_SPAN + cd.asid, walk, cd.recordFaults, fields);
  }

  #stage2(t: Txn, ste: SteView): TranslateResult {
    const inputBits = SMMU_TXSZ_BASE - ste.s2t0sz;
    const legal = ste.s2aa64 && ste.s2ps < SMMU_OAS_BITS.length && inputBits <= this.oasBits &&
      ste.s2t0sz <= CD_T0SZ_RANGE.max && ste.s2sl0 === STE_S2SL0_LEVEL0 - lpaeStartLevel(inputBits);
    if (!legal) return this.#event(t, SMMU_EVT.C_BAD_STE);
    // Stage 1 is bypassed: the input is checked against the IAS first (a stage-1 fault).
    if (t.iova >= 1n << BigInt(this.oasBits)) {
      return this.#event(t, SMMU_EVT.F_ADDR_SIZE, { class: SMMU_EVT_CLASS.IN });
    }
    const fields = { class: SMMU_EVT_CLASS.IN, s2: true, addr2: t.iova };
    if (t.iova >= 1n << BigInt(inputBits)) {
      return this.#walkFault(t, "translation", ste.s2r, fields);
    }
    const outputBits = Math.min(SMMU_OAS_BITS[ste.s2ps], this.oasBits);
    const walk = { stage: 2 as const, root: ste.s2ttb, inputBits, outputBits };
    return this.#walk(t, S2_TAG_BASE + ste.s2vmid, walk, ste.s2r, fields);
  }

  #walk(
    t: Txn,
    tag: number,
    cfg: { stage: LpaeStage; root: bigint; inputBits: number; outputBits: number },
    record: boolean,
    fields: Partial<SmmuEvent>,
  ): TranslateResult {
    const write = t.access === "write";
    const cached = this.iotlb.lookup(tag, t.iova);
    if (cached && (write ? cached.write : cached.read)) {
      return { ok: true, phys: cached.physBase + (t.iova - cached.iovaBase) };
    }
    const w = lpaeWalk(this.memory, cfg, t.iova);
    if (!w.ok) return this.#walkFault(t, w.fault, record, fields);
    if (!(write ? w.prot.write : w.prot.read)) {
      return this.#walkFault(t, "permission", record, fields);
    }
    this.iotlb.insert({
      did: tag,
      iovaBase: w.pageIova,
      size: w.pageSize,
      physBase: w.phys - (t.iova - w.pageIova),
      read: w.prot.read,
      write: w.prot.write,
    });
    return { ok: true, phys: w.phys };
  }

  #walkFault(
    t: Txn,
    kind: LpaeFaultKind | "permission",
    record: boolean,
    fields: Partial<SmmuEvent>,
  ): TranslateResult {
    const id = WALK_FAULT_EVENT[kind];
    if (kind === "external-abort") return this.#event(t, id, fields);
    // CD.R / STE.S2R clear: these faults terminate the transaction without a record.
    if (!record) return this.#terminate(t, `${smmuEventName(id)} not recorded (CD.R/S2R = 0)`);
    return this.#event(t, id, fields);
  }

  /**
   * Record event `id` (with `stage` for a nested translation). With `pageRequest` it went to a
   * page-request handler instead: kept in {@link faults} only, not queued or logged.
   */
  #event(
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
        ? `arm-smmu-v3 ${this.name}: page request (${smmuEventName(id)}) ${t.access} of ` +
          `0x${t.iova.toString(16)} from StreamID 0x${t.sid.toString(16)}` +
          `${t.pasid === undefined ? "" : ` SSID 0x${t.pasid.toString(16)}`}: to the fault queue`
        : smmuEventMessage(this.name, raw),
      timeNs: this.#clock.nowNs,
      ...(stage === undefined ? {} : { stage }),
    };
    this.#faults.push(fault);
    if (pageRequest) {
      this.traceLine(`smmuv3 ${fault.message}`);
      return { ok: false, fault };
    }
    this.eventQueue.write(raw);
    this.traceLine(`smmuv3 event ${fault.message}`);
    if (this.#hostDrains) this.drainEvents();
    return { ok: false, fault };
  }

  /** A transaction terminated without an event (abort STE, CD.R = 0): not logged anywhere. */
  #terminate(t: Txn, why: string): TranslateResult {
    const fault: IommuFault = {
      format: "smmuv3-evt",
      requester: t.sid,
      pasid: t.pasid,
      address: t.iova,
      access: t.access,
      reason: 0,
      reasonName: "terminated without an event",
      raw: new Uint8Array(0),
      message: `arm-smmu-v3 ${this.name}: (no event) ${t.access} of 0x${t.iova.toString(16)} ` +
        `from StreamID 0x${t.sid.toString(16)} terminated: ${why}`,
      timeNs: this.#clock.nowNs,
    };
    this.traceLine(`smmuv3 ${fault.message}`);
    return { ok: false, fault };
  }

  #own(domain: IommuDomain): SmmuV3Domain | SmmuV3NestedDomain {
    if (domain instanceof SmmuV3NestedDomain && domain.parent.unit === this) return domain;
    if (!(domain instanceof SmmuV3Domain) || domain.unit !== this) {
      throw new TypeError("SMMUv3: not a domain of this SMMU");
    }
    return domain;
  }
}

/**
 * `iommu_hw_info_arm_smmuv3` as Linux 6.13's `arm_smmu_hw_info` fills it: the raw ID registers
 * (IDR2 and IDR4 read 0 here), IIDR and AIDR.
 */
export function smmuHwInfoData(idr: SmmuIdrValues): Uint8Array {
  return encode(iommu_hw_info_arm_smmuv3, {
    idr: [idr.idr0, idr.idr1, 0, idr.idr3, 0, idr.idr5],
    iidr: idr.iidr,
    aidr: idr.aidr,
  });
}

/** Event of each walk outcome. */
const WALK_FAULT_EVENT: Readonly<Record<LpaeFaultKind | "permission", number>> = {
  translation: SMMU_EVT.F_TRANSLATION,
  access: SMMU_EVT.F_ACCESS,
  "address-size": SMMU_EVT.F_ADDR_SIZE,
  "external-abort": SMMU_EVT.F_WALK_EABT,
  permission: SMMU_EVT.F_PERMISSION,
};
