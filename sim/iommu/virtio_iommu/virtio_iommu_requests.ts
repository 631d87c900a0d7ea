/**
 * The virtio-iommu device's requests (virtio spec "IOMMU device", device operations): ATTACH,
 * DETACH, MAP, UNMAP and PROBE, and the proposal's ATTACH_PASID / DETACH_PASID
 * (virtio_iommu_pasid.ts), applied to the device's endpoint and domain tables. The
 * {@link VirtioIommuDevice} (virtio_iommu_device.ts) owns the tables and translates from them.
 *
 * Rules applied (MUST/SHOULD of the spec; where QEMU 10 is laxer the spec wins and it says so; the
 * first two, and PROBE not offered, are the device's `process`):
 * - unknown request type, or no room for the tail: nothing written, used length 0;
 * - a readable part shorter than the type's layout: INVAL (as QEMU);
 * - domain outside `domain_range`, or MAP/UNMAP range outside `input_range`: RANGE;
 * - ATTACH: non-zero `reserved` INVAL (QEMU does not check), unknown flag INVAL (BYPASS is known
 *   only with BYPASS_CONFIG negotiated), unknown endpoint NOENT, BYPASS flag inconsistent with an
 *   existing domain INVAL and nothing changes (QEMU detaches first), an endpoint attached
 *   elsewhere is detached first; a domain is created on its first attach;
 * - DETACH: unknown endpoint NOENT, not attached to that domain INVAL; a domain whose last
 *   endpoint leaves ceases to exist with its mappings;
 * - MAP: unknown flag INVAL (MMIO only with F_MMIO), unknown domain NOENT, bypass domain INVAL,
 *   `virt_end < virt_start` INVAL, `virt_start`, `phys_start` or `virt_end + 1` off the granule
 *   RANGE (QEMU does not check), overlap with a RESV_MEM region of the domain's endpoints INVAL,
 *   overlap with an existing mapping INVAL, more than `maxMappings` NOMEM;
 * - UNMAP: non-zero `reserved` INVAL with nothing removed (the spec's MAY), unknown domain NOENT,
 *   bypass domain INVAL, a mapping that would be split RANGE with nothing removed, holes fine;
 * - PROBE: not offered → used length 0; unknown endpoint NOENT; properties buffer smaller than
 *   `probe_size` INVAL; properties that do not fit INVAL; the rest zero-filled.
 *
 * @module
 */

import { type BindRequest, type PasidEntries, SILENCED } from "./virtio_iommu_pasid.ts";
import {
  type DecodedRequest,
  encodeResvMem,
  type ResvMemProperty,
  U64_MAX,
  VIRTIO_IOMMU_ATTACH_F_BYPASS,
  VIRTIO_IOMMU_F,
  VIRTIO_IOMMU_MAP_F,
  VIRTIO_IOMMU_S,
  type VirtioIommuConfig,
} from "./virtio_iommu_wire.ts";
import type { SharedPasidSpace } from "../model.ts";
import { IntervalList } from "./virtio_iommu_intervals.ts";

/** Largest endpoint id when no endpoint list is given (a 16-bit PCI requester id). */
export const VIOMMU_MAX_PCI_ENDPOINT = 0xffff;

/** One mapping (one MAP request's range, inclusive). */
export interface VirtioMapping {
  /** First IOVA. */
  readonly start: bigint;
  /** Last IOVA (inclusive). */
  readonly end: bigint;
  /** Physical address of `start`. */
  readonly phys: bigint;
  /** MAP flags (READ, WRITE, MMIO). */
  readonly flags: number;
}

/** A domain of the device, created by its first attach. */
export interface ViommuDeviceDomain {
  /** Domain id. */
  readonly id: number;
  /** A bypass domain (ATTACH with the BYPASS flag). */
  readonly bypass: boolean;
  /** Sorted by start, non-overlapping. */
  readonly mappings: IntervalList<VirtioMapping>;
  /** Endpoints attached to it. */
  readonly endpoints: Set<number>;
  /** Endpoint PASIDs attached to it (proposal). */
  pasidUsers: number;
}

/** What the requests read of the device. */
export interface VirtioIommuRequestsOptions {
  /** The device's config space (read at each request: bypass may change). */
  readonly config: Readonly<VirtioIommuConfig>;
  /** Whether a feature was negotiated. */
  readonly has: (feature: number) => boolean;
  /** RESV_MEM regions reported for every endpoint. */
  readonly resv: readonly ResvMemProperty[];
  /** Endpoints behind the device (default: every id up to {@link VIOMMU_MAX_PCI_ENDPOINT}). */
  readonly endpoints?: ReadonlySet<number>;
  /** Mapping limit (beyond it MAP answers NOMEM). */
  readonly maxMappings: number;
  /** **Proposal**: the endpoint PASID entries (shared with the device's translation). */
  readonly pasids: PasidEntries<ViommuDeviceDomain>;
  /** **Proposal**: PASID bits an endpoint can carry. */
  readonly endpointPasidBits: (endpoint: number) => number;
  /** **Proposal**: the guest this device serves. */
  readonly tenant: unknown;
}

/** The device's endpoint and domain tables and the requests that change them. */
export class VirtioIommuRequests {
  /** Endpoints that were attached once, with their domain (undefined once detached). */
  readonly endpoints: Map<number, ViommuDeviceDomain | undefined> = new Map();
  /** Existing domains by id. */
  readonly domains: Map<number, ViommuDeviceDomain> = new Map();
  #mappingCount = 0;
  readonly #o: VirtioIommuRequestsOptions;

  /** Tables of a device described by `o`, empty. */
  constructor(o: VirtioIommuRequestsOptions) {
    this.#o = o;
  }

  /** Device reset: no endpoint attached, no domain. */
  reset(): void {
    this.endpoints.clear();
    this.domains.clear();
    this.#mappingCount = 0;
  }

  /** Apply one decoded request (`props`: PROBE's properties buffer); returns its status. */
  handle(req: DecodedRequest, props: Uint8Array): number {
    switch (req.type) {
      case "attach":
        return this.#attach(req);
      case "detach":
        return this.#detach(req.domain, req.endpoint);
      case "map":
        return this.#map(req);
      case "unmap":
        return this.#unmap(req);
      case "probe":
        return this.#probe(req.endpoint, props);
    }
  }

  #attach(r: Extract<DecodedRequest, { type: "attach" }>): number {
    const S = VIRTIO_IOMMU_S;
    if (!r.reservedZero) return S.INVAL;
    const known = this.#o.has(VIRTIO_IOMMU_F.BYPASS_CONFIG) ? VIRTIO_IOMMU_ATTACH_F_BYPASS : 0;
    if ((r.flags & ~known) !== 0) return S.INVAL;
    if (!this.#domainInRange(r.domain)) return S.RANGE;
    if (!this.#endpointExists(r.endpoint)) return S.NOENT;
    const bypass = (r.flags & VIRTIO_IOMMU_ATTACH_F_BYPASS) !== 0;
    const existing = this.domains.get(r.domain);
    if (existing && existing.bypass !== bypass) return S.INVAL;
    const old = this.endpoints.get(r.endpoint);
    if (old === existing && old !== undefined) return S.OK;
    if (old) this.#leave(old, r.endpoint);
    const domain = this.domains.get(r.domain) ?? this.#newDomain(r.domain, bypass);
    domain.endpoints.add(r.endpoint);
    this.endpoints.set(r.endpoint, domain);
    return S.OK;
  }

  #detach(domainId: number, endpoint: number): number {
    if (!this.endpoints.has(endpoint)) return VIRTIO_IOMMU_S.NOENT;
    const domain = this.endpoints.get(endpoint);
    if (domain === undefined || domain.id !== domainId) return VIRTIO_IOMMU_S.INVAL;
    this.#leave(domain, endpoint);
    this.endpoints.set(endpoint, undefined);
    return VIRTIO_IOMMU_S.OK;
  }

  /** An endpoint leaves a domain; the domain ceases to exist when it was the last user. */
  #leave(domain: ViommuDeviceDomain, endpoint: number): void {
    domain.endpoints.delete(endpoint);
    this.maybeDrop(domain);
  }

  /** A domain with no endpoint and no endpoint PASID on it ceases to exist with its mappings. */
  maybeDrop(domain: ViommuDeviceDomain): void {
    if (domain.endpoints.size > 0 || domain.pasidUsers > 0) return;
    this.#mappingCount -= domain.mappings.size;
    this.domains.delete(domain.id);
  }

  #map(r: Extract<DecodedRequest, { type: "map" }>): number {
    const S = VIRTIO_IOMMU_S;
    const known = VIRTIO_IOMMU_MAP_F.READ | VIRTIO_IOMMU_MAP_F.WRITE |
      (this.#o.has(VIRTIO_IOMMU_F.MMIO) ? VIRTIO_IOMMU_MAP_F.MMIO : 0);
    if ((r.flags & ~known) !== 0) return S.INVAL;
    if (!this.#domainInRange(r.domain)) return S.RANGE;
    const domain = this.domains.get(r.domain);
    if (domain === undefined) return S.NOENT;
    if (domain.bypass) return S.INVAL;
    if (r.virtEnd < r.virtStart) return S.INVAL;
    const granule = this.#granuleMask();
    if (((r.virtStart | r.physStart | ((r.virtEnd + 1n) & U64_MAX)) & granule) !== 0n) {
      return S.RANGE;
    }
    if (!this.#inputInRange(r.virtStart, r.virtEnd)) return S.RANGE;
    if (this.#o.resv.some((x) => x.start <= r.virtEnd && r.virtStart <= x.end)) return S.INVAL;
    if (domain.mappings.overlapping(r.virtStart, r.virtEnd).length > 0) return S.INVAL;
    if (this.#mappingCount >= this.#o.maxMappings) return S.NOMEM;
    const m: VirtioMapping = {
      start: r.virtStart,
      end: r.virtEnd,
      phys: r.physStart,
      flags: r.flags,
    };
    domain.mappings.insert(m);
    this.#mappingCount++;
    return S.OK;
  }

  #unmap(r: Extract<DecodedRequest, { type: "unmap" }>): number {
    const S = VIRTIO_IOMMU_S;
    if (!r.reservedZero) return S.INVAL;
    if (!this.#domainInRange(r.domain)) return S.RANGE;
    const domain = this.domains.get(r.domain);
    if (domain === undefined) return S.NOENT;
    if (domain.bypass) return S.INVAL;
    if (r.virtEnd < r.virtStart) return S.INVAL;
    if (!this.#inputInRange(r.virtStart, r.virtEnd)) return S.RANGE;
    const hit = domain.mappings.overlapping(r.virtStart, r.virtEnd);
    if (hit.some((m) => m.start < r.virtStart || m.end > r.virtEnd)) return S.RANGE;
    for (const m of hit) domain.mappings.remove(m);
    this.#mappingCount -= hit.length;
    return S.OK;
  }

  #probe(endpoint: number, props: Uint8Array): number {
    if (!this.#endpointExists(endpoint)) return VIRTIO_IOMMU_S.NOENT;
    const size = this.#o.config.probeSize;
    if (props.length < size) return VIRTIO_IOMMU_S.INVAL;
    const encoded = this.#o.resv.map(encodeResvMem);
    const total = encoded.reduce((n, p) => n + p.length, 0);
    if (total > size) return VIRTIO_IOMMU_S.INVAL;
    let at = 0;
    for (const p of encoded) {
      props.set(p, at);
      at += p.length;
    }
    return VIRTIO_IOMMU_S.OK;
  }

  /** ATTACH_PASID / DETACH_PASID (see virtio_iommu_pasid.ts for the status rules). */
  bindPasid(space: SharedPasidSpace, r: BindRequest): number {
    const S = VIRTIO_IOMMU_S;
    if (!r.reservedZero) return S.INVAL;
    if (!this.#domainInRange(r.domain)) return S.RANGE;
    if (!this.#endpointExists(r.endpoint)) return S.NOENT;
    const current = this.#o.pasids.get(r.endpoint, r.pasid);
    if (!r.attach) {
      if (current === undefined || current === SILENCED || current.id !== r.domain) return S.INVAL;
      this.#o.pasids.set(r.endpoint, r.pasid, undefined);
      current.pasidUsers--;
      this.maybeDrop(current);
      return S.OK;
    }
    if (r.pasid === 0) return S.INVAL;
    if (r.pasid >= 2 ** this.#o.endpointPasidBits(r.endpoint)) return S.RANGE;
    if (space.holderOf(r.pasid)?.tenant !== this.#o.tenant) return S.NOENT;
    let domain = this.domains.get(r.domain);
    if (domain?.bypass) return S.INVAL;
    if (domain === undefined) {
      domain = this.#newDomain(r.domain, false);
    }
    domain.pasidUsers++;
    const old = this.#o.pasids.set(r.endpoint, r.pasid, domain);
    if (old) {
      old.pasidUsers--;
      this.maybeDrop(old);
    }
    return S.OK;
  }

  #newDomain(id: number, bypass: boolean): ViommuDeviceDomain {
    const domain: ViommuDeviceDomain = {
      id,
      bypass,
      mappings: new IntervalList(),
      endpoints: new Set(),
      pasidUsers: 0,
    };
    this.domains.set(id, domain);
    return domain;
  }

  #endpointExists(ep: number): boolean {
    return this.#o.endpoints ? this.#o.endpoints.has(ep) : ep <= VIOMMU_MAX_PCI_ENDPOINT;
  }

  #domainInRange(id: number): boolean {
    if (!this.#o.has(VIRTIO_IOMMU_F.DOMAIN_RANGE)) return true;
    return id >= this.#o.config.domainRange.start && id <= this.#o.config.domainRange.end;
  }

  #inputInRange(start: bigint, end: bigint): boolean {
    if (!this.#o.has(VIRTIO_IOMMU_F.INPUT_RANGE)) return true;
    return start >= this.#o.config.inputRange.start && end <= this.#o.config.inputRange.end;
  }

  /** Bits below the granule (the lowest set bit of page_size_mask). */
  #granuleMask(): bigint {
    const mask = this.#o.config.pageSizeMask;
    return mask === 0n ? 0n : (mask & -mask) - 1n;
  }
}
