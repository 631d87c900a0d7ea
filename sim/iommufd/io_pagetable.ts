/**
 * The IOAS page table (`struct io_pagetable`, drivers/iommu/iommufd/io_pagetable.c): areas (IOVA
 * → user memory), reserved ranges with their owners, allowed ranges, `iova_alignment`, the
 * attached domains, IOVA auto-allocation and the area split used by VFIO type1 v1 emulation.
 *
 * All IOVA arithmetic is unsigned 64-bit (`unsigned long` on a 64-bit kernel) in bigint. Every
 * area is mirrored into every domain; pages are pinned only while at least one domain exists
 * (iommufd.md §7).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IommuDomain, IommuFacts, MapProtection } from "../iommu/model.ts";
import type { PageRange, Pages, PagesUser } from "./pages.ts";

/** `ULONG_MAX` (= `U64_MAX` on 64-bit kernels). */
export const ULONG_MAX = (1n << 64n) - 1n;

/** An inclusive IOVA range. */
export interface IovaSpan {
  /** First IOVA. */
  readonly start: bigint;
  /** Last IOVA (inclusive). */
  readonly last: bigint;
}

/** A domain mirrored by the page table, with the facts of the IOMMU that made it. */
export interface IoptDomain {
  /** The hardware domain. */
  readonly domain: IommuDomain;
  /** pgsize_bitmap and aperture come from here. */
  readonly facts: IommuFacts;
}

/** A piece of user memory to place into the IOAS (`struct iopt_pages_list`). */
export interface PagesElm {
  /** The pages object. */
  readonly pages: Pages;
  /** Byte offset of the first byte inside `pages` (from `pages.base`). */
  readonly startByte: bigint;
  /** Length in bytes. */
  readonly length: bigint;
}

interface Reserved extends IovaSpan {
  readonly owner: unknown;
}

/** `x & -x`: the lowest set bit (0 for 0). */
export function lowestBit(x: bigint): bigint {
  return x & -x;
}

function roundupPow2(x: bigint): bigint {
  let p = 1n;
  while (p < x) p <<= 1n;
  return p;
}

/** `ALIGN(x, a)` in unsigned long arithmetic (wraps like C). */
function alignUp(x: bigint, a: bigint): bigint {
  return BigInt.asUintN(64, x + a - 1n) & ~(a - 1n);
}

/** Sorted, merged spans (touching spans merge, as interval_tree_span_iter does). */
function mergeSpans(spans: readonly IovaSpan[]): IovaSpan[] {
  const sorted = [...spans].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: IovaSpan[] = [];
  for (const s of sorted) {
    const top = out[out.length - 1];
    if (top && s.start <= top.last + 1n) {
      if (s.last > top.last) out[out.length - 1] = { start: top.start, last: s.last };
    } else out.push({ start: s.start, last: s.last });
  }
  return out;
}

/** The holes of `used` inside `[start, last]`. */
function holesIn(used: readonly IovaSpan[], start: bigint, last: bigint): IovaSpan[] {
  const out: IovaSpan[] = [];
  let cur = start;
  for (const u of mergeSpans(used)) {
    if (u.last < cur || u.start > last) continue;
    if (u.start > cur) out.push({ start: cur, last: u.start - 1n });
    if (u.last >= last) return out;
    cur = u.last + 1n;
  }
  out.push({ start: cur, last });
  return out;
}

/** One mapping of the IOAS (`struct iopt_area`). */
export class Area implements IovaSpan, PagesUser {
  /** A mapping of `pages` bytes `[startByte, startByte + last - iova]` at `[iova, last]`. */
  constructor(
    readonly iopt: IoPagetable,
    readonly start: bigint,
    readonly last: bigint,
    readonly pages: Pages,
    readonly startByte: bigint,
    readonly prot: MapProtection,
  ) {}

  /** Length in bytes. */
  get length(): bigint {
    return this.last - this.start + 1n;
  }

  /** Pages must be pinned while the IOAS has a domain. */
  get needsPin(): boolean {
    return this.iopt.domains.length > 0;
  }

  /** Page indexes of `pages` this area covers. */
  get pageRange(): PageRange {
    const size = this.iopt.pageSize;
    return {
      first: Number(this.startByte / size),
      last: Number((this.startByte + this.length - 1n) / size),
    };
  }
}

/** The page table of one IOAS. */
export class IoPagetable {
  /** PAGE_SIZE. */
  readonly pageSize: bigint;
  /**
   * The auto-allocation alignment cap (`max_alignment` of `iopt_alloc_iova`): HPAGE_SIZE with
   * CONFIG_TRANSPARENT_HUGEPAGE, else PAGE_SIZE.
   */
  readonly hugePageSize: bigint;
  /** `iova_alignment`. */
  iovaAlignment = 1n;
  /** `disable_large_pages` (IOMMU_OPTION_HUGE_PAGES = 0, or VFIO TYPE1 v1 emulation). */
  disableLargePages = false;
  #areas: Area[] = [];
  #reserved: Reserved[] = [];
  #allowed: IovaSpan[] = [];
  readonly #domains: IoptDomain[] = [];

  /**
   * An empty page table for `pageSize`-byte pages, on a kernel with (default) or without
   * transparent huge pages (a PMD maps 512 pages).
   */
  constructor(pageSize: number, transparentHugepage = true) {
    this.pageSize = BigInt(pageSize);
    this.hugePageSize = transparentHugepage ? this.pageSize * 512n : this.pageSize;
  }

  /** Areas by IOVA. */
  get areas(): readonly Area[] {
    return this.#areas;
  }

  /** Attached domains, in attach order. */
  get domains(): readonly IoptDomain[] {
    return this.#domains;
  }

  /** The allowed ranges. */
  get allowed(): readonly IovaSpan[] {
    return this.#allowed;
  }

  /** Index of the first area whose last IOVA is >= `iova` (areas are disjoint and sorted). */
  #firstEndingAtOrAfter(iova: bigint): number {
    let lo = 0;
    let hi = this.#areas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#areas[mid].last < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The lowest area intersecting `[start, last]` (`iopt_area_iter_first`). */
  firstAreaIn(start: bigint, last: bigint): Area | undefined {
    const a = this.#areas[this.#firstEndingAtOrAfter(start)];
    return a && a.start <= last ? a : undefined;
  }

  /** Areas intersecting `[start, last]`, by IOVA. */
  areasIn(start: bigint, last: bigint): Area[] {
    const out: Area[] = [];
    for (let i = this.#firstEndingAtOrAfter(start); i < this.#areas.length; i++) {
      const a = this.#areas[i];
      if (a.start > last) break;
      out.push(a);
    }
    return out;
  }

  #reservedHit(start: bigint, last: bigint): boolean {
    return this.#reserved.some((r) => r.start <= last && r.last >= start);
  }

  /** The usable ranges: holes of the reserved ranges over `[0, ULONG_MAX]`. */
  holes(): IovaSpan[] {
    return holesIn(this.#reserved, 0n, ULONG_MAX);
  }

  /** `iopt_reserve_iova`: 0, or -EADDRINUSE over an area or an allowed range. */
  reserve(start: bigint, last: bigint, owner: unknown): number {
    if (this.firstAreaIn(start, last)) return -ERRNO.EADDRINUSE;
    if (this.#allowed.some((r) => r.start <= last && r.last >= start)) return -ERRNO.EADDRINUSE;
    this.#reserved.push({ start, last, owner });
    return 0;
  }

  /** Drop every reservation of `owner`. */
  removeReserved(owner: unknown): void {
    this.#reserved = this.#reserved.filter((r) => r.owner !== owner);
  }

  /** `iopt_set_allow_iova`: replace the allowed list; -EADDRINUSE (list kept) over a reservation. */
  setAllowed(list: readonly IovaSpan[]): number {
    if (list.some((r) => this.#reservedHit(r.start, r.last))) return -ERRNO.EADDRINUSE;
    this.#allowed = [...list];
    return 0;
  }

  /** `iopt_check_iova_alignment`: -EADDRINUSE if an area violates `align`. */
  #checkAlignment(align: bigint): number {
    const mask = align - 1n;
    for (const a of this.#areas) {
      if ((a.start & mask) || (a.length & mask) || ((a.startByte % this.pageSize) & mask)) {
        return -ERRNO.EADDRINUSE;
      }
    }
    return 0;
  }

  /** `iopt_calculate_iova_alignment`. */
  #recalcAlignment(): number {
    let align = this.disableLargePages ? this.pageSize : 1n;
    for (const d of this.#domains) {
      const low = lowestBit(d.facts.pgsizeBitmap);
      if (low > align) align = low;
    }
    if (align > this.iovaAlignment) {
      const rc = this.#checkAlignment(align);
      if (rc < 0) return rc;
    }
    this.iovaAlignment = align;
    return 0;
  }

  /** `iopt_disable_large_pages`: 0, or -EINVAL when domains and areas already exist. */
  disableLarge(): number {
    if (this.disableLargePages) return 0;
    if (this.#domains.length > 0 && this.#areas.length > 0) return -ERRNO.EINVAL;
    this.disableLargePages = true;
    const rc = this.#recalcAlignment();
    if (rc < 0) this.disableLargePages = false;
    return rc;
  }

  /** `iopt_enable_large_pages`. */
  enableLarge(): void {
    this.disableLargePages = false;
    this.#recalcAlignment();
  }

  /** `iopt_alloc_iova`: the lowest suitable IOVA for `length` bytes of user address `addr`. */
  allocIova(addr: bigint, length: bigint): bigint | number {
    const pageOffset = addr % this.pageSize;
    if (length === 0n || length >= ULONG_MAX / 2n) return -ERRNO.EOVERFLOW;
    let align = roundupPow2(length);
    if (addr !== 0n && lowestBit(addr) < align) align = lowestBit(addr);
    if (align >= this.hugePageSize) align = this.hugePageSize;
    if (align < this.iovaAlignment) return -ERRNO.EINVAL;
    const lo = this.pageSize;
    const hi = ULONG_MAX - this.pageSize;
    const spans = this.#allowed.length === 0 ? [{ start: lo, last: hi }] : mergeSpans(this.#allowed)
      .filter((s) => s.last >= lo && s.start <= hi)
      .map((s) => ({ start: s.start < lo ? lo : s.start, last: s.last > hi ? hi : s.last }));
    const used: IovaSpan[] = [...this.#reserved, ...this.#areas];
    for (const span of spans) {
      if (span.last - span.start < length - 1n) continue;
      const start = alignUp(span.start, align) | pageOffset;
      if (start > span.last || span.last - start < length - 1n) continue;
      for (const hole of holesIn(used, start, span.last)) {
        if (hole.last - hole.start < length - 1n) continue;
        const iova = alignUp(hole.start, align) | pageOffset;
        if (iova > hole.last || hole.last - iova < length - 1n) continue;
        return iova;
      }
    }
    return -ERRNO.ENOSPC;
  }

  /** `iopt_check_iova` for a FIXED mapping. */
  checkIova(iova: bigint, length: bigint): number {
    if (iova & (this.iovaAlignment - 1n)) return -ERRNO.EINVAL;
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return -ERRNO.EOVERFLOW;
    if (this.#reservedHit(iova, last)) return -ERRNO.EINVAL;
    if (this.firstAreaIn(iova, last)) return -ERRNO.EEXIST;
    return 0;
  }

  /**
   * `iopt_map_pages`: place `elms` (total `length`) at `iova` or at an allocated IOVA, pin and
   * mirror into every domain. Returns the IOVA or -errno; nothing changes on failure.
   */
  mapPages(
    elms: readonly PagesElm[],
    length: bigint,
    iova: bigint,
    prot: MapProtection,
    allocate: boolean,
  ): bigint | number {
    if ((length & (this.iovaAlignment - 1n)) || length === 0n) return -ERRNO.EINVAL;
    let start = iova;
    if (allocate) {
      const got = this.allocIova(elms[0].pages.base + elms[0].startByte, length);
      if (typeof got === "number") return got;
      start = got;
    } else {
      const rc = this.checkIova(start, length);
      if (rc < 0) return rc;
    }
    const created: Area[] = [];
    let at = start;
    for (const elm of elms) {
      if (prot.write && !elm.pages.writable) return -ERRNO.EPERM;
      if ((elm.startByte % this.pageSize) & (this.iovaAlignment - 1n)) return -ERRNO.EINVAL;
      created.push(new Area(this, at, at + elm.length - 1n, elm.pages, elm.startByte, prot));
      at += elm.length;
    }
    for (const a of created) this.#insert(a);
    const rc = this.#fill(created);
    if (rc < 0) {
      for (const a of created) this.#removeArea(a, false);
      return rc;
    }
    return start;
  }

  #insert(area: Area): void {
    this.#areas.splice(this.#firstEndingAtOrAfter(area.start), 0, area);
    area.pages.users.add(area);
  }

  #remove(area: Area): void {
    const i = this.#firstEndingAtOrAfter(area.start);
    if (this.#areas[i] === area) this.#areas.splice(i, 1);
    area.pages.users.delete(area);
  }

  /** Pin the pages of `areas` (if any domain exists) and map them into every domain. */
  #fill(areas: readonly Area[]): number {
    if (this.#domains.length === 0) return 0;
    for (const pages of new Set(areas.map((a) => a.pages))) {
      const rc = pages.syncUsers();
      if (rc < 0) return rc;
    }
    for (const d of this.#domains) {
      const done: Area[] = [];
      for (const a of areas) {
        const rc = this.#mapArea(a, d);
        if (rc < 0) {
          for (const m of done) this.#unmapArea(m, d);
          for (const prev of this.#domains.slice(0, this.#domains.indexOf(d))) {
            for (const m of areas) this.#unmapArea(m, prev);
          }
          return rc;
        }
        done.push(a);
      }
    }
    return 0;
  }

  /** The page-aligned IOVA and byte length an area occupies in a domain. */
  #domainSpan(a: Area): { iova: bigint; size: bigint } {
    const r = a.pageRange;
    return {
      iova: a.start - (a.startByte % this.pageSize),
      size: BigInt(r.last - r.first + 1) * this.pageSize,
    };
  }

  #mapArea(a: Area, d: IoptDomain): number {
    const r = a.pageRange;
    const pieces = a.pages.pieces(r.first, r.last);
    if (!pieces) return -ERRNO.EFAULT;
    const span = this.#domainSpan(a);
    let iova = span.iova;
    for (const p of pieces) {
      const step = this.disableLargePages ? this.pageSize : BigInt(p.length);
      for (let off = 0n; off < BigInt(p.length); off += step) {
        const rc = d.domain.map(iova + off, BigInt(p.phys) + off, step, a.prot);
        if (rc < 0) {
          if (iova + off > span.iova) d.domain.unmap(span.iova, iova + off - span.iova);
          return rc;
        }
      }
      iova += BigInt(p.length);
    }
    return 0;
  }

  #unmapArea(a: Area, d: IoptDomain): void {
    const span = this.#domainSpan(a);
    d.domain.unmap(span.iova, span.size);
  }

  /** Remove an area: unmap it from every domain, drop its pages use. */
  #removeArea(area: Area, mapped = true): void {
    if (mapped) { for (const d of this.#domains) this.#unmapArea(area, d); }
    this.#remove(area);
    if (area.pages.users.size === 0) area.pages.releaseAll();
    else area.pages.syncUsers();
  }

  /**
   * `iopt_unmap_iova_range`: unmap whole areas inside `[start, last]` in IOVA order. The first
   * intersecting area not fully inside stops the walk with ENOENT (earlier ones stay unmapped).
   * Nothing in the range is success with 0 bytes: IOMMU_IOAS_UNMAP turns that into ENOENT itself,
   * the VFIO compat UNMAP_DMA does not.
   */
  unmapRange(start: bigint, last: bigint): { rc: number; unmapped: bigint } {
    let unmapped = 0n;
    let rc = 0;
    const first = this.#firstEndingAtOrAfter(start);
    let end = first;
    for (; end < this.#areas.length && this.#areas[end].start <= last; end++) {
      const area = this.#areas[end];
      if (area.start < start || area.last > last) {
        rc = -ERRNO.ENOENT;
        break;
      }
      unmapped += area.length;
    }
    // Whole areas before the first partial one go, in one step (keeps unmap-all linear).
    for (const area of this.#areas.splice(first, end - first)) {
      for (const d of this.#domains) this.#unmapArea(area, d);
      area.pages.users.delete(area);
      if (area.pages.users.size === 0) area.pages.releaseAll();
      else area.pages.syncUsers();
    }
    return { rc, unmapped };
  }

  /** `iopt_unmap_iova`: EINVAL for length 0, EOVERFLOW when the range wraps. */
  unmapIova(iova: bigint, length: bigint): { rc: number; unmapped: bigint } {
    if (length === 0n) return { rc: -ERRNO.EINVAL, unmapped: 0n };
    if (iova + length - 1n > ULONG_MAX) return { rc: -ERRNO.EOVERFLOW, unmapped: 0n };
    return this.unmapRange(iova, iova + length - 1n);
  }

  /** `iopt_unmap_all`: success even when empty. */
  unmapAll(): { rc: number; unmapped: bigint } {
    return this.unmapRange(0n, ULONG_MAX);
  }

  /** `iopt_get_pages`: the pages behind `[iova, iova + length)`, which contiguous areas must cover. */
  getPages(iova: bigint, length: bigint): PagesElm[] | number {
    if (length === 0n) return -ERRNO.EINVAL;
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return -ERRNO.EOVERFLOW;
    const out: PagesElm[] = [];
    let cur = iova;
    for (const a of this.areasIn(iova, last)) {
      if (a.start > cur) break;
      const end = a.last < last ? a.last : last;
      out.push({
        pages: a.pages,
        startByte: a.startByte + (cur - a.start),
        length: end - cur + 1n,
      });
      cur = end + 1n;
      if (end === last) return out;
    }
    return -ERRNO.ENOENT;
  }

  /** `iopt_cut_iova`: split the areas containing each IOVA after that IOVA. */
  cutIova(iovas: readonly bigint[]): number {
    for (const x of iovas) {
      const area = this.firstAreaIn(x, x);
      if (!area) continue;
      const rc = this.#split(area, x);
      if (rc < 0) return rc;
    }
    return 0;
  }

  #split(area: Area, x: bigint): number {
    if (x === area.start || x === area.last) return 0;
    const mask = this.iovaAlignment - 1n;
    const rhsStartByte = area.startByte + (x + 1n - area.start);
    if (((x + 1n) & mask) || (rhsStartByte & mask)) return -ERRNO.EINVAL;
    if (this.#domains.length > 0 && !this.disableLargePages) return -ERRNO.EINVAL;
    const lhs = new Area(this, area.start, x, area.pages, area.startByte, area.prot);
    const rhs = new Area(this, x + 1n, area.last, area.pages, rhsStartByte, area.prot);
    this.#remove(area);
    this.#insert(lhs);
    this.#insert(rhs);
    return 0;
  }

  /**
   * `iopt_table_add_domain`: alignment (EINVAL above PAGE_SIZE, EADDRINUSE for violating areas),
   * aperture reservations owned by `owner` (EADDRINUSE), then pin and map every area.
   */
  addDomain(d: IoptDomain, owner: unknown): number {
    let align = lowestBit(d.facts.pgsizeBitmap);
    if (align < this.iovaAlignment) align = this.iovaAlignment;
    if (align > this.pageSize) return -ERRNO.EINVAL;
    if (align !== this.iovaAlignment) {
      const rc = this.#checkAlignment(align);
      if (rc < 0) return rc;
    }
    const { start, end } = d.facts.aperture;
    let rc = start > 0n ? this.reserve(0n, start - 1n, owner) : 0;
    if (rc === 0 && end < ULONG_MAX) rc = this.reserve(end + 1n, ULONG_MAX, owner);
    if (rc < 0) {
      this.removeReserved(owner);
      return rc;
    }
    this.#domains.push(d);
    const filled: Area[] = [];
    const pinned = this.#domains.length === 1 ? this.#syncAllPages() : 0;
    rc = pinned;
    if (rc === 0) {
      for (const a of this.#areas) {
        rc = this.#mapArea(a, d);
        if (rc < 0) break;
        filled.push(a);
      }
    }
    if (rc < 0) {
      for (const a of filled) this.#unmapArea(a, d);
      this.#domains.pop();
      this.#syncAllPages();
      this.removeReserved(owner);
      return rc;
    }
    this.iovaAlignment = align;
    return 0;
  }

  /** `iopt_table_remove_domain`: unmap everything from it, unpin with the last one. */
  removeDomain(d: IoptDomain, owner: unknown): void {
    const i = this.#domains.indexOf(d);
    if (i < 0) return;
    for (const a of this.#areas) this.#unmapArea(a, d);
    this.#domains.splice(i, 1);
    if (this.#domains.length === 0) this.#syncAllPages();
    this.removeReserved(owner);
    this.#recalcAlignment();
  }

  #syncAllPages(): number {
    const all = [...new Set(this.#areas.map((a) => a.pages))];
    for (let i = 0; i < all.length; i++) {
      const rc = all[i].syncUsers();
      if (rc < 0) {
        return rc;
      }
    }
    return 0;
  }

  /** `iommufd_ioas_destroy`: unmap everything. */
  destroy(): void {
    this.unmapAll();
    this.#reserved = [];
    this.#allowed = [];
  }
}
