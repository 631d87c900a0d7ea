/**
 * A device's path to memory through the IOMMU, page by page (TEMPORARY: replaced by
 * sim/pci/dma_port.ts `createDmaPort` when it lands).
 *
 * @module
 */

import type { IommuModel } from "./iommu/model.ts";
import type { PhysicalMemory } from "./memory.ts";
import type { DmaPort } from "./pci/device.ts";

/** Translation granule of a DMA access. */
const DMA_PAGE = 4096n;

/** A DmaPort translating every access of `requester` through `iommu`. */
export function machineDmaPort(
  iommu: IommuModel,
  memory: PhysicalMemory,
  requester: number,
): DmaPort {
  const walk = (
    iova: bigint,
    length: number,
    access: "read" | "write",
    step: (phys: bigint, at: number, n: number) => boolean,
    pasid?: number,
  ): boolean => {
    let done = 0;
    while (done < length) {
      const addr = iova + BigInt(done);
      const inPage = Number(DMA_PAGE - (addr % DMA_PAGE));
      const n = Math.min(inPage, length - done);
      const t = iommu.translate(requester, pasid, addr, access, n);
      if (!t.ok) return false;
      if (!step(t.phys, done, n)) return false;
      done += n;
    }
    return true;
  };
  return {
    read: (iova, dst, pasid) =>
      walk(
        iova,
        dst.length,
        "read",
        (phys, at, n) => memory.read(phys, dst.subarray(at, at + n)),
        pasid,
      ),
    write: (iova, src, pasid) =>
      walk(
        iova,
        src.length,
        "write",
        (phys, at, n) => memory.write(phys, src.subarray(at, at + n)),
        pasid,
      ),
  };
}
