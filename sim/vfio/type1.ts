/**
 * The type1 IOMMU backend's state (`drivers/vfio/vfio_iommu_type1.c`, vfio.md §8): the groups of a
 * container, one IOMMU domain per IOMMU model shared by all its groups, the IOVA list, the page
 * size bitmap, and the user DMA mappings with their pinned pages and locked-memory charge.
 *
 * The uAPI decoding lives in type1_ioctl.ts; this file holds the rules and programs the hardware
 * model (`allocDomain`, `attach`, `domain.map`/`unmap`, `freeDomain`).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IommuDomain, IommuModel, MapProtection } from "../iommu/model.ts";
import type { PhysicalMemory } from "../memory.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";
import { groupReservedRegions } from "../kernel/iommu_group.ts";
import { userRuns } from "../kernel/user.ts";
import { type DmaList, DmaList as DmaListImpl, type DmaMapping, type DmaPiece } from "./dma.ts";
import {
  excludeReserved,
  type IovaRange,
  iovaRangeValid,
  isIovaHole,
  resizeToAperture,
} from "./iova_list.ts";

/**
 * What attaching a group to a TYPE1_NESTING container answers per IOMMU kind: `iommu_enable_nesting`
 * is EINVAL for drivers without the op (VT-d, virtio-iommu); ARM SMMUv3 has it, but in 6.12 the
 * paging domain is already finalised for the device when VFIO asks, so it answers EPERM
 * (measured on the VM bench, tests/goldens/arm64-smmuv3). 0 would mean nesting is enabled.
 */
export const NESTING_ATTACH_ERRNO: Readonly<Record<string, number>> = {
  vtd: -ERRNO.EINVAL,
  smmuv3: -ERRNO.EPERM,
  "virtio-iommu": -ERRNO.EINVAL,
};

/** `dma_entry_limit` default (`U16_MAX`). */
export const DEFAULT_DMA_ENTRY_LIMIT = 65535;

/** The type1 flavour a container was opened with. */
export interface Type1Flavour {
  /** TYPE1v2 or NESTING: strict unmap rules, DIRTY_PAGES allowed. */
  readonly v2: boolean;
  /** TYPE1_NESTING_IOMMU: attaching needs `enable_nesting`. */
  readonly nesting: boolean;
}

/** Module parameters and machine facts type1 runs with. */
export interface Type1Options {
  /** PAGE_SIZE. */
  readonly pageSize: number;
  /** `allow_unsafe_interrupts`. */
  readonly allowUnsafeInterrupts: boolean;
  /** `dma_entry_limit`. */
  readonly dmaEntryLimit: number;
  /** Physical memory (pins hold chunk references). */
  readonly physical: PhysicalMemory;
  /** Trace sink for IOMMU events. */
  readonly trace?: (line: string) => void;
}

/** One IOMMU domain of a container (`struct vfio_domain`). */
interface VfioDomain {
  readonly model: IommuModel;
  readonly domain: IommuDomain;
  readonly enforceCacheCoherency: boolean;
  readonly groups: Set<SimIommuGroup>;
}

/** Result of an unmap: errno (0 on success) and bytes unmapped (reported only on success). */
export interface UnmapResult {
  /** 0 or -errno. */
  readonly ret: number;
  /** Bytes unmapped (or invalidated). */
  readonly unmapped: bigint;
}

const U64_MAX = (1n << 64n) - 1n;

/** A type1 IOMMU instance (`struct vfio_iommu`). */
export class Type1Iommu {
  /** The mappings. */
  readonly dma: DmaList = new DmaListImpl();
  /** Dirty page tracking started (v2). */
  dirtyTracking = false;
  readonly #domains: VfioDomain[] = [];
  readonly #groupDomain = new Map<SimIommuGroup, VfioDomain>();
  #iovaList: IovaRange[] = [];
  #pgsizeBitmap: bigint;
  #dmaAvail: number;
  #vaddrInvalidCount = 0;

  /** A fresh backend. */
  constructor(readonly flavour: Type1Flavour, private readonly options: Type1Options) {
    this.#pgsizeBitmap = pageMask(options.pageSize);
    this.#dmaAvail = options.dmaEntryLimit;
  }

  /** `pgsize_bitmap`. */
  get pgsizeBitmap(): bigint {
    return this.#pgsizeBitmap;
  }

  /** The minimum page size (lowest bit of the bitmap). */
  get minPageSize(): bigint {
    return this.#pgsizeBitmap & -this.#pgsizeBitmap;
  }

  /** The IOVA list. */
  get iovaList(): readonly IovaRange[] {
    return this.#iovaList;
  }

  /** Mappings still allowed (`dma_avail`). */
  get dmaAvail(): number {
    return this.#dmaAvail;
  }

  /** Attached groups. */
  get groups(): SimIommuGroup[] {
    return [...this.#groupDomain.keys()];
  }

  /** Number of distinct hardware domains. */
  get domainCount(): number {
    return this.#domains.length;
  }

  /** VFIO_DMA_CC_IOMMU: 1 iff every domain enforces cache coherency. */
  enforcesCacheCoherency(): number {
    return this.#domains.every((d) => d.enforceCacheCoherency) ? 1 : 0;
  }

  /** Whether a group is attached. */
  hasGroup(group: SimIommuGroup): boolean {
    return this.#groupDomain.has(group);
  }

  /** `vfio_iommu_type1_attach_group`: 0 or -errno, in the kernel's check order. */
  attachGroup(group: SimIommuGroup): number {
    if (this.#vaddrInvalidCount > 0) return -ERRNO.EBUSY;
    if (this.#groupDomain.has(group)) return -ERRNO.EINVAL;
    const model = group.iommu;
    const facts = model.facts;
    if (this.flavour.nesting) {
      const err = NESTING_ATTACH_ERRNO[facts.kind] ?? -ERRNO.EINVAL;
      if (err !== 0) return err;
    }
    const { start, end } = facts.aperture;
    if (this.#apertureConflict(start, end)) return -ERRNO.EINVAL;
    const resv = groupReservedRegions(group);
    if (resv.some((r) => isIovaHole(r) && this.dma.find(r.start, r.end - r.start + 1n))) {
      return -ERRNO.EINVAL;
    }
    const list = excludeReserved(resizeToAperture(this.#iovaList, start, end), resv);
    if (list.length === 0) return -ERRNO.EINVAL;
    if (!this.options.allowUnsafeInterrupts && !facts.msiIsolated) return -ERRNO.EPERM;

    const coherent = facts.enforceCacheCoherency;
    let domain = this.#domains.find((d) =>
      d.model === model && d.enforceCacheCoherency === coherent
    );
    if (domain === undefined) {
      const fresh: VfioDomain = {
        model,
        domain: model.allocDomain(),
        enforceCacheCoherency: coherent,
        groups: new Set(),
      };
      this.#attachFunctions(group, fresh.domain);
      const r = this.#replay(fresh.domain);
      if (r < 0) {
        this.#attachFunctions(group, null);
        model.freeDomain(fresh.domain);
        return r;
      }
      this.#domains.push(fresh);
      domain = fresh;
      this.#updatePgsizeBitmap();
      this.#trace(
        `type1: group ${group.id} attached to new ${facts.kind} domain ${fresh.domain.id}`,
      );
    } else {
      this.#attachFunctions(group, domain.domain);
      this.#trace(`type1: group ${group.id} joined ${facts.kind} domain ${domain.domain.id}`);
    }
    domain.groups.add(group);
    this.#groupDomain.set(group, domain);
    this.#iovaList = list;
    return 0;
  }

  /** `vfio_iommu_type1_detach_group`. */
  detachGroup(group: SimIommuGroup): void {
    const domain = this.#groupDomain.get(group);
    if (domain === undefined) return;
    this.#groupDomain.delete(group);
    domain.groups.delete(group);
    this.#attachFunctions(group, null);
    if (domain.groups.size === 0) {
      if (this.#domains.length === 1) this.#unmapAll();
      domain.model.freeDomain(domain.domain);
      this.#domains.splice(this.#domains.indexOf(domain), 1);
      this.#updatePgsizeBitmap();
      this.#trace(`type1: domain ${domain.domain.id} freed`);
    }
    this.#refreshIovaList();
  }

  /** `vfio_iommu_type1_release`: unmap and unpin everything, detach and free every domain. */
  release(): void {
    this.#unmapAll();
    for (const group of this.groups) this.detachGroup(group);
  }

  #attachFunctions(group: SimIommuGroup, domain: IommuDomain | null): void {
    for (const fn of group.functions) group.iommu.attach(fn.requester, domain);
  }

  #apertureConflict(start: bigint, end: bigint): boolean {
    if (this.#iovaList.length === 0) return false;
    const first = this.#iovaList[0];
    const last = this.#iovaList[this.#iovaList.length - 1];
    if (first.start < start && this.dma.find(first.start, start - first.start)) return true;
    if (last.end > end && this.dma.find(end + 1n, last.end - end)) return true;
    return false;
  }

  #refreshIovaList(): void {
    let list: IovaRange[] = [];
    for (const d of this.#domains) {
      list = resizeToAperture(list, d.model.facts.aperture.start, d.model.facts.aperture.end);
    }
    for (const group of this.#groupDomain.keys()) {
      list = excludeReserved(list, groupReservedRegions(group));
    }
    this.#iovaList = list;
  }

  #updatePgsizeBitmap(): void {
    let bitmap = U64_MAX;
    for (const d of this.#domains) bitmap &= d.model.facts.pgsizeBitmap;
    const mask = pageMask(this.options.pageSize);
    if ((bitmap & ~mask & U64_MAX) !== 0n) bitmap = (bitmap & mask) | BigInt(this.options.pageSize);
    this.#pgsizeBitmap = this.#domains.length === 0 ? mask : bitmap;
  }

  #replay(domain: IommuDomain): number {
    for (const m of this.dma.all()) {
      const r = mapPieces(domain, m.pieces, m.prot);
      if (r < 0) return r;
    }
    return 0;
  }

  #trace(line: string): void {
    this.options.trace?.(line);
  }

  /**
   * Pin `[vaddr, vaddr + size)` of `process` and map it at `iova` in every domain. The caller has
   * done every uAPI check before pinning (vfio.md §8.3). Returns 0 or -errno (EFAULT, ENOMEM).
   */
  mapPinned(
    process: SimProcess,
    iova: bigint,
    vaddr: bigint,
    size: bigint,
    prot: MapProtection,
  ): number {
    const pageSize = BigInt(this.options.pageSize);
    const npages = Number(size / pageSize);
    const pins = pinUserPages(process, vaddr, size, iova);
    const firstUnmapped = Array.isArray(pins) ? Infinity : Number(pins.unmappedAt / pageSize);
    const limitPages = process.capIpcLock
      ? Infinity
      : Math.floor(process.memlockLimit / this.options.pageSize) - process.lockedPages;
    const firstOverLimit = limitPages < npages ? Math.max(0, limitPages) : Infinity;
    if (firstUnmapped !== Infinity && firstUnmapped <= firstOverLimit) return -ERRNO.EFAULT;
    if (firstOverLimit !== Infinity) return -ERRNO.ENOMEM;
    const pieces = pins as DmaPiece[];
    for (const p of pieces) this.options.physical.retain(p.chunk);
    const mapping: DmaMapping = {
      iova,
      size,
      vaddr,
      prot,
      pieces,
      lockedPages: npages,
      owner: process,
      vaddrInvalid: false,
    };
    for (let i = 0; i < this.#domains.length; i++) {
      const r = mapPieces(this.#domains[i].domain, pieces, prot);
      if (r < 0) {
        for (let j = 0; j <= i; j++) this.#domains[j].domain.unmap(iova, size);
        for (const p of pieces) this.options.physical.release(p.chunk);
        return r;
      }
    }
    process.lockedPages += npages;
    this.#dmaAvail--;
    this.dma.insert(mapping);
    this.#trace(`type1: map iova 0x${iova.toString(16)} size 0x${size.toString(16)}`);
    return 0;
  }

  /** `vfio_remove_dma`: unmap from every domain, unpin, uncharge. */
  removeDma(m: DmaMapping): void {
    for (const d of this.#domains) d.domain.unmap(m.iova, m.size);
    for (const p of m.pieces) this.options.physical.release(p.chunk);
    m.owner.lockedPages -= m.lockedPages;
    if (m.vaddrInvalid) this.#vaddrInvalidCount--;
    this.dma.remove(m);
    this.#dmaAvail++;
    this.#trace(`type1: unmap iova 0x${m.iova.toString(16)} size 0x${m.size.toString(16)}`);
  }

  /** Mark a mapping's vaddr invalid or valid again. */
  setVaddrInvalid(m: DmaMapping, invalid: boolean): void {
    if (m.vaddrInvalid === invalid) return;
    m.vaddrInvalid = invalid;
    this.#vaddrInvalidCount += invalid ? 1 : -1;
  }

  /** Whether a range lies inside one IOVA range. */
  iovaValid(first: bigint, last: bigint): boolean {
    return iovaRangeValid(this.#iovaList, first, last);
  }

  #unmapAll(): void {
    for (const m of [...this.dma.all()]) this.removeDma(m);
  }
}

/** `PAGE_MASK` as an unsigned 64-bit value. */
export function pageMask(pageSize: number): bigint {
  return U64_MAX & ~(BigInt(pageSize) - 1n);
}

/** Map pinned pieces into a domain; 0 or the model's -errno. */
function mapPieces(domain: IommuDomain, pieces: readonly DmaPiece[], prot: MapProtection): number {
  for (const p of pieces) {
    const r = domain.map(p.iova, p.phys, p.length, prot);
    if (r < 0) return r;
  }
  return 0;
}

/**
 * Resolve user pages to physical pieces at `iova` (without taking references yet), or the byte
 * offset of the first unmapped page.
 */
function pinUserPages(
  process: SimProcess,
  vaddr: bigint,
  size: bigint,
  iova: bigint,
): DmaPiece[] | { unmappedAt: bigint } {
  const runs = userRuns(process, vaddr, size);
  if (!Array.isArray(runs)) return runs;
  return runs.map((r) => ({
    iova: iova + r.offset,
    phys: r.phys,
    length: r.length,
    chunk: r.chunk,
  }));
}
