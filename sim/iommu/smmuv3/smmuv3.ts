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
 * Behaviour choices (documented deviations; those of the stream configuration — blocking, CD
 * tables, S1CDMax, EBUSY — are in smmuv3_streams.ts):
 * - STEs and CDs are cached per stream like the SMMU's configuration cache; the kernel side
 *   invalidates on every attach, anything else must call {@link SmmuV3Iommu.invalidateConfig}
 *   (CMD_CFGI_STE / CMD_CFGI_ALL).
 * - The event queue's size and drain: smmuv3_event_log.ts.
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

import type { PhysicalMemory } from "../../memory.ts";
import { faultOf, TranslationEpoch } from "../model.ts";
import type {
  DmaAccess,
  IommuDomain,
  IommuFacts,
  IommuFault,
  IommuModel,
  IommuNesting,
  ReservedRegion,
  TranslateResult,
  TranslationHint,
} from "../model.ts";
import { SMMU_RECOVERABLE_EVENTS, SmmuV3NestedDomain } from "./smmuv3_nested.ts";
import { SmmuV3Nesting } from "./smmuv3_nesting.ts";
import { S2_TAG_BASE, SmmuV3Domain } from "./smmuv3_domain.ts";
import { SmmuV3Streams } from "./smmuv3_streams.ts";
import {
  SMMU_EVTQ_SHIFT,
  SMMU_FIRST_ID,
  SMMU_IOTLB_ENTRIES,
  SMMU_QEMU_VIRT_NAME,
  SMMU_S1_INPUT_BITS,
  SMMU_SW_MSI_WINDOW,
  type SmmuV3Options,
} from "./smmuv3_options.ts";
import { SmmuV3EventLog, type Txn } from "./smmuv3_event_log.ts";
import {
  SMMU_EVT,
  SMMU_EVT_CLASS,
  type SmmuEvent,
  smmuEventName,
  SmmuEventQueue,
} from "./smmuv3_event.ts";
import { type LpaeStage, lpaeStartLevel, LpaeTable, lpaeWalk } from "./smmuv3_pgtable.ts";
import {
  idrField,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_MAX_SSID_BITS,
  SMMU_OAS_BITS,
  smmuDomainPgsizes,
  smmuHwInfoData,
  type SmmuIdrValues,
  smmuIdrValues,
  smmuReadRegister,
} from "./smmuv3_regs.ts";
import {
  CD_T0SZ_RANGE,
  CD_TG0_4K,
  CdTable,
  type CdView,
  decodeCd,
  decodeSte,
  locateCd,
  readWords,
  SMMU_TXSZ_BASE,
  STE_CONFIG,
  STE_S1DSS,
  STE_S1FMT,
  STE_S2SL0_LEVEL0,
  type SteView,
  StreamTable,
} from "./smmuv3_ste.ts";
import { VtdIotlb } from "../vtd/vtd_iotlb.ts";
import { IOMMU_HW_INFO_TYPE_NONE } from "../../../ffi/uapi/mod.ts";
import { IOMMU_HW_INFO_TYPE_ARM_SMMUV3 } from "../../../ffi/uapi/post_6_12.ts";

export type { SmmuV3Options } from "./smmuv3_options.ts";

/** STE words the SMMU decodes (0–3). */
const STE_WORDS_USED = 4;
/** CD words the SMMU decodes (0–1). */
const CD_WORDS_USED = 2;
/** ASIDs per VMID in the stage-1 tag (16-bit ASIDs). */
const ASID_SPAN = 2 ** 16;

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
  readonly #trace?: (line: string) => void;
  /** The event path: records, the queue's drain, terminations (smmuv3_event_log.ts). */
  readonly #events: SmmuV3EventLog;
  readonly #asids = new Set<number>();
  readonly #vmids = new Set<number>();
  /** The streams' STEs and CD tables (smmuv3_streams.ts). */
  readonly #streamConfig: SmmuV3Streams;
  /** Its map of attached streams, read directly on the translation path. */
  readonly #streams: Map<number, SmmuV3Domain | SmmuV3NestedDomain>;
  readonly #steCache = new Map<number, SteView>();
  readonly #cdCache = new Map<string, CdView>();
  /** Set by a translation answered from tables the SMMU walked without caching the result. */
  #uncachedAnswer = false;
  readonly #nesting?: SmmuV3Nesting;
  /** Nested translation, present when built with `nesting: true`. */
  readonly nesting?: IommuNesting;

  /** An SMMU over `memory`; see {@link SmmuV3Options}. */
  constructor(o: SmmuV3Options) {
    this.memory = o.memory;
    this.#trace = o.trace;
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
    this.#streamConfig = new SmmuV3Streams(
      this,
      (domain) => this.#own(domain),
      (sid, ssid) => this.#dropCd(sid, ssid),
    );
    this.#streams = this.#streamConfig.streams;
    this.#events = new SmmuV3EventLog({
      name: this.name,
      clock: o.clock,
      eventQueue: this.eventQueue,
      hostDrains: o.hostDrainsEvents ?? true,
      kernelLog: o.kernelLog,
      traceLine: (line) => this.traceLine(line),
      streams: this.#streams,
    });
    if (o.nesting) this.nesting = this.#nesting = new SmmuV3Nesting(this, this.#cdCache);
  }

  /** Every event recorded so far, oldest first. */
  get faults(): readonly IommuFault[] {
    return this.#events.faults;
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
    return faultOf(this.#events.record(t, SMMU_EVT.F_TRANSLATION, { class: SMMU_EVT_CLASS.IN }));
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
    for (const ssids of this.#streamConfig.pasids.values()) {
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
    return this.#streamConfig.attachPasid(requester, pasid, domain);
  }

  /**
   * Tear down SubstreamID `pasid` of every stream with a quiet CD ({@link encodeQuietCd}: valid,
   * walks disabled, faults not recorded), as Linux's `arm_smmu_mm_release` does while DMA may
   * still run; the ASID is flushed and the domain let go. The STE keeps its CD table. Returns the
   * streams.
   */
  silencePasid(pasid: number): number[] {
    return this.#streamConfig.silencePasid(pasid);
  }

  /**
   * Replace the quiet CDs of `pasid` with invalid ones (faults are reported again: C_BAD_CD); a
   * blocked stream with no SubstreamID left returns to its invalid STE.
   */
  clearSilencedPasid(pasid: number): void {
    this.#streamConfig.clearSilencedPasid(pasid);
  }

  /**
   * Probe a master as Linux's `arm_smmu_probe_device` / `arm_smmu_enable_pasid` do: its SSID bits
   * are the smaller of SSIDSIZE and its PCIe PASID capability's width (`pciPasidWidth`, 0 without
   * one); its CD table gets S1CDMax = those bits. A stream never probed uses SSIDSIZE.
   */
  probeMaster(requester: number, pciPasidWidth: number): void {
    this.#streamConfig.probeMaster(requester, pciPasidWidth);
  }

  /** SSID bits of a master (S1CDMax of its CD table). */
  masterSsidBits(requester: number): number {
    return this.#streamConfig.masterSsidBits(requester);
  }

  /** The domain on SubstreamID `pasid` of a stream, if one is attached there. */
  attachedPasid(requester: number, pasid: number): SmmuV3Domain | undefined {
    return this.#streamConfig.attachedPasid(requester, pasid);
  }

  /** `arm_smmu_attach_dev`: EBUSY for a stage-2 or nested domain while SubstreamIDs are in use. */
  attachCheck(requester: number, domain: IommuDomain): number {
    return this.#streamConfig.attachCheck(requester, domain);
  }

  /**
   * Program the stream's STE (and CD 0 for a stage-1 domain) as Linux does; `null` blocks it with
   * an invalid STE. Invalidates the configuration cache and the IOTLB of both domains.
   */
  attach(requester: number, domain: IommuDomain | null): void {
    this.#streamConfig.attach(requester, domain);
  }

  /** The domain a stream is attached to. */
  attached(requester: number): SmmuV3Domain | SmmuV3NestedDomain | undefined {
    return this.#streams.get(requester);
  }

  /** ASIDs, VMIDs, nested domains, STEs and substreams in use ({@link IommuModel.liveDomains}). */
  liveDomains(): string[] {
    const out = [
      ...[...this.#asids].map((id) => `asid=${id}`),
      ...[...this.#vmids].map((id) => `vmid=${id}`),
      ...(this.#nesting?.liveIds() ?? []).map((id) => `nested=${id}`),
      ...this.#streamConfig.liveStreams(),
    ];
    return out.sort();
  }

  /** The CD table of a stream (allocated at its first stage-1 attach). */
  cdTable(requester: number): CdTable | undefined {
    return this.#streamConfig.cdTable(requester);
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
      if ("badStreamId" in loc) return this.#events.record(t, SMMU_EVT.C_BAD_STREAMID);
      const addr = "addr" in loc ? loc.addr : loc.fetchAbort;
      const w = "addr" in loc ? readWords(this.memory, addr, STE_WORDS_USED) : undefined;
      if (w === undefined) return this.#events.record(t, SMMU_EVT.F_STE_FETCH, { addr2: addr });
      ste = decodeSte(w);
      this.#steCache.set(requester, ste);
    }
    if (ste.valid && ste.config === STE_CONFIG.NESTED) {
      const d = this.#streams.get(requester);
      if (d instanceof SmmuV3NestedDomain && this.#nesting) return this.#nested(t, d, ste);
    }
    if (!ste.valid || ste.config === STE_CONFIG.NESTED) {
      return this.#events.record(t, SMMU_EVT.C_BAD_STE);
    }
    if (ste.config < STE_CONFIG.BYPASS) return this.#events.terminate(t, "STE.Config = abort");
    const s1 = ste.config === STE_CONFIG.S1_TRANS;
    if (pasid !== undefined && (!s1 || ste.s1cdmax === 0)) {
      return this.#events.record(t, SMMU_EVT.C_BAD_SUBSTREAMID);
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
    return smmuReadRegister(this.idr, this.streamTable, this.eventQueue, offset, size);
  }

  /**
   * Drain the event queue as Linux's `arm_smmu_evtq_thread` does; each record's lines go to the
   * kernel log. Returns the lines.
   */
  drainEvents(): string[] {
    return this.#events.drain();
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

  /** A transaction on a nested STE: the domain walks; faults become events or page requests. */
  #nested(t: Txn, d: SmmuV3NestedDomain, ste: SteView): TranslateResult {
    const r = d.translate(ste, t.sid, t.pasid, t.iova, t.access, this.#cdCache);
    if (r.ok) {
      if (!r.cached) this.#uncachedAnswer = true;
      return { ok: true, phys: r.phys };
    }
    if (r.stage === 1 && d.pageRequest && SMMU_RECOVERABLE_EVENTS.has(r.event)) {
      d.pageRequest({ requester: t.sid, pasid: t.pasid, address: t.iova, access: t.access });
      return this.#events.record(t, r.event, { ...r.fields, stall: true }, 1, true);
    }
    if (!r.record) {
      return this.#events.terminate(t, `${smmuEventName(r.event)} not recorded (CD.R/S2R = 0)`);
    }
    return this.#events.record(t, r.event, r.fields, r.stage);
  }

  /** Stage-1 bypass (STE bypass or S1DSS = bypass): identity, the input checked against the OAS. */
  #bypass(t: Txn): TranslateResult {
    if (t.iova >= 1n << BigInt(this.oasBits)) {
      return this.#events.record(t, SMMU_EVT.F_ADDR_SIZE, { class: SMMU_EVT_CLASS.IN });
    }
    return { ok: true, phys: t.iova };
  }

  #stage1(t: Txn, ste: SteView): TranslateResult {
    // ILLEGAL STE: a CD table format the SMMU lacks, or more CDs than SubstreamIDs (§5.2).
    if (ste.s1fmt > STE_S1FMT.L2_4K || ste.s1cdmax > this.ssidBits) {
      return this.#events.record(t, SMMU_EVT.C_BAD_STE);
    }
    let ssid = t.pasid ?? 0;
    if (t.pasid !== undefined) {
      if (t.pasid >= 2 ** ste.s1cdmax || (ste.s1dss === STE_S1DSS.SSID0 && t.pasid === 0)) {
        return this.#events.record(t, SMMU_EVT.C_BAD_SUBSTREAMID);
      }
    } else if (ste.s1cdmax !== 0) {
      if (ste.s1dss === STE_S1DSS.TERMINATE) {
        return this.#events.record(t, SMMU_EVT.F_STREAM_DISABLED);
      }
      if (ste.s1dss === STE_S1DSS.BYPASS) return this.#bypass(t);
      ssid = 0;
    }
    const key = `${t.sid}:${ssid}`;
    let cd = this.#cdCache.get(key);
    if (cd === undefined) {
      const at = locateCd(this.memory, ste, ssid);
      if ("badSubstream" in at) return this.#events.record(t, SMMU_EVT.C_BAD_SUBSTREAMID);
      const addr = "addr" in at ? at.addr : at.fetchAbort;
      const w = "addr" in at ? readWords(this.memory, addr, CD_WORDS_USED) : undefined;
      if (w === undefined) return this.#events.record(t, SMMU_EVT.F_CD_FETCH, { addr2: addr });
      cd = decodeCd(w);
      const legal = cd.valid && cd.aa64 && cd.tg0 === CD_TG0_4K && cd.ips < SMMU_OAS_BITS.length &&
        cd.t0sz >= CD_T0SZ_RANGE.min && cd.t0sz <= CD_T0SZ_RANGE.max;
      if (!legal) return this.#events.record(t, SMMU_EVT.C_BAD_CD);
      this.#cdCache.set(key, cd);
    }
    const inputBits = SMMU_TXSZ_BASE - cd.t0sz;
    const fields = { class: SMMU_EVT_CLASS.IN };
    if (cd.epd0 || t.iova < 0n || t.iova >= 1n << BigInt(inputBits)) {
      return this.#events.walkFault(t, "translation", cd.recordFaults, fields);
    }
    const outputBits = Math.min(SMMU_OAS_BITS[cd.ips], this.oasBits);
    const walk = { stage: 1 as const, root: cd.ttb0, inputBits, outputBits };
    return this.#walk(t, ste.s2vmid * ASID_SPAN + cd.asid, walk, cd.recordFaults, fields);
  }

  #stage2(t: Txn, ste: SteView): TranslateResult {
    const inputBits = SMMU_TXSZ_BASE - ste.s2t0sz;
    const legal = ste.s2aa64 && ste.s2ps < SMMU_OAS_BITS.length && inputBits <= this.oasBits &&
      ste.s2t0sz <= CD_T0SZ_RANGE.max && ste.s2sl0 === STE_S2SL0_LEVEL0 - lpaeStartLevel(inputBits);
    if (!legal) return this.#events.record(t, SMMU_EVT.C_BAD_STE);
    // Stage 1 is bypassed: the input is checked against the IAS first (a stage-1 fault).
    if (t.iova >= 1n << BigInt(this.oasBits)) {
      return this.#events.record(t, SMMU_EVT.F_ADDR_SIZE, { class: SMMU_EVT_CLASS.IN });
    }
    const fields = { class: SMMU_EVT_CLASS.IN, s2: true, addr2: t.iova };
    if (t.iova >= 1n << BigInt(inputBits)) {
      return this.#events.walkFault(t, "translation", ste.s2r, fields);
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
    if (!w.ok) return this.#events.walkFault(t, w.fault, record, fields);
    if (!(write ? w.prot.write : w.prot.read)) {
      return this.#events.walkFault(t, "permission", record, fields);
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

  #own(domain: IommuDomain): SmmuV3Domain | SmmuV3NestedDomain {
    if (domain instanceof SmmuV3NestedDomain && domain.parent.unit === this) return domain;
    if (!(domain instanceof SmmuV3Domain) || domain.unit !== this) {
      throw new TypeError("SMMUv3: not a domain of this SMMU");
    }
    return domain;
  }
}
