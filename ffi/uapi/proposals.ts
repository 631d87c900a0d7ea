/**
 * **Proposals, not Linux ABI.** uAPI of designs debated on the lists and never merged, modelled by
 * the simulator behind explicit machine options so drivers can try them. Nothing here exists in
 * any Linux release; a real kernel answers these numbers with ENOTTY (or has no /dev/ioasid).
 *
 * /dev/ioasid (after the 2021 "/dev/ioasid uAPI" proposal and the PASID-lifetime arguments of
 * ../shared/seeds/003): a system-wide PASID allocator whose PASIDs belong to the open file, are
 * freed when it closes, and are quarantined before reuse. The ioctl numbers are this project's
 * own, chosen outside every range VFIO (';' 100–125) and iommufd (';' 0x80–0x93) use.
 *
 * @module
 */

import { defineIoctl, type IoctlDecl, VFIO_TYPE } from "./common.ts";
import { defineStruct, s32, type StructLayout, type U32, u32 } from "./layout.ts";

/** Path of the proposed PASID allocator device. */
export const IOASID_PROPOSAL_PATH = "/dev/ioasid";

/** Proposal: allocate the lowest free PASID in `[min, max]`. */
export const IOASID_PROPOSAL_ALLOC: IoctlDecl = defineIoctl(
  "IOASID_PROPOSAL_ALLOC",
  VFIO_TYPE,
  0xc0,
);
/** Proposal: free a PASID of this file (it is torn down, then quarantined). */
export const IOASID_PROPOSAL_FREE: IoctlDecl = defineIoctl("IOASID_PROPOSAL_FREE", VFIO_TYPE, 0xc1);
/**
 * Proposal: signal an eventfd when a PASID of the calling process is torn down (freed, its file
 * closed, the vIOMMU it came through removed): the driver's stop notice, which never waits for the
 * driver.
 */
export const IOASID_PROPOSAL_WATCH: IoctlDecl = defineIoctl(
  "IOASID_PROPOSAL_WATCH",
  VFIO_TYPE,
  0xc2,
);

/** Proposal: argument of IOASID_PROPOSAL_ALLOC. */
export const ioasid_proposal_alloc: StructLayout<
  { argsz: U32; flags: U32; min: U32; max: U32; out_pasid: U32; __reserved: U32 }
> = defineStruct("ioasid_proposal_alloc", 24, {
  argsz: u32(0),
  flags: u32(4),
  min: u32(8),
  max: u32(12),
  out_pasid: u32(16),
  __reserved: u32(20),
});

/** Proposal: argument of IOASID_PROPOSAL_FREE. */
export const ioasid_proposal_free: StructLayout<
  { argsz: U32; flags: U32; pasid: U32; __reserved: U32 }
> = defineStruct("ioasid_proposal_free", 16, {
  argsz: u32(0),
  flags: u32(4),
  pasid: u32(8),
  __reserved: u32(12),
});

/** Proposal: argument of IOASID_PROPOSAL_WATCH. */
export const ioasid_proposal_watch = defineStruct("ioasid_proposal_watch", 16, {
  argsz: u32(0),
  flags: u32(4),
  pasid: u32(8),
  eventfd: s32(12),
});
