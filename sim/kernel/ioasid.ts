/**
 * **Proposal, not merged Linux ABI.** `/dev/ioasid`: the file through which a process takes
 * PASIDs from the system-wide space (ffi/uapi/proposals.ts), through the kernel's list of
 * allocators (sim/kernel/pasid_allocators.ts). Each open file owns the PASIDs it allocated and is
 * the only one that may free them or, through iommufd, attach them to a device; closing its last fd
 * frees them. A freed PASID is torn down (sim/kernel/pasid_teardown.ts: entries silenced, drivers
 * told, DMA drained) and then quarantined. Present only on machines created with
 * `pasidAllocatorProposal`.
 *
 * Errors: argsz shorter than the struct, non-zero flags or reserved fields → EINVAL; an empty
 * range, or a lower bound above 1 through a vIOMMU allocator (its request has none) → EINVAL;
 * nothing free in the range → ENOSPC; no allocator left (every vIOMMU offering one was removed) →
 * ENODEV; freeing a PASID this file does not hold → ENOENT; watching one no /dev/ioasid file of
 * the calling process holds → EACCES (the attach rule: whoever may bind it may watch it); WATCH
 * with an fd that is not open → EBADF, not an eventfd → EINVAL; any other request → ENOTTY.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IoctlArch } from "../../ffi/ioctl.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import {
  IOASID_PROPOSAL_ALLOC,
  ioasid_proposal_alloc,
  IOASID_PROPOSAL_FREE,
  ioasid_proposal_free,
  IOASID_PROPOSAL_WATCH,
  ioasid_proposal_watch,
} from "../../ffi/uapi/proposals.ts";
import { EventFd } from "./eventfd.ts";
import type { SimFile, SimProcess } from "./file.ts";
import type { PasidAllocators, PasidAttachPolicy } from "./pasid_allocators.ts";
import type { PasidTeardown } from "./pasid_teardown.ts";
import type { SystemPasidSpace } from "./pasid_space.ts";
import { readStruct, userBytes, writeStruct } from "./user.ts";

/** What every /dev/ioasid file of a machine shares. */
export interface IoasidContext {
  /** The system-wide space. */
  readonly space: SystemPasidSpace;
  /** The kernel's list of allocators. */
  readonly allocators: PasidAllocators;
  /** The teardown (stop notices). */
  readonly teardown: PasidTeardown;
  /** ioctl encoding. */
  readonly arch: IoctlArch;
}

/** An open /dev/ioasid. */
export class IoasidFile implements SimFile {
  /** fd type tag. */
  readonly kind = "ioasid-proposal";
  readonly #alloc: number;
  readonly #free: number;
  readonly #watch: number;

  /** A file of `process` over the machine's PASID allocators. */
  constructor(private readonly ctx: IoasidContext, readonly process: SimProcess) {
    this.#alloc = ioctlNumber(ctx.arch, IOASID_PROPOSAL_ALLOC);
    this.#free = ioctlNumber(ctx.arch, IOASID_PROPOSAL_FREE);
    this.#watch = ioctlNumber(ctx.arch, IOASID_PROPOSAL_WATCH);
  }

  /** ALLOC, FREE and WATCH. */
  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number {
    if (request !== this.#alloc && request !== this.#free && request !== this.#watch) {
      return -ERRNO.ENOTTY;
    }
    const user = userBytes(process, arg);
    if (user === undefined) return -ERRNO.EFAULT;
    if (request === this.#alloc) {
      const layout = ioasid_proposal_alloc;
      const a = readStruct(user, layout, layout.size);
      if (a === undefined) return -ERRNO.EFAULT;
      if (a.argsz < layout.size || a.flags !== 0 || a.__reserved !== 0) return -ERRNO.EINVAL;
      const pasid = this.ctx.allocators.alloc(this, a.min, a.max);
      if (pasid < 0) return pasid;
      a.out_pasid = pasid;
      if (writeStruct(user, layout, a, layout.size)) return 0;
      this.ctx.allocators.free(this, pasid);
      return -ERRNO.EFAULT;
    }
    if (request === this.#free) {
      const layout = ioasid_proposal_free;
      const f = readStruct(user, layout, layout.size);
      if (f === undefined) return -ERRNO.EFAULT;
      if (f.argsz < layout.size || f.flags !== 0 || f.__reserved !== 0) return -ERRNO.EINVAL;
      return this.ctx.allocators.free(this, f.pasid);
    }
    const layout = ioasid_proposal_watch;
    const w = readStruct(user, layout, layout.size);
    if (w === undefined) return -ERRNO.EFAULT;
    if (w.argsz < layout.size || w.flags !== 0) return -ERRNO.EINVAL;
    const owner = this.ctx.space.ownerOf(w.pasid);
    if (!(owner instanceof IoasidFile) || owner.process !== process) return -ERRNO.EACCES;
    const file = process.fget(w.eventfd);
    if (file === undefined) return -ERRNO.EBADF;
    if (!(file instanceof EventFd)) return -ERRNO.EINVAL;
    // eventfd_signal keeps working after the user closes the eventfd (an eventfd_ctx reference).
    this.ctx.teardown.watch(w.pasid, () => file.signal(1n));
    return 0;
  }

  /** The last fd closed: every PASID of this file is freed (torn down, then quarantined). */
  release(): void {
    this.ctx.allocators.releaseOwner(this);
  }
}

/**
 * The attach rule of the proposal: a PASID may be attached by the process whose /dev/ioasid file
 * owns it; anything else is -EACCES (see sim/kernel/pasid_allocators.ts).
 */
export function ioasidAttachPolicy(
  space: SystemPasidSpace,
  teardown: PasidTeardown,
): PasidAttachPolicy {
  return {
    teardown,
    checkAttach(process, pasid) {
      const owner = space.ownerOf(pasid);
      return owner instanceof IoasidFile && owner.process === process ? 0 : -ERRNO.EACCES;
    },
  };
}
