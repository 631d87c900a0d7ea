/**
 * A paging domain of the guest's virtio-iommu driver (`struct viommu_domain` of
 * drivers/iommu/virtio-iommu.c): the driver's mapping tree, and map and unmap as Linux 6.12 does
 * them — `iommu_pgsize` splits a range, each piece is one MAP request, sent only while the domain
 * has endpoints (the tree is replayed on the first attach otherwise), and unmap removes whole
 * mappings chunk by chunk before one UNMAP request (see virtio_iommu.ts for the deviations).
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import type { IommuDomain, IommuFacts, MapProtection } from "../model.ts";
import { IntervalList } from "./virtio_iommu_intervals.ts";
import { encodeMap, encodeUnmap, VIRTIO_IOMMU_MAP_F } from "./virtio_iommu_wire.ts";

/**
 * What a domain uses of its driver (`VirtioIommu`, ./virtio_iommu.ts, which implements it):
 * declared here so that this module does not import the one that owns it.
 */
export interface VirtioIommuDomainUnit {
  /** The facts Linux derives from the device (page sizes, aperture). */
  readonly facts: IommuFacts;
  /** The granule (lowest bit of page_size_mask). */
  readonly granule: bigint;
  /** Send one whole request and wait for it: 0 or -errno. */
  sendRequest(req: Uint8Array): number;
}

/** One mapping in the driver's tree (`struct viommu_mapping`), inclusive. */
interface DriverMapping {
  readonly start: bigint;
  readonly end: bigint;
  readonly phys: bigint;
  readonly flags: number;
}

/** A paging domain of the driver (`struct viommu_domain`). */
export class VirtioIommuDomain implements IommuDomain {
  /** @internal the owning driver. */
  readonly unit: VirtioIommuDomainUnit;
  /** The driver's mapping tree: sorted by start, disjoint (overlaps are refused). */
  readonly mappings: IntervalList<DriverMapping> = new IntervalList();
  /** Endpoints attached (`nr_endpoints`). */
  nrEndpoints = 0;
  /** Set once freed. */
  freed = false;

  /** Use {@link VirtioIommu.allocDomain}. */
  constructor(unit: VirtioIommuDomainUnit, readonly id: number, readonly bypass = false) {
    this.unit = unit;
  }

  /**
   * Map as `iommu_map` → `viommu_map_pages` do. 0, -EINVAL (misaligned to the granule, empty, no
   * permission, beyond the aperture), -EEXIST (overlap), or the errno of a refused MAP.
   */
  map(iova: bigint, phys: bigint, size: bigint, prot: MapProtection): number {
    const u = this.unit;
    const granule = u.granule;
    if (this.freed || size <= 0n || iova < 0n || phys < 0n) return -ERRNO.EINVAL;
    if (((iova | phys | size) & (granule - 1n)) !== 0n) return -ERRNO.EINVAL;
    if (!prot.read && !prot.write) return -ERRNO.EINVAL;
    const ap = u.facts.aperture;
    if (iova < ap.start || iova + size - 1n > ap.end) return -ERRNO.EINVAL;
    if (this.mappings.overlapping(iova, iova + size - 1n).length > 0) return -ERRNO.EEXIST;
    const flags = (prot.read ? VIRTIO_IOMMU_MAP_F.READ : 0) |
      (prot.write ? VIRTIO_IOMMU_MAP_F.WRITE : 0);
    let done = 0n;
    let rc = 0;
    while (done < size) {
      const { pgsize, count } = iommuPgsize(
        u.facts.pgsizeBitmap,
        iova + done,
        phys + done,
        size - done,
      );
      rc = this.#mapPages(iova + done, phys + done, pgsize * count, flags);
      if (rc < 0) break;
      done += pgsize * count;
    }
    if (rc < 0 && done > 0n) this.unmap(iova, done);
    return rc;
  }

  /** Unmap as `iommu_unmap` → `viommu_unmap_pages` do; returns the bytes unmapped. */
  unmap(iova: bigint, size: bigint): bigint {
    if (this.freed || size <= 0n || iova < 0n) return 0n;
    if (((iova | size) & (this.unit.granule - 1n)) !== 0n) return 0n;
    let unmapped = 0n;
    while (unmapped < size) {
      const at = iova + unmapped;
      const { pgsize, count } = iommuPgsize(this.unit.facts.pgsizeBitmap, at, at, size - unmapped);
      const r = this.#unmapPages(at, pgsize * count);
      if (r === 0n) break;
      unmapped += r;
    }
    return unmapped;
  }

  /** Look up in the driver's tree (`viommu_iova_to_phys`), with the mapping's permissions. */
  lookup(iova: bigint): { phys: bigint; prot: MapProtection } | undefined {
    const m = this.freed ? undefined : this.mappings.find(iova);
    if (m === undefined) return undefined;
    return {
      phys: m.phys + (iova - m.start),
      prot: {
        read: (m.flags & VIRTIO_IOMMU_MAP_F.READ) !== 0,
        write: (m.flags & VIRTIO_IOMMU_MAP_F.WRITE) !== 0,
      },
    };
  }

  /** @internal send MAP for every mapping of the tree (`viommu_replay_mappings`). */
  replay(): number {
    for (const m of this.mappings.values()) {
      const rc = this.unit.sendRequest(
        encodeMap({
          domain: this.id,
          virtStart: m.start,
          virtEnd: m.end,
          physStart: m.phys,
          flags: m.flags,
        }),
      );
      if (rc < 0) return rc;
    }
    return 0;
  }

  /** @internal drop every mapping from the tree (`viommu_domain_free`). */
  clear(): void {
    this.mappings.clear();
  }

  #mapPages(iova: bigint, phys: bigint, len: bigint, flags: number): number {
    const m: DriverMapping = { start: iova, end: iova + len - 1n, phys, flags };
    this.mappings.insert(m);
    if (this.nrEndpoints === 0) return 0;
    const rc = this.unit.sendRequest(
      encodeMap({ domain: this.id, virtStart: m.start, virtEnd: m.end, physStart: phys, flags }),
    );
    if (rc < 0) this.mappings.remove(m);
    return rc;
  }

  /** `viommu_del_mappings` + UNMAP: whole mappings starting in the chunk; 0 when short. */
  #unmapPages(iova: bigint, len: bigint): bigint {
    const end = iova + len - 1n;
    let removed = 0n;
    let last = iova - 1n;
    for (const m of this.mappings.overlapping(iova, end)) {
      if (m.start < iova) break; // would split a mapping
      removed += m.end - m.start + 1n;
      if (m.end > last) last = m.end;
      this.mappings.remove(m);
    }
    if (removed === 0n) return 0n;
    if (this.nrEndpoints > 0) {
      const rc = this.unit.sendRequest(
        // Linux: [iova, iova + removed − 1]; the same range unless the chunk had a hole.
        encodeUnmap({ domain: this.id, virtStart: iova, virtEnd: last }),
      );
      if (rc < 0) return 0n;
    }
    return removed < len ? 0n : removed;
  }
}

/** Index of the highest set bit (`__fls`); -1 for 0. */
function fls(v: bigint): number {
  return v === 0n ? -1 : v.toString(2).length - 1;
}

/** Index of the lowest set bit (`__ffs`); -1 for 0. */
function ffs(v: bigint): number {
  return fls(v & -v);
}

/** `GENMASK(bit, 0)`. */
function lowMask(bit: number): bigint {
  return (1n << BigInt(bit + 1)) - 1n;
}

/**
 * Linux's `iommu_pgsize` (drivers/iommu/iommu.c): the largest page size of `bitmap` that fits
 * `size` and the alignment of `iova | paddr`, and how many of them to map before a larger page
 * size could start (only when `iova` and `paddr` are offset alike within it).
 */
export function iommuPgsize(
  bitmap: bigint,
  iova: bigint,
  paddr: bigint,
  size: bigint,
): { pgsize: bigint; count: bigint } {
  const merge = iova | paddr;
  let pgsizes = bitmap & lowMask(fls(size));
  if (merge !== 0n) pgsizes &= lowMask(ffs(merge));
  if (pgsizes === 0n) return { pgsize: size, count: 1n }; // Linux: BUG_ON; callers check alignment
  const idx = fls(pgsizes);
  const pgsize = 1n << BigInt(idx);
  let span = size;
  const bigger = bitmap & ~lowMask(idx);
  if (bigger !== 0n) {
    const next = bigger & -bigger;
    if (((iova ^ paddr) & (next - 1n)) === 0n) {
      const offset = next - (merge & (next - 1n));
      if (offset + next <= span) span = offset;
    }
  }
  return { pgsize, count: span >> BigInt(idx) };
}
