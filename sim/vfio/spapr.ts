/**
 * The sPAPR TCE container backend's state and rules (`drivers/vfio/vfio_iommu_spapr_tce.c`,
 * vfio.md §9): the groups (PEs) of a container, up to two windows shared by all of them, the
 * default 32-bit window created lazily, preregistered memory (v2) or per-page pins (v1), and the
 * TCEs user space maps. The uAPI decoding lives in spapr_ioctl.ts.
 *
 * Documented deviation: Linux range-checks only the first page of a MAP, so a map running past
 * the end of its window writes TCEs past the table (undefined behaviour); the simulator refuses
 * such a map with EINVAL and maps nothing.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";
import { chargeLockedPages } from "../kernel/process.ts";
import type { PhysicalChunk } from "../memory.ts";
import { type SpaprPe, SpaprTceIommu } from "../iommu/spapr/spapr_tce.ts";
import { TCE_PCI_READ, TCE_PCI_WRITE, type TceTable } from "../iommu/spapr/spapr_tce_table.ts";
import type { VfioEnv } from "./env.ts";
import { preregLookup, preregPut, type PreregRegion } from "./spapr_prereg.ts";

/** TCE page shift of the default window VFIO creates (`IOMMU_PAGE_SHIFT_4K`). */
export const DEFAULT_WINDOW_PAGE_SHIFT = 12;
/** Levels of the default window. */
const DEFAULT_WINDOW_LEVELS = 1;

/** What a TCE points at, as the kernel remembers it (`it_userspace` and the pinned page). */
interface TceUse {
  /** v2: the preregistered region the page belongs to. */
  readonly region?: PreregRegion;
  /** v1: the page pinned for this TCE. */
  readonly chunk?: PhysicalChunk;
}

/** A sPAPR TCE container instance (`struct tce_container`). */
export class SpaprTceContainer {
  /** The groups, in attach order (`group_list`). */
  readonly groups: SimIommuGroup[] = [];
  /** Window slots (`tables[]`). */
  readonly tables: (TceTable | undefined)[];
  /** The default window will be created on first use (`def_window_pending`). */
  defWindowPending = false;
  /** MAP/UNMAP allowed: v1 after ENABLE, v2 after the first REGISTER_MEMORY. */
  enabled = false;
  /** The process the container is bound to (`container->mm`). */
  mm: SimProcess | undefined;
  /** Regions this container registered (`prereg_list`). */
  readonly prereg: PreregRegion[] = [];
  #v1LockedPages = 0;
  readonly #tableCharge = new Map<TceTable, number>();
  readonly #uses = new Map<TceTable, Map<bigint, TceUse>>();

  /** A container opened as v2 (`VFIO_SPAPR_TCE_v2_IOMMU`) or v1. */
  constructor(readonly v2: boolean, readonly env: VfioEnv, maxWindows: number) {
    this.tables = new Array(maxWindows).fill(undefined);
  }

  /** The PE of a group, or undefined when its IOMMU is not a sPAPR TCE one. */
  static peOf(group: SimIommuGroup): SpaprPe | undefined {
    const iommu = group.iommu;
    return iommu instanceof SpaprTceIommu ? iommu.tableGroup(group.id) : undefined;
  }

  /** The first group's PE (`table_group` of the first `tce_iommu_group`). */
  get firstPe(): SpaprPe | undefined {
    return this.groups.length === 0 ? undefined : SpaprTceContainer.peOf(this.groups[0]);
  }

  /** `tce_iommu_mm_set`: bind to the caller on first use; another process gets EPERM. */
  mmSet(process: SimProcess): number {
    if (this.mm === undefined) this.mm = process;
    return this.mm === process ? 0 : -ERRNO.EPERM;
  }

  /** `tce_iommu_attach_group`. */
  attachGroup(group: SimIommuGroup): number {
    const pe = SpaprTceContainer.peOf(group);
    if (pe === undefined) return -ERRNO.ENODEV;
    if (this.v2 && pe.platform.maxWindows === 0) return -ERRNO.EINVAL;
    if (!this.v2 && this.groups.length > 0) return -ERRNO.EBUSY;
    for (const other of this.groups) {
      if (other === group) return -ERRNO.EBUSY;
      if (other.iommu !== group.iommu) return -ERRNO.EPERM; // different table ops
    }
    pe.takeOwnership();
    this.tables.forEach((t, num) => t && pe.setWindow(num, t));
    if (this.groups.length === 0 && this.tables[0] === undefined) this.defWindowPending = true;
    this.groups.push(group);
    this.env.trace(`spapr: group ${group.id} (PE#${pe.number}) attached`);
    return 0;
  }

  /** `tce_iommu_detach_group`: the PE's windows are unset (the platform takes it back). */
  detachGroup(group: SimIommuGroup): void {
    const i = this.groups.indexOf(group);
    if (i < 0) return;
    const pe = SpaprTceContainer.peOf(group);
    this.tables.forEach((t, num) => t && pe?.unsetWindow(num));
    this.groups.splice(i, 1);
  }

  /** `tce_iommu_release`: detach, clear and free every window, free preregistered memory. */
  release(): void {
    for (const g of [...this.groups]) this.detachGroup(g);
    this.tables.forEach((t, num) => {
      if (t === undefined) return;
      this.clear(t, 0n, t.geometry.entries);
      this.#freeTable(t);
      this.tables[num] = undefined;
    });
    for (const region of [...this.prereg]) this.preregFree(region);
    this.disable();
  }

  /** `tce_iommu_find_table`: the slot whose window holds a bus address. */
  findTable(busAddress: bigint): { num: number; table: TceTable } | undefined {
    for (let num = 0; num < this.tables.length; num++) {
      const table = this.tables[num];
      if (table?.contains(busAddress)) return { num, table };
    }
    return undefined;
  }

  /** `tce_iommu_create_default_window`: 0 or -errno. */
  createDefaultWindow(): number {
    if (!this.defWindowPending) return 0;
    const pe = this.firstPe;
    if (pe === undefined) return -ERRNO.ENODEV;
    const r = this.createWindow(
      DEFAULT_WINDOW_PAGE_SHIFT,
      pe.platform.tce32Size,
      DEFAULT_WINDOW_LEVELS,
    );
    if (typeof r === "bigint") this.defWindowPending = false;
    return typeof r === "bigint" ? 0 : r;
  }

  /** `tce_iommu_create_window`: the window's bus address, or -errno. */
  createWindow(pageShift: number, size: bigint, levels: number): bigint | number {
    const num = this.tables.findIndex((t) => t === undefined);
    if (num < 0) return -ERRNO.ENOSPC;
    const pe = this.firstPe;
    if (pe === undefined) return -ERRNO.EFAULT;
    if (pageShift > 63 || (pe.platform.pgsizes & (1n << BigInt(pageShift))) === 0n) {
      return -ERRNO.EINVAL;
    }
    const bytes = pe.tableBytes(pageShift, size, levels);
    if (bytes === 0) return -ERRNO.EINVAL;
    const pages = Math.ceil(bytes / this.env.pageSize);
    const process = this.mm;
    if (process !== undefined) {
      const charged = chargeLockedPages(process, pages, this.env.pageSize);
      if (charged < 0) return charged;
    }
    const table = pe.createTable(num, pageShift, size, levels);
    if (table === undefined) {
      if (process !== undefined) process.lockedPages -= pages;
      return -ERRNO.ENOMEM;
    }
    this.#tableCharge.set(table, process === undefined ? 0 : pages);
    this.#uses.set(table, new Map());
    for (const g of this.groups) SpaprTceContainer.peOf(g)?.setWindow(num, table);
    this.tables[num] = table;
    this.env.trace(
      `spapr: window ${num} [0x${table.start.toString(16)}, 0x${table.end.toString(16)}] ` +
        `TCE page 0x${table.pageSize.toString(16)}, ${levels} level(s)`,
    );
    return table.start;
  }

  /** `tce_iommu_remove_window`: clear, unset and free the window holding `busAddress`. */
  removeWindow(busAddress: bigint): number {
    const hit = this.findTable(busAddress);
    if (hit === undefined) return -ERRNO.EINVAL;
    this.clear(hit.table, 0n, hit.table.geometry.entries);
    for (const g of this.groups) SpaprTceContainer.peOf(g)?.unsetWindow(hit.num);
    this.#freeTable(hit.table);
    this.tables[hit.num] = undefined;
    this.env.trace(`spapr: window ${hit.num} removed`);
    return 0;
  }

  /**
   * `tce_iommu_build_v2` / `tce_iommu_build`: write `pages` TCEs from entry `first`, backed by
   * user memory at `ua`; on failure the TCEs written so far are cleared. 0 or -errno.
   */
  build(
    process: SimProcess,
    table: TceTable,
    first: bigint,
    ua: bigint,
    pages: bigint,
    perms: { read: boolean; write: boolean },
  ): number {
    if (first + pages > table.geometry.entries) return -ERRNO.EINVAL; // see the module doc
    const page = table.pageSize;
    const shift = table.geometry.pageShift;
    // pnv_tce_xchg: a writable TCE is always readable too.
    const bits = (perms.write ? TCE_PCI_WRITE | TCE_PCI_READ : 0n) |
      (perms.read ? TCE_PCI_READ : 0n);
    const uses = this.#uses.get(table)!;
    for (let i = 0n; i < pages; i++) {
      const addr = ua + i * page;
      let hpa: bigint;
      let use: TceUse;
      if (this.v2) {
        const region = preregLookup(process, addr, page);
        if (region === undefined) return this.#undo(table, first, i, -ERRNO.EINVAL);
        const h = region.hpa(addr, shift); // tce_iommu_prereg_ua_to_hpa turns its error into EINVAL
        if (typeof h === "number") return this.#undo(table, first, i, -ERRNO.EINVAL);
        hpa = h;
        use = { region };
      } else {
        const m = process.memory.mappingAt(addr);
        if (m === undefined) return this.#undo(table, first, i, -ERRNO.EFAULT);
        // tce_page_is_contained: the host page must be at least the TCE page.
        if (BigInt(this.env.pageSize) < page) return this.#undo(table, first, i, -ERRNO.EPERM);
        hpa = BigInt(m.chunk.base) + (addr - BigInt(m.address));
        use = { chunk: m.chunk };
      }
      const old = table.write(first + i, hpa | bits);
      if (old === undefined) return this.#undo(table, first, i, -ERRNO.ENOMEM);
      if (old !== 0n) this.#unuse(uses.get(first + i));
      if (use.region) use.region.mappedTces++;
      if (use.chunk) this.env.physical.retain(use.chunk);
      uses.set(first + i, use);
    }
    this.env.trace(
      `spapr map ${tceRange(table, first, pages)} ${perms.read ? "r" : ""}${
        perms.write ? "w" : ""
      }`,
    );
    return 0;
  }

  /** `tce_iommu_clear`: invalidate `pages` TCEs from entry `first`, unpinning what they held. */
  clear(table: TceTable, first: bigint, pages: bigint): void {
    const uses = this.#uses.get(table)!;
    if (pages > 0n) this.env.trace(`spapr unmap ${tceRange(table, first, pages)}`);
    for (const [index, use] of uses) {
      if (index < first || index >= first + pages) continue;
      table.write(index, 0n);
      this.#unuse(use);
      uses.delete(index);
    }
  }

  /** `tce_iommu_prereg_free`: drop this container's use of a region. 0 or -EBUSY. */
  preregFree(region: PreregRegion): number {
    const r = preregPut(this.mm!, this.env.physical, region);
    if (r < 0) return r;
    this.prereg.splice(this.prereg.indexOf(region), 1);
    return 0;
  }

  /** `tce_iommu_enable` (v1 and v2): charge the 32-bit window, allow MAP/UNMAP. */
  enable(process: SimProcess): number {
    if (this.enabled) return -ERRNO.EBUSY;
    const pe = this.firstPe;
    if (pe === undefined) return -ERRNO.ENODEV;
    if (pe.platform.tce32Size === 0n) return -ERRNO.EPERM;
    const r = this.mmSet(process);
    if (r < 0) return r;
    const pages = Number(pe.platform.tce32Size / BigInt(this.env.pageSize));
    const charged = chargeLockedPages(process, pages, this.env.pageSize);
    if (charged < 0) return charged;
    this.#v1LockedPages = pages;
    this.enabled = true;
    return 0;
  }

  /** `tce_iommu_disable`. */
  disable(): void {
    if (!this.enabled) return;
    this.enabled = false;
    if (this.mm !== undefined) this.mm.lockedPages -= this.#v1LockedPages;
    this.#v1LockedPages = 0;
  }

  #undo(table: TceTable, first: bigint, done: bigint, err: number): number {
    this.clear(table, first, done);
    return err;
  }

  #unuse(use: TceUse | undefined): void {
    if (use?.region) use.region.mappedTces--;
    if (use?.chunk) this.env.physical.release(use.chunk);
  }

  #freeTable(table: TceTable): void {
    const pages = this.#tableCharge.get(table) ?? 0;
    if (this.mm !== undefined) this.mm.lockedPages -= pages;
    this.#tableCharge.delete(table);
    this.#uses.delete(table);
    table.free();
  }
}

/** Bus addresses of `pages` TCEs from entry `first`, for the trace. */
function tceRange(table: TceTable, first: bigint, pages: bigint): string {
  const start = table.start + first * table.pageSize;
  return `bus=0x${start.toString(16)} size=0x${(pages * table.pageSize).toString(16)}`;
}
