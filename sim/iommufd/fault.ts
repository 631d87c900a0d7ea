/**
 * The page-fault queue of IOMMU_FAULT_QUEUE_ALLOC and its anonymous fd `[iommufd-pgfault]`
 * (drivers/iommu/iommufd/fault.c). Only recoverable page requests (PRI/stall) reach such a queue:
 * in the simulator, the stage-1 misses of a VT-d nested domain whose HWPT was allocated with
 * FAULT_ID_VALID (hwpt_cmds.ts routes them here, one request per group; the device's PRI
 * capability is not checked — a documented simplification). The fd answers read/write/poll with
 * Linux's rules (iommufd.md §8).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { POLLIN, POLLOUT } from "../../ffi/kernel.ts";
import { encodeInto } from "../../ffi/uapi/layout.ts";
import type { SimFile, SimProcess } from "../kernel/file.ts";
import {
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from "../../ffi/uapi/mod.ts";
import { decode } from "../../ffi/uapi/layout.ts";

/** One page request as delivered to user space (the fields of `iommu_hwpt_pgfault` but the cookie). */
export interface PageFault {
  /** IOMMU_PGFAULT_FLAGS_*. */
  readonly flags: number;
  /** Device object ID. */
  readonly devId: number;
  /** PASID (valid with PASID_VALID). */
  readonly pasid: number;
  /** Page request group index. */
  readonly grpid: number;
  /** IOMMU_PGFAULT_PERM_*. */
  readonly perm: number;
  /** Faulting address. */
  readonly addr: bigint;
  /** Length of the request (PAGE_SIZE). */
  readonly length: number;
}

/** A group of page requests answered together (`struct iopf_group`). */
export interface FaultGroup {
  /** The requests, in order. */
  readonly faults: readonly PageFault[];
  /** Called with the response code once user space answers. */
  readonly respond: (code: number) => void;
}

/** A fault queue; it is also the file behind the fault fd. */
export class FaultQueue implements SimFile {
  /** fd type tag (the anon inode name). */
  readonly kind = "iommufd-pgfault";
  readonly #deliver: FaultGroup[] = [];
  readonly #response = new Map<number, FaultGroup>();
  #nextCookie = 0;
  #onRelease: (() => void) | undefined;

  /** A queue; `onRelease` runs when the last fd reference goes. */
  constructor(onRelease?: () => void) {
    this.#onRelease = onRelease;
  }

  /** Queue a fault group for user space (`iommufd_fault_iopf_handler`). */
  deliver(group: FaultGroup): void {
    this.#deliver.push(group);
  }

  /** Groups waiting to be read. */
  get pending(): number {
    return this.#deliver.length;
  }

  /** read(2): whole groups of 40-byte records; ESPIPE unless the count is a multiple of 40. */
  read(_process: SimProcess, buffer: Uint8Array): number {
    return this.#read(buffer, 0n);
  }

  /** pread(2): like read at offset 0; any other offset is ESPIPE. */
  pread(_process: SimProcess, buffer: Uint8Array, offset: bigint): number {
    return this.#read(buffer, offset);
  }

  #read(buffer: Uint8Array, offset: bigint): number {
    const size = iommu_hwpt_pgfault.size;
    if (offset !== 0n || buffer.length % size !== 0) return -ERRNO.ESPIPE;
    let done = 0;
    while (this.#deliver.length > 0 && buffer.length > done) {
      const group = this.#deliver[0];
      if (group.faults.length * size > buffer.length - done) break;
      const cookie = this.#nextCookie;
      this.#nextCookie = (this.#nextCookie + 1) >>> 0;
      this.#response.set(cookie, group);
      for (const f of group.faults) {
        encodeInto(iommu_hwpt_pgfault, buffer, {
          flags: f.flags,
          dev_id: f.devId,
          pasid: f.pasid,
          grpid: f.grpid,
          perm: f.perm,
          __reserved: 0,
          addr: f.addr,
          length: f.length,
          cookie,
        }, done);
        done += size;
      }
      this.#deliver.shift();
    }
    return done;
  }

  /** write(2): 8-byte responses; ESPIPE unless a multiple of 8; EINVAL for a bad code or cookie. */
  write(_process: SimProcess, buffer: Uint8Array): number {
    return this.#write(buffer, 0n);
  }

  /** pwrite(2): like write at offset 0; any other offset is ESPIPE. */
  pwrite(_process: SimProcess, buffer: Uint8Array, offset: bigint): number {
    return this.#write(buffer, offset);
  }

  #write(buffer: Uint8Array, offset: bigint): number {
    const size = iommu_hwpt_page_response.size;
    if (offset !== 0n || buffer.length % size !== 0) return -ERRNO.ESPIPE;
    let done = 0;
    let rc = 0;
    while (buffer.length > done) {
      const r = decode(iommu_hwpt_page_response, buffer, done);
      if (r.code !== IOMMUFD_PAGE_RESP_SUCCESS && r.code !== IOMMUFD_PAGE_RESP_INVALID) {
        rc = -ERRNO.EINVAL;
        break;
      }
      const group = this.#response.get(r.cookie);
      if (!group) {
        rc = -ERRNO.EINVAL;
        break;
      }
      this.#response.delete(r.cookie);
      group.respond(r.code);
      done += size;
    }
    return done === 0 ? rc : done;
  }

  /** POLLOUT always, POLLIN while groups wait. */
  pollEvents(): number {
    return POLLOUT | (this.#deliver.length > 0 ? POLLIN : 0);
  }

  /** Last fd reference gone: answer outstanding groups INVALID and drop the object reference. */
  release(_process: SimProcess): void {
    for (const group of this.#response.values()) group.respond(IOMMUFD_PAGE_RESP_INVALID);
    this.#response.clear();
    const cb = this.#onRelease;
    this.#onRelease = undefined;
    cb?.();
  }

  /** The fault object is destroyed: answer everything still queued INVALID. */
  shutdown(): void {
    for (const group of this.#deliver) group.respond(IOMMUFD_PAGE_RESP_INVALID);
    this.#deliver.length = 0;
  }
}

/** What an event fd (a fault queue's or a vEVENTQ's) needs from its context: a file reference on the iommufd while it is open. */
export interface FaultFdHooks {
  /** Take a reference on the iommufd file (`iommufd_ctx_get`). */
  getContext(): void;
  /** Drop it (`iommufd_ctx_put`). */
  putContext(): void;
}
