/**
 * **Proposal, not merged Linux ABI.** `/dev/ioasid`: the file through which a process takes
 * PASIDs from the {@link SystemPasidSpace} (ffi/uapi/proposals.ts). Each open file owns the
 * PASIDs it allocated; closing its last fd frees them into quarantine. Present only on machines
 * created with `pasidAllocatorProposal`.
 *
 * Errors: argsz shorter than the struct, non-zero flags or reserved fields → EINVAL; an empty
 * range → EINVAL; nothing free in the range → ENOSPC; freeing a PASID this file does not hold →
 * ENOENT; any other request → ENOTTY.
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
} from "../../ffi/uapi/proposals.ts";
import type { SimFile, SimProcess } from "./file.ts";
import type { SystemPasidSpace } from "./pasid_space.ts";
import { readStruct, userBytes, writeStruct } from "./user.ts";

/** An open /dev/ioasid. */
export class IoasidFile implements SimFile {
  /** fd type tag. */
  readonly kind = "ioasid-proposal";
  readonly #alloc: number;
  readonly #free: number;

  /** A file over the system's PASID space. */
  constructor(private readonly space: SystemPasidSpace, arch: IoctlArch) {
    this.#alloc = ioctlNumber(arch, IOASID_PROPOSAL_ALLOC);
    this.#free = ioctlNumber(arch, IOASID_PROPOSAL_FREE);
  }

  /** ALLOC and FREE. */
  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number {
    if (request !== this.#alloc && request !== this.#free) return -ERRNO.ENOTTY;
    const user = userBytes(process, arg);
    if (user === undefined) return -ERRNO.EFAULT;
    if (request === this.#alloc) {
      const layout = ioasid_proposal_alloc;
      const a = readStruct(user, layout, layout.size);
      if (a === undefined) return -ERRNO.EFAULT;
      if (a.argsz < layout.size || a.flags !== 0 || a.__reserved !== 0) return -ERRNO.EINVAL;
      const pasid = this.space.alloc(this, a.min, a.max);
      if (pasid < 0) return pasid;
      a.out_pasid = pasid;
      return writeStruct(user, layout, a, layout.size) ? 0 : -ERRNO.EFAULT;
    }
    const layout = ioasid_proposal_free;
    const f = readStruct(user, layout, layout.size);
    if (f === undefined) return -ERRNO.EFAULT;
    if (f.argsz < layout.size || f.flags !== 0 || f.__reserved !== 0) return -ERRNO.EINVAL;
    return this.space.free(this, f.pasid);
  }

  /** The last fd closed: every PASID of this file goes into quarantine. */
  release(): void {
    this.space.releaseOwner(this);
  }
}
