/**
 * **Proposal, not Linux ABI.** The kernel side of the proposed PASID allocator: where the PASIDs
 * of /dev/ioasid come from, and who may bind them.
 *
 * Allocators (../shared/seeds/000). On a host (VT-d, SMMUv3) the kernel allocates from the
 * system-wide {@link SystemPasidSpace} itself ("native"). A guest whose virtio-iommus offer the
 * proposed ALLOC_PASID must take every PASID from the host through them, so its PASID namespace
 * stays the host's: the kernel keeps the **list** of those vIOMMUs, as the thread suggests, and
 * asks the first one still present; FREE_PASID goes through any of them (they are equivalent).
 * When one is removed the next serves; when none is left, allocation fails with ENODEV rather than
 * falling back to a private space that would collide with the host's.
 *
 * Ownership. A PASID belongs to the /dev/ioasid file that allocated it (or to the simulated process
 * it was bound for, sim/kernel/sva.ts). With the proposal on, iommufd's PASID attach accepts only a
 * PASID owned by a /dev/ioasid file of the calling process ({@link PasidAttachPolicy}); anything
 * else — never allocated, freed, being torn down, quarantined, or someone else's — is EACCES, the
 * errno the 2020 ioasid code gave for an IOASID "found but not in the caller's set"
 * (`ioasid_find`), extended here to absent ones so that ENOENT keeps meaning "no such object id"
 * on the iommufd attach path.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimProcess } from "./file.ts";
import type { PasidTeardown } from "./pasid_teardown.ts";
import type { SystemPasidSpace } from "./pasid_space.ts";

/** One allocator of the list. */
export interface PasidAllocator {
  /** For traces and errors ("native", "virtio0"). */
  readonly name: string;
  /** Whether it can still be used (a removed vIOMMU cannot). */
  alive(): boolean;
  /** A PASID in `[min, max]` for `owner`, or -errno. */
  alloc(owner: unknown, min: number, max: number): number;
  /** Free a PASID (the kernel checked the owner) for `reason`: 0 or -errno. */
  free(pasid: number, reason: string): number;
}

/** The kernel's own allocator over the space (a host). */
export function nativeAllocator(space: SystemPasidSpace): PasidAllocator {
  const self: PasidAllocator = {
    name: "native",
    alive: () => true,
    alloc: (owner, min, max) => space.alloc(owner, min, max, { via: self }),
    free: (pasid, reason) => space.free(space.ownerOf(pasid), pasid, reason),
  };
  return self;
}

/** What a vIOMMU offers the allocator list (its guest driver's proposal requests). */
export interface ViommuPasidRequests {
  /** Device name ("virtio0"). */
  readonly name: string;
  /** ALLOC_PASID: a PASID or -errno (-ENOMEM: none free). */
  allocPasid(maxPasid: number): number;
  /** FREE_PASID: 0 or -errno. */
  freePasid(pasid: number): number;
  /** The device is still there. */
  readonly removed: boolean;
}

/**
 * A vIOMMU as an allocator: ALLOC_PASID with `max` as max_pasid (the request has no lower bound,
 * so `min` above 1 is EINVAL; none free is ENOSPC, as natively), then the kernel records the
 * owner.
 */
export function viommuAllocator(space: SystemPasidSpace, v: ViommuPasidRequests): PasidAllocator {
  return {
    name: v.name,
    alive: () => !v.removed,
    alloc(owner, min, max) {
      const empty = !Number.isInteger(min) || !Number.isInteger(max) || max < Math.max(min, 1);
      if (empty || min > 1) return -ERRNO.EINVAL;
      const pasid = v.allocPasid(max);
      if (pasid === -ERRNO.ENOMEM) return -ERRNO.ENOSPC;
      if (pasid < 0) return pasid;
      space.assign(pasid, owner);
      return pasid;
    },
    free: (pasid) => v.freePasid(pasid), // the request carries no reason
  };
}

/** The list of allocators (seed 000) over one space. */
export class PasidAllocators {
  /** A list; the first alive one allocates. */
  constructor(
    private readonly space: SystemPasidSpace,
    private readonly list: readonly PasidAllocator[],
  ) {}

  /** The allocators still present, in order. */
  alive(): PasidAllocator[] {
    return this.list.filter((a) => a.alive());
  }

  /** A PASID in `[min, max]` for `owner` from the first allocator present; -ENODEV when none. */
  alloc(owner: unknown, min: number, max: number): number {
    const a = this.alive()[0];
    return a === undefined ? -ERRNO.ENODEV : a.alloc(owner, min, max);
  }

  /** Free `owner`'s PASID through an allocator present: 0, -ENOENT when not its. */
  free(owner: unknown, pasid: number): number {
    if (this.space.ownerOf(pasid) !== owner) return -ERRNO.ENOENT;
    const a = this.alive()[0];
    if (a === undefined) return -ERRNO.ENODEV;
    return a.free(pasid, "freed by its owner");
  }

  /** Free every PASID of `owner` (its file closed, its process exited) for `reason`. */
  releaseOwner(owner: unknown, reason = "its /dev/ioasid file was closed"): void {
    const a = this.alive()[0];
    for (const pasid of this.space.ownedBy(owner)) {
      if (a === undefined || a.free(pasid, reason) < 0) this.space.release(pasid, reason);
    }
  }
}

/** Who may attach a PASID through iommufd, when the allocator proposal is on. */
export interface PasidAttachPolicy {
  /** 0 when `process` may attach `pasid` to a device, else -EACCES. */
  checkAttach(process: SimProcess, pasid: number): number;
  /** The teardown (iommufd drops its PASID attachments through `onRevoke`). */
  readonly teardown: PasidTeardown;
}
