/**
 * **Proposal, not in the virtio spec.** virtio-iommu PASID requests as proposed on the list in
 * 2019 (../shared/seeds/000): a feature bit and two requests, ALLOC_PASID and FREE_PASID, taking
 * PASIDs from one host-wide PASID space shared by every vIOMMU, with a `max_pasid` field so a
 * guest can ask for PASIDs its devices can carry; and, for the thread's "the guest can only use
 * PASIDs allocated via ALLOC_PASID in its bind requests", two bind requests, ATTACH_PASID and
 * DETACH_PASID, that put one PASID of an endpoint on a domain. The feature bit, the request type
 * numbers and the bind layout are this project's choice (the thread fixed none).
 *
 * Layouts (little-endian; head = {u8 type; u8 reserved[3]}, tail = {u8 status; u8 reserved[3]}):
 *
 * | request | device-readable | device-writable | total |
 * |---|---|---|---|
 * | ALLOC_PASID | head@0/4, max_pasid@4/4 (0: no limit) | pasid@8/4, tail@12/4 | 16 |
 * | FREE_PASID | head@0/4, reserved@4/4, pasid@8/4 | tail@12/4 | 16 |
 * | ATTACH_PASID, DETACH_PASID | head@0/4, domain@4/4, endpoint@8/4, pasid@12/4, reserved@16/4 | tail@20/4 | 24 |
 *
 * Status:
 * - ALLOC_PASID: OK with the PASID written; NOMEM when no PASID up to max_pasid is free
 *   (allocated, being torn down or quarantined).
 * - FREE_PASID: INVAL for a non-zero reserved field; NOENT for a PASID this guest was not handed
 *   (through any of its vIOMMUs: the instances are equivalent, seeds/000).
 * - ATTACH_PASID: INVAL for a non-zero reserved field, PASID 0 (the endpoint's own requests) or a
 *   bypass domain; RANGE for a domain outside domain_range or a PASID the endpoint cannot carry
 *   (its PCIe PASID width); NOENT for an unknown endpoint or a PASID not handed to this guest by
 *   ALLOC_PASID. A PASID already attached elsewhere moves; the domain is created if needed.
 * - DETACH_PASID: NOENT for an unknown endpoint, INVAL when the PASID is not on that domain.
 * Without the feature negotiated the types are unknown (used length 0).
 *
 * A fault on a PASID request is reported as any other (the spec's fault record has no PASID
 * field); one on a PASID being torn down is not reported at all.
 *
 * @module
 */

import { PASID_BITS, type SharedPasidSpace } from "../model.ts";
import { ERRNO } from "../../../ffi/errno.ts";
import { VIRTIO_IOMMU_S, VIRTIO_IOMMU_SIZE } from "./virtio_iommu_wire.ts";

/** Proposal feature bit (device-specific range 0–23; the last one, unused by the spec). */
export const VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID = 23;
/** Proposal request types (outside the spec's 1–5). */
export const VIRTIO_IOMMU_T_PROPOSAL = {
  ALLOC_PASID: 0x80,
  FREE_PASID: 0x81,
  ATTACH_PASID: 0x82,
  DETACH_PASID: 0x83,
} as const;
/** Bytes of ALLOC_PASID and FREE_PASID. */
export const VIRTIO_IOMMU_PASID_REQ_BYTES = 16;
/** Bytes of ATTACH_PASID and DETACH_PASID. */
export const VIRTIO_IOMMU_PASID_BIND_BYTES = 24;
const HEAD = VIRTIO_IOMMU_SIZE.HEAD;
const TAIL = VIRTIO_IOMMU_SIZE.TAIL;
const WORD = 4;
/** Field offsets of the bind requests. */
const BIND = { domain: 4, endpoint: 8, pasid: 12, reserved: 16 } as const;

/** Device-readable bytes of each proposal request. */
export const PASID_REQ_READABLE: Readonly<Record<number, number>> = {
  [VIRTIO_IOMMU_T_PROPOSAL.ALLOC_PASID]: HEAD + WORD,
  [VIRTIO_IOMMU_T_PROPOSAL.FREE_PASID]: HEAD + 2 * WORD,
  [VIRTIO_IOMMU_T_PROPOSAL.ATTACH_PASID]: VIRTIO_IOMMU_PASID_BIND_BYTES - TAIL,
  [VIRTIO_IOMMU_T_PROPOSAL.DETACH_PASID]: VIRTIO_IOMMU_PASID_BIND_BYTES - TAIL,
};

function u32(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true);
}

function setU32(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0, true);
}

/** Encode an ALLOC_PASID request (whole buffer: readable 8 bytes, writable 8). */
export function encodeAllocPasid(maxPasid: number): Uint8Array {
  const b = new Uint8Array(VIRTIO_IOMMU_PASID_REQ_BYTES);
  b[0] = VIRTIO_IOMMU_T_PROPOSAL.ALLOC_PASID;
  setU32(b, HEAD, maxPasid);
  return b;
}

/** Encode a FREE_PASID request (whole buffer: readable 12 bytes, writable 4). */
export function encodeFreePasid(pasid: number): Uint8Array {
  const b = new Uint8Array(VIRTIO_IOMMU_PASID_REQ_BYTES);
  b[0] = VIRTIO_IOMMU_T_PROPOSAL.FREE_PASID;
  setU32(b, HEAD + WORD, pasid);
  return b;
}

/** Encode an ATTACH_PASID (`attach` true) or DETACH_PASID request (readable 20, writable 4). */
export function encodeBindPasid(
  attach: boolean,
  o: { readonly domain: number; readonly endpoint: number; readonly pasid: number },
): Uint8Array {
  const b = new Uint8Array(VIRTIO_IOMMU_PASID_BIND_BYTES);
  b[0] = attach ? VIRTIO_IOMMU_T_PROPOSAL.ATTACH_PASID : VIRTIO_IOMMU_T_PROPOSAL.DETACH_PASID;
  setU32(b, BIND.domain, o.domain);
  setU32(b, BIND.endpoint, o.endpoint);
  setU32(b, BIND.pasid, o.pasid);
  return b;
}

/** A decoded bind request. */
export interface BindRequest {
  /** ATTACH_PASID or DETACH_PASID. */
  readonly attach: boolean;
  /** Domain id. */
  readonly domain: number;
  /** Endpoint id. */
  readonly endpoint: number;
  /** The PASID. */
  readonly pasid: number;
  /** The reserved word is zero. */
  readonly reservedZero: boolean;
}

/** Decode the readable part of a bind request (`readable` long enough, checked by the caller). */
export function decodeBindPasid(readable: Uint8Array): BindRequest {
  return {
    attach: readable[0] === VIRTIO_IOMMU_T_PROPOSAL.ATTACH_PASID,
    domain: u32(readable, BIND.domain),
    endpoint: u32(readable, BIND.endpoint),
    pasid: u32(readable, BIND.pasid),
    reservedZero: u32(readable, BIND.reserved) === 0,
  };
}

/** Where ALLOC_PASID's device-writable `pasid` sits in the whole request. */
export const ALLOC_PASID_OUT_OFFSET = HEAD + WORD;

/**
 * ALLOC_PASID or FREE_PASID for the device `via`, whose guest is `tenant`: writes the PASID into
 * `out` (the device-writable bytes before the tail) and returns the status.
 */
export function handlePasidRequest(
  space: SharedPasidSpace,
  tenant: unknown,
  via: unknown,
  readable: Uint8Array,
  out: Uint8Array,
): number {
  if (readable[0] === VIRTIO_IOMMU_T_PROPOSAL.ALLOC_PASID) {
    if (out.length < WORD) return VIRTIO_IOMMU_S.INVAL;
    const max = u32(readable, HEAD);
    const pasid = space.alloc(tenant, 1, max === 0 ? 2 ** PASID_BITS - 1 : max, { tenant, via });
    if (pasid === -ERRNO.ENOSPC) return VIRTIO_IOMMU_S.NOMEM;
    if (pasid < 0) return VIRTIO_IOMMU_S.INVAL;
    setU32(out, 0, pasid);
    return VIRTIO_IOMMU_S.OK;
  }
  if (u32(readable, HEAD) !== 0) return VIRTIO_IOMMU_S.INVAL;
  return space.freeByTenant(tenant, u32(readable, HEAD + WORD)) === 0
    ? VIRTIO_IOMMU_S.OK
    : VIRTIO_IOMMU_S.NOENT;
}

/** The entry of a PASID being torn down: not present, faults not reported. */
export const SILENCED = "silenced" as const;

/** The device's PASID entries: per endpoint, per PASID, a domain or {@link SILENCED}. */
export class PasidEntries<D> {
  readonly #entries = new Map<number, Map<number, D | typeof SILENCED>>();

  /** The entry of `pasid` of `endpoint`. */
  get(endpoint: number, pasid: number): D | typeof SILENCED | undefined {
    return this.#entries.get(endpoint)?.get(pasid);
  }

  /** Set (a domain) or remove (`undefined`) an entry; returns the domain it held, if any. */
  set(endpoint: number, pasid: number, entry: D | undefined): D | undefined {
    let table = this.#entries.get(endpoint);
    const old = table?.get(pasid);
    if (entry === undefined) table?.delete(pasid);
    else {
      if (!table) this.#entries.set(endpoint, table = new Map());
      table.set(pasid, entry);
    }
    return old === SILENCED ? undefined : old;
  }

  /** Silence every entry of `pasid` holding a domain: the endpoints and the domains let go. */
  silence(pasid: number): { endpoint: number; domain: D }[] {
    const out: { endpoint: number; domain: D }[] = [];
    for (const [endpoint, table] of this.#entries) {
      const d = table.get(pasid);
      if (d === undefined || d === SILENCED) continue;
      table.set(pasid, SILENCED);
      out.push({ endpoint, domain: d });
    }
    return out;
  }

  /** Remove the silenced entries of `pasid`. */
  clearSilenced(pasid: number): void {
    for (const table of this.#entries.values()) {
      if (table.get(pasid) === SILENCED) table.delete(pasid);
    }
  }

  /** Forget everything (device reset). */
  clear(): void {
    this.#entries.clear();
  }
}
