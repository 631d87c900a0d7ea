/**
 * DMA fault injection: a {@link DmaPort} in front of a device's real one that makes chosen
 * transfers fault — every transfer touching a chosen IOVA range, or the next N transfers — and
 * records each injected fault as the machine's IOMMU records a fault (its vendor format, in its
 * fault list and kernel log; on sPAPR the PE freezes). As with a real fault, a transfer stops at
 * the faulting 4 KiB page: the pages before it were transferred.
 *
 * It wraps every method of the DmaPort interface through one check, so a method added to the
 * interface is one more line here.
 *
 * @module
 */

import type { DmaAccess, IommuFault } from "../iommu/model.ts";
import { DMA_FAULT, type DmaPort } from "../pci/device.ts";
import { DMA_PAGE_SIZE } from "../pci/dma_port.ts";

/** Which transfers fault. */
export interface DmaFaultRule {
  /** Every transfer that touches `[iova, iova + length)` faults there (with `length`, default 1). */
  readonly iova?: bigint;
  /** Bytes of the range from `iova` (default 1). */
  readonly length?: number;
  /** The next `next` transfers fault at their first byte (whatever their address). */
  readonly next?: number;
  /** Only reads (device reads memory) or only writes (default both). */
  readonly access?: DmaAccess;
  /** An IOVA rule retires after faulting this many transfers (default: never). */
  readonly times?: number;
}

/** Records an injected fault as the IOMMU would (the machine passes the IOMMU's `injectFault`). */
export type FaultRecorder = (
  iova: bigint,
  access: DmaAccess,
  pasid: number | undefined,
) => IommuFault;

interface ActiveRule {
  readonly start: bigint | undefined;
  readonly end: bigint;
  readonly access: DmaAccess | undefined;
  left: number;
}

const PAGE = BigInt(DMA_PAGE_SIZE);

/** The injector and the port it puts in front of the device (see the module doc). */
export class DmaFaults {
  /** The port the device model is given. */
  readonly port: DmaPort;
  /** Faults injected so far. */
  injected = 0;
  readonly #record: FaultRecorder | undefined;
  readonly #trace: (line: string) => void;
  #rules: ActiveRule[] = [];
  #cut = false;
  #idle = true;

  /** Faults in front of `inner`; `record` is the IOMMU's fault path (undefined: none). */
  constructor(inner: DmaPort, record: FaultRecorder | undefined, trace: (line: string) => void) {
    this.#record = record;
    this.#trace = trace;
    // Without a fault to inject, a transfer goes straight through (nothing allocated).
    this.port = {
      read: (iova, dst, pasid) =>
        this.#idle ? inner.read(iova, dst, pasid) : this.#transfer(
          "read",
          iova,
          dst.length,
          pasid,
          (n) => inner.read(iova, dst.subarray(0, n), pasid),
        ),
      write: (iova, src, pasid) =>
        this.#idle ? inner.write(iova, src, pasid) : this.#transfer(
          "write",
          iova,
          src.length,
          pasid,
          (n) => inner.write(iova, src.subarray(0, n), pasid),
        ),
      readInto: (iova, dst, offset, length, pasid) =>
        this.#idle ? inner.readInto(iova, dst, offset, length, pasid) : this.#transfer(
          "read",
          BigInt(iova),
          length,
          pasid,
          (n) => inner.readInto(iova, dst, offset, n, pasid),
        ),
      writeFrom: (iova, src, offset, length, pasid) =>
        this.#idle ? inner.writeFrom(iova, src, offset, length, pasid) : this.#transfer(
          "write",
          BigInt(iova),
          length,
          pasid,
          (n) => inner.writeFrom(iova, src, offset, n, pasid),
        ),
      // A 16- or 32-bit access is one piece: it faults whole, as an aligned access does.
      read16: (iova, pasid) =>
        this.#idle ? inner.read16(iova, pasid) : this.#small(
          "read",
          iova,
          2,
          pasid,
          () => inner.read16(iova, pasid),
        ),
      read32: (iova, pasid) =>
        this.#idle ? inner.read32(iova, pasid) : this.#small(
          "read",
          iova,
          4,
          pasid,
          () => inner.read32(iova, pasid),
        ),
      write16: (iova, value, pasid) =>
        this.#idle ? inner.write16(iova, value, pasid) : this.#small(
          "write",
          iova,
          2,
          pasid,
          () => inner.write16(iova, value, pasid) ? 0 : DMA_FAULT,
        ) === 0,
      write32: (iova, value, pasid) =>
        this.#idle ? inner.write32(iova, value, pasid) : this.#small(
          "write",
          iova,
          4,
          pasid,
          () => inner.write32(iova, value, pasid) ? 0 : DMA_FAULT,
        ) === 0,
    };
  }

  /** Make transfers fault (see {@link DmaFaultRule}); rules add up. */
  add(rule: DmaFaultRule): void {
    if (this.#record === undefined) {
      throw new Error("this machine's IOMMU model cannot record injected DMA faults");
    }
    const access = rule.access;
    if (rule.iova !== undefined) {
      const length = rule.length ?? 1;
      if (rule.iova < 0n || !Number.isSafeInteger(length) || length < 1) {
        throw new RangeError(`DMA fault range 0x${rule.iova.toString(16)}+${length} is not valid`);
      }
      const times = rule.times ?? Infinity;
      this.#rules.push({ start: rule.iova, end: rule.iova + BigInt(length), access, left: times });
    }
    if (rule.next !== undefined) {
      if (!Number.isInteger(rule.next) || rule.next < 1) {
        throw new RangeError(`DMA fault count ${rule.next} must be a positive integer`);
      }
      this.#rules.push({ start: undefined, end: 0n, access, left: rule.next });
    }
    this.#idle = this.#rules.length === 0;
  }

  /** Drop every rule. */
  clear(): void {
    this.#rules = [];
    this.#idle = true;
  }

  /** The device is gone: its transfers reach nothing (no IOMMU involved, nothing recorded). */
  cut(): void {
    this.#cut = true;
    this.#idle = false;
  }

  /**
   * One transfer of `length` bytes at `iova`: the part before the first faulting page goes
   * through `move(n)` (which transfers the first n bytes), then the fault is recorded.
   */
  #transfer(
    access: DmaAccess,
    iova: bigint,
    length: number,
    pasid: number | undefined,
    move: (n: number) => boolean,
  ): boolean {
    if (this.#cut) return false;
    const at = this.#faultAt(access, iova, length);
    if (at === undefined) return move(length);
    const before = Number(at - iova);
    if (before > 0 && !move(before)) return false;
    this.#inject(at, access, pasid);
    return false;
  }

  /** A 16/32-bit access: `access()`'s answer, or {@link DMA_FAULT} when it faults whole. */
  #small(
    access: DmaAccess,
    iova: number,
    length: number,
    pasid: number | undefined,
    run: () => number,
  ): number {
    if (this.#cut) return DMA_FAULT;
    const at = this.#faultAt(access, BigInt(iova), length);
    if (at === undefined) return run();
    this.#inject(at, access, pasid);
    return DMA_FAULT;
  }

  /** Record one injected fault at `at` as the IOMMU would. */
  #inject(at: bigint, access: DmaAccess, pasid: number | undefined): void {
    this.injected++;
    const fault = this.#record!(at, access, pasid);
    this.#trace(`injected DMA ${access} fault at 0x${at.toString(16)}: ${fault.message}`);
  }

  /** Where this transfer faults (the start of the faulting page piece), or undefined. */
  #faultAt(access: DmaAccess, iova: bigint, length: number): bigint | undefined {
    if (this.#rules.length === 0 || length <= 0) return undefined;
    const end = iova + BigInt(length);
    let first: bigint | undefined;
    for (const rule of this.#rules) {
      if (rule.left <= 0 || (rule.access !== undefined && rule.access !== access)) continue;
      let at: bigint;
      if (rule.start === undefined) {
        at = iova;
      } else {
        if (rule.start >= end || rule.end <= iova) continue;
        const page = rule.start - (rule.start % PAGE);
        at = page > iova ? page : iova;
      }
      rule.left--;
      if (first === undefined || at < first) first = at;
    }
    this.#rules = this.#rules.filter((r) => r.left > 0);
    this.#idle = this.#rules.length === 0 && !this.#cut;
    return first;
  }
}
