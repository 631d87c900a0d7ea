/**
 * virtio-iommu as a Linux 6.12 guest sees it: the {@link VirtioIommuDevice} (QEMU 10's
 * `virtio-iommu-pci` by default) and, kept apart from it, the guest kernel's driver side
 * (drivers/iommu/virtio-iommu.c) behind the {@link IommuModel} interface. The two halves meet
 * only through bytes: every domain operation becomes a request in the virtio-iommu wire format
 * ({@link encodeAttach}, {@link encodeMap}, …) that the device parses, and every fault comes back
 * as a `virtio_iommu_fault` record on the event queue.
 *
 * The driver side behaves as Linux's does:
 * - feature negotiation with Linux's feature table; facts from the config space: `pgsize_bitmap`
 *   = page_size_mask, aperture = input_range, domain ids from domain_range through an IDA (with
 *   BYPASS_CONFIG the first id is reserved for the identity domain, so paging domains start at 1);
 * - endpoints are probed once (PROBE) before use; RESV_MEM RESERVED/MSI become "reserved"/"msi"
 *   regions, and without an MSI property a SW_MSI window 0x08000000/1 MiB is added;
 * - map splits the range as `__iommu_map` does (`iommu_pgsize`) and each piece is one MAP
 *   request, sent only while the domain has endpoints (kept in the driver's tree and replayed on
 *   the first attach otherwise); unmap walks `__iommu_unmap`'s chunks, each removing whole
 *   mappings that start inside it (so a range starting inside a mapping removes nothing, and one
 *   ending inside a mapping removes all of it), then one UNMAP request;
 * - blocking (`attach(requester, null)`) attaches an empty paging domain, as the 6.12 core does
 *   for drivers without a blocked domain; faults then read "page fault";
 * - a device status maps to an errno as `viommu_get_req_errno` does (RANGE → ERANGE, …).
 *
 * Documented deviations: Linux queues MAP/UNMAP without reading their status; here the status is
 * read and returned as an errno (the driver's tree rolled back). An overlapping map is refused
 * with -EEXIST before any request (the IommuDomain rule; Linux would send it and the device would
 * refuse it). When an unmap chunk finds a hole, Linux returns with the removed mappings still in
 * the device; here the device is told too, so it never keeps a mapping the kernel forgot.
 *
 * @example
 * ```ts
 * const viommu = new VirtioIommu({ clock: new VirtualClock(), platform: "x86" });
 * const d = viommu.allocDomain(); // domain id 1
 * viommu.attach(0x0010, d); // PROBE + ATTACH
 * d.map(0x100000n, 0x1_0000_0000n, 0x2000n, { read: true, write: true }); // one MAP request
 * viommu.translate(0x0010, undefined, 0x800000n, "write", 4);
 * // fault: "virtio_iommu virtio0: page fault from EP 16 at 0x800000 []"
 * ```
 *
 * @module
 */

import {
  ALLOC_PASID_OUT_OFFSET,
  encodeAllocPasid,
  encodeBindPasid,
  encodeFreePasid,
  PASID_REQ_READABLE,
  VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID,
  VIRTIO_IOMMU_T_PROPOSAL,
} from "./virtio_iommu_pasid.ts";
import type { VirtualClock } from "../../clock.ts";
import { PASID_BITS } from "../model.ts";
import { checkPasidAttach } from "../model.ts";
import type {
  DmaAccess,
  IommuDomain,
  IommuFacts,
  IommuFault,
  IommuModel,
  ReservedRegion,
  TranslateResult,
  TranslationEpoch,
  TranslationHint,
} from "../model.ts";
import { VirtioIommuDevice, type VirtioIommuDeviceOptions } from "./virtio_iommu_device.ts";
import { VirtioIommuDomain } from "./virtio_iommu_domain.ts";
import {
  describe,
  FAULT_REASON_NAMES,
  statusName,
  VIOMMU_FAULT_RESV_MASK,
  viommuFaultMessage,
} from "./virtio_iommu_log.ts";
import {
  decodeConfig,
  decodeFault,
  decodeResvMem,
  encodeAttach,
  encodeDetach,
  encodeProbe,
  type FaultEvent,
  parseProbeProperties,
  requestStatus,
  splitRequest,
  U64_MAX,
  viommuStatusErrno,
  VIRTIO_F_VERSION_1,
  VIRTIO_IOMMU_ATTACH_F_BYPASS,
  VIRTIO_IOMMU_F,
  VIRTIO_IOMMU_PROBE_T,
  VIRTIO_IOMMU_RESV_MEM_T,
  VIRTIO_IOMMU_S,
  VIRTIO_IOMMU_SIZE,
} from "./virtio_iommu_wire.ts";

/** The platform the device sits on: x86 q35 (no IRQ remapping) or arm64 virt (GICv3 ITS). */
export type VirtioIommuPlatform = "x86" | "arm64";

/** The x86 interrupt window QEMU's pc machines report as a RESV_MEM MSI property. */
export const VIOMMU_X86_MSI_WINDOW = { start: 0xfee0_0000n, end: 0xfeef_ffffn } as const;
/** Linux's software-MSI window (`MSI_IOVA_BASE`, `MSI_IOVA_LENGTH`), inclusive. */
export const VIOMMU_SW_MSI_WINDOW = { start: 0x0800_0000n, end: 0x080f_ffffn } as const;
/** QEMU 10's default `aw-bits` per machine: pc 39, arm virt 48 (QEMU ≤ 8.2 gave 64). */
export const VIOMMU_QEMU_AW_BITS: Readonly<Record<VirtioIommuPlatform, number>> = {
  x86: 39,
  arm64: 48,
};
/** The guest's PAGE_SIZE. */
export const VIOMMU_LINUX_PAGE_SIZE = 4096n;
/** Linux's feature table (`features[]` of virtio-iommu.c) plus VIRTIO_F_VERSION_1. */
export const VIOMMU_LINUX_FEATURES = (1n << BigInt(VIRTIO_F_VERSION_1)) |
  [
    VIRTIO_IOMMU_F.MAP_UNMAP,
    VIRTIO_IOMMU_F.INPUT_RANGE,
    VIRTIO_IOMMU_F.DOMAIN_RANGE,
    VIRTIO_IOMMU_F.PROBE,
    VIRTIO_IOMMU_F.MMIO,
    VIRTIO_IOMMU_F.BYPASS_CONFIG,
  ].reduce((acc, bit) => acc | (1n << BigInt(bit)), 0n);

/** Options of {@link VirtioIommu}. */
export interface VirtioIommuOptions {
  /** The machine's clock (fault timestamps). */
  readonly clock: VirtualClock;
  /** Platform (default "x86"): MSI window, MSI isolation, QEMU's aw-bits. */
  readonly platform?: VirtioIommuPlatform;
  /** A device built elsewhere; else one is built from {@link deviceOptions} and the platform. */
  readonly device?: VirtioIommuDevice;
  /** Options of the device built here (they override the platform's defaults). */
  readonly deviceOptions?: VirtioIommuDeviceOptions;
  /**
   * **Proposal**: the guest driver also negotiates VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID and offers
   * {@link VirtioIommu.allocPasid} / {@link VirtioIommu.freePasid} and PASID attach through the
   * proposal's ATTACH_PASID / DETACH_PASID (virtio_iommu_pasid.ts); its facts then show 20-bit
   * PASIDs.
   */
  readonly pasidProposal?: boolean;
  /** MSI isolation as the kernel sees it (default: false on x86, true on arm64). */
  readonly msiIsolated?: boolean;
  /** Index of the virtio device in log lines ("virtio0"; default 0). */
  readonly virtioIndex?: number;
  /** Trace sink: every request and its status, attaches, faults. */
  readonly trace?: (line: string) => void;
  /** Host kernel log sink: the lines Linux prints for fault events. */
  readonly kernelLog?: (line: string) => void;
}

/** A probed endpoint (`struct viommu_endpoint`). */
interface Endpoint {
  readonly id: number;
  readonly resv: ReservedRegion[];
  domain: VirtioIommuDomain | undefined;
}

/** The guest kernel's virtio-iommu driver over a {@link VirtioIommuDevice}. */
export class VirtioIommu implements IommuModel {
  /** The device half. */
  readonly device: VirtioIommuDevice;
  /** The device's translation generation (see {@link VirtioIommuDevice.translationEpoch}). */
  readonly translationEpoch: TranslationEpoch;
  /** The facts Linux derives from the device (see {@link IommuFacts}). */
  readonly facts: IommuFacts;
  /** Platform. */
  readonly platform: VirtioIommuPlatform;
  /** Device name in log lines ("virtio0"). */
  readonly name: string;
  /** The granule (lowest bit of page_size_mask). */
  readonly granule: bigint;
  /** Id reserved for the identity domain (BYPASS_CONFIG), or undefined. */
  readonly identityDomainId: number | undefined;
  readonly #clock: VirtualClock;
  readonly #probeSize: number;
  readonly #firstDomain: number;
  readonly #lastDomain: number;
  readonly #ids = new Set<number>();
  readonly #endpoints = new Map<number, Endpoint>();
  readonly #blocking = new Map<number, VirtioIommuDomain>();
  /** Proposal: the domain on each endpoint PASID, keyed "endpoint:pasid". */
  readonly #pasidDomains = new Map<string, VirtioIommuDomain>();
  readonly #faults: IommuFault[] = [];
  readonly #trace?: (line: string) => void;
  readonly #kernelLog?: (line: string) => void;

  /** Probe the device as `viommu_probe` does; see {@link VirtioIommuOptions}. */
  constructor(o: VirtioIommuOptions) {
    this.platform = o.platform ?? "x86";
    this.#clock = o.clock;
    this.#trace = o.trace;
    this.#kernelLog = o.kernelLog;
    this.name = `virtio${o.virtioIndex ?? 0}`;
    this.device = o.device ?? new VirtioIommuDevice({
      inputRange: { start: 0n, end: (1n << BigInt(VIOMMU_QEMU_AW_BITS[this.platform])) - 1n },
      reservedRegions: this.platform === "x86"
        ? [{ subtype: VIRTIO_IOMMU_RESV_MEM_T.MSI, ...VIOMMU_X86_MSI_WINDOW }]
        : [],
      ...o.deviceOptions,
    });
    this.translationEpoch = this.device.translationEpoch;
    const proposal = o.pasidProposal ? 1n << BigInt(VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID) : 0n;
    const features = this.device.negotiate(VIOMMU_LINUX_FEATURES | proposal);
    const has = (bit: number): boolean => (features & (1n << BigInt(bit))) !== 0n;
    const cfg = decodeConfig(this.device.readConfig());
    const input = has(VIRTIO_IOMMU_F.INPUT_RANGE) ? cfg.inputRange : { start: 0n, end: U64_MAX };
    this.#firstDomain = has(VIRTIO_IOMMU_F.DOMAIN_RANGE) ? cfg.domainRange.start : 0;
    this.#lastDomain = has(VIRTIO_IOMMU_F.DOMAIN_RANGE) ? cfg.domainRange.end : 0xffff_ffff;
    this.#probeSize = has(VIRTIO_IOMMU_F.PROBE) ? cfg.probeSize : 0;
    this.identityDomainId = has(VIRTIO_IOMMU_F.BYPASS_CONFIG) ? this.#firstDomain++ : undefined;
    this.granule = cfg.pageSizeMask & -cfg.pageSizeMask;
    this.device.onEvent = (raw) => this.#eventHandler(raw);
    this.facts = {
      kind: "virtio-iommu",
      pgsizeBitmap: cfg.pageSizeMask,
      aperture: { start: input.start, end: input.end },
      cacheCoherency: true,
      enforceCacheCoherency: false,
      dirtyTracking: false,
      msiIsolated: o.msiIsolated ?? this.platform === "arm64",
      hwInfo: { type: 0, data: new Uint8Array(0) },
      maxPasidLog2: has(VIRTIO_IOMMU_F_PROPOSAL_ALLOC_PASID) ? PASID_BITS : 0,
    };
  }

  /** Every fault reported so far, oldest first. */
  get faults(): readonly IommuFault[] {
    return this.#faults;
  }

  /** Domain ids in use (the blocking domains included). */
  get domainIds(): number[] {
    return [...this.#ids].sort((a, b) => a - b);
  }

  /** Domains the kernel allocated and has not freed (the cached blocking domains left out). */
  domainsInUse(): number {
    return this.#ids.size - this.#blocking.size;
  }

  /** Reserved regions of an endpoint (`viommu_get_resv_regions`), probing it first if needed. */
  reservedRegions(requester: number): ReservedRegion[] {
    const ep = this.#endpoint(requester);
    const out = [...ep.resv];
    if (!out.some((r) => r.type === "msi")) out.push({ ...VIOMMU_SW_MSI_WINDOW, type: "sw-msi" });
    return out;
  }

  /**
   * A new paging domain with the lowest free id of domain_range (`viommu_domain_alloc_paging`).
   * Throws when the granule is larger than PAGE_SIZE (Linux: ENODEV) or the ids run out.
   */
  allocDomain(): VirtioIommuDomain {
    if (this.granule === 0n || this.granule > VIOMMU_LINUX_PAGE_SIZE) {
      throw new RangeError(
        `virtio-iommu: granule 0x${this.granule.toString(16)} larger than system page size 0x1000`,
      );
    }
    let id = this.#firstDomain;
    while (this.#ids.has(id)) id++;
    if (id > this.#lastDomain) throw new RangeError("virtio-iommu: out of domain ids");
    this.#ids.add(id);
    this.#traceLine(`viommu domain alloc id=${id}`);
    return new VirtioIommuDomain(this, id);
  }

  /** Free a domain (`viommu_domain_free`). Throws if it is attached or not this driver's. */
  freeDomain(domain: IommuDomain): void {
    const d = this.#own(domain);
    if (d.freed) return;
    if (d.nrEndpoints > 0) throw new Error(`virtio-iommu: domain ${d.id} freed while attached`);
    d.clear();
    d.freed = true;
    this.#ids.delete(d.id);
    this.#traceLine(`viommu domain free id=${d.id}`);
  }

  /**
   * PASID attach: -EOPNOTSUPP without the PASID proposal (the spec has none); with it an
   * ATTACH_PASID (replaying the domain's mappings if it had no user) or, for `null`, a
   * DETACH_PASID. 0 or the -errno of the refused request (ENOENT: a PASID not handed to this guest).
   */
  attachPasid(requester: number, pasid: number, domain: IommuDomain | null): number {
    const rc = checkPasidAttach(this.facts, pasid);
    if (rc < 0) return rc;
    const ep = this.#endpoint(requester);
    const key = `${requester}:${pasid}`;
    const old = this.#pasidDomains.get(key);
    const where = `ep=0x${ep.id.toString(16)} pasid=${pasid}`;
    if (domain === null) {
      if (old === undefined) return 0;
      const r = this.sendRequest(
        encodeBindPasid(false, { domain: old.id, endpoint: ep.id, pasid }),
      );
      this.#pasidDomains.delete(key);
      old.nrEndpoints--;
      this.#traceLine(`viommu detach ${where} domain=${old.id}`);
      return r;
    }
    const d = this.#own(domain);
    if (d.freed) throw new Error(`virtio-iommu: PASID attach of freed domain ${d.id}`);
    let r = this.sendRequest(encodeBindPasid(true, { domain: d.id, endpoint: ep.id, pasid }));
    if (r === 0 && d.nrEndpoints === 0) r = d.replay();
    if (r < 0) {
      this.#traceLine(`viommu attach ${where} domain=${d.id} -> ${r}`);
      return r;
    }
    if (old) old.nrEndpoints--;
    d.nrEndpoints++;
    this.#pasidDomains.set(key, d);
    this.#traceLine(`viommu attach ${where} domain=${d.id}`);
    return 0;
  }

  /**
   * Proposal teardown: the host silences every endpoint entry of `pasid` (requests fail without a
   * fault event) and the driver lets go of the domains they held. Returns the endpoints.
   */
  silencePasid(pasid: number): number[] {
    const endpoints = this.device.silencePasid(pasid);
    for (const ep of endpoints) {
      const key = `${ep}:${pasid}`;
      const d = this.#pasidDomains.get(key);
      if (d === undefined) continue;
      d.nrEndpoints--;
      this.#pasidDomains.delete(key);
      this.#traceLine(`viommu teardown ep=0x${ep.toString(16)} pasid=${pasid}: silenced`);
    }
    return endpoints;
  }

  /** Proposal teardown done: requests with `pasid` fault visibly again. */
  clearSilencedPasid(pasid: number): void {
    this.device.clearSilencedPasid(pasid);
  }

  /**
   * Hot-unplug the device ({@link VirtioIommuDevice.unplug}): it answers no request any more (the
   * driver's requests fail with EIO) and, with the PASID proposal, the PASIDs allocated through
   * it are released through their teardown.
   */
  unplug(): void {
    this.device.unplug();
    this.#traceLine(`viommu ${this.name} removed`);
  }

  /**
   * Attach an endpoint (`viommu_attach_dev`): ATTACH, then replay the domain's mappings if it had
   * no endpoint. `null` attaches the endpoint's blocking domain (an empty paging domain). Returns
   * 0 or the -errno of the refused request.
   */
  attach(requester: number, domain: IommuDomain | null): number {
    const ep = this.#endpoint(requester);
    let d: VirtioIommuDomain;
    if (domain === null) {
      const blocking = this.#blocking.get(requester) ?? this.allocDomain();
      this.#blocking.set(requester, blocking);
      d = blocking;
    } else {
      d = this.#own(domain);
      if (d.freed) throw new Error(`virtio-iommu: attach of freed domain ${d.id}`);
    }
    const old = ep.domain;
    if (old) old.nrEndpoints--;
    const flags = d.bypass ? VIRTIO_IOMMU_ATTACH_F_BYPASS : 0;
    let rc = this.sendRequest(encodeAttach({ domain: d.id, endpoint: ep.id, flags }));
    if (rc === 0 && d.nrEndpoints === 0) rc = d.replay();
    if (rc < 0) {
      if (old) old.nrEndpoints++;
      this.#traceLine(`viommu attach ep=0x${ep.id.toString(16)} domain=${d.id} -> ${rc}`);
      return rc;
    }
    d.nrEndpoints++;
    ep.domain = d;
    this.#traceLine(
      `viommu attach ep=0x${ep.id.toString(16)} domain=${d.id}${
        domain === null ? " (blocking)" : ""
      }`,
    );
    return 0;
  }

  /** Detach an endpoint (`viommu_detach_dev`, on device release): DETACH. 0 or -errno. */
  detach(requester: number): number {
    const ep = this.#endpoints.get(requester);
    if (ep?.domain === undefined) return 0;
    const rc = this.sendRequest(encodeDetach({ domain: ep.domain.id, endpoint: ep.id }));
    ep.domain.nrEndpoints--;
    ep.domain = undefined;
    return rc;
  }

  /** The domain an endpoint is attached to (a blocking domain included). */
  attached(requester: number): VirtioIommuDomain | undefined {
    return this.#endpoints.get(requester)?.domain;
  }

  /**
   * Domain ids (the blocking domains the core keeps per group included) and endpoint
   * attachments ({@link IommuModel.liveDomains}).
   */
  liveDomains(): string[] {
    const out = this.domainIds.map((id) => `domain=${id}`);
    for (const [ep, e] of this.#endpoints) {
      if (e.domain !== undefined) out.push(`ep=0x${ep.toString(16)} → domain=${e.domain.id}`);
    }
    return out.sort();
  }

  /**
   * Send one whole request (head, body, writable part) and wait for it, as
   * `viommu_send_req_sync` does: the device's status is written back into `req` (IOERR when it
   * wrote nothing) and mapped to 0 or -errno.
   */
  sendRequest(req: Uint8Array): number {
    const { readable, writable } = splitRequest(req, this.#probeSize);
    const used = this.device.process(readable, writable);
    if (used === 0 && req.length >= VIRTIO_IOMMU_SIZE.TAIL) {
      req[req.length - VIRTIO_IOMMU_SIZE.TAIL] = VIRTIO_IOMMU_S.IOERR;
    }
    const status = requestStatus(req);
    if (this.#trace) {
      this.#trace(`viommu req ${describe(req, this.#probeSize)} -> ${statusName(status)}`);
    }
    return viommuStatusErrno(status);
  }

  /**
   * **Proposal**: ALLOC_PASID with `maxPasid` (0: no limit): a PASID from the host-wide space, or
   * -errno as `viommu_get_req_errno` maps the status (ENOMEM when none is free; EIO when the
   * device wrote nothing, i.e. without the feature).
   */
  allocPasid(maxPasid = 0): number {
    const req = encodeAllocPasid(maxPasid);
    const rc = this.#sendPasidRequest(req, PASID_REQ_READABLE[VIRTIO_IOMMU_T_PROPOSAL.ALLOC_PASID]);
    return rc < 0 ? rc : new DataView(req.buffer).getUint32(ALLOC_PASID_OUT_OFFSET, true);
  }

  /**
   * **Proposal**: FREE_PASID: 0 or -errno (ENOENT for a PASID not handed to this guest through any
   * of its vIOMMUs).
   */
  freePasid(pasid: number): number {
    const req = encodeFreePasid(pasid);
    return this.#sendPasidRequest(req, PASID_REQ_READABLE[VIRTIO_IOMMU_T_PROPOSAL.FREE_PASID]);
  }

  #sendPasidRequest(req: Uint8Array, readable: number): number {
    const used = this.device.process(req.subarray(0, readable), req.subarray(readable));
    if (used === 0) req[req.length - VIRTIO_IOMMU_SIZE.TAIL] = VIRTIO_IOMMU_S.IOERR;
    const status = requestStatus(req);
    this.#trace?.(`viommu req PASID type 0x${req[0].toString(16)} -> ${statusName(status)}`);
    return viommuStatusErrno(status);
  }

  /** Translate one access through the device; a fault comes back as its event record. */
  translate(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    _length: number,
    hint?: TranslationHint,
  ): TranslateResult {
    const r = this.device.translate(requester, pasid, iova, access, hint);
    if (r.ok) return r;
    return { ok: false, fault: this.#record(requester, pasid, iova, access, r) };
  }

  /** Fault injection: the device reports a MAPPING fault for the access, as for an unmapped IOVA. */
  injectFault(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
  ): IommuFault {
    return this.#record(requester, pasid, iova, access, this.device.mappingFault(requester, iova));
  }

  #record(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    r: { readonly event: FaultEvent; readonly raw: Uint8Array; readonly unreported?: boolean },
  ): IommuFault {
    const fault: IommuFault = {
      format: "virtio-iommu-fault",
      requester,
      pasid,
      address: iova,
      access,
      reason: r.event.reason,
      reasonName: FAULT_REASON_NAMES[r.event.reason] ?? "unknown",
      raw: r.raw,
      message: viommuFaultMessage(this.name, r.event),
      timeNs: this.#clock.nowNs,
    };
    if (r.unreported) {
      this.#traceLine(`viommu blocked ${fault.message} (not reported: PASID being torn down)`);
      return fault;
    }
    this.#faults.push(fault);
    this.#traceLine(`viommu fault ${fault.message}`);
    return fault;
  }

  /** The endpoint, probed (PROBE, RESV_MEM parsing) on first use as `viommu_probe_device` does. */
  #endpoint(id: number): Endpoint {
    const known = this.#endpoints.get(id);
    if (known) return known;
    const ep: Endpoint = { id, resv: [], domain: undefined };
    this.#endpoints.set(id, ep);
    if (this.#probeSize === 0) return ep;
    const req = encodeProbe(id, this.#probeSize);
    const rc = this.sendRequest(req);
    if (rc < 0) return ep;
    const props = req.subarray(
      VIRTIO_IOMMU_SIZE.PROBE_HEAD,
      VIRTIO_IOMMU_SIZE.PROBE_HEAD + this.#probeSize,
    );
    for (const p of parseProbeProperties(props)) {
      if (p.type !== VIRTIO_IOMMU_PROBE_T.RESV_MEM) continue;
      const mem = decodeResvMem(p.value);
      if (mem === undefined || mem.end < mem.start) continue;
      const type = mem.subtype === VIRTIO_IOMMU_RESV_MEM_T.MSI ? "msi" : "reserved";
      ep.resv.push({ start: mem.start, end: mem.end, type });
    }
    ep.resv.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    return ep;
  }

  /** `viommu_event_handler` + `viommu_fault_handler`: log a fault record as Linux does. */
  #eventHandler(raw: Uint8Array): void {
    const head = new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(0, true);
    if ((head & VIOMMU_FAULT_RESV_MASK) !== 0) return;
    const e = decodeFault(raw);
    if (e) this.#kernelLog?.(viommuFaultMessage(this.name, e));
  }

  #own(domain: IommuDomain): VirtioIommuDomain {
    if (!(domain instanceof VirtioIommuDomain) || domain.unit !== this) {
      throw new TypeError("virtio-iommu: not a domain of this driver");
    }
    return domain;
  }

  #traceLine(line: string): void {
    this.#trace?.(line);
  }
}
