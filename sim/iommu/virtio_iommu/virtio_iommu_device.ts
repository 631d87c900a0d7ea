/**
 * The virtio-iommu device (virtio device id 23): it receives requests as bytes on its request
 * queue, applies the spec's normative rules (virtio spec "IOMMU device", device operations), keeps
 * its own mapping table per domain — virtio-iommu has no page tables visible to software; its
 * format is the request stream — translates endpoint DMA from it, and reports faults as
 * `virtio_iommu_fault` records on its event queue.
 *
 * The requests, and the rules they follow, are in virtio_iommu_requests.ts.
 *
 * Translation follows QEMU's order: PASID-tagged requests are refused (no PASID support: reason
 * UNKNOWN; with the PASID proposal of virtio_iommu_pasid.ts they go through the endpoint's PASID
 * entry instead); an endpoint never attached → bypass or an UNKNOWN fault; an MSI RESV_MEM region
 * is an identity doorbell, a RESERVED one a MAPPING fault; no domain → bypass or a DOMAIN fault; a
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
  decodeBindPasid,
  handlePasidRequest,
  PASID_REQ_READABLE,
  PasidEntries,
  SILENCED,
  VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID,
  VIRTIO_IOMMU_T_PROPOSAL,
} from "./virtio_iommu_pasid.ts";
import {
  decodeRequest,
  encodeConfig,
  encodeFault,
  type FaultEvent,
  type ResvMemProperty,
  U64_MAX,
  VIRTIO_F_VERSION_1,
  VIRTIO_IOMMU_F,
  VIRTIO_IOMMU_FAULT_F,
  VIRTIO_IOMMU_FAULT_R,
  VIRTIO_IOMMU_MAP_F,
  VIRTIO_IOMMU_RESV_MEM_T,
  VIRTIO_IOMMU_S,
  VIRTIO_IOMMU_SIZE,
  type VirtioIommuConfig,
} from "./virtio_iommu_wire.ts";
import {
  type DmaAccess,
  PASID_BITS,
  type SharedPasidSpace,
  TranslationEpoch,
  type TranslationHint,
} from "../model.ts";
import {
  type ViommuDeviceDomain,
  VirtioIommuRequests,
  type VirtioMapping,
} from "./virtio_iommu_requests.ts";

export { VIOMMU_MAX_PCI_ENDPOINT, type VirtioMapping } from "./virtio_iommu_requests.ts";

/** QEMU's page_size_mask on a 4 KiB host (granule = host page): every size ≥ 4 KiB. */
export const VIOMMU_QEMU_PAGE_SIZE_MASK = U64_MAX & ~0xfffn;
/** QEMU's probe_size (`VIOMMU_PROBE_SIZE`). */
export const VIOMMU_QEMU_PROBE_SIZE = 512;
/** QEMU's domain_range: all 32-bit ids. */
export const VIOMMU_QEMU_DOMAIN_RANGE = { start: 0, end: 0xffff_ffff } as const;
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
   * **Proposal**: the host-wide PASID space behind ALLOC_PASID/FREE_PASID and the PASID binds
   * (virtio_iommu_pasid.ts); offer {@link VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID} with it.
   */
  readonly pasidSpace?: SharedPasidSpace;
  /**
   * **Proposal**: the guest this device serves (default: the device itself). Every vIOMMU of one
   * guest shares it, so a PASID allocated through one may be freed and bound through another.
   */
  readonly pasidTenant?: unknown;
  /** **Proposal**: PASID bits an endpoint can carry (its PCIe PASID width; default 20). */
  readonly endpointPasidBits?: (endpoint: number) => number;
}

/** The result of a device-side translation. */
export type VirtioTranslation =
  | { readonly ok: true; readonly phys: bigint }
  | {
    readonly ok: false;
    readonly event: FaultEvent;
    readonly raw: Uint8Array;
    /** The record was not put on the event queue (a PASID being torn down). */
    readonly unreported?: boolean;
  };

/** Offset bits of the 4 KiB page a cacheable translation covers (see {@link TranslationHint}). */
const CACHE_PAGE_MASK = 0xfffn;

/** The virtio-iommu device model. */
export class VirtioIommuDevice {
  /** Features the device offers. */
  readonly offered: bigint;
  readonly #config: { -readonly [K in keyof VirtioIommuConfig]: VirtioIommuConfig[K] };
  readonly #bootBypass: number;
  readonly #resv: readonly ResvMemProperty[];
  /** The endpoint and domain tables and the requests that change them. */
  readonly #requests: VirtioIommuRequests;
  /** The same tables, read directly on the translation path. */
  readonly #endpoints: Map<number, ViommuDeviceDomain | undefined>;
  readonly #domains: Map<number, ViommuDeviceDomain>;
  #negotiated: bigint;
  readonly #pasidSpace?: SharedPasidSpace;
  readonly #tenant: unknown;
  readonly #pasids = new PasidEntries<ViommuDeviceDomain>();
  #removed = false;
  /** The event queue: receives each fault record the device writes (the driver's handler). */
  onEvent?: (record: Uint8Array) => void;
  /**
   * Generation of the device's translation state (its mapping tables, attachments, bypass
   * setting and features): bumped by every request processed, every reset, negotiation and
   * config.bypass write — everything {@link translate} reads besides its fixed configuration.
   */
  readonly translationEpoch: TranslationEpoch = new TranslationEpoch();

  /** A device with QEMU 10's defaults unless told otherwise ({@link VirtioIommuDeviceOptions}). */
  constructor(o: VirtioIommuDeviceOptions = {}) {
    this.offered = o.features ?? VIOMMU_QEMU_FEATURES;
    this.#pasidSpace = o.pasidSpace;
    this.#tenant = o.pasidTenant ?? this;
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
    this.#requests = new VirtioIommuRequests({
      config: this.#config,
      has: (feature) => this.#has(feature),
      resv: this.#resv,
      endpoints: o.endpoints ? new Set(o.endpoints) : undefined,
      maxMappings: o.maxMappings ?? VIOMMU_MAX_MAPPINGS,
      pasids: this.#pasids,
      endpointPasidBits: o.endpointPasidBits ?? (() => PASID_BITS),
      tenant: this.#tenant,
    });
    this.#endpoints = this.#requests.endpoints;
    this.#domains = this.#requests.domains;
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
    this.translationEpoch.bump();
    this.#negotiated = this.offered & driverFeatures;
    return this.#negotiated;
  }

  /**
   * The driver writes config.bypass: allowed only with BYPASS_CONFIG negotiated and a value of
   * 0 or 1 (QEMU flags anything else as a device error and ignores it). Returns whether applied.
   */
  writeBypass(value: number): boolean {
    if (!this.#has(VIRTIO_IOMMU_F.BYPASS_CONFIG) || (value !== 0 && value !== 1)) return false;
    this.translationEpoch.bump();
    this.#config.bypass = value;
    return true;
  }

  /** Device reset: no endpoint attached, no domain (config.bypass is kept). */
  reset(): void {
    this.translationEpoch.bump();
    this.#requests.reset();
    this.#pasids.clear();
  }

  /**
   * Hot-unplug: the device is reset and answers no request any more (used length 0); with the
   * PASID proposal the host releases, through their teardown, the PASIDs handed out through it.
   */
  unplug(): void {
    if (this.#removed) return;
    this.#removed = true;
    this.reset();
    this.#pasidSpace?.releaseVia(this, "the vIOMMU that allocated it was removed");
  }

  /** Whether the device was unplugged. */
  get removed(): boolean {
    return this.#removed;
  }

  /**
   * **Proposal**: tear down `pasid` on every endpoint (entries silenced: requests fail without an
   * event); returns the endpoints.
   */
  silencePasid(pasid: number): number[] {
    return this.#pasids.silence(pasid).map(({ endpoint, domain }) => {
      domain.pasidUsers--;
      this.#requests.maybeDrop(domain);
      return endpoint;
    });
  }

  /** **Proposal**: the silenced entries of `pasid` go: requests with it fault visibly again. */
  clearSilencedPasid(pasid: number): void {
    this.#pasids.clearSilenced(pasid);
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
    this.translationEpoch.bump();
    const tail = VIRTIO_IOMMU_SIZE.TAIL;
    if (this.#removed) return 0;
    if (readable.length < VIRTIO_IOMMU_SIZE.HEAD || writable.length < tail) return 0;
    const pasidReq = PASID_REQ_READABLE[readable[0]];
    if (pasidReq !== undefined) {
      const space = this.#pasidSpace;
      if (!space || !this.#has(VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID)) return 0; // unknown type
      writable.fill(0);
      const out = writable.subarray(0, writable.length - tail);
      const type = readable[0];
      const bind = type === VIRTIO_IOMMU_T_PROPOSAL.ATTACH_PASID ||
        type === VIRTIO_IOMMU_T_PROPOSAL.DETACH_PASID;
      writable[writable.length - tail] = readable.length < pasidReq
        ? VIRTIO_IOMMU_S.INVAL
        : bind
        ? this.#requests.bindPasid(space, decodeBindPasid(readable))
        : handlePasidRequest(space, this.#tenant, this, readable, out);
      return writable.length;
    }
    const req = decodeRequest(readable);
    if (req === "unknown") return 0;
    if (req !== "short" && req.type === "probe" && !this.#has(VIRTIO_IOMMU_F.PROBE)) return 0;
    writable.fill(0);
    const status = req === "short"
      ? VIRTIO_IOMMU_S.INVAL
      : this.#requests.handle(req, writable.subarray(0, writable.length - tail));
    writable[writable.length - tail] = status;
    return writable.length;
  }

  /**
   * Translate one endpoint access; on a fault the record goes to the event queue. A success is
   * `cacheable` (see {@link TranslationHint}) when the whole 4 KiB page around `iova` gets the
   * same answer: it depends only on state whose changes bump {@link translationEpoch}.
   */
  translate(
    endpoint: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    hint?: TranslationHint,
  ): VirtioTranslation {
    const addr = VIRTIO_IOMMU_FAULT_F.ADDRESS;
    if (pasid !== undefined) return this.#translatePasid(endpoint, pasid, iova, access);
    const known = this.#endpoints.has(endpoint);
    const domain = this.#endpoints.get(endpoint);
    if (!known) {
      if (this.#unattachedBypass()) return this.#answer(iova, iova, undefined, false, hint);
      return this.#fault(VIRTIO_IOMMU_FAULT_R.UNKNOWN, addr, endpoint, iova);
    }
    const resv = this.#resv.find((r) => iova >= r.start && iova <= r.end);
    if (resv) {
      if (resv.subtype === VIRTIO_IOMMU_RESV_MEM_T.MSI) {
        return this.#answer(iova, iova, resv, true, hint);
      }
      return this.#fault(VIRTIO_IOMMU_FAULT_R.MAPPING, addr, endpoint, iova);
    }
    if (domain === undefined) {
      if (this.#unattachedBypass()) return this.#answer(iova, iova, undefined, true, hint);
      return this.#fault(VIRTIO_IOMMU_FAULT_R.DOMAIN, addr, endpoint, iova);
    }
    if (domain.bypass) return this.#answer(iova, iova, undefined, true, hint);
    return this.#lookup(domain, endpoint, iova, access, hint);
  }

  /**
   * A mapping of `domain` for the access, or a MAPPING fault (R/W set for a permission miss).
   * Without a `hint` (PASID requests) the answer is never marked cacheable.
   */
  #lookup(
    domain: ViommuDeviceDomain,
    endpoint: number,
    iova: bigint,
    access: DmaAccess,
    hint?: TranslationHint,
  ): VirtioTranslation {
    const addr = VIRTIO_IOMMU_FAULT_F.ADDRESS;
    const m = domain.mappings.find(iova);
    if (m === undefined) return this.#fault(VIRTIO_IOMMU_FAULT_R.MAPPING, addr, endpoint, iova);
    const denied = access === "read"
      ? (m.flags & VIRTIO_IOMMU_MAP_F.READ) === 0 ? VIRTIO_IOMMU_FAULT_F.READ : 0
      : (m.flags & VIRTIO_IOMMU_MAP_F.WRITE) === 0
      ? VIRTIO_IOMMU_FAULT_F.WRITE
      : 0;
    if (denied) return this.#fault(VIRTIO_IOMMU_FAULT_R.MAPPING, denied | addr, endpoint, iova);
    return this.#answer(iova, m.phys + (iova - m.start), m, true, hint);
  }

  /**
   * A successful translation of `iova` to `phys`, decided by `range` (a mapping or reserved
   * region; none for bypass). It is cacheable when `range` covers the whole 4 KiB page and, if
   * the reserved regions were consulted (`resvChecked`), none of them cuts the page.
   */
  #answer(
    iova: bigint,
    phys: bigint,
    range: { readonly start: bigint; readonly end: bigint } | undefined,
    resvChecked: boolean,
    hint: TranslationHint | undefined,
  ): VirtioTranslation {
    if (hint) {
      const first = iova & ~CACHE_PAGE_MASK;
      const last = first | CACHE_PAGE_MASK;
      const covers = (r: { readonly start: bigint; readonly end: bigint }): boolean =>
        r.start <= first && r.end >= last;
      const cuts = (r: { readonly start: bigint; readonly end: bigint }): boolean =>
        r.start <= last && r.end >= first && !covers(r);
      hint.cacheable = (range === undefined || covers(range)) &&
        !(resvChecked && this.#resv.some(cuts));
    }
    return { ok: true, phys };
  }

  /**
   * A request with a PASID: refused (UNKNOWN) without the PASID proposal, as QEMU's device has no
   * PASID support; with it, through the endpoint's PASID entry — none: a DOMAIN fault; silenced:
   * failed without an event.
   */
  #translatePasid(
    endpoint: number,
    pasid: number,
    iova: bigint,
    access: DmaAccess,
  ): VirtioTranslation {
    const addr = VIRTIO_IOMMU_FAULT_F.ADDRESS;
    if (!this.#pasidSpace || !this.#has(VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID)) {
      return this.#fault(VIRTIO_IOMMU_FAULT_R.UNKNOWN, addr, endpoint, iova);
    }
    const entry = this.#pasids.get(endpoint, pasid);
    if (entry === SILENCED) {
      const event: FaultEvent = {
        reason: VIRTIO_IOMMU_FAULT_R.DOMAIN,
        flags: addr,
        endpoint,
        address: iova,
      };
      return { ok: false, event, raw: encodeFault(event), unreported: true };
    }
    if (entry === undefined) return this.#fault(VIRTIO_IOMMU_FAULT_R.DOMAIN, addr, endpoint, iova);
    return this.#lookup(entry, endpoint, iova, access);
  }

  #has(feature: number): boolean {
    return (this.#negotiated & (1n << BigInt(feature))) !== 0n;
  }

  #unattachedBypass(): boolean {
    const cfg = (this.offered & (1n << BigInt(VIRTIO_IOMMU_F.BYPASS_CONFIG))) !== 0n &&
      this.#config.bypass === 1;
    return cfg || this.#has(VIRTIO_IOMMU_F.BYPASS);
  }

  /** The MAPPING fault event an access to an unmapped `iova` raises (fault injection). */
  mappingFault(endpoint: number, iova: bigint): { event: FaultEvent; raw: Uint8Array } {
    const r = this.#fault(
      VIRTIO_IOMMU_FAULT_R.MAPPING,
      VIRTIO_IOMMU_FAULT_F.ADDRESS,
      endpoint,
      iova,
    );
    if (r.ok) throw new Error("virtio-iommu: a fault that translated");
    return r;
  }

  #fault(reason: number, flags: number, endpoint: number, address: bigint): VirtioTranslation {
    const event: FaultEvent = { reason, flags, endpoint, address };
    const raw = encodeFault(event);
    this.onEvent?.(raw.slice());
    return { ok: false, event, raw };
  }
}
