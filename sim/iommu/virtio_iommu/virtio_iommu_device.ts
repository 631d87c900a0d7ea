/**
 * The virtio-iommu device (virtio device id 23): it receives requests as bytes on its request
 * queue, applies the spec's normative rules (virtio spec "IOMMU device", device operations), keeps
 * its own mapping table per domain — virtio-iommu has no page tables visible to software; its
 * format is the request stream — translates endpoint DMA from it, and reports faults as
 * `virtio_iommu_fault` records on its event queue.
 *
 * Rules applied (MUST/SHOULD of the spec; where QEMU 10 is laxer the spec wins and it says so):
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
 * Translation follows QEMU's order: PASID-tagged requests are refused (no PASID support: reason
 * UNKNOWN); an endpoint never attached → bypass or an UNKNOWN fault; an MSI RESV_MEM region is
 * an identity doorbell, a RESERVED one a MAPPING fault; no domain → bypass or a DOMAIN fault; a
 * bypass domain → identity; no mapping → MAPPING fault with flags ADDRESS only; a read of a
 * mapping without READ or a write without WRITE → MAPPING fault with R or W set (QEMU's flags,
 * which is why the VM bench's Linux logged `[]` for an unmapped write).
 *
 * `bootBypass` defaults to false, unlike QEMU's `boot-bypass=true`: Linux attaches every
 * endpoint to a default domain at probe, so programs never see bypass; the simulator has no
 * default domains, so unattached endpoints must fault as on every other IOMMU model.
 *
 * @module
 */

import {
  handlePasidRequest,
  PASID_REQ_READABLE,
  VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID,
} from "./virtio_iommu_pasid.ts";
import {
  type DecodedRequest,
  decodeRequest,
  encodeConfig,
  encodeFault,
  encodeResvMem,
  type FaultEvent,
  type ResvMemProperty,
  U64_MAX,
  VIRTIO_F_VERSION_1,
  VIRTIO_IOMMU_ATTACH_F_BYPASS,
  VIRTIO_IOMMU_F,
  VIRTIO_IOMMU_FAULT_F,
  VIRTIO_IOMMU_FAULT_R,
  VIRTIO_IOMMU_MAP_F,
  VIRTIO_IOMMU_RESV_MEM_T,
  VIRTIO_IOMMU_S,
  VIRTIO_IOMMU_SIZE,
  type VirtioIommuConfig,
} from "./virtio_iommu_wire.ts";
import type { DmaAccess, PasidAllocator } from "../model.ts";
import { IntervalList } from "./virtio_iommu_intervals.ts";

/** QEMU's page_size_mask on a 4 KiB host (granule = host page): every size ≥ 4 KiB. */
export const VIOMMU_QEMU_PAGE_SIZE_MASK = U64_MAX & ~0xfffn;
/** QEMU's probe_size (`VIOMMU_PROBE_SIZE`). */
export const VIOMMU_QEMU_PROBE_SIZE = 512;
/** QEMU's domain_range: all 32-bit ids. */
export const VIOMMU_QEMU_DOMAIN_RANGE = { start: 0, end: 0xffff_ffff } as const;
/** Largest endpoint id when no endpoint list is given (a 16-bit PCI requester id). */
export const VIOMMU_MAX_PCI_ENDPOINT = 0xffff;
/** Default limit of mappings held by the device (beyond it MAP answers NOMEM). */
export const VIOMMU_MAX_MAPPINGS = 1 << 20;

/** The features QEMU 10's device offers. */
export const VIOMMU_QEMU_FEATURES = (1n << BigInt(VIRTIO_F_VERSION_1)) |
  [
    VIRTIO_IOMMU_F.INPUT_RANGE,
    VIRTIO_IOMMU_F.DOMAIN_RANGE,
    VIRTIO_IOMMU_F.MAP_UNMAP,
    VIRTIO_IOMMU_F.MMIO,
    VIRTIO_IOMMU_F.PROBE,
    VIRTIO_IOMMU_F.BYPASS_CONFIG,
  ].reduce((acc, bit) => acc | (1n << BigInt(bit)), 0n);

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

/** Options of {@link VirtioIommuDevice}. */
export interface VirtioIommuDeviceOptions {
  /** page_size_mask (default {@link VIOMMU_QEMU_PAGE_SIZE_MASK}). */
  readonly pageSizeMask?: bigint;
  /** input_range, inclusive (default the full 64-bit space). */
  readonly inputRange?: { readonly start: bigint; readonly end: bigint };
  /** domain_range, inclusive (default {@link VIOMMU_QEMU_DOMAIN_RANGE}). */
  readonly domainRange?: { readonly start: number; readonly end: number };
  /** probe_size (default {@link VIOMMU_QEMU_PROBE_SIZE}). */
  readonly probeSize?: number;
  /** Initial config.bypass (default false; see the module doc). */
  readonly bootBypass?: boolean;
  /** Offered features (default {@link VIOMMU_QEMU_FEATURES}). */
  readonly features?: bigint;
  /** RESV_MEM regions reported for every endpoint (x86 QEMU: the MSI window). */
  readonly reservedRegions?: readonly ResvMemProperty[];
  /** Endpoints behind the device (default: every id up to {@link VIOMMU_MAX_PCI_ENDPOINT}). */
  readonly endpoints?: readonly number[];
  /** Mapping limit (default {@link VIOMMU_MAX_MAPPINGS}). */
  readonly maxMappings?: number;
  /**
   * **Proposal**: the host-wide PASID space behind ALLOC_PASID/FREE_PASID
   * (virtio_iommu_pasid.ts); offer {@link VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID} with it.
   */
  readonly pasidSpace?: PasidAllocator;
}

interface Domain {
  readonly id: number;
  readonly bypass: boolean;
  /** Sorted by start, non-overlapping. */
  readonly mappings: IntervalList<VirtioMapping>;
  readonly endpoints: Set<number>;
}

/** The result of a device-side translation. */
export type VirtioTranslation =
  | { readonly ok: true; readonly phys: bigint }
  | { readonly ok: false; readonly event: FaultEvent; readonly raw: Uint8Array };

/** The virtio-iommu device model. */
export class VirtioIommuDevice {
  /** Features the device offers. */
  readonly offered: bigint;
  readonly #config: { -readonly [K in keyof VirtioIommuConfig]: VirtioIommuConfig[K] };
  readonly #bootBypass: number;
  readonly #resv: readonly ResvMemProperty[];
  readonly #endpointList?: ReadonlySet<number>;
  readonly #maxMappings: number;
  readonly #endpoints = new Map<number, Domain | undefined>();
  readonly #domains = new Map<number, Domain>();
  #negotiated: bigint;
  #mappingCount = 0;
  readonly #pasidSpace?: PasidAllocator;
  /** The event queue: receives each fault record the device writes (the driver's handler). */
  onEvent?: (record: Uint8Array) => void;

  /** A device with QEMU 10's defaults unless told otherwise ({@link VirtioIommuDeviceOptions}). */
  constructor(o: VirtioIommuDeviceOptions = {}) {
    this.offered = o.features ?? VIOMMU_QEMU_FEATURES;
    this.#pasidSpace = o.pasidSpace;
    this.#negotiated = this.offered;
    this.#bootBypass = o.bootBypass ? 1 : 0;
    this.#config = {
      pageSizeMask: o.pageSizeMask ?? VIOMMU_QEMU_PAGE_SIZE_MASK,
      inputRange: o.inputRange ?? { start: 0n, end: U64_MAX },
      domainRange: o.domainRange ?? VIOMMU_QEMU_DOMAIN_RANGE,
      probeSize: o.probeSize ?? VIOMMU_QEMU_PROBE_SIZE,
      bypass: this.#bootBypass,
    };
    this.#resv = o.reservedRegions ?? [];
    this.#endpointList = o.endpoints ? new Set(o.endpoints) : undefined;
    this.#maxMappings = o.maxMappings ?? VIOMMU_MAX_MAPPINGS;
  }

  /** The config space as the driver reads it (40 bytes). */
  readConfig(): Uint8Array {
    return encodeConfig(this.#config);
  }

  /** The decoded config. */
  get config(): VirtioIommuConfig {
    return { ...this.#config };
  }

  /** Features accepted by both sides. */
  get negotiated(): bigint {
    return this.#negotiated;
  }

  /** Feature negotiation: keep what the driver accepts of what is offered; returns the result. */
  negotiate(driverFeatures: bigint): bigint {
    this.#negotiated = this.offered & driverFeatures;
    return this.#negotiated;
  }

  /**
   * The driver writes config.bypass: allowed only with BYPASS_CONFIG negotiated and a value of
   * 0 or 1 (QEMU flags anything else as a device error and ignores it). Returns whether applied.
   */
  writeBypass(value: number): boolean {
    if (!this.#has(VIRTIO_IOMMU_F.BYPASS_CONFIG) || (value !== 0 && value !== 1)) return false;
    this.#config.bypass = value;
    return true;
  }

  /** Device reset: no endpoint attached, no domain (config.bypass is kept). */
  reset(): void {
    this.#endpoints.clear();
    this.#domains.clear();
    this.#mappingCount = 0;
  }

  /** System reset: a device reset, and config.bypass back to its initial value. */
  systemReset(): void {
    this.reset();
    this.#config.bypass = this.#bootBypass;
  }

  /** Ids of existing domains, ascending. */
  domainIds(): number[] {
    return [...this.#domains.keys()].sort((a, b) => a - b);
  }

  /** The mappings of a domain (empty when it does not exist). */
  mappings(domain: number): readonly VirtioMapping[] {
    return this.#domains.get(domain)?.mappings.values() ?? [];
  }

  /** The domain an endpoint is attached to. */
  endpointDomain(endpoint: number): number | undefined {
    return this.#endpoints.get(endpoint)?.id;
  }

  /**
   * Process one request from the request queue: `readable` is the device-readable part,
   * `writable` the device-writable part (tail, after PROBE's properties). Returns the used length
   * (bytes written; 0 when nothing could be written). Never throws.
   */
  process(readable: Uint8Array, writable: Uint8Array): number {
    const tail = VIRTIO_IOMMU_SIZE.TAIL;
    if (readable.length < VIRTIO_IOMMU_SIZE.HEAD || writable.length < tail) return 0;
    const pasidReq = PASID_REQ_READABLE[readable[0]];
    if (pasidReq !== undefined) {
      const space = this.#pasidSpace;
      if (!space || !this.#has(VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID)) return 0; // unknown type
      writable.fill(0);
      writable[writable.length - tail] = readable.length < pasidReq
        ? VIRTIO_IOMMU_S.INVAL
        : handlePasidRequest(space, this, readable, writable.subarray(0, writable.length - tail));
      return writable.length;
    }
    const req = decodeRequest(readable);
    if (req === "unknown") return 0;
    if (req !== "short" && req.type === "probe" && !this.#has(VIRTIO_IOMMU_F.PROBE)) return 0;
    writable.fill(0);
    const status = req === "short"
      ? VIRTIO_IOMMU_S.INVAL
      : this.#handle(req, writable.subarray(0, writable.length - tail));
    writable[writable.length - tail] = status;
    return writable.length;
  }

  /** Translate one endpoint access; on a fault the record goes to the event queue. */
  translate(
    endpoint: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
  ): VirtioTranslation {
    const addr = VIRTIO_IOMMU_FAULT_F.ADDRESS;
    if (pasid !== undefined) return this.#fault(VIRTIO_IOMMU_FAULT_R.UNKNOWN, addr, endpoint, iova);
    const known = this.#endpoints.has(endpoint);
    const domain = this.#endpoints.get(endpoint);
    if (!known) {
      if (this.#unattachedBypass()) return { ok: true, phys: iova };
      return this.#fault(VIRTIO_IOMMU_FAULT_R.UNKNOWN, addr, endpoint, iova);
    }
    const resv = this.#resv.find((r) => iova >= r.start && iova <= r.end);
    if (resv) {
      if (resv.subtype === VIRTIO_IOMMU_RESV_MEM_T.MSI) return { ok: true, phys: iova };
      return this.#fault(VIRTIO_IOMMU_FAULT_R.MAPPING, addr, endpoint, iova);
    }
    if (domain === undefined) {
      if (this.#unattachedBypass()) return { ok: true, phys: iova };
      return this.#fault(VIRTIO_IOMMU_FAULT_R.DOMAIN, addr, endpoint, iova);
    }
    if (domain.bypass) return { ok: true, phys: iova };
    const m = domain.mappings.find(iova);
    if (m === undefined) return this.#fault(VIRTIO_IOMMU_FAULT_R.MAPPING, addr, endpoint, iova);
    const denied = access === "read"
      ? (m.flags & VIRTIO_IOMMU_MAP_F.READ) === 0 ? VIRTIO_IOMMU_FAULT_F.READ : 0
      : (m.flags & VIRTIO_IOMMU_MAP_F.WRITE) === 0
      ? VIRTIO_IOMMU_FAULT_F.WRITE
      : 0;
    if (denied) return this.#fault(VIRTIO_IOMMU_FAULT_R.MAPPING, denied | addr, endpoint, iova);
    return { ok: true, phys: m.phys + (iova - m.start) };
  }

  #has(feature: number): boolean {
    return (this.#negotiated & (1n << BigInt(feature))) !== 0n;
  }

  #unattachedBypass(): boolean {
    const cfg = (this.offered & (1n << BigInt(VIRTIO_IOMMU_F.BYPASS_CONFIG))) !== 0n &&
      this.#config.bypass === 1;
    return cfg || this.#has(VIRTIO_IOMMU_F.BYPASS);
  }

  #endpointExists(ep: number): boolean {
    return this.#endpointList ? this.#endpointList.has(ep) : ep <= VIOMMU_MAX_PCI_ENDPOINT;
  }

  #domainInRange(id: number): boolean {
    if (!this.#has(VIRTIO_IOMMU_F.DOMAIN_RANGE)) return true;
    return id >= this.#config.domainRange.start && id <= this.#config.domainRange.end;
  }

  #inputInRange(start: bigint, end: bigint): boolean {
    if (!this.#has(VIRTIO_IOMMU_F.INPUT_RANGE)) return true;
    return start >= this.#config.inputRange.start && end <= this.#config.inputRange.end;
  }

  #handle(req: DecodedRequest, props: Uint8Array): number {
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
    const known = this.#has(VIRTIO_IOMMU_F.BYPASS_CONFIG) ? VIRTIO_IOMMU_ATTACH_F_BYPASS : 0;
    if ((r.flags & ~known) !== 0) return S.INVAL;
    if (!this.#domainInRange(r.domain)) return S.RANGE;
    if (!this.#endpointExists(r.endpoint)) return S.NOENT;
    const bypass = (r.flags & VIRTIO_IOMMU_ATTACH_F_BYPASS) !== 0;
    const existing = this.#domains.get(r.domain);
    if (existing && existing.bypass !== bypass) return S.INVAL;
    const old = this.#endpoints.get(r.endpoint);
    if (old === existing && old !== undefined) return S.OK;
    if (old) this.#leave(old, r.endpoint);
    let domain = this.#domains.get(r.domain);
    if (domain === undefined) {
      domain = { id: r.domain, bypass, mappings: new IntervalList(), endpoints: new Set() };
      this.#domains.set(r.domain, domain);
    }
    domain.endpoints.add(r.endpoint);
    this.#endpoints.set(r.endpoint, domain);
    return S.OK;
  }

  #detach(domainId: number, endpoint: number): number {
    if (!this.#endpoints.has(endpoint)) return VIRTIO_IOMMU_S.NOENT;
    const domain = this.#endpoints.get(endpoint);
    if (domain === undefined || domain.id !== domainId) return VIRTIO_IOMMU_S.INVAL;
    this.#leave(domain, endpoint);
    this.#endpoints.set(endpoint, undefined);
    return VIRTIO_IOMMU_S.OK;
  }

  /** An endpoint leaves a domain; the domain ceases to exist when it was the last one. */
  #leave(domain: Domain, endpoint: number): void {
    domain.endpoints.delete(endpoint);
    if (domain.endpoints.size > 0) return;
    this.#mappingCount -= domain.mappings.size;
    this.#domains.delete(domain.id);
  }

  #map(r: Extract<DecodedRequest, { type: "map" }>): number {
    const S = VIRTIO_IOMMU_S;
    const known = VIRTIO_IOMMU_MAP_F.READ | VIRTIO_IOMMU_MAP_F.WRITE |
      (this.#has(VIRTIO_IOMMU_F.MMIO) ? VIRTIO_IOMMU_MAP_F.MMIO : 0);
    if ((r.flags & ~known) !== 0) return S.INVAL;
    if (!this.#domainInRange(r.domain)) return S.RANGE;
    const domain = this.#domains.get(r.domain);
    if (domain === undefined) return S.NOENT;
    if (domain.bypass) return S.INVAL;
    if (r.virtEnd < r.virtStart) return S.INVAL;
    const granule = this.#granuleMask();
    if (((r.virtStart | r.physStart | ((r.virtEnd + 1n) & U64_MAX)) & granule) !== 0n) {
      return S.RANGE;
    }
    if (!this.#inputInRange(r.virtStart, r.virtEnd)) return S.RANGE;
    if (this.#resv.some((x) => x.start <= r.virtEnd && r.virtStart <= x.end)) return S.INVAL;
    if (domain.mappings.overlapping(r.virtStart, r.virtEnd).length > 0) return S.INVAL;
    if (this.#mappingCount >= this.#maxMappings) return S.NOMEM;
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
    const domain = this.#domains.get(r.domain);
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
    const size = this.#config.probeSize;
    if (props.length < size) return VIRTIO_IOMMU_S.INVAL;
    const encoded = this.#resv.map(encodeResvMem);
    const total = encoded.reduce((n, p) => n + p.length, 0);
    if (total > size) return VIRTIO_IOMMU_S.INVAL;
    let at = 0;
    for (const p of encoded) {
      props.set(p, at);
      at += p.length;
    }
    return VIRTIO_IOMMU_S.OK;
  }

  /** Bits below the granule (the lowest set bit of page_size_mask). */
  #granuleMask(): bigint {
    const mask = this.#config.pageSizeMask;
    return mask === 0n ? 0n : (mask & -mask) - 1n;
  }

  #fault(reason: number, flags: number, endpoint: number, address: bigint): VirtioTranslation {
    const event: FaultEvent = { reason, flags, endpoint, address };
    const raw = encodeFault(event);
    this.onEvent?.(raw.slice());
    return { ok: false, event, raw };
  }
}
