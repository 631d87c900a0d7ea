/**
 * **Proposal, not in the virtio spec.** virtio-iommu PASID allocation requests as proposed on the
 * list in 2019 (../shared/seeds/000): a feature bit and two requests, ALLOC_PASID and
 * FREE_PASID, taking PASIDs from one host-wide PASID space shared by every vIOMMU, with a
 * `max_pasid` field so a guest can ask for PASIDs its devices can carry. The feature bit and the
 * request type numbers are this project's choice (the thread fixed none).
 *
 * Layouts (little-endian; head = {u8 type; u8 reserved[3]}, tail = {u8 status; u8 reserved[3]}):
 *
 * | request | device-readable | device-writable | total |
 * |---|---|---|---|
 * | ALLOC_PASID | head@0/4, max_pasid@4/4 (0: no limit) | pasid@8/4, tail@12/4 | 16 |
 * | FREE_PASID | head@0/4, reserved@4/4, pasid@8/4 | tail@12/4 | 16 |
 *
 * Status: OK with the PASID written; INVAL for a non-zero reserved field; NOMEM when no PASID up
 * to max_pasid is free (allocated or quarantined); NOENT when freeing a PASID this device did not
 * hand out. Without the feature negotiated the types are unknown (used length 0).
 *
 * @module
 */

import type { PasidAllocator } from "../model.ts";
import { ERRNO } from "../../../ffi/errno.ts";
import { VIRTIO_IOMMU_S, VIRTIO_IOMMU_SIZE } from "./virtio_iommu_wire.ts";

/** Proposal feature bit (device-specific range 0–23; the last one, unused by the spec). */
export const VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID = 23;
/** Proposal request types (outside the spec's 1–5). */
export const VIRTIO_IOMMU_T_PROPOSAL = { ALLOC_PASID: 0x80, FREE_PASID: 0x81 } as const;
/** Request sizes. */
export const VIRTIO_IOMMU_PASID_REQ_BYTES = 16;
const HEAD = VIRTIO_IOMMU_SIZE.HEAD;
const WORD = 4;

/** Encode an ALLOC_PASID request (whole buffer: readable 8 bytes, writable 8). */
export function encodeAllocPasid(maxPasid: number): Uint8Array {
  const b = new Uint8Array(VIRTIO_IOMMU_PASID_REQ_BYTES);
  b[0] = VIRTIO_IOMMU_T_PROPOSAL.ALLOC_PASID;
  new DataView(b.buffer).setUint32(HEAD, maxPasid, true);
  return b;
}

/** Encode a FREE_PASID request (whole buffer: readable 12 bytes, writable 4). */
export function encodeFreePasid(pasid: number): Uint8Array {
  const b = new Uint8Array(VIRTIO_IOMMU_PASID_REQ_BYTES);
  b[0] = VIRTIO_IOMMU_T_PROPOSAL.FREE_PASID;
  new DataView(b.buffer).setUint32(HEAD + WORD, pasid, true);
  return b;
}

/** Device-readable bytes of each proposal request. */
export const PASID_REQ_READABLE: Readonly<Record<number, number>> = {
  [VIRTIO_IOMMU_T_PROPOSAL.ALLOC_PASID]: HEAD + WORD,
  [VIRTIO_IOMMU_T_PROPOSAL.FREE_PASID]: HEAD + 2 * WORD,
};

/**
 * Handle one proposal request for the device `owner`: writes the PASID into `out` (the
 * device-writable bytes before the tail) and returns the status.
 */
export function handlePasidRequest(
  space: PasidAllocator,
  owner: unknown,
  readable: Uint8Array,
  out: Uint8Array,
): number {
  const v = new DataView(readable.buffer, readable.byteOffset, readable.length);
  if (readable[0] === VIRTIO_IOMMU_T_PROPOSAL.ALLOC_PASID) {
    if (out.length < WORD) return VIRTIO_IOMMU_S.INVAL;
    const max = v.getUint32(HEAD, true);
    const pasid = space.alloc(owner, 1, max === 0 ? 2 ** 32 - 1 : max);
    if (pasid === -ERRNO.ENOSPC) return VIRTIO_IOMMU_S.NOMEM;
    if (pasid < 0) return VIRTIO_IOMMU_S.INVAL;
    new DataView(out.buffer, out.byteOffset, WORD).setUint32(0, pasid, true);
    return VIRTIO_IOMMU_S.OK;
  }
  if (v.getUint32(HEAD, true) !== 0) return VIRTIO_IOMMU_S.INVAL;
  return space.free(owner, v.getUint32(HEAD + WORD, true)) === 0
    ? VIRTIO_IOMMU_S.OK
    : VIRTIO_IOMMU_S.NOENT;
}
