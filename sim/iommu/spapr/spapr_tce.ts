/**
 * A POWER9 PowerNV PHB (IODA2) as the IOMMU: partitionable endpoints (PEs), each with up to two
 * DMA windows translated by TCE tables ({@link TceTable}), and EEH freezing a PE on a bad DMA
 * (iommu-models.md §3, vfio.md §9).
 *
 * What differs from the paging IOMMUs, and why the kernel side (sim/vfio/spapr.ts) drives this
 * model through {@link SpaprTceIommu.tableGroup} instead of domains:
 * - there are no per-device paging domains (6.12's `spapr_tce_iommu_ops` has no
 *   `domain_alloc_paging`): {@link allocDomain} and attaching a domain throw. Blocking a device
 *   (`attach(requester, null)`, the blocked domain VFIO claims) is PowerNV's `take_ownership`:
 *   the kernel's windows are removed from the PE and the user programs its own;
 * - IOVAs are PCI bus addresses and only translate inside a window: window 0 at the 32-bit
 *   window's start (0), window 1 at `1 << 59` (the PHB's bypass base, reused for a second DDW);
 * - a DMA outside every window, through an invalid TCE or against a TCE's permission bits does
 *   not just fail: the PHB freezes the whole PE (EEH). While frozen, the PE's DMA is dropped and
 *   its MMIO reads return all-ones (writes are dropped) until user space thaws it
 *   (VFIO_EEH_PE_OP UNFREEZE_IO/UNFREEZE_DMA, or RESET_DEACTIVATE after a reset) or the device
 *   changes owner: VFIO's first open and last close of a function thaw its frozen PE
 *   (`eeh_dev_open` / `eeh_dev_release` → `eeh_pe_change_owner`, arch/powerpc/kernel/eeh.c), so
 *   a freeze never outlives the session that caused it;
 * - a PE reset (RESET_HOT or RESET_FUNDAMENTAL) is a pulse on PowerNV: `eeh_pe_reset` freezes
 *   the PE (EEH_OPT_FREEZE_PE), then OPAL and `pci_bus_error_reset` reset the bus edge-triggered
 *   (the de-assert step is a no-op), so the PE reads STOPPED, not RESET, until RESET_DEACTIVATE
 *   re-enables the devices and thaws it (`eeh_pe_reenable_devices`).;
 * - the PHB caches the TCEs it fetches, as PHB4's TCE cache does; Linux kills that cache after
 *   every TCE update (`iommu_tce_kill`), which here is {@link TceTable.write} bumping the
 *   translation epoch, as every window, ownership and EEH change does too.
 *
 * Fault records use the simulator's own "pnv-tce" layout (32 bytes, big-endian, like the PHB's
 * registers): `u32 pe; u16 requester; u8 reason; u8 access (0 read, 1 write); u64 bus address;
 * u64 TCE read (0 when none); u64 window start (all-ones when none)`. It carries what a PHB4
 * TCE error log reports without claiming its register bit layout. The readable line is Linux's
 * EEH report, `EEH: Frozen PHB#0-PE#2 detected` (arch/powerpc/kernel/eeh.c), preceded by the
 * reason.
 *
 * Platform facts are data ({@link POWERNV_PHB4}): the 32-bit window is 2 GiB at bus 0, DDW page
 * sizes are POWER9's `ibm,supported-tce-sizes` (4 KiB, 64 KiB, 2 MiB, 1 GiB), two windows per
 * PE, five levels.
 *
 * @example
 * ```ts
 * const phb = new SpaprTceIommu({ memory, clock, hostPageSize: 65536, peOf: () => 2 });
 * const pe = phb.tableGroup(2);
 * const table = pe.createTable(0, 12, 1n << 31n, 1); // the 32-bit window, 4 KiB TCEs
 * pe.setWindow(0, table!);
 * ```
 *
 * @module
 */

import {
  VFIO_EEH_PE_STATE_NORMAL,
  VFIO_EEH_PE_STATE_STOPPED,
  VFIO_EEH_PE_STATE_STOPPED_DMA,
  VFIO_EEH_PE_STATE_UNAVAIL,
} from "../../../ffi/uapi/vfio.ts";
import type { VirtualClock } from "../../clock.ts";
import type { PhysicalMemory } from "../../memory.ts";
import { checkPasidAttach, faultOf, TranslationEpoch } from "../model.ts";
import type {
  DmaAccess,
  IommuDomain,
  IommuFacts,
  IommuFault,
  IommuModel,
  ReservedRegion,
  TranslateResult,
  TranslationHint,
} from "../model.ts";
import { TCE_PCI_READ, TCE_PCI_WRITE, TceTable, tceTableGeometry } from "./spapr_tce_table.ts";

/** What a PHB offers VFIO (`struct iommu_table_group` fields of a PE). */
export interface SpaprPlatform {
  /** Bus address of the default 32-bit window (`tce32_start`). */
  readonly tce32Start: bigint;
  /** Size of the default 32-bit window (`tce32_size`). */
  readonly tce32Size: bigint;
  /** TCE page sizes a window may use, as a bitmap of sizes (`pgsizes`). */
  readonly pgsizes: bigint;
  /** Windows per PE (`max_dynamic_windows_supported`, `IOMMU_TABLE_GROUP_MAX_TABLES`). */
  readonly maxWindows: number;
  /** Most table levels (`max_levels`). */
  readonly maxLevels: number;
  /** Bus address of window 1 (`tce_bypass_base`). */
  readonly secondWindowStart: bigint;
  /** PHB number in kernel messages. */
  readonly phb: number;
}

/**
 * A POWER9 PHB4 under PowerNV: 32-bit window [0, 2 GiB) (its size is the start of the PHB's
 * 32-bit MMIO window, commonly 2 GiB), TCE sizes 4K/64K/2M/1G, two windows, five levels.
 */
export const POWERNV_PHB4: SpaprPlatform = {
  tce32Start: 0n,
  tce32Size: 0x8000_0000n,
  pgsizes: (1n << 12n) | (1n << 16n) | (1n << 21n) | (1n << 30n),
  maxWindows: 2,
  maxLevels: 5,
  secondWindowStart: 1n << 59n,
  phb: 0,
};

/** EEH PE states (`EEH_PE_STATE_*` of asm/eeh.h, the values VFIO_EEH_PE_GET_STATE returns). */
const EEH_PE_STATE = {
  NORMAL: VFIO_EEH_PE_STATE_NORMAL,
  STOPPED: VFIO_EEH_PE_STATE_STOPPED,
  STOPPED_DMA: VFIO_EEH_PE_STATE_STOPPED_DMA,
  UNAVAIL: VFIO_EEH_PE_STATE_UNAVAIL,
} as const;

/** Why the PHB refused a DMA (the `reason` byte of a "pnv-tce" record). */
export const TCE_FAULT_REASONS: Readonly<Record<number, string>> = {
  1: "address outside every DMA window",
  2: "invalid TCE",
  3: "TCE does not allow device reads",
  4: "TCE does not allow device writes",
  5: "PASID-prefixed request (no PASID support)",
  6: "PE is frozen (DMA stopped)",
};

const REASON = { NO_WINDOW: 1, INVALID: 2, NO_READ: 3, NO_WRITE: 4, PASID: 5, FROZEN: 6 };
const RECORD_BYTES = 32;
const NO_WINDOW = (1n << 64n) - 1n;

/** One partitionable endpoint: its windows and EEH state. */
export class SpaprPe {
  readonly #windows: (TceTable | undefined)[];
  #mmioEnabled = true;
  #dmaEnabled = true;

  /**
   * A PE of `platform` numbered `number`; every window and EEH state change, and every write to
   * its tables, bumps `epoch` (the PHB's translation generation).
   */
  constructor(
    readonly number: number,
    readonly platform: SpaprPlatform,
    private readonly memory: PhysicalMemory,
    private readonly hostPageSize: number,
    private readonly epoch: TranslationEpoch = new TranslationEpoch(),
  ) {
    this.#windows = new Array(platform.maxWindows).fill(undefined);
  }

  /** The table programmed in each window slot (undefined: slot unused). */
  get windows(): readonly (TceTable | undefined)[] {
    return this.#windows;
  }

  /**
   * `create_table` for slot `num`: a table at the slot's bus address (slot 0 at `tce32Start`,
   * slot 1 at `secondWindowStart`). Undefined when the platform refuses the shape (EINVAL) or
   * memory is exhausted (use {@link tableBytes} first to tell them apart).
   */
  createTable(num: number, pageShift: number, size: bigint, levels: number): TceTable | undefined {
    const start = num === 0 ? this.platform.tce32Start : this.platform.secondWindowStart;
    const geometry = tceTableGeometry(start, pageShift, size, levels, this.hostPageSize);
    return geometry === undefined ? undefined : TceTable.create(this.memory, geometry, this.epoch);
  }

  /** `get_table_size`: bytes the table and its userspace view take (0: shape refused). */
  tableBytes(pageShift: number, size: bigint, levels: number): number {
    if (levels > this.platform.maxLevels) return 0;
    const g = tceTableGeometry(0n, pageShift, size, levels, this.hostPageSize);
    return g === undefined ? 0 : 2 * g.fullBytes;
  }

  /** `set_window`: program slot `num` (the PHB's TVE) with `table`. */
  setWindow(num: number, table: TceTable): void {
    this.epoch.bump();
    this.#windows[num] = table;
  }

  /** `unset_window`: clear slot `num`. */
  unsetWindow(num: number): void {
    this.epoch.bump();
    this.#windows[num] = undefined;
  }

  /** `take_ownership`: the kernel's windows leave the PE (the user programs its own). */
  takeOwnership(): void {
    this.epoch.bump();
    this.#windows.fill(undefined);
  }

  /** The window holding a bus address. */
  windowOf(busAddress: bigint): { num: number; table: TceTable } | undefined {
    for (let num = 0; num < this.#windows.length; num++) {
      const table = this.#windows[num];
      if (table?.contains(busAddress)) return { num, table };
    }
    return undefined;
  }

  /** Whether MMIO to the PE's functions is blocked (frozen). */
  get mmioBlocked(): boolean {
    return !this.#mmioEnabled;
  }

  /** Whether the PE's DMA is blocked. */
  get dmaBlocked(): boolean {
    return !this.#dmaEnabled;
  }

  /**
   * `eeh_pe_get_state` as VFIO reports it. PowerNV reports RESET only while OPAL holds the whole
   * PHB in reset, which VFIO's edge-triggered PE resets never leave behind.
   */
  get eehState(): number {
    if (this.#dmaEnabled && this.#mmioEnabled) return EEH_PE_STATE.NORMAL;
    if (!this.#dmaEnabled && !this.#mmioEnabled) return EEH_PE_STATE.STOPPED;
    if (!this.#dmaEnabled) return EEH_PE_STATE.STOPPED_DMA;
    return EEH_PE_STATE.UNAVAIL;
  }

  /** Freeze MMIO and DMA (an error was detected or injected). Returns whether it was thawed. */
  freeze(): boolean {
    this.epoch.bump();
    const wasNormal = this.#mmioEnabled && this.#dmaEnabled;
    this.#mmioEnabled = false;
    this.#dmaEnabled = false;
    return wasNormal;
  }

  /** EEH_OPT_THAW_MMIO. */
  thawMmio(): void {
    this.epoch.bump();
    this.#mmioEnabled = true;
  }

  /** EEH_OPT_THAW_DMA. */
  thawDma(): void {
    this.epoch.bump();
    this.#dmaEnabled = true;
  }

  /**
   * EEH_RESET_HOT / EEH_RESET_FUNDAMENTAL as `eeh_pe_reset` does it: freeze the PE first (MMIO
   * during a reset would raise a recursive EEH error); the caller pulses the functions' reset.
   */
  freezeForReset(): void {
    this.freeze();
  }

  /** EEH_RESET_DEACTIVATE: `eeh_pe_reenable_devices` thaws MMIO and DMA. */
  reenable(): void {
    this.thawMmio();
    this.thawDma();
  }

  /**
   * `eeh_pe_change_owner`: a frozen PE is thawed (`eeh_unfreeze_pe`); an active one is left
   * alone. Returns whether it was frozen. (Linux first resets the PE of the three devices in
   * `eeh_reset_ids` — Emulex BE and Lancer, Broadcom BCM5719 — none of which is simulated.)
   */
  changeOwner(): boolean {
    if (this.#mmioEnabled && this.#dmaEnabled) return false;
    this.reenable();
    return true;
  }
}

/** Options of {@link SpaprTceIommu}. */
export interface SpaprTceOptions {
  /** Physical memory (TCE tables live there). */
  readonly memory: PhysicalMemory;
  /** Clock for fault timestamps. */
  readonly clock: VirtualClock;
  /** The host's PAGE_SIZE (64 KiB on ppc64 Linux): a level block is at least one page. */
  readonly hostPageSize: number;
  /** The PE number of a requester (its IOMMU group), or undefined when it has none. */
  readonly peOf: (requester: number) => number | undefined;
  /** Platform facts (default {@link POWERNV_PHB4}). */
  readonly platform?: SpaprPlatform;
  /** Trace sink. */
  readonly trace?: (line: string) => void;
  /** Kernel log sink (EEH reports). */
  readonly kernelLog?: (line: string) => void;
}

/** A PowerNV PHB's TCE translation and EEH behind the {@link IommuModel} interface. */
export class SpaprTceIommu implements IommuModel {
  /** Per-model facts; the windows stand in for an aperture (the 32-bit window). */
  readonly facts: IommuFacts;
  /** Platform facts. */
  readonly platform: SpaprPlatform;
  readonly #o: SpaprTceOptions;
  readonly #pes = new Map<number, SpaprPe>();
  readonly #faults: IommuFault[] = [];
  /**
   * Generation of the PHB's translation state: bumped by every TCE write and table free (the
   * TCE cache kill Linux issues after each update), window change, ownership change and EEH
   * state change of its PEs.
   */
  readonly translationEpoch: TranslationEpoch = new TranslationEpoch();
  /** The PHB's TCE cache: valid TCEs the walk fetched, per table, until the next epoch bump. */
  readonly #tceCache = new Map<TceTable, Map<bigint, bigint>>();
  #tceCacheEpoch = 0;

  /** A PHB. */
  constructor(options: SpaprTceOptions) {
    this.#o = options;
    this.platform = options.platform ?? POWERNV_PHB4;
    const p = this.platform;
    this.facts = {
      kind: "spapr",
      pgsizeBitmap: p.pgsizes,
      aperture: { start: p.tce32Start, end: p.tce32Start + p.tce32Size - 1n },
      cacheCoherency: true,
      enforceCacheCoherency: false,
      dirtyTracking: false,
      msiIsolated: true, // XIVE: interrupts are routed per PE
      hwInfo: { type: 0, data: new Uint8Array(0) },
      maxPasidLog2: 0,
    };
  }

  /** Every fault recorded so far, oldest first. */
  get faults(): readonly IommuFault[] {
    return this.#faults;
  }

  /** sPAPR reports no reserved regions: the windows are the usable space. */
  reservedRegions(_requester: number): ReservedRegion[] {
    return [];
  }

  /** The PE (`iommu_table_group`) numbered `number`, created on first use. */
  tableGroup(number: number): SpaprPe {
    let pe = this.#pes.get(number);
    if (pe === undefined) {
      pe = new SpaprPe(
        number,
        this.platform,
        this.#o.memory,
        this.#o.hostPageSize,
        this.translationEpoch,
      );
      this.#pes.set(number, pe);
    }
    return pe;
  }

  /** The windows programmed in each PE ({@link IommuModel.liveDomains}). */
  liveDomains(): string[] {
    const out: string[] = [];
    for (const pe of this.#pes.values()) {
      pe.windows.forEach((t, num) => {
        if (t !== undefined) out.push(`PE#${pe.number.toString(16)} window ${num}`);
      });
    }
    return out.sort();
  }

  /** The PE of a requester, or undefined. */
  peOfRequester(requester: number): SpaprPe | undefined {
    const n = this.#o.peOf(requester);
    return n === undefined ? undefined : this.tableGroup(n);
  }

  /** Whether MMIO to a requester's function is blocked by EEH (reads all-ones, writes dropped). */
  mmioBlocked(requester: number): boolean {
    return this.peOfRequester(requester)?.mmioBlocked ?? false;
  }

  /** TCE windows programmed into PEs (sPAPR's translation contexts). */
  domainsInUse(): number {
    let n = 0;
    for (const pe of this.#pes.values()) n += pe.windows.filter((t) => t !== undefined).length;
    return n;
  }

  /** No paging domains on sPAPR in 6.12 (VFIO uses the TCE container). */
  allocDomain(): IommuDomain {
    throw new Error("sPAPR TCE: no paging domains (use the VFIO sPAPR TCE container)");
  }

  /** No paging domains on sPAPR. */
  freeDomain(_domain: IommuDomain): void {
    throw new Error("sPAPR TCE: no paging domains");
  }

  /** Blocking (`null`) is `take_ownership`: the PE's windows are removed. Domains throw. */
  attach(requester: number, domain: IommuDomain | null): void {
    if (domain !== null) throw new Error("sPAPR TCE: no paging domains to attach");
    const pe = this.peOfRequester(requester);
    pe?.takeOwnership();
    this.#o.trace?.(`spapr: PE#${pe?.number} taken over for user DMA`);
  }

  /** No PASID support on POWER9 PHBs: -EOPNOTSUPP. */
  attachPasid(_requester: number, pasid: number, _domain: IommuDomain | null): number {
    return checkPasidAttach(this.facts, pasid);
  }

  /**
   * The PHB's walk: PE → window (TVE) → TCE (through the TCE cache) → permission; any failure
   * freezes the PE. A success is `cacheable` (see {@link TranslationHint}): its TCE stays in the
   * TCE cache, and the window and PE state it passed stay, until the epoch is bumped.
   */
  translate(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    _length: number,
    hint?: TranslationHint,
  ): TranslateResult {
    const pe = this.peOfRequester(requester);
    if (pe === undefined) return this.#fault(requester, 0, REASON.NO_WINDOW, iova, access);
    if (pe.dmaBlocked) return this.#fault(requester, pe.number, REASON.FROZEN, iova, access);
    if (pasid !== undefined) return this.#fault(requester, pe.number, REASON.PASID, iova, access);
    const hit = pe.windowOf(iova);
    if (hit === undefined) return this.#fault(requester, pe.number, REASON.NO_WINDOW, iova, access);
    const { table } = hit;
    const page = table.pageSize;
    const tce = this.#cachedTce(table, (iova - table.start) / page);
    const reason = tce === 0n
      ? REASON.INVALID
      : access === "read" && (tce & TCE_PCI_READ) === 0n
      ? REASON.NO_READ
      : access === "write" && (tce & TCE_PCI_WRITE) === 0n
      ? REASON.NO_WRITE
      : 0;
    if (reason !== 0) {
      return this.#fault(requester, pe.number, reason, iova, access, tce, table.start);
    }
    if (hint) hint.cacheable = true;
    return { ok: true, phys: (tce & ~(page - 1n)) + (iova & (page - 1n)) };
  }

  /** Fault injection: an invalid TCE for the access, which freezes the PE as any DMA fault. */
  injectFault(
    requester: number,
    _pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
  ): IommuFault {
    const pe = this.peOfRequester(requester);
    return faultOf(this.#fault(requester, pe?.number ?? 0, REASON.INVALID, iova, access));
  }

  /**
   * The TCE at `index` of `table` through the PHB's TCE cache (PHB4 caches fetched TCEs; Linux
   * kills the cache after every TCE update, which is what bumps the epoch). Invalid TCEs are not
   * cached.
   */
  #cachedTce(table: TceTable, index: bigint): bigint {
    if (this.#tceCacheEpoch !== this.translationEpoch.value) {
      this.#tceCache.clear();
      this.#tceCacheEpoch = this.translationEpoch.value;
    }
    let entries = this.#tceCache.get(table);
    const cached = entries?.get(index);
    if (cached !== undefined) return cached;
    const tce = table.read(index);
    if (tce !== 0n) {
      if (entries === undefined) this.#tceCache.set(table, entries = new Map());
      entries.set(index, tce);
    }
    return tce;
  }

  /**
   * VFIO took or gave back a function (first open, last close): `eeh_dev_open` and
   * `eeh_dev_release` thaw its PE if it is frozen, so the next session starts clean.
   */
  changeOwner(requester: number): void {
    const pe = this.peOfRequester(requester);
    if (pe?.changeOwner()) {
      this.#o.trace?.(`spapr: PHB#${this.platform.phb}-PE#${pe.number.toString(16)} thawed`);
    }
  }

  /** Freeze a PE as an injected error does (VFIO_EEH_PE_INJECT_ERR). */
  injectError(pe: SpaprPe): void {
    if (pe.freeze()) this.#o.kernelLog?.(this.#frozenLine(pe.number));
  }

  #frozenLine(pe: number): string {
    return `EEH: Frozen PHB#${this.platform.phb}-PE#${pe.toString(16)} detected`;
  }

  #fault(
    requester: number,
    peNumber: number,
    reason: number,
    iova: bigint,
    access: DmaAccess,
    tce = 0n,
    windowStart = NO_WINDOW,
  ): TranslateResult {
    const raw = new Uint8Array(RECORD_BYTES);
    const view = new DataView(raw.buffer);
    view.setUint32(0, peNumber, false);
    view.setUint16(4, requester, false);
    view.setUint8(6, reason);
    view.setUint8(7, access === "write" ? 1 : 0);
    view.setBigUint64(8, iova, false);
    view.setBigUint64(16, tce, false);
    view.setBigUint64(24, windowStart, false);
    const reasonName = TCE_FAULT_REASONS[reason];
    const pe = this.#pes.get(peNumber);
    const newlyFrozen = reason !== REASON.FROZEN && pe !== undefined && pe.freeze();
    const where = `PHB#${this.platform.phb}-PE#${peNumber.toString(16)}`;
    const message = `${where}: DMA ${access} at 0x${iova.toString(16)}: ${reasonName}` +
      (newlyFrozen ? `; ${this.#frozenLine(peNumber)}` : "");
    const fault: IommuFault = {
      format: "pnv-tce",
      requester,
      pasid: undefined,
      address: iova,
      access,
      reason,
      reasonName,
      raw,
      message,
      timeNs: this.#o.clock.nowNs,
    };
    this.#faults.push(fault);
    this.#o.trace?.(`spapr: ${message}`);
    if (newlyFrozen) this.#o.kernelLog?.(this.#frozenLine(peNumber));
    return { ok: false, fault };
  }
}
