/**
 * type1's DMA mappings (`struct vfio_dma` in `iommu->dma_list`): non-overlapping user mappings
 * ordered by IOVA, each with the user pages it pinned and the pages it charged to locked_vm.
 *
 * @module
 */

import type { MapProtection } from "../iommu/model.ts";
import type { PhysicalChunk } from "../memory.ts";
import type { SimProcess } from "../kernel/file.ts";

/** A physically contiguous piece of a mapping. */
export interface DmaPiece {
  /** IOVA of the first byte. */
  readonly iova: bigint;
  /** Physical address of the first byte. */
  readonly phys: bigint;
  /** Length in bytes. */
  readonly length: bigint;
  /** The pinned chunk (one reference held by this piece). */
  readonly chunk: PhysicalChunk;
}

/** One user DMA mapping. */
export interface DmaMapping {
  /** First IOVA. */
  readonly iova: bigint;
  /** Length in bytes. */
  readonly size: bigint;
  /** The process virtual address (replaced by a VADDR update). */
  vaddr: bigint;
  /** Device access rights. */
  readonly prot: MapProtection;
  /** Pinned pieces, in IOVA order. */
  readonly pieces: readonly DmaPiece[];
  /** Pages charged to the owner's locked_vm. */
  readonly lockedPages: number;
  /** The process charged for the pinned pages (`dma->task`). */
  owner: SimProcess;
  /** `UNMAP_FLAG_VADDR` outstanding: the host address is invalid until a VADDR map. */
  vaddrInvalid: boolean;
}

/** The ordered mapping set of a container. */
export class DmaList {
  #list: DmaMapping[] = [];

  /** Number of mappings. */
  get length(): number {
    return this.#list.length;
  }

  /** All mappings in IOVA order. */
  all(): readonly DmaMapping[] {
    return this.#list;
  }

  /** Index of the first mapping whose end is above `iova`. */
  #lowerBound(iova: bigint): number {
    let lo = 0;
    let hi = this.#list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.#list[mid];
      if (m.iova + m.size <= iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** `vfio_find_dma`: a mapping overlapping `[start, start + size)` (size 0: containing start). */
  find(start: bigint, size: bigint): DmaMapping | undefined {
    const i = this.#lowerBound(start);
    const m = this.#list[i];
    if (m === undefined) return undefined;
    const end = size === 0n ? start + 1n : start + size;
    return m.iova < end ? m : undefined;
  }

  /** The mappings overlapping `[start, start + size)`, in order (`size` may run past 2^64). */
  overlapping(start: bigint, size: bigint): DmaMapping[] {
    const out: DmaMapping[] = [];
    for (let i = this.#lowerBound(start); i < this.#list.length; i++) {
      const m = this.#list[i];
      if (m.iova >= start + size) break;
      out.push(m);
    }
    return out;
  }

  /** Insert a mapping (the caller checked it overlaps nothing). */
  insert(mapping: DmaMapping): void {
    this.#list.splice(this.#lowerBound(mapping.iova), 0, mapping);
  }

  /** Remove a mapping. */
  remove(mapping: DmaMapping): void {
    const i = this.#list.indexOf(mapping);
    if (i >= 0) this.#list.splice(i, 1);
  }
}
