/**
 * A simulated Intel VT-d remapping unit in legacy (second-level) mode, as QEMU's `intel-iommu`
 * presents it to a Linux 6.12 guest: real CAP/ECAP values, second-stage page tables in the real
 * format in {@link PhysicalMemory}, an IOTLB tagged by domain id, and fault records in the
 * hardware's 128-bit format with Linux's DMAR log line.
 *
 * Translation of one request (no PASID), in the order the hardware checks:
 * 1. IOVA in the interrupt-address window 0xfee00000–0xfeefffff: an interrupt request, never a
 *    memory access (VT-d §3.14). DMA writes of data there are refused (see {@link VtdIommu.translate}).
 * 2. No domain attached (no present context entry): fault 0x02.
 * 3. IOVA beyond the domain's address width: fault 0x04.
 * 4. IOTLB, then a page walk: missing or insufficient permission gives 0x05 (write) / 0x06 (read).
 *
 * Requests with a PASID get 0x31 ("SM: TTM 0 for request with PASID") in legacy mode, which has
 * no PASID tables. With `scalableMode` the unit has per-device PASID tables (requests without
 * PASID use RID_PASID), a PASID wider than ECAP.PSS allows faults 0x46, a PASID without an entry
 * 0x59, and with nesting the entries may hold nested domains (vtd_nested.ts): the user's
 * first-stage tables over a kernel second stage, with the walk and faults of
 * vtd_first_stage.ts.
 *
 * Domains are in vtd_domain.ts, the context entries and PASID tables in vtd_context.ts, and the
 * fault path (records, the DMAR log, interrupt-window and page-request faults) in
 * vtd_fault_log.ts; this file keeps the unit, its registers and the translation.
 *
 * @example
 * ```ts
 * const memory = new PhysicalMemory();
 * const iommu = new VtdIommu({ memory, clock: new VirtualClock() });
 * const domain = iommu.allocDomain();
 * domain.map(0x100000n, 0x1_0000_0000n, 0x2000n, { read: true, write: true });
 * iommu.attach(0x0010, domain); // 00:02.0
 * iommu.translate(0x0010, undefined, 0x100010n, "read", 4); // { ok: true, phys: 0x1_0000_0010n }
 * ```
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import type { VirtualClock } from "../../clock.ts";
import type { PhysicalMemory } from "../../memory.ts";
import { faultOf, TranslationEpoch } from "../model.ts";
import type {
  DmaAccess,
  IommuDomain,
  IommuFacts,
  IommuFault,
  IommuModel,
  IommuNesting,
  NestedStage1,
  ReservedRegion,
  TranslateResult,
  TranslationHint,
} from "../model.ts";
import { decode } from "../../../ffi/uapi/layout.ts";
import {
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HWPT_DATA_VTD_S1,
  iommu_hwpt_vtd_s1,
} from "../../../ffi/uapi/mod.ts";
import { nestedFaultStage, VTD_SM_FR } from "./vtd_first_stage.ts";
import { describeVtdInvalidation, VtdNestedDomain } from "./vtd_nested.ts";
import { VTD_FR, VtdFaultUnit } from "./vtd_fault.ts";
import {
  levelSize,
  SecondStageTable,
  VTD_LEVEL_STRIDE,
  VTD_PAGE_SHIFT,
  VTD_PAGE_SIZE,
} from "./vtd_pgtable.ts";
import { VtdIotlb } from "./vtd_iotlb.ts";
import {
  VTD_AGAW_BASE,
  VTD_AGAW_STEP,
  VTD_CAP,
  VTD_ECAP,
  VTD_FRR_BYTES,
  VTD_GSTS,
  VTD_ND_BASE,
  VTD_ND_STEP,
  VTD_QEMU_NFR,
  VTD_REG,
  VTD_VERSION,
  type VtdAddressWidth,
  vtdCapValue,
  vtdEcapValue,
  vtdHwInfoData,
} from "./vtd_regs.ts";
import { getField } from "../reg_fields.ts";
import { VtdDomain } from "./vtd_domain.ts";
import { VtdContextTables } from "./vtd_context.ts";
import { VtdFaultLog } from "./vtd_fault_log.ts";

/** The x86 interrupt-address window (IOMMU_RESV_MSI on VT-d), inclusive. */
export const VTD_MSI_WINDOW = { start: 0xfee0_0000n, end: 0xfeef_ffffn } as const;
/** Domain ids 0 and 1 are reserved (caching-mode tag, FLPT_DEFAULT_DID); Linux allocates from 2. */
export const VTD_FIRST_DID = 2;
/** Default IOTLB capacity in entries. */
export const VTD_IOTLB_ENTRIES = 512;

/** An RMRR (ACPI DMAR reserved-memory region) and the devices it covers. */
export interface VtdRmrr {
  /** First address. */
  readonly start: bigint;
  /** Last address (inclusive). */
  readonly end: bigint;
  /** Requester ids in the RMRR's device scope. */
  readonly requesters: readonly number[];
  /** USB / graphics devices get DIRECT_RELAXABLE instead of DIRECT. */
  readonly relaxable?: boolean;
}

/** Options of {@link VtdIommu}. */
export interface VtdOptions {
  /** Physical memory that holds the page tables. */
  readonly memory: PhysicalMemory;
  /** The machine's clock (fault timestamps). */
  readonly clock: VirtualClock;
  /** Guest address width: 48 (default, 4-level), 39 (3-level) or 57 (5-level). */
  readonly addressWidth?: VtdAddressWidth;
  /** RMRRs from the (simulated) ACPI DMAR table. */
  readonly rmrrs?: readonly VtdRmrr[];
  /** Interrupt remapping (ECAP.IR; default true). */
  readonly intremap?: boolean;
  /** MSI isolation as the kernel sees it (default: = intremap). */
  readonly msiIsolated?: boolean;
  /** Fault-recording registers (CAP.NFR + 1; default 1 as QEMU). */
  readonly faultRegisters?: number;
  /**
   * Drain the fault registers as soon as a fault is recorded, as Linux's `dmar_fault` interrupt
   * handler does (default true). False leaves them for {@link VtdIommu.readRegister} tests.
   */
  readonly hostDrainsFaults?: boolean;
  /** IOTLB capacity in entries (default {@link VTD_IOTLB_ENTRIES}). */
  readonly iotlbEntries?: number;
  /**
   * Scalable mode (default off, as QEMU's intel-iommu without `x-scalable-mode`): PASID tables
   * per device with PASIDs of `pasidBits` bits (default 20), first- and second-stage
   * translation, and with `nesting` (default true) nested translation (ECAP.NEST), which QEMU 10
   * does not offer: the nested stage-1 domains of iommufd's VTD_S1 HWPTs.
   */
  readonly scalableMode?: { readonly pasidBits?: number; readonly nesting?: boolean };
  /** Trace sink for maps, unmaps, attaches and faults. */
  readonly trace?: (line: string) => void;
  /** Host kernel log sink: receives the DMAR lines Linux prints when it drains faults. */
  readonly kernelLog?: (line: string) => void;
}

/** Stage-1 faults a fault-capable nested domain reports as page requests: not present, no write. */
const RECOVERABLE_FS_REASONS: ReadonlySet<number> = new Set([
  VTD_SM_FR.FL_NOT_PRESENT,
  VTD_SM_FR.NO_WRITE,
]);

/** Default PASID width of scalable mode (PCIe's 20 bits). */
export const VTD_DEFAULT_PASID_BITS = 20;

/** The simulated VT-d unit. */
export class VtdIommu implements IommuModel {
  /** The facts Linux derives from this unit (see {@link IommuFacts}). */
  readonly facts: IommuFacts;
  /** CAP register value. */
  readonly cap: bigint;
  /** ECAP register value. */
  readonly ecap: bigint;
  /** Page-table levels of every domain. */
  readonly levels: number;
  /** The IOTLB. */
  readonly iotlb: VtdIotlb;
  /**
   * Generation of the unit's translation state: bumped by every IOTLB change (the IOTLB owns the
   * bumps). Every context and PASID-table change of this unit flushes the IOTLB of the domains
   * involved, so the IOTLB's bumps cover them too.
   */
  readonly translationEpoch: TranslationEpoch = new TranslationEpoch();
  readonly #memory: PhysicalMemory;
  readonly #rmrrs: readonly VtdRmrr[];
  readonly #faultUnit: VtdFaultUnit;
  /** The fault path: records, the registers' drain, page requests (vtd_fault_log.ts). */
  readonly #faultLog: VtdFaultLog;
  readonly #trace?: (line: string) => void;
  readonly #dids = new Set<number>();
  readonly #maxDid: number;
  /** Context entries and PASID tables (vtd_context.ts). */
  readonly #tables: VtdContextTables;
  /** Their maps, read directly on the translation path. */
  readonly #context: Map<number, VtdDomain | VtdNestedDomain>;
  readonly #pasidTables: Map<number, Map<number, VtdDomain | VtdNestedDomain>>;
  readonly #fpd: Map<number, Set<number>>;
  readonly #scalable: boolean;
  /** Nested translation, present when scalable mode has nesting. */
  readonly nesting?: IommuNesting;
  readonly #intremap: boolean;
  readonly #largestLeaf: number;

  /** A unit over `memory`; see {@link VtdOptions}. */
  constructor(o: VtdOptions) {
    const width = o.addressWidth ?? 48;
    this.#memory = o.memory;
    this.#rmrrs = o.rmrrs ?? [];
    this.#intremap = o.intremap ?? true;
    this.#trace = o.trace;
    const nfr = o.faultRegisters ?? VTD_QEMU_NFR;
    this.cap = vtdCapValue({
      width,
      faultRegisters: nfr,
      firstStage: o.scalableMode !== undefined,
    });
    const sm = o.scalableMode;
    this.#scalable = sm !== undefined;
    const scalable = sm && {
      pasidBits: sm.pasidBits ?? VTD_DEFAULT_PASID_BITS,
      nesting: sm.nesting ?? true,
    };
    this.ecap = vtdEcapValue({ intremap: this.#intremap, scalable });
    if (scalable?.nesting) {
      this.nesting = {
        allocNested: (parent, stage1) => this.#allocNested(parent, stage1),
        invalidateNested: (domain, entry) => {
          const d = this.#ownNested(domain);
          this.traceLine(`vtd invalidate did=${d.id} ${describeVtdInvalidation(entry)}`);
          return d.invalidate(entry);
        },
        setPageRequestHandler: (domain, handler) => {
          this.#ownNested(domain).pageRequest = handler;
        },
      };
    }
    this.#faultUnit = new VtdFaultUnit(getField(this.cap, VTD_CAP.NFR) + 1);
    this.#faultLog = new VtdFaultLog({
      clock: o.clock,
      faultUnit: this.#faultUnit,
      hostDrains: o.hostDrainsFaults ?? true,
      kernelLog: o.kernelLog,
      intremap: this.#intremap,
      traceLine: (line) => this.traceLine(line),
    });
    this.#tables = new VtdContextTables(this, this.#scalable, (domain) => this.#own(domain));
    this.#context = this.#tables.context;
    this.#pasidTables = this.#tables.pasidTables;
    this.#fpd = this.#tables.fpd;
    this.#maxDid = 2 ** (VTD_ND_BASE + VTD_ND_STEP * getField(this.cap, VTD_CAP.ND)) - 1;
    this.iotlb = new VtdIotlb(o.iotlbEntries ?? VTD_IOTLB_ENTRIES, this.translationEpoch);
    // Linux picks the largest SAGAW level; the aperture is limited by MGAW too.
    const sagaw = getField(this.cap, VTD_CAP.SAGAW);
    const agawWidth = VTD_AGAW_BASE + VTD_AGAW_STEP * Math.floor(Math.log2(sagaw));
    this.levels = (agawWidth - VTD_PAGE_SHIFT) / VTD_LEVEL_STRIDE; // 39 → 3, 48 → 4, 57 → 5
    const gaw = Math.min(agawWidth, getField(this.cap, VTD_CAP.MGAW) + 1);
    const sllps = getField(this.cap, VTD_CAP.SLLPS);
    let pgsizes = BigInt(VTD_PAGE_SIZE);
    let largest = 1;
    for (let bit = 0; bit < VTD_CAP.SLLPS.width; bit++) {
      if (((sllps >> bit) & 1) === 0) break;
      largest = bit + 2;
      pgsizes |= levelSize(largest);
    }
    this.#largestLeaf = largest;
    const pasidBits = getField(this.ecap, VTD_ECAP.PASID)
      ? getField(this.ecap, VTD_ECAP.PSS) + 1
      : 0;
    this.facts = {
      kind: "vtd",
      pgsizeBitmap: pgsizes,
      aperture: { start: 0n, end: (1n << BigInt(gaw)) - 1n },
      cacheCoherency: true,
      enforceCacheCoherency: getField(this.ecap, VTD_ECAP.SC) === 1,
      dirtyTracking: getField(this.ecap, VTD_ECAP.SLADS) === 1,
      msiIsolated: o.msiIsolated ?? this.#intremap,
      hwInfo: { type: IOMMU_HW_INFO_TYPE_INTEL_VTD, data: vtdHwInfoData(this.cap, this.ecap) },
      maxPasidLog2: pasidBits,
    };
  }

  /** Every fault recorded so far, oldest first (beyond the hardware's NFR registers). */
  get faults(): readonly IommuFault[] {
    return this.#faultLog.faults;
  }

  /** Domain ids in use. */
  get domainIds(): number[] {
    return [...this.#dids].sort((a, b) => a - b);
  }

  /** The MSI window, plus each RMRR whose scope holds the device, sorted by address. */
  reservedRegions(requester: number): ReservedRegion[] {
    const out: ReservedRegion[] = [{ ...VTD_MSI_WINDOW, type: "msi" }];
    for (const r of this.#rmrrs) {
      if (!r.requesters.includes(requester)) continue;
      out.push({ start: r.start, end: r.end, type: r.relaxable ? "direct-relaxable" : "direct" });
    }
    return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** Fault injection: the fault of a DMA that finds no PTE permission (reason 0x05/0x06). */
  injectFault(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
  ): IommuFault {
    const reason = access === "write" ? VTD_FR.PTE_WRITE : VTD_FR.PTE_READ;
    return faultOf(this.#faultLog.fault(requester, pasid, iova, access, reason));
  }

  /** Domains allocated and not freed (nested ones included). */
  domainsInUse(): number {
    return this.#dids.size;
  }

  /** A new domain with the lowest free DID ≥ 2; throws when all 2^16 − 2 are in use. */
  allocDomain(): VtdDomain {
    const did = this.#takeDid();
    const table = new SecondStageTable(this.#memory, this.levels, this.#largestLeaf);
    this.traceLine(`vtd domain alloc did=${did}`);
    return new VtdDomain(this, did, table);
  }

  #takeDid(): number {
    let did = VTD_FIRST_DID;
    while (this.#dids.has(did)) did++;
    if (did > this.#maxDid) throw new RangeError("VT-d: out of domain ids");
    this.#dids.add(did);
    return did;
  }

  /** A nested domain: `iommu_hwpt_vtd_s1` over a parent of this unit; -EINVAL otherwise. */
  #allocNested(parent: IommuDomain, stage1: NestedStage1): VtdNestedDomain | number {
    if (!(parent instanceof VtdDomain) || parent.unit !== this || parent.freed) {
      return -ERRNO.EINVAL;
    }
    if (stage1.dataType !== IOMMU_HWPT_DATA_VTD_S1) return -ERRNO.EOPNOTSUPP;
    const s1 = decode(iommu_hwpt_vtd_s1, stage1.data);
    const levels = s1.addr_width === 57 ? 5 : 4;
    let did: number;
    try {
      did = this.#takeDid();
    } catch {
      return -ERRNO.ENOSPC;
    }
    const d = new VtdNestedDomain(did, parent, s1.pgtbl_addr, levels, this.#memory, this.iotlb);
    parent.children.add(d);
    this.traceLine(
      `vtd nested domain alloc did=${did} parent=${parent.id} ` +
        `fs-root=0x${s1.pgtbl_addr.toString(16)} ${levels}-level`,
    );
    return d;
  }

  #ownNested(domain: IommuDomain): VtdNestedDomain {
    if (!(domain instanceof VtdNestedDomain) || !this.#dids.has(domain.id)) {
      throw new TypeError("VT-d: not a nested domain of this unit");
    }
    return domain;
  }

  /** Free a domain's tables and DID. Throws if it is attached or not this unit's. */
  freeDomain(domain: IommuDomain): void {
    const d = this.#own(domain);
    if (d.freed) return;
    for (const attached of this.#tables.attachedDomains()) {
      if (attached === d) throw new Error(`VT-d: domain ${d.id} freed while attached`);
    }
    this.iotlb.flushDomain(d.id);
    d.freed = true;
    if (d instanceof VtdNestedDomain) {
      d.parent.children.delete(d);
    } else {
      if (d.children.size > 0) throw new Error(`VT-d: nest parent ${d.id} freed with children`);
      d.table.destroy();
    }
    this.#dids.delete(d.id);
    this.traceLine(`vtd domain free did=${d.id}`);
  }

  /**
   * Set (or clear, with `null`) the PASID-table entry of `pasid` for a device (scalable mode);
   * flushes the old and new domains. Legacy mode has no PASID tables: -EOPNOTSUPP.
   */
  attachPasid(requester: number, pasid: number, domain: IommuDomain | null): number {
    return this.#tables.attachPasid(requester, pasid, domain);
  }

  /**
   * Tear down every device's PASID-table entry of `pasid` with fault processing disabled (P = 0,
   * FPD = 1, as Linux's `pasid_clear_entry_with_fpd`), flushing the domains they held: requests
   * with it are then blocked without a fault record. Returns the requesters.
   */
  silencePasid(pasid: number): number[] {
    return this.#tables.silencePasid(pasid);
  }

  /** Clear the FPD of torn-down `pasid` entries: requests with it fault visibly again (0x59). */
  clearSilencedPasid(pasid: number): void {
    this.#tables.clearSilencedPasid(pasid);
  }

  /** The domain on a device's PASID (scalable mode). */
  attachedPasid(requester: number, pasid: number): VtdDomain | VtdNestedDomain | undefined {
    return this.#pasidTables.get(requester)?.get(pasid);
  }

  /** Set the device's context entry to `domain` (or clear it); flushes both domains' IOTLB. */
  attach(requester: number, domain: IommuDomain | null): void {
    this.#tables.attach(requester, domain);
  }

  /** The domain a device is attached to. */
  attached(requester: number): VtdDomain | VtdNestedDomain | undefined {
    return this.#context.get(requester);
  }

  /** Domain ids, context entries and PASID entries in use (see {@link IommuModel.liveDomains}). */
  liveDomains(): string[] {
    const out = this.domainIds.map((did) => `did=${did}`);
    out.push(...this.#tables.liveEntries());
    return out.sort();
  }

  /**
   * Translate one access of `length` bytes within one 4 KiB page (callers split at page
   * boundaries; only the first page is checked).
   *
   * The interrupt window: a DMA read there is malformed; a DMA write is an interrupt request,
   * never memory. The model does not deliver interrupts written as data (devices raise theirs
   * through their InterruptSink), so it refuses every such access without touching memory and,
   * with interrupt remapping on, records the fault the remapping hardware would: 0x20 for a read
   * or a write that is not one aligned DWORD, 0x25 for a compatibility-format request, 0x22 for a
   * remappable one (the model keeps no IRTEs for data writes). Without interrupt remapping the
   * hardware would pass the write to the interrupt controller; the model refuses it all the same
   * and logs it in {@link faults} with reason 0 ("Software") but in no fault register.
   *
   * Every success comes from the IOTLB or is entered into it, so it is `cacheable` (see
   * {@link TranslationHint}): it stays the answer until an IOTLB change bumps the epoch.
   */
  translate(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    length: number,
    hint?: TranslationHint,
  ): TranslateResult {
    if (pasid === undefined && iova >= VTD_MSI_WINDOW.start && iova <= VTD_MSI_WINDOW.end) {
      return this.#faultLog.interruptWindow(requester, iova, access, length);
    }
    if (pasid !== undefined && !this.#scalable) {
      return this.#faultLog.fault(requester, pasid, iova, access, VTD_FR.SM_TTM0_PASID);
    }
    if (pasid !== undefined && pasid >= 2 ** this.facts.maxPasidLog2) {
      return this.#faultLog.fault(requester, pasid, iova, access, VTD_FR.SM_PASID_TOO_LARGE);
    }
    const domain = pasid === undefined
      ? this.#context.get(requester)
      : this.#pasidTables.get(requester)?.get(pasid);
    if (!domain) {
      const reason = this.#scalable ? VTD_FR.SM_PASID_ENTRY_P : VTD_FR.CONTEXT_ENTRY_P;
      if (pasid !== undefined && this.#fpd.get(requester)?.has(pasid)) {
        return this.#faultLog.unreported(requester, pasid, iova, access, reason);
      }
      return this.#faultLog.fault(requester, pasid, iova, access, reason);
    }
    if (domain instanceof VtdNestedDomain) {
      const r = domain.translate(iova, access, pasid ?? 0);
      if (r.ok) {
        if (hint) hint.cacheable = true;
        return r;
      }
      if (domain.pageRequest && RECOVERABLE_FS_REASONS.has(r.reason)) {
        return this.#faultLog.pageRequest(
          domain.pageRequest,
          requester,
          pasid,
          iova,
          access,
          r.reason,
        );
      }
      return this.#faultLog.fault(
        requester,
        pasid,
        iova,
        access,
        r.reason,
        undefined,
        nestedFaultStage(r.reason),
      );
    }
    if (iova < 0n || iova > this.facts.aperture.end) {
      return this.#faultLog.fault(requester, pasid, iova, access, VTD_FR.ADDR_BEYOND_MGAW);
    }
    const denied = access === "write" ? VTD_FR.PTE_WRITE : VTD_FR.PTE_READ;
    const cached = this.iotlb.lookup(domain.id, iova, pasid ?? 0);
    if (cached && (access === "write" ? cached.write : cached.read)) {
      if (hint) hint.cacheable = true;
      return { ok: true, phys: cached.physBase + (iova - cached.iovaBase) };
    }
    const walk = domain.table.walk(iova);
    if (!walk || !(access === "write" ? walk.prot.write : walk.prot.read)) {
      return this.#faultLog.fault(requester, pasid, iova, access, denied);
    }
    this.iotlb.insert({
      did: domain.id,
      pasid: pasid ?? 0,
      iovaBase: walk.pageIova,
      size: walk.pageSize,
      physBase: walk.phys - (iova - walk.pageIova),
      read: walk.prot.read,
      write: walk.prot.write,
    });
    if (hint) hint.cacheable = true;
    return { ok: true, phys: walk.phys };
  }

  /**
   * Read a register of the unit: VER, CAP, ECAP, GSTS, FSTS, FECTL and the fault-recording
   * registers at CAP.FRO (4- or 8-byte reads; others read 0).
   */
  readRegister(offset: number, size: 4 | 8): bigint {
    const fro = getField(this.cap, VTD_CAP.FRO) * VTD_FRR_BYTES;
    if (offset >= fro && offset < fro + this.#faultUnit.count * VTD_FRR_BYTES) {
      const frr = this.#faultUnit.register(Math.floor((offset - fro) / VTD_FRR_BYTES));
      const at = (offset - fro) % VTD_FRR_BYTES;
      const v = new DataView(frr.buffer);
      if (at + size > VTD_FRR_BYTES) return 0n;
      return size === 8 ? v.getBigUint64(at, true) : BigInt(v.getUint32(at, true));
    }
    let value: bigint;
    switch (offset) {
      case VTD_REG.VER:
        value = BigInt(VTD_VERSION);
        break;
      case VTD_REG.CAP:
        value = this.cap;
        break;
      case VTD_REG.ECAP:
        value = this.ecap;
        break;
      case VTD_REG.GSTS:
        value = BigInt(
          (VTD_GSTS.TES | VTD_GSTS.RTPS | VTD_GSTS.QIES |
            (this.#intremap ? VTD_GSTS.IRES | VTD_GSTS.IRTPS : 0)) >>> 0,
        );
        break;
      case VTD_REG.FSTS:
        value = BigInt(this.#faultUnit.fsts);
        break;
      default:
        value = 0n;
    }
    return size === 8 ? value : value & 0xffff_ffffn;
  }

  /** Write a register: FSTS.PFO and FRR.F are RW1C; everything else modelled is read-only. */
  writeRegister(offset: number, size: 4 | 8, value: bigint): void {
    const fro = getField(this.cap, VTD_CAP.FRO) * VTD_FRR_BYTES;
    if (offset === VTD_REG.FSTS) {
      this.#faultUnit.writeFsts(Number(value & 0xffff_ffffn));
      return;
    }
    const highDword = VTD_FRR_BYTES - 4;
    const highQword = VTD_FRR_BYTES - 8;
    if (offset >= fro && offset < fro + this.#faultUnit.count * VTD_FRR_BYTES) {
      const i = Math.floor((offset - fro) / VTD_FRR_BYTES);
      const at = (offset - fro) % VTD_FRR_BYTES;
      if (size === 4 && at === highDword) this.#faultUnit.writeRegisterHigh(i, Number(value));
      if (size === 8 && at === highQword) {
        this.#faultUnit.writeRegisterHigh(i, Number(value >> 32n));
      }
    }
  }

  /**
   * Drain the fault registers as Linux's `dmar_fault` handler does; each record is written to the
   * kernel log as Linux prints it. Returns the lines.
   */
  drainFaults(): string[] {
    return this.#faultLog.drain();
  }

  /** @internal trace a line. */
  traceLine(line: string): void {
    this.#trace?.(line);
  }

  #own(domain: IommuDomain): VtdDomain | VtdNestedDomain {
    if (domain instanceof VtdNestedDomain && this.#dids.has(domain.id)) return domain;
    if (!(domain instanceof VtdDomain) || domain.unit !== this) {
      throw new TypeError("VT-d: not a domain of this unit");
    }
    return domain;
  }
}
