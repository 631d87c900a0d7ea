/**
 * A vIOMMU event queue (IOMMU_VEVENTQ_ALLOC, Linux 6.15+): the fd through which a vIOMMU reports
 * events of devices attached to its nested HWPTs — for an SMMUv3 vIOMMU the stage-1 faults and
 * configuration errors of the guest's tables, each a raw 32-byte SMMUv3 event whose StreamID is the
 * device's vSID (its vDEVICE's virtual id). Allocate it with {@link Iommufd.veventqAlloc}.
 *
 * Each record read is an 8-byte header (`flags`, `sequence`) followed by the event; a header with
 * IOMMU_VEVENTQ_FLAG_LOST_EVENTS stands alone and says events were dropped because the queue held
 * `depth` unread events. Sequence numbers run 0..INT_MAX and wrap to 0.
 *
 * @example
 * ```ts
 * using q = iommufd.veventqAlloc({ viommuId, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 64 });
 * // … a DMA faults at stage 1 …
 * for (const r of q.read()) console.log(r.sequence, r.lost, r.event);
 * ```
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import { decode } from "../ffi/uapi/layout.ts";
import {
  iommu_vevent_arm_smmuv3,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  iommufd_vevent_header,
} from "../ffi/uapi/post_6_12.ts";
import { closeQuietly, throwErrno } from "./syscall.ts";

/** One record read from a vEVENTQ. */
export interface VeventRecord {
  /** `iommufd_vevent_header.flags` (IOMMU_VEVENTQ_FLAG_*). */
  readonly flags: number;
  /** `iommufd_vevent_header.sequence` (0..INT_MAX, wrapping to 0). */
  readonly sequence: number;
  /** A LOST_EVENTS header: events were dropped here; no event data. */
  readonly lost: boolean;
  /** The event bytes (empty for a LOST_EVENTS header). */
  readonly data: Uint8Array;
  /** For a 32-byte (SMMUv3) event: its four little-endian dwords, else undefined. */
  readonly event: readonly bigint[] | undefined;
}

/** Bytes read per call (room for many SMMUv3 records). */
const READ_BUFFER = 4096;

/** An open vEVENTQ: its object id and fd. Closing the fd leaves the object to IOMMU_DESTROY. */
export class IommufdVeventq {
  /**
   * Wrap an allocated queue (use {@link Iommufd.veventqAlloc}); `eventSize` is the byte size of one
   * event of the queue's type (32 for IOMMU_VEVENTQ_TYPE_ARM_SMMUV3).
   */
  constructor(
    private readonly kernel: Kernel,
    /** The vEVENTQ object id (for IOMMU_DESTROY). */
    readonly id: number,
    /** The queue's fd. */
    readonly fd: number,
    /** Bytes of one event record after its header. */
    readonly eventSize: number = iommu_vevent_arm_smmuv3.size,
  ) {}

  /** The records waiting now, oldest first (empty when none). */
  read(): VeventRecord[] {
    const hdr = iommufd_vevent_header.size;
    const buffer = new Uint8Array(READ_BUFFER);
    const n = this.kernel.read(this.fd, buffer);
    if (n < 0) throwErrno(n, { operation: "read", device: "iommufd vEVENTQ" });
    const out: VeventRecord[] = [];
    let at = 0;
    while (at + hdr <= n) {
      const h = decode(iommufd_vevent_header, buffer, at);
      at += hdr;
      const lost = (h.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0;
      const len = lost ? 0 : Math.min(this.eventSize, n - at);
      const data = buffer.slice(at, at + len);
      at += len;
      const event = !lost && len === iommu_vevent_arm_smmuv3.size
        ? decode(iommu_vevent_arm_smmuv3, data).evt
        : undefined;
      out.push({ flags: h.flags, sequence: h.sequence, lost, data, event });
    }
    return out;
  }

  /** Close the fd (the object stays until IOMMU_DESTROY or the iommufd is closed). */
  close(): void {
    closeQuietly(this.kernel, this.fd);
  }

  /** {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
