/**
 * An iommufd fault queue (IOMMU_FAULT_QUEUE_ALLOC, Linux 6.11+): the fd through which a
 * fault-capable HWPT (allocated with IOMMU_HWPT_FAULT_ID_VALID and this queue's id) delivers page
 * requests to user space, and through which user space answers them.
 *
 * Reads return whole groups of 40-byte `iommu_hwpt_pgfault` records; each group is answered with
 * one 8-byte `iommu_hwpt_page_response` naming the cookie of its records (iommufd.md §8).
 *
 * @example
 * ```ts
 * const queue = IommufdFaultQueue.open(kernel, iommufd);
 * // … HWPT_ALLOC with { flags: IOMMU_HWPT_FAULT_ID_VALID, faultId: queue.id } …
 * for (const f of queue.read()) queue.respond(f.cookie, IOMMUFD_PAGE_RESP_SUCCESS);
 * ```
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import { decode, encode } from "../ffi/uapi/layout.ts";
import {
  iommu_fault_alloc,
  IOMMU_FAULT_QUEUE_ALLOC,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
} from "../ffi/uapi/iommufd.ts";
import type { Iommufd } from "./iommufd.ts";
import { closeQuietly, ioctlChecked, throwErrno } from "./syscall.ts";

/** One page request as read from the queue. */
export interface PageFaultRecord {
  /** IOMMU_PGFAULT_FLAGS_* (PASID_VALID, LAST_PAGE). */
  readonly flags: number;
  /** The iommufd device id that raised it. */
  readonly devId: number;
  /** The PASID, or undefined without PASID_VALID. */
  readonly pasid: number | undefined;
  /** Page request group index. */
  readonly grpid: number;
  /** IOMMU_PGFAULT_PERM_* wanted. */
  readonly perm: number;
  /** Faulting page address. */
  readonly addr: bigint;
  /** Bytes the request covers. */
  readonly length: number;
  /** The cookie to answer with. */
  readonly cookie: number;
}

/** Records read per call at most. */
const READ_BATCH = 64;

/** An open fault queue. */
export class IommufdFaultQueue {
  /** Allocate a queue on an iommufd. */
  static open(kernel: Kernel, iommufd: Iommufd): IommufdFaultQueue {
    const layout = iommu_fault_alloc;
    const arg = encode(layout, { size: layout.size });
    ioctlChecked(kernel, iommufd.fd, IOMMU_FAULT_QUEUE_ALLOC, arg, "/dev/iommu", {
      EOPNOTSUPP: "flags must be 0",
      ENOTTY: "the kernel has no iommufd fault queues (Linux 6.11+)",
    });
    const out = decode(layout, arg);
    return new IommufdFaultQueue(kernel, out.out_fault_id, out.out_fault_fd);
  }

  private constructor(
    private readonly kernel: Kernel,
    /** The fault object id (for IOMMU_HWPT_ALLOC's `fault_id`). */
    readonly id: number,
    /** The queue's fd. */
    readonly fd: number,
  ) {}

  /** The page requests waiting now (empty when none). */
  read(): PageFaultRecord[] {
    const size = iommu_hwpt_pgfault.size;
    const buffer = new Uint8Array(size * READ_BATCH);
    const n = this.kernel.read(this.fd, buffer);
    if (n < 0) throwErrno(n, { operation: "read", device: "iommufd fault queue" });
    const out: PageFaultRecord[] = [];
    for (let at = 0; at + size <= n; at += size) {
      const r = decode(iommu_hwpt_pgfault, buffer, at);
      out.push({
        flags: r.flags,
        devId: r.dev_id,
        pasid: r.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID ? r.pasid : undefined,
        grpid: r.grpid,
        perm: r.perm,
        addr: r.addr,
        length: r.length,
        cookie: r.cookie,
      });
    }
    return out;
  }

  /** Answer the group of `cookie` with IOMMUFD_PAGE_RESP_SUCCESS or _INVALID. */
  respond(cookie: number, code: number): void {
    const n = this.kernel.write(this.fd, encode(iommu_hwpt_page_response, { cookie, code }));
    if (n < 0) {
      throwErrno(n, {
        operation: "write",
        device: "iommufd fault queue",
        hint: "answer each cookie once, with SUCCESS or INVALID",
      });
    }
  }

  /** Close the fd (outstanding groups are answered INVALID by the kernel). */
  close(): void {
    closeQuietly(this.kernel, this.fd);
  }
}
