/**
 * A device's path to memory: every DMA goes through the IOMMU model's `translate`, one 4 KiB IOVA
 * page at a time, then to {@link PhysicalMemory}. Like hardware:
 * - a function whose Command.BusMaster is clear cannot issue the request at all: the access
 *   fails without reaching the IOMMU (no fault is recorded), and a trace line says so;
 * - a transfer that faults stops at the faulting page; the pages before it were transferred.
 *
 * @example
 * ```ts
 * const dma = createDmaPort({ iommu, memory, requester: 0x0010, config: edu.config });
 * dma.write(0x100000n, new Uint8Array([1, 2, 3])); // true when mapped and bus master is on
 * ```
 *
 * @module
 */

import type { VirtualClock } from "../clock.ts";
import type { IommuModel } from "../iommu/model.ts";
import type { PhysicalMemory } from "../memory.ts";
import { busMasterEnabled } from "./config_irq.ts";
import { DMA_FAULT, type DmaPort, type PciConfig } from "./device.ts";

/** Requests never cross a 4 KiB boundary (translation granule; PCIe 4.0 §2.2.7). */
export const DMA_PAGE_SIZE = 4096;

/** Options of {@link createDmaPort}. */
export interface DmaPortOptions {
  /** The IOMMU translating this function's requests. */
  readonly iommu: IommuModel;
  /** Physical memory behind the IOMMU. */
  readonly memory: PhysicalMemory;
  /** Requester id (bus << 8 | device << 3 | function). */
  readonly requester: number;
  /** The function's config space (for Command.BusMaster). */
  readonly config: PciConfig;
  /** Clock for trace timestamps (optional). */
  readonly clock?: VirtualClock;
  /** Trace sink for refused and faulting DMA (optional). */
  readonly trace?: (line: string) => void;
}

/** "bb:dd.f" of a requester id. */
function bdf(requester: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, "0");
  return `${hex((requester >> 8) & 0xff)}:${hex((requester >> 3) & 0x1f)}.${requester & 0x7}`;
}

/** A {@link DmaPort} for one function. */
export function createDmaPort(o: DmaPortOptions): DmaPort {
  const trace = (line: string): void => {
    if (!o.trace) return;
    const t = o.clock ? `[${(o.clock.nowNs / 1e6).toFixed(6)} ms] ` : "";
    o.trace(`${t}dma ${bdf(o.requester)}: ${line}`);
  };

  const transfer = (
    access: "read" | "write",
    iova: bigint,
    data: Uint8Array,
    pasid: number | undefined,
  ): boolean => {
    const what = `${access} iova=0x${iova.toString(16)} len=${data.length}`;
    if (!busMasterEnabled(o.config)) {
      trace(`${what} refused: bus master disabled (PCI_COMMAND.MASTER clear)`);
      return false;
    }
    let done = 0;
    while (done < data.length) {
      const at = iova + BigInt(done);
      const inPage = DMA_PAGE_SIZE - Number(at % BigInt(DMA_PAGE_SIZE));
      const n = Math.min(inPage, data.length - done);
      const r = o.iommu.translate(o.requester, pasid, at, access, n);
      if (!r.ok) {
        trace(`${what} stopped after ${done} bytes: ${r.fault.message}`);
        return false;
      }
      const piece = data.subarray(done, done + n);
      const ok = access === "read" ? o.memory.read(r.phys, piece) : o.memory.write(r.phys, piece);
      if (!ok) {
        trace(`${what} stopped after ${done} bytes: physical 0x${r.phys.toString(16)} is not RAM`);
        return false;
      }
      done += n;
    }
    return true;
  };

  const big = (iova: number): bigint => {
    if (!Number.isSafeInteger(iova) || iova < 0) {
      throw new RangeError(`DMA: IOVA ${iova} is not a non-negative safe integer (use a bigint)`);
    }
    return BigInt(iova);
  };
  const small = new Uint8Array(4);
  const smallView = new DataView(small.buffer);

  return {
    read: (iova, dst, pasid) => transfer("read", iova, dst, pasid),
    write: (iova, src, pasid) => transfer("write", iova, src, pasid),
    readInto: (iova, dst, off, len, pasid) =>
      transfer("read", big(iova), dst.subarray(off, off + len), pasid),
    writeFrom: (iova, src, off, len, pasid) =>
      transfer("write", big(iova), src.subarray(off, off + len), pasid),
    read16: (iova, pasid) =>
      transfer("read", big(iova), small.subarray(0, 2), pasid)
        ? smallView.getUint16(0, true)
        : DMA_FAULT,
    read32: (iova, pasid) =>
      transfer("read", big(iova), small, pasid) ? smallView.getUint32(0, true) : DMA_FAULT,
    write16: (iova, value, pasid) => {
      smallView.setUint16(0, value & 0xffff, true);
      return transfer("write", big(iova), small.subarray(0, 2), pasid);
    },
    write32: (iova, value, pasid) => {
      smallView.setUint32(0, value >>> 0, true);
      return transfer("write", big(iova), small, pasid);
    },
  };
}
